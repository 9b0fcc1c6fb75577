//! NVIDIA reference integrity manifests (RIMs): ISO/IEC 19770-2 SWID tags listing the
//! reference measurements of a driver or VBIOS, signed with an enveloped XMLDSig (Canonical
//! XML 1.1, ECDSA P-384 with SHA-384) by a certificate chaining to the NVIDIA CoRIM signing
//! Root CA.
//!
//! [`Rim::parse`] reads the reference values (`Payload/Resource`: index, active,
//! alternatives, `Hash0..HashN-1` in the SHA-384 namespace) and the signature's parts;
//! [`verify_rim`] checks the embedded chain (leaf first) to a pinned RIM root at a given
//! time, the SHA-384 of the canonicalized document without its signature against
//! DigestValue, and the signature over the canonicalized SignedInfo; only it builds a
//! [`VerifiedRim`]. [`compare_measurements`] holds verified evidence against verified
//! RIMs: RIM index `i` is SPDM block `i + 1`, only active entries count, any alternative
//! matches.
//!
//! The XML and XMLDSig subset read is exactly what NVIDIA's manifests use (see
//! the crate-private `xml` module); anything else is [`Reason::RimMalformed`] or
//! [`Reason::UnsupportedAlgorithm`], never a silently skipped part.

use super::certs::{self, NvidiaTrustAnchors};
use super::verify::VerifiedGpuEvidence;
use super::xml::{self, Element};
use crate::crypto::digest;
use crate::crypto::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;

/// ISO/IEC 19770-2:2015 SWID tag namespace.
pub const NS_SWID: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
/// XMLDSig namespace.
pub const NS_XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The namespace NVIDIA puts the reference hashes (`Hash0`, `Hash1`, ...) in.
pub const NS_SHA384: &str = "http://www.w3.org/2001/04/xmlenc#sha384";
/// TCG RIM information model namespace (the Meta attributes).
pub const NS_TCG_RIM: &str =
    "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/";

const ALG_C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const ALG_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";

/// More alternatives than this for one index is not a manifest.
const MAX_ALTERNATIVES: usize = 64;

/// One reference measurement of a RIM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimMeasurement {
    /// The RIM's 0-based index; SPDM block `index + 1`.
    pub index: u32,
    /// Only active entries are compared.
    pub active: bool,
    pub name: Option<String>,
    /// The acceptable values (`Hash0..HashN-1`), any of which matches.
    #[serde(serialize_with = "hex_list")]
    pub alternatives: Vec<Vec<u8>>,
}

fn hex_list<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}

impl RimMeasurement {
    /// The SPDM measurement index this entry describes (`index + 1`), if it fits.
    pub fn spdm_index(&self) -> Option<u8> {
        u8::try_from(self.index.checked_add(1)?).ok()
    }
}

/// The parts of the enveloped XMLDSig, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignatureParts {
    digest: [u8; 48],
    signature: [u8; 96],
}

/// A parsed (not yet verified) RIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rim {
    pub tag_id: String,
    pub name: String,
    pub version: Option<String>,
    /// Meta colloquialVersion: the driver ("545.00") or VBIOS ("96.00.5E.00.01") version.
    pub colloquial_version: Option<String>,
    pub product: Option<String>,
    /// Meta PlatformManufacturerId (NVIDIA: 5703, its IANA enterprise number).
    pub platform_manufacturer_id: Option<String>,
    pub measurements: Vec<RimMeasurement>,
    /// The signing chain from KeyInfo (DER, leaf first).
    pub certificates: Vec<Vec<u8>>,
    signature: SignatureParts,
    root: Element,
    raw: Vec<u8>,
}

fn malformed<T>(what: impl Into<String>) -> Result<T, Rejection> {
    reject(Reason::RimMalformed, format!("RIM: {}", what.into()))
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, Rejection> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| {
            Rejection::new(
                Reason::RimMalformed,
                format!("RIM: {what} is not base64: {e}"),
            )
        })
}

