//! OCSP responses (RFC 6960) for the simulated GPU device chain, built and signed here with
//! the simulated keys: good, revoked, wrong signer, stale, another serial, malformed.

use attestation::nvidia::{verify, verify_with_ocsp, ExpectedNonce, NvidiaTrustAnchors};
use attestation::{Reason, Timestamp};
use sim::der;
use sim::keys::FakeP384Key;
use sim::nvidia::SimulatedGpus;
use x509_parser::prelude::*;

const SEED: &str = "gpu-ocsp test";
const NONCE: [u8; 32] = [7; 32];
// 2026-01-01, inside the simulated chain's validity.
const AT: i64 = 1_767_225_600;

fn gpus() -> &'static SimulatedGpus {
    static GPUS: std::sync::OnceLock<SimulatedGpus> = std::sync::OnceLock::new();
    GPUS.get_or_init(|| SimulatedGpus::from_seed(SEED, 1))
}

fn anchors() -> NvidiaTrustAnchors {
    NvidiaTrustAnchors::empty().dangerous_trust_device_root(gpus().root_der().to_vec())
}

fn key(label: &str) -> FakeP384Key {
    FakeP384Key::from_label(&format!("{SEED}/{label}"))
}

fn sha1(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

#[derive(Clone)]
enum Status {
    Good,
    Revoked(i64),
    Unknown,
}

/// A response for chain certificate `index` (1: device, 2: GH100 identity).
#[derive(Clone)]
struct Ocsp {
    index: usize,
    status: Status,
    this_update: i64,
    next_update: Option<i64>,
    serial: Option<Vec<u8>>,
    /// Key label that signs; `None`: the certificate's issuer.
    signer: Option<&'static str>,
    /// A delegated responder certificate embedded in the response (its key signs).
    responder: Option<(Vec<u8>, &'static str)>,
}

impl Ocsp {
    fn good(index: usize) -> Self {
        Ocsp {
            index,
            status: Status::Good,
            this_update: AT - 3600,
            next_update: Some(AT + 3600),
            serial: None,
            signer: None,
            responder: None,
        }
    }

    fn build(&self) -> Vec<u8> {
        let chain = gpus().chain_der(0);
        let (_, cert) = X509Certificate::from_der(&chain[self.index]).unwrap();
        let (_, issuer) = X509Certificate::from_der(&chain[self.index + 1]).unwrap();
        let serial = self
            .serial
            .clone()
            .unwrap_or_else(|| cert.raw_serial().to_vec());
        let cert_id = der::seq(&[
            &der::seq(&[&der::oid("1.3.14.3.2.26"), &der::null()]),
            &der::octet_string(&sha1(cert.issuer().as_raw())),
            &der::octet_string(&sha1(&issuer.public_key().subject_public_key.data)),
            &der::tlv(0x02, &serial),
        ]);
        let status = match self.status {
            Status::Good => vec![0x80, 0x00],
            Status::Unknown => vec![0x82, 0x00],
            Status::Revoked(t) => der::tlv(
                0xa1,
                &[
                    der::generalized_time(t),
                    der::explicit(0, &der::enumerated(1)),
                ]
                .concat(),
            ),
        };
        let mut single = vec![cert_id, status, der::generalized_time(self.this_update)];
        if let Some(n) = self.next_update {
            single.push(der::explicit(0, &der::generalized_time(n)));
        }
        let single_refs: Vec<&[u8]> = single.iter().map(Vec::as_slice).collect();
        let issuer_label = ["", "nvidia-gh100-identity", "nvidia-root"][self.index];
        let (signer, signer_key_hash) = match &self.responder {
            Some((cert, label)) => {
                let (_, c) = X509Certificate::from_der(cert).unwrap();
                (key(label), sha1(&c.public_key().subject_public_key.data))
            }
            None => (
                key(self.signer.unwrap_or(issuer_label)),
                sha1(&issuer.public_key().subject_public_key.data),
            ),
        };
        let tbs = der::seq(&[
            &der::explicit(2, &der::octet_string(&signer_key_hash)),
            &der::generalized_time(self.this_update),
            &der::seq(&[&der::seq(&single_refs)]),
        ]);
        let mut basic_parts = vec![
            tbs.clone(),
            der::seq(&[&der::oid("1.2.840.10045.4.3.3")]),
            der::bit_string(&signer.sign_der(&tbs)),
        ];
        if let Some((cert, _)) = &self.responder {
            basic_parts.push(der::explicit(0, &der::seq(&[cert])));
        }
        let basic_refs: Vec<&[u8]> = basic_parts.iter().map(Vec::as_slice).collect();
        let basic = der::seq(&basic_refs);
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
}

fn run(ocsp: &[Ocsp]) -> Result<bool, attestation::Rejection> {
    let responses: Vec<Vec<u8>> = ocsp.iter().map(Ocsp::build).collect();
    verify_with_ocsp(
        &gpus().evidence(0, NONCE),
        gpus().chain_der(0),
        &responses,
        ExpectedNonce::Exactly(NONCE),
        &anchors(),
        Timestamp::from_unix(AT),
    )
    .map(|v| {
        assert_eq!(v.claims().revocation_checked, v.revocation_checked());
        v.revocation_checked()
    })
}

fn reason(ocsp: &[Ocsp]) -> (Reason, String) {
    let e = run(ocsp).unwrap_err();
    (e.reason, e.detail)
}

#[test]
fn good_responses_for_every_cert_below_the_root_check_revocation() {
    assert!(run(&[Ocsp::good(1), Ocsp::good(2)]).unwrap());
}

#[test]
fn no_or_partial_responses_leave_revocation_unchecked() {
    let plain = verify(
        &gpus().evidence(0, NONCE),
        gpus().chain_der(0),
        ExpectedNonce::Exactly(NONCE),
        &anchors(),
        Timestamp::from_unix(AT),
    )
    .unwrap();
    assert!(!plain.revocation_checked());
    assert!(!run(&[]).unwrap());
    assert!(!run(&[Ocsp::good(1)]).unwrap());
}

#[test]
fn a_revoked_certificate_is_refused_with_its_time() {
    let revoked_at = AT - 86_400;
    let (r, detail) = reason(&[
        Ocsp::good(1),
        Ocsp {
            status: Status::Revoked(revoked_at),
            ..Ocsp::good(2)
        },
    ]);
    assert_eq!(r, Reason::CertificateRevoked);
    assert!(detail.contains("2025-12-31T00:00:00Z"), "{detail}");
    assert!(
        detail.contains("SIMULATED NVIDIA GH100 Identity"),
        "{detail}"
    );
}

#[test]
fn an_unknown_status_is_refused() {
    let (r, _) = reason(&[Ocsp {
        status: Status::Unknown,
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspStatusUnknown);
}

#[test]
fn a_response_signed_by_another_key_is_refused() {
    let (r, _) = reason(&[Ocsp {
        signer: Some("someone else"),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspSignatureInvalid);
    // The root signing for the device certificate (issued by the GH100 identity) without
    // a delegation: its signature does not verify with the issuer's key either.
    let (r, _) = reason(&[Ocsp {
        signer: Some("nvidia-root"),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspSignatureInvalid);
}

#[test]
fn a_stale_or_future_response_is_refused() {
    let (r, _) = reason(&[Ocsp {
        this_update: AT - 7200,
        next_update: Some(AT - 1),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::CollateralExpired);
    let (r, _) = reason(&[Ocsp {
        next_update: Some(AT),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::CollateralExpired, "nextUpdate is exclusive");
    let (r, _) = reason(&[Ocsp {
        next_update: None,
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::CollateralExpired);
    let (r, _) = reason(&[Ocsp {
        this_update: AT + 1,
        next_update: Some(AT + 3600),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::CollateralNotYetValid);
}

#[test]
fn a_response_for_another_serial_is_refused() {
    let (r, _) = reason(&[Ocsp {
        serial: Some(vec![0x55, 0x66]),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspCertIdMismatch);
}

#[test]
fn malformed_der_is_refused_with_where() {
    let good = Ocsp::good(1).build();
    for (bytes, what) in [
        (good[..good.len() - 1].to_vec(), "truncated"),
        ([good.clone(), vec![0]].concat(), "trailing"),
        (vec![0x30, 0x80, 0, 0], "indefinite length"),
        (Vec::new(), "empty"),
    ] {
        let e = verify_with_ocsp(
            &gpus().evidence(0, NONCE),
            gpus().chain_der(0),
            &[bytes],
            ExpectedNonce::Exactly(NONCE),
            &anchors(),
            Timestamp::from_unix(AT),
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::MalformedOcsp, "{what}: {e}");
        assert!(e.detail.contains("offset"), "{what}: {}", e.detail);
        assert!(
            e.detail.contains("OCSP response #0"),
            "{what}: {}",
            e.detail
        );
    }
    // An unsuccessful responseStatus (tryLater) carries no status.
    let try_later = der::seq(&[&der::enumerated(3)]);
    let e = verify_with_ocsp(
        &gpus().evidence(0, NONCE),
        gpus().chain_der(0),
        &[try_later],
        ExpectedNonce::Exactly(NONCE),
        &anchors(),
        Timestamp::from_unix(AT),
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::OcspUnsuccessful);
}

#[test]
fn ocsp_reason_codes_are_stable() {
    for (r, code) in [
        (Reason::MalformedOcsp, "malformed_ocsp"),
        (Reason::OcspUnsuccessful, "ocsp_unsuccessful"),
        (Reason::OcspSignatureInvalid, "ocsp_signature_invalid"),
        (Reason::OcspResponderUntrusted, "ocsp_responder_untrusted"),
        (Reason::OcspCertIdMismatch, "ocsp_cert_id_mismatch"),
        (Reason::OcspStatusUnknown, "ocsp_status_unknown"),
        (Reason::OcspMissing, "ocsp_missing"),
    ] {
        assert_eq!(r.code(), code);
    }
}

fn gpu_policy(extra: &str) -> attestation::policy::GpuPolicy {
    toml::from_str(&format!(
        "count = 1\narchitectures = [\"hopper\"]\nmin_driver_version = \"any\"\n\
         min_vbios_version = \"any\"\nrim = \"dangerous_skip\"\n\
         dangerous_trusted_roots = [\"{}\"]\n{extra}",
        hex::encode(gpus().root_sha256())
    ))
    .unwrap()
}

#[test]
fn policy_revocation_require_needs_ocsp_and_absent_keeps_todays_behaviour() {
    use attestation::policy::GpuRevocation;
    let at = Timestamp::from_unix(AT);
    let verified = |ocsp: &[Ocsp]| {
        let responses: Vec<Vec<u8>> = ocsp.iter().map(Ocsp::build).collect();
        verify_with_ocsp(
            &gpus().evidence(0, NONCE),
            gpus().chain_der(0),
            &responses,
            ExpectedNonce::Exactly(NONCE),
            &anchors(),
            at,
        )
        .unwrap()
    };
    let unchecked = verified(&[]);
    let checked = verified(&[Ocsp::good(1), Ocsp::good(2)]);
    let partial = verified(&[Ocsp::good(2)]);

    // A policy written before the field loads, and skips revocation as before.
    let old = gpu_policy("");
    assert_eq!(old.revocation, GpuRevocation::DangerousSkip);
    assert!(old.appraise_gpu(0, &unchecked, (None, None), at).is_ok());

    let require = gpu_policy("revocation = \"require\"");
    assert_eq!(require.revocation, GpuRevocation::Require);
    for gpu in [&unchecked, &partial] {
        let e = require.appraise_gpu(0, gpu, (None, None), at).unwrap_err();
        assert_eq!(e.reason, Reason::OcspMissing, "{e}");
    }
    assert!(require.appraise_gpu(0, &checked, (None, None), at).is_ok());

    let skip = gpu_policy("revocation = \"dangerous_skip\"");
    assert!(skip.appraise_gpu(0, &unchecked, (None, None), at).is_ok());
    // Misspelt values are refused at load.
    assert!(toml::from_str::<attestation::policy::GpuPolicy>(
        "count = 1\narchitectures = [\"hopper\"]\nmin_driver_version = \"any\"\n\
         min_vbios_version = \"any\"\nrim = \"dangerous_skip\"\ndangerous_trusted_roots = []\n\
         revocation = \"skip\""
    )
    .is_err());
}

/// A delegated responder certificate (key `label`) issued by `issuer_label` under the
/// name `issuer_cn`, with the id-kp-OCSPSigning EKU when `eku`.
fn responder_cert(label: &str, issuer_label: &str, issuer_cn: &str, eku: bool) -> Vec<u8> {
    use sim::x509::{
        issue_certificate, CertificateTemplate, DistinguishedName, Extension, NameAttribute, Signer,
    };
    let name = |cn: &str| {
        DistinguishedName(vec![
            NameAttribute::CommonName(cn.into()),
            NameAttribute::Organization("SIMULATED NVIDIA (never trusted by default)".into()),
        ])
    };
    let mut extensions = vec![Extension::key_usage(&[0])];
    if eku {
        extensions.push(Extension::new(
            "2.5.29.37",
            false,
            der::seq(&[&der::oid("1.3.6.1.5.5.7.3.9")]),
        ));
    }
    issue_certificate(
        &CertificateTemplate {
            serial: vec![0x77],
            issuer: name(issuer_cn),
            subject: name("SIMULATED NVIDIA OCSP Responder"),
            not_before: AT - 86_400,
            not_after: AT + 86_400,
            subject_spki: key(label).spki_der(),
            extensions,
        },
        Signer::P384(&key(issuer_label)),
        false,
    )
}

#[test]
fn a_delegated_responder_needs_the_ocsp_signing_eku_and_a_chain_issuer() {
    const ROOT_CN: &str = "SIMULATED NVIDIA Device Identity CA";
    let delegated = responder_cert("ocsp", "nvidia-root", ROOT_CN, true);
    // Issued by the root, for the device certificate (issued by the GH100 identity) and the
    // GH100 identity (issued by the root): as NVIDIA's verifier accepts it.
    let by = |index| Ocsp {
        responder: Some((delegated.clone(), "ocsp")),
        ..Ocsp::good(index)
    };
    assert!(run(&[by(1), by(2)]).unwrap());
    // Without the EKU.
    let plain = responder_cert("ocsp", "nvidia-root", ROOT_CN, false);
    let (r, _) = reason(&[Ocsp {
        responder: Some((plain, "ocsp")),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspResponderUntrusted);
    // Named as issued by the root, signed by another key.
    let forged = responder_cert("ocsp", "someone else", ROOT_CN, true);
    let (r, _) = reason(&[Ocsp {
        responder: Some((forged, "ocsp")),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspResponderUntrusted);
    // Issued by a CA outside the chain.
    let outside = responder_cert("ocsp", "someone else", "Some Other CA", true);
    let (r, _) = reason(&[Ocsp {
        responder: Some((outside, "ocsp")),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspResponderUntrusted);
    // The delegated certificate embedded but the response signed by another key.
    let (r, _) = reason(&[Ocsp {
        responder: Some((delegated.clone(), "someone else")),
        ..Ocsp::good(1)
    }]);
    assert_eq!(r, Reason::OcspSignatureInvalid);
}
