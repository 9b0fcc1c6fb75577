//! End to end: the real binary, the real SmolLM2 model, the simulated TEE, over TLS with a
//! client that verifies the certificate's evidence before sending a byte.

#[macro_use]
mod common;

use attestation::bundle::EvidenceBundle;
use attestation::receipt::RECEIPT_HEADER;
use attestation::Reason;
use client::receipts::{check_header, SseReceiptFilter};
use client::AttestedConnection;
use common::{connect, now, rt, sse_events, wait_for_metric, RequestExt, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// What the bare engine generates for one user message, greedy: the reference the
/// server's answers must equal.
fn bare_engine_answer(
    model_path: &std::path::Path,
    message: &str,
    max_tokens: usize,
) -> (usize, String, usize) {
    use inference::chat::Message;
    let model = enclave::engine::LoadedModel::load(model_path, None).unwrap();
    let prompt = model.prompt_ids(&[Message::new("user", message)]).unwrap();
    let params = inference::sampling::SamplingParams {
        max_tokens,
        ..Default::default()
    };
    let g = inference::generate::generate(
        &model.model,
        &prompt,
        &params,
        model.tokenizer.eog_ids(),
        None,
        |_| std::ops::ControlFlow::Continue(()),
    )
    .unwrap();
    let text_ids: Vec<u32> = g
        .output_ids
        .iter()
        .copied()
        .filter(|t| !model.tokenizer.is_eog(*t))
        .collect();
    (
        prompt.len(),
        model.tokenizer.decode(&text_ids).unwrap(),
        g.output_ids.len(),
    )
}

fn chat_body(message: &str, max_tokens: usize, stream: bool) -> Vec<u8> {
    json!({
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "messages": [{"role": "user", "content": message}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 7,
        "stream": stream,
        "stream_options": {"include_usage": stream},
    })
    .to_string()
    .into_bytes()
}

#[test]
fn attested_chat_streaming_nonce_and_binding() {
    let model_path = common::model();
    let server = Server::start(&model_path, &[]);
    let policy = server.policy();
    let question = "What is the capital of France?";
    let (prompt_len, expected_text, expected_tokens) =
        bare_engine_answer(&model_path, question, 24);
    rt().block_on(async {
        let mut c = connect(server.addr, &policy)
            .await
            .expect("evidence verifies");
        // The claims name this model and this connection's key.
        let file = inference::gguf::GgufFile::open(&model_path).unwrap();
        let claims = c.attested.claims().clone();
        assert_eq!(claims.model_digest, file.sha256());
        assert_eq!(
            claims.tls_spki_sha256,
            attestation::binding::spki_sha256(&c.server_spki)
        );
        assert_eq!(claims.runtime_version, enclave::RUNTIME_VERSION);
        assert_eq!(claims.nonce, None);
        assert_eq!(claims.receipt_key.public_key.len(), 32);

        let health = c.request("GET", "/health", b"").await;
        assert_eq!(health.status, 200);
        assert_eq!(health.json()["simulated"], json!(true));
        let models = c.request("GET", "/v1/models", b"").await.json();
        assert_eq!(models["data"][0]["id"], json!("SmolLM2-135M-Instruct.Q4_1"));

        // Non-streaming: the bare engine's tokens, through TLS and the API.
        let r = c
            .request(
                "POST",
                "/v1/chat/completions",
                &chat_body(question, 24, false),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(v["object"], json!("chat.completion"));
        assert_eq!(v["choices"][0]["message"]["content"], json!(expected_text));
        assert_eq!(v["usage"]["prompt_tokens"], json!(prompt_len));
        assert_eq!(v["usage"]["completion_tokens"], json!(expected_tokens));
        assert_eq!(
            v["usage"]["total_tokens"],
            json!(prompt_len + expected_tokens)
        );
        let finish = if expected_tokens == 24 {
            "length"
        } else {
            "stop"
        };
        assert_eq!(v["choices"][0]["finish_reason"], json!(finish));

        // Streaming: the same text in pieces, a finish chunk, a usage chunk, [DONE].
        let r = c
            .request(
                "POST",
                "/v1/chat/completions",
                &chat_body(question, 24, true),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "text/event-stream");
        let events = sse_events(&r.body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], json!("assistant"));
        let streamed: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(streamed, expected_text);
        assert!(chunks.len() > 3, "text arrives in several chunks");
        let finish_chunk = &chunks[chunks.len() - 2];
        assert_eq!(finish_chunk["choices"][0]["finish_reason"], json!(finish));
        let usage_chunk = chunks.last().unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(
            usage_chunk["usage"]["completion_tokens"],
            json!(expected_tokens)
        );

        // Fresh evidence for a nonce, bound to the same TLS key.
        let nonce: Vec<u8> = (0u8..16).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let r = c
            .request(
                "GET",
                &format!("/v1/attestation?nonce={}", hex::encode(&nonce)),
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/cmw+cbor");
        let bundle = EvidenceBundle::from_cbor(&r.body).unwrap();
        let fresh = bundle
            .verify_with(&policy, now())
            .expect("fresh evidence verifies");
        fresh.require_nonce(&nonce).expect("the nonce is bound");
        fresh.require_tls_key(&c.server_spki).expect("same TLS key");
        assert_eq!(fresh.claims().receipt_key, claims.receipt_key);
        let mut other = nonce.clone();
        other[0] ^= 1;
        assert_eq!(
            fresh.require_nonce(&other).unwrap_err().reason,
            Reason::NonceMismatch
        );
        // The certificate's evidence carries no nonce: asking for freshness there fails.
        assert_eq!(
            c.attested.require_nonce(&nonce).unwrap_err().reason,
            Reason::NonceMismatch
        );
        // A man in the middle with genuine evidence but its own key.
        let mitm_spki =
            rcgen::PublicKeyData::subject_public_key_info(&rcgen::KeyPair::generate().unwrap());
        assert_eq!(
            fresh.require_tls_key(&mitm_spki).unwrap_err().reason,
            Reason::TlsKeyNotBound
        );
        // Claims changed after the hardware signed: no longer bound.
        let mut claims_forged = fresh.claims().clone();
        claims_forged.tls_spki_sha256 = attestation::binding::spki_sha256(&mitm_spki);
        let mut forged = bundle.clone();
        forged.claims = claims_forged.to_cbor();
        assert_eq!(
            forged.verify_with(&policy, now()).unwrap_err().reason,
            Reason::ClaimsNotBound
        );
        for bad in ["/v1/attestation?nonce=xyz", "/v1/attestation?nonce=0102"] {
            let r = c.request("GET", bad, b"").await;
            assert_eq!(r.status, 400, "{bad}");
            assert_eq!(r.json()["error"]["param"], json!("nonce"));
        }

        // A policy that does not trust the development root refuses before HTTP.
        let mut strict = policy.clone();
        strict.evidence.dangerous_trusted_roots.clear();
        let err = connect(server.addr, &strict).await.err().expect("refused");
        assert_eq!(err.reason, Reason::SimulatedRootNotTrusted);
    });
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let model_path = common::model();
    // A max_tokens limit above the context, so both checks can be reached.
    let server = Server::start(&model_path, &["--max-tokens", "9000"]);
    let policy = server.policy();
    rt().block_on(async {
        // (method, path, body, status, error.param, error.code)
        type Case = (&'static str, &'static str, Vec<u8>, u16, Option<&'static str>, Option<&'static str>);
        let cases: Vec<Case> = vec![
            ("POST", "/v1/chat/completions", b"{not json".to_vec(), 400, None, None),
            (
                "POST",
                "/v1/chat/completions",
                br#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
                404,
                Some("model"),
                Some("model_not_found"),
            ),
            (
                "POST",
                "/v1/chat/completions",
                br#"{"model":"SmolLM2-135M-Instruct.Q4_1","messages":[{"role":"user","content":"hi"}],"temperature":5}"#.to_vec(),
                400,
                Some("temperature"),
                None,
            ),
            (
                "POST",
                "/v1/chat/completions",
                br#"{"model":"SmolLM2-135M-Instruct.Q4_1","messages":[{"role":"user","content":"hi"}],"max_tokens":8190}"#.to_vec(),
                400,
                Some("max_tokens"),
                Some("context_length_exceeded"),
            ),
            (
                "POST",
                "/v1/chat/completions",
                br#"{"model":"SmolLM2-135M-Instruct.Q4_1","messages":[{"role":"user","content":"hi"}],"max_tokens":9001}"#.to_vec(),
                400,
                Some("max_tokens"),
                None,
            ),
            (
                "POST",
                "/v1/chat/completions",
                json!({"model":"SmolLM2-135M-Instruct.Q4_1","messages":[{"role":"user","content":"hello ".repeat(9000)}]}).to_string().into_bytes(),
                400,
                Some("messages"),
                Some("context_length_exceeded"),
            ),
            (
                "POST",
                "/v1/chat/completions",
                vec![b' '; 2 << 20],
                413,
                None,
                None,
            ),
            ("GET", "/v1/chat/completions", Vec::new(), 405, None, None),
            ("GET", "/v2/nothing", Vec::new(), 404, None, None),
        ];
        for (method, path, body, status, param, code) in cases {
            // A fresh connection each: the server closes one whose body it refused (413).
            let mut c = connect(server.addr, &policy).await.unwrap();
            let r = c.request(method, path, &body).await;
            assert_eq!(r.status, status, "{method} {path}: {}", String::from_utf8_lossy(&r.body));
            let v = r.json();
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(v["error"]["type"].is_string());
            assert_eq!(v["error"]["param"].as_str(), param, "{method} {path}: {v}");
            assert_eq!(v["error"]["code"].as_str(), code, "{method} {path}: {v}");
        }
        // Still serving.
        let mut c = connect(server.addr, &policy).await.unwrap();
        let r = c
            .request("POST", "/v1/chat/completions", &chat_body("Say hi.", 4, false))
            .await;
        assert_eq!(r.status, 200);
        let metrics = String::from_utf8(c.request("GET", "/metrics", b"").await.body).unwrap();
        assert!(metrics.contains("veritee_requests_total{endpoint=\"chat\",status=\"200\"} 1"), "{metrics}");
        assert!(metrics.contains("veritee_requests_total{endpoint=\"chat\",status=\"400\"}"));
    });
}

#[test]
fn thirty_two_clients_for_thirty_seconds() {
    let model_path = common::model();
    let server = Server::start(&model_path, &["--max-batch", "16", "--queue-depth", "64"]);
    let policy = server.policy();
    let secs: u64 = std::env::var("VERITEE_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let pid = server.child.id();
    let rss_at_start = rss_kib(pid, "VmRSS");
    let per_client = rt().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for i in 0..32 {
            let policy = policy.clone();
            let addr = server.addr;
            tasks.push(tokio::spawn(async move {
                let mut c = connect(addr, &policy).await.expect("verified connection");
                let (mut sent, mut ok) = (0usize, 0usize);
                while Instant::now() < deadline {
                    let stream = (i + sent) % 2 == 0;
                    let body = chat_body(&format!("Count to {}.", i + sent), 4, stream);
                    sent += 1;
                    let r = c.request("POST", "/v1/chat/completions", &body).await;
                    assert_eq!(
                        r.status,
                        200,
                        "client {i}: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    // Complete, and receipted: the receipt checks against this exchange.
                    let complete = if stream {
                        let events = sse_events(&r.body);
                        let mut filter = SseReceiptFilter::default();
                        filter.push(&r.body);
                        filter
                            .check(&c.attested, &body)
                            .unwrap_or_else(|e| panic!("client {i}: stream receipt: {e}"));
                        events.last().map(String::as_str) == Some("[DONE]")
                            && events.iter().any(|e| e.contains("\"finish_reason\":\""))
                    } else {
                        let header = r.headers.get(RECEIPT_HEADER).map(|v| v.to_str().unwrap());
                        check_header(&c.attested, header, &body, &r.body)
                            .unwrap_or_else(|e| panic!("client {i}: receipt: {e}"));
                        r.json()["choices"][0]["finish_reason"].is_string()
                    };
                    assert!(complete, "client {i}: incomplete response");
                    ok += 1;
                }
                (sent, ok)
            }));
        }
        let mut per_client = Vec::new();
        for t in tasks {
            per_client.push(t.await.expect("client task"));
        }
        per_client
    });
    let sent: usize = per_client.iter().map(|(s, _)| s).sum();
    let ok: usize = per_client.iter().map(|(_, o)| o).sum();
    let (rss_end, rss_peak) = (rss_kib(pid, "VmRSS"), rss_kib(pid, "VmHWM"));
    let metrics = rt().block_on(async {
        let mut c = connect(server.addr, &policy).await.unwrap();
        String::from_utf8(c.request("GET", "/metrics", b"").await.body).unwrap()
    });
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
            .parse()
            .unwrap()
    };
    let occupancy = metric("veritee_batch_occupancy_mean");
    eprintln!(
        "32 clients, {secs} s: {sent} requests, {ok} complete and receipted; mean batch occupancy {occupancy:.1}; \
         server RSS {} MiB at start, {} MiB at the end, peak {} MiB",
        rss_at_start / 1024,
        rss_end / 1024,
        rss_peak / 1024
    );
    assert_eq!(sent, ok, "every request got a complete, receipted response");
    for (i, (_, ok)) in per_client.iter().enumerate() {
        assert!(*ok >= 1, "client {i} completed no request: {per_client:?}");
    }
    assert!(
        occupancy > 2.0,
        "32 clients but a mean batch of {occupancy}"
    );
    assert_eq!(metric("veritee_receipts_total"), ok as f64);
    assert!(metric("veritee_time_to_first_token_seconds_count") >= ok as f64);
    assert_eq!(
        metric("veritee_kv_cache_reserved_tokens"),
        0.0,
        "all given back"
    );
    // Memory stays bounded: the model, the KV-cache budget (1 GiB by default) and the
    // connections' buffers; far less is used with these short jobs. The bound: what the
    // process held at start (the model mapped in) plus the budget.
    let bound = rss_at_start + 1024 * 1024;
    assert!(
        rss_peak <= bound,
        "peak RSS {rss_peak} KiB over {bound} KiB"
    );
}

/// A line of /proc/PID/status, in KiB.
fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/{pid}/status"))
}

#[test]
fn sigterm_finishes_the_stream_in_flight_then_exits() {
    let model_path = common::model();
    let mut server = Server::start(&model_path, &["--shutdown-grace", "300"]);
    let policy = server.policy();
    let pid = server.child.id() as i32;
    rt().block_on(async {
        use http_body_util::BodyExt;
        let mut c = connect(server.addr, &policy).await.unwrap();
        // Counting to 1000 runs to max_tokens: 200 tokens, about a second of decoding here,
        // against the few milliseconds between the first token and the signal.
        let body = chat_body("Count from 1 to 1000, separated by commas.", 200, true);
        let req = hyper::Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .header("host", "localhost")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let resp = c.send(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut received = Vec::new();
        // Generation is under way once the first token has arrived: then ask the runtime
        // to stop.
        while !sse_events(&received)
            .iter()
            .any(|e| e.contains("\"content\":\""))
        {
            let frame = body.frame().await.expect("the stream goes on").unwrap();
            received.extend_from_slice(frame.data_ref().expect("a data frame"));
        }
        let tokens_before = sse_events(&received).len();
        // SAFETY: kill(2) with a pid we spawned and a standard signal number.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let rest = body.collect().await.unwrap().to_bytes();
        received.extend_from_slice(&rest);
        let events = sse_events(&received);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        assert!(
            events
                .iter()
                .any(|e| e.contains("\"finish_reason\":\"length\"")),
            "the stream ran to max_tokens: {events:?}"
        );
        assert!(
            events.len() > tokens_before + 100,
            "the stream was in flight at the signal: {tokens_before} events before it, {} in all",
            events.len()
        );
    });
    let status = common::wait_for(Duration::from_secs(60), || server.child.try_wait().unwrap())
        .expect("the runtime exits after draining");
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.stderr()
    );
    assert!(server.stderr().contains("every in-flight request finished"));
}

#[test]
fn plain_http_gets_no_http_answer() {
    let model_path = common::model();
    let server = Server::start(&model_path, &[]);
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    assert!(
        !reply.starts_with(b"HTTP/"),
        "a plain-HTTP request must not be answered in HTTP: {:?}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn a_full_queue_answers_503_and_a_late_request_504() {
    let model_path = common::model();
    // One engine thread, one waiting slot, a three-second deadline.
    let server = Server::start(
        &model_path,
        &[
            "--max-batch",
            "1",
            "--queue-depth",
            "1",
            "--request-timeout",
            "3",
        ],
    );
    let policy = server.policy();
    let statuses = rt().block_on(async {
        // Every connection is verified before any request, so the steps below take
        // milliseconds, not handshakes.
        let mut watcher = connect(server.addr, &policy).await.unwrap();
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(connect(server.addr, &policy).await.unwrap());
        }
        let long = || chat_body("Count from 1 to 1000, separated by commas.", 2000, false);
        let mut clients = clients.into_iter();
        let send = |mut c: AttestedConnection| {
            tokio::spawn(async move {
                let r = c.request("POST", "/v1/chat/completions", &long()).await;
                (r.status, r.json())
            })
        };
        // The first request takes the engine thread, the second the one waiting slot...
        let running = send(clients.next().unwrap());
        wait_for_metric(&mut watcher, "veritee_jobs_active", |v| v == 1.0).await;
        let queued = send(clients.next().unwrap());
        wait_for_metric(&mut watcher, "veritee_jobs_queued", |v| v == 1.0).await;
        // ...so each later one is refused at once, while both wait out their deadlines.
        let mut out = Vec::new();
        for mut c in clients {
            let r = c.request("POST", "/v1/chat/completions", &long()).await;
            if r.status == 503 {
                // When to come back.
                assert_eq!(
                    r.headers.get("retry-after").map(|v| v.to_str().unwrap()),
                    Some("1")
                );
            }
            out.push((r.status, r.json()));
        }
        out.insert(0, queued.await.unwrap());
        out.insert(0, running.await.unwrap());
        out
    });
    let got: Vec<u16> = statuses.iter().map(|(s, _)| *s).collect();
    // Margin: the running job needs 2000 tokens (several seconds of decoding on this
    // 2-core machine) to finish before its 3 s deadline; the refusals take milliseconds.
    assert_eq!(got, [504, 504, 503, 503, 503, 503], "{statuses:?}");
    for (status, v) in &statuses {
        let code = if *status == 503 {
            "overloaded"
        } else {
            "timeout"
        };
        assert_eq!(v["error"]["code"], json!(code));
    }
    // And it still serves afterwards.
    let ok = rt().block_on(async {
        let mut c = connect(server.addr, &policy).await.unwrap();
        c.request("POST", "/v1/chat/completions", &chat_body("Hi", 2, false))
            .await
            .status
    });
    assert_eq!(ok, 200);
}

/// The sealed image passes `--launch-config-if-present` with QEMU's fw_cfg path: a file
/// there is the launch configuration, none there is the empty one; either way the claims
/// carry the digest of what was loaded (and the start-up check held it against HOST_DATA).
#[test]
fn launch_config_if_present_binds_what_was_there() {
    let model_path = common::model();
    let dir = common::fresh_dir("launch-if-present");
    let absent = dir.join("no-such-launch.toml");
    let present = dir.join("launch.toml");
    let text = format!(
        "model_digest = \"{}\"\n",
        hex::encode(model_digest(&model_path))
    );
    std::fs::write(&present, &text).unwrap();
    for (path, bytes) in [(&absent, &b""[..]), (&present, text.as_bytes())] {
        let server = Server::start(
            &model_path,
            &["--launch-config-if-present", path.to_str().unwrap()],
        );
        let policy = server.policy();
        let claims = rt().block_on(async {
            let c = connect(server.addr, &policy)
                .await
                .expect("evidence verifies");
            c.attested.claims().clone()
        });
        let expected = attestation::x509::sha256(bytes);
        assert_eq!(claims.launch_config_digest, expected, "{}", path.display());
        assert_eq!(
            server.stderr().contains("launch configuration: none at"),
            bytes.is_empty(),
            "{}",
            server.stderr()
        );
    }
    // Both ways at once is a usage error, before anything starts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritee-enclave"))
        .args(["serve", "--simulate", "--launch-config"])
        .arg(&present)
        .arg("--launch-config-if-present")
        .arg(&absent)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A KV-cache budget that cannot hold one request of the largest size the limits allow
/// is refused at start, naming what it holds and what is needed; nothing is served.
#[test]
fn a_kv_cache_budget_too_small_for_the_largest_request_is_refused_at_start() {
    let state = common::fresh_dir("kv-budget");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritee-enclave"))
        .args([
            "serve",
            "--simulate",
            "--listen",
            "127.0.0.1:0",
            "--kv-cache-mib",
            "4",
        ])
        .arg("--model")
        .arg(common::model())
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    let model = enclave::engine::LoadedModel::load(&common::model(), None).unwrap();
    let config = model.model.config();
    let holds = (4 << 20) / config.kv_bytes_per_token();
    let limits = enclave::config::Limits::default();
    let largest = (limits.max_prompt_tokens + limits.max_tokens).min(config.context_length);
    assert!(holds < largest);
    assert!(
        stderr.contains(&format!("limits.kv_cache_mib = 4 holds {holds} positions")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("one request may need {largest}")),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    let _ = std::fs::remove_dir_all(&state);
}

fn model_digest(path: &std::path::Path) -> [u8; 32] {
    enclave::engine::LoadedModel::load(path, None)
        .unwrap()
        .digest
}
