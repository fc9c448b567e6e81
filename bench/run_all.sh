#!/usr/bin/env bash
# Runs every benchmark once, one after the other on a quiet machine, and writes bench/results/LATEST.md: the
# machine description, then each benchmark's table as it printed it. Takes about 30 minutes on 2 cores and 8 GB of disk (a million generated run bundles).
# Usage: bench/run_all.sh [OUT]   (after scripts/build.sh release; OUT defaults to bench/results/LATEST.md)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/LATEST.md}
[ -x build/bin/cp-host ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
section() {  # title, command...
  local title=$1
  shift
  echo "== $title" >&2
  {
    echo
    echo "## $title"
    echo
    echo "\`$*\`"
    echo
    echo '```'
    "$@" 2>&1 | grep -v '^\[bootstrap\]' || echo "(failed: exit $?)"
    echo '```'
  } >> "$tmp"
}
{
  echo "# Benchmark results"
  echo
  echo "Written by \`bench/run_all.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo "Every number below was measured in this one run, on this machine; ratios compare tools side by side"
  echo "in the same run. See [../README.md](../README.md) for what each benchmark does."
  echo
  echo "## Machine"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| CPU | $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(nproc) cores available |"
  echo "| memory | $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
  echo "| OS | $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r) |"
  echo "| compiler | $(c++ --version | head -1) |"
  echo "| python3 jsonschema | $(python3 -c 'import jsonschema; print(jsonschema.__version__)' 2>/dev/null || echo absent) |"
  echo "| node | $(node --version 2>/dev/null || echo absent) (ajv-cli 5.0.0 from npm) |"
  echo "| chromium | $(/usr/bin/chromium --version 2>/dev/null || echo absent) (Debian's package; playwright-core from bench/browser/package-lock.json) |"
  echo "| build | \`scripts/build.sh release\` (RelWithDebInfo, -O2) |"
} > "$tmp"
section "Validate: cp-host vs ajv-cli vs python jsonschema (10,000 contracts)" bash bench/validate_throughput.sh 10000
section "Run overhead: no-op governed run vs the floor, sequential and 2 at once" bash bench/run_overhead.sh
section "Event ingest: codex JSONL stream into events.jsonl" build/bin/cp_codex_stream_bench
section "Streaming memory: 100 MiB of agent output" bash bench/stream_memory.sh
section "Memory: idle serve and per concurrent run" bash bench/serve_memory.sh 3
section "REST API: wrk on loopback over 100,000 runs; scheduler dispatch" bash bench/serve_api.sh 100000 10 1000
section "Serve start over 1,000,000 runs: the run index; memory per run" bash bench/catalogue_start.sh 1000000
section "Retention plan vs find (1,000,000 files)" bash bench/retention_plan.sh 1000000
section "Plugin isolation cost" build/bin/cp_isolation_bench
section "Seal cost: signing and verify-on-read vs sha256sum and openssl" bash bench/seal_cost.sh
section "Tampered bundles: what runs verify detects" bash bench/tamper_matrix.sh build/bin/cp-host build/plugins
section "Browser runner vs Playwright: first screenshot, memory, CDP messages/s" bash bench/browser_bench.sh 10
section "Dashboard: first load and first render of the runs page, 100 vs 100,000 runs" bash bench/ui_first_render.sh 100000
section "Intake run: from POST /api/intake/{id}/run to the first step's runner start" bash bench/intake_run_latency.sh 100
section "Scale-out: 1,000 no-op runs on PostgreSQL with 1, 2 and 3 workers vs the JSONL single host" bash bench/scale_out.sh 1000
{
  echo
  echo "## Notes"
  echo
  echo "- validate: how it is checked and where the time goes:"
  echo "  [../README.md](../README.md#validate-against-python-jsonschema-and-ajv-cli)."
  echo "- The Google Benchmark binaries may print \"Library was built as DEBUG\": that is Debian's libbenchmark"
  echo "  package, not cp-host, which is built RelWithDebInfo."
} >> "$tmp"
mv "$tmp" "$out"
chmod 644 "$out"
trap - EXIT
echo "wrote $out" >&2
