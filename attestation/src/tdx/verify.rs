//! TDX quote verification: our own signature checks, collateral time window, then
//! dcap-qvl for collateral and TCB evaluation; builds the proof-carrying
//! [`VerifiedTdxQuote`].

use super::collateral::{CollateralVersion, TdxCollateral};
use super::quote::{Quote, TdReport};
use super::{TcbStatus, TdxTrustAnchors};
use crate::cache::{KeyBuilder, VerifiedCache, Window};
use crate::crypto::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use serde::Serialize;

/// A TDX quote whose signatures, PCK chain and collateral verified at a given time.
/// Only [`verify`] constructs it.
#[derive(Debug, Clone)]
pub struct VerifiedTdxQuote {
    quote: Quote,
    tcb_status: TcbStatus,
    advisory_ids: Vec<String>,
    platform_tcb_status: String,
    qe_tcb_status: String,
    fmspc: [u8; 6],
    custom_root: bool,
    pck_flags: PckPlatformFlags,
    tcb_info_version: CollateralVersion,
    qe_identity_version: CollateralVersion,
    verified_at: Timestamp,
}

/// The platform configuration flags of the PCK certificate's SGX extensions (OID
/// 1.2.840.113741.1.13.1.7): present only in certificates issued by the Intel SGX PCK
/// Platform CA (multi-package platforms); `None` where the certificate does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PckPlatformFlags {
    /// dynamicPlatform: packages may be added to the platform.
    pub dynamic_platform: Option<bool>,
    /// cachedKeys: the platform root keys are cached by the platform.
    pub cached_keys: Option<bool>,
    /// SMTEnabled: simultaneous multithreading is enabled.
    pub smt_enabled: Option<bool>,
}

impl VerifiedTdxQuote {
    pub fn quote(&self) -> &Quote {
        &self.quote
    }

    /// The converged TCB status (platform, TDX module, QE).
    pub fn tcb_status(&self) -> TcbStatus {
        self.tcb_status
    }

    /// Intel advisory ids that apply to the platform's TCB level.
    pub fn advisory_ids(&self) -> &[String] {
        &self.advisory_ids
    }

    /// The platform's FMSPC, from the PCK certificate.
    pub fn fmspc(&self) -> [u8; 6] {
        self.fmspc
    }

    /// Whether the chain was verified to a `dangerous_custom_root`, not Intel's root.
    pub fn custom_root(&self) -> bool {
        self.custom_root
    }

    /// The platform flags of the PCK certificate (verified: the chain checked).
    pub fn pck_flags(&self) -> PckPlatformFlags {
        self.pck_flags
    }

    /// The verified TCB info's issueDate and tcbEvaluationDataNumber.
    pub fn tcb_info_version(&self) -> CollateralVersion {
        self.tcb_info_version
    }

    /// The verified QE identity's issueDate and tcbEvaluationDataNumber.
    pub fn qe_identity_version(&self) -> CollateralVersion {
        self.qe_identity_version
    }

    /// The time this quote was verified at (collateral age is measured from it).
    pub fn verified_at(&self) -> Timestamp {
        self.verified_at
    }

