#!/usr/bin/env python3
"""The harness of bench/browser_bench.sh (run that, not this): the browser runner next to Playwright.

1. First screenshot from a cold process: `cp-host run` of a browser contract (open a loopback page, one
   full-page screenshot) and `node playwright_shot.mjs` (playwright-core launching the same chromium, same
   page, same screenshot), N times each, interleaved, after one unmeasured warm-up of each.
2. Peak memory: cp-host's own process (VmHWM) and the chromium processes' summed RSS and PSS, sampled
   every 10 ms in separate runs (the sampling costs CPU, so these runs are not the timed ones).
3. CDP messages/s: the runner on a page that logs 20,000 console lines, and on one that loads 1,000
   images, before their load event; browser.counts.cdp_messages over the page-open step's duration.

Usage: bench.py CP_HOST PLUGINS_DIR N   (from the project root)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
CONSOLE_LINES = 9_000  # under the runner's 10,000 kept console lines per task
IMAGES = 1000
MEM_RUNS = 3
HEAVY_RUNS = 3
STARTED = time.strftime("%Y-%m-%dT%H:%M:%S%z")
LOAD_AT_START = os.getloadavg()[0]


def die(msg):
    print(f"browser_bench: {msg}", file=sys.stderr)
    sys.exit(1)


def ts_ns(iso):
    """Event timestamp (2026-12-01T15:09:08.358Z, milliseconds, UTC) as ns since the epoch."""
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000) * 1_000_000


def ms(ns):
    return ns / 1e6


def med(xs):
    return statistics.median(xs)


# ---------------------------------------------------------------- the pages and the server

def write_site(site):
    os.makedirs(site)
    # About two screens tall, so that the full-page screenshot is more than the viewport.
    paras = "\n".join(f"<p>Paragraph {i}: the quick brown fox jumps over the lazy dog, "
                      f"then measures how long a browser takes to show it.</p>" for i in range(60))
    with open(f"{site}/index.html", "w") as f:
        f.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>browser bench</title>
<link rel="icon" href="data:,"><style>body{{font-family:sans-serif;margin:2em}} h1{{color:#235}}</style></head>
<body><h1>Browser bench</h1>
<table border="1"><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
{paras}
</body></html>
""")
    # 1x1 transparent GIF.
    with open(f"{site}/px.gif", "wb") as f:
        f.write(bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"))
    # The event-heavy pages: everything happens before the load event, which the page-open step waits for.
    # console: a script logs CONSOLE_LINES lines; network: IMAGES distinct image URLs (one file).
    with open(f"{site}/console.html", "w") as f:
        f.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>console flood</title>
<link rel="icon" href="data:,"></head><body><h1>Console flood</h1>
<script>
const t0 = performance.now();
for (let i = 0; i < {CONSOLE_LINES}; i++) console.log('console line ' + i + ' of the flood');
window.__loop_ms = performance.now() - t0;
</script>
</body></html>
""")
    imgs = "".join(f'<img src="px.gif?{i}" width="1" height="1">' for i in range(IMAGES))
    with open(f"{site}/network.html", "w") as f:
        f.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>request flood</title>
<link rel="icon" href="data:,"></head><body><h1>Request flood</h1>
<div>{imgs}</div>
</body></html>
""")


