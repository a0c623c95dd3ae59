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

# Numeric arguments: Redis's conversions (object.c, util.c) and the bounds commands put on them.
OUT_OF_RANGE = "ERR value is out of range"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
INVALID_CURSOR = "ERR invalid cursor"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
NAN_OR_INFINITY = "ERR increment would produce NaN or Infinity"
VALUE_NAN_OR_INFINITY = "ERR value is NaN or Infinity"


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


def out_of_range(low: int, high: int) -> str:
    """Redis's getRangeLongFromObjectOrReply, for a number outside [low, high]."""
    return f"ERR value is out of range, value must between {low} and {high}"


def reply_too_large(limit: int) -> ReplyError:
    """A count whose reply would not fit in the client's output buffer (ledis refuses it
    before any work; Redis 7.0 builds it until memory runs out)."""
    return ReplyError(
        f"{OUT_OF_RANGE}, the reply would exceed the output buffer limit ({limit} bytes)"
    )


def _clip(b: bytes) -> str:
    return b[:128].decode("utf-8", "replace")
