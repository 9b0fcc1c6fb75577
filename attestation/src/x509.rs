//! Certificate and CRL helpers shared by the SNP and TDX verifiers.
//!
//! Parsing is x509-parser's; every signature is checked (crate::crypto) over the exact bytes
//! received (the TBS bytes of a certificate or CRL), never over a re-encoding.

use crate::crypto::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use x509_parser::prelude::*;

const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_CURVE_P256: &str = "1.2.840.10045.3.1.7";
const OID_CURVE_P384: &str = "1.3.132.0.34";

/// The elliptic curves our evidence is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    fn oid(self) -> &'static str {
        match self {
            Curve::P256 => OID_CURVE_P256,
            Curve::P384 => OID_CURVE_P384,
        }
    }
}

/// The named-curve OID of a public key's algorithm parameters, if any.
fn curve_oid(key: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    key.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string())
}

/// The certificate's EC public key (uncompressed point) if it is on `curve`, else
/// `UnsupportedAlgorithm` naming `what`.
pub fn ec_public_key<'a>(
    cert: &'a X509Certificate<'_>,
    curve: Curve,
    what: &str,
) -> Result<&'a [u8], Rejection> {
    let spki = cert.public_key();
    let found = curve_oid(spki);
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY
        || found.as_deref() != Some(curve.oid())
    {
        return reject(
            Reason::UnsupportedAlgorithm,
            format!("{what} key is not an ECDSA {curve:?} key (curve {found:?})"),
        );
    }
    Ok(&spki.subject_public_key.data)
}

/// Parse one DER certificate; bytes after it are an error (`what` names it in messages).
pub fn parse_cert<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, Rejection> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => reject(
            Reason::TrailingData,
            format!("{what}: {} bytes after the certificate", rest.len()),
        ),
        Err(e) => reject(Reason::MalformedCertificate, format!("{what}: {e}")),
    }
}

/// Parse one DER CRL; bytes after it are an error.
pub fn parse_crl<'a>(
    der: &'a [u8],
    what: &str,
) -> Result<CertificateRevocationList<'a>, Rejection> {
    match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => Ok(crl),
        Ok((rest, _)) => reject(
            Reason::TrailingData,
            format!("{what}: {} bytes after the CRL", rest.len()),
        ),
        Err(e) => reject(Reason::MalformedCrl, format!("{what}: {e}")),
    }
}

/// A PEM block's label and DER contents.
pub struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// Every PEM block in `text`, in order. Text with no PEM block gives an empty list.
pub fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, Rejection> {
    let mut blocks = Vec::new();
    for item in Pem::iter_from_buffer(text) {
        match item {
            Ok(pem) => blocks.push(PemBlock {
                label: pem.label,
                der: pem.contents,
            }),
            Err(x509_parser::error::PEMError::MissingHeader) => break,
            Err(e) => return reject(Reason::MalformedCertificate, format!("PEM: {e}")),
        }
    }
    Ok(blocks)
}

/// Every certificate (DER) in a PEM text, in order.
pub fn certs_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, Rejection> {
    Ok(pem_blocks(text)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect())
}

/// The subject's first common name, if any.
pub fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// Organisational unit of every certificate of a simulated-TEE development chain (the
/// `sim` crate writes it). A root carrying it is reported as
/// [`Reason::SimulatedRootNotTrusted`] rather than a generic untrusted root, so a developer
/// sees at once that the policy lacks the `dangerous_trusted_roots` entry.
pub const SIMULATED_ORG_UNIT: &str = "veritee SIMULATED TEE - development only - never trust";

/// Whether the certificate's subject names the simulated TEE's development chain.
pub fn is_simulated(cert: &X509Certificate<'_>) -> bool {
    cert.subject()
        .iter_organizational_unit()
        .any(|ou| ou.as_str().ok() == Some(SIMULATED_ORG_UNIT))
}

/// An X.509 time as RFC 3339 UTC, the one format every message uses.
pub fn rfc3339(t: &ASN1Time) -> String {
    Timestamp::from_unix(t.timestamp()).to_rfc3339()
}

/// Check notBefore <= at <= notAfter.
pub fn check_validity(
    cert: &X509Certificate<'_>,
    at: Timestamp,
    what: &str,
) -> Result<(), Rejection> {
    let validity = cert.validity();
    if at.unix() < validity.not_before.timestamp() {
        return reject(
            Reason::CertificateNotYetValid,
            format!(
                "{what} is not valid before {}; verification time {at}",
                rfc3339(&validity.not_before)
            ),
        );
    }
    if at.unix() > validity.not_after.timestamp() {
        return reject(
            Reason::CertificateExpired,
            format!(
                "{what} expired {}; verification time {at}",
                rfc3339(&validity.not_after)
            ),
        );
    }
    Ok(())
}

