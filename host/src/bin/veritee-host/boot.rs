//! The image's boot files, read once, and the measurements every subcommand computes the
//! same way from them.

use std::path::{Path, PathBuf};

use host::measure::hashes::{cmdline_hash, KernelHashes};
use host::measure::ovmf::Ovmf;
use host::measure::snp::{self, SnpError, SnpFirmware, SnpGuest};
use host::measure::tdx::{self, PageAddOrder};
use host::measure::vmsa::{vcpu_sig, VmmType, VCPU_TYPES};
use host::measure::Sha384Digest;
use sha2::{Digest as _, Sha256};

use crate::{BootArgs, MeasurePlatform};

/// Image file names (the `images/` layout).
pub const KERNEL_FILE: &str = "vmlinuz";
pub const INITRD_FILE: &str = "initrd";
pub const CMDLINE_FILE: &str = "cmdline";
pub const FIRMWARE_FILE: &str = "OVMF.fd";

/// A file and the SHA-256 of its bytes.
#[derive(Debug, Clone)]
pub struct Hashed {
    pub path: PathBuf,
    pub sha256: [u8; 32],
}

/// The firmware bytes and where they came from.
pub struct Firmware {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
}

impl Firmware {
    pub fn ovmf(&self) -> Result<Ovmf<'_>, String> {
        Ovmf::parse(&self.bytes).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// A direct boot: kernel, initrd, command line (what QEMU hashes with `kernel-hashes=on`).
#[derive(Debug, Clone)]
pub struct DirectBoot {
    pub kernel: Hashed,
    pub initrd: Option<Hashed>,
    pub cmdline: Option<String>,
}

impl DirectBoot {
    /// The hashes QEMU places in the guest's hashes table.
    pub fn hashes(&self) -> KernelHashes {
        KernelHashes {
            kernel: self.kernel.sha256,
            initrd: self
                .initrd
                .as_ref()
                .map_or_else(|| sha256(b""), |i| i.sha256),
            cmdline: cmdline_hash(self.cmdline.as_deref()),
        }
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn hashed(path: &Path, what: &str) -> Result<Hashed, String> {
    Ok(Hashed {
        path: path.to_owned(),
        sha256: sha256(&read(path, what)?),
    })
}

/// The command line as a file holds it: UTF-8, trailing line breaks dropped, no other
/// line break or NUL (QEMU passes it as one C string).
pub fn cmdline_from_file(path: &Path) -> Result<String, String> {
    let bytes = read(path, "kernel command line file")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("kernel command line file {}: not UTF-8", path.display()))?;
    let line = text.trim_end_matches(['\n', '\r']);
    check_cmdline(line).map_err(|e| format!("kernel command line file {}: {e}", path.display()))?;
    Ok(line.to_owned())
}

fn check_cmdline(line: &str) -> Result<(), String> {
    if line.contains(['\n', '\r', '\0']) {
        return Err("the command line has a line break or NUL inside it".into());
    }
    Ok(())
}

/// The files of an image for `platform` (`None`: any platform; with `--image` the firmware
/// is `OVMF.<platform>.fd` when the directory has one, else `OVMF.fd`).
pub struct Resolved {
    pub firmware: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// The image's root disk (`NAME.raw` of `scripts/build-image.sh`): not measured itself,
    /// pinned by the root hash in the measured command line.
    pub root_disk: Option<PathBuf>,
}

/// The file-name prefix of a `scripts/build-image.sh` output directory: `NAME` of the one
/// `NAME.vmlinuz` in it; `""` for the plain layout (`vmlinuz`, `initrd`, `cmdline`).
fn layout_prefix(dir: &Path) -> Result<String, String> {
    if dir.join(KERNEL_FILE).is_file() {
        return Ok(String::new());
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("image directory {}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".vmlinuz"))
                .map(|n| format!("{n}."))
        })
        .collect();
    names.sort();
    match names.len() {
        0 => Ok(String::new()),
        1 => Ok(names.remove(0)),
        _ => {
            Err(format!(
            "image directory {}: several kernels ({}): give --kernel, --initrd and --cmdline-file",
            dir.display(),
            names.iter().map(|n| format!("{n}vmlinuz")).collect::<Vec<_>>().join(", ")
        ))
        }
    }
}

impl BootArgs {
    pub fn is_empty(&self) -> bool {
        self.image.is_none()
            && self.firmware.is_none()
            && self.kernel.is_none()
            && self.initrd.is_none()
            && self.cmdline.is_none()
            && self.cmdline_file.is_none()
    }

