#!/usr/bin/env bash
# README's main command: installs what is needed, builds cp-host, and runs the demo contract
# (contracts/examples/fix-greeting.json) against a fresh git copy of examples/sample-repo, into a sealed
# run bundle under .runtime-cache/cortexpilot/runs/. Prints the run summary, the gate reports and the
# verified event chain.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh release
host=build/bin/cp-host
repo=.runtime-cache/demo/sample-repo
echo
echo "== cp-host validate (contracts/, packs/, policies/)"
"$host" validate
echo
echo "== sample repository: $(bash scripts/make-sample-repo.sh "$repo")"
echo
echo "== cp-host run contracts/examples/fix-greeting.json --repo $repo"
set +e
"$host" run contracts/examples/fix-greeting.json --repo "$repo"
code=$?
set -e
run_id=$("$host" runs list --json --limit 1 | sed -n 's/.*"run_id": "\(.*\)".*/\1/p' | head -1)
echo
echo "== cp-host runs verify $run_id"
"$host" runs verify "$run_id"
echo
echo "== cp-host runs show $run_id"
"$host" runs show "$run_id"
echo
echo "== the dashboard: this run and every later one, in a browser"
echo "   $host tokens add --file tokens.json --id me --role admin    # prints a token"
echo "   $host serve --tokens tokens.json --repo $repo"
echo "   then open http://127.0.0.1:8787/ and log in with the token (docs/dashboard.md)"
exit "$code"
