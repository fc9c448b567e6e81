#!/usr/bin/env python3
"""Writes N sealed-looking run bundles (manifest, events, task result) under a project root, as a large
runtime root looks to serve: verdicts 80% success, three packs, one run in ten in a workflow, 20 live runs
(some stuck), 25 awaiting approval; with --queue, a queue of 400 items with retries, deadlines and
cancellations. For benchmarks and the dashboard's tests of big lists; nothing here is a real run."""
import argparse, json, os, random, sys, time
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("root", help="project root; runs go under ROOT/.runtime-cache/cortexpilot/runs")
ap.add_argument("n", type=int, help="how many run bundles")
ap.add_argument("--queue", action="store_true", help="also write a queue of 400 items (queue.jsonl)")
ap.add_argument("--manifests-only", action="store_true",
                help="write each bundle's manifest.json alone (what the catalogue reads), for a million runs")
args = ap.parse_args()
root, n = args.root, args.n
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
    os.makedirs(d if args.manifests_only else os.path.join(d, "reports"))
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
    if i % 10 == 3:  # one run in ten belongs to one of 20 workflows
        m["workflow_id"] = "wf-%02d" % (i % 200 // 10)
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
    elif not args.manifests_only:  # a sealed run's event log: what GET /api/events pages through (5 events, keys sorted as written)
        t0 = end - dur / 1000
        lines = []
        for k, typ in enumerate(["RUN_CREATED", "RUNNER_STARTED", "RUNNER_FINISHED", "GATES_FINISHED", "RUN_SEALED"], 1):
            e = {"hash": "0" * 64, "payload": {}, "prev_hash": "0" * 64, "run_id": rid, "seq": k,
                 "ts": iso(t0 + (dur / 1000) * (k - 1) / 4), "type": typ}
            lines.append(json.dumps(e, sort_keys=True, separators=(",", ":")))
        open(os.path.join(d, "events.jsonl"), "w").write("\n".join(lines) + "\n")
    with open(os.path.join(d, "manifest.json"), "w") as f: json.dump(m, f)
    if not args.manifests_only:
        with open(os.path.join(d, "reports", "task_result.json"), "w") as f:
            json.dump({"run_id": rid, "verdict": verdict}, f)
if not args.queue:
    sys.exit(0)
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
