#!/usr/bin/env bash
# Paired cost of the guards against hostile clients (issue 13) on the attested path: the
# runtime with its defaults (body deadline and minimum rate, chunked prefill) against the
# same runtime with those guards relaxed, in one process, one request to each back to back,
# order swapped every pair; plus a control (two default runtimes). See
# enclave/examples/guards_bench.rs.
#
#   bench/guards.sh [PAIRS] [NEW_TOKENS] [LONG_TOKENS]
#
# Needs the model (scripts/fetch-model.sh); uses the simulated TEE.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-model.sh >/dev/null
cargo build -q -p veritee-enclave --example guards_bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%dT%H:%MZ)"
target/debug/examples/guards_bench "${1:-10}" "${2:-64}" "${3:-512}"
