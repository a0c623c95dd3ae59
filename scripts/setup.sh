#!/usr/bin/env bash
# Install everything ledis-console needs on a fresh Debian/Ubuntu machine (idempotent).
#   - Debian packages: redis-server and redis-tools (the real Redis we compare against, and
#     redis-cli / redis-benchmark)
#   - the Python package itself (editable) with its test and dev tools; this also compiles
#     the server's C fast lane (stack/server/_fastlane.c) with the machine's C compiler
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
need_apt=()
# A C compiler and Python's headers build the server's fast lane (optional, but the speed
# figures in the README need it).
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
"$PY" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need_apt+=(python3-dev)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp=".setup-stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || [ stack/server/_fastlane.c -nt "$stamp" ] || ! "$PY" -c "import stack, plyvel, redis, pytest" 2>/dev/null; then
    echo "setup: installing Python packages"
    "$PY" -m pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
    "$PY" -c "import stack.server._fastlane" 2>/dev/null \
        || echo "setup: WARNING: the C fast lane was not built; ledis-server runs on the Python path"
fi
