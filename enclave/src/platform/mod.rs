//! Platform evidence for the guest runtime: which TEE we run in, and a fresh SEV-SNP report
//! or TDX quote over a given REPORT_DATA, with the certificates the host attached.
//!
//! Two sources, tried in this order by [`detect`]:
//!
//! 1. **configfs-tsm** (`/sys/kernel/config/tsm/report`, Linux 6.7+): one path for SNP and
//!    TDX; see [`ConfigfsTsm`].
//! 2. **`/dev/sev-guest`**: the SNP guest driver's `SNP_GET_EXT_REPORT` ioctl, for kernels
//!    without configfs-tsm; see [`SevGuest`].
//!
//! The host also hands the guest a directory of collateral (AMD certificates and CRLs, Intel
//! TDX collateral); [`load_collateral_dir`] loads and recognises it at start-up.
//!
//! Nothing here verifies evidence: that is the `attestation` crate's job, on the client's
//! side. This layer only checks that what the kernel returned has the shape its provider
//! promises and carries the REPORT_DATA we asked for, so a broken platform fails at the
//! source with a clear message rather than at every client.

mod cert_table;
mod collateral;
mod configfs;
mod error;
mod sev_guest;

#[cfg(test)]
mod fake_configfs;

pub use cert_table::{certificate_name, parse_cert_table};
pub use collateral::{
    load_collateral_dir, MAX_COLLATERAL_FILE, MAX_COLLATERAL_TOTAL, NVIDIA_OCSP_SUBDIR,
    NVIDIA_RIMS_SUBDIR,
};
pub use configfs::ConfigfsTsm;
pub use error::{PlatformError, PlatformErrorKind};
pub use sev_guest::SevGuest;

use attestation::evidence::Platform;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where Linux mounts configfs-tsm's report interface.
pub const DEFAULT_CONFIGFS_TSM: &str = "/sys/kernel/config/tsm/report";
/// The SEV-SNP guest driver's device node.
pub const DEFAULT_SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// The kind of confidential VM we run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TeeKind {
    SevSnp,
    Tdx,
}

impl TeeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TeeKind::SevSnp => "SEV-SNP",
            TeeKind::Tdx => "TDX",
        }
    }
}

impl fmt::Display for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<TeeKind> for Platform {
    fn from(kind: TeeKind) -> Platform {
        match kind {
            TeeKind::SevSnp => Platform::Snp,
            TeeKind::Tdx => Platform::Tdx,
        }
    }
}

/// Fresh hardware evidence over one REPORT_DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformEvidence {
    pub kind: TeeKind,
    /// The raw SNP attestation report (1184 bytes) or TDX quote, exactly as the kernel gave it.
    pub report: Vec<u8>,
    /// Certificates the host attached to an SNP extended report (`vcek.der`, `ask.der`,
    /// `ark.der`, ...; see [`certificate_name`]), in table order. Empty for TDX and when the
    /// host attached none.
    pub certificates: Vec<(String, Vec<u8>)>,
}

/// Something that produces platform evidence.
pub trait EvidenceSource: Send + Sync {
    fn kind(&self) -> TeeKind;
    /// A line for logs, e.g. "configfs-tsm at /sys/kernel/config/tsm/report (provider sev_guest)".
    fn describe(&self) -> String;
    /// A fresh report or quote whose REPORT_DATA is `report_data`.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError>;
}

/// Find the TEE: configfs-tsm at `configfs_root` first, then the SNP guest device at
/// `sev_guest_device`. Fails with [`PlatformErrorKind::NoTee`] when neither works, naming
/// both and why; a configfs-tsm that exists but names an unknown provider is
/// [`PlatformErrorKind::UnsupportedProvider`] (no silent fallback past a TEE we don't know).
pub fn detect(
    configfs_root: &Path,
    sev_guest_device: &Path,
) -> Result<Box<dyn EvidenceSource>, PlatformError> {
    detect_with(configfs_root, sev_guest_device, configfs::kernel_dirs())
}

pub(crate) fn detect_with(
    configfs_root: &Path,
    sev_guest_device: &Path,
    dirs: Arc<dyn configfs::EntryDirs>,
) -> Result<Box<dyn EvidenceSource>, PlatformError> {
    let configfs_problem = match ConfigfsTsm::open_with(configfs_root, dirs) {
        Ok(source) => return Ok(Box::new(source)),
        Err(e) if e.kind() == PlatformErrorKind::UnsupportedProvider => return Err(e),
        Err(e) => e,
    };
    let device_problem = match SevGuest::open(sev_guest_device) {
        Ok(source) => return Ok(Box::new(source)),
        Err(e) => e,
    };
    // A release build has no simulator: do not tell its operator to use one.
    let hint = if cfg!(feature = "simulate") {
        "use --simulate for development"
    } else {
        "this release build cannot simulate one (a development build's --simulate can)"
    };
    Err(PlatformError::new(
        PlatformErrorKind::NoTee,
        format!(
            "configfs-tsm: {}; SNP guest device: {}. This does not look like an SEV-SNP or \
             TDX guest; {hint}",
            configfs_problem.detail(),
            device_problem.detail()
        ),
    ))
}

/// Offset of REPORT_DATA in an SNP attestation report.
const SNP_REPORT_DATA_OFFSET: usize = 0x50;
/// TDX quote header length; the TD report body follows (after a 6-byte descriptor in v5).
const TDX_HEADER_LEN: usize = 48;
/// Offset of REPORT_DATA inside a TD report body (TD 1.0 and 1.5 alike).
const TDX_BODY_REPORT_DATA_OFFSET: usize = 520;

