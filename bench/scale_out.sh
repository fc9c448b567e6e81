#!/usr/bin/env bash
# The queue on PostgreSQL with 1, 2 and 3 workers, next to the JSONL single host, on this machine: a burst of
# N no-op runs (default 1000; a tool-runner contract whose command and acceptance test are `true`, each with a
# path of its own so no path lock serialises them) submitted to an API node while the workers run. For each
# configuration: claims per second (items claimed over the span from the first claim to the last) and, per
# item, the time from its enqueue to its run's RUNNER_STARTED event (p50/p99: in a burst this is mostly the
# wait for a free slot). Each worker runs with --concurrency 2. Then the lease: a worker killed with two runs
# in flight, and how long until another worker has run them again (lease TTL 5 s).
# A real PostgreSQL 15 is started in a temp folder (as the postgres user when run as root).
# Usage: bench/scale_out.sh [N]   (after scripts/build.sh release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
host=$PWD/build/bin/cp-host
plugins=$PWD/build/plugins
pgbin=/usr/lib/postgresql/15/bin
[ -x "$host" ] || { echo "build first: bash scripts/build.sh release" >&2; exit 2; }
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL 15 is missing: bash scripts/bootstrap.sh" >&2; exit 2; }
work=$(mktemp -d)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdir="$work/pg"
mkdir -p "$pgdir"
[ "$(id -u)" -eq 0 ] && chown postgres "$pgdir"
cleanup() {
  pkill -f -- "--root $work/" 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" stop -m immediate -D "$pgdir/data" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
as_pg "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust --no-sync >/dev/null
as_pg "$pgbin/pg_ctl" start -w -D "$pgdir/data" -l "$pgdir/log" \
  -o "-k $pgdir -c listen_addresses= -c max_connections=200" >/dev/null

python3 - "$host" "$plugins" "$work" "$N" "$pgdir" "$pgbin" <<'PY'
import datetime, json, os, pathlib, shutil, signal, subprocess, sys, time, urllib.request
host, plugins, work, n, pgdir, pgbin = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
src = pathlib.Path.cwd()

def iso_ms(ts):
    d = datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    frac = ts[20:-1] if len(ts) > 20 else "0"
    return d.timestamp() * 1000 + int((frac + "000")[:3])

def new_root(name):
    root = work / name
    root.mkdir()
    for d in ("packs", "policies"):
        shutil.copytree(src / d, root / d)
    return root

def database(name):
    subprocess.run([pgbin + "/psql", "-X", "-q", "-d", "host=%s user=postgres dbname=postgres" % pgdir,
                    "-c", "CREATE DATABASE " + name], check=True)
    url = "host=%s user=postgres dbname=%s" % (pgdir, name)
    subprocess.run([host, "db", "migrate", "--store", url], check=True, stdout=subprocess.DEVNULL)
    return url

def serve(root, args, log):
    out = open(root / log, "w")
    p = subprocess.Popen([host, "--plugins", plugins, "--root", str(root), "serve", "--listen", "127.0.0.1:0",
                          "--open-reads"] + args, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        text = (root / log).read_text()
        if "listening on " in text:
            return p, text.split("listening on ")[1].split()[0]
        time.sleep(0.05)
    raise SystemExit("serve did not start: " + (root / log).read_text())

def get(url, path):
    with urllib.request.urlopen(url + path) as r:
        return json.load(r)

repo = work / "repo"
subprocess.run(["bash", "scripts/make-sample-repo.sh", str(repo)], check=True, stdout=subprocess.DEVNULL)
base = json.load(open(src / "contracts/examples/fix-greeting.json"))

def contract(i):
    c = json.loads(json.dumps(base))
    c["task_id"] = "noop%d" % i
    c["runtime_options"]["commands"] = ["true"]
    c["acceptance_tests"] = [{"name": "noop", "cmd": "true"}]
    c["allowed_paths"] = ["work/noop%d/" % i]
    c["timeout_retry"] = {"timeout_sec": 300, "max_retries": 0, "backoff_sec": 0}
    return c

def submit_all(root, env, count):
    # queue submit, in parallel batches: the burst is in the queue within seconds.
    files = []
    for i in range(count):
        f = root / ("c%d.json" % i)
        f.write_text(json.dumps(contract(i)))
        files.append(f)
    procs = []
    for f in files:
        procs.append(subprocess.Popen([host, "--plugins", plugins, "--root", str(root), "queue", "submit", str(f),
                                       "--repo", str(repo)], env=env, stdout=subprocess.DEVNULL))
        if len(procs) >= 8:
            for p in procs:
                p.wait()
            procs = []
    for p in procs:
        p.wait()

def runner_started(roots, run_id):
    for r in roots:
        ev = r / ".runtime-cache/cortexpilot/runs" / run_id / "events.jsonl"
        if ev.exists():
            for line in ev.read_text().splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("type") == "RUNNER_STARTED":
                    return iso_ms(e["ts"])
    return None

def measure(label, url, roots, count):
    deadline = time.time() + 3600
    while time.time() < deadline:
        q = get(url, "/api/queue")
        if len(q["items"]) == count and all(it["state"] in ("done", "cancelled") for it in q["items"]):
            break
        time.sleep(0.5)
    claims, lat, ok = [], [], 0
    for it in q["items"]:
        ok += it.get("status") == "success"
        a = it["attempts"][0]
        claims.append(iso_ms(a["claimed_at"]))
        s = runner_started(roots, a["run_id"])
        if s is not None:
            lat.append(s - iso_ms(it["enqueued_at"]))
    claims.sort()
    lat.sort()
    span = (claims[-1] - claims[0]) / 1000.0 if len(claims) > 1 else 0
    p = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))]
    print("| %s | %d/%d | %.1f | %.0f | %.0f | %.1f |" % (label, ok, count, (len(claims) - 1) / span if span else 0,
                                                        p(0.5), p(0.99), span))
    sys.stdout.flush()

