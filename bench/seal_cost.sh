#!/usr/bin/env bash
# What sealing and verifying a run bundle cost, next to public tools doing the same work on the same files,
# in one run on this machine: build/bin/cp_seal_bench (bench/seal_bench.cpp) makes a realistic bundle and
# measures store::write_seal, the hashing alone, HostKey::sign, PublicKey::verify, store::verify_bundle
# without a cache and store::bundle_fingerprint (serve's cache hit); then, on that bundle and its key:
# `sha256sum` over every file in the bundle, `openssl pkeyutl -sign/-verify -rawin` of the seal message
# (each one process, as a script would call them), `openssl speed ed25519` (in-library rates), and `true`
# (what starting a process costs). Medians of 9 repetitions; prints a table and the ratios.
# Usage: bench/seal_cost.sh [BENCH_BIN]   (after scripts/build.sh release; default build/bin/cp_seal_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin/cp_seal_bench}
[ -x "$bin" ] || { echo "build first: bash scripts/build.sh release (no $bin)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "openssl is needed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CP_SEAL_BENCH_DIR="$work/seal" "$bin" --benchmark_format=json --benchmark_out="$work/bench.json" \
  --benchmark_out_format=json > /dev/null
bundle=$(ls -d "$work"/seal/.runtime-cache/cortexpilot/runs/*/ | head -1)
keys=$work/seal/keys
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.stdout.write("cp-host seal v1 " + s["event"]["hash"])' \
  "$bundle/seal.json" > "$work/msg"
openssl pkeyutl -sign -rawin -inkey "$keys/host_key.pem" -in "$work/msg" -out "$work/sig"
openssl pkeyutl -verify -rawin -pubin -inkey "$keys/host_key.pub.pem" -in "$work/msg" -sigfile "$work/sig" > /dev/null
speed=$(openssl speed -seconds 1 ed25519 2>/dev/null | grep -i 'Ed25519' | tail -1)

python3 - "$work" "$bundle" "$keys" "$speed" <<'PY'
import json, os, statistics, subprocess, sys, time
work, bundle, keys, speed = sys.argv[1:5]
doc = json.load(open(os.path.join(work, "bench.json")))
med = {}
for b in doc["benchmarks"]:
    if b.get("aggregate_name") == "median":
        unit = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        med[b["run_name"].split("/")[0]] = (b["real_time"] * unit, b)

files = sorted(os.path.join(d, f) for d, _, fs in os.walk(bundle) for f in fs)
nbytes = sum(os.path.getsize(f) for f in files)

def timed(argv, n=20, reps=9):  # median wall time of one call, in us
    per = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        per.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(per)

msg, sig = os.path.join(work, "msg"), os.path.join(work, "sig")
tools = {
    "sha256sum": timed(["sha256sum", *files]),
    "sign": timed(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", os.path.join(keys, "host_key.pem"),
                   "-in", msg, "-out", os.path.join(work, "sig2")]),
    "verify": timed(["openssl", "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey",
                     os.path.join(keys, "host_key.pub.pem"), "-in", msg, "-sigfile", sig]),
    "true": timed(["true"], n=50),
}
nums = speed.split()
sign_s, verify_s = (float(nums[-2]), float(nums[-1])) if len(nums) >= 2 else (float("nan"),) * 2
lib_sign, lib_verify = 1e6 / sign_s, 1e6 / verify_s

c = {k: v[0] for k, v in med.items()}
hashed = med["ListAndHashFiles"][1]
print(f"machine: {doc['context'].get('num_cpus')} cpus, {doc['context'].get('date')}; bundle: "
      f"{len(files)} files, {nbytes / 1024:.0f} KiB ({int(hashed.get('files', 0))} sealed, "
      f"{hashed.get('KiB', 0):.0f} KiB), on {subprocess.run(['df', '--output=fstype', bundle], capture_output=True, text=True).stdout.split()[-1]}")
print()
print("| operation | median (us) |")
print("|---|---|")
rows = [
    ("cp-host store::write_seal: signing cost per run (hash, sign, seal.json + ledger + event + manifest, fsync'd)", c["WriteSeal"]),
    ("cp-host store::list_bundle_files: list and sha256 the sealed files", c["ListAndHashFiles"]),
    ("cp-host HostKey::sign (seal message)", c["Sign"]),
    ("cp-host PublicKey::verify (seal message)", c["VerifySignature"]),
    ("cp-host store::verify_bundle, no cache: verify-on-read per run", c["VerifyBundleCold"]),
    ("cp-host store::bundle_fingerprint: serve cache hit", c["Fingerprint"]),
    (f"`sha256sum` over all {len(files)} bundle files (one process)", tools["sha256sum"]),
    ("`openssl pkeyutl -sign -rawin` (one process)", tools["sign"]),
    ("`openssl pkeyutl -verify -rawin` (one process)", tools["verify"]),
    ("`openssl speed ed25519`: one sign, in library", lib_sign),
    ("`openssl speed ed25519`: one verify, in library", lib_verify),
    ("`true` (process start, the floor of every tool row)", tools["true"]),
]
for what, us in rows:
    print(f"| {what} | {us:,.1f} |")
print()
print("| ratio | x |")
print("|---|---|")
ratios = [
    ("verify_bundle / `sha256sum` of the same files", c["VerifyBundleCold"] / tools["sha256sum"]),
    ("verify_bundle / (`sha256sum` - `true`): the hashing work alone", c["VerifyBundleCold"] / (tools["sha256sum"] - tools["true"])),
    ("list_bundle_files / `sha256sum` of the same files", c["ListAndHashFiles"] / tools["sha256sum"]),
    ("write_seal / `sha256sum` + `openssl pkeyutl -sign`", c["WriteSeal"] / (tools["sha256sum"] + tools["sign"])),
    ("HostKey::sign / `openssl pkeyutl -sign`", c["Sign"] / tools["sign"]),
    ("HostKey::sign / OpenSSL in-library sign", c["Sign"] / lib_sign),
    ("PublicKey::verify / `openssl pkeyutl -verify`", c["VerifySignature"] / tools["verify"]),
    ("PublicKey::verify / OpenSSL in-library verify", c["VerifySignature"] / lib_verify),
    ("bundle_fingerprint / verify_bundle (what the serve cache saves)", c["Fingerprint"] / c["VerifyBundleCold"]),
]
for what, x in ratios:
    print(f"| {what} | {x:.2f}x |")
PY
