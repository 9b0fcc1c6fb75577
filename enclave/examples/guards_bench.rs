//! Paired benchmark of the guards against hostile clients (issue 13) on the attested path:
//! the runtime with its defaults (request bodies read under a deadline and a minimum rate;
//! the prefill in chunks of `prefill_chunk_tokens` with the deadline and the client checked
//! between chunks) against the same runtime with those guards relaxed as far as the
//! configuration goes (one prefill chunk for any prompt, as before; no minimum body rate
//! and an unreachable body deadline). Both in one process, on the same model file, each
//! request over a fresh verified TLS connection (set up before its clock starts); the same
//! request to both back to back, the order swapped every pair; the median of the per-pair
//! time ratios. A control pairs the default runtime with a second default one (what two
//! identical runtimes differ by).
//!
//! Two requests: the short streamed chat of bench/enclave_path.sh (NEW_TOKENS tokens; its
//! prompt is one chunk either way), and a long prompt (about LONG_TOKENS tokens, several
//! chunks) answered with one token, non-streamed.
//!
//! Usage: guards_bench [PAIRS] [NEW_TOKENS] [LONG_TOKENS]. Prints one JSON line.

#[path = "../tests/common/mod.rs"]
mod common;

use common::RequestExt;
use enclave::config::{Config, Limits};
use enclave::startup::{self, Options};
use inference::chat::Message;
use serde_json::json;
use std::time::Instant;

const PROMPT: &str = "Write a short story about a lighthouse keeper and a storm.";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pairs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let new_tokens: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let long_tokens: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(512);
    let root = std::env::temp_dir().join(format!("veritee-guards-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = |name: &str, limits: Limits| {
        let dir = root.join(name);
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.clone(),
            limits,
            ..Config::default()
        };
        let runtime = rt
            .block_on(startup::start(Options {
                config,
                simulate: true,
                dangerous_no_receipts: false,
                dangerous_cheat: None,
                ..Default::default()
            }))
            .expect("runtime starts");
        let addr = runtime.local_addr().unwrap();
        let state = std::sync::Arc::clone(&runtime.state);
        let policy = common::Server::policy_from(&dir);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(runtime.serve(async {
            let _ = stop_rx.await;
        }));
        ((addr, policy), state, stop_tx, server)
    };
    let relaxed = Limits {
        prefill_chunk_tokens: 1 << 20,
        body_timeout_secs: 1 << 30,
        body_min_bytes_per_sec: 0,
        ..Limits::default()
    };
    let (guarded, state, stop_g, server_g) = start("guarded", Limits::default());
    let (unguarded, _, stop_u, server_u) = start("relaxed", relaxed);
    let (control, _, stop_c, server_c) = start("control", Limits::default());

    let model = state.engine.model();
    let short = json!({
        "model": model.id,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": new_tokens,
        "temperature": 0,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string();
    let sentence = "The committee reviewed every ledger from the northern harbour, noting \
                    each cargo, its weight, its owner and the day it sailed. ";
    let mut text = String::from("Summarise the following records.\n");
    let long_prompt_tokens = loop {
        let n = model
            .prompt_ids(&[Message::new("user", text.as_str())])
            .unwrap()
            .len();
        if n >= long_tokens {
            break n;
        }
        text.push_str(sentence);
    };
    let long = json!({
        "model": model.id,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 1,
        "temperature": 0,
    })
    .to_string();

    // Each request on a fresh verified connection (set up before the clock starts): an
    // idle keep-alive connection is closed after handshake_timeout_secs, which the other
    // side's long request can outlast here.
    type Target = (std::net::SocketAddr, attestation::binding::PolicyFile);
    let timed = |(addr, policy): &Target, body: &str| {
        let mut c = rt
            .block_on(common::connect(*addr, policy))
            .expect("verified connection");
        let t = Instant::now();
        let r = rt.block_on(c.request("POST", "/v1/chat/completions", body.as_bytes()));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        t.elapsed().as_secs_f64()
    };
    // Per pair: the other runtime's time over the default runtime's (> 1: the default
    // runtime was faster).
    let paired = |a: &Target, b: &Target, body: &str| {
        // One warm-up each.
        timed(a, body);
        timed(b, body);
        let mut ratios = Vec::new();
        let (mut a_secs, mut b_secs) = (Vec::new(), Vec::new());
        for round in 0..pairs * 2 {
            let (x, y) = if round % 2 == 0 {
                let x = timed(a, body);
                (x, timed(b, body))
            } else {
                let y = timed(b, body);
                (timed(a, body), y)
            };
            ratios.push(y / x);
            a_secs.push(x);
            b_secs.push(y);
        }
        (median(ratios), median(a_secs), median(b_secs))
    };
    let (short_ratio, short_g, short_u) = paired(&guarded, &unguarded, &short);
    let (short_control, _, _) = paired(&guarded, &control, &short);
    let (long_ratio, long_g, long_u) = paired(&guarded, &unguarded, &long);
    let (long_control, _, _) = paired(&guarded, &control, &long);

    for (stop, server) in [(stop_g, server_g), (stop_u, server_u), (stop_c, server_c)] {
        let _ = stop.send(());
        let _ = rt.block_on(server);
    }
    let _ = std::fs::remove_dir_all(&root);
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "pairs": pairs * 2,
            "new_tokens": new_tokens,
            "short_request_s": {"guarded": r(short_g), "relaxed": r(short_u)},
            "ratio_short_relaxed_time_over_guarded_paired": r(short_ratio),
            "control_short_second_default_over_default_paired": r(short_control),
            "long_prompt_tokens": long_prompt_tokens,
            "prefill_chunk_tokens": Limits::default().prefill_chunk_tokens,
            "long_request_s": {"guarded": r(long_g), "relaxed": r(long_u)},
            "ratio_long_relaxed_time_over_guarded_paired": r(long_ratio),
            "control_long_second_default_over_default_paired": r(long_control),
        })
    );
}
