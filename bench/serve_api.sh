#!/usr/bin/env bash
# The REST API under load and the scheduler's dispatch latency, in one benchmark run on this machine.
#   1. A runtime root with N run bundles (default 100,000; manifest + one report each, as the catalog and the
#      detail route read them) spread over the last 30 days with realistic verdicts, durations and four gates
#      each, a few live runs (some quiet for long: stuck) and runs awaiting approval, and a queue of 400 items
#      (deadlines passed and close, retries): the command tower's aggregate gets what a busy root gives it.
#      `cp-host serve --no-scheduler`, then wrk (Debian's `wrk`) on loopback with 64 connections for D seconds
#      each: GET /api/runs/{id}, GET /api/runs?limit=50 (first page and a page deep in the list, by cursor),
#      GET /api/health, GET /api/command-tower/overview and /alerts. Prints req/s and p99 per route. Beside
#      the run detail, nginx (Debian's nginx-light) serving that run's manifest.json as a static file with
#      the same wrk settings, and the ratios.
#   2. 1,000 no-op runs (tool runner `true`) submitted through POST /api/runs in one burst to a serve with
#      the scheduler on: enqueue -> RUNNER_STARTED latency p50/p99 (includes waiting for a slot), claim ->
#      RUNNER_STARTED (the dispatch itself: child process, plugin load, worktree), and runs/s.
# Usage: bench/serve_api.sh [N_RUNS] [WRK_SECONDS] [N_QUEUED]   (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
D=${2:-10}
Q=${3:-1000}
host=$PWD/build/bin/cp-host
plugins=$PWD/build/plugins
[ -x "$host" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
work=$(mktemp -d)
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cp -r packs policies "$work/"
bash scripts/make-sample-repo.sh "$work/repo" >/dev/null

echo "== generating $N run bundles"
t0=$(date +%s.%N)
python3 bench/generate_runs.py "$work" "$N" --queue
t1=$(date +%s.%N)
echo "   $(echo "$t1 - $t0" | bc) s"

token=$("$host" tokens add --file "$work/tokens.json" --id bench --role operator 2>/dev/null)
start_serve() {
  "$host" --plugins "$plugins" --root "$work" serve --listen 127.0.0.1:0 --tokens "$work/tokens.json" \
    --repo "$work/repo" --threads 2 "$@" > "$work/serve.out" 2>&1 &
  spid=$!
  for _ in $(seq 600); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
  grep "indexed" "$work/serve.out" | sed 's/^/   /'
}
stop_serve() { kill "$spid"; wait "$spid" 2>/dev/null || true; spid=; }

echo "== cp-host serve --no-scheduler over $N runs"
ts0=$(date +%s.%N)
start_serve --no-scheduler
echo "   ready after $(echo "$(date +%s.%N) - $ts0" | bc) s; RSS $(ps -o rss= -p "$spid" | awk '{printf "%.0f MiB", $1/1024}')"
mid=$(printf "bench-%07d" $((N / 2)))
# A cursor 10,000 runs deep (or as deep as the list goes), for a page far from the top.
cursor=$(python3 - "$url" "$token" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
cur, last = "", ""
for _ in range(10):
    q = url + "/api/runs?limit=1000" + ("&cursor=" + cur if cur else "")
    j = json.load(urllib.request.urlopen(urllib.request.Request(q, headers={"Authorization": "Bearer " + token})))
    if not j["next_cursor"]: break
    last = cur = j["next_cursor"]
print(last)
PY
)
run_wrk() {  # label, path
  out=$(wrk -t2 -c64 -d"${D}s" --latency -H "Authorization: Bearer $token" "$url$2")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf "   %-34s %10s req/s   p99 %8s   non-2xx %s\n" "$1" "$rps" "$p99" "${errs:-0}"
}
run_wrk "GET /api/runs/{id}" "/api/runs/$mid"
detail_rps=$rps detail_p99=$p99
# The same run's manifest.json served as a static file by nginx (Debian's), two workers, its access log on,
# the same wrk settings: what answering a run's detail would cost were it only a file on disk.
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx"
  { [ "$(id -u)" -eq 0 ] && echo "user root;"
    cat <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  default_type application/json;
  sendfile on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${NGINX_PORT:-18089};
    root $work/.runtime-cache/cortexpilot/runs;
  }
}
NGINX
  } > "$work/nginx/nginx.conf"
  if nginx -c "$work/nginx/nginx.conf" 2>"$work/nginx/start.err"; then
    out=$(wrk -t2 -c64 -d"${D}s" --latency "http://127.0.0.1:${NGINX_PORT:-18089}/$mid/manifest.json")
    ng_rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    ng_p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    nginx -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
    printf "   %-34s %10s req/s   p99 %8s   non-2xx %s\n" "nginx: $mid/manifest.json" "$ng_rps" "$ng_p99" "${errs:-0}"
    python3 - "$detail_rps" "$detail_p99" "$ng_rps" "$ng_p99" <<'PY'
import sys
def ms(v):
    return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
