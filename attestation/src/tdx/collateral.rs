//! TDX collateral: TCB info, QE identity, their issuer chains and the two Intel CRLs.
//!
//! Two input shapes: dcap-qvl's single JSON ([`TdxCollateral::from_dcap_qvl_json`]) and
//! the files Intel PCS serves, assembled by [`CollateralParts`]. Signed JSON is kept as
//! the exact received text of the inner object (never re-serialised), because the
//! signature covers those bytes.

use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use dcap_qvl::QuoteCollateralV3;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

const CN_ROOT: &str = "Intel SGX Root CA";
const CN_TCB_SIGNING: &str = "Intel SGX TCB Signing";
const CN_PCK_PLATFORM_CA: &str = "Intel SGX PCK Platform CA";
const CN_PCK_PROCESSOR_CA: &str = "Intel SGX PCK Processor CA";

/// Verified-later TDX collateral (wraps dcap-qvl's `QuoteCollateralV3`), with the
/// validity window of each dated item parsed up front.
#[derive(Debug, Clone)]
pub struct TdxCollateral {
    inner: QuoteCollateralV3,
    items: Vec<DatedItem>,
    tcb_info: CollateralVersion,
    qe_identity: CollateralVersion,
}

/// Which edition of Intel's signed TCB info or QE identity this is: its issueDate and its
/// tcbEvaluationDataNumber (Intel raises the number with each TCB recovery event). Read
/// from the JSON before verification; only a [`VerifiedTdxQuote`](super::VerifiedTdxQuote)
/// hands it to appraisal, after the signature over that JSON verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollateralVersion {
    pub issue_date: Timestamp,
    pub tcb_evaluation_data_number: u32,
}

#[derive(Debug, Clone)]
struct DatedItem {
    what: &'static str,
    from: i64,
    until: Option<i64>,
}

/// The dates and the evaluation data number every signed collateral JSON carries.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssueDates {
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
}

impl TdxCollateral {
    /// The single-JSON shape dcap-qvl uses (`tcb_info` etc.; CRLs and signatures hex).
    pub fn from_dcap_qvl_json(bytes: &[u8]) -> Result<Self, Rejection> {
        let inner: QuoteCollateralV3 = serde_json::from_slice(bytes).map_err(|e| {
            Rejection::new(
                Reason::MalformedCollateral,
                format!("dcap-qvl collateral JSON: {e}"),
            )
        })?;
        Self::from_dcap_qvl(inner)
    }

    /// Wrap an already decoded dcap-qvl collateral, checking its structure.
    ///
    /// A `pck_certificate_chain` is dropped: dcap-qvl would prefer it over the chain in
    /// the quote, and the quote's chain is the one our own checks verified.
    pub fn from_dcap_qvl(mut inner: QuoteCollateralV3) -> Result<Self, Rejection> {
        inner.pck_certificate_chain = None;
        let (tcb_info_dates, tcb_info) = json_dates(&inner.tcb_info, "TCB info")?;
        let (qe_identity_dates, qe_identity) = json_dates(&inner.qe_identity, "QE identity")?;
        let items = vec![
            tcb_info_dates,
            qe_identity_dates,
            crl_dates(&inner.pck_crl, "PCK CRL")?,
            crl_dates(&inner.root_ca_crl, "Intel SGX Root CA CRL")?,
        ];
        for (sig, what) in [
            (&inner.tcb_info_signature, "TCB info signature"),
            (&inner.qe_identity_signature, "QE identity signature"),
        ] {
            if sig.len() != 64 {
                return reject(
                    Reason::MalformedCollateral,
                    format!("{what}: {} bytes, expected 64 (raw r||s)", sig.len()),
                );
            }
        }
        for (pem, what) in [
            (&inner.tcb_info_issuer_chain, "TCB info issuer chain"),
            (&inner.qe_identity_issuer_chain, "QE identity issuer chain"),
        ] {
            if x509::certs_from_pem(pem.as_bytes())?.is_empty() {
                return reject(
                    Reason::CollateralMissing,
                    format!("{what} holds no certificate"),
                );
            }
        }
        Ok(TdxCollateral {
            inner,
            items,
            tcb_info,
            qe_identity,
        })
    }

