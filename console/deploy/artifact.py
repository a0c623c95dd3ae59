"""What deploy installs from a checkout: this project's wheel and a wheelhouse of its
dependencies (``pip wheel``), so the hosts need no package index.

Built once per state of the sources and kept in ``<checkout>/.cache/wheelhouse-<hash>``,
where the hash covers pyproject.toml, setup.py and every source file of the packages; a
second deploy of the same checkout reuses it. The folder's name also holds the interpreter and
platform tags the compiled wheels are built for (this Python's: ``cp311-linux_x86_64``); the
planner refuses a host whose Python or platform differs. The wheel's sha256 tells hosts apart that
installed another build of the same version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .facts import Artifact
from .hostfacts import platform_tag, python_tag

log = logging.getLogger(__name__)

PROJECT = "ledis_console"
SOURCES = ("stack", "console")
SOURCE_SUFFIXES = (".py", ".c", ".pyi", ".lua")
BUILD_TIMEOUT = 900.0


class ArtifactError(RuntimeError):
    pass


@dataclass(frozen=True)
class Wheelhouse:
    dir: Path
    wheel: Path  # this project's wheel, inside ``dir``
    artifact: Artifact
    seconds: float  # how long building it took (0: taken from the cache)

    def files(self) -> list[Path]:
        return sorted(p for p in self.dir.iterdir() if p.suffix == ".whl")


def checkout_root() -> Path:
    return Path(__file__).resolve().parent.parent.parent


def source_hash(root: Path) -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py"):
        p = root / name
        if p.exists():
            h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    for pkg in SOURCES:
        for p in sorted((root / pkg).rglob("*")):
            if p.suffix in SOURCE_SUFFIXES and p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_tags() -> str:
    """The interpreter and platform this Python builds wheels for (``cp311-linux_x86_64``)."""
    impl = sys.implementation.name
    return f"{python_tag(impl, sys.version_info) or impl}-{platform_tag()}"


def _found(dir: Path, seconds: float) -> Wheelhouse | None:
    wheels = sorted(dir.glob(f"{PROJECT}-*.whl"))
    if len(wheels) != 1:
        return None
    version = wheels[0].name.split("-")[1]
    art = Artifact(version, file_sha256(wheels[0]), wheels[0].name)
    if any(not p.name.endswith("-none-any.whl") for p in dir.glob("*.whl")):
        py, _, plat = build_tags().partition("-")
        art = replace(art, python_tag=py, platform=plat)
    return Wheelhouse(dir, wheels[0], art, seconds)


def build(root: Path | None = None, cache: Path | None = None) -> Wheelhouse:
    """The wheelhouse of the checkout at ``root``: from the cache, or built there now."""
    root = root or checkout_root()
    if not (root / "pyproject.toml").exists():
        raise ArtifactError(
            f'install.source = "checkout" needs a checkout of ledis-console (no pyproject.toml '
            f'in {root}); give install.source = "version" to install a released version'
        )
    cache = cache or root / ".cache"
    target = cache / f"wheelhouse-{source_hash(root)}-{build_tags()}"
    if target.is_dir():
        found = _found(target, 0.0)
        if found is not None:
            return found
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()
    argv = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q",
            "--wheel-dir", str(tmp), str(root)]  # fmt: skip
    log.info("building the wheelhouse: %s", " ".join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"pip wheel took more than {BUILD_TIMEOUT:g} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArtifactError(f"pip wheel failed (exit {done.returncode}):\n{tail}")
    seconds = time.monotonic() - started
    try:
        tmp.rename(target)
    except OSError:  # another process built it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    found = _found(target, seconds)
    if found is None:
        raise ArtifactError(f"{target}: no single {PROJECT} wheel after pip wheel")
    return found
