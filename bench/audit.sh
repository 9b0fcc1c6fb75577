#!/usr/bin/env bash
# The auditor's re-execution (issue 11): a 10,000-receipt honest bundle (REAL jobs really
# generated through the runtime's API, the rest re-issued from their transcripts under new
# job ids, all signed and chained by the runtime's issuer), audited at 5% sampling. Prints
# the wall time of the audit, the receipts/s of its receipt checks, and per re-executed job
# the auditor's time over the job's metered generation time (bar ≤ 0.35 on CPU).
#
#   bench/audit.sh [TOTAL] [REAL] [RATE]
#
# Needs the model (scripts/fetch-model.sh); uses the simulated TEE.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-model.sh >/dev/null
cargo build -q -p veritee-verifier --bin veritee-verify --example audit_bundle
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%dT%H:%MZ)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/debug/examples/audit_bundle "$dir" "${1:-10000}" "${2:-100}"
at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
model=$(ls models/*.gguf | head -1)
start=$(date +%s.%N)
set +e
target/debug/veritee-verify audit "$dir/bundle.cbor" --model "$model" --auditor-key "$dir/auditor.key" \
    --policy "$dir/policy.toml" --at "$at" --sample-rate "${3:-0.05}" --seed be5c --json >"$dir/report.json"
code=$?
set -e
end=$(date +%s.%N)
python3 - "$dir/report.json" "$start" "$end" "$code" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
jobs = r["results"]
ratios = [j["reexec_device_ms"] / max(j["device_ms"], 1) for j in jobs]
wall_ratios = [j["reexec_ms"] / max(j["device_ms"], 1) for j in jobs]
print(json.dumps({
    "exit": int(sys.argv[4]),
    "verdict": r["verdict"],
    "receipts": r["jobs"],
    "sampled": r["sampled"],
    "audit_wall_s": round(wall, 2),
    "reexec_wall_ms_median": round(statistics.median(j["reexec_ms"] for j in jobs), 1),
    "reexec_device_ms_median": round(statistics.median(j["reexec_device_ms"] for j in jobs), 1),
    "device_ms_median": statistics.median(j["device_ms"] for j in jobs),
    "ratio_reexec_over_generation_device_ms_median": round(statistics.median(ratios), 3),
    "ratio_device_max": round(max(ratios), 3),
    "ratio_wall_reexec_over_generation_device_ms_median": round(statistics.median(wall_ratios), 3),
}))
PY
