#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set-up, lint, types, tests (services are started
# by the test fixtures on free loopback ports). Extra arguments go to the main pytest run; the
# core's unit tests and the Celery/Kafka tests then run again against the lowest declared
# versions (scripts/test-lowest.sh; TRACECTX_SKIP_LOWEST=1 skips that) and on Python 3.12 and
# 3.13 (scripts/test-pythons.sh; TRACECTX_SKIP_PYTHONS=1 skips that).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .  # one command per line: under `set -e` a failure before `&&` goes unnoticed
.venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
if command -v docker-compose >/dev/null && [ -f docker-compose.yml ]; then
  echo "== docker-compose config"; docker-compose -f docker-compose.yml config -q
fi
echo "== pytest"
.venv/bin/python -m pytest "$@"
if [ "${TRACECTX_SKIP_LOWEST:-0}" != 1 ]; then
  echo "== pytest, lowest declared versions"; bash scripts/test-lowest.sh
fi
if [ "${TRACECTX_SKIP_PYTHONS:-0}" != 1 ]; then
  echo "== pytest, Python 3.12 and 3.13"; bash scripts/test-pythons.sh
fi
