"""ledis-server's settings: one table of parameters drives the flags, the TOML config file,
``CONFIG GET`` / ``CONFIG SET`` / ``CONFIG REWRITE`` and ``--help``.

Precedence: defaults < config file < command-line flags < ``CONFIG SET`` at run time.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stack.core.commands.redaction import SECRET_SETTINGS
from stack.core.errors import PROTECTED_CONFIG

from . import config_rewrite
from .protection import PROTECTED_CHOICES, allowed
from .storage.engine import MAX_FILE_SIZE, WRITE_BUFFER_SIZE


class ConfigError(ValueError):
    """A setting that cannot be used; the message names where it came from and why."""


Value = int | str


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int", "size", "str", "enum", "outbuf", "notify", "percentiles"
    default: Value
    help: str
    mutable: bool = True
    minimum: int = 0
    maximum: int = 2**63 - 1
    choices: tuple[str, ...] = ()
    flag_only: bool = False  # not listed by CONFIG GET (process-level switches)
    protected: bool = False  # chooses paths: CONFIG SET only as enable-protected-configs allows
    clamp: bool = False  # a number out of range is brought within it (Redis's hz) instead
    # A Redis setting whose other values cannot apply here: any value but the default is
    # refused with this reason (maxmemory, save, appendonly ...).
    only_default: str = ""

    @property
    def secret(self) -> bool:
        """A password: never printed (--help, logs); redacted from CONFIG SET in the slow log."""
        return self.name in SECRET_SETTINGS

    def parse(self, raw: object, current: Value | None = None) -> Value:
        """Validate a value from TOML, a flag or CONFIG SET (``current``: the value it
        changes); raise ConfigError(reason)."""
        if self.kind in ("int", "size"):
            if isinstance(raw, bool):
                raise ConfigError("argument couldn't be parsed into an integer")
            if isinstance(raw, int):
                value = raw
            else:
                text = str(raw).strip()
                value = parse_size(text) if self.kind == "size" else _parse_int(text)
            if self.clamp:
                value = min(max(value, self.minimum), self.maximum)
            if not self.minimum <= value <= self.maximum:
                raise ConfigError(
                    f"argument must be between {self.minimum} and {self.maximum} inclusive"
                )
            return self._applies(value)
        if isinstance(raw, bool) and self.choices == ("yes", "no"):
            raw = "yes" if raw else "no"  # a TOML boolean for a yes/no setting
        if isinstance(raw, (int, float, bool)) or not isinstance(raw, str):
            raise ConfigError("argument must be a string")
        if self.kind == "enum":
            low = raw.lower()
            if low not in self.choices:
                if self.choices == ("yes", "no"):
                    raise ConfigError("argument must be 'yes' or 'no'")
                if self.only_default:  # Redis's words for one of its own enums
                    raise ConfigError(
                        f"argument(s) must be one of the following: {', '.join(self.choices)}"
                    )
                raise ConfigError(f"argument must be one of: {', '.join(self.choices)}")
            return self._applies(low)
        if self.kind == "outbuf":  # merged over the current value, or the default
            base = str(self.default if current is None else current)
            return parse_output_limits(raw, parse_output_limits(base)).render()
        if self.kind == "str" and self.name == "replicaof" and raw:
            parts = raw.split()
            if len(parts) != 2 or not parts[1].isdigit() or not 0 < int(parts[1]) < 65536:
                raise ConfigError("expected 'HOST PORT'")
        if self.kind == "percentiles":
            return _percentiles(raw)
        if self.kind == "notify":
            from .notifications import parse_flags

            parse_flags(raw)  # checked; kept as given (its rendering can lose a class)
            return raw
        return self._applies(raw)

    def _applies(self, value: Value) -> Value:
        if self.only_default and value != self.default:
            raise ConfigError(self.only_default)
        return value

    def render(self, value: Value) -> str:
        if self.kind == "notify":  # as Redis prints its flags (KEA -> AKE)
            from .notifications import flags_text, parse_flags

            return flags_text(parse_flags(str(value)))
        return str(value)


def _percentiles(text: str) -> str:
    """latency-tracking-info-percentiles: numbers from 0 to 100, written back as Redis writes
    them (``%f`` trimmed: ``50 99 99.9``)."""
    out = []
    for word in text.split():
        try:
            value = float(word)
        except ValueError:
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0 <= value <= 100:
            raise ConfigError(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
            )
        out.append(f"{value:f}".rstrip("0").rstrip("."))
    return " ".join(out)


def _parse_int(text: str) -> int:
    if not re.fullmatch(r"-?\d{1,19}", text):
        raise ConfigError("argument couldn't be parsed into an integer")
    return int(text)


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def parse_size(text: str) -> int:
    """A memory size as Redis writes it: ``1024``, ``64kb``, ``512mb``, ``1gb`` (k = 1000)."""
    m = re.fullmatch(r"(\d{1,19})\s*([a-zA-Z]*)", text.strip())
    if not m or m.group(2).lower() not in _UNITS:
        raise ConfigError("argument must be a memory value")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


# client-output-buffer-limit, as Redis: three classes (``normal``; ``replica``, also spelled
# ``slave``; ``pubsub``), each with a hard limit (closed at once when reached), a soft limit and
# seconds (closed when over the soft limit for longer than that); 0 turns a limit off. Written as
# groups of ``class hard soft seconds``: CONFIG SET changes only the classes it names, CONFIG GET
# shows all three in Redis's words (bytes, ``slave``). A normal client that does not read is
# held back instead (client.py), so only the classes fed by others have limits by default.
OUTPUT_CLASSES = ("normal", "replica", "pubsub")
_CLASS_NAMES = {"normal": "normal", "replica": "replica", "slave": "replica", "pubsub": "pubsub"}
_CLASS_SHOWN = {"normal": "normal", "replica": "slave", "pubsub": "pubsub"}
_BAD_LIMIT = "Error in hard, soft or soft_seconds setting in buffer limit configuration."


@dataclass(frozen=True)
class ClassLimit:
    hard: int = 0  # bytes; 0 = none
    soft: int = 0  # bytes; 0 = none
    seconds: int = 0  # how long output may stay over ``soft``


@dataclass(frozen=True)
class OutputLimits:
    normal: ClassLimit = ClassLimit()
    replica: ClassLimit = ClassLimit()
    pubsub: ClassLimit = ClassLimit()

    def of(self, kind: str) -> ClassLimit:
        return getattr(self, kind)  # type: ignore[no-any-return]

    def render(self) -> str:
        return " ".join(
            f"{_CLASS_SHOWN[c]} {self.of(c).hard} {self.of(c).soft} {self.of(c).seconds}"
            for c in OUTPUT_CLASSES
        )


def parse_output_limits(text: str, base: OutputLimits | None = None) -> OutputLimits:
    """``base`` (no limits) with the classes ``text`` names changed; ConfigError with Redis's
    message when any group is wrong (then nothing changes)."""
    parts = text.split()
    if len(parts) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    changes = {}
    for i in range(0, len(parts), 4):
        name, hard, soft, seconds = parts[i : i + 4]
        kind = _CLASS_NAMES.get(name.lower())
        if kind is None:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            limits = parse_size(hard), parse_size(soft)
        except ConfigError:
            raise ConfigError(_BAD_LIMIT) from None
        if not re.fullmatch(r"\d{1,18}", seconds):
            raise ConfigError(_BAD_LIMIT)
        changes[kind] = ClassLimit(*limits, int(seconds))
    return replace(base or OutputLimits(), **changes)


MB = 1024 * 1024

PARAMS: tuple[Param, ...] = (
    Param(
        "port",
        "int",
        6380,
        "TCP port to listen on (0 = any free port; see --ready-file). CONFIG SET rebinds.",
        maximum=65535,
    ),
    Param(
        "bind", "str", "127.0.0.1", "Address to listen on (default loopback only).", mutable=False
    ),
    Param("dir", "str", "./ledis-data", "Data directory (LevelDB files live here).", mutable=False),
    Param(
        "databases",
        "int",
        16,
        "Number of logical databases (SELECT 0..N-1).",
        mutable=False,
        minimum=1,
        maximum=65536,
    ),
    Param(
        "requirepass",
        "str",
        "",
        "The default user's password (empty = the default user needs none). See docs/acl.md.",
    ),
    Param(
        "aclfile",
        "str",
        "",
        "ACL file with the users ('user NAME RULES...' lines): loaded at start and by ACL "
        "LOAD, written by ACL SAVE. It must exist. Users are defined here or in the config "
        "file's 'users' list, not both.",
        mutable=False,
    ),
    Param(
        "acllog-max-len",
        "int",
        128,
        "Entries kept in the ACL log (ACL LOG).",
        maximum=2**63 - 1,
    ),
    Param(
        "acl-pubsub-default",
        "enum",
        "resetchannels",
        "Channels a new ACL user may use: 'resetchannels' (none until granted, Redis 7's "
        "default) or 'allchannels'.",
        choices=("allchannels", "resetchannels"),
    ),
    Param(
        "maxclients", "int", 10000, "Most clients connected at once.", minimum=1, maximum=1_000_000
    ),
    Param(
        "timeout",
        "int",
        0,
        "Close a client idle for this many seconds (0 = never).",
        maximum=2**31 - 1,
    ),
    Param(
        "appendfsync",
        "enum",
        "everysec",
        "Durability: 'always' fsyncs each write batch before replying; 'everysec' once a "
        "second; 'no' leaves it to the OS. Every acknowledged write survives kill -9 in "
        "all modes; 'always' also survives power loss.",
        choices=("always", "everysec", "no"),
    ),
    Param(
        "notify-keyspace-events",
        "notify",
        "",
        "Keyspace notifications, as in Redis: K (keyspace) and/or E (keyevent) with classes "
        "g $ l s h z x e t d m n, or A for all.",
    ),
    Param(
        "binlog",
        "enum",
        "yes",
        "Keep a binlog of every write batch (needed by replicas and the binlog reader).",
        mutable=False,
        choices=("yes", "no"),
    ),
    Param(
        "binlog-max-size",
        "size",
        1024 * MB,
        "Purge the oldest binlog records beyond this size (0 = no size limit).",
        maximum=2**50,
    ),
    Param(
        "binlog-max-age",
        "int",
        7 * 86400,
        "Purge binlog records older than this many seconds (0 = no age limit).",
        maximum=2**40,
    ),
    Param("masterauth", "str", "", "Password to AUTH with at the master (replicas)."),
    Param(
        "masteruser",
        "str",
        "",
        "ACL user to AUTH as at the master, with masterauth (replicas; empty = the default user).",
    ),
    Param(
        "replicaof",
        "str",
        "",
        "Start as a replica of 'HOST PORT' (REPLICAOF at run time).",
        mutable=False,
    ),
    Param(
        "min-replicas-to-write",
        "int",
        0,
        "Semi-synchronous replication (0 = asynchronous): a write is refused with -NOREPLICAS, "
        "not run, while fewer good replicas are connected (see min-replicas-max-lag); one that "
        "ran is answered once this many replicas have it, or with -UNACKED (applied on the "
        "master, a failover may lose it) after min-replicas-timeout.",
        maximum=1000,
    ),
    Param(
        "min-replicas-max-lag",
        "int",
        10,
        "A replica is good for min-replicas-to-write while its last acknowledgement is at most "
        "this many seconds old (replicas acknowledge every second). 0: no write is refused up "
        "front, as in Redis.",
        maximum=2**31 - 1,
    ),
    Param(
        "min-replicas-timeout",
        "int",
        1000,
        "How long (ms) a semi-synchronous write waits for acknowledgements.",
        minimum=1,
        maximum=3_600_000,
    ),
    Param(
        "backup-dir",
        "str",
        "",
        "Where SAVE and BGSAVE write backups (default: <dir>/backups). A protected config: "
        "CONFIG SET changes it only as enable-protected-configs allows.",
        protected=True,
    ),
    Param(
        "backup-keep", "int", 3, "Backups kept (older ones are deleted).", minimum=1, maximum=10_000
    ),
    Param(
        "compression",
        "enum",
        "none",
        "LevelDB block compression: 'none' (as LedisDB; compaction takes about a fifth less CPU under "
        "heavy writes) or 'snappy' (smaller files). Data written either way stays readable.",
        mutable=False,
        choices=("none", "snappy"),
    ),
    Param(
        "leveldb-write-buffer-size",
        "size",
        WRITE_BUFFER_SIZE,
        "LevelDB's memtable: writes gather in memory up to this size before they become a "
        "table file (two can be in memory at once). For values of several KB, 64mb (LedisDB's "
        "default, with leveldb-max-file-size 32mb) gives 16 KB SETs about 3x the rate and a "
        "tenth of the p99; but deletions' tombstones stay longer in a bigger memtable, and reads "
        "that seek past them pay for them (docs/storage-format.md).",
        mutable=False,
        minimum=1 * MB,
        maximum=1024 * MB,
    ),
    Param(
        "leveldb-max-file-size",
        "size",
        MAX_FILE_SIZE,
        "The size LevelDB's compactions cut table files at (LevelDB's own default; LedisDB "
        "uses 32mb, which helps big values together with leveldb-write-buffer-size 64mb).",
        mutable=False,
        minimum=1 * MB,
        maximum=1024 * MB,
    ),
    Param(
        "read-cache-entries",
        "int",
        500_000,
        "Small records (<= 512 bytes) kept in memory for fast reads (0 = no cache).",
        maximum=100_000_000,
    ),
    Param(
        "save",
        "str",
        "",
        "Redis's periodic snapshots: none here. The data is always on disk (LevelDB); SAVE and "
        "BGSAVE write a backup (backup-dir, backup-keep).",
        only_default="ledis-server takes no periodic snapshots: the data is always on disk "
        "(LevelDB) and every write is logged before its reply. SAVE and BGSAVE write a backup "
        '(see backup-dir, backup-keep); only save "" can be set',
    ),
    Param(
        "appendonly",
        "enum",
        "no",
        "Redis's append-only file: none here. Every write goes to LevelDB's write-ahead log "
        "(and the binlog) before its reply; appendfsync sets how often it is synced.",
        choices=("yes", "no"),
        only_default="ledis-server has no append-only file: every write is already in "
        "LevelDB's write-ahead log, and in the binlog that replicas read (binlog yes), before "
        "its reply. Durability is set with appendfsync (always: synced before each reply; "
        "everysec; no)",
    ),
    Param(
        "maxmemory",
        "size",
        0,
        "Redis's memory limit for data: none here (0). The data lives on disk (LevelDB) and "
        "nothing is evicted; memory is bounded by client buffers, read-cache-entries and LevelDB's "
        "memtables (leveldb-write-buffer-size).",
        only_default="the data lives on disk (LevelDB), not in memory: there is no memory limit "
        "for it and no key is evicted. Memory is bounded by the client buffer limits "
        "(client-query-buffer-limit, client-output-buffer-limit), the read cache "
        "(read-cache-entries) and LevelDB's memtables (leveldb-write-buffer-size); only 0 can be set",
    ),
    Param(
        "maxmemory-policy",
        "enum",
        "noeviction",
        "Redis's eviction policy: noeviction (no key is ever evicted; see maxmemory).",
        choices=(
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ),
        only_default="no key is ever evicted: the data lives on disk (LevelDB) without a memory "
        "limit (see maxmemory); only noeviction can be set",
    ),
    Param(
        "maxmemory-samples",
        "int",
        5,
        "Redis's eviction sampling: no key is evicted here (see maxmemory).",
        only_default="no key is ever evicted here (see maxmemory); only 5 can be set",
    ),
    Param(
        "maxmemory-eviction-tenacity",
        "int",
        10,
        "Redis's eviction effort: no key is evicted here (see maxmemory).",
        only_default="no key is ever evicted here (see maxmemory); only 10 can be set",
    ),
    Param(
        "maxmemory-clients",
        "size",
        0,
        "Redis's eviction of clients by memory: none (0); client buffers are bounded by "
        "client-query-buffer-limit and client-output-buffer-limit.",
        only_default="clients are not evicted by memory here; their buffers are bounded by "
        "client-query-buffer-limit and client-output-buffer-limit; only 0 can be set",
    ),
    Param(
        "tcp-keepalive",
        "int",
        300,
        "TCP keepalive probes on client connections after this many idle seconds (0 = off), "
        "as Redis.",
        maximum=2**31 - 1,
    ),
    Param(
        "busy-reply-threshold",
        "int",
        5000,
        "Redis's script time limit (ms; lua-time-limit): past it other clients get -BUSY and "
        "SCRIPT KILL or SHUTDOWN NOSAVE can end the script (docs/scripting.md).",
        maximum=2**62,
    ),
    Param(
        "loglevel",
        "enum",
        "notice",
        "Log level.",
        choices=("debug", "verbose", "notice", "warning"),
    ),
    Param("logfile", "str", "", "Log to this file (empty = standard error).", mutable=False),
    Param(
        "hz",
        "int",
        10,
        "Background tasks (expiry, timeouts, reclaim) run this often per second.",
        minimum=1,
        maximum=500,
        clamp=True,
    ),
    Param(
        "slowlog-log-slower-than",
        "int",
        10000,
        "Log commands slower than this many microseconds (negative = never).",
        minimum=-1,
        maximum=2**62,
    ),
    Param("slowlog-max-len", "int", 128, "Entries kept in the slow log.", maximum=2**31 - 1),
    Param(
        "latency-monitor-threshold",
        "int",
        0,
        "Record latency events of at least this many milliseconds (0 = off).",
        maximum=2**62,
    ),
    Param(
        "latency-tracking",
        "enum",
        "yes",
        "Count each command's calls by duration (LATENCY HISTOGRAM, INFO latencystats).",
        choices=("yes", "no"),
    ),
    Param(
        "latency-tracking-info-percentiles",
        "percentiles",
        "50 99 99.9",
        "The percentiles INFO latencystats shows (0 to 100, space separated).",
    ),
    Param(
        "tracking-table-max-keys",
        "int",
        1_000_000,
        "Most keys remembered for CLIENT TRACKING; beyond it keys are dropped as if they "
        "changed (their readers are told). 0 = no limit.",
        maximum=2**63 - 1,
    ),
    Param(
        "proto-max-bulk-len",
        "size",
        512 * MB,
        "Longest bulk string a client may send.",
        minimum=MB,
        maximum=512 * MB,
    ),
    Param(
        "client-query-buffer-limit",
        "size",
        1024 * MB,
        "Most unparsed input buffered for one client.",
        minimum=MB,
        maximum=1024 * MB,
    ),
    Param(
        "client-output-buffer-limit",
        "outbuf",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        "Pending output a client may hold, per class, as Redis: 'CLASS HARD SOFT SECONDS' "
        "groups (normal, replica, pubsub); closed at the hard limit, or when over the soft one "
        "for longer than SECONDS (0 = no limit). A normal client that does not read its "
        "replies is not read either, so it needs none.",
    ),
    Param(
        "protected-mode",
        "enum",
        "yes",
        "While no password is set, refuse clients that are not local (127.0.0.1, ::1) with "
        "-DENIED, as Redis does.",
        choices=("yes", "no"),
    ),
    Param(
        "enable-debug-command",
        "enum",
        "no",
        "Allow DEBUG: 'no', 'yes', or 'local' (clients at 127.0.0.1 or ::1 only). Set at start.",
        mutable=False,
        choices=PROTECTED_CHOICES,
    ),
    Param(
        "enable-protected-configs",
        "enum",
        "no",
        "Allow CONFIG SET of settings that choose paths (backup-dir): 'no', 'yes', or 'local'. "
        "Set at start.",
        mutable=False,
        choices=PROTECTED_CHOICES,
    ),
    Param(
        "active-expire-effort",
        "int",
        1,
        "How hard the background expiry works (1-10).",
        minimum=1,
        maximum=10,
    ),
    Param(
        "ready-file",
        "str",
        "",
        "Write the bound port to this file once listening.",
        mutable=False,
        flag_only=True,
    ),
)

PARAMS_BY_NAME = {p.name: p for p in PARAMS}
# Other names of settings. Redis's are listed by CONFIG GET patterns as names of their own;
# ``data-dir`` (ledis's flag) is not.
ALIASES = {"data-dir": "dir", "lua-time-limit": "busy-reply-threshold", "slaveof": "replicaof"}
LISTED_ALIASES = ("lua-time-limit", "slaveof")


# The config file's list of ACL users (each "name rules...", as redis.conf's "user" lines):
# not a setting (CONFIG GET does not show it), read at start, written by CONFIG REWRITE.
USERS_KEY = "users"


class Config:
    """The running configuration (mutable through CONFIG SET)."""

    def __init__(
        self,
        values: dict[str, Value] | None = None,
        path: Path | None = None,
        users: list[str] | None = None,
    ) -> None:
        self.values: dict[str, Value] = {p.name: p.default for p in PARAMS}
        if values:
            self.values.update(values)
        self.path = path
        self.users: list[str] = list(users or [])
        # The users as they are now, for CONFIG REWRITE (set by the server's access control).
        self.users_now: Callable[[], list[str]] | None = None
        self._listeners: list[Callable[[str, Value], None]] = []
        self._checks: dict[str, Callable[[Value, Value], Value]] = {}
        self._appliers: dict[str, Callable[[Value, Value], None]] = {}

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def on_change(self, listener: Callable[[str, Value], None]) -> None:
        self._listeners.append(listener)

    def check(self, name: str, check: Callable[[Value, Value], Value]) -> None:
        """CONFIG SET of ``name`` passes its parsed value through ``check(new, current)``
        before anything is applied: it returns the value to set or raises ConfigError."""
        self._checks[name] = check

    def applier(self, name: str, apply: Callable[[Value, Value], None]) -> None:
        """CONFIG SET of ``name`` to another value calls ``apply(new, current)`` once every
        value is parsed and checked, before any is set: it acts (binds a port) or raises
        ConfigError, and then what the others applied is undone and nothing is set (Redis's
        apply functions and restore of the previous settings)."""
        self._appliers[name] = apply

    def set_many(self, pairs: list[tuple[str, str]], local: bool = True) -> None:
        """Apply CONFIG SET pairs atomically; raise ConfigError with Redis's message.

        ``local``: the client is local (protected configs with ``enable-protected-configs
        local``). As in Redis, every name is checked (unknown, immutable, protected,
        duplicate) before any value is parsed."""
        params: list[tuple[str, Param, str]] = []
        seen: set[str] = set()
        for raw_name, raw_value in pairs:
            name = ALIASES.get(raw_name.lower(), raw_name.lower())
            param = PARAMS_BY_NAME.get(name)
            if param is None or param.flag_only:
                raise ConfigError(
                    f"Unknown option or number of arguments for CONFIG SET - '{raw_name}'"
                )
            refusal = None
            if not param.mutable:
                refusal = "can't set immutable config"
            elif param.protected and not allowed(
                str(self.values["enable-protected-configs"]), local
            ):
                refusal = PROTECTED_CONFIG
            elif name in seen:
                refusal = "duplicate parameter"
            if refusal:
                raise ConfigError(
                    f"CONFIG SET failed (possibly related to argument '{raw_name}') - {refusal}"
                )
            seen.add(name)
            params.append((raw_name, param, raw_value))
        staged: dict[str, Value] = {}
        for raw_name, param, raw_value in params:
            try:
                staged[param.name] = param.parse(raw_value, self.values[param.name])
                if param.name in self._checks:
                    staged[param.name] = self._checks[param.name](
                        staged[param.name], self.values[param.name]
                    )
            except ConfigError as e:
                raise ConfigError(
                    f"CONFIG SET failed (possibly related to argument '{raw_name}') - {e}"
                ) from None
        self._apply(staged)
        for name, value in staged.items():
            self.values[name] = value
            for listener in self._listeners:
                listener(name, value)

    def _apply(self, staged: dict[str, Value]) -> None:
        done: list[str] = []
        for name, value in staged.items():
            apply = self._appliers.get(name)
            if apply is None or value == self.values[name]:
                continue
            try:
                apply(value, self.values[name])
            except ConfigError as e:
                for undone in reversed(done):
                    self._appliers[undone](self.values[undone], staged[undone])
                raise ConfigError(
                    f"CONFIG SET failed (possibly related to argument '{name}') - {e}"
                ) from None
            done.append(name)

    def matching(self, matcher: Callable[[bytes], bool]) -> Iterator[tuple[str, str]]:
        """(name, value) of the settings whose names (Redis's aliases included) match."""
        for p in PARAMS:
            if not p.flag_only and matcher(p.name.encode()):
                yield p.name, self.shown(p.name)
        for alias in LISTED_ALIASES:
            if matcher(alias.encode()):
                yield alias, self.shown(ALIASES[alias])

    def find(self, name: str) -> str | None:
        """The setting a name (any case, or an alias) stands for; None if there is none."""
        low = name.lower()
        low = ALIASES.get(low, low)
        param = PARAMS_BY_NAME.get(low)
        return None if param is None or param.flag_only else param.name

    def shown(self, name: str) -> str:
        """A setting's value as CONFIG GET shows it (``dir`` as an absolute path)."""
        value = PARAMS_BY_NAME[name].render(self.values[name])
        return os.path.abspath(value) if name == "dir" else value

    def rewrite(self) -> None:
        """Write the running configuration back to the config file (atomically), as Redis
        does: comments, blank lines, order and unknown lines stay; the lines of settings are
        given their values now; settings away from their defaults that the file does not
        name are added at the end (config_rewrite.py)."""
        if self.path is None:
            raise ConfigError("The server is running without a config file")
        try:
            text = self.path.read_text() if self.path.exists() else ""
            existing = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"Rewriting config file: {e}") from None
        users = self.users_now() if self.users_now is not None else self.users
        with_users = not self.values["aclfile"] and (users or USERS_KEY in existing)
        listed = f"[{''.join(f'{chr(10)}    {_toml_value(u)},' for u in users)}\n]"

        def rendered(key: str) -> str | None:
            if key == USERS_KEY:
                return listed if with_users else None
            param = PARAMS_BY_NAME.get(ALIASES.get(key, key))
            if param is None or param.flag_only:
                return None  # not a setting: kept as written
            return _toml_value(self.values[param.name])

        named = {ALIASES.get(k, k) for k in existing}
        added = [
            (p.name, _toml_value(self.values[p.name]))
            for p in PARAMS
            if not p.flag_only and p.name not in named and self.values[p.name] != p.default
        ]
        if with_users and USERS_KEY not in existing:
            added.append((USERS_KEY, listed))
        out = config_rewrite.rewrite(text, rendered, added)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        try:
            tmp.write_text(out)
            os.replace(tmp, self.path)
        except OSError as e:
            raise ConfigError(f"Rewriting config file: {e}") from None


def _toml_value(value: Value) -> str:
    if isinstance(value, int):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def read_file(path: Path) -> tuple[dict[str, Value], list[str]]:
    """Read and validate a TOML config file: its settings and its ``users`` entries (ACL
    users). Errors name the file, the key and the problem."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: not valid TOML: {e}") from None
    values: dict[str, Value] = {}
    users: list[str] = []
    for raw_key, raw in data.items():
        if raw_key == USERS_KEY:
            if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw):
                raise ConfigError(
                    f"config file {path}: key '{USERS_KEY}': expected a list of strings "
                    "('name rules...', as ACL SETUSER takes them)"
                )
            users = raw
            continue
        name = ALIASES.get(raw_key, raw_key)
        param = PARAMS_BY_NAME.get(name)
        if param is None:
            raise ConfigError(f"config file {path}: key '{raw_key}': unknown setting")
        try:
            values[name] = param.parse(raw)
        except ConfigError as e:
            raise ConfigError(f"config file {path}: key '{raw_key}': {e}") from None
    return values, users