/// The single child element `local` in `ns`; none or several is malformed.
fn only_child<'a>(el: &'a Element, ns: &str, local: &str) -> Result<&'a Element, Rejection> {
    let mut found = el.elements().filter(|e| e.ns == ns && e.local == local);
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => malformed(format!("<{}> has no {local} element", el.qname)),
        _ => malformed(format!("<{}> has several {local} elements", el.qname)),
    }
}

/// The element children of `el`, which must be exactly `names` (in `ns`), in order, with
/// only whitespace between them.
fn children_exactly<'a>(
    el: &'a Element,
    ns: &str,
    names: &[&str],
) -> Result<Vec<&'a Element>, Rejection> {
    let kids: Vec<&Element> = el.elements().collect();
    let got: Vec<&str> = kids.iter().map(|k| k.local.as_str()).collect();
    if got != names || kids.iter().any(|k| k.ns != ns) || !el.only_whitespace_text() {
        return malformed(format!(
            "<{}> holds {got:?}, expected exactly {names:?}",
            el.qname
        ));
    }
    Ok(kids)
}

fn algorithm(el: &Element) -> Result<&str, Rejection> {
    el.attr("", "Algorithm")
        .map_or_else(|| malformed(format!("<{}> has no Algorithm", el.qname)), Ok)
}

fn require_algorithm(el: &Element, expected: &str) -> Result<(), Rejection> {
    let alg = algorithm(el)?;
    if alg != expected {
        return reject(
            Reason::UnsupportedAlgorithm,
            format!(
                "RIM: <{}> Algorithm {alg} (supported: {expected})",
                el.qname
            ),
        );
    }
    Ok(())
}

impl Rim {
    /// Parse a RIM (SWID tag XML with its enveloped signature).
    pub fn parse(bytes: &[u8]) -> Result<Rim, Rejection> {
        let root = xml::parse(bytes)?;
        if root.ns != NS_SWID || root.local != "SoftwareIdentity" {
            return malformed(format!(
                "root element <{}> is not an ISO 19770-2 SoftwareIdentity",
                root.qname
            ));
        }
        let attr = |el: &Element, ns: &str, name: &str| el.attr(ns, name).map(str::to_owned);
        let tag_id = attr(&root, "", "tagId").map_or_else(|| malformed("no tagId"), Ok)?;
        let name = attr(&root, "", "name").map_or_else(|| malformed("no name"), Ok)?;
        let meta = only_child(&root, NS_SWID, "Meta")?;
        let payload = only_child(&root, NS_SWID, "Payload")?;
        let mut measurements: Vec<RimMeasurement> = Vec::new();
        for r in payload.elements() {
            if r.ns != NS_SWID || r.local != "Resource" {
                return malformed(format!("Payload holds <{}>", r.qname));
            }
            measurements.push(parse_resource(r)?);
            let m = measurements.last().expect("just pushed");
            if measurements[..measurements.len() - 1]
                .iter()
                .any(|o| o.index == m.index)
            {
                return malformed(format!("measurement index {} appears twice", m.index));
            }
        }
        let (signature, certificates) = parse_signature(&root)?;
        Ok(Rim {
            tag_id,
            name,
            version: attr(&root, "", "version"),
            colloquial_version: attr(meta, "", "colloquialVersion"),
            product: attr(meta, "", "product"),
            platform_manufacturer_id: attr(meta, NS_TCG_RIM, "PlatformManufacturerId"),
            measurements,
            certificates,
            signature,
            root,
            raw: bytes.to_vec(),
        })
    }

    /// The exact bytes parsed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The active measurements.
    pub fn active(&self) -> impl Iterator<Item = &RimMeasurement> {
        self.measurements.iter().filter(|m| m.active)
    }

    /// The document's Signature element.
    fn signature_element(&self) -> &Element {
        // Parsing checked there is exactly one.
        self.root
            .elements()
            .find(|e| e.ns == NS_XMLDSIG && e.local == "Signature")
            .expect("parse found one Signature")
    }

