//! SEV-SNP attestation reports (1184 bytes, versions 2, 3 and 5) with every
//! field settable, signed by a fake VCEK/VLEK key, plus the per-product
//! TCB_VERSION layout.

use crate::amd::{default_chip_id, FakeAmdLeaf, FakeProduct};
use crate::keys::FakeP384Key;

/// Size of an SEV-SNP attestation report.
pub const SNP_REPORT_LEN: usize = 0x4A0;
/// The signature covers bytes `0x000..SNP_SIGNED_LEN`.
pub const SNP_SIGNED_LEN: usize = 0x2A0;

/// Guest policy bits.
pub mod policy {
    /// SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Reserved, must be one.
    pub const RESERVED_MUST_BE_ONE: u64 = 1 << 17;
    /// Association with a migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Debugging allowed.
    pub const DEBUG: u64 = 1 << 19;
    /// The guest may be activated on one socket only.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    /// CXL may be populated with devices or memory.
    pub const CXL_ALLOW: u64 = 1 << 21;
    /// AES-256-XTS required for memory encryption.
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    /// Running Average Power Limit disabled.
    pub const RAPL_DIS: u64 = 1 << 23;
    /// Ciphertext hiding for DRAM required.
    pub const CIPHERTEXT_HIDING_DRAM: u64 = 1 << 24;
    /// No page swap/move commands for the guest.
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
    /// ABI_MAJOR (bits 15:8) and ABI_MINOR (bits 7:0).
    pub const fn abi(major: u8, minor: u8) -> u64 {
        ((major as u64) << 8) | minor as u64
    }
}

/// PLATFORM_INFO bits.
pub mod platform_info {
    pub const SMT_EN: u64 = 1 << 0;
    pub const TSME_EN: u64 = 1 << 1;
    pub const ECC_EN: u64 = 1 << 2;
    pub const RAPL_DIS: u64 = 1 << 3;
    pub const CIPHERTEXT_HIDING_DRAM_EN: u64 = 1 << 4;
    pub const ALIAS_CHECK_COMPLETE: u64 = 1 << 5;
    pub const TIO_EN: u64 = 1 << 7;
}

