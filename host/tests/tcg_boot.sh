#!/usr/bin/env bash
# A real boot of `veritee-host launch --platform none` under QEMU's TCG emulator, checked
# from inside the guest: the launch configuration arrives over fw_cfg byte for byte (its
# SHA-256 in the guest equals the launch_config_digest the host printed), the collateral
# directory mounts over virtio-9p and is read-only, the state disk carries its serial, the
# command line is the image's; then the same devices again with the confidential
# platforms' virtio flags (disable-legacy=on,iommu_platform=on).
#
# Not part of `cargo test`: it needs Debian packages (qemu-system-x86, busybox-static,
# cpio) and downloads Debian's kernel package with apt-get. Run it by hand on a
# Debian host:  bash host/tests/tcg_boot.sh   (KEEP=1 keeps its work directory)
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in qemu-system-x86_64 busybox cpio apt-get dpkg-deb python3; do
    command -v "$tool" >/dev/null || {
        echo "tcg_boot: $tool not found (apt-get install qemu-system-x86 busybox-static cpio)" >&2
        exit 2
    }
done
cargo build -q -p veritee-host
bin=target/debug/veritee-host
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# Debian's generic kernel (its 9p, fw_cfg and virtio-blk modules go into the initrd).
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
(cd "$work" && apt-get download -qq "$kpkg" 2>/dev/null && dpkg-deb -x "$kpkg"_*.deb kernel)
kver=$(ls "$work/kernel/lib/modules")

root="$work/initrd"
mkdir -p "$root"/{bin,mods,proc,sys,dev,mnt}
cp "$(command -v busybox)" "$root/bin/busybox"
for a in sh mount insmod cat ls poweroff sleep mkdir sha256sum; do ln -s busybox "$root/bin/$a"; done
# The modules the guest needs and their dependencies (each module's modinfo "depends="),
# in load order. Debian's kernel package ships no modules.dep (depmod makes it on install).
python3 - "$work/kernel/lib/modules/$kver" "$root/mods" <<'PY'
import lzma, os, re, sys
base, out = sys.argv[1], sys.argv[2]
paths = {}
for d, _, files in os.walk(base):
    for f in files:
        if ".ko" in f:
            paths[f.split(".ko")[0].replace("-", "_")] = os.path.join(d, f)
def load(name):
    p = paths[name]
    return lzma.open(p).read() if p.endswith(".xz") else open(p, "rb").read()
order = []
def visit(name):
    if name in order or name not in paths:  # not a module: built into this kernel
        return
    m = re.search(rb"\0depends=([^\0]*)\0", load(name))
    for dep in (m.group(1).decode().split(",") if m and m.group(1) else []):
        visit(dep.replace("-", "_"))
    order.append(name)
for name in ["virtio_pci", "virtio_blk", "9pnet_virtio", "9p", "qemu_fw_cfg"]:
    visit(name)
with open(os.path.join(out, "order"), "w") as f:
    for name in order:
        open(os.path.join(out, name + ".ko"), "wb").write(load(name))
        f.write(name + "\n")
PY
cat >"$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m.ko || echo "GUEST: insmod $m failed"; done
sleep 1
echo "GUEST: cmdline: $(cat /proc/cmdline)"
echo "GUEST: launch-config sha256: $(sha256sum /sys/firmware/qemu_fw_cfg/by_name/opt/veritee/launch-config/raw | cut -d' ' -f1)"
mkdir -p /mnt/collateral
mount -t 9p -o trans=virtio,version=9p2000.L,ro veritee-collateral /mnt/collateral && echo "GUEST: collateral: $(ls /mnt/collateral)"
(echo x >/mnt/collateral/w) 2>/dev/null && echo "GUEST: collateral writable" || echo "GUEST: collateral read-only"
echo "GUEST: state disk serial: $(cat /sys/block/vda/serial)"
poweroff -f
EOF
chmod +x "$root/init"

image="$work/image"
mkdir -p "$image" "$work/collateral"
cp "$work/kernel/boot/vmlinuz-$kver" "$image/vmlinuz"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip) >"$image/initrd"
echo "console=ttyS0 panic=-1 quiet" >"$image/cmdline"
cp testdata/vectors/measure/debian-ovmf-2022.11-ovmfx64/OVMF.fd "$image/OVMF.fd"
echo "not a certificate" >"$work/collateral/vcek.pem"
truncate -s 16M "$work/state.img"
printf 'model_digest = "%s"\n' "$(printf 'cd%.0s' $(seq 32))" >"$work/launch.toml"
args=(launch --platform none --image "$image" --launch-config "$work/launch.toml"
    --collateral-dir "$work/collateral" --state-disk "$work/state.img" --memory 1G --vcpus 2
    --listen none)

check() {
    local log=$1
    local want
    want=$(sha256sum "$work/launch.toml" | cut -d' ' -f1)
    grep -q "GUEST: launch-config sha256: $want" "$log" || { echo "tcg_boot: launch config not delivered byte for byte" >&2; cat "$log" >&2; exit 1; }
    grep -q "GUEST: cmdline: console=ttyS0 panic=-1 quiet" "$log" || { echo "tcg_boot: command line" >&2; exit 1; }
    grep -q "GUEST: collateral: vcek.pem" "$log" || { echo "tcg_boot: collateral not mounted" >&2; grep GUEST "$log" >&2; exit 1; }
    grep -q "GUEST: collateral read-only" "$log" || { echo "tcg_boot: collateral writable" >&2; exit 1; }
    grep -q "GUEST: state disk serial: veritee-state" "$log" || { echo "tcg_boot: state disk" >&2; exit 1; }
}

timeout 600 "$bin" "${args[@]}" >"$work/boot.log" 2>&1
grep -q "expected launch_config_digest: $(sha256sum "$work/launch.toml" | cut -d' ' -f1)" "$work/boot.log"
check "$work/boot.log"
echo "tcg_boot: veritee-host launch --platform none booted; the guest saw everything it was handed"

# The same devices with the confidential platforms' virtio flags.
"$bin" "${args[@]}" --dry-run --json >"$work/plan.json"
python3 - "$work/plan.json" "$work/cc.log" <<'EOF'
import json, subprocess, sys
argv = json.load(open(sys.argv[1]))["argv"]
argv = [a + ",disable-legacy=on,iommu_platform=on" if a.startswith(("virtio-9p-pci", "virtio-blk-pci", "virtio-net-pci")) else a for a in argv]
out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
open(sys.argv[2], "w").write(out.stdout + out.stderr)
EOF
check "$work/cc.log"
echo "tcg_boot: the same with disable-legacy=on,iommu_platform=on on every virtio device"
