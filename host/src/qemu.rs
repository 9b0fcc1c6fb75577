//! The QEMU command line of a launch, built from a typed [`LaunchPlan`] (no I/O here; the
//! `veritee-host launch` command checks the host and runs it).
//!
//! Every platform boots the image directly: `-bios` firmware, `-kernel`, `-initrd`,
//! `-append`; `-nodefaults` so that the guest gets only the devices listed here:
//!
//! | what | QEMU | why |
//! |---|---|---|
//! | SEV-SNP | `-object sev-snp-guest,...,kernel-hashes=on,policy=...,host-data=<base64>`, `-machine confidential-guest-support=sev0,memory-backend=ram0`, a `memory-backend-memfd`, `-cpu <vCPU type>` | kernel, initrd and command line are measured through the hashes table; HOST_DATA is the launch configuration digest; the CPU model is the one the measurement assumes |
//! | TDX | `-object {"qom-type":"tdx-guest",...,"mrconfigid":<base64>,"quote-generation-socket":...}`, `-machine confidential-guest-support=tdx0,kernel-irqchip=split`, `-cpu host` | MRCONFIGID is the launch configuration digest; quotes come from the host's QGS over vsock |
//! | none | `-machine accel=tcg`, `-cpu max` | no confidentiality: tests and development only |
//! | launch configuration | `-fw_cfg name=opt/veritee/launch-config,file=...` | one small file the guest reads at boot (`/sys/firmware/qemu_fw_cfg/by_name/opt/veritee/launch-config/raw`), fixed for the life of the VM |
//! | collateral | `-fsdev local,...,readonly=on` + `virtio-9p-pci,mount_tag=veritee-collateral` | a directory of certificates, CRLs and TCB collateral the host refreshes; read-only, untrusted (every verifier checks it) |
//! | root disk | `-drive ...,readonly=on`, `virtio-blk-pci,serial=veritee-root` | the image's dm-verity root, pinned by the root hash in the measured command line |
//! | state disk | `virtio-blk-pci,serial=veritee-state` | the receipt log survives a restart |
//! | GPUs | a `pcie-root-port` and `vfio-pci,host=...` each, `opt/ovmf/X-PciMmio64Mb` | passthrough with room for the GPUs' 64-bit BARs |
//! | network | `-netdev user,hostfwd=tcp:ADDR-:8443`, `virtio-net-pci` | the runtime's TLS port |
//!
//! In a confidential guest every virtio device is modern-only with
//! `iommu_platform=on`: Linux refuses virtio devices without `VIRTIO_F_ACCESS_PLATFORM` in
//! an SEV-SNP or TDX guest, because their buffers must go through shared (unencrypted)
//! memory.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;

use crate::measure::Sha384Digest;

/// How the guest is launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// AMD SEV-SNP under KVM.
    Snp,
    /// Intel TDX under KVM.
    Tdx,
    /// No confidentiality, QEMU's TCG emulator (tests and development).
    None,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Snp => "snp",
            Platform::Tdx => "tdx",
            Platform::None => "none",
        })
    }
}

/// A QEMU release, `major.minor.micro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QemuVersion(pub u32, pub u32, pub u32);

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl QemuVersion {
    /// The version in `qemu-system-x86_64 --version` output (`QEMU emulator version 9.2.0
    /// (Debian 1:9.2+ds-1)`).
    pub fn parse(output: &str) -> Option<Self> {
        let rest = output.split("QEMU emulator version ").nth(1)?;
        let word = rest.split_whitespace().next()?;
        let mut parts = word.split('.').map(|p| {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u32>().ok()
        });
        let major = parts.next()??;
        let minor = parts.next().flatten().unwrap_or(0);
        let micro = parts.next().flatten().unwrap_or(0);
        Some(QemuVersion(major, minor, micro))
    }

    /// The oldest QEMU with what `platform` needs: `sev-snp-guest` with `kernel-hashes`
    /// and `host-data` (9.1), `tdx-guest` with `mrconfigid` and the quote socket (10.1),
    /// q35 with `-bios` and virtio-9p under TCG (7.2, Debian bookworm).
    pub fn minimum(platform: Platform) -> Self {
        match platform {
            Platform::Snp => QemuVersion(9, 1, 0),
            Platform::Tdx => QemuVersion(10, 1, 0),
            Platform::None => QemuVersion(7, 2, 0),
        }
    }
}

