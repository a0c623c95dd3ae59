"""``ledis-console cluster ...``: the scripted administration commands.

Each mutating command checks what it must on the nodes, computes a plan from one snapshot,
shows the preview, asks (or takes ``--yes``), applies it in one etcd transaction and prints
the recap: the same plans the dashboard will use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console

from stack.cluster import nodes, plans
from stack.cluster.model import Topology, check_addr, parse_slot_ranges
from stack.cluster.nodemap import push_maps
from stack.cluster.store import Store, WatchBatch

from .config import ClusterSettings, ConsoleConfig
from .status_view import print_events, render_status, status_document

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A command that cannot go on; the message is for the user."""


@dataclass
class Context:
    config: ConsoleConfig
    out: Console
    err: Console
    yes: bool = False

    @property
    def settings(self) -> ClusterSettings:
        return self.config.cluster

    def store(self) -> Store:
        s = self.settings
        return Store(s.etcd, s.name, timeout=s.timeout)


def _addr(text: str) -> str:
    try:
        return check_addr(text)
    except ValueError as e:
        raise CommandError(f"{text}: {e}") from None


def confirm(ctx: Context, plan: plans.Plan) -> bool:
    """Show the plan; True to apply it (``--yes``, or the person said yes)."""
    ctx.out.print(plan.preview(), highlight=False)
    if plan.empty:
        return False
    if ctx.yes:
        return True
    return ask(ctx, "apply this plan?", "add --yes to apply a plan without a terminal to ask on")


def ask(ctx: Context, question: str, without_terminal: str) -> bool:
    """A yes/no question on the terminal (no is the default); with no terminal to ask on, a
    CommandError that says ``without_terminal``."""
    if not sys.stdin.isatty():
        raise CommandError(f"not applied: {without_terminal}")
    answer = ctx.out.input(f"{question} [y/N] ", markup=False).strip().lower()
    return answer in ("y", "yes")


def _apply(
    ctx: Context, store: Store, plan: plans.Plan, make: Callable[[Topology], plans.Plan]
) -> None:
    applied = plans.apply_fresh(store, make, expect=plan)
    ctx.out.print(applied.plan.recap(), highlight=False)


def push_slot_maps(ctx: Context, store: Store) -> None:
    """Every master gets the slot map of the epoch now in etcd (after a change of slots)."""
    t = store.load()
    for pushed in asyncio.run(push_maps(t, ctx.settings.password, timeout=ctx.settings.timeout)):
        if pushed.error:
            ctx.err.print(
                f"warning: {pushed.addr} (group {pushed.group}) did not take the slot map of "
                f"epoch {t.epoch}: {pushed.error}",
                highlight=False,
            )


def _probe(ctx: Context, addr: str) -> nodes.NodeState:
    state = asyncio.run(nodes.probe(addr, ctx.settings.password, ctx.settings.timeout))
    if not state.reachable:
        raise CommandError(f"{addr} does not answer: {state.error}")
    return state


# -- commands --------------------------------------------------------------------------------


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        plan = plans.plan_init(store.load())
        plans.apply(store, plan)
        ctx.out.print(plan.recap(), highlight=False)
    return 0


def cmd_add_group(ctx: Context, args: argparse.Namespace) -> int:
    addr = _addr(args.addr)
    state = _probe(ctx, addr)
    if state.role != "master":
        raise CommandError(f"{addr} is not a master ({state.describe()}); REPLICAOF NO ONE first")
    if state.keys and not args.force:
        raise CommandError(
            f"{addr} holds {state.keys} keys; a new group should start empty "
            "(add --force to register it with its keys)"
        )
    with ctx.store() as store:

        def make(t: Topology) -> plans.Plan:
            return plans.plan_add_group(t, addr, args.id)

        plan = make(store.load())
        if confirm(ctx, plan):
            _apply(ctx, store, plan, make)
    return 0


