//! Benchmark for bench/enclave_path.sh: generated tokens/s through the full attested path
//! (TLS + HTTP + OpenAI API + engine queue) against the bare engine on the same loaded
//! model, in one process and one run; and TLS connection set-up with evidence
//! verification against a plain TLS handshake to the same server.
//!
//! A second runtime in the same process runs with receipts off
//! (`--dangerous-no-receipts`), so "receipts on vs off" compares the same requests in
//! the same run.
//!
//! Usage: path_bench [ROUNDS] [NEW_TOKENS] [CONNECTIONS]
//! Prints one JSON line. Runs interleave (bare, api, bare, api, ...) so drift on a shared
//! machine hits both sides alike; the medians are compared.

#[path = "../tests/common/mod.rs"]
mod common;

use common::RequestExt;

use enclave::config::Config;
use enclave::startup::{self, Options};
use inference::chat::Message;
use inference::sampling::SamplingParams;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const PROMPT: &str = "Write a short story about a lighthouse keeper and a storm.";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let new_tokens: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let connections: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50);
    let state_dir = std::env::temp_dir().join(format!("veritee-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let off_dir = state_dir.join("receipts-off");
    let start = |dir: &std::path::Path, no_receipts: bool| {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.to_path_buf(),
            ..Config::default()
        };
        let runtime = rt
            .block_on(startup::start(Options {
                config,
                simulate: true,
                dangerous_no_receipts: no_receipts,
                dangerous_cheat: None,
                ..Default::default()
            }))
            .expect("runtime starts");
        let addr = runtime.local_addr().unwrap();
        let state = Arc::clone(&runtime.state);
        let policy = common::Server::policy_from(dir);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(runtime.serve(async {
            let _ = stop_rx.await;
        }));
        (addr, state, policy, stop_tx, server)
    };
    let (off_addr, _off_state, off_policy, off_stop, off_server) = start(&off_dir, true);
    let (addr, state, policy, stop_tx, server) = start(&state_dir, false);

    let model = state.engine.model();
    let prompt = model.prompt_ids(&[Message::new("user", PROMPT)]).unwrap();
    let params = SamplingParams {
        max_tokens: new_tokens,
        ..Default::default()
    };
    let body = json!({
        "model": model.id,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": new_tokens,
        "temperature": 0,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string();

    let mut client = rt
        .block_on(common::connect(addr, &policy))
        .expect("verified connection");
    let mut off_client = rt
        .block_on(common::connect(off_addr, &off_policy))
        .expect("verified connection");
    let plain_body = json!({
        "model": model.id,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": new_tokens,
        "temperature": 0,
    })
    .to_string();
    let (mut bare, mut api, mut api_plain) = (Vec::new(), Vec::new(), Vec::new());
    let mut api_off = Vec::new();
    for round in 0..=rounds {
        // Both sides stop where the API stops (the model's end-of-generation ids), so
        // they generate the same tokens.
        let t = Instant::now();
        let g = inference::generate::generate(
            &model.model,
            &prompt,
            &params,
            model.tokenizer.eog_ids(),
            None,
            |_| std::ops::ControlFlow::Continue(()),
        )
        .unwrap();
        let bare_tps = g.output_ids.len() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = rt.block_on(client.request("POST", "/v1/chat/completions", body.as_bytes()));
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(r.status, 200);
        let events = common::sse_events(&r.body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let usage: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        let generated = usage["usage"]["completion_tokens"].as_u64().unwrap() as usize;
        assert_eq!(
            generated,
            g.output_ids.len(),
            "both sides generate the same tokens"
        );
        let t = Instant::now();
        let r = rt.block_on(client.request("POST", "/v1/chat/completions", plain_body.as_bytes()));
        let plain_secs = t.elapsed().as_secs_f64();
        assert_eq!(r.status, 200);
        let plain_generated = r.json()["usage"]["completion_tokens"].as_u64().unwrap() as usize;
        assert_eq!(plain_generated, generated);
        assert!(r.headers.contains_key(attestation::receipt::RECEIPT_HEADER));
        let t = Instant::now();
        let r = rt.block_on(off_client.request("POST", "/v1/chat/completions", body.as_bytes()));
        let off_secs = t.elapsed().as_secs_f64();
        assert_eq!(r.status, 200);
        assert!(!String::from_utf8_lossy(&r.body).contains("veritee.receipt"));
        if round > 0 {
            // Round 0 warms caches on both sides.
            bare.push(bare_tps);
            api.push(generated as f64 / secs);
            api_plain.push(generated as f64 / plain_secs);
            api_off.push(generated as f64 / off_secs);
        }
    }

    // Receipts on vs off, paired: the same streamed request to both runtimes back to back,
    // the order swapped every round, and the median of the per-pair ratios (drift on a
    // shared machine hits both members of a pair alike).
    let mut pair_ratios = Vec::new();
    for round in 0..rounds * 2 {
        let timed = |c: &mut client::AttestedConnection| {
            let t = Instant::now();
            let r = rt.block_on(c.request("POST", "/v1/chat/completions", body.as_bytes()));
            assert_eq!(r.status, 200);
            t.elapsed().as_secs_f64()
        };
        let (on_secs, off_secs) = if round % 2 == 0 {
            let on = timed(&mut client);
            (on, timed(&mut off_client))
        } else {
            let off = timed(&mut off_client);
            (timed(&mut client), off)
        };
        // Same tokens on both sides, so the tokens/s ratio is the inverse time ratio.
        pair_ratios.push(off_secs / on_secs);
    }
    let paired = median(pair_ratios);

    // What receipts add to one job, measured directly: transcript, commitment, HPKE seal
    // (no auditor key here: sealing is skipped), signing, the log append and its fsync,
    // for a job of this size (its prompt, `new_tokens` outputs, their fingerprint).
    let issuer = state.issuer.as_ref().expect("receipts are on");
    let hidden = model.model.config().embedding_length;
    let mut fp = inference::fingerprint::FingerprintBuilder::new(hidden).unwrap();
    for i in 0..new_tokens {
        fp.push(&vec![i as f32 * 0.01; hidden]).unwrap();
    }
    let fingerprint = fp.finish().to_bytes();
    let mut receipt_ms = Vec::new();
    for i in 0..50u32 {
        let t = Instant::now();
        let issued = issuer
            .issue(enclave::receipts::JobFacts {
                job_id: enclave::receipts::new_job_id(),
                request: b"{}".to_vec(),
                end: attestation::transcript::JobEnd::Length,
                dangerous_cheat: None,
                response_sha256: [2; 32],
                prompt_ids: prompt.clone(),
                output_ids: (0..new_tokens as u32).map(|t| t + i).collect(),
                sampling: attestation::receipt::SamplingParams {
                    temperature: 0.0,
                    top_p: 1.0,
                    top_k: 0,
                    max_tokens: new_tokens as u32,
                    repetition_penalty: 1.0,
                    seed: 1,
                },
                fingerprint: fingerprint.clone(),
                metering: Default::default(),
                audited: true,
            })
            .unwrap();
        issued.durable.wait_blocking().unwrap();
        receipt_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let receipt_ms = median(receipt_ms);

    // Connection set-up: a verified connect (evidence parsed, chain and report verified,
    // policy appraised, key binding checked; first contact = a fresh connector, cached = one
    // connector that verified this certificate before) against a plain TLS handshake.
    let plain_config = common::client_config_no_verify();
    let target = client::Target {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let cached = client::Connector::new(policy.clone());
    rt.block_on(cached.connect(&target, None)).unwrap();
    let (mut first_ms, mut cached_ms, mut plain_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..connections {
        let t = Instant::now();
        let c = rt
            .block_on(client::Connector::new(policy.clone()).connect(&target, None))
            .unwrap();
        first_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!c.from_cache);
        drop(c);
        let t = Instant::now();
        let c = rt.block_on(cached.connect(&target, None)).unwrap();
        cached_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(c.from_cache);
        drop(c);
        let t = Instant::now();
        rt.block_on(common::plain_tls_connect(addr, Arc::clone(&plain_config)));
        plain_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    let _ = off_stop.send(());
    let _ = rt.block_on(off_server);
    let _ = std::fs::remove_dir_all(&state_dir);
    let (b, a, n) = (median(bare), median(api), median(api_plain));
    let o = median(api_off);
    let (f, c, p) = (median(first_ms), median(cached_ms), median(plain_ms));
    println!(
        "{}",
        json!({
            "new_tokens": new_tokens,
            "rounds": rounds,
            "bare_engine_tps": (b * 100.0).round() / 100.0,
            "full_path_stream_tps": (a * 100.0).round() / 100.0,
            "full_path_json_tps": (n * 100.0).round() / 100.0,
            "ratio_stream_vs_bare": (a / b * 1000.0).round() / 1000.0,
            "ratio_json_vs_bare": (n / b * 1000.0).round() / 1000.0,
            "full_path_stream_receipts_off_tps": (o * 100.0).round() / 100.0,
            "ratio_receipts_on_vs_off": (a / o * 1000.0).round() / 1000.0,
            "ratio_receipts_on_vs_off_paired": (paired * 1000.0).round() / 1000.0,
            "receipt_issue_durable_ms": (receipt_ms * 1000.0).round() / 1000.0,
            "receipt_cost_vs_job": (receipt_ms / 1e3 * a / new_tokens as f64 * 10000.0).round() / 10000.0,
            "connections": connections,
            "verified_connect_first_ms": (f * 100.0).round() / 100.0,
            "verified_connect_cached_ms": (c * 100.0).round() / 100.0,
            "plain_tls_connect_ms": (p * 100.0).round() / 100.0,
            "ratio_first_vs_plain": (f / p * 100.0).round() / 100.0,
            "ratio_cached_vs_plain": (c / p * 100.0).round() / 100.0,
        })
    );
}