    /// The collateral in dcap-qvl's form.
    pub fn dcap_qvl(&self) -> &QuoteCollateralV3 {
        &self.inner
    }

    /// The exact signed TCB info JSON text.
    pub fn tcb_info_json(&self) -> &str {
        &self.inner.tcb_info
    }

    /// The exact signed QE identity JSON text.
    pub fn qe_identity_json(&self) -> &str {
        &self.inner.qe_identity
    }

    /// The TCB info's issueDate and tcbEvaluationDataNumber (not yet verified).
    pub fn tcb_info_version(&self) -> CollateralVersion {
        self.tcb_info
    }

    /// The QE identity's issueDate and tcbEvaluationDataNumber (not yet verified).
    pub fn qe_identity_version(&self) -> CollateralVersion {
        self.qe_identity
    }

    /// Latest issue date .. earliest nextUpdate over TCB info, QE identity and both CRLs.
    pub fn validity_window(&self) -> (Timestamp, Option<Timestamp>) {
        let from = self.items.iter().map(|i| i.from).max().unwrap_or(i64::MIN);
        let until = self.items.iter().filter_map(|i| i.until).min();
        (Timestamp::from_unix(from), until.map(Timestamp::from_unix))
    }

    /// Every dated item must be current at `at` (its own check, so the reason names the
    /// item; dcap-qvl checks the same again).
    pub(crate) fn check_time(&self, at: Timestamp) -> Result<(), Rejection> {
        for item in &self.items {
            if at.unix() < item.from {
                return reject(
                    Reason::CollateralNotYetValid,
                    format!(
                        "{} is issued {}, after the verification time {at}",
                        item.what,
                        Timestamp::from_unix(item.from)
                    ),
                );
            }
            if let Some(until) = item.until {
                // nextUpdate is exclusive, as webpki treats CRLs; applying it to every
                // item keeps our check the first to fire, naming the item.
                if at.unix() >= until {
                    return reject(
                        Reason::CollateralExpired,
                        format!(
                            "{} nextUpdate {} is not after the verification time {at}",
                            item.what,
                            Timestamp::from_unix(until)
                        ),
                    );
                }
            }
        }
        // The issuer chains' certificates (the TCB Signing certificate signs TCB info and
        // QE identity): checked here so the message names the certificate and its date,
        // where dcap-qvl says only `CertExpired { time: UnixTime(..), .. }`.
        for (pem, chain) in [
            (&self.inner.tcb_info_issuer_chain, "TCB info issuer chain"),
            (
                &self.inner.qe_identity_issuer_chain,
                "QE identity issuer chain",
            ),
        ] {
            for der in x509::certs_from_pem(pem.as_bytes())? {
                let cert = x509::parse_cert(&der, chain)?;
                let name =
                    x509::common_name(cert.subject()).unwrap_or_else(|| cert.subject().to_string());
                x509::check_validity(&cert, at, &format!("\"{name}\" certificate ({chain})"))?;
            }
        }
        Ok(())
    }
}

fn json_dates(json: &str, what: &'static str) -> Result<(DatedItem, CollateralVersion), Rejection> {
    let dates: IssueDates = serde_json::from_str(json)
        .map_err(|e| Rejection::new(Reason::MalformedCollateral, format!("{what} JSON: {e}")))?;
    let parse = |text: &str, field: &str| {
        Timestamp::parse_rfc3339(text).map_err(|e| {
            Rejection::new(
                Reason::MalformedCollateral,
                format!("{what} {field}: {}", e.detail),
            )
        })
    };
    let issue_date = parse(&dates.issue_date, "issueDate")?;
    let item = DatedItem {
        what,
        from: issue_date.unix(),
        until: Some(parse(&dates.next_update, "nextUpdate")?.unix()),
    };
    let version = CollateralVersion {
        issue_date,
        tcb_evaluation_data_number: dates.tcb_evaluation_data_number,
    };
    Ok((item, version))
}

