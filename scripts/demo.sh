#!/usr/bin/env bash
# README's main command: installs, builds, and shows cp-host on the shipped examples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh release
host=build/bin/cp-host
echo
echo "== cp-host plugins list"
"$host" plugins list
echo
echo "== cp-host validate (contracts/, packs/, policies/)"
"$host" validate
echo
echo "== cp-host probe toolchain"
"$host" probe toolchain || true
