#!/usr/bin/env bash
# Tests the sealed guest image (images/, scripts/build-image.sh) under QEMU TCG (no KVM):
#
#   1. reproducibility: the release image built twice; SHA-256 of every artifact must match
#   2. the release image boots (direct kernel boot: kernel + initrd + command line), systemd
#      starts veritee-enclave, which finds no TEE, says so and stops: the VM powers off
#   3. a copy of the release disk with one byte of the root file system changed: dm-verity
#      refuses it (kernel panic on corruption) and the runtime never starts
#   4. the development image (--dev, SIMULATED TEE) boots with the command line `veritee-host
#      launch --platform none` plans (its --dry-run --json argv, with a second serial port
#      and a monitor added for the test): a launch configuration over fw_cfg, the collateral
#      directory over 9p, a blank state disk, a port forwarded by QEMU user networking.
#      `veritee attest --nonce` verifies it under the policy the guest wrote (exported on its
#      second serial port) and must show the launch configuration digest veritee-host
#      printed (claim and HOST_DATA); the collateral file is served in its evidence bundle;
#      `veritee chat` gets an answer whose receipt checks; then QEMU is stopped (no ACPI
#      power-down: the image has no logind)
#
#   5. SEV-SNP measurement of the image's own inputs: OVMF's AmdSev firmware built from
#      Debian's edk2 source (scripts/build-ovmf.sh; cached, its SHA-256 pinned), then the
#      release image's launch digests from `veritee-host measure` and from sev-snp-measure
#      agree for every shape (scripts/measure-image-test.sh); and, while the development
#      image of step 4 runs, the client policy `veritee-host policy` writes for the dev
#      image with that firmware and the launch configuration accepts the guest's evidence
#      where its fields apply (HOST_DATA and [runtime]; the simulated TEE's measurement is
#      not the image's), and the policy for another launch configuration refuses it
#
#   scripts/image-test.sh [WORKDIR]      (default: target/image-test; needs root)
#
# VERITEE_IMAGE_TEST_ONLY=release runs steps 1 to 3 only (what scripts/test.sh runs);
# VERITEE_IMAGE_TEST_ONLY=dev runs steps 4 and 5 only.
#
# Every QEMU run has a time limit (VERITEE_QEMU_TIMEOUT, default 900 s) and is killed at the
# end. Boot timings go to WORKDIR/timings.txt. Environment as for build-image.sh, and:
#   VERITEE_IMAGE_TEST_RELEASE_BIN / VERITEE_IMAGE_TEST_DEV_BIN  prebuilt runtimes (release:
#       --no-default-features; dev: default features) instead of cargo builds
#   VERITEE_CLIENT_BIN  a prebuilt `veritee` client instead of `cargo build -p veritee-client`
#   VERITEE_HOST_BIN    a prebuilt `veritee-host` instead of `cargo build -p veritee-host`
#   VERITEE_OVMF_AMDSEV an AmdSev firmware instead of the cached build of scripts/build-ovmf.sh
#                       (its SHA-256 must still be the one that script pins)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$repo/target/image-test}"
cache="${VERITEE_IMAGE_CACHE:-$repo/target/image-cache}"
qemu_timeout="${VERITEE_QEMU_TIMEOUT:-900}"
tools="$cache/tools"
die() { echo "image-test: FAIL: $*" >&2; exit 1; }
log() { echo "image-test: $*" >&2; }
pass() { echo "image-test: ok: $*" >&2; }
mkdir -p "$work"
work="$(cd "$work" && pwd)"
: >"$work/timings.txt"

qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        sleep 2
        kill -KILL "$qemu_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---- 1. Reproducibility. ----
passed=0
only_dev=0
[ "${VERITEE_IMAGE_TEST_ONLY:-}" = dev ] && only_dev=1
if [ "$only_dev" = 1 ]; then
    log "SKIPPING steps 1 to 3 (VERITEE_IMAGE_TEST_ONLY=dev)"
