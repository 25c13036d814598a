#!/usr/bin/env bash
# What the benchmarks need beyond the Python environment: Debian's hey, the HTTP load generator that
# bench/hey_rest.py compares the engine and %tfserve bench against. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-install.sh hey hey
