#!/usr/bin/env bash
# Median wall time of a no-op governed run next to the floor (posix_spawn of `true` + two fsyncs), in one
# benchmark run on this machine. Usage: bench/run_overhead.sh  (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin/cp_run_overhead_bench
[ -x "$bin" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
out=$(mktemp)
"$bin" --benchmark_format=json --benchmark_out="$out" --benchmark_out_format=json > /dev/null
python3 - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
med = {b["run_name"].split("/")[0]: b["real_time"] for b in doc["benchmarks"] if b.get("aggregate_name") == "median"}
floor = med["SpawnTrueTwoFsyncs"]
print(f"machine: {doc['context'].get('num_cpus')} cpus, {doc['context'].get('date')}")
for name in ("NoopRun", "NoopRunCli", "SpawnTrueTwoFsyncs"):
    print(f"{name:20s} median {med[name]:8.2f} ms   x{med[name] / floor:6.1f} the floor")
PY
rm -f "$out"
