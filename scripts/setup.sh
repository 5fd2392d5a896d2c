#!/usr/bin/env bash
# Set up a fresh machine for tracectx: Debian packages the tests use, a virtualenv, the install.
# Idempotent and quick when everything is already there. Needs root for apt (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server prometheus-alertmanager chromium docker-compose)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && [ "${TRACECTX_SKIP_APT:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
echo "setup: installing tracectx[${TRACECTX_EXTRAS:-all,dev}] and the demo with its broker (editable)"
.venv/bin/pip install -q -e ".[${TRACECTX_EXTRAS:-all,dev}]" -e "./demo[embedded]"
