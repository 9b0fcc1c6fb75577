//! Intel TDX DCAP quotes (v4, v5): parse, verify with collateral, expose claims.
//!
//! # Layers
//! - [`Quote::parse`] reads the quote by its declared lengths (TD 1.0 and TD 1.5 bodies,
//!   certification data type 6 with a nested type 5 PEM chain); trailing bytes after the
//!   signature data are tolerated and counted.
//! - [`verify`] checks, in this order, each failure with its own [`Reason`](crate::Reason):
//!   1. our own signature checks with ring, independent of collateral: the quote's PCK
//!      chain to the pinned Intel SGX Root CA (each certificate valid at `at`), the QE
//!      report signature by the PCK leaf, the QE report-data binding of the attestation
//!      key and QE authentication data, and the quote signature over the received bytes;
//!   2. collateral presence (`CollateralMissing`: the TCB cannot be evaluated without it);
//!   3. our own time-window check of TCB info, QE identity and both CRLs, naming the item
//!      (issueDate/thisUpdate <= at < nextUpdate: nextUpdate is exclusive, as webpki
//!      treats CRLs, so this check always fires before dcap-qvl's);
//!   4. [`dcap_qvl`] (pinned `=0.7.1`) with the same root: collateral chains, signatures
//!      over the exact JSON bytes, CRLs, FMSPC, TCB level, TDX module and QE identity. Its
//!      `anyhow` errors are mapped to reasons in one table (`verify::map_dcap_error`).
//!
//! # What dcap-qvl 0.7.1 enforces on its own
//! Collateral: TCB info id `TDX` version >= 3 and QE identity id `TD_QE` (v2/v3) signed by
//! a certificate issued directly by the root (its name is not checked); both CRLs (root CA
//! CRL signed by the root, PCK CRL by the PCK CA) with revocation checked for every
//! certificate of every chain; every certificate, CRL and JSON item valid at the time.
//! Quote: QE vendor id is Intel's, QE auth data is 32 bytes, QE identity (MRSIGNER,
//! ISVPRODID, masked MISCSELECT and ATTRIBUTES, QE not in debug, ISVSVN level), FMSPC of
//! the PCK equals the TCB info's, TCB level (SGX components, PCESVN, TDX components;
//! TEE_TCB_SVN2 too for TD 1.5), TDX module identity `TDX_%02X` (MRSIGNERSEAM and masked
//! SEAMATTRIBUTES, module ISVSVN level), `Revoked` status rejected. TD attributes:
//! reserved bits zero, not MIGRATABLE, SEPT_VE_DISABLE set, no SERVTD_EXT and an all-zero
//! MRSERVICETD (service TDs are not allowed).
//!
//! # What it leaves to callers (our policy layer)
//! We call it with `allow_debug(true)`, so the TUD bits (DEBUG, profiling) are **not**
//! checked here: the policy decides on [`TdReport::debug`] / [`TdReport::under_debug`].
//! Also left to the policy: acceptable TCB statuses and advisory ids, MRTD, RTMR0..3,
//! MRCONFIGID, MROWNER, MROWNERCONFIG, MRSEAM (only MRSIGNERSEAM is checked), XFAM,
//! REPORT_DATA binding, minimum tcbEvaluationDataNumber, the collateral's age, and the
//! PCK platform flags (SMT, dynamic platform, cached keys). [`VerifiedTdxQuote`] carries
//! what these need: the collateral's [`CollateralVersion`]s, the PCK certificate's
//! [`PckPlatformFlags`] and the verification time.

mod collateral;
mod quote;
mod verify;

#[cfg(test)]
mod tests;

pub use collateral::{CollateralParts, CollateralVersion, TdxCollateral};
pub use quote::{
    looks_like_tdx_quote, BodyType, QeReport, Quote, QuoteHeader, QuoteSignatureData, TdReport,
};
pub use verify::{verify, PckPlatformFlags, TdxClaims, TdxVerifier, VerifiedTdxQuote};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The Intel SGX Root CA (DER), pinned: "Intel SGX Root CA", ECDSA P-256, valid
/// 2018-05-21..2049-12-31. Identical to the root bundled in dcap-qvl (asserted in tests).
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("intel_sgx_root_ca.der");

/// The root every TDX chain (PCK, TCB signing, CRLs) must lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxTrustAnchors {
    root_der: Vec<u8>,
    custom: bool,
}

impl TdxTrustAnchors {
    /// Intel's production root (pinned DER).
    pub fn intel() -> Self {
        TdxTrustAnchors {
            root_der: INTEL_SGX_ROOT_CA_DER.to_vec(),
            custom: false,
        }
    }

    /// Trust another root instead of Intel's (tests, simulated TEEs). Evidence verified
    /// under it proves nothing about Intel hardware.
    pub fn dangerous_custom_root(root_der: Vec<u8>) -> Self {
        TdxTrustAnchors {
            root_der,
            custom: true,
        }
    }

    /// The pinned root certificate (DER).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Whether this is not Intel's production root.
    pub fn is_custom(&self) -> bool {
        self.custom && self.root_der != INTEL_SGX_ROOT_CA_DER
    }
}

/// The TCB status Intel's collateral gives the platform (converged with the QE and TDX
/// module statuses). `Revoked` never appears: a revoked TCB is a rejection (`TcbRevoked`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcbStatus {
    UpToDate,
    SwHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSwHardeningNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    /// TD 1.5: launched with an out-of-date TCB, current TCB (TEE_TCB_SVN2) is not.
    TdRelaunchAdvised,
    /// As `TdRelaunchAdvised`, and configuration is needed.
    TdRelaunchAdvisedConfigurationNeeded,
}

impl TcbStatus {
    /// Intel's name for the status (as in TCB info JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SwHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
        }
    }

    /// Parse Intel's name (exact spelling).
    pub fn parse(name: &str) -> Option<TcbStatus> {
        Self::ALL.iter().copied().find(|s| s.as_str() == name)
    }

    /// Every status, for policy validation and listings.
    pub const ALL: [TcbStatus; 8] = [
        TcbStatus::UpToDate,
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::TdRelaunchAdvised,
        TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
    ];
}

impl std::fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TcbStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TcbStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        TcbStatus::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown TCB status {name:?}")))
    }
}
