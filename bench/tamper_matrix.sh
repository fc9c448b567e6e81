#!/usr/bin/env bash
# The tamper matrix: 25 ways of changing a finished run bundle, and whether `cp-host runs verify` notices.
# In a scratch project (contracts/, packs/, policies/ and the sample repository) with its own host key
# folder (CP_HOST_KEY_DIR), it makes three runs of contracts/examples/fix-greeting.json:
#   success   the shipped contract as it is
#   denied    the same plus a command editing README.md, outside allowed_paths (diff_scope fails)
#   awaiting  the same as success under pack "high" (the run waits for an approval)
# then, for each tampering, restores a pristine copy of the bundle (cp -a), applies the change, runs
# `runs verify RUN` and records the exit code and the first line it printed. Exit 1 = detected, exit 0 =
# undetected. Works with any cp-host, also one from before bundles were sealed (no seal.json, no `keys`
# command): a tampering that has nothing to act on is reported as n/a.
# Usage: bench/tamper_matrix.sh CP_HOST_BIN PLUGINS_DIR   (prints a markdown table and a summary line)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 CP_HOST_BIN PLUGINS_DIR" >&2; exit 2; }
host=$(realpath "$1")
plugins=$(realpath "$2")
[ -x "$host" ] || { echo "not an executable: $1" >&2; exit 2; }
[ -d "$plugins" ] || { echo "not a folder: $2" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/contracts" "$src/packs" "$src/policies" "$work/"
bash "$src/scripts/make-sample-repo.sh" "$work/repo" > /dev/null
export CP_HOST_KEY_DIR="$work/keys"
cd "$work"
runs=.runtime-cache/cortexpilot/runs
cp_host() { "$host" --plugins "$plugins" --root "$work" "$@"; }

python3 - <<'PY'
import json
c = json.load(open("contracts/examples/fix-greeting.json"))
json.dump(c, open("success.json", "w"), indent=2)
d = json.loads(json.dumps(c))
d["runtime_options"]["commands"] = d["runtime_options"]["commands"] + ["sed -i s/^/x/ README.md"]
json.dump(d, open("denied.json", "w"), indent=2)
a = json.loads(json.dumps(c))
a["runtime_options"]["pack"] = "high"
json.dump(a, open("awaiting.json", "w"), indent=2)
PY

# Runs one contract; sets run_<kind> to its run id and keeps a pristine copy of the bundle.
mkdir -p pristine
declare -A run_id
for kind in success denied awaiting; do
  before=$(ls "$runs" 2>/dev/null || true)
  cp_host run --quiet --repo repo "$kind.json" > "run-$kind.log" 2>&1 || true
  id=$(comm -13 <(echo "$before" | sort) <(ls "$runs" | sort) | head -1)
  [ -n "$id" ] || { echo "the $kind run made no bundle:" >&2; cat "run-$kind.log" >&2; exit 1; }
  status=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m.get("status"), m.get("verdict"))' \
    "$runs/$id/manifest.json")
  case "$kind:$status" in
    "success:sealed success" | "denied:sealed denied" | awaiting:awaiting_approval*) ;;
    *) echo "the $kind run ended '$status':" >&2; cat "run-$kind.log" >&2; exit 1 ;;
  esac
  v=$(cp_host runs verify "$id" 2>&1) || { echo "the untouched $kind run does not verify: $v" >&2; exit 1; }
  cp -a "$runs/$id" "pristine/$id"
  run_id[$kind]=$id
done

# The tamperings, one python function each, acting on the bundle folder. Exit 3: nothing to act on here.
cat > tamper.py <<'PY'
import hashlib, json, os, sys

kind, b = sys.argv[1], sys.argv[2]
P = lambda *p: os.path.join(b, *p)

