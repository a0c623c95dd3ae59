"""``ledis-server``: command-line entry point."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stack import __version__
from stack.core.native import run_fast

from . import logsetup
from .acl.access import config_users
from .config import PARAMS, Config, ConfigError, read_file
from .storage.engine import StorageError

log = logging.getLogger(__name__)

DESCRIPTION = """\
ledis-server: a Redis-protocol key-value server that keeps its data on disk in LevelDB.

Tools: `ledis-server binlog --help` prints the binlog as readable operations;
`ledis-server restore BACKUP --data-dir DIR` builds a data directory from a backup.

Speak to it with redis-cli, redis-py or any Redis client. Settings come from the built-in
defaults, then --config FILE (TOML, keys named like the flags below), then the flags; CONFIG
SET changes the mutable ones at run time and CONFIG REWRITE saves them to the config file.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledis-server",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ledis-server {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    for p in PARAMS:
        flag = "--data-dir" if p.name == "dir" else f"--{p.name}"
        default = f" (default: {p.default!r})" if not p.secret else ""
        kwargs: dict[str, object] = {
            "dest": p.name.replace("-", "_"),
            "metavar": p.name.upper().replace("-", "_"),
            "help": p.help + default,
            "default": None,
        }
        if p.choices:
            kwargs["choices"] = p.choices
            kwargs.pop("metavar")
        names = [flag]
        if p.name == "loglevel":
            names.append("--log-level")
        if p.name == "replicaof":
            kwargs["nargs"] = 2
            kwargs["metavar"] = ("HOST", "PORT")
        parser.add_argument(*names, **kwargs)  # type: ignore[arg-type]
    return parser


def load_config(argv: list[str] | None = None) -> Config:
    args = build_parser().parse_args(argv)
    values = {}
    users: list[str] = []
    path = Path(args.config) if args.config else None
    if path is not None:
        file_values, users = read_file(path)
        values.update(file_values)
        try:
            config_users(users)  # checked now, so a bad rule is a config error (exit 2)
        except ConfigError as e:
            raise ConfigError(f"config file {path}: key 'users': {e}") from None
    for p in PARAMS:
        raw = getattr(args, p.name.replace("-", "_"))
        if raw is None:
            continue
        if isinstance(raw, list):
            raw = " ".join(raw)
        try:
            values[p.name] = p.parse(raw)
        except ConfigError as e:
            flag = "--data-dir" if p.name == "dir" else f"--{p.name}"
            raise ConfigError(f"flag {flag}: {e}") from None
    return Config(values, path, users)


async def _run(config: Config) -> None:
    from .server import Server

    server = Server(config)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("binlog", "restore"):
        from . import tools

        return tools.binlog_main(args[1:]) if args[0] == "binlog" else tools.restore_main(args[1:])
    try:
        config = load_config(argv)
    except ConfigError as e:
        print(f"ledis-server: {e}", file=sys.stderr)
        return 2
    logsetup.configure(config["loglevel"], config["logfile"])
    try:
        run_fast(_run(config))
    except StorageError as e:
        log.error("%s", e)
        return 1
    except ConfigError as e:  # an ACL file that cannot be loaded (docs/acl.md)
        log.error("%s", e)
        return 1
    except OSError as e:
        log.error("cannot start: %s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
