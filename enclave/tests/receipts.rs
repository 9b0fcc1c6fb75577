//! Receipts end to end: the real binary signs one receipt per job, hands it to the client
//! with the answer (header, or the stream's last event) only once it is durable, serves
//! the log and an audit bundle that verifies offline, and loses no acknowledged receipt
//! to a `kill -9`.

#[macro_use]
mod common;

use attestation::audit::{self, AuditBundle, TranscriptOpener};
use attestation::receipt::{ReceiptClaims, RECEIPT_HEADER};
use attestation::transcript;
use attestation::Rejection;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use client::receipts::{check_header, SseReceiptFilter};
use common::{
    auditor_header, auditor_token_line, connect, fresh_dir, now, rt, wait_for_metric, RequestExt,
    Server,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn body(message: &str, max_tokens: usize, stream: bool, audit: bool) -> Vec<u8> {
    json!({
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "messages": [{"role": "user", "content": message}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": 11,
        "stream": stream,
        "veritee_audit": audit,
    })
    .to_string()
    .into_bytes()
}

/// A launch configuration naming a fresh auditor key and the tests' auditor token;
/// returns (its path, the secret).
fn launch_with_auditor(dir: &std::path::Path) -> (std::path::PathBuf, [u8; 32]) {
    let (secret, public) = transcript::generate_auditor_keypair();
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            "auditor_hpke_public_key = \"{}\"\n{}",
            hex::encode(public),
            auditor_token_line()
        ),
    )
    .unwrap();
    (path, secret)
}

/// A launch configuration naming only the tests' auditor token (the audit routes open).
fn launch_with_auditor_token(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(&path, auditor_token_line()).unwrap();
    path
}

/// GET an audit route as the tests' auditor.
async fn audit_get(c: &mut client::AttestedConnection, path: &str) -> common::Reply {
    let (name, value) = auditor_header();
    c.request_with("GET", path, b"", &[(name, &value)]).await
}

fn opener(secret: [u8; 32]) -> impl Fn(&[u8], &ReceiptClaims) -> Result<(), Rejection> {
    move |sealed, claims| {
        let t = transcript::open(sealed, &secret)?;
        transcript::check_against_receipt(&t, claims)
    }
}