fn crl_dates(der: &[u8], what: &'static str) -> Result<DatedItem, Rejection> {
    let crl = x509::parse_crl(der, what)?;
    Ok(DatedItem {
        what,
        from: crl.last_update().timestamp(),
        until: crl.next_update().map(|t| t.timestamp()),
    })
}

/// A PCS JSON body's signed object: exact text plus raw r||s signature.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignedJson {
    body: String,
    signature: Vec<u8>,
}

/// Assembles collateral from files as Intel PCS serves them: the TCB info body
/// (`{"tcbInfo":{..},"signature":".."}`), the QE identity body (`{"enclaveIdentity":..}`),
/// the issuer-chain certificates (TCB Signing, PCK CA, root), the PCK CRL and the root CA
/// CRL. A dcap-qvl collateral JSON is accepted too, alone.
#[derive(Debug, Default)]
pub struct CollateralParts {
    full: Option<TdxCollateral>,
    tcb_info: Option<SignedJson>,
    qe_identity: Option<SignedJson>,
    tcb_signing: Option<Vec<u8>>,
    pck_cas: Vec<Vec<u8>>,
    root: Option<Vec<u8>>,
    pck_crl: Option<Vec<u8>>,
    root_crl: Option<Vec<u8>>,
}

impl CollateralParts {
    /// Offer a JSON file. `true` if it is a TCB info body, a QE identity body or a
    /// dcap-qvl collateral JSON; `false` if it is not JSON or another JSON.
    pub fn offer_json(&mut self, bytes: &[u8]) -> Result<bool, Rejection> {
        let Ok(map) = serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(bytes) else {
            return Ok(false);
        };
        if map.contains_key("tcb_info") && map.contains_key("qe_identity") {
            let full = TdxCollateral::from_dcap_qvl_json(bytes)?;
            if let Some(old) = &self.full {
                if old.inner != full.inner {
                    return reject(
                        Reason::AmbiguousInput,
                        "two different dcap-qvl collateral JSON files",
                    );
                }
            }
            self.full = Some(full);
            return Ok(true);
        }
        let (slot, key, what) = if let Some(raw) = map.get("tcbInfo") {
            (&mut self.tcb_info, raw, "TCB info")
        } else if let Some(raw) = map.get("enclaveIdentity").or_else(|| map.get("qeIdentity")) {
            (&mut self.qe_identity, raw, "QE identity")
        } else {
            return Ok(false);
        };
        let body = key.get();
        if !body.starts_with('{') {
            return reject(
                Reason::MalformedCollateral,
                format!("{what}: the signed value is not a JSON object"),
            );
        }
        let signature = map
            .get("signature")
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
            .and_then(|text| hex::decode(text.trim()).ok())
            .filter(|sig| sig.len() == 64)
            .ok_or_else(|| {
                Rejection::new(
                    Reason::MalformedCollateral,
                    format!("{what}: no \"signature\" of 64 hex-encoded bytes"),
                )
            })?;
        let signed = SignedJson {
            body: body.to_owned(),
            signature,
        };
        put(slot, signed, what)?;
        Ok(true)
    }

