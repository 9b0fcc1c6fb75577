//! The client side of veritee: verify a runtime's attestation before a single prompt byte
//! leaves this machine.
//!
//! [`connector::Connector`] opens TLS to the runtime and verifies the evidence bundle in
//! its certificate inside the handshake (parse → verify → appraise → bind, with the
//! `attestation` crate), checks that the bound claims name the certificate's key and
//! satisfy the policy's `[runtime]` section, optionally asks `/v1/attestation` to answer a
//! fresh nonce, and only then hands back an HTTP connection. Verifications are cached per
//! certificate. Every refusal is a typed [`error::ClientError`].
//!
//! [`receipts`] checks the usage receipt each answer carries against the evidence the
//! connection verified and against the exchange itself (request and response hashes).
//!
//! The `veritee` command (`src/main.rs`) builds `attest`, `chat` and `proxy` on it; `chat`
//! and `proxy` check every answer's receipt.

pub mod connector;
pub mod error;
/// Fuzz-target entry points (`fuzz/`): public for the fuzz crate and the seed test, not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod proxy;
pub mod receipts;
pub mod sse;

pub use connector::{AttestedConnection, Connector, Target};
pub use error::ClientError;

/// Load a policy file (evidence policy plus `[runtime]`).
pub fn load_policy(path: &std::path::Path) -> Result<attestation::binding::PolicyFile, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("policy {}: {e}", path.display()))?;
    attestation::binding::PolicyFile::from_toml(&text)
        .map_err(|e| format!("policy {}: {e}", path.display()))
}
