//! GPU evidence verification: evidence + device certificate chain + expected nonce +
//! pinned roots + time in, a [`VerifiedGpuEvidence`] out, or a typed rejection.
//!
//! Order (tests rely on it): parse the evidence; the chain (leaf first) to a pinned NVIDIA
//! Device Identity CA, with signatures, constraints and validity at the given time; the
//! architecture from the device certificate; the leaf's FWID against the opaque FWID; the
//! SPDM signature over the received request || response-without-signature with the leaf's
//! key; last the requester nonce against the caller's.
//!
//! Revocation: NVIDIA publishes the device chain's status by OCSP only, an online service;
//! [`verify_with_ocsp`] takes responses fetched beforehand (see [`super::ocsp`]), every one
//! verified or a rejection. [`VerifiedGpuEvidence::revocation_checked`] and the claims say
//! whether they covered every certificate below the root (the per-boot leaf excepted).

use super::certs::{self, NvidiaTrustAnchors};
use super::opaque::field;
use super::spdm::{SpdmEvidence, NONCE_LEN};
use crate::cache::{KeyBuilder, VerifiedCache, Window};
use crate::crypto::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The GPU architecture, from the device certificate's common name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Architecture {
    /// GH100 (H100, H200, H800, GH200's GPU).
    Hopper,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Hopper => "Hopper",
        }
    }

    /// The architecture a device certificate CN ("GH100 A01 GSP BROM") names.
    pub fn from_device_cn(cn: &str) -> Option<Architecture> {
        cn.starts_with("GH100 ").then_some(Architecture::Hopper)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The requester nonce the evidence must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedNonce {
    /// Exactly this nonce (the runtime binding derives it from its claims).
    Exactly([u8; NONCE_LEN]),
    /// DANGER: any nonce. The evidence may be a replay of any earlier answer of that GPU;
    /// the verified result records that the nonce was not checked.
    DangerousAny,
}

/// What of a chain the per-evidence checks need, cached with the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChainFacts {
    root_sha256: [u8; 32],
    architecture: Architecture,
    /// The leaf's uncompressed P-384 public key.
    leaf_key: Vec<u8>,
    leaf_fwid: Option<[u8; 48]>,
    /// CN and serial (hex) of the device certificate (the leaf's issuer, "... GSP BROM").
    device_cn: String,
    device_serial: String,
}

/// GPU evidence whose chain, FWID, signature and nonce verified. Only [`verify`] and
/// [`GpuVerifier::verify`] build one.
#[derive(Debug, Clone)]
pub struct VerifiedGpuEvidence {
    evidence: SpdmEvidence,
    facts: ChainFacts,
    fwid: [u8; 48],
    nonce_checked: bool,
    revocation_checked: bool,
    /// Decoded during verification, so that evidence with a malformed opaque field is
    /// rejected rather than shown half-read.
    claims: GpuClaims,
}

impl VerifiedGpuEvidence {
    pub fn evidence(&self) -> &SpdmEvidence {
        &self.evidence
    }

    pub fn architecture(&self) -> Architecture {
        self.facts.architecture
    }

    /// SHA-256 of the DER of the root the device chain ended in.
    pub fn root_sha256(&self) -> [u8; 32] {
        self.facts.root_sha256
    }

    /// The FWID, equal in the leaf certificate and the opaque data.
    pub fn fwid(&self) -> [u8; 48] {
        self.fwid
    }

    /// Whether the requester nonce was compared with an expected one (`false` only with
    /// [`ExpectedNonce::DangerousAny`]).
    pub fn nonce_checked(&self) -> bool {
        self.nonce_checked
    }

    /// Whether supplied OCSP responses, verified, said `good` for every certificate of the
    /// device chain below the root but the per-boot leaf (which NVIDIA's OCSP does not know).
    pub fn revocation_checked(&self) -> bool {
        self.revocation_checked
    }

    /// SHA-256 of the evidence without trailing padding (request || response).
    pub fn evidence_sha256(&self) -> [u8; 32] {
        x509::sha256(self.evidence.canonical_bytes())
    }

    /// The measurement values by SPDM index.
    pub fn measurements(&self) -> BTreeMap<u8, &[u8]> {
        self.evidence
            .response
            .blocks
            .iter()
            .map(|b| (b.index, &b.value[..]))
            .collect()
    }

    /// The verified claims.
    pub fn claims(&self) -> GpuClaims {
        self.claims.clone()
    }
}

