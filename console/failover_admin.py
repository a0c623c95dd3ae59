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

from stack.cluster import nodes
from stack.cluster.txn import EventDraft, Guard, Write
from stack.failover.workflow import REQUESTED, Workflow

from .cluster_admin import CommandError, Context, _addr
from .status_view import print_events

WAIT = 60.0  # seconds the console follows a switchover before giving up waiting


def cmd_failover(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        topo = store.load()
        group = topo.groups.get(args.group)
        if group is None:
            known = ", ".join(str(g) for g in sorted(topo.groups)) or "none"
            raise CommandError(f"there is no group {args.group} (groups: {known})")
        path = store.paths.failover(group.id)
        current, _ = store.get_raw(path)
        if current is not None:
            wf = Workflow.from_json(path, current)
            raise CommandError(
                f"group {group.id}: a failover to {wf.new} is already under way (step {wf.step})"
            )
        if not group.replicas:
            raise CommandError(f"group {group.id} has no replica to switch over to")
        states = asyncio.run(
            nodes.probe_all(group.members, ctx.settings.password, ctx.settings.timeout)
        )
        master = states[group.master]
        if not master.reachable or master.role != "master":
            raise CommandError(f"group {group.id}: {master.describe()}; nothing to switch over")
        followers = {
            a: s
            for a, s in states.items()
            if a in group.replicas
            and s.reachable
            and s.role == "replica"
            and s.master == group.master
        }
        if args.to:
            target = _addr(args.to)
            if target not in group.replicas:
                raise CommandError(f"{target} is not a replica of group {group.id}")
            if target not in followers:
                raise CommandError(f"{target} cannot take over: {states[target].describe()}")
        else:
            if not followers:
                raise CommandError(f"group {group.id}: no replica follows {group.master} now")
            target = max(followers, key=lambda a: followers[a].log_id or 0)
        others = [r for r in group.replicas if r != target]
        have, want = followers[target].log_id, master.log_id
        lines = [
            f"switch over group {group.id} from {group.master} to {target} "
            f"(LogID {have} of {want})",
            f"  - pause writes on {group.master} (clients wait, at most the controller's "
            "switchover timeout)",
            f"  - wait until {target} has every LogID of {group.master}; if it does not in "
            "time, resume writes and change nothing",
            f"  - fence {group.master} at epoch {topo.epoch + 1} (it refuses writes with READONLY)",
            f"  - promote {target}, record it as the group's master (cluster epoch "
            f"{topo.epoch} -> {topo.epoch + 1}); proxies follow",
            f"  - repoint {', '.join([*others, group.master])} as replicas of {target}",
        ]
        if topo.leader is None:
            lines.append("  no controller leads this cluster: start ledis-failover first")
        else:
            lines.append(f"  carried out by the leading controller ({topo.leader})")
        ctx.out.print("\n".join(lines), highlight=False)
        if args.dry_run:
            return 0
        if topo.leader is None:
            raise CommandError(
                f"no controller leads cluster {topo.cluster!r}: start ledis-failover "
                "(ledis-console up starts one) and try again"
            )
        if not ctx.yes:
            import sys

            if not sys.stdin.isatty():
                raise CommandError("not applied: add --yes to switch over without a terminal")
            if ctx.out.input("switch over? [y/N] ").strip().lower() not in ("y", "yes"):
                return 1
        wf = Workflow(
            group=group.id, old=group.master, new=target, step=REQUESTED,
            epoch=topo.epoch + 1, planned=True,
            reason="switchover asked for from ledis-console", started=time.time(),
            owner="console",
        )  # fmt: skip
        revision = store.commit(
            topo,
            [Write(path, wf.to_json())],
            bump_epoch=False,
            guards=[Guard(path, 0)],
            event=EventDraft(
                "console", "failover",
                f"group {group.id}: switchover from {group.master} to {target} asked for",
            ),
        )  # fmt: skip
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
                f"group {group.id}: the switchover is still under way after {WAIT:g} s; "
                "follow it with: ledis-console cluster events --follow"
            )
        print_events(ctx.out, store.events(limit=100, after_revision=last))
        final = store.load().groups[group.id]
        if final.master != target:
            raise CommandError(f"group {group.id}: switchover not done; {final.master} is master")
        ctx.out.print(f"group {group.id}: {target} is the master", highlight=False)
    return 0