    /// The verified claims, flat and hex-encoded, for policy, logs and `--json`.
    pub fn claims(&self) -> TdxClaims {
        let b: &TdReport = &self.quote.body;
        let module_version = b.tdx_module_version();
        TdxClaims {
            platform: "tdx",
            quote_version: self.quote.header.version,
            body: self.quote.body_type().as_str(),
            tcb_status: self.tcb_status,
            advisory_ids: self.advisory_ids.clone(),
            platform_tcb_status: self.platform_tcb_status.clone(),
            qe_tcb_status: self.qe_tcb_status.clone(),
            fmspc: hex::encode(self.fmspc),
            mr_td: hex::encode(b.mr_td),
            rtmr0: hex::encode(b.rtmr[0]),
            rtmr1: hex::encode(b.rtmr[1]),
            rtmr2: hex::encode(b.rtmr[2]),
            rtmr3: hex::encode(b.rtmr[3]),
            mr_config_id: hex::encode(b.mr_config_id),
            mr_owner: hex::encode(b.mr_owner),
            mr_owner_config: hex::encode(b.mr_owner_config),
            mr_seam: hex::encode(b.mr_seam),
            mr_signer_seam: hex::encode(b.mr_signer_seam),
            report_data: hex::encode(b.report_data),
            td_attributes: hex::encode(b.td_attributes),
            debug: b.debug(),
            under_debug: b.under_debug(),
            sept_ve_disable: b.sept_ve_disable(),
            xfam: hex::encode(b.xfam),
            seam_attributes: hex::encode(b.seam_attributes),
            tee_tcb_svn: hex::encode(b.tee_tcb_svn),
            tee_tcb_svn2: b.tee_tcb_svn2.map(hex::encode),
            mr_service_td: b.mr_service_td.map(hex::encode),
            tdx_module: (module_version != 0).then(|| format!("TDX_{module_version:02X}")),
            tdx_module_isvsvn: b.tdx_module_isvsvn(),
            qe_isv_svn: self.quote.signature.qe_report.isv_svn,
            trailing_bytes: self.quote.trailing_bytes(),
            custom_root: self.custom_root,
            pck_dynamic_platform: self.pck_flags.dynamic_platform,
            pck_cached_keys: self.pck_flags.cached_keys,
            pck_smt_enabled: self.pck_flags.smt_enabled,
            tcb_info_issue_date: self.tcb_info_version.issue_date.to_rfc3339(),
            tcb_info_evaluation_data_number: self.tcb_info_version.tcb_evaluation_data_number,
            qe_identity_issue_date: self.qe_identity_version.issue_date.to_rfc3339(),
            qe_identity_evaluation_data_number: self.qe_identity_version.tcb_evaluation_data_number,
        }
    }
}

/// Verified TDX claims (hex strings for byte fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxClaims {
    /// Always "tdx".
    pub platform: &'static str,
    pub quote_version: u16,
    /// "TD10" or "TD15".
    pub body: &'static str,
    pub tcb_status: TcbStatus,
    pub advisory_ids: Vec<String>,
    /// Platform TCB level status before converging with the QE (Intel's name).
    pub platform_tcb_status: String,
    /// QE identity TCB level status (Intel's name).
    pub qe_tcb_status: String,
    pub fmspc: String,
    pub mr_td: String,
    pub rtmr0: String,
    pub rtmr1: String,
    pub rtmr2: String,
    pub rtmr3: String,
    pub mr_config_id: String,
    pub mr_owner: String,
    pub mr_owner_config: String,
    pub mr_seam: String,
    pub mr_signer_seam: String,
    pub report_data: String,
    pub td_attributes: String,
    /// TD_ATTRIBUTES bit 0.
    pub debug: bool,
    /// Any TUD bit (debug or profiling).
    pub under_debug: bool,
    pub sept_ve_disable: bool,
    pub xfam: String,
    pub seam_attributes: String,
    pub tee_tcb_svn: String,
    pub tee_tcb_svn2: Option<String>,
    pub mr_service_td: Option<String>,
    /// "TDX_01" style module identity id (None when `TEE_TCB_SVN[1]` is 0).
    pub tdx_module: Option<String>,
    pub tdx_module_isvsvn: u8,
    pub qe_isv_svn: u16,
    /// Bytes after the signature data (covered by no signature).
    pub trailing_bytes: usize,
    /// Verified to a `dangerous_custom_root`.
    pub custom_root: bool,
    /// PCK certificate platform flags (null: the certificate does not state them).
    pub pck_dynamic_platform: Option<bool>,
    pub pck_cached_keys: Option<bool>,
    pub pck_smt_enabled: Option<bool>,
    /// The collateral's editions: issueDate and tcbEvaluationDataNumber.
    pub tcb_info_issue_date: String,
    pub tcb_info_evaluation_data_number: u32,
    pub qe_identity_issue_date: String,
    pub qe_identity_evaluation_data_number: u32,
}