elif [ "${VERITEE_IMAGE_TEST_SKIP_REPRO:-0}" = 1 ] && [ -f "$work/release-a/SHA256SUMS" ]; then
    log "SKIPPING the two-build check (VERITEE_IMAGE_TEST_SKIP_REPRO=1): reusing $work/release-a"
else
log "building the release image twice (build-image.sh; the runtime is built once)"
t0=$(date +%s)
VERITEE_ENCLAVE_BIN="${VERITEE_IMAGE_TEST_RELEASE_BIN:-}" bash "$repo/scripts/build-image.sh" "$work/release-a"
t1=$(date +%s)
VERITEE_ENCLAVE_BIN="$cache/bin/release/veritee-enclave" VERITEE_IMAGE_CACHE_ONLY=metadata \
    bash "$repo/scripts/build-image.sh" "$work/release-b"
t2=$(date +%s)
echo "release build A: $((t1 - t0)) s; build B (same runtime binary, cached package metadata): $((t2 - t1)) s" >>"$work/timings.txt"
if ! diff <(cd "$work/release-a" && sha256sum -- *) <(cd "$work/release-b" && sha256sum -- *) >"$work/repro.diff"; then
    cat "$work/repro.diff" >&2
    die "the two release builds differ (above: sha256sum of A vs B)"
fi
pass "two release builds are bit-identical: $(cd "$work/release-a" && ls | wc -l) artifacts, $(cd "$work/release-a" && sha256sum veritee.raw veritee.vmlinuz veritee.initrd | awk '{printf "%s %s… ", $2, substr($1,1,16)}')"
passed=$((passed + 1))
fi

