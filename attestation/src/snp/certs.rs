//! AMD certificate knowledge: the VCEK/VLEK extensions, certificate roles by CN, and the
//! pinned roots ([`SnpTrustAnchors`]).
//!
//! AMD's ARKs are pinned by the SHA-256 of their DER; the embedded PEMs only supply the
//! bytes (and the ASK/ASVK that KDS would serve), so a swapped file cannot add trust.

use super::Product;
use crate::reason::{Reason, Rejection};
use crate::x509;
use x509_parser::prelude::*;

/// AMD VCEK/VLEK extension OIDs (under 1.3.6.1.4.1.3704.1).
pub(crate) const OID_PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
pub(crate) const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
pub(crate) const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
pub(crate) const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
pub(crate) const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
pub(crate) const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
pub(crate) const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// SHA-256 of the DER of AMD's production ARKs (KDS cert_chain; identical in virtee/sev,
/// go-sev-guest and trustee). These constants, not the embedded files, are the trust.
const AMD_ARK_SHA256: [(Product, &str); 3] = [
    (
        Product::Milan,
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    ),
    (
        Product::Genoa,
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    ),
    (
        Product::Turin,
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    ),
];

/// KDS cert_chain PEMs (intermediate first, ARK second): (product, VCEK chain, VLEK chain).
const AMD_CHAINS: [(Product, &[u8], &[u8]); 3] = [
    (
        Product::Milan,
        include_bytes!("roots/ask_ark_milan.pem"),
        include_bytes!("roots/ask_ark_milan_vlek.pem"),
    ),
    (
        Product::Genoa,
        include_bytes!("roots/ask_ark_genoa.pem"),
        include_bytes!("roots/ask_ark_genoa_vlek.pem"),
    ),
    (
        Product::Turin,
        include_bytes!("roots/ask_ark_turin_vcek.pem"),
        include_bytes!("roots/ask_ark_turin_vlek.pem"),
    ),
];

/// The role a certificate plays in an AMD chain, from its subject CN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// "SEV-VCEK"
    Vcek,
    /// "SEV-VLEK"
    Vlek,
    /// "SEV-<Product>": signs VCEKs.
    Ask(Product),
    /// "SEV-VLEK-<Product>": signs VLEKs.
    Asvk(Product),
    /// "ARK-<Product>": the root.
    Ark(Product),
}

impl Role {
    /// Classify a CN; `None` for anything that is not an AMD SEV certificate of a known
    /// product.
    pub(crate) fn from_cn(cn: &str) -> Option<Role> {
        match cn {
            "SEV-VCEK" => return Some(Role::Vcek),
            "SEV-VLEK" => return Some(Role::Vlek),
            _ => {}
        }
        if let Some(p) = cn.strip_prefix("SEV-VLEK-") {
            return Product::from_name(p).map(Role::Asvk);
        }
        if let Some(p) = cn.strip_prefix("ARK-") {
            return Product::from_name(p).map(Role::Ark);
        }
        cn.strip_prefix("SEV-")
            .and_then(Product::from_name)
            .map(Role::Ask)
    }

    pub(crate) fn of(cert: &X509Certificate<'_>) -> Option<Role> {
        x509::common_name(cert.subject()).and_then(|cn| Role::from_cn(&cn))
    }
}

/// One trusted ARK, with the intermediates AMD issued under it (built in for AMD's).
#[derive(Clone, Debug)]
pub(crate) struct Anchor {
    pub(crate) product: Product,
    pub(crate) ark_der: Vec<u8>,
    pub(crate) sha256: [u8; 32],
    pub(crate) ask_der: Option<Vec<u8>>,
    pub(crate) asvk_der: Option<Vec<u8>>,
}

/// The ARKs an SNP chain may end in, pinned by SHA-256 of their DER.
#[derive(Clone, Debug)]
pub struct SnpTrustAnchors {
    anchors: Vec<Anchor>,
}

