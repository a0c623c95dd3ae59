"""Recent values per node for the sparklines: bounded, fed one sample at a time."""

from __future__ import annotations

from collections import deque
from itertools import islice

from .sample import ClusterSample


class History:
    """The last ``depth`` values of each series (``ops:<addr>``, ``p99:<addr>``, ``lag_ms:<addr>`` ...)."""

    def __init__(self, depth: int = 120) -> None:
        self.depth = depth
        self._series: dict[str, deque[float]] = {}
        self._last_ts: float | None = None

    def push(self, name: str, value: float) -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = deque(maxlen=self.depth)
        series.append(value)

    def get(self, name: str, last: int | None = None) -> list[float]:
        """The series (its ``last`` values only, when given)."""
        series = self._series.get(name)
        if series is None:
            return []
        if last is None or last >= len(series):
            return list(series)
        return list(islice(reversed(series), last))[::-1]

    def clear(self) -> None:
        self._series.clear()
        self._last_ts = None

    def add(self, sample: ClusterSample) -> None:
        """Append what ``sample`` says (once per sample: a repeated one is ignored)."""
        if self._last_ts is not None and sample.ts <= self._last_ts:
            return
        self._last_ts = sample.ts
        for addr, n in sample.nodes.items():
            self.push(f"ops:{addr}", n.ops_per_sec)
            if n.p99_us is not None and not n.stale:
                self.push(f"p99:{addr}", n.p99_us)
            for link in n.replicas:
                self.push(f"lag_ms:{link.addr}", float(link.lag_ms))
                self.push(f"lag_ids:{link.addr}", float(link.lag_logids))
        for addr, p in sample.proxies.items():
            self.push(f"ops:{addr}", p.ops_per_sec)
            if p.p99_us is not None and not p.stale:
                self.push(f"p99:{addr}", p.p99_us)
