#!/usr/bin/env bash
# The browser runner next to Playwright, in one run:
#   1. first screenshot of a loopback page from a cold process start: `cp-host run` of a browser contract vs
#      a node script using playwright-core with the same chromium (/usr/bin/chromium), N times each,
#      medians and the ratio; cp-host's whole `run` (worktree, gates, seal) reported apart;
#   2. peak memory of cp-host's own process and of the chromium processes (Playwright's node alongside);
#   3. CDP messages/s the runner takes in on a page that logs 20,000 console lines, and on one that makes
#      1,000 requests.
# What each number measures: bench/README.md#browser-runner-vs-playwright. Takes about 90 s at N=10.
#
# Usage: bash bench/browser_bench.sh [N=10]
#   after `bash scripts/build.sh release`; needs /usr/bin/chromium, node >= 20 and npm (playwright-core is
#   installed from bench/browser/package-lock.json with `npm ci` on first use, without a browser download),
#   and python3. Run it on a quiet machine: it shares 2 cores with anything else running.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
host=$PWD/build/bin/cp-host
plugins=$PWD/build/plugins
fail() { echo "browser_bench: $*" >&2; exit 2; }
[ -x "$host" ] || fail "no build/bin/cp-host: build first (bash scripts/build.sh release)"
[ -f "$plugins/runner_browser.so" ] || fail "no build/plugins/runner_browser.so: build first (bash scripts/build.sh release)"
[ -x /usr/bin/chromium ] || fail "no /usr/bin/chromium: apt-get install chromium"
command -v python3 >/dev/null || fail "no python3"
command -v node >/dev/null || fail "no node (Node.js 20 or later)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  fail "node $(node --version) is too old: playwright-core needs 20 or later"
case $n in '' | *[!0-9]* | 0) fail "N must be a positive whole number, not '$n'" ;; esac
# Installed once, again when the lock names another version than the one installed.
locked() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/playwright-core"]["version"])' "$1"; }
installed() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$1" 2>/dev/null || true; }
if [ "$(installed bench/browser/node_modules/playwright-core/package.json)" != "$(locked bench/browser/package-lock.json)" ]; then
  command -v npm >/dev/null || fail "no npm to install playwright-core"
  echo "browser_bench: npm ci in bench/browser (playwright-core, no browser download)" >&2
  (cd bench/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) ||
    fail "npm ci in bench/browser failed"
fi
exec python3 bench/browser/bench.py "$host" "$plugins" "$n"
