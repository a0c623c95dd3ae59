"""The server's layers, held by reading every import (docs/architecture.md, "Layering rules").

* A command module (one that registers handlers) imports no other command module: from
  ``stack/server/commands/`` only the package itself (``handler``, ``help_lines``), ``args.py``
  and the shared helpers below, which register no handler and import only ``args.py``.
* Storage (``stack/server/storage/``) imports nothing of the server above it: only itself,
  ``stack/core`` and the C accelerator's loader.
* The rest of the server takes from ``commands/`` only the registry and ``args.py``.

Every import counts, also those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "stack" / "server"
COMMANDS = "stack.server.commands"
STORAGE = "stack.server.storage"
HELPERS = {"multikey", "sampling", "scanning"}  # argument shapes and replies several types share
SHARED = {COMMANDS, f"{COMMANDS}.args"}
STORAGE_MAY_USE = (STORAGE, "stack.core", "stack.server.accel")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) for every import in ``source``; ``from pkg import sub`` names the
    submodule when ``sub`` is a module of the project."""
    package = module if is_package else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = ROOT.joinpath(*sub.split("."))
                is_module = target.with_suffix(".py").exists() or target.is_dir()
                out.append((node.lineno, sub if is_module else base))
    return out


def registers_handlers(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                fn = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(fn, ast.Name) and fn.id == "handler":
                    return True
    return False


def within(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(path: Path, source: str) -> list[str]:
    """What is wrong with the imports of the server module at ``path``."""
    module = module_name(path)
    found = imported(source, module, path.name == "__init__.py")
    where = f"{path.relative_to(ROOT)}"
    bad: list[str] = []
    for line, name in found:
        if within(name, ("console", "stack.proxy")):
            bad.append(f"{where}:{line} imports {name} (stack/server uses neither)")
    if module == COMMANDS:
        return bad  # the registry: load_all imports every handler module
    if within(module, (STORAGE,)):
        for line, name in found:
            if within(name, ("stack",)) and not within(name, STORAGE_MAY_USE):
                bad.append(f"{where}:{line} imports {name}: storage imports no layer above it")
        return bad
    in_commands = within(module, (COMMANDS,))
    short = module.rpartition(".")[2]
    if in_commands and short in HELPERS and registers_handlers(source):
        bad.append(f"{where} registers handlers: a shared helper module may not")
    allowed = SHARED
    if in_commands and short not in HELPERS:
        allowed = SHARED | {f"{COMMANDS}.{h}" for h in HELPERS}
    for line, name in found:
        if within(name, (COMMANDS,)) and name not in allowed:
            bad.append(
                f"{where}:{line} imports {name}: command modules share only the registry, "
                "args.py and the helpers; storage types and rules belong in storage/"
            )
    return bad


def server_modules() -> list[Path]:
    return sorted(p for p in SERVER.rglob("*.py") if p.is_file())


def test_server_layers_hold() -> None:
    bad = [v for p in server_modules() for v in violations(p, p.read_text())]
    assert not bad, "\n".join(bad)


def test_every_command_module_is_looked_at() -> None:
    """The walk sees the handler modules, the helpers and storage, so the rule is not empty."""
    names = {module_name(p) for p in server_modules()}
    assert {f"{COMMANDS}.sortedsets", f"{COMMANDS}.lists", f"{STORAGE}.zset"} <= names
    assert {f"{COMMANDS}.{h}" for h in HELPERS} <= names
    for helper in HELPERS:
        assert not registers_handlers((SERVER / "commands" / f"{helper}.py").read_text())


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("commands/bitmaps.py", "from .strings import lookup_stored\n"),
        ("commands/sorting.py", "def f():\n    from .sortedsets import ZSet\n"),
        ("commands/ledis.py", "from . import lists\n"),
        ("commands/keys.py", "from stack.server.commands.dumps import restore_object\n"),
        ("commands/sampling.py", "from .scanning import scan_collection\n"),
        ("commands/scanning.py", "@handler('x')\ndef x(c, a):\n    pass\n"),
        ("storage/keyspace.py", "from ..commands.strings import store\n"),
        ("storage/zset.py", "from ..commands.args import c_strtod\n"),
        ("storage/zset.py", "from ..notifications import notify\n"),
        (
            "storage/zset.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..client import Client\n",
        ),
        ("client.py", "from .commands.transactions import unwatch_all\n"),
        ("dispatch.py", "from .commands import lists\n"),
        ("commands/keys.py", "import console.cli\n"),
    ],
)
def test_a_forbidden_import_is_caught(where: str, source: str) -> None:
    assert violations(SERVER / where, source)


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("commands/bitmaps.py", "from ..storage.strings import lookup_stored\n"),
        ("commands/lists.py", "from . import handler, help_lines\nfrom .args import to_int\n"),
        ("commands/sets.py", "from .multikey import parse_limit\n"),
        ("commands/multikey.py", "from .args import to_range\n"),
        (
            "storage/zset.py",
            "from .numbers import c_strtod\nfrom stack.core.resp import ReplyError\n",
        ),
        ("blocking.py", "from .commands.args import to_timeout_ms\n"),
    ],
)
def test_an_allowed_import_passes(where: str, source: str) -> None:
    assert violations(SERVER / where, source) == []
