"""The ``[dashboard]`` section of ledis-console.toml: refresh interval, node timeout, theme,
recording bound. A mistake names the file, the key and the problem."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError

THEMES = ("textual-dark", "textual-light", "ansi-dark", "ansi-light")


@dataclass(frozen=True)
class DashboardSettings:
    interval: float = 2.0  # seconds between the end of one poll and the start of the next
    node_timeout: float = 1.0  # a node that takes longer is shown stale
    concurrency: int = 16  # nodes polled at once
    theme: str = "textual-dark"
    record_max_mb: int = 64  # bound of a --record file (and its .1)


_LIMITS: dict[str, tuple[type | tuple[type, ...], float, float]] = {
    "interval": ((int, float), 0.1, 3600),
    "node_timeout": ((int, float), 0.05, 60),
    "concurrency": (int, 1, 1024),
    "record_max_mb": (int, 1, 1 << 20),
}


def load_dashboard(path: Path | None) -> DashboardSettings:
    if path is None or not path.exists():
        return DashboardSettings()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    section: Any = data.get("dashboard", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: key 'dashboard': must be a table ([dashboard])")
    values: dict[str, Any] = {}
    for key, value in section.items():
        where = f"{path}: key 'dashboard.{key}'"
        if key == "theme":
            if value not in THEMES:
                raise ConfigError(f"{where}: expected one of {', '.join(THEMES)}, got {value!r}")
            values[key] = value
            continue
        if key not in _LIMITS:
            raise ConfigError(f"{where}: unknown setting (known: theme, {', '.join(_LIMITS)})")
        kind, lo, hi = _LIMITS[key]
        number: Any = value
        if isinstance(value, bool) or not isinstance(value, kind) or not lo <= number <= hi:
            raise ConfigError(f"{where}: expected a number from {lo:g} to {hi:g}, got {value!r}")
        values[key] = value
    return DashboardSettings(**values)
