//! SNP evidence as received: a bare report, or one wrapped in an Azure HCL report.
//!
//! Azure vTPM confidential VMs (paravisor/HCL) hand out an "HCLA" blob: a 32-byte header,
//! the SNP report at [32..1216], a 20-byte request header and variable runtime data
//! (a JSON key set). AMD signs only the SNP report; the runtime data is bound to it by
//! REPORT_DATA[0..32] = hash(runtime data), which is checked here at parse time so an
//! unbound wrapper never yields an `SnpEvidence`.

use super::SnpReport;
use crate::crypto::digest;
use crate::reason::{reject, Reason, Rejection};

const HCL_MAGIC: &[u8; 4] = b"HCLA";
const HCL_HEADER_LEN: usize = 32;
const REPORT_START: usize = HCL_HEADER_LEN;
const REPORT_END: usize = REPORT_START + SnpReport::SIZE;
const REQ_HEADER_LEN: usize = 20;
const VAR_START: usize = REPORT_END + REQ_HEADER_LEN;
/// IGVM request header report_type for an SNP report (TDX is 4).
const REPORT_TYPE_SNP: u32 = 2;

/// An SNP report as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnpEvidence {
    /// A bare 1184-byte report.
    Raw(SnpReport),
    /// A report unwrapped from an Azure HCL report, with the runtime data it binds.
    AzureHcl {
        report: SnpReport,
        runtime_data: Vec<u8>,
    },
}

fn le_u32(bytes: &[u8], off: usize) -> Option<u32> {
    let s = bytes.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

impl SnpEvidence {
    /// Parse a bare report or an HCL-wrapped one (recognised by its "HCLA" magic).
    pub fn parse(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.starts_with(HCL_MAGIC) {
            parse_hcl(bytes)
        } else {
            SnpReport::parse(bytes).map(SnpEvidence::Raw)
        }
    }

    pub fn report(&self) -> &SnpReport {
        match self {
            SnpEvidence::Raw(report) | SnpEvidence::AzureHcl { report, .. } => report,
        }
    }

    /// The exact received bytes of the SNP report (what AMD's signature covers).
    pub fn report_bytes(&self) -> &[u8] {
        self.report().as_bytes()
    }

    /// The HCL runtime data bound by REPORT_DATA, if this came from an HCL report.
    pub fn runtime_data(&self) -> Option<&[u8]> {
        match self {
            SnpEvidence::Raw(_) => None,
            SnpEvidence::AzureHcl { runtime_data, .. } => Some(runtime_data),
        }
    }
}

fn parse_hcl(bytes: &[u8]) -> Result<SnpEvidence, Rejection> {
    let truncated = |what: &str| {
        Rejection::new(
            Reason::Truncated,
            format!("HCL report ({} bytes) ends inside {what}", bytes.len()),
        )
    };
    let version = le_u32(bytes, 4).ok_or_else(|| truncated("the HCL header"))?;
    if !matches!(version, 1 | 2) {
        return reject(
            Reason::UnsupportedVersion,
            format!("HCL report header version {version} (supported: 1, 2)"),
        );
    }
    // report_size counts the header, the SNP report, the request header and the data;
    // the rest of the (fixed-size, vTPM NV index) buffer is zero padding.
    let total = le_u32(bytes, 8).ok_or_else(|| truncated("the HCL header"))? as usize;
    if bytes.len() < HCL_HEADER_LEN {
        return Err(truncated("the HCL header"));
    }
    let report_bytes = bytes
        .get(REPORT_START..REPORT_END)
        .ok_or_else(|| truncated("the SNP report"))?;
    let data_size = le_u32(bytes, REPORT_END).ok_or_else(|| truncated("the request header"))?;
    let req_version =
        le_u32(bytes, REPORT_END + 4).ok_or_else(|| truncated("the request header"))?;
    let report_type =
        le_u32(bytes, REPORT_END + 8).ok_or_else(|| truncated("the request header"))?;
    let hash_type =
        le_u32(bytes, REPORT_END + 12).ok_or_else(|| truncated("the request header"))?;
    let var_size = le_u32(bytes, REPORT_END + 16).ok_or_else(|| truncated("the request header"))?;
    if req_version != 1 {
        return reject(
            Reason::UnsupportedVersion,
            format!("HCL request header version {req_version} (supported: 1)"),
        );
    }
    if report_type != REPORT_TYPE_SNP {
        return reject(
            Reason::InvalidField,
            format!("HCL report type {report_type} is not SNP ({REPORT_TYPE_SNP})"),
        );
    }
    let var_size = var_size as usize;
    if data_size as usize != REQ_HEADER_LEN.saturating_add(var_size) {
        return reject(
            Reason::InvalidField,
            format!("HCL data_size {data_size} != 20 + variable_data_size {var_size}"),
        );
    }
    let var_end = VAR_START
        .checked_add(var_size)
        .ok_or_else(|| truncated("the runtime data"))?;
    if total != var_end {
        return reject(
            Reason::InvalidField,
            format!("HCL report_size {total} != {var_end} (header + report + request + data)"),
        );
    }
    let runtime_data = bytes
        .get(VAR_START..var_end)
        .ok_or_else(|| truncated("the runtime data"))?;
    let padding = bytes.get(var_end..).unwrap_or(&[]);
    if let Some(i) = padding.iter().position(|&x| x != 0) {
        return reject(
            Reason::TrailingData,
            format!(
                "non-zero byte after the HCL runtime data at offset {}",
                var_end + i
            ),
        );
    }

    let report = SnpReport::parse(report_bytes)?;
    let (alg, len): (&'static digest::Algorithm, usize) = match hash_type {
        1 => (&digest::SHA256, 32),
        2 => (&digest::SHA384, 48),
        3 => (&digest::SHA512, 64),
        other => {
            return reject(
                Reason::UnsupportedAlgorithm,
                format!("HCL runtime data hash type {other} (1 SHA-256, 2 SHA-384, 3 SHA-512)"),
            )
        }
    };
    let digest = digest::digest(alg, runtime_data);
    if report.report_data.get(..len) != Some(digest.as_ref()) {
        return reject(
            Reason::ReportDataMismatch,
            format!(
                "REPORT_DATA[0..{len}] is not the hash of the HCL runtime data: the wrapper is not bound to the report"
            ),
        );
    }
    Ok(SnpEvidence::AzureHcl {
        report,
        runtime_data: runtime_data.to_vec(),
    })
}

/// Cheap sniffing for input recognition: an "HCLA" blob big enough to hold a report, or
/// exactly one report's worth of bytes with a supported version and signature algorithm.
pub fn looks_like_snp_evidence(bytes: &[u8]) -> bool {
    if bytes.starts_with(HCL_MAGIC) {
        return bytes.len() >= VAR_START;
    }
    bytes.len() == SnpReport::SIZE
        && matches!(le_u32(bytes, 0), Some(2 | 3 | 5))
        && le_u32(bytes, 0x34) == Some(1)
}
