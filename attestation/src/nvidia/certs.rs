//! NVIDIA certificate chains: the pinned roots ([`NvidiaTrustAnchors`]), leaf-first chain
//! verification to one of them at a given time, and the FWID of the TCG DICE TcbInfo
//! extension.
//!
//! Roots are pinned by the SHA-256 of their DER; the embedded PEMs only supply the bytes,
//! so a swapped file cannot add trust (the anchors come up empty and every chain fails).

use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use crate::x509;
use x509_parser::prelude::*;

/// SHA-256 of the DER of "NVIDIA Device Identity CA" (nvtrust local_gpu_verifier
/// `verifier_device_root.pem`; byte-identical in trustee).
pub const DEVICE_ROOT_SHA256: &str =
    "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48";
/// SHA-256 of the DER of "NVIDIA CoRIM signing Root CA" (nvtrust `verifier_RIM_root.pem`).
pub const RIM_ROOT_SHA256: &str =
    "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1";

const DEVICE_ROOT_PEM: &[u8] = include_bytes!("roots/verifier_device_root.pem");
const RIM_ROOT_PEM: &[u8] = include_bytes!("roots/verifier_RIM_root.pem");

/// TCG DICE TcbInfo (tcg-dice-TcbInfo), which carries the FWID in NVIDIA's leaf.
pub const OID_TCG_DICE_TCB_INFO: &str = "2.23.133.5.4.1";
/// DER of the SHA-384 OID (2.16.840.1.101.3.4.2.2), the FWID's hash algorithm.
const SHA384_OID_DER: [u8; 11] = [
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
];

/// One pinned root.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub(crate) der: Vec<u8>,
    pub(crate) sha256: [u8; 32],
}

/// The roots NVIDIA evidence and reference manifests must chain to.
#[derive(Debug, Clone)]
pub struct NvidiaTrustAnchors {
    pub(crate) device: Vec<Root>,
    pub(crate) rim: Vec<Root>,
}

pub(crate) fn pinned_root(pem: &[u8], sha256_hex: &str) -> Vec<Root> {
    let der = x509::certs_from_pem(pem).unwrap_or_default();
    der.into_iter()
        .filter_map(|der| {
            let sha256 = x509::sha256(&der);
            (hex::encode(sha256) == sha256_hex).then_some(Root { der, sha256 })
        })
        .collect()
}

impl NvidiaTrustAnchors {
    /// NVIDIA's production roots: the Device Identity CA (GPU evidence) and the CoRIM
    /// signing Root CA (reference integrity manifests).
    pub fn nvidia() -> Self {
        NvidiaTrustAnchors {
            device: pinned_root(DEVICE_ROOT_PEM, DEVICE_ROOT_SHA256),
            rim: pinned_root(RIM_ROOT_PEM, RIM_ROOT_SHA256),
        }
    }

    /// No trusted root at all (start for a test-only set of roots).
    pub fn empty() -> Self {
        NvidiaTrustAnchors {
            device: Vec::new(),
            rim: Vec::new(),
        }
    }

    /// DANGER: also trust another self-signed root for GPU device chains (a simulated GPU,
    /// tests). A certificate that does not parse adds no trust.
    pub fn dangerous_trust_device_root(mut self, der: Vec<u8>) -> Self {
        add_root(&mut self.device, der);
        self
    }

    /// DANGER: also trust another self-signed root for RIM signing chains.
    pub fn dangerous_trust_rim_root(mut self, der: Vec<u8>) -> Self {
        add_root(&mut self.rim, der);
        self
    }

    /// SHA-256 of every trusted device root.
    pub fn device_roots(&self) -> Vec<[u8; 32]> {
        self.device.iter().map(|r| r.sha256).collect()
    }

    /// SHA-256 of every trusted RIM root.
    pub fn rim_roots(&self) -> Vec<[u8; 32]> {
        self.rim.iter().map(|r| r.sha256).collect()
    }
}

fn add_root(roots: &mut Vec<Root>, der: Vec<u8>) {
    if x509::parse_cert(&der, "trusted root").is_err() {
        return;
    }
    let sha256 = x509::sha256(&der);
    if !roots.iter().any(|r| r.sha256 == sha256) {
        roots.push(Root { der, sha256 });
    }
}

