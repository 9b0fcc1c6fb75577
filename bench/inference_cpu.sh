#!/usr/bin/env bash
# CPU prefill/decode tokens/s of our engine vs llama.cpp on the same GGUF, the same prompt
# ids (a golden chat prompt) and the same thread count, in one run. Needs the model
# (scripts/fetch-model.sh) and llama-cpp-python: preferably built for this CPU in .venv-bench
# (bench/setup_llama_cpp.sh: GGML_NATIVE=ON, so llama.cpp gets AVX-512/VNNI like our kernels),
# else the portable golden build in .venv-golden (scripts/golden/make_goldens.sh), which is
# slower and makes the ratio flatter than it should be; the script says which it used.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
new="${NEW_TOKENS:-64}"
model="$(bash scripts/fetch-model.sh)"
prompt="$(python3 -c 'import json; c=json.load(open("inference/tests/fixtures/greedy_golden.json"))["cases"][0]; print(json.dumps(c["prompt_ids"]))')"
venv="${LLAMA_VENV:-}"
if [ -z "$venv" ]; then
    if [ -x .venv-bench/bin/python ]; then venv=.venv-bench; else venv=.venv-golden; fi
fi
[ -x "$venv/bin/python" ] || { echo "run bench/setup_llama_cpp.sh first (builds llama-cpp-python for this CPU)" >&2; exit 2; }

cargo build -q -p veritee-inference --example decode_bench
ours=$(RAYON_NUM_THREADS="$threads" "${CARGO_TARGET_DIR:-target}/debug/examples/decode_bench" "$prompt" "$new")
theirs=$("$venv/bin/python" bench/llama_cpp_decode.py "$model" "$prompt" "$new" "$threads")
features=$("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode().strip())' 2>/dev/null | grep -o 'CPU : .*' | head -1)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%dT%H:%MZ); threads: $threads"
echo "veritee:   $ours"
echo "llama.cpp: $theirs"
echo "llama.cpp build: $venv ($features)"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for k in ("prefill_tps", "decode_tps"):
    print(f"ratio {k}: {a[k] / b[k]:.3f}x (bar: >= 1.0x)")
PY