#[test]
fn every_answer_carries_a_durable_receipt_and_the_audit_bundle_verifies() {
    let model_path = common::model();
    let dir = fresh_dir("receipts-launch");
    let (launch, secret) = launch_with_auditor(&dir);
    let server = Server::start(&model_path, &["--launch-config", launch.to_str().unwrap()]);
    let policy = server.policy();
    rt().block_on(async {
        let mut c = connect(server.addr, &policy)
            .await
            .expect("evidence verifies");

        // Non-streamed: the header receipt checks against this exchange.
        let request = body("Name a colour.", 12, false, true);
        let r = c.request("POST", "/v1/chat/completions", &request).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let header = r.headers.get(RECEIPT_HEADER).map(|v| v.to_str().unwrap());
        let first = check_header(&c.attested, header, &request, &r.body).expect("receipt checks");
        let usage = &r.json()["usage"];
        let claims = first.claims().clone();
        assert_eq!(claims.seq, 0);
        assert_eq!(claims.prev_receipt_sha256, [0; 32]);
        assert_eq!(Value::from(claims.prompt_tokens), usage["prompt_tokens"]);
        assert_eq!(
            Value::from(claims.output_tokens),
            usage["completion_tokens"]
        );
        assert!(claims.audited);
        assert_eq!(claims.sampling.seed, 11);
        assert_eq!(claims.sampling.max_tokens, 12);
        assert!((claims.sampling.temperature - 0.7).abs() < 1e-6);
        assert!(
            claims.device_ms > 0,
            "a job that generated tokens used CPU time"
        );
        assert!(claims.wall_end_ms >= claims.wall_start_ms);
        assert!(claims.device_share_ppm > 0 && claims.device_share_ppm <= 1_000_000);
        // Device time cannot exceed what every CPU could give over the job's wall time
        // (1 ms of rounding per clock), and the share is that ratio.
        let cpus = std::thread::available_parallelism().unwrap().get() as u64;
        let wall = claims.wall_end_ms - claims.wall_start_ms;
        assert!(claims.device_ms <= (wall + 1) * cpus, "{claims:?}");
        let share = claims.device_ms as f64 / (wall.max(1) * cpus) as f64 * 1e6;
        assert!(
            (share - claims.device_share_ppm as f64).abs() <= 0.02e6 + 1e6 / wall.max(1) as f64,
            "share {} ppm, device/wall gives {share:.0}",
            claims.device_share_ppm
        );
        // The header receipt does not check against another body or request.
        let mut other = r.body.clone();
        other.push(b' ');
        assert_eq!(
            check_header(&c.attested, header, &request, &other)
                .unwrap_err()
                .reason,
            attestation::Reason::ReceiptMismatch
        );
        assert_eq!(
            check_header(&c.attested, header, b"{}", &r.body)
                .unwrap_err()
                .reason,
            attestation::Reason::ReceiptMismatch
        );

        // Streamed: the last event before [DONE] is the receipt over every byte before it.
        let request = body("Count to three.", 10, true, true);
        let r = c.request("POST", "/v1/chat/completions", &request).await;
        assert_eq!(r.status, 200);
        let mut filter = SseReceiptFilter::default();
        let passed = filter.push(&r.body);
        assert!(String::from_utf8_lossy(&passed).ends_with("data: [DONE]\n\n"));
        assert!(!String::from_utf8_lossy(&passed).contains("veritee.receipt"));
        let second = filter
            .check(&c.attested, &request)
            .expect("stream receipt checks");
        assert_eq!(second.claims().seq, 1);
        assert_eq!(second.claims().prev_receipt_sha256, first.sha256());

        // Opted out of auditing: the receipt says so, and no transcript is kept.
        let request = body("Say hi.", 6, false, false);
        let r = c.request("POST", "/v1/chat/completions", &request).await;
        let header = r.headers.get(RECEIPT_HEADER).map(|v| v.to_str().unwrap());
        let third = check_header(&c.attested, header, &request, &r.body).unwrap();
        assert!(!third.claims().audited);
        assert_eq!(third.claims().seq, 2);

        // The log serves what the clients got, in order, from any sequence number.
        let page = audit_get(&mut c, "/v1/receipts?from=1").await.json();
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0]["seq"], json!(1));
        assert_eq!(
            BASE64.decode(data[1]["receipt"].as_str().unwrap()).unwrap(),
            BASE64.decode(header.unwrap()).unwrap()
        );
        assert!(data[1]["transcript"].is_null());
        assert!(data[0]["transcript"].is_string());
        assert_eq!(page["next"], json!(3));
        assert_eq!(
            page["evidence_sha256"],
            json!(hex::encode(c.attested.evidence_sha256()))
        );
        let bad = audit_get(&mut c, "/v1/receipts?from=x").await;
        assert_eq!(bad.status, 400);

        // The audit bundle verifies offline, transcripts opened and matched.
        let r = audit_get(&mut c, "/v1/audit/bundle").await;
        assert_eq!(r.status, 200);
        let bundle = AuditBundle::from_cbor(&r.body).unwrap();
        let open = opener(secret);
        let report =
            audit::verify_bundle(&bundle, &policy, now(), Some(&open as TranscriptOpener<'_>))
                .expect("the audit bundle verifies");
        assert_eq!(report.jobs, 3);
        assert_eq!(
            report.output_tokens,
            first.claims().output_tokens
                + second.claims().output_tokens
                + third.claims().output_tokens
        );
        let s = &report.sections[0];
        assert_eq!(s.transcripts.audited_jobs, 2);
        assert_eq!(s.transcripts.present, 2);
        assert_eq!(s.transcripts.opened, 2);
        // Another auditor's key cannot open them.
        let (wrong, _) = transcript::generate_auditor_keypair();
        let open_wrong = opener(wrong);
        let err = audit::verify_bundle(
            &bundle,
            &policy,
            now(),
            Some(&open_wrong as TranscriptOpener<'_>),
        )
        .unwrap_err();
        assert_eq!(err.reason, attestation::Reason::TranscriptUndecryptable);

        let health = c.request("GET", "/health", b"").await.json();
        assert_eq!(health["receipts"]["durable_seq"], json!(2));
        assert_eq!(health["receipts"]["healthy"], json!(true));
    });
    let _ = std::fs::remove_dir_all(dir);
}

/// Many clients, `kill -9` mid-load, restart: every receipt a client received is in the
/// log, and the whole log (both instances) verifies.
#[test]
fn kill_minus_nine_mid_load_loses_no_acknowledged_receipt() {
    let model_path = common::model();
    let state = fresh_dir("receipts-crash");
    let launch = launch_with_auditor_token(&state);
    let launch = launch.to_str().unwrap();
    let mut server = Server::start_in(
        &model_path,
        &state,
        &["--max-batch", "2", "--launch-config", launch],
    );
    let policy = server.policy();
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let addr = server.addr;
    let runtime = rt();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let received = Arc::clone(&received);
            let policy = policy.clone();
            runtime.spawn(async move {
                let Ok(mut c) = connect(addr, &policy).await else {
                    return;
                };
                for n in 0.. {
                    let stream = (i + n) % 2 == 0;
                    let request = body(&format!("Tell me about the number {n}."), 16, stream, true);
                    let req = hyper::Request::post("/v1/chat/completions")
                        .header("host", "localhost")
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(bytes::Bytes::from(
                            request.clone(),
                        )))
                        .unwrap();
                    // The server dies under us: any error ends this client.
                    let Ok(resp) = c.send(req).await else { return };
                    let header = resp
                        .headers()
                        .get(RECEIPT_HEADER)
                        .map(|v| v.to_str().unwrap().to_owned());
                    let Ok(b) = http_body_util::BodyExt::collect(resp.into_body()).await else {
                        return;
                    };
                    let b = b.to_bytes();
                    let receipt = if stream {
                        let mut f = SseReceiptFilter::default();
                        f.push(&b);
                        let Some(receipt) = f.receipt().map(<[u8]>::to_vec) else {
                            return; // cut off before its receipt: nothing acknowledged
                        };
                        f.check(&c.attested, &request)
                            .expect("a received receipt checks");
                        receipt
                    } else {
                        let Some(header) = header else { return };
                        check_header(&c.attested, Some(&header), &request, &b)
                            .expect("a received receipt checks");
                        BASE64.decode(header).unwrap()
                    };
                    received.lock().unwrap().push(receipt);
                }
            })
        })
        .collect();
    // Let receipts accumulate, then kill without warning.
    let started = Instant::now();
    while received.lock().unwrap().len() < 12 && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    // Every client ends once the server is gone; a failed receipt check inside one is a
    // panic in its task, re-raised here so it fails the test.
    runtime.block_on(async {
        for (i, c) in clients.into_iter().enumerate() {
            match tokio::time::timeout(Duration::from_secs(30), c).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(Err(e)) => panic!("client {i}: {e}"),
                Err(_) => panic!("client {i} still running 30 s after the kill"),
            }
        }
    });
    let acknowledged = received.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 12,
        "only {} receipts before the kill",
        acknowledged.len()
    );

    // Restart on the same state: the old instance's log is recovered, a new one starts.
    let restarted = Server::start_in(&model_path, &state, &["--launch-config", launch]);
    runtime.block_on(async {
        let mut c = connect(restarted.addr, &policy).await.unwrap();
        let request = body("After the crash.", 4, false, true);
        let r = c.request("POST", "/v1/chat/completions", &request).await;
        assert_eq!(r.status, 200);
        let page = audit_get(&mut c, "/v1/receipts?from=0").await.json();
        assert_eq!(
            page["data"].as_array().unwrap().len(),
            1,
            "a new chain from seq 0"
        );
    });
    drop(restarted);

    let out = state.join("audit.cbor");
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_veritee-enclave"))
        .args(["export-audit", "--state-dir"])
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let bundle = AuditBundle::from_cbor(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        bundle.sections.len(),
        2,
        "the crashed instance and the restarted one"
    );
    let report =
        audit::verify_bundle(&bundle, &policy, now(), None).expect("the whole log verifies");
    let logged: HashSet<&Vec<u8>> = bundle.sections.iter().flat_map(|s| &s.receipts).collect();
    for r in &acknowledged {
        assert!(
            logged.contains(r),
            "an acknowledged receipt is missing from the log"
        );
    }
    assert!(report.jobs as usize > acknowledged.len());
    let _ = std::fs::remove_dir_all(&state);
}

