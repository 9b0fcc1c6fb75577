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
    /// `(input name, item)`: the names a rejection's detail uses for what each input
    /// supplied (a certificate's CN, `CRL #i`, `TCB info`, ...), so that a problem with a
    /// certificate, CRL or collateral item is blamed on the file that held it.
    items: Vec<(String, String)>,
}

impl EvidenceInputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one input; `name` is used in messages only.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), Rejection> {
        let items_before = self.items.len();
        let what = self
            .classify(name, bytes)
            .map_err(|e| Rejection::new(e.reason, format!("{name}: {}", e.detail)))?;
        for item in &mut self.items[items_before..] {
            item.0 = name.to_owned();
        }
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
                self.note_collateral_json(bytes);
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
        if let Ok(cert) = x509::parse_cert(&der, "certificate") {
            if let Some(cn) = x509::common_name(cert.subject()) {
                self.items.push((String::new(), cn));
            }
        }
        if !self.certs.contains(&der) {
            self.certs.push(der);
        }
        Ok(())
    }

    fn add_crl(&mut self, der: Vec<u8>) -> Result<(), Rejection> {
        if self.tdx_parts.offer_crl(&der)? {
            // The names the TDX collateral checks use for the two Intel CRLs.
            let issuer = x509::parse_crl(&der, "CRL")
                .ok()
                .and_then(|crl| x509::common_name(crl.issuer()));
            let item = match issuer.as_deref() {
                Some("Intel SGX Root CA") => "Intel SGX Root CA CRL",
                _ => "PCK CRL",
            };
            self.items.push((String::new(), item.into()));
        } else {
            // Intel CRLs belong to the TDX collateral; everything else is for SNP, whose
            // verifier numbers them in the order given.
            self.items
                .push((String::new(), format!("CRL #{}", self.crls.len())));
            self.crls.push(der);
        }
        Ok(())
    }

    /// The items a collateral JSON supplies, by the names the TDX checks use.
    fn note_collateral_json(&mut self, bytes: &[u8]) {
        let keys: Vec<String> = serde_json::from_slice::<
            std::collections::BTreeMap<String, serde::de::IgnoredAny>,
        >(bytes)
        .map(|m| m.into_keys().collect())
        .unwrap_or_default();
        let has = |k: &str| keys.iter().any(|key| key == k);
        let items: &[&str] = if has("tcb_info") {
            &[
                "TCB info",
                "QE identity",
                "PCK CRL",
                "Intel SGX Root CA CRL",
                "issuer chain",
                "collateral",
            ]
        } else if has("tcbInfo") {
            &["TCB info"]
        } else {
            &["QE identity"]
        };
        for item in items {
            self.items.push((String::new(), (*item).into()));
        }
    }

    /// Name where a problem lies: the report or quote file for the evidence itself; for a
    /// certificate, CRL or collateral item, the input that supplied it (or that it was
    /// carried in the quote, or is built into this verifier), never the report's file.
    fn attribute(&self, evidence_name: &str, platform: Platform, e: Rejection) -> Rejection {
        use Reason::*;
        let about_supplied_item = matches!(
            e.reason,
            CertificateExpired
                | CertificateNotYetValid
                | CertificateRevoked
                | CertificateSignatureInvalid
                | CertificateMissing
                | IssuerMismatch
                | UntrustedRoot
                | SimulatedRootNotTrusted
                | MalformedCertificate
                | CrlSignatureInvalid
                | MalformedCrl
                | CollateralMissing
                | CollateralExpired
                | CollateralNotYetValid
                | CollateralSignatureInvalid
                | MalformedCollateral
        );
        // The longest item named in the detail ("Intel SGX Root CA CRL" over "Intel SGX
        // Root CA"); every input that supplied it.
        let named = self
            .items
            .iter()
            .filter(|(_, item)| e.detail.contains(item.as_str()))
            .map(|(_, item)| item.len())
            .max();
        let mut files: Vec<&str> = self
            .items
            .iter()
            .filter(|(_, item)| Some(item.len()) == named && e.detail.contains(item.as_str()))
            .map(|(file, _)| file.as_str())
            .collect();
        files.dedup();
        let source = if !files.is_empty() {
            Some(format!("supplied in {}", files.join(", ")))
        } else if !about_supplied_item {
            None
        } else if e.detail.contains("PCK") && platform == Platform::Tdx {
            Some(format!(
                "carried in the quote's certification data, {evidence_name}"
            ))
        } else if ["ARK-", "ASK", "ASVK", "Intel SGX Root CA"]
            .iter()
            .any(|n| e.detail.contains(n))
        {
            Some("built into this verifier".into())
        } else {
            None
        };
        let detail = match (about_supplied_item, source) {
            (true, Some(source)) => format!("{} ({source})", e.detail),
            (true, None) => e.detail,
            (false, Some(source)) => format!("{evidence_name}: {} ({source})", e.detail),
            (false, None) => format!("{evidence_name}: {}", e.detail),
        };
        Rejection::new(e.reason, detail)
    }

    /// Verify the one piece of evidence with everything else supplied, at `at`.
    pub fn verify(
        mut self,
        anchors: &TrustAnchors,
        at: Timestamp,
    ) -> Result<VerifiedEvidence, Rejection> {
        let Some((name, platform, bytes)) = self.evidence.take() else {
            return reject(
                Reason::AmbiguousInput,
                "no report or quote among the inputs",
            );
        };
        match platform {
            Platform::Snp => snp::verify(&bytes, &self.certs, &self.crls, &anchors.snp, at)
                .map(|report| VerifiedEvidence::Snp(Box::new(report)))
                .map_err(|e| self.attribute(&name, platform, e)),
            Platform::Tdx => {
                let parts = std::mem::take(&mut self.tdx_parts);
                let collateral = parts
                    .build()
                    .map_err(|e| self.attribute(&name, platform, e))?;
                tdx::verify(&bytes, collateral.as_ref(), &anchors.tdx, at)
                    .map(|quote| VerifiedEvidence::Tdx(Box::new(quote)))
                    .map_err(|e| self.attribute(&name, platform, e))
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