/// Verify a TDX quote at time `at` (fail closed; see the module docs for the order).
pub fn verify(
    quote: &[u8],
    collateral: Option<&TdxCollateral>,
    anchors: &TdxTrustAnchors,
    at: Timestamp,
) -> Result<VerifiedTdxQuote, Rejection> {
    verify_uncached(quote, Quote::parse(quote)?, collateral, anchors, at)
}

/// Verifies like [`verify`] with fixed anchors, remembering each platform it verified:
/// the PCK chain, QE report, collateral and the TCB level dcap-qvl computed. The key
/// covers every quote byte those depend on (header, TEE_TCB_SVN(2), MRSIGNERSEAM,
/// SEAMATTRIBUTES, TD_ATTRIBUTES, MRSERVICETD, the whole signature data but the quote
/// signature) plus all collateral bytes; the window is where every certificate, CRL and
/// collateral item is valid. A later quote from the same platform costs one parse and
/// one ECDSA check of its own signature.
pub struct TdxVerifier {
    anchors: TdxTrustAnchors,
    platforms: VerifiedCache<CachedPlatform>,
}

/// What a verified platform contributes to a [`VerifiedTdxQuote`].
#[derive(Clone)]
struct CachedPlatform {
    tcb_status: TcbStatus,
    advisory_ids: Vec<String>,
    platform_tcb_status: String,
    qe_tcb_status: String,
    fmspc: [u8; 6],
    pck_flags: PckPlatformFlags,
    tcb_info_version: CollateralVersion,
    qe_identity_version: CollateralVersion,
}

impl TdxVerifier {
    pub fn new(anchors: TdxTrustAnchors) -> Self {
        TdxVerifier {
            anchors,
            platforms: VerifiedCache::default(),
        }
    }

    pub fn anchors(&self) -> &TdxTrustAnchors {
        &self.anchors
    }

    pub fn verify(
        &self,
        quote: &[u8],
        collateral: Option<&TdxCollateral>,
        at: Timestamp,
    ) -> Result<VerifiedTdxQuote, Rejection> {
        let parsed = Quote::parse(quote)?;
        let Some(collateral) = collateral else {
            return verify_uncached(quote, parsed, None, &self.anchors, at);
        };
        let key = platform_key(&parsed, collateral, &self.anchors);
        if let Some(platform) = self.platforms.get(&key, at) {
            verify_quote_signature(&parsed)?;
            return Ok(VerifiedTdxQuote {
                quote: parsed,
                tcb_status: platform.tcb_status,
                advisory_ids: platform.advisory_ids,
                platform_tcb_status: platform.platform_tcb_status,
                qe_tcb_status: platform.qe_tcb_status,
                fmspc: platform.fmspc,
                custom_root: self.anchors.is_custom(),
                pck_flags: platform.pck_flags,
                tcb_info_version: platform.tcb_info_version,
                qe_identity_version: platform.qe_identity_version,
                verified_at: at,
            });
        }
        let window = platform_window(&parsed, collateral, &self.anchors)?;
        let verified = verify_uncached(quote, parsed, Some(collateral), &self.anchors, at)?;
        let platform = CachedPlatform {
            tcb_status: verified.tcb_status,
            advisory_ids: verified.advisory_ids.clone(),
            platform_tcb_status: verified.platform_tcb_status.clone(),
            qe_tcb_status: verified.qe_tcb_status.clone(),
            fmspc: verified.fmspc,
            pck_flags: verified.pck_flags,
            tcb_info_version: verified.tcb_info_version,
            qe_identity_version: verified.qe_identity_version,
        };
        self.platforms.insert(key, platform, window);
        Ok(verified)
    }

    /// How many verified platforms are remembered.
    pub fn cached_platforms(&self) -> usize {
        self.platforms.len()
    }
}