# ---- QEMU (from the tools root), direct kernel boot, TCG. ----
# run_qemu_sh DIR: runs DIR/qemu.sh in the tools root (DIR mounted at /w), in the
# background, its output in DIR/qemu.log; sets qemu_pid and qemu_started.
run_qemu_sh() {
    local dir="$1"
    chmod +x "$dir/qemu.sh"
    unshare --mount --propagation private -- /bin/sh -eu -c '
        t="$1"; d="$2"
        mount --bind "$t" "$t"
        mount -t proc proc "$t/proc"
        mount --rbind /dev "$t/dev"
        mount --rbind /sys "$t/sys"
        mkdir -p "$t/w"
        mount --bind "$d" "$t/w"
        exec chroot "$t" /usr/bin/env -i PATH=/usr/sbin:/usr/bin /w/qemu.sh
    ' run_qemu_sh "$tools" "$dir" >"$dir/qemu.log" 2>&1 &
    qemu_pid=$!
    qemu_started=$(date +%s.%N)
}
# start_qemu DIR NAME [HOSTPORT]: boots DIR/NAME.{vmlinuz,initrd,cmdline,raw} with a blank state
# disk DIR/state.img; serial 0 -> DIR/console.log, serial 1 -> DIR/ttyS1.log.
start_qemu() {
    local dir="$1" name="$2" port="${3:-}"
    rm -f "$dir/console.log" "$dir/ttyS1.log" "$dir/qemu.log" "$dir/monitor.sock"
    rm -f "$dir/state.img"
    truncate -s 512M "$dir/state.img"
    local net="-nic none"
    [ -n "$port" ] && net="-netdev user,id=n0,hostfwd=tcp:127.0.0.1:$port-:8443 -device virtio-net-pci,netdev=n0"
    cat >"$dir/qemu.sh" <<EOF
#!/bin/sh
exec timeout --kill-after=10 $qemu_timeout qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 2048 \\
    -display none -no-reboot -monitor unix:/w/monitor.sock,server,nowait \\
    -serial file:/w/console.log -serial file:/w/ttyS1.log \\
    -kernel /w/$name.vmlinuz -initrd /w/$name.initrd -append "\$(cat /w/$name.cmdline)" \\
    -drive file=/w/$name.raw,format=raw,if=none,id=root,readonly=on -device virtio-blk-pci,drive=root \\
    -drive file=/w/state.img,format=raw,if=none,id=state -device virtio-blk-pci,drive=state,serial=veritee-state \\
    -device virtio-rng-pci $net
EOF
    run_qemu_sh "$dir"
}
# start_launch DIR HOSTPORT ARGS...: boots what `veritee-host launch --platform none ARGS
# --dry-run --json` plans for files under DIR (paths rewritten to /w, where DIR is mounted
# in the tools root), with its serial console to DIR/console.log, a second serial port to
# DIR/ttyS1.log and a monitor socket added. Writes the plan to DIR/plan.json.
start_launch() {
    local dir="$1" port="$2"; shift 2
    rm -f "$dir/console.log" "$dir/ttyS1.log" "$dir/qemu.log" "$dir/monitor.sock"
    "$host_bin" launch --platform none --listen "127.0.0.1:$port" "$@" --dry-run --json >"$dir/plan.json"
    python3 - "$dir" "$qemu_timeout" >"$dir/qemu.sh" <<'PY'
import json, shlex, sys
d, limit = sys.argv[1], sys.argv[2]
argv = json.load(open(d + "/plan.json"))["argv"]
argv = [a.replace(d + "/", "/w/") for a in argv]
for a in argv:
    # Every file the plan names must be in DIR (the only host directory QEMU sees).
    if a.startswith("/") and not a.startswith("/w/"):
        sys.exit(f"start_launch: the plan names {a}, outside {d}")
i = argv.index("-serial")
assert argv[i:i + 4] == ["-serial", "stdio", "-monitor", "none"], argv[i:i + 4]
argv[i:i + 4] = ["-serial", "file:/w/console.log", "-serial", "file:/w/ttyS1.log",
                 "-monitor", "unix:/w/monitor.sock,server,nowait", "-no-reboot"]
argv[0] = "qemu-system-x86_64"
print("#!/bin/sh")
print(f"exec timeout --kill-after=10 {limit} " + " ".join(shlex.quote(a) for a in argv))
PY
    run_qemu_sh "$dir"
}
# wait_for DIR FILE REGEX SECONDS: until FILE matches REGEX (grep -E); 1 if QEMU ended first.
wait_for() {
    local dir="$1" file="$2" pattern="$3" limit="$4" i=0
    while [ "$i" -lt "$limit" ]; do
        grep -aqE -- "$pattern" "$dir/$file" 2>/dev/null && return 0
        kill -0 "$qemu_pid" 2>/dev/null || { grep -aqE -- "$pattern" "$dir/$file" 2>/dev/null && return 0; return 1; }
        sleep 1; i=$((i + 1))
    done
    return 1
}
wait_exit() { # SECONDS: until QEMU has exited
    local i=0
    while kill -0 "$qemu_pid" 2>/dev/null && [ "$i" -lt "$1" ]; do sleep 1; i=$((i + 1)); done
    ! kill -0 "$qemu_pid" 2>/dev/null
}
elapsed() { echo "$(date +%s.%N) - $qemu_started" | bc 2>/dev/null || python3 -c "import time;print(round(time.time()-$qemu_started,1))"; }
show_console() { echo "---- $1/console.log (last 40 lines, audit lines dropped) ----" >&2; grep -av ' audit: ' "$1/console.log" | tail -40 >&2 || true; }

