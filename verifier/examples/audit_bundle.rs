//! Makes an honest audit bundle for `bench/audit.sh`: an in-process simulated runtime with
//! an auditor key serves REAL jobs through its API (varied prompts, greedy and sampled),
//! then its own issuer signs more receipts re-using those jobs' transcripts under fresh
//! job ids (so that a bundle of TOTAL receipts needs only REAL generations), all chained
//! in one log.
//!
//! Usage: audit_bundle DIR [TOTAL] [REAL]. Writes DIR/bundle.cbor, DIR/auditor.key and
//! DIR/policy.toml; prints one JSON line.

use attestation::audit::AuditBundle;
use attestation::transcript;
use bytes::Bytes;
use enclave::config::{Config, Limits};
use enclave::receipts::{JobFacts, Metering};
use enclave::startup::{self, Options};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const PROMPTS: [&str; 6] = [
    "Write a short story about a lighthouse keeper and a storm.",
    "Explain how bread is made, step by step.",
    "Describe the water cycle to a curious child.",
    "Tell me about the history of the bicycle.",
    "List reasons why people enjoy gardening.",
    "Describe a forest in autumn.",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).expect("usage: audit_bundle DIR [TOTAL] [REAL]"));
    let total: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let real: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    std::fs::create_dir_all(&dir).unwrap();
    let (secret, public) = transcript::generate_auditor_keypair();
    std::fs::write(dir.join("auditor.key"), hex::encode(secret)).unwrap();
    let launch = dir.join("launch.toml");
    std::fs::write(
        &launch,
        format!("auditor_hpke_public_key = \"{}\"\n", hex::encode(public)),
    )
    .unwrap();
    let state_dir = dir.join("state");
    let _ = std::fs::remove_dir_all(&state_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runtime = rt
        .block_on(startup::start(Options {
            config: Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                state_dir: state_dir.clone(),
                launch_config: Some(launch),
                limits: Limits {
                    max_batch: 1,
                    ..Limits::default()
                },
                ..Config::default()
            },
            simulate: true,
            dangerous_no_receipts: false,
            dangerous_cheat: None,
            ..Default::default()
        }))
        .expect("runtime starts");
    let addr = runtime.local_addr().unwrap();
    let state = Arc::clone(&runtime.state);
    std::fs::copy(state_dir.join("policy.toml"), dir.join("policy.toml")).unwrap();
    let policy = client::load_policy(&state_dir.join("policy.toml")).unwrap();
    let model_id = state.engine.model().id.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(runtime.serve(async {
        let _ = stop_rx.await;
    }));
    let started = Instant::now();
    rt.block_on(async {
        let connector = client::Connector::new(policy);
        let target = client::Target {
            host: addr.ip().to_string(),
            port: addr.port(),
        };
        for i in 0..real {
            let mut conn = connector.connect(&target, None).await.expect("verified");
            let body = json!({
                "model": model_id,
                "messages": [{"role": "user", "content": format!("{} ({i})", PROMPTS[i % PROMPTS.len()])}],
                "max_tokens": 16 + (i * 11) % 33,
                "temperature": if i % 2 == 0 { 0.0 } else { 0.8 },
                "seed": i,
            })
            .to_string();
            let req = hyper::Request::builder()
                .method("POST")
                .uri("/v1/chat/completions")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let resp = conn.send(req).await.expect("answered");
            assert_eq!(resp.status().as_u16(), 200);
            let _ = resp.into_body().collect().await.unwrap();
        }
    });
    let real_secs = started.elapsed().as_secs_f64();
    let issuer = state.issuer.as_ref().expect("receipts on");
    let section = enclave::audit_export::section_of_live(issuer.log()).unwrap();
    // The real jobs' facts, re-issued under new job ids until the log holds `total`.
    let mut facts = Vec::new();
    for (bytes, sealed) in section.receipts.iter().zip(&section.transcripts) {
        let t = transcript::open(sealed.as_ref().expect("audited"), &secret).unwrap();
        let c = attestation::receipt::ReceiptClaims::from_cbor(&coset_payload(bytes)).unwrap();
        facts.push((t, c));
    }
    let mut pending = Vec::new();
    for k in real..total {
        let (t, c) = &facts[k % facts.len()];
        let issued = issuer
            .issue(JobFacts {
                job_id: enclave::receipts::new_job_id(),
                request: t.request.clone(),
                response_sha256: c.response_sha256,
                prompt_ids: t.prompt_ids.clone(),
                output_ids: t.output_ids.clone(),
                sampling: t.sampling,
                fingerprint: t.fingerprint.clone(),
                end: t.end,
                dangerous_cheat: None,
                metering: Metering {
                    queue_wait_ms: c.queue_wait_ms,
                    wall_start_ms: c.wall_start_ms,
                    wall_end_ms: c.wall_end_ms,
                    device_ms: c.device_ms,
                    device_share_ppm: c.device_share_ppm,
                },
                audited: true,
            })
            .unwrap();
        pending.push(issued.durable);
    }
    for d in pending {
        d.wait_blocking().unwrap();
    }
    let section = enclave::audit_export::section_of_live(issuer.log()).unwrap();
    let receipts = section.receipts.len();
    std::fs::write(
        dir.join("bundle.cbor"),
        AuditBundle {
            sections: vec![section],
        }
        .to_cbor(),
    )
    .unwrap();
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    println!(
        "{}",
        json!({"receipts": receipts, "real_jobs": real, "real_jobs_secs": (real_secs * 10.0).round() / 10.0})
    );
}

/// The payload of a tagged COSE_Sign1 receipt (already verified by the runtime's client
/// path; here only to read the claims back).
fn coset_payload(receipt: &[u8]) -> Vec<u8> {
    use coset::TaggedCborSerializable;
    coset::CoseSign1::from_tagged_slice(receipt)
        .expect("a receipt")
        .payload
        .expect("a payload")
}
