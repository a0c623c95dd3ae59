"""``ledis-proxy``: command-line entry point (also ``python -m stack.proxy.main``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stack import __version__
from stack.core import flags, logsetup
from stack.core.native import run_fast

from .config import ConfigError, ProxyConfig, check, from_mapping, load_file

log = logging.getLogger(__name__)

DESCRIPTION = """\
ledis-proxy: the cluster's front door. Clients speak Redis to it (redis-cli, redis-py,
redis-benchmark ...) and see one big Redis; it routes each command by the slot of its keys to
the master of the group that owns the slot, as the cluster's topology in etcd says.

Settings come from the built-in defaults, then --config FILE (TOML, keys named like the flags,
at the top level or in a [proxy] table), then the flags. docs/proxy.md has the details.
"""

_FLAGS = {
    "etcd": ("HOST:PORT", "etcd endpoint (repeat or comma-separate for several)"),
    "cluster": ("NAME", "the cluster's name in etcd"),
    "port": ("PORT", "port to listen on (0: any free port, see --ready-file)"),
    "bind": ("ADDR", "address to listen on"),
    "ready_file": ("FILE", "write the port here once ready"),
    "requirepass": ("PASSWORD", "clients must AUTH with this password"),
    "backend_password": ("PASSWORD", "password of the ledis-servers"),
    "proxy_id": ("ID", "id under proxies/ in etcd (default: the address)"),
    "advertise": ("HOST", "host of the address registered in etcd"),
    "log_level": ("LEVEL", "debug, info, warning or error"),
    "log_file": ("FILE", "log to this file instead of stderr"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledis-proxy",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ledis-proxy {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    defaults = ProxyConfig()
    flags.add_flags(parser, defaults, _FLAGS, secrets=defaults.secrets, skip={"secrets"})
    return parser


def load_config(argv: list[str] | None = None) -> ProxyConfig:
    args = build_parser().parse_args(argv)
    config = ProxyConfig()
    if args.config:
        path = Path(args.config)
        config = from_mapping(config, load_file(path), str(path))
    config = from_mapping(config, flags.given(args, ProxyConfig), "flags")
    return check(config)


async def _run(config: ProxyConfig) -> None:
    from .server import ProxyServer

    await ProxyServer(config).serve()


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as e:
        print(f"ledis-proxy: {e}", file=sys.stderr)
        return 2
    logsetup.configure(config.log_level, config.log_file)
    try:
        run_fast(_run(config))
    except OSError as e:
        log.error("cannot start: %s", e)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
