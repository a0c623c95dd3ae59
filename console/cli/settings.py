"""The ``[cli]`` section of ledis-console.toml: defaults for ledis-cli."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class CliSettings:
    host: str = "127.0.0.1"
    port: int = 6380
    history_file: str = "~/.ledis-cli-history"


def load(path: Path | None) -> CliSettings:
    """Read the file if it exists; a mistake names the file, the key and the problem."""
    if path is None or not path.exists():
        return CliSettings()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(f"{path}: cannot read: {e}") from None
    section = data.get("cli", {})
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: [cli] must be a table")
    known = {"host": str, "port": int, "history_file": str}
    values: dict[str, object] = {}
    for key, value in section.items():
        if key not in known:
            raise SettingsError(f"{path}: key 'cli.{key}': unknown setting")
        if not isinstance(value, known[key]) or isinstance(value, bool):
            raise SettingsError(
                f"{path}: key 'cli.{key}': expected {known[key].__name__}, got {value!r}"
            )
        values[key] = value
    port = values.get("port", 6380)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise SettingsError(f"{path}: key 'cli.port': must be between 1 and 65535")
    return CliSettings(**values)  # type: ignore[arg-type]
