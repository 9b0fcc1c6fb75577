//! The SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP ABI spec, table "ATTESTATION_REPORT"):
//! strict parsing of the 1184 received bytes into typed fields.
//!
//! Parsing is strict on purpose: exact length, known versions, the one signature
//! algorithm, and every reserved byte zero, so a report that means something we do not
//! understand is rejected rather than half-read. The received bytes are kept so the
//! signature is later checked over them, never over a re-encoding.

use super::SigningKey;
use crate::reason::{reject, Reason, Rejection};

const SIZE: usize = 1184;

// Field offsets (little-endian integers).
const OFF_VERSION: usize = 0x00;
const OFF_GUEST_SVN: usize = 0x04;
const OFF_POLICY: usize = 0x08;
const OFF_FAMILY_ID: usize = 0x10;
const OFF_IMAGE_ID: usize = 0x20;
const OFF_VMPL: usize = 0x30;
const OFF_SIG_ALGO: usize = 0x34;
const OFF_CURRENT_TCB: usize = 0x38;
const OFF_PLATFORM_INFO: usize = 0x40;
const OFF_KEY_INFO: usize = 0x48;
const OFF_REPORT_DATA: usize = 0x50;
const OFF_MEASUREMENT: usize = 0x90;
const OFF_HOST_DATA: usize = 0xC0;
const OFF_ID_KEY_DIGEST: usize = 0xE0;
const OFF_AUTHOR_KEY_DIGEST: usize = 0x110;
const OFF_REPORT_ID: usize = 0x140;
const OFF_REPORT_ID_MA: usize = 0x160;
const OFF_REPORTED_TCB: usize = 0x180;
const OFF_CPUID_FAM: usize = 0x188;
const OFF_CPUID_MOD: usize = 0x189;
const OFF_CPUID_STEP: usize = 0x18A;
const OFF_CHIP_ID: usize = 0x1A0;
const OFF_COMMITTED_TCB: usize = 0x1E0;
const OFF_CURRENT_BUILD: usize = 0x1E8;
const OFF_COMMITTED_BUILD: usize = 0x1EC;
const OFF_LAUNCH_TCB: usize = 0x1F0;
const OFF_LAUNCH_MIT: usize = 0x1F8;
const OFF_CURRENT_MIT: usize = 0x200;
const OFF_SIG_R: usize = 0x2A0;
const OFF_SIG_S: usize = 0x2E8;
/// Each signature component is a 72-byte little-endian field; P-384 uses the low 48.
const SIG_FIELD: usize = 72;
const SIG_LEN: usize = 48;

/// key_info bit 0: AUTHOR_KEY_EN; bit 1: MASK_CHIP_KEY; bits 4:2 SIGNING_KEY; 31:5 reserved.
const KEY_INFO_RESERVED_MASK: u32 = !0x1F;

/// A parsed SEV-SNP attestation report (versions 2, 3 and 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: u64,
    pub platform_info: u64,
    /// Bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY.
    pub key_info: u32,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: u64,
    /// CPUID family (extended + base), version 3 and later.
    pub cpuid_fam_id: Option<u8>,
    /// CPUID model (extended << 4 | base), version 3 and later.
    pub cpuid_mod_id: Option<u8>,
    /// CPUID stepping, version 3 and later.
    pub cpuid_step: Option<u8>,
    pub chip_id: [u8; 64],
    pub committed_tcb: u64,
    pub current_build: u8,
    pub current_minor: u8,
    pub current_major: u8,
    pub committed_build: u8,
    pub committed_minor: u8,
    pub committed_major: u8,
    pub launch_tcb: u64,
    /// Version 5 and later.
    pub launch_mit_vector: Option<u64>,
    /// Version 5 and later.
    pub current_mit_vector: Option<u64>,
    /// Signature R, big-endian (converted from the report's little-endian field).
    pub signature_r: [u8; 48],
    /// Signature S, big-endian.
    pub signature_s: [u8; 48],
    /// The exact received bytes.
    raw: Vec<u8>,
}

fn arr<const N: usize>(b: &[u8; SIZE], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    // Offsets are compile-time constants inside the fixed-size array.
    out.copy_from_slice(&b[off..off + N]);
    out
}

fn u32_at(b: &[u8; SIZE], off: usize) -> u32 {
    u32::from_le_bytes(arr(b, off))
}

