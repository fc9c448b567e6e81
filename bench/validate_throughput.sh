#!/usr/bin/env bash
# Validate throughput: N generated contracts (every 10th invalid) checked by `cp-host validate`, and, when
# installed, by python's jsonschema and by ajv-cli 5 (npm, installed once into ~/.cache/cp-host-bench) with the
# same schema; the verdicts must agree. Prints files/s and the ratios, measured in one run.
# Usage: bench/validate_throughput.sh [N=10000] [cp-host binary]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
host=${2:-$here/build/bin/cp-host}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/contracts" "$n" "$here/contracts/examples/fix-greeting.json" <<'PY'
import json, os, sys
out, n, example = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
os.makedirs(out)
for i in range(n):
    c = dict(example, task_id=f"task-{i}")
    if i % 10 == 3:
        c = dict(c, task_type="bogus")
    json.dump(c, open(f"{out}/c{i:06d}.json", "w"), indent=2)
PY
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "files: $n contracts ($((n / 10)) invalid)"
t0=$(date +%s.%N)
set +e
"$host" validate --no-plugin-checks --schema task_contract --format json "$work/contracts" >"$work/cp.json"
rc=$?
set -e
t1=$(date +%s.%N)
cp_s=$(echo "$t1 - $t0" | bc -l)
cp_invalid=$(python3 -c "import json;print(json.load(open('$work/cp.json'))['files_invalid'])")
printf "%-22s %8.3f s  %10.0f files/s  invalid=%s (exit %s)\n" "cp-host validate" "$cp_s" "$(echo "$n / $cp_s" | bc -l)" "$cp_invalid" "$rc"
if python3 -c "import jsonschema" 2>/dev/null; then
  "$host" schemas show task_contract >"$work/schema.json"
  t0=$(date +%s.%N)
  py_invalid=$(python3 - "$work/schema.json" "$work/contracts" <<'PY'
import json, os, sys, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft7Validator(schema)
bad = 0
for name in sorted(os.listdir(sys.argv[2])):
    doc = json.load(open(os.path.join(sys.argv[2], name)))
    if any(True for _ in v.iter_errors(doc)):
        bad += 1
print(bad)
PY
)
  t1=$(date +%s.%N)
  py_s=$(echo "$t1 - $t0" | bc -l)
  printf "%-22s %8.3f s  %10.0f files/s  invalid=%s\n" "python jsonschema" "$py_s" "$(echo "$n / $py_s" | bc -l)" "$py_invalid"
  printf "ratio: cp-host is %.1fx python jsonschema\n" "$(echo "$py_s / $cp_s" | bc -l)"
  [ "$py_invalid" = "$cp_invalid" ] || { echo "verdicts differ: cp-host $cp_invalid vs python $py_invalid" >&2; exit 1; }
fi
# ajv-cli (npm), with the same schema, when node and npm are there. Installed once into a cache folder.
if command -v npm >/dev/null; then
  ajv_dir=${XDG_CACHE_HOME:-$HOME/.cache}/cp-host-bench/ajv
  if [ ! -x "$ajv_dir/node_modules/.bin/ajv" ]; then
    mkdir -p "$ajv_dir"
    npm install --silent --no-audit --no-fund --prefix "$ajv_dir" ajv-cli@5.0.0 >/dev/null 2>&1 || true
  fi
  if [ -x "$ajv_dir/node_modules/.bin/ajv" ]; then
    "$host" schemas show task_contract >"$work/schema.json"
    t0=$(date +%s.%N)
    set +e
    "$ajv_dir/node_modules/.bin/ajv" validate --spec=draft7 --strict=false -s "$work/schema.json" \
      -d "$work/contracts/*.json" >"$work/ajv.out" 2>&1
    set -e
    t1=$(date +%s.%N)
    ajv_s=$(echo "$t1 - $t0" | bc -l)
    ajv_invalid=$(grep -c " invalid$" "$work/ajv.out" || true)
    printf "%-22s %8.3f s  %10.0f files/s  invalid=%s\n" "ajv-cli 5" "$ajv_s" "$(echo "$n / $ajv_s" | bc -l)" "$ajv_invalid"
    printf "ratio: cp-host is %.1fx ajv-cli\n" "$(echo "$ajv_s / $cp_s" | bc -l)"
    [ "$ajv_invalid" = "$cp_invalid" ] || { echo "verdicts differ: cp-host $cp_invalid vs ajv $ajv_invalid" >&2; exit 1; }
  else
    echo "ajv-cli: npm install failed; skipped"
  fi
fi
