"""``ledis-console failover GROUP [--to NODE] [--dry-run]``: a planned switchover.

The console checks the group and its nodes, shows the plan, and on a yes records the request
in etcd (``failovers/<group>`` at step ``requested``); the leading controller carries it out
(docs/failover.md, "Planned switchover": writes paused on the master, the replica caught up,
then switched, so nothing acknowledged is lost) and the console follows its sentences in the
events stream until the workflow is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from stack.cluster import plans
from stack.cluster.plans import PlanError
from stack.failover.switchover import probe_group, read_group, requested

from .cluster_admin import CommandError, Context, _addr, ask
from .status_view import print_events

WAIT = 60.0  # seconds the console follows a switchover before giving up waiting


def cmd_failover(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        topo, current = read_group(store, args.group)
        s = ctx.settings
        basis = asyncio.run(probe_group(topo, args.group, current, s.password, s.timeout))
        path = store.paths.failover(args.group)
        to = _addr(args.to) if args.to else None
        try:
            plan = basis.plan(args.group, to)
        except PlanError as e:
            raise CommandError(str(e)) from None
        target = requested(plan).new
        ctx.out.print(plan.what(), highlight=False)
        if args.dry_run:
            return 0
        if topo.leader is None:
            raise CommandError(
                f"no controller leads cluster {topo.cluster!r}: start ledis-failover "
                "(ledis-console up starts one) and try again"
            )
        if not ctx.yes and not ask(
            ctx, "switch over?", "add --yes to switch over without a terminal"
        ):
            return 1
        revision = plans.apply(store, plan, source="console").revision
        last = revision - 1
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            new = store.events(limit=100, after_revision=last)
            print_events(ctx.out, new)
            last = max((e.revision for e in new), default=last)
            if store.get_raw(path)[0] is None:
                break
            time.sleep(0.2)
        else:
            raise CommandError(
                f"group {args.group}: the switchover is still under way after {WAIT:g} s; "
                "follow it with: ledis-console cluster events --follow"
            )
        print_events(ctx.out, store.events(limit=100, after_revision=last))
        final = store.load().groups[args.group]
        if final.master != target:
            raise CommandError(f"group {args.group}: switchover not done; {final.master} is master")
        ctx.out.print(f"group {args.group}: {target} is the master", highlight=False)
    return 0