    /// Canonical XML 1.1 of the document without its Signature (the Reference's
    /// enveloped-signature and c14n11 transforms).
    pub fn canonical_document(&self) -> String {
        let sig = self.signature_element();
        xml::canonicalize(&self.root, &BTreeMap::new(), &|e| std::ptr::eq(e, sig))
    }

    /// Canonical XML 1.1 of SignedInfo, the bytes the signature covers.
    pub fn canonical_signed_info(&self) -> String {
        let sig = self.signature_element();
        let signed_info = sig
            .elements()
            .next()
            .expect("parse checked SignedInfo is Signature's first element");
        let scope = xml::scope_of(&self.root, sig).unwrap_or_default();
        xml::canonicalize(signed_info, &scope, &|_| false)
    }
}

fn parse_resource(r: &Element) -> Result<RimMeasurement, Rejection> {
    let get = |name: &str| r.attr("", name);
    if get("type") != Some("Measurement") {
        return malformed(format!(
            "Resource of type {:?} (only Measurement is read)",
            get("type")
        ));
    }
    let index: u32 = get("index")
        .and_then(|v| v.parse().ok())
        .map_or_else(|| malformed("Resource without a numeric index"), Ok)?;
    let active = match get("active") {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        other => return malformed(format!("Resource {index}: active = {other:?}")),
    };
    let count: usize = get("alternatives")
        .and_then(|v| v.parse().ok())
        .filter(|&n| (1..=MAX_ALTERNATIVES).contains(&n))
        .map_or_else(
            || {
                malformed(format!(
                    "Resource {index}: alternatives is not 1..={MAX_ALTERNATIVES}"
                ))
            },
            Ok,
        )?;
    let size: Option<usize> = match get("size") {
        None => None,
        Some(v) => Some(
            v.parse()
                .map_or_else(|_| malformed(format!("Resource {index}: size {v:?}")), Ok)?,
        ),
    };
    let mut alternatives = Vec::with_capacity(count);
    for i in 0..count {
        let Some(h) = r.attr(NS_SHA384, &format!("Hash{i}")) else {
            return malformed(format!(
                "Resource {index}: alternatives = {count} but no Hash{i}"
            ));
        };
        let value = hex::decode(h).map_or_else(
            |_| malformed(format!("Resource {index}: Hash{i} is not hex")),
            Ok,
        )?;
        if size.is_some_and(|s| s != value.len()) {
            return malformed(format!(
                "Resource {index}: Hash{i} is {} bytes, size says {size:?}",
                value.len()
            ));
        }
        alternatives.push(value);
    }
    // Every attribute is one this reader knows: a hash beyond `alternatives` would be a
    // reference value that some other reader takes and this one does not.
    for a in &r.attrs {
        let known = (a.ns.is_empty()
            && matches!(
                a.local.as_str(),
                "type" | "index" | "active" | "alternatives" | "name" | "size"
            ))
            || (a.ns == NS_SHA384
                && a.local
                    .strip_prefix("Hash")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| n < count));
        if !known {
            return malformed(format!(
                "Resource {index}: unexpected attribute {}",
                a.qname
            ));
        }
    }
    Ok(RimMeasurement {
        index,
        active,
        name: get("name").map(str::to_owned),
        alternatives,
    })
}

