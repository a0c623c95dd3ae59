"""The proxy's INFO: Redis's text format, with a ``# Proxy`` section of its own.

Sections: ``server``, ``clients``, ``stats``, ``proxy`` (the slot map's epoch, etcd's state,
latency percentiles, each backend with its health), ``commandstats``. ``INFO`` and ``INFO
default`` give all but commandstats, ``INFO all`` / ``INFO everything`` all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack import REDIS_VERSION, __version__

if TYPE_CHECKING:
    from .server import ProxyServer

Section = Callable[["ProxyServer"], list[tuple[str, object]]]


def server_section(p: ProxyServer) -> list[tuple[str, object]]:
    uptime = int(time.monotonic() - p.started_mono)
    return [
        ("redis_version", REDIS_VERSION),
        ("ledis_version", __version__),
        ("redis_mode", "proxy"),
        ("process_id", os.getpid()),
        ("proxy_id", p.proxy_id),
        ("tcp_port", p.port),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("cluster_name", p.config.cluster),
        ("etcd", ",".join(p.config.etcd)),
    ]


def clients_section(p: ProxyServer) -> list[tuple[str, object]]:
    clients = list(p.clients.values())
    return [
        ("connected_clients", len(clients)),
        ("maxclients", p.config.maxclients),
        ("blocked_clients", sum(1 for c in clients if c.stall == 2)),
        ("pubsub_clients", sum(1 for c in clients if c.sub is not None)),
        ("watching_clients", sum(1 for c in clients if c.pinned is not None)),
    ]


def stats_section(p: ProxyServer) -> list[tuple[str, object]]:
    s = p.stats
    return [
        ("total_connections_received", s.connections),
        ("total_commands_processed", s.total),
        ("instantaneous_ops_per_sec", s.ops_per_sec),
        ("total_net_input_bytes", sum(c.net_in for c in p.clients.values())),
        ("total_net_output_bytes", sum(c.net_out for c in p.clients.values())),
        ("rejected_connections", s.rejected),
        ("total_error_replies", s.errors),
    ]


def proxy_section(p: ProxyServer) -> list[tuple[str, object]]:
    s = p.stats
    recent = s.recent()
    life = s.lifetime()
    routes = p.routes
    commands = sorted(s.commands.items(), key=lambda kv: (-kv[1], kv[0]))
    rows: list[tuple[str, object]] = [
        ("instantaneous_ops_per_sec", s.ops_per_sec),
        ("connected_clients", len(p.clients)),
        ("commands", ",".join(f"{name}={calls}" for name, calls in commands)),
        ("slot_map_epoch", routes.epoch),
        ("topology_revision", routes.revision),
        ("etcd_state", "ok" if p.etcd_ok else "unreachable"),
        ("groups", len(routes.groups)),
        ("redirects", s.redirects),
        ("migrated_keys", s.migrated_keys),
        ("latency_p50_us", recent.percentile(50)),
        ("latency_p99_us", recent.percentile(99)),
        ("latency_p999_us", recent.percentile(99.9)),
        ("latency_samples", recent.total),
        ("latency_life_p50_us", life.percentile(50)),
        ("latency_life_p99_us", life.percentile(99)),
    ]
    for i, backend in enumerate(sorted(p.backends.values(), key=lambda b: b.addr)):
        group = next((g for g, b in routes.group_backends() if b is backend), "")
        rows.append(
            (
                f"backend{i}",
                f"addr={backend.addr},group={group},state={'up' if backend.up else 'down'},"
                f"in_flight={backend.in_flight()},dedicated={backend.dedicated},"
                f"requests={backend.requests},"
                f"last_error={'' if backend.up else backend.last_error.replace(',', ';')}",
            )
        )
    return rows


def commandstats_section(p: ProxyServer) -> list[tuple[str, object]]:
    return [
        (f"cmdstat_{name}", f"calls={calls}")
        for name, calls in sorted(p.stats.commands.items())
        if calls
    ]


SECTIONS: dict[str, Section] = {
    "server": server_section,
    "clients": clients_section,
    "stats": stats_section,
    "proxy": proxy_section,
    "commandstats": commandstats_section,
}
DEFAULT = ("server", "clients", "stats", "proxy")


def info_text(p: ProxyServer, args: list[bytes]) -> str:
    wanted = [a.decode("utf-8", "replace").lower() for a in args]
    if not wanted or "default" in wanted:
        names = list(DEFAULT)
    elif "all" in wanted or "everything" in wanted:
        names = list(SECTIONS)
    else:
        names = [n for n in SECTIONS if n in wanted]
    parts = []
    for name in names:
        lines = [f"# {name.capitalize() if name != 'commandstats' else 'Commandstats'}"]
        lines += [f"{k}:{v}" for k, v in SECTIONS[name](p)]
        parts.append("\r\n".join(lines))
    return "\r\n\r\n".join(parts) + "\r\n" if parts else ""
