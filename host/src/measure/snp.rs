//! The SEV-SNP launch digest: the value the AMD secure processor puts in the attestation
//! report's `MEASUREMENT` field (offset 0x90) for a guest launched with OVMF.
//!
//! The secure processor keeps a running SHA-384 (the guest context's launch digest, GCTX.LD,
//! starting at 48 zero bytes). Every page the VMM hands to `SNP_LAUNCH_UPDATE` replaces it
//! with SHA-384 of a 112-byte `PAGE_INFO` (SEV-SNP ABI spec, "PAGE_INFO"): the current
//! digest, the page's contents digest (SHA-384 of the page, or zeros for pages whose content
//! is not measured), the length 0x70, the page type, IMI and VMPL permission bytes (all 0
//! here) and the page's GPA. The order, as QEMU issues it:
//!
//! 1. every 4 KiB page of the firmware, mapped to end at 4 GiB, as normal pages (the
//!    result is the *OVMF hash*, which hash-only inputs carry instead of the file);
//! 2. the SEV metadata sections in metadata order: pre-validated memory as zero pages
//!    (unmeasured on GCE), the secrets page, the CPUID page (on EC2 after all other
//!    sections), the SVSM calling area as a zero page, and the kernel-hashes page: the
//!    [`KernelHashes`] table at the offset of the firmware's hashes-table GPA when
//!    direct-booting with `kernel-hashes=on`, a zero page otherwise;
//! 3. one VMSA page per vCPU at GPA `0xFFFFFFFFF000`: the BSP starting at `0xFFFFFFF0`, the
//!    APs at the firmware's SEV-ES reset EIP ([`vmsa::ovmf_vmsa`]).
//!
//! [`svsm_launch_digest`] does the same for a Coconut-SVSM launch (SVSM image below OVMF
//! and its variable store, metadata and entry point from the SVSM image).

use thiserror::Error;

use super::hashes::{KernelHashes, PADDED_TABLE_LEN};
use super::ovmf::{Ovmf, OvmfError, SevSection, SevSectionType, FOUR_GIB};
use super::vmsa::{self, VmmType, BSP_EIP};
use super::{sha384, Sha384Digest, PAGE_SIZE};

/// The GPA recorded for VMSA pages: `(u64)-1`, page-aligned, bits above 51 cleared.
pub const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// The most vCPUs a launch may have here (QEMU's largest x86 machine limit).
pub const MAX_VCPUS: u32 = 4096;

/// Page types of `SNP_LAUNCH_UPDATE` (SEV-SNP ABI spec, table "Page Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    /// Measured content.
    Normal = 1,
    /// A vCPU's save area.
    Vmsa = 2,
    /// A zero page (content not hashed).
    Zero = 3,
    /// An unmeasured page.
    Unmeasured = 4,
    /// The secrets page.
    Secrets = 5,
    /// The CPUID page.
    Cpuid = 6,
}

/// Why a launch digest cannot be computed from these inputs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnpError {
    /// The firmware itself is malformed.
    #[error(transparent)]
    Ovmf(#[from] OvmfError),
    /// Firmware without SEV metadata cannot be launched as an SNP guest.
    #[error(
        "firmware has no SEV metadata entry ({}) in its footer table",
        super::ovmf::SEV_METADATA_GUID
    )]
    NoSevMetadata,
    /// An image that is not a whole number of pages, or does not fit below 4 GiB.
    #[error("{what} is {len} bytes; it must be a non-zero multiple of 4096 that fits below 4 GiB")]
    ImageSize { what: &'static str, len: usize },
    /// Zero vCPUs, or more than [`MAX_VCPUS`].
    #[error("{vcpus} vCPUs: a launch needs 1..={MAX_VCPUS}")]
    VcpuCount { vcpus: u32 },
    /// Application processors start at the SEV-ES reset EIP, which the firmware does not give.
    #[error("{vcpus} vCPUs need the SEV-ES reset EIP for the application processors, and the firmware has no SEV-ES reset block")]
    NoResetEip { vcpus: u32 },
    /// A section type this crate does not know how the VMM measures.
    #[error("SEV metadata section {index} ({section:x?}): unknown section type {:#x}", section.section_type.raw())]
    UnknownSectionType { index: usize, section: SevSection },
    /// A section whose address or size cannot be measured page by page.
    #[error("SEV metadata section {index} ({section:x?}): {problem}")]
    SectionShape {
        index: usize,
        section: SevSection,
        problem: &'static str,
    },
    /// Hashes for a direct boot, but nowhere to put them.
    #[error("kernel given but OVMF metadata has no SNP_KERNEL_HASHES (0x10) section")]
    KernelWithoutHashesSection,
    /// A kernel-hashes section, but the firmware does not say where in it the table goes.
    #[error(
        "kernel given but the firmware gives no SEV hashes-table GPA (entry {} missing or 0)",
        super::ovmf::SEV_HASH_TABLE_GUID
    )]
    NoHashesTableGpa,
    /// The hashes table would not lie inside the kernel-hashes page.
    #[error("SEV hashes table at GPA {table_gpa:#x} ({PADDED_TABLE_LEN} bytes) is not inside the SNP_KERNEL_HASHES page at {page_gpa:#x}")]
    HashesTableOutsidePage { table_gpa: u32, page_gpa: u32 },
    /// An SVSM launch needs the SVSM entry point.
    #[error(
        "SVSM image has no SVSM info entry ({}) giving its entry point",
        super::ovmf::SVSM_INFO_GUID
    )]
    NoSvsmInfo,
    /// SVSM image, OVMF and its variable store do not fit below 4 GiB.
    #[error("SVSM image ({svsm_len} bytes) below OVMF ({ovmf_len} bytes) and {vars_size} bytes of OVMF variables does not fit below 4 GiB")]
    SvsmPlacement {
        svsm_len: usize,
        ovmf_len: usize,
        vars_size: u64,
    },
}