# ---- 2. The release image: starts, finds no TEE, fails closed. ----
if [ "$only_dev" = 0 ]; then
boot="$work/boot-release"
rm -rf "$boot"; mkdir -p "$boot"
cp "$work/release-a"/veritee.{vmlinuz,initrd,cmdline,raw} "$boot/"
log "booting the release image (TCG; a few minutes)"
start_qemu "$boot" veritee
# (systemd's status lines carry colour codes between "Started" and the unit name)
wait_for "$boot" console.log "Started .{0,16}veritee-enclave\.service" 600 || { show_console "$boot"; die "release: systemd did not start veritee-enclave.service"; }
started=$(elapsed)
wait_for "$boot" console.log "This does not look like an SEV-SNP or TDX guest" 300 || { show_console "$boot"; die "release: no fail-closed message from the runtime"; }
failed=$(elapsed)
wait_exit 180 || { show_console "$boot"; die "release: the VM did not power off after the runtime stopped"; }
grep -aq "reboot: Power down" "$boot/console.log" || { show_console "$boot"; die "release: no power-down"; }
grep -aqF "SIMULATED" "$boot/console.log" && { show_console "$boot"; die "release: the console mentions SIMULATED"; }
msg="$(grep -a 'veritee-enclave\[' "$boot/console.log" | grep -av ' audit: ' | sed 's/^.*veritee-enclave\[[0-9]*\]: //' | head -5)"
pass "release image: runtime started at ${started%.*} s, failed closed at ${failed%.*} s, VM powered off; it said:"
printf '    %s\n' "$msg" >&2
passed=$((passed + 1))
echo "release boot (TCG): veritee-enclave.service started ${started} s after QEMU start, fail-closed message at ${failed} s" >>"$work/timings.txt"

# ---- 3. One byte of the root changed: dm-verity refuses it. ----
tamper="$work/boot-tamper"
rm -rf "$tamper"; mkdir -p "$tamper"
cp "$work/release-a"/veritee.{vmlinuz,initrd,cmdline,raw} "$tamper/"
off="$(python3 - "$tamper/veritee.raw" <<'PY'
import struct, sys, uuid
ROOT = uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709")
with open(sys.argv[1], "r+b") as f:
    f.seek(512); hdr = f.read(92)
    lba, count, size = struct.unpack_from("<QII", hdr, 72)
    f.seek(lba * 512); table = f.read(count * size)
    for i in range(count):
        e = table[i * size:(i + 1) * size]
        if uuid.UUID(bytes_le=e[:16]) == ROOT:
            off = struct.unpack_from("<Q", e, 32)[0] * 512 + 1024   # erofs superblock magic
            f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x01]))
            print(off); break
PY
)"
[ -n "$off" ] || die "tamper: no root partition found"
[ "$(cmp -l "$work/release-a/veritee.raw" "$tamper/veritee.raw" | wc -l)" = 1 ] || die "tamper: expected exactly one changed byte"
log "booting the release image with byte $off (the root's erofs superblock) flipped"
start_qemu "$tamper" veritee
wait_exit 600 || { show_console "$tamper"; die "tamper: the VM did not stop"; }
grep -aqE "device-mapper: verity: .*data block [0-9]+ is corrupted" "$tamper/console.log" || { show_console "$tamper"; die "tamper: no dm-verity corruption message"; }
grep -aqF "Kernel panic - not syncing: dm-verity device corrupted" "$tamper/console.log" || { show_console "$tamper"; die "tamper: no panic on corruption"; }
grep -aqE "Started .{0,16}veritee-enclave\.service" "$tamper/console.log" && die "tamper: the runtime started on a corrupted root"
pass "tampered root: $(grep -aoE 'device-mapper: verity: [^ ]+ data block [0-9]+ is corrupted' "$tamper/console.log" | head -1); kernel panic; runtime never started"
passed=$((passed + 1))

fi

if [ "${VERITEE_IMAGE_TEST_ONLY:-}" = release ]; then
    log "steps 4 and 5 not run (VERITEE_IMAGE_TEST_ONLY=release: the test command's image step)"
    cat "$work/timings.txt" >&2
    echo "image-test: $passed passed, 0 failed (steps 1-3)"
    exit 0
fi

