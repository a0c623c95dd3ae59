"""Numbers for people: sizes, durations, rates, ages and sparklines (plain text)."""

from __future__ import annotations

from collections.abc import Sequence

SPARK = "▁▂▃▄▅▆▇█"


def human_bytes(n: float) -> str:
    for unit, size in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}B"


def human_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def human_duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s // 60:.0f}m{s % 60:02.0f}s"
    if s < 86400:
        return f"{s // 3600:.0f}h{s % 3600 // 60:02.0f}m"
    return f"{s // 86400:.0f}d{s % 86400 // 3600:02.0f}h"


def human_latency(us: float | None) -> str:
    if us is None:
        return "-"
    if us >= 1000:
        return f"{us / 1000:.1f}ms"
    return f"{us:.0f}us"


def human_latencies(values: Sequence[float | None]) -> str:
    """Percentiles side by side, one unit when they share it: ``4/33/131us``, ``96us/1.5ms``."""
    if any(v is None for v in values):
        return "-"
    shown = [v for v in values if v is not None]
    if all(v < 1000 for v in shown):
        return "/".join(f"{v:.0f}" for v in shown) + "us"
    if all(v >= 1000 for v in shown):
        return "/".join(f"{v / 1000:.1f}" for v in shown) + "ms"
    return "/".join(human_latency(v) for v in shown)


def sparkline(values: Sequence[float], width: int = 12) -> str:
    """The last ``width`` values as block characters, scaled from 0 to their maximum."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return SPARK[0] * len(tail)
    last = len(SPARK) - 1
    return "".join(SPARK[min(last, round(v / top * last))] for v in tail)