    /// Offer a certificate (DER). `true` if it is an Intel collateral certificate (TCB
    /// Signing, PCK Platform/Processor CA, Intel SGX Root CA); `false` for others.
    pub fn offer_cert(&mut self, der: &[u8]) -> Result<bool, Rejection> {
        let cert = x509::parse_cert(der, "certificate")?;
        let Some(cn) = x509::common_name(cert.subject()) else {
            return Ok(false);
        };
        match cn.as_str() {
            CN_TCB_SIGNING => put(
                &mut self.tcb_signing,
                der.to_vec(),
                "TCB Signing certificate",
            )?,
            CN_ROOT => put(
                &mut self.root,
                der.to_vec(),
                "Intel SGX Root CA certificate",
            )?,
            CN_PCK_PLATFORM_CA | CN_PCK_PROCESSOR_CA => {
                if !self.pck_cas.iter().any(|c| c == der) {
                    self.pck_cas.push(der.to_vec());
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Offer a CRL: DER as PCS serves it, or the hex / PEM forms PCCS caches use. `true`
    /// if it is the Intel PCK CRL or the root CA CRL; `false` if not such a CRL.
    pub fn offer_crl(&mut self, der: &[u8]) -> Result<bool, Rejection> {
        let Some(der) = crl_der(der) else {
            return Ok(false);
        };
        let crl = x509::parse_crl(&der, "CRL")?;
        match x509::common_name(crl.issuer()).as_deref() {
            Some(CN_ROOT) => put(&mut self.root_crl, der, "Intel SGX Root CA CRL")?,
            Some(CN_PCK_PLATFORM_CA | CN_PCK_PROCESSOR_CA) => {
                put(&mut self.pck_crl, der, "PCK CRL")?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Nothing was recognised yet.
    pub fn is_empty(&self) -> bool {
        self.full.is_none()
            && self.tcb_info.is_none()
            && self.qe_identity.is_none()
            && self.tcb_signing.is_none()
            && self.pck_cas.is_empty()
            && self.root.is_none()
            && self.pck_crl.is_none()
            && self.root_crl.is_none()
    }

    /// The assembled collateral; `None` when nothing was offered. Incomplete sets are
    /// `CollateralMissing`, naming every missing piece.
    pub fn build(self) -> Result<Option<TdxCollateral>, Rejection> {
        if self.is_empty() {
            return Ok(None);
        }
        if let Some(full) = self.full {
            let has_parts = self.tcb_info.is_some()
                || self.qe_identity.is_some()
                || self.pck_crl.is_some()
                || self.root_crl.is_some();
            if has_parts {
                return reject(
                    Reason::AmbiguousInput,
                    "both a dcap-qvl collateral JSON and separate PCS collateral files",
                );
            }
            return Ok(Some(full));
        }
        let mut missing = Vec::new();
        if self.tcb_info.is_none() {
            missing.push("TCB info (PCS {\"tcbInfo\":..} JSON)");
        }
        if self.qe_identity.is_none() {
            missing.push("QE identity (PCS {\"enclaveIdentity\":..} JSON)");
        }
        if self.tcb_signing.is_none() {
            missing.push("Intel SGX TCB Signing certificate (TCB info issuer chain)");
        }
        if self.pck_crl.is_none() {
            missing.push("PCK CRL");
        }
        if self.root_crl.is_none() {
            missing.push("Intel SGX Root CA CRL");
        }
        let (Some(tcb_info), Some(qe_identity), Some(signing), Some(pck_crl), Some(root_crl)) = (
            self.tcb_info,
            self.qe_identity,
            self.tcb_signing,
            self.pck_crl,
            self.root_crl,
        ) else {
            return reject(
                Reason::CollateralMissing,
                format!("incomplete TDX collateral, missing: {}", missing.join(", ")),
            );
        };
        let root_pem = self.root.as_deref().map(pem_cert).unwrap_or_default();
        let signing_chain = format!("{}{root_pem}", pem_cert(&signing));
        // The PCK CA that issued the PCK CRL, if offered; dcap-qvl checks the CRL against
        // the quote's own PCK chain, so this chain is informative only.
        let crl_issuer = x509::parse_crl(&pck_crl, "PCK CRL")?
            .issuer()
            .as_raw()
            .to_vec();
        let pck_ca = self.pck_cas.iter().find(|der| {
            x509::parse_cert(der, "PCK CA")
                .map(|c| c.subject().as_raw() == crl_issuer.as_slice())
                .unwrap_or(false)
        });
        let pck_crl_issuer_chain = pck_ca
            .map(|der| format!("{}{root_pem}", pem_cert(der)))
            .unwrap_or_default();
        TdxCollateral::from_dcap_qvl(QuoteCollateralV3 {
            pck_crl_issuer_chain,
            root_ca_crl: root_crl,
            pck_crl,
            tcb_info_issuer_chain: signing_chain.clone(),
            tcb_info: tcb_info.body,
            tcb_info_signature: tcb_info.signature,
            qe_identity_issuer_chain: signing_chain,
            qe_identity: qe_identity.body,
            qe_identity_signature: qe_identity.signature,
            pck_certificate_chain: None,
        })
        .map(Some)
    }
}

/// Fill an empty slot; the same value again is fine, a different one is ambiguous.
fn put<T: PartialEq>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), Rejection> {
    match slot {
        Some(old) if *old != value => reject(
            Reason::AmbiguousInput,
            format!("two different {what} inputs"),
        ),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// A CRL's DER from DER, hex text or PEM ("X509 CRL"); `None` if none of these.
fn crl_der(bytes: &[u8]) -> Option<Vec<u8>> {
    if x509::parse_crl(bytes, "CRL").is_ok() {
        return Some(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if let Ok(der) = hex::decode(text) {
        return x509::parse_crl(&der, "CRL").is_ok().then_some(der);
    }
    x509::pem_blocks(text.as_bytes())
        .ok()?
        .into_iter()
        .find(|b| b.label == "X509 CRL")
        .map(|b| b.der)
}

/// PEM-encode a certificate (dcap-qvl takes issuer chains as PEM text).
pub(super) fn pem_cert(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                // The index is 6 bits, always inside the 64-letter alphabet.
                let letter = ALPHABET.get(((n >> shift) & 63) as usize);
                b64.push(char::from(letter.copied().unwrap_or(b'A')));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() {
        for len in 0..10usize {
            let der: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let pem = pem_cert(&der);
            let blocks = x509::pem_blocks(pem.as_bytes()).unwrap();
            if len > 0 {
                assert_eq!(blocks[0].der, der, "len {len}");
            }
        }
        let root = super::super::INTEL_SGX_ROOT_CA_DER;
        let certs = x509::certs_from_pem(pem_cert(root).as_bytes()).unwrap();
        assert_eq!(certs, vec![root.to_vec()]);
    }

    #[test]
    fn unrelated_json_is_not_collateral() {
        let mut parts = CollateralParts::default();
        assert!(!parts.offer_json(b"{\"a\":1}").unwrap());
        assert!(!parts.offer_json(b"not json").unwrap());
        assert!(!parts.offer_json(b"[1,2]").unwrap());
        assert!(parts.is_empty());
        assert!(parts.build().unwrap().is_none());
    }

    #[test]
    fn unsigned_tcb_info_is_malformed() {
        let mut parts = CollateralParts::default();
        let err = parts
            .offer_json(br#"{"tcbInfo":{"id":"TDX"}}"#)
            .unwrap_err();
        assert_eq!(err.reason, Reason::MalformedCollateral);
    }

    #[test]
    fn incomplete_parts_name_what_is_missing() {
        let mut parts = CollateralParts::default();
        let sig = "00".repeat(64);
        let body = format!(r#"{{"tcbInfo":{{"id":"TDX"}},"signature":"{sig}"}}"#);
        assert!(parts.offer_json(body.as_bytes()).unwrap());
        let err = parts.build().unwrap_err();
        assert_eq!(err.reason, Reason::CollateralMissing);
        assert!(err.detail.contains("QE identity"), "{}", err.detail);
        assert!(err.detail.contains("PCK CRL"), "{}", err.detail);
        assert!(!err.detail.contains("TCB info ("), "{}", err.detail);
    }
}