impl SnpTrustAnchors {
    /// AMD's production ARK-Milan, ARK-Genoa and ARK-Turin with their ASKs and ASVKs, so a
    /// report plus its VCEK/VLEK alone verifies.
    pub fn amd() -> Self {
        let mut anchors = Vec::new();
        for (product, vcek_chain, vlek_chain) in AMD_CHAINS {
            let (ask, ark) = split_chain(vcek_chain);
            let (asvk, ark2) = split_chain(vlek_chain);
            let (Some(ark), Some(ark2)) = (ark, ark2) else {
                continue;
            };
            let sha256 = x509::sha256(&ark);
            let pinned = AMD_ARK_SHA256
                .iter()
                .any(|(p, h)| *p == product && hex::decode(h).ok().as_deref() == Some(&sha256[..]));
            // Both files must carry the pinned ARK; a mismatch would be a build defect and
            // simply leaves that product untrusted (tests assert all three load).
            if !pinned || ark2 != ark {
                continue;
            }
            anchors.push(Anchor {
                product,
                ark_der: ark,
                sha256,
                ask_der: ask,
                asvk_der: asvk,
            });
        }
        SnpTrustAnchors { anchors }
    }

    /// No trusted root at all (start for a test-only set of roots).
    pub fn empty() -> Self {
        SnpTrustAnchors {
            anchors: Vec::new(),
        }
    }

    /// DANGER: also trust another self-signed ARK (simulated TEE, tests). Its product comes
    /// from its CN "ARK-<Product>"; a certificate that does not parse or is not named like
    /// an ARK adds no trust. Intermediates for it must be supplied with the evidence.
    pub fn dangerous_trust_ark(mut self, ark_der: Vec<u8>) -> Self {
        let product = match x509::parse_cert(&ark_der, "trusted ARK") {
            Ok(cert) => match Role::of(&cert) {
                Some(Role::Ark(p)) => Some(p),
                _ => None,
            },
            Err(_) => None,
        };
        if let Some(product) = product {
            let sha256 = x509::sha256(&ark_der);
            if !self.anchors.iter().any(|a| a.sha256 == sha256) {
                self.anchors.push(Anchor {
                    product,
                    ark_der,
                    sha256,
                    ask_der: None,
                    asvk_der: None,
                });
            }
        }
        self
    }

    /// SHA-256 of every trusted ARK, with its product.
    pub fn pinned_roots(&self) -> Vec<(Product, [u8; 32])> {
        self.anchors.iter().map(|a| (a.product, a.sha256)).collect()
    }

    pub(crate) fn is_pinned(&self, sha256: &[u8; 32]) -> bool {
        self.anchors.iter().any(|a| &a.sha256 == sha256)
    }

    pub(crate) fn for_product(&self, product: Product) -> impl Iterator<Item = &Anchor> {
        self.anchors.iter().filter(move |a| a.product == product)
    }

    pub(crate) fn by_sha256(&self, sha256: &[u8; 32]) -> Option<&Anchor> {
        self.anchors.iter().find(|a| &a.sha256 == sha256)
    }
}

/// Split a KDS cert_chain PEM into (intermediate, ARK) by CN, not by position.
fn split_chain(pem: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut intermediate = None;
    let mut ark = None;
    for der in x509::certs_from_pem(pem).unwrap_or_default() {
        let role = x509::parse_cert(&der, "built-in AMD certificate")
            .ok()
            .and_then(|c| Role::of(&c));
        match role {
            Some(Role::Ark(_)) => ark = Some(der),
            Some(Role::Ask(_) | Role::Asvk(_)) => intermediate = Some(der),
            _ => {}
        }
    }
    (intermediate, ark)
}

/// The one extension with this OID; absent is `None`, duplicates are malformed
/// ([`x509::unique_extension`]).
pub(crate) fn extension<'a>(
    cert: &'a X509Certificate<'_>,
    oid: &str,
    what: &str,
) -> Result<Option<&'a [u8]>, Rejection> {
    x509::unique_extension(cert, oid, what)
}

/// Split a short-form DER TLV with the given tag; `None` unless it is exactly one TLV.
fn der_tlv(bytes: &[u8], tag: u8) -> Option<&[u8]> {
    let (&t, rest) = bytes.split_first()?;
    let (&len, value) = rest.split_first()?;
    if t != tag || len >= 0x80 || value.len() != usize::from(len) {
        return None;
    }
    Some(value)
}

