#!/usr/bin/env bash
# Time to first render of the dashboard's runs page over 100 and over 100,000 runs (generated bundles,
# bench/generate_runs.py), served by the release build on loopback; median of 5 cold loads each, in
# Debian's chromium driven by Playwright. Also the first load's size (JavaScript + CSS + HTML, gzipped).
# Usage: bench/ui_first_render.sh [BIG=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
big=${1:-100000}
host=${CP_HOST_BIN:-build/bin/cp-host}
plugins=${CP_PLUGIN_DIR:-build/plugins}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
start() {  # start ROOT: serve over ROOT; prints its URL
  "$host" --plugins "$plugins" --root "$1" serve --listen 127.0.0.1:0 --tokens "$work/tokens.json" \
    --no-scheduler > "$1/serve.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1200); do grep -q "listening on" "$1/serve.out" && break; sleep 0.1; done
  sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$1/serve.out"
}
token=$("$host" tokens add --file "$work/tokens.json" --id bench --role viewer 2>/dev/null)
urls=()
for n in 100 "$big"; do
  mkdir -p "$work/r$n"
  cp -r packs policies "$work/r$n/"
  python3 bench/generate_runs.py "$work/r$n" "$n"
  urls+=("$(start "$work/r$n")")
done
echo "== first load: $(cd build/web-dist && cat index.html.gz assets/*.js.gz assets/*.css.gz | wc -c) bytes gzipped"
res=$(node bench/ui_first_render.mjs "$token" "${urls[@]}")
python3 - "$res" "$big" "${urls[@]}" <<'PY'
import json, sys
res, big, small_url, big_url = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s, b = res[small_url], res[big_url]
print(f"== runs page, first render (median of 5 cold loads): 100 runs {s['median_ms']:.0f} ms {s['all_ms']}; "
      f"{int(big):,} runs {b['median_ms']:.0f} ms {b['all_ms']}; ratio {b['median_ms'] / s['median_ms']:.2f}")
PY
