//! Every refusal the client promises, each with its reason code, and each checked on the
//! server side: no prompt byte arrived (for refusals inside the handshake, no application
//! byte at all).

mod common;

use attestation::binding::PolicyFile;
use attestation::Reason;
use client::{ClientError, Connector, Target};
use common::{fake_runtime, plain_http_server, temp_dir, FakeEvidence};

fn target(addr: std::net::SocketAddr) -> Target {
    Target {
        host: addr.ip().to_string(),
        port: addr.port(),
    }
}

fn policy(text: &str) -> PolicyFile {
    PolicyFile::from_toml(text).unwrap()
}

fn reason(e: ClientError) -> Reason {
    match e {
        ClientError::Evidence(r) => r.reason,
        other => panic!("expected an evidence refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_their_reason_and_nothing_reaches_the_server() {
    let dir = temp_dir("refusals");
    let fake = FakeEvidence::new(&dir.join("tee"));
    let good_policy = policy(&fake.policy_text());
    let claims = fake.claims_for(&fake.tls_key, None);
    let genuine = fake.bundle(&claims, |rd| fake.report(rd));

    // Control: the genuine fake is accepted (so each refusal below is the one change).
    let server = fake_runtime(&fake.tls_key, &genuine, genuine.to_cbor()).await;
    let conn = Connector::new(good_policy.clone())
        .connect(&target(server.addr), None)
        .await
        .expect("the genuine fake verifies");
    assert_eq!(conn.attested.claims(), &claims);
    drop(conn);

    // Each case: (what, policy, server key, bundle, expected reason).
    let other_measurement = fake
        .policy_text()
        .replace(&hex::encode(fake.tee.measurement()), &"ab".repeat(48));
    let tcb = attestation::snp::TcbVersion::from_raw(
        fake.tee.reported_tcb(),
        attestation::snp::Product::Genoa,
    );
    let higher_tcb = fake.policy_text().replace(
        &format!("snp = {}, microcode", tcb.snp),
        &format!("snp = {}, microcode", tcb.snp + 1),
    );
    let untrusted_root = fake.policy_text().replace(
        &hex::encode(attestation::x509::sha256(fake.tee.ark_der())),
        &"00".repeat(32),
    );
    let debug_bundle = fake.bundle(&claims, |rd| {
        fake.tee.debug_report(rd, &common::LAUNCH_DIGEST)
    });
    // A man in the middle: genuine evidence (binding the real key), its own TLS key.
    let mitm_key = rcgen::KeyPair::generate().unwrap();
    let cases: Vec<(
        &str,
        String,
        &rcgen::KeyPair,
        &attestation::bundle::EvidenceBundle,
        Reason,
    )> = vec![
        (
            "measurement not in the policy",
            other_measurement,
            &fake.tls_key,
            &genuine,
            Reason::MeasurementMismatch,
        ),
        (
            "debug in the report",
            fake.policy_text(),
            &fake.tls_key,
            &debug_bundle,
            Reason::DebugNotAllowed,
        ),
        (
            "TCB below the minimum",
            higher_tcb,
            &fake.tls_key,
            &genuine,
            Reason::TcbBelowMinimum,
        ),
        (
            "a MITM key",
            fake.policy_text(),
            &mitm_key,
            &genuine,
            Reason::TlsKeyNotBound,
        ),
        (
            "simulated root not trusted",
            untrusted_root,
            &fake.tls_key,
            &genuine,
            Reason::SimulatedRootNotTrusted,
        ),
    ];
    for (what, policy_text, key, bundle, expected) in cases {
        let server = fake_runtime(key, bundle, bundle.to_cbor()).await;
        let err = Connector::new(policy(&policy_text))
            .connect(&target(server.addr), None)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(reason(err), expected, "{what}");
        // Once the server has seen the connection end, it has everything the client sent.
        server.wait_closed(1).await;
        assert!(
            server.received.lock().unwrap().is_empty(),
            "{what}: the server received application bytes"
        );
    }

    // Freshness asked for: the server answers with stale evidence (another nonce) or with
    // evidence carrying no nonce. Only the attestation request was sent, no prompt.
    let stale = fake.bundle(&fake.claims_for(&fake.tls_key, Some(vec![9; 32])), |rd| {
        fake.report(rd)
    });
    for (what, reply) in [
        ("stale nonce", stale.to_cbor()),
        ("missing nonce", genuine.to_cbor()),
    ] {
        let server = fake_runtime(&fake.tls_key, &genuine, reply).await;
        let err = Connector::new(good_policy.clone())
            .connect(&target(server.addr), Some(&[7; 32]))
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(reason(err), Reason::NonceMismatch, "{what}");
        server.wait_closed(1).await;
        let received = String::from_utf8_lossy(&server.received.lock().unwrap()).into_owned();
        assert!(
            received.starts_with("GET /v1/attestation?nonce="),
            "{what}: {received}"
        );
        assert!(!received.contains("chat/completions"), "{what}");
    }

    // A plain, non-TLS server: refused as not TLS; it saw only our ClientHello.
    let plain = plain_http_server().await;
    let err = Connector::new(good_policy.clone())
        .connect(&target(plain.addr), None)
        .await
        .err()
        .expect("a plain-HTTP server is refused");
    assert!(matches!(err, ClientError::NotTls(_)), "{err}");
    assert_eq!(err.code(), "not_tls");
    plain.wait_closed(1).await;
    let received = plain.received.lock().unwrap().clone();
    assert_eq!(
        received.first(),
        Some(&0x16),
        "only a TLS handshake record was sent"
    );
    assert!(!String::from_utf8_lossy(&received).contains("POST"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_is_cached_per_certificate() {
    let dir = temp_dir("cache");
    let fake = FakeEvidence::new(&dir.join("tee"));
    let claims = fake.claims_for(&fake.tls_key, None);
    let genuine = fake.bundle(&claims, |rd| fake.report(rd));
    let server = fake_runtime(&fake.tls_key, &genuine, genuine.to_cbor()).await;
    let connector = Connector::new(policy(&fake.policy_text()));
    let first = connector.connect(&target(server.addr), None).await.unwrap();
    assert!(!first.from_cache);
    let second = connector.connect(&target(server.addr), None).await.unwrap();
    assert!(second.from_cache);
    // A server with another key (another certificate) is verified afresh, and refused
    // here because its evidence binds the first key.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other = fake_runtime(&other_key, &genuine, genuine.to_cbor()).await;
    let err = connector
        .connect(&target(other.addr), None)
        .await
        .err()
        .unwrap();
    assert_eq!(reason(err), Reason::TlsKeyNotBound);
    connector.clear_cache();
    let third = connector.connect(&target(server.addr), None).await.unwrap();
    assert!(!third.from_cache);
    let _ = std::fs::remove_dir_all(&dir);
}
