"""ACL SETUSER / GETUSER / DELUSER / LIST / USERS / WHOAMI / CAT / LOG / GENPASS / DRYRUN /
SAVE / LOAD / HELP, with Redis 7.0's replies. The rules themselves live in ``..acl``."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import TABLE
from stack.core.resp import OK, ReplyError

from ..acl.catalog import CATALOG, CATEGORIES
from ..acl.selector import RuleError, has_spaces
from . import handler, help_lines
from .args import to_int

if TYPE_CHECKING:
    from ..client import Client

GENPASS_MAX_BITS = 4096


@handler("acl|setuser")
def acl_setuser(c: Client, args: list[bytes]) -> object:
    name = args[2]
    if has_spaces(name):
        raise ReplyError(errors.ACL_BAD_USERNAME)
    try:
        c.server.acl.set_user(c, name, args[3:])
    except RuleError as e:  # newlines in a rule cannot end the error line (Redis: "Safe")
        raise ReplyError("ERR " + str(e).replace("\r", " ").replace("\n", " ")) from None
    return OK


@handler("acl|deluser")
def acl_deluser(c: Client, args: list[bytes]) -> object:
    try:
        return c.server.acl.delete_users(c, args[2:])
    except ValueError as e:
        raise ReplyError(str(e)) from None


@handler("acl|getuser")
def acl_getuser(c: Client, args: list[bytes]) -> object:
    user = c.server.acl.users.get(args[2])
    return None if user is None else user.getuser_reply()


@handler("acl|list")
def acl_list(c: Client, args: list[bytes]) -> object:
    users = c.server.acl.users
    return [users[name].line() for name in sorted(users)]


@handler("acl|users")
def acl_users(c: Client, args: list[bytes]) -> object:
    return sorted(c.server.acl.users)


@handler("acl|whoami")
def acl_whoami(c: Client, args: list[bytes]) -> object:
    return c.user.name


@handler("acl|cat")
def acl_cat(c: Client, args: list[bytes]) -> object:
    if len(args) == 2:
        return [cat.encode() for cat in CATEGORIES]
    if len(args) > 3:
        raise errors.subcommand_syntax(args)
    category = args[2].decode("latin-1").lower()
    if category not in CATALOG.members:
        raise ReplyError(f"ERR Unknown category '{errors.echo(args[2][:128])}'")
    mask = CATALOG.members[category]
    return [spec.name.encode() for cid, spec in enumerate(CATALOG.specs) if mask >> cid & 1]


@handler("acl|genpass")
def acl_genpass(c: Client, args: list[bytes]) -> object:
    if len(args) > 3:
        raise errors.subcommand_syntax(args)
    bits = to_int(args[2]) if len(args) == 3 else 256
    if not 0 < bits <= GENPASS_MAX_BITS:
        raise ReplyError(errors.ACL_GENPASS_BITS)
    return secrets.token_hex((bits + 7) // 8)[: (bits + 3) // 4].encode()


@handler("acl|log")
def acl_log(c: Client, args: list[bytes]) -> object:
    if len(args) > 3:
        raise errors.subcommand_syntax(args)
    log = c.server.acl.log
    count = 10
    if len(args) == 3:
        if args[2].lower() == b"reset":
            log.reset()
            return OK
        count = to_int(args[2])
    return log.reply(count)


@handler("acl|dryrun")
def acl_dryrun(c: Client, args: list[bytes]) -> object:
    acl = c.server.acl
    user = acl.users.get(args[2])
    if user is None:
        raise ReplyError(f"ERR User '{errors.echo(args[2])}' not found")
    call = args[3:]
    spec = TABLE.resolve(call, strict=True)
    if spec is None:
        raise ReplyError(f"ERR Command '{errors.echo(call[0])}' not found")
    if not spec.arity_ok(len(call)):
        raise errors.wrong_arity(spec.name)
    denied = acl.dryrun(user, spec, call)
    return OK if denied is None else denied


@handler("acl|save")
def acl_save(c: Client, args: list[bytes]) -> object:
    acl = c.server.acl
    if not c.server.config["aclfile"]:
        raise ReplyError(errors.ACL_NO_FILE)
    if not acl.save_file():
        raise ReplyError(errors.ACL_SAVE_FAILED)
    return OK


@handler("acl|load")
def acl_load(c: Client, args: list[bytes]) -> object:
    if not c.server.config["aclfile"]:
        raise ReplyError(errors.ACL_NO_FILE)
    error = c.server.acl.load_file(c)
    if error:
        raise ReplyError("ERR " + error)
    return OK


@handler("acl|help")
def acl_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "ACL",
        [
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the "
            "command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    )
