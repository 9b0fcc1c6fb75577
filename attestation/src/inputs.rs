//! Recognise evidence inputs by content, in any order, exactly as AMD and Intel publish
//! them: raw or hex-encoded reports and quotes, PEM or DER certificates and chains, DER
//! CRLs, Intel PCS JSON bodies, and dcap-qvl collateral JSON.

use crate::evidence::{Platform, TrustAnchors, VerifiedEvidence};
use crate::reason::{reject, Reason, Rejection};
use crate::tdx::CollateralParts;
use crate::time::Timestamp;
use crate::{snp, tdx, x509};

/// Everything supplied for one verification, sorted by what it is.
#[derive(Default)]
pub struct EvidenceInputs {
    evidence: Option<(String, Platform, Vec<u8>)>,
    certs: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    tdx_parts: CollateralParts,
    recognised: Vec<(String, String)>,
}

impl EvidenceInputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one input; `name` is used in messages only.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), Rejection> {
        let what = self
            .classify(name, bytes)
            .map_err(|e| Rejection::new(e.reason, format!("{name}: {}", e.detail)))?;
        self.recognised.push((name.to_owned(), what));
        Ok(())
    }

    /// `(input name, what it was recognised as)`, in the order added.
    pub fn recognised(&self) -> &[(String, String)] {
        &self.recognised
    }

    /// All certificates supplied (DER), in the order seen.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certs
    }

    /// CRLs supplied for SEV-SNP (Intel CRLs go into the TDX collateral).
    pub fn snp_crl_count(&self) -> usize {
        self.crls.len()
    }

    pub fn platform(&self) -> Option<Platform> {
        self.evidence.as_ref().map(|(_, p, _)| *p)
    }

    fn set_evidence(
        &mut self,
        name: &str,
        platform: Platform,
        bytes: Vec<u8>,
    ) -> Result<(), Rejection> {
        if let Some((first, _, _)) = &self.evidence {
            return reject(
                Reason::AmbiguousInput,
                format!(
                    "second piece of evidence; {first} was already given (verify one at a time)"
                ),
            );
        }
        self.evidence = Some((name.to_owned(), platform, bytes));
        Ok(())
    }

    fn classify(&mut self, name: &str, bytes: &[u8]) -> Result<String, Rejection> {
        if let Some(kind) = self.try_evidence(name, bytes)? {
            return Ok(kind);
        }
        if let Some(decoded) = decode_hex_text(bytes) {
            if let Some(kind) = self.try_evidence(name, &decoded)? {
                return Ok(format!("{kind} (hex text)"));
            }
        }
        let text_start = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if text_start == Some(b'{') {
            return if self.tdx_parts.offer_json(bytes)? {
                Ok("TDX collateral (JSON)".into())
            } else {
                reject(
                    Reason::UnknownInput,
                    "JSON that is neither PCS collateral nor dcap-qvl collateral",
                )
            };
        }
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            return self.add_pem(bytes);
        }
        if x509::parse_cert(bytes, name).is_ok() {
            self.add_cert(bytes.to_vec())?;
            return Ok(describe_cert(bytes));
        }
        if x509::parse_crl(bytes, name).is_ok() {
            self.add_crl(bytes.to_vec())?;
            return Ok("CRL (DER)".into());
        }
        reject(
            Reason::UnknownInput,
            format!(
                "{} bytes not recognised as a report, quote, certificate, CRL or collateral",
                bytes.len()
            ),
        )
    }

    fn try_evidence(&mut self, name: &str, bytes: &[u8]) -> Result<Option<String>, Rejection> {
        if snp::looks_like_snp_evidence(bytes) {
            self.set_evidence(name, Platform::Snp, bytes.to_vec())?;
            return Ok(Some("SEV-SNP attestation report".into()));
        }
        if tdx::looks_like_tdx_quote(bytes) {
            self.set_evidence(name, Platform::Tdx, bytes.to_vec())?;
            return Ok(Some("TDX quote".into()));
        }
        Ok(None)
    }

    fn add_pem(&mut self, bytes: &[u8]) -> Result<String, Rejection> {
        let mut parts = Vec::new();
        for block in x509::pem_blocks(bytes)? {
            match block.label.as_str() {
                "CERTIFICATE" => {
                    x509::parse_cert(&block.der, "PEM certificate")?;
                    parts.push(describe_cert(&block.der));
                    self.add_cert(block.der)?;
                }
                "X509 CRL" => {
                    x509::parse_crl(&block.der, "PEM CRL")?;
                    parts.push("CRL".into());
                    self.add_crl(block.der)?;
                }
                other => return reject(Reason::UnknownInput, format!("PEM block {other:?}")),
            }
        }
        if parts.is_empty() {
            return reject(
                Reason::UnknownInput,
                "PEM text without a certificate or CRL",
            );
        }
        Ok(format!("PEM: {}", parts.join(", ")))
    }

    fn add_cert(&mut self, der: Vec<u8>) -> Result<(), Rejection> {
        self.tdx_parts.offer_cert(&der)?;
        if !self.certs.contains(&der) {
            self.certs.push(der);
        }
        Ok(())
    }

    fn add_crl(&mut self, der: Vec<u8>) -> Result<(), Rejection> {
        if !self.tdx_parts.offer_crl(&der)? {
            // Intel CRLs belong to the TDX collateral; everything else is for SNP.
            self.crls.push(der);
        }
        Ok(())
    }

    /// Verify the one piece of evidence with everything else supplied, at `at`.
    pub fn verify(
        self,
        anchors: &TrustAnchors,
        at: Timestamp,
    ) -> Result<VerifiedEvidence, Rejection> {
        let Some((name, platform, bytes)) = self.evidence else {
            return reject(
                Reason::AmbiguousInput,
                "no report or quote among the inputs",
            );
        };
        let wrap = |e: Rejection| Rejection::new(e.reason, format!("{name}: {}", e.detail));
        match platform {
            Platform::Snp => snp::verify(&bytes, &self.certs, &self.crls, &anchors.snp, at)
                .map(|report| VerifiedEvidence::Snp(Box::new(report)))
                .map_err(wrap),
            Platform::Tdx => {
                let collateral = self.tdx_parts.build()?;
                tdx::verify(&bytes, collateral.as_ref(), &anchors.tdx, at)
                    .map(|quote| VerifiedEvidence::Tdx(Box::new(quote)))
                    .map_err(wrap)
            }
        }
    }
}

