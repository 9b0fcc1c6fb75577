//! The evidence bundle: everything a client or auditor needs to check a runtime offline,
//! as one RATS Conceptual Message Wrapper (CMW) collection in CBOR.
//!
//! ```text
//! {
//!   "__cmwc_t": "tag:veritee.dev,2026:evidence-bundle/v1",
//!   "claims":   ["application/vnd.veritee.runtime-claims+cbor", h'..', 4],
//!   "report":   ["application/vnd.veritee.sev-snp-report",      h'..', 4],
//!   "vcek":     ["application/pkix-cert",                       h'..', 2],
//!   ...
//! }
//! ```
//!
//! Each entry is a CMW record `[media type, value, indicator]` (indicator 4: evidence,
//! 2: endorsement). Besides `claims`, entries are the files the
//! [`inputs`](crate::inputs) recogniser already understands (report or quote,
//! certificates, CRLs, TDX collateral), so a bundle verifies exactly as the same files
//! given to `veritee-verify evidence` would. GPU entries (`gpu{i}`, `gpu{i}-chain`,
//! `gpu{i}-rim-driver`, `gpu{i}-rim-vbios`, `gpu{i}-ocsp-{k}`; [`GPU_EVIDENCE_MEDIA_TYPE`],
//! [`GPU_CHAIN_MEDIA_TYPE`], [`GPU_RIM_MEDIA_TYPE`], [`GPU_OCSP_MEDIA_TYPE`]) are not CPU evidence: they are
//! verified after the claims are bound, against claim 8 and the policy's `[gpu]`
//! ([`crate::policy::GpuPolicy`]). The bundle travels in the attested TLS
//! certificate (extension `id-pe-cmw`, 1.3.6.1.5.5.7.1.35) and from
//! `GET /v1/attestation`.

use crate::binding::{self, RuntimeClaims};
use crate::evidence::{TrustAnchors, VerifiedEvidence};
use crate::inputs::EvidenceInputs;
use crate::nvidia::VerifiedGpuEvidence;
use crate::policy::{verify_bound_gpus, GpuPolicy, Policy};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use ciborium::value::Value;

/// The collection type of a veritee evidence bundle.
pub const COLLECTION_TYPE: &str = "tag:veritee.dev,2026:evidence-bundle/v1";
/// Media type of the runtime claims entry.
pub const CLAIMS_MEDIA_TYPE: &str = "application/vnd.veritee.runtime-claims+cbor";
pub const SNP_REPORT_MEDIA_TYPE: &str = "application/vnd.veritee.sev-snp-report";
pub const TDX_QUOTE_MEDIA_TYPE: &str = "application/vnd.veritee.tdx-quote";
pub const CERT_MEDIA_TYPE: &str = "application/pkix-cert";
pub const CRL_MEDIA_TYPE: &str = "application/pkix-crl";
pub const JSON_MEDIA_TYPE: &str = "application/json";
/// NVIDIA GPU evidence, binary: the SPDM GET_MEASUREMENTS request || MEASUREMENTS
/// response (label `gpu{i}`, indicator evidence).
pub const GPU_EVIDENCE_MEDIA_TYPE: &str = "application/vnd.veritee.nvidia-spdm-evidence";
/// The GPU's device certificate chain, PEM, leaf first, as NVIDIA's driver returns it
/// (RFC 8555's media type; label `gpu{i}-chain`, indicator endorsement).
pub const GPU_CHAIN_MEDIA_TYPE: &str = "application/pem-certificate-chain";
/// An NVIDIA reference integrity manifest (SWID XML with XMLDSig; labels
/// `gpu{i}-rim-driver` and `gpu{i}-rim-vbios`, indicator endorsement).
pub const GPU_RIM_MEDIA_TYPE: &str = "application/vnd.veritee.nvidia-rim+xml";
/// An OCSP response (DER, RFC 6960) for a certificate of GPU `i`'s device chain (labels
/// `gpu{i}-ocsp-0`, `gpu{i}-ocsp-1`, ... without gaps; indicator endorsement).
pub const GPU_OCSP_MEDIA_TYPE: &str = "application/ocsp-response";
/// CMW indicator bits (draft-ietf-rats-msg-wrap).
pub const IND_ENDORSEMENT: u8 = 2;
pub const IND_EVIDENCE: u8 = 4;
/// OID of the X.509 extension carrying a CMW (RFC 9xxx draft, id-pe-cmw).
pub const OID_PE_CMW: &str = "1.3.6.1.5.5.7.1.35";
/// OID of TCG's DICE conceptual-message-wrapper extension, accepted too.
pub const OID_TCG_CMW: &str = "2.23.133.5.4.9";

