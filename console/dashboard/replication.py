"""The replication tab: per replica its lag in LogIDs and ms (with a sparkline), link state,
syncs and its master's semi-sync (min-replicas-to-write, NOREPLICAS refusals, unacked
writes); below, one line over every master."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .history import History
from .overview import node_state
from .row_table import Cell, Row, RowTable
from .sample import ClusterSample, NodeSample
from .style import BAD, DIM, WARN, group_colour
from .table_sync import sync_static
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
                sparkline(history.get(f"lag_ms:{addr}", 12), 12),
                f"{m.full_syncs}/{m.partial_syncs}" if m else "-",
                *semisync_cells(m),
            ]
            rows.append((addr, cells))
    return rows


def semisync_cells(m: NodeSample | None) -> list[Cell]:
    """The master's semi-sync: min-replicas-to-write (min-repl), writes refused with
    NOREPLICAS (refused), writes applied but not acknowledged in time (unacked)."""
    if m is None or m.stale:
        return [Text("?", DIM)] * 3
    return [
        str(m.min_replicas),
        Text(str(m.refused_writes), BAD if m.refused_writes else ""),
        Text(str(m.unacked_writes), WARN if m.unacked_writes else ""),
    ]


def semisync_text(sample: ClusterSample, most: int = 8) -> Text:
    """One line over every master: how many ask for replicas, the refusals and unacked
    writes in all, and the groups with refusals (the first ``most``)."""
    topo = sample.topology
    out = Text("semi-sync  ", "bold")
    if topo is None:
        return out
    masters = [(gid, sample.nodes.get(topo.groups[gid].master)) for gid in sorted(topo.groups)]
    live = [(gid, m) for gid, m in masters if m is not None and not m.stale]
    refused = sum(m.refused_writes for _, m in live)
    unacked = sum(m.unacked_writes for _, m in live)
    out.append(f"{sum(1 for _, m in live if m.min_replicas)} of {len(masters)} masters "
               "with min-replicas-to-write, NOREPLICAS ")  # fmt: skip
    out.append(str(refused), BAD if refused else "")
    out.append(", unacked ")
    out.append(str(unacked), WARN if unacked else "")
    groups = [gid for gid, m in live if m.refused_writes]
    if groups:
        out.append("  refusing: ")
        for gid in groups[:most]:
            out.append(f"g{gid} ", group_colour(gid))
        if len(groups) > most:
            out.append(f"+{len(groups) - most}", DIM)
    if len(live) < len(masters):
        out.append(f"  ({len(masters) - len(live)} masters not answering)", DIM)
    return out


class ReplicationPane(Vertical):
    def compose(self) -> ComposeResult:
        yield RowTable(
            "group",
            "replica",
            "master",
            "link",
            "lag ids",
            "lag ms",
            "lag trend",
            "syncs f/p",
            "min-repl",
            "refused",
            "unacked",
            id="replicas",
        )
        yield Static(id="semisync")

    def show(self, sample: ClusterSample, history: History) -> None:
        self.query_one("#replicas", RowTable).set_rows(replica_rows(sample, history))
        sync_static(self.query_one("#semisync", Static), semisync_text(sample))
