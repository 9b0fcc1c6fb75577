#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in fuzz/ for a fixed time each, on the stable
# toolchain: cargo-fuzz with libFuzzer and no sanitizer (`-s none`; the code is safe Rust,
# built with debug assertions and overflow checks). See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# Each target starts from a scratch copy of fuzz/corpus/<target>/ (the committed corpus is
# never grown; copy an input in by hand to keep it). Prints, per target, libFuzzer's final
# executions, exec/s, coverage (cov: edges, ft: features) and corpus size, and the crash,
# timeout and out-of-memory artifacts it wrote, which are kept in fuzz/artifacts/<target>/.
# Exits 1 if any target found something. Needs `cargo install cargo-fuzz --locked`.
# Environment: FUZZ_SCRATCH (default: a new temporary directory), FUZZ_BUILD_ARGS (extra
# `cargo fuzz build` arguments, e.g. "--codegen-units 16" for a faster build).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

cd fuzz
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
scratch=${FUZZ_SCRATCH:-$(mktemp -d -t veritee-fuzz.XXXXXX)}
triple=$(rustc -vV | sed -n 's/^host: //p')

echo "== cargo fuzz build -s none ${FUZZ_BUILD_ARGS:-} (${#targets[@]} targets)"
build_start=$SECONDS
# shellcheck disable=SC2086 # FUZZ_BUILD_ARGS is a list of arguments
cargo fuzz build -s none ${FUZZ_BUILD_ARGS:-}
echo "   built in $((SECONDS - build_start)) s"

echo "== fuzzing ${seconds} s per target; scratch corpora and logs in $scratch"
# libFuzzer's final statistics (-print_final_stats) and its last status line.
final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
printf '%-20s %12s %8s %7s %8s %7s  %s\n' target executions exec/s cov ft corpus findings
found=0
for target in "${targets[@]}"; do
    corpus="$scratch/$target/corpus"
    artifacts="$scratch/$target/artifacts/"
    log="$scratch/$target/libfuzzer.log"
    mkdir -p "$corpus" "$artifacts"
    # Seeds first: libFuzzer adds new inputs to the first directory only.
    cp corpus/"$target"/* "$corpus"/
    status=0
    # -timeout: one input running 10 s is a hang; -rss_limit_mb (and with it
    # -malloc_limit_mb): 2 GiB is an unbounded allocation for inputs of a few KiB.
    "target/$triple/release/$target" "$corpus" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts" >"$log" 2>&1 || status=$?
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    findings=$(find "$artifacts" -type f | wc -l)
    note="none"
    if [ "$findings" -gt 0 ] || [ "$status" -ne 0 ]; then
        found=1
        mkdir -p "artifacts/$target"
        cp "$artifacts"* "artifacts/$target/" 2>/dev/null || true
        note="$findings artifact(s) in fuzz/artifacts/$target/ (exit $status; log $log)"
    fi
    printf '%-20s %12s %8s %7s %8s %7s  %s\n' "$target" "$(final_stat number_of_executed_units)" \
        "$(final_stat average_exec_per_sec)" "$(field cov)" "$(field ft)" "$(field corp)" "$note"
done
exit "$found"
