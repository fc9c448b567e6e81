#!/usr/bin/env bash
# Runs the `cp-host validate` step of action.yml (its shell script, read from the YAML) the way a GitHub
# runner would — GITHUB_OUTPUT, RUNNER_TEMP and the inputs as environment — with the built cp-host on PATH:
# a broken contract gives an ::error annotation on its line and a failing step; a good project passes and
# reports how many files it checked. Also checks that .pre-commit-hooks.yaml names a real command.
# Usage: action_test.sh SOURCE_DIR CP_HOST_BIN
set -euo pipefail
src=$1 bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
ln -s "$bin" "$work/bin/cp-host"
export PATH="$work/bin:$PATH" RUNNER_TEMP="$work/tmp"
mkdir -p "$RUNNER_TEMP"
python3 - "$src/action.yml" "$work/step.sh" <<'PY'
import sys, yaml
action = yaml.safe_load(open(sys.argv[1]))
assert action["runs"]["using"] == "composite"
step = next(s for s in action["runs"]["steps"] if s.get("id") == "validate")
open(sys.argv[2], "w").write(step["run"])
hooks = yaml.safe_load(open(sys.argv[1].replace("action.yml", ".pre-commit-hooks.yaml")))
assert hooks[0]["entry"] == "cp-host validate" and hooks[0]["language"] == "system", hooks
PY
cp-host init "$work/project" >/dev/null
cd "$work/project"

# A good project: the step passes and says how many files it checked.
export GITHUB_OUTPUT="$work/out1" PATHS="" ROOT=""
bash "$work/step.sh" >"$work/log1"
grep -q '^files-checked=[1-9]' "$GITHUB_OUTPUT"

# A contract with a wrong field: an annotation on its file and line, and the step fails.
python3 - <<'PY'
import json
c = json.load(open("contracts/example.json"))
c["allowed_paths"] = "everywhere"
open("contracts/broken.json", "w").write(json.dumps(c, indent=2))
PY
export GITHUB_OUTPUT="$work/out2" PATHS="contracts/broken.json"
if bash "$work/step.sh" >"$work/log2"; then echo "the step passed on a broken contract" >&2; exit 1; fi
grep -q '^::error file=contracts/broken.json,line=[0-9]' "$work/log2" || { cat "$work/log2" >&2; exit 1; }
grep -q '^files-checked=1$' "$GITHUB_OUTPUT"
echo "action.yml's validate step annotates and fails as it should"
