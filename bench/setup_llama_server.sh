#!/usr/bin/env bash
# Builds llama.cpp's own server, `llama-server`, from the llama.cpp source that the pinned
# llama-cpp-python release vendors (scripts/golden/requirements.txt), for THIS CPU
# (GGML_NATIVE; the AMX options off: where AMX is advertised but unusable it segfaults).
# The peer of bench/serve_batch.sh. Output: target/llama-server/build/bin/llama-server.
# About 10 minutes on 2 cores; a second run reuses the build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LLAMA_VENV:-.venv-bench}"
req=scripts/golden/requirements.txt
pin() { sed -n "s/^$1==//p" "$req"; }
version="$(pin llama-cpp-python)"
out=target/llama-server
bin="$out/build/bin/llama-server"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "cmake==$(pin cmake)" "ninja==$(pin ninja)" \
    "scikit-build-core==$(pin scikit-build-core)" "pathspec==$(pin pathspec)" "packaging==$(pin packaging)"
src="$out/llama_cpp_python-$version/vendor/llama.cpp"
if [ ! -d "$src" ]; then
    # The source distribution (its metadata is prepared with the pinned build tools, not
    # in an isolated build environment that would build them from source).
    mkdir -p "$out/sdist"
    "$venv/bin/python" -m pip download --quiet --no-deps --no-build-isolation \
        --no-binary llama-cpp-python -d "$out/sdist" "llama-cpp-python==$version"
    tar -xzf "$out/sdist/llama_cpp_python-$version.tar.gz" -C "$out"
fi
PATH="$PWD/$venv/bin:$PATH" cmake -S "$src" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON > "$out/cmake.log" 2>&1 \
    || { echo "configuring llama.cpp failed; see $out/cmake.log" >&2; exit 1; }
PATH="$PWD/$venv/bin:$PATH" cmake --build "$out/build" --target llama-server -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" > "$out/build.log" 2>&1 \
    || { echo "building llama-server failed; see $out/build.log" >&2; exit 1; }
echo "llama-server $version (llama-cpp-python's vendored llama.cpp): $bin"
"$bin" --version 2>&1 | head -2
