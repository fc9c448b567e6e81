#!/usr/bin/env bash
# Installs the SDK from the build tree into a temp prefix (headers, CMake package, pkg-config module, payload
# schemas), builds examples/third-party-gate against it as a separate CMake project
# (find_package(CortexPilotSDK)), then checks that cp-host loads the result.
set -euo pipefail
build_dir=$1 src=$2 cp_host=$3 cc=$4 cxx=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" --component sdk >/dev/null
test -f "$work/prefix/include/cortexpilot/plugin.h"
test -f "$work/prefix/lib/pkgconfig/cortexpilot-sdk.pc" || test -f "$work/prefix/lib/x86_64-linux-gnu/pkgconfig/cortexpilot-sdk.pc"
# The schemas of every payload that crosses the ABI are installed with the SDK, identical to the host's.
for s in gate_input gate_verdict runner_input runner_result probe_result retention_plan event task_result \
  planner_input planner_output plan_bundle task_pack; do
  cmp "$work/prefix/share/cortexpilot-sdk/schemas/$s.schema.json" "$src/../../schemas/$s.schema.json"
done
# The package's version is the ABI's, read from the installed plugin.h.
abi=$(sed -n 's/^#define CP_PLUGIN_ABI_MAJOR \([0-9]*\)$/\1/p;s/^#define CP_PLUGIN_ABI_MINOR \([0-9]*\)$/\1/p' \
  "$work/prefix/include/cortexpilot/plugin.h" | paste -sd.)
grep -q "PACKAGE_VERSION \"$abi.0\"" "$(find "$work/prefix" -name CortexPilotSDKConfigVersion.cmake)"
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
pc_path="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
test "$(PKG_CONFIG_PATH="$pc_path" pkg-config --modversion cortexpilot-sdk)" = "$abi.0"
test -f "$(PKG_CONFIG_PATH="$pc_path" pkg-config --variable=schemadir cortexpilot-sdk)/gate_verdict.schema.json"
echo "out-of-tree gate built against the installed SDK and loaded"