/// Decode the claims of verified evidence; a malformed opaque field is a rejection.
fn decode_claims(
    e: &SpdmEvidence,
    facts: &ChainFacts,
    fwid: [u8; 48],
    nonce_checked: bool,
    revocation_checked: bool,
) -> Result<GpuClaims, Rejection> {
    let o = &e.response.opaque;
    let status = |t| o.status_char(t).map(|c| c.map(String::from));
    Ok(GpuClaims {
        device: "gpu",
        architecture: facts.architecture,
        hwmodel: facts.device_cn.clone(),
        device_certificate_serial: facts.device_serial.clone(),
        spdm_version: format!("{}.{}", e.request.version >> 4, e.request.version & 0xF),
        nonce: hex::encode(e.request.nonce),
        nonce_checked,
        responder_nonce: hex::encode(e.response.nonce),
        driver_version: o.driver_version()?,
        vbios_version: o.vbios_version()?,
        project: o.text(field::PROJECT)?,
        project_sku: o.text(field::PROJECT_SKU)?,
        project_sku_mod: o.hex(field::PROJECT_SKU_MOD),
        chip_sku: o.text(field::CHIP_SKU)?,
        chip_sku_mod: o.text(field::CHIP_SKU_MOD)?,
        board_id: o.hex(field::BOARD_ID),
        gpu_info: o.hex(field::GPU_INFO),
        cpr_info: o.hex(field::CPRINFO),
        nvdec0_status: status(field::NVDEC0_STATUS)?,
        protected_pcie_status: status(field::PROTECTED_PCIE_STATUS)?,
        opaque_data_version: o.opaque_data_version()?,
        feature_flag: o.feature_flag()?,
        fwid: hex::encode(fwid),
        measurements: e
            .response
            .blocks
            .iter()
            .map(|b| (b.index, hex::encode(&b.value)))
            .collect(),
        measurement_count: o
            .measurement_counts()?
            .map(|counts| {
                counts
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, c)| u8::try_from(i + 1).ok().map(|i| (i, c)))
                    .collect()
            })
            .unwrap_or_default(),
        other_opaque_fields: o
            .unknown()
            .map(|f| (f.field_type, hex::encode(&f.value)))
            .collect(),
        evidence_sha256: hex::encode(x509::sha256(e.canonical_bytes())),
        trailing_padding: e.trailing_padding(),
        root_sha256: hex::encode(facts.root_sha256),
        revocation_checked,
    })
}

/// The verified claims of GPU evidence, for display, JSON output and (later) policy.
/// Byte strings are lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuClaims {
    /// Always "gpu".
    pub device: &'static str,
    pub architecture: Architecture,
    /// CN of the device certificate (the leaf's issuer), e.g. "GH100 A01 GSP BROM": what
    /// NVIDIA's verifier reports as `hwmodel`.
    pub hwmodel: String,
    /// Serial number of the device certificate (per GPU), hex.
    pub device_certificate_serial: String,
    /// "1.1".
    pub spdm_version: String,
    /// The requester nonce the signature covers.
    pub nonce: String,
    /// Whether `nonce` was compared with the caller's expected nonce.
    pub nonce_checked: bool,
    pub responder_nonce: String,
    pub driver_version: Option<String>,
    /// "96.00.9f.00.01".
    pub vbios_version: Option<String>,
    pub project: Option<String>,
    pub project_sku: Option<String>,
    pub project_sku_mod: Option<String>,
    pub chip_sku: Option<String>,
    pub chip_sku_mod: Option<String>,
    pub board_id: Option<String>,
    pub gpu_info: Option<String>,
    pub cpr_info: Option<String>,
    pub nvdec0_status: Option<String>,
    pub protected_pcie_status: Option<String>,
    pub opaque_data_version: Option<u16>,
    /// The GPU mode the signed evidence states (opaque type 36: SPT, MPT or PPCIE);
    /// `None` when the evidence predates the field (opaque data version 0). The only
    /// statement of CC mode in the evidence: devtools mode is stated nowhere.
    pub feature_flag: Option<super::opaque::FeatureFlag>,
    /// The FWID (48 bytes), equal in the leaf certificate and the evidence.
    pub fwid: String,
    /// Measurement values by SPDM index (1-based).
    pub measurements: BTreeMap<u8, String>,
    /// How often each measurement block was extended, by SPDM index (opaque MSRSCNT).
    pub measurement_count: BTreeMap<u8, u32>,
    /// Opaque fields this crate does not decode, by type number, hex.
    pub other_opaque_fields: BTreeMap<u16, String>,
    /// SHA-256 of the evidence (request || response, without trailing padding).
    pub evidence_sha256: String,
    /// Zero bytes received after the signature (covered by no signature).
    pub trailing_padding: usize,
    /// SHA-256 of the root the device chain ended in.
    pub root_sha256: String,
    /// Whether verified OCSP responses said `good` for every certificate of the device
    /// chain below the root (the per-boot leaf excepted).
    pub revocation_checked: bool,
}

