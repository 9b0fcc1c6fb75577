//! `veritee chat` checks its answer's receipt, and `veritee audit-bundle` saves the
//! verified runtime's bundle, which then verifies offline: the real runtime in
//! simulated-TEE mode on the real model.

mod common;

use common::{start_runtime_launched, temp_dir};
use std::process::Command;

#[test]
fn chat_checks_its_receipt_and_the_saved_audit_bundle_verifies() {
    let dir = temp_dir("audit-bundle");
    // The audit routes answer only the auditor whose token the launch configuration names.
    let token = "an-auditor-token-for-this-test";
    let token_file = dir.join("auditor.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let launch = dir.join("launch.toml");
    std::fs::write(
        &launch,
        format!(
            "auditor_token_sha256 = \"{}\"\n",
            hex::encode(attestation::x509::sha256(token.as_bytes()))
        ),
    )
    .unwrap();
    let (addr, _stop) = start_runtime_launched(&dir, false, Some(launch));
    let url = format!("https://{addr}");
    let policy = dir.join("policy.toml");
    let veritee = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_veritee"))
            .args(args)
            .output()
            .expect("the veritee binary runs")
    };
    let chat = veritee(&[
        "chat",
        &url,
        "--policy",
        policy.to_str().unwrap(),
        "-m",
        "Say hello.",
        "--max-tokens",
        "6",
    ]);
    let stderr = String::from_utf8_lossy(&chat.stderr);
    assert!(chat.status.success(), "{stderr}");
    assert!(stderr.contains("[receipt seq 0 verified:"), "{stderr}");

    let out = dir.join("audit.cbor");
    // Another token is refused by the runtime, and nothing is written.
    let wrong = dir.join("wrong.token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let mut args = [
        "audit-bundle",
        &url,
        "--policy",
        policy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--auditor-token",
        wrong.to_str().unwrap(),
    ];
    let refused = veritee(&args);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!out.exists());
    args[7] = token_file.to_str().unwrap();
    let saved = veritee(&args);
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let bundle = attestation::audit::AuditBundle::from_cbor(&std::fs::read(&out).unwrap()).unwrap();
    let policy = client::load_policy(&policy).unwrap();
    let now = attestation::Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let report = attestation::audit::verify_bundle(&bundle, &policy, now, None).unwrap();
    assert_eq!(report.jobs, 1);
    assert!(report.output_tokens >= 1 && report.output_tokens <= 6);
    // An existing file is never overwritten.
    let again = veritee(&args);
    assert_eq!(again.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
