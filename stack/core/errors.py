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
# Redis 7.0's wording (7.2 reads "HELLO <proto> AUTH"; 7.0.15, the Redis we follow, does not).
HELLO_NOAUTH = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time"
)
EXECABORT_BECAUSE = "EXECABORT Transaction discarded because of: "
DENIED = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from the "
    "loopback interface. If you want to connect from external computers to Redis you may adopt "
    "one of the following solutions: 1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the "
    "same host the server is running, however MAKE SURE Redis is not publicly accessible from "
    "internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    "you can just disable the protected mode by editing the Redis configuration file, and "
    "setting the protected mode option to 'no', and then restarting the server. 3) If you "
    "started the server manually just for testing, restart it with the '--protected-mode no' "
    "option. 4) Setup a an authentication password for the default user. NOTE: You only need to "
    "do one of the above things in order for the server to start accepting connections from the "
    "outside."
)
PROTECTED_CONFIG = "can't set protected config"
PORT_UNAVAILABLE = "Unable to listen on this port. Check server logs."  # CONFIG SET port
BAD_DATA_FORMAT = "ERR Bad data format"
MAX_CLIENTS = "ERR max number of clients reached"
DB_RANGE = "ERR DB index is out of range"
NO_SUCH_KEY = "ERR no such key"
SAME_OBJECT = "ERR source and destination objects are the same"
OVERFLOW = "ERR increment or decrement would overflow"
READONLY = "READONLY You can't write against a read only replica."
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
# Semi-sync: the write was applied on the master (and logged for the replicas) but too few
# replicas acknowledged it within min-replicas-timeout; a failover may lose it. Not Redis's
# (Redis has no such case): see docs/replication.md.
UNACKED = (
    "UNACKED Written on the master, but not acknowledged by enough replicas in time; a failover "
    "may lose it"
)
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
# Slot ownership (a node with a slot map, docs/cluster.md "What a node knows"): Redis
# Cluster's redirections and refusals, spelled as Redis spells them.
TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot"
SLOT_UNASSIGNED = "CLUSTERDOWN Hash slot not served"
# Codis's slot commands (its redis patches, slots.c), spelled as Codis spells them.
SLOTSRESTORE_BAD_TTL = "ERR invalid ttl value, must be >= 0"
SLOTSRESTORE_BAD_PAYLOAD = "ERR dump payload version or checksum are wrong"
SLOTSRESTORE_BAD_FORMAT = "ERR bad data format"
SLOTS_VALUE_RANGE = "ERR value is out of range"
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
UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
UNBLOCK_REASON = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
NAN_OR_INFINITY = "ERR increment would produce NaN or Infinity"
VALUE_NAN_OR_INFINITY = "ERR value is NaN or Infinity"


def wrong_arity(name: str) -> ReplyError:
    return ReplyError(f"ERR wrong number of arguments for '{name}' command")


def echo(b: bytes) -> str:
    """Client bytes to show in an error as Redis does: the bytes themselves, whatever they are.

    They travel as lone surrogates (``surrogateescape``) and ``encode_error`` turns them back
    into the same bytes. Redis formats them with ``%s``, so they end at the first NUL."""
    nul = b.find(0)
    if nul >= 0:
        b = b[:nul]
    return b.decode("utf-8", "surrogateescape")


def unknown_command(name: bytes, args: list[bytes]) -> ReplyError:
    shown = b""
    for a in args:  # Redis shows at most 128 bytes of arguments in total
        room = 128 - len(shown)
        if room <= 0:
            break
        nul = a.find(0)
        shown += b"'" + (a if nul < 0 else a[:nul])[:room] + b"' "
    return ReplyError(
        f"ERR unknown command '{_clip(name)}', with args beginning with: {echo(shown)}"
    )


def unknown_subcommand(sub: bytes, container: str) -> ReplyError:
    return ReplyError(f"ERR unknown subcommand '{_clip(sub)}'. Try {container.upper()} HELP.")


def subcommand_syntax(args: list[bytes]) -> ReplyError:
    """A subcommand called with arguments its container does not take (Redis's
    ``addReplySubcommandSyntaxError``)."""
    sub = args[1][:128].decode("utf-8", "replace")
    container = args[0].decode("utf-8", "replace").upper()
    return ReplyError(
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."
    )


def protected_command(command: str, option: str) -> ReplyError:
    """A command that ``enable-<command>-command`` does not allow for this client."""
    return ReplyError(
        f'ERR {command} command not allowed. If the {option} option is set to "local", you can '
        "run it from a local connection, otherwise you need to set this option in the "
        "configuration file, and then restart the server."
    )


def stale_epoch(given: int, held: int) -> str:
    """NODEEPOCH SET with an epoch older than the one the node serves under (ledis's own)."""
    return f"ERR stale epoch {given}: this node serves under epoch {held}"


