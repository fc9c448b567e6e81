#!/usr/bin/env bash
# Makes a fresh git repository from examples/sample-repo at DIR (replacing what is there).
# Usage: scripts/make-sample-repo.sh DIR
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)/examples/sample-repo"
dest=${1:?usage: $0 DIR}
rm -rf "$dest"
mkdir -p "$dest"
cp -R "$src/." "$dest/"
cd "$dest"
git init -q -b main
git -c user.name=cp-host-demo -c user.email=demo@localhost add -A
git -c user.name=cp-host-demo -c user.email=demo@localhost commit -q -m "sample project"
echo "$dest"