/// The enveloped signature: its algorithms (exactly the supported ones), DigestValue,
/// SignatureValue and the KeyInfo chain.
fn parse_signature(root: &Element) -> Result<(SignatureParts, Vec<Vec<u8>>), Rejection> {
    let sig = only_child(root, NS_XMLDSIG, "Signature")?;
    let [signed_info, value, key_info] = children_exactly(
        sig,
        NS_XMLDSIG,
        &["SignedInfo", "SignatureValue", "KeyInfo"],
    )?[..] else {
        unreachable!("children_exactly returned three elements")
    };
    let [c14n, method, reference] = children_exactly(
        signed_info,
        NS_XMLDSIG,
        &["CanonicalizationMethod", "SignatureMethod", "Reference"],
    )?[..] else {
        unreachable!("three elements")
    };
    require_algorithm(c14n, ALG_C14N11)?;
    require_algorithm(method, ALG_ECDSA_SHA384)?;
    if reference.attr("", "URI") != Some("") {
        return malformed("the signature's Reference is not URI=\"\" (the whole document)");
    }
    let [transforms, digest_method, digest_value] = children_exactly(
        reference,
        NS_XMLDSIG,
        &["Transforms", "DigestMethod", "DigestValue"],
    )?[..] else {
        unreachable!("three elements")
    };
    let [enveloped, c14n_transform] =
        children_exactly(transforms, NS_XMLDSIG, &["Transform", "Transform"])?[..]
    else {
        unreachable!("two elements")
    };
    require_algorithm(enveloped, ALG_ENVELOPED)?;
    require_algorithm(c14n_transform, ALG_C14N11)?;
    require_algorithm(digest_method, ALG_SHA384)?;
    let digest: [u8; 48] = b64(&digest_value.text(), "DigestValue")?
        .try_into()
        .map_or_else(|_| malformed("DigestValue is not 48 bytes"), Ok)?;
    let signature: [u8; 96] = b64(&value.text(), "SignatureValue")?
        .try_into()
        .map_or_else(
            |_| malformed("SignatureValue is not 96 bytes (P-384 r || s)"),
            Ok,
        )?;
    let data = only_child(key_info, NS_XMLDSIG, "X509Data")?;
    let mut certificates = Vec::new();
    for c in data.elements() {
        if c.ns != NS_XMLDSIG || c.local != "X509Certificate" {
            return malformed(format!("X509Data holds <{}>", c.qname));
        }
        certificates.push(b64(&c.text(), "X509Certificate")?);
    }
    Ok((SignatureParts { digest, signature }, certificates))
}

/// A RIM whose chain and XMLDSig verified. Only [`verify_rim`] builds one.
#[derive(Debug, Clone)]
pub struct VerifiedRim {
    rim: Rim,
    root_sha256: [u8; 32],
    signer: String,
}

impl VerifiedRim {
    pub fn rim(&self) -> &Rim {
        &self.rim
    }

    /// SHA-256 of the RIM root the signing chain ended in.
    pub fn root_sha256(&self) -> [u8; 32] {
        self.root_sha256
    }

    /// CN of the signing certificate.
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// Always `false`: the RIM chain's revocation (NVIDIA OCSP) was not checked.
    pub fn revocation_checked(&self) -> bool {
        false
    }
}

/// Verify a RIM at time `at`: the KeyInfo chain (leaf first) to a pinned RIM root, the
/// digest of the canonicalized document without its signature, the signature over the
/// canonicalized SignedInfo with the leaf's key.
pub fn verify_rim(
    bytes: &[u8],
    anchors: &NvidiaTrustAnchors,
    at: Timestamp,
) -> Result<VerifiedRim, Rejection> {
    let rim = Rim::parse(bytes)?;
    let chain = certs::verify_chain(&rim.certificates, &anchors.rim, at, "RIM signing chain")?;
    let leaf = x509::parse_cert(&rim.certificates[0], "RIM signer")?;
    certs::check_signing_leaf(&leaf, "RIM signing chain")?;
    let key = x509::ec_public_key(&leaf, x509::Curve::P384, "the RIM signer")?;
    let document = rim.canonical_document();
    let digest = digest::digest(&digest::SHA384, document.as_bytes());
    if digest.as_ref() != rim.signature.digest {
        return reject(
            Reason::RimSignatureInvalid,
            format!(
                "RIM: SHA-384 of the canonicalized document is {}, DigestValue says {}",
                hex::encode(digest.as_ref()),
                hex::encode(rim.signature.digest)
            ),
        );
    }
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, key)
        .verify(
            rim.canonical_signed_info().as_bytes(),
            &rim.signature.signature,
        )
        .map_err(|_| {
            Rejection::new(
                Reason::RimSignatureInvalid,
                "RIM: the signature over the canonicalized SignedInfo does not verify with \
                 the signing certificate's key",
            )
        })?;
    let signer = x509::common_name(leaf.subject()).unwrap_or_default();
    Ok(VerifiedRim {
        rim,
        root_sha256: chain.root_sha256,
        signer,
    })
}

