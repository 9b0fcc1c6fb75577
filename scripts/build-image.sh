#!/usr/bin/env bash
# Builds the sealed veritee guest image (images/, issue 12) from Debian packages, reproducibly.
#
#   scripts/build-image.sh OUT [--dev]
#
# OUT receives (NAME = veritee, or veritee-dev-SIMULATED with --dev):
#   NAME.raw        GPT disk: the erofs root and its dm-verity hash tree (nothing else)
#   NAME.vmlinuz    the kernel (Debian trixie linux-image-amd64: SEV-SNP and TDX guest drivers)
#   NAME.initrd     the initrd (systemd + veritysetup, no shell) with its kernel modules
#   NAME.cmdline    the kernel command line, with roothash= (the root file system's identity)
#   NAME.roothash   the dm-verity root hash alone
#   NAME.manifest   the Debian packages in the root (mkosi's JSON manifest); initrd.manifest
#   NAME.build.txt  inputs: runtime binary and model SHA-256, git commit, tools, epoch, seed
#   SHA256SUMS      of every file above
# Direct boot (kernel + initrd + command line, as QEMU -kernel/-initrd/-append or SNP
# measured direct boot) covers the whole image: the command line pins the root hash.
#
# --dev builds the DEVELOPMENT variant: the runtime with the simulator, `serve --simulate`
# (a SIMULATED TEE that proves nothing). It is never the release image and is named so.
#
# Tools: mmdebstrap from the host's Debian (apt-get installs it when missing) makes a Debian
# trixie tools root with mkosi >= 25, systemd-repart, erofs-utils, veritysetup and QEMU;
# mkosi runs in it (unshare + chroot, no loop devices). Cached under
# ${VERITEE_IMAGE_CACHE:-target/image-cache}: the tools root, downloaded packages, the
# runtime binaries (bin/release, bin/dev).
#
# Environment:
#   VERITEE_ENCLAVE_BIN   use this veritee-enclave binary instead of building one (it is still
#                         checked: no simulator in a release image, the simulator in --dev)
#   VERITEE_IMAGE_CACHE   cache directory (default: <repo>/target/image-cache)
#   VERITEE_IMAGE_CACHE_ONLY  mkosi --cache-only value (default auto; `metadata` reuses the
#                         repository metadata of the previous build, as image-test.sh's second
#                         build does so that both see the same package versions)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "build-image: error: $*" >&2; exit 1; }
log() { echo "build-image: $*" >&2; }

out=""
variant=release
for arg in "$@"; do
    case "$arg" in
        --dev) variant=dev ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $arg" ;;
        *) [ -z "$out" ] || die "one output directory only"; out="$arg" ;;
    esac
done
[ -n "$out" ] || die "usage: scripts/build-image.sh OUT [--dev]"
[ "$(id -u)" = 0 ] || die "needs root (mkosi runs in a chroot; nothing is mounted outside a private mount namespace)"

cache="${VERITEE_IMAGE_CACHE:-$repo/target/image-cache}"
mirror=http://deb.debian.org/debian
mkdir -p "$cache" "$out"
cache="$(cd "$cache" && pwd)"
out="$(cd "$out" && pwd)"
if [ "$variant" = dev ]; then name=veritee-dev-SIMULATED; else name=veritee; fi

# ---- 1. The tools root (Debian trixie: mkosi 25, systemd-repart 257, erofs-utils, QEMU). ----
tools_pkgs="mkosi,systemd-repart,systemd,udev,erofs-utils,cryptsetup-bin,dosfstools,mtools,e2fsprogs,zstd,cpio,kmod,python3,qemu-system-x86,ovmf,binutils,ca-certificates,debian-archive-keyring,sqopv,xz-utils,openssl"
tools="$cache/tools"
if [ ! -x "$tools/usr/bin/mkosi" ] || [ "$(cat "$cache/tools.packages" 2>/dev/null)" != "$tools_pkgs" ]; then
    if ! command -v mmdebstrap >/dev/null; then
        log "installing mmdebstrap (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
    fi
    log "making the tools root $tools (Debian trixie; a few minutes)"
    rm -rf "$tools" "$tools.new"
    mmdebstrap --variant=apt --mode=root --include="$tools_pkgs" \
        --aptopt='Acquire::Retries "3"' trixie "$tools.new" "$mirror" >"$cache/tools.log" 2>&1 \
        || { tail -20 "$cache/tools.log" >&2; die "mmdebstrap failed (log: $cache/tools.log)"; }
    mv "$tools.new" "$tools"
    printf '%s' "$tools_pkgs" >"$cache/tools.packages"