# ---- 5a. The AmdSev firmware and the SEV-SNP measurement of the image's own inputs. ----
pinned_ovmf=$(sed -n 's/^PINNED_SHA256=\([0-9a-f]\{64\}\)$/\1/p' "$repo/scripts/build-ovmf.sh")
[ -n "$pinned_ovmf" ] || die "no PINNED_SHA256 in scripts/build-ovmf.sh"
ovmf="${VERITEE_OVMF_AMDSEV:-$cache/ovmf/OVMF.amdsev.fd}"
if [ -z "${VERITEE_OVMF_AMDSEV:-}" ] && [ "$(sha256sum "$ovmf" 2>/dev/null | cut -c1-64)" != "$pinned_ovmf" ]; then
    log "building OVMF's AmdSev firmware (scripts/build-ovmf.sh; ~10 minutes, once)"
    t0=$(date +%s)
    bash "$repo/scripts/build-ovmf.sh" "$cache/ovmf"
    echo "AmdSev firmware build: $(( $(date +%s) - t0 )) s" >>"$work/timings.txt"
fi
[ "$(sha256sum "$ovmf" | cut -c1-64)" = "$pinned_ovmf" ] || die "$ovmf is not the pinned AmdSev build ($pinned_ovmf)"
if [ -n "${VERITEE_HOST_BIN:-}" ]; then
    host_bin="$VERITEE_HOST_BIN"
else
    (cd "$repo" && cargo build -q -p veritee-host)
    host_bin="${CARGO_TARGET_DIR:-$repo/target}/debug/veritee-host"
fi
peer_venv="${CARGO_TARGET_DIR:-$repo/target}/tmp/sev-snp-measure-venv"
if [ ! -x "$peer_venv/bin/sev-snp-measure" ]; then
    log "installing sev-snp-measure 0.0.13 (PyPI) into $peer_venv"
    python3 -m venv --clear "$peer_venv" && "$peer_venv/bin/pip" install -q sev-snp-measure==0.0.13 \
        || die "could not install sev-snp-measure"
fi
if [ "$only_dev" = 0 ]; then
    VERITEE_HOST_BIN="$host_bin" SEV_SNP_MEASURE="$peer_venv/bin/sev-snp-measure" \
        bash "$repo/scripts/measure-image-test.sh" "$work/release-a" "$ovmf" >"$work/measure.txt" 2>&1 \
        || { cat "$work/measure.txt" >&2; die "veritee-host measure and sev-snp-measure disagree on the release image"; }
    pass "release image: $(grep -c . "$work/measure.txt") lines of SEV-SNP launch digests, veritee-host = sev-snp-measure on every shape (AmdSev firmware ${pinned_ovmf:0:16}…)"
    passed=$((passed + 1))
fi

# ---- 4. The development image: attest and chat through the forwarded port. ----
if [ "$only_dev" = 1 ] && [ "${VERITEE_IMAGE_TEST_REUSE_DEV:-0}" = 1 ] && [ -f "$work/dev/SHA256SUMS" ]; then
    log "reusing the development image in $work/dev (VERITEE_IMAGE_TEST_REUSE_DEV=1)"
else
    log "building the development image (--dev)"
    VERITEE_ENCLAVE_BIN="${VERITEE_IMAGE_TEST_DEV_BIN:-}" bash "$repo/scripts/build-image.sh" "$work/dev" --dev
fi
if [ -n "${VERITEE_CLIENT_BIN:-}" ]; then
    client="$VERITEE_CLIENT_BIN"
else
    (cd "$repo" && cargo build -q -p veritee-client)
    client="${CARGO_TARGET_DIR:-$repo/target}/debug/veritee"