const CLAIMS_LABEL: &str = "claims";
const TYPE_LABEL: &str = "__cmwc_t";
const MAX_ENTRIES: usize = 64;
/// Real bundles are a few kilobytes (a report and three certificates) to ~60 KiB (a TDX
/// quote with collateral); a megabyte leaves room and bounds what a peer can make us parse.
pub const MAX_BUNDLE_LEN: usize = 1 << 20;

/// One CMW record of the collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub label: String,
    pub media_type: String,
    pub value: Vec<u8>,
    pub indicator: u8,
}

/// A parsed (not yet verified) evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceBundle {
    /// The runtime claims exactly as received (REPORT_DATA is SHA-512 of these bytes).
    pub claims: Vec<u8>,
    /// Report or quote, certificates, CRLs, collateral.
    pub entries: Vec<Entry>,
}

impl EvidenceBundle {
    pub fn new(claims: Vec<u8>) -> Self {
        EvidenceBundle {
            claims,
            entries: Vec::new(),
        }
    }

    /// Add an entry; labels must be unique (a duplicate replaces nothing and panics, as
    /// it is a bug of the caller building the bundle).
    pub fn push(&mut self, label: &str, media_type: &str, value: Vec<u8>, indicator: u8) {
        assert!(
            label != CLAIMS_LABEL
                && label != TYPE_LABEL
                && !self.entries.iter().any(|e| e.label == label),
            "duplicate or reserved bundle label {label}"
        );
        self.entries.push(Entry {
            label: label.to_owned(),
            media_type: media_type.to_owned(),
            value,
            indicator,
        });
    }