/// Security patch levels of one TCB_VERSION. `fmc` exists on Turin only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SnpTcb {
    pub fmc: u8,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl SnpTcb {
    /// A plausible current TCB for each product; the default VCEK carries it.
    pub fn default_for(product: FakeProduct) -> Self {
        match product {
            FakeProduct::Milan => SnpTcb {
                fmc: 0,
                bootloader: 4,
                tee: 0,
                snp: 0x18,
                microcode: 0xDB,
            },
            FakeProduct::Genoa => SnpTcb {
                fmc: 0,
                bootloader: 0x0A,
                tee: 0,
                snp: 0x19,
                microcode: 0x54,
            },
            FakeProduct::Turin => SnpTcb {
                fmc: 0,
                bootloader: 1,
                tee: 0,
                snp: 2,
                microcode: 0x47,
            },
        }
    }

    /// Pack into the product's TCB_VERSION u64. Milan/Genoa: byte0 BL,
    /// byte1 TEE, byte6 SNP, byte7 microcode. Turin: byte0 FMC, byte1 BL,
    /// byte2 TEE, byte3 SNP, byte7 microcode.
    pub fn to_u64(self, product: FakeProduct) -> u64 {
        let mut bytes = [0u8; 8];
        match product {
            FakeProduct::Turin => {
                bytes[0] = self.fmc;
                bytes[1] = self.bootloader;
                bytes[2] = self.tee;
                bytes[3] = self.snp;
            }
            _ => {
                bytes[0] = self.bootloader;
                bytes[1] = self.tee;
                bytes[6] = self.snp;
            }
        }
        bytes[7] = self.microcode;
        u64::from_le_bytes(bytes)
    }

    /// Unpack a TCB_VERSION u64 with the product's layout.
    pub fn from_u64(product: FakeProduct, raw: u64) -> Self {
        let b = raw.to_le_bytes();
        match product {
            FakeProduct::Turin => SnpTcb {
                fmc: b[0],
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
            _ => SnpTcb {
                fmc: 0,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
        }
    }
}

/// Build the TCB_VERSION u64 from components with the product's layout.
pub fn tcb_version(product: FakeProduct, tcb: SnpTcb) -> u64 {
    tcb.to_u64(product)
}

/// Which key signed the report, as written in KEY_INFO bits 4:2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnpSigningKey {
    Vcek,
    Vlek,
    /// Unsigned report (value 7).
    None,
    /// Any other raw 3-bit value.
    Raw(u8),
}

impl SnpSigningKey {
    fn bits(self) -> u32 {
        match self {
            SnpSigningKey::Vcek => 0,
            SnpSigningKey::Vlek => 1,
            SnpSigningKey::None => 7,
            SnpSigningKey::Raw(v) => u32::from(v & 7),
        }
    }
}

/// Builder for an SEV-SNP report. Defaults give a report a verifier should
/// accept with the default VCEK: version 3, policy SMT + reserved bit 17
/// (debug and migration agent off), VMPL 0, signature_algo 1, all four TCBs
/// equal to [`SnpTcb::default_for`], VCEK signing key, the default chip id,
/// CPUID of the product, REPORT_ID_MA all 0xFF, other fields zero.
#[derive(Clone, Debug)]
pub struct SnpReportBuilder {
    product: FakeProduct,
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: u64,
    pub platform_info: u64,
    pub author_key_en: bool,
    /// key_info bit 1, MASK_CHIP_KEY: like the firmware, the report is then left unsigned
    /// (a zero signature field).
    pub mask_chip_key: bool,
    pub signing_key: SnpSigningKey,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: u64,
    /// CPUID family/model/stepping; written for version 3 and later only
    /// unless [`SnpReportBuilder::force_cpuid`] is set.
    pub cpuid_fam_mod_step: (u8, u8, u8),
    pub force_cpuid: bool,
    pub chip_id: [u8; 64],
    pub committed_tcb: u64,
    pub current_build_minor_major: (u8, u8, u8),
    pub committed_build_minor_major: (u8, u8, u8),
    pub launch_tcb: u64,
    /// LAUNCH_MIT_VECTOR / CURRENT_MIT_VECTOR (written for version 5+).
    pub launch_mit_vector: u64,
    pub current_mit_vector: u64,
    corrupt_signature: bool,
    /// (offset, value) pokes applied to the signed bytes after assembly,
    /// e.g. to set a reserved byte.
    pokes: Vec<(usize, u8)>,
}

impl SnpReportBuilder {
    pub fn new(product: FakeProduct) -> Self {
        let tcb = SnpTcb::default_for(product).to_u64(product);
        SnpReportBuilder {
            product,
            version: 3,
            guest_svn: 0,
            policy: policy::SMT | policy::RESERVED_MUST_BE_ONE,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            signature_algo: 1,
            current_tcb: tcb,
            platform_info: 0x1,
            author_key_en: false,
            mask_chip_key: false,
            signing_key: SnpSigningKey::Vcek,
            report_data: [0; 64],
            measurement: [0x5A; 48],
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id: [0x11; 32],
            report_id_ma: [0xFF; 32],
            reported_tcb: tcb,
            cpuid_fam_mod_step: product.cpuid_fam_mod_step(),
            force_cpuid: false,
            chip_id: default_chip_id(product),
            committed_tcb: tcb,
            current_build_minor_major: (0x1D, 0x37, 1),
            committed_build_minor_major: (0x1D, 0x37, 1),
            launch_tcb: tcb,
            launch_mit_vector: 0,
            current_mit_vector: 0,
            corrupt_signature: false,
            pokes: Vec::new(),
        }
    }

    /// Defaults matching a leaf: its TCB in all four TCB fields, and for a
    /// VLEK the VLEK signing key and a zero CHIP_ID (a VLEK report names no chip;
    /// key_info's MASK_CHIP_KEY stays clear, as on real VLEK platforms).
    pub fn for_leaf(leaf: &FakeAmdLeaf) -> Self {
        let mut builder = SnpReportBuilder::new(leaf.product).all_tcbs(leaf.tcb);
        if leaf.kind == crate::amd::AmdLeafKind::Vlek {
            builder.signing_key = SnpSigningKey::Vlek;
            builder.chip_id = [0; 64];
        }
        builder
    }

    pub fn product(&self) -> FakeProduct {
        self.product
    }

    /// Set current, reported, committed and launch TCB to the same value.
    pub fn all_tcbs(mut self, tcb: SnpTcb) -> Self {
        let raw = tcb.to_u64(self.product);
        self.current_tcb = raw;
        self.reported_tcb = raw;
        self.committed_tcb = raw;
        self.launch_tcb = raw;
        self
    }

    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    pub fn policy(mut self, policy: u64) -> Self {
        self.policy = policy;
        self
    }

    /// Set or clear the debug policy bit (19).
    pub fn debug(mut self, on: bool) -> Self {
        self.policy = set_bit(self.policy, policy::DEBUG, on);
        self
    }

    /// Set or clear the migration-agent policy bit (18).
    pub fn migrate_ma(mut self, on: bool) -> Self {
        self.policy = set_bit(self.policy, policy::MIGRATE_MA, on);
        self
    }

    pub fn vmpl(mut self, vmpl: u32) -> Self {
        self.vmpl = vmpl;
        self
    }

    /// Set or clear guest-policy bits (`policy::*`).
    pub fn policy_bits(mut self, bits: u64, on: bool) -> Self {
        self.policy = set_bit(self.policy, bits, on);
        self
    }

    pub fn platform_info(mut self, info: u64) -> Self {
        self.platform_info = info;
        self
    }

    pub fn guest_svn(mut self, svn: u32) -> Self {
        self.guest_svn = svn;
        self
    }

    pub fn family_id(mut self, id: [u8; 16]) -> Self {
        self.family_id = id;
        self
    }

    pub fn image_id(mut self, id: [u8; 16]) -> Self {
        self.image_id = id;
        self
    }

    pub fn id_key_digest(mut self, digest: [u8; 48]) -> Self {
        self.id_key_digest = digest;
        self
    }

    /// AUTHOR_KEY_DIGEST; also sets key_info's AUTHOR_KEY_EN, as the firmware does.
    pub fn author_key_digest(mut self, digest: [u8; 48]) -> Self {
        self.author_key_digest = digest;
        self.author_key_en = true;
        self
    }

    pub fn report_data(mut self, data: [u8; 64]) -> Self {
        self.report_data = data;
        self
    }

    pub fn measurement(mut self, measurement: [u8; 48]) -> Self {
        self.measurement = measurement;
        self
    }

    pub fn host_data(mut self, host_data: [u8; 32]) -> Self {
        self.host_data = host_data;
        self
    }

    pub fn reported_tcb(mut self, raw: u64) -> Self {
        self.reported_tcb = raw;
        self
    }

    pub fn current_tcb(mut self, raw: u64) -> Self {
        self.current_tcb = raw;
        self
    }

    pub fn committed_tcb(mut self, raw: u64) -> Self {
        self.committed_tcb = raw;
        self
    }

    pub fn launch_tcb(mut self, raw: u64) -> Self {
        self.launch_tcb = raw;
        self
    }

    pub fn signing_key(mut self, key: SnpSigningKey) -> Self {
        self.signing_key = key;
        self
    }

    pub fn chip_id(mut self, chip_id: [u8; 64]) -> Self {
        self.chip_id = chip_id;
        self
    }

    pub fn signature_algo(mut self, algo: u32) -> Self {
        self.signature_algo = algo;
        self
    }

    /// Overwrite one byte of the signed region after assembly (for example
    /// a reserved byte, which must be zero).
    pub fn poke(mut self, offset: usize, value: u8) -> Self {
        assert!(offset < SNP_SIGNED_LEN, "pokes stay in the signed region");
        self.pokes.push((offset, value));
        self
    }

    /// Flip a bit of R after signing.
    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// The report bytes with a zero signature field.
    pub fn build_unsigned(&self) -> Vec<u8> {
        let mut r = vec![0u8; SNP_REPORT_LEN];
        let put32 =
            |r: &mut [u8], at: usize, v: u32| r[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 =
            |r: &mut [u8], at: usize, v: u64| r[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put32(&mut r, 0x000, self.version);
        put32(&mut r, 0x004, self.guest_svn);
        put64(&mut r, 0x008, self.policy);
        r[0x010..0x020].copy_from_slice(&self.family_id);
        r[0x020..0x030].copy_from_slice(&self.image_id);
        put32(&mut r, 0x030, self.vmpl);
        put32(&mut r, 0x034, self.signature_algo);
        put64(&mut r, 0x038, self.current_tcb);
        put64(&mut r, 0x040, self.platform_info);
        let key_info = u32::from(self.author_key_en)
            | (u32::from(self.mask_chip_key) << 1)
            | (self.signing_key.bits() << 2);
        put32(&mut r, 0x048, key_info);
        r[0x050..0x090].copy_from_slice(&self.report_data);
        r[0x090..0x0C0].copy_from_slice(&self.measurement);
        r[0x0C0..0x0E0].copy_from_slice(&self.host_data);
        r[0x0E0..0x110].copy_from_slice(&self.id_key_digest);
        r[0x110..0x140].copy_from_slice(&self.author_key_digest);
        r[0x140..0x160].copy_from_slice(&self.report_id);
        r[0x160..0x180].copy_from_slice(&self.report_id_ma);
        put64(&mut r, 0x180, self.reported_tcb);
        if self.version >= 3 || self.force_cpuid {
            let (family, model, stepping) = self.cpuid_fam_mod_step;
            r[0x188] = family;
            r[0x189] = model;
            r[0x18A] = stepping;
        }
        r[0x1A0..0x1E0].copy_from_slice(&self.chip_id);
        put64(&mut r, 0x1E0, self.committed_tcb);
        let (build, minor, major) = self.current_build_minor_major;
        r[0x1E8..0x1EB].copy_from_slice(&[build, minor, major]);
        let (build, minor, major) = self.committed_build_minor_major;
        r[0x1EC..0x1EF].copy_from_slice(&[build, minor, major]);
        put64(&mut r, 0x1F0, self.launch_tcb);
        if self.version >= 5 {
            put64(&mut r, 0x1F8, self.launch_mit_vector);
            put64(&mut r, 0x200, self.current_mit_vector);
        }
        for (offset, value) in &self.pokes {
            r[*offset] = *value;
        }
        r
    }

    /// Assemble and sign with `key` (normally the leaf's key).
    pub fn sign_with(&self, key: &FakeP384Key) -> Vec<u8> {
        let mut report = self.build_unsigned();
        if self.mask_chip_key {
            return report;
        }
        let raw = key.sign_raw(&report[..SNP_SIGNED_LEN]);
        let (r_be, s_be) = raw.split_at(48);
        let mut r_le = r_be.to_vec();
        r_le.reverse();
        let mut s_le = s_be.to_vec();
        s_le.reverse();
        report[0x2A0..0x2A0 + 48].copy_from_slice(&r_le);
        report[0x2E8..0x2E8 + 48].copy_from_slice(&s_le);
        if self.corrupt_signature {
            report[0x2A0] ^= 0x01;
        }
        report
    }

    /// Assemble and sign with the leaf's key.
    pub fn sign(&self, leaf: &FakeAmdLeaf) -> Vec<u8> {
        self.sign_with(&leaf.key)
    }
}

fn set_bit(value: u64, bit: u64, on: bool) -> u64 {
    if on {
        value | bit
    } else {
        value & !bit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcb_layouts_match_real_reports() {
        // oak-turin-v5-vcek: 0x4700000002000100 = FMC 0, BL 1, TEE 0, SNP 2, ucode 0x47.
        let turin = SnpTcb::from_u64(FakeProduct::Turin, 0x4700_0000_0200_0100);
        assert_eq!(
            (
                turin.fmc,
                turin.bootloader,
                turin.tee,
                turin.snp,
                turin.microcode
            ),
            (0, 1, 0, 2, 0x47)
        );
        assert_eq!(turin.to_u64(FakeProduct::Turin), 0x4700_0000_0200_0100);
        // trustee-milan-v3-vlek-aws: 0xd918000000000004 = BL 4, SNP 0x18, ucode 0xd9.
        let milan = SnpTcb::from_u64(FakeProduct::Milan, 0xd918_0000_0000_0004);
        assert_eq!(
            (milan.bootloader, milan.tee, milan.snp, milan.microcode),
            (4, 0, 0x18, 0xd9)
        );
        assert_eq!(
            tcb_version(FakeProduct::Milan, milan),
            0xd918_0000_0000_0004
        );
    }

    #[test]
    fn v2_leaves_cpuid_zero_and_v5_writes_mitigations() {
        let mut builder = SnpReportBuilder::new(FakeProduct::Genoa).version(2);
        assert_eq!(&builder.build_unsigned()[0x188..0x18B], &[0, 0, 0]);
        builder = builder.version(5);
        builder.current_mit_vector = 1;
        let report = builder.build_unsigned();
        assert_eq!(&report[0x188..0x18B], &[0x19, 0x11, 0x01]);
        assert_eq!(report[0x200], 1);
        assert_eq!(report.len(), SNP_REPORT_LEN);
    }
}
