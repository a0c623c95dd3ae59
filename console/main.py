"""``ledis-console``: run a cluster on this machine, administer one, and (later) watch it.

Entry point only: parses the command line, sets up logging and output, and turns every
expected failure into one line on stderr and exit code 1 (never a traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console

from stack import __version__
from stack.cluster.model import ModelError
from stack.cluster.nodes import NodeError
from stack.cluster.plans import PlanError
from stack.cluster.store import StoreError

from . import cluster_admin, migrations
from .config import ConfigError, load
from .dashboard.recording import RecordingError
from .dashboard.settings import THEMES

DESCRIPTION = """\
ledis-console: run a ledis cluster on this machine and administer it.

The cluster's topology (groups of one master and its replicas, the 16384 slots, proxies,
migrations, events) lives in etcd; the settings (etcd endpoints, cluster name) come from
./ledis-console.toml or --config FILE. With no command it opens the dashboard on the cluster
(on a terminal; otherwise it prints the status), or says how to start one.
"""

EXAMPLES = """\
examples:
  ledis-console --config ledis-run/ledis-console.toml      the dashboard (q quits)
  ledis-console --read-only --interval 5 --record incident.jsonl
  ledis-console --replay incident.jsonl     play a recording back (, . < > seek)
  ledis-console up                          etcd + 2 groups (master + 1 replica) in ./ledis-run
  ledis-console up --groups 3 --replicas 2 --port-base 7100 --detach
  ledis-console --config ledis-run/ledis-console.toml cluster status
  ledis-console cluster status --json       the topology as one JSON document
  ledis-console cluster init                create the cluster named in the config
  ledis-console cluster add-group 127.0.0.1:7002
  ledis-console cluster add-node 1 127.0.0.1:7003
  ledis-console cluster assign --even --yes
  ledis-console cluster events --follow
  ledis-console cluster migrate --slots 0-1023 --to 2 --yes
  ledis-console cluster migrations
  ledis-console failover 1 --dry-run        the plan of a switchover of group 1
  ledis-console down                        stop what `up` started in ./ledis-run
  ledis-console deploy playbooks/prod.toml --check --diff   what a deploy would change
  ledis-console deploy playbooks/prod.toml --yes            apply it, rolling
  ledis-console deploy playbooks/prod.toml status           what runs where, drift
