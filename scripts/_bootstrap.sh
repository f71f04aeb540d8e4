# shellcheck shell=bash
# Sourced by scripts/serve, scripts/test, scripts/bench, scripts/package and scripts/deploy:
# make .venv from the hashed locks.
#
# Needs only a Python 3.11-3.13 and the package index. PYTHON=... names the interpreter;
# otherwise the first of python3.12, python3.13, python3.11, python3 that runs.
#
# .venv is used as it is only when its stamp matches: the digest of the locks, pyproject.toml
# and scripts/pip.lock, and, when PYTHON is set, the interpreter PYTHON names. The stamp is
# written last, after every step succeeded. Any other .venv (no stamp: a build that failed, was
# cut short or came from an older bootstrap; other locks; another interpreter) is deleted and
# made anew, never installed into, so a fresh clone and a stale checkout both end up with
# exactly what the locks say, and `PYTHON=python3.13 scripts/test` after a 3.11 build gets 3.13.
#
# The build (each step says so on stderr): a venv with the interpreter's own pip; pip itself
# from scripts/pip.lock, hash-checked, installed by whatever pip the venv came with (the 23.2.1
# that Python 3.11.7 and 3.12.0-3.12.1 bundle can install a wheel by hash but cannot resolve the
# locks: issue 26); both locks; the project, editable.
#
# GATEWAY_SEED_PIP_WHEEL=/path/pip-X-py3-none-any.whl makes a new venv start from that pip
# instead of the one the interpreter bundles: `venv --without-pip`, then the wheel installs
# itself offline, and the build stops unless pip then says it is version X. .ci/run uses it to
# prove the build from the oldest bundled pip we support (23.2.1) on whatever Python the machine
# has, rather than making .venv itself, which the rule above would rightly delete as unstamped.
# The caller checks the wheel's hash. It changes nothing when .venv is already good.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

# The interpreter to build .venv with, printed as its real path (a pyenv shim resolved). PYTHON
# when set, and an error if it does not run or is not 3.11-3.13: a named interpreter is never
# silently swapped for another. Otherwise the first candidate that runs and fits. A candidate on
# PATH that does not run (a pyenv shim for a version pyenv has not selected exits 127 with
# "command not found") fails the -c check and is skipped.
pick_python() {
  local candidate found
  local probe='import os, sys
print(os.path.realpath(sys.executable))
sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)'
  if [ -n "${PYTHON:-}" ]; then
    if found="$("$PYTHON" -c "$probe" 2>/dev/null)" && [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
    echo "error: PYTHON=$PYTHON does not run or is not Python 3.11, 3.12 or 3.13" >&2
    return 1
  fi
  for candidate in python3.12 python3.13 python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if found="$("$candidate" -c "$probe" 2>/dev/null)" && [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
  done
  echo "error: need Python 3.11, 3.12 or 3.13 (set PYTHON=...)" >&2
  return 1
}

# Run one build step with its output kept aside: shown only if it fails (less the warnings a
# machine's pip config gives for a missing local index, as in scripts/deploy). A failed step
# fails explicitly, so even a caller that turned errexit off never gets a stamp after it.
_venv_step() {
  local log status=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    echo "error: building .venv failed (above); it is left unstamped, so the next run makes it anew" >&2
  fi
  rm -f "$log"
  return "$status"
}

ensure_venv() {
  local digest stamp="$VENV/.bootstrap.stamp" python="" want="" reason started pip_from pip_to seed
  digest="$(cat "$ROOT/requirements.lock" "$ROOT/requirements-dev.lock" "$ROOT/pyproject.toml" \
    "$ROOT/scripts/pip.lock" | sha256sum | cut -d' ' -f1)"
  if [ -n "${PYTHON:-}" ]; then
    python="$(pick_python)" || return 1
    want="python $python"
  fi
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$digest" ] &&
      { [ -z "$want" ] || [ "$(sed -n 2p "$stamp")" = "$want" ]; }; then
    return 0
  fi
  [ -n "$python" ] || python="$(pick_python)" || return 1

  if [ -e "$VENV" ] || [ -L "$VENV" ]; then
    if [ ! -f "$stamp" ]; then
      reason="no stamp (a build that failed or was cut short, or an older bootstrap's)"
    elif [ "$(sed -n 1p "$stamp")" != "$digest" ]; then
      reason="built from other locks"
    elif [ ! -x "$VENV/bin/python" ]; then
      reason="its interpreter is gone"
    else
      reason="built with $(sed -n 2p "$stamp" | cut -d' ' -f2-), PYTHON names $python"
    fi
    echo "==> removing .venv: $reason" >&2
    rm -rf "$VENV"
  fi

  started=$SECONDS
  seed="${GATEWAY_SEED_PIP_WHEEL:-}"
  if [ -n "$seed" ]; then
    echo "==> creating .venv with $("$python" --version 2>&1) ($python), pip from $(basename "$seed")" >&2
    _venv_step "$python" -m venv --without-pip "$VENV" || return 1
    _venv_step "$VENV/bin/python" "$seed/pip" install --quiet --disable-pip-version-check \
      --no-index --no-deps "$seed" || return 1
  else
    echo "==> creating .venv with $("$python" --version 2>&1) ($python)" >&2
    _venv_step "$python" -m venv "$VENV" || return 1
  fi
  pip_from="$("$VENV/bin/python" -m pip --version 2>/dev/null | cut -d' ' -f2)" || true
  if [ -n "$seed" ] && [ "$pip_from" != "$(basename "$seed" | cut -d- -f2)" ]; then
    echo "error: .venv's pip is '$pip_from', not the one $(basename "$seed") should have installed" >&2
    return 1
  fi

  pip_to="$(sed -n 's/^pip==\([^ ]*\).*/\1/p' "$ROOT/scripts/pip.lock")"
  echo "==> upgrading .venv's pip ${pip_from:-(none)} to $pip_to (scripts/pip.lock, hash-checked)" >&2
  _venv_step "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    --no-deps --only-binary=:all: -r "$ROOT/scripts/pip.lock" || return 1

  echo "==> installing requirements.lock and requirements-dev.lock into .venv (a minute or two)" >&2
  _venv_step "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r "$ROOT/requirements.lock" -r "$ROOT/requirements-dev.lock" || return 1

  echo "==> installing the project into .venv (editable)" >&2
  _venv_step "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation -e "$ROOT" || return 1

  printf '%s\npython %s\n' "$digest" "$python" > "$stamp"
  echo "==> .venv ready in $((SECONDS - started)) s" >&2
}
