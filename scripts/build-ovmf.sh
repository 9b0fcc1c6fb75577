#!/usr/bin/env bash
# Builds OVMF's AmdSev firmware (OvmfPkg/AmdSev/AmdSevX64.dsc), the build whose SEV metadata has
# the kernel-hashes page that SEV-SNP measured direct boot needs (QEMU -kernel/-initrd/-append
# with sev-snp-guest,kernel-hashes=on), from Debian trixie's edk2 source package, reproducibly.
# Debian ships no such build (its ovmf package has OVMF.fd and OVMF_CODE_4M*.fd only).
#
#   scripts/build-ovmf.sh OUT
#
# OUT receives:
#   OVMF.amdsev.fd            the firmware (4 MiB; X64, RELEASE, GCC5)
#   OVMF.amdsev.build.txt     inputs: edk2 source package version and tarball SHA-256, toolchain
#                             versions, SOURCE_DATE_EPOCH, build flags, the firmware's SHA-256
# The firmware's SHA-256 must equal PINNED_SHA256 below (else exit 1: either Debian's source or
# toolchain moved, see the versions printed, or the build is not reproducible).
#
# How: mmdebstrap (from the host's Debian; apt-get installs it when missing) makes a Debian
# trixie build root with edk2's build dependencies and deb-src; the build runs in it (unshare +
# chroot, as scripts/build-image.sh runs its tools). The edk2 source package is fetched with
# apt-get source inside the root (its tarballs checked against the root's signed Sources index)
# and unpacked with dpkg-source -x, which applies Debian's patches. BaseTools and the AmdSev
# platform are then built as debian/rules builds its OVMF images: toolchain GCC5, BUILD_TYPE
# RELEASE, Debian's PCDs (vendor, version string = the package version, release date from the
# changelog) and its non-secure-boot OVMF -D flags (CC_MEASUREMENT, network, TPM2), with
# SOURCE_DATE_EPOCH = the changelog's date, build path /build/edk2, TZ=UTC, PYTHONHASHSEED=0.
# RELEASE builds zero the PE/COFF timestamps (GenFw --zero) and carry no debug paths.
#
# The AmdSev platform packs a grub EFI application (OvmfPkg/AmdSev/Grub/grub.sh, for booting a
# LUKS disk with an injected SEV secret); it needs the grub modules `linuxefi` and `sevsecret`,
# which Debian's grub (2.12) does not have, so grub.sh cannot run here. As Kata Containers' OVMF
# build does, grub.efi is an empty placeholder: a direct boot never runs it (the kernel comes
# from QEMU's fw_cfg and is checked against the hashes table), and without -kernel this
# firmware has no grub to fall back to. The .fd also records Debian's vendor, version and
# release date strings (PcdFirmwareVendor, ...), no build time and no build path; two builds
# in different cache directories give the same bytes.
#
# Cache: ${VERITEE_IMAGE_CACHE:-<repo>/target/image-cache}/
#   ovmf-root/         the build root (made once, 1-4 minutes, ~730 MB; remade when the
#                      package list below changes); its apt lists are those of its creation, so
#                      the source version and toolchain stay put until it is remade
#   ovmf-src/          the downloaded source package (~30 MB)
#   ovmf-build/        the build directory, removed and unpacked afresh on every run (~700 MB)
#   ovmf-root.log, ovmf-build.log
# Time (2-core AMD EPYC, shared): the build root 1-4 minutes once; each build (unpack, BaseTools,
# the platform) 8-11 minutes.
#
# Environment:
#   VERITEE_IMAGE_CACHE    cache directory (default: <repo>/target/image-cache)
#   VERITEE_OVMF_UNPINNED  1: print the firmware's SHA-256 instead of checking it against
#                          PINNED_SHA256 (to pin a new source version)
#   VERITEE_OVMF_JOBS      build threads (default: nproc)
set -euo pipefail

