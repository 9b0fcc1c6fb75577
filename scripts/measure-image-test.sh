#!/usr/bin/env bash
# Checks an image's SEV-SNP launch digests with two independent implementations: veritee's own
# (`veritee-host measure`) and virtee's sev-snp-measure (the peer the host tests also use).
#
#   scripts/measure-image-test.sh IMAGE_DIR OVMF_FD
#
# IMAGE_DIR holds what scripts/build-image.sh writes (NAME.vmlinuz, NAME.initrd, NAME.cmdline;
# NAME is found from the one *.vmlinuz there); OVMF_FD is an AmdSev firmware (the kernel-hashes
# page), e.g. from scripts/build-ovmf.sh. For every shape (vCPUs 1, 2, 8 x vCPU types EPYC-v4,
# EPYC-Milan, EPYC-Genoa x guest features 0x1, 0x21) it prints the direct-boot digest (kernel,
# initrd, command line) and the firmware-only digest from both tools, and fails if any pair
# differs or either tool fails. It also checks that `veritee-host measure` refuses a kernel with
# Debian's OVMF.fd (no kernel-hashes page: exit 2).
#
# Exit status: 0 all agree, 1 a disagreement or a failed check, 2 bad usage or a missing tool.
#
# Environment:
#   VERITEE_HOST_BIN  veritee-host (default: <repo>/target/debug/veritee-host, else
#                     target/release/veritee-host, else the one on PATH)
#   SEV_SNP_MEASURE   sev-snp-measure 0.0.13 (default: the host tests' venv,
#                     <repo>/target/tmp/sev-snp-measure-venv/bin/sev-snp-measure, else PATH)
#   DEBIAN_OVMF       a firmware without the kernel-hashes page (default: /usr/share/ovmf/OVMF.fd,
#                     else the image tools root's, <repo>/target/image-cache/tools/usr/share/ovmf)
#   VERITEE_MEASURE_VCPUS, VERITEE_MEASURE_TYPES, VERITEE_MEASURE_FEATURES
#                     space-separated lists replacing the shapes above
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { echo "measure-image-test: usage: scripts/measure-image-test.sh IMAGE_DIR OVMF_FD" >&2; exit 2; }
fatal() { echo "measure-image-test: error: $*" >&2; exit 2; }

[ $# = 2 ] || usage
case "$1" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
image="$1"
fw="$2"
[ -d "$image" ] || fatal "no image directory $image"
[ -f "$fw" ] || fatal "no firmware $fw"

first_exe() { local p; for p in "$@"; do [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return; }; done; return 1; }
first_file() { local p; for p in "$@"; do [ -f "$p" ] && { echo "$p"; return; }; done; return 0; }
host_bin="${VERITEE_HOST_BIN:-$(first_exe "$repo/target/debug/veritee-host" "$repo/target/release/veritee-host" "$(command -v veritee-host || true)")}" \
    || fatal "no veritee-host (build it: cargo build -p veritee-host, or set VERITEE_HOST_BIN)"
peer="${SEV_SNP_MEASURE:-$(first_exe "$repo/target/tmp/sev-snp-measure-venv/bin/sev-snp-measure" "$(command -v sev-snp-measure || true)")}" \
    || fatal "no sev-snp-measure (pip install sev-snp-measure==0.0.13 in a venv, or set SEV_SNP_MEASURE)"
debian_fw="${DEBIAN_OVMF:-$(first_file /usr/share/ovmf/OVMF.fd "$repo/target/image-cache/tools/usr/share/ovmf/OVMF.fd")}"
[ -x "$host_bin" ] || fatal "VERITEE_HOST_BIN=$host_bin is not executable"
[ -x "$peer" ] || fatal "SEV_SNP_MEASURE=$peer is not executable"
peer_version="$("$peer" --version 2>&1 || true)"
case "$peer_version" in *0.0.13*) ;; *) echo "measure-image-test: note: sev-snp-measure reports '$peer_version', the tests pin 0.0.13" >&2 ;; esac