def rj(p): return json.load(open(P(p)))
def wj(p, j):  # as the host writes its JSON files: sorted keys, 2-space indent, final newline
    with open(P(p), "w") as f: f.write(json.dumps(j, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
def compact(j): return json.dumps(j, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
def events(): return [json.loads(l) for l in open(P("events.jsonl"))]
def write_events(es):
    with open(P("events.jsonl"), "w") as f:
        for e in es: f.write(compact(e) + "\n")
def event_hash(e):
    body = {k: e[k] for k in ("seq", "ts", "run_id", "type", "payload")}
    return hashlib.sha256((e["prev_hash"] + compact(body)).encode()).hexdigest()
def rehash(es):  # the chain recomputed from the first event: what anyone can do without a key
    prev = "0" * 64
    for i, e in enumerate(es):
        e["seq"], e["prev_hash"] = i + 1, prev
        e["hash"] = prev = event_hash(e)
    return es
def set_events_counter(m, es):
    m["events"] = {"count": len(es), "last_hash": es[-1]["hash"]}
def na(why): print(why); sys.exit(3)

m = rj("manifest.json") if os.path.exists(P("manifest.json")) else None

if kind == "verdict_success":
    m["verdict"] = "success"; wj("manifest.json", m)
elif kind == "gates_pass":
    for g in m["gates"]: g["verdict"] = "pass"
    wj("manifest.json", m)
elif kind == "manifest_deleted":
    os.remove(P("manifest.json"))
elif kind == "manifest_truncated":
    t = open(P("manifest.json")).read(); open(P("manifest.json"), "w").write(t[: len(t) // 2])
elif kind == "report_edited":
    r = rj("reports/gate_diff_scope.json"); r["verdict"] = "pass"; wj("reports/gate_diff_scope.json", r)
elif kind == "incident_edited":
    r = rj("reports/incident_pack.json"); r["failed_gates"] = []; wj("reports/incident_pack.json", r)
elif kind == "incident_to_proof":
    os.rename(P("reports/incident_pack.json"), P("reports/proof_pack.json"))
    m["reports"].pop("incident_pack", None); m["reports"]["proof_pack"] = "reports/proof_pack.json"
    wj("manifest.json", m)
elif kind == "contract_widened":
    c = rj("contract.json"); c["contract"]["allowed_paths"] = ["**"]; wj("contract.json", c)
elif kind == "events_cut_running":
    es = events()[:3]; write_events(es)
    m["status"] = "running"; m.pop("verdict", None); m["events"] = {"count": 3}
    wj("manifest.json", m)
elif kind == "seal_deleted":
    if not os.path.exists(P("seal.json")): na("no seal.json in bundles of this version")
    os.remove(P("seal.json"))
elif kind == "full_rehash":
    # Denied -> success everywhere the text says so, the chain recomputed, the manifest's counter updated.
    es = events()
    assert all(event_hash(e) == e["hash"] for e in es), "python's event hash differs from the host's"
    reason = "the runner completed and every required gate passed"
    for g in m["gates"]: g["verdict"] = "pass"
    m["verdict"], m["reason"] = "success", reason
    for e in es:
        p = e["payload"]
        if e["type"] == "GATE_FAILED": e["type"] = "GATE_PASSED"
        if p.get("verdict") == "fail": p["verdict"] = "pass"
        if p.get("verdict") == "denied": p["verdict"], p["reason"] = "success", reason
        if isinstance(p.get("seal"), dict) and "manifest" in p["seal"]:
            p["seal"]["manifest"] = {k: v for k, v in m.items() if k != "events"}
    rehash(es); write_events(es); set_events_counter(m, es); wj("manifest.json", m)
elif kind == "diff_edited":
    with open(P("artifacts/diff.patch"), "a") as f: f.write("+echo pwned\n")
elif kind == "diff_deleted":
    os.remove(P("artifacts/diff.patch"))
elif kind == "artifact_added":
    open(P("artifacts/notes.txt"), "w").write("added after the run\n")
elif kind == "changed_files_edited":
    cf = rj("artifacts/changed_files.json")
    wj("artifacts/changed_files.json", [x for x in cf if x.get("path") != "README.md"])
elif kind == "task_result_edited":
    t = rj("reports/task_result.json"); t["reason"] = "nothing happened"; t["commands"] = []
    wj("reports/task_result.json", t)
elif kind == "reason_edited":
    m["reason"] = "every required gate passed"; wj("manifest.json", m)
elif kind == "sandbox_claimed":
    s = m.setdefault("sandbox", {}); s["kind"] = "microvm"; s["enabled"] = True; wj("manifest.json", m)
elif kind == "contract_sha_consistent":
    c = rj("contract.json"); c["contract"]["allowed_paths"] = ["**"]; wj("contract.json", c)
    m["contract_sha256"] = hashlib.sha256(compact(c).encode()).hexdigest(); wj("manifest.json", m)
elif kind == "payload_edited":
    es = events()
    for e in es:
        if e["type"] == "GATE_FAILED": e["payload"]["verdict"] = "pass"; break
    else: na("no GATE_FAILED event")
    write_events(es)
elif kind == "last_event_deleted":
    es = events()[:-1]; write_events(es); set_events_counter(m, es); wj("manifest.json", m)
elif kind == "approval_pack_edited":
    if not os.path.exists(P("reports/approval_pack.json")): na("no approval pack")
    a = rj("reports/approval_pack.json"); a["changed_files"] = []; wj("reports/approval_pack.json", a)
elif kind == "approval_approved":
    if "approval" not in m: na("no approval in the manifest")
    m["approval"]["state"] = "approved"
    m["approval"]["approvals"] = [{"by": "pm-1", "role": "PM", "decision": "approve", "at": m["created_at"]}]
    wj("manifest.json", m)
elif kind == "tool_stdout_edited":
    with open(P("artifacts/tool/0.stdout.log"), "a") as f: f.write("all tests passed\n")
elif kind == "duplicate_key":
    t = open(P("manifest.json")).read()
    old = '"verdict": "denied"'
    assert old in t
    open(P("manifest.json"), "w").write(t.replace(old, old + ', "verdict": "success"', 1))
else:
    sys.exit("unknown tampering " + kind)
PY

# number | description | run | tampering
matrix=(
  "manifest verdict denied -> success|denied|verdict_success"
  "every gate -> pass in the manifest|denied|gates_pass"
  "manifest.json deleted|success|manifest_deleted"
  "manifest.json truncated to half|success|manifest_truncated"
  "gate report edited (diff_scope verdict -> pass)|denied|report_edited"
  "incident pack edited (failed_gates emptied)|denied|incident_edited"
  "incident pack renamed to proof pack, manifest reports changed|denied|incident_to_proof"
  "contract.json widened (allowed_paths **)|success|contract_widened"
  "events.jsonl cut to 3 lines + manifest status running|denied|events_cut_running"
  "seal.json deleted|success|seal_deleted"
  "full re-hash without the key: denied -> success in events and manifest, chain recomputed, events.count/last_hash updated|denied|full_rehash"
  "diff.patch edited (a line appended)|success|diff_edited"
  "diff.patch deleted|success|diff_deleted"
  "file added under artifacts/|success|artifact_added"
  "changed_files.json edited (README.md entry removed)|denied|changed_files_edited"
  "task_result.json edited (reason, commands)|success|task_result_edited"
  "manifest reason edited|denied|reason_edited"
  "manifest sandbox.kind -> microvm|success|sandbox_claimed"
  "contract.json widened + manifest contract_sha256 recomputed to match|success|contract_sha_consistent"
  "event payload edited, chain left broken (GATE_FAILED verdict -> pass)|denied|payload_edited"
  "last event deleted + manifest events.count/last_hash adjusted|success|last_event_deleted"
  "approval pack edited (changed_files emptied)|awaiting|approval_pack_edited"
  "manifest approval.state -> approved (with an approval record)|awaiting|approval_approved"
  "tool stdout log edited|success|tool_stdout_edited"
  "duplicate key in manifest.json: \"verdict\": \"denied\", \"verdict\": \"success\"|denied|duplicate_key"
)

version=$("$host" --version 2>/dev/null | head -1 || true)
echo "${version:-cp-host (no --version)}, sha256 $(sha256sum "$host" | cut -c1-12)"
echo
echo "| # | tampering | run | exit | detected? | first line |"
echo "|---|---|---|---|---|---|"
n=0 undetected=0 na=0
for row in "${matrix[@]}"; do
  IFS='|' read -r what kind tamper <<< "$row"
  n=$((n + 1))
  id=${run_id[$kind]}
  rm -rf "${runs:?}/$id"
  cp -a "pristine/$id" "$runs/$id"
  set +e
  note=$(python3 tamper.py "$tamper" "$runs/$id" 2>&1)
  trc=$?
  out=$(cp_host runs verify "$id" 2>&1)
  rc=$?
  set -e
  first=$(printf '%s\n' "$out" | head -1 | tr '`' "'" | sed "s/$id/RUN/g; s/|/\\\\|/g" | cut -c1-100)
  if [ "$trc" -eq 3 ]; then
    verdict="n/a ($note)"
    na=$((na + 1))
  elif [ "$trc" -ne 0 ]; then
    echo "tampering $tamper failed: $note" >&2
    exit 1
  elif [ "$rc" -eq 1 ]; then
    verdict="yes"
  elif [ "$rc" -eq 0 ]; then
    verdict="**no**"
    undetected=$((undetected + 1))
  else
    verdict="error (exit $rc)"
  fi
  echo "| $n | $what | $kind | $rc | $verdict | \`$first\` |"
done
rm -rf "${runs:?}/${run_id[success]}" "${runs:?}/${run_id[denied]}" "${runs:?}/${run_id[awaiting]}"
echo
if [ "$na" -gt 0 ]; then echo "undetected: $undetected of $n ($na n/a)"; else echo "undetected: $undetected of $n"; fi
