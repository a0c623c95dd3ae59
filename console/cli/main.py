"""``ledis-cli``: the REPL, one-shot commands, commands from stdin, and --pipe mass insertion."""

from __future__ import annotations

import argparse
import os
import selectors
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from stack import __version__
from stack.core.reply_parser import INCOMPLETE, ErrorReply, ReplyParser
from stack.core.resp import ProtocolError, split_args

from . import settings as settings_mod
from .connection import Connection, ConnectionLost, Target
from .render import format_raw, format_tty

DESCRIPTION = """\
ledis-cli: a Redis-protocol command line that knows every command's arguments.

With no command it starts the interactive prompt (completion with Tab, greyed hints of the
arguments still to type, highlighting, 'help @group', history in ~/.ledis-cli-history).
With a command it runs it and prints the reply like redis-cli; with stdin not a terminal it
runs one command per line. Works against ledis-server, ledis-proxy and Redis.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ledis-cli",
        description=DESCRIPTION,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("--version", action="version", version=f"ledis-cli {__version__}")
    p.add_argument("-h", dest="host", metavar="HOST", help="server host (default 127.0.0.1)")
    p.add_argument("-p", dest="port", type=int, metavar="PORT", help="server port (default 6380)")
    p.add_argument(
        "-s", dest="socket", metavar="SOCKET", help="server unix socket (overrides -h/-p)"
    )
    p.add_argument(
        "-a",
        dest="password",
        metavar="PASSWORD",
        help="password to AUTH with (prefer the LEDISCLI_AUTH environment variable)",
    )
    p.add_argument("--user", help="user name for AUTH (with -a)")
    p.add_argument(
        "-3", dest="resp3", action="store_true", help="speak RESP3 (HELLO 3 on connecting)"
    )
    p.add_argument("-n", dest="db", type=int, metavar="DB", help="database number")
    p.add_argument(
        "-u", dest="uri", metavar="URI", help="server URI: redis://[user:password@]host:port[/db]"
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="print replies raw (default when stdout is not a terminal)",
    )
    p.add_argument(
        "--no-raw",
        action="store_true",
        help="print replies as on a terminal even when stdout is not one",
    )
    p.add_argument(
        "-r", dest="repeat", type=int, default=1, metavar="N", help="run the command N times"
    )
    p.add_argument(
        "-i",
        dest="interval",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long between repeated commands",
    )
    p.add_argument(
        "-x",
        dest="stdin_arg",
        action="store_true",
        help="read the last argument from standard input",
    )
    p.add_argument(
        "-e",
        dest="exit_on_error",
        action="store_true",
        help="exit with status 1 when the command replies with an error",
    )
    p.add_argument(
        "--eval",
        metavar="FILE",
        help="run the Lua script in FILE: ledis-cli --eval FILE key1 key2 , arg1 arg2",
    )
    p.add_argument(
        "--pipe",
        action="store_true",
        help="mass insertion: send the RESP read from stdin, report replies and errors",
    )
    p.add_argument(
        "--pipe-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up waiting for replies in --pipe mode after this long",
    )
    p.add_argument(
        "--no-auth-warning",
        action="store_true",
        help="do not warn about passwords on the command line",
    )
    p.add_argument(
        "--history-file",
        metavar="FILE",
        help="history file (default ~/.ledis-cli-history; '' for none)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        default="ledis-console.toml",
        help="console settings ([cli] host, port, history_file)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments to run")
    return p


def target_from(opts: argparse.Namespace, cfg: settings_mod.CliSettings) -> Target:
    t = Target(host=cfg.host, port=cfg.port)
    if opts.uri:
        u = urlparse(opts.uri)
        if u.scheme not in ("redis", ""):
            raise SystemExit(f"ledis-cli: unsupported URI scheme '{u.scheme}' in {opts.uri}")
        t.host = u.hostname or t.host
        t.port = u.port or t.port
        if u.password is not None:
            t.password = unquote(u.password)
            t.user = unquote(u.username) if u.username else None
        if u.path.strip("/"):
            t.db = int(u.path.strip("/"))
    if opts.host:
        t.host = opts.host
    if opts.port is not None:
        t.port = opts.port
    password = opts.password or os.environ.get("LEDISCLI_AUTH") or os.environ.get("REDISCLI_AUTH")
    if password is not None:
        t.password = password
        if opts.user:
            t.user = opts.user
    if opts.db is not None:
        t.db = opts.db
    if opts.socket:
        t.socket_path = opts.socket
    if opts.resp3:
        t.protocol = 3
    return t


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    try:
        cfg = settings_mod.load(Path(opts.config))
    except settings_mod.SettingsError as e:
        print(f"ledis-cli: {e}", file=sys.stderr)
        return 2
    target = target_from(opts, cfg)
    if (opts.password or (opts.uri and target.password)) and not opts.no_auth_warning:
        print(
            "Warning: Using a password with '-a' or '-u' option on the command line interface "
            "may not be safe.",
            file=sys.stderr,
        )
    raw = opts.raw or (not opts.no_raw and not sys.stdout.isatty())
    conn = Connection(target)
    if opts.pipe:
        return pipe_mode(conn, opts.pipe_timeout)
    if opts.eval:
        try:
            script = Path(opts.eval).read_bytes()
        except OSError as e:
            print(f"Can't open file '{opts.eval}': {e.strerror}", file=sys.stderr)
            return 1
        return one_shot(conn, eval_args(script, _words(opts.command)), opts, raw)
    if opts.command:
        return one_shot(conn, _words(opts.command), opts, raw)
    if not sys.stdin.isatty():
        return from_stdin(conn, raw)
    from .repl import Repl

    history = cfg.history_file if opts.history_file is None else opts.history_file
    path = Path(os.path.expanduser(history)) if history else None
    return Repl(conn, history_path=path).run()


def _print_reply(reply: object, raw: bool) -> None:
    if raw:
        sys.stdout.buffer.write(format_raw(reply))
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(format_tty(reply))
        sys.stdout.flush()


def _connect(conn: Connection) -> bool:
    try:
        conn.connect()
    except ConnectionLost as e:
        print(e, file=sys.stderr)
        return False
    return True


def _words(command: list[str]) -> list[bytes]:
    return [a.encode("utf-8", "surrogateescape") for a in command]


def eval_args(script: bytes, words: list[bytes]) -> list[bytes]:
    """``--eval``: EVAL of the script, the words before the first lone "," its keys and those
    after it its arguments, as redis-cli splits them."""
    keys: list[bytes] = []
    argv: list[bytes] = []
    comma = False
    for w in words:
        if w == b"," and not comma:
            comma = True
        else:
            (argv if comma else keys).append(w)
    return [b"EVAL", script, b"%d" % len(keys), *keys, *argv]


def one_shot(conn: Connection, args: list[bytes], opts: argparse.Namespace, raw: bool) -> int:
    if opts.stdin_arg:
        args.append(sys.stdin.buffer.read())
    if not _connect(conn):
        return 1
    name = args[0].lower()
    if name in (b"subscribe", b"psubscribe"):
        return listen(conn, args, raw)
    if name == b"monitor":
        return monitor(conn, raw)
    for n in range(max(opts.repeat, 1)):
        if n and opts.interval:
            time.sleep(opts.interval)
        try:
            reply = conn.call(args)
        except ConnectionLost as e:
            if name == b"shutdown":  # the server went down as asked: nothing to say
                return 0
            print(f"Error: {e}", file=sys.stderr)
            return 1
        if isinstance(reply, ErrorReply) and opts.exit_on_error:
            print(reply, file=sys.stderr)  # as redis-cli -e: the error alone, and stop
            return 1
        _print_reply(reply, raw)
    return 0


def listen(conn: Connection, args: list[bytes], raw: bool) -> int:
    """``ledis-cli SUBSCRIBE ch``: print confirmations, then messages until interrupted."""
    try:
        for reply in conn.subscribe(args):
            _print_reply(reply, raw)
        if not raw:
            print("Reading messages... (press Ctrl-C to quit)", flush=True)
        while True:
            _print_reply(conn.read_message(), raw)
    except KeyboardInterrupt:
        return 0
    except ConnectionLost as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


def monitor(conn: Connection, raw: bool) -> int:
    """``ledis-cli MONITOR``: its OK, then every command the server runs, until the connection
    ends (exit 1, as redis-cli) or SIGINT (exit 0)."""
    try:
        for reply in conn.monitor():
            _print_reply(reply, raw)
    except KeyboardInterrupt:
        return 0
    except ConnectionLost as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


def from_stdin(conn: Connection, raw: bool) -> int:
    if not _connect(conn):
        return 1
    for line in sys.stdin.buffer:
        try:
            args = split_args(line.rstrip(b"\r\n"))
        except ProtocolError:
            print("Invalid argument(s)", file=sys.stderr)
            continue
        if not args:
            continue
        if args[0].lower() == b"monitor":  # a stream: the lines after it are never run
            return monitor(conn, raw)
        try:
            reply = conn.call(args)
        except ConnectionLost as e:
            if args[0].lower() == b"shutdown":
                return 0
            print(f"Error: {e}", file=sys.stderr)
            return 1
        _print_reply(reply, raw)
    return 0


def pipe_mode(conn: Connection, timeout: float) -> int:
    """Send stdin's RESP as fast as the server takes it, counting replies and errors."""
    if not _connect(conn):
        return 1
    assert conn.sock is not None
    marker = os.urandom(20).hex().encode()
    data = sys.stdin.buffer.read() + b"*2\r\n$4\r\nECHO\r\n$40\r\n" + marker + b"\r\n"
    sock = conn.sock
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    parser = ReplyParser()
    sent = 0
    replies = errors = 0
    done_sending_reported = False
    deadline = time.monotonic() + timeout
    finished = False
    while not finished:
        if time.monotonic() > deadline:
            print("No replies for too long: giving up.", file=sys.stderr)
            return 1
        for _key, events in sel.select(timeout=1.0):
            if events & selectors.EVENT_WRITE and sent < len(data):
                sent += sock.send(data[sent : sent + (1 << 16)])
                if sent >= len(data):
                    sel.modify(sock, selectors.EVENT_READ)
                    print("All data transferred. Waiting for the last reply...")
                    done_sending_reported = True
            if events & selectors.EVENT_READ:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    print("Error: Server closed the connection", file=sys.stderr)
                    return 1
                deadline = time.monotonic() + timeout
                parser.feed(chunk)
                while (reply := parser.get()) is not INCOMPLETE:
                    if reply == marker and sent >= len(data):
                        finished = True
                        break
                    replies += 1
                    if isinstance(reply, ErrorReply):
                        errors += 1
                        print(reply, file=sys.stderr)
    if not done_sending_reported:
        print("All data transferred. Waiting for the last reply...")
    print("Last reply received from server.")
    print(f"errors: {errors}, replies: {replies}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