# SHA-256 of OVMF.amdsev.fd from Debian trixie's edk2 2025.02-8+deb13u1 with the root's toolchain
# (gcc-14 14.2.0-19, binutils 2.44-3, nasm 2.16.03-1, acpica-tools 20250404-1, python3.13
# 3.13.5-2+deb13u5), the same from two builds in separate caches (2026-12-05).
PINNED_SHA256=026895d1f2fdc95123c3f81e38a8394ed3e8b06e86f0d9f28bf9e6407a26abdc

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "build-ovmf: error: $*" >&2; exit 1; }
log() { echo "build-ovmf: $*" >&2; }

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    ""|-*) die "usage: scripts/build-ovmf.sh OUT" ;;
esac
[ $# = 1 ] || die "usage: scripts/build-ovmf.sh OUT"
[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, and the build runs in a chroot in a private mount namespace)"

cache="${VERITEE_IMAGE_CACHE:-$repo/target/image-cache}"
mirror=http://deb.debian.org/debian
mkdir -p "$cache" "$1"
cache="$(cd "$cache" && pwd)"
out="$(cd "$1" && pwd)"
jobs="${VERITEE_OVMF_JOBS:-$(nproc)}"

# ---- 1. The build root (Debian trixie, with deb-src). ----
# edk2's Build-Depends that an X64 OVMF build uses (the cross compilers, QEMU and the test
# tools are for other targets and the autopkgtests): make/gcc, uuid-dev, nasm, iasl
# (acpica-tools), python3; dpkg-dev for dpkg-source and dpkg-parsechangelog.
root_pkgs="build-essential,dpkg-dev,uuid-dev,nasm,acpica-tools,python3,python-is-python3,ca-certificates,debian-archive-keyring,xz-utils"
root="$cache/ovmf-root"
# Run a command inside the build root, in a private mount namespace.
#   in_root "BIND_SPECS" CMD...   BIND_SPECS: space-separated host:guest[:ro] pairs
in_root() {
    local binds="$1"; shift
    # shellcheck disable=SC2016  # expanded by the inner shell
    unshare --mount --propagation private -- /bin/sh -eu -c '
        t="$1"; binds="$2"; shift 2
        mount --bind "$t" "$t"
        mount -t proc proc "$t/proc"
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
    ' in_root "$root" "$binds" "$@"
}
if [ ! -x "$root/usr/bin/nasm" ] || [ "$(cat "$cache/ovmf-root.packages" 2>/dev/null)" != "$root_pkgs" ]; then
    if ! command -v mmdebstrap >/dev/null; then
        log "installing mmdebstrap (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
    fi
    log "making the build root $root (Debian trixie; a minute or two)"
    rm -rf "$root" "$root.new" "$cache/ovmf-src"
    mmdebstrap --variant=apt --mode=root --include="$root_pkgs" \
        --aptopt='Acquire::Retries "3"' trixie "$root.new" \
        "deb $mirror trixie main" "deb-src $mirror trixie main" >"$cache/ovmf-root.log" 2>&1 \
        || { tail -20 "$cache/ovmf-root.log" >&2; die "mmdebstrap failed (log: $cache/ovmf-root.log)"; }
    # mmdebstrap empties the apt lists; fetch them once, so the root names one source version.
    root_final="$root"; root="$root.new"
    in_root "" apt-get update -qq >>"$cache/ovmf-root.log" 2>&1 \
        || { tail -20 "$cache/ovmf-root.log" >&2; die "apt-get update in the build root failed"; }
    root="$root_final"
    mv "$root.new" "$root"
    printf '%s' "$root_pkgs" >"$cache/ovmf-root.packages"
fi

# ---- 2. The edk2 source package (Debian's patches applied by dpkg-source -x). ----
src="$cache/ovmf-src"
mkdir -p "$src"
# Prints the version, and writes edk2_VERSION.dsc when the archive's .dsc could not be fetched
# (some mirrors and proxies serve the tarballs only): the Sources stanza carries every .dsc field
# dpkg-source needs, and the tarball checksums come from the root's signed index either way.
# shellcheck disable=SC2016  # expanded in the root's shell
fetch_src='
    set -eu
    cd /src
    stanza="$(apt-cache showsrc --only-source edk2 | awk "BEGIN{RS=\"\"} {print; exit}")"
    v="$(printf "%s\n" "$stanza" | sed -n "s/^Version: //p")"
    [ -n "$v" ] || { echo "no edk2 source package in the root'"'"'s apt lists" >&2; exit 1; }
    upstream="${v%-*}"
    orig="edk2_${upstream}.orig.tar.xz"; deb="edk2_${v}.debian.tar.xz"; dsc="edk2_${v}.dsc"
    if [ ! -s "$orig" ] || [ ! -s "$deb" ]; then
        apt-get source --download-only -qq "edk2=$v" >/src/fetch.log 2>&1 || true
    fi
    for f in "$orig" "$deb"; do
        want="$(printf "%s\n" "$stanza" | awk -v f="$f" "/^Checksums-Sha256:/{s=1; next} /^[^ ]/{s=0} s && \$3==f {print \$1}")"
        [ -s "$f" ] || { cat /src/fetch.log >&2; echo "could not fetch $f" >&2; exit 1; }
        [ -n "$want" ] && echo "$want  $f" | sha256sum -c --quiet - >&2 \
            || { echo "$f does not match the Sources index" >&2; exit 1; }
    done
    if [ -s "$dsc" ]; then
        want="$(printf "%s\n" "$stanza" | awk -v f="$dsc" "/^Checksums-Sha256:/{s=1; next} /^[^ ]/{s=0} s && \$3==f {print \$1}")"
        echo "$want  $dsc" | sha256sum -c --quiet - >/dev/null 2>&1 || rm -f "$dsc"
    fi
    if [ ! -s "$dsc" ]; then
        printf "%s\n" "$stanza" | awk "
            /^[A-Za-z0-9-]+:/ { f = \$1 }
            f == \"Package:\" { print \"Source:\" substr(\$0, 9); next }
            f == \"Directory:\" || f == \"Priority:\" || f == \"Section:\" { next }
            /^ / && /\\.dsc\$/ { next }
            { print }" >"$dsc"
    fi
    echo "$v"
'
edk2_version="$(in_root "$src:/src" sh -c "$fetch_src")" || die "fetching the edk2 source package failed"
log "edk2 source package $edk2_version"

# ---- 3. The build, in a fresh directory at a fixed path (/build/edk2). ----
build="$cache/ovmf-build"
rm -rf "$build"
mkdir -p "$build"
# Debian's flags (debian/rules, OVMF_4M_NO_SECBOOT_FLAGS; the AmdSev platform is 4 MiB and has
# no secure boot or SMM). The PCD strings are passed as debian/rules' shell passes them (the
# quotes are the shell's; edk2 puts them back around an L-prefixed value).
# shellcheck disable=SC2016  # expanded in the root's shell
build_cmd='
    set -eu
    cd /build
    dpkg-source -x /src/edk2_'"$edk2_version"'.dsc edk2 >/build/dpkg-source.log 2>&1 \
        || { cat /build/dpkg-source.log >&2; exit 1; }
    rm -f /build/edk2_*.tar.*
    cd edk2
    SOURCE_DATE_EPOCH="$(dpkg-parsechangelog -STimestamp)"
    export SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C.UTF-8 PYTHONHASHSEED=0 PYTHON3_ENABLE=TRUE
    release_date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%m/%d/%Y)"
    version="$(dpkg-parsechangelog -SVersion)"
    flags=(-DCC_MEASUREMENT_ENABLE=TRUE -DNETWORK_HTTP_BOOT_ENABLE=TRUE -DNETWORK_IP6_ENABLE=TRUE \
        -DNETWORK_TLS_ENABLE \
        --pcd "PcdFirmwareVendor=LDebian distribution of EDK II\\0" \
        --pcd "PcdFirmwareVersionString=L$version\\0" \
        --pcd "PcdFirmwareReleaseDateString=L$release_date\\0" \
        -DTPM2_ENABLE=TRUE --pcd PcdUninstallMemAttrProtocol=TRUE)
    echo "source_date_epoch: $SOURCE_DATE_EPOCH" >/build/flags.txt
    echo "build: build -a X64 -t GCC5 -p OvmfPkg/AmdSev/AmdSevX64.dsc -b RELEASE -n JOBS ${flags[*]}" >>/build/flags.txt
    # The platform'"'"'s PREBUILD (grub.sh) keeps a grub.efi newer than grub.cfg and grub.sh.
    : >OvmfPkg/AmdSev/Grub/grub.efi
    touch -d "@$(( $(date +%s) + 60 ))" OvmfPkg/AmdSev/Grub/grub.efi
    unset WORKSPACE EDK_TOOLS_PATH CONF_PATH
    set +u   # edksetup.sh reads unset variables
    . ./edksetup.sh >/dev/null
    make -C BaseTools ARCH=X64 -j"$JOBS"
    . ./edksetup.sh >/dev/null
    build -a X64 -t GCC5 -p OvmfPkg/AmdSev/AmdSevX64.dsc -b RELEASE -n "$JOBS" "${flags[@]}"
    cp Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd /build/OVMF.amdsev.fd
'
log "building BaseTools and OvmfPkg/AmdSev/AmdSevX64.dsc in the build root ($jobs threads; 8-11 minutes on 2 cores)"
start=$(date +%s)
if ! in_root "$src:/src:ro $build:/build" /bin/bash -c "JOBS=$jobs; $build_cmd" >"$cache/ovmf-build.log" 2>&1; then
    tail -40 "$cache/ovmf-build.log" >&2
    die "the edk2 build failed (log: $cache/ovmf-build.log)"
fi
log "built in $(( $(date +%s) - start )) s"

# ---- 4. The outputs, and the pinned hash. ----
fd="$out/OVMF.amdsev.fd"
cp -f "$build/OVMF.amdsev.fd" "$fd.tmp"
mv -f "$fd.tmp" "$fd"
sha="$(sha256sum "$fd" | cut -d' ' -f1)"
# shellcheck disable=SC2016  # dpkg-query's format
toolchain="$(in_root "" dpkg-query -W -f '${Package} ${Version}, ' gcc-14 binutils nasm acpica-tools python3.13 uuid-dev make dpkg-dev | sed 's/, $//')"
{
    echo "firmware: OVMF.amdsev.fd (OvmfPkg/AmdSev/AmdSevX64.dsc, X64, RELEASE, GCC5, empty grub.efi placeholder)"
    echo "source: Debian trixie edk2 $edk2_version"
    (cd "$src" && sha256sum "edk2_${edk2_version%-*}.orig.tar.xz" "edk2_$edk2_version.debian.tar.xz") | sed 's/^/source sha256: /'
    echo "toolchain: $toolchain"
    cat "$build/flags.txt"
    echo "build path: /build/edk2 (in the build root), TZ=UTC, PYTHONHASHSEED=0"
    echo "size: $(stat -c %s "$fd")"
    echo "sha256: $sha"
} >"$out/OVMF.amdsev.build.txt"
log "wrote $fd ($(stat -c %s "$fd") bytes) and $out/OVMF.amdsev.build.txt"
echo "$sha  OVMF.amdsev.fd"
if [ "${VERITEE_OVMF_UNPINNED:-0}" = 1 ]; then
    log "VERITEE_OVMF_UNPINNED=1: not checked against the pinned SHA-256 ($PINNED_SHA256)"
elif [ "$sha" != "$PINNED_SHA256" ]; then
    {
        echo "build-ovmf: error: OVMF.amdsev.fd has SHA-256 $sha, the pinned value is $PINNED_SHA256."
        echo "  Either Debian's edk2 source or the toolchain moved (this build: edk2 $edk2_version;"
        echo "  $toolchain; the pin was made with edk2 2025.02-8+deb13u1, gcc-14 14.2.0-19,"
        echo "  binutils 2.44-3, nasm 2.16.03-1, acpica-tools 20250404-1, python3.13 3.13.5-2+deb13u5),"
        echo "  or the build is not reproducible. Compare with $out/OVMF.amdsev.build.txt; to pin"
        echo "  a new version, build twice in separate caches (VERITEE_IMAGE_CACHE) with"
        echo "  VERITEE_OVMF_UNPINNED=1 and set PINNED_SHA256 when both give the same hash."
    } >&2
    exit 1
fi
