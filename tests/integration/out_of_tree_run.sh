#!/usr/bin/env bash
# Third-party plugins that cp-host was never told about change run outcomes through what their descriptors
# and results declare (ABI 1.2), with no host change: installs the SDK from the build tree, builds
# tests/plugins/out_of_tree against it as a separate CMake project, then runs contracts whose runner and
# gates come from it.
#   - oot_policy (CP_FLAG_GATE_POLICY) failing seals the run "denied" (exit 5); the incident pack's advice
#     is the gate's next_action;
#   - oot_check, the same gate without the flag, failing seals it "failure" (exit 4);
#   - oot_runner's own result fields appear in reports/task_result.json, and the state folder the host gave
#     it exists, writable, outside the worktree and the bundle.
set -euo pipefail
build_dir=$1 src=$2 cp_host=$3 plugin_dir=$4 source_dir=$5 cc=$6 cxx=$7
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" --component sdk >/dev/null
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null

mkdir "$work/plugins"
cp "$plugin_dir"/*.so "$work/build/oot_plugins.so" "$work/plugins/"

root=$work/root
mkdir -p "$root/contracts"
cp -r "$source_dir/packs" "$source_dir/policies" "$root/"
# The role a contract assigns must be allowed its runner (policies/role_config.json): an operator adding a
# third-party runner lets the roles that may use it say so.
python3 - "$root/policies/role_config.json" <<'PY'
import json, sys
path = sys.argv[1]
cfg = json.load(open(path))
cfg["roles"]["WORKER"]["allowed_runners"].append("oot_runner")
json.dump(cfg, open(path, "w"), indent=2)
PY
for pack in oot_pass:oot_policy:pass oot_deny:oot_policy:fail oot_fail:oot_check:fail; do
  IFS=: read -r name gate verdict <<<"$pack"
  cat >"$root/packs/$name.json" <<JSON
{
  "pack_id": "$name",
  "description": "out-of-tree test pack: $gate configured to $verdict",
  "governance_level": "low",
  "requires_approval": false,
  "concurrency_limit": 2,
  "defaults": {"forbidden_actions": [], "budgets": {"wall_time_sec": 120}},
  "gates": [{"plugin": "$gate", "config": {"verdict": "$verdict"}}]
}
JSON
done
repo=$work/repo
cp -r "$source_dir/examples/sample-repo" "$repo"
rm -rf "$repo/.git"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=t -c user.email=t@localhost commit -q -m init

run() {  # run PACK EXPECTED_EXIT -> prints the bundle path
  cat >"$root/contracts/$1.json" <<JSON
{
  "schema_version": 1,
  "task_id": "oot-$1",
  "task_type": "code_change",
  "owner_agent": {"role": "PM", "agent_id": "pm-1"},
  "assigned_agent": {"role": "WORKER", "agent_id": "oot"},
  "inputs": {"spec": "nothing to change"},
  "allowed_paths": ["src/"],
  "acceptance_tests": [],
  "rollback": {"strategy": "discard_worktree", "baseline_ref": "HEAD"},
  "runtime_options": {"runner": "oot_runner", "pack": "$1"}
}
JSON
  local code=0 out
  out=$("$cp_host" --plugins "$work/plugins" --root "$root" run "$root/contracts/$1.json" --repo "$repo" \
    --json --quiet) || code=$?
  if [ "$code" != "$2" ]; then
    echo "pack $1: cp-host run exited $code, expected $2: $out" >&2
    exit 1
  fi
  python3 -c 'import json,os,sys; print(os.path.abspath(json.loads(sys.argv[1])["bundle"]))' "$out"
}

check() {  # check BUNDLE PYTHON-EXPRESSIONS...: each must be true of m (manifest), t (task result), i (incident)
  python3 - "$@" <<'PY'
import json, os, sys
b = sys.argv[1]
def load(rel):
    p = os.path.join(b, rel)
    return json.load(open(p)) if os.path.exists(p) else None
m, t, i = load("manifest.json"), load("reports/task_result.json"), load("reports/incident_pack.json")
for expr in sys.argv[2:]:
    if not eval(expr):
        sys.exit(f"{b}: not true: {expr}\nmanifest: {json.dumps(m)}\ntask_result: {json.dumps(t)}")
PY
}

ok=$(run oot_pass 0)
check "$ok" 'm["verdict"] == "success"' \
  't["oot_review"] == {"score": 7, "notes": ["a field cp-host does not know"]}' \
  't["oot_state_written"] is True' \
  'os.path.isfile(os.path.join(t["oot_state_dir"], "oot_state.txt"))' \
  'not t["oot_state_dir"].startswith(b) and not t["oot_state_dir"].startswith(m["worktree"])' \
  't["status"] == "completed" and t["runner"] == "oot_runner"' \
  '"verdict" not in t and "gates" not in t'
echo "oot_pass: success; the runner's own fields are in task_result.json and its state folder was kept"

denied=$(run oot_deny 5)
check "$denied" 'm["verdict"] == "denied"' 'm["reason"] == "gate oot_policy failed"' \
  'i["suggested_next_action"] == "OOT advice: keep rule 7."' \
  't["oot_review"]["score"] == 7'
echo "oot_deny: a third-party policy gate's fail seals the run denied"

failed=$(run oot_fail 4)
check "$failed" 'm["verdict"] == "failure"' 'm["reason"] == "gate oot_check failed"'
echo "oot_fail: the same gate without CP_FLAG_GATE_POLICY only fails the run"