    pub fn to_cbor(&self) -> Vec<u8> {
        let record = |media: &str, value: &[u8], ind: u8| {
            Value::Array(vec![
                Value::Text(media.to_owned()),
                Value::Bytes(value.to_vec()),
                Value::Integer(ind.into()),
            ])
        };
        let mut map = vec![
            (
                Value::Text(TYPE_LABEL.into()),
                Value::Text(COLLECTION_TYPE.into()),
            ),
            (
                Value::Text(CLAIMS_LABEL.into()),
                record(CLAIMS_MEDIA_TYPE, &self.claims, IND_EVIDENCE),
            ),
        ];
        for e in &self.entries {
            map.push((
                Value::Text(e.label.clone()),
                record(&e.media_type, &e.value, e.indicator),
            ));
        }
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out).expect("writing to a Vec");
        out
    }

    /// Parse a bundle: a CBOR map of the veritee collection type, one `claims` record,
    /// unique text labels, every value a `[media type, bytes, ?indicator]` record.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, Rejection> {
        let bad = |detail: String| Rejection::new(Reason::BundleMalformed, detail);
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(bad(format!(
                "evidence bundle is {} bytes, more than the {MAX_BUNDLE_LEN} allowed",
                bytes.len()
            )));
        }
        let mut reader = bytes;
        let value: Value = ciborium::from_reader(&mut reader)
            .map_err(|e| bad(format!("evidence bundle is not CBOR: {e}")))?;
        if !reader.is_empty() {
            return reject(
                Reason::TrailingData,
                format!("{} bytes follow the evidence bundle", reader.len()),
            );
        }
        let Value::Map(map) = value else {
            return Err(bad("evidence bundle is not a CBOR map".into()));
        };
        if map.len() > MAX_ENTRIES {
            return Err(bad(format!(
                "evidence bundle has {} entries, more than {MAX_ENTRIES}",
                map.len()
            )));
        }
        let mut kind = None;
        let mut claims = None;
        let mut entries: Vec<Entry> = Vec::new();
        for (k, v) in map {
            let Value::Text(label) = k else {
                return Err(bad("evidence bundle label is not text".into()));
            };
            let duplicate = entries.iter().any(|e| e.label == label)
                || (label == CLAIMS_LABEL && claims.is_some())
                || (label == TYPE_LABEL && kind.is_some());
            if duplicate {
                return Err(bad(format!("evidence bundle label \"{label}\" repeats")));
            }
            if label == TYPE_LABEL {
                kind = Some(v);
                continue;
            }
            let (media_type, value, indicator) = record(v).ok_or_else(|| {
                bad(format!(
                    "bundle entry \"{label}\" is not a CMW record [media type, bytes, ?indicator]"
                ))
            })?;
            if label == CLAIMS_LABEL {
                if media_type != CLAIMS_MEDIA_TYPE {
                    return Err(bad(format!(
                        "bundle claims have media type \"{media_type}\", not {CLAIMS_MEDIA_TYPE}"
                    )));
                }
                claims = Some(value);
            } else {
                entries.push(Entry {
                    label,
                    media_type,
                    value,
                    indicator,
                });
            }
        }
        match kind {
            Some(Value::Text(t)) if t == COLLECTION_TYPE => {}
            Some(other) => {
                return reject(
                    Reason::UnsupportedVersion,
                    format!(
                        "evidence bundle type {other:?}; this verifier knows {COLLECTION_TYPE}"
                    ),
                )
            }
            None => return Err(bad(format!("evidence bundle has no \"{TYPE_LABEL}\""))),
        }
        let claims = claims.ok_or_else(|| bad("evidence bundle has no \"claims\"".into()))?;
        Ok(EvidenceBundle { claims, entries })
    }

    /// SHA-256 of [`Self::to_cbor`]: the evidence digest that usage receipts name. The
    /// runtime digests the bytes it serves, which are this encoding.
    pub fn sha256(&self) -> [u8; 32] {
        crate::x509::sha256(&self.to_cbor())
    }

    /// The certificate extension value carrying this bundle: DER `OCTET STRING` holding
    /// the CBOR (the `cbor` choice of the CMW extension).
    pub fn to_extension_value(&self) -> Vec<u8> {
        der_octet_string(&self.to_cbor())
    }

    /// Find and parse the bundle in a DER certificate's `id-pe-cmw` (or TCG CMW) extension.
    pub fn from_certificate(cert_der: &[u8]) -> Result<Self, Rejection> {
        let cert = crate::x509::parse_cert(cert_der, "server certificate")?;
        let mut found = None;
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            if oid == OID_PE_CMW || oid == OID_TCG_CMW {
                if found.is_some() {
                    return reject(
                        Reason::BundleMalformed,
                        "the certificate carries more than one evidence extension",
                    );
                }
                found = Some(ext.value);
            }
        }
        let Some(value) = found else {
            return reject(
                Reason::CertificateMissing,
                format!("the server certificate carries no evidence (extension {OID_PE_CMW})"),
            );
        };
        let cbor = parse_der_octet_string(value).ok_or_else(|| {
            Rejection::new(
                Reason::BundleMalformed,
                "the evidence extension is not exactly one DER OCTET STRING (the CMW cbor choice)",
            )
        })?;
        Self::from_cbor(cbor)
    }

    /// Verify the evidence in the bundle against `policy` at `at`, appraise it and bind it
    /// to the bundle's claims. The returned value owns everything it proves. GPU evidence
    /// the claims bind (claim 8) is verified under [`GpuPolicy::none`]; use
    /// [`Self::verify_with`] to require GPUs.
    pub fn verify(&self, policy: &Policy, at: Timestamp) -> Result<AttestedRuntime, Rejection> {
        self.verify_gpus_under(policy, &GpuPolicy::none(), at)
    }

    /// [`Self::verify`] with the GPU policy `gpu`: after the CPU evidence binds the claims,
    /// the GPUs they bind are verified (see the README's "GPU binding").
    pub fn verify_gpus_under(
        &self,
        policy: &Policy,
        gpu: &GpuPolicy,
        at: Timestamp,
    ) -> Result<AttestedRuntime, Rejection> {
        let mut inputs = EvidenceInputs::new();
        for e in &self.entries {
            if is_gpu_media_type(&e.media_type) {
                continue;
            }
            inputs.add(&format!("bundle entry \"{}\"", e.label), &e.value)?;
        }
        let (anchors, _) = TrustAnchors::for_policy(policy, inputs.certificates());
        let evidence = inputs.verify(&anchors, at)?;
        let appraised = policy.appraise(&evidence)?;
        let claims = binding::bind(appraised, &self.claims)?.claims().clone();
        let gpus = verify_bound_gpus(&self.entries, &claims, gpu, at)?;
        Ok(AttestedRuntime {
            evidence,
            claims,
            gpus,
            evidence_sha256: self.sha256(),
        })
    }
}

