#!/usr/bin/env bash
# Receipts authenticated per second on one core on the auditor's path (issue 11):
# `receipt::verify_log` over a 10,000-receipt log, chain mode (the signatures the hash chain
# needs) and every-signature mode, in one run, with single-receipt verify and parse_only
# for where the time goes. Prints figures and ratios for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(taskset -c "${CORE:-1}" cargo bench -q -p veritee-attestation --bench receipts -- \
    --warm-up-time 3 --measurement-time 10 --output-format bencher 2>/dev/null | grep '^test ')
ns() { # criterion bencher line -> ns per iteration
    echo "$out" | awk -v n="$1" '$2 == n { gsub(",", "", $5); print $5 }'
}
per_sec() { awk -v ns="$(ns "$1")" -v k="$2" 'BEGIN { printf "%.0f", k * 1e9 / ns }'; }

chain=$(per_sec receipt_log/chain_10000 10000)
every=$(per_sec receipt_log/every_signature_10000 10000)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), pinned to core ${CORE:-1}"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-60s %12s\n' "what" "per second"
printf '%-60s %12s\n' "log of 10,000, chain mode (verify_log)" "$chain"
printf '%-60s %12s\n' "log of 10,000, every signature (verify_log --every-signature)" "$every"
printf '%-60s %12s\n' "log of 1,000, verify_many then verify_chain (every signature)" "$(per_sec receipts/verify_many_1000_then_chain 1000)"
printf '%-60s %12s\n' "one receipt: verify" "$(per_sec receipts/verify 1)"
printf '%-60s %12s\n' "one receipt: parse_only" "$(per_sec receipts/parse_only 1)"
printf '%-60s %12s\n' "one receipt: sign" "$(per_sec receipts/sign 1)"
printf '%-60s %12s\n' "peer: aws-lc-rs bare Ed25519 verify" "$(per_sec receipts/ed25519_baseline 1)"
awk -v a="$chain" -v b="$every" 'BEGIN {
    printf "ratio chain / every-signature: %.2fx; bar: >= 100,000 receipts/s per core (chain mode: %s)\n", a / b, (a >= 100000 ? "met" : "not met")
}'
