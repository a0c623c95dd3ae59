"""Bitmap commands over string values (bit 0 is the most significant bit of byte 0)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import ReplyError, strict_int

from ..notifications import GENERIC, STRING, notify
from ..storage import keyformat as kf
from ..storage import strings as strstore
from ..storage.keyspace import record_expire
from ..storage.strings import (
    StoredString,
    clamp_range,
    lookup_record,
    lookup_stored,
    stored_record,
    stored_string,
)
from . import handler
from .args import max_string, syntax_error, to_int, wrap_int64

if TYPE_CHECKING:
    from ..client import Client

BIT_OFFSET_ERROR = errors.BIT_OFFSET
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


def bit_offset(c: Client, raw: bytes, hash_ok: bool = False, width: int = 1) -> int:
    """A bit offset (``#N`` means N * width when ``hash_ok``), bounded by the max string size."""
    multiply = hash_ok and raw[:1] == b"#"
    value = to_int(raw[1:] if multiply else raw, BIT_OFFSET_ERROR)
    if multiply:
        value = wrap_int64(value * width)  # a C long long multiplication, as in Redis
    if value < 0 or (value >> 3) >= max_string(c):
        raise ReplyError(BIT_OFFSET_ERROR)
    return value


@handler("setbit")
def setbit(c: Client, args: list[bytes]) -> object:
    offset = bit_offset(c, args[2])
    if args[3] not in (b"0", b"1"):
        raise ReplyError(errors.BIT_VALUE)
    on = args[3] == b"1"
    mkey, old = c.db.read(args[1])
    byte = offset >> 3
    ks = c.server.keyspace
    current = strstore.read_range(ks, mkey, stored_record(old), byte, byte + 1) if old else b""
    value = current[0] if current else 0
    mask = 0x80 >> (offset & 7)
    previous = 1 if value & mask else 0
    if current and previous == on:  # as Redis: no write (nor event) when nothing changes
        return previous
    value = value | mask if on else value & ~mask & 0xFF
    expire = record_expire(old) if old is not None else 0
    strstore.write_at(ks, mkey, old, byte, bytes([value]), expire)
    notify(c, STRING, "setbit", args[1])
    return previous


@handler("getbit")
def getbit(c: Client, args: list[bytes]) -> object:
    offset = bit_offset(c, args[2])
    view = lookup_stored(c.db, args[1])
    if view is None or (offset >> 3) >= view.length:
        return 0
    return 1 if view.read(offset >> 3, (offset >> 3) + 1)[0] & (0x80 >> (offset & 7)) else 0


def _unit_is_bit(args: list[bytes], index: int) -> bool:
    if len(args) <= index:
        return False
    unit = args[index].upper()
    if unit == b"BIT":
        return True
    if unit == b"BYTE":
        return False
    raise syntax_error()


def count_bits(view: StoredString, first_bit: int, last_bit: int) -> int:
    """Set bits in the inclusive bit range, reading only what is stored of it."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    if view.inline is not None:
        data = view.inline
        total = int.from_bytes(data[first_byte : last_byte + 1], "big").bit_count()
        first, last = data[first_byte], data[last_byte]
    else:
        total = 0
        for _offset, piece in view.present(first_byte, last_byte + 1):
            total += int.from_bytes(piece, "big").bit_count()
        first = view.read(first_byte, first_byte + 1)[0]
        last = view.read(last_byte, last_byte + 1)[0]
    head = first_bit & 7
    if head:
        total -= _POPCOUNT[first & (0xFF << (8 - head)) & 0xFF]
    tail = 7 - (last_bit & 7)
    if tail:
        total -= _POPCOUNT[last & ((1 << tail) - 1)]
    return total


@handler("bitcount")
def bitcount(c: Client, args: list[bytes]) -> object:
    mkey, rec = lookup_record(c.db, args[1])
    if rec is None:  # Redis looks the key up before it reads the range
        return 0
    argc = len(args)
    if argc == 2 and rec[0] & kf.TYPE_MASK == kf.TYPE_STRING:
        return int.from_bytes(kf.body(rec), "big").bit_count()
    view = stored_string(c.server.keyspace, mkey, rec)
    if argc == 2:
        return count_bits(view, 0, view.length * 8 - 1) if view.length else 0
    if argc not in (4, 5):
        raise syntax_error()
    start = to_int(args[2])
    end = to_int(args[3])
    if start < 0 and end < 0 and start > end:  # before the unit is read, as in Redis
        return 0
    is_bit = _unit_is_bit(args, 4)
    bounds = clamp_range(start, end, view.length * 8 if is_bit else view.length)
    if bounds is None:
        return 0
    if is_bit:
        return count_bits(view, bounds[0], bounds[1])
    return count_bits(view, bounds[0] * 8, bounds[1] * 8 + 7)


@handler("bitpos")
def bitpos(c: Client, args: list[bytes]) -> object:
    bit = to_int(args[2])
    if bit not in (0, 1):
        raise ReplyError("ERR The bit argument must be 1 or 0.")
    view = lookup_stored(c.db, args[1])  # Redis's order: the bit, the key, then the range
    if view is None:
        return -1 if bit else 0
    argc = len(args)
    if argc > 6:
        raise syntax_error()
    start = to_int(args[3]) if argc > 3 else 0
    is_bit = _unit_is_bit(args, 5)
    end_given = argc > 4
    length = view.length * 8 if is_bit else view.length
    end = to_int(args[4]) if end_given else length - 1
    if start < 0:
        start = max(start + length, 0)
    if end < 0:
        end = max(end + length, 0)
    end = min(end, length - 1)
    if start > end:
        return -1
    first_bit, last_bit = (start, end) if is_bit else (start * 8, end * 8 + 7)
    pos = find_bit(view, bit, first_bit, last_bit)
    if pos == -1 and bit == 0 and not end_given:
        return ((last_bit >> 3) + 1) * 8  # the string is padded with zeros on the right
    return pos


_NOT_ZERO = re.compile(rb"[^\x00]")
_NOT_ONES = re.compile(rb"[^\xff]")


def find_bit(view: StoredString, bit: int, first_bit: int, last_bit: int) -> int:
    """The first bit equal to ``bit`` in the inclusive range, or -1. Bytes are skipped with a
    C-speed search, and what is not stored (zeros) without reading anything."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    search = _NOT_ONES if bit == 0 else _NOT_ZERO
    pos = first_byte  # the next byte not yet examined
    for offset, data in view.present(first_byte, last_byte + 1):
        if bit == 0 and offset > pos:  # a stretch of zeros before this one
            return max(pos * 8, first_bit)
        i = 0
        while (m := search.search(data, i)) is not None:
            byte_at = offset + m.start()
            for b in range(8):
                at = byte_at * 8 + b
                if at > last_bit:
                    return -1
                if at >= first_bit and (data[m.start()] >> (7 - b)) & 1 == bit:
                    return at
            i = m.start() + 1
        pos = offset + len(data)
    if bit == 0 and pos <= last_byte:
        return max(pos * 8, first_bit)
    return -1


@handler("bitop")
def bitop(c: Client, args: list[bytes]) -> object:
    op = args[1].upper()
    if op not in (b"AND", b"OR", b"XOR", b"NOT"):
        raise syntax_error()
    sources = args[3:]
    if op == b"NOT" and len(sources) != 1:
        raise ReplyError("ERR BITOP NOT must be called with a single source key.")
    views = [lookup_stored(c.db, key) for key in sources]
    width = max((v.length for v in views if v is not None), default=0)
    mkey, old = c.db.read(args[2])
    if width == 0:
        if old is not None:
            c.server.keyspace.delete(mkey, old)
            notify(c, GENERIC, "del", args[2])
        return 0
    if width <= strstore.INLINE_MAX:
        strstore.store(
            c.server.keyspace,
            mkey,
            old,
            combine_bits(op, [v.whole() if v else b"" for v in views], width),
        )
    else:  # chunk by chunk: what no source stores is skipped (NOT makes every chunk)
        chunks = _bitop_chunks(op, [v for v in views if v is not None], width, len(views))
        strstore.store_chunks(c.server.keyspace, mkey, old, width, chunks)
    notify(c, STRING, "set", args[2])
    return width


def combine_bits(op: bytes, pieces: list[bytes], length: int) -> bytes:
    """BITOP over ``length`` bytes of each source (each padded with zeros)."""
    nums = [int.from_bytes(p.ljust(length, b"\x00"), "big") for p in pieces]
    acc = nums[0]
    if op == b"NOT":
        acc = ~acc & ((1 << (length * 8)) - 1)
    for n in nums[1:]:
        if op == b"AND":
            acc &= n
        elif op == b"OR":
            acc |= n
        else:
            acc ^= n
    return acc.to_bytes(length, "big")


def _bitop_chunks(
    op: bytes, views: list[StoredString], width: int, sources: int
) -> Iterator[tuple[int, bytes]]:
    """BITOP's result chunks, walking the sources' stored chunks in step (a missing source,
    or a chunk a source does not store, is zeros)."""
    chunk = strstore.CHUNK
    count = (width + chunk - 1) // chunk
    streams = [v.chunks() for v in views]
    heads = [next(s, None) for s in streams]
    if op == b"NOT":
        head = heads[0]
        ones = b"\xff" * chunk
        for index in range(count):
            size = min(chunk, width - index * chunk)
            if head is not None and head[0] == index:
                yield index, combine_bits(op, [head[1]], size)
                head = next(streams[0], None)
            else:  # zeros not stored: all ones (one shared block)
                yield index, ones if size == chunk else ones[:size]
        return
    while any(h is not None for h in heads):
        index = min(h[0] for h in heads if h is not None)
        pieces = []
        for n, h in enumerate(heads):
            if h is not None and h[0] == index:
                pieces.append(h[1])
                heads[n] = next(streams[n], None)
        if op == b"AND" and len(pieces) < sources:
            continue  # a source has zeros here
        pieces += [b""] * (sources - len(pieces))
        yield index, combine_bits(op, pieces, min(chunk, width - index * chunk))


# --- BITFIELD --------------------------------------------------------------------------------

TYPE_ERROR = (
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported "
    "but i64 is."
)


@dataclass(frozen=True)
class FieldOp:
    op: bytes  # GET, SET, INCRBY
    signed: bool
    bits: int
    offset: int
    value: int
    overflow: bytes  # WRAP, SAT, FAIL


def _field_type(raw: bytes) -> tuple[bool, int]:
    """``i<bits>`` or ``u<bits>`` (lower case, the width as string2ll reads it)."""
    kind = raw[:1]
    bits = strict_int(raw[1:].split(b"\0", 1)[0])
    if kind not in (b"i", b"u") or bits is None:
        raise ReplyError(TYPE_ERROR)
    signed = kind == b"i"
    if bits < 1 or (signed and bits > 64) or (not signed and bits > 63):
        raise ReplyError(TYPE_ERROR)
    return signed, bits


def parse_bitfield(c: Client, args: list[bytes], read_only: bool) -> list[FieldOp]:
    ops: list[FieldOp] = []
    overflow = b"WRAP"
    i = 2
    n = len(args)
    while i < n:
        word = args[i].upper()
        left = n - i - 1
        if word == b"GET" and left >= 2:
            signed, bits = _field_type(args[i + 1])
            ops.append(
                FieldOp(b"GET", signed, bits, bit_offset(c, args[i + 2], True, bits), 0, overflow)
            )
            i += 3
        elif word in (b"SET", b"INCRBY") and left >= 3:
            signed, bits = _field_type(args[i + 1])
            offset = bit_offset(c, args[i + 2], True, bits)
            if read_only:
                raise ReplyError("ERR BITFIELD_RO only supports the GET subcommand")
            value = to_int(args[i + 3])
            ops.append(FieldOp(word, signed, bits, offset, value, overflow))
            i += 4
        elif word == b"OVERFLOW" and left >= 1:
            overflow = args[i + 1].upper()
            if overflow not in (b"WRAP", b"SAT", b"FAIL"):
                raise ReplyError("ERR Invalid OVERFLOW type specified")
            i += 2
        else:
            raise syntax_error()
    return ops


def get_field(span: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The field at bit ``offset`` of ``span`` (zeros past its end)."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = bytes(span[first : last + 1]).ljust(last - first + 1, b"\x00")
    raw = int.from_bytes(chunk, "big")
    shift = (last + 1) * 8 - (offset + bits)
    value = (raw >> shift) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def set_field(span: bytearray, offset: int, bits: int, value: int) -> None:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    raw = int.from_bytes(span[first : last + 1], "big")
    shift = (last + 1) * 8 - (offset + bits)
    mask = ((1 << bits) - 1) << shift
    raw = (raw & ~mask) | ((value & ((1 << bits) - 1)) << shift)
    span[first : last + 1] = raw.to_bytes(last - first + 1, "big")


def apply_overflow(value: int, bits: int, signed: bool, mode: bytes) -> int | None:
    """Fit ``value`` in the field per the overflow mode; None when FAIL and it does not fit."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if lo <= value <= hi:
        return value
    if mode == b"FAIL":
        return None
    if mode == b"SAT":
        return hi if value > hi else lo
    wrapped = value & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped


def run_bitfield(c: Client, args: list[bytes], read_only: bool) -> object:
    """Each operation reads (and writes back) only the bytes its field spans."""
    ops = parse_bitfield(c, args, read_only)
    writes = [o for o in ops if o.op != b"GET"]
    if not writes:
        view = lookup_stored(c.db, args[1])
        return [_read_field(view, o) if view is not None else 0 for o in ops]
    ks = c.server.keyspace
    mkey, record = c.db.read(args[1])
    expire = 0
    length = 0
    if record is not None:
        expire = record_expire(record)
        length = stored_string(c.server.keyspace, mkey, record).length
    need = max((o.offset + o.bits + 7) >> 3 for o in writes)  # Redis grows it first
    if record is None or length < need:
        record = strstore.write_at(ks, mkey, record, need - 1, b"\0", expire)
    view = StoredString(ks, mkey, record)
    out: list[int | None] = []
    changes = 0
    for o in ops:
        current_value = _read_field(view, o)
        if o.op == b"GET":
            out.append(current_value)
            continue
        if o.op == b"SET":
            given = o.value if o.signed else o.value & ((1 << 64) - 1)
            new = apply_overflow(given, o.bits, o.signed, o.overflow)
            reply: int | None = current_value
        else:
            new = apply_overflow(current_value + o.value, o.bits, o.signed, o.overflow)
            reply = new
        if new is None:
            out.append(None)
            continue
        first = o.offset >> 3
        span = bytearray(view.read(first, ((o.offset + o.bits - 1) >> 3) + 1))
        set_field(span, o.offset - first * 8, o.bits, new)
        record = strstore.write_at(ks, mkey, record, first, bytes(span), expire)
        view = StoredString(ks, mkey, record)
        out.append(reply)
        changes += 1
    if changes:
        notify(c, STRING, "setbit", args[1])
    return out


def _read_field(view: StoredString, o: FieldOp) -> int:
    first = o.offset >> 3
    span = view.read(first, ((o.offset + o.bits - 1) >> 3) + 1)
    return get_field(span, o.offset - first * 8, o.bits, o.signed)


@handler("bitfield")
def bitfield(c: Client, args: list[bytes]) -> object:
    return run_bitfield(c, args, read_only=False)


@handler("bitfield_ro")
def bitfield_ro(c: Client, args: list[bytes]) -> object:
    return run_bitfield(c, args, read_only=True)