def write_failed(detail: str) -> str:
    """A write batch the store could not write (Redis words its AOF write errors so)."""
    return f"MISCONF Errors writing to the data store, the write was not applied: {detail}"


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
    return echo(b[:128])


# connection (HELLO, CLIENT SETNAME)
NOPROTO = "NOPROTO unsupported protocol version"
BAD_PROTOVER = "ERR Protocol version is not an integer or out of range"
BAD_CLIENT_NAME = "ERR Client names cannot contain spaces, newlines or special characters."
# transactions
MULTI_NESTED = "ERR MULTI calls can not be nested"
EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"
NOT_IN_MULTI = "ERR Command not allowed inside a transaction"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."


def hello_syntax(option: bytes) -> str:
    return f"ERR Syntax error in HELLO option '{echo(option)}'"


# --- ACL (Redis 7.0's acl.c, server.c and multi.c) ---------------------------------------------
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = (
    "NOPERM this user has no permissions to access one of the channels used as arguments"
)
# At EXEC, for a queued command the rules no longer allow, with one of the reasons below.
NOPERM_AT_EXEC = (
    "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC "
    "call. This command is no longer allowed for the following reason: "
)
EXEC_DENIED_COMMAND = "no permission to execute the command or subcommand"
EXEC_DENIED_KEY = "no permission to touch the specified keys"
EXEC_DENIED_CHANNEL = "no permission to access one of the channels used as arguments"
ACL_BAD_USERNAME = "ERR Usernames can't contain spaces or null characters"
ACL_DELETE_DEFAULT = "ERR The 'default' user cannot be removed"
ACL_NO_FILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration."
)
ACL_SAVE_FAILED = (
    "ERR There was an error trying to save the ACLs. Please check the server logs for more "
    "information"
)
ACL_GENPASS_BITS = (
    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive "
    "number up to 4096"
)
SORT_BY_DENIED = "ERR BY option of SORT denied due to insufficient ACL permissions."
SORT_GET_DENIED = "ERR GET option of SORT denied due to insufficient ACL permissions."

# What ACL SETUSER (and the ACL file) say about a rule they cannot apply.
RULE_UNKNOWN = "Unknown command or category name in ACL"
RULE_SYNTAX = "Syntax error"
RULE_AFTER_ALLKEYS = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
    "have any effect. Try 'resetkeys' to start with an empty list of patterns"
)
RULE_AFTER_ALLCHANNELS = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
    "not have any effect. Try 'resetchannels' to start with an empty list of channels"
)
RULE_NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
RULE_BAD_HASH = (
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
    "characters"
)
RULE_SUBCOMMAND_FIRSTARG = "Allowing first-arg of a subcommand is not supported"
RULE_DUPLICATE_USER = "Duplicate user found. A user can only be defined once in config files"


def noperm_command(name: str) -> str:
    """A command (``get``) or subcommand (``config|set``) the user may not run."""
    return f"NOPERM this user has no permissions to run the '{name}' command"


def moved(slot: int, addr: str) -> str:
    """Redis Cluster's redirection to the node that serves ``slot``."""
    return f"MOVED {slot} {addr}"


def ask(slot: int, addr: str) -> str:
    """Redis Cluster's one-time redirection: the key may be at ``addr`` (the slot migrates)."""
    return f"ASK {slot} {addr}"


def invalid_slot(slot: int) -> str:
    return f"ERR invalid slot number = {slot}"


def invalid_slot_count(count: int) -> str:
    return f"ERR invalid slot count = {count}"


def invalid_migrate_timeout(timeout: int) -> str:
    return f"ERR invalid timeout = {timeout}"


def stale_slot_map(epoch: int, current: int) -> str:
    return f"ERR stale slot map epoch {epoch} (this node has epoch {current})"


def invalid_slot_map(reason: str) -> str:
    return f"ERR invalid slot map: {reason}"


def migrate_connect_failed(target: str, reason: str) -> str:
    """Codis's words when the target of SLOTSMGRT* cannot be reached."""
    return f"ERR Can't connect to target node: {target}: {reason}"


MIGRATE_IO = "IOERR error or timeout reading from target"


def migrate_refused(reply: str) -> str:
    """The target answered a restore with an error (Codis's words, and the target's)."""
    return f"ERR error on slotsrestore, migration failed: {reply}"


def key_in_flight(key: bytes, ms: int) -> str:
    """SLOTSMGRT*ONE waited its timeout for a key another migration is moving."""
    return f"TRYAGAIN key '{echo(key[:128])}' is still on its way to the target after {ms} ms"


MIGRATE_STOPPING = "ERR the node is shutting down: the move stopped, its keys stay here"
SLOTSFORGET_NO_NAME = "ERR SLOTSFORGET needs the lost link's client name"


def slotsforget_too_many(limit: int) -> str:
    return f"ERR SLOTSFORGET takes at most {limit} keys per call"