def start_server(site):
    p = subprocess.Popen([sys.executable, "-u", f"{HERE}/serve.py", site], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()  # "port 40123"
    try:
        port = int(line.split()[1])
    except (IndexError, ValueError):
        p.kill()
        die(f"serve.py did not say its port: {line!r}")
    return p, port


# ---------------------------------------------------------------- processes and memory

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(root, kids):
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def is_chromium(pid):
    c = comm(pid)
    return c.startswith("chrom")  # chromium (its renderers, zygotes...), chrome_crashpad_handler


class MemorySampler(threading.Thread):
    """Every 10 ms: the launched process's VmHWM, and the summed RSS and PSS of the chromium processes that
    are its descendants or that appeared since it started (chromium's crashpad handler daemonizes)."""

    def __init__(self, pid, before):
        super().__init__(daemon=True)
        self.pid, self.before = pid, before
        self.hwm = self.rss_peak = self.pss_peak = self.procs_peak = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.hwm = max(self.hwm, status_kib(self.pid, "VmHWM"))
            kids = children_map()
            mine = set(descendants(self.pid, kids))
            pids = [p for p in mine if is_chromium(p)]
            pids += [p for ps in kids.values() for p in ps
                     if p not in mine and p not in self.before and comm(p).startswith("chrome_crashpad")]
            rss = sum(status_kib(p, "VmRSS") for p in pids)
            if rss > self.rss_peak:
                self.rss_peak = rss
                self.pss_peak = max(self.pss_peak, sum(pss_kib(p) for p in pids))
            self.procs_peak = max(self.procs_peak, len(pids))
            time.sleep(0.01)


def launch(argv, sample=False, **kw):
    """Runs argv; returns (t0_ns, t_exit_ns, rc, stdout, sampler). t0 is taken just before the fork."""
    before = set(int(d) for d in os.listdir("/proc") if d.isdigit()) if sample else set()
    t0 = time.time_ns()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    sampler = None
    if sample:
        sampler = MemorySampler(p.pid, before)
        sampler.start()
    out, err = p.communicate()
    t1 = time.time_ns()
    if sampler:
        sampler.stop = True
        sampler.join()
    return t0, t1, p.returncode, out, err, sampler


# ---------------------------------------------------------------- the two sides

class CpHost:
    def __init__(self, host, plugins, work):
        self.host, self.plugins, self.work = host, plugins, work
        self.repo = f"{work}/repo"

    def contract(self, name, tasks, budgets=None):
        bt = {"tasks": tasks}
        if budgets:
            bt["budgets"] = budgets
        c = {"schema_version": 1, "task_id": name, "task_type": "research",
             "owner_agent": {"role": "OPERATOR", "agent_id": "operator"},
             "assigned_agent": {"role": "WORKER", "agent_id": "browser-worker"},
             "inputs": {"spec": "Browser bench"}, "allowed_paths": ["."],
             "acceptance_tests": [{"name": "noop", "cmd": "true"}],
             "rollback": {"strategy": "discard_worktree", "baseline_ref": "HEAD"},
             "runtime_options": {"runner": "browser", "pack": "low", "browser_tasks": bt}}
        path = f"{self.work}/{name}.json"
        with open(path, "w") as f:
            json.dump(c, f)
        return path

    def run(self, contract, sample=False):
        t0, t1, rc, out, err, sampler = launch(
            [self.host, "--plugins", self.plugins, "--root", self.work, "run", contract, "--repo", self.repo,
             "--quiet", "--json"], sample)
        try:
            res = json.loads(out)
        except json.JSONDecodeError:
            die(f"cp-host run printed no JSON (exit {rc}): {err.strip()[-2000:]}")
        m = res.get("manifest", {})
        if rc != 0 or m.get("verdict") != "success":
            die(f"cp-host run {res.get('run_id')} ended {m.get('verdict')} (exit {rc}): {m.get('reason')}")
        bundle = res["bundle"]
        events = [json.loads(line) for line in open(f"{bundle}/events.jsonl")]
        result = json.load(open(f"{bundle}/reports/task_result.json"))
        return {"t0": t0, "t1": t1, "bundle": bundle, "events": events, "result": result, "mem": sampler}


def pw_run(url, out, listen=False, sample=False):
    t0, t1, rc, stdout, err, sampler = launch(
        ["node", f"{HERE}/playwright_shot.mjs", url, out, "1" if listen else "0"], sample, cwd=HERE)
    if rc != 0:
        die(f"playwright_shot.mjs failed (exit {rc}): {err.strip()[-2000:]}")
    try:
        r = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        die(f"playwright_shot.mjs printed no JSON: {stdout[-500:]!r}")
    if r.get("status") != 200:
        die(f"playwright_shot.mjs: {url} answered {r.get('status')}")
    if not os.path.getsize(out):
        die(f"playwright_shot.mjs wrote an empty {out}")
    r.update(t0=t0, t1=t1, mtime=os.stat(out).st_mtime_ns, mem=sampler)
    return r


def heavy_run(cp, contract, kind):
    """One run of an event-heavy page: the runner's counts, its page-open step, and what it kept."""
    r = cp.run(contract)
    c = r["result"]["browser"]["counts"]
    step = next(e for e in r["events"] if e["type"] == "BROWSER_STEP" and e["payload"]["action"] == "navigate")
    d = f"{r['bundle']}/artifacts/browser/{kind}"
    page = json.load(open(f"{d}/extract.json"))["page"]
    console = sum(1 for line in open(f"{d}/console.jsonl") if "console line " in line)
    network = sum(1 for line in open(f"{d}/network.jsonl") if "px.gif" in line)
    want = (CONSOLE_LINES, 0) if kind == "console" else (0, IMAGES)
    if (console, network) != want:
        die(f"{kind}.html: the runner kept {console} console lines and {network} image requests, "
            f"expected {want[0]} and {want[1]} ({r['bundle']})")
    return {"msgs": c["cdp_messages"], "step_ms": step["payload"]["duration_ms"], "requests": c["requests"],
            "page_load_ms": page["load_ms"], "loop_ms": page["loop_ms"], "run_ms": ms(r["t1"] - r["t0"])}


def cp_shot_times(r):
    """Milliseconds from the fork of `cp-host run` to each point, read from the run's events."""
    ev = r["events"]

    def first(kind, **match):
        for e in ev:
            if e["type"] == kind and all(e["payload"].get(k) == v for k, v in match.items()):
                return e
        die(f"run {r['bundle']} has no {kind} {match}")

    shot = first("BROWSER_STEP", action="screenshot")
    if shot["payload"]["status"] != "passed":
        die(f"the screenshot step did not pass: {shot['payload']}")
    png = f"{r['bundle']}/artifacts/browser/home/screenshot.png"
    if not os.path.getsize(png):
        die(f"empty screenshot {png}")
    opened = first("BROWSER_STEP", action="navigate")
    t0 = r["t0"]
    return {
        "shot_event": ms(ts_ns(shot["ts"]) - t0),
        "shot_mtime": ms(os.stat(png).st_mtime_ns - t0),
        "run_started": ms(ts_ns(first("RUN_STARTED")["ts"]) - t0),
        "runner_started": ms(ts_ns(first("RUNNER_STARTED")["ts"]) - t0),
        "nav_start": ms(ts_ns(opened["ts"]) - opened["payload"]["duration_ms"] * 1_000_000 - t0),
        "nav_ms": opened["payload"]["duration_ms"],
        "shot_ms": shot["payload"]["duration_ms"],
        "runner_finished": ms(ts_ns(first("RUNNER_FINISHED")["ts"]) - t0),
        "sealed": ms(ts_ns(first("RUN_SEALED")["ts"]) - t0),
        "exit": ms(r["t1"] - t0),
        "cdp_messages": r["result"]["browser"]["counts"]["cdp_messages"],
    }


def pw_shot_times(r):
    t0 = r["t0"]
    return {
        "started": r["started"] - t0 / 1e6,
        "launched": r["launched"] - t0 / 1e6,
        "loaded": r["loaded"] - t0 / 1e6,
        "shot": r["shot"] - t0 / 1e6,
        "shot_mtime": ms(r["mtime"] - t0),
        "exit": ms(r["t1"] - t0),
    }


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) != 4:
        die("usage: bench.py CP_HOST PLUGINS_DIR N")
    host, plugins, n = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), int(sys.argv[3])
    if n < 1:
        die("N must be at least 1")
    stray = [p for p in os.listdir("/proc") if p.isdigit() and is_chromium(int(p))]
    if stray:
        print(f"warning: {len(stray)} chromium process(es) already running; they are not counted, but they "
              f"share the 2 cores, and the pages they share with the bench's chromium lower its PSS",
              file=sys.stderr)
    work = tempfile.mkdtemp(prefix="cp-browser-bench-")
    server = None
    try:
        for d in ("packs", "policies"):
            shutil.copytree(d, f"{work}/{d}")
        subprocess.run(["bash", "scripts/make-sample-repo.sh", f"{work}/repo"], check=True,
                       stdout=subprocess.DEVNULL)
        write_site(f"{work}/site")
        server, port = start_server(f"{work}/site")
        base = f"http://127.0.0.1:{port}"
        cp = CpHost(host, plugins, work)
        shot_c = cp.contract("shot", [{"id": "home", "url": f"{base}/", "script": [{"action": "screenshot"}]}])
        timing = ("({load_ms: performance.getEntriesByType('navigation')[0].loadEventStart, "
                  "loop_ms: window.__loop_ms || 0, images: document.images.length})")
        heavy_c = {kind: cp.contract(kind, [{"id": kind, "url": f"{base}/{kind}.html", "script": [
            {"action": "evaluate", "name": "page", "expression": timing}]}], budgets={"max_requests": min(5 * IMAGES, 5000)})  # within the shipped policy
            for kind in ("console", "network")}
        pw_png = f"{work}/pw.png"

        # 1. first screenshot, interleaved; one warm-up of each first (page cache, chromium's first start).
        cp.run(shot_c)
        pw_run(f"{base}/", pw_png)
        cps, pws = [], []
        for _ in range(n):
            cps.append(cp_shot_times(cp.run(shot_c)))
            pws.append(pw_shot_times(pw_run(f"{base}/", pw_png)))

        # 2. memory, sampled.
        cpm = [cp.run(shot_c, sample=True)["mem"] for _ in range(MEM_RUNS)]
        pwm = [pw_run(f"{base}/", pw_png, sample=True)["mem"] for _ in range(MEM_RUNS)]

        # 3. the event-heavy pages.
        heavy = {kind: [heavy_run(cp, heavy_c[kind], kind) for _ in range(HEAVY_RUNS)]
                 for kind in ("console", "network")}
        pwh = {}
        for kind in ("console", "network"):
            pwh[kind] = []
            for _ in range(HEAVY_RUNS):
                r = pw_run(f"{base}/{kind}.html", f"{work}/pw-{kind}.png", listen=True)
                want = (CONSOLE_LINES, 1) if kind == "console" else (0, IMAGES + 1)
                if r["console_lines"] < want[0] or r["requests"] < want[1]:
                    die(f"playwright saw {r['console_lines']} console lines and {r['requests']} requests "
                        f"on {kind}.html")
                pwh[kind].append({"goto_ms": r["loaded"] - r["navigating"]})
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)

    report(n, cps, pws, cpm, pwm, heavy, pwh, len(stray))


