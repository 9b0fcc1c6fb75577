#!/usr/bin/env bash
# Generated tokens/s through the full attested path (TLS + HTTP + OpenAI API + engine queue)
# against the bare engine on the same loaded model, in one process and one run; and the
# set-up time of a verified connection (evidence checked) against a plain TLS handshake.
#
#   bench/enclave_path.sh [ROUNDS] [NEW_TOKENS] [CONNECTIONS]
#
# Needs the model (scripts/fetch-model.sh); uses the simulated TEE.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-model.sh >/dev/null
cargo build -q -p veritee-enclave --example path_bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%dT%H:%MZ)"
target/debug/examples/path_bench "${1:-5}" "${2:-64}" "${3:-50}"
