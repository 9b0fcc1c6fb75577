//! SNP verification: evidence + certificates + CRLs + pinned roots + time in, a
//! [`VerifiedSnpReport`] out, or a typed rejection.
//!
//! Order (tests rely on it): parse, then the certificate chain (leaf choice, products,
//! pinned ARK, signatures, validity, CRLs), then the report signature over the received
//! bytes 0x000..0x2A0, then the leaf's extensions against the report's fields.

use super::certs::{self, HwId, Role, SnpTrustAnchors};
use super::{Product, SigningKey, SnpEvidence, SnpReport, TcbVersion};
use crate::cache::{KeyBuilder, VerifiedCache, Window};
use crate::crypto::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use serde::Serialize;
use std::borrow::Cow;
use x509_parser::prelude::*;

/// A report whose chain, signature and certificate bindings were verified. Only
/// [`verify`] builds one.
#[derive(Debug, Clone)]
pub struct VerifiedSnpReport {
    evidence: SnpEvidence,
    product: Product,
    signing_key: SigningKey,
    root_sha256: [u8; 32],
    crls: CrlCoverage,
}

/// Which supplied CRLs covered the chain. Every supplied CRL was verified (signed by its
/// issuer, current at the verification time, not listing the certificate below it), or
/// verification failed; this says which links of the chain such a CRL covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CrlCoverage {
    /// A CRL signed by the ARK (the one AMD's KDS serves): the ASK/ASVK is not revoked.
    pub ark: bool,
    /// A CRL signed by the ASK/ASVK: the VCEK/VLEK is not revoked. AMD publishes none
    /// today (a VCEK is retired through TCB minimums, not a CRL).
    pub intermediate: bool,
}

impl VerifiedSnpReport {
    pub fn report(&self) -> &SnpReport {
        self.evidence.report()
    }

    pub fn evidence(&self) -> &SnpEvidence {
        &self.evidence
    }

    pub fn product(&self) -> Product {
        self.product
    }

    pub fn signing_key(&self) -> SigningKey {
        self.signing_key
    }

    /// REPORTED_TCB (the TCB the VCEK/VLEK was checked against), decoded for the product.
    pub fn reported_tcb(&self) -> TcbVersion {
        TcbVersion::from_raw(self.report().reported_tcb, self.product)
    }

    /// The Azure HCL runtime data bound by REPORT_DATA, for HCL evidence.
    pub fn runtime_data(&self) -> Option<&[u8]> {
        self.evidence.runtime_data()
    }

    /// SHA-256 of the DER of the ARK the chain ended in.
    pub fn root_sha256(&self) -> [u8; 32] {
        self.root_sha256
    }

    /// Which links of the chain a supplied, verified CRL covered.
    pub fn crl_coverage(&self) -> CrlCoverage {
        self.crls
    }

    /// Whether revocation was checked: a current CRL signed by the ARK verified and does
    /// not list the ASK/ASVK. `false` means no such CRL was supplied.
    pub fn revocation_checked(&self) -> bool {
        self.crls.ark
    }

    /// LAUNCH_TCB, decoded for the product.
    pub fn launch_tcb(&self) -> TcbVersion {
        TcbVersion::from_raw(self.report().launch_tcb, self.product)
    }

    /// COMMITTED_TCB, decoded for the product.
    pub fn committed_tcb(&self) -> TcbVersion {
        TcbVersion::from_raw(self.report().committed_tcb, self.product)
    }

