# Sourced by scripts/*: make .venv (if needed) and install streams into it with the given extras.
# Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
# editable_mode=compat: a path entry in a .pth file, as a regular install behaves. The default
# editable finder imports pathlib, re and urllib.parse at every interpreter start (about 13 ms of
# CPU before any command runs), which would make every start-up figure worse than users see.
# (pip prints setuptools' warning that compat mode is transitional; hence 2>/dev/null.)
stamp="$VENV/.streams-installed-compat-${1:-base}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    spec="$ROOT"
    if [ -n "${1:-}" ]; then spec="$ROOT[$1]"; fi
    pip_install=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec")
    # setuptools calls compat "transitional": should a later one drop it, the default mode serves.
    "${pip_install[@]}" --config-settings editable_mode=compat 2>/dev/null || "${pip_install[@]}"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
