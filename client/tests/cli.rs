//! The `veritee` command line itself: sampling flags it refuses before connecting, and
//! output to a reader that went away.

mod common;

use common::{fake_runtime, temp_dir, FakeEvidence};
use std::process::{Command, Stdio};

/// Issue 13: `--temperature NaN` was accepted (and written as JSON `null`, which the
/// runtime reads as its default 1). Non-finite or out-of-range sampling flags are usage
/// errors (exit 2), refused before anything is sent.
#[test]
fn chat_refuses_bad_sampling_flags() {
    for (flag, value) in [
        ("--temperature", "NaN"),
        ("--temperature", "inf"),
        ("--temperature", "-0.5"),
        ("--temperature", "2.5"),
        ("--temperature", "warm"),
        ("--max-tokens", "0"),
        ("--max-tokens", "-3"),
    ] {
        // The URL is never contacted: port 9 on loopback (discard) is not listened on.
        let out = Command::new(env!("CARGO_BIN_EXE_veritee"))
            .args([
                "chat",
                "https://127.0.0.1:9",
                "--policy",
                "/nonexistent/policy.toml",
                "-m",
                "hi",
                &format!("{flag}={value}"),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(
            !stderr.contains("policy"),
            "refused before the policy is read: {stderr}"
        );
    }
}

/// Issue 13: `veritee attest URL | head -1` panicked on the broken pipe (exit 101).
/// Output to a reader that went away is dropped; the exit status is the verification's.
#[test]
fn attest_to_a_closed_pipe_keeps_its_exit_status() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = temp_dir("attest-pipe");
    let fake = FakeEvidence::new(&dir.join("tee"));
    let claims = fake.claims_for(&fake.tls_key, None);
    let genuine = fake.bundle(&claims, |rd| fake.report(rd));
    let server = rt.block_on(fake_runtime(&fake.tls_key, &genuine, genuine.to_cbor()));
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, fake.policy_text()).unwrap();
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veritee"));
        cmd.args(["attest", &format!("https://{}", server.addr), "--policy"])
            .arg(&policy);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end at once: the verification takes longer, so the write fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "--json {json}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 15: `veritee attest` against a runtime with one simulated GPU verifies it under
/// the policy the launch wrote (which requires one GPU) and shows it; a policy requiring
/// two refuses with its reason and exit status 1.
#[test]
fn attest_verifies_a_bound_gpu_and_refuses_a_policy_requiring_two() {
    let dir = temp_dir("attest-gpu");
    let (addr, _stop) = common::start_runtime_full(&dir.join("state"), true, None, 1);
    let policy = dir.join("state/policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("[gpu]\ncount = 1\n"), "{text}");
    let attest = |policy: &std::path::Path, json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veritee"));
        cmd.args(["attest", &format!("https://{addr}"), "--policy"])
            .arg(policy);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = attest(&policy, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "verified");
    assert_eq!(v["gpus"].as_array().unwrap().len(), 1);
    assert_eq!(v["gpus"][0]["architecture"], "Hopper");
    assert_eq!(v["gpus"][0]["nonce_checked"], true);
    assert!(v["runtime"]["gpu_evidence_digest"].is_string());
    let out = attest(&policy, false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gpu 0"), "{stdout}");

    let two = dir.join("two.toml");
    std::fs::write(
        &two,
        text.replace("[gpu]\ncount = 1\n", "[gpu]\ncount = 2\n"),
    )
    .unwrap();
    let out = attest(&two, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gpu_count_below_minimum"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