    pub fn claims(&self) -> SnpClaims {
        let r = self.report();
        let p = self.product;
        let cpuid = match (r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step) {
            (Some(family), Some(model), Some(stepping)) => Some(Cpuid {
                family,
                model,
                stepping,
            }),
            _ => None,
        };
        SnpClaims {
            platform: "snp",
            product: p,
            report_version: r.version,
            signing_key: self.signing_key,
            measurement: hex::encode(r.measurement),
            host_data: hex::encode(r.host_data),
            report_data: hex::encode(r.report_data),
            debug: r.debug_allowed(),
            migration_agent: r.migration_agent_allowed(),
            smt: r.smt_allowed(),
            vmpl: r.vmpl,
            guest_svn: r.guest_svn,
            policy: format!("{:#018x}", r.policy),
            reported_tcb: TcbVersion::from_raw(r.reported_tcb, p),
            current_tcb: TcbVersion::from_raw(r.current_tcb, p),
            committed_tcb: TcbVersion::from_raw(r.committed_tcb, p),
            launch_tcb: TcbVersion::from_raw(r.launch_tcb, p),
            chip_id: hex::encode(r.chip_id),
            chip_id_masked: r.chip_id_masked(),
            author_key_en: r.author_key_enabled(),
            id_key_digest: hex::encode(r.id_key_digest),
            author_key_digest: hex::encode(r.author_key_digest),
            family_id: hex::encode(r.family_id),
            image_id: hex::encode(r.image_id),
            report_id: hex::encode(r.report_id),
            report_id_ma: hex::encode(r.report_id_ma),
            platform_info: format!("{:#018x}", r.platform_info),
            current_firmware: format!(
                "{}.{}.{}",
                r.current_major, r.current_minor, r.current_build
            ),
            committed_firmware: format!(
                "{}.{}.{}",
                r.committed_major, r.committed_minor, r.committed_build
            ),
            cpuid,
            launch_mit_vector: r.launch_mit_vector.map(|v| format!("{v:#018x}")),
            current_mit_vector: r.current_mit_vector.map(|v| format!("{v:#018x}")),
            root_sha256: hex::encode(self.root_sha256),
            revocation_checked: self.crls.ark,
            azure_hcl_runtime_data: self.runtime_data().map(|d| match std::str::from_utf8(d) {
                Ok(text) => text.to_owned(),
                Err(_) => hex::encode(d),
            }),
        }
    }
}

/// CPUID family/model/stepping from a v3+ report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cpuid {
    pub family: u8,
    pub model: u8,
    pub stepping: u8,
}

/// The verified claims of an SNP report, for display and JSON output. Byte strings are
/// lowercase hex; u64 bit fields are `0x`-prefixed hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpClaims {
    pub platform: &'static str,
    pub product: Product,
    pub report_version: u32,
    pub signing_key: SigningKey,
    pub measurement: String,
    pub host_data: String,
    pub report_data: String,
    /// Guest policy allows debugging.
    pub debug: bool,
    /// Guest policy allows a migration agent.
    pub migration_agent: bool,
    /// Guest policy allows SMT.
    pub smt: bool,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub policy: String,
    pub reported_tcb: TcbVersion,
    pub current_tcb: TcbVersion,
    pub committed_tcb: TcbVersion,
    pub launch_tcb: TcbVersion,
    pub chip_id: String,
    pub chip_id_masked: bool,
    pub author_key_en: bool,
    pub id_key_digest: String,
    pub author_key_digest: String,
    pub family_id: String,
    pub image_id: String,
    pub report_id: String,
    pub report_id_ma: String,
    pub platform_info: String,
    /// SNP firmware "major.minor.build".
    pub current_firmware: String,
    pub committed_firmware: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuid: Option<Cpuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_mit_vector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_mit_vector: Option<String>,
    /// SHA-256 of the ARK the chain ended in.
    pub root_sha256: String,
    /// A current CRL signed by the ARK was supplied, verified, and does not list the
    /// ASK/ASVK; `false`: revocation was not checked (no such CRL was supplied).
    pub revocation_checked: bool,
    /// Azure HCL runtime data (UTF-8 text, else hex), only for HCL evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_hcl_runtime_data: Option<String>,
}

/// A supplied certificate with its role.
struct Supplied<'a> {
    der: &'a [u8],
    cert: X509Certificate<'a>,
    role: Option<Role>,
}

/// Verify SNP evidence (a raw report or an Azure HCL report) at time `at`.
///
/// `certs` are DER certificates in any order and any subset of VCEK/VLEK, ASK/ASVK and
/// ARK; a missing intermediate or ARK is taken from `anchors`. `crls` are DER CRLs issued
/// by the ARK or the intermediate; each supplied one must verify and be current.
pub fn verify(
    evidence: &[u8],
    certs: &[Vec<u8>],
    crls: &[Vec<u8>],
    anchors: &SnpTrustAnchors,
    at: Timestamp,
) -> Result<VerifiedSnpReport, Rejection> {
    verify_impl(evidence, certs, crls, anchors, at, None)
}

