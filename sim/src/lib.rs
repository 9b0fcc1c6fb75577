//! Deterministic FAKE signers for AMD SEV-SNP and Intel TDX evidence.
//!
//! # Never trust anything this crate produces
//!
//! Every root here (the fake AMD ARKs, the fake "Intel SGX Root CA") is a
//! public test key committed to the repository or derived from a public
//! label. Evidence signed by them proves nothing. This crate exists to build
//! the negative test corpus of the `attestation` crate (one field changed
//! and re-signed, or one certificate wrong in its own way) and the
//! simulated TEE ([`tee`]). It must never be trusted outside tests and must
//! never be linked into a release image.
//!
//! Every certificate name carries `OU=veritee FAKE test root - never trust`;
//! common names keep AMD's and Intel's structure because verifiers key off
//! them.
//!
//! # Determinism
//!
//! The same inputs give the same bytes: EC keys are derived from labels
//! (SHA-256/384 of `"veritee-fake/<label>"`), ECDSA uses RFC 6979 nonces,
//! RSA-PSS salts are derived from the key label and message digest, and the
//! RSA keys are fixtures under `sim/keys/`. The one exception is the
//! simulated TEE ([`tee`]): its development chain is generated with fresh
//! random keys per directory and carries `OU=`[`SIMULATED_ORG_UNIT`].
//!
//! # Time
//!
//! All defaults are valid at [`DEFAULT_AT`] (2026-06-01T00:00:00Z):
//! certificates from [`DEFAULT_NOT_BEFORE`] to [`DEFAULT_NOT_AFTER`], TCB
//! info, QE identity and Intel CRLs from 7 days before to 23 days after it,
//! the AMD CRL from 7 days before to 30 days after it, VLEKs for one year
//! around it. Every validity window can be chosen to build expired or
//! not-yet-valid cases. Times are Unix seconds (`i64`).

pub mod amd;
pub mod collateral;
pub mod der;
pub mod intel;
pub mod keys;
/// Simulated NVIDIA Hopper GPUs (FAKE device chain, real SPDM evidence format).
pub mod nvidia;
pub mod snp;
pub mod tdx;
/// The simulated SEV-SNP TEE (`--simulate`): a random per-directory development chain.
pub mod tee;
/// The shared real-hardware vector corpus and its MANIFEST `[expect]` tables.
pub mod vectors;
pub mod x509;

pub use amd::{
    AmdCertProfile, AmdIssuer, AmdLeafBuilder, AmdLeafKind, AmdRole, FakeAmd, FakeAmdLeaf,
    FakeProduct,
};
pub use collateral::{QeIdentityBuilder, TcbInfoBuilder, TdxCollateral, TdxCollateralBuilder};
pub use intel::{FakeIntel, FakePckLeaf, IntelAuthority, PckLeafBuilder};
pub use keys::{FakeP256Key, FakeP384Key, FakeRsaKey, KeyError};
pub use snp::{tcb_version, SnpReportBuilder, SnpSigningKey, SnpTcb};
pub use tdx::{QeReport, TdxQuoteBuilder, TdxQuoteFormat};
pub use tee::{SimError, SimulatedSnp, SIMULATED_ORG_UNIT};

/// The time at which every default certificate and collateral item is
/// valid: 2026-06-01T00:00:00Z, in Unix seconds.
pub const DEFAULT_AT: i64 = 1_780_272_000;

/// Default notBefore of fake certificates: 2025-01-01T00:00:00Z.
pub const DEFAULT_NOT_BEFORE: i64 = 1_735_689_600;

/// Default notAfter of fake CA and leaf certificates: 2049-12-31T23:59:59Z.
pub const DEFAULT_NOT_AFTER: i64 = 2_524_607_999;

/// RFC 3339 text ("2026-06-01T00:00:00Z") of a Unix time, as Intel writes
/// issueDate / nextUpdate / tcbDate.
pub fn rfc3339(unix_secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .expect("time within the range the time crate supports");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A complete default SEV-SNP evidence set: report, leaf and AMD chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpEvidence {
    /// 1184-byte report signed by the leaf.
    pub report: Vec<u8>,
    /// VCEK (or VLEK) DER.
    pub leaf_der: Vec<u8>,
    /// ASK (for a VCEK) or ASVK (for a VLEK) DER.
    pub intermediate_der: Vec<u8>,
    /// Self-signed ARK DER (the fake trust anchor).
    pub ark_der: Vec<u8>,
}

/// The default VCEK-signed report of `product` with its chain; a verifier
/// trusting the fake ARK should accept it at [`DEFAULT_AT`].
pub fn default_snp_evidence(product: FakeProduct) -> SnpEvidence {
    let amd = FakeAmd::new(product);
    let vcek = amd.vcek().build();
    SnpEvidence {
        report: SnpReportBuilder::for_leaf(&vcek).sign(&vcek),
        leaf_der: vcek.der,
        intermediate_der: amd.ask_der().to_vec(),
        ark_der: amd.ark_der().to_vec(),
    }
}

/// A complete default TDX evidence set: quote, collateral and fake root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxEvidence {
    pub quote: Vec<u8>,
    pub collateral: TdxCollateral,
    /// The fake "Intel SGX Root CA" DER (the trust anchor).
    pub root_der: Vec<u8>,
}

/// The default v4 quote with its collateral; dcap-qvl with the fake root
/// accepts it at [`DEFAULT_AT`] with status UpToDate.
pub fn default_tdx_evidence() -> TdxEvidence {
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    TdxEvidence {
        quote: TdxQuoteBuilder::new().build(&intel, &pck),
        collateral: TdxCollateralBuilder::new(&intel).build(&intel),
        root_der: intel.root_der().to_vec(),
    }
}
