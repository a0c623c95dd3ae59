"""The server's access control: its users, logins, the permission check and the ACL log.

One ``AccessControl`` per server (``server.acl``). The dispatcher calls ``check`` only for a
client whose user is not ``open`` (allowed every command, key and channel), so the default
user as a server starts costs one attribute test per command.

Logins follow Redis 7.0: a connection starts as the default user, already logged in when that
user is on and needs no password (``client.logged_in``, Redis's ``c->authenticated``); commands
run while it is logged in or while the default user needs no password
(``client.authenticated``). ``requirepass`` is the default user's password: setting it replaces
the default user's passwords with that one, setting it empty makes the default user nopass.

Where users come from at start: ``requirepass``, then the config file's ``users`` entries or
the ``aclfile`` (one or the other, as in Redis). Deleting a user disconnects its clients;
ACL LOAD disconnects the clients of every user but ``default``; a change to a user's channel
rules disconnects its subscribers that lost a channel (Redis 7.0's rules).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import CommandSpec
from stack.core.durable import replace_file
from stack.core.keypattern import compile_pattern
from stack.core.resp import ProtocolError, split_args

from ..client_info import describe
from ..config import Config, ConfigError, Value
from . import aclfile
from .catalog import CATALOG
from .denial_log import MULTI, TOPLEVEL, Denial, DenialLog
from .selector import (
    DENIED_AUTH,
    DENIED_CHANNEL,
    DENIED_COMMAND,
    DENIED_KEY,
    RuleError,
    has_spaces,
)
from .user import User

if TYPE_CHECKING:
    from ..client import Client
    from ..server import Server

log = logging.getLogger(__name__)

_EXEC_REASONS = {
    DENIED_COMMAND: errors.EXEC_DENIED_COMMAND,
    DENIED_KEY: errors.EXEC_DENIED_KEY,
    DENIED_CHANNEL: errors.EXEC_DENIED_CHANNEL,
}


def config_users(entries: Sequence[str], all_channels: bool = False) -> dict[bytes, User]:
    """The users of the config file's ``users`` entries (``"name rules..."``, quoted as
    redis.conf's ``user`` lines may be); raise ConfigError naming the entry that is wrong."""
    users: dict[bytes, User] = {}
    for n, entry in enumerate(entries, start=1):
        try:
            words = split_args(entry.encode())
        except ProtocolError:
            raise ConfigError(f"users entry {n}: unbalanced quotes") from None
        if words[:1] == [b"user"]:  # a line pasted from ACL LIST
            words = words[1:]
        if not words:
            raise ConfigError(f"users entry {n}: empty (expected 'name rules...')")
        name = words[0]
        shown = name.decode("utf-8", "replace")
        if has_spaces(name):
            raise ConfigError(f"users entry {n}: {errors.ACL_BAD_USERNAME[4:]}")
        if name in users:
            raise ConfigError(f"users entry {n} ({shown}): {errors.RULE_DUPLICATE_USER}")
        base = User.new(name, all_channels)
        if name == b"default":  # the default user is reset, then given these rules (Redis)
            base.apply(b"reset", all_channels)
        try:
            users[name] = base.staged(words[1:], all_channels)
        except RuleError as e:
            raise ConfigError(f"users entry {n} ({shown}): {e}") from None
    return users


