//! Every `[expect]` table under the real-hardware vectors is a test of the
//! `veritee-verify evidence` binary: same inputs, same time, same verdict.
//!
//! The corpus is the repository's `testdata/vectors` (or `VERITEE_VECTORS`); a missing
//! corpus is a failure (see `sim::vectors`).

use attestation::policy::{Permission, Policy};
use serde_json::Value;
use sim::vectors::Expectation;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Vectors whose manifest says "accepted" under a policy that "forbids debug", although the
/// evidence itself allows debugging (read from the bytes, not from here):
/// - go-sev-guest-milan-v2-vcek: guest POLICY = 0xb0000, bit 19 (DEBUG) set;
/// - trustee-tdx-v4-50806f-uptodate: TD_ATTRIBUTES = 01 00 00 10 .., bit 0 (DEBUG) set.
///
/// For these the test asserts both facts: the default policy rejects them with
/// `debug_not_allowed` and the claims show debug on, and under a policy that allows debug
/// (otherwise the default) the manifest's verdict and TCB status hold.
const DEBUG_VECTORS: &[(&str, &str)] = &[
    ("snp", "go-sev-guest-milan-v2-vcek"),
    ("tdx", "trustee-tdx-v4-50806f-uptodate"),
];

fn debug_allowing_policy(vector: &str) -> PathBuf {
    let mut policy = Policy::default_verifier();
    policy.debug = Permission::Allow;
    let path = std::env::temp_dir().join(format!(
        "veritee-debug-policy-{vector}-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, policy.to_toml()).unwrap();
    path
}

fn run_verifier(exp: &Expectation, policy: Option<&Path>) -> (i32, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veritee-verify"));
    command
        .arg("evidence")
        .args(exp.input_paths())
        .args(["--at", &exp.at, "--json"]);
    if let Some(policy) = policy {
        command.arg("--policy").arg(policy);
    }
    let output = command.output().unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {}\n{}",
            exp.dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), json)
}

fn check_platform(platform: &str, min_vectors: usize) {
    let exps = sim::vectors::expectations(platform);
    assert!(
        exps.len() >= min_vectors,
        "only {} {platform} vectors found",
        exps.len()
    );
    for exp in &exps {
        let name = &exp.name;
        let (mut code, mut json) = run_verifier(exp, None);
        if DEBUG_VECTORS.contains(&(platform, name.as_str())) {
            assert_eq!(json["verdict"], "rejected", "{name}: {json:#}");
            assert_eq!(json["reason"], "debug_not_allowed", "{name}: {json:#}");
            assert_eq!(code, 1, "{name}");
            assert_eq!(json["claims"]["debug"], true, "{name}");
            (code, json) = run_verifier(exp, Some(&debug_allowing_policy(name)));
        } else {
            assert_ne!(json["reason"], "debug_not_allowed", "{name}: {json:#}");
        }
        assert_eq!(json["verdict"], exp.verdict.as_str(), "{name}: {json:#}");
        assert_eq!(json["platform"], platform, "{name}");
        if exp.verdict == "accepted" {
            assert_eq!(code, 0, "{name}");
            assert!(json["reason"].is_null(), "{name}");
            assert_eq!(json["claims"]["platform"], platform, "{name}");
        } else {
            assert_eq!(code, 1, "{name}");
        }
        if let Some(status) = &exp.tcb_status {
            assert_eq!(json["claims"]["tcb_status"], status.as_str(), "{name}");
        }
        if let Some(class) = &exp.reason_class {
            assert_eq!(json["reason_class"], class.as_str(), "{name}: {json:#}");
        }
        eprintln!("{name}: {} ({})", exp.verdict, json["reason"]);
    }
    for (_, name) in DEBUG_VECTORS.iter().filter(|(p, _)| *p == platform) {
        assert!(
            exps.iter().any(|e| e.name == *name),
            "{platform}/{name} is missing from the corpus or lost its [expect] table"
        );
    }
    eprintln!(
        "{platform}: {} real-hardware vectors verified through veritee-verify",
        exps.len()
    );
}

#[test]
fn snp_vectors_give_their_expected_verdicts() {
    check_platform("snp", 8);
}

#[test]
fn tdx_vectors_give_their_expected_verdicts() {
    check_platform("tdx", 7);
}
