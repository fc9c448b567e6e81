#!/usr/bin/env bash
# The REST API under load and the scheduler's dispatch latency, in one benchmark run on this machine.
#   1. A runtime root with N run bundles (default 100,000; manifest + one report each, as the catalog and the
#      detail route read them) spread over the last 30 days with realistic verdicts, durations and four gates
#      each, a few live runs (some quiet for long: stuck) and runs awaiting approval, and a queue of 400 items
#      (deadlines passed and close, retries): the command tower's aggregate gets what a busy root gives it.
#      `cp-host serve --no-scheduler`, then wrk (Debian's `wrk`) on loopback with 64 connections for D seconds
#      each: GET /api/runs/{id}, GET /api/runs?limit=50 (first page and a page deep in the list, by cursor),
#      GET /api/health, GET /api/command-tower/overview and /alerts. Prints req/s and p99 per route.
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
python3 - "$work" "$N" <<'PY'
import json, os, random, sys, time
root, n = sys.argv[1], int(sys.argv[2])
rt = os.path.join(root, ".runtime-cache/cortexpilot")
runs = os.path.join(rt, "runs")
os.makedirs(runs, exist_ok=True)
rng = random.Random(18)
now = time.time()
span = 30 * 86400
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)
for i in range(n):
    rid = f"bench-{i:07d}"
    d = os.path.join(runs, rid)
    os.makedirs(os.path.join(d, "reports"))
    # Finished times spread over the last 30 days (about 140 in the last hour); durations long-tailed.
    end = now - span + span * (i + 1) / n
    dur = int(min(max(rng.lognormvariate(11, 0.9), 500), 3600000))
    k = i % 100
    verdict = "success" if k < 80 else "failure" if k < 92 else "denied" if k < 95 else "timeout" if k < 97 \
        else "error" if k < 99 else "cancelled"
    pack = ["low", "medium", "high"][i % 3]
    gates = [{"gate_id": "diff_scope", "verdict": "fail" if verdict == "failure" and i % 7 == 0 else "pass"},
             {"gate_id": "acceptance_tests", "verdict": "fail" if verdict == "failure" and i % 7 else "pass"},
             {"gate_id": "forbidden_actions", "verdict": "fail" if verdict == "denied" else "pass"},
             {"gate_id": "required_outputs", "verdict": "error" if verdict == "error" else "pass"}]
    if pack == "high":
        gates.append({"gate_id": "policy", "verdict": "warn" if i % 11 == 0 else "pass"})
    for g in gates:
        g.update({"required": True, "report": "reports/gate_%s.json" % g["gate_id"]})
    m = {"schema_version": 1, "run_id": rid, "task_id": "bench-%d" % (i % 400), "contract_sha256": "0" * 64,
         "runner": "tool", "pack": pack, "repo": "/r", "baseline_ref": "HEAD", "status": "sealed",
         "verdict": verdict, "reason": "generated", "created_at": iso(end - dur / 1000),
         "started_at": iso(end - dur / 1000), "finished_at": iso(end), "duration_ms": dur, "host_pid": 1,
         "plugins": [], "gates": gates, "events": {"count": 11, "last_hash": "0" * 64}}
    if i % 5000 == 17:  # 20 live runs; their last event 0..38 min ago, so a few are stuck
        for key in ("verdict", "finished_at", "duration_ms", "gates"): m.pop(key)
        m["status"] = "running"
        ev = os.path.join(d, "events.jsonl")
        open(ev, "w").write("{}\n")
        t = now - (i // 5000) * 120
        os.utime(ev, (t, t))
    elif i % 4000 == 23:  # 25 runs awaiting a decision, deadlines from now to two days ahead
        del m["verdict"]
        m["status"] = "awaiting_approval"
        m["approval"] = {"state": "pending", "requested_at": iso(end), "approvers_required": 1, "approvals": [],
                         "deadline": iso(now + (i // 4000) * 7200 + 600)}
    else:  # a sealed run's event log: what GET /api/events pages through (5 events, keys sorted as written)
        t0 = end - dur / 1000
        lines = []
        for k, typ in enumerate(["RUN_CREATED", "RUNNER_STARTED", "RUNNER_FINISHED", "GATES_FINISHED", "RUN_SEALED"], 1):
            e = {"hash": "0" * 64, "payload": {}, "prev_hash": "0" * 64, "run_id": rid, "seq": k,
                 "ts": iso(t0 + (dur / 1000) * (k - 1) / 4), "type": typ}
            lines.append(json.dumps(e, sort_keys=True, separators=(",", ":")))
        open(os.path.join(d, "events.jsonl"), "w").write("\n".join(lines) + "\n")
    with open(os.path.join(d, "manifest.json"), "w") as f: json.dump(m, f)
    with open(os.path.join(d, "reports", "task_result.json"), "w") as f: json.dump({"run_id": rid, "verdict": verdict}, f)
# The queue: 400 items; deadlines passed (breached) and close (at risk), retries in the last 10 minutes.
ops = []
for j in range(400):
    iid = "q-bench-%04d" % j
    t0 = now - 3600 + j
    e = {"op": "enqueued", "item_id": iid, "ts": iso(t0), "task_id": "bench-q%d" % j, "pack": "low",
         "contract_path": "queue/contracts/%s.json" % iid, "repo": "/r", "priority": 5, "max_retries": 2,
         "backoff_sec": 0, "timeout_sec": 1800}
    if j % 10 == 0: e["deadline"] = iso(now + (j % 60 - 20) * 60)
    ops.append(e)
    if j % 8 == 0:
        for a in (1, 2):
            ops.append({"op": "claimed", "item_id": iid, "ts": iso(now - 600 + j + a), "attempt": a})
            ops.append({"op": "started", "item_id": iid, "ts": iso(now - 600 + j + a), "attempt": a,
                        "run_id": "%s-a%d" % (iid, a)})
            ops.append({"op": "finished", "item_id": iid, "ts": iso(now - 590 + j + a), "attempt": a,
                        "status": "timeout", "reason": "generated"})
            if a == 1: ops.append({"op": "retried", "item_id": iid, "ts": iso(now - 590 + j + a), "attempt": 2,
                                   "run_after": iso(now - 590 + j + a)})
    elif j % 20 == 1:
        ops.append({"op": "cancelled", "item_id": iid, "ts": iso(now - 60), "reason": "generated"})
with open(os.path.join(rt, "queue.jsonl"), "w") as f:
    for o in ops: f.write(json.dumps(o) + "\n")
PY
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
