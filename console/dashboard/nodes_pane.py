"""The nodes tab: every server and proxy with ops/s (and its sparkline), latency, clients,
disk, version and uptime. Enter opens a node's detail."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from .history import History
from .overview import node_state
from .sample import ClusterSample
from .style import DIM, group_colour, state
from .table_sync import Cell, Row, sync_rows
from .units import human_bytes, human_count, human_duration, human_latency, sparkline


def node_rows(sample: ClusterSample, history: History) -> list[Row]:
    topo = sample.topology
    if topo is None:
        return []
    rows: list[Row] = []
    for g, addr, role in topo.nodes():
        n = sample.nodes.get(addr)
        live = n is not None and not n.stale
        cells: list[Cell] = [
            addr,
            Text(f"{role} g{g.id}", group_colour(g.id)),
            node_state(n, role),
            human_count(n.ops_per_sec) if n and live else "-",
            sparkline(history.get(f"ops:{addr}"), 12),
            human_latency(n.latency_us) if n and live else "-",
            str(n.clients) if n and live else "-",
            human_bytes(n.disk_bytes) if n else "-",
            n.version if n else "-",
            human_duration(n.uptime_s) if n and live else "-",
        ]
        rows.append((addr, cells))
    for p in sorted(topo.proxies.values(), key=lambda p: p.id):
        s = sample.proxies.get(p.addr)
        live = s is not None and not s.stale
        lat = f"{human_latency(s.p50_us)}/{human_latency(s.p99_us)}" if s and live else "-"
        rows.append(
            (
                p.addr,
                [
                    p.addr,
                    Text(f"proxy {p.id}", DIM),
                    state("ok", "ok") if live else state("stale", "bad"),
                    human_count(s.ops_per_sec) if s and live else "-",
                    sparkline(history.get(f"ops:{p.addr}"), 12),
                    lat,
                    str(s.clients) if s and live else "-",
                    "-",
                    s.version if s else "-",
                    human_duration(s.uptime_s) if s and live else "-",
                ],
            )
        )
    return rows


class NodesPane(Vertical):
    def compose(self) -> ComposeResult:
        yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#nodes", DataTable).add_columns(
            "node",
            "role",
            "state",
            "ops/s",
            "ops (recent)",
            "latency",
            "clients",
            "disk",
            "version",
            "uptime",
        )

    def show(self, sample: ClusterSample, history: History) -> None:
        sync_rows(self.query_one("#nodes", DataTable), node_rows(sample, history))
