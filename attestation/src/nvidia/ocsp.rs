//! OCSP responses (RFC 6960) for the GPU device chain, as offline inputs.
//!
//! NVIDIA publishes the status of device-chain certificates only through its OCSP service
//! (ocsp.ndis.nvidia.com); an offline verifier takes responses fetched beforehand. Like an
//! AMD CRL, every supplied response is verified or verification fails: responseStatus
//! successful, a basic response whose signature over the **received** tbsResponseData
//! bytes verifies with an authorized responder's key, the CertID naming a certificate of
//! the chain, thisUpdate <= at < nextUpdate, and the status `good` (`revoked` is
//! `certificate_revoked` with the time and the certificate; `unknown` is
//! `ocsp_status_unknown`).
//!
//! Authorized responder: the certificate's issuer itself, or (as NVIDIA's verifier
//! accepts: the first certificate embedded in the response, verified as a chain with the
//! device chain above it) a certificate embedded in the response with the id-kp-OCSPSigning
//! EKU, issued by the certificate's issuer or a certificate above it up to the pinned root,
//! valid at the verification time. No real NVIDIA OCSP response is in the corpus yet, so
//! that NVIDIA's responder certificates carry the EKU is an assumption the first real
//! response will test (a response without it is refused, `ocsp_responder_untrusted`).
//!
//! Which certificates need a response: every one below the root except the per-boot
//! attestation leaf, which the GPU makes at boot and NVIDIA's OCSP service does not know
//! (NVIDIA's verifier starts its OCSP checks at the device certificate too).
//!
//! The parser is written here rather than taken from RustCrypto's `x509-ocsp`: that crate
//! (0.2) brings a second RustCrypto stack (der 0.7, x509-cert 0.2) next to the der 0.8 the
//! lockfile holds and to x509-parser, which this crate uses for every certificate; and it
//! decodes into structs, while the signature must be checked over the received
//! tbsResponseData bytes (trust rule 5), which its types do not keep. The subset read here
//! is small (one SEQUENCE walk), strict DER (minimal lengths, no indefinite form), fuzzed.

use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use x509_parser::prelude::*;

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1), content octets.
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];

/// The status an OCSP SingleResponse gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        time: Timestamp,
        /// CRLReason code, when given.
        reason: Option<u8>,
    },
    Unknown,
}

/// The CertID of a SingleResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId<'a> {
    /// DER content octets of the hash algorithm's OID.
    pub hash_oid: &'a [u8],
    pub issuer_name_hash: &'a [u8],
    pub issuer_key_hash: &'a [u8],
    /// INTEGER content octets.
    pub serial: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleResponse<'a> {
    pub cert_id: CertId<'a>,
    pub status: CertStatus,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderId<'a> {
    /// The responder's subject Name (DER).
    ByName(&'a [u8]),
    /// SHA-1 of the responder's public key (BIT STRING contents).
    ByKey(&'a [u8]),
}

/// A parsed, successful basic OCSP response; nothing in it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspResponse<'a> {
    /// The received tbsResponseData TLV: what the signature covers.
    pub tbs: &'a [u8],
    pub responder_id: ResponderId<'a>,
    pub produced_at: Timestamp,
    pub responses: Vec<SingleResponse<'a>>,
    /// DER content octets of the signature algorithm's OID.
    pub signature_oid: &'a [u8],
    pub signature: &'a [u8],
    /// Embedded certificates (DER), in order.
    pub certs: Vec<&'a [u8]>,
}

/// A strict DER reader over `full[pos..end]`, offsets relative to `full` for messages.
struct Der<'a> {
    full: &'a [u8],
    pos: usize,
    end: usize,
    what: &'a str,
}

impl<'a> Der<'a> {
    fn new(full: &'a [u8], what: &'a str) -> Self {
        Der {
            full,
            pos: 0,
            end: full.len(),
            what,
        }
    }