/// A client that goes away mid-answer: the job stops at its next token (it does not run to
/// `max_tokens`), and its receipt still goes to the log. Streamed and not.
#[test]
fn an_abandoned_job_stops_early_and_is_still_receipted() {
    let model_path = common::model();
    let dir = fresh_dir("receipts-abandoned");
    let launch = launch_with_auditor_token(&dir);
    let server = Server::start(&model_path, &["--launch-config", launch.to_str().unwrap()]);
    let policy = server.policy();
    let max_tokens = 400;
    let request = |stream: bool| {
        json!({
            "model": "SmolLM2-135M-Instruct.Q4_1",
            // Counting runs to max_tokens (checked below): about two seconds of decoding
            // here, against the milliseconds between the job starting and its client leaving.
            "messages": [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": stream,
        })
        .to_string()
    };
    rt().block_on(async {
        // Seq 0: the same job run to the end, so the early stop below is measured against
        // what it would have produced.
        let mut c = connect(server.addr, &policy).await.unwrap();
        let full = c
            .request("POST", "/v1/chat/completions", request(false).as_bytes())
            .await;
        assert_eq!(full.status, 200);
        let full = full.json();
        let natural = full["usage"]["completion_tokens"].as_u64().unwrap();
        // The premise: left alone, the job runs long (seconds), so stopping at the next
        // token after its client left is far below it.
        assert!(natural >= 200, "the job ends by itself too soon: {full}");
        drop(c);
        // Connected only now: an idle connection is closed after handshake_timeout_secs,
        // which the job above can outlast on a loaded machine.
        let mut watcher = connect(server.addr, &policy).await.unwrap();
        for (seq, stream) in [(1u64, false), (2, true)] {
            // The previous job is gone before this one starts, so "one active" means it.
            wait_for_metric(&mut watcher, "veritee_jobs_active", |v| v == 0.0).await;
            let mut c = connect(server.addr, &policy).await.unwrap();
            let body = request(stream);
            let pending = tokio::spawn(async move {
                let r = c
                    .request("POST", "/v1/chat/completions", body.as_bytes())
                    .await;
                (r, c)
            });
            // Leave once the job is generating: the request task and its connection are
            // dropped unread.
            wait_for_metric(&mut watcher, "veritee_jobs_active", |v| v == 1.0).await;
            pending.abort();
            let _ = pending.await;
            let mut logged = None;
            for _ in 0..200 {
                let mut c = connect(server.addr, &policy).await.unwrap();
                let page = audit_get(&mut c, &format!("/v1/receipts?from={seq}"))
                    .await
                    .json();
                if let Some(item) = page["data"].as_array().and_then(|d| d.first()).cloned() {
                    logged = Some(item);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let item = logged.expect("the abandoned job's receipt reached the log");
            let bytes = BASE64.decode(item["receipt"].as_str().unwrap()).unwrap();
            let c = connect(server.addr, &policy).await.unwrap();
            let claims = c.attested.verify_receipt(&bytes).unwrap().claims().clone();
            assert_eq!(claims.seq, seq);
            assert!(
                claims.output_tokens < natural / 2,
                "the job ran on after its client left: {} of the {natural} tokens it makes \
                 when its client stays",
                claims.output_tokens
            );
        }
    });
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