r, p, nr, np_ = float(sys.argv[1]), ms(sys.argv[2]), float(sys.argv[3]), ms(sys.argv[4])
print(f"   run detail vs nginx: {r / nr:.2f}x the requests/s, p99 {p / np_:.2f}x nginx's")
PY
  else
    echo "   nginx did not start: $(head -1 "$work/nginx/start.err")"
  fi
else
  echo "   nginx: not installed (apt-get install nginx-light); no static-file comparison"
fi
run_wrk "GET /api/runs?limit=50 (first page)" "/api/runs?limit=50"
run_wrk "GET /api/runs?limit=50 (10,000 deep)" "/api/runs?limit=50&cursor=$cursor"
run_wrk "GET /api/health" "/api/health"
auth=(-H "Authorization: Bearer $token")
ov=$(curl -s "${auth[@]}" "$url/api/command-tower/overview")
al=$(curl -s "${auth[@]}" "$url/api/command-tower/alerts")
echo "   overview: $(echo "$ov" | python3 -c 'import json,sys; o=json.load(sys.stdin); print("%d runs, last day %d finished, p50 %s ms, p95 %s ms, queue depth %d, SLA breached %d" % (o["runs"]["total"], o["throughput"]["last_day"]["finished"], o["duration_ms"]["p50"], o["duration_ms"]["p95"], o["queue"]["depth"], o["queue"]["sla"]["breached"]))') ($(echo -n "$ov" | wc -c) bytes)"
echo "   alerts:   $(echo "$al" | python3 -c 'import json,sys; a=json.load(sys.stdin); print("%d alerts %s" % (a["count"], a["by_rule"]))') ($(echo -n "$al" | wc -c) bytes)"
run_wrk "GET /api/command-tower/overview" "/api/command-tower/overview"
run_wrk "GET /api/command-tower/alerts" "/api/command-tower/alerts"
# Every run's events: the newest page, a page 5,000 events deep (by cursor), and a filtered page.
ecursor=$(python3 - "$url" "$token" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
cur = ""
for _ in range(50):
    q = "/api/events?limit=100" + ("&cursor=" + cur if cur else "")
    r = json.load(urllib.request.urlopen(urllib.request.Request(url + q, headers={"Authorization": "Bearer " + token})))
    cur = r["next_cursor"]
print(cur)
PY
)
run_wrk "GET /api/events?limit=50 (newest)" "/api/events?limit=50"
run_wrk "GET /api/events?limit=50 (5,000 deep)" "/api/events?limit=50&cursor=$ecursor"
run_wrk "GET /api/events?type=RUN_SEALED&limit=50" "/api/events?type=RUN_SEALED&limit=50"
echo "   RSS after load $(ps -o rss= -p "$spid" | awk '{printf "%.0f MiB", $1/1024}')"
stop_serve

echo "== $Q no-op runs submitted in one burst, scheduler on (concurrency 2)"
rm -rf "$work/.runtime-cache/cortexpilot/runs" "$work/.runtime-cache/cortexpilot/queue.jsonl"
start_serve --concurrency 2
python3 - "$url" "$token" "$Q" "$work" <<'PY'
import json, sys, time, urllib.request, os, statistics
url, token, q, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = json.load(open("contracts/examples/noop.json"))
c["timeout_retry"] = {"timeout_sec": 300, "max_retries": 0, "backoff_sec": 0}
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
t0 = time.time()
for i in range(q):
    c["allowed_paths"] = ["bench-%d/" % i]  # paths of its own: runs on overlapping paths wait for each other
    body = json.dumps({"contract": c}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/api/runs", data=body, headers=hdr, method="POST")).read()
t_sub = time.time() - t0
while True:
    qs = json.load(urllib.request.urlopen(urllib.request.Request(url + "/api/queue", headers=hdr)))
    if qs["counts"].get("done", 0) + qs["counts"].get("cancelled", 0) >= q: break
    time.sleep(0.5)
t_all = time.time() - t0
def ms(ts):
    from datetime import datetime
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
e2s, c2s, statuses = [], [], {}
for it in qs["items"]:
    a = it["attempts"][-1]
    statuses[it.get("status")] = statuses.get(it.get("status"), 0) + 1
    ev = os.path.join(root, ".runtime-cache/cortexpilot/runs", a["run_id"], "events.jsonl")
    for line in open(ev):
        e = json.loads(line)
        if e["type"] == "RUNNER_STARTED":
            e2s.append(ms(e["ts"]) - ms(it["enqueued_at"]))
            c2s.append(ms(e["ts"]) - ms(a["claimed_at"]))
            break
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"   submitted {q} in {t_sub:.1f} s ({q / t_sub:.0f}/s); all ended after {t_all:.1f} s ({q / t_all:.1f} runs/s); {statuses}")
print(f"   enqueue -> RUNNER_STARTED  p50 {pct(e2s, 50):9.1f} ms   p99 {pct(e2s, 99):9.1f} ms   (includes the wait for a slot)")
for it in qs["items"]:
    if it.get("status") != "success":
        print(f"   not a success: {it['item_id']} {it.get('status')}: {it.get('reason')}")
print(f"   claim   -> RUNNER_STARTED  p50 {pct(c2s, 50):9.1f} ms   p99 {pct(c2s, 99):9.1f} ms   (dispatch: child, plugins, worktree)")
PY
stop_serve