/// The guest policy QEMU passes to `SNP_LAUNCH_START` by default: SMT allowed (bit 16),
/// the reserved bit 17 set, no debugging (bit 19), no migration agent (bit 18). The client
/// policy forbids debug and migration agents, so a launch must not set them.
pub const SNP_GUEST_POLICY: u64 = 0x30000;

/// SEV-SNP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpLaunch {
    /// QEMU CPU model, the one the launch digest was computed for (`EPYC-v4`, ...).
    pub cpu_model: String,
    /// The C-bit position (must equal the host's, CPUID 0x8000001F EBX[5:0]).
    pub cbitpos: u32,
    /// Physical address bits lost to memory encryption (QEMU checks 1..=63).
    pub reduced_phys_bits: u32,
    /// Guest policy ([`SNP_GUEST_POLICY`]).
    pub policy: u64,
    /// `HOST_DATA` (the launch configuration digest).
    pub host_data: [u8; 32],
}

/// TDX settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxLaunch {
    /// `MRCONFIGID` (the launch configuration digest, zero-padded).
    pub mr_config_id: Sha384Digest,
    /// The host's Quote Generation Service on vsock (`cid`, `port`), or none.
    pub quote_socket: Option<(u32, u32)>,
}

/// Raw or qcow2: named explicitly so QEMU never probes the format of a file the guest writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    /// qcow2 by its magic (`QFI\xfb`), raw otherwise.
    pub fn detect(first_bytes: &[u8]) -> Self {
        if first_bytes.starts_with(b"QFI\xfb") {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        }
    }

    fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// The 9p mount tag of the collateral directory in the guest.
pub const COLLATERAL_MOUNT_TAG: &str = "veritee-collateral";
/// The fw_cfg name of the launch configuration.
pub const LAUNCH_CONFIG_FW_CFG: &str = "opt/veritee/launch-config";
/// The serial number of the image's root disk.
pub const ROOT_DISK_SERIAL: &str = "veritee-root";
/// The serial number of the state disk (`/dev/disk/by-id/virtio-veritee-state`).
pub const STATE_DISK_SERIAL: &str = "veritee-state";
/// The guest port the runtime serves TLS on.
pub const GUEST_TLS_PORT: u16 = 8443;
/// OVMF's 64-bit PCI MMIO window for GPU passthrough (MiB): 256 GiB, room for the BARs of
/// several 80 GB GPUs.
pub const GPU_MMIO64_MB: u64 = 262_144;

/// Everything a launch needs, already checked and resolved to absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    pub platform: Platform,
    /// The QEMU binary.
    pub qemu: PathBuf,
    pub firmware: PathBuf,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// The kernel command line (`-append`), exactly as measured.
    pub cmdline: Option<String>,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Set exactly when `platform` is [`Platform::Snp`].
    pub snp: Option<SnpLaunch>,
    /// Set exactly when `platform` is [`Platform::Tdx`].
    pub tdx: Option<TdxLaunch>,
    /// The launch configuration file handed to the guest (none: the runtime gets none).
    pub launch_config: Option<PathBuf>,
    /// PCI addresses (`0000:41:00.0`) of GPUs passed through with VFIO.
    pub gpus: Vec<String>,
    /// The image's read-only root disk (raw), pinned by the command line's root hash.
    pub root_disk: Option<PathBuf>,
    pub state_disk: Option<(PathBuf, DiskFormat)>,
    pub collateral_dir: Option<PathBuf>,
    /// Host address forwarded to the guest's TLS port.
    pub listen: Option<SocketAddr>,
}

