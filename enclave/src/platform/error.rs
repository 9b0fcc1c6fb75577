//! One error type for everything the platform layer does, with a stable, typed kind.

use std::fmt;
use std::io;
use std::path::Path;

/// What went wrong. Tests and callers match on this, never on the message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformErrorKind {
    /// Neither configfs-tsm nor `/dev/sev-guest` is usable.
    NoTee,
    /// A file or device could not be created, read, written or removed.
    Io,
    /// configfs-tsm names a provider whose evidence format we do not know.
    UnsupportedProvider,
    /// A caller-supplied setting the platform cannot honour (e.g. a privilege level above 3).
    InvalidArgument,
    /// The report or quote does not have the size or header its provider implies.
    UnexpectedEvidence,
    /// The evidence does not carry the REPORT_DATA we asked for.
    ReportDataMismatch,
    /// Another writer changed the configfs-tsm entry while we used it, on every try.
    GenerationRace,
    /// The SNP certificate table ends before its terminator or an entry.
    CertTableTruncated,
    /// A certificate-table entry points outside the blob (or into the table itself).
    CertTableOutOfRange,
    /// Two certificate-table entries share bytes.
    CertTableOverlap,
    /// Two certificate-table entries carry the same GUID.
    CertTableDuplicate,
    /// The AMD Secure Processor firmware refused the request (fw_error or response status).
    Firmware,
    /// The hypervisor refused or throttled the guest request (vmm_error).
    Hypervisor,
    /// The guest driver failed the ioctl without a firmware or hypervisor code.
    Device,
    /// A collateral file, or the directory in total, is larger than the cap.
    CollateralTooLarge,
    /// A file in the collateral directory is not recognised as collateral.
    CollateralUnrecognised,
}

impl PlatformErrorKind {
    /// A short description, the first part of the error's `Display`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformErrorKind::NoTee => "no TEE found",
            PlatformErrorKind::Io => "I/O error",
            PlatformErrorKind::UnsupportedProvider => "unsupported configfs-tsm provider",
            PlatformErrorKind::InvalidArgument => "invalid argument",
            PlatformErrorKind::UnexpectedEvidence => "unexpected evidence",
            PlatformErrorKind::ReportDataMismatch => "REPORT_DATA mismatch",
            PlatformErrorKind::GenerationRace => "configfs-tsm generation race",
            PlatformErrorKind::CertTableTruncated => "truncated SNP certificate table",
            PlatformErrorKind::CertTableOutOfRange => "SNP certificate table entry out of range",
            PlatformErrorKind::CertTableOverlap => "overlapping SNP certificate table entries",
            PlatformErrorKind::CertTableDuplicate => "duplicate SNP certificate table entry",
            PlatformErrorKind::Firmware => "SEV firmware error",
            PlatformErrorKind::Hypervisor => "hypervisor error",
            PlatformErrorKind::Device => "sev-guest device error",
            PlatformErrorKind::CollateralTooLarge => "collateral too large",
            PlatformErrorKind::CollateralUnrecognised => "unrecognised collateral",
        }
    }
}

impl fmt::Display for PlatformErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the platform layer: a typed kind and a detail that says where.
/// `Display` prints `"<kind>: <detail>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError {
    kind: PlatformErrorKind,
    detail: String,
}

impl PlatformError {
    pub fn new(kind: PlatformErrorKind, detail: impl Into<String>) -> Self {
        PlatformError {
            kind,
            detail: detail.into(),
        }
    }

    /// An I/O failure on `path` while doing `what` ("write", "read", ...).
    pub(crate) fn io(what: &str, path: &Path, err: &io::Error) -> Self {
        PlatformError::new(
            PlatformErrorKind::Io,
            format!("{what} {}: {err}", path.display()),
        )
    }

    pub fn kind(&self) -> PlatformErrorKind {
        self.kind
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for PlatformError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_kind_then_detail() {
        let e = PlatformError::new(PlatformErrorKind::GenerationRace, "/x/outblob: 3 tries");
        assert_eq!(
            e.to_string(),
            "configfs-tsm generation race: /x/outblob: 3 tries"
        );
        assert_eq!(e.kind(), PlatformErrorKind::GenerationRace);
    }
}
