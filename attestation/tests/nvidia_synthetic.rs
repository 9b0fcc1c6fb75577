//! NVIDIA GPU verification against FAKE chains and evidence built here with veritee-sim's
//! deterministic P-384 signers (never trusted but through `dangerous_trust_device_root`):
//! what the real vectors cannot show because nothing in them can be re-signed: a signed
//! FWID mismatch, certificate constraints (a non-CA issuer, pathLenConstraint, a leaf that
//! may not sign), a signed wrong nonce, and that a FAKE root is never trusted by default.

use attestation::nvidia::{self, ExpectedNonce, NvidiaTrustAnchors};
use attestation::{Reason, Timestamp};
use sim::der;
use sim::x509::{
    issue_certificate, CertificateTemplate, DistinguishedName, Extension, NameAttribute, Signer,
};
use sim::FakeP384Key;

const NOT_BEFORE: i64 = 1_640_995_200; // 2022-01-01
const NOT_AFTER: i64 = 4_102_444_800; // 2100-01-01
const NONCE: [u8; 32] = [0x42; 32];

fn at() -> Timestamp {
    Timestamp::parse_rfc3339("2025-01-01T00:00:00Z").unwrap()
}

fn name(cn: &str) -> DistinguishedName {
    DistinguishedName(vec![
        NameAttribute::CommonName(cn.into()),
        NameAttribute::Organization("FAKE NVIDIA for tests".into()),
    ])
}

/// The TcbInfo extension as NVIDIA's leaf carries it: SEQUENCE { INTEGER, SPKI-like
/// SEQUENCE, FWID SEQUENCE { sha384, OCTET STRING } }.
fn tcb_info(fwid: &[u8; 48]) -> Extension {
    let fwid_seq = der::seq(&[
        &der::oid("2.16.840.1.101.3.4.2.2"),
        &der::octet_string(fwid),
    ]);
    let value = der::seq(&[&der::uint(1), &der::seq(&[&der::null()]), &fwid_seq]);
    Extension::new("2.23.133.5.4.1", false, value)
}

/// How to build one FAKE chain.
#[derive(Clone)]
struct Recipe {
    /// Basic constraints (CA, pathLen) of the device certificate ("... BROM").
    device_ca: (bool, Option<u8>),
    /// keyUsage bits of the device certificate.
    device_key_usage: Vec<u8>,
    /// keyUsage bits of the leaf.
    leaf_key_usage: Vec<u8>,
    /// pathLen of the intermediate under the root.
    intermediate_path_len: Option<u8>,
    leaf_fwid: [u8; 48],
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            device_ca: (true, None),
            device_key_usage: vec![5],
            leaf_key_usage: vec![0],
            intermediate_path_len: None,
            leaf_fwid: [0xF1; 48],
        }
    }
}

struct Fake {
    /// DER, leaf first, root last.
    chain: Vec<Vec<u8>>,
    leaf: FakeP384Key,
}

fn build(recipe: &Recipe) -> Fake {
    let root = FakeP384Key::from_label("fake nvidia root");
    let int = FakeP384Key::from_label("fake nvidia intermediate");
    let device = FakeP384Key::from_label("fake nvidia device");
    let leaf = FakeP384Key::from_label("fake nvidia leaf");
    let template =
        |serial: u8, issuer: &str, subject: &str, key: &FakeP384Key, extensions: Vec<Extension>| {
            CertificateTemplate {
                serial: vec![serial],
                issuer: name(issuer),
                subject: name(subject),
                not_before: NOT_BEFORE,
                not_after: NOT_AFTER,
                subject_spki: key.spki_der(),
                extensions,
            }
        };
    let root_der = issue_certificate(
        &template(
            1,
            "FAKE Device Identity CA",
            "FAKE Device Identity CA",
            &root,
            vec![
                Extension::basic_constraints(true, None),
                Extension::key_usage(&[5, 6]),
            ],
        ),
        Signer::P384(&root),
        false,
    );
    let int_der = issue_certificate(
        &template(
            2,
            "FAKE Device Identity CA",
            "FAKE GH100 Identity",
            &int,
            vec![
                Extension::basic_constraints(true, recipe.intermediate_path_len),
                Extension::key_usage(&[5, 6]),
            ],
        ),
        Signer::P384(&root),
        false,
    );
    let device_der = issue_certificate(
        &template(
            3,
            "FAKE GH100 Identity",
            "GH100 A01 GSP BROM",
            &device,
            vec![
                Extension::basic_constraints(recipe.device_ca.0, recipe.device_ca.1),
                Extension::key_usage(&recipe.device_key_usage),
            ],
        ),
        Signer::P384(&int),
        false,
    );
    let leaf_der = issue_certificate(
        &template(
            4,
            "GH100 A01 GSP BROM",
            "GH100 A01 GSP FMC LF",
            &leaf,
            vec![
                Extension::key_usage(&recipe.leaf_key_usage),
                tcb_info(&recipe.leaf_fwid),
            ],
        ),
        Signer::P384(&device),
        false,
    );
    Fake {
        chain: vec![leaf_der, device_der, int_der, root_der],
        leaf,
    }
}

/// Evidence with these fields, signed by `key`.
fn evidence(key: &FakeP384Key, nonce: [u8; 32], fwid: [u8; 48]) -> Vec<u8> {
    evidence_with(key, nonce, fwid, &[])
}

