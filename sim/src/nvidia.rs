//! Simulated NVIDIA Hopper GPUs: a FAKE device identity chain (root, "GH100 Identity",
//! per GPU a "GH100 A01 GSP BROM" device certificate and a "GH100 A01 GSP FMC LF"
//! attestation leaf carrying the FWID in the TCG DICE TcbInfo extension) and evidence in
//! the real SPDM 1.1 GET_MEASUREMENTS format, signed with the leaf's P-384 key.
//!
//! Keys are derived from a seed ([`SimulatedGpus::from_seed`]); the simulated TEE keeps a
//! random seed in its state directory ([`SimulatedGpus::open_or_create`]), so each state
//! directory has its own root. The root is never trusted by a verifier unless a policy
//! names it (`[gpu] dangerous_trusted_roots`).
//!
//! Simulated reference integrity manifests ([`SimulatedGpus::rims`], [`SimulatedGpus::rim`]):
//! SWID tags in NVIDIA's format, with an enveloped XMLDSig (Canonical XML 1.1, ECDSA
//! P-384 / SHA-384) by a FAKE "RIM signer" under a FAKE RIM root of the same seed, never
//! trusted unless a policy names it (`[gpu] dangerous_trusted_rim_roots`). The document is
//! written already in canonical form, so the digest and the signed bytes are computed
//! without a canonicalizer.

use crate::der;
use crate::keys::FakeP384Key;
use crate::x509::{
    certificates_pem, issue_certificate, CertificateTemplate, DistinguishedName, Extension,
    NameAttribute, Signer,
};
use std::io;
use std::path::Path;

const NOT_BEFORE: i64 = 1_640_995_200; // 2022-01-01
const NOT_AFTER: i64 = 4_102_444_800; // 2100-01-01
/// The file in a state directory holding the seed (64 hex digits).
pub const SEED_FILE: &str = "simulated-gpu-seed";
/// Driver version the simulated GPUs report.
pub const SIM_DRIVER_VERSION: &str = "570.124.06";
/// VBIOS version the simulated GPUs report, as NVIDIA prints it.
pub const SIM_VBIOS_VERSION: &str = "96.00.9f.00.01";

/// The value of measurement block `index` in the standard simulated evidence
/// ([`SimulatedGpus::evidence`]): SHA-256 of "measurement {index}", then 16 zero bytes.
pub fn sim_measurement(index: u8) -> Vec<u8> {
    let mut value = vec![0u8; 48];
    value[..32].copy_from_slice(&sha256(format!("measurement {index}").as_bytes()));
    value
}

/// Which manifest a simulated RIM is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RimKind {
    Driver,
    Vbios,
}

/// The VBIOS version the simulated GPUs report, as NVIDIA's RIMs write it
/// (colloquialVersion, upper-case hex).
pub const SIM_VBIOS_RIM_VERSION: &str = "96.00.9F.00.01";

/// One simulated GPU.
struct Gpu {
    leaf: FakeP384Key,
    chain: Vec<Vec<u8>>,
    fwid: [u8; 48],
}

/// A set of simulated GPUs sharing one FAKE root.
pub struct SimulatedGpus {
    /// The seed the keys derive from (for OCSP responses signed by the chain's CAs).
    seed: String,
    root_der: Vec<u8>,
    gpus: Vec<Gpu>,
    /// The FAKE RIM root and signer (DER), and the signer's key.
    rim_root_der: Vec<u8>,
    rim_signer_der: Vec<u8>,
    rim_signer: FakeP384Key,
}

impl std::fmt::Debug for SimulatedGpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedGpus")
            .field("count", &self.gpus.len())
            .field("root_sha256", &hex::encode(self.root_sha256()))
            .finish()
    }
}

fn name(cn: &str) -> DistinguishedName {
    DistinguishedName(vec![
        NameAttribute::CommonName(cn.into()),
        NameAttribute::Organization("SIMULATED NVIDIA (never trusted by default)".into()),
    ])
}

