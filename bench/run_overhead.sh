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
med = {b["run_name"]: b["real_time"] for b in doc["benchmarks"] if b.get("aggregate_name") == "median"}
def get(name, threads):
    for k, v in med.items():
        if k.split("/")[0] == name and (("threads:2" in k) == (threads == 2)):
            return v
    raise KeyError(name)
print(f"machine: {doc['context'].get('num_cpus')} cpus, {doc['context'].get('date')}")
print("| run | sequential (ms) | x floor | 2 at once (ms per run, wall) | x floor |")
print("|---|---|---|---|---|")
f1, f2 = get("SpawnTrueTwoFsyncs", 1), get("SpawnTrueTwoFsyncs", 2)
for name in ("NoopRun", "NoopRunCli", "SpawnTrueTwoFsyncs"):
    one = get(name, 1)
    try:
        two = get(name, 2)
        cols = f"{two:.2f} | {two / f2:.1f}"
    except KeyError:
        cols = "- | -"
    print(f"| {name} | {one:.2f} | {one / f1:.1f} | {cols} |")
print()
print("| sandbox cost | sandbox on (ms) | sandbox off (ms) | on / off |")
print("|---|---|---|---|")
for on, off, what in (("NoopRun", "NoopRunUnsandboxed", "no-op run (median)"),
                      ("SpawnTrueSandboxed", "SpawnTrue", "one process (`true`)")):
    a, b = get(on, 1), get(off, 1)
    print(f"| {what} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
PY
rm -f "$out"
