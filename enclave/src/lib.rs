//! The guest runtime that runs inside the confidential VM.
//!
//! At start it loads the model, generates its TLS and receipt-signing keys in memory,
//! states its claims (keys, model digest, launch configuration digest), asks the platform
//! for evidence with `REPORT_DATA = SHA-512(claims)`, and serves an OpenAI-compatible API
//! over TLS whose certificate carries that evidence (`id-pe-cmw`). There is no plain-HTTP
//! listener. Data flow and trust boundaries are in the README's architecture section.
//!
//! - [`platform`]: TEE detection and evidence (configfs-tsm, `/dev/sev-guest`) and the
//!   host's collateral directory.
//! - [`attester`]: in-enclave keys, runtime claims, evidence bundles, and the simulated
//!   TEE source (feature `simulate`, never in a release image).
//! - [`tls`]: the attested certificate and rustls configuration.
//! - [`engine`]: the model behind a bounded queue and a fixed set of engine threads.
//! - [`openai`], [`api`]: the wire format and the routes; [`metrics`]: Prometheus.
//! - [`receipts`]: per-job metering facts into signed, chained receipts;
//!   [`receipt_log`]: their durable log; [`audit_export`]: audit bundles from it.
//! - [`server`]: accept, handshake, HTTP/1.1, graceful shutdown.
//! - `cheat` (feature `simulate` only): a DANGEROUS cheating provider for testing the
//!   auditor's re-execution (`serve --simulate --dangerous-cheat MODE`).

pub mod api;
pub mod attester;
pub mod audit_export;
#[cfg(feature = "simulate")]
pub mod cheat;
pub mod config;
mod durable_fs;
pub mod engine;
/// Fuzz-target entry points (`fuzz/`): public for the fuzz crate and the seed test, not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod gpu;
pub mod metrics;
pub mod openai;
pub mod platform;
pub mod receipt_log;
pub mod receipts;
pub mod server;
pub mod startup;
pub mod tls;

/// What the runtime claims to be (claim 5).
pub const RUNTIME_VERSION: &str = concat!("veritee-enclave ", env!("CARGO_PKG_VERSION"));

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    attestation::x509::sha256(bytes)
}