/// Check that `report` is what `kind` produces and carries `report_data`; `source` (a file
/// path or ioctl name) goes into the message.
pub(crate) fn check_report(
    kind: TeeKind,
    report: &[u8],
    report_data: &[u8; 64],
    source: &str,
) -> Result<(), PlatformError> {
    let unexpected = |detail: String| {
        PlatformError::new(
            PlatformErrorKind::UnexpectedEvidence,
            format!("{source}: {detail}"),
        )
    };
    let u16_at = |off: usize| {
        report
            .get(off..off + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |off: usize| {
        report
            .get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let offset = match kind {
        TeeKind::SevSnp => {
            let size = attestation::snp::SnpReport::SIZE;
            if report.len() != size {
                return Err(unexpected(format!(
                    "{} bytes; an SEV-SNP attestation report is {size}",
                    report.len()
                )));
            }
            if !attestation::snp::looks_like_snp_evidence(report) {
                return Err(unexpected(format!(
                    "not an SEV-SNP attestation report (version {:?}, signature algorithm {:?}; \
                     expected version 2, 3 or 5 and algorithm 1)",
                    u32_at(0),
                    u32_at(0x34)
                )));
            }
            SNP_REPORT_DATA_OFFSET
        }
        TeeKind::Tdx => {
            if !attestation::tdx::looks_like_tdx_quote(report) {
                return Err(unexpected(format!(
                    "not a TDX quote ({} bytes, version {:?}, TEE type {:?}; expected version 4 \
                     or 5 and TEE type 0x81)",
                    report.len(),
                    u16_at(0),
                    u32_at(4)
                )));
            }
            let body = if u16_at(0) == Some(5) {
                TDX_HEADER_LEN + 6
            } else {
                TDX_HEADER_LEN
            };
            body + TDX_BODY_REPORT_DATA_OFFSET
        }
    };
    match report.get(offset..offset + 64) {
        None => Err(unexpected(format!(
            "{} bytes end before REPORT_DATA at offset {offset}",
            report.len()
        ))),
        Some(found) if found != report_data => Err(PlatformError::new(
            PlatformErrorKind::ReportDataMismatch,
            format!(
                "{source}: the {kind} evidence carries REPORT_DATA {}..., not the {}... requested",
                hex8(found),
                hex8(report_data)
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn hex8(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod test_evidence {
    //! Realistic fake evidence from veritee-sim (fake signers; never trusted).

    use sim::{FakeIntel, FakeProduct, SnpReportBuilder, TdxQuoteBuilder, TdxQuoteFormat};

    pub fn snp_report(report_data: [u8; 64]) -> Vec<u8> {
        SnpReportBuilder::new(FakeProduct::Genoa)
            .report_data(report_data)
            .build_unsigned()
    }

    pub fn tdx_quote(report_data: [u8; 64], format: TdxQuoteFormat) -> Vec<u8> {
        let intel = FakeIntel::new();
        let pck = intel.pck_leaf().build(&intel);
        TdxQuoteBuilder::new()
            .format(format)
            .report_data(report_data)
            .build(&intel, &pck)
    }
}

#[cfg(test)]
mod tests {
    use super::test_evidence::*;
    use super::*;
    use sim::TdxQuoteFormat;

    const RD: [u8; 64] = [0x5a; 64];

    #[test]
    fn snp_report_shape_and_report_data_are_checked() {
        let report = snp_report(RD);
        check_report(TeeKind::SevSnp, &report, &RD, "outblob").unwrap();

        let e = check_report(TeeKind::SevSnp, &report[..1000], &RD, "/t/outblob").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);
        assert!(
            e.detail().contains("/t/outblob") && e.detail().contains("1184"),
            "{e}"
        );

        let mut bad_version = report.clone();
        bad_version[0] = 9;
        let e = check_report(TeeKind::SevSnp, &bad_version, &RD, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);

        let e = check_report(TeeKind::SevSnp, &report, &[0; 64], "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::ReportDataMismatch);
    }

    #[test]
    fn tdx_quote_shape_and_report_data_are_checked_for_v4_and_v5() {
        for format in [
            TdxQuoteFormat::V4Td10,
            TdxQuoteFormat::V5Td10,
            TdxQuoteFormat::V5Td15,
        ] {
            let quote = tdx_quote(RD, format);
            check_report(TeeKind::Tdx, &quote, &RD, "outblob").unwrap();
            let e = check_report(TeeKind::Tdx, &quote, &[1; 64], "x").unwrap_err();
            assert_eq!(
                e.kind(),
                PlatformErrorKind::ReportDataMismatch,
                "{format:?}"
            );
        }
        // An SNP report is not a TDX quote, and a bare header is too short.
        let e = check_report(TeeKind::Tdx, &snp_report(RD), &RD, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);
        let quote = tdx_quote(RD, TdxQuoteFormat::V4Td10);
        let e = check_report(TeeKind::Tdx, &quote[..100], &RD, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);
    }

    #[test]
    fn no_tee_names_both_places_and_the_simulator() {
        let dir = tempfile::tempdir().unwrap();
        let e = detect(
            &dir.path().join("tsm/report"),
            &dir.path().join("sev-guest"),
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::NoTee);
        let msg = e.to_string();
        assert!(msg.starts_with("no TEE found: "), "{msg}");
        assert!(
            msg.contains("tsm/report") && msg.contains("sev-guest"),
            "{msg}"
        );
        assert!(msg.contains("--simulate"), "{msg}");
    }

    #[test]
    fn tee_kind_maps_to_attestation_platform() {
        assert_eq!(Platform::from(TeeKind::SevSnp), Platform::Snp);
        assert_eq!(Platform::from(TeeKind::Tdx), Platform::Tdx);
    }
}