fi
dev="$work/boot-dev"
rm -rf "$dev"; mkdir -p "$dev/collateral"
cp "$work/dev"/veritee-dev-SIMULATED.{vmlinuz,initrd,cmdline,raw} "$dev/"
# SeaBIOS for the direct kernel boot (--platform none takes any firmware), from the tools root.
cp "$tools/usr/share/seabios/bios-256k.bin" "$dev/"
truncate -s 512M "$dev/state.img"
# This deployment's launch configuration: the model pin (the runtime refuses another model).
printf 'model_digest = "%s"\n' "$(sed -n 's/^model: .* sha256 \([0-9a-f]*\)$/\1/p' "$work/dev/veritee-dev-SIMULATED.build.txt")" >"$dev/launch.toml"
grep -qE '^model_digest = "[0-9a-f]{64}"$' "$dev/launch.toml" || die "dev: no model SHA-256 in the image's build.txt"
# Collateral the host hands in: AMD's Genoa ARK (real, public); the runtime serves it.
cp "$repo/testdata/vectors/snp/amd-roots/ask_ark_genoa.pem" "$dev/collateral/ask_ark_genoa.pem"
port="${VERITEE_IMAGE_TEST_PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}"
log "booting the development image with veritee-host launch's command line, port 127.0.0.1:$port -> guest 8443"
start_launch "$dev" "$port" --image "$dev" --firmware "$dev/bios-256k.bin" --launch-config "$dev/launch.toml" \
    --collateral-dir "$dev/collateral" --state-disk "$dev/state.img" --vcpus 2 --memory 2048M
launch_digest=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["expected"]["launch_config_digest"])' "$dev/plan.json")
[ "$launch_digest" = "$(sha256sum "$dev/launch.toml" | cut -c1-64)" ] || die "dev: veritee-host's launch_config_digest is not the SHA-256 of the file"
wait_for "$dev" console.log "veritee-enclave: listening on https://" 900 || { show_console "$dev"; die "dev: the runtime did not start serving"; }
serving=$(elapsed)
wait_for "$dev" ttyS1.log "auditor_hpke_keys" 120 || { show_console "$dev"; die "dev: no policy on the second serial port"; }
# (the first copy: up to its last line, auditor_hpke_keys)
tr -d '\r' <"$dev/ttyS1.log" | sed '/^auditor_hpke_keys/q' >"$dev/policy.toml"
grep -q '^dangerous_trusted_roots' "$dev/policy.toml" || die "dev: the exported policy has no dangerous_trusted_roots"
url="https://127.0.0.1:$port"
timeout 300 "$client" attest "$url" --policy "$dev/policy.toml" --nonce >"$dev/attest.txt" 2>&1 || { cat "$dev/attest.txt" >&2; die "dev: veritee attest failed"; }
grep -q "VERIFIED" "$dev/attest.txt" || { cat "$dev/attest.txt" >&2; die "dev: attest did not say VERIFIED"; }
grep -qE "^\s+launch config\s+$launch_digest\$" "$dev/attest.txt" || { cat "$dev/attest.txt" >&2; die "dev: the claims do not carry the launch configuration veritee-host passed ($launch_digest)"; }
grep -qE "^\s+host_data\s+$launch_digest\$" "$dev/attest.txt" || { cat "$dev/attest.txt" >&2; die "dev: HOST_DATA is not the launch configuration digest"; }
grep -aqF "launch configuration: none at" "$dev/console.log" && die "dev: the runtime did not find the launch configuration on fw_cfg"
pass "dev image: the launch configuration arrived over fw_cfg: claims and HOST_DATA carry $launch_digest"
python3 - "$port" "$dev/collateral/ask_ark_genoa.pem" <<'PY' || die "dev: the collateral the host shared is not in the served evidence"
import http.client, ssl, sys
# Only a byte search: `veritee attest` above verified this evidence, collateral included.
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ssl._create_unverified_context(), timeout=120)
c.request("GET", "/v1/attestation")
r = c.getresponse(); bundle = r.read()
sys.exit(0 if r.status == 200 and open(sys.argv[2], "rb").read() in bundle else 1)
PY
pass "dev image: the collateral shared over 9p is served in the evidence bundle"
pass "dev image: veritee attest --nonce verified it ($(grep -E '^\s+measurement' "$dev/attest.txt" | tr -s ' '))"
c0=$(date +%s.%N)
timeout 600 "$client" chat "$url" --policy "$dev/policy.toml" -m "What is the capital of France? Answer in one sentence." --max-tokens 16 --temperature 0 >"$dev/chat.txt" 2>&1 || { cat "$dev/chat.txt" >&2; die "dev: veritee chat failed"; }
c1=$(date +%s.%N)
grep -qE '^\[receipt seq 0 verified' "$dev/chat.txt" || { cat "$dev/chat.txt" >&2; die "dev: no verified receipt"; }
pass "dev image: veritee chat answered with a verified receipt:"
sed 's/^/    /' "$dev/chat.txt" >&2
passed=$((passed + 1))
# ---- 5b. The policy veritee-host writes for this image and launch configuration. ----
model_file="$repo/models/SmolLM2-135M-Instruct.Q4_1.gguf"
host_policy() { # LAUNCH_CONFIG OUT: veritee-host policy for the dev image on the AmdSev firmware
    "$host_bin" policy --image "$work/dev" --firmware "$ovmf" --platform snp --vcpus 2 --vcpu-type EPYC-v4 \
        --launch-config "$1" --model "$model_file" --out "$2" >"$2.log" 2>&1 \
        || { cat "$2.log" >&2; die "veritee-host policy failed"; }
}
# The guest's policy (which trusts the simulated root and its measurement) with the host
# policy's HOST_DATA and [runtime] section: the fields that apply to a simulated TEE.
merge_policy() { # HOST_POLICY OUT
    python3 - "$dev/policy.toml" "$1" "$2" <<'PY'
import re, sys, tomllib
guest, host = open(sys.argv[1]).read(), tomllib.load(open(sys.argv[2], "rb"))
q = lambda v: "[" + ", ".join('"%s"' % x for x in v) + "]" if isinstance(v, list) else '"%s"' % v
fields = {"host_data": host["snp"]["host_data"]}
fields.update(host["runtime"])
for key, value in fields.items():
    guest, n = re.subn(r"(?m)^%s = .*$" % key, "%s = %s" % (key, q(value)), guest)
    assert n == 1, (key, n)
open(sys.argv[3], "w").write(guest)
PY
}
host_policy "$dev/launch.toml" "$dev/host-policy.toml"
merge_policy "$dev/host-policy.toml" "$dev/merged-policy.toml"
timeout 300 "$client" attest "$url" --policy "$dev/merged-policy.toml" >"$dev/attest-host-policy.txt" 2>&1 \
    || { cat "$dev/attest-host-policy.txt" >&2; die "dev: the policy veritee-host wrote for this image refused it"; }