/// TcbInfo (2.23.133.5.4.1) with one SHA-384 FWID, shaped like NVIDIA's.
fn tcb_info(fwid: &[u8; 48]) -> Extension {
    let fwid_seq = der::seq(&[
        &der::oid("2.16.840.1.101.3.4.2.2"),
        &der::octet_string(fwid),
    ]);
    let value = der::seq(&[&der::uint(1), &der::seq(&[&der::null()]), &fwid_seq]);
    Extension::new("2.23.133.5.4.1", false, value)
}

fn cert(
    serial: Vec<u8>,
    issuer: &str,
    subject: &str,
    key: &FakeP384Key,
    signer: &FakeP384Key,
    extensions: Vec<Extension>,
) -> Vec<u8> {
    issue_certificate(
        &CertificateTemplate {
            serial,
            issuer: name(issuer),
            subject: name(subject),
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            subject_spki: key.spki_der(),
            extensions,
        },
        Signer::P384(signer),
        false,
    )
}

impl SimulatedGpus {
    /// `count` GPUs whose keys derive from `seed`.
    pub fn from_seed(seed: &str, count: usize) -> Self {
        let root = FakeP384Key::from_label(&format!("{seed}/nvidia-root"));
        let int = FakeP384Key::from_label(&format!("{seed}/nvidia-gh100-identity"));
        let root_cn = "SIMULATED NVIDIA Device Identity CA";
        let int_cn = "SIMULATED NVIDIA GH100 Identity";
        let ca = || {
            vec![
                Extension::basic_constraints(true, None),
                Extension::key_usage(&[5, 6]),
            ]
        };
        let root_der = cert(vec![1], root_cn, root_cn, &root, &root, ca());
        let int_der = cert(vec![2], root_cn, int_cn, &int, &root, ca());
        let gpus = (0..count)
            .map(|i| {
                let device = FakeP384Key::from_label(&format!("{seed}/gpu{i}/device"));
                let leaf = FakeP384Key::from_label(&format!("{seed}/gpu{i}/leaf"));
                let mut fwid = [0u8; 48];
                fwid[..32].copy_from_slice(&sha256(format!("{seed}/gpu{i}/fwid").as_bytes()));
                let device_der = cert(
                    vec![3, i as u8],
                    int_cn,
                    "GH100 A01 GSP BROM",
                    &device,
                    &int,
                    ca(),
                );
                let leaf_der = cert(
                    vec![4, i as u8],
                    "GH100 A01 GSP BROM",
                    "GH100 A01 GSP FMC LF",
                    &leaf,
                    &device,
                    vec![Extension::key_usage(&[0]), tcb_info(&fwid)],
                );
                Gpu {
                    leaf,
                    chain: vec![leaf_der, device_der, int_der.clone(), root_der.clone()],
                    fwid,
                }
            })
            .collect();
        let rim_root = FakeP384Key::from_label(&format!("{seed}/nvidia-rim-root"));
        let rim_signer = FakeP384Key::from_label(&format!("{seed}/nvidia-rim-signer"));
        let rim_root_cn = "SIMULATED NVIDIA CoRIM signing Root CA";
        let rim_root_der = cert(
            vec![5],
            rim_root_cn,
            rim_root_cn,
            &rim_root,
            &rim_root,
            ca(),
        );
        let rim_signer_der = cert(
            vec![6],
            rim_root_cn,
            "SIMULATED NVIDIA RIM signer",
            &rim_signer,
            &rim_root,
            vec![Extension::key_usage(&[0])],
        );
        SimulatedGpus {
            seed: seed.to_owned(),
            root_der,
            gpus,
            rim_root_der,
            rim_signer_der,
            rim_signer,
        }
    }

