"""``ledis-console cluster migrate | rebalance | pause | resume | cancel | migrations``.

Plans first (the same ``stack.cluster.plans`` the dashboard will use), then, once confirmed,
the tasks are created in etcd and run here by the migration engine
(``stack.cluster.migration``), one after the other, with a live progress bar (keys, bytes,
rate, ETA; on a terminal) or a line every few seconds (otherwise). Ctrl-C stops the runner
and leaves the task as it is: ``migrate --resume`` (here or elsewhere) picks it up from the
slots in flight. When a controller leads, it runs the tasks (``migrate`` returns once they
are created); otherwise a task runs only while a console runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from stack.cluster import plans
from stack.cluster.migration import DEFAULT_RATE, MigrationRunner, RunnerSettings, runner_id
from stack.cluster.migration import Progress as RunProgress
from stack.cluster.model import (
    ACTIVE_TASK_STATES,
    CANCELLED,
    DONE,
    FAILED,
    PAUSED,
    MigrationTask,
    Topology,
    format_ranges,
    parse_slot_ranges,
)
from stack.core.resp_client import RespClient
from stack.core.resp_session import ClientError, Endpoint

from .cluster_admin import CommandError, Context, confirm
from .status_view import human_bytes

PRINT_EVERY = 5.0  # seconds between progress lines when not on a terminal


def _settings(ctx: Context, args: argparse.Namespace) -> RunnerSettings:
    rate = getattr(args, "rate", None)
    rate = DEFAULT_RATE if rate is None else rate
    if rate < 0:
        raise CommandError("--rate is keys a second: 0 or more (0 or max: as fast as it goes)")
    window = getattr(args, "max_window", None) or 64
    if not 1 <= window <= 1024:
        raise CommandError("--max-window is slots in flight: 1 to 1024")
    return RunnerSettings(
        owner=runner_id(),
        password=ctx.settings.password,
        rate=rate,
        batch_keys=getattr(args, "batch_keys", None) or 500,
        max_window=window,
        proxy_wait=getattr(args, "proxy_wait", None) or 30.0,
        node_wait=getattr(args, "node_wait", None) or 60.0,
    )


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds / 3600:.0f}h{seconds % 3600 / 60:02.0f}m"


def describe(p: RunProgress) -> str:
    t = p.task
    slot = f"slot {p.slot}" if p.slot is not None else "-"
    text = (
        f"{t.slots_done}/{t.slots_total} slots, {slot}, {p.keys} keys, {human_bytes(p.nbytes)}, "
        f"{p.rate:.0f} keys/s, ETA {_eta(p.eta_s)}"
    )
    return f"{text} ({p.note})" if p.note else text


class ProgressView:
    """A live bar on a terminal, a line every few seconds otherwise."""

    def __init__(self, ctx: Context, task: MigrationTask) -> None:
        self.ctx = ctx
        self.task = task
        self.live = ctx.out.is_terminal
        self.bar: Progress | None = None
        self.id: TaskID | None = None
        self._printed = 0.0

    def __enter__(self) -> ProgressView:
        if self.live:
            self.bar = Progress(
                TextColumn(f"[bold]{self.task.id}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.ctx.out,
                transient=False,
            )
            self.bar.__enter__()
            self.id = self.bar.add_task(
                "migrate", total=self.task.slots_total, completed=self.task.slots_done, detail=""
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def update(self, p: RunProgress) -> None:
        fraction = p.slot_keys / (p.slot_keys + p.slot_remaining) if p.slot_remaining else 0.0
        if self.bar is not None and self.id is not None:
            detail = (
                f"{p.keys} keys  {human_bytes(p.nbytes)}  {p.rate:.0f} keys/s  "
                f"ETA {_eta(p.eta_s)}" + (f"  [yellow]{p.note}[/]" if p.note else "")
            )
            self.bar.update(self.id, completed=p.task.slots_done + fraction, detail=detail)
            return
        now = time.monotonic()
        if now - self._printed >= PRINT_EVERY:
            self._printed = now
            self.ctx.out.print(f"migration {p.task.id}: {describe(p)}", highlight=False)


def run_task(ctx: Context, task_id: str, settings: RunnerSettings) -> MigrationTask:
    """Run one task here, showing progress; Ctrl-C leaves it resumable."""
    with ctx.store() as store:
        task = store.load().migrations.get(task_id)
        if task is None:
            raise CommandError(f"there is no migration {task_id!r}")
        view = ProgressView(ctx, task)
        runner = MigrationRunner(store, settings, view.update)

        async def go() -> MigrationTask:
            return await runner.run(task_id)

        with view:
            try:
                final = asyncio.run(go())
            except KeyboardInterrupt:
                ctx.err.print(
                    f"stopped; migration {task_id} stays as it is: "
                    f"ledis-console cluster migrate --resume {task_id} goes on with it",
                    highlight=False,
                )
                raise
        return final


def _recap(ctx: Context, task: MigrationTask) -> int:
    words = (
        f"migration {task.id}: {task.state}, {task.slots_done}/{task.slots_total} slots "
        f"({format_ranges(task.slots)}) from group {task.source} to group {task.target}, "
        f"{task.keys_moved} keys, {human_bytes(task.bytes_moved)}"
    )
    if task.state == FAILED:
        ctx.err.print(f"{words}: {task.error}", highlight=False)
        ctx.err.print(
            f"ledis-console cluster resume {task.id} sets it going again", highlight=False
        )
        return 1
    ctx.out.print(words, highlight=False)
    if task.state == PAUSED:
        ctx.out.print(f"ledis-console cluster resume {task.id} goes on with it", highlight=False)
    elif task.state not in (DONE, CANCELLED):
        ctx.out.print(f"ledis-console cluster migrate --resume {task.id} goes on", highlight=False)
    return 0


def _run_all(ctx: Context, args: argparse.Namespace, tasks: list[str]) -> int:
    with ctx.store() as store:
        leader = store.load().leader
    if getattr(args, "no_run", False):
        who = (
            f"the controller {leader} runs them"
            if leader is not None
            else "ledis-console cluster migrate --resume runs them"
        )
        ctx.out.print(f"tasks created; {who}", highlight=False)
        return 0
    if leader is not None:  # the leading ledis-failover hosts migrations (docs/failover.md)
        ctx.out.print(
            f"the controller {leader} runs {', '.join(tasks)}; "
            "ledis-console cluster migrations shows the progress",
            highlight=False,
        )
        return 0
    settings = _settings(ctx, args)
    code = 0
    for task_id in tasks:
        final = run_task(ctx, task_id, settings)
        code = max(code, _recap(ctx, final))
        if final.state != DONE:
            break  # paused, cancelled or failed: the later tasks wait for a person
    return code


def _decide(ctx: Context, make: Callable[[Topology], plans.Plan]) -> plans.Applied | None:
    """Preview, confirm, apply, recap: the plan as applied, or None when not confirmed."""
    with ctx.store() as store:
        plan = make(store.load())
        if not confirm(ctx, plan):
            return None
        applied = plans.apply_fresh(store, make, expect=plan)
        ctx.out.print(applied.plan.recap(), highlight=False)
        return applied


def _plan_and_run(
    ctx: Context, args: argparse.Namespace, make: Callable[[Topology], plans.Plan]
) -> int:
    applied = _decide(ctx, make)
    return 0 if applied is None else _run_all(ctx, args, [t.id for t in applied.plan.tasks])


# -- commands ------------------------------------------------------------------------------


def cmd_migrate(ctx: Context, args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.slots or args.to is not None:
            raise CommandError("--resume takes no --slots or --to")
        with ctx.store() as store:
            t = store.load()
        task_id = args.resume or _next_task(t)
        return _run_all(ctx, args, [task_id])
    if not args.slots or args.to is None:
        raise CommandError("give --slots RANGES --to GROUP (or --resume [TASK])")
    try:
        ranges = parse_slot_ranges(args.slots)
    except ValueError as e:
        raise CommandError(str(e)) from None
    return _plan_and_run(ctx, args, lambda t: plans.plan_migrate(t, ranges, args.to))


def _next_task(t: Topology) -> str:
    runnable = [m for m in t.migrations.values() if m.active and m.state != PAUSED]
    if not runnable:
        paused = [m.id for m in t.migrations.values() if m.state == PAUSED]
        extra = f" (paused: {', '.join(paused)}; resume TASK sets one going)" if paused else ""
        raise CommandError(f"there is no migration to resume{extra}")
    return min(runnable, key=lambda m: (m.created, m.id)).id


async def _keys_per_slot(t: Topology, password: str | None, timeout: float) -> dict[int, int]:
    """SLOTSINFO of every master (database 0): the keys each slot holds."""

    async def one(addr: str) -> list[object]:
        host, _, port = addr.rpartition(":")
        client = RespClient(
            Endpoint(host=host.strip("[]"), port=int(port), password=password,
                     client_name="ledis-console"),
            connect_timeout=timeout, request_timeout=max(timeout, 60.0), backoff=None,
        )  # fmt: skip
        try:
            reply = await client.execute("SLOTSINFO", "0", "16384")
            return reply if isinstance(reply, list) else []
        except (ClientError, OSError) as e:
            raise CommandError(f"{addr}: SLOTSINFO failed: {e}") from None
        finally:
            await client.close()

    counts: dict[int, int] = {}
    for reply in await asyncio.gather(*(one(g.master) for g in t.groups.values())):
        for item in reply:
            if isinstance(item, list) and len(item) == 2:
                slot, n = int(item[0]), int(item[1])  # type: ignore[call-overload]
                counts[slot] = counts.get(slot, 0) + n
    return counts


def cmd_rebalance(ctx: Context, args: argparse.Namespace) -> int:
    if args.by == "slots":
        return _plan_and_run(ctx, args, plans.plan_rebalance_slots)
    with ctx.store() as store:
        t = store.load()
    s = ctx.settings
    counts = asyncio.run(_keys_per_slot(t, s.password, s.timeout))
    return _plan_and_run(ctx, args, lambda t: plans.plan_rebalance_keys(t, counts))


def cmd_task(ctx: Context, args: argparse.Namespace) -> int:
    """pause | resume | cancel TASK (resume then runs it here unless --no-run)."""
    action = args.action

    def make(t: Topology) -> plans.Plan:
        return plans.plan_task(t, args.task, action)

    if _decide(ctx, make) is not None and action == "resume":
        return _run_all(ctx, args, [args.task])
    return 0


def cmd_migrations(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        t = store.load()
    tasks = sorted(t.migrations.values(), key=lambda m: (m.created, m.id))
    if not args.all:
        tasks = [m for m in tasks if m.state in ACTIVE_TASK_STATES or m.state == FAILED] or tasks[
            -10:
        ]
    if not tasks:
        ctx.out.print("no migrations", highlight=False)
        return 0
    table = Table(box=None, pad_edge=False)
    for col in (
        "id",
        "slots",
        "from",
        "to",
        "state",
        "done",
        "keys",
        "bytes",
        "rate",
        "eta",
        "owner",
    ):
        table.add_column(
            col, justify="right" if col in ("done", "keys", "bytes", "rate", "eta") else "left"
        )
    for m in tasks:
        table.add_row(
            m.id, format_ranges(m.slots), str(m.source), str(m.target),
            m.state + (f" ({m.error})" if m.error else ""),
            f"{m.slots_done}/{m.slots_total}", str(m.keys_moved), human_bytes(m.bytes_moved),
            f"{m.rate_keys:.0f}/s", _eta(m.eta_s) if m.active else "", m.owner or "",
        )  # fmt: skip
    ctx.out.print(table)
    return 0