/// The guest context's launch digest as the secure processor keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gctx {
    ld: Sha384Digest,
}

impl Default for Gctx {
    fn default() -> Self {
        Self::new()
    }
}

impl Gctx {
    /// A fresh context (digest all zero).
    pub fn new() -> Self {
        Gctx { ld: [0; 48] }
    }

    /// A context that continues from `ld`, e.g. a precomputed OVMF hash.
    pub fn with_seed(ld: Sha384Digest) -> Self {
        Gctx { ld }
    }

    /// The launch digest so far.
    pub fn digest(&self) -> Sha384Digest {
        self.ld
    }

    /// One `SNP_LAUNCH_UPDATE` of one page.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &Sha384Digest) {
        let mut info = [0u8; 0x70];
        info[..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&0x70u16.to_le_bytes());
        info[98] = page_type as u8;
        // 99: IMI page, 100..103: VMPL3/2/1 permissions, 103: reserved; all 0.
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.ld = sha384(&info);
    }

    /// Normal pages with `data`'s content from `gpa` on; `data` is a whole number of pages.
    fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) {
        debug_assert!(data.len().is_multiple_of(PAGE_SIZE));
        for (i, page) in data.chunks_exact(PAGE_SIZE).enumerate() {
            self.update(
                PageType::Normal,
                gpa + (i * PAGE_SIZE) as u64,
                &sha384(page),
            );
        }
    }

    /// `size / 4096` pages of a content-less type from `gpa` on.
    fn update_empty_pages(&mut self, page_type: PageType, gpa: u64, size: u64) {
        for i in 0..size / PAGE_SIZE as u64 {
            self.update(page_type, gpa + i * PAGE_SIZE as u64, &[0; 48]);
        }
    }

    /// One VMSA page.
    pub fn update_vmsa_page(&mut self, page: &[u8; PAGE_SIZE]) {
        self.update(PageType::Vmsa, VMSA_GPA, &sha384(page));
    }
}

/// Checks that an image is a non-zero whole number of pages.
fn check_pages(what: &'static str, data: &[u8]) -> Result<(), SnpError> {
    let len = data.len();
    if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
        return Err(SnpError::ImageSize { what, len });
    }
    Ok(())
}

/// The GPA of an OVMF image that ends at 4 GiB.
fn ovmf_gpa(ovmf: &Ovmf) -> Result<u64, SnpError> {
    let what = "OVMF image";
    check_pages(what, ovmf.data())?;
    ovmf.gpa_ending_at(FOUR_GIB).ok_or(SnpError::ImageSize {
        what,
        len: ovmf.data().len(),
    })
}

/// The OVMF hash: the launch digest after the firmware's pages, the value hash-only
/// inputs carry.
pub fn ovmf_hash(ovmf: &Ovmf) -> Result<Sha384Digest, SnpError> {
    let gpa = ovmf_gpa(ovmf)?;
    let mut gctx = Gctx::new();
    gctx.update_normal_pages(gpa, ovmf.data());
    Ok(gctx.digest())
}