UNBLOCKED_BEFORE_MOVE = (
    "UNBLOCKED the command waited for a key on its way to another node, and did not run"
)
UNBLOCKED_MOVE_GOES_ON = "UNBLOCKED client unblocked; the slot work it asked for goes on"


def staging_refused(key: bytes, reason: str) -> str:
    return f"ERR SLOTSSTAGE '{echo(key[:128])}': {reason}"


# Scripting (Redis 7.0's wording)
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = (
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can "
    "either wait the script termination or kill the server in a hard way using the SHUTDOWN "
    "NOSAVE command."
)
BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = (
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)
SCRIPT_NEGATIVE_KEYS = "ERR Number of keys can't be negative"
SCRIPT_TOO_MANY_KEYS = "ERR Number of keys can't be greater than number of args"
SCRIPT_NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
SCRIPT_BAD_ARG = "ERR Lua redis lib command arguments must be strings or integers"
SCRIPT_UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
SCRIPT_WRONG_ARITY = "ERR Wrong number of args calling Redis command from script"
SCRIPT_NOT_ALLOWED = "ERR This Redis command is not allowed from script"
SCRIPT_WRITE_IN_RO = "ERR Write commands are not allowed from read-only scripts."
SCRIPT_WRITE_FLAG_IN_RO = "ERR Can not execute a script with write flag using *_ro command."
SCRIPT_WRITE_FLAG_ON_REPLICA = "READONLY Can not run script with write flag on readonly replica"
SCRIPT_NO_CLUSTER = "ERR Can not run script on cluster, 'no-cluster' flag is set."
# redis.call on a key the node does not serve, or of another slot than the script's keys (a
# node that knows its slots: Redis Cluster's rules for scripts)
SCRIPT_NON_LOCAL_KEY = "ERR Script attempted to access a non local key in a cluster node"
SCRIPT_CROSS_SLOT = "ERR Script attempted to access keys that do not hash to the same slot"
# ledis: a key held by a slot migration, not declared in KEYS (declared keys wait before the run)
SCRIPT_KEY_MOVING = (
    "ERR Script attempted to access a key that is being migrated; "
    "name it in KEYS and the script waits for the move"
)

# Redis 7 functions (FUNCTION, FCALL), Redis 7.0's wording
FUNCTION_NOT_FOUND = "ERR Function not found"
FUNCTION_BAD_NUMKEYS = "ERR Bad number of keys provided"
LIBRARY_NOT_FOUND = "ERR Library not found"
LIBRARY_MISSING_METADATA = "ERR Missing library metadata"
LIBRARY_INVALID_METADATA = "ERR Invalid library metadata"
LIBRARY_NO_NAME = "ERR Library name was not given"
LIBRARY_NAME_TWICE = "ERR Invalid metadata value, name argument was given multiple times"
LIBRARY_BAD_NAME = (
    "ERR Library names can only contain letters, numbers, or underscores(_) and must be at "
    "least one character long"
)
LIBRARY_NO_FUNCTIONS = "ERR No functions registered"
FUNCTION_LOAD_TIMEOUT = "ERR FUNCTION LOAD timeout"
FUNCTION_FLUSH_OPTION = "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
FUNCTION_RESTORE_POLICY = (
    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
)
FUNCTION_BAD_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
FUNCTION_RESTORE_NOT_FUNCTIONS = "ERR given type is not a function"
FUNCTION_LIST_NO_PATTERN = "ERR library name argument was not given"


def function_unknown_option(option: bytes) -> str:
    return f"ERR Unknown option given: {echo(option)}"


def function_unknown_list_argument(arg: bytes) -> str:
    return f"ERR Unknown argument {echo(arg)}"


def library_engine_not_found(engine: bytes) -> str:
    return f"ERR Engine '{echo(engine)}' not found"


def library_invalid_metadata(value: bytes) -> str:
    return f"ERR Invalid metadata value given: {echo(value)}"


def library_exists(name: bytes, quoted: bool = True) -> str:
    """FUNCTION LOAD quotes the name, FUNCTION RESTORE does not (Redis 7.0)."""
    shown = echo(name)
    return (
        f"ERR Library '{shown}' already exists" if quoted else f"ERR Library {shown} already exists"
    )


def function_exists(name: bytes) -> str:
    return f"ERR Function {echo(name)} already exists"


def function_compile_error(message: str) -> str:
    return f"ERR Error compiling function: {message}"


def function_register_error(message: str) -> str:
    return f"ERR Error registering functions: {message}"


def epoch_not_stored(reason: str) -> str:
    """NODEEPOCH SET whose epoch could not be written to the data dir (ledis's own; a fence is
    applied in memory all the same)."""
    return f"ERR cannot store the node epoch: {reason}"


# LSYNC (PSYNC/SYNC in Redis) to a replica whose own link to its master is not up
NO_MASTER_LINK = "NOMASTERLINK Can't SYNC while not connected with my master"