impl EvidenceBundle {
    /// [`Self::verify`], then the runtime claims against the policy file's `[runtime]`.
    pub fn verify_with(
        &self,
        policy: &crate::binding::PolicyFile,
        at: Timestamp,
    ) -> Result<AttestedRuntime, Rejection> {
        let attested = self.verify_gpus_under(&policy.evidence, &policy.gpu, at)?;
        policy.runtime.appraise(&attested.claims)?;
        Ok(attested)
    }
}

/// A runtime whose evidence verified, passed the policy, and binds these claims. Only
/// [`EvidenceBundle::verify`] constructs it.
#[derive(Debug)]
pub struct AttestedRuntime {
    evidence: VerifiedEvidence,
    claims: RuntimeClaims,
    gpus: Vec<VerifiedGpuEvidence>,
    evidence_sha256: [u8; 32],
}

impl AttestedRuntime {
    /// The GPUs the claims bind (claim 8), verified, in bundle order.
    pub fn gpus(&self) -> &[VerifiedGpuEvidence] {
        &self.gpus
    }

    pub fn evidence(&self) -> &VerifiedEvidence {
        &self.evidence
    }

    pub fn claims(&self) -> &RuntimeClaims {
        &self.claims
    }

    /// [`EvidenceBundle::sha256`] of the bundle that verified: what this runtime's
    /// receipts name.
    pub fn evidence_sha256(&self) -> [u8; 32] {
        self.evidence_sha256
    }

    /// Verify a receipt this runtime issued: signed by the receipt key these claims bind
    /// and naming this evidence (see [`crate::receipt::verify`]).
    pub fn verify_receipt(
        &self,
        receipt: &[u8],
    ) -> Result<crate::receipt::VerifiedReceipt, Rejection> {
        crate::receipt::verify(receipt, &self.claims.receipt_key, &self.evidence_sha256)
    }

    /// See [`binding::Bound::require_tls_key`].
    pub fn require_tls_key(&self, spki_der: &[u8]) -> Result<(), Rejection> {
        binding::require_tls_key(&self.claims, spki_der)
    }

    /// See [`binding::Bound::require_nonce`].
    pub fn require_nonce(&self, nonce: &[u8]) -> Result<(), Rejection> {
        binding::require_nonce(&self.claims, nonce)
    }
}

/// Whether entries of this media type are GPU evidence, chains or RIMs (verified by the
/// GPU binding, not by the CPU evidence recogniser).
pub fn is_gpu_media_type(media_type: &str) -> bool {
    [
        GPU_EVIDENCE_MEDIA_TYPE,
        GPU_CHAIN_MEDIA_TYPE,
        GPU_RIM_MEDIA_TYPE,
        GPU_OCSP_MEDIA_TYPE,
    ]
    .contains(&media_type)
}

fn record(v: Value) -> Option<(String, Vec<u8>, u8)> {
    let Value::Array(items) = v else { return None };
    let mut items = items.into_iter();
    let media = match items.next()? {
        Value::Text(t) => t,
        _ => return None,
    };
    let value = match items.next()? {
        Value::Bytes(b) => b,
        _ => return None,
    };
    let indicator = match items.next() {
        None => 0,
        Some(Value::Integer(i)) => u8::try_from(i128::from(i)).ok().filter(|i| *i < 32)?,
        Some(_) => return None,
    };
    if items.next().is_some() {
        return None;
    }
    Some((media, value, indicator))
}