shopt -s nullglob
kernels=("$image"/*.vmlinuz)
[ ${#kernels[@]} = 1 ] || fatal "$image must hold exactly one *.vmlinuz (found ${#kernels[@]})"
name="${kernels[0]%.vmlinuz}"
kernel="$name.vmlinuz"; initrd="$name.initrd"; cmdline_file="$name.cmdline"
for f in "$initrd" "$cmdline_file"; do [ -f "$f" ] || fatal "no $f"; done
cmdline="$(cat "$cmdline_file")"   # both tools drop the trailing line break

read -r -a vcpus_list <<<"${VERITEE_MEASURE_VCPUS:-1 2 8}"
read -r -a types_list <<<"${VERITEE_MEASURE_TYPES:-EPYC-v4 EPYC-Milan EPYC-Genoa}"
read -r -a features_list <<<"${VERITEE_MEASURE_FEATURES:-0x1 0x21}"

echo "firmware: $fw (sha256 $(sha256sum "$fw" | cut -d' ' -f1))"
echo "kernel:   $kernel (sha256 $(sha256sum "$kernel" | cut -d' ' -f1))"
echo "initrd:   $initrd (sha256 $(sha256sum "$initrd" | cut -d' ' -f1))"
echo "cmdline:  $cmdline_file (sha256 $(sha256sum "$cmdline_file" | cut -d' ' -f1))"
echo "tools:    $host_bin; $peer ($peer_version)"

failures=0
fail() { echo "DISAGREE: $*"; failures=$((failures + 1)); }

# ours BOOT VCPUS TYPE FEATURES: the digest from veritee-host (BOOT: kernel or firmware-only).
ours() {
    local args=(measure --platform snp --json --firmware "$fw" --vcpus "$2" --vcpu-type "$3"
        --guest-features "$4" --vmm qemu)
    if [ "$1" = kernel ]; then
        args+=(--kernel "$kernel" --initrd "$initrd" --cmdline-file "$cmdline_file")
    else
        args+=(--firmware-only)
    fi
    local json
    json="$("$host_bin" "${args[@]}")" || return
    printf '%s' "$json" | python3 -c 'import json, sys; print(json.load(sys.stdin)["measurement"])'
}
theirs() {
    local args=(--mode snp --output-format hex --ovmf "$fw" --vcpus "$2" --vcpu-type "$3"
        --guest-features "$4" --vmm-type QEMU)
    [ "$1" = kernel ] && args+=(--kernel "$kernel" --initrd "$initrd" --append "$cmdline")
    "$peer" "${args[@]}"
}

printf '%-13s %5s %-10s %-4s  %s\n' boot vcpus type gf "veritee-host / sev-snp-measure"
for boot in kernel firmware-only; do
    for n in "${vcpus_list[@]}"; do
        for t in "${types_list[@]}"; do
            for gf in "${features_list[@]}"; do
                shape="$boot vcpus=$n type=$t guest-features=$gf"
                a="$(ours "$boot" "$n" "$t" "$gf" 2>/tmp/measure-ours.$$)" \
                    || { fail "$shape: veritee-host failed: $(cat /tmp/measure-ours.$$)"; continue; }
                b="$(theirs "$boot" "$n" "$t" "$gf" 2>/tmp/measure-peer.$$)" \
                    || { fail "$shape: sev-snp-measure failed: $(cat /tmp/measure-peer.$$)"; continue; }
                printf '%-13s %5s %-10s %-4s  %s\n%-36s %s %s\n' "$boot" "$n" "$t" "$gf" "$a" "" "$b" \
                    "$([ "$a" = "$b" ] && echo same || echo DIFFERENT)"
                [ "$a" = "$b" ] || fail "$shape: veritee-host $a, sev-snp-measure $b"
            done
        done
    done
done
rm -f /tmp/measure-ours.$$ /tmp/measure-peer.$$

# A kernel with a firmware that has no kernel-hashes page must be refused (exit 2).
if [ -n "$debian_fw" ] && [ -f "$debian_fw" ]; then
    set +e
    err="$("$host_bin" measure --platform snp --firmware "$debian_fw" --kernel "$kernel" \
        --initrd "$initrd" --cmdline-file "$cmdline_file" 2>&1 >/dev/null)"
    rc=$?
    set -e
    if [ "$rc" = 2 ]; then
        echo "refused as expected (exit 2): kernel with $debian_fw: $(printf '%s' "$err" | head -1)"
    else
        fail "veritee-host measure with a kernel and $debian_fw (no kernel-hashes page) exited $rc, not 2: $err"
    fi
else
    fail "no Debian OVMF.fd to check the refusal with (set DEBIAN_OVMF)"
fi

if [ "$failures" = 0 ]; then
    echo "measure-image-test: all digests agree"
else
    echo "measure-image-test: $failures disagreement(s) or failure(s)" >&2
    exit 1
fi
