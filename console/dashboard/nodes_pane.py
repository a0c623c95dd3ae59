"""The nodes tab: every server and proxy with ops/s (and its sparkline), latency percentiles
p50/p99/p99.9 (a server's from INFO latencystats, percentiles.py; a proxy's its own) with a
sparkline of p99, clients, disk, version and uptime. Enter opens a node's detail."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from .history import History
from .overview import node_state
from .row_table import Cell, Row, RowTable
from .sample import ClusterSample
from .style import DIM, group_colour, state
from .units import human_bytes, human_count, human_duration, human_latencies, sparkline

SPARK_WIDTH = 9


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
            sparkline(history.get(f"ops:{addr}", SPARK_WIDTH), SPARK_WIDTH),
            human_latencies((n.p50_us, n.p99_us, n.p999_us)) if n and live else "-",
            sparkline(history.get(f"p99:{addr}", SPARK_WIDTH), SPARK_WIDTH),
            str(n.clients) if n and live else "-",
            human_bytes(n.disk_bytes) if n else "-",
            n.version if n else "-",
            human_duration(n.uptime_s) if n and live else "-",
        ]
        rows.append((addr, cells))
    for p in sorted(topo.proxies.values(), key=lambda p: p.id):
        s = sample.proxies.get(p.addr)
        live = s is not None and not s.stale
        lat = human_latencies((s.p50_us, s.p99_us, s.p999_us)) if s and live else "-"
        rows.append(
            (
                p.addr,
                [
                    p.addr,
                    Text(f"proxy {p.id}", DIM),
                    state("ok", "ok") if live else state("stale", "bad"),
                    human_count(s.ops_per_sec) if s and live else "-",
                    sparkline(history.get(f"ops:{p.addr}", SPARK_WIDTH), SPARK_WIDTH),
                    lat,
                    sparkline(history.get(f"p99:{p.addr}", SPARK_WIDTH), SPARK_WIDTH),
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
        yield RowTable(
            "node",
            "role",
            "state",
            "ops/s",
            "ops trend",
            "p50/p99/p99.9",
            "p99 trend",
            "clients",
            "disk",
            "version",
            "uptime",
            id="nodes",
        )

    def show(self, sample: ClusterSample, history: History) -> None:
        self.query_one("#nodes", RowTable).set_rows(node_rows(sample, history))