printf 'model_digest = "%s"\n# another deployment\n' "$(sha256sum "$model_file" | cut -c1-64)" >"$dev/other-launch.toml"
host_policy "$dev/other-launch.toml" "$dev/other-policy.toml"
merge_policy "$dev/other-policy.toml" "$dev/other-merged-policy.toml"
if timeout 300 "$client" attest "$url" --policy "$dev/other-merged-policy.toml" >"$dev/attest-other-policy.txt" 2>&1; then
    die "dev: the policy for another launch configuration accepted the guest"
fi
grep -qi "host_data" "$dev/attest-other-policy.txt" || { cat "$dev/attest-other-policy.txt" >&2; die "dev: the other policy refused for another reason than HOST_DATA"; }
pass "dev image: veritee-host policy (AmdSev firmware, this launch configuration) accepts its evidence on HOST_DATA and [runtime]; another launch configuration's policy refuses: $(grep -i host_data "$dev/attest-other-policy.txt" | head -1 | cut -c1-120)"
passed=$((passed + 1))

# The image has no systemd-logind (no D-Bus), so nothing acts on an ACPI power button:
# system_powerdown does not stop it (seen 2026-12-05). Stop QEMU from its monitor instead.
python3 - "$dev/monitor.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.5)
s.sendall(b"quit\n"); time.sleep(0.5); s.close()
PY
wait_exit 60 || die "dev: QEMU did not quit"
echo "dev boot (TCG): serving (listening line) ${serving} s after QEMU start; chat (16 tokens max) took $(python3 -c "print(round($c1-$c0,1))") s" >>"$work/timings.txt"
cat "$work/timings.txt" >&2
echo "image-test: $passed passed, 0 failed"
