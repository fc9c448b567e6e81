#!/usr/bin/env bash
# From an intake session's run to its chain's first step at work: N sessions (default 100), each planned by
# the template planner from a docs-update request with every field given (no questions), then
# POST /api/intake/{id}/run against a real `cp-host serve` with its scheduler on. The time is from just
# before the request leaves to the first step's RUNNER_STARTED event (the step's run past validation,
# worktree and probes, its runner started): p50/p99 over the N chains. The queue is idle between chains (each
# chain is waited for before the next is run), so the number is dispatch, not queueing. The step is a
# tool-runner step (one `sed`), so the chain ends quickly; nothing here is an agent's time.
# Usage: bench/intake_run_latency.sh [N]   (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
host=$PWD/build/bin/cp-host
plugins=$PWD/build/plugins
[ -x "$host" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
work=$(mktemp -d)
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cp -r packs policies "$work/"
# The docs-update pack as shipped asks codex to write; here its runner is the tool runner with one sed, so the
# step ends at once and the number is the host's own (a copy in the bench's root: the shipped pack is unchanged).
python3 - "$work/packs/tasks/docs-update/pack.json" <<'PY'
import json, sys
p = sys.argv[1]
pack = json.load(open(p))
for f in pack["fields"]:
    if f["name"] == "runner":
        f["default"] = "tool"
    if f["name"] == "commands":
        f["default"] = ["sed -i s/tiny/small/ README.md"]
json.dump(pack, open(p, "w"), indent=1)
PY
bash scripts/make-sample-repo.sh "$work/repo" >/dev/null
token=$("$host" tokens add --file "$work/tokens.json" --id bench --role operator 2>/dev/null)
"$host" --plugins "$plugins" --root "$work" serve --listen 127.0.0.1:0 --tokens "$work/tokens.json" \
  --repo "$work/repo" > "$work/serve.out" 2>&1 &
spid=$!
for _ in $(seq 600); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.out" >&2; exit 3; }

python3 - "$url" "$token" "$work" "$N" <<'PY'
import json, pathlib, sys, time, urllib.request, urllib.error
url, token, root, n = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), int(sys.argv[4])
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers=H)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def iso_ms(ts):
    # 2026-12-02T10:00:00.123Z
    import datetime
    d = datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    frac = ts[20:-1] if len(ts) > 20 else "0"
    return d.timestamp() * 1000 + int((frac + "000")[:3])

def runner_started(run_id):
    ev = root / ".runtime-cache/cortexpilot/runs" / run_id / "events.jsonl"
    if not ev.exists():
        return None
    for line in ev.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("type") == "RUNNER_STARTED":
            return iso_ms(e["ts"])
    return None

lat = []
t_all = time.time()
for i in range(n):
    request = ("Update README.md: call the project small, not tiny (bench %d)" % i)
    st, s = call("POST", "/api/intake", {"request": request, "task_pack": "docs-update"})
    assert st == 201, (st, s)
    iid = s["intake_id"]
    while s["state"] == "asking":
        answers = {}
        for q in s["questions"]:
            f = q.get("field", "")
            answers[q["id"]] = {"docs_paths": "README.md",
                                "check_command": "grep -q small README.md"}.get(f, "none")
        st, s = call("POST", "/api/intake/%s/answers" % iid, {"answers": answers})
        assert st == 200, (st, s)
    assert s["state"] == "planned", s
    t0 = time.time() * 1000
    st, s = call("POST", "/api/intake/%s/run" % iid)
    assert st == 202, (st, s)
    chain = s["chain_id"]
    started = None
    deadline = time.time() + 120
    while time.time() < deadline:
        st, v = call("GET", "/api/chains/" + chain)
        runs = [x.get("run_id") for x in v.get("steps", []) if x.get("run_id")]
        if runs and started is None:
            started = runner_started(runs[0])
        if started is not None and v.get("state") in ("done", "failed", "cancelled", "sealed"):
            break
        time.sleep(0.02)
    assert started is not None, ("no step started", v)
    assert v.get("verdict") == "success", ("the chain did not succeed", v.get("reason"))
    lat.append(started - t0)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("intake run -> first step's RUNNER_STARTED over %d chains: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%.1f s in all)"
      % (len(lat), p(0.50), p(0.99), lat[-1], time.time() - t_all))
PY