fi
# Run a command inside the tools root, in a private mount namespace.
#   in_tools "BIND_SPECS" CMD...   BIND_SPECS: space-separated host:guest[:ro] pairs
in_tools() {
    local binds="$1"; shift
    unshare --mount --propagation private -- /bin/sh -eu -c '
        t="$1"; binds="$2"; shift 2
        mount --bind "$t" "$t"   # the root must be a mount point for mkosi'"'"'s sandbox
        mount -t proc proc "$t/proc"
        mount --rbind /sys "$t/sys"
        mount --rbind /dev "$t/dev"
        mount -t tmpfs tmpfs "$t/tmp"
        [ -e /etc/resolv.conf ] && mount --bind /etc/resolv.conf "$t/etc/resolv.conf"
        for b in $binds; do
            src="${b%%:*}"; rest="${b#*:}"; dst="${rest%%:*}"; mode="${rest#"$dst"}"
            mkdir -p "$t$dst"
            mount --bind "$src" "$t$dst"
            [ "$mode" = ":ro" ] && mount -o remount,bind,ro "$t$dst"
        done
        exec chroot "$t" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
    ' in_tools "$tools" "$binds" "$@"
}

# ---- 2. The runtime binary. ----
# Markers that only the simulator's code carries (its development chain, its policy writer, its
# fixed launch measurement label) and one that only a build without it carries.
sim_markers=("SIMULATED SEV-SNP (development chain in" "for its own SIMULATED launch" "veritee simulated SEV-SNP launch measurement v1")
nosim_marker="this build has no simulated TEE"
bin_dir="$cache/bin/$variant"
mkdir -p "$bin_dir"
if [ -n "${VERITEE_ENCLAVE_BIN:-}" ]; then
    src_bin="$VERITEE_ENCLAVE_BIN"
else
    if [ "$variant" = dev ]; then feat=(); else feat=(--no-default-features); fi
    log "cargo build --release --locked -p veritee-enclave ${feat[*]:-}(a no-op when up to date)"
    (cd "$repo" && cargo build --release --locked -q -p veritee-enclave "${feat[@]}")
    src_bin="${CARGO_TARGET_DIR:-$repo/target}/release/veritee-enclave"
fi
[ -x "$src_bin" ] || die "no runtime binary at $src_bin"
cp -f "$src_bin" "$bin_dir/veritee-enclave.tmp"
mv -f "$bin_dir/veritee-enclave.tmp" "$bin_dir/veritee-enclave"
bin="$bin_dir/veritee-enclave"
for m in "${sim_markers[@]}"; do
    if grep -qaF "$m" "$bin"; then
        [ "$variant" = dev ] || die "$src_bin contains the simulator (\"$m\"): a release image needs --no-default-features"
    else
        [ "$variant" = release ] || die "$src_bin has no simulator (\"$m\" missing): the dev image needs the default features"
    fi
done
if [ "$variant" = release ]; then
    grep -qaF "$nosim_marker" "$bin" || die "$src_bin lacks \"$nosim_marker\": not a --no-default-features build"
fi

# ---- 3. The model (fetched and checked by scripts/fetch-model.sh). ----
model="$(bash "$repo/scripts/fetch-model.sh" 2>/dev/null)" || die "scripts/fetch-model.sh failed"

# ---- 4. The variant's files, staged for mkosi (ExtraTrees). ----
stage="$cache/stage-$variant"
rm -rf "$stage"
install -D -m 0755 "$bin" "$stage/usr/bin/veritee-enclave"
install -D -m 0644 "$model" "$stage/usr/share/veritee/models/$(basename "$model")"

# ---- 5. mkosi, in the tools root. ----
work="$cache/work-$variant"
rm -rf "$work"
mkdir -p "$work/out" "$cache/packages"
profile=()
[ "$variant" = dev ] && profile=(--profile=dev)
log "mkosi build ($variant) in the tools root"
start=$(date +%s)
if ! in_tools "$repo/images:/src:ro $stage:/stage:ro $work/out:/out $cache/packages:/pkgcache" \
    mkosi -C /src --output-directory=/out --package-cache-dir=/pkgcache \
        --workspace-directory=/var/tmp \
        --cache-only="${VERITEE_IMAGE_CACHE_ONLY:-auto}" \
        --extra-tree=/stage:/ "${profile[@]}" --force build >"$work/mkosi.log" 2>&1; then
    tr '\r' '\n' <"$work/mkosi.log" | tail -40 >&2
    die "mkosi failed (log: $work/mkosi.log)"
fi
log "mkosi done in $(( $(date +%s) - start )) s"

