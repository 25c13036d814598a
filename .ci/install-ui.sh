#!/usr/bin/env bash
# Installs Debian's Chromium for the Playwright UI tests (Playwright's own browser download is not used).
# Idempotent and quiet: does nothing when /usr/bin/chromium already exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-install.sh /usr/bin/chromium chromium