/// Parse evidence in either form: binary (starts with the SPDM version byte 0x11, which is
/// no hex digit) or hex text.
pub fn parse_evidence(bytes: &[u8]) -> Result<SpdmEvidence, Rejection> {
    if bytes.first() == Some(&super::spdm::SPDM_VERSION_1_1) {
        SpdmEvidence::parse(bytes)
    } else {
        SpdmEvidence::parse_hex(bytes)
    }
}

/// Verify GPU evidence (binary or hex text) with its device chain (DER, leaf first; the
/// root may be left out) at time `at`.
pub fn verify(
    evidence: &[u8],
    chain: &[Vec<u8>],
    nonce: ExpectedNonce,
    anchors: &NvidiaTrustAnchors,
    at: Timestamp,
) -> Result<VerifiedGpuEvidence, Rejection> {
    verify_impl(evidence, chain, &[], nonce, anchors, at, None)
}

/// [`verify`] with OCSP responses (DER OCSPResponse, RFC 6960) for the device chain: each
/// is verified (signer, CertID, thisUpdate <= at < nextUpdate, status good) or the
/// evidence is rejected; they set [`VerifiedGpuEvidence::revocation_checked`] when they
/// cover every certificate below the root but the leaf.
pub fn verify_with_ocsp(
    evidence: &[u8],
    chain: &[Vec<u8>],
    ocsp: &[Vec<u8>],
    nonce: ExpectedNonce,
    anchors: &NvidiaTrustAnchors,
    at: Timestamp,
) -> Result<VerifiedGpuEvidence, Rejection> {
    verify_impl(evidence, chain, ocsp, nonce, anchors, at, None)
}

/// Verifies like [`verify`] with fixed anchors, remembering each device chain it verified
/// (keyed by the exact certificate bytes, valid while every certificate is), so that later
/// evidence from the same GPU boot costs one ECDSA check.
pub struct GpuVerifier {
    anchors: NvidiaTrustAnchors,
    chains: VerifiedCache<ChainFacts>,
}

impl GpuVerifier {
    pub fn new(anchors: NvidiaTrustAnchors) -> Self {
        GpuVerifier {
            anchors,
            chains: VerifiedCache::default(),
        }
    }

    pub fn anchors(&self) -> &NvidiaTrustAnchors {
        &self.anchors
    }

    pub fn verify(
        &self,
        evidence: &[u8],
        chain: &[Vec<u8>],
        nonce: ExpectedNonce,
        at: Timestamp,
    ) -> Result<VerifiedGpuEvidence, Rejection> {
        self.verify_with_ocsp(evidence, chain, &[], nonce, at)
    }

    /// [`GpuVerifier::verify`] with OCSP responses, as [`verify_with_ocsp`]. The responses
    /// are checked on every call (only the chain is cached).
    pub fn verify_with_ocsp(
        &self,
        evidence: &[u8],
        chain: &[Vec<u8>],
        ocsp: &[Vec<u8>],
        nonce: ExpectedNonce,
        at: Timestamp,
    ) -> Result<VerifiedGpuEvidence, Rejection> {
        verify_impl(
            evidence,
            chain,
            ocsp,
            nonce,
            &self.anchors,
            at,
            Some(&self.chains),
        )
    }

    /// How many verified chains are remembered.
    pub fn cached_chains(&self) -> usize {
        self.chains.len()
    }
}

fn verify_impl(
    evidence: &[u8],
    chain: &[Vec<u8>],
    ocsp: &[Vec<u8>],
    nonce: ExpectedNonce,
    anchors: &NvidiaTrustAnchors,
    at: Timestamp,
    cache: Option<&VerifiedCache<ChainFacts>>,
) -> Result<VerifiedGpuEvidence, Rejection> {
    let evidence = parse_evidence(evidence)?;
    let facts = match cache {
        Some(cache) => cached_chain_facts(cache, chain, anchors, at)?,
        None => chain_facts(chain, anchors, at)?,
    };
    let Some(leaf_fwid) = facts.leaf_fwid else {
        return reject(
            Reason::GpuFwidMissing,
            format!(
                "the first certificate of the GPU chain carries no FWID (TcbInfo extension \
                 {}): it is not the attestation (leaf) certificate",
                certs::OID_TCG_DICE_TCB_INFO
            ),
        );
    };
    let Some(fwid) = evidence.response.opaque.fwid()? else {
        return reject(
            Reason::GpuFwidMissing,
            "the GPU evidence's opaque data carries no FWID (type 20)",
        );
    };
    if fwid != leaf_fwid {
        return reject(
            Reason::GpuFwidMismatch,
            format!(
                "the evidence FWID {} is not the leaf certificate's FWID {}",
                hex::encode(fwid),
                hex::encode(leaf_fwid)
            ),
        );
    }
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &facts.leaf_key)
        .verify(evidence.signed_bytes(), &evidence.response.signature)
        .map_err(|_| {
            Rejection::new(
                Reason::GpuSignatureInvalid,
                format!(
                    "the SPDM MEASUREMENTS signature (offset {}) does not verify with the GPU \
                     leaf key over the {} bytes before it",
                    evidence.signed_bytes().len(),
                    evidence.signed_bytes().len()
                ),
            )
        })?;
    let nonce_checked = match nonce {
        ExpectedNonce::Exactly(expected) => {
            if evidence.request.nonce != expected {
                return reject(
                    Reason::GpuNonceMismatch,
                    format!(
                        "the GPU evidence's requester nonce is {}, expected {}",
                        hex::encode(evidence.request.nonce),
                        hex::encode(expected)
                    ),
                );
            }
            true
        }
        ExpectedNonce::DangerousAny => false,
    };
    let revocation_checked = if ocsp.is_empty() {
        false
    } else {
        // The chain verified: complete it with the pinned root it ended in.
        let root = anchors
            .device
            .iter()
            .find(|r| r.sha256 == facts.root_sha256);
        let mut full: Vec<Vec<u8>> = chain
            .iter()
            .filter(|der| x509::sha256(der) != facts.root_sha256)
            .cloned()
            .collect();
        full.extend(root.map(|r| r.der.clone()));
        super::ocsp::check(&full, ocsp, at)?.complete()
    };
    let claims = decode_claims(&evidence, &facts, fwid, nonce_checked, revocation_checked)?;
    Ok(VerifiedGpuEvidence {
        evidence,
        facts,
        fwid,
        nonce_checked,
        revocation_checked,
        claims,
    })
}

