# Types of the C extension _fastlane.c (see its header comment and fastlane.py).

from collections.abc import Callable, Iterable

def run(
    buf: bytes,
    pos: int,
    prefix: bytes,
    cache: dict[bytes, bytes | None],
    cache_old: dict[bytes, bytes | None],
    pending: dict[bytes, bytes | None],
    access: AccessTimes,
    clock: float,
    waited: dict[bytes, object],
    writes_ok: bool,
    resp3: bool,
    max_value: int,
    load: Callable[[bytes], bytes | None] | None = None,
    deadline: float = 0.0,
    slots: bytes | bytearray | None = None,
    inflight: dict[bytes, bytes | None] | None = None,
    floors: dict[bytes, bytes] | None = None,
    ceilings: dict[bytes, bytes] | None = None,
    ranges: dict[bytes, tuple[bytes, int, int, bytes]] | None = None,
    first: Callable[[bytes, bytes, bool], tuple[bytes, bytes] | None] | None = None,
    pick: Callable[[bytes, int], bytes] | None = None,
) -> tuple[bytes, int, tuple[int, ...], int, int, int, int, int]: ...
def take(ctx: tuple[object, ...], client: object, buf: bytes, pos: int, deadline: float) -> int: ...
def slot(key: bytes) -> int: ...
def bulk_slice(body: bytes, skip: int, n: int) -> bytes | None: ...
def encode_bulks(items: Iterable[bytes | tuple[bytes, bytes]], cut: int) -> tuple[bytes, int]: ...
def write_pending(
    pending: dict[bytes, bytes | None],
    put: Callable[[bytes, bytes], None],
    delete: Callable[[bytes], None],
    time_ms: int,
    log: bool,
    max_cached: int,
) -> tuple[bytes | None, list[bytes]]: ...

class AccessTimes:
    """Last access time per key; not iterable."""

    def __init__(self, size: int = ...) -> None: ...
    def __getitem__(self, key: bytes) -> float: ...
    def __setitem__(self, key: bytes, value: float) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...
    def __len__(self) -> int: ...
    def get(self, key: bytes, default: float | None = None) -> float | None: ...
    def pop(self, key: bytes, default: float | None = None) -> float | None: ...

class Reader:
    """Client's base: data_received in C (a read straight to the lane)."""

    def attach(
        self,
        plain: Callable[..., bool],
        ctx: tuple[object, ...],
        after_commands: Callable[..., None],
        keyspace: object,
        engine: object,
    ) -> None: ...
    def data_received(self, data: bytes) -> None: ...
