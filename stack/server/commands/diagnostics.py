"""Diagnostics: MONITOR, MEMORY, LATENCY and DEBUG."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL, OK, Double, Map, Raw, ReplyError, Status, Verbatim

from .. import latency as lat
from .. import memory as mem
from ..persistence import digest
from ..storage import keyformat as kf
from ..storage.footprint import key_bytes
from ..storage.strings import string_encoding
from . import handler, help_lines
from .args import select_db, syntax_error, to_int

if TYPE_CHECKING:
    from ..client import Client

NO_REPLY = Raw(b"")
USAGE_SAMPLES = 5  # MEMORY USAGE's default, as Redis's


# --- MONITOR ---------------------------------------------------------------------------------


@handler("monitor")
def monitor(c: Client, args: list[bytes]) -> object:
    if not c.server.observers.monitors.start(c):
        return NO_REPLY  # already monitoring: Redis answers nothing
    return OK


# --- MEMORY ----------------------------------------------------------------------------------


@handler("memory|usage")
def memory_usage(c: Client, args: list[bytes]) -> object:
    samples = USAGE_SAMPLES
    i = 3
    while i < len(args):
        if args[i].upper() == b"SAMPLES" and i + 1 < len(args):
            samples = to_int(args[i + 1])
            if samples < 0:
                raise syntax_error()
            i += 2
        else:
            raise syntax_error()
    mkey, record = c.db.read(args[2])
    if record is None:
        return NIL
    return key_bytes(c.server.engine, mkey, record, samples)


def memory_figures(c: Client) -> dict[str, object]:
    """MEMORY STATS, in Redis 7.0's fields and order (what does not exist here is 0), then
    ledis's own: the process's memory, the store's size on disk, the read cache."""
    server = c.server
    used = mem.anonymous_rss()
    rss = mem.rss()
    peak = max(mem.peak_rss(), used)
    startup = server.memory.startup
    by_kind = {"normal": 0, "replica": 0, "pubsub": 0}
    for x in server.clients.values():
        by_kind[x.kind] += x.query_bytes() + x.output_bytes()
    clients = by_kind["normal"] + by_kind["pubsub"]
    overhead = startup + by_kind["replica"] + clients
    dataset = max(0, used - overhead)
    keys = sum(db.size() for db in server.keyspace.dbs)
    out: dict[str, object] = {
        "peak.allocated": peak,
        "total.allocated": used,
        "startup.allocated": startup,
        "replication.backlog": 0,  # the binlog is on disk
        "clients.slaves": by_kind["replica"],
        "clients.normal": clients,
        "cluster.links": 0,
        "aof.buffer": 0,
        "lua.caches": 0,
        "functions.caches": 0,
    }
    for db in server.keyspace.dbs:
        if db.size():
            out[f"db.{db.index}"] = Map(
                [b"overhead.hashtable.main", 0, b"overhead.hashtable.expires", 0]
            )
    out.update(
        {
            "overhead.total": overhead,
            "keys.count": keys,
            "keys.bytes-per-key": dataset // keys if keys else 0,
            "dataset.bytes": dataset,
            "dataset.percentage": Double(100 * dataset / max(1, used - startup)),
            "peak.percentage": Double(100 * used / max(1, peak)),
            "allocator.allocated": used,
            "allocator.active": used,
            "allocator.resident": rss,
            "allocator-fragmentation.ratio": Double(1.0),
            "allocator-fragmentation.bytes": 0,
            "allocator-rss.ratio": Double(rss / max(1, used)),
            "allocator-rss.bytes": rss - used,
            "rss-overhead.ratio": Double(1.0),
            "rss-overhead.bytes": 0,
            "fragmentation": Double(rss / max(1, used)),
            "fragmentation.bytes": rss - used,
            "ledis.disk.bytes": server.engine.approximate_size(b"\x00", b"\xff"),
            "ledis.read-cache.records": server.engine.cached_records(),
            "ledis.client-buffers.peak": server.memory.buffers_peak,
            "ledis.trims": server.memory.trims,
            "ledis.trimmed.bytes": server.memory.released,
        }
    )
    return out


