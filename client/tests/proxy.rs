//! `veritee proxy` end to end: the official OpenAI Python SDK chats through the proxy with
//! the runtime in simulated-TEE mode serving the real SmolLM2 model; and a proxy whose
//! upstream fails verification answers 502 naming the reason and forwards nothing; and
//! answers without a usage receipt are refused.

mod common;

use common::{
    fake_runtime, raw_request, start_proxy, start_runtime, start_runtime_with, temp_dir,
    FakeEvidence,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned SDK version, installed into a venv the test creates.
const OPENAI_SDK: &str = "openai==3.57.0";

/// A venv with the OpenAI SDK (made with pip on first use), or why it could not be made.
fn openai_python() -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openai-venv");
    let python = venv.join("bin/python");
    let have = Command::new(&python)
        .args([
            "-c",
            "import openai, sys; sys.exit(0 if openai.__version__ == sys.argv[1] else 1)",
        ])
        .arg(OPENAI_SDK.trim_start_matches("openai=="))
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return Err("python3 -m venv failed".into());
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", OPENAI_SDK])
        .status();
    if !installed.is_ok_and(|s| s.success()) {
        return Err(format!("pip install {OPENAI_SDK} failed"));
    }
    Ok(python)
}

#[test]
fn the_openai_sdk_chats_through_the_proxy() {
    let python = openai_python()
        .unwrap_or_else(|why| panic!("the OpenAI SDK test needs its venv (python3, pip): {why}"));
    let dir = temp_dir("proxy-sdk");
    let (addr, _stop) = start_runtime(&dir);
    let proxy = start_proxy(&format!("https://{addr}"), &dir.join("policy.toml"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai/chat_through_proxy.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("{}/v1", proxy.base))
        .arg("SmolLM2-135M-Instruct.Q4_1")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the SDK script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(
        v["models"],
        serde_json::json!(["SmolLM2-135M-Instruct.Q4_1"])
    );
    let content = v["plain_content"].as_str().unwrap();
    assert!(!content.is_empty());
    // Greedy with the same seed: streaming gives the same text, chunk by chunk.
    assert_eq!(v["stream_content"], v["plain_content"]);
    assert!(v["stream_chunks"].as_u64().unwrap() > 3);
    assert_eq!(v["plain_finish"], v["stream_finish"]);
    for usage in [&v["plain_usage"], &v["stream_usage"]] {
        let prompt = usage["prompt_tokens"].as_u64().unwrap();
        let completion = usage["completion_tokens"].as_u64().unwrap();
        assert!(prompt > 10 && (1..=24).contains(&completion), "{usage}");
        assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
    }
    assert_eq!(v["plain_usage"], v["stream_usage"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_proxy_with_an_unverifiable_upstream_answers_502_and_forwards_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = temp_dir("proxy-refusal");
    let fake = FakeEvidence::new(&dir.join("tee"));
    let claims = fake.claims_for(&fake.tls_key, None);
    let genuine = fake.bundle(&claims, |rd| fake.report(rd));
    // A man in the middle: the genuine bundle under another TLS key.
    let mitm_key = rcgen::KeyPair::generate().unwrap();
    let server = rt.block_on(fake_runtime(&mitm_key, &genuine, genuine.to_cbor()));
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, fake.policy_text()).unwrap();
    let proxy = start_proxy(&format!("https://{}", server.addr), &policy);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"SECRET PROMPT"}]}"#;
    let reply = rt.block_on(raw_request(&proxy.base, body));
    assert!(reply.starts_with("HTTP/1.1 502"), "{reply}");
    let json: Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "tls_key_not_bound");
    assert_eq!(json["error"]["type"], "upstream_verification_failed");
    rt.block_on(server.wait_closed(1));
    assert!(
        server.received.lock().unwrap().is_empty(),
        "the upstream received application bytes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn answers_without_a_receipt_are_refused() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = temp_dir("proxy-no-receipts");
    let (addr, _stop) = start_runtime_with(&dir, true);
    let proxy = start_proxy(&format!("https://{addr}"), &dir.join("policy.toml"));
    let body = |stream: bool| {
        serde_json::json!({
            "model": "SmolLM2-135M-Instruct.Q4_1",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4,
            "stream": stream,
        })
        .to_string()
    };
    let plain = rt.block_on(raw_request(&proxy.base, &body(false)));
    assert!(plain.starts_with("HTTP/1.1 502"), "{plain}");
    let json: Value = serde_json::from_str(plain.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "receipt_missing");
    assert_eq!(json["error"]["type"], "upstream_receipt_invalid");
    // A stream has already started: it ends with an error event instead of [DONE].
    let stream = rt.block_on(raw_request(&proxy.base, &body(true)));
    assert!(stream.starts_with("HTTP/1.1 200"), "{stream}");
    assert!(stream.contains("\"code\":\"receipt_missing\""), "{stream}");
    assert!(!stream.contains("[DONE]"), "{stream}");
    let _ = std::fs::remove_dir_all(&dir);
}
