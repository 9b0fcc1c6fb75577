#!/usr/bin/env bash
# The README's main command: the guest runtime on its embedded default (a SIMULATED SEV-SNP
# TEE and the bundled SmolLM2 model) on 127.0.0.1, then the client verifying its
# attestation (`veritee attest --nonce`) and, only then, asking it one question
# (`veritee chat`, which checks the answer's signed usage receipt). The runtime is then
# stopped, its receipt log exported as an audit bundle, and the auditor's offline
# `veritee-verify receipts` checks it (transcripts opened with the auditor's key).
#
#   bash scripts/demo.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 2; }
bash scripts/fetch-model.sh >/dev/null
cargo build -q -p veritee-enclave -p veritee-client -p veritee-verifier
bin="${CARGO_TARGET_DIR:-target}/debug"
state=.veritee
mkdir -p "$state"
# The auditor's key pair (made once); the provider's launch configuration names its public half.
if [ ! -f "$state/auditor.key" ]; then
    "$bin/veritee-verify" auditor-keygen --out "$state/auditor.key" >"$state/auditor.pub" 2>/dev/null
fi
printf 'auditor_hpke_public_key = "%s"\n' "$(tr -d '[:space:]' <"$state/auditor.pub")" >"$state/launch.toml"
out="$(mktemp)"
audit="$(mktemp -u)"
"$bin/veritee-enclave" serve --simulate --listen 127.0.0.1:0 --state-dir "$state" --launch-config "$state/launch.toml" >"$out" &
server=$!
# Under `set -e` a failing command in the trap becomes the script's exit status: at the
# end the runtime has already been stopped, so `kill` fails and the demo "failed" (exit 1
# after ACCEPTED). Cleanup must not decide the exit status.
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$out" "$audit"' EXIT
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
echo
kill -TERM "$server"; wait "$server" 2>/dev/null || true
echo "\$ veritee-enclave export-audit --state-dir $state --out audit.cbor"
"$bin/veritee-enclave" export-audit --state-dir "$state" --out "$audit"
echo
echo "\$ veritee-verify receipts audit.cbor --at NOW --policy $state/policy.toml --auditor-key $state/auditor.key"
"$bin/veritee-verify" receipts "$audit" --at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --policy "$state/policy.toml" --auditor-key "$state/auditor.key"