def cmd_add_node(ctx: Context, args: argparse.Namespace) -> int:
    addr = _addr(args.addr)
    with ctx.store() as store:

        def make(t: Topology) -> plans.Plan:
            return plans.plan_add_node(t, args.group, addr)

        plan = make(store.load())  # refuses an unknown group or a known node before anything
        state = _probe(ctx, addr)
        if state.keys and not (state.role == "replica" or args.force):
            raise CommandError(
                f"{addr} holds {state.keys} keys, which replication would replace "
                "(add --force to go on)"
            )
        if not confirm(ctx, plan):
            return 0
        master = plan.base.groups[args.group].master
        with ctx.out.status(f"{addr}: REPLICAOF {master}, waiting for the link"):
            done = asyncio.run(
                nodes.replicate(addr, master, ctx.settings.password, ctx.settings.timeout)
            )
        ctx.out.print(f"{addr} replicates {master} (link {done.link})", highlight=False)
        _apply(ctx, store, plan, make)
    return 0


def cmd_remove_node(ctx: Context, args: argparse.Namespace) -> int:
    addr = _addr(args.addr)
    with ctx.store() as store:

        def make(t: Topology) -> plans.Plan:
            return plans.plan_remove_node(t, addr)

        plan = make(store.load())
        if not confirm(ctx, plan):
            return 0
        was_replica = plan.base.find_node(addr)
        _apply(ctx, store, plan, make)
    if was_replica and was_replica[1] == "replica":
        try:
            asyncio.run(nodes.detach(addr, ctx.settings.password, ctx.settings.timeout))
            ctx.out.print(
                f"{addr}: REPLICAOF NO ONE, SLOTSMAP RESET (it keeps its data)", highlight=False
            )
        except nodes.NodeError as e:
            ctx.err.print(f"warning: {e}; it may still replicate", highlight=False)
    return 0


def cmd_assign(ctx: Context, args: argparse.Namespace) -> int:
    if args.even == bool(args.slots):
        raise CommandError("give either --even or --slots RANGES --group N")
    if args.slots:
        if args.group is None:
            raise CommandError("--slots needs --group N")
        try:
            ranges = parse_slot_ranges(args.slots)
        except ValueError as e:
            raise CommandError(str(e)) from None

        def make(t: Topology) -> plans.Plan:
            return plans.plan_assign(t, ranges, args.group, force=args.force)
    else:

        def make(t: Topology) -> plans.Plan:
            return plans.plan_assign_even(t, force=args.force)

    with ctx.store() as store:
        plan = make(store.load())
        if confirm(ctx, plan):
            _apply(ctx, store, plan, make)
            push_slot_maps(ctx, store)
    return 0


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        topo = store.load()
    if not topo.initialised:
        if args.json:
            ctx.out.print_json(data=status_document(topo, ctx.settings.etcd))
            return 1
        raise CommandError(
            f"there is no cluster {topo.cluster!r} in etcd at {', '.join(ctx.settings.etcd)}: "
            "ledis-console up starts a local one, ledis-console cluster init creates one"
        )
    probe = args.probe if args.probe is not None else not args.json
    states = None
    if probe:
        addrs = [addr for _, addr, _ in topo.nodes()]
        states = asyncio.run(nodes.probe_all(addrs, ctx.settings.password, ctx.settings.timeout))
    if args.json:
        doc = status_document(topo, ctx.settings.etcd, states)
        ctx.out.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        ctx.out.print(render_status(topo, ctx.settings.etcd, states))
    return 0


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        events = store.events(limit=args.n)
        print_events(ctx.out, events)
        if not args.follow:
            return 0
        revision = store.ping()
        wake = threading.Event()

        def on_change(batch: WatchBatch) -> None:
            if any(store.paths.classify(c.path)[0] == "event" and c.value for c in batch.changes):
                wake.set()

        last = max((e.revision for e in events), default=0)
        with store.watching(revision + 1, on_change):
            try:
                while True:
                    if wake.wait(1.0):
                        wake.clear()
                        new = store.events(limit=1000, after_revision=last)
                        print_events(ctx.out, new)
                        last = max((e.revision for e in new), default=last)
            except KeyboardInterrupt:
                return 0
