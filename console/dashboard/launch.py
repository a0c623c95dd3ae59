"""Open the dashboard from ``ledis-console`` (no COMMAND): pick the source (live, replay,
demo), apply settings and flags, run the app, and restore the terminal on any exit."""

from __future__ import annotations

import argparse

from ..config import ConsoleConfig
from .settings import load_dashboard
from .task_host import RESUME_HINT


def run_dashboard(config: ConsoleConfig, args: argparse.Namespace) -> int:
    from .app import Dashboard
    from .fake_cluster import FakeCluster, FakeSource
    from .poller import LiveSource, SampleSource
    from .recording import ReplaySource, load

    ds = load_dashboard(config.path if config.exists else None)
    interval = args.interval if args.interval is not None else ds.interval
    if not 0.1 <= interval <= 3600:
        from ..config import ConfigError

        raise ConfigError(f"--interval {interval:g}: expected 0.1 to 3600 seconds")
    source: SampleSource
    settings = config.cluster
    if args.replay is not None:
        source = ReplaySource(load(args.replay))
    elif args.demo:
        source = FakeSource(FakeCluster(groups=3, replicas=1, migration_percent=40, failover=True))
    else:
        source = LiveSource(settings, node_timeout=ds.node_timeout, concurrency=ds.concurrency)
    app = Dashboard(
        source,
        settings,
        interval=interval,
        read_only=args.read_only,
        record=args.record,
        record_max_bytes=ds.record_max_mb << 20,
        theme=args.theme or ds.theme,
    )
    app.run()
    for tid in app.stopped_tasks:
        print(
            f"migration {tid} stopped with the dashboard (it stays as it is): "
            f"{RESUME_HINT} {tid} goes on with it"
        )
    return app.return_code or 0
