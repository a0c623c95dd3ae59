from __future__ import annotations

import pytest

from stack.core.keypattern import matches

CASES = [
    (b"h?llo", b"hello", True), (b"h?llo", b"hllo", False), (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True), (b"h[ae]llo", b"hallo", True), (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True), (b"h[^e]llo", b"hello", False), (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True), (b"\\*", b"*", True), (b"\\*", b"a", False),
    (b"*", b"", True), (b"a*", b"b", False), (b"*a*b", b"xaxxb", True), (b"*a*b", b"xaxxbc", False),
    (b"[]", b"a", False), (b"a[\\]]b", b"a]b", True), (b"*.*", b"a.b.c", True),
    (b"ab*c*", b"abxxcyy", True), (b"a\nb", b"a\nb", True), (b"?", b"\n", True),
]


@pytest.mark.parametrize(("pattern", "key", "expected"), CASES)
def test_glob(pattern: bytes, key: bytes, expected: bool) -> None:
    assert matches(pattern, key) is expected


@pytest.mark.timeout(5)
def test_pathological_pattern_is_linear() -> None:
    assert not matches(b"*a" * 200 + b"b", b"a" * 100_000)
