"""cmsgpack and struct as Redis ships them, against real Redis 7.0: a hand-written corpus (every
MessagePack form, struct's options, alignment, and each library's errors with the caller's line)
and generated round trips (random values and formats, a fixed seed per run printed on failure)."""

from __future__ import annotations

import random

import pytest

from .test_differential import Pair, pair  # noqa: F401 (the fixture)

SCRIPTS = [
    "return struct.pack('z')",
    "return struct.pack('i', 'x')",
    "return struct.pack('c5', 'ab')",
    "return struct.unpack('i', 'ab')",
    "return struct.size('s')",
    "return struct.size('zz')",
    "return struct.unpack('s', 'abc')",
    "return cmsgpack.unpack('\\205')",
    "return cmsgpack.unpack('\\193')",
    "return cmsgpack.pack()",
    "return cmsgpack.unpack()",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2))}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2, 1)}",
    "return {struct.unpack('>i2', 'abcd', 0)}",
    "return {struct.unpack('c0', 'abcd')}",
    "return struct.pack('!3i', 1)",
    "return struct.pack('i33', 1)",
    "local ok, e = pcall(struct.pack, 'z') return e",
    "return {cmsgpack.unpack_one('\\1', -1)}",
    "return {cmsgpack.unpack_one('\\1', 5)}",
    "return type(cmsgpack.unpack(cmsgpack.pack(cjson.null)))",
    "return cmsgpack.pack({a=1,b=2,c=3,d=4})",
    "return struct.pack('i99999999999999', 1)",
    "return #{cmsgpack.unpack(string.rep('\\1', 10000))}",
    "return #{struct.unpack(string.rep('b', 10000), string.rep('x', 10000))}",
    "local x = {} local p = x for i=1,20 do p[1] = {} p = p[1] end return cmsgpack.pack(x)",
    "return cmsgpack.pack(1, 'a', {1,2}, {x=1}, true, false, nil, 1.5, 1e300, -5, -200, 70000, 2^40, -2^40, 0.1, 1/0, string.rep('x', 40), string.rep('y', 300))",
    "return cmsgpack.unpack(12)",
    "return {cmsgpack.unpack_limit('\\1\\2\\3', 'x')}",
    "return {cmsgpack.unpack_limit('\\1\\2\\3')}",
    "return {cmsgpack.unpack_one('\\1\\2\\3', nil)}",
    "return {cmsgpack.unpack_one('\\1\\2\\3', '1')}",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1,2}, {x=1}, true, false, 1.5, 1e300, -5, -200, 70000, 2^40, -2^40, 0.1, string.rep('x', 40), string.rep('y', 300), 2^63, -2^63, 2^64, 0/0 ~= 0/0))}",
    "return cjson.encode({cmsgpack.unpack(cmsgpack.pack({1,2,nil,4}, {[1]=1,[3]=3}, {a={b={c={1}}}}, {}))})",
    "return cmsgpack.pack({1,2,nil,4}, {[1]=1,[3]=3}, {[1.5]=2}, {[-1]=1}, {[0]=1}, {true})",
    "return {cmsgpack.unpack('\\220\\0\\3\\1\\2\\3\\221\\0\\0\\0\\1\\192\\222\\0\\1\\161a\\1\\223\\0\\0\\0\\0\\196\\2ab\\197\\0\\1c\\198\\0\\0\\0\\1d\\217\\1e\\218\\0\\1f\\219\\0\\0\\0\\1g')}",
    "return {cmsgpack.unpack('\\202\\63\\192\\0\\0\\203\\63\\248\\0\\0\\0\\0\\0\\0\\204\\255\\205\\1\\0\\206\\0\\1\\0\\0\\207\\0\\0\\0\\1\\0\\0\\0\\0\\208\\128\\209\\128\\0\\210\\128\\0\\0\\0\\211\\255\\255\\255\\255\\255\\255\\255\\255\\224\\255')}",
    "return {cmsgpack.unpack('\\212\\1\\1')}",
    "return {cmsgpack.unpack('\\145')}",
    "return {cmsgpack.unpack('\\221\\255\\255\\255\\255')}",
    "return {cmsgpack.unpack('\\129\\192\\1')}",
    "return {struct.pack('>bBhHlLiIi3I5', -1, 255, -2, 65535, -3, 2^40, -4, 4000000000, -5, 2^39)}",
    "return {struct.unpack('>bBhHlLiIi3I5', struct.pack('>bBhHlLiIi3I5', -1, 255, -2, 65535, -3, 2^40, -4, 4000000000, -5, 2^39))}",
    "return {struct.unpack('<bBhHlLiIi3I5', struct.pack('<bBhHlLiIi3I5', -1, 255, -2, 65535, -3, 2^40, -4, 4000000000, -5, 2^39))}",
    "return {struct.pack('<fd', 1.5, -2.25), struct.pack('>fd', 1.5, 0.1)}",
    "return {struct.unpack('<fd', struct.pack('<fd', 1.5, -2.25))}",
    "return {struct.pack('!4bi!2bhxbd', 1, 2, 3, 4, 5, 6)}",
    "return {struct.unpack('!4bi!2bhxbd', struct.pack('!4bi!2bhxbd', 1, 2, 3, 4, 5, 6))}",
    "return {struct.size('!4bi!2bhxbd'), struct.size('i'), struct.size('c10'), struct.size('!bd'), struct.size('T'), struct.size(''), struct.size('>< =')}",
    "return {struct.pack('sc3c0', 'hello', 'abcdef', 'xyz')}",
    "return {struct.unpack('sc3', struct.pack('sc3', 'hello', 'abc'))}",
    "return {struct.unpack('bc0', struct.pack('bc0', 3, 'xyz'))}",
    "return {struct.unpack('b', 'abc', 3)}",
    "return {struct.unpack('b', 'abc', 4)}",
    "return {struct.unpack('b', 'abc', 5)}",
    "return {struct.pack('b', 300), struct.pack('B', -1), struct.pack('h', 70000)}",
    "return {struct.pack('i', '12'), struct.pack('i')}",
    "return struct.pack('i', {})",
    "return struct.pack()",
    "return struct.pack('c', 5)",
    "return {struct.unpack('i16', string.rep('\\255', 16))}",
    "return {struct.unpack('I16', string.rep('\\1', 16))}",
    "return {struct.pack('i16', -1)}",
    "return struct.pack('!', 1)",
    "return struct.pack('!16i', 1)",
    "return struct.size('!5')",
    "local p = struct.pack return p('z')",
    "return struct.unpack()",
    "return struct.unpack('b')",
    "return {struct.unpack('c2', 'ab')}",
    "return {struct.unpack('z', 'ab')}",
    "return {struct.size('z')}",
    "return {struct.unpack('c0', '\\3abc')}",
    "return {struct.unpack('bc0', '\\9abc')}",
]


