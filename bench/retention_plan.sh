#!/usr/bin/env bash
# `cp-host retention plan` over a generated tree of N files (default 1,000,000) next to
# `find ROOT -mtime +N` on the same tree, in one benchmark run on this machine. The tree is the cache lane:
# .runtime-cache/cache/{runtime,test,build}/<entry>/<files>, 1,000 files per entry, half the entries older
# than the TTL. Both tools walk every file and stat it (find for -mtime, the lane for sizes and ages).
# Each is run once cold-ish (after the other) and once more; the second (warm cache) timings are compared.
# Usage: bench/retention_plan.sh [N_FILES]   (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
host=$PWD/build/bin/cp-host
[ -x "$host" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r packs policies "$work/"
cat > "$work/policies/retention_policy.json" <<'JSON'
{"policy": "retention_policy", "version": 1, "lanes": {"cache": {"ttl_days": 7}}}
JSON
echo "== generating $N files"
t0=$(date +%s.%N)
python3 - "$work/.runtime-cache/cache" "$N" <<'PY'
import os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
per = 1000
now = time.time()
groups = ["runtime", "test", "build"]
for e in range((n + per - 1) // per):
    d = os.path.join(root, groups[e % 3], f"entry-{e:05d}")
    os.makedirs(d)
    t = now - (30 if e % 2 else 1) * 86400
    for i in range(min(per, n - e * per)):
        p = os.path.join(d, f"f{i:04d}")
        with open(p, "wb") as f: f.write(b"x" * (i % 64))
        os.utime(p, (t, t))
    os.utime(d, (t, t))
PY
echo "   $(echo "$(date +%s.%N) - $t0" | bc) s"
run() {  # prints seconds
  local s e
  s=$(date +%s.%N)
  "$@" > "$work/out" 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
find_cmd() { find "$work/.runtime-cache/cache" -mtime +7 -type f | wc -l; }
plan_cmd() { "$host" --plugins build/plugins --root "$work" retention plan --json --lane cache; }
run find_cmd > /dev/null; run plan_cmd > /dev/null   # warm the cache for both
f=$(run find_cmd); found=$(cat "$work/out")
p=$(run plan_cmd)
cands=$(python3 -c "import json,sys; r=json.load(open('$work/out')); l=r['lanes']['cache']; print(len(l['candidates']), l['entries'], sum(c['files'] for c in l['candidates']))")
echo "find -mtime +7 -type f      $f s   ($found files older than 7 days)"
echo "cp-host retention plan      $p s   (candidates, entries, files in candidates: $cands)"
echo "ratio plan / find           $(echo "scale=2; $p / $f" | bc)"