    /// Paths from `--image` and the single-file flags; with `--image` every file of the
    /// layout must exist unless a flag names it.
    pub fn resolve(&self, platform: Option<MeasurePlatform>) -> Result<Resolved, String> {
        let mut r = Resolved {
            firmware: self.firmware.clone(),
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            root_disk: None,
            cmdline: match (&self.cmdline, &self.cmdline_file) {
                (Some(c), _) => {
                    check_cmdline(c).map_err(|e| format!("--cmdline: {e}"))?;
                    Some(c.clone())
                }
                (None, Some(f)) => Some(cmdline_from_file(f)?),
                (None, None) => None,
            },
        };
        if let Some(dir) = &self.image {
            if !dir.is_dir() {
                return Err(format!(
                    "image directory {}: not a directory",
                    dir.display()
                ));
            }
            let prefix = layout_prefix(dir)?;
            let need = |name: &str| -> Result<PathBuf, String> {
                let p = dir.join(name);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(format!(
                        "image directory {}: no file {name:?} (the layout is {KERNEL_FILE}, {INITRD_FILE}, {CMDLINE_FILE}, {FIRMWARE_FILE}, or scripts/build-image.sh's NAME.vmlinuz, NAME.initrd, NAME.cmdline, NAME.raw with --firmware)",
                        dir.display()
                    ))
                }
            };
            let root = dir.join(format!("{prefix}raw"));
            if !prefix.is_empty() && root.is_file() {
                r.root_disk = Some(root);
            }
            if r.firmware.is_none() {
                let specific = platform.map(|p| {
                    dir.join(match p {
                        MeasurePlatform::Snp => "OVMF.snp.fd",
                        MeasurePlatform::Tdx => "OVMF.tdx.fd",
                    })
                });
                r.firmware = Some(match specific {
                    Some(p) if p.is_file() => p,
                    _ => need(FIRMWARE_FILE)?,
                });
            }
            if r.kernel.is_none() {
                r.kernel = Some(need(&format!("{prefix}{KERNEL_FILE}"))?);
            }
            if r.initrd.is_none() {
                r.initrd = Some(need(&format!("{prefix}{INITRD_FILE}"))?);
            }
            if r.cmdline.is_none() {
                r.cmdline = Some(cmdline_from_file(&need(&format!(
                    "{prefix}{CMDLINE_FILE}"
                ))?)?);
            }
        }
        if r.kernel.is_none() && (r.initrd.is_some() || r.cmdline.is_some()) {
            return Err("an initrd or command line needs a kernel (--kernel or --image)".into());
        }
        Ok(r)
    }
}

impl Resolved {
    pub fn firmware(&self) -> Result<Firmware, String> {
        let path = self
            .firmware
            .clone()
            .ok_or("no firmware: give --firmware FILE or --image DIR")?;
        let bytes = read(&path, "firmware")?;
        Ok(Firmware {
            sha256: sha256(&bytes),
            path,
            bytes,
        })
    }

    pub fn direct_boot(&self) -> Result<Option<DirectBoot>, String> {
        let Some(kernel) = &self.kernel else {
            return Ok(None);
        };
        Ok(Some(DirectBoot {
            kernel: hashed(kernel, "kernel")?,
            initrd: self
                .initrd
                .as_deref()
                .map(|p| hashed(p, "initrd"))
                .transpose()?,
            cmdline: self.cmdline.clone(),
        }))
    }
}

/// One SEV-SNP launch shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub vcpus: u32,
    pub vcpu_type: String,
    pub vcpu_sig: u32,
    pub guest_features: u64,
    pub vmm: VmmType,
}

