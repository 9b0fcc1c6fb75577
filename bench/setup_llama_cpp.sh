#!/usr/bin/env bash
# Builds llama-cpp-python (the version pinned for the goldens) for THIS CPU into .venv-bench:
# GGML_NATIVE=ON, so llama.cpp uses every SIMD extension the machine has (AVX-512, VNNI), as
# our kernels do. The golden venv is built portable on purpose and is not a fair peer.
# About 10 minutes on 2 cores (no wheel cache: a cached portable build would be reused).
# Used by bench/inference_cpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LLAMA_VENV:-.venv-bench}"
req=scripts/golden/requirements.txt
version="$(sed -n 's/^llama-cpp-python==//p' "$req")"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
grep -v '^llama-cpp-python==' "$req" > "$venv/requirements-tools.txt"
"$venv/bin/python" -m pip install --quiet -r "$venv/requirements-tools.txt"
CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$venv/bin/python" -m pip install --no-cache-dir --force-reinstall --no-build-isolation --no-deps --no-binary llama-cpp-python --verbose \
    "llama-cpp-python==$version" > "$venv/build.log" 2>&1 \
    || { echo "building llama-cpp-python failed; see $venv/build.log" >&2; exit 1; }
"$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode())'
