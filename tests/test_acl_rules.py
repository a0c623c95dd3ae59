"""ACL rules without a server: the catalog derived from the command table, selectors and users,
descriptions that give back exactly the rules they describe, the ACL file and the ACL log."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.core import errors
from stack.core.commands import TABLE
from stack.server.acl import aclfile
from stack.server.acl.access import config_users
from stack.server.acl.catalog import CATALOG, CATEGORIES
from stack.server.acl.denial_log import Denial, DenialLog
from stack.server.acl.selector import (
    DENIED_CHANNEL,
    DENIED_COMMAND,
    DENIED_KEY,
    RuleError,
    Selector,
    merge_selectors,
)
from stack.server.acl.user import User, hash_password
from stack.server.config import ConfigError


def selector(*ops: str) -> Selector:
    s = Selector(root=True)
    for op in ops:
        s.apply(op.encode())
    return s


def user(*ops: str) -> User:
    u = User.new(b"u")
    u.apply_all([op.encode() for op in ops])
    return u


def cid(name: str) -> int:
    return CATALOG.ids[name]


def spec(name: str):  # type: ignore[no-untyped-def]
    return CATALOG.specs[cid(name)]


# --- the catalog ----------------------------------------------------------------------------------


def test_catalog_covers_every_command_and_follows_the_table() -> None:
    names = [s.name for s in TABLE.all_specs()]
    assert [s.name for s in CATALOG.specs] == names
    assert len(set(CATALOG.ids.values())) == len(names)
    for name, i in CATALOG.ids.items():
        s = CATALOG.specs[i]
        assert s.name == name
        for cat in CATEGORIES:
            assert bool(CATALOG.members[cat] >> i & 1) == (cat in s.categories)
        assert bool(CATALOG.no_auth >> i & 1) == ("no_auth" in s.flags)
    config = cid("config")
    family = 1 << config
    for sub in TABLE.get("config").subcommands:  # type: ignore[union-attr]
        family |= 1 << cid(sub.name)
    assert CATALOG.family(config) == family
    for cat in CATEGORIES:  # a grant covers its members, and brings containers' subcommands
        assert CATALOG.grants[cat] & CATALOG.members[cat] == CATALOG.members[cat]
    assert CATALOG.grants["slow"] >> cid("config|get") & 1  # config is @slow
    assert CATALOG.lookup(b"CONFIG|Get") == cid("config|get")
    for unknown in (b"nosuch", b"config|nosuch", b"get|x", b"config|get|x", b"\xff"):
        assert CATALOG.lookup(unknown) is None


def test_channel_positions_come_from_the_table() -> None:
    publish = TABLE.get("publish").channels  # type: ignore[union-attr]
    assert publish is not None and list(publish.positions(3)) == [1]
    subscribe = TABLE.get("psubscribe").channels  # type: ignore[union-attr]
    assert subscribe is not None and "PATTERN" in subscribe.flags
    assert list(subscribe.positions(4)) == [1, 2, 3]
    assert TABLE.get("get").channels is None  # type: ignore[union-attr]


# --- rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "reason"),
    [
        ("+nosuch", errors.RULE_UNKNOWN),
        ("-nosuch", errors.RULE_UNKNOWN),
        ("+@nosuch", errors.RULE_UNKNOWN),
        ("+config|get|x", errors.RULE_SUBCOMMAND_FIRSTARG),
        ("+get|", errors.RULE_SYNTAX),
        ("+config|nosuch", errors.RULE_UNKNOWN),
        ("%X~a", errors.RULE_SYNTAX),
        ("%~a", errors.RULE_SYNTAX),
        ("~a b", errors.RULE_SYNTAX),
        ("&a\x00b", errors.RULE_SYNTAX),
        ("bogus", errors.RULE_SYNTAX),
    ],
)
def test_rule_errors(op: str, reason: str) -> None:
    with pytest.raises(RuleError, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
        selector(op)


def test_patterns_after_everything_are_refused() -> None:
    with pytest.raises(RuleError, match="allkeys"):
        selector("allkeys", "~a")
    with pytest.raises(RuleError, match="allchannels"):
        selector("&*", "&a")
    assert selector("%R~*", "~a").keys == [[b"*", 1], [b"a", 3]]  # %R~* is a pattern


def test_key_access_follows_key_spec_flags() -> None:
    u = user("+@all", "%R~r*", "%W~w*")
    get, set_, incr = cid("get"), cid("set"), cid("incr")
    assert u.check(get, [b"get", b"r1"], spec("get")) == (0, 0)
    assert u.check(get, [b"get", b"w1"], spec("get")) == (DENIED_KEY, 1)
    assert u.check(set_, [b"set", b"w1", b"v"], spec("set")) == (0, 0)  # OW UPDATE: write
    assert u.check(set_, [b"set", b"w1", b"v", b"GET"], spec("set")) == (DENIED_KEY, 1)
    assert u.check(incr, [b"incr", b"w1"], spec("incr")) == (DENIED_KEY, 1)  # RW ACCESS
    append = cid("append")  # RW INSERT: writes without reading
    assert u.check(append, [b"append", b"w1", b"v"], spec("append")) == (0, 0)
    exists = cid("exists")  # RO without ACCESS: any pattern will do
    assert u.check(exists, [b"exists", b"w1"], spec("exists")) == (0, 0)
    mget = cid("mget")
    assert u.check(mget, [b"mget", b"r1", b"x", b"y"], spec("mget")) == (DENIED_KEY, 2)


def test_selectors_report_the_latest_denial() -> None:
    u = user("+get", "~a", "(+get ~b)", "(+set ~c)")
    get = cid("get")
    assert u.check(get, [b"get", b"b"], spec("get")) == (0, 0)
    assert u.check(get, [b"get", b"z"], spec("get")) == (DENIED_KEY, 1)
    assert u.check(cid("del"), [b"del", b"a"], spec("del")) == (DENIED_COMMAND, 0)


def test_channels_and_patterns() -> None:
    s = selector("+@all", "~*", "&news.*")
    sub, psub, pub = cid("subscribe"), cid("psubscribe"), cid("publish")
    assert s.check(pub, [b"publish", b"news.x", b"m"], []) == (0, 0)
    assert s.check(sub, [b"subscribe", b"news.x", b"sport"], []) == (DENIED_CHANNEL, 2)
    assert s.check(psub, [b"psubscribe", b"news.*"], []) == (0, 0)  # literally the same
    assert s.check(psub, [b"psubscribe", b"news.a*"], []) == (DENIED_CHANNEL, 1)
    assert s.check(cid("unsubscribe"), [b"unsubscribe", b"sport"], []) == (0, 0)


def test_first_arguments() -> None:
    s = selector("-@all", "+select|0", "+SELECT|0")
    select = cid("select")
    assert s.firstargs == {select: [b"0"]}
    assert s.check(select, [b"select", b"0"], []) == (0, 0)
    assert s.check(select, [b"select", b"1"], [])[0] == DENIED_COMMAND
    s.apply(b"+@connection")  # a rule on the command drops its first-argument rules
    assert s.firstargs == {}


def test_no_auth_commands_are_always_allowed() -> None:
    s = selector("-@all")
    assert s.check(cid("auth"), [b"auth", b"x"], []) == (0, 0)
    assert s.check(cid("hello"), [b"hello"], []) == (0, 0)


def test_passwords() -> None:
    u = user("on", ">pw", ">pw", "#" + "a" * 64)
    assert u.passwords == [hashlib.sha256(b"pw").hexdigest().encode(), b"a" * 64]
    assert u.password_ok(b"pw") and not u.password_ok(b"nope")
    u.apply(b"<pw")
    assert not u.password_ok(b"pw")
    with pytest.raises(RuleError, match="does not exist"):
        u.apply(b"<pw")
    with pytest.raises(RuleError, match="64 characters"):
        u.apply(b"#" + b"A" * 64)
    u.apply(b"nopass")
    assert u.password_ok(b"anything") and u.passwords == []
    u.apply(b"off")
    assert not u.password_ok(b"anything")
    assert hash_password(b"") == hashlib.sha256(b"").hexdigest().encode()


def test_staged_changes_apply_whole_or_not_at_all() -> None:
    u = user("on", "~a")
    with pytest.raises(RuleError, match="Error in ACL SETUSER modifier '\\+nosuch'"):
        u.staged([b"~b", b"+nosuch"])
    assert u.root.keys == [[b"a", 3]]
    with pytest.raises(
        RuleError, match="Unmatched parenthesis in acl selector starting at '\\(~x'"
    ):
        u.staged([b"(~x", b"+get"])
    staged = u.staged([b"(~x", b"+get)", b"+set"])
    assert len(staged.selectors) == 2 and staged.selectors[1].keys == [[b"x", 3]]


def test_merge_selectors_as_redis() -> None:
    assert merge_selectors([b"(a", b"b)", b"c"]) == ([b"(a b)", b"c"], -1)
    assert merge_selectors([b"(a", b"(b", b"c)"]) == ([b"(b c)"], -1)  # restarts
    assert merge_selectors([b"x", b"(a"]) == ([], 1)


def test_open_users_take_the_fast_path() -> None:
    assert User.default().open
    assert not user("+@all", "~*").open  # no channels
    assert user("+@all", "~*", "&*").open
    assert not user("+@all", "~*", "&*", "-get").open
    assert user("-@all", "(+@all ~* &*)").open


# --- descriptions ---------------------------------------------------------------------------------

_COMMANDS = [s.name for s in TABLE.all_specs()]
_RULE = st.one_of(
    st.sampled_from(["+@all", "-@all", "allcommands", "nocommands"]),
    st.builds(
        lambda sign, cat: f"{sign}@{cat}", st.sampled_from("+-"), st.sampled_from(CATEGORIES)
    ),
    st.builds(
        lambda sign, name: f"{sign}{name}", st.sampled_from("+-"), st.sampled_from(_COMMANDS)
    ),
    st.builds(lambda n: f"+select|{n}", st.integers(0, 3)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_RULE, max_size=12))
def test_description_gives_back_the_same_commands(rules: list[str]) -> None:
    s = selector(*rules)
    described = s.describe_commands()
    again = selector(*described.decode().split())
    assert (again.commands, again.future) == (s.commands, s.future)

    def firstargs(x: Selector) -> dict[int, list[bytes]]:  # those of denied commands matter
        return {k: v for k, v in x.firstargs.items() if not x.commands >> k & 1}

    assert firstargs(again) == firstargs(s)
    assert described.split()[0] in (b"+@all", b"-@all")


def test_descriptions() -> None:
    assert selector("+@read", "-keys").describe_commands() == b"-@all +@read -keys"
    assert selector("+@all", "-config|set").describe_commands() == b"+@all -config|set"
    assert selector("-@all", "+select|0").describe_commands() == b"-@all +select|0"
    assert user().describe() == b"off resetchannels -@all"
    u = user("on", ">pw", "~a", "%R~b", "&c", "+get", "(+set ~d)")
    assert u.describe() == (
        b"on #" + hash_password(b"pw") + b" ~a %R~b resetchannels &c -@all +get"
        b" (~d resetchannels -@all +set)"
    )
    assert User.default().describe() == b"on nopass ~* &* +@all"


# --- the ACL file and users in the config file ------------------------------------------------------


def test_acl_file_round_trip() -> None:
    b = User.new(b"b")
    b.apply_all([b"on", b">x", b"~k", b"+get", b"(+set ~j)"])
    users = {b"default": User.default(), b"b": b}
    text = aclfile.render(users)
    assert text.splitlines()[0].startswith(b"user b on #")
    parsed, error = aclfile.parse(text, "f.acl", all_channels=False)
    assert error == ""
    assert aclfile.render(parsed) == text


def test_acl_file_errors_name_every_bad_line() -> None:
    text = b"user a on\n#c\nuser b +nosuch %X~a\nuser a off\n"
    users, error = aclfile.parse(text, "f.acl", all_channels=False)
    assert users == {}
    assert error == (
        "f.acl:2 should start with user keyword followed by the username. "
        "f.acl:3: Error in applying operation '+nosuch': Unknown command or category name "
        "in ACL. f.acl:3: Syntax error. WARNING: Duplicate user 'a' found on line 4. "
        + aclfile.ABORTED
    )


def test_users_in_the_config_file() -> None:
    users = config_users(
        ["alice on >pw ~cache:* +@read", "user bob on nopass +ping", "default off"]
    )
    assert sorted(users) == [b"alice", b"bob", b"default"]
    assert users[b"default"].describe() == b"off sanitize-payload resetchannels -@all"
    for entries, message in [
        (["alice +nosuch"], "entry 1 \\(alice\\): Error in ACL SETUSER modifier '\\+nosuch'"),
        (["a on", "a off"], "entry 2 \\(a\\): Duplicate user"),
        (['"a b" on'], "entry 1: Usernames can't contain spaces"),
        ([""], "entry 1: empty"),
        (['a "on'], "entry 1: unbalanced quotes"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_users(entries)


# --- the ACL log ----------------------------------------------------------------------------------


def test_log_groups_recent_alike_entries() -> None:
    log = DenialLog(3)

    def entry(obj: bytes, ms: int) -> Denial:
        return Denial(DENIED_KEY, b"toplevel", obj, b"u", ms, b"id=1")

    log.add(entry(b"a", 0))
    log.add(entry(b"b", 1))
    log.add(entry(b"a", 60_000))  # within a minute of the first: counted on it
    assert [(e.object, e.count) for e in log.entries] == [(b"a", 2), (b"b", 1)]
    log.add(entry(b"a", 120_001))  # over a minute since the last one: a new entry
    log.add(entry(b"c", 120_002))
    assert [(e.object, e.count) for e in log.entries] == [(b"c", 1), (b"a", 1), (b"a", 2)]
    log.resize(1)
    assert len(log.entries) == 3  # shortened when the next entry comes, as in Redis
    log.add(entry(b"d", 120_003))
    assert [e.object for e in log.entries] == [b"d"]