/// Every input of the platform verification except the time (see [`TdxVerifier`]).
fn platform_key(quote: &Quote, collateral: &TdxCollateral, anchors: &TdxTrustAnchors) -> [u8; 32] {
    let optional = |v: Option<&[u8]>| v.map_or(vec![0], |b| [&[1u8][..], b].concat());
    let body = &quote.body;
    let sig = &quote.signature;
    let c = collateral.dcap_qvl();
    let mut key = KeyBuilder::new("tdx-platform");
    key.part(anchors.root_der())
        .part(quote.signed_bytes().get(..48).unwrap_or_default())
        .part(quote.body_type().as_str().as_bytes())
        .part(&body.tee_tcb_svn)
        .part(&optional(body.tee_tcb_svn2.as_ref().map(|v| &v[..])))
        .part(&body.mr_signer_seam)
        .part(&body.seam_attributes)
        .part(&body.td_attributes)
        .part(&optional(body.mr_service_td.as_ref().map(|v| &v[..])))
        .part(&sig.attestation_key)
        .part(&sig.qe_report.raw)
        .part(&sig.qe_report_signature)
        .part(&sig.qe_auth_data);
    for der in &sig.pck_chain_der {
        key.part(der);
    }
    key.part(c.tcb_info.as_bytes())
        .part(&c.tcb_info_signature)
        .part(c.tcb_info_issuer_chain.as_bytes())
        .part(c.qe_identity.as_bytes())
        .part(&c.qe_identity_signature)
        .part(c.qe_identity_issuer_chain.as_bytes())
        .part(&c.pck_crl)
        .part(c.pck_crl_issuer_chain.as_bytes())
        .part(&c.root_ca_crl);
    key.finish()
}

