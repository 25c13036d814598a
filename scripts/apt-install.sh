#!/usr/bin/env bash
# Installs a Debian package unless its command is already there: scripts/apt-install.sh COMMAND PACKAGE.
# Used by .ci/install-ui.sh (Chromium for the UI tests) and bench/setup.sh (hey). Quiet and idempotent.
set -euo pipefail
command_name=$1
package=$2
if command -v "$command_name" >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$package" >/dev/null
