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
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
fi

stamp=".setup-stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || [ stack/server/_fastlane.c -nt "$stamp" ] || ! "$PY" -c "import stack, plyvel, redis, pytest" 2>/dev/null; then
    echo "setup: installing Python packages"
    "$PY" -m pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
