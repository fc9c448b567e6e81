#!/usr/bin/env bash
# Configures and builds one flavour of cp-host. Usage: scripts/build.sh [release|asan]
# release -> build/ (RelWithDebInfo), asan -> build-asan/ (Debug + ASan/UBSan), fuzz -> build-fuzz/ (clang,
# libFuzzer + ASan/UBSan, the fuzz/ targets only). Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
targets=()
case "$flavour" in
  # Line tables (-g1) are what a backtrace needs; full debug info costs half again the compile time.
  # The release build is what scripts/package.sh packs: installed under /usr, as Debian lays it out.
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
                             "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
                             "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
                             # CP_BUILD_TESTS=OFF / CP_BUILD_BENCH=OFF: the binary and plugins only (action.yml)
                             "-DCP_BUILD_TESTS=${CP_BUILD_TESTS:-ON}" "-DCP_BUILD_BENCH=${CP_BUILD_BENCH:-ON}") ;;
  # -Og -g1: line tables are all a sanitizer report needs, and the objects are a third of -O0 -g's. gcc's
  # maybe-uninitialized guesses are noise under -Og and the sanitizers; the release build (-O2) keeps them.
  # asan-globals=0: no redzones around globals and string literals. Their descriptors (with UBSan's check
  # data, 64 MB of .data) were registered by every process at start: a cp-host start cost twice the time
  # and page faults, and the tests start it thousands of times. Heap, stack, use-after-free, leaks and
  # UBSan are all still checked; an overflow of a global array is not.
  asan) dir=build-asan
    flags=(-DCMAKE_BUILD_TYPE=Debug -DCP_SANITIZE=ON -DCP_BUILD_BENCH=OFF
           "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g1 -Wno-maybe-uninitialized --param=asan-globals=0"
           "-DCMAKE_C_FLAGS_DEBUG=-Og -g1 --param=asan-globals=0") ;;
  fuzz) dir=build-fuzz
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCP_FUZZ=ON -DCP_BUILD_TESTS=OFF -DCP_BUILD_BENCH=OFF
           -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1"
           "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1")
    targets=(--target fuzz_all) ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.ccache}
# CP_UNITY=0 compiles file by file (quicker after a one-file change; a fresh build takes three times as long).
cmake -S . -B "$dir" -G Ninja -DCP_WERROR=ON -DCP_UNITY="${CP_UNITY:-1}" "${flags[@]}" >/dev/null
cmake --build "$dir" "${targets[@]}"
