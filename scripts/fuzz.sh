#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, clang) and runs each for SECONDS (default 60) from the seed
# corpus in fuzz/corpus/<target>/. A crash, leak, sanitizer report or timeout fails the script; the input is
# kept under build-fuzz/artifacts/<target>/ (reproduce: build-fuzz/bin/fuzz_<target> FILE).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(contract agent_stream worker_frame events_log rest_request secret_redaction bundle_verify run_index)
bash scripts/build.sh fuzz
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t
  art=build-fuzz/artifacts/$t
  mkdir -p "$work" "$art"
  echo "== fuzz $t (${secs} s)"
  # The working corpus grows in build-fuzz/; the seeds in fuzz/corpus/ stay as committed.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/bin/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "$work" "fuzz/corpus/$t" 2>"build-fuzz/fuzz_$t.log" || {
    tail -60 "build-fuzz/fuzz_$t.log"
    echo "fuzz_$t found a problem; the input is in $art/" >&2
    exit 1
  }
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "build-fuzz/fuzz_$t.log" | tr '\n' ' '
  echo "corpus $(ls "$work" | wc -l) inputs"
done