"""

CLUSTER_HELP = {
    "init": (
        "create the cluster named in the config (all slots unassigned)",
        "ledis-console cluster init",
    ),
    "add-group": (
        "register a master as a new group: it must answer PING, be a master and be empty "
        "(or --force)",
        "ledis-console cluster add-group 127.0.0.1:7002 [--id 3] [--force] [--yes]",
    ),
    "add-node": (
        "attach a replica to a group: sends it REPLICAOF the group's master, waits until "
        "ROLE shows the link up, then records it",
        "ledis-console cluster add-node 1 127.0.0.1:7003 [--force] [--yes]",
    ),
    "remove-node": (
        "remove a replica (it gets REPLICAOF NO ONE and SLOTSMAP RESET and keeps its data), "
        "or a master whose group owns no slots and has no replicas (the group goes)",
        "ledis-console cluster remove-node 127.0.0.1:7003 --yes",
    ),
    "assign": (
        "record slot ownership without moving keys: unassigned slots, or owned ones with "
        "--force; --even spreads every slot over the groups",
        "ledis-console cluster assign --slots 0-8191 --group 1 --yes | assign --even --yes",
    ),
    "status": (
        "groups, slots, proxies and migrations; nodes are probed (PING/ROLE) unless "
        "--json without --probe",
        "ledis-console cluster status [--json] [--probe | --no-probe]",
    ),
    "events": (
        "the cluster's events stream, oldest first; --follow waits for new ones",
        "ledis-console cluster events [-n 50] [--follow]",
    ),
    "migrate": (
        "move slots to a group: the plan first, then the tasks run: by the leading "
        "controller when one runs (this returns at once; `cluster migrations` shows "
        "progress), else here with a live progress bar; --resume [TASK] goes on with one "
        "that was stopped",
        "ledis-console cluster migrate --slots 0-1023 --to 2 [--rate 5000] --yes",
    ),
    "rebalance": (
        "even the groups out by slot count or by key count (SLOTSINFO of each master): "
        "a plan of migrations, then run like migrate (by the controller, or here)",
        "ledis-console cluster rebalance [--by slots|keys] --yes",
    ),
    "pause": (
        "pause a migration where it is (the slots in flight stay migrating)",
        "ledis-console cluster pause m41-1 --yes",
    ),
    "resume": (
        "set a paused or failed migration going again, and run it here (--no-run: only "
        "set it pending)",
        "ledis-console cluster resume m41-1 --yes",
    ),
    "cancel": (
        "cancel a migration: the slots in flight are finished, the slots not started stay "
        "where they are",
        "ledis-console cluster cancel m41-1 --yes",
    ),
    "migrations": (
        "the migration tasks: slots, groups, state, progress, rate, ETA, owner",
        "ledis-console cluster migrations [--all]",
    ),
}


def _rate(text: str) -> float:
    """--rate: keys a second, or ``max`` (0: as fast as the nodes go)."""
    if text.lower() == "max":
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of keys a second: {text!r}") from None


def _config_option(p: argparse.ArgumentParser, top: bool) -> None:
    # accepted before and after the subcommand; the later one wins
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=None if top else argparse.SUPPRESS,
        help="settings file (default ./ledis-console.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ledis-console",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ledis-console {__version__}")
    _config_option(p, top=True)
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="how much to log on stderr (default warning)",
    )
    dash = p.add_argument_group("dashboard (no COMMAND)")
    dash.add_argument("--read-only", action="store_true", help="hide every action")
    dash.add_argument(
        "--interval", type=float, metavar="S", help="seconds between refreshes (default 2)"
    )
    dash.add_argument("--record", type=Path, metavar="FILE", help="keep every sample in FILE")
    dash.add_argument("--replay", type=Path, metavar="FILE", help="play a --record FILE back")
    dash.add_argument("--theme", choices=THEMES, help="colours (ansi-* for 16-colour terminals)")
    dash.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    cluster = sub.add_parser(
        "cluster",
        help="administer the cluster (init, add-group, add-node, remove-node, assign, status, "
        "events, migrate, rebalance, pause, resume, cancel, migrations)",
        description="Administer the cluster in etcd. Every change is shown first; "
        "--yes applies it without asking (needed without a terminal).",
        epilog="\n".join(f"  {name:12} {ex}" for name, (_, ex) in CLUSTER_HELP.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_option(cluster, top=False)
    csub = cluster.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str) -> argparse.ArgumentParser:
        text, example = CLUSTER_HELP[name]
        a = csub.add_parser(name, help=text, description=f"{text}.\n\nexample: {example}")
        a.formatter_class = argparse.RawDescriptionHelpFormatter
        _config_option(a, top=False)
        return a

    action("init")
    a = action("add-group")
    a.add_argument("addr", metavar="HOST:PORT", help="the master of the new group")
    a.add_argument("--id", type=int, help="the group id (default: the next free one)")
    a.add_argument("--force", action="store_true", help="register it even if it holds keys")
    a.add_argument("--yes", action="store_true", help="apply without asking")
    a = action("add-node")
    a.add_argument("group", type=int, metavar="GROUP", help="the group id")
    a.add_argument("addr", metavar="HOST:PORT", help="the node to attach as a replica")
    a.add_argument("--force", action="store_true", help="attach it even if it holds keys (they go)")
    a.add_argument("--yes", action="store_true", help="apply without asking")
    a = action("remove-node")
    a.add_argument("addr", metavar="HOST:PORT")
    a.add_argument("--yes", action="store_true", help="apply without asking")
    a = action("assign")
    a.add_argument("--slots", metavar="RANGES", help="slots, like 0-1023,2048,4000-4095")
    a.add_argument("--group", type=int, metavar="N", help="the group that owns them")
    a.add_argument("--even", action="store_true", help="every slot, evenly over the groups")
    a.add_argument("--force", action="store_true", help="also reassign slots another group owns")
    a.add_argument("--yes", action="store_true", help="apply without asking")
    a = action("status")
    a.add_argument("--json", action="store_true", help="one JSON document (docs/cluster.md)")
    a.add_argument(
        "--probe",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ask each node for its role and keys (default: yes for people, no for --json)",
    )
    a = action("events")
    a.add_argument("-n", type=int, default=50, help="how many of the newest (default 50)")
    a.add_argument("--follow", action="store_true", help="keep printing new events (Ctrl-C ends)")

    def runs(a: argparse.ArgumentParser) -> None:
        a.add_argument("--yes", action="store_true", help="apply without asking")
        a.add_argument(
            "--rate",
            type=_rate,
            metavar="KEYS",
            help="keys a second at most (default 20000; 0 or max: as fast as the nodes go)",
        )
        a.add_argument("--batch-keys", type=int, metavar="N", help="keys per call (500)")
        a.add_argument(
            "--max-window",
            type=int,
            metavar="SLOTS",
            help="slots in flight in one step at most (64; it grows while slots are sparse, "
            "1 moves one slot at a time)",
        )
        a.add_argument(
            "--no-run",
            action="store_true",
            help="create the tasks, do not run them here (a leading controller still runs them)",
        )
        a.add_argument("--proxy-wait", type=float, metavar="S", help=argparse.SUPPRESS)
        a.add_argument("--node-wait", type=float, metavar="S", help=argparse.SUPPRESS)

    a = action("migrate")
    a.add_argument("--slots", metavar="RANGES", help="slots, like 0-1023,2048")
    a.add_argument("--to", type=int, metavar="GROUP", help="the group that will own them")
    a.add_argument("--resume", nargs="?", const="", metavar="TASK",
                   help="run a task that was stopped (default: the oldest not finished)")  # fmt: skip
    runs(a)
    a = action("rebalance")
    a.add_argument("--by", choices=["slots", "keys"], default="slots", help="default slots")
    runs(a)
    for name in ("pause", "resume", "cancel"):
        a = action(name)
        a.add_argument("task", metavar="TASK", help="the migration's id (cluster migrations)")
        if name == "resume":
            runs(a)
        else:
            a.add_argument("--yes", action="store_true", help="apply without asking")
    a = action("migrations")
    a.add_argument("--all", action="store_true", help="finished ones too")

    up = sub.add_parser(
        "up",
        help="start a whole cluster on this machine and supervise it",
        description="Start etcd, N groups of a master and R replicas, and P proxies, every "
        "one on a port counted from --port-base; make the cluster on first start (slots "
        "spread evenly); write RUN_DIR/ledis-console.toml; restart what crashes; Ctrl-C or "
        "SIGTERM stops everything. A second up on the same run dir reuses data and topology.",
        epilog="example: ledis-console up --groups 3 --replicas 1 --port-base 7000 --detach",
    )
    _config_option(up, top=False)
    up.add_argument("--run-dir", type=Path, default=Path("ledis-run"), help="default ./ledis-run")
    up.add_argument("--groups", type=int, help="groups (default 2)")
    up.add_argument("--replicas", type=int, help="replicas per group (default 1)")
    up.add_argument("--proxies", type=int, help="proxies (default 1)")
    up.add_argument(
        "--controllers",
        type=int,
        help="ledis-failover controllers (default 1; 3 recommended: one leads, two stand by)",
    )
    up.add_argument(
        "--port-base", type=int, help="first port (default 7000): etcd, etcd peer, servers, proxies"
    )
    up.add_argument("--detach", action="store_true", help="return once healthy; `down` stops it")
    up.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)

    fo = sub.add_parser(
        "failover",
        help="switch a group's master over to a replica (planned: nothing is lost)",
        description="Show the plan, then ask the leading controller to switch the group over: "
        "writes are paused on the master, the replica catches up, then it is promoted and the "
        "old master becomes its replica. Follows the events until it is done.",
        epilog="example: ledis-console failover 1 --to 127.0.0.1:7003   (group 1 of `ledis-console up`: master :7002, replica :7003) --yes",
    )
    _config_option(fo, top=False)
    fo.add_argument("group", type=int, metavar="GROUP", help="the group id")
    fo.add_argument("--to", metavar="HOST:PORT", help="the replica to promote (default: the "
                    "one with the highest LogID)")  # fmt: skip
    fo.add_argument("--dry-run", action="store_true", help="show the plan and stop")
    fo.add_argument("--yes", action="store_true", help="switch over without asking")

    dep = sub.add_parser(
        "deploy",
        help="deploy a cluster onto hosts over SSH from a TOML playbook (playbooks/README.md)",
        description="Connect to the playbook's hosts (host keys checked against its "
        "known_hosts), gather facts, show the plan, then apply it: install, write configs, "
        "start or restart nodes rolling (replicas before masters, health gate after each), "
        "create the cluster in etcd on first deploy. A second run changes nothing. "
        "status: what runs where and drift; stop / uninstall: plan first, then apply. "
        "docs/deploy.md has the details.",
        epilog="example: ledis-console deploy playbooks/prod.toml --check --diff",
    )
    dep.add_argument("playbook", type=Path, metavar="PLAYBOOK", help="the playbook (TOML)")
    dep.add_argument("action", nargs="?", default="deploy",
                     choices=["deploy", "status", "stop", "uninstall"],
                     help="default deploy")  # fmt: skip
    dep.add_argument("--check", action="store_true", help="show the plan and stop")
    dep.add_argument("--diff", action="store_true", help="show config changes as diffs")
    dep.add_argument("--limit", metavar="HOST", help="only this host's operations")
    dep.add_argument("--tags", metavar="TAG,...", default="",
                     help="only operations with these tags: install, config, etcd, server, "
                     "proxy, controller, cluster")  # fmt: skip
    dep.add_argument("--yes", action="store_true", help="apply without asking")
    dep.add_argument("--event-log", type=Path, metavar="FILE",
                     help="JSON-lines event log (default: the playbook's deploy.event_log, "
                     "else ./ledis-deploy-CLUSTER.events.jsonl)")  # fmt: skip

    down = sub.add_parser(
        "down",
        help="stop the cluster that `up` started",
        description="Stop the processes of a run dir (servers flush their data); the data stays.",
        epilog="example: ledis-console down --run-dir ledis-run",
    )
    _config_option(down, top=False)
    down.add_argument("--run-dir", type=Path, default=Path("ledis-run"), help="default ./ledis-run")
    return p


PIPE_WIDTH = 200  # columns for output that goes to a pipe or a file (a terminal: its own)

_NO_CONFIG_HINT = (
    "no ledis-console.toml here says where the cluster is: for the local cluster pass "
    "--config ledis-run/ledis-console.toml (`make run` or `ledis-console up` writes it), or "
    "start one with: ledis-console up"
)


def _no_command(ctx: cluster_admin.Context, args: argparse.Namespace) -> int:
    s = ctx.settings
    if args.demo or args.replay:
        from .dashboard.launch import run_dashboard

        return run_dashboard(ctx.config, args)
    try:
        with ctx.store() as store:
            topo = store.load()
    except StoreError as e:
        ctx.out.print(f"{e}.", highlight=False)
        ctx.out.print(_NO_CONFIG_HINT, highlight=False)
        return 1
    if not topo.initialised:
        ctx.out.print(
            f"etcd at {', '.join(s.etcd)} holds no cluster {s.name!r}. Start a local cluster "
            "with: ledis-console up, or create one: ledis-console cluster init",
            highlight=False,
        )
        return 1
    if sys.stdin.isatty() and sys.stdout.isatty():
        from .dashboard.launch import run_dashboard

        return run_dashboard(ctx.config, args)
    return cluster_admin.cmd_status(ctx, argparse.Namespace(json=False, probe=None))


ACTIONS = {
    "init": cluster_admin.cmd_init,
    "add-group": cluster_admin.cmd_add_group,
    "add-node": cluster_admin.cmd_add_node,
    "remove-node": cluster_admin.cmd_remove_node,
    "assign": cluster_admin.cmd_assign,
    "status": cluster_admin.cmd_status,
    "events": cluster_admin.cmd_events,
    "migrate": migrations.cmd_migrate,
    "rebalance": migrations.cmd_rebalance,
    "pause": migrations.cmd_task,
    "resume": migrations.cmd_task,
    "cancel": migrations.cmd_task,
    "migrations": migrations.cmd_migrations,
}


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # piped or captured, tables keep their columns whole instead of squeezing into 80
    out = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
    err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH)
    try:
        if args.command == "up":
            from .local.runner import up

            return up(
                args.run_dir,
                port_base=args.port_base,
                groups=args.groups,
                replicas=args.replicas,
                proxies=args.proxies,
                controllers=args.controllers,
                detach=args.detach and not args.supervise,
                log_level=args.log_level,
                out=out,
            )
        if args.command == "down":
            from .local.runner import down

            return down(args.run_dir, out)
        if args.command == "deploy":
            return _deploy(args, out, err)
        config = load(args.config)
        ctx = cluster_admin.Context(config, out, err, yes=getattr(args, "yes", False))
        if args.command is None:
            return _no_command(ctx, args)
        try:
            if args.command == "failover":
                from .failover_admin import cmd_failover

                return cmd_failover(ctx, args)
            return ACTIONS[args.action](ctx, args)
        except StoreError as e:
            if config.exists:
                raise
            raise StoreError(f"{e}; {_NO_CONFIG_HINT}") from None
    except (
        ConfigError,
        StoreError,
        PlanError,
        ModelError,
        NodeError,
        cluster_admin.CommandError,
        RecordingError,
    ) as e:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
        return 1
    except _local_errors() as e:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130


def _deploy(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .deploy import playbook, run

    opts = run.Options(
        action=args.action,
        check=args.check,
        diff=args.diff,
        limit=args.limit,
        tags=tuple(t for t in args.tags.split(",") if t),
        yes=args.yes,
        event_log=args.event_log,
    )
    try:
        book = playbook.load(args.playbook)
        return run.deploy(book, opts, out)
    except run.ERRORS as e:
        err.print(f"error: {e}", highlight=False, soft_wrap=True, markup=False)
        return 1


def _local_errors() -> tuple[type[Exception], ...]:
    from .local.layout import LayoutError
    from .local.runner import UpError
    from .local.supervisor import StartError

    return (LayoutError, UpError, StartError)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