/// Verifies like [`verify`] with fixed anchors, remembering each certificate chain it
/// verified (keyed by the exact certificate and CRL bytes, valid while every certificate
/// and CRL is), so later reports signed through the same chain cost one ECDSA check.
pub struct SnpVerifier {
    anchors: SnpTrustAnchors,
    chains: VerifiedCache<ChainResult>,
}

impl SnpVerifier {
    pub fn new(anchors: SnpTrustAnchors) -> Self {
        SnpVerifier {
            anchors,
            chains: VerifiedCache::default(),
        }
    }

    pub fn anchors(&self) -> &SnpTrustAnchors {
        &self.anchors
    }

    pub fn verify(
        &self,
        evidence: &[u8],
        certs: &[Vec<u8>],
        crls: &[Vec<u8>],
        at: Timestamp,
    ) -> Result<VerifiedSnpReport, Rejection> {
        verify_impl(evidence, certs, crls, &self.anchors, at, Some(&self.chains))
    }

    /// How many verified chains are remembered.
    pub fn cached_chains(&self) -> usize {
        self.chains.len()
    }
}

fn verify_impl(
    evidence: &[u8],
    certs: &[Vec<u8>],
    crls: &[Vec<u8>],
    anchors: &SnpTrustAnchors,
    at: Timestamp,
    cache: Option<&VerifiedCache<ChainResult>>,
) -> Result<VerifiedSnpReport, Rejection> {
    let evidence = SnpEvidence::parse(evidence)?;
    let report = evidence.report();
    let key = report.signing_key()?;

    let mut supplied = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        let cert = x509::parse_cert(der, &format!("certificate #{i}"))?;
        let role = Role::of(&cert);
        supplied.push(Supplied { der, cert, role });
    }

    let leaf = select_leaf(&supplied, key, report)?;
    let product = leaf_product(leaf, key, report)?;
    let (root_sha256, crls) =
        verify_chain(&supplied, leaf, key, product, crls, anchors, at, cache)?;
    verify_report_signature(report, leaf)?;
    if key == SigningKey::Vcek {
        check_hwid(report, leaf, product)?;
    }
    check_tcb(report, leaf, product)?;

    Ok(VerifiedSnpReport {
        evidence,
        product,
        signing_key: key,
        root_sha256,
        crls,
    })
}

/// The VCEK or VLEK (as the report says) among the supplied certificates.
fn select_leaf<'s, 'a>(
    supplied: &'s [Supplied<'a>],
    key: SigningKey,
    report: &SnpReport,
) -> Result<&'s X509Certificate<'a>, Rejection> {
    let wanted = match key {
        SigningKey::Vcek => Role::Vcek,
        SigningKey::Vlek => Role::Vlek,
    };
    // The same certificate given twice is one certificate.
    let mut leaves: Vec<&Supplied> = Vec::new();
    for s in supplied.iter().filter(|s| s.role == Some(wanted)) {
        if !leaves.iter().any(|l| l.der == s.der) {
            leaves.push(s);
        }
    }
    let other = supplied
        .iter()
        .any(|s| matches!(s.role, Some(Role::Vcek | Role::Vlek)) && s.role != Some(wanted));
    match leaves.as_slice() {
        [] if other => reject(
            Reason::SigningKeyMismatch,
            format!(
                "the report is signed by a {} but only a {} certificate was supplied",
                key.as_str().to_uppercase(),
                match key {
                    SigningKey::Vcek => "VLEK",
                    SigningKey::Vlek => "VCEK",
                }
            ),
        ),
        [] => reject(
            Reason::CertificateMissing,
            format!(
                "no {} certificate (CN \"{}\") was supplied",
                key.as_str().to_uppercase(),
                key.leaf_common_name()
            ),
        ),
        [one] => Ok(&one.cert),
        many => {
            // Several VCEKs (e.g. for different TCBs): the one whose extensions describe
            // this report; the rest of verification then checks it fully.
            let fitting: Vec<&&Supplied> = many
                .iter()
                .filter(|s| {
                    leaf_product(&s.cert, key, report).is_ok_and(|p| {
                        check_tcb(report, &s.cert, p).is_ok()
                            && (key == SigningKey::Vlek || check_hwid(report, &s.cert, p).is_ok())
                    })
                })
                .collect();
            match fitting.as_slice() {
                [one] => Ok(&one.cert),
                [] => Ok(&many[0].cert),
                _ => reject(
                    Reason::AmbiguousInput,
                    format!(
                        "{} different {} certificates fit the report",
                        fitting.len(),
                        key.leaf_common_name()
                    ),
                ),
            }
        }
    }
}