@handler("memory|stats")
def memory_stats(c: Client, args: list[bytes]) -> object:
    out = Map()
    for name, value in memory_figures(c).items():
        out += [name.encode(), value]
    return out


@handler("memory|doctor")
def memory_doctor(c: Client, args: list[bytes]) -> object:
    return Verbatim(memory_report(c).encode())


def memory_report(c: Client) -> str:
    """MEMORY DOCTOR: what stands out in the process's memory, in plain words."""
    figures = memory_figures(c)
    used = int(figures["total.allocated"])  # type: ignore[call-overload]
    peak = int(figures["peak.allocated"])  # type: ignore[call-overload]
    startup = int(figures["startup.allocated"])  # type: ignore[call-overload]
    server = c.server
    if used < 5 * 1024 * 1024 + startup and not figures["keys.count"]:
        return (
            "This ledis-server holds almost nothing yet (no keys, little memory beyond what it "
            "started with): nothing to diagnose.\n"
        )
    notes = []
    if peak > 2 * used and peak - used > 64 * 1024 * 1024:
        notes.append(
            f"* Peak memory: the process once used {_mb(peak)}, twice what it uses now "
            f"({_mb(used)}); a burst (big pipelines or replies) passed. Freed memory is "
            f"given back to the system after bursts (INFO memory ledis_memory_trims: "
            f"{server.memory.trims}); MEMORY PURGE does it now."
        )
    buffers = sum(x.query_bytes() + x.output_bytes() for x in server.clients.values())
    if buffers > 32 * 1024 * 1024:
        big = max(server.clients.values(), key=lambda x: x.query_bytes() + x.output_bytes())
        notes.append(
            f"* Client buffers hold {_mb(buffers)}; the biggest is client id={big.id} "
            f"({big.addr}). A client that sends much more than it reads, or reads slowly, "
            "keeps memory here: see CLIENT LIST (qbuf, omem) and client-output-buffer-limit."
        )
    cached = server.engine.cached_records()
    if cached and used > 256 * 1024 * 1024:
        notes.append(
            f"* The read cache keeps {cached} small records in memory "
            f"(read-cache-entries {server.config['read-cache-entries']}); lowering it trades "
            "memory for reads from LevelDB."
        )
    if not notes:
        return (
            f"Memory looks healthy: the process uses {_mb(used)} (peak {_mb(peak)}), the data "
            "itself lives in LevelDB on disk. Nothing to report.\n"
        )
    return "A few things stand out in this ledis-server's memory:\n\n" + "\n\n".join(notes) + "\n"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.2f}M"


@handler("memory|malloc-stats")
def memory_malloc_stats(c: Client, args: list[bytes]) -> object:
    return Verbatim(mem.allocator_stats().encode())


@handler("memory|purge")
def memory_purge(c: Client, args: list[bytes]) -> object:
    c.server.memory.trim()  # glibc's malloc_trim (memory.py); blocks as Redis's purge does
    return OK


@handler("memory|help")
def memory_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "MEMORY",
        [
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    )


# --- LATENCY ---------------------------------------------------------------------------------


@handler("latency|latest")
def latency_latest(c: Client, args: list[bytes]) -> object:
    return c.server.latency.latest()


@handler("latency|history")
def latency_history(c: Client, args: list[bytes]) -> object:
    return c.server.latency.history(args[2].decode("latin-1"))


@handler("latency|reset")
def latency_reset(c: Client, args: list[bytes]) -> object:
    return c.server.latency.reset([a.decode("latin-1") for a in args[2:]])


@handler("latency|graph")
def latency_graph(c: Client, args: list[bytes]) -> object:
    event = args[2].decode("latin-1")
    graph = c.server.latency.graph(event)
    if graph is None:
        raise ReplyError(f"ERR No samples available for event '{errors.echo(args[2])}'")
    return Verbatim(graph.encode())


@handler("latency|doctor")
def latency_doctor(c: Client, args: list[bytes]) -> object:
    return Verbatim(c.server.latency.doctor(c.server).encode())


