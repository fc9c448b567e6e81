#!/usr/bin/env bash
# Installs the SDK from the build tree into a temp prefix, builds tests/out_of_tree_gate against it as a
# separate CMake project (find_package(CortexPilotSDK)), then checks that cp-host loads the result.
set -euo pipefail
build_dir=$1 src=$2 cp_host=$3 cc=$4 cxx=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" --component Unspecified >/dev/null
test -f "$work/prefix/include/cortexpilot/plugin.h"
test -f "$work/prefix/lib/pkgconfig/cortexpilot-sdk.pc" || test -f "$work/prefix/lib/x86_64-linux-gnu/pkgconfig/cortexpilot-sdk.pc"
# Configure with nothing of the build tree visible: only the installed prefix.
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null
mkdir "$work/plugins"
cp "$work/build/license_header_gate.so" "$work/plugins/"
out=$("$cp_host" --plugins "$work/plugins" plugins list --json)
echo "$out"
grep -q '"id": "license_header"' <<<"$out"
grep -q '"refused": \[\]' <<<"$out"

# pkg-config sees the SDK too.
cflags=$(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" pkg-config --cflags cortexpilot-sdk)
echo "pkg-config cflags: $cflags"
case "$cflags" in *"/include"*) ;; *) echo "pkg-config gave no include dir" >&2; exit 1 ;; esac
test -f "$(sed -n 's/^-I\([^ ]*\).*/\1/p' <<<"$cflags")/cortexpilot/plugin.h"
echo "out-of-tree gate built against the installed SDK and loaded"