# ---- 6. The root hash, the command line, and a check of the verity tree. ----
disk="$work/out/$name.raw"
[ -f "$disk" ] || { ls -la "$work/out" >&2; die "mkosi produced no $name.raw"; }
# systemd-repart derives the root partition's UUID from the first 128 bits of the root hash
# and the verity partition's from the last 128: read them back from the GPT, extract both
# partitions, and let veritysetup verify the whole tree against that hash.
python3 - "$disk" "$work" <<'PY' >"$work/gpt.txt"
import struct, sys, uuid
disk, work = sys.argv[1], sys.argv[2]
ROOT = uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709")         # root, x86-64
VERITY = uuid.UUID("2c7357ed-ebd2-46d9-aec1-23d437ec2bf5")       # root verity, x86-64
with open(disk, "rb") as f:
    f.seek(512)
    hdr = f.read(92)
    assert hdr[:8] == b"EFI PART", "no GPT"
    entries_lba, count, size = struct.unpack_from("<QII", hdr, 72)
    f.seek(entries_lba * 512)
    table = f.read(count * size)
    found = {}
    for i in range(count):
        e = table[i * size:(i + 1) * size]
        t = uuid.UUID(bytes_le=e[:16])
        if t in (ROOT, VERITY):
            first, last = struct.unpack_from("<QQ", e, 32)
            found[t] = (uuid.UUID(bytes_le=e[16:32]), first * 512, (last - first + 1) * 512)
    assert set(found) == {ROOT, VERITY}, "root and root-verity partitions expected"
    for t, fn in ((ROOT, "root.part"), (VERITY, "verity.part")):
        _, off, length = found[t]
        f.seek(off)
        with open(f"{work}/{fn}", "wb") as o:
            left = length
            while left:
                b = f.read(min(left, 1 << 20)); o.write(b); left -= len(b)
print(found[ROOT][0].hex + found[VERITY][0].hex, found[ROOT][0], found[VERITY][0])
PY
read -r roothash root_uuid verity_uuid <"$work/gpt.txt"
in_tools "$work:/w" veritysetup verify /w/root.part /w/verity.part "$roothash" \
    || die "veritysetup does not verify the root against $roothash"
rm -f "$work/root.part" "$work/verity.part"
cmdline="console=ttyS0 roothash=$roothash systemd.verity_root_data=PARTUUID=$root_uuid systemd.verity_root_hash=PARTUUID=$verity_uuid systemd.verity_root_options=panic-on-corruption root=/dev/mapper/root rootfstype=erofs ro panic=-1 systemd.firstboot=no"
[ "$variant" = dev ] && cmdline="$cmdline veritee.variant=DEVELOPMENT-SIMULATED-TEE"

# ---- 7. The outputs. ----
rm -f "$out/$name".{raw,vmlinuz,initrd,cmdline,roothash,manifest,build.txt} "$out/initrd.manifest" "$out/SHA256SUMS"
mv "$disk" "$out/$name.raw"
mv "$work/out/$name.vmlinuz" "$out/$name.vmlinuz"
mv "$work/out/$name.initrd" "$out/$name.initrd"
mv "$work/out/$name.manifest" "$out/$name.manifest"
[ -f "$work/out/initrd.manifest" ] && mv "$work/out/initrd.manifest" "$out/initrd.manifest"
printf '%s\n' "$cmdline" >"$out/$name.cmdline"
printf '%s\n' "$roothash" >"$out/$name.roothash"
# The image's own sources: the last commit that touched images/ or this script, and whether
# the checkout differs from it there (the runtime is identified by its SHA-256 above).
git_rev="$(git -C "$repo" log -1 --format=%H -- images scripts/build-image.sh 2>/dev/null || echo unknown)"
git_dirty="$(git -C "$repo" status --porcelain -- images scripts/build-image.sh 2>/dev/null | wc -l | tr -d ' ')"
{
    echo "variant: $variant ($name)"
    echo "runtime: veritee-enclave sha256 $(sha256sum "$bin" | cut -d' ' -f1)"
    echo "model: $(basename "$model") sha256 $(sha256sum "$model" | cut -d' ' -f1)"
    echo "image sources: images/ and scripts/build-image.sh at git $git_rev ($git_dirty file(s) there differ from it)"
    echo "tools: $(in_tools "" mkosi --version), $(in_tools "" dpkg-query -W -f '${Package} ${Version}, ' systemd-repart erofs-utils)"
    echo "source_date_epoch: $(sed -n 's/^SourceDateEpoch=//p' "$repo/images/mkosi.conf")"
    echo "seed: $(sed -n 's/^Seed=//p' "$repo/images/mkosi.conf")"
    echo "roothash: $roothash"
} >"$out/$name.build.txt"
(cd "$out" && sha256sum -- "$name".raw "$name".vmlinuz "$name".initrd "$name".cmdline "$name".roothash \
    "$name".manifest $( [ -f initrd.manifest ] && echo initrd.manifest ) "$name".build.txt >SHA256SUMS)
log "built $variant image in $out:"
(cd "$out" && ls -l "$name".* >&2)
