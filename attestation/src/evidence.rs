//! One verified-evidence type across platforms, and the trust anchors it is checked against.

use crate::policy::Policy;
use crate::snp::{SnpClaims, SnpTrustAnchors, VerifiedSnpReport};
use crate::tdx::{TdxClaims, TdxTrustAnchors, VerifiedTdxQuote};
use crate::x509;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A confidential-computing platform whose evidence we verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Snp,
    Tdx,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Snp => "snp",
            Platform::Tdx => "tdx",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Evidence whose signatures, chain and collateral verified. Only the platform
/// verifiers construct the inner values.
#[derive(Debug)]
pub enum VerifiedEvidence {
    // Boxed: both carry their parsed evidence (hundreds of bytes to kilobytes).
    Snp(Box<VerifiedSnpReport>),
    Tdx(Box<VerifiedTdxQuote>),
}

/// The verified claims, for printing and JSON output.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Claims {
    Snp(SnpClaims),
    Tdx(TdxClaims),
}

impl VerifiedEvidence {
    pub fn platform(&self) -> Platform {
        match self {
            VerifiedEvidence::Snp(_) => Platform::Snp,
            VerifiedEvidence::Tdx(_) => Platform::Tdx,
        }
    }

    /// The 64 bytes of REPORT_DATA the hardware signed.
    pub fn report_data(&self) -> [u8; 64] {
        match self {
            VerifiedEvidence::Snp(r) => r.report().report_data,
            VerifiedEvidence::Tdx(q) => q.quote().body.report_data,
        }
    }

    pub fn claims(&self) -> Claims {
        match self {
            VerifiedEvidence::Snp(r) => Claims::Snp(r.claims()),
            VerifiedEvidence::Tdx(q) => Claims::Tdx(q.claims()),
        }
    }
}

/// The roots evidence must chain to.
#[derive(Clone)]
pub struct TrustAnchors {
    pub snp: SnpTrustAnchors,
    pub tdx: TdxTrustAnchors,
}

impl TrustAnchors {
    /// AMD's and Intel's pinned production roots, nothing else.
    pub fn production() -> Self {
        TrustAnchors {
            snp: SnpTrustAnchors::amd(),
            tdx: TdxTrustAnchors::intel(),
        }
    }

    /// Production roots plus any supplied certificate whose SHA-256 the policy lists in
    /// `dangerous_trusted_roots` (a self-signed AMD ARK, or a replacement Intel root).
    /// Returns the anchors and a description of each extra root trusted.
    pub fn for_policy(policy: &Policy, supplied_certs: &[Vec<u8>]) -> (Self, Vec<String>) {
        let mut anchors = TrustAnchors::production();
        let mut trusted = Vec::new();
        for der in supplied_certs {
            let digest = x509::sha256(der);
            if !policy.dangerous_trusted_roots.iter().any(|h| h.0 == digest) {
                continue;
            }
            let Ok(cert) = x509::parse_cert(der, "trusted root") else {
                continue;
            };
            let cn = x509::common_name(cert.subject()).unwrap_or_default();
            if cn.starts_with("ARK-") {
                anchors.snp = anchors.snp.dangerous_trust_ark(der.clone());
            } else {
                anchors.tdx = TdxTrustAnchors::dangerous_custom_root(der.clone());
            }
            trusted.push(format!("{cn} (sha256 {})", hex::encode(digest)));
        }
        (anchors, trusted)
    }
}
