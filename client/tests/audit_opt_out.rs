//! Opting out of auditing, through the real runtime (simulated TEE, real model) launched
//! with an auditor key: `veritee chat --no-audit` and `veritee proxy --no-audit` send
//! `"veritee_audit": false`, the receipt then says `audited: false` and no transcript is
//! sealed; without them (or with a request's own `"veritee_audit": true` through the
//! proxy) the job is audited and its transcript opens with the auditor's key.
//! (The bundle is read from the runtime's receipt log, as `export-audit` reads it.)

mod common;

use attestation::audit::{AuditBundle, TranscriptOpener};
use attestation::bundle::EvidenceBundle;
use attestation::receipt::ReceiptClaims;
use attestation::{transcript, Rejection, Timestamp};
use common::{raw_request, start_proxy_with, start_runtime_launched, temp_dir};
use std::process::Command;

fn now() -> Timestamp {
    Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

#[test]
fn opting_out_of_audit_seals_no_transcript() {
    let dir = temp_dir("audit-opt-out");
    let (secret, public) = transcript::generate_auditor_keypair();
    let launch = dir.join("launch.toml");
    std::fs::write(
        &launch,
        format!("auditor_hpke_public_key = \"{}\"\n", hex::encode(public)),
    )
    .unwrap();
    let state = dir.join("state");
    let (addr, _stop) = start_runtime_launched(&state, false, Some(launch));
    let url = format!("https://{addr}");
    let policy = state.join("policy.toml");
    let policy_text = std::fs::read_to_string(&policy).unwrap();
    assert!(
        policy_text.contains(&format!(
            "auditor_hpke_keys = [\"{}\"]",
            hex::encode(public)
        )),
        "the launch's policy pins its auditor key:\n{policy_text}"
    );
    let veritee = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_veritee"))
            .args(args)
            .output()
            .expect("the veritee binary runs")
    };
    let chat = |extra: &[&str]| {
        let mut args = vec![
            "chat",
            &url,
            "--policy",
            policy.to_str().unwrap(),
            "-m",
            "Say hi.",
            "--max-tokens",
            "3",
        ];
        args.extend_from_slice(extra);
        let out = veritee(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    // seq 0: opted out; seq 1: audited.
    let stderr = chat(&["--no-audit"]);
    assert!(stderr.contains("[receipt seq 0 verified"), "{stderr}");
    assert!(stderr.contains("not audited"), "{stderr}");
    let stderr = chat(&[]);
    assert!(stderr.contains("[receipt seq 1 verified"), "{stderr}");
    assert!(stderr.contains("audited (transcript sealed"), "{stderr}");

    // seq 2: through `proxy --no-audit`; seq 3: a request that says its own choice.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proxy = start_proxy_with(&url, &policy, &["--no-audit"]);
    for own in [None, Some(true)] {
        let mut body = serde_json::json!({
            "model": "SmolLM2-135M-Instruct.Q4_1",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2,
        });
        if let Some(own) = own {
            body["veritee_audit"] = own.into();
        }
        let reply = rt.block_on(raw_request(&proxy.base, &body.to_string()));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    drop(proxy);

    // What `export-audit` would hand the auditor: the log on disk (read-only here; every
    // record was durable before its answer came back).
    let root = state.join(enclave::startup::RECEIPTS_DIR);
    let instances = enclave::receipt_log::list_instances(&root).unwrap();
    let [instance] = instances.as_slice() else {
        panic!("one runtime instance: {instances:?}");
    };
    let section = enclave::audit_export::section_of(&root.join(hex::encode(instance))).unwrap();
    let bundle = AuditBundle {
        sections: vec![section],
    };
    let policy = client::load_policy(&policy).unwrap();
    let [section] = bundle.sections.as_slice() else {
        panic!("one runtime instance");
    };
    let attested = EvidenceBundle::from_cbor(&section.evidence)
        .unwrap()
        .verify_with(&policy, now())
        .unwrap();
    let audited: Vec<bool> = section
        .receipts
        .iter()
        .map(|r| attested.verify_receipt(r).unwrap().claims().audited)
        .collect();
    assert_eq!(audited, [false, true, false, true]);
    let sealed: Vec<bool> = section.transcripts.iter().map(Option::is_some).collect();
    assert_eq!(sealed, audited, "a transcript exactly for each audited job");

    // The auditor's view: the audited transcripts open and match their receipts.
    let open = |sealed: &[u8], claims: &ReceiptClaims| -> Result<(), Rejection> {
        transcript::check_against_receipt(&transcript::open(sealed, &secret)?, claims)
    };
    let report =
        attestation::audit::verify_bundle(&bundle, &policy, now(), Some(&open as TranscriptOpener))
            .unwrap();
    let t = &report.sections[0].transcripts;
    assert_eq!(
        (t.audited_jobs, t.not_audited, t.present, t.opened),
        (2, 2, 2, 2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