/// A value inside a QEMU option list (`key=value,...`): commas are doubled.
fn opt(value: &str) -> String {
    value.replace(',', ",,")
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl LaunchPlan {
    /// The argument vector, program first.
    pub fn argv(&self) -> Vec<String> {
        let confidential = self.platform != Platform::None;
        // Modern-only virtio behind the platform's DMA API in a confidential guest.
        let virtio = |device: String| -> String {
            if confidential {
                format!("{device},disable-legacy=on,iommu_platform=on")
            } else {
                device
            }
        };
        let mut a: Vec<String> = vec![path(&self.qemu)];
        let mut push = |args: &[&str]| a.extend(args.iter().map(|s| s.to_string()));
        push(&["-name", "veritee"]);
        push(&["-nodefaults", "-no-user-config"]);
        push(&["-display", "none", "-serial", "stdio", "-monitor", "none"]);

        let memory = format!("{}M", self.memory_mib);
        match (&self.platform, &self.snp, &self.tdx) {
            (Platform::Snp, Some(snp), _) => {
                push(&[
                    "-machine",
                    "q35,accel=kvm,confidential-guest-support=sev0,memory-backend=ram0",
                ]);
                push(&[
                    "-object",
                    &format!(
                        "memory-backend-memfd,id=ram0,size={memory},share=true,prealloc=false"
                    ),
                ]);
                push(&[
                    "-object",
                    &format!(
                        "sev-snp-guest,id=sev0,cbitpos={},reduced-phys-bits={},kernel-hashes=on,policy={:#x},host-data={}",
                        snp.cbitpos,
                        snp.reduced_phys_bits,
                        snp.policy,
                        b64(&snp.host_data)
                    ),
                ]);
                push(&["-cpu", &snp.cpu_model]);
            }
            (Platform::Tdx, _, Some(tdx)) => {
                push(&[
                    "-machine",
                    "q35,accel=kvm,kernel-irqchip=split,hpet=off,confidential-guest-support=tdx0",
                ]);
                let mut object = serde_json::json!({
                    "qom-type": "tdx-guest",
                    "id": "tdx0",
                    "sept-ve-disable": true,
                    "mrconfigid": b64(&tdx.mr_config_id),
                });
                if let Some((cid, port)) = tdx.quote_socket {
                    object["quote-generation-socket"] = serde_json::json!({
                        "type": "vsock",
                        "cid": cid.to_string(),
                        "port": port.to_string(),
                    });
                }
                push(&["-object", &object.to_string()]);
                push(&["-cpu", "host"]);
            }
            _ => {
                push(&["-machine", "q35,accel=tcg"]);
                push(&["-cpu", "max"]);
            }
        }
        push(&["-smp", &self.vcpus.to_string(), "-m", &memory]);
        push(&["-bios", &path(&self.firmware)]);
        push(&["-kernel", &path(&self.kernel)]);
        if let Some(initrd) = &self.initrd {
            push(&["-initrd", &path(initrd)]);
        }
        if let Some(cmdline) = &self.cmdline {
            push(&["-append", cmdline]);
        }

        if let Some(config) = &self.launch_config {
            push(&[
                "-fw_cfg",
                &format!("name={LAUNCH_CONFIG_FW_CFG},file={}", opt(&path(config))),
            ]);
        }
        if let Some(dir) = &self.collateral_dir {
            push(&[
                "-fsdev",
                &format!(
                    "local,id=collateral,path={},security_model=none,readonly=on",
                    opt(&path(dir))
                ),
            ]);
            push(&[
                "-device",
                &virtio(format!(
                    "virtio-9p-pci,fsdev=collateral,mount_tag={COLLATERAL_MOUNT_TAG}"
                )),
            ]);
        }
        if let Some(root) = &self.root_disk {
            push(&[
                "-drive",
                &format!(
                    "file={},if=none,id=root,format=raw,readonly=on",
                    opt(&path(root))
                ),
            ]);
            push(&[
                "-device",
                &virtio(format!(
                    "virtio-blk-pci,drive=root,serial={ROOT_DISK_SERIAL}"
                )),
            ]);
        }
        if let Some((disk, format)) = &self.state_disk {
            push(&[
                "-drive",
                &format!(
                    "file={},if=none,id=state,format={},cache=none",
                    opt(&path(disk)),
                    format.name()
                ),
            ]);
            push(&[
                "-device",
                &virtio(format!(
                    "virtio-blk-pci,drive=state,serial={STATE_DISK_SERIAL}"
                )),
            ]);
        }
        if let Some(listen) = &self.listen {
            push(&[
                "-netdev",
                &format!("user,id=net0,hostfwd=tcp:{listen}-:{GUEST_TLS_PORT}"),
            ]);
            push(&[
                "-device",
                &virtio("virtio-net-pci,netdev=net0,romfile=".to_string()),
            ]);
        }
        for (i, gpu) in self.gpus.iter().enumerate() {
            push(&[
                "-device",
                &format!("pcie-root-port,id=gpu-port{i},bus=pcie.0,chassis={}", i + 1),
            ]);
            push(&["-device", &format!("vfio-pci,host={gpu},bus=gpu-port{i}")]);
        }
        if !self.gpus.is_empty() {
            push(&[
                "-fw_cfg",
                &format!("name=opt/ovmf/X-PciMmio64Mb,string={GPU_MMIO64_MB}"),
            ]);
        }
        a
    }
}

/// A PCI address as sysfs names it (`0000:41:00.0`), from that form or without the
/// domain (`41:00.0`); `None` when it is not one.
pub fn normalize_pci_address(addr: &str) -> Option<String> {
    let lower = addr.trim().to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(':').collect();
    let (domain, bus, devfn) = match parts[..] {
        [bus, devfn] => ("0000", bus, devfn),
        [domain, bus, devfn] => (domain, bus, devfn),
        _ => return None,
    };
    let (dev, func) = devfn.split_once('.')?;
    let hex = |s: &str, len: usize| s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit());
    if !(hex(domain, 4) && hex(bus, 2) && hex(dev, 2) && func.len() == 1) {
        return None;
    }
    let dev_n = u8::from_str_radix(dev, 16).ok()?;
    let func_n = func.parse::<u8>().ok()?;
    if dev_n > 0x1f || func_n > 7 {
        return None;
    }
    Some(format!("{domain}:{bus}:{dev}.{func}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = |s| QemuVersion::parse(s);
        assert_eq!(
            v("QEMU emulator version 9.2.0 (Debian 1:9.2+ds-1)\nCopyright"),
            Some(QemuVersion(9, 2, 0))
        );
        assert_eq!(
            v("QEMU emulator version 10.1.50 (v10.1.0-123-gdeadbeef)"),
            Some(QemuVersion(10, 1, 50))
        );
        assert_eq!(
            v("QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)"),
            Some(QemuVersion(8, 2, 2))
        );
        assert_eq!(v("QEMU emulator version 9.1"), Some(QemuVersion(9, 1, 0)));
        assert_eq!(v("qemu 9.1.0"), None);
        assert!(QemuVersion(9, 0, 2) < QemuVersion::minimum(Platform::Snp));
        assert!(QemuVersion(10, 1, 0) >= QemuVersion::minimum(Platform::Tdx));
    }

    #[test]
    fn pci_addresses() {
        assert_eq!(
            normalize_pci_address("41:00.0").as_deref(),
            Some("0000:41:00.0")
        );
        assert_eq!(
            normalize_pci_address("0000:C1:1F.7").as_deref(),
            Some("0000:c1:1f.7")
        );
        for bad in ["41:00", "41:20.0", "41:00.8", "x:41:00.0", "041:00.0", ""] {
            assert_eq!(normalize_pci_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn option_values_escape_commas() {
        let plan = LaunchPlan {
            platform: Platform::None,
            qemu: "qemu".into(),
            firmware: "/a/OVMF.fd".into(),
            kernel: "/a/vmlinuz".into(),
            initrd: Some("/a/initrd".into()),
            cmdline: Some("console=ttyS0,115200".into()),
            vcpus: 1,
            memory_mib: 512,
            snp: None,
            tdx: None,
            launch_config: Some("/a/b,c.toml".into()),
            root_disk: None,
            gpus: vec![],
            state_disk: None,
            collateral_dir: None,
            listen: None,
        };
        let argv = plan.argv();
        assert!(argv.contains(&"name=opt/veritee/launch-config,file=/a/b,,c.toml".to_string()));
        // -append is not an option list: its commas stay as they are.
        assert!(argv.contains(&"console=ttyS0,115200".to_string()));
    }
}
