#!/usr/bin/env bash
# Stop early, with the fix, when the interpreter is too old for kedro-aws (Kedro 1.x needs 3.10+).
set -euo pipefail
python=${1:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: '$python' not found. Install Python 3.10 or newer, or run: make PYTHON=/path/to/python3" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "error: $("$python" --version 2>&1) is too old; kedro-aws needs Python >= 3.10." >&2
    echo "       Run with another interpreter: make PYTHON=python3.11 ..." >&2
    exit 1
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "error: $python cannot create virtual environments (venv/ensurepip missing)." >&2
    echo "       On Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
fi
