# Sourced by scripts/serve and scripts/test: make .venv from the hashed locks.
#
# Needs only a Python 3.11-3.13 and the package index. Reinstalls when a lock
# changes (a stamp records the locks' digest), so a fresh clone and a stale
# checkout both end up with exactly what the locks say.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

pick_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 python3.13 python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: need Python 3.11, 3.12 or 3.13 (set PYTHON=...)" >&2
  return 1
}

ensure_venv() {
  local python stamp digest
  digest="$(cat "$ROOT/requirements.lock" "$ROOT/requirements-dev.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  stamp="$VENV/.locks.sha256"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python="$(pick_python)"
    echo "==> creating .venv with $("$python" --version)" >&2
    "$python" -m venv "$VENV"
  fi
  echo "==> installing the hashed locks into .venv" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r "$ROOT/requirements.lock" -r "$ROOT/requirements-dev.lock"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
  echo "$digest" > "$stamp"
}