/// The product of the leaf, from its issuer's CN, cross-checked with its productName
/// extension and (v3+) the report's CPUID.
fn leaf_product(
    leaf: &X509Certificate<'_>,
    key: SigningKey,
    report: &SnpReport,
) -> Result<Product, Rejection> {
    let leaf_name = key.leaf_common_name();
    let issuer_cn = x509::common_name(leaf.issuer()).unwrap_or_default();
    let product = match (key, Role::from_cn(&issuer_cn)) {
        (SigningKey::Vcek, Some(Role::Ask(p))) | (SigningKey::Vlek, Some(Role::Asvk(p))) => p,
        (SigningKey::Vcek, Some(Role::Asvk(_))) => {
            return reject(
                Reason::SigningKeyMismatch,
                format!("{leaf_name} is issued by the VLEK signing key \"{issuer_cn}\""),
            )
        }
        (SigningKey::Vlek, Some(Role::Ask(_))) => {
            return reject(
                Reason::SigningKeyMismatch,
                format!("{leaf_name} is issued by the VCEK signing key \"{issuer_cn}\""),
            )
        }
        _ => {
            return reject(
                Reason::IssuerMismatch,
                format!("{leaf_name} issuer \"{issuer_cn}\" is not an AMD SEV intermediate"),
            )
        }
    };
    let ext = certs::extension(leaf, certs::OID_PRODUCT_NAME, leaf_name)?.ok_or_else(|| {
        Rejection::new(
            Reason::MalformedCertificate,
            format!("{leaf_name} has no productName extension"),
        )
    })?;
    let name = certs::product_name(ext).ok_or_else(|| {
        Rejection::new(
            Reason::MalformedCertificate,
            format!("{leaf_name} productName extension is not a DER string"),
        )
    })?;
    if certs::product_from_name_ext(name) != Some(product) {
        return reject(
            Reason::ProductMismatch,
            format!("{leaf_name} productName \"{name}\" but issuer \"{issuer_cn}\""),
        );
    }
    if let (Some(family), Some(model)) = (report.cpuid_fam_id, report.cpuid_mod_id) {
        let cpu = Product::from_cpuid(family, model);
        if cpu != Some(product) {
            return reject(
                Reason::ProductMismatch,
                format!(
                    "report CPUID family {family:#x} model {model:#x} is {}, the {leaf_name} is {product}",
                    cpu.map_or("no known SEV-SNP product", Product::as_str)
                ),
            );
        }
    }
    Ok(product)
}

/// A verified chain: the ARK's SHA-256 and which links a supplied CRL covered.
type ChainResult = ([u8; 32], CrlCoverage);

