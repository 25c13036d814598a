#!/usr/bin/env bash
# What the benchmarks need beyond the Python environment: Debian's hey (the HTTP load generator that
# bench/hey_rest.py compares the engine and %tfserve bench against). Idempotent.
set -euo pipefail
if command -v hey >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends hey >/dev/null
hey 2>&1 | head -1 || true
