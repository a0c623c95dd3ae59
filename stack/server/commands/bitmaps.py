"""Bitmap commands over string values (bit 0 is the most significant bit of byte 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core.resp import ReplyError

from ..storage.keyspace import record_expire
from . import handler
from .args import syntax_error, to_int
from .strings import clamp_range, max_string, store, string_of

if TYPE_CHECKING:
    from ..client import Client

BIT_OFFSET_ERROR = "ERR bit offset is not an integer or out of range"
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


def bit_offset(c: Client, raw: bytes, hash_ok: bool = False, width: int = 1) -> int:
    """A bit offset (``#N`` means N * width when ``hash_ok``), bounded by the max string size."""
    multiply = hash_ok and raw[:1] == b"#"
    value = to_int(raw[1:] if multiply else raw, BIT_OFFSET_ERROR)
    if multiply:
        value *= width
    if value < 0 or (value >> 3) >= max_string(c):
        raise ReplyError(BIT_OFFSET_ERROR)
    return value


@handler("setbit")
def setbit(c: Client, args: list[bytes]) -> object:
    offset = bit_offset(c, args[2])
    if args[3] not in (b"0", b"1"):
        raise ReplyError("ERR bit is not an integer or out of range")
    on = args[3] == b"1"
    mkey, old = c.db.read(args[1])
    value = string_of(old) or b""
    byte = offset >> 3
    buf = bytearray(value)
    if len(buf) <= byte:
        buf.extend(bytes(byte + 1 - len(buf)))
    mask = 0x80 >> (offset & 7)
    previous = 1 if buf[byte] & mask else 0
    if on:
        buf[byte] |= mask
    else:
        buf[byte] &= ~mask & 0xFF
    store(c, mkey, old, bytes(buf), record_expire(old) if old is not None else 0)
    return previous


@handler("getbit")
def getbit(c: Client, args: list[bytes]) -> object:
    offset = bit_offset(c, args[2])
    value = c.db.lookup_string(args[1])
    if value is None or (offset >> 3) >= len(value):
        return 0
    return 1 if value[offset >> 3] & (0x80 >> (offset & 7)) else 0


def _unit_is_bit(args: list[bytes], index: int) -> bool:
    if len(args) <= index:
        return False
    unit = args[index].upper()
    if unit == b"BIT":
        return True
    if unit == b"BYTE":
        return False
    raise syntax_error()


def count_bits(value: bytes, first_bit: int, last_bit: int) -> int:
    """Set bits in the inclusive bit range."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    total = (
        sum(_POPCOUNT[x] for x in value[first_byte : last_byte + 1])
        if last_byte - first_byte < 64
        else (int.from_bytes(value[first_byte : last_byte + 1], "big").bit_count())
    )
    head = first_bit & 7
    if head:
        total -= _POPCOUNT[value[first_byte] & (0xFF << (8 - head)) & 0xFF]
    tail = 7 - (last_bit & 7)
    if tail:
        total -= _POPCOUNT[value[last_byte] & ((1 << tail) - 1)]
    return total


@handler("bitcount")
def bitcount(c: Client, args: list[bytes]) -> object:
    value = c.db.lookup_string(args[1])
    if value is None:  # Redis looks the key up before it reads the range
        return 0
    argc = len(args)
    if argc == 2:
        return int.from_bytes(value, "big").bit_count()
    if argc not in (4, 5):
        raise syntax_error()
    start = to_int(args[2])
    end = to_int(args[3])
    is_bit = _unit_is_bit(args, 4)
    length = len(value) * 8 if is_bit else len(value)
    bounds = clamp_range(start, end, length)
    if bounds is None:
        return 0
    if is_bit:
        return count_bits(value, bounds[0], bounds[1])
    return int.from_bytes(value[bounds[0] : bounds[1] + 1], "big").bit_count()


@handler("bitpos")
def bitpos(c: Client, args: list[bytes]) -> object:
    bit = to_int(args[2])
    if bit not in (0, 1):
        raise ReplyError("ERR The bit argument must be 1 or 0.")
    argc = len(args)
    if argc > 6:
        raise syntax_error()
    start = to_int(args[3]) if argc > 3 else 0
    end_given = argc > 4
    end = to_int(args[4]) if end_given else -1
    is_bit = _unit_is_bit(args, 5)
    value = c.db.lookup_string(args[1])
    if value is None:
        return -1 if bit else 0
    length = len(value) * 8 if is_bit else len(value)
    if start < 0:
        start = max(start + length, 0)
    if end < 0:
        end = max(end + length, 0)
    end = min(end, length - 1)
    if start > end:
        return -1
    first_bit, last_bit = (start, end) if is_bit else (start * 8, end * 8 + 7)
    pos = _find_bit(value, bit, first_bit, last_bit)
    if pos == -1 and bit == 0 and not end_given:
        return len(value) * 8  # the string is padded with zeros on the right
    return pos


def _find_bit(value: bytes, bit: int, first_bit: int, last_bit: int) -> int:
    skip = 0x00 if bit else 0xFF
    pos = first_bit
    while pos <= last_bit:
        byte = value[pos >> 3]
        if pos & 7 == 0 and last_bit - pos >= 7 and byte == skip:
            pos += 8
            continue
        if ((byte >> (7 - (pos & 7))) & 1) == bit:
            return pos
        pos += 1
    return -1


@handler("bitop")
def bitop(c: Client, args: list[bytes]) -> object:
    op = args[1].upper()
    if op not in (b"AND", b"OR", b"XOR", b"NOT"):
        raise syntax_error()
    sources = args[3:]
    if op == b"NOT" and len(sources) != 1:
        raise ReplyError("ERR BITOP NOT must be called with a single source key.")
    values = []
    for key in sources:
        values.append(c.db.lookup_string(key) or b"")
    width = max((len(v) for v in values), default=0)
    if width == 0:
        result = b""
    else:
        nums = [int.from_bytes(v.ljust(width, b"\x00"), "big") for v in values]
        acc = nums[0]
        if op == b"NOT":
            acc = ~acc & ((1 << (width * 8)) - 1)
        for n in nums[1:]:
            if op == b"AND":
                acc &= n
            elif op == b"OR":
                acc |= n
            else:
                acc ^= n
        result = acc.to_bytes(width, "big")
    mkey, old = c.db.read(args[2])
    if not result:
        if old is not None:
            c.server.keyspace.delete(mkey, old)
        return 0
    store(c, mkey, old, result)
    return len(result)


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
    kind = raw[:1].lower()
    if kind not in (b"i", b"u") or not raw[1:].isdigit():
        raise ReplyError(TYPE_ERROR)
    bits = int(raw[1:])
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
            value = to_int(args[i + 3])
            if read_only:
                raise ReplyError("ERR BITFIELD_RO only supports the GET subcommand")
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


def get_field(buf: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = bytes(buf[first : last + 1]).ljust(last - first + 1, b"\x00")
    raw = int.from_bytes(chunk, "big")
    shift = (last + 1) * 8 - (offset + bits)
    value = (raw >> shift) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def set_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    raw = int.from_bytes(buf[first : last + 1], "big")
    shift = (last + 1) * 8 - (offset + bits)
    mask = ((1 << bits) - 1) << shift
    raw = (raw & ~mask) | ((value & ((1 << bits) - 1)) << shift)
    buf[first : last + 1] = raw.to_bytes(last - first + 1, "big")


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
    ops = parse_bitfield(c, args, read_only)
    writes = any(o.op != b"GET" for o in ops)
    if not writes:
        value = c.db.lookup_string(args[1]) or b""
        return [get_field(value, o.offset, o.bits, o.signed) for o in ops]
    mkey, old = c.db.read(args[1])
    current = string_of(old) or b""
    need = max(((o.offset + o.bits + 7) >> 3) for o in ops if o.op != b"GET")
    buf = bytearray(current)
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
    out: list[int | None] = []
    changed = False
    for o in ops:
        current_value = get_field(buf, o.offset, o.bits, o.signed)
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
        set_field(buf, o.offset, o.bits, new)
        changed = True
        out.append(reply)
    if changed or len(buf) != len(current):
        store(c, mkey, old, bytes(buf), record_expire(old) if old is not None else 0)
    return out


@handler("bitfield")
def bitfield(c: Client, args: list[bytes]) -> object:
    return run_bitfield(c, args, read_only=False)


@handler("bitfield_ro")
def bitfield_ro(c: Client, args: list[bytes]) -> object:
    return run_bitfield(c, args, read_only=True)