/// A chain that verified: the root's SHA-256 and whether the root came with the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainOk {
    pub(crate) root_sha256: [u8; 32],
}

/// Verify `certs` (DER, leaf first, the root optional at the end) to one of `roots` at
/// `at`: every link's issuer name and signature, basic constraints and key usage of every
/// issuer, pathLenConstraint, and every certificate's validity. `what` names the chain.
/// The leaf's own key usage is the caller's to check ([`check_signing_leaf`]), after what
/// identifies the leaf as the right one (the GPU's FWID).
///
/// Order: root selection, then signatures from the root down, then constraints, then
/// validity (so an expired certificate in a chain that does not verify reports the
/// signature problem).
pub(crate) fn verify_chain(
    certs: &[Vec<u8>],
    roots: &[Root],
    at: Timestamp,
    what: &str,
) -> Result<ChainOk, Rejection> {
    if certs.is_empty() {
        return reject(
            Reason::CertificateMissing,
            format!("{what}: no certificate was supplied"),
        );
    }
    let mut parsed = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        parsed.push(x509::parse_cert(der, &format!("{what} certificate #{i}"))?);
    }
    let last = parsed.len() - 1;
    let last_sha = x509::sha256(&certs[last]);
    // The root: the supplied last certificate if pinned, else the pinned root that issued
    // the last certificate.
    let (below_root, root): (&[X509Certificate<'_>], &Root) =
        if let Some(root) = roots.iter().find(|r| r.sha256 == last_sha) {
            (&parsed[..last], root)
        } else {
            let lc = &parsed[last];
            let self_issued = lc.issuer().as_raw() == lc.subject().as_raw();
            let issuer = roots.iter().find(|r| {
                x509::parse_cert(&r.der, "pinned root")
                    .is_ok_and(|rc| rc.subject().as_raw() == lc.issuer().as_raw())
            });
            match issuer {
                Some(root) if !self_issued => (&parsed[..], root),
                _ => {
                    let reason = if x509::is_simulated(lc) {
                        Reason::SimulatedRootNotTrusted
                    } else {
                        Reason::UntrustedRoot
                    };
                    return reject(
                        reason,
                        format!(
                            "{what}: the chain ends in \"{}\" (SHA-256 {}), which is not a \
                             pinned root and not issued by one",
                            lc.subject(),
                            hex::encode(last_sha)
                        ),
                    );
                }
            }
        };
    if below_root.is_empty() {
        return reject(
            Reason::CertificateMissing,
            format!(
                "{what}: the chain holds only the root; the signing certificate (and its \
                 issuers) must come with it"
            ),
        );
    }
    let root_cert = x509::parse_cert(&root.der, "pinned root")?;
    let root_name = x509::common_name(root_cert.subject()).unwrap_or_default();
    x509::verify_issued_by(
        &root_cert,
        &root_cert,
        &format!("{what}: root \"{root_name}\""),
    )?;
    let name = |c: &X509Certificate<'_>| x509::common_name(c.subject()).unwrap_or_default();
    for i in (0..below_root.len()).rev() {
        let child = &below_root[i];
        let issuer = below_root.get(i + 1).unwrap_or(&root_cert);
        x509::verify_issued_by(child, issuer, &format!("{what}: \"{}\"", name(child)))?;
    }
    // Constraints: every issuer is a CA allowed to sign certificates, with a path below it
    // no longer than its pathLenConstraint; the leaf's key may sign.
    let mut issuers: Vec<&X509Certificate<'_>> = below_root.iter().skip(1).collect();
    issuers.push(&root_cert);
    for (k, issuer) in issuers.iter().enumerate() {
        // Certificates between this issuer and the leaf, the leaf excluded.
        let intermediates_below = k;
        check_ca(
            issuer,
            intermediates_below,
            &format!("{what}: \"{}\"", name(issuer)),
        )?;
    }
    for cert in below_root.iter().chain(std::iter::once(&root_cert)) {
        x509::check_validity(cert, at, &format!("{what}: \"{}\"", name(cert)))?;
    }
    Ok(ChainOk {
        root_sha256: root.sha256,
    })
}

/// The leaf of a chain may sign data: a keyUsage extension, if present, has
/// digitalSignature.
pub(crate) fn check_signing_leaf(leaf: &X509Certificate<'_>, what: &str) -> Result<(), Rejection> {
    if let Ok(Some(ku)) = leaf.key_usage() {
        if !ku.value.digital_signature() {
            return reject(
                Reason::CertificateConstraintViolated,
                format!(
                    "{what}: the signing certificate \"{}\" has no digitalSignature key usage",
                    x509::common_name(leaf.subject()).unwrap_or_default()
                ),
            );
        }
    }
    Ok(())
}

fn check_ca(cert: &X509Certificate<'_>, below: usize, what: &str) -> Result<(), Rejection> {
    let bc = cert.basic_constraints().map_err(|e| {
        Rejection::new(
            Reason::MalformedCertificate,
            format!("{what}: basicConstraints: {e}"),
        )
    })?;
    let Some(bc) = bc.filter(|bc| bc.value.ca) else {
        return reject(
            Reason::CertificateConstraintViolated,
            format!("{what} issues a certificate but is not a CA (basicConstraints)"),
        );
    };
    if let Some(max) = bc.value.path_len_constraint {
        if below > max as usize {
            return reject(
                Reason::CertificateConstraintViolated,
                format!(
                    "{what} has pathLenConstraint {max} and {below} intermediate \
                     certificates below it"
                ),
            );
        }
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        if !ku.value.key_cert_sign() {
            return reject(
                Reason::CertificateConstraintViolated,
                format!("{what} issues a certificate without the keyCertSign key usage"),
            );
        }
    }
    Ok(())
}

/// One DER TLV: (tag, value, rest). Definite lengths only, up to 4 length bytes.
fn der_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Every SHA-384 FWID (`SEQUENCE { OID sha384, OCTET STRING (48) }`) inside a DER value,
/// looking into constructed elements (NVIDIA's TcbInfo holds it directly in the outer
/// SEQUENCE; the TCG DiceTcbInfo layout in `[6] fwids`). `None` if the DER is malformed.
fn fwids_in(mut bytes: &[u8], depth: u8, out: &mut Vec<[u8; 48]>) -> Option<()> {
    if depth > 8 {
        return None;
    }
    while !bytes.is_empty() {
        let (tag, value, rest) = der_tlv(bytes)?;
        if tag == 0x30 && value.starts_with(&SHA384_OID_DER) {
            let (t, digest, tail) = der_tlv(&value[SHA384_OID_DER.len()..])?;
            if t == 0x04 && tail.is_empty() {
                out.push(digest.try_into().ok()?);
            }
        } else if tag & 0x20 != 0 {
            fwids_in(value, depth + 1, out)?;
        }
        bytes = rest;
    }
    Some(())
}

/// The FWID of a certificate's TcbInfo extension: `Ok(None)` when the certificate has no
/// such extension; malformed DER, several FWIDs or one that is not 48 bytes are
/// [`Reason::MalformedCertificate`].
pub fn fwid_of_certificate(cert: &X509Certificate<'_>) -> Result<Option<[u8; 48]>, Rejection> {
    let Some(ext) = x509::unique_extension(cert, OID_TCG_DICE_TCB_INFO, "GPU leaf")? else {
        return Ok(None);
    };
    let mut found = Vec::new();
    if fwids_in(ext, 0, &mut found).is_none() {
        return reject(
            Reason::MalformedCertificate,
            format!("TcbInfo extension ({OID_TCG_DICE_TCB_INFO}) is not well-formed DER"),
        );
    }
    match found.as_slice() {
        [one] => Ok(Some(*one)),
        _ => reject(
            Reason::MalformedCertificate,
            format!(
                "TcbInfo extension ({OID_TCG_DICE_TCB_INFO}) holds {} SHA-384 FWIDs, expected one",
                found.len()
            ),
        ),
    }
}

/// Fuzzing entry: the DER readers on arbitrary bytes.
pub(crate) fn fuzz_der(bytes: &[u8]) {
    let mut out = Vec::new();
    let _ = fwids_in(bytes, 0, &mut out);
    if let Ok(cert) = x509::parse_cert(bytes, "fuzzed certificate") {
        let _ = fwid_of_certificate(&cert);
    }
}