/// What the launch digest needs from the firmware, from an OVMF file or given as hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpFirmware {
    /// The launch digest after the firmware's pages ([`ovmf_hash`]).
    pub ovmf_hash: Sha384Digest,
    /// The SEV metadata sections in metadata order.
    pub sections: Vec<SevSection>,
    /// Where the application processors start (SEV-ES reset block).
    pub sev_es_reset_eip: Option<u32>,
    /// Where QEMU writes the kernel-hashes table (`None`: the build has no such area).
    pub hashes_table_gpa: Option<u32>,
}

impl SnpFirmware {
    /// Everything from the OVMF file, hashing its pages.
    pub fn from_ovmf(ovmf: &Ovmf) -> Result<Self, SnpError> {
        Self::from_ovmf_with_hash(ovmf, ovmf_hash(ovmf)?)
    }

    /// Metadata from the OVMF file, the OVMF hash as given (sev-snp-measure's
    /// `--snp-ovmf-hash`): the file's pages are not hashed.
    pub fn from_ovmf_with_hash(ovmf: &Ovmf, ovmf_hash: Sha384Digest) -> Result<Self, SnpError> {
        Ok(SnpFirmware {
            ovmf_hash,
            sections: ovmf.sev_metadata()?.ok_or(SnpError::NoSevMetadata)?,
            sev_es_reset_eip: ovmf.sev_es_reset_eip()?,
            hashes_table_gpa: ovmf.sev_hashes_table()?.map(|a| a.gpa),
        })
    }

    /// Hash-only inputs (as dstack's `measurement_input.json` carries them): the OVMF hash,
    /// the metadata sections, the reset EIP and the hashes-table GPA, without the file.
    pub fn from_parts(
        ovmf_hash: Sha384Digest,
        sections: Vec<SevSection>,
        sev_es_reset_eip: Option<u32>,
        hashes_table_gpa: Option<u32>,
    ) -> Self {
        SnpFirmware {
            ovmf_hash,
            sections,
            sev_es_reset_eip,
            hashes_table_gpa,
        }
    }
}

/// The guest's launch configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpGuest {
    /// Number of vCPUs (one VMSA each).
    pub vcpus: u32,
    /// CPUID signature of the vCPU model ([`vmsa::vcpu_sig`]); `rdx` of the VMSA under QEMU.
    pub vcpu_sig: u32,
    /// Guest features (`SEV_FEATURES` of the VMSA; QEMU's `sev-snp-guest` default is 0x1).
    pub guest_features: u64,
    /// The VMM that launches it.
    pub vmm: VmmType,
    /// Direct boot with `kernel-hashes=on`: the hashes QEMU places in the kernel-hashes page.
    pub kernel: Option<KernelHashes>,
}

fn check_vcpus(vcpus: u32) -> Result<(), SnpError> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(SnpError::VcpuCount { vcpus });
    }
    Ok(())
}

/// The metadata sections' pages, in the order the VMM updates them.
fn update_sections(
    gctx: &mut Gctx,
    sections: &[SevSection],
    vmm: VmmType,
    kernel: Option<(&KernelHashes, Option<u32>)>,
) -> Result<(), SnpError> {
    let page = PAGE_SIZE as u32;
    for (index, s) in sections.iter().enumerate() {
        let shape = |problem| SnpError::SectionShape {
            index,
            section: *s,
            problem,
        };
        if !s.gpa.is_multiple_of(page) {
            return Err(shape("GPA is not 4 KiB aligned"));
        }
        if u64::from(s.gpa) + u64::from(s.size) > FOUR_GIB {
            return Err(shape("section runs past 4 GiB"));
        }
        let one_page = || {
            if s.size == page {
                Ok(())
            } else {
                Err(shape("size must be exactly one page"))
            }
        };
        let whole_pages = || {
            if s.size.is_multiple_of(page) {
                Ok(())
            } else {
                Err(shape("size is not a multiple of 4 KiB"))
            }
        };
        let gpa = u64::from(s.gpa);
        match s.section_type {
            SevSectionType::SnpSecMem => {
                whole_pages()?;
                let ty = if vmm == VmmType::Gce {
                    PageType::Unmeasured
                } else {
                    PageType::Zero
                };
                gctx.update_empty_pages(ty, gpa, u64::from(s.size));
            }
            SevSectionType::SnpSecrets => {
                one_page()?;
                gctx.update(PageType::Secrets, gpa, &[0; 48]);
            }
            SevSectionType::Cpuid => {
                one_page()?;
                // EC2 adds the CPUID page after all other sections.
                if vmm != VmmType::Ec2 {
                    gctx.update(PageType::Cpuid, gpa, &[0; 48]);
                }
            }
            SevSectionType::SvsmCaa => {
                whole_pages()?;
                gctx.update_empty_pages(PageType::Zero, gpa, u64::from(s.size));
            }
            SevSectionType::SnpKernelHashes => match kernel {
                Some((hashes, table_gpa)) => {
                    one_page()?;
                    let table_gpa = table_gpa.ok_or(SnpError::NoHashesTableGpa)?;
                    let offset = table_gpa.wrapping_sub(s.gpa) as usize;
                    let page = (table_gpa >= s.gpa)
                        .then(|| hashes.page(offset))
                        .flatten()
                        .ok_or(SnpError::HashesTableOutsidePage {
                            table_gpa,
                            page_gpa: s.gpa,
                        })?;
                    gctx.update_normal_pages(gpa, &page[..]);
                }
                None => {
                    whole_pages()?;
                    gctx.update_empty_pages(PageType::Zero, gpa, u64::from(s.size));
                }
            },
            SevSectionType::Unknown(_) => {
                return Err(SnpError::UnknownSectionType { index, section: *s });
            }
        }
    }
    if vmm == VmmType::Ec2 {
        for s in sections
            .iter()
            .filter(|s| s.section_type == SevSectionType::Cpuid)
        {
            gctx.update(PageType::Cpuid, u64::from(s.gpa), &[0; 48]);
        }
    }
    Ok(())
}

