//! The simulated TEE's evidence goes through the very same verifier as real hardware's:
//! accepted only by a policy that dangerously trusts its development root, refused with
//! `simulated_root_not_trusted` otherwise, and bound to runtime claims like real evidence.

use attestation::binding::{HpkeKey, ReceiptKey, RuntimeClaims, COSE_ALG_EDDSA};
use attestation::bundle::{
    EvidenceBundle, CERT_MEDIA_TYPE, IND_ENDORSEMENT, IND_EVIDENCE, SNP_REPORT_MEDIA_TYPE,
};
use attestation::policy::{Hex, Policy};
use attestation::{Reason, Timestamp};
use sim::tee::SimulatedSnp;

fn claims() -> RuntimeClaims {
    RuntimeClaims {
        tls_spki_sha256: [9; 32],
        receipt_key: ReceiptKey {
            alg: COSE_ALG_EDDSA,
            public_key: vec![8; 32],
        },
        auditor_hpke_key: Some(HpkeKey {
            kem: attestation::binding::HPKE_KEM_X25519_SHA256,
            public_key: vec![7; 32],
        }),
        model_digest: [6; 32],
        runtime_version: "test".into(),
        launch_config_digest: [5; 32],
        nonce: None,
        gpu_evidence_digest: None,
    }
}

fn bundle(tee: &SimulatedSnp, claims_bytes: Vec<u8>, report_data: [u8; 64]) -> EvidenceBundle {
    let mut b = EvidenceBundle::new(claims_bytes);
    b.push(
        "report",
        SNP_REPORT_MEDIA_TYPE,
        tee.report(&report_data, &[5; 32]),
        IND_EVIDENCE,
    );
    for (label, der) in [
        ("vcek", tee.vcek_der()),
        ("ask", tee.ask_der()),
        ("ark", tee.ark_der()),
    ] {
        b.push(label, CERT_MEDIA_TYPE, der.to_vec(), IND_ENDORSEMENT);
    }
    b
}

fn now() -> Timestamp {
    Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

#[test]
fn simulated_evidence_needs_a_policy_that_dangerously_trusts_its_root() {
    let dir = std::env::temp_dir().join(format!("veritee-simtee-{}", std::process::id()));
    let tee = SimulatedSnp::open_or_create(&dir).unwrap();
    let c = claims();
    let bytes = c.to_cbor();
    let b = bundle(&tee, bytes.clone(), c.report_data());
    // Round trip through the wire format first.
    let b = EvidenceBundle::from_cbor(&b.to_cbor()).unwrap();

    let mut policy = Policy::default_verifier();
    assert_eq!(
        b.verify(&policy, now()).unwrap_err().reason,
        Reason::SimulatedRootNotTrusted
    );
    let root = attestation::x509::sha256(tee.ark_der());
    policy.dangerous_trusted_roots = vec![Hex(root)];
    let attested = b.verify(&policy, now()).expect("trusted dev root verifies");
    assert_eq!(attested.claims(), &c);
    assert_eq!(attested.evidence().report_data(), c.report_data());

    // The same report with other claims: not bound.
    let other = RuntimeClaims {
        model_digest: [1; 32],
        ..c.clone()
    };
    let mut forged = b.clone();
    forged.claims = other.to_cbor();
    assert_eq!(
        forged.verify(&policy, now()).unwrap_err().reason,
        Reason::ClaimsNotBound
    );
    // The sim crate's OU marker is the one the verifier looks for.
    assert_eq!(
        sim::tee::SIMULATED_ORG_UNIT,
        attestation::x509::SIMULATED_ORG_UNIT
    );
    let _ = std::fs::remove_dir_all(&dir);
}