/// Build and check leaf <- intermediate <- ARK; returns the ARK's SHA-256 and the CRL
/// coverage.
#[allow(clippy::too_many_arguments)]
fn verify_chain(
    supplied: &[Supplied<'_>],
    leaf: &X509Certificate<'_>,
    key: SigningKey,
    product: Product,
    crls: &[Vec<u8>],
    anchors: &SnpTrustAnchors,
    at: Timestamp,
    cache: Option<&VerifiedCache<ChainResult>>,
) -> Result<ChainResult, Rejection> {
    let wanted_int = match key {
        SigningKey::Vcek => Role::Ask(product),
        SigningKey::Vlek => Role::Asvk(product),
    };
    // Intermediates: the supplied ones that fit, else those built in for the product.
    // A supplied intermediate that cannot fit means the caller's chain is for something
    // else: say so rather than silently swapping in a built-in one.
    let mut ints: Vec<Cow<[u8]>> = supplied
        .iter()
        .filter(|s| s.role == Some(wanted_int))
        .map(|s| Cow::Borrowed(s.der))
        .collect();
    if ints.is_empty() {
        if let Some(s) = supplied
            .iter()
            .find(|s| matches!(s.role, Some(Role::Ask(_) | Role::Asvk(_))))
        {
            let cn = x509::common_name(s.cert.subject()).unwrap_or_default();
            let reason = match s.role {
                Some(Role::Ask(p) | Role::Asvk(p)) if p != product => Reason::ProductMismatch,
                _ => Reason::SigningKeyMismatch,
            };
            return reject(
                reason,
                format!(
                    "supplied intermediate \"{cn}\" cannot issue a {product} {}",
                    key.leaf_common_name()
                ),
            );
        }
    }
    // ARKs: the supplied ones for the product, else the pinned ones.
    let supplied_arks: Vec<&Supplied> = supplied
        .iter()
        .filter(|s| matches!(s.role, Some(Role::Ark(_))))
        .collect();
    let arks: Vec<Cow<[u8]>> = if supplied_arks.is_empty() {
        anchors
            .for_product(product)
            .map(|a| Cow::Borrowed(&a.ark_der[..]))
            .collect()
    } else {
        let fitting: Vec<Cow<[u8]>> = supplied_arks
            .iter()
            .filter(|s| s.role == Some(Role::Ark(product)))
            .map(|s| Cow::Borrowed(s.der))
            .collect();
        if fitting.is_empty() {
            let cn = x509::common_name(supplied_arks[0].cert.subject()).unwrap_or_default();
            return reject(
                Reason::ProductMismatch,
                format!("supplied root \"{cn}\" is not ARK-{product}"),
            );
        }
        fitting
    };
    if arks.is_empty() {
        return reject(
            Reason::UntrustedRoot,
            format!("no ARK-{product} is trusted"),
        );
    }
    if ints.is_empty() {
        for ark in &arks {
            let built_in = anchors
                .by_sha256(&x509::sha256(ark))
                .and_then(|a| match key {
                    SigningKey::Vcek => a.ask_der.as_deref(),
                    SigningKey::Vlek => a.asvk_der.as_deref(),
                });
            if let Some(der) = built_in {
                if !ints.iter().any(|i| i[..] == der[..]) {
                    ints.push(Cow::Owned(der.to_vec()));
                }
            }
        }
    }
    if ints.is_empty() {
        let name = match key {
            SigningKey::Vcek => format!("ASK SEV-{product}"),
            SigningKey::Vlek => format!("ASVK SEV-VLEK-{product}"),
        };
        return reject(
            Reason::CertificateMissing,
            format!("the {name} was not supplied and none is built in for that root"),
        );
    }

    // Normally exactly one candidate pair; with extra trusted roots for one product, the
    // pair that verifies wins, and otherwise the first pair's error is the answer.
    let mut first_err = None;
    for ark in &arks {
        for int in &ints {
            let result = match cache {
                Some(cache) => {
                    cached_check_chain(cache, leaf, int, ark, key, product, crls, anchors, at)
                }
                None => check_chain(leaf, int, ark, key, product, crls, anchors, at),
            };
            match result {
                Ok(sha) => return Ok(sha),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Rejection::new(Reason::CertificateMissing, "no chain")))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn check_chain(
    leaf: &X509Certificate<'_>,
    int_der: &[u8],
    ark_der: &[u8],
    key: SigningKey,
    product: Product,
    crls: &[Vec<u8>],
    anchors: &SnpTrustAnchors,
    at: Timestamp,
) -> Result<ChainResult, Rejection> {
    let leaf_name = key.leaf_common_name();
    let ark = x509::parse_cert(ark_der, "ARK")?;
    if Role::of(&ark) != Some(Role::Ark(product)) {
        return reject(
            Reason::ProductMismatch,
            format!(
                "root \"{}\" is not ARK-{product}",
                x509::common_name(ark.subject()).unwrap_or_default()
            ),
        );
    }
    // Trust is the pin, never the chain's self-consistency.
    let sha = x509::sha256(ark_der);
    if !anchors.is_pinned(&sha) {
        if x509::is_simulated(&ark) {
            return reject(
                Reason::SimulatedRootNotTrusted,
                format!(
                    "ARK-{product} with SHA-256 {} is a simulated-TEE development root; \
                     only a policy listing it in dangerous_trusted_roots accepts it",
                    hex::encode(sha)
                ),
            );
        }
        return reject(
            Reason::UntrustedRoot,
            format!(
                "ARK-{product} with SHA-256 {} is not pinned",
                hex::encode(sha)
            ),
        );
    }
    x509::verify_issued_by(&ark, &ark, &format!("ARK-{product} (self-signed)"))?;
    let int = x509::parse_cert(int_der, "intermediate")?;
    let int_name = x509::common_name(int.subject()).unwrap_or_default();
    x509::verify_issued_by(&int, &ark, &int_name)?;
    x509::verify_issued_by(leaf, &int, leaf_name)?;
    x509::check_validity(&ark, at, &format!("ARK-{product}"))?;
    x509::check_validity(&int, at, &int_name)?;
    x509::check_validity(leaf, at, leaf_name)?;

    let mut coverage = CrlCoverage::default();
    for (i, der) in crls.iter().enumerate() {
        let what = format!("CRL #{i}");
        let crl = x509::parse_crl(der, &what)?;
        // Each CRL lists certificates its issuer signed: the ARK's lists intermediates,
        // the intermediate's lists VCEKs/VLEKs.
        let (issuer, subject, subject_name, covers) =
            if crl.issuer().as_raw() == ark.subject().as_raw() {
                (&ark, &int, int_name.as_str(), &mut coverage.ark)
            } else if crl.issuer().as_raw() == int.subject().as_raw() {
                (&int, leaf, leaf_name, &mut coverage.intermediate)
            } else {
                return reject(
                    Reason::IssuerMismatch,
                    format!(
                        "{what}: issuer \"{}\" is neither ARK-{product} nor \"{int_name}\"",
                        crl.issuer()
                    ),
                );
            };
        x509::verify_crl(&crl, issuer, at, &what)?;
        if x509::is_revoked(&crl, subject) {
            return reject(
                Reason::CertificateRevoked,
                format!(
                    "{subject_name} (serial {}) is revoked by {what}",
                    subject.raw_serial_as_string()
                ),
            );
        }
        *covers = true;
    }
    Ok((sha, coverage))
}

/// [`check_chain`] through the cache. The key covers every input of `check_chain` but the
/// time and the anchors (fixed per cache); the window is where every certificate and CRL
/// of the chain is valid, exactly the time checks `check_chain` makes.
#[allow(clippy::too_many_arguments)]
fn cached_check_chain(
    cache: &VerifiedCache<ChainResult>,
    leaf: &X509Certificate<'_>,
    int_der: &[u8],
    ark_der: &[u8],
    key: SigningKey,
    product: Product,
    crls: &[Vec<u8>],
    anchors: &SnpTrustAnchors,
    at: Timestamp,
) -> Result<ChainResult, Rejection> {
    let mut builder = KeyBuilder::new("snp-chain");
    builder
        .part(key.as_str().as_bytes())
        .part(product.as_str().as_bytes())
        .part(leaf.as_ref())
        .part(int_der)
        .part(ark_der);
    for crl in crls {
        builder.part(crl);
    }
    let cache_key = builder.finish();
    if let Some(root) = cache.get(&cache_key, at) {
        return Ok(root);
    }
    let root = check_chain(leaf, int_der, ark_der, key, product, crls, anchors, at)?;
    // check_chain succeeded, so everything below parses.
    let mut window = Window::ALWAYS;
    for der in [int_der, ark_der] {
        let cert = x509::parse_cert(der, "chain")?;
        window = window.within_inclusive(
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
    }
    window = window.within_inclusive(
        leaf.validity().not_before.timestamp(),
        leaf.validity().not_after.timestamp(),
    );
    for der in crls {
        let crl = x509::parse_crl(der, "CRL")?;
        let until = crl.next_update().map_or(i64::MAX, |t| t.timestamp());
        window = window.within(crl.last_update().timestamp(), until);
    }
    cache.insert(cache_key, root, window);
    Ok(root)
}

/// ECDSA P-384/SHA-384 over the received bytes 0x000..0x2A0 with the leaf's key.
fn verify_report_signature(
    report: &SnpReport,
    leaf: &X509Certificate<'_>,
) -> Result<(), Rejection> {
    let key = x509::ec_public_key(leaf, x509::Curve::P384, "the VCEK/VLEK")?;
    let mut sig = [0u8; 96];
    sig[..48].copy_from_slice(&report.signature_r);
    sig[48..].copy_from_slice(&report.signature_s);
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, key)
        .verify(report.signed_bytes(), &sig)
        .map_err(|_| {
            Rejection::new(
                Reason::ReportSignatureInvalid,
                "the report signature does not verify with the VCEK/VLEK key",
            )
        })
}

/// VCEK hwID extension == CHIP_ID.
pub(super) fn check_hwid(
    report: &SnpReport,
    leaf: &X509Certificate<'_>,
    product: Product,
) -> Result<(), Rejection> {
    // With the platform's MASK_CHIP_ID setting the report carries a zero CHIP_ID by
    // design; the VCEK signature already proves which chip signed, so there is nothing
    // more to compare.
    if report.chip_id_masked() {
        return Ok(());
    }
    let ext = certs::extension(leaf, certs::OID_HWID, "VCEK")?
        .ok_or_else(|| Rejection::new(Reason::HwIdMismatch, "the VCEK has no hwID extension"))?;
    let hwid = HwId::from_extension(ext).ok_or_else(|| {
        Rejection::new(
            Reason::MalformedCertificate,
            format!("VCEK hwID extension has {} bytes (want 8 or 64)", ext.len()),
        )
    })?;
    if !hwid.matches(&report.chip_id, product) {
        return reject(
            Reason::HwIdMismatch,
            format!(
                "VCEK hwID {} is not the report's CHIP_ID {}",
                hex::encode(&hwid.0),
                hex::encode(report.chip_id)
            ),
        );
    }
    Ok(())
}

/// VCEK/VLEK TCB extensions == REPORTED_TCB (decoded with the product's layout).
pub(super) fn check_tcb(
    report: &SnpReport,
    leaf: &X509Certificate<'_>,
    product: Product,
) -> Result<(), Rejection> {
    let tcb = TcbVersion::from_raw(report.reported_tcb, product);
    // Reserved TCB bytes are covered by no extension, so they must be zero.
    if tcb.to_raw(product) != report.reported_tcb {
        return reject(
            Reason::TcbExtensionMismatch,
            format!(
                "REPORTED_TCB {:#018x} has non-zero reserved bytes for {product}",
                report.reported_tcb
            ),
        );
    }
    let mut components = vec![
        (certs::OID_BL_SPL, "blSPL", tcb.bootloader),
        (certs::OID_TEE_SPL, "teeSPL", tcb.tee),
        (certs::OID_SNP_SPL, "snpSPL", tcb.snp),
        (certs::OID_UCODE_SPL, "ucodeSPL", tcb.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        components.push((certs::OID_FMC_SPL, "fmcSPL", fmc));
    }
    for (oid, name, expected) in components {
        let ext = certs::extension(leaf, oid, "VCEK/VLEK")?.ok_or_else(|| {
            Rejection::new(
                Reason::TcbExtensionMismatch,
                format!("the certificate has no {name} extension ({oid})"),
            )
        })?;
        let value = certs::spl_value(ext).ok_or_else(|| {
            Rejection::new(
                Reason::MalformedCertificate,
                format!(
                    "{name} extension is not a small DER INTEGER: {}",
                    hex::encode(ext)
                ),
            )
        })?;
        if value != expected {
            return reject(
                Reason::TcbExtensionMismatch,
                format!("certificate {name} = {value}, REPORTED_TCB says {expected}"),
            );
        }
    }
    Ok(())
}
