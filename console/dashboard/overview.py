"""The overview tab: the cluster's name, epoch, etcd, totals, and one row per group."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .history import History
from .row_table import Cell, Row, RowTable
from .sample import ClusterSample, NodeSample
from .style import BAD, DIM, OK, WARN, group_colour, state
from .table_sync import sync_static
from .units import human_bytes, human_count


def node_state(n: NodeSample | None, expected: str) -> Text:
    """What a node's role and health look like against what the topology expects."""
    if n is None:
        return state("?", "dim")
    if n.stale:
        return state("stale", "bad")
    if n.role != expected:
        return state(f"says {n.role}", "warn")
    if expected == "replica" and n.link not in (None, "up"):
        return state(f"link {n.link}", "warn")
    if expected == "replica" and n.sync_in_progress:
        return state("syncing", "warn")
    return state(expected, "ok")


def header_text(sample: ClusterSample, interval: float, paused: bool, mode: str) -> Text:
    topo = sample.topology
    t = sample.totals()
    etcd = Text("ok", OK) if sample.etcd_ok else Text("unreachable", BAD)
    out = Text.assemble(
        ("cluster ", "bold"),
        (sample.cluster, "bold"),
        f"  epoch {topo.epoch if topo else '-'}  etcd ",
        etcd,
        f" ({', '.join(sample.etcd)})",
    )
    out.append(
        f"\nkeys {human_count(t['keys'])}  ops/s {human_count(t['ops'])}  "
        f"disk {human_bytes(t['disk'])}  clients {int(t['clients'])}"
    )
    if t["stale"]:
        out.append(f"  {int(t['stale'])} stale", BAD)
    if topo and topo.slots.unassigned():
        out.append(f"  {topo.slots.unassigned()} slots unassigned", WARN)
    tail = "paused" if paused else f"every {interval:g}s"
    out.append(f"\n{mode}, {tail}", DIM)
    if not sample.etcd_ok and sample.etcd_error:
        out.append(f"\n{sample.etcd_error}", BAD)
    return out


def group_rows(sample: ClusterSample) -> list[Row]:
    topo = sample.topology
    if topo is None:
        return []
    counts = topo.slots.counts()
    migrating: dict[int, int] = {}
    for r in topo.slots.migrating():
        if r.group is not None:
            migrating[r.group] = migrating.get(r.group, 0) + r.count
    rows: list[Row] = []
    for gid in sorted(topo.groups):
        g = topo.groups[gid]
        m = sample.nodes.get(g.master)
        reps = Text(", ").join(
            Text.assemble(r, " ", node_state(sample.nodes.get(r), "replica")) for r in g.replicas
        ) or Text("-", DIM)
        lag_ids = max((x.lag_logids for x in m.replicas), default=0) if m else 0
        lag_ms = max((x.lag_ms for x in m.replicas), default=0) if m else 0
        cells: list[Cell] = [
            Text(str(gid), group_colour(gid)),
            Text.assemble(g.master, " ", node_state(m, "master")),
            reps,
            str(counts.get(gid, 0)) + (f" ({migrating[gid]} moving)" if gid in migrating else ""),
            human_count(m.keys) if m else "-",
            human_count(m.ops_per_sec) if m and not m.stale else "-",
            f"{lag_ids} / {lag_ms}ms" if g.replicas and m and not m.stale else "-",
        ]
        rows.append((str(gid), cells))
    return rows


def proxy_rows(sample: ClusterSample) -> list[Row]:
    topo = sample.topology
    if topo is None:
        return []
    rows: list[Row] = []
    for p in sorted(topo.proxies.values(), key=lambda p: p.id):
        s = sample.proxies.get(p.addr)
        st = (
            state("stale", "bad")
            if s is None or s.stale
            else state("ok", "ok")
            if p.epoch_seen >= topo.slots.epoch
            else state(f"epoch {p.epoch_seen}", "warn")
        )
        rows.append(
            (
                p.addr,
                [
                    p.id,
                    p.addr,
                    st,
                    human_count(s.ops_per_sec) if s and not s.stale else "-",
                    str(s.clients) if s and not s.stale else "-",
                ],
            )
        )
    return rows


class OverviewPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="overview-head")
        yield RowTable(
            "group", "master", "replicas", "slots", "keys", "ops/s", "max lag ids/ms", id="groups"
        )
        yield RowTable(
            "proxy", "addr", "state", "ops/s", "clients", id="proxies", zebra_stripes=False
        )

    def show(
        self, sample: ClusterSample, history: History, interval: float, paused: bool, mode: str
    ) -> None:
        sync_static(
            self.query_one("#overview-head", Static), header_text(sample, interval, paused, mode)
        )
        self.query_one("#groups", RowTable).set_rows(group_rows(sample))
        self.query_one("#proxies", RowTable).set_rows(proxy_rows(sample))
