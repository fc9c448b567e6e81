#!/usr/bin/env bash
# serve's start over a large root, and its memory per run: N generated bundles (manifest.json alone, what the
# catalogue reads). Measured one after the other in this run: `cp-host reindex` (every manifest read),
# serve's start from its run index (one file; then each indexed manifest's stamp checked in the background)
# and serve's start without it (every manifest read, as before the index existed). Ready: from exec to
# "listening on". Memory per run: serve's RSS over the N runs minus its RSS over an empty root, over N.
# Usage: bench/catalogue_start.sh [N]   (after scripts/build.sh release; N defaults to 1,000,000: about
# 4 GB of disk and 3 minutes to generate)
set -euo pipefail
cd "$(dirname "$0")/.."
host=$PWD/build/bin/cp-host
[ -x "$host" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
N=${1:-1000000}
work=$(mktemp -d)
empty=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work" "$empty" "$work.serve.out" "$empty.serve.out"' EXIT
"$host" tokens add --file "$work/tokens.json" --id bench --role operator > /dev/null 2>&1

now() { date +%s.%N; }
start_serve() {  # root; sets spid, ready (seconds), rss (KiB)
  local t0
  t0=$(now)
  "$host" --root "$1" serve --listen 127.0.0.1:0 --tokens "$work/tokens.json" --no-scheduler --threads 2 \
    > "$1.serve.out" 2>&1 &
  spid=$!
  # Without the index, a cold cache makes the start of a million runs take minutes: wait up to half an hour.
  for _ in $(seq 180000); do grep -q "listening on" "$1.serve.out" && break; sleep 0.01; done
  ready=$(echo "$(now) - $t0" | bc)
  sleep 1
  rss=$(ps -o rss= -p "$spid" | tr -d ' ')
}
stop_serve() { kill "$spid"; wait "$spid" 2>/dev/null || true; spid=; }

echo "== generating $N run bundles (manifests only)"
t0=$(now)
python3 bench/generate_runs.py "$work" "$N" --manifests-only
echo "   $(echo "$(now) - $t0" | bc) s"
sync

start_serve "$empty"
rss0=$rss
ready0=$ready
stop_serve

echo "== cp-host reindex (reads every manifest)"
t0=$(now)
"$host" --root "$work" reindex | sed 's/^/   /'
reindex_s=$(echo "$(now) - $t0" | bc)
idx="$work/.runtime-cache/cortexpilot/index/runs.idx"
echo "   index $(du -m "$idx" | cut -f1) MiB"

echo "== serve from the run index"
start_serve "$work"
ready_idx=$ready
rss_idx=$rss
grep "indexed" "$work.serve.out" | sed 's/^/   /'
t0=$(now)
for _ in $(seq 6000); do grep -q "checked" "$work.serve.out" && break; sleep 0.05; done
checked_s=$(echo "$(now) - $t0 + 1" | bc)
grep "checked" "$work.serve.out" | sed 's/^/   /'
stop_serve

echo "== serve without the index (every manifest read)"
rm -f "$idx"
sync
start_serve "$work"
ready_full=$ready
rss_full=$rss
grep "indexed" "$work.serve.out" | sed 's/^/   /'
stop_serve

per_run() { echo "($1 - $rss0) * 1024 / $N" | bc; }
echo
echo "| $N runs | time | serve RSS | memory per run |"
echo "|---|---|---|---|"
echo "| serve over an empty root | ready $(printf %.2f "$ready0") s | $((rss0 / 1024)) MiB | |"
echo "| \`cp-host reindex\` (every manifest read, index written) | $(printf %.2f "$reindex_s") s | | |"
echo "| serve start from the run index: ready | $(printf %.2f "$ready_idx") s | $((rss_idx / 1024)) MiB | $(per_run "$rss_idx") B |"
echo "| ... every indexed manifest's stamp checked (in the background, after ready) | $(printf %.2f "$checked_s") s more | | |"
echo "| serve start without the index: ready | $(printf %.2f "$ready_full") s | $((rss_full / 1024)) MiB | $(per_run "$rss_full") B |"
