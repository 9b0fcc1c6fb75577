//! Evidence formats, verification and policy appraisal for confidential VMs.
//!
//! This crate answers one question: is this evidence genuine hardware evidence that our
//! policy accepts? It follows four layers per platform (the README's trust rules):
//!
//! 1. **parse** bytes into typed structures ([`snp::SnpReport`], [`tdx::Quote`],
//!    [`nvidia::SpdmEvidence`] for an NVIDIA GPU's evidence),
//! 2. **verify** signatures, certificate chains and collateral at a caller-given time
//!    ([`snp::verify`], [`tdx::verify`], [`nvidia::verify`], [`nvidia::verify_rim`]); only
//!    these functions can build a `Verified…` value,
//! 3. **appraise** verified claims against an explicit [`policy::Policy`],
//! 4. **bind** report data to the runtime's claims, its TLS key and a caller's nonce
//!    ([`binding`]); [`bundle`] carries evidence and claims as one CMW collection.
//!
//! [`receipt`] signs and verifies per-job usage receipts and checks a receipt log's chain;
//! [`transcript`] seals each audited job's transcript to the auditor and checks it against
//! its receipt.
//! [`audit`] holds a provider's evidence, receipts and transcripts in one offline bundle.
//!
//! The crate does no I/O, never reads the clock and never touches the network: time,
//! certificates and collateral are inputs. Every rejection carries a stable, typed
//! [`Reason`] code.

pub mod audit;
pub mod binding;
pub mod bundle;
mod cache;
pub mod evidence;
/// Fuzz-target entry points (`fuzz/`), whose seed corpus runs in `tests/fuzz_seeds.rs`:
/// public for the fuzz crate and the seed tests, not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod inputs;
pub mod nvidia;
pub mod policy;
pub mod reason;
pub mod receipt;
pub mod snp;
pub mod tdx;
#[cfg(test)]
mod testing;
pub mod time;
pub mod transcript;
pub mod x509;

/// The signature and digest backend for every check this crate makes itself. aws-lc-rs
/// (ring's API) because its P-384 ECDSA verify is ~3.6x ring's; see the README.
pub(crate) use aws_lc_rs as crypto;

pub use reason::{Reason, ReasonClass, Rejection};
pub use time::Timestamp;
