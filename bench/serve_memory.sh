#!/usr/bin/env bash
# Resident memory of `cp-host serve`: idle over an empty root, then while it runs 2 queued runs at once
# (each a child `cp-host run` whose tool runner sleeps), sampled every 100 ms: serve's RSS and the peak RSS of
# each child run. Usage: bench/serve_memory.sh [SLEEP_SEC]  (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/bin/cp-host
plugins=$PWD/build/plugins
[ -x "$bin" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
secs=${1:-3}
work=$(mktemp -d)
trap 'kill "$spid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r packs policies "$work/"
cp -r examples/sample-repo "$work/repo"
(cd "$work/repo" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@localhost commit -qm init)
"$bin" tokens add --file "$work/tokens.json" --id bench --role operator > "$work/token" 2>/dev/null
"$bin" --plugins "$plugins" --root "$work" serve --listen 127.0.0.1:0 --tokens "$work/tokens.json" \
  --repo "$work/repo" --concurrency 2 > "$work/serve.out" 2>&1 &
spid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
sleep 2
idle=$(ps -o rss= -p "$spid")
python3 - "$work" "$secs" <<'PY'
import json, sys
work, secs = sys.argv[1], sys.argv[2]
c = json.load(open("contracts/examples/noop.json"))
c["runtime_options"]["commands"] = [f"sleep {secs}"]
for i in range(2):
    c["task_id"] = f"mem-{i}"
    json.dump(c, open(f"{work}/c{i}.json", "w"))
PY
for i in 0 1; do "$bin" --plugins "$plugins" --root "$work" queue submit "$work/c$i.json" --repo "$work/repo" > /dev/null; done
peak_serve=$idle
declare -A peak
end=$(( $(date +%s) + secs + 20 ))
while [ "$(date +%s)" -lt "$end" ]; do
  s=$(ps -o rss= -p "$spid" | tr -d ' '); [ "$s" -gt "$peak_serve" ] && peak_serve=$s
  for child in $(pgrep -P "$spid" -f " run " || true); do
    r=$(ps -o rss= -p "$child" 2>/dev/null | tr -d ' ' || echo 0); [ -n "$r" ] || r=0
    [ "${peak[$child]:-0}" -lt "$r" ] && peak[$child]=$r
  done
  done_n=$("$bin" --root "$work" queue list --json | python3 -c "import json,sys; print(json.load(sys.stdin)['counts'].get('done',0))")
  [ "$done_n" -ge 2 ] && break
  sleep 0.1
done
echo "| what | RSS |"
echo "|---|---|"
echo "| idle serve (empty root, scheduler on) | $((idle / 1024)) MiB |"
echo "| serve while 2 runs are in flight (peak) | $((peak_serve / 1024)) MiB |"
n=0
for child in "${!peak[@]}"; do
  n=$((n + 1))
  echo "| child \`cp-host run\` #$n (peak) | $((peak[$child] / 1024)) MiB |"
done
