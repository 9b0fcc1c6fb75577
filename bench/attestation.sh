#!/usr/bin/env bash
# Attestation verification throughput on one core, with the peers in the same run:
# OpenSSL's P-384 ECDSA verify (what an OpenSSL-based SNP verifier is bounded by) and
# dcap-qvl's own TDX verification. Prints figures and ratios for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(cargo bench -q -p veritee-attestation --bench verify -- --warm-up-time 2 --measurement-time 8 --output-format bencher 2>/dev/null | grep '^test ')
per_sec() { # criterion bencher line -> verifications per second
    echo "$out" | awk -v n="$1" '$2 == n { gsub(",", "", $5); printf "%.0f", 1e9 / $5 }'
}
openssl_p384=$(openssl speed -seconds 5 ecdsap384 2>/dev/null | awk '/nistp384/ { print int($NF) }')

snp_cached=$(per_sec snp/verify_cached)
snp_uncached=$(per_sec snp/verify_uncached)
tdx_cached=$(per_sec tdx/verify_cached)
tdx_uncached=$(per_sec tdx/verify_uncached)
dcap=$(per_sec tdx/dcap_qvl_alone)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-44s %10s\n' "what" "per second"
printf '%-44s %10s\n' "SNP verify, chain cached (SnpVerifier)" "$snp_cached"
printf '%-44s %10s\n' "SNP verify, chain re-verified each time" "$snp_uncached"
printf '%-44s %10s\n' "peer: OpenSSL P-384 ECDSA verify alone" "$openssl_p384"
printf '%-44s %10s\n' "TDX verify, platform cached (TdxVerifier)" "$tdx_cached"
printf '%-44s %10s\n' "TDX verify, everything each time" "$tdx_uncached"
printf '%-44s %10s\n' "peer: dcap-qvl verify alone" "$dcap"
awk -v a="$snp_cached" -v b="$openssl_p384" -v c="$tdx_cached" -v d="$dcap" 'BEGIN {
    printf "ratio SNP cached / OpenSSL P-384 verify: %.2fx (bar: >= 2,000/s)\n", a / b
    printf "ratio TDX cached / dcap-qvl alone:       %.2fx (bar: >= 2,000/s)\n", c / d
}'
