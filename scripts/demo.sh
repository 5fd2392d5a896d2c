#!/usr/bin/env bash
# Run the end-to-end demo on embedded defaults (sets up .venv first). Arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
TRACECTX_SKIP_APT=${TRACECTX_SKIP_APT:-1} TRACECTX_EXTRAS=all bash scripts/setup.sh >&2
exec .venv/bin/tracectx demo "$@"
