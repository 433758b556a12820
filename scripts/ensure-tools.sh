#!/usr/bin/env bash
# Makes sure the command-line tools the tests call are installed: curl and jq, which
# the README's first steps use (TestREADMEFirstStepsRunAsPasted runs them as pasted).
# Installs what is missing from Debian's packages. Used by `make test`.
set -euo pipefail

missing=()
for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-tools: installing ${missing[*]} from Debian's packages" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
