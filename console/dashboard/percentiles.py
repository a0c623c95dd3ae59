"""A node's latency percentiles from its INFO latencystats: one figure for the node out of
each command's own percentiles.

A server reports, per command, a few percentiles of its calls' durations
(``latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=4.015``, Redis 7's format; which
percentiles is the server's ``latency-tracking-info-percentiles``). They are over the
command's life (since start or CONFIG RESETSTAT), so the node's figure weighs each command by
the calls it had since the previous poll (commandstats): a command that is busy now counts for
what it is doing now, one idle since an hour ago not at all.

Each command's distribution is taken as point masses at its reported percentiles: the calls
between two reported percentiles sit at the higher one (``p50=a,p99=b``: 50% at a, 49% at b,
the last 1% at b too). The node's percentile is then the weighted quantile of those points.
With one command busy it is exactly that command's figure; with several it errs high (each
mass sits at the top of its interval), never low. The dashboard's own INFO is left out (it
would make an idle node look like its INFO).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SHOWN = (50.0, 99.0, 99.9)  # what the dashboard shows per node
LEFT_OUT = frozenset({"info"})  # the poll's own command

Points = tuple[tuple[float, float], ...]  # (percentile, usec), percentile ascending


def parse_points(value: str) -> Points:
    """``p50=1.003,p99=2.007,p99.9=4.015`` -> ((50.0, 1.003), (99.0, 2.007), (99.9, 4.015));
    anything unreadable is skipped."""
    out: list[tuple[float, float]] = []
    for part in value.split(","):
        name, sep, v = part.partition("=")
        if not sep or not name.startswith("p"):
            continue
        try:
            p, us = float(name[1:]), float(v)
        except ValueError:
            continue
        if 0.0 <= p <= 100.0 and us >= 0.0:
            out.append((p, us))
    return tuple(sorted(out))


def command_points(latencystats: Mapping[str, str]) -> dict[str, Points]:
    """INFO latencystats -> {command: its points}."""
    out: dict[str, Points] = {}
    prefix = "latency_percentiles_usec_"
    for name, value in latencystats.items():
        if name.startswith(prefix):
            points = parse_points(value)
            if points:
                out[name[len(prefix) :]] = points
    return out


def call_weights(calls: Mapping[str, int], before: Mapping[str, int] | None) -> dict[str, int]:
    """Calls per command since ``before`` (all of them when there is no before; a count that
    went down was reset, so all of it is new)."""
    out: dict[str, int] = {}
    for name, n in calls.items():
        if name in LEFT_OUT:
            continue
        was = before.get(name, 0) if before is not None else 0
        d = n - was if n >= was else n
        if d > 0:
            out[name] = d
    return out


def mixed(
    points: Mapping[str, Points], weights: Mapping[str, int], wanted: Sequence[float] = SHOWN
) -> tuple[float, ...] | None:
    """The ``wanted`` percentiles of every weighted command's calls together, or None when no
    command with points had calls."""
    masses: list[tuple[float, float]] = []  # (usec, weight)
    for name, w in weights.items():
        pts = points.get(name)
        if not pts or w <= 0:
            continue
        below = 0.0
        for i, (p, us) in enumerate(pts):
            share = (100.0 if i == len(pts) - 1 else p) - below
            below = p
            if share > 0:
                masses.append((us, w * share))
    total = sum(m for _, m in masses)
    if total <= 0:
        return None
    masses.sort()
    out = []
    for q in wanted:
        rank = total * q / 100.0
        seen = 0.0
        value = masses[-1][0]
        for us, m in masses:
            seen += m
            if seen >= rank * (1 - 1e-12):
                value = us
                break
        out.append(value)
    return tuple(out)
