"""``#!lua flags=no-writes,allow-oom`` on a script's first line (Redis 7)."""

from __future__ import annotations

from stack.core.resp import ReplyError

FLAGS = frozenset(
    {b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"}
)


def parse(body: bytes) -> tuple[bytes, frozenset[bytes] | None]:
    """The body to compile (the shebang line turned into a comment, so line numbers hold) and
    its flags; None when the script has no shebang (Redis's legacy defaults)."""
    if not body.startswith(b"#!"):
        return body, None
    end = body.find(b"\n")
    line = body[2:] if end < 0 else body[2:end]
    parts = line.split(b" ")
    if parts[0] != b"lua":
        raise ReplyError(
            f"ERR Unexpected engine in script shebang: #!{parts[0].decode('utf-8', 'replace')}"
        )
    flags: set[bytes] = set()
    for part in parts[1:]:
        if not part:
            continue
        if not part.startswith(b"flags="):
            raise ReplyError(f"ERR Unknown lua shebang option: {part.decode('utf-8', 'replace')}")
        for flag in part[6:].split(b","):
            if not flag:
                continue
            if flag not in FLAGS:
                raise ReplyError(
                    f"ERR Unexpected flag in script shebang: {flag.decode('utf-8', 'replace')}"
                )
            flags.add(flag)
    return b"--" + body[2:], frozenset(flags)
