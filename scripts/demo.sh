#!/usr/bin/env bash
# The README's main command: the guest runtime on its embedded default (a SIMULATED SEV-SNP
# TEE and the bundled SmolLM2 model) on 127.0.0.1, then the client verifying its
# attestation (`veritee attest --nonce`) and, only then, asking it one question
# (`veritee chat`). The runtime is stopped at the end.
#
#   bash scripts/demo.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 2; }
bash scripts/fetch-model.sh >/dev/null
cargo build -q -p veritee-enclave -p veritee-client
bin="${CARGO_TARGET_DIR:-target}/debug"
state=.veritee
out="$(mktemp)"
"$bin/veritee-enclave" serve --simulate --listen 127.0.0.1:0 --state-dir "$state" >"$out" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$out"' EXIT
url=""
for _ in $(seq 240); do
    url="$(sed -n 's/^veritee-enclave: listening on //p' "$out")"
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { echo "demo: the runtime exited" >&2; exit 1; }
    sleep 0.5
done
[ -n "$url" ] || { echo "demo: the runtime did not start within 120 s" >&2; exit 1; }
echo
echo "\$ veritee attest $url --policy $state/policy.toml --nonce"
"$bin/veritee" attest "$url" --policy "$state/policy.toml" --nonce
echo
question="${1:-What is the capital of France? Answer in one sentence.}"
echo "\$ veritee chat $url --policy $state/policy.toml -m \"$question\""
"$bin/veritee" chat "$url" --policy "$state/policy.toml" -m "$question" --max-tokens 96