/// The verification algorithm for a signature OID and an issuer key, or `UnsupportedAlgorithm`.
fn algorithm_for(
    sig_oid: &str,
    issuer_key: &SubjectPublicKeyInfo<'_>,
    what: &str,
) -> Result<&'static dyn VerificationAlgorithm, Rejection> {
    let curve = curve_oid(issuer_key);
    match (sig_oid, curve.as_deref()) {
        // AMD signs ASK/ASVK/VCEK/VLEK with RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48:
        // exactly RSA_PSS_*_SHA384, so other parameters fail verification.
        (OID_RSASSA_PSS, _) => Ok(&signature::RSA_PSS_2048_8192_SHA384),
        (OID_ECDSA_SHA256, Some(OID_CURVE_P256)) => Ok(&signature::ECDSA_P256_SHA256_ASN1),
        (OID_ECDSA_SHA384, Some(OID_CURVE_P384)) => Ok(&signature::ECDSA_P384_SHA384_ASN1),
        _ => reject(
            Reason::UnsupportedAlgorithm,
            format!("{what}: signature algorithm {sig_oid} with issuer key curve {curve:?}"),
        ),
    }
}

/// Verify an X.509-style signature (`sig_oid`, `sig`) over `message` with `issuer_key`.
pub fn verify_x509_signature(
    sig_oid: &str,
    issuer_key: &SubjectPublicKeyInfo<'_>,
    message: &[u8],
    sig: &[u8],
    what: &str,
) -> Result<(), crate::crypto::error::Unspecified> {
    let alg =
        algorithm_for(sig_oid, issuer_key, what).map_err(|_| crate::crypto::error::Unspecified)?;
    UnparsedPublicKey::new(alg, &issuer_key.subject_public_key.data).verify(message, sig)
}

/// Check that `child` names `issuer` as its issuer and carries a valid signature by it.
pub fn verify_issued_by(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    what: &str,
) -> Result<(), Rejection> {
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return reject(
            Reason::IssuerMismatch,
            format!(
                "{what}: issuer \"{}\" is not \"{}\"",
                child.issuer(),
                issuer.subject()
            ),
        );
    }
    let oid = child.signature_algorithm.algorithm.to_id_string();
    algorithm_for(&oid, issuer.public_key(), what)?;
    verify_x509_signature(
        &oid,
        issuer.public_key(),
        child.tbs_certificate.as_ref(),
        &child.signature_value.data,
        what,
    )
    .map_err(|_| {
        Rejection::new(
            Reason::CertificateSignatureInvalid,
            format!(
                "{what}: signature by \"{}\" does not verify",
                issuer.subject()
            ),
        )
    })
}

/// Check that a CRL is issued and signed by `issuer` and current at `at`.
pub fn verify_crl(
    crl: &CertificateRevocationList<'_>,
    issuer: &X509Certificate<'_>,
    at: Timestamp,
    what: &str,
) -> Result<(), Rejection> {
    if crl.issuer().as_raw() != issuer.subject().as_raw() {
        return reject(
            Reason::IssuerMismatch,
            format!(
                "{what}: CRL issuer \"{}\" is not \"{}\"",
                crl.issuer(),
                issuer.subject()
            ),
        );
    }
    let oid = crl.signature_algorithm.algorithm.to_id_string();
    algorithm_for(&oid, issuer.public_key(), what)?;
    verify_x509_signature(
        &oid,
        issuer.public_key(),
        crl.tbs_cert_list.as_ref(),
        &crl.signature_value.data,
        what,
    )
    .map_err(|_| {
        Rejection::new(
            Reason::CrlSignatureInvalid,
            format!(
                "{what}: CRL signature by \"{}\" does not verify",
                issuer.subject()
            ),
        )
    })?;
    if at.unix() < crl.last_update().timestamp() {
        return reject(
            Reason::CollateralNotYetValid,
            format!(
                "{what}: CRL thisUpdate {} is after the verification time {at}",
                rfc3339(&crl.last_update())
            ),
        );
    }
    if let Some(next) = crl.next_update() {
        // nextUpdate is exclusive, as webpki and our TDX collateral check treat it.
        if at.unix() >= next.timestamp() {
            return reject(
                Reason::CollateralExpired,
                format!(
                    "{what}: CRL nextUpdate {} is not after the verification time {at}",
                    rfc3339(&next)
                ),
            );
        }
    }
    Ok(())
}

/// Whether `cert`'s serial number is listed on `crl` (serials compared as raw bytes).
pub fn is_revoked(crl: &CertificateRevocationList<'_>, cert: &X509Certificate<'_>) -> bool {
    let serial = strip_leading_zeros(cert.raw_serial());
    crl.iter_revoked_certificates()
        .any(|r| strip_leading_zeros(r.raw_serial()) == serial)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The value of the one extension with this OID; absent is `None`, duplicates are
/// malformed (two values for one field would let different verifiers read different
/// things).
pub fn unique_extension<'a>(
    cert: &'a X509Certificate<'_>,
    oid: &str,
    what: &str,
) -> Result<Option<&'a [u8]>, Rejection> {
    let mut found = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == oid {
            if found.is_some() {
                return reject(
                    Reason::MalformedCertificate,
                    format!("{what}: extension {oid} appears twice"),
                );
            }
            found = Some(ext.value);
        }
    }
    Ok(found)
}

/// SHA-256 of a byte string (certificate pinning, digests in claims).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = crate::crypto::digest::digest(&crate::crypto::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}
