"""INFO: sections in Redis's text format, so tools that parse Redis's INFO parse ours."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack import REDIS_VERSION, __version__

from . import latency, memory
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .server import Server

Section = Callable[["Server"], list[tuple[str, object]]]


def _human(n: int) -> str:
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


def server_section(s: Server) -> list[tuple[str, object]]:
    uptime = int(time.monotonic() - s.started_mono)
    uname = platform.uname()
    return [
        ("redis_version", REDIS_VERSION),
        ("ledis_version", __version__),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"),
        ("python_version", platform.python_version()),
        ("process_id", s.pid),
        ("run_id", s.run_id),
        ("tcp_port", s.port),
        ("server_time_usec", int(time.time() * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", s.config["hz"]),
        ("configured_hz", s.config["hz"]),
        ("executable", os.path.abspath(sys.argv[0])),
        ("config_file", str(s.config.path.resolve()) if s.config.path else ""),
        ("storage_engine", "leveldb"),
        ("storage_format_version", kf.FORMAT_VERSION),
        ("cluster_enabled", 0),
    ]


def clients_section(s: Server) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(s.clients)),
        ("cluster_connections", 0),
        ("maxclients", s.config["maxclients"]),
        (
            "client_recent_max_input_buffer",
            max((c.query_bytes() for c in s.clients.values()), default=0),
        ),
        (
            "client_recent_max_output_buffer",
            max((c.output_bytes() for c in s.clients.values()), default=0),
        ),
        ("blocked_clients", sum(1 for c in s.clients.values() if c.blocked is not None)),
        ("tracking_clients", s.observers.tracking.clients),
        ("clients_in_timeout_table", 0),
        ("paused_clients", len(s._held)),
    ]


def memory_section(s: Server) -> list[tuple[str, object]]:
    rss = memory.rss()
    used = memory.anonymous_rss()
    peak = memory.peak_rss()
    disk = s.engine.disk_bytes()
    by_kind = {"normal": 0, "replica": 0, "pubsub": 0}
    query = output = 0
    for c in s.clients.values():
        q, o = c.query_bytes(), c.output_bytes()
        query += q
        output += o
        by_kind[c.kind] += q + o
    mem = s.memory
    return [
        ("used_memory", used),  # the process's own memory, not mapped files
        ("used_memory_human", _human(used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", _human(peak)),
        ("mem_clients_slaves", by_kind["replica"]),
        ("mem_clients_normal", by_kind["normal"] + by_kind["pubsub"]),
        ("ledis_query_buffers", query),
        ("ledis_query_buffers_peak", max(mem.query_peak, query)),
        ("ledis_output_buffers", output),
        ("ledis_client_buffers_peak", max(mem.buffers_peak, query + output)),
        ("ledis_memory_trims", mem.trims),
        ("ledis_memory_trimmed_bytes", mem.released),
        ("maxmemory", 0),
        ("maxmemory_human", "0B"),
        ("maxmemory_policy", "noeviction"),
        ("mem_allocator", "libc"),
        ("ledis_disk_bytes", disk),
        ("ledis_store_memory", s.engine.store_memory()),  # LevelDB's block cache and memtables
        ("ledis_read_cache_records", s.engine.cached_records()),
        ("ledis_read_cache_misses", s.engine.cache_misses),
        ("ledis_lrange_windows", len(s.engine.ranges.entries)),  # storage/rangecache.py
        ("ledis_lrange_windows_bytes", s.engine.ranges.size),
        ("ledis_disk_human", _human(disk)),
    ]


def persistence_section(s: Server) -> list[tuple[str, object]]:
    eng = s.engine
    dropped, stale = s.keyspace.reclaim_pending()
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", 0),
        ("rdb_bgsave_in_progress", int(s.backups.in_progress)),
        ("rdb_last_save_time", s.backups.last_time),
        ("rdb_last_bgsave_status", "ok" if s.backups.last_ok else "err"),
        ("ledis_last_backup", str(s.backups.last.path) if s.backups.last else ""),
        ("ledis_last_backup_log_id", s.backups.last.log_id if s.backups.last else 0),
        ("ledis_last_backup_digest", s.backups.last.digest if s.backups.last else ""),
        ("aof_enabled", 0),
        ("aof_rewrite_in_progress", 0),
        ("aof_last_write_status", "err" if eng.last_error else "ok"),
        ("ledis_failed_write_batches", eng.failed_batches),
        ("ledis_last_write_error", eng.last_error),
        ("ledis_appendfsync", eng.fsync),
        ("ledis_unsynced_writes", int(eng.unsynced)),
        ("ledis_last_sync_time", int(eng.last_sync)),
        ("ledis_write_batches", eng.commits),
        ("ledis_threaded_write_batches", eng.threaded_commits),
        ("ledis_batched_records", eng.batched_keys),
        ("ledis_binlog", "on" if eng.binlog else "off"),
        ("ledis_binlog_first_id", eng.first_log_id),
        ("ledis_binlog_last_id", eng.last_log_id),
        ("ledis_binlog_bytes", eng.log_size()),
        ("ledis_reclaim_pending_dbs", dropped),
        ("ledis_reclaim_pending_collections", stale),
        ("ledis_reclaim_pending_bytes", s.keyspace.reclaim_pending_bytes()),
        ("ledis_range_compactions", eng.compactions),  # collections emptied by pops (note_deletes)
    ]


def stats_section(s: Server) -> list[tuple[str, object]]:
    ks = s.keyspace
    net_in, net_out = s.stats.net(s.clients.values())
    return [
        ("total_connections_received", s.stats.connections_received),
        ("total_commands_processed", s.total_commands()),
        ("instantaneous_ops_per_sec", s.stats.ops_per_sec),
        ("total_net_input_bytes", net_in),
        ("total_net_output_bytes", net_out),
        ("rejected_connections", s.stats.rejected_connections),
        ("ledis_output_limit_disconnections", s.output_limit_closed),
        ("expired_keys", ks.expired_keys),
        ("evicted_keys", 0),
        ("keyspace_hits", ks.hits),
        ("keyspace_misses", ks.misses),
        ("pubsub_channels", 0),
        ("pubsub_patterns", 0),
        ("tracking_total_keys", len(s.observers.tracking.table)),
        ("tracking_total_items", s.observers.tracking.items),
        ("tracking_total_prefixes", len(s.observers.tracking.prefixes)),
        ("total_error_replies", s.dispatcher.total_error_replies),
        ("unexpected_error_replies", 0),
    ]


def replication_section(s: Server) -> list[tuple[str, object]]:
    return s.replication.info() + s.gate.fence.info()


def cpu_section(s: Server) -> list[tuple[str, object]]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return [
        ("used_cpu_sys", f"{r.ru_stime:.6f}"),
        ("used_cpu_user", f"{r.ru_utime:.6f}"),
        ("used_cpu_sys_children", "0.000000"),
        ("used_cpu_user_children", "0.000000"),
    ]


def commandstats_section(s: Server) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for e in s.dispatcher.all_entries:
        if e.calls or e.failed or e.rejected:
            per = e.usec / e.calls if e.calls else 0.0
            out.append(
                (
                    f"cmdstat_{e.name}",
                    f"calls={e.calls},usec={e.usec},usec_per_call={per:.2f},"
                    f"rejected_calls={e.rejected},failed_calls={e.failed}",
                )
            )
    return out


def latencystats_section(s: Server) -> list[tuple[str, object]]:
    """Each command's latency percentiles (latency.py: the upper bounds of their buckets)."""
    wanted = [float(p) for p in str(s.config["latency-tracking-info-percentiles"]).split()]
    out: list[tuple[str, object]] = []
    for e in s.dispatcher.all_entries:
        if latency.tracked(e.histogram):
            values = ",".join(
                f"p{_percentile_name(p)}={latency.percentile(e.histogram, p):.3f}" for p in wanted
            )
            out.append((f"latency_percentiles_usec_{e.name}", values))
    return out


