//! The attested TLS certificate: self-signed by the in-enclave TLS key, carrying the
//! evidence bundle in the `id-pe-cmw` extension (1.3.6.1.5.5.7.1.35).
//!
//! Clients do not trust this certificate through a CA: they verify the evidence in it,
//! check that the bound claims name this certificate's public key, and rely on the TLS
//! handshake signature to prove the server holds that key.

use attestation::bundle::EvidenceBundle;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// id-pe-cmw, as rcgen wants it.
const OID_PE_CMW: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 35];

/// Build the certificate for `key` (the runtime's TLS key) with `bundle` inside, valid from an hour ago for
/// `validity_days` (clients bind to the key and evidence, not to these dates).
pub fn attested_certificate(
    key: &rcgen::KeyPair,
    bundle: &EvidenceBundle,
    names: &[String],
    validity_days: i64,
) -> Result<CertificateDer<'static>, String> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| format!("certificate names: {e}"))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "veritee attested runtime");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(validity_days);
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            OID_PE_CMW,
            bundle.to_extension_value(),
        ));
    let cert = params
        .self_signed(key)
        .map_err(|e| format!("signing the attested certificate: {e}"))?;
    Ok(cert.der().clone())
}

/// rustls server configuration: TLS 1.3 and 1.2 with the aws-lc-rs provider, HTTP/1.1.
pub fn server_config(
    key: &rcgen::KeyPair,
    cert: CertificateDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS versions: {e}"))?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .map_err(|e| format!("TLS certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