fn u64_at(b: &[u8; SIZE], off: usize) -> u64 {
    u64::from_le_bytes(arr(b, off))
}

fn zero_range(b: &[u8; SIZE], start: usize, end: usize) -> Result<(), Rejection> {
    match b[start..end].iter().position(|&x| x != 0) {
        None => Ok(()),
        Some(i) => reject(
            Reason::ReservedNotZero,
            format!(
                "reserved byte at offset {:#x} (field {start:#x}..{end:#x}) is {:#04x}",
                start + i,
                b[start + i]
            ),
        ),
    }
}

/// A signature component: 72 bytes little-endian, the top 24 must be zero.
fn sig_component(b: &[u8; SIZE], off: usize, name: &str) -> Result<[u8; SIG_LEN], Rejection> {
    zero_range(b, off + SIG_LEN, off + SIG_FIELD).map_err(|e| {
        Rejection::new(
            Reason::ReservedNotZero,
            format!("signature {name} padding: {}", e.detail),
        )
    })?;
    let mut be: [u8; SIG_LEN] = arr(b, off);
    be.reverse();
    Ok(be)
}

impl SnpReport {
    /// The size of every report version.
    pub const SIZE: usize = SIZE;
    /// The signed region is bytes `0..SIGNED_LEN`.
    pub const SIGNED_LEN: usize = OFF_SIG_R;

    /// Parse exactly one report from its received bytes.
    pub fn parse(bytes: &[u8]) -> Result<SnpReport, Rejection> {
        if bytes.len() < SIZE {
            return reject(
                Reason::Truncated,
                format!("SNP report is {} bytes, expected {SIZE}", bytes.len()),
            );
        }
        let b: &[u8; SIZE] = match bytes.try_into() {
            Ok(b) => b,
            Err(_) => {
                return reject(
                    Reason::TrailingData,
                    format!(
                        "{} bytes after the {SIZE}-byte SNP report",
                        bytes.len() - SIZE
                    ),
                )
            }
        };
        let version = u32_at(b, OFF_VERSION);
        if !matches!(version, 2 | 3 | 5) {
            return reject(
                Reason::UnsupportedVersion,
                format!("SNP report version {version} (supported: 2, 3, 5)"),
            );
        }
        let signature_algo = u32_at(b, OFF_SIG_ALGO);
        if signature_algo != 1 {
            return reject(
                Reason::UnsupportedAlgorithm,
                format!("SNP report signature algorithm {signature_algo} (only 1, ECDSA P-384 with SHA-384)"),
            );
        }
        let key_info = u32_at(b, OFF_KEY_INFO);
        if key_info & KEY_INFO_RESERVED_MASK != 0 {
            return reject(
                Reason::ReservedNotZero,
                format!("reserved bits 31:5 of key_info (offset {OFF_KEY_INFO:#x}) are set: {key_info:#x}"),
            );
        }
        // Reserved ranges per version; v3 adds CPUID at 0x188..0x18B, v5 the mitigation
        // vectors at 0x1F8..0x208.
        let cpuid_end = if version >= 3 { 0x18B } else { 0x188 };
        let mit_end = if version >= 5 { 0x208 } else { 0x1F8 };
        for (start, end) in [
            (0x4C, 0x50),
            (cpuid_end, 0x1A0),
            (0x1EB, 0x1EC),
            (0x1EF, 0x1F0),
            (mit_end, OFF_SIG_R),
            (OFF_SIG_S + SIG_FIELD, SIZE),
        ] {
            zero_range(b, start, end)?;
        }
        let signature_r = sig_component(b, OFF_SIG_R, "R")?;
        let signature_s = sig_component(b, OFF_SIG_S, "S")?;

        let chip_id: [u8; 64] = arr(b, OFF_CHIP_ID);
        let v3 = version >= 3;
        let v5 = version >= 5;
        let report = SnpReport {
            version,
            guest_svn: u32_at(b, OFF_GUEST_SVN),
            policy: u64_at(b, OFF_POLICY),
            family_id: arr(b, OFF_FAMILY_ID),
            image_id: arr(b, OFF_IMAGE_ID),
            vmpl: u32_at(b, OFF_VMPL),
            signature_algo,
            current_tcb: u64_at(b, OFF_CURRENT_TCB),
            platform_info: u64_at(b, OFF_PLATFORM_INFO),
            key_info,
            report_data: arr(b, OFF_REPORT_DATA),
            measurement: arr(b, OFF_MEASUREMENT),
            host_data: arr(b, OFF_HOST_DATA),
            id_key_digest: arr(b, OFF_ID_KEY_DIGEST),
            author_key_digest: arr(b, OFF_AUTHOR_KEY_DIGEST),
            report_id: arr(b, OFF_REPORT_ID),
            report_id_ma: arr(b, OFF_REPORT_ID_MA),
            reported_tcb: u64_at(b, OFF_REPORTED_TCB),
            cpuid_fam_id: v3.then_some(b[OFF_CPUID_FAM]),
            cpuid_mod_id: v3.then_some(b[OFF_CPUID_MOD]),
            cpuid_step: v3.then_some(b[OFF_CPUID_STEP]),
            chip_id,
            committed_tcb: u64_at(b, OFF_COMMITTED_TCB),
            current_build: b[OFF_CURRENT_BUILD],
            current_minor: b[OFF_CURRENT_BUILD + 1],
            current_major: b[OFF_CURRENT_BUILD + 2],
            committed_build: b[OFF_COMMITTED_BUILD],
            committed_minor: b[OFF_COMMITTED_BUILD + 1],
            committed_major: b[OFF_COMMITTED_BUILD + 2],
            launch_tcb: u64_at(b, OFF_LAUNCH_TCB),
            launch_mit_vector: v5.then(|| u64_at(b, OFF_LAUNCH_MIT)),
            current_mit_vector: v5.then(|| u64_at(b, OFF_CURRENT_MIT)),
            signature_r,
            signature_s,
            raw: bytes.to_vec(),
        };
        // Signing key 2..6 are reserved encodings, 7 means "no key": neither is evidence.
        report.signing_key()?;
        // MASK_CHIP_KEY: the firmware did not sign this report (its signature is zeros).
        if report.chip_key_masked() {
            return reject(
                Reason::ReportChipKeyMasked,
                format!(
                    "key_info (offset {OFF_KEY_INFO:#x}) has MASK_CHIP_KEY set: the firmware \
                     did not sign this report with the chip key"
                ),
            );
        }
        Ok(report)
    }