/// The SEV-SNP launch digest of `guest` on `firmware`: the report's `MEASUREMENT`.
pub fn launch_digest(firmware: &SnpFirmware, guest: &SnpGuest) -> Result<Sha384Digest, SnpError> {
    check_vcpus(guest.vcpus)?;
    let kernel = match &guest.kernel {
        Some(hashes) => {
            if !firmware
                .sections
                .iter()
                .any(|s| s.section_type == SevSectionType::SnpKernelHashes)
            {
                return Err(SnpError::KernelWithoutHashesSection);
            }
            Some((hashes, firmware.hashes_table_gpa))
        }
        None => None,
    };
    let ap_eip = match firmware.sev_es_reset_eip {
        Some(eip) if eip != 0 => Some(eip),
        _ if guest.vcpus > 1 => return Err(SnpError::NoResetEip { vcpus: guest.vcpus }),
        _ => None,
    };

    let mut gctx = Gctx::with_seed(firmware.ovmf_hash);
    update_sections(&mut gctx, &firmware.sections, guest.vmm, kernel)?;

    let bsp = vmsa::ovmf_vmsa(BSP_EIP, guest.guest_features, guest.vcpu_sig, guest.vmm);
    gctx.update_vmsa_page(&bsp);
    if let Some(eip) = ap_eip {
        let ap = vmsa::ovmf_vmsa(eip, guest.guest_features, guest.vcpu_sig, guest.vmm);
        for _ in 1..guest.vcpus {
            gctx.update_vmsa_page(&ap);
        }
    }
    Ok(gctx.digest())
}

