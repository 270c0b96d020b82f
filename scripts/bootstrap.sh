#!/usr/bin/env bash
# Set up the locked environment: uv (if missing) and the project's .venv from uv.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  echo "== installing uv (the package manager that reads uv.lock)"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
echo "== installing the locked environment into .venv"
# Compiled up front: where PYTHONDONTWRITEBYTECODE is set (most container images), Python
# never caches bytecode, and every command would compile its imports again (1 s of each start).
uv sync --frozen --compile-bytecode "$@"
uv run --frozen --no-sync python -m compileall -q -j 0 pipeline flows dashboards timelines bench \
  || echo "(some files did not compile here; Python compiles them when they are imported)"
