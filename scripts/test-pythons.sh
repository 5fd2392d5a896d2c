#!/usr/bin/env bash
# The core's unit tests and the Celery and Kafka integration tests on the other Pythons tracectx
# declares (pyproject.toml's classifiers: 3.12 and 3.13; the main run is on python3, 3.11), each
# in its own virtualenv .venv-py3XX (made once; later runs only check the install). Extra
# arguments go to pytest. TRACECTX_PYTHONS="3.13" picks versions; TRACECTX_SKIP_PYTHONS=1 skips.
#
# Where the interpreters come from: python3.X on PATH, else pyenv's versions (this project's
# machines carry 3.11, 3.12 and 3.13 there), else `uv python install` (pip-installed uv fetches a
# CPython build from GitHub: works only where github.com is reachable). No interpreter: fail, so
# a declared version is never silently left untested.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # $1 = "3.13": print the path of an interpreter that runs, or nothing
  local v=$1 root candidate
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  # PATH first (a pyenv shim there fails unless that version is selected: then pyenv's own)
  for candidate in "$(command -v "python$v" 2>/dev/null || true)" \
      $(ls -d "$root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -rV); do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return
    fi
  done
  [ -x .venv-uv/bin/uv ] || { python3 -m venv .venv-uv && .venv-uv/bin/pip install -q uv; } >/dev/null 2>&1 || true
  if [ -x .venv-uv/bin/uv ] && .venv-uv/bin/uv python install "$v" >/dev/null 2>&1; then
    .venv-uv/bin/uv python find "$v" 2>/dev/null || true
  fi
}

for v in ${TRACECTX_PYTHONS:-3.12 3.13}; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "test-pythons: no Python $v (not on PATH, not in pyenv, uv could not fetch one);" \
      "install one or set TRACECTX_SKIP_PYTHONS=1" >&2
    exit 1
  fi
  venv=".venv-py${v/./}"
  if [ ! -x "$venv/bin/python" ]; then
    echo "test-pythons: creating $venv with $py"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
  fi
  stamp="$venv/.tracectx-installed"
  want=$(cat pyproject.toml demo/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "test-pythons: installing tracectx[celery,kafka,aiokafka,confluent-kafka,dev] and the demo into $venv"
    "$venv/bin/pip" install -q -e ".[celery,kafka,aiokafka,confluent-kafka,dev]" -e "./demo[embedded]"
    echo "$want" >"$stamp"
  fi
  echo "== pytest, Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
  "$venv/bin/python" -m pytest tests/unit tests/integration/celery tests/integration/kafka \
    -p no:cacheprovider "$@"
done