impl Shape {
    pub fn new(
        vcpus: u32,
        vcpu_type: &str,
        guest_features: u64,
        vmm: VmmType,
    ) -> Result<Self, String> {
        let sig = vcpu_sig(vcpu_type).ok_or_else(|| {
            format!(
                "unknown vCPU type {vcpu_type:?}; known: {}",
                VCPU_TYPES.join(", ")
            )
        })?;
        Ok(Shape {
            vcpus,
            vcpu_type: vcpu_type.to_owned(),
            vcpu_sig: sig,
            guest_features,
            vmm,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} x {}, guest features {:#x}, {}",
            self.vcpus, self.vcpu_type, self.guest_features, self.vmm
        )
    }
}

/// `0x21`, `21`: hexadecimal, as sev-snp-measure reads it.
pub fn parse_hex_u64(s: &str) -> Result<u64, String> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(digits, 16).map_err(|_| format!("{s:?} is not a hexadecimal number"))
}

/// What the firmware gives an SNP launch, with the error said for this firmware file.
pub fn snp_firmware(fw: &Firmware) -> Result<SnpFirmware, String> {
    let ovmf = fw.ovmf()?;
    SnpFirmware::from_ovmf(&ovmf).map_err(|e| snp_error(fw, e))
}

fn snp_error(fw: &Firmware, e: SnpError) -> String {
    let hint = match e {
        SnpError::KernelWithoutHashesSection | SnpError::NoHashesTableGpa => {
            "; this firmware cannot measure a direct boot's kernel, initrd and command line: build OVMF with kernel hashes (OvmfPkg/AmdSev/AmdSevX64.dsc)"
        }
        SnpError::NoSevMetadata => "; this firmware cannot launch an SEV-SNP guest",
        _ => "",
    };
    format!("SEV-SNP with firmware {}: {e}{hint}", fw.path.display())
}

/// The SEV-SNP launch digest of `shape` on `fw`, with or without a direct boot.
pub fn snp_digest(
    fw: &Firmware,
    parsed: &SnpFirmware,
    shape: &Shape,
    boot: Option<&DirectBoot>,
) -> Result<Sha384Digest, String> {
    let guest = SnpGuest {
        vcpus: shape.vcpus,
        vcpu_sig: shape.vcpu_sig,
        guest_features: shape.guest_features,
        vmm: shape.vmm,
        kernel: boot.map(DirectBoot::hashes),
    };
    snp::launch_digest(parsed, &guest).map_err(|e| snp_error(fw, e))
}

/// MRTD in both page-add orders.
pub struct Mrtds {
    pub single_pass: Sha384Digest,
    pub two_pass: Sha384Digest,
}

pub fn tdx_mrtds(fw: &Firmware) -> Result<Mrtds, String> {
    let ovmf = fw.ovmf()?;
    let one = |order| {
        tdx::mrtd(&ovmf, order).map_err(|e| format!("TDX with firmware {}: {e}", fw.path.display()))
    };
    Ok(Mrtds {
        single_pass: one(PageAddOrder::SinglePass)?,
        two_pass: one(PageAddOrder::TwoPass)?,
    })
}

/// RTMR0..3 replayed from a JSON CC event log, and the number of events.
pub fn replay_event_log(path: &Path) -> Result<([Sha384Digest; 4], usize), String> {
    let bytes = read(path, "event log")?;
    let events = host::measure::eventlog::parse_json(&bytes)
        .map_err(|e| format!("event log {}: {e}", path.display()))?;
    let rtmrs =
        tdx::replay_rtmrs(&events).map_err(|e| format!("event log {}: {e}", path.display()))?;
    Ok((rtmrs, events.len()))
}

/// Why RTMR1/2 of a direct boot are not computed here.
pub const RTMR_NOTE: &str = "RTMR0..2 of a direct boot are extended by the TD firmware while it runs (TD HOB and configuration volume, QEMU's ACPI tables, the kernel's Authenticode hash, the command line and the initrd as OVMF measures them, boot-services events); that event sequence depends on the OVMF build and on QEMU's tables for the TD's memory and devices, so it is not computed here. Replay a reference boot's CC event log with --event-log to pin them.";
