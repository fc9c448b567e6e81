#!/usr/bin/env bash
# Peak RSS of cp-host while the codex runner streams >= 100 MB of agent output (the fake codex's
# huge_output scenario: 100 items of 1 MiB each), next to the same run's bundle size.
# Usage: bench/stream_memory.sh   (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
host=$PWD/build/bin/cp-host
[ -x "$host" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R packs policies "$work/"
bash scripts/make-sample-repo.sh "$work/repo" > /dev/null
python3 - "$work/task.json" <<'PY'
import json, sys
c = json.load(open("contracts/examples/fix-greeting.json"))
c["runtime_options"] = {"runner": "codex", "pack": "medium"}
json.dump(c, open(sys.argv[1], "w"))
PY
export PATH="$PWD/tests/fakes:$PATH" FAKE_CODEX_SCENARIO=huge_output
/usr/bin/time -f "%M %e" -o "$work/time" "$host" --plugins build/plugins --root "$work" run "$work/task.json" \
  --repo "$work/repo" --quiet > /dev/null || true
read -r rss secs < "$work/time"
raw=$(du -b "$work"/.runtime-cache/cortexpilot/runs/*/artifacts/codex/events.jsonl | cut -f1)
echo "streamed $((raw / 1048576)) MiB of codex output in ${secs} s; cp-host peak RSS $((rss / 1024)) MiB"
