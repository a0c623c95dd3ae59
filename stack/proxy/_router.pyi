from array import array

def route(
    buf: bytes,
    pos: int,
    names: dict[bytes, int],
    arities: array[int],
    backends: bytes,
    calls: array[int],
    slot_ops: array[int],
    max_bulk: int,
    max_argc: int,
    /,
) -> tuple[int, int, int, bytes | None, dict[int, bytes] | None, int]: ...
def split(data: bytes, pos: int, max_bulk: int, /) -> tuple[list[bytes], int, bool, int]: ...
