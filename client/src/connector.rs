//! The verifying connector: TLS to the runtime, evidence from its certificate verified
//! against the caller's policy, the certificate's key checked against the bound claims,
//! optionally a fresh nonce answered, and only then an HTTP connection handed back.
//!
//! Nothing but the TLS ClientHello leaves before the certificate's evidence is verified:
//! the check runs inside the handshake (a rustls `ServerCertVerifier`), so a rejected
//! server never receives an application byte. rustls then checks the handshake signature
//! with that same certificate key, which proves the server holds the attested key.

use crate::error::ClientError;
use attestation::binding::{spki_sha256, PolicyFile};
use attestation::bundle::{AttestedRuntime, EvidenceBundle};
use attestation::{Rejection, Timestamp};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a verified certificate is trusted without verifying its evidence again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);

/// A connection whose server passed verification.
pub struct AttestedConnection {
    pub sender: SendRequest<Full<Bytes>>,
    /// What was verified: evidence and the claims bound to it.
    pub attested: Arc<AttestedRuntime>,
    /// The server certificate's SubjectPublicKeyInfo (the attested TLS key).
    pub server_spki: Vec<u8>,
    /// Whether the certificate's verification came from the cache.
    pub from_cache: bool,
    /// The fresh evidence that answered the caller's nonce, when one was asked for.
    pub fresh: Option<AttestedRuntime>,
}

impl AttestedConnection {
    /// Send one request on the verified connection, once it is ready (the previous
    /// exchange may still be finishing).
    pub async fn send(
        &mut self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }
}

/// The host and port of an `https://` URL (the path, if any, is the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let rest = url.strip_prefix("https://").ok_or_else(|| {
            ClientError::BadUrl(format!(
                "{url}: only https:// URLs (the runtime serves attested TLS only)"
            ))
        })?;
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| ClientError::BadUrl(format!("{url}: bad port {p:?}")))?,
            ),
            _ => (authority, 443),
        };
        if host.is_empty() {
            return Err(ClientError::BadUrl(format!("{url}: no host")));
        }
        Ok(Target {
            host: host.to_owned(),
            port,
        })
    }
}

type Cache = Mutex<HashMap<[u8; 32], (Arc<AttestedRuntime>, Instant)>>;

/// Connects to attested runtimes under one policy, caching verifications per certificate.
pub struct Connector {
    policy: Arc<PolicyFile>,
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<EvidenceVerifier>,
}

impl Connector {
    pub fn new(policy: PolicyFile) -> Self {
        Self::with_cache_ttl(policy, DEFAULT_CACHE_TTL)
    }

    pub fn with_cache_ttl(policy: PolicyFile, ttl: Duration) -> Self {
        let policy = Arc::new(policy);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(EvidenceVerifier {
            policy: Arc::clone(&policy),
            cache: Arc::default(),
            ttl,
            provider: Arc::clone(&provider),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Connector {
            policy,
            config: Arc::new(config),
            verifier,
        }
    }

    pub fn policy(&self) -> &PolicyFile {
        &self.policy
    }

    /// Forget every cached verification.
    pub fn clear_cache(&self) {
        self.verifier.cache.lock().expect("cache lock").clear();
    }

    /// Connect, verify, and (with `nonce`) ask for fresh evidence answering it.
    pub async fn connect(
        &self,
        target: &Target,
        nonce: Option<&[u8]>,
    ) -> Result<AttestedConnection, ClientError> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| ClientError::Connect(format!("{}:{}: timed out", target.host, target.port)))?
        .map_err(|e| ClientError::Connect(format!("{}:{}: {e}", target.host, target.port)))?;
        let _ = tcp.set_nodelay(true);
        let handshake_started = Instant::now();
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| ClientError::BadUrl(format!("{}: {e}", target.host)))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let tls = tokio::time::timeout(Duration::from_secs(30), connector.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Tls("the TLS handshake timed out".into()))?
            .map_err(handshake_error)?;
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| ClientError::Tls("the server sent no certificate".into()))?;
        let spki = spki_of(cert).map_err(ClientError::Evidence)?;
        // A resumed TLS session skips the verifier inside the handshake; its certificate
        // is the original session's. Look it up, or verify it now: still before any
        // application byte is sent.
        let (attested, verified_at) = self
            .verifier
            .lookup_or_verify(cert)
            .map_err(ClientError::Evidence)?;
        let from_cache = verified_at < handshake_started;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(conn);
        let mut connection = AttestedConnection {
            sender,
            attested,
            server_spki: spki,
            from_cache,
            fresh: None,
        };
        if let Some(nonce) = nonce {
            let fresh = self.fresh_evidence(&mut connection, nonce).await?;
            connection.fresh = Some(fresh);
        }
        Ok(connection)
    }

    /// `GET /v1/attestation?nonce=..` on the verified connection: the fresh evidence must
    /// verify, carry exactly this nonce, and bind the same TLS key.
    async fn fresh_evidence(
        &self,
        conn: &mut AttestedConnection,
        nonce: &[u8],
    ) -> Result<AttestedRuntime, ClientError> {
        let req = hyper::Request::get(format!("/v1/attestation?nonce={}", hex::encode(nonce)))
            .header("host", "veritee")
            .body(Full::new(Bytes::new()))
            .expect("static request parts");
        let resp = conn
            .send(req)
            .await
            .map_err(|e| ClientError::Http(format!("/v1/attestation: {e}")))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(format!("/v1/attestation: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(ClientError::Http(format!(
                "/v1/attestation answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let fresh = EvidenceBundle::from_cbor(&body)
            .and_then(|b| b.verify_with(&self.policy, now()))
            .map_err(ClientError::Evidence)?;
        fresh.require_nonce(nonce).map_err(ClientError::Evidence)?;
        fresh
            .require_tls_key(&conn.server_spki)
            .map_err(ClientError::Evidence)?;
        Ok(fresh)
    }
}

/// A random nonce of 32 bytes for `/v1/attestation`.
pub fn random_nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    aws_lc_rs::rand::fill(&mut n).expect("the system RNG works");
    n
}

