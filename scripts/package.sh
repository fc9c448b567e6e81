#!/usr/bin/env bash
# Builds the Debian packages (cp-host, cp-host-sdk-dev) from the release build, installs them with dpkg -i,
# then, with nothing of the source or build tree in use: makes a project with `cp-host init`, runs the demo
# contract and verifies its bundle, builds examples/third-party-gate against the installed SDK and loads it
# from the user's plugin folder; finally removes both with dpkg -r and checks that no file is left.
# Needs root (dpkg) and a release build (scripts/build.sh release). Usage: scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
if [ "$(id -u)" != 0 ]; then echo "package: dpkg -i needs root" >&2; exit 2; fi
for p in cp-host cp-host-sdk-dev; do
  if dpkg -s "$p" >/dev/null 2>&1; then
    echo "package: $p is installed already; remove it first (dpkg -r $p), this check will not touch it" >&2
    exit 2
  fi
done
rm -rf build/packages
(cd build && cpack -B "$PWD/packages" >/dev/null)
debs=(build/packages/cp-host_*.deb build/packages/cp-host-sdk-dev_*.deb)
for d in "${debs[@]}"; do
  test -f "$d"
  printf '%s: %s bytes packed, %s KiB installed\n' "$(basename "$d")" "$(stat -c %s "$d")" \
    "$(dpkg-deb -f "$d" Installed-Size)"
done
work=$(mktemp -d)
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then dpkg -r cp-host cp-host-sdk-dev >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
dpkg -i "${debs[@]}" >/dev/null
installed=1
# What the packages put on the machine, to check it is all gone afterwards.
dpkg -L cp-host cp-host-sdk-dev | sort -u >"$work/files"

echo "== the installed cp-host: $(command -v cp-host)"
test "$(command -v cp-host)" = /usr/bin/cp-host
cp-host version
test -f /usr/share/man/man1/cp-host.1 || test -f /usr/share/man/man1/cp-host.1.gz
test -f /usr/lib/systemd/system/cp-host.service || test -f /lib/systemd/system/cp-host.service
test -d /usr/share/cp-host/packs && test -d /usr/share/cp-host/policies && test -d /usr/share/cp-host/schemas
unit=$(ls /usr/lib/systemd/system/cp-host.service /lib/systemd/system/cp-host.service 2>/dev/null | head -1)
if command -v systemd-analyze >/dev/null; then systemd-analyze verify "$unit"; fi

echo "== cp-host init, validate and the demo run, from a fresh folder"
export CP_HOST_KEY_DIR="$work/keys" XDG_DATA_HOME="$work/data" HOME="$work/home"
unset CP_HOST_PLUGINS CP_HOST_ROOT
mkdir -p "$work/home" "$work/project"
bash "$src/scripts/make-sample-repo.sh" "$work/repo" >/dev/null
cd "$work/project"
cp-host init
cp /usr/share/cp-host/contracts/examples/fix-greeting.json contracts/
mkdir -p "$work/project/src/deep" && cd "$work/project/src/deep"  # the root is found from below
cp-host validate
cp-host run ../../contracts/fix-greeting.json --repo "$work/repo" || { echo "the demo run failed" >&2; exit 1; }
run_id=$(cp-host runs list --json --limit 1 | sed -n 's/.*"run_id": "\(.*\)".*/\1/p' | head -1)
cp-host runs verify "$run_id"
cp-host runs show "$run_id" --json | grep -q '"verdict": "success"'

echo "== an out-of-tree gate built against the installed SDK only"
cmake -S "$src/examples/third-party-gate" -B "$work/gate" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/gate" >/dev/null
mkdir -p "$XDG_DATA_HOME/cp-host/plugins"
cp "$work/gate/license_header_gate.so" "$XDG_DATA_HOME/cp-host/plugins/"
listed=$(cp-host plugins list --json)
grep -q '"id": "license_header"' <<<"$listed"
grep -q '"refused": \[\]' <<<"$listed"
grep -q "\"library_path\": \"/usr/lib/[^\"]*/cp-host/plugins/gate_diff_scope.so\"" <<<"$listed"
test "$(pkg-config --modversion cortexpilot-sdk)" = "$(sed -n 's/^#define CP_PLUGIN_ABI_MAJOR \([0-9]*\)$/\1/p;s/^#define CP_PLUGIN_ABI_MINOR \([0-9]*\)$/\1/p' /usr/include/cortexpilot/plugin.h | paste -sd.).0"

echo "== dpkg -r leaves nothing behind"
cd "$src"
dpkg -r cp-host cp-host-sdk-dev >/dev/null
installed=0
left=0
while read -r f; do
  [ -d "$f" ] && continue  # folders shared with other packages (/usr/bin) stay
  if [ -e "$f" ] || [ -L "$f" ]; then echo "left behind: $f" >&2; left=1; fi
done <"$work/files"
for d in /usr/share/cp-host /usr/include/cortexpilot /usr/share/cortexpilot-sdk; do
  if [ -e "$d" ]; then echo "left behind: $d" >&2; left=1; fi
done
if compgen -G "/usr/lib/*/cp-host" >/dev/null; then echo "left behind: /usr/lib/*/cp-host" >&2; left=1; fi
test "$left" = 0
echo "packages built, installed, used and removed cleanly"