fn describe_cert(der: &[u8]) -> String {
    match x509::parse_cert(der, "certificate") {
        Ok(cert) => format!(
            "certificate \"{}\"",
            x509::common_name(cert.subject()).unwrap_or_else(|| cert.subject().to_string())
        ),
        Err(_) => "certificate".into(),
    }
}

/// Hex text (whitespace allowed, optional 0x prefix) decoded to bytes; None otherwise.
fn decode_hex_text(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() || !compact.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    hex::decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_decodes_with_whitespace_and_prefix() {
        assert_eq!(decode_hex_text(b"0x0102 0A\n"), Some(vec![1, 2, 10]));
        assert_eq!(decode_hex_text(b"xyz"), None);
        assert_eq!(decode_hex_text(b"abc"), None, "odd length");
        assert_eq!(decode_hex_text(b"  \n"), None);
    }

    #[test]
    fn unknown_bytes_are_rejected_with_the_input_name() {
        let mut inputs = EvidenceInputs::new();
        let err = inputs
            .add("mystery.bin", b"\x01\x02\x03 not evidence")
            .unwrap_err();
        assert_eq!(err.reason, Reason::UnknownInput);
        assert!(err.detail.starts_with("mystery.bin: "), "{}", err.detail);
    }

    #[test]
    fn no_evidence_is_ambiguous() {
        let inputs = EvidenceInputs::new();
        let err = inputs
            .verify(&TrustAnchors::production(), Timestamp::from_unix(0))
            .unwrap_err();
        assert_eq!(err.reason, Reason::AmbiguousInput);
    }
}