/// Evidence with these fields and extra opaque fields, signed by `key`.
fn evidence_with(
    key: &FakeP384Key,
    nonce: [u8; 32],
    fwid: [u8; 48],
    extra: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut b = vec![0x11, 0xE0, 0x01, 0xFF];
    b.extend(nonce);
    b.push(0);
    b.extend([0x11, 0x60, 0x00, 0x00, 2]);
    let mut record = Vec::new();
    for index in [1u8, 2] {
        record.extend([index, 0x01, 51, 0, 0x01, 48, 0]);
        record.extend([index; 48]);
    }
    b.extend(&(record.len() as u32).to_le_bytes()[..3]);
    b.extend(&record);
    b.extend([0x77; 32]);
    let mut opaque = Vec::new();
    let fields = [(3u16, &b"570.00.00\0"[..]), (20, &fwid[..])];
    for &(t, v) in fields.iter().chain(extra) {
        opaque.extend(t.to_le_bytes());
        opaque.extend((v.len() as u16).to_le_bytes());
        opaque.extend(v);
    }
    b.extend((opaque.len() as u16).to_le_bytes());
    b.extend(opaque);
    let signature = key.sign_raw(&b);
    b.extend(signature);
    b
}

fn anchors_for(fake: &Fake) -> NvidiaTrustAnchors {
    NvidiaTrustAnchors::nvidia().dangerous_trust_device_root(fake.chain.last().unwrap().clone())
}

fn outcome(recipe: &Recipe, nonce: [u8; 32], fwid: [u8; 48]) -> Result<(), Reason> {
    let fake = build(recipe);
    let e = evidence(&fake.leaf, nonce, fwid);
    nvidia::verify(
        &e,
        &fake.chain,
        ExpectedNonce::Exactly(NONCE),
        &anchors_for(&fake),
        at(),
    )
    .map(|_| ())
    .map_err(|e| {
        eprintln!("  {e}");
        e.reason
    })
}

#[test]
fn a_well_formed_fake_chain_verifies_only_when_its_root_is_trusted() {
    let recipe = Recipe::default();
    let fake = build(&recipe);
    let e = evidence(&fake.leaf, NONCE, recipe.leaf_fwid);
    let v = nvidia::verify(
        &e,
        &fake.chain,
        ExpectedNonce::Exactly(NONCE),
        &anchors_for(&fake),
        at(),
    )
    .unwrap();
    let claims = v.claims();
    assert_eq!(claims.driver_version.as_deref(), Some("570.00.00"));
    assert_eq!(claims.hwmodel, "GH100 A01 GSP BROM");
    assert_eq!(claims.measurements.len(), 2);
    // NVIDIA's roots only: the FAKE root is not trusted.
    let err = nvidia::verify(
        &e,
        &fake.chain,
        ExpectedNonce::Exactly(NONCE),
        &NvidiaTrustAnchors::nvidia(),
        at(),
    )
    .unwrap_err();
    assert_eq!(err.reason, Reason::UntrustedRoot);
}

#[test]
fn a_signed_fwid_mismatch_and_a_signed_wrong_nonce_are_rejected() {
    let recipe = Recipe::default();
    assert_eq!(outcome(&recipe, NONCE, recipe.leaf_fwid), Ok(()));
    assert_eq!(
        outcome(&recipe, NONCE, [0xF2; 48]),
        Err(Reason::GpuFwidMismatch)
    );
    assert_eq!(
        outcome(&recipe, [0x43; 32], recipe.leaf_fwid),
        Err(Reason::GpuNonceMismatch)
    );
}

#[test]
fn certificate_constraints_are_enforced() {
    let ok = Recipe::default();
    let fwid = ok.leaf_fwid;
    let cases = [
        (
            "device certificate is not a CA",
            Recipe {
                device_ca: (false, None),
                ..ok.clone()
            },
        ),
        (
            "device certificate may not sign certificates",
            Recipe {
                device_key_usage: vec![0],
                ..ok.clone()
            },
        ),
        (
            "intermediate pathLen 0 with the device CA below it",
            Recipe {
                intermediate_path_len: Some(0),
                ..ok.clone()
            },
        ),
        (
            "leaf may not sign data",
            Recipe {
                leaf_key_usage: vec![5],
                ..ok.clone()
            },
        ),
    ];
    for (what, recipe) in cases {
        eprintln!("{what}");
        assert_eq!(
            outcome(&recipe, NONCE, fwid),
            Err(Reason::CertificateConstraintViolated),
            "{what}"
        );
    }
    // pathLen 1 leaves room for the device CA: accepted.
    let room = Recipe {
        intermediate_path_len: Some(1),
        ..ok
    };
    assert_eq!(outcome(&room, NONCE, fwid), Ok(()));
}

#[test]
fn a_signed_but_malformed_opaque_field_is_rejected_at_verification() {
    let recipe = Recipe::default();
    let fake = build(&recipe);
    let verify = |extra: &[(u16, &[u8])]| {
        let e = evidence_with(&fake.leaf, NONCE, recipe.leaf_fwid, extra);
        nvidia::verify(
            &e,
            &fake.chain,
            ExpectedNonce::Exactly(NONCE),
            &anchors_for(&fake),
            at(),
        )
    };
    // A VBIOS version of 7 bytes, a project name that is not ASCII: the signature holds,
    // the claims could not be read, so the evidence is rejected.
    for extra in [&[(6u16, &[0u8; 7][..])][..], &[(17, &[0xFF, 0][..])]] {
        assert_eq!(verify(extra).unwrap_err().reason, Reason::InvalidField);
    }
    // An unknown field is kept raw.
    let v = verify(&[(99, &[1, 2, 3][..])]).unwrap();
    assert_eq!(v.claims().other_opaque_fields[&99], "010203");
}