/// One active reference measurement the evidence does not meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementMismatch {
    /// The RIM's index (0-based).
    pub rim_index: u32,
    /// The SPDM block index (`rim_index + 1`).
    pub spdm_index: u32,
    /// The RIM's acceptable values, hex.
    pub expected: Vec<String>,
    /// The evidence's value, hex; `None` if the evidence has no such block.
    pub found: Option<String>,
}

/// The outcome of holding evidence against RIMs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementComparison {
    /// SPDM indices compared (every active RIM entry), ascending.
    pub compared: Vec<u32>,
    /// The active entries the evidence does not meet, by index.
    pub mismatches: Vec<MeasurementMismatch>,
}

impl MeasurementComparison {
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// `Ok` if every active entry matched, else [`Reason::GpuMeasurementMismatch`] naming
    /// the SPDM indices that did not.
    pub fn into_result(self) -> Result<(), Rejection> {
        if self.matches() {
            return Ok(());
        }
        let indices: Vec<u32> = self.mismatches.iter().map(|m| m.spdm_index).collect();
        reject(
            Reason::GpuMeasurementMismatch,
            format!(
                "GPU measurement blocks {indices:?} are none of the values the reference \
                 manifests allow"
            ),
        )
    }
}

/// Hold verified evidence against verified RIMs (typically the driver's and the VBIOS's):
/// every active RIM entry `i` must equal one of its alternatives at SPDM block `i + 1`. An
/// index active in two RIMs is [`Reason::AmbiguousInput`] (which would govern it?).
pub fn compare_measurements(
    evidence: &VerifiedGpuEvidence,
    rims: &[&VerifiedRim],
) -> Result<MeasurementComparison, Rejection> {
    let mut golden: BTreeMap<u32, (&RimMeasurement, &str)> = BTreeMap::new();
    for r in rims {
        for m in r.rim.active() {
            if let Some((_, other)) = golden.get(&m.index) {
                return reject(
                    Reason::AmbiguousInput,
                    format!(
                        "RIM index {} is active in both {other:?} and {:?}",
                        m.index, r.rim.tag_id
                    ),
                );
            }
            golden.insert(m.index, (m, &r.rim.tag_id));
        }
    }
    let blocks = evidence.measurements();
    let mut compared = Vec::new();
    let mut mismatches = Vec::new();
    for (index, (m, _)) in golden {
        let spdm_index = index + 1;
        compared.push(spdm_index);
        let found = u8::try_from(spdm_index)
            .ok()
            .and_then(|i| blocks.get(&i).copied());
        if !found.is_some_and(|v| m.alternatives.iter().any(|a| a[..] == *v)) {
            mismatches.push(MeasurementMismatch {
                rim_index: index,
                spdm_index,
                expected: m.alternatives.iter().map(hex::encode).collect(),
                found: found.map(hex::encode),
            });
        }
    }
    Ok(MeasurementComparison {
        compared,
        mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvidia::{verify, ExpectedNonce};

    fn vector_file(vector: &str, name: &str) -> Vec<u8> {
        let path = sim::vectors::vector_dir("nvidia", vector).join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn evidence() -> VerifiedGpuEvidence {
        let chain = crate::x509::certs_from_pem(&vector_file(
            "nvtrust-hopper-h100-sample",
            "hopperCertChain.txt",
        ))
        .unwrap();
        verify(
            &vector_file("nvtrust-hopper-h100-sample", "hopperAttestationReport.txt"),
            &chain,
            ExpectedNonce::DangerousAny,
            &NvidiaTrustAnchors::nvidia(),
            Timestamp::parse_rfc3339("2025-01-01T00:00:00Z").unwrap(),
        )
        .unwrap()
    }

    /// A RIM with these entries, taken as verified (what verify_rim builds for a signed
    /// one): the comparison logic alone, since no signed RIM matches the vectors.
    fn rim_with(tag: &str, entries: Vec<(u32, bool, Vec<Vec<u8>>)>) -> VerifiedRim {
        let mut rim = Rim::parse(&vector_file(
            "nvtrust-rim-test-samples",
            "Driver_RIM_test_no_gpu.swidtag",
        ))
        .unwrap();
        rim.tag_id = tag.into();
        rim.measurements = entries
            .into_iter()
            .map(|(index, active, alternatives)| RimMeasurement {
                index,
                active,
                name: None,
                alternatives,
            })
            .collect();
        VerifiedRim {
            rim,
            root_sha256: [0; 32],
            signer: "test".into(),
        }
    }

    #[test]
    fn active_entries_match_any_alternative_at_index_plus_one() {
        let e = evidence();
        let value = |spdm: u8| e.measurements()[&spdm].to_vec();
        let other = vec![0xEE; 48];
        let driver = rim_with(
            "driver",
            vec![
                (1, true, vec![value(2)]),
                // The second alternative matches.
                (2, true, vec![other.clone(), value(3)]),
                // Inactive entries are not compared, whatever they hold.
                (3, false, vec![other.clone()]),
            ],
        );
        let vbios = rim_with("vbios", vec![(11, true, vec![value(12)])]);
        let c = compare_measurements(&e, &[&driver, &vbios]).unwrap();
        assert_eq!(c.compared, vec![2, 3, 12]);
        assert!(c.matches(), "{:?}", c.mismatches);
        assert!(c.into_result().is_ok());

        // Off by one (RIM index i compared with block i) does not match.
        let shifted = rim_with("shifted", vec![(2, true, vec![value(2)])]);
        let c = compare_measurements(&e, &[&shifted]).unwrap();
        assert_eq!(c.mismatches.len(), 1);
        assert_eq!(c.mismatches[0].spdm_index, 3);
        assert_eq!(c.mismatches[0].found, Some(hex::encode(value(3))));

        // An active entry for a block the evidence lacks is a mismatch with nothing found.
        let beyond = rim_with("beyond", vec![(99, true, vec![other])]);
        let c = compare_measurements(&e, &[&beyond]).unwrap();
        assert_eq!(c.mismatches[0].spdm_index, 100);
        assert_eq!(c.mismatches[0].found, None);
        assert_eq!(
            c.into_result().unwrap_err().reason,
            Reason::GpuMeasurementMismatch
        );
    }

    #[test]
    fn the_canonical_signed_info_carries_every_namespace_in_scope() {
        let rim = Rim::parse(&vector_file(
            "nvtrust-rim-test-samples",
            "Driver_RIM_test_no_gpu.swidtag",
        ))
        .unwrap();
        let si = rim.canonical_signed_info();
        assert!(
            si.starts_with(
                "<ds:SignedInfo xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" \
                 xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" \
                 xmlns:ns0=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" \
                 xmlns:ns2=\"http://www.w3.org/2001/04/xmlenc#sha384\">"
            ),
            "{si}"
        );
        assert!(si.contains("<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"></ds:CanonicalizationMethod>"));
        let doc = rim.canonical_document();
        assert!(!doc.contains("ds:Signature"));
        assert!(
            doc.ends_with("    </ns0:Payload>\n</SoftwareIdentity>"),
            "{}",
            &doc[doc.len() - 80..]
        );
    }
}