    /// A DER OCSP response (RFC 6960) saying `good` for certificate `index` of GPU `i`'s
    /// chain (1: the device certificate, 2: the "GH100 Identity"), signed by its issuer
    /// (responderID byKey, CertID with SHA-1), current from `this_update` to
    /// `next_update` (Unix seconds).
    pub fn ocsp_good(&self, i: usize, index: usize, this_update: i64, next_update: i64) -> Vec<u8> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let chain = &self.gpus[i].chain;
        let (_, cert) = X509Certificate::from_der(&chain[index]).expect("own certificate");
        let (_, issuer) = X509Certificate::from_der(&chain[index + 1]).expect("own certificate");
        let sha1 = |b: &[u8]| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
                .as_ref()
                .to_vec()
        };
        let key_hash = sha1(&issuer.public_key().subject_public_key.data);
        let cert_id = der::seq(&[
            &der::seq(&[&der::oid("1.3.14.3.2.26"), &der::null()]),
            &der::octet_string(&sha1(cert.issuer().as_raw())),
            &der::octet_string(&key_hash),
            &der::tlv(0x02, cert.raw_serial()),
        ]);
        let single = der::seq(&[
            &cert_id,
            &[0x80, 0x00],
            &der::generalized_time(this_update),
            &der::explicit(0, &der::generalized_time(next_update)),
        ]);
        let tbs = der::seq(&[
            &der::explicit(2, &der::octet_string(&key_hash)),
            &der::generalized_time(this_update),
            &der::seq(&[&single]),
        ]);
        let issuer_label = if index + 2 == chain.len() {
            "nvidia-root"
        } else if index + 3 == chain.len() {
            "nvidia-gh100-identity"
        } else {
            panic!("OCSP responses are for the device certificate (1) and the GH100 identity (2)")
        };
        let signer = FakeP384Key::from_label(&format!("{}/{issuer_label}", self.seed));
        let basic = der::seq(&[
            &tbs,
            &der::seq(&[&der::oid("1.2.840.10045.4.3.3")]),
            &der::bit_string(&signer.sign_der(&tbs)),
        ]);
        der::seq(&[
            &der::enumerated(0),
            &der::explicit(
                0,
                &der::seq(&[
                    &der::oid("1.3.6.1.5.5.7.48.1.1"),
                    &der::octet_string(&basic),
                ]),
            ),
        ])
    }

    /// `count` GPUs with the seed kept in `dir/simulated-gpu-seed` (created with a random
    /// seed on first use).
    pub fn open_or_create(dir: &Path, count: usize) -> io::Result<Self> {
        let path = dir.join(SEED_FILE);
        let seed = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let seed = text.trim().to_owned();
                if seed.len() != 64 || hex::decode(&seed).is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: not 64 hex digits", path.display()),
                    ));
                }
                seed
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|_| io::Error::other("no randomness for the simulated GPU seed"))?;
                let seed = hex::encode(bytes);
                std::fs::create_dir_all(dir)?;
                std::fs::write(&path, format!("{seed}\n"))?;
                seed
            }
            Err(e) => return Err(e),
        };
        Ok(SimulatedGpus::from_seed(&seed, count))
    }

    pub fn count(&self) -> usize {
        self.gpus.len()
    }

    /// DER of the FAKE root.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// SHA-256 of the FAKE root's DER (what `[gpu] dangerous_trusted_roots` names).
    pub fn root_sha256(&self) -> [u8; 32] {
        sha256(&self.root_der)
    }

    /// GPU `i`'s chain as PEM, leaf first, root last (as NVIDIA's driver returns it).
    pub fn chain_pem(&self, i: usize) -> String {
        let ders: Vec<&[u8]> = self.gpus[i].chain.iter().map(|d| d.as_slice()).collect();
        certificates_pem(&ders)
    }

    /// GPU `i`'s chain, DER, leaf first.
    pub fn chain_der(&self, i: usize) -> &[Vec<u8>] {
        &self.gpus[i].chain
    }

    /// GPU `i`'s evidence for `nonce`, reporting [`SIM_DRIVER_VERSION`] and
    /// [`SIM_VBIOS_VERSION`].
    pub fn evidence(&self, i: usize, nonce: [u8; 32]) -> Vec<u8> {
        self.evidence_with(i, nonce, SIM_DRIVER_VERSION, [0x00, 0x9f, 0x00, 0x96, 0x01])
    }

    /// GPU `i`'s evidence for `nonce` with this driver version and VBIOS bytes (the first
    /// five bytes of the 8-byte opaque field: u32 LE, then one byte).
    pub fn evidence_with(
        &self,
        i: usize,
        nonce: [u8; 32],
        driver: &str,
        vbios: [u8; 5],
    ) -> Vec<u8> {
        let blocks: Vec<(u8, Vec<u8>)> = (1u8..=4)
            .map(|index| (index, sim_measurement(index)))
            .collect();
        self.evidence_custom(
            i,
            nonce,
            &EvidenceContent {
                driver,
                vbios,
                blocks: &blocks,
                extra_opaque: &[],
            },
        )
    }

    /// GPU `i`'s evidence for `nonce` with the given content (tests: measurements equal
    /// to a RIM's, opaque fields such as the feature flag), signed by its leaf.
    pub fn evidence_custom(&self, i: usize, nonce: [u8; 32], content: &EvidenceContent) -> Vec<u8> {
        let gpu = &self.gpus[i];
        // GET_MEASUREMENTS: version 1.1, signature requested, all blocks, nonce, slot 0.
        let mut b = vec![0x11, 0xE0, 0x01, 0xFF];
        b.extend(nonce);
        b.push(0);
        // MEASUREMENTS: version 1.1, Param1 0, slot 0, the blocks.
        b.extend([0x11, 0x60, 0x00, 0x00, content.blocks.len() as u8]);
        let mut record = Vec::new();
        for (index, value) in content.blocks {
            // DMTF block: index, spec 0x01, size; type 0x01 (raw digest), value size.
            let n = value.len() as u16;
            record.extend([*index, 0x01]);
            record.extend((n + 3).to_le_bytes());
            record.push(0x01);
            record.extend(n.to_le_bytes());
            record.extend(value);
        }
        b.extend(&(record.len() as u32).to_le_bytes()[..3]);
        b.extend(&record);
        let mut responder_nonce = [0u8; 32];
        responder_nonce.copy_from_slice(&sha256(&b));
        b.extend(responder_nonce);
        let mut driver_z = content.driver.as_bytes().to_vec();
        driver_z.push(0);
        let mut vbios8 = [0u8; 8];
        vbios8[..5].copy_from_slice(&content.vbios);
        let mut fields: Vec<(u16, &[u8])> =
            vec![(3, &driver_z), (6, &vbios8), (20, &gpu.fwid), (34, &[1, 0])];
        fields.extend(content.extra_opaque.iter().map(|(t, v)| (*t, &v[..])));
        let mut opaque = Vec::new();
        for (t, v) in fields {
            opaque.extend(t.to_le_bytes());
            opaque.extend((v.len() as u16).to_le_bytes());
            opaque.extend(v);
        }
        b.extend((opaque.len() as u16).to_le_bytes());
        b.extend(opaque);
        let signature = gpu.leaf.sign_raw(&b);
        b.extend(signature);
        b
    }
}

