#!/usr/bin/env bash
# Many streaming clients at once (issue 14): aggregate output tokens/s and p50/p99 time to
# first token and inter-token latency at 1, 4, 8, 16 and 32 concurrent clients, through
# the attested API (`veritee proxy`, which verifies the runtime's attestation and every
# receipt, in front of `veritee-enclave serve --simulate`), against llama.cpp's own server
# (`llama-server --parallel N`, continuous batching, built for this CPU by
# bench/setup_llama_server.sh from the llama.cpp that the pinned llama-cpp-python ships),
# on the same GGUF, the same number of threads, in the same run. Greedy, the same prompts
# (about 40 prompt tokens), MAX_TOKENS output tokens at most.
#
#   bench/serve_batch.sh [SECONDS_PER_POINT] [MAX_TOKENS] [CLIENT_COUNTS...]
#
# Not a test: figures go to BENCHMARKS.md with the machine and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
max_tokens="${2:-64}"
shift 2 2>/dev/null || shift $#
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 4 8 16 32)
threads="$(nproc)"
model="$(bash scripts/fetch-model.sh)"
bash bench/setup_llama_server.sh >/dev/null
llama=target/llama-server/build/bin/llama-server
cargo build --release -q -p veritee-enclave -p veritee-client
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
wait_for() { # FILE PATTERN SECONDS
    for _ in $(seq 1 "$(( $3 * 10 ))"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}
echo "machine: ${threads} cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "model: $model; $secs s per point; max_tokens $max_tokens; $threads threads each"

# veritee: the runtime with room for every client in one batch, and the verifying proxy.
target/release/veritee-enclave serve --simulate --listen 127.0.0.1:18443 --model "$model" \
    --state-dir "$work/veritee" --max-batch 32 --queue-depth 256 > "$work/enclave.log" 2>&1 &
pids+=($!)
wait_for "$work/enclave.log" "listening on" 120
target/release/veritee proxy --listen 127.0.0.1:18080 --upstream https://127.0.0.1:18443 \
    --policy "$work/veritee/policy.toml" > "$work/proxy.log" 2>&1 &
pids+=($!)
wait_for "$work/proxy.log" "proxy listening" 30
for n in "${counts[@]}"; do
    python3 bench/serve_load.py http://127.0.0.1:18080 "$n" "$secs" "$max_tokens" > "$work/veritee-$n.json"
    echo "veritee      $n: $(cat "$work/veritee-$n.json")"
done
kill "${pids[@]}"; wait 2>/dev/null || true; pids=()

# llama-server: restarted per point, since its slot count is fixed at start.
for n in "${counts[@]}"; do
    "$llama" -m "$model" -t "$threads" -tb "$threads" --parallel "$n" --cont-batching \
        -c $(( n * 512 )) --host 127.0.0.1 --port 18081 > "$work/llama.log" 2>&1 &
    pids+=($!)
    wait_for "$work/llama.log" "listening on http" 120
    python3 bench/serve_load.py http://127.0.0.1:18081 "$n" "$secs" "$max_tokens" > "$work/llama-$n.json"
    echo "llama-server $n: $(cat "$work/llama-$n.json")"
    kill "${pids[@]}"; wait 2>/dev/null || true; pids=()
done

python3 - "$work" "${counts[@]}" <<'PY'
import json, sys
work, counts = sys.argv[1], [int(n) for n in sys.argv[2:]]
ours = {n: json.load(open(f"{work}/veritee-{n}.json")) for n in counts}
theirs = {n: json.load(open(f"{work}/llama-{n}.json")) for n in counts}
ms = lambda v: "-" if v is None else f"{v * 1000:.0f}"
pair = lambda r, a, b: f"{ms(r[a])} / {ms(r[b])}"
print()
print("| clients | veritee tok/s | llama-server tok/s | ratio | veritee vs its 1 client | TTFT p50 / p99 ms, veritee | llama-server | TTFT after the first request, veritee | llama-server | ITL p50 / p99 ms, veritee | llama-server | requests (errors), veritee / llama-server |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
one = ours[min(ours)]["tokens_per_s"]
for n in counts:
    o, t = ours[n], theirs[n]
    print(f"| {n} | {o['tokens_per_s']:.1f} | {t['tokens_per_s']:.1f} | {o['tokens_per_s'] / t['tokens_per_s']:.2f}x "
          f"| {o['tokens_per_s'] / one:.2f}x | {pair(o, 'ttft_p50_s', 'ttft_p99_s')} | {pair(t, 'ttft_p50_s', 'ttft_p99_s')} "
          f"| {pair(o, 'ttft_p50_after_first_s', 'ttft_p99_after_first_s')} | {pair(t, 'ttft_p50_after_first_s', 'ttft_p99_after_first_s')} "
          f"| {pair(o, 'itl_p50_s', 'itl_p99_s')} | {pair(t, 'itl_p50_s', 'itl_p99_s')} "
          f"| {o['requests']} ({o['errors']}) / {t['requests']} ({t['errors']}) |")
PY