EXTRA = [
    "return {pcall(function() return struct.pack('z') end)}",
    "return {pcall(cmsgpack.unpack, '\\129\\192\\1')}",
    "return {pcall(cmsgpack.pack)}",
    "return {pcall(cjson.encode, function() end)}",
    "return cmsgpack.pack(redis.call('ping'))",
    "return {cmsgpack.unpack(cmsgpack.pack(ARGV))}",
    "cmsgpack.x = 1",
    "struct.pack = 1",
]


@pytest.mark.differential
def test_library_corpus_matches_redis(pair: Pair) -> None:  # noqa: F811
    pair.run([("EVAL", s, "0") for s in SCRIPTS + EXTRA])


def _value(rng: random.Random, depth: int = 0) -> str:
    """A random Lua expression: numbers of every size, strings of every length class, nested
    arrays and maps."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return str(rng.randrange(-(2**40), 2**40) >> rng.randrange(40))
    if kind == 1:
        return repr(rng.uniform(-1e6, 1e6))
    if kind == 2:
        return rng.choice(["true", "false", "0.5", "-0.0", "2^53", "-2^63", "2^64", "1e300"])
    if kind in (3, 4):
        return f"string.rep('{rng.choice('abz')}', {rng.choice([0, 1, 31, 32, 255, 256, 70000])})"
    if kind == 5:
        return str(
            rng.choice(
                [
                    127,
                    128,
                    255,
                    256,
                    65535,
                    65536,
                    -32,
                    -33,
                    -128,
                    -129,
                    -32768,
                    -32769,
                    2**32 - 1,
                    2**32,
                    -(2**31),
                    -(2**31) - 1,
                ]
            )
        )
    if kind == 6:
        return "{" + ", ".join(_value(rng, depth + 1) for _ in range(rng.randrange(20))) + "}"
    if kind == 7:
        return "{x=" + _value(rng, depth + 1) + "}"
    return "{[3]=" + _value(rng, depth + 1) + "}"


_FORMATS = "bBhHlLiIfdx"


def _struct_case(rng: random.Random) -> str:
    order = rng.choice(["", ">", "<", "!", "!2", "!4", ">!8"])
    opts, vals = [], []
    for _ in range(rng.randrange(1, 8)):
        o = rng.choice(_FORMATS)
        if o in "iI" and rng.random() < 0.5:
            o += str(rng.choice([1, 2, 3, 5, 7, 8]))
        opts.append(o)
        if o != "x":
            vals.append(
                str(
                    rng.choice(
                        [
                            0,
                            1,
                            -1,
                            127,
                            -128,
                            255,
                            65535,
                            2**31,
                            -(2**31),
                            1.5,
                            2**40,
                            -(2**40),
                            1e10,
                        ]
                    )
                )
            )
    fmt = order + "".join(opts)
    return (
        f"local s = struct.pack('{fmt}', {', '.join(vals)}) "
        f"return {{s, struct.size('{fmt}'), struct.unpack('{fmt}', s)}}"
    )


@pytest.mark.differential
def test_generated_round_trips_match_redis(pair: Pair) -> None:  # noqa: F811
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    scripts = []
    for _ in range(60):
        v = _value(rng)
        scripts.append(f"local p = cmsgpack.pack({v}) return {{p, cmsgpack.unpack(p)}}")
        scripts.append(_struct_case(rng))
    for s in scripts:
        try:
            pair.run([("EVAL", s, "0")])
        except AssertionError as e:
            raise AssertionError(f"seed {seed}: {e}") from None


PCALLS = [
    "return {pcall(error, 'x')}",
    "return {pcall(assert, false, 'y')}",
    "return {pcall(string.rep)}",
    "return {pcall(struct.pack, 'z')}",
    "return {pcall(function() return struct.pack('z') end)}",
    "return {pcall(function() local s = struct.pack('z') return s end)}",
    "return {pcall(function() error('in f', 2) end)}",
    "return {pcall(function(a, b) return a + b end, 1, 2)}",
    "return {pcall(function(...) return select('#', ...) end, nil, nil)}",
    "return {pcall(cmsgpack.unpack, '\\205')}",
    "return {pcall(redis.call, 'nope')}",
    "return {pcall(function() return redis.call('nope') end)}",
    "return {pcall(function() return cmsgpack.unpack('\\193') end)}",
    "return {pcall(pcall, struct.pack, 'z')}",
]


@pytest.mark.differential
def test_pcall_of_library_errors_matches_redis(pair: Pair) -> None:  # noqa: F811
    pair.run([("EVAL", s, "0") for s in PCALLS])