/// The content of a DER OCTET STRING that spans all of `der` (definite, minimal length).
fn parse_der_octet_string(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
            return None; // indefinite, oversized or non-minimal length
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        if len < 0x80 {
            return None;
        }
        (len, &rest[n..])
    };
    (rest.len() == len).then_some(rest)
}

fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EvidenceBundle {
        let mut b = EvidenceBundle::new(vec![0xa0]);
        b.push("report", SNP_REPORT_MEDIA_TYPE, vec![7; 1184], IND_EVIDENCE);
        b.push("ark", CERT_MEDIA_TYPE, vec![0x30, 0x00], IND_ENDORSEMENT);
        b
    }

    #[test]
    fn bundle_round_trips_through_cbor_and_the_extension_encoding() {
        let b = sample();
        assert_eq!(EvidenceBundle::from_cbor(&b.to_cbor()).unwrap(), b);
        let ext = b.to_extension_value();
        assert_eq!(&ext[..2], &[0x04, 0x82], "long-form DER length");
        assert_eq!(parse_der_octet_string(&ext).unwrap(), b.to_cbor());
        assert_eq!(
            parse_der_octet_string(&[0x04, 0x01, 0xaa]),
            Some(&[0xaa][..])
        );
        assert_eq!(parse_der_octet_string(&[0x04, 0x02, 0xaa]), None, "short");
        assert_eq!(
            parse_der_octet_string(&[0x04, 0x81, 0x01, 0xaa]),
            None,
            "non-minimal"
        );
        assert_eq!(
            parse_der_octet_string(&[0x04, 0x80, 0xaa, 0, 0]),
            None,
            "indefinite"
        );
        assert_eq!(
            parse_der_octet_string(&[0x03, 0x01, 0xaa]),
            None,
            "not an OCTET STRING"
        );
    }

    #[test]
    fn malformed_bundles_are_rejected_with_their_reason() {
        let reason = |bytes: &[u8]| EvidenceBundle::from_cbor(bytes).unwrap_err().reason;
        assert_eq!(reason(b"\xff"), Reason::BundleMalformed);
        let mut trailing = sample().to_cbor();
        trailing.push(0);
        assert_eq!(reason(&trailing), Reason::TrailingData);
        let enc = |map: Vec<(Value, Value)>| {
            let mut out = Vec::new();
            ciborium::into_writer(&Value::Map(map), &mut out).unwrap();
            out
        };
        let t = |s: &str| Value::Text(s.into());
        let rec = |m: &str| Value::Array(vec![t(m), Value::Bytes(vec![1])]);
        // No type.
        assert_eq!(
            reason(&enc(vec![(t("claims"), rec(CLAIMS_MEDIA_TYPE))])),
            Reason::BundleMalformed
        );
        // Another collection type.
        assert_eq!(
            reason(&enc(vec![
                (t(TYPE_LABEL), t("tag:other,2020:x")),
                (t("claims"), rec(CLAIMS_MEDIA_TYPE))
            ])),
            Reason::UnsupportedVersion
        );
        // No claims.
        assert_eq!(
            reason(&enc(vec![
                (t(TYPE_LABEL), t(COLLECTION_TYPE)),
                (t("report"), rec(SNP_REPORT_MEDIA_TYPE))
            ])),
            Reason::BundleMalformed
        );
        // Duplicate label.
        assert_eq!(
            reason(&enc(vec![
                (t(TYPE_LABEL), t(COLLECTION_TYPE)),
                (t("claims"), rec(CLAIMS_MEDIA_TYPE)),
                (t("x"), rec(CERT_MEDIA_TYPE)),
                (t("x"), rec(CERT_MEDIA_TYPE)),
            ])),
            Reason::BundleMalformed
        );
        // A record that is not [text, bytes].
        assert_eq!(
            reason(&enc(vec![
                (t(TYPE_LABEL), t(COLLECTION_TYPE)),
                (t("claims"), rec(CLAIMS_MEDIA_TYPE)),
                (t("x"), Value::Array(vec![Value::Bytes(vec![1]), t("y")])),
            ])),
            Reason::BundleMalformed
        );
    }
}