/// The SEV-SNP launch digest of a Coconut-SVSM launch under QEMU: OVMF ends at 4 GiB, its
/// variable store (`ovmf_vars_size` bytes) below it, the SVSM image below that. Measured:
/// the OVMF pages, the SVSM pages, the SVSM image's metadata sections (no direct boot),
/// and one VMSA per vCPU, all starting at the SVSM entry point.
pub fn svsm_launch_digest(
    ovmf: &Ovmf,
    svsm: &Ovmf,
    ovmf_vars_size: u64,
    vcpus: u32,
    vcpu_sig: u32,
) -> Result<Sha384Digest, SnpError> {
    check_vcpus(vcpus)?;
    let ovmf_gpa = ovmf_gpa(ovmf)?;
    check_pages("SVSM image", svsm.data())?;
    let svsm_gpa = ovmf_gpa
        .checked_sub(ovmf_vars_size)
        .and_then(|end| svsm.gpa_ending_at(end))
        .ok_or(SnpError::SvsmPlacement {
            svsm_len: svsm.data().len(),
            ovmf_len: ovmf.data().len(),
            vars_size: ovmf_vars_size,
        })?;
    let entry = svsm.svsm_entry_offset()?.ok_or(SnpError::NoSvsmInfo)?;
    let sections = svsm.sev_metadata()?.ok_or(SnpError::NoSevMetadata)?;

    let mut gctx = Gctx::new();
    gctx.update_normal_pages(ovmf_gpa, ovmf.data());
    gctx.update_normal_pages(svsm_gpa, svsm.data());
    update_sections(&mut gctx, &sections, VmmType::Qemu, None)?;
    let page = vmsa::svsm_vmsa(svsm_gpa + u64::from(entry), vcpu_sig);
    for _ in 0..vcpus {
        gctx.update_vmsa_page(&page);
    }
    Ok(gctx.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(sections: Vec<SevSection>) -> SnpFirmware {
        SnpFirmware::from_parts([7; 48], sections, Some(0x80b004), Some(0x810c00))
    }

    fn guest(vcpus: u32, kernel: Option<KernelHashes>) -> SnpGuest {
        SnpGuest {
            vcpus,
            vcpu_sig: 0x800f12,
            guest_features: 1,
            vmm: VmmType::Qemu,
            kernel,
        }
    }

    #[test]
    fn page_info_layout() {
        // One update by hand: LD' = SHA-384(LD || contents || 70 00 | type | 0 ... | gpa).
        let mut g = Gctx::new();
        g.update(PageType::Zero, 0x1234_5000, &[0; 48]);
        let mut info = vec![0u8; 96];
        info.extend_from_slice(&[0x70, 0, 3, 0, 0, 0, 0, 0]);
        info.extend_from_slice(&0x1234_5000u64.to_le_bytes());
        assert_eq!(g.digest(), sha384(&info));
    }

    #[test]
    fn bad_inputs_give_typed_errors() {
        let kernel = KernelHashes::from_contents(b"", None, None);
        let hashes = SevSection::new(0x810000, 0x1000, 0x10);

        assert_eq!(
            launch_digest(&fw(vec![]), &guest(0, None)),
            Err(SnpError::VcpuCount { vcpus: 0 })
        );
        assert_eq!(
            launch_digest(&fw(vec![]), &guest(MAX_VCPUS + 1, None)),
            Err(SnpError::VcpuCount {
                vcpus: MAX_VCPUS + 1
            })
        );
        let mut no_eip = fw(vec![]);
        no_eip.sev_es_reset_eip = None;
        assert!(launch_digest(&no_eip, &guest(1, None)).is_ok());
        assert_eq!(
            launch_digest(&no_eip, &guest(2, None)),
            Err(SnpError::NoResetEip { vcpus: 2 })
        );

        assert_eq!(
            launch_digest(
                &fw(vec![SevSection::new(0x800000, 0x1000, 1)]),
                &guest(1, Some(kernel))
            ),
            Err(SnpError::KernelWithoutHashesSection)
        );
        let mut no_table = fw(vec![hashes]);
        no_table.hashes_table_gpa = None;
        assert_eq!(
            launch_digest(&no_table, &guest(1, Some(kernel))),
            Err(SnpError::NoHashesTableGpa)
        );
        // Without a kernel the page is a zero page and the table GPA is not needed.
        assert!(launch_digest(&no_table, &guest(1, None)).is_ok());
        for table_gpa in [0x80ff00, 0x810f60, 0x811000] {
            let mut outside = fw(vec![hashes]);
            outside.hashes_table_gpa = Some(table_gpa);
            assert_eq!(
                launch_digest(&outside, &guest(1, Some(kernel))),
                Err(SnpError::HashesTableOutsidePage {
                    table_gpa,
                    page_gpa: 0x810000
                })
            );
        }
        let mut inside = fw(vec![hashes]);
        inside.hashes_table_gpa = Some(0x810f50);
        assert!(launch_digest(&inside, &guest(1, Some(kernel))).is_ok());

        let unknown = SevSection::new(0x800000, 0x1000, 9);
        assert_eq!(
            launch_digest(&fw(vec![unknown]), &guest(1, None)),
            Err(SnpError::UnknownSectionType {
                index: 0,
                section: unknown
            })
        );
        for (s, problem) in [
            (
                SevSection::new(0x800800, 0x1000, 1),
                "GPA is not 4 KiB aligned",
            ),
            (
                SevSection::new(0x800000, 0x1800, 1),
                "size is not a multiple of 4 KiB",
            ),
            (
                SevSection::new(0x800000, 0x2000, 2),
                "size must be exactly one page",
            ),
            (
                SevSection::new(0xffff_f000, 0x2000, 1),
                "section runs past 4 GiB",
            ),
        ] {
            assert_eq!(
                launch_digest(&fw(vec![s]), &guest(1, None)),
                Err(SnpError::SectionShape {
                    index: 0,
                    section: s,
                    problem
                })
            );
        }
    }
}
