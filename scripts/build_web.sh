#!/usr/bin/env bash
# Builds the dashboard (web/) into OUTDIR: installs its npm packages from the committed lockfile when they
# are missing or stale, checks its types against docs/openapi.json, and bundles it. Usage:
# scripts/build_web.sh OUTDIR
set -euo pipefail
out=${1:?usage: scripts/build_web.sh OUTDIR}
cd "$(dirname "$0")/../web"
# `npm ci` again only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent check
node build.mjs --out "$out"