impl SimulatedGpus {
    /// DER of the FAKE RIM root.
    pub fn rim_root_der(&self) -> &[u8] {
        &self.rim_root_der
    }

    /// SHA-256 of the FAKE RIM root's DER (what `[gpu] dangerous_trusted_rim_roots` names).
    pub fn rim_root_sha256(&self) -> [u8; 32] {
        sha256(&self.rim_root_der)
    }

    /// The driver and VBIOS RIMs that the standard evidence ([`SimulatedGpus::evidence`])
    /// meets: the driver RIM ([`SIM_DRIVER_VERSION`]) governs SPDM blocks 2 and 3, the
    /// VBIOS RIM ([`SIM_VBIOS_RIM_VERSION`]) blocks 1 and 4; each also lists an inactive
    /// entry with a value no block has.
    pub fn rims(&self) -> (Vec<u8>, Vec<u8>) {
        let entry = |spdm: u8, active: bool| {
            let value = if active {
                sim_measurement(spdm)
            } else {
                vec![0xEE; 48]
            };
            (u32::from(spdm) - 1, active, vec![value])
        };
        (
            self.rim(
                RimKind::Driver,
                SIM_DRIVER_VERSION,
                &[entry(2, true), entry(3, true), entry(5, false)],
            ),
            self.rim(
                RimKind::Vbios,
                SIM_VBIOS_RIM_VERSION,
                &[entry(1, true), entry(4, true), entry(6, false)],
            ),
        )
    }