/// Where the platform verification's time checks all pass: collateral items (half-open
/// at nextUpdate, as `check_time`) and every certificate (inclusive).
fn platform_window(
    quote: &Quote,
    collateral: &TdxCollateral,
    anchors: &TdxTrustAnchors,
) -> Result<Window, Rejection> {
    let (from, until) = collateral.validity_window();
    let mut window = Window::ALWAYS.within(from.unix(), until.map_or(i64::MAX, |t| t.unix()));
    let c = collateral.dcap_qvl();
    let mut certs = quote.signature.pck_chain_der.clone();
    certs.push(anchors.root_der().to_vec());
    for pem in [&c.tcb_info_issuer_chain, &c.qe_identity_issuer_chain] {
        certs.extend(x509::certs_from_pem(pem.as_bytes())?);
    }
    for der in &certs {
        let cert = x509::parse_cert(der, "platform certificate")?;
        window = window.within_inclusive(
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
    }
    Ok(window)
}

fn verify_uncached(
    quote: &[u8],
    parsed: Quote,
    collateral: Option<&TdxCollateral>,
    anchors: &TdxTrustAnchors,
    at: Timestamp,
) -> Result<VerifiedTdxQuote, Rejection> {
    let (fmspc, pck_flags) = verify_signatures(&parsed, anchors, at)?;

    let Some(collateral) = collateral else {
        return reject(
            Reason::CollateralMissing,
            "no TDX collateral (TCB info, QE identity, CRLs): signatures verified, TCB not evaluated",
        );
    };
    collateral.check_time(at)?;
    let now = u64::try_from(at.unix()).map_err(|_| {
        Rejection::new(
            Reason::InvalidField,
            format!("verification time {at} before 1970"),
        )
    })?;

    // allow_debug(true): debug is our policy's decision (see module docs).
    let report = dcap_qvl::verify::QuoteVerifier::new(anchors.root_der().to_vec())
        .allow_debug(true)
        .verify(quote, collateral.dcap_qvl(), now)
        .map_err(|e| map_dcap_error(&format!("{e:#}")))?;

    // dcap-qvl parsed the same bytes on its own; a disagreement means the two parsers
    // read different quotes, which must never be accepted.
    let same = report.report.as_td10().is_some_and(|r| {
        r.mr_td == parsed.body.mr_td
            && r.report_data == parsed.body.report_data
            && r.td_attributes == parsed.body.td_attributes
            && r.rt_mr3 == parsed.body.rtmr[3]
    });
    if !same {
        return reject(
            Reason::TdxVerificationFailed,
            "dcap-qvl's TD report differs from ours",
        );
    }
    let tcb_status = TcbStatus::parse(&report.status).ok_or_else(|| {
        Rejection::new(
            Reason::TdxVerificationFailed,
            format!("dcap-qvl returned unknown TCB status {:?}", report.status),
        )
    })?;
    Ok(VerifiedTdxQuote {
        quote: parsed,
        tcb_status,
        advisory_ids: report.advisory_ids,
        platform_tcb_status: report.platform_status.status.to_string(),
        qe_tcb_status: report.qe_status.status.to_string(),
        fmspc,
        custom_root: anchors.is_custom(),
        pck_flags,
        tcb_info_version: collateral.tcb_info_version(),
        qe_identity_version: collateral.qe_identity_version(),
        verified_at: at,
    })
}

/// Our checks over received bytes, with no collateral: PCK chain to the pinned root,
/// QE report signature, QE binding, quote signature. Returns the PCK's FMSPC and platform
/// flags.
fn verify_signatures(
    quote: &Quote,
    anchors: &TdxTrustAnchors,
    at: Timestamp,
) -> Result<([u8; 6], PckPlatformFlags), Rejection> {
    let root = x509::parse_cert(anchors.root_der(), "pinned Intel SGX Root CA")?;
    let chain = &quote.signature.pck_chain_der;
    // The quote normally carries the root last; it must then be the pinned one.
    let mut certs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    if certs.last().copied() == Some(anchors.root_der()) {
        certs.pop();
    }
    let parsed = certs
        .iter()
        .enumerate()
        .map(|(i, der)| x509::parse_cert(der, &format!("PCK chain certificate {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(last) = parsed.last() {
        if last.subject().as_raw() == last.issuer().as_raw() || parsed.len() > 2 {
            return reject(
                Reason::UntrustedRoot,
                format!(
                    "the quote's PCK chain ends in \"{}\", not the pinned root",
                    last.subject()
                ),
            );
        }
    }
    let [leaf, ca] = parsed.as_slice() else {
        return reject(
            Reason::CertificateMissing,
            format!(
                "the quote's PCK chain has {} certificate(s) below the root; need the PCK leaf and its CA",
                parsed.len()
            ),
        );
    };
    if ca.issuer().as_raw() != root.subject().as_raw() {
        return reject(
            Reason::UntrustedRoot,
            format!(
                "PCK CA is issued by \"{}\", not the pinned root",
                ca.issuer()
            ),
        );
    }
    x509::verify_issued_by(ca, &root, "PCK CA certificate")?;
    x509::verify_issued_by(leaf, ca, "PCK certificate")?;
    x509::check_validity(&root, at, "Intel SGX Root CA")?;
    x509::check_validity(ca, at, "PCK CA certificate")?;
    x509::check_validity(leaf, at, "PCK certificate")?;

    let sig = &quote.signature;
    let pck_key = x509::ec_public_key(leaf, x509::Curve::P256, "PCK certificate")?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pck_key)
        .verify(&sig.qe_report.raw, &sig.qe_report_signature)
        .map_err(|_| {
            Rejection::new(
                Reason::QeReportSignatureInvalid,
                "QE report signature does not verify with the PCK certificate key",
            )
        })?;

    let mut bound = Vec::with_capacity(64 + sig.qe_auth_data.len());
    bound.extend_from_slice(&sig.attestation_key);
    bound.extend_from_slice(&sig.qe_auth_data);
    let digest = x509::sha256(&bound);
    let report_data = &sig.qe_report.report_data;
    if report_data.get(..32) != Some(&digest[..]) || report_data.iter().skip(32).any(|&b| b != 0) {
        return reject(
            Reason::QeBindingMismatch,
            "QE report data is not SHA-256(attestation key || QE auth data) || zeros",
        );
    }

    verify_quote_signature(quote)?;

    pck_flags_of(quote)
}

/// The FMSPC and platform flags of the quote's PCK certificate (its SGX extensions).
pub(super) fn pck_flags_of(quote: &Quote) -> Result<([u8; 6], PckPlatformFlags), Rejection> {
    let der = quote
        .signature
        .pck_chain_der
        .first()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ext = dcap_qvl::intel::parse_pck_extension(der).map_err(|e| {
        Rejection::new(
            Reason::MalformedCertificate,
            format!("PCK certificate SGX extension: {e:#}"),
        )
    })?;
    let flags = PckPlatformFlags {
        dynamic_platform: ext.dynamic_platform,
        cached_keys: ext.cached_keys,
        smt_enabled: ext.smt_enabled,
    };
    Ok((ext.fmspc, flags))
}

/// The quote signature over header, [v5 descriptor] and body, by the attestation key.
fn verify_quote_signature(quote: &Quote) -> Result<(), Rejection> {
    let sig = &quote.signature;
    let mut att_key = [0u8; 65];
    att_key[0] = 0x04;
    att_key[1..].copy_from_slice(&sig.attestation_key);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &att_key[..])
        .verify(quote.signed_bytes(), &sig.signature)
        .map_err(|_| {
            Rejection::new(
                Reason::QuoteSignatureInvalid,
                "quote signature does not verify with the attestation key",
            )
        })
}

/// dcap-qvl =0.7.1 error messages (the `{:#}` chain) → reasons. First match in table
/// order wins, so specific inner causes come before the contexts that wrap them.
/// Re-check this table whenever the dcap-qvl pin changes.
const DCAP_ERRORS: &[(&str, Reason)] = &[
    // TCB evaluation.
    ("TCB status is invalid: Revoked", Reason::TcbRevoked),
    ("No matching TCB level found", Reason::TcbLevelNotFound),
    ("No TDX module identity with id", Reason::TdxModuleMismatch),
    ("TDX module ISVSVN", Reason::TdxModuleMismatch),
    ("TDX module MRSIGNER mismatch", Reason::TdxModuleMismatch),
    ("TDX module SEAMATTRIBUTES", Reason::TdxModuleMismatch),
    ("QE MRSIGNER mismatch", Reason::QeIdentityMismatch),
    ("QE ISVPRODID mismatch", Reason::QeIdentityMismatch),
    ("QE MISCSELECT mismatch", Reason::QeIdentityMismatch),
    ("QE ATTRIBUTES mismatch", Reason::QeIdentityMismatch),
    ("QE report validation failed", Reason::QeIdentityMismatch),
    ("QE ISVSVN", Reason::QeIdentityMismatch),
    // Collateral for another platform or TEE.
    ("Fmspc mismatch", Reason::CollateralMismatch),
    ("with non-TDX TCB info", Reason::CollateralMismatch),
    (
        "Unsupported QE Identity id/version",
        Reason::CollateralMismatch,
    ),
    ("UnknownRevocationStatus", Reason::CollateralMismatch),
    // Collateral content.
    (
        "TDX TCB Info is missing tdxModule",
        Reason::MalformedCollateral,
    ),
    (
        "No TCB levels found in QE Identity",
        Reason::MalformedCollateral,
    ),
    ("Unrecognized TCB status", Reason::MalformedCollateral),
    ("component count mismatch", Reason::MalformedCollateral),
    ("Failed to decode TCB FMSPC", Reason::MalformedCollateral),
    ("as hex", Reason::MalformedCollateral),
    ("has invalid length", Reason::MalformedCollateral),
    ("tcbDate", Reason::MalformedCollateral),
    ("Failed to decode TcbInfo", Reason::MalformedCollateral),
    ("Failed to decode QeIdentity", Reason::MalformedCollateral),
    ("Failed to parse TCB Info", Reason::MalformedCollateral),
    ("Failed to parse QE Identity", Reason::MalformedCollateral),
    ("Invalid key length", Reason::MalformedCollateral),
    // Collateral time.
    (
        "TCBInfo issue date is in the future",
        Reason::CollateralNotYetValid,
    ),
    (
        "QE Identity issue date is in the future",
        Reason::CollateralNotYetValid,
    ),
    ("TCBInfo expired", Reason::CollateralExpired),
    ("QE Identity expired", Reason::CollateralExpired),
    ("CrlExpired", Reason::CollateralExpired),
    // Collateral signatures.
    (
        "Signature is invalid for tcb_info",
        Reason::CollateralSignatureInvalid,
    ),
    (
        "Signature is invalid for qe_identity",
        Reason::CollateralSignatureInvalid,
    ),
    // Certificates and CRLs (webpki error names inside dcap-qvl's contexts).
    (
        "InvalidCrlSignatureForPublicKey",
        Reason::CrlSignatureInvalid,
    ),
    ("CertRevoked", Reason::CertificateRevoked),
    ("CertExpired", Reason::CertificateExpired),
    ("CertNotValidYet", Reason::CertificateNotYetValid),
    (
        "InvalidSignatureForPublicKey",
        Reason::CertificateSignatureInvalid,
    ),
    ("UnknownIssuer", Reason::UntrustedRoot),
    (
        "must be issued directly by the root CA",
        Reason::IssuerMismatch,
    ),
    // webpki: collateral signed by a CA certificate (e.g. the PCK CA) instead of the
    // TCB Signing end-entity certificate.
    ("CaUsedAsEndEntity", Reason::IssuerMismatch),
    ("Certificate chain is too short", Reason::CertificateMissing),
    ("Too many intermediate certificates", Reason::InvalidField),
    ("Failed to parse root CA CRL", Reason::MalformedCrl),
    ("Failed to parse PCK CRL", Reason::MalformedCrl),
    ("Failed to load root ca", Reason::MalformedCertificate),
    (
        "Failed to parse root CA certificate",
        Reason::MalformedCertificate,
    ),
    ("leaf certificate", Reason::MalformedCertificate),
    ("Failed to parse certs", Reason::MalformedCertificate),
    (
        "Failed to extract PCK certificates",
        Reason::MalformedCertificate,
    ),
    (
        "Failed to parse PCK certificate",
        Reason::MalformedCertificate,
    ),
    ("Intel extension", Reason::MalformedCertificate),
    ("Fmspc", Reason::MalformedCertificate),
    ("CpuSvn", Reason::MalformedCertificate),
    ("PceSvn", Reason::MalformedCertificate),
    // Quote (our own checks run first, so these are defence in depth).
    (
        "Signature is invalid for qe_report",
        Reason::QeReportSignatureInvalid,
    ),
    ("QE report hash mismatch", Reason::QeBindingMismatch),
    (
        "ISV enclave report signature is invalid",
        Reason::QuoteSignatureInvalid,
    ),
    ("Invalid QE auth data length", Reason::InvalidField),
    ("Failed to decode QE report", Reason::InvalidField),
    ("Unknown QE vendor ID", Reason::InvalidField),
    ("Unsupported DCAP quote version", Reason::UnsupportedVersion),
    ("TEE quote must have version", Reason::UnsupportedVersion),
    ("Unsupported TEE type", Reason::InvalidField),
    (
        "Unsupported DCAP attestation key type",
        Reason::InvalidField,
    ),
    ("Unsupported DCAP PCK cert format", Reason::InvalidField),
    ("Failed to decode quote", Reason::InvalidField),
    // TD attributes: dcap-qvl's fixed rules (debug/profiling are off: allow_debug(true)).
    ("Reserved bits in TD attributes", Reason::ReservedNotZero),
    ("TD migration is enabled", Reason::MigrationAgentNotAllowed),
    ("SEPT_VE_DISABLE is not enabled", Reason::InvalidField),
    ("SERVTD_EXT is enabled", Reason::InvalidField),
    ("Invalid MR service TD", Reason::InvalidField),
    ("Failed to parse TD attributes", Reason::InvalidField),
    ("Debug mode is enabled", Reason::DebugNotAllowed),
    ("TD profiling is enabled", Reason::DebugNotAllowed),
];

/// Map one dcap-qvl error chain to a rejection; unknown messages fail closed as
/// `TdxVerificationFailed`, keeping the message.
pub(crate) fn map_dcap_error(message: &str) -> Rejection {
    let reason = DCAP_ERRORS
        .iter()
        .find(|(fragment, _)| message.contains(fragment))
        .map(|&(_, reason)| reason)
        .unwrap_or(Reason::TdxVerificationFailed);
    Rejection::new(reason, format!("dcap-qvl: {}", readable_times(message)))
}

/// webpki's `UnixTime(1770249600)` inside dcap-qvl's messages, written as RFC 3339 UTC
/// like every other date we print.
fn readable_times(message: &str) -> String {
    const OPEN: &str = "UnixTime(";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match (
            after[..digits].parse::<i64>(),
            after[digits..].starts_with(')'),
        ) {
            (Ok(secs), true) => {
                out.push_str(&Timestamp::from_unix(secs).to_rfc3339());
                rest = &after[digits + 1..];
            }
            _ => {
                out.push_str(OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcap_messages_map_to_reasons() {
        let cases = [
            ("No matching TCB level found", Reason::TcbLevelNotFound),
            (
                "Failed to evaluate the current TDX TCB (TEE_TCB_SVN2): No matching TCB level found",
                Reason::TcbLevelNotFound,
            ),
            ("TCB status is invalid: Revoked", Reason::TcbRevoked),
            ("Fmspc mismatch", Reason::CollateralMismatch),
            ("Fmspc length mismatch", Reason::MalformedCertificate),
            (
                "Signature is invalid for tcb_info in quote_collateral",
                Reason::CollateralSignatureInvalid,
            ),
            (
                "TDX module identity check: TDX module MRSIGNER mismatch: expected 00, got 01",
                Reason::TdxModuleMismatch,
            ),
            (
                "TDX module TCB level check: No TDX module identity with id TDX_03 found in TCB Info",
                Reason::TdxModuleMismatch,
            ),
            ("QE ISVSVN 4 is below minimum required 5 from QE Identity", Reason::QeIdentityMismatch),
            (
                "Failed to verify certificate chain: CertExpired { time: UnixTime(1), not_after: UnixTime(0) }",
                Reason::CertificateExpired,
            ),
            ("Failed to verify certificate chain: CertRevoked", Reason::CertificateRevoked),
            (
                "Failed to parse root CA CRL: InvalidCrlSignatureForPublicKey",
                Reason::CrlSignatureInvalid,
            ),
            ("Failed to parse PCK CRL: BadDer", Reason::MalformedCrl),
            ("TCBInfo expired", Reason::CollateralExpired),
            ("QE Identity issue date is in the future", Reason::CollateralNotYetValid),
            (
                "Failed to verify certificate chain: UnknownRevocationStatus",
                Reason::CollateralMismatch,
            ),
            ("SEPT_VE_DISABLE is not enabled", Reason::InvalidField),
            ("something new", Reason::TdxVerificationFailed),
        ];
        for (message, reason) in cases {
            let rejection = map_dcap_error(message);
            assert_eq!(rejection.reason, reason, "{message}");
            assert!(rejection.detail.contains(&readable_times(message)));
        }
        // Dates in RFC 3339, as everywhere else.
        let r = map_dcap_error(
            "Failed to verify certificate chain: CertExpired { time: UnixTime(1770249600), not_after: UnixTime(1747824610) }",
        );
        assert_eq!(
            r.detail,
            "dcap-qvl: Failed to verify certificate chain: CertExpired { time: 2026-02-05T00:00:00Z, not_after: 2025-05-21T10:50:10Z }"
        );
        assert_eq!(
            readable_times("UnixTime(x) UnixTime(12"),
            "UnixTime(x) UnixTime(12"
        );
    }
}