def _percentile_name(p: float) -> str:
    return f"{p:f}".rstrip("0").rstrip(".")


def errorstats_section(s: Server) -> list[tuple[str, object]]:
    return [(f"errorstat_{k}", f"count={v}") for k, v in sorted(s.dispatcher.errorstats.items())]


def keyspace_section(s: Server) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for db in s.keyspace.dbs:
        if db.size():
            out.append((f"db{db.index}", f"keys={db.size()},expires={db.expires()},avg_ttl=0"))
    return out


def slots_section(s: Server) -> list[tuple[str, object]]:
    return [*s.slots.info(), *s.migrator.info()]


SECTIONS: dict[str, Section] = {
    "server": server_section,
    "clients": clients_section,
    "memory": memory_section,
    "persistence": persistence_section,
    "stats": stats_section,
    "replication": replication_section,
    "cpu": cpu_section,
    "commandstats": commandstats_section,
    "latencystats": latencystats_section,
    "errorstats": errorstats_section,
    "keyspace": keyspace_section,
    "slots": slots_section,
}
DEFAULT = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "errorstats",
    "keyspace",
)


def render(server: Server, wanted: list[str]) -> bytes:
    names: list[str] = []
    if not wanted or "default" in wanted:
        names += DEFAULT
    if "all" in wanted or "everything" in wanted:
        names += SECTIONS
    names += [w for w in wanted if w in SECTIONS]
    seen: set[str] = set()
    blocks: list[str] = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        title = "Keyspace" if name == "keyspace" else name.capitalize()
        if name == "cpu":
            title = "CPU"
        lines = [f"# {title}"] + [f"{k}:{v}" for k, v in SECTIONS[name](server)]
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks).encode()