/// A TCB SPL extension: a DER INTEGER (possibly with a leading 0x00 sign byte, e.g.
/// `02 02 00 d9`) whose value fits in a byte.
pub(crate) fn spl_value(ext: &[u8]) -> Option<u8> {
    let value = der_tlv(ext, 0x02)?;
    let (&first, _) = value.split_first()?;
    if first & 0x80 != 0 {
        return None; // negative
    }
    let first_nonzero = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    match value.get(first_nonzero..)? {
        [] => Some(0),
        [b] => Some(*b),
        _ => None,
    }
}

/// The productName extension as text: a DER string ("Milan-B0", "Genoa", ...).
pub(crate) fn product_name(ext: &[u8]) -> Option<&str> {
    // IA5String in every real cert; accept the other printable string types too.
    let value = [0x16u8, 0x0C, 0x13]
        .into_iter()
        .find_map(|tag| der_tlv(ext, tag))?;
    std::str::from_utf8(value).ok()
}

/// The product named by a productName value; the stepping suffix ("-B0") is optional.
pub(crate) fn product_from_name_ext(name: &str) -> Option<Product> {
    let base = name.split_once('-').map_or(name, |(base, _)| base);
    Product::from_name(base)
}

/// A VCEK hwID extension value: the chip's ID (64 bytes Milan/Genoa, 8 bytes Turin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwId(pub Vec<u8>);

impl HwId {
    /// Decode an hwID extension value: raw bytes (every real AMD cert) or wrapped in a DER
    /// OCTET STRING (`04 40 ..`, seen in trustee's tests).
    pub fn from_extension(ext: &[u8]) -> Option<HwId> {
        if let Some(inner) = der_tlv(ext, 0x04) {
            if matches!(inner.len(), 8 | 64) {
                return Some(HwId(inner.to_vec()));
            }
        }
        matches!(ext.len(), 8 | 64).then(|| HwId(ext.to_vec()))
    }

    /// Read and decode the hwID extension of a certificate (DER).
    pub fn from_cert_der(der: &[u8]) -> Result<Option<HwId>, Rejection> {
        let cert = x509::parse_cert(der, "VCEK")?;
        match extension(&cert, OID_HWID, "VCEK")? {
            None => Ok(None),
            Some(ext) => HwId::from_extension(ext).map(Some).ok_or_else(|| {
                Rejection::new(
                    Reason::MalformedCertificate,
                    format!("VCEK hwID extension has {} bytes (want 8 or 64)", ext.len()),
                )
            }),
        }
    }

    /// Fuzzing entry ([`crate::fuzzing`]): run every VCEK/VLEK extension reader the
    /// verifier uses on `der` as a certificate, and on `der` itself as extension values.
    pub(crate) fn fuzz_extension_readers(der: &[u8]) {
        let read = |ext: &[u8]| {
            let _ = spl_value(ext);
            let _ = product_name(ext).map(product_from_name_ext);
            let _ = HwId::from_extension(ext);
        };
        read(der);
        let Ok(cert) = x509::parse_cert(der, "fuzzed certificate") else {
            return;
        };
        let _ = Role::of(&cert);
        for oid in [
            OID_PRODUCT_NAME,
            OID_BL_SPL,
            OID_TEE_SPL,
            OID_SNP_SPL,
            OID_UCODE_SPL,
            OID_FMC_SPL,
            OID_HWID,
        ] {
            if let Ok(Some(ext)) = extension(&cert, oid, "fuzzed certificate") {
                read(ext);
            }
        }
    }

    /// Whether this hwID names the chip whose report carries `chip_id`. Turin certs hold
    /// only the first 8 bytes (what KDS keys Turin VCEKs by).
    pub fn matches(&self, chip_id: &[u8; 64], product: Product) -> bool {
        match (product, self.0.len()) {
            (Product::Turin, 8) => chip_id.get(..8) == Some(&self.0[..]),
            (Product::Milan | Product::Genoa, 64) => self.0[..] == chip_id[..],
            _ => false,
        }
    }
}