    fn err<T>(&self, at: usize, msg: impl std::fmt::Display) -> Result<T, Rejection> {
        reject(
            Reason::MalformedOcsp,
            format!("{}: {msg} at offset {at}", self.what),
        )
    }

    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.full[self.pos])
    }

    fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    /// The next TLV: (tag, content reader, whole TLV bytes).
    fn any(&mut self, field: &str) -> Result<(u8, Der<'a>, &'a [u8]), Rejection> {
        let start = self.pos;
        let bytes = &self.full[start..self.end];
        let Some(&tag) = bytes.first() else {
            return self.err(start, format!("{field}: truncated (no tag)"));
        };
        if tag & 0x1f == 0x1f {
            return self.err(start, format!("{field}: high tag numbers are not used"));
        }
        let Some(&first) = bytes.get(1) else {
            return self.err(start, format!("{field}: truncated (no length)"));
        };
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 {
                return self.err(
                    start,
                    format!("{field}: unsupported length form {first:#04x}"),
                );
            }
            let Some(len_bytes) = bytes.get(2..2 + n) else {
                return self.err(start, format!("{field}: truncated length"));
            };
            if len_bytes[0] == 0 {
                return self.err(start, format!("{field}: non-minimal length"));
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return self.err(start, format!("{field}: non-minimal length"));
            }
            (len, 2 + n)
        };
        if bytes.len() - header < len {
            return self.err(
                start,
                format!(
                    "{field}: length {len} exceeds the {} bytes left",
                    bytes.len() - header
                ),
            );
        }
        let content = Der {
            full: self.full,
            pos: start + header,
            end: start + header + len,
            what: self.what,
        };
        self.pos = start + header + len;
        Ok((tag, content, &self.full[start..self.pos]))
    }

    fn expect(&mut self, tag: u8, field: &str) -> Result<Der<'a>, Rejection> {
        let start = self.pos;
        let (t, content, _) = self.any(field)?;
        if t != tag {
            return self.err(start, format!("{field}: tag {t:#04x}, expected {tag:#04x}"));
        }
        Ok(content)
    }

    fn bytes(&self) -> &'a [u8] {
        &self.full[self.pos..self.end]
    }

    fn finish(&self, field: &str) -> Result<(), Rejection> {
        if !self.at_end() {
            return self.err(self.pos, format!("{field}: unexpected trailing data"));
        }
        Ok(())
    }

    fn generalized_time(&mut self, field: &str) -> Result<Timestamp, Rejection> {
        let start = self.pos;
        let content = self.expect(0x18, field)?;
        let text = content.bytes();
        parse_generalized_time(text).ok_or_else(|| {
            Rejection::new(
                Reason::MalformedOcsp,
                format!(
                    "{}: {field}: {:?} is not a DER GeneralizedTime YYYYMMDDHHMMSSZ at offset {start}",
                    self.what,
                    String::from_utf8_lossy(text)
                ),
            )
        })
    }
}

