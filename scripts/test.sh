#!/usr/bin/env bash
# README's test command: installs what is needed, builds, and runs every test twice — the normal build and
# the ASan+UBSan build — then each libFuzzer target for a short while. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# Each phase says how far into the run it starts, so a slow phase shows in any log.
phase() { echo "== $* (at $(( $(date +%s) - start )) s)"; }
phase "install (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh
phase "format (clang-format, .clang-format)"
# The frozen ABI 1.0 header is kept byte for byte as released, so it is not reformatted.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files '*.c' '*.h' '*.cpp' '*.hpp' ':!tests/plugins/abi_v1_0/*'
else  # an unpacked source archive
  find sdk host plugins tests bench examples -name '*.[ch]' -o -name '*.[ch]pp' | grep -v '^tests/plugins/abi_v1_0/'
fi | xargs clang-format --dry-run -Werror
for flavour in release asan; do
  phase "build ($flavour)"
  bash scripts/build.sh "$flavour"
  dir=build; [ "$flavour" = asan ] && dir=build-asan
  phase "test ($flavour)"
  # The chaos test's 210 runs cost minutes each under the sanitizers; 70 still see a dozen kills.
  chaos_runs=210; [ "$flavour" = asan ] && chaos_runs=70
  # use_tls=0: the leak checker of Debian 12's gcc misreads glibc 2.36's dynamic TLS of a dlopen()ed
  # library (the agents runner's Boost.Asio) and crashes while stopping the world; leaks are still checked,
  # only thread-local storage is no longer scanned as a root.
  CP_CHAOS_RUNS=$chaos_runs ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=use_tls=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j2 --timeout 600
  if [ "$flavour" = release ]; then
    # The dashboard in Debian's chromium, headless, against real serve processes of the release build;
    # screenshots of every page land in build/ui-screenshots/.
    phase "dashboard (Playwright, chromium)"
    (cd web && CP_BUILD_DIR="$PWD/../build" npx playwright test)
    # The Debian packages of this build, installed with dpkg -i, used, and removed (as root only).
    if [ "$(id -u)" = 0 ]; then
      phase "package (cpack, dpkg -i, demo run, out-of-tree gate, dpkg -r)"
      bash scripts/package.sh
    fi
  fi
done
# A short fuzzing pass over every libFuzzer target (fuzz/, seeds in fuzz/corpus/): a crash fails the run.
phase "fuzz (${CP_FUZZ_SECONDS:-20} s per target)"
bash scripts/fuzz.sh "${CP_FUZZ_SECONDS:-20}"
echo "== all tests passed in both builds, fuzzing clean ($(( $(date +%s) - start )) s)"