class AccessControl:
    def __init__(self, server: Server) -> None:
        self.server = server
        config = server.config
        self.config = config
        self.all_channels = config["acl-pubsub-default"] == "allchannels"
        self.default = User.default()
        self.users: dict[bytes, User] = {b"default": self.default}
        self.log = DenialLog(config["acllog-max-len"])
        self._set_requirepass(str(config["requirepass"]))
        self._load_at_start(config)
        self.default_open = self._default_is_open()
        config.on_change(self._config_changed)
        config.users_now = self.config_lines

    # -- start, settings ---------------------------------------------------------------------

    def _load_at_start(self, config: Config) -> None:
        path = str(config["aclfile"])
        if path and config.users:
            raise ConfigError(
                "users are defined both in the config file ('users') and in an ACL file "
                "('aclfile'): define them in one place (as Redis, which refuses this too)"
            )
        if config.users:  # added to the default user; an entry for it replaces its rules
            loaded = config_users(config.users, self.all_channels)
            default = loaded.pop(b"default", None)
            if default is not None:
                self.default.assign(default)
            self.users.update(loaded)
        if path:
            if config["requirepass"]:
                log.warning(
                    "requirepass is ignored when an aclfile is used, as in Redis: the default "
                    "user's rules come from %s",
                    path,
                )
            error = self.load_file()
            if error:
                raise ConfigError(f"Aborting startup because of ACL errors: {error}")
        for user in self.users.values():
            if not user.enabled and user is not self.default:
                log.info(
                    "The user '%s' is disabled (there is no 'on' modifier in the user "
                    "description). Make sure this is not a configuration error.",
                    user.name.decode("utf-8", "replace"),
                )

    def _config_changed(self, name: str, value: Value) -> None:
        if name == "requirepass":
            self._set_requirepass(str(value))
            self.default_changed()
        elif name == "acllog-max-len":
            self.log.resize(int(value))
        elif name == "acl-pubsub-default":
            self.all_channels = value == "allchannels"

    def _set_requirepass(self, password: str, user: User | None = None) -> None:
        rule = b">" + password.encode("utf-8", "surrogateescape") if password else b"nopass"
        (user or self.default).apply_all([b"resetpass", rule])

    def config_lines(self) -> list[str]:
        """The users as CONFIG REWRITE writes them (when there is no ACL file): every user
        but ``default`` when requirepass alone describes it."""
        plain = User.default()
        self._set_requirepass(str(self.config["requirepass"]), plain)
        return [
            self.users[name].line()[5:].decode("utf-8", "surrogateescape")
            for name in sorted(self.users)
            if name != b"default" or self.default.describe() != plain.describe()
        ]

    # -- logins ----------------------------------------------------------------------------------

    def _default_is_open(self) -> bool:
        return self.default.enabled and self.default.nopass

    def default_changed(self) -> None:
        """The default user changed: whether new and not-logged-in connections may run
        commands follows it (Redis's authRequired)."""
        self.default_open = self._default_is_open()
        for c in self.server.clients.values():
            self.refresh_client(c)

    def refresh_client(self, c: Client) -> None:
        c.authenticated = c.logged_in or self.default_open
        c.parser.authenticated = c.authenticated

    def start_client(self, c: Client) -> None:
        """A new connection, or RESET: the default user, logged in if it needs no password."""
        c.user = self.default
        c.logged_in = self.default_open
        self.refresh_client(c)

    def authenticate(self, c: Client, username: bytes, password: bytes, command: bytes) -> bool:
        """AUTH / HELLO AUTH: log ``c`` in as ``username``, or record the failure."""
        user = self.users.get(username)
        if user is None or not user.password_ok(password):
            self.record(c, DENIED_AUTH, command, username)
            return False
        c.user = user
        c.logged_in = True
        self.refresh_client(c)
        return True

    # -- permissions -----------------------------------------------------------------------------

    def check(self, c: Client, spec: CommandSpec, args: list[bytes]) -> str | None:
        """The NOPERM error for a call ``c``'s user may not make (recorded in the ACL log),
        or None. Inside EXEC the error says the rules changed since the command was queued."""
        reason, pos = c.user.check(CATALOG.ids[spec.name], args, spec)
        if not reason:
            return None
        obj = spec.name.encode() if reason == DENIED_COMMAND else args[pos]
        c.last_command = spec.name  # Redis's client info names the refused command
        self.record(c, reason, obj)
        if c.in_exec:
            return errors.NOPERM_AT_EXEC + _EXEC_REASONS[reason]
        if reason == DENIED_COMMAND:
            return errors.noperm_command(spec.name)
        return errors.NOPERM_KEY if reason == DENIED_KEY else errors.NOPERM_CHANNEL

    def all_keys_readable(self, c: Client, spec: CommandSpec, args: list[bytes]) -> bool:
        """SORT may use BY and GET patterns (which read any key) for this client."""
        user = c.user
        return user.open or user.all_keys_readable(CATALOG.ids[spec.name], args, spec)

    def dryrun(self, user: User, spec: CommandSpec, args: list[bytes]) -> bytes | None:
        """ACL DRYRUN's answer when the user may not make the call (None: it may)."""
        reason, pos = user.check(CATALOG.ids[spec.name], args, spec)
        if not reason:
            return None
        if reason == DENIED_COMMAND:
            return b"This user has no permissions to run the '%s' command" % spec.name.encode()
        what = b"key" if reason == DENIED_KEY else b"channel"
        return b"This user has no permissions to access the '%s' %s" % (args[pos], what)

    def record(self, c: Client, reason: int, obj: bytes, username: bytes | None = None) -> None:
        context = MULTI if c.multi is not None or c.in_exec else TOPLEVEL
        self.log.add(
            Denial(
                reason,
                context,
                obj,
                c.user.name if username is None else username,
                int(time.time() * 1000),
                describe(c).encode("utf-8", "surrogateescape"),
            )
        )

    # -- users -----------------------------------------------------------------------------------

    def set_user(self, actor: Client, name: bytes, ops: Sequence[bytes]) -> None:
        """ACL SETUSER: every rule applies or none does (raise RuleError with the reply)."""
        existing = self.users.get(name)
        base = existing if existing is not None else User.new(name, self.all_channels)
        staged = base.staged(ops, self.all_channels)
        if existing is None:
            self.users[name] = staged
            return
        self._drop_lost_subscribers(actor, staged, existing)
        existing.assign(staged)
        if existing is self.default:
            self.default_changed()

    def delete_users(self, actor: Client, names: Sequence[bytes]) -> int:
        """ACL DELUSER: how many existed; their clients are disconnected."""
        if b"default" in names:
            raise ValueError(errors.ACL_DELETE_DEFAULT)
        gone = [self.users.pop(n) for n in dict.fromkeys(names) if n in self.users]
        if gone:
            self._disconnect_users(actor, set(map(id, gone)))
        return len(gone)

    def _install(self, users: dict[bytes, User]) -> list[User]:
        """Replace every user with ``users`` (the default user keeps its identity and takes
        the new rules, or a fresh default's); the users that were replaced."""
        fresh_default = users.pop(b"default", None) or User.default()
        self.default.assign(fresh_default)
        old = [u for u in self.users.values() if u is not self.default]
        self.users = {b"default": self.default, **users}
        self.default_open = self._default_is_open()
        return old

    def load_file(self, actor: Client | None = None) -> str:
        """ACL LOAD: the error text, or "" when every user of the file is now in place."""
        path = str(self.config["aclfile"])
        try:
            text = Path(path).read_bytes()
        except OSError as e:
            return f"Error loading ACLs, opening file '{path}': {e.strerror}"
        users, error = aclfile.parse(text, path, self.all_channels)
        if error:
            return error
        old = self._install(users)
        if self.server.clients:
            self._disconnect_users(actor, set(map(id, old)))
            self.default_changed()
        return ""

    def save_file(self) -> bool:
        path = Path(str(self.config["aclfile"]))
        try:
            replace_file(path, aclfile.render(self.users))
        except OSError as e:
            log.warning("Saving the ACL file %s: %s", path, e.strerror)
            return False
        return True

    # -- disconnecting ---------------------------------------------------------------------------

    def _disconnect_users(self, actor: Client | None, gone: set[int]) -> None:
        for c in list(self.server.clients.values()):
            if id(c.user) in gone:
                c.user = self.default  # as Redis: back to the default user, logged out
                c.logged_in = False
                self.refresh_client(c)
                _disconnect(actor, c)

    def _drop_lost_subscribers(self, actor: Client, new: User, old: User) -> None:
        """Subscribers of ``old`` lose their connection when the new rules no longer allow
        one of their channels or patterns (nothing to do if the new rules allow a superset)."""
        if any(s.allchannels for s in new.selectors):
            return
        upcoming = [p for s in new.selectors for p in s.channels]
        if not any(s.allchannels for s in old.selectors) and all(
            p in upcoming for s in old.selectors for p in s.channels
        ):
            return
        matchers = [compile_pattern(p) for p in upcoming]
        for c in list(self.server.clients.values()):
            if c.user is not old or not (c.channels or c.patterns):
                continue
            lost = any(p not in upcoming for p in c.patterns) or any(
                not any(m(ch) for m in matchers) for ch in c.channels
            )
            if lost:
                _disconnect(actor, c)


def _disconnect(actor: Client | None, c: Client) -> None:
    if c is actor:
        c.close_after_reply = True  # its reply goes out first
    else:
        c.close_now()