fn parse_generalized_time(text: &[u8]) -> Option<Timestamp> {
    if text.len() != 15 || text[14] != b'Z' || !text[..14].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| {
        text[r]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    let month = ::time::Month::try_from(u8::try_from(n(4..6)).ok()?).ok()?;
    let date = ::time::Date::from_calendar_date(i32::try_from(n(0..4)).ok()?, month, n(6..8) as u8)
        .ok()?;
    let t = ::time::Time::from_hms(n(8..10) as u8, n(10..12) as u8, n(12..14) as u8).ok()?;
    Some(Timestamp::from_unix(
        ::time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    ))
}

/// Whether `bytes` look like a DER OCSPResponse: a SEQUENCE whose first element is the
/// one-byte ENUMERATED responseStatus (recognition only; [`parse`] decides).
pub fn looks_like_ocsp_response(bytes: &[u8]) -> bool {
    let mut der = Der::new(bytes, "");
    let Ok((0x30, content, _)) = der.any("") else {
        return false;
    };
    der.at_end() && content.bytes().starts_with(&[0x0a, 0x01])
}

/// Parse a DER OCSPResponse. `what` names it in messages ("OCSP response #0").
pub fn parse<'a>(der: &'a [u8], what: &'a str) -> Result<OcspResponse<'a>, Rejection> {
    let mut top = Der::new(der, what);
    let mut resp = top.expect(0x30, "OCSPResponse")?;
    top.finish("OCSPResponse")?;
    let status = resp.expect(0x0a, "responseStatus")?;
    if status.bytes() != [0] {
        return reject(
            Reason::OcspUnsuccessful,
            format!(
                "{what}: responseStatus is {} (0 is successful; 1 malformedRequest, 2 \
                 internalError, 3 tryLater, 5 sigRequired, 6 unauthorized)",
                status.bytes().first().copied().unwrap_or(0xff)
            ),
        );
    }
    let mut bytes = resp
        .expect(0xa0, "responseBytes")?
        .expect(0x30, "ResponseBytes")?;
    resp.finish("OCSPResponse")?;
    let oid_at = bytes.pos;
    let oid = bytes.expect(0x06, "responseType")?;
    if oid.bytes() != OID_OCSP_BASIC {
        return bytes.err(oid_at, "responseType is not id-pkix-ocsp-basic");
    }
    let octets = bytes.expect(0x04, "response")?;
    bytes.finish("ResponseBytes")?;
    let mut inner = octets;
    let mut basic = inner.expect(0x30, "BasicOCSPResponse")?;
    inner.finish("BasicOCSPResponse")?;

    let (tag, mut tbs, tbs_bytes) = basic.any("tbsResponseData")?;
    if tag != 0x30 {
        return tbs.err(tbs.pos, "tbsResponseData is not a SEQUENCE");
    }
    if tbs.peek() == Some(0xa0) {
        let version_at = tbs.pos;
        let mut v = tbs.expect(0xa0, "version")?;
        let int = v.expect(0x02, "version")?;
        // DER omits the DEFAULT v1; an explicit version is some other version.
        if int.bytes() != [0] || !v.at_end() {
            return tbs.err(version_at, "version is not v1");
        }
        return tbs.err(
            version_at,
            "version v1 is encoded (DER omits DEFAULT values)",
        );
    }
    let rid_at = tbs.pos;
    let (rid_tag, mut rid, _) = tbs.any("responderID")?;
    let responder_id = match rid_tag {
        0xa1 => {
            let (t, _, name) = rid.any("responderID byName")?;
            if t != 0x30 {
                return rid.err(rid_at, "responderID byName is not a Name");
            }
            rid.finish("responderID")?;
            ResponderId::ByName(name)
        }
        0xa2 => {
            let hash = rid.expect(0x04, "responderID byKey")?;
            rid.finish("responderID")?;
            ResponderId::ByKey(hash.bytes())
        }
        _ => return tbs.err(rid_at, "responderID is neither byName [1] nor byKey [2]"),
    };
    let produced_at = tbs.generalized_time("producedAt")?;
    let mut list = tbs.expect(0x30, "responses")?;
    let mut responses = Vec::new();
    while !list.at_end() {
        responses.push(single_response(&mut list)?);
    }
    if responses.is_empty() {
        return list.err(list.pos, "responses is empty");
    }
    if tbs.peek() == Some(0xa1) {
        // responseExtensions (the nonce, when one was asked for): not read.
        tbs.any("responseExtensions")?;
    }
    tbs.finish("tbsResponseData")?;

    let mut alg = basic.expect(0x30, "signatureAlgorithm")?;
    let signature_oid = alg.expect(0x06, "signatureAlgorithm")?.bytes();
    // ECDSA carries no parameters; RSA's NULL is allowed and ignored.
    if alg.peek() == Some(0x05) {
        alg.expect(0x05, "signatureAlgorithm parameters")?;
    }
    alg.finish("signatureAlgorithm")?;
    let sig_at = basic.pos;
    let sig = basic.expect(0x03, "signature")?.bytes();
    let Some((&0, signature)) = sig.split_first() else {
        return basic.err(sig_at, "signature BIT STRING has unused bits or is empty");
    };
    let mut certs = Vec::new();
    if basic.peek() == Some(0xa0) {
        let mut seq = basic.expect(0xa0, "certs")?.expect(0x30, "certs")?;
        while !seq.at_end() {
            let (t, _, cert) = seq.any("certs")?;
            if t != 0x30 {
                return seq.err(seq.pos, "an embedded certificate is not a SEQUENCE");
            }
            certs.push(cert);
        }
    }
    basic.finish("BasicOCSPResponse")?;
    Ok(OcspResponse {
        tbs: tbs_bytes,
        responder_id,
        produced_at,
        responses,
        signature_oid,
        signature,
        certs,
    })
}

fn single_response<'a>(list: &mut Der<'a>) -> Result<SingleResponse<'a>, Rejection> {
    let mut s = list.expect(0x30, "SingleResponse")?;
    let mut id = s.expect(0x30, "certID")?;
    let mut alg = id.expect(0x30, "certID hashAlgorithm")?;
    let hash_oid = alg.expect(0x06, "certID hashAlgorithm")?.bytes();
    if alg.peek() == Some(0x05) {
        alg.expect(0x05, "certID hashAlgorithm parameters")?;
    }
    alg.finish("certID hashAlgorithm")?;
    let issuer_name_hash = id.expect(0x04, "issuerNameHash")?.bytes();
    let issuer_key_hash = id.expect(0x04, "issuerKeyHash")?.bytes();
    let serial = id.expect(0x02, "serialNumber")?.bytes();
    id.finish("certID")?;
    let status_at = s.pos;
    let (tag, mut st, _) = s.any("certStatus")?;
    let status = match tag {
        0x80 if st.at_end() => CertStatus::Good,
        0x82 if st.at_end() => CertStatus::Unknown,
        0xa1 => {
            let time = st.generalized_time("revocationTime")?;
            let reason = if st.peek() == Some(0xa0) {
                let r = st
                    .expect(0xa0, "revocationReason")?
                    .expect(0x0a, "revocationReason")?;
                match r.bytes() {
                    [code] => Some(*code),
                    _ => return r.err(r.pos, "revocationReason is not one byte"),
                }
            } else {
                None
            };
            st.finish("revokedInfo")?;
            CertStatus::Revoked { time, reason }
        }
        _ => {
            return s.err(
                status_at,
                format!("certStatus tag {tag:#04x} is not good/revoked/unknown"),
            )
        }
    };
    let this_update = s.generalized_time("thisUpdate")?;
    let next_update = if s.peek() == Some(0xa0) {
        let mut n = s.expect(0xa0, "nextUpdate")?;
        let t = n.generalized_time("nextUpdate")?;
        n.finish("nextUpdate")?;
        Some(t)
    } else {
        None
    };
    if s.peek() == Some(0xa1) {
        s.any("singleExtensions")?;
    }
    s.finish("SingleResponse")?;
    Ok(SingleResponse {
        cert_id: CertId {
            hash_oid,
            issuer_name_hash,
            issuer_key_hash,
            serial,
        },
        status,
        this_update,
        next_update,
    })
}