def report(n, cps, pws, cpm, pwm, heavy, pwh, stray):
    def col(rows, key):
        return [r[key] for r in rows]

    def stat(xs):
        return f"{med(xs):,.0f}", f"{min(xs):,.0f}", f"{max(xs):,.0f}"

    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    pw_ver = json.load(open(f"{HERE}/node_modules/playwright-core/package.json"))["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores, {STARTED} (1-min load {LOAD_AT_START:.2f} at start); {chromium}; "
          f"playwright-core {pw_ver}, node {node}")
    print(f"page: loopback python http.server (bench/browser/serve.py), 1280x800 viewport, full-page PNG; "
          f"N={n} cold starts each, interleaved, after one warm-up of each")
    if stray:
        print(f"**not a quiet machine: {stray} other chromium process(es) were running when it started**")
    print()
    print("| from the fork of the process to ... (ms) | median | min | max |")
    print("|---|---|---|---|")
    rows = [
        ("cp-host: RUN_STARTED event", col(cps, "run_started")),
        ("cp-host: RUNNER_STARTED event (worktree made, sandbox applied)", col(cps, "runner_started")),
        ("cp-host: page open step starts (chromium up, DevTools session ready)", col(cps, "nav_start")),
        ("**cp-host: screenshot written (BROWSER_STEP screenshot event)**", col(cps, "shot_event")),
        ("cp-host: screenshot.png mtime", col(cps, "shot_mtime")),
        ("cp-host: RUNNER_FINISHED (browser closed, dom.html written)", col(cps, "runner_finished")),
        ("cp-host: RUN_SEALED (diff, 4 gates, seal)", col(cps, "sealed")),
        ("**cp-host: `run` exits (whole run)**", col(cps, "exit")),
        ("playwright: script starts (node up, playwright-core imported)", col(pws, "started")),
        ("playwright: chromium.launch() returns", col(pws, "launched")),
        ("playwright: page.goto() returns (load event)", col(pws, "loaded")),
        ("**playwright: page.screenshot() returns (file written)**", col(pws, "shot")),
        ("playwright: screenshot mtime", col(pws, "shot_mtime")),
        ("**playwright: node exits (after browser.close())**", col(pws, "exit")),
    ]
    for name, xs in rows:
        print(f"| {name} | {' | '.join(stat(xs))} |")
    print()
    print("| step inside the browser (ms) | cp-host median | playwright median |")
    print("|---|---|---|")
    print(f"| chromium start to page ready | {med([c['nav_start'] - c['runner_started'] for c in cps]):,.0f} "
          f"(RUNNER_STARTED to open step) | {med([p['launched'] - p['started'] for p in pws]):,.0f} "
          f"(launch(), before newPage()) |")
    print(f"| navigate to load event | {med(col(cps, 'nav_ms')):,.0f} | "
          f"{med([p['loaded'] - p['launched'] for p in pws]):,.0f} (newPage() + goto()) |")
    print(f"| full-page screenshot | {med(col(cps, 'shot_ms')):,.0f} | "
          f"{med([p['shot'] - p['loaded'] for p in pws]):,.0f} |")
    print()
    first = med(col(cps, "shot_event")) / med(col(pws, "shot"))
    whole = med(col(cps, "exit")) / med(col(pws, "exit"))
    print("| ratio cp-host / playwright (medians) | x |")
    print("|---|---|")
    print(f"| first screenshot written | {first:.2f}x |")
    print(f"| whole process (cp-host's run seals a bundle; playwright's only closes the browser) | {whole:.2f}x |")
    print()

    def mib(kib):
        return f"{kib / 1024:,.0f}"

    print(f"| peak memory, median of {len(cpm)} sampled runs (MiB) | cp-host run | playwright (node) |")
    print("|---|---|---|")
    print(f"| the driving process's own peak RSS (VmHWM) | {mib(med([m.hwm for m in cpm]))} | "
          f"{mib(med([m.hwm for m in pwm]))} |")
    print(f"| chromium processes, summed RSS at the sampled peak | {mib(med([m.rss_peak for m in cpm]))} | "
          f"{mib(med([m.rss_peak for m in pwm]))} |")
    print(f"| chromium processes, summed PSS at that peak | {mib(med([m.pss_peak for m in cpm]))} | "
          f"{mib(med([m.pss_peak for m in pwm]))} |")
    print(f"| chromium processes at most | {med([m.procs_peak for m in cpm]):.0f} | "
          f"{med([m.procs_peak for m in pwm]):.0f} |")
    print()
    print(f"event-heavy pages ({len(heavy['console'])} runs each): console.html logs {CONSOLE_LINES:,} lines "
          f"from an inline script; network.html loads {IMAGES:,} distinct image URLs. Both finish before the "
          f"load event, which the page-open step waits for. A plain page's run has "
          f"{med(col(cps, 'cdp_messages')):.0f} CDP messages in all (set-up, navigation, screenshot, close).")
    print()
    print("| event-heavy page (median of runs) | console.html | network.html |")
    print("|---|---|---|")
    hc, hn = heavy["console"], heavy["network"]

    def both(f, fmt="{:,.0f}"):
        return f"{fmt.format(med([f(h) for h in hc]))} | {fmt.format(med([f(h) for h in hn]))}"

    print(f"| browser.counts.cdp_messages (whole run) | {both(lambda h: h['msgs'])} |")
    print(f"| browser.counts.requests | {both(lambda h: h['requests'])} |")
    print(f"| page-open step: navigate to load event (BROWSER_STEP duration_ms) | {both(lambda h: h['step_ms'])} |")
    print(f"| **CDP messages/s: cdp_messages / open step** | {both(lambda h: h['msgs'] / h['step_ms'] * 1000)} |")
    print(f"| the page's own load time (performance loadEventStart, ms) | {both(lambda h: h['page_load_ms'])} |")
    print(f"| open step minus the page's load time (ms): the runner's lag | "
          f"{both(lambda h: h['step_ms'] - h['page_load_ms'])} |")
    print(f"| the console loop alone, in the page (ms) | {med([h['loop_ms'] for h in hc]):,.0f} | - |")
    print(f"| playwright page.goto() of the same page, console + requestfinished listened (ms) | "
          f"{med([p['goto_ms'] for p in pwh['console']]):,.0f} | {med([p['goto_ms'] for p in pwh['network']]):,.0f} |")
    print(f"| cp-host whole run (ms) | {both(lambda h: h['run_ms'])} |")


if __name__ == "__main__":
    main()
