#!/usr/bin/env bash
# Installs every Debian 12 package cp-host needs to build and test, and unpacks valijson's
# headers without its package's heavy dependencies (Qt5, Poco, ...). Idempotent; run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  libboost1.81-dev libboost-filesystem1.81-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libpistache-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libseccomp-dev                       # the run sandbox's seccomp filter
  libre2-dev                           # plugins: linear-time matching of policy patterns against commands
  libsimdjson-dev                      # validate: reading JSON files (core/json_simd.cpp)
  python3 procps
  zsh fish                             # the completion scripts' tests load them in each shell
  bc time python3-jsonschema wrk curl  # bench/ scripts: arithmetic, peak RSS, side-by-side tools, HTTP load
  clang libclang-rt-14-dev             # fuzz/: libFuzzer targets (scripts/fuzz.sh)
  chromium                             # the browser runner, its chromium probe, the dashboard's tests
  libpq-dev postgresql-15              # the PostgreSQL store (serve --store postgres://...); its tests' server
)
# The dashboard (web/) is built with Node.js and npm, and tested with Playwright driving chromium. A
# machine that has them already (another packaging of Node.js) keeps its own.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

need_install=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_install+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#need_install[@]}" -gt 0 ] || [ ! -f "$here/third_party/valijson/usr/include/valijson/validator.hpp" ]; then
  echo "[bootstrap] apt-get update"
  $SUDO apt-get update -qq
fi
if [ "${#need_install[@]}" -gt 0 ]; then
  echo "[bootstrap] installing: ${need_install[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_install[@]}"
fi

# valijson: Debian's package, unpacked, so the build gets its headers and none of its dependencies.
vdir="$here/third_party/valijson"
if [ ! -f "$vdir/usr/include/valijson/validator.hpp" ]; then
  echo "[bootstrap] fetching libvalijson-dev headers"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download libvalijson-dev >/dev/null)
  mkdir -p "$vdir"
  dpkg -x "$tmp"/libvalijson-dev_*.deb "$vdir"
  rm -rf "$tmp"
fi
echo "[bootstrap] ok"
