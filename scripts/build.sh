#!/usr/bin/env bash
# Configures and builds one flavour of cp-host. Usage: scripts/build.sh [release|asan]
# release -> build/ (RelWithDebInfo), asan -> build-asan/ (Debug + ASan/UBSan), fuzz -> build-fuzz/ (clang,
# libFuzzer + ASan/UBSan, the fuzz/ targets only). Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
targets=()
case "$flavour" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DCP_SANITIZE=ON -DCP_BUILD_BENCH=OFF) ;;
  fuzz) dir=build-fuzz
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCP_FUZZ=ON -DCP_BUILD_TESTS=OFF -DCP_BUILD_BENCH=OFF
           -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    targets=(--target fuzz_all) ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}
cmake -S . -B "$dir" -G Ninja -DCP_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$dir" "${targets[@]}"