@handler("latency|histogram")
def latency_histogram(c: Client, args: list[bytes]) -> object:
    """Each command's calls by duration: {name: {calls, histogram_usec: {µs: calls up to}}}
    for the named commands (a container names all its subcommands) or every command."""
    dispatcher = c.server.dispatcher
    if len(args) == 2:
        entries = dispatcher.all_entries
    else:
        entries = []
        for raw in args[2:]:
            entry = dispatcher.named(raw)
            if entry is None:
                continue
            entries.append(entry)
            entries += entry.subs.values()
    out = Map()
    for entry in entries:
        if lat.tracked(entry.histogram):
            buckets = Map()
            for bound, count in lat.cumulative(entry.histogram):
                buckets += [bound, count]
            out += [
                entry.name.encode(),
                Map([b"calls", sum(entry.histogram), b"histogram_usec", buckets]),
            ]
    return out


@handler("latency|help")
def latency_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "LATENCY",
        [
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for "
            "the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    )


# --- DEBUG -----------------------------------------------------------------------------------
# (who may run DEBUG at all is decided before dispatch: protection.PROTECTED_COMMANDS)

_LEADING_NUMBER = re.compile(rb"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _atof(raw: bytes) -> float:
    """C's strtod as DEBUG uses it: the number at the start, 0 when there is none."""
    m = _LEADING_NUMBER.match(raw)
    return float(m.group(0)) if m else 0.0


def _atoi(raw: bytes) -> int:
    m = re.match(rb"\s*[-+]?\d+", raw)
    return int(m.group(0)) if m else 0


@handler("debug")
def debug(c: Client, args: list[bytes]) -> object:
    sub = args[1].lower()
    n = len(args)
    if sub == b"sleep" and n == 3:
        time.sleep(max(0.0, _atof(args[2])))  # blocks the whole server, exactly like Redis
        return OK
    if sub == b"error" and n == 3:
        return Raw(b"-" + args[2].replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n")
    if sub == b"set-active-expire" and n == 3:
        c.server.active_expire = _atoi(args[2]) != 0
        return OK
    if sub == b"object" and n == 3:
        return _debug_object(c, args[2])
    if sub == b"digest":
        return debug_digest(c, args)
    if (sub == b"reload" or sub == b"flush-fsync") and n == 2:
        c.server.engine.sync()
        return OK
    if sub == b"help" and n == 2:
        return help_lines(
            "DEBUG",
            [
                "DIGEST [DB <index>|SLOT <slot>]",
                "    Output a hex signature representing the data (all, one database, one slot).",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message. Useful for clients",
                "    unit tests to simulate Redis errors.",
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "RELOAD",
                "    Flush and fsync the data store.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        )
    raise errors.subcommand_syntax(args)  # DEBUG is one command in Redis, not a container


def _debug_object(c: Client, key: bytes) -> object:
    rec = c.db.read(key)[1]
    if rec is None:
        raise ReplyError(errors.NO_SUCH_KEY)
    if kf.raw_type(rec) == kf.TYPE_STRING:
        value = kf.body(rec)
        encoding, length = string_encoding(value), len(value)
    else:  # a collection or a chunked string: the size its record keeps
        encoding, length = "raw", kf.U64.unpack_from(kf.body(rec), 8)[0]
    return Status(
        f"Value at:0x0 refcount:1 encoding:{encoding} "
        f"serializedlength:{length} lru:0 lru_seconds_idle:0"
    )


def debug_digest(c: Client, args: list[bytes]) -> object:
    """DEBUG DIGEST [DB n] [SLOT s]: SHA-1 of the data (equal on identical replicas)."""
    start, stop = b"", b"\xff"
    if len(args) == 4 and args[2].upper() == b"DB":
        prefix = select_db(c, args[3]).prefix
        start, stop = prefix, kf.prefix_end(prefix)
    elif len(args) == 4 and args[2].upper() == b"SLOT":
        slot = to_int(args[3])
        if not 0 <= slot < 16384:
            raise ReplyError("ERR Invalid slot")
        prefix = c.db.prefix + kf.SLOT_BYTES[slot]
        start, stop = prefix, kf.prefix_end(prefix)
    elif len(args) != 2:
        raise syntax_error()
    return Status(digest(c.server, start, stop))
