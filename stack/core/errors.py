"""Error replies shared by every RESP endpoint, spelled exactly as Redis 7 spells them."""

from __future__ import annotations

from .resp import ReplyError

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NO_PASSWORD = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
MAX_CLIENTS = "ERR max number of clients reached"
DB_RANGE = "ERR DB index is out of range"
NO_SUCH_KEY = "ERR no such key"
SAME_OBJECT = "ERR source and destination objects are the same"
OVERFLOW = "ERR increment or decrement would overflow"
READONLY = "READONLY You can't write against a read only replica."
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
# COMMAND GETKEYS / GETKEYSANDFLAGS
GETKEYS_INVALID_COMMAND = "ERR Invalid command specified"
GETKEYS_NO_KEYS = "ERR The command has no key arguments"
GETKEYS_BAD_ARITY = "ERR Invalid number of arguments specified for command"
GETKEYS_BAD_ARGS = "ERR Invalid arguments specified for command"


def wrong_arity(name: str) -> ReplyError:
    return ReplyError(f"ERR wrong number of arguments for '{name}' command")


def unknown_command(name: bytes, args: list[bytes]) -> ReplyError:
    shown = ""
    for a in args:  # Redis shows at most 128 characters of arguments in total
        room = 128 - len(shown)
        if room <= 0:
            break
        shown += f"'{a[:room].decode('utf-8', 'replace')}' "
    return ReplyError(f"ERR unknown command '{_clip(name)}', with args beginning with: {shown}")


def unknown_subcommand(sub: bytes, container: str) -> ReplyError:
    return ReplyError(f"ERR unknown subcommand '{_clip(sub)}'. Try {container.upper()} HELP.")


def invalid_expire(command: str) -> ReplyError:
    return ReplyError(f"ERR invalid expire time in '{command}' command")


def _clip(b: bytes) -> str:
    return b[:128].decode("utf-8", "replace")
