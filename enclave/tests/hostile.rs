//! The runtime under hostile clients (issue 13): stalled connections and bodies, long
//! prompts against their deadline, abandoned prompts, chat-turn forgery, stop sequences,
//! HTTP details, and the auditor-only audit routes. The real binary, the real model, the
//! simulated TEE, over TLS.

#[macro_use]
mod common;

use common::{
    auditor_header, auditor_token_line, config_file, connect, fresh_dir, metric, raw_tls, rt,
    sse_events, wait_for_metric, RawReply, RequestExt, Server,
};
use enclave::engine::LoadedModel;
use inference::chat::Message;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1";

fn chat(messages: Value, extra: Value) -> Vec<u8> {
    let mut body = json!({"model": MODEL, "messages": messages, "temperature": 0, "seed": 3});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string().into_bytes()
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// Read from a raw connection until the server closes it, at most `limit`.
async fn read_to_close<R: tokio::io::AsyncRead + Unpin>(r: &mut R, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server did not answer and close within {limit:?}; got {:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

/// N stalled connections (N = max_connections: TCP that never starts TLS, TLS with half a
/// request head, a request with half its body) do not keep a verified client out: at the
/// limit a newcomer closes the longest-waiting connection without a request in progress.
/// Every timeout of the server is 120 s here, so only that can let the newcomers in; the
/// stated bound is 20 s for each newcomer's connect and answer (it takes well under one
/// second on an idle machine).
#[test]
fn stalled_connections_do_not_lock_out_a_verified_client() {
    let model_path = common::model();
    let dir = fresh_dir("hostile-stall");
    let config = config_file(
        &dir,
        "[limits]\nmax_connections = 6\nhandshake_timeout_secs = 120\n\
         body_timeout_secs = 120\nbody_min_bytes_per_sec = 0\n",
    );
    let server = Server::start(&model_path, &["--config", config.to_str().unwrap()]);
    let policy = server.policy();
    let addr = server.addr;
    rt().block_on(async {
        let mut watcher = connect(addr, &policy).await.unwrap();
        // Five stalled connections beside the watcher: six, the limit. First a request
        // whose body stops short; its `100 Continue` shows the server is reading the body.
        let mut tls = Vec::new();
        let mut s = raw_tls(addr).await;
        s.write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n\
              content-length: 1000\r\nexpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
        s.flush().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut byte))
                .await
                .expect("100 Continue")
                .unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 100"),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        s.write_all(b"{\"model\":").await.unwrap();
        s.flush().await.unwrap();
        tls.push(s);
        // Two TCP connections that never start TLS, two TLS ones with half a request head.
        let mut tcp = Vec::new();
        for _ in 0..2 {
            tcp.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        for _ in 0..2 {
            let mut s = raw_tls(addr).await;
            s.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n")
                .await
                .unwrap();
            s.flush().await.unwrap();
            tls.push(s);
        }
        // Every one accepted, the TLS ones past their handshake (so each is in its stalled
        // phase since before the watcher's last request).
        wait_for_metric(&mut watcher, "veritee_connections_total", |v| v == 6.0).await;
        wait_for_metric(&mut watcher, "veritee_connections_open", |v| v == 4.0).await;
        // Eviction takes the connection waiting longest, to the millisecond, and the
        // watcher's last answer can end in the same millisecond as the last stalled
        // connection's handshake (seen under load: both at 189 ms; then either may go, and
        // a stalled one stays open). 50 ms and one more request put the watcher after them.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(watcher.request("GET", "/health", b"").await.status, 200);
        // Newcomers, one after the other, each a verified connection and a chat answer;
        // each stays open, so that each needs a place of its own.
        let mut newcomers = Vec::new();
        for i in 0..5 {
            let t = Instant::now();
            let mut c = tokio::time::timeout(Duration::from_secs(20), connect(addr, &policy))
                .await
                .unwrap_or_else(|_| panic!("newcomer {i}: no connection within 20 s"))
                .expect("evidence verifies");
            let r = c
                .request(
                    "POST",
                    "/v1/chat/completions",
                    &chat(user("Hi"), json!({"max_tokens": 2})),
                )
                .await;
            assert_eq!(r.status, 200, "newcomer {i}");
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "newcomer {i} took {:?}",
                t.elapsed()
            );
            newcomers.push(c);
        }
        // The stalled connections were the ones closed.
        for mut s in tcp {
            let mut buf = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
                .await
                .expect("a stalled TCP connection is closed");
            assert!(matches!(n, Ok(0) | Err(_)));
        }
        for mut s in tls {
            read_to_close(&mut s, Duration::from_secs(20)).await;
        }
        // The watcher, idle for less time than any of them, is still there.
        assert_eq!(watcher.request("GET", "/health", b"").await.status, 200);
        let mut c = connect(addr, &policy).await.unwrap();
        let metrics = String::from_utf8(c.request("GET", "/metrics", b"").await.body).unwrap();
        assert!(
            metrics.contains("veritee_connections_refused_total 0"),
            "{metrics}"
        );
        let evicted: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("veritee_connections_evicted_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(evicted >= 5.0, "{metrics}");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// A body shorter than its Content-Length, a chunked body that never ends, and one that
/// trickles on past the body timeout are each answered 408 (OpenAI's error shape) and
/// their connection closed, within the stated budget: 2 s of grace then 1 KiB/s for a
/// stalled body, 4 s (`body_timeout_secs`) for the one that keeps sending.
#[test]
fn a_body_that_does_not_arrive_in_time_gets_408() {
    let model_path = common::model();
    let dir = fresh_dir("hostile-body");
    let config = config_file(
        &dir,
        "[limits]\nbody_timeout_secs = 4\nbody_min_bytes_per_sec = 1024\n",
    );
    let server = Server::start(&model_path, &["--config", config.to_str().unwrap()]);
    let policy = server.policy();
    let addr = server.addr;
    rt().block_on(async {
        let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n";
        // (what is sent, keep sending, the earliest and latest answer)
        let cases: [(String, bool, f64, f64); 3] = [
            (
                format!("{head}content-length: 100\r\n\r\n{{\"model\":\"x\""),
                false,
                1.9,
                4.0,
            ),
            (
                format!("{head}transfer-encoding: chunked\r\n\r\n5\r\n{{\"mod\r\n"),
                false,
                1.9,
                4.0,
            ),
            (
                format!("{head}content-length: 1000000\r\n\r\n"),
                true,
                3.9,
                6.0,
            ),
        ];
        for (i, (request, trickle, earliest, latest)) in cases.into_iter().enumerate() {
            let stream = raw_tls(addr).await;
            let (mut rd, mut wr) = tokio::io::split(stream);
            let t = Instant::now();
            wr.write_all(request.as_bytes()).await.unwrap();
            wr.flush().await.unwrap();
            let writer = tokio::spawn(async move {
                // 2 KiB every half second: 4 KiB/s, above the minimum rate.
                if trickle {
                    loop {
                        if wr.write_all(&[b' '; 2048]).await.is_err()
                            || wr.flush().await.is_err()
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                wr
            });
            let reply = read_to_close(&mut rd, Duration::from_secs(30)).await;
            let took = t.elapsed().as_secs_f64();
            writer.abort();
            let reply = RawReply::parse(&reply);
            assert_eq!(reply.status, 408, "case {i}");
            assert_eq!(reply.header("connection"), Some("close"), "case {i}");
            let v: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(v["error"]["code"], json!("request_timeout"), "case {i}: {v}");
            assert_eq!(v["error"]["type"], json!("invalid_request_error"));
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(
                (earliest..latest).contains(&took),
                "case {i}: answered after {took:.2} s, expected {earliest}..{latest}"
            );
        }
        // And it still serves.
        let mut c = connect(addr, &policy).await.unwrap();
        let r = c
            .request("POST", "/v1/chat/completions", &chat(user("Hi"), json!({"max_tokens": 2})))
            .await;
        assert_eq!(r.status, 200);
        let timed_out = "veritee_requests_total{endpoint=\"chat\",status=\"408\"}";
        wait_for_metric(&mut c, timed_out, |v| v >= 3.0).await;
        assert_eq!(metric(&mut c, timed_out).await, 3.0);
    });
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// A user message of about `tokens` prompt tokens.
fn long_message(model: &LoadedModel, tokens: usize) -> (String, usize) {
    let sentence = "The committee reviewed every ledger from the northern harbour, noting \
                    each cargo, its weight, its owner and the day it sailed. ";
    let mut text = String::from("Summarise the following records.\n");
    loop {
        let n = model
            .prompt_ids(&[Message::new("user", text.as_str())])
            .unwrap()
            .len();
        if n >= tokens {
            return (text, n);
        }
        text.push_str(sentence);
    }
}

/// Seconds the bare engine takes to prefill `prompt` in one shot, on this machine now.
fn one_shot_prefill_secs(model: &LoadedModel, prompt: &[u32]) -> f64 {
    let t = Instant::now();
    let mut cache = model.model.new_cache();
    model
        .model
        .forward(prompt, 0, &mut cache, inference::model::Output::Last)
        .unwrap();
    t.elapsed().as_secs_f64()
}

/// A user message whose one-shot prefill takes about 8 s or more on this machine now
/// (1,500 prompt tokens, more on a fast machine, at most 6,000): (text, prompt tokens,
/// one-shot prefill seconds, seconds per prefill chunk on average). Measured once for
/// the tests that need it.
fn long_prompt() -> &'static (String, usize, f64, f64) {
    static LONG: std::sync::OnceLock<(String, usize, f64, f64)> = std::sync::OnceLock::new();
    LONG.get_or_init(|| {
        let model = LoadedModel::load(&common::model(), None).unwrap();
        measure_long_prompt(&model)
    })
}

fn measure_long_prompt(model: &LoadedModel) -> (String, usize, f64, f64) {
    let mut tokens = 1500;
    loop {
        let (text, n) = long_message(model, tokens);
        let prompt = model
            .prompt_ids(&[Message::new("user", text.as_str())])
            .unwrap();
        let full = one_shot_prefill_secs(model, &prompt);
        if full >= 8.0 || n >= 6000 {
            let chunk = enclave::config::Limits::default().prefill_chunk_tokens;
            return (text, n, full, full * chunk as f64 / n as f64);
        }
        tokens = ((n as f64 * 10.0 / full) as usize).min(6000);
    }
}

/// Prefill checks the deadline between chunks: a long prompt with a 1 s deadline answers
/// 504 within the deadline plus about one chunk (bound: deadline + 2 × the average chunk
/// time measured here + 1.5 s), not after its whole prefill.
#[test]
fn a_long_prompt_answers_504_within_its_deadline_plus_one_chunk() {
    let model_path = common::model();
    let (text, n, full, per_chunk) = long_prompt();
    let (n, full, per_chunk) = (*n, *full, *per_chunk);
    let chunk = enclave::config::Limits::default().prefill_chunk_tokens;
    let deadline = 1.0;
    let bound = deadline + 2.0 * per_chunk + 1.5;
    // The premise: the whole prefill takes far longer than the bound.
    assert!(
        full > bound + 2.0,
        "the prompt is too short to show anything here: prefill {full:.2} s, bound {bound:.2} s"
    );
    let server = Server::start(&model_path, &["--request-timeout", "1", "--max-batch", "1"]);
    let policy = server.policy();
    let (status, v, took) = rt().block_on(async {
        let mut c = connect(server.addr, &policy).await.unwrap();
        let body = chat(user(text), json!({"max_tokens": 4}));
        let t = Instant::now();
        let r = c.request("POST", "/v1/chat/completions", &body).await;
        (r.status, r.json(), t.elapsed().as_secs_f64())
    });
    assert_eq!(status, 504, "{v}");
    assert_eq!(v["error"]["code"], json!("timeout"));
    assert!(
        took < bound,
        "504 after {took:.2} s; bound {bound:.2} s (deadline {deadline} s, {n}-token prompt, \
         one-shot prefill {full:.2} s, chunk of {chunk} ≈ {per_chunk:.2} s)"
    );
    eprintln!("504 after {took:.2} s; one-shot prefill {full:.2} s; bound {bound:.2} s");
}

/// Two clients that leave during their long prompts' prefill free both engine threads
/// within about one chunk (bound: 2 × the average chunk time + 2 s), streamed and not;
/// and the non-streamed one is counted in `veritee_requests_total` as 499.
#[test]
fn abandoned_long_prompts_free_their_engine_threads() {
    let model_path = common::model();
    let (text, _, full, per_chunk) = long_prompt();
    let (full, per_chunk) = (*full, *per_chunk);
    let bound = 2.0 * per_chunk + 2.0;
    assert!(
        full > bound + 2.0,
        "prefill {full:.2} s, bound {bound:.2} s"
    );
    let server = Server::start(&model_path, &["--max-batch", "2"]);
    let policy = server.policy();
    rt().block_on(async {
        let mut watcher = connect(server.addr, &policy).await.unwrap();
        let mut pending = Vec::new();
        for stream in [false, true] {
            let mut c = connect(server.addr, &policy).await.unwrap();
            let body = chat(user(text), json!({"max_tokens": 4, "stream": stream}));
            pending.push(tokio::spawn(async move {
                let r = c.request("POST", "/v1/chat/completions", &body).await;
                (r, c)
            }));
        }
        wait_for_metric(&mut watcher, "veritee_jobs_active", |v| v == 2.0).await;
        let t = Instant::now();
        for p in pending {
            p.abort();
            let _ = p.await;
        }
        wait_for_metric(&mut watcher, "veritee_jobs_active", |v| v == 0.0).await;
        let took = t.elapsed().as_secs_f64();
        assert!(
            took < bound,
            "the engine threads were busy {took:.2} s after their clients left; bound \
             {bound:.2} s (one-shot prefill {full:.2} s)"
        );
        eprintln!(
            "both engine threads free {took:.2} s after the clients left (prefill {full:.2} s)"
        );
        // The request is recorded when its handler unwinds, which can come after the
        // engine thread is free: wait for the count (bounded), then require it exact.
        let left = "veritee_requests_total{endpoint=\"chat\",status=\"499\"}";
        wait_for_metric(&mut watcher, left, |v| v >= 2.0).await;
        assert_eq!(metric(&mut watcher, left).await, 2.0);
    });
}

/// Stop sequences end the answer and are left out of it, streamed and not, including one
/// that spans two tokens and one that ends inside a token.
#[test]
fn stop_sequences_are_left_out_of_the_answer() {
    let model_path = common::model();
    let model = LoadedModel::load(&model_path, None).unwrap();
    let question = "Write one sentence about the sea.";
    let prompt = model.prompt_ids(&[Message::new("user", question)]).unwrap();
    let params = inference::sampling::SamplingParams {
        max_tokens: 32,
        temperature: 0.0,
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
    let pieces: Vec<String> = g
        .output_ids
        .iter()
        .filter(|t| !model.tokenizer.is_eog(**t))
        .map(|&t| model.tokenizer.decode(&[t]).unwrap())
        .collect();
    let text: String = pieces.concat();
    // A stop string across the boundary of tokens 3 and 4 (the end of one, the start of
    // the next), and one that is the inside of token 5.
    let at = |k: usize| pieces[..k].concat().len();
    let k = (3..pieces.len() - 2)
        .find(|&k| pieces[k - 1].trim().len() >= 2 && pieces[k].trim().len() >= 2)
        .expect("two neighbouring word tokens");
    let a = &pieces[k - 1];
    let b = &pieces[k];
    let spanning = format!("{}{}", &a[a.len() - 2..], &b[..2.min(b.len())]);
    let inner_token = &pieces[k + 1];
    let inner = inner_token.trim().to_string();
    assert!(!inner.is_empty());
    let server = Server::start(&model_path, &[]);
    let policy = server.policy();
    rt().block_on(async {
        let mut c = connect(server.addr, &policy).await.unwrap();
        for stop in [spanning.clone(), inner.clone()] {
            let cut = text.find(&stop).unwrap();
            // It ends inside token k + 1 or at its end: the answer is cut mid-way.
            assert!(cut < at(k + 2) && at(k + 2) < text.len(), "{stop:?} in {text:?}");
            let expected = &text[..cut];
            for stream in [false, true] {
                let body = chat(
                    user(question),
                    json!({"max_tokens": 32, "stop": [stop.clone(), "\u{1F600}never"], "stream": stream}),
                );
                let r = c.request("POST", "/v1/chat/completions", &body).await;
                assert_eq!(r.status, 200);
                let (content, finish) = if stream {
                    let events = sse_events(&r.body);
                    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
                    let chunks: Vec<Value> = events[..events.len() - 1]
                        .iter()
                        .map(|e| serde_json::from_str(e).unwrap())
                        .collect();
                    for ch in &chunks {
                        let piece = ch["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                        assert!(!piece.contains(&stop), "a chunk carries the stop string: {piece:?}");
                    }
                    let content: String = chunks
                        .iter()
                        .filter_map(|ch| ch["choices"][0]["delta"]["content"].as_str())
                        .collect();
                    let finish = chunks
                        .iter()
                        .find_map(|ch| ch["choices"][0]["finish_reason"].as_str())
                        .unwrap()
                        .to_string();
                    (content, finish)
                } else {
                    let v = r.json();
                    (
                        v["choices"][0]["message"]["content"].as_str().unwrap().to_string(),
                        v["choices"][0]["finish_reason"].as_str().unwrap().to_string(),
                    )
                };
                assert_eq!(content, expected, "stop {stop:?}, stream {stream}");
                assert_eq!(finish, "stop", "stop {stop:?}, stream {stream}");
            }
        }
    });
}

/// 503 overloaded says when to retry; 405 says what is allowed; HEAD is served on GET
/// routes without a body; content: null, logit_bias and top_logprobs are refused naming
/// the parameter.
#[test]
fn http_details() {
    let model_path = common::model();
    let server = Server::start(&model_path, &[]);
    let policy = server.policy();
    rt().block_on(async {
        let mut c = connect(server.addr, &policy).await.unwrap();
        for (method, path, allow) in [
            ("GET", "/v1/chat/completions", "POST"),
            ("POST", "/health", "GET, HEAD"),
            ("DELETE", "/v1/models", "GET, HEAD"),
            ("PUT", "/v1/receipts", "GET, HEAD"),
        ] {
            let r = c.request(method, path, b"").await;
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(
                r.headers.get("allow").map(|v| v.to_str().unwrap()),
                Some(allow),
                "{method} {path}"
            );
            assert!(r.json()["error"]["message"].is_string());
        }
        let one_model = format!("/v1/models/{MODEL}");
        for path in ["/health", "/v1/models", "/metrics", one_model.as_str()] {
            let get = c.request("GET", path, b"").await;
            let head = c.request("HEAD", path, b"").await;
            assert_eq!(head.status, get.status, "{path}");
            assert!(head.body.is_empty(), "{path}");
            assert_eq!(head.content_type, get.content_type, "{path}");
            if path != "/metrics" {
                // (/metrics changes between the two requests.)
                assert_eq!(
                    head.headers
                        .get("content-length")
                        .map(|v| v.to_str().unwrap().to_owned()),
                    Some(get.body.len().to_string()),
                    "{path}"
                );
            }
        }
        for (body, param) in [
            (
                chat(json!([{"role": "user", "content": null}]), json!({})),
                "messages[0].content",
            ),
            (
                chat(
                    json!([{"role": "system", "content": "x"}, {"role": "user"}]),
                    json!({}),
                ),
                "messages[1].content",
            ),
            (
                chat(user("x"), json!({"logit_bias": {"42": 10}})),
                "logit_bias",
            ),
            (chat(user("x"), json!({"top_logprobs": 3})), "top_logprobs"),
            (chat(user("x"), json!({"logprobs": true})), "logprobs"),
        ] {
            let r = c.request("POST", "/v1/chat/completions", &body).await;
            assert_eq!(r.status, 400, "{param}");
            assert_eq!(r.json()["error"]["param"], json!(param));
        }
    });
}

/// `/v1/receipts` and `/v1/audit/bundle` answer only the auditor's bearer token, whose
/// SHA-256 the attested launch configuration names; without one they answer no one.
#[test]
fn the_audit_routes_answer_only_the_auditor() {
    let model_path = common::model();
    let dir = fresh_dir("hostile-audit");
    let launch = dir.join("launch.toml");
    std::fs::write(&launch, auditor_token_line()).unwrap();
    let closed = Server::start(&model_path, &[]);
    let open = Server::start(&model_path, &["--launch-config", launch.to_str().unwrap()]);
    rt().block_on(async {
        let (name, good) = auditor_header();
        let mut c = connect(closed.addr, &closed.policy()).await.unwrap();
        for path in ["/v1/receipts", "/v1/audit/bundle"] {
            for method in ["GET", "HEAD"] {
                let r = c.request_with(method, path, b"", &[(name, &good)]).await;
                assert_eq!(r.status, 403, "{method} {path} with no token configured");
            }
            let r = c.request("GET", path, b"").await;
            assert_eq!(
                r.json()["error"]["code"],
                json!("auditor_token_not_configured")
            );
        }
        let mut c = connect(open.addr, &open.policy()).await.unwrap();
        // A client's own answer still carries its receipt.
        let r = c
            .request(
                "POST",
                "/v1/chat/completions",
                &chat(user("Hi"), json!({"max_tokens": 2})),
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.headers.contains_key(attestation::receipt::RECEIPT_HEADER));
        let wrong = format!("Bearer {}x", common::AUDITOR_TOKEN);
        for path in ["/v1/receipts", "/v1/audit/bundle"] {
            for headers in [
                vec![],
                vec![(name, wrong.as_str())],
                vec![(name, "Basic abc")],
            ] {
                let r = c.request_with("GET", path, b"", &headers).await;
                assert_eq!(r.status, 401, "{path} {headers:?}");
                assert_eq!(
                    r.headers
                        .get("www-authenticate")
                        .map(|v| v.to_str().unwrap()),
                    Some("Bearer")
                );
                assert_eq!(r.json()["error"]["code"], json!("invalid_auditor_token"));
            }
            let r = c.request_with("GET", path, b"", &[(name, &good)]).await;
            assert_eq!(r.status, 200, "{path}");
            let lower = format!("bearer {}", common::AUDITOR_TOKEN);
            let r = c.request_with("HEAD", path, b"", &[(name, &lower)]).await;
            assert_eq!(r.status, 200, "{path}");
        }
        let page = c
            .request_with("GET", "/v1/receipts", b"", &[(name, &good)])
            .await
            .json();
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
    });
    drop((closed, open));
    let _ = std::fs::remove_dir_all(dir);
}