    /// The exact bytes this report was parsed from.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes covered by the signature (0x000..0x2A0 of the received report).
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..OFF_SIG_R).unwrap_or(&[])
    }

    /// Guest policy bit 19: the host may debug the guest.
    pub fn debug_allowed(&self) -> bool {
        self.policy & (1 << 19) != 0
    }

    /// Guest policy bit 18: a migration agent may be associated.
    pub fn migration_agent_allowed(&self) -> bool {
        self.policy & (1 << 18) != 0
    }

    /// Guest policy bit 16: SMT may be enabled on the host.
    pub fn smt_allowed(&self) -> bool {
        self.policy & (1 << 16) != 0
    }

    /// Guest policy ABI major (bits 15:8) and minor (bits 7:0).
    pub fn policy_abi(&self) -> (u8, u8) {
        (
            ((self.policy >> 8) & 0xFF) as u8,
            (self.policy & 0xFF) as u8,
        )
    }

    /// key_info bit 0: the ID block was signed with an author key.
    pub fn author_key_enabled(&self) -> bool {
        self.key_info & 1 != 0
    }

    /// key_info bit 1, MASK_CHIP_KEY: the platform was configured not to sign reports
    /// with the chip key, so the firmware wrote zeros into SIGNATURE. Parsing refuses
    /// such reports.
    pub fn chip_key_masked(&self) -> bool {
        self.key_info & 0b10 != 0
    }

    /// CHIP_ID is all zero: the platform's MASK_CHIP_ID setting (not recorded in the
    /// report otherwise), or a VLEK-signed report, which carries no chip identity.
    pub fn chip_id_masked(&self) -> bool {
        self.chip_id.iter().all(|&b| b == 0)
    }

    /// key_info bits 4:2: which key signed the report.
    pub fn signing_key(&self) -> Result<SigningKey, Rejection> {
        match (self.key_info >> 2) & 0b111 {
            0 => Ok(SigningKey::Vcek),
            1 => Ok(SigningKey::Vlek),
            7 => reject(
                Reason::InvalidField,
                "report is unsigned (SIGNING_KEY = 7, none)",
            ),
            other => reject(
                Reason::InvalidField,
                format!("SIGNING_KEY {other} is reserved"),
            ),
        }
    }
}