print("| configuration | succeeded | claims/s | enqueue→runner start p50 (ms) | p99 (ms) | claim span (s) |")
print("|---|---|---|---|---|---|")
# The JSONL single host.
root = new_root("jsonl")
proc, url = serve(root, ["--concurrency", "2"], "serve.out")
env = dict(os.environ)
env.pop("CP_HOST_STORE", None)
submit_all(root, env, n)
measure("JSONL, one host", url, [root], n)
proc.terminate(); proc.wait()

for workers in (1, 2, 3):
    store = database("bench_w%d" % workers)
    env = dict(os.environ, CP_HOST_STORE=store)
    api_root = new_root("api%d" % workers)
    api, url = serve(api_root, ["--store", store, "--no-scheduler", "--worker-id", "api"], "serve.out")
    roots, procs = [api_root], [api]
    for w in range(workers):
        r = new_root("w%d-%d" % (workers, w))
        p, _ = serve(r, ["--store", store, "--concurrency", "2", "--worker-id", "w%d" % w], "serve.out")
        roots.append(r)
        procs.append(p)
    submit_all(api_root, env, n)
    measure("PostgreSQL, %d worker%s" % (workers, "s" if workers > 1 else ""), url, roots, n)
    for p in procs:
        p.terminate()
        p.wait()

# The lease: a worker killed with two runs in flight (sleep 5 each); the time from the kill until both have
# ended successfully on the other worker (lease TTL 5 s, so at least that).
store = database("bench_lease")
env = dict(os.environ, CP_HOST_STORE=store)
a_root, b_root = new_root("lease-a"), new_root("lease-b")
a, url = serve(a_root, ["--store", store, "--concurrency", "2", "--worker-id", "doomed", "--lease-ttl", "5"], "serve.out")
for i in range(2):
    c = contract(10000 + i)
    c["runtime_options"]["commands"] = ["sleep 5"]
    f = a_root / ("slow%d.json" % i)
    f.write_text(json.dumps(c))
    subprocess.run([host, "--plugins", plugins, "--root", str(a_root), "queue", "submit", str(f), "--repo", str(repo)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
while sum(it["state"] == "running" for it in get(url, "/api/queue")["items"]) < 2:
    time.sleep(0.05)
a.send_signal(signal.SIGKILL)
a.wait()
killed = time.time()
b, burl = serve(b_root, ["--store", store, "--concurrency", "2", "--worker-id", "survivor", "--lease-ttl", "5"], "serve.out")
while True:
    items = get(burl, "/api/queue")["items"]
    if all(it["state"] == "done" for it in items):
        break
    time.sleep(0.05)
took = time.time() - killed
print()
print("Lease: a worker killed with 2 runs in flight (each `sleep 5`, lease TTL 5 s): both ran again and ended "
      "%s on the other worker %.1f s after the kill (TTL 5 s + the runs' own 5 s + dispatch)."
      % ("successfully" if all(it["status"] == "success" for it in items) else "NOT successfully", took))
b.terminate(); b.wait()
PY
