//! Every way a connection can be refused, as a typed error with a stable code.

use attestation::Rejection;

/// Why the client refused a server or could not reach it. Match on the variant (and, for
/// `Evidence`, on the attestation [`attestation::Reason`]); [`ClientError::code`] is the
/// stable string printed by the CLI.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The evidence, its binding or the runtime claims failed the policy.
    #[error("{0}")]
    Evidence(Rejection),
    /// The server did not speak TLS at all (a plain-HTTP server, for instance).
    #[error("not_tls: {0}")]
    NotTls(String),
    /// The TLS handshake failed for another reason.
    #[error("tls_handshake_failed: {0}")]
    Tls(String),
    /// The TCP connection could not be made.
    #[error("connect_failed: {0}")]
    Connect(String),
    /// HTTP failed after verification.
    #[error("http_error: {0}")]
    Http(String),
    /// The URL is not one the client can use.
    #[error("bad_url: {0}")]
    BadUrl(String),
}

impl ClientError {
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Evidence(r) => r.reason.code(),
            ClientError::NotTls(_) => "not_tls",
            ClientError::Tls(_) => "tls_handshake_failed",
            ClientError::Connect(_) => "connect_failed",
            ClientError::Http(_) => "http_error",
            ClientError::BadUrl(_) => "bad_url",
        }
    }

    /// True when the server was reached and refused by verification (exit status 1);
    /// false for usage and transport problems (exit status 2).
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Evidence(_) | ClientError::NotTls(_))
    }
}
