"""Command-line flags made from a settings dataclass: one flag per field (``--field-name``),
typed from the field, help and default from a table; and the flags given, read back.

Used by the entry points whose settings are one frozen dataclass (ledis-proxy,
ledis-failover), so that a new setting is a field and a help line, nothing more."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import Any

Help = Mapping[str, tuple[str, str]]  # field -> (metavar, text)

REPEATED = "etcd"  # the one list-valued flag: repeat it or comma-separate


def add_flags(
    parser: argparse.ArgumentParser,
    defaults: Any,
    help: Help,
    secrets: Collection[str] = (),
    skip: Collection[str] = (),
) -> None:
    """A flag per field of the dataclass instance ``defaults``; its default is shown in the
    help unless empty or a secret."""
    for f in fields(defaults):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        metavar, text = help.get(f.name, (f.name.upper(), f.name.replace("_", " ")))
        if f.name == REPEATED:
            parser.add_argument(flag, metavar=metavar, action="append", help=text)
            continue
        default = getattr(defaults, f.name)
        empty = f.name in secrets or default in ("", (), {})
        shown = "" if empty else f" (default {default})"
        kind = {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(flag, metavar=metavar, type=kind, help=text + shown)


def given(args: argparse.Namespace, settings: type) -> dict[str, Any]:
    """The fields whose flags were given (the repeated one split at commas into a list)."""
    out: dict[str, Any] = {}
    for f in fields(settings):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if f.name == REPEATED:
            value = [e for item in value for e in item.split(",") if e]
        out[f.name] = value
    return out
