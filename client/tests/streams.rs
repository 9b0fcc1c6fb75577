//! Streams from a scripted fake runtime (genuine simulated evidence that binds a real
//! receipt key, answers written byte for byte) through `veritee proxy` and `veritee chat`:
//! a correct stream passes; bytes after the receipt event, which the receipt does not
//! cover, are refused; an upstream that fails mid-stream ends the proxied stream with an
//! OpenAI-shaped error event, not a silent cut.

mod common;

use attestation::receipt::{ReceiptClaims, SamplingParams, RECEIPT_EVENT};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use common::{
    chunk, raw_request, scripted_runtime, sse_head, start_proxy, temp_dir, FakeEvidence, FakeReply,
    FakeRequest,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

const HELLO: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n";
const INJECTED: &[u8] =
    b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" INJECTED\"}}]}\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";

fn sha256(b: &[u8]) -> [u8; 32] {
    attestation::x509::sha256(b)
}

/// How the fake misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    /// Events, the receipt event, `[DONE]`: a correct stream.
    Honest,
    /// An extra content event between the receipt event and `[DONE]`.
    EventAfterReceipt,
    /// One event, then the connection is cut.
    CutMidStream,
}

struct Fake {
    addr: SocketAddr,
    policy: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The stream for `request` under `script`, with a receipt signed by `key` over the
/// request as received and every byte before the receipt event.
fn stream(
    script: Script,
    key: &Ed25519KeyPair,
    evidence_sha256: [u8; 32],
    request: &FakeRequest,
) -> FakeReply {
    if script == Script::CutMidStream {
        return FakeReply {
            pieces: vec![sse_head(), chunk(HELLO)],
            close: true,
        };
    }
    let claims = ReceiptClaims {
        job_id: [7; 16],
        issued_at: 1_790_000_001,
        model_digest: common::MODEL_DIGEST,
        request_sha256: sha256(&request.body),
        response_sha256: sha256(HELLO),
        prompt_tokens: 3,
        output_tokens: 2,
        queue_wait_ms: 1,
        wall_start_ms: 1_790_000_000_000,
        wall_end_ms: 1_790_000_000_900,
        device_ms: 40,
        device_share_ppm: 1_000,
        sampling: SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 4,
            repetition_penalty: 1.0,
            seed: 1,
        },
        activation_commitment: [0; 32],
        audited: false,
        evidence_digest: evidence_sha256,
        seq: 0,
        prev_receipt_sha256: [0; 32],
        runtime_instance: [9; 16],
    };
    let receipt = attestation::receipt::sign(&claims, key);
    let event = format!(
        "event: {RECEIPT_EVENT}\ndata: {{\"seq\":0,\"receipt\":\"{}\",\"response_sha256\":\"{}\"}}\n\n",
        base64::engine::general_purpose::STANDARD.encode(&receipt),
        hex::encode(sha256(HELLO))
    );
    let mut pieces = vec![sse_head(), chunk(HELLO), chunk(event.as_bytes())];
    if script == Script::EventAfterReceipt {
        pieces.push(chunk(INJECTED));
    }
    pieces.push(chunk(DONE));
    pieces.push(b"0\r\n\r\n".to_vec());
    FakeReply {
        pieces,
        close: false,
    }
}

async fn fake(label: &str, script: Script) -> Fake {
    let dir = temp_dir(label);
    let evidence = FakeEvidence::new(&dir.join("tee"));
    let key = Arc::new(Ed25519KeyPair::generate().unwrap());
    let claims = evidence.claims_with_receipt_key(
        &evidence.tls_key,
        None,
        key.public_key().as_ref().to_vec(),
    );
    let bundle = evidence.bundle(&claims, |rd| evidence.report(rd));
    let evidence_sha256 = bundle.sha256();
    let addr = scripted_runtime(&evidence.tls_key, &bundle, move |req| {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/v1/chat/completions")
        );
        stream(script, &key, evidence_sha256, req)
    })
    .await;
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, evidence.policy_text()).unwrap();
    Fake {
        addr,
        policy,
        _dir: TempDir(dir),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const BODY: &str =
    r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true}"#;

