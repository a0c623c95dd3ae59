"""``ledis-failover``: command-line entry point (also ``python -m stack.failover.main``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from stack import __version__
from stack.core import flags, logsetup

from .config import ConfigError, FailoverConfig, check, parse_probe_map

log = logging.getLogger(__name__)

DESCRIPTION = """\
ledis-failover: the cluster's controller. Run one or more (3 recommended); one leads through
an etcd lease, the others stand by and take over within the lease time.

Every tick each controller looks at every node (PING, ROLE, INFO replication) and reports
what it sees into etcd; the leader decides from one snapshot (etcd + those looks + what the
proxies and the other controllers see). A master is down only when it has been unreachable
for --down-after seconds from at least --quorum views and from more than half of them; its
replica with the highest applied LogID is promoted through a workflow recorded step by step
in etcd, the group's epoch moves on, proxies follow, the other replicas are repointed, and
the old master is fenced (it refuses writes with READONLY) and re-attached as a replica when
it answers again. Every decision is one sentence in the cluster's events stream
(`ledis-console cluster events`). docs/failover.md has the details.
"""

_HELP = {
    "etcd": ("HOST:PORT", "etcd endpoint (repeat or comma-separate for several)"),
    "cluster": ("NAME", "the cluster's name in etcd"),
    "id": ("ID", "this controller's id (default ctl-<pid>)"),
    "tick": ("SECONDS", "seconds between two snapshots"),
    "lease_ttl": ("SECONDS", "the leader's lease; a leader that loses it stops acting"),
    "probe_timeout": ("SECONDS", "timeout of each request to a node"),
    "down_after": ("SECONDS", "how long a master must be unreachable to be down"),
    "quorum": ("N", "views (controllers and proxies) that must agree a master is down"),
    "view_max_age": ("SECONDS", "a view older than this does not count"),
    "safe_mode_fraction": ("F", "more than this share of nodes down at once: report only"),
    "switchover_timeout": ("SECONDS", "longest write pause of a planned switchover"),
    "password": ("PASSWORD", "the nodes' password"),
    "password_file": ("FILE", "read the nodes' password from FILE (first line)"),
    "etcd_timeout": ("SECONDS", "timeout of each etcd request"),
    "log_level": ("LEVEL", "debug, info, warning or error"),
    "log_file": ("FILE", "log to this file instead of stderr"),
    "ready_file": ("FILE", "write the id here once the first look at the cluster is done"),
    "probe_map": ("FROM=TO,...", "tests: dial TO when probing FROM"),
    "exit_after": ("STEP", "tests: exit at once after recording this workflow step"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledis-failover",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ledis-failover {__version__}")
    flags.add_flags(parser, FailoverConfig(), _HELP, secrets={"password"})
    return parser


def load_config(argv: list[str] | None = None) -> FailoverConfig:
    args = build_parser().parse_args(argv)
    given = flags.given(args, FailoverConfig)
    if "etcd" in given:
        given["etcd"] = tuple(given["etcd"])
    if "password_file" in given:
        try:
            with open(given["password_file"]) as f:
                given["password"] = f.readline().strip()
        except OSError as e:
            raise ConfigError(f"password-file: {e.strerror or e}") from None
    if "probe_map" in given:
        given["probe_map"] = parse_probe_map(given["probe_map"])
    return check(FailoverConfig(**given))  # type: ignore[arg-type]


async def _run(config: FailoverConfig) -> None:
    from .controller import Controller

    controller = Controller(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, controller.request_stop)
    await controller.run()


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as e:
        print(f"ledis-failover: {e}", file=sys.stderr)
        return 2
    logsetup.configure(config.log_level, config.log_file)
    try:
        asyncio.run(_run(config))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