    /// A signed RIM of `kind` for `version` (Meta colloquialVersion) with these entries
    /// (RIM index = SPDM block - 1, active, alternatives), signed by the FAKE RIM signer;
    /// the KeyInfo chain is the signer then the FAKE RIM root.
    pub fn rim(
        &self,
        kind: RimKind,
        version: &str,
        entries: &[(u32, bool, Vec<Vec<u8>>)],
    ) -> Vec<u8> {
        const NS_SWID: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
        const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
        let kind_name = match kind {
            RimKind::Driver => "driver",
            RimKind::Vbios => "vbios",
        };
        let tag_id = hex::encode(sha256(format!("{kind_name}/{version}").as_bytes()));
        // Canonical form: namespace declarations first, attributes sorted by namespace URI
        // then local name (unqualified first), every element with an end tag.
        let mut head = format!(
            "<SoftwareIdentity xmlns=\"{NS_SWID}\" corpus=\"false\" name=\"GH100\" patch=\"false\" supplemental=\"false\" tagId=\"{tag_id}\" tagVersion=\"0\" version=\"1.0\">\n"
        );
        head.push_str(&format!(
            "<Meta xmlns:ns1=\"https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/\" colloquialVersion=\"{version}\" edition=\"GPU\" product=\"GH100\" revision=\"r1\" ns1:FirmwareManufacturer=\"SIMULATED NVIDIA\" ns1:PlatformManufacturerId=\"5703\"></Meta>\n"
        ));
        head.push_str("<Payload xmlns:SHA384=\"http://www.w3.org/2001/04/xmlenc#sha384\">\n");
        for (index, active, alternatives) in entries {
            let active = if *active { "True" } else { "False" };
            let size = alternatives.first().map_or(48, Vec::len);
            head.push_str(&format!(
                "<Resource active=\"{active}\" alternatives=\"{}\" index=\"{index}\" name=\"Measurement_{index}\" size=\"{size}\" type=\"Measurement\"",
                alternatives.len()
            ));
            for (i, a) in alternatives.iter().enumerate() {
                head.push_str(&format!(" SHA384:Hash{i}=\"{}\"", hex::encode(a)));
            }
            head.push_str("></Resource>\n");
        }
        head.push_str("</Payload>\n");
        let tail = "</SoftwareIdentity>";
        let b64 = |bytes: &[u8]| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA384,
            format!("{head}{tail}").as_bytes(),
        );
        let signed_info_body = format!(
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384\"></ds:SignatureMethod><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform><ds:Transform Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#sha384\"></ds:DigestMethod><ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
            b64(digest.as_ref())
        );
        // SignedInfo as a document subset renders every namespace in scope on it: the
        // default (SWID) one and ds.
        let canonical_signed_info =
            format!("<ds:SignedInfo xmlns=\"{NS_SWID}\" xmlns:ds=\"{NS_DS}\">{signed_info_body}");
        let signature = self.rim_signer.sign_raw(canonical_signed_info.as_bytes());
        let certificates: String = [&self.rim_signer_der, &self.rim_root_der]
            .iter()
            .map(|der| format!("<ds:X509Certificate>{}</ds:X509Certificate>", b64(der)))
            .collect();
        format!(
            "{head}<ds:Signature xmlns:ds=\"{NS_DS}\"><ds:SignedInfo>{signed_info_body}<ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>{certificates}</ds:X509Data></ds:KeyInfo></ds:Signature>{tail}",
            b64(&signature)
        )
        .into_bytes()
    }
}

/// What [`SimulatedGpus::evidence_custom`] puts in the evidence.
pub struct EvidenceContent<'a> {
    /// Opaque DRIVER_VERSION (type 3), without its NUL.
    pub driver: &'a str,
    /// The first five bytes of the 8-byte VBIOS_VERSION (type 6): u32 LE, then one byte.
    pub vbios: [u8; 5],
    /// Measurement blocks (SPDM index, raw digest value), in this order.
    pub blocks: &'a [(u8, Vec<u8>)],
    /// Opaque fields after the standard ones (driver, VBIOS, FWID, version 1).
    pub extra_opaque: &'a [(u16, Vec<u8>)],
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
