"""The replication tab: per replica its lag in LogIDs and ms (with a sparkline), link state and
syncs; per master its semi-sync setting and NOREPLICAS counts."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from .history import History
from .overview import node_state
from .sample import ClusterSample
from .style import BAD, DIM, WARN, group_colour
from .table_sync import Cell, Row, sync_rows
from .units import sparkline


def replica_rows(sample: ClusterSample, history: History) -> list[Row]:
    topo = sample.topology
    if topo is None:
        return []
    rows: list[Row] = []
    for gid in sorted(topo.groups):
        g = topo.groups[gid]
        m = sample.nodes.get(g.master)
        links = {x.addr: x for x in m.replicas} if m and not m.stale else {}
        for addr in g.replicas:
            n = sample.nodes.get(addr)
            link = links.get(addr)
            cells: list[Cell] = [
                Text(str(gid), group_colour(gid)),
                addr,
                g.master,
                node_state(n, "replica"),
                str(link.lag_logids) if link else Text("-", DIM),
                str(link.lag_ms) if link else Text("-", DIM),
                sparkline(history.get(f"lag_ms:{addr}"), 16),
                f"{m.full_syncs}/{m.partial_syncs}" if m else "-",
            ]
            rows.append((addr, cells))
    return rows


def semisync_text(sample: ClusterSample) -> Text:
    topo = sample.topology
    out = Text("semi-sync  ", "bold")
    if topo is None:
        return out
    for gid in sorted(topo.groups):
        m = sample.nodes.get(topo.groups[gid].master)
        out.append(f"group {gid}: ", group_colour(gid))
        if m is None or m.stale:
            out.append("? ", DIM)
            continue
        out.append(f"min-replicas {m.min_replicas}, NOREPLICAS ")
        out.append(str(m.refused_writes), BAD if m.refused_writes else "")
        out.append(", unacked ")
        out.append(str(m.unacked_writes), WARN if m.unacked_writes else "")
        out.append("   ")
    return out


class ReplicationPane(Vertical):
    def compose(self) -> ComposeResult:
        yield DataTable(id="replicas", cursor_type="row", zebra_stripes=True)
        yield Static(id="semisync")

    def on_mount(self) -> None:
        self.query_one("#replicas", DataTable).add_columns(
            "group",
            "replica",
            "master",
            "link",
            "lag ids",
            "lag ms",
            "lag ms (recent)",
            "syncs full/partial",
        )

    def show(self, sample: ClusterSample, history: History) -> None:
        sync_rows(self.query_one("#replicas", DataTable), replica_rows(sample, history))
        self.query_one("#semisync", Static).update(semisync_text(sample))
