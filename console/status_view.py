"""The cluster's status for people (rich tables) and for scripts (one JSON document).

The JSON shape is documented in docs/cluster.md ("status --json"); it is
``Topology.to_status()`` plus the etcd endpoints and, when nodes were probed, their state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from stack.cluster.model import Event, Topology, format_ranges
from stack.cluster.nodes import NodeState


def status_document(
    topo: Topology, etcd: Sequence[str], nodes: Mapping[str, NodeState] | None = None
) -> dict[str, Any]:
    doc = topo.to_status()
    doc["etcd"] = list(etcd)
    if nodes is not None:
        doc["nodes"] = {
            addr: {
                "reachable": n.reachable,
                "role": n.role,
                "master": n.master,
                "link": n.link,
                "log_id": n.log_id,
                "keys": n.keys,
                "error": n.error,
            }
            for addr, n in nodes.items()
        }
    return doc


def _node_cell(addr: str, expected: str, nodes: Mapping[str, NodeState] | None) -> Text:
    if nodes is None or addr not in nodes:
        return Text(addr)
    n = nodes[addr]
    if not n.reachable:
        return Text.assemble(addr, " ", ("down", "bold red"))
    if n.role != expected:
        return Text.assemble(addr, " ", (f"says {n.role}", "yellow"))
    if expected == "replica" and n.link != "connected":
        return Text.assemble(addr, " ", (f"link {n.link}", "yellow"))
    return Text.assemble(addr, " ", ("ok", "green"))


def render_status(
    topo: Topology, etcd: Sequence[str], nodes: Mapping[str, NodeState] | None = None
) -> Group:
    counts = topo.slots.counts()
    head = Text.assemble(
        ("cluster ", "bold"),
        (topo.cluster, "bold cyan"),
        f"  epoch {topo.epoch}  etcd {', '.join(etcd)}",
    )
    parts: list[Any] = [head]
    if not topo.groups:
        parts.append(Text("no groups yet: ledis-console cluster add-group HOST:PORT"))
    else:
        groups = Table(title="groups", title_justify="left", expand=False)
        for col in ("id", "master", "replicas", "slots", "ranges", "keys"):
            groups.add_column(col, justify="right" if col in ("id", "slots", "keys") else "left")
        for gid in sorted(topo.groups):
            g = topo.groups[gid]
            ranges = [(r.start, r.end) for r in topo.slots.ranges if r.group == gid]
            keys = nodes.get(g.master) if nodes else None
            replicas = Text(", ").join(_node_cell(r, "replica", nodes) for r in g.replicas)
            groups.add_row(
                str(gid),
                _node_cell(g.master, "master", nodes),
                replicas or Text("-", "dim"),
                str(counts.get(gid, 0)),
                _short(format_ranges(ranges)) or "-",
                str(keys.keys) if keys and keys.keys is not None else "-",
            )
        parts.append(groups)
    unassigned = topo.slots.unassigned()
    if unassigned:
        parts.append(
            Text(
                f"{unassigned} slots unassigned: ledis-console cluster assign --even "
                "(or --slots A-B --group N)",
                "yellow",
            )
        )
    if topo.proxies:
        proxies = Table(title="proxies", title_justify="left")
        for col in ("id", "addr", "pid", "epoch seen"):
            proxies.add_column(col)
        for p in sorted(topo.proxies.values(), key=lambda p: p.id):
            style = "" if p.epoch_seen >= topo.slots.epoch else "yellow"
            proxies.add_row(p.id, p.addr, str(p.pid), Text(str(p.epoch_seen), style))
        parts.append(proxies)
    if topo.migrations:
        tasks = Table(title="migrations", title_justify="left")
        for col in ("id", "slots", "from", "to", "state", "done", "keys", "rate", "eta"):
            tasks.add_column(col)
        for t in sorted(topo.migrations.values(), key=lambda t: (t.created, t.id)):
            tasks.add_row(
                t.id,
                _short(format_ranges(t.slots)),
                str(t.source),
                str(t.target),
                t.state,
                f"{t.percent:.0f}% ({t.slots_done}/{t.slots_total})",
                str(t.keys_moved),
                f"{t.rate_keys:.0f}/s" if t.rate_keys else "-",
                f"{t.eta_s:.0f} s" if t.eta_s is not None else "-",
            )
        parts.append(tasks)
    return Group(*parts)


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KB' (binary units, as the other figures of the console)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_events(out: Console, events: Sequence[Event]) -> None:
    for e in events:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
        out.print(
            Text.assemble((stamp, "dim"), " ", (f"{e.source}/{e.kind}", "cyan"), " ", e.text),
            soft_wrap=True,
        )