/// Verify the chain and read what the evidence checks need from it.
fn chain_facts(
    chain: &[Vec<u8>],
    anchors: &NvidiaTrustAnchors,
    at: Timestamp,
) -> Result<ChainFacts, Rejection> {
    let ok = certs::verify_chain(chain, &anchors.device, at, "GPU device chain")?;
    // verify_chain parsed every certificate and found at least one below the root.
    let leaf = x509::parse_cert(&chain[0], "GPU leaf")?;
    let (device_cn, device_serial) = match chain.get(1) {
        Some(der) if x509::sha256(der) != ok.root_sha256 => {
            let device = x509::parse_cert(der, "GPU device certificate")?;
            (
                x509::common_name(device.subject()).unwrap_or_default(),
                hex::encode(device.raw_serial()),
            )
        }
        _ => (String::new(), String::new()),
    };
    let Some(architecture) = Architecture::from_device_cn(&device_cn) else {
        // With the leaf missing, the first certificate is the device one: name it.
        let leaf_cn = x509::common_name(leaf.subject()).unwrap_or_default();
        if Architecture::from_device_cn(&leaf_cn).is_some() && leaf_cn.ends_with(" BROM") {
            return reject(
                Reason::GpuFwidMissing,
                format!(
                    "the GPU chain starts with the device certificate \"{leaf_cn}\", which \
                     carries no FWID: the attestation (leaf) certificate is missing"
                ),
            );
        }
        return reject(
            Reason::ProductMismatch,
            format!(
                "the GPU chain's device certificate \"{device_cn}\" is not a supported GPU \
                 (Hopper, \"GH100 ...\")"
            ),
        );
    };
    let leaf_key = x509::ec_public_key(&leaf, x509::Curve::P384, "the GPU leaf")?.to_vec();
    let leaf_fwid = certs::fwid_of_certificate(&leaf)?;
    if leaf_fwid.is_some() {
        certs::check_signing_leaf(&leaf, "GPU device chain")?;
    }
    Ok(ChainFacts {
        root_sha256: ok.root_sha256,
        architecture,
        leaf_key,
        leaf_fwid,
        device_cn,
        device_serial,
    })
}

/// [`chain_facts`] through the cache; the window is where every certificate (and the
/// pinned root) is valid, exactly the time checks the chain makes.
fn cached_chain_facts(
    cache: &VerifiedCache<ChainFacts>,
    chain: &[Vec<u8>],
    anchors: &NvidiaTrustAnchors,
    at: Timestamp,
) -> Result<ChainFacts, Rejection> {
    let mut builder = KeyBuilder::new("nvidia-gpu-chain");
    for der in chain {
        builder.part(der);
    }
    let key = builder.finish();
    if let Some(facts) = cache.get(&key, at) {
        return Ok(facts);
    }
    let facts = chain_facts(chain, anchors, at)?;
    let mut window = Window::ALWAYS;
    let root = anchors
        .device
        .iter()
        .find(|r| r.sha256 == facts.root_sha256);
    for der in chain.iter().chain(root.map(|r| &r.der)) {
        let cert = x509::parse_cert(der, "GPU chain")?;
        window = window.within_inclusive(
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
    }
    cache.insert(key, facts.clone(), window);
    Ok(facts)
}
