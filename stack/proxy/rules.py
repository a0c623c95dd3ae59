"""What the proxy does with each command: the rule table of docs/proxy.md.

Every command of the core's table (and the proxy's own, ``commands.py``) gets one ``Rule``:

- ``keyed``: routed by the slot of its keys (the core's key specs); all keys in one slot, or
  ``-CROSSSLOT``. ``single`` marks the plain one-key-at-argument-1 commands (GET, SET, HSET
  ...), which skip the key-spec walk. ``blocking`` commands get a backend link of their own
  while they wait.
- ``split``: MGET, MSET, DEL, UNLINK, EXISTS, TOUCH: cut per slot, the replies merged.
- ``local``: answered by the proxy (PING, ECHO, AUTH, HELLO, SELECT, CLIENT, INFO, TIME,
  transactions, SCAN, the PROXY commands ...); ``handler`` names the method.
- ``default``: forwarded to the default node (the master of the lowest group that owns
  slots): COMMAND, LASTSAVE, PUBLISH, PUBSUB ...
- ``all``: sent to every group's master, the replies merged (``merge``: sum, concat,
  all_ok): DBSIZE, KEYS, FLUSHALL, FLUSHDB.
- ``deny``: refused with a clear error (per-node administration: SHUTDOWN, DEBUG, CONFIG SET,
  REPLICAOF, WAIT ...). A keyless command no rule names is denied too.

Rules are derived from the specs (arity, flags, key specs) plus the names below; nothing
about key positions is written here.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from stack.core.commands import TABLE, CommandSpec
from stack.core.commands.keyspec import Index, Range

from .commands import PROXY_TABLE

KEYED, SPLIT, LOCAL, DEFAULT, ALL, DENY = "keyed", "split", "local", "default", "all", "deny"

# split commands and how their per-slot replies merge
SPLIT_MERGE = {
    "mget": "concat",
    "mset": "all_ok",
    "del": "sum",
    "unlink": "sum",
    "exists": "sum",
    "touch": "sum",
}

# keyless commands (or subcommands) the proxy answers itself: name -> handler method
LOCAL_HANDLERS = {
    "ping": "ping",
    "echo": "echo",
    "quit": "quit",
    "reset": "reset",
    "auth": "auth",
    "hello": "hello",
    "select": "select",
    "time": "time",
    "info": "info",
    "role": "role",
    "multi": "multi",
    "exec": "exec",
    "discard": "discard",
    "watch": "watch",
    "unwatch": "unwatch",
    "scan": "scan",
    "xscan": "scan",
    "randomkey": "randomkey",
    "subscribe": "subscribe",
    "psubscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "punsubscribe": "unsubscribe",
    "client|id": "client_id",
    "client|getname": "client_getname",
    "client|setname": "client_setname",
    "client|info": "client_info",
    "client|list": "client_list",
    "client|kill": "client_kill",
    "client|no-evict": "ok",
    "config|get": "config_get",
    "config|resetstat": "config_resetstat",
    "cluster|keyslot": "cluster_keyslot",
    "cluster|countkeysinslot": "by_slot_argument",
    "cluster|getkeysinslot": "by_slot_argument",
    "proxy|slotstats": "proxy_slotstats",
    "proxy|route": "proxy_route",
    "proxy|help": "help",
}

DEFAULT_COMMANDS = frozenset(
    {
        "command|count",
        "command|docs",
        "command|getkeys",
        "command|getkeysandflags",
        "command|info",
        "command|list",
        "lastsave",
        "publish",
        "pubsub|channels",
        "pubsub|numpat",
        "pubsub|numsub",
        "pubsub|help",
        "client|help",
        "config|help",
        "cluster|help",
        "command|help",
        "object|help",
    }
)

ALL_MERGE = {"dbsize": "sum", "keys": "concat", "flushall": "all_ok", "flushdb": "all_ok"}

# commands in a transaction are sent to its node; these cannot be
NOT_IN_TRANSACTION = frozenset({"subscribe", "psubscribe", "unsubscribe", "punsubscribe"})


@dataclass(slots=True)
class Rule:
    name: str  # the spec's name ("get", "client|list")
    kind: str
    spec: CommandSpec
    arity: int
    single: bool = False  # one key, at argument 1
    blocking: bool = False
    no_auth: bool = False
    no_multi: bool = False
    handler: str = ""
    merge: str = ""
    subs: dict[bytes, Rule] = field(default_factory=dict)
    container: bool = False
    fast: bool = False  # single and not blocking: the client's inline path takes it
    calls: int = 0

    def arity_ok(self, argc: int) -> bool:
        a = self.arity
        return argc == a if a > 0 else argc >= -a


def _single_key(spec: CommandSpec) -> bool:
    """One key, at argument 1, whatever the other arguments say (a key procedure that only
    decides the key's flags, as SET's and BITFIELD's, does not move it)."""
    if len(spec.key_specs) != 1:
        return False
    k = spec.key_specs[0]
    if spec.key_proc is not None and "VARIABLE_FLAGS" not in k.flags:
        return False
    return (
        isinstance(k.begin_search, Index)
        and k.begin_search.pos == 1
        and isinstance(k.find_keys, Range)
        and k.find_keys.lastkey == 0
        and not k.flags & {"NOT_KEY", "INCOMPLETE"}
    )


def rule_for(spec: CommandSpec) -> Rule:
    name = spec.name
    rule = Rule(
        name,
        DENY,
        spec,
        spec.arity,
        no_auth="no_auth" in spec.flags,
        no_multi="no_multi" in spec.flags,
    )
    if spec.subcommands:
        rule.container = True
        rule.kind = LOCAL
        for sub in spec.subcommands:
            rule.subs[sub.name.split("|", 1)[1].encode()] = rule_for(sub)
        return rule
    if name in SPLIT_MERGE:
        rule.kind, rule.merge = SPLIT, SPLIT_MERGE[name]
    elif name in LOCAL_HANDLERS:
        rule.kind, rule.handler = LOCAL, LOCAL_HANDLERS[name]
    elif name in DEFAULT_COMMANDS:
        rule.kind = DEFAULT
    elif name in ALL_MERGE:
        rule.kind, rule.merge = ALL, ALL_MERGE[name]
    elif spec.key_specs:
        rule.kind = KEYED
        rule.single = _single_key(spec)
        rule.blocking = "blocking" in spec.flags
        rule.fast = rule.single and not rule.blocking
    return rule


def build_rules(specs: Iterable[CommandSpec]) -> dict[bytes, Rule]:
    """Rules by command name, as sent in lower and upper case (other cases: look up the
    lower-cased name)."""
    out: dict[bytes, Rule] = {}
    for spec in specs:
        rule = rule_for(spec)
        out[spec.name.encode()] = rule
        out[spec.name.upper().encode()] = rule
    return out


RULES = build_rules([*TABLE, *PROXY_TABLE])


def lookup(name: bytes) -> Rule | None:
    rule = RULES.get(name)
    if rule is None:
        rule = RULES.get(name.lower())
    return rule


def _every_rule() -> list[Rule]:
    out = []
    seen = set()
    for rule in RULES.values():
        if rule.name in seen:
            continue
        seen.add(rule.name)
        out.append(rule)
        out.extend(rule.subs.values())
    return out


_EVERY = _every_rule()


def all_rules() -> list[Rule]:
    """Every rule, subcommands included."""
    return _EVERY


@dataclass(frozen=True)
class FastTable:
    """The rules the C router may run (``fast``: one key at argument 1, not blocking): by
    lower-case name, their index in ``rules``, whose arities are ``arities``."""

    rules: tuple[Rule, ...]
    names: dict[bytes, int]
    arities: array[int]

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> FastTable:
        fast = tuple(r for r in rules if r.fast)
        names = {r.name.encode(): i for i, r in enumerate(fast)}
        return cls(fast, names, array("i", [r.arity for r in fast]))


FAST = FastTable.of(_EVERY)