/// The control: the scripted stream and its receipt are right, so the proxy passes it
/// (minus the receipt event) and ends it with `[DONE]`.
#[test]
fn an_honest_stream_passes_the_proxy() {
    let rt = rt();
    let fake = rt.block_on(fake("stream-honest", Script::Honest));
    let proxy = start_proxy(&format!("https://{}", fake.addr), &fake.policy);
    let reply = rt.block_on(raw_request(&proxy.base, BODY));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("Hello"), "{reply}");
    assert!(reply.contains("data: [DONE]"), "{reply}");
    assert!(!reply.contains(RECEIPT_EVENT), "{reply}");
    assert!(!reply.contains("\"error\""), "{reply}");
}

/// Issue 13: an event between the receipt event and `[DONE]` is not covered by the
/// receipt; the proxy passed it on. Now the stream ends with an error event instead.
#[test]
fn the_proxy_refuses_an_event_after_the_receipt() {
    let rt = rt();
    let fake = rt.block_on(fake("stream-after-receipt", Script::EventAfterReceipt));
    let proxy = start_proxy(&format!("https://{}", fake.addr), &fake.policy);
    let reply = rt.block_on(raw_request(&proxy.base, BODY));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("Hello"), "{reply}");
    assert!(!reply.contains("INJECTED"), "{reply}");
    assert!(!reply.contains("data: [DONE]"), "{reply}");
    let error = error_event(&reply);
    assert_eq!(error["error"]["code"], "receipt_mismatch", "{reply}");
    assert_eq!(
        error["error"]["type"], "upstream_receipt_invalid",
        "{reply}"
    );
}

/// Issue 13: an upstream that failed mid-stream was a silent cut downstream; now the
/// stream ends with an OpenAI-shaped error event.
#[test]
fn an_upstream_cut_mid_stream_ends_with_an_error_event() {
    let rt = rt();
    let fake = rt.block_on(fake("stream-cut", Script::CutMidStream));
    let proxy = start_proxy(&format!("https://{}", fake.addr), &fake.policy);
    let reply = rt.block_on(raw_request(&proxy.base, BODY));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("Hello"), "{reply}");
    assert!(!reply.contains("data: [DONE]"), "{reply}");
    let error = error_event(&reply);
    assert_eq!(error["error"]["code"], "upstream_failed", "{reply}");
    assert_eq!(error["error"]["type"], "upstream_error", "{reply}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mid-answer"),
        "{reply}"
    );
    // The downstream response itself ends cleanly (its last chunk), after the event.
    assert!(reply.ends_with("0\r\n\r\n"), "{reply:?}");
}

/// `veritee chat` refuses the same stream: nothing after the receipt is printed and the
/// exit status says the answer was refused.
#[test]
fn chat_refuses_an_event_after_the_receipt() {
    let rt = rt();
    let injecting = rt.block_on(fake("chat-after-receipt", Script::EventAfterReceipt));
    let honest = rt.block_on(fake("chat-honest", Script::Honest));
    let chat = |f: &Fake| {
        Command::new(env!("CARGO_BIN_EXE_veritee"))
            .args(["chat", &format!("https://{}", f.addr), "--policy"])
            .arg(&f.policy)
            .args(["-m", "Hi", "--model", "m", "--max-tokens", "4"])
            .output()
            .unwrap()
    };
    let ok = chat(&honest);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(stderr.contains("[receipt seq 0 verified"), "{stderr}");
    assert!(stderr.contains("not audited"), "{stderr}");

    let refused = chat(&injecting);
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "refused, not a usage error: {stderr}"
    );
    assert!(stderr.contains("REFUSED"), "{stderr}");
    assert!(stderr.contains("receipt_mismatch"), "{stderr}");
    assert!(!stdout.contains("INJECTED"), "{stdout}");
    assert!(!stderr.contains("verified:"), "{stderr}");
}

/// The one `data: {"error": ...}` event of a chunked SSE reply.
fn error_event(reply: &str) -> serde_json::Value {
    let line = reply
        .lines()
        .find_map(|l| l.strip_prefix("data: {\"error\""))
        .unwrap_or_else(|| panic!("no error event: {reply}"));
    serde_json::from_str(&format!("{{\"error\"{line}")).unwrap()
}