fn now() -> Timestamp {
    Timestamp::from_unix(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

fn spki_of(cert: &[u8]) -> Result<Vec<u8>, Rejection> {
    let cert = attestation::x509::parse_cert(cert, "server certificate")?;
    Ok(cert.public_key().raw.to_vec())
}

/// Turn a failed handshake into the typed reason: our verifier's rejection travels inside
/// rustls' `Error::Other`.
fn handshake_error(e: std::io::Error) -> ClientError {
    if let Some(rustls_error) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        if let rustls::Error::Other(other) = rustls_error {
            if let Some(rejection) = other.0.downcast_ref::<Rejection>() {
                return ClientError::Evidence(rejection.clone());
            }
        }
        if matches!(rustls_error, rustls::Error::InvalidMessage(_)) {
            return ClientError::NotTls(format!(
                "the server did not answer with TLS ({rustls_error}); a plain-HTTP server is never trusted"
            ));
        }
        return ClientError::Tls(rustls_error.to_string());
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return ClientError::NotTls(
            "the server closed the connection instead of answering the TLS handshake".into(),
        );
    }
    ClientError::Tls(e.to_string())
}

#[derive(Debug)]
struct EvidenceVerifier {
    policy: Arc<PolicyFile>,
    cache: Arc<Cache>,
    ttl: Duration,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl EvidenceVerifier {
    /// The cached verification of this exact certificate, or a fresh one (then cached).
    fn lookup_or_verify(&self, cert: &[u8]) -> Result<(Arc<AttestedRuntime>, Instant), Rejection> {
        let digest = attestation::x509::sha256(cert);
        {
            let mut cache = self.cache.lock().expect("cache lock");
            cache.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if let Some((attested, at)) = cache.get(&digest) {
                return Ok((Arc::clone(attested), *at));
            }
        }
        let attested = Arc::new(self.verify(cert)?);
        let at = Instant::now();
        self.cache
            .lock()
            .expect("cache lock")
            .insert(digest, (Arc::clone(&attested), at));
        Ok((attested, at))
    }

    fn verify(&self, cert: &[u8]) -> Result<AttestedRuntime, Rejection> {
        let spki = spki_of(cert)?;
        let attested = EvidenceBundle::from_certificate(cert)?.verify_with(&self.policy, now())?;
        attested.require_tls_key(&spki)?;
        debug_assert_eq!(attested.claims().tls_spki_sha256, spki_sha256(&spki));
        Ok(attested)
    }
}

impl ServerCertVerifier for EvidenceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.lookup_or_verify(end_entity) {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(rejection) => Err(rustls::Error::Other(rustls::OtherError(Arc::new(
                rejection,
            )))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_https_urls_only() {
        assert_eq!(
            Target::parse("https://127.0.0.1:8443/v1").unwrap(),
            Target {
                host: "127.0.0.1".into(),
                port: 8443
            }
        );
        assert_eq!(Target::parse("https://example.com").unwrap().port, 443);
        assert_eq!(Target::parse("https://[::1]:9").unwrap().host, "::1");
        assert!(matches!(
            Target::parse("http://127.0.0.1:8443"),
            Err(ClientError::BadUrl(_))
        ));
        assert!(matches!(
            Target::parse("https://h:notaport"),
            Err(ClientError::BadUrl(_))
        ));
    }
}
