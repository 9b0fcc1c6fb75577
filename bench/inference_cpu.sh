#!/usr/bin/env bash
# CPU prefill/decode tokens/s of our engine vs llama.cpp on the same GGUF, the same prompt
# ids (a golden chat prompt) and the same thread count, in one run. Needs the model
# (scripts/fetch-model.sh) and llama-cpp-python in .venv-golden (scripts/golden/make_goldens.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
new="${NEW_TOKENS:-64}"
model="$(bash scripts/fetch-model.sh)"
prompt="$(python3 -c 'import json; c=json.load(open("inference/tests/fixtures/greedy_golden.json"))["cases"][0]; print(json.dumps(c["prompt_ids"]))')"
[ -x .venv-golden/bin/python ] || { echo "run scripts/golden/make_goldens.sh first (builds llama-cpp-python)" >&2; exit 2; }

cargo build -q -p veritee-inference --example decode_bench
ours=$(RAYON_NUM_THREADS="$threads" "${CARGO_TARGET_DIR:-target}/debug/examples/decode_bench" "$prompt" "$new")
theirs=$(.venv-golden/bin/python bench/llama_cpp_decode.py "$model" "$prompt" "$new" "$threads")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%dT%H:%MZ); threads: $threads"
echo "veritee:   $ours"
echo "llama.cpp: $theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for k in ("prefill_tps", "decode_tps"):
    print(f"ratio {k}: {a[k] / b[k]:.3f}x (bar: >= 1.0x)")
PY