fn hash(oid: &[u8], bytes: &[u8]) -> Option<Vec<u8>> {
    use crate::crypto::digest;
    let alg = match oid {
        OID_SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        OID_SHA256 => &digest::SHA256,
        OID_SHA384 => &digest::SHA384,
        _ => return None,
    };
    Some(digest::digest(alg, bytes).as_ref().to_vec())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Whether `id` names `cert`, issued by `issuer`.
fn cert_id_matches(
    id: &CertId<'_>,
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> bool {
    let name = hash(id.hash_oid, cert.issuer().as_raw());
    let key = hash(id.hash_oid, &issuer.public_key().subject_public_key.data);
    name.as_deref() == Some(id.issuer_name_hash)
        && key.as_deref() == Some(id.issuer_key_hash)
        && strip_leading_zeros(id.serial) == strip_leading_zeros(cert.raw_serial())
}

fn oid_string(content: &[u8]) -> String {
    x509_parser::der_parser::oid::Oid::new(content.into()).to_id_string()
}

/// Which certificates of a verified device chain supplied OCSP responses covered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct OcspCoverage {
    /// One flag per certificate of the chain (leaf first, root last): a verified response
    /// said `good` for it.
    pub(crate) good: Vec<bool>,
}

impl OcspCoverage {
    /// Every certificate that needs a response (index 1 up to the one below the root) has a
    /// verified `good` one.
    pub(crate) fn complete(&self) -> bool {
        let n = self.good.len();
        n >= 3 && self.good[1..n - 1].iter().all(|&g| g)
    }
}

/// Verify every response in `responses` against `chain` (DER, leaf first, **root last**;
/// the chain itself already verified to a pinned root at `at`).
pub(crate) fn check(
    chain: &[Vec<u8>],
    responses: &[Vec<u8>],
    at: Timestamp,
) -> Result<OcspCoverage, Rejection> {
    let certs = chain
        .iter()
        .map(|der| x509::parse_cert(der, "GPU chain"))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = certs
        .iter()
        .map(|c| x509::common_name(c.subject()).unwrap_or_default())
        .collect();
    let mut coverage = OcspCoverage {
        good: vec![false; certs.len()],
    };
    for (k, der) in responses.iter().enumerate() {
        let what = format!("OCSP response #{k}");
        let resp = parse(der, &what)?;
        let mut matched = false;
        for single in &resp.responses {
            // Index 1 up to the one below the root: the certificates NVIDIA's OCSP knows.
            let Some(j) = (1..certs.len().saturating_sub(1))
                .find(|&j| cert_id_matches(&single.cert_id, &certs[j], &certs[j + 1]))
            else {
                continue;
            };
            matched = true;
            let cert_name = format!(
                "\"{}\" (serial {})",
                names[j],
                certs[j].raw_serial_as_string()
            );
            check_signer(&resp, &certs, j, at, &what, &cert_name)?;
            if at < single.this_update {
                return reject(
                    Reason::CollateralNotYetValid,
                    format!(
                        "{what} for {cert_name}: thisUpdate {} is after the verification time {at}",
                        single.this_update
                    ),
                );
            }
            let Some(next) = single.next_update else {
                return reject(
                    Reason::CollateralExpired,
                    format!(
                        "{what} for {cert_name}: no nextUpdate, so it is current at no later \
                         time than its thisUpdate; refused"
                    ),
                );
            };
            // nextUpdate is exclusive, as for CRLs.
            if at >= next {
                return reject(
                    Reason::CollateralExpired,
                    format!(
                        "{what} for {cert_name}: nextUpdate {next} is not after the \
                         verification time {at}"
                    ),
                );
            }
            match single.status {
                CertStatus::Good => coverage.good[j] = true,
                CertStatus::Revoked { time, reason } => {
                    return reject(
                        Reason::CertificateRevoked,
                        format!(
                            "{cert_name} of the GPU device chain was revoked at {time}{} \
                             ({what})",
                            reason
                                .map(|r| format!(", CRLReason {r}"))
                                .unwrap_or_default()
                        ),
                    )
                }
                CertStatus::Unknown => {
                    return reject(
                        Reason::OcspStatusUnknown,
                        format!("{what}: the responder does not know {cert_name}"),
                    )
                }
            }
        }
        if !matched {
            return reject(
                Reason::OcspCertIdMismatch,
                format!(
                    "{what} answers for no certificate of the GPU device chain below the root \
                     (CertID serials {})",
                    resp.responses
                        .iter()
                        .map(|s| hex::encode(s.cert_id.serial))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    Ok(coverage)
}

/// Check that `resp` is signed by a responder authorized for `certs[j]` (issued by
/// `certs[j + 1]`).
fn check_signer(
    resp: &OcspResponse<'_>,
    certs: &[X509Certificate<'_>],
    j: usize,
    at: Timestamp,
    what: &str,
    cert_name: &str,
) -> Result<(), Rejection> {
    let issuer = &certs[j + 1];
    let embedded;
    let signer: &X509Certificate<'_> = match resp.certs.first() {
        None => issuer,
        Some(der) if *der == issuer.as_ref() => issuer,
        Some(der) => {
            embedded = X509Certificate::from_der(der)
                .map_err(|e| {
                    Rejection::new(
                        Reason::MalformedOcsp,
                        format!("{what}: the embedded responder certificate does not parse: {e}"),
                    )
                })?
                .1;
            let eku = embedded.extended_key_usage().ok().flatten();
            if !eku.is_some_and(|e| e.value.ocsp_signing) {
                return reject(
                    Reason::OcspResponderUntrusted,
                    format!(
                        "{what}: the responder \"{}\" is not {cert_name}'s issuer and has no \
                         id-kp-OCSPSigning EKU",
                        embedded.subject()
                    ),
                );
            }
            let Some(above) = certs[j + 1..]
                .iter()
                .find(|c| c.subject().as_raw() == embedded.issuer().as_raw())
            else {
                return reject(
                    Reason::OcspResponderUntrusted,
                    format!(
                        "{what}: the responder \"{}\" is issued by \"{}\", no certificate of \
                         the GPU device chain above {cert_name}",
                        embedded.subject(),
                        embedded.issuer()
                    ),
                );
            };
            x509::verify_issued_by(&embedded, above, &format!("{what}: responder"))
                .map_err(|e| Rejection::new(Reason::OcspResponderUntrusted, e.detail))?;
            x509::check_validity(&embedded, at, &format!("{what}: responder"))?;
            &embedded
        }
    };
    let names_signer = match resp.responder_id {
        ResponderId::ByName(name) => name == signer.subject().as_raw(),
        ResponderId::ByKey(h) => {
            hash(OID_SHA1, &signer.public_key().subject_public_key.data).as_deref() == Some(h)
        }
    };
    if !names_signer {
        return reject(
            Reason::OcspResponderUntrusted,
            format!(
                "{what}: responderID does not name the signer \"{}\"",
                signer.subject()
            ),
        );
    }
    x509::verify_x509_signature(
        &oid_string(resp.signature_oid),
        signer.public_key(),
        resp.tbs,
        resp.signature,
        what,
    )
    .map_err(|_| {
        Rejection::new(
            Reason::OcspSignatureInvalid,
            format!(
                "{what}: the signature ({}) over tbsResponseData does not verify with the key \
                 of \"{}\"",
                oid_string(resp.signature_oid),
                signer.subject()
            ),
        )
    })
}

/// Fuzzing entry: the OCSP parser on arbitrary bytes.
pub(crate) fn fuzz(bytes: &[u8]) {
    let _ = parse(bytes, "fuzz");
}
