#!/usr/bin/env bash
# Regenerates the golden fixtures in inference/tests/fixtures/ with llama.cpp (through
# llama-cpp-python built from source). One-off: the fixtures are committed and the Rust
# tests only read them; nothing here runs in CI.
#
#   scripts/golden/make_goldens.sh            # fetch model, build venv if needed, write fixtures
#
# Environment:
#   VERITEE_MODELS             models directory (default <repo>/models), as for fetch-model.sh
#   CMAKE_BUILD_PARALLEL_LEVEL build parallelism for llama.cpp (default 2)
#   GOLDEN_VENV                venv path (default <repo>/.venv-golden)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/scripts/golden"
venv="${GOLDEN_VENV:-$repo/.venv-golden}"
py="${PYTHON:-python3}"

die() { echo "make_goldens: error: $*" >&2; exit 1; }

# 1. The model (idempotent; verifies the SHA-256).
"$repo/scripts/fetch-model.sh"
model="${VERITEE_MODELS:-$repo/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$model" ] || die "model not found at $model after fetch"

# 2. The venv with a from-source llama-cpp-python.
want_version="$(sed -n 's/^llama-cpp-python==\(.*\)$/\1/p' "$here/requirements.txt")"
[ -n "$want_version" ] || die "requirements.txt does not pin llama-cpp-python"
have_version=""
if [ -x "$venv/bin/python" ]; then
    have_version="$("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null || true)"
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "make_goldens: creating $venv" >&2
    "$py" -m venv "$venv" || die "could not create venv at $venv"
    "$venv/bin/python" -m pip install --upgrade --quiet pip
fi
# Phase 1 (quick when already satisfied): the pinned build tools and runtime dependencies.
grep -v '^llama-cpp-python==' "$here/requirements.txt" > "$venv/requirements-phase1.txt"
"$venv/bin/python" -m pip install --quiet -r "$venv/requirements-phase1.txt" \
    || die "installing the pinned build tools and runtime dependencies failed"
if [ "$have_version" != "$want_version" ]; then
    echo "make_goldens: building llama-cpp-python $want_version from source (about 10 min on 2 cores)" >&2
    # CPU-only, portable (no -march=native), no BLAS/OpenMP/curl; no multimodal (mtmd) library.
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF}"
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
    start=$(date +%s)
    "$venv/bin/python" -m pip install --no-build-isolation --no-deps --no-binary llama-cpp-python \
        --verbose "llama-cpp-python==$want_version" > "$venv/llama-cpp-python-build.log" 2>&1 \
        || die "building llama-cpp-python $want_version failed; see $venv/llama-cpp-python-build.log"
    end=$(date +%s)
    echo "make_goldens: llama-cpp-python built in $((end - start)) s (CMAKE_ARGS=$CMAKE_ARGS)" >&2
    echo "$((end - start))" > "$venv/build-seconds"
    echo "$CMAKE_ARGS" > "$venv/build-cmake-args"
fi

# 3. The fixtures.
exec "$venv/bin/python" "$here/make_goldens.py" --model "$model" --out "$repo/inference/tests/fixtures" "$@"
