//! `veritee-verify audit` against real runtimes (simulated TEE, the bundled model): honest
//! ones across engine threads, CPU kernel paths and concurrent jobs (nothing flagged), and
//! cheating ones (`--dangerous-cheat`, every mode): every cheated job flagged with its
//! class, every job the runtime did not cheat on found honest. Then fraud proofs: each
//! re-checks, a tampered one is refused.
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use attestation::audit::AuditBundle;
use bytes::Bytes;
use enclave::cheat::CheatMode;
use enclave::config::{Config, Limits};
use enclave::startup::{self, Options};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const PROMPTS: [&str; 12] = [
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain in detail how bread is made, step by step.",
    "Describe the water cycle to a curious child, at length.",
    "Tell me about the history of the bicycle.",
    "Write a detailed letter to a friend about a trip to the mountains.",
    "What are the main differences between cats and dogs as pets? Explain fully.",
    "List many reasons why people enjoy gardening, and explain each.",
    "Write a poem about the sea, then explain its imagery.",
    "Describe a busy market in a small town on a Saturday morning.",
    "Explain how a rainbow forms, with as much detail as you can.",
    "Write a story about a robot who learns to paint.",
    "Give a long, detailed description of a forest in autumn.",
];

const STYLES: [&str; 5] = [
    "",
    "Be brief. ",
    "Use simple words. ",
    "Answer like a pirate would. ",
    "Answer formally, in the third person. ",
];

/// The i-th job of a run: varied prompt, greedy or sampled at 0.7–1.0, 8–24 tokens.
fn job(i: usize, fixed_max_tokens: Option<u32>) -> Value {
    let temperature = match i % 4 {
        0 | 2 => 0.0,
        1 => 0.7,
        _ => 1.0,
    };
    let max_tokens = fixed_max_tokens.unwrap_or(8 + (i as u32 * 7) % 17);
    // 60 distinct wordings before one repeats (12 prompts × 5 styles).
    let style = STYLES[(i / PROMPTS.len()) % STYLES.len()];
    let mut body = json!({
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "messages": [{"role": "user", "content": format!("{style}{} ({i})", PROMPTS[i % PROMPTS.len()])}],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": i.is_multiple_of(3),
    });
    if temperature > 0.0 {
        body["seed"] = json!(1000 + i);
        if i.is_multiple_of(5) {
            body["top_p"] = json!(0.9);
        }
        if i.is_multiple_of(7) {
            body["top_k"] = json!(40);
        }
    }
    body
}

struct Run {
    dir: PathBuf,
    bundle: PathBuf,
    policy: PathBuf,
    key: PathBuf,
    jobs: usize,
    cheated: Vec<(String, CheatMode)>,
}

/// Serve `n` jobs on a fresh runtime and export its audit bundle.
fn serve(
    name: &str,
    n: usize,
    parallel: usize,
    kernel: Option<&str>,
    cheat: Option<CheatMode>,
    fixed_max_tokens: Option<u32>,
) -> Run {
    serve_then(name, n, parallel, kernel, cheat, fixed_max_tokens, |_| 0)
}

/// [`serve`], then `after` may sign more jobs with the runtime's own issuer (it returns
/// how many) before the bundle is exported.
fn serve_then(
    name: &str,
    n: usize,
    parallel: usize,
    kernel: Option<&str>,
    cheat: Option<CheatMode>,
    fixed_max_tokens: Option<u32>,
    after: impl FnOnce(&enclave::receipts::Issuer) -> usize,
) -> Run {
    let dir = std::env::temp_dir().join(format!("veritee-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (secret, public) = attestation::transcript::generate_auditor_keypair();
    let key = dir.join("auditor.key");
    std::fs::write(&key, hex::encode(secret)).unwrap();
    let launch = dir.join("launch.toml");
    std::fs::write(
        &launch,
        format!("auditor_hpke_public_key = \"{}\"\n", hex::encode(public)),
    )
    .unwrap();
    let state_dir = dir.join("state");
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        model: Some(inference::gguf::model_for_tests()),
        state_dir: state_dir.clone(),
        launch_config: Some(launch),
        cpu_kernel: kernel.map(str::to_owned),
        limits: Limits {
            max_batch: parallel,
            ..Limits::default()
        },
        ..Config::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runtime = rt
        .block_on(startup::start(Options {
            config,
            simulate: true,
            dangerous_no_receipts: false,
            dangerous_cheat: cheat.map(|m| (m, 1.0)),
            ..Default::default()
        }))
        .expect("the runtime starts");
    let addr = runtime.local_addr().unwrap();
    let state = Arc::clone(&runtime.state);
    let policy = state_dir.join("policy.toml");
    let policy_file =
        client::load_policy(&policy).expect("the simulated runtime writes its policy");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(runtime.serve(async {
        let _ = stop_rx.await;
    }));
    // `parallel` clients, each with its share of the jobs, at once.
    rt.block_on(async {
        let mut clients = Vec::new();
        for c in 0..parallel {
            let policy_file = policy_file.clone();
            clients.push(tokio::spawn(async move {
                let connector = client::Connector::new(policy_file);
                let target = client::Target {
                    host: addr.ip().to_string(),
                    port: addr.port(),
                };
                for i in (c..n).step_by(parallel) {
                    // A fresh connection per job: an idle one may be closed meanwhile.
                    let mut conn = connector.connect(&target, None).await.expect("verified");
                    let body = job(i, fixed_max_tokens).to_string();
                    let req = hyper::Request::builder()
                        .method("POST")
                        .uri("/v1/chat/completions")
                        .header("host", "localhost")
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    let resp = tokio::time::timeout(Duration::from_secs(300), conn.send(req))
                        .await
                        .expect("answered within 300 s")
                        .expect("answered");
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(status, 200, "job {i}: {}", String::from_utf8_lossy(&body));
                }
            }));
        }
        for c in clients {
            c.await.expect("a client task panicked");
        }
    });
    let issuer = state.issuer.as_ref().expect("receipts are on");
    let n = n + after(issuer);
    let cheated = issuer
        .dangerous_cheated_jobs()
        .into_iter()
        .map(|(id, mode)| (hex::encode(id), mode))
        .collect();
    let section = enclave::audit_export::section_of_live(issuer.log()).unwrap();
    assert_eq!(section.receipts.len(), n);
    let bundle = dir.join("bundle.cbor");
    std::fs::write(
        &bundle,
        AuditBundle {
            sections: vec![section],
        }
        .to_cbor(),
    )
    .unwrap();
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    Run {
        dir,
        bundle,
        policy,
        key,
        jobs: n,
        cheated,
    }
}

fn now() -> String {
    attestation::Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .to_rfc3339()
}

fn os(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

fn verifier(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `audit --sample-rate 1 --json` of a run; (exit code, report).
fn audit(run: &Run, extra: &[&str]) -> (i32, Value) {
    let model = inference::gguf::model_for_tests();
    let at = now();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "audit".as_ref(),
        run.bundle.as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
        "--auditor-key".as_ref(),
        run.key.as_os_str(),
        "--policy".as_ref(),
        run.policy.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--sample-rate".as_ref(),
        "1".as_ref(),
        "--seed".as_ref(),
        "5eed".as_ref(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (code, out, err) = verifier(&args);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\nstderr: {err}"));
    calibration_line(&run.dir, &v);
    (code, v)
}

/// The score distributions of a run (quoted in the README's calibration table): per job
/// the fraction of output positions whose token or activations failed, and the claimed
/// over predicted device time; min / median / max over the run's jobs.
fn calibration_line(dir: &Path, report: &Value) {
    let Some(results) = report["results"].as_array() else {
        return;
    };
    let stats = |f: &dyn Fn(&Value) -> Option<f64>| {
        let mut v: Vec<f64> = results.iter().filter_map(f).collect();
        if v.is_empty() {
            return "-".to_owned();
        }
        v.sort_by(f64::total_cmp);
        format!("{:.2}/{:.2}/{:.2}", v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let fraction = |key: &'static str| {
        move |r: &Value| {
            let n = r["scores"]["output_tokens"].as_f64()?.max(1.0);
            Some(r["scores"][key].as_f64()? / n)
        }
    };
    eprintln!(
        "calibration {}: jobs {}, token-failure fraction {}, activation-failure fraction {}, time ratio {}, reexec/device ms {}",
        dir.file_name().unwrap().to_string_lossy(),
        results.len(),
        stats(&fraction("token_failures")),
        stats(&fraction("activation_failures")),
        stats(&|r: &Value| r["scores"]["time_ratio"].as_f64()),
        stats(&|r: &Value| Some(r["reexec_ms"].as_f64()? / r["device_ms"].as_f64()?.max(1.0))),
    );
}

/// The named jobs' verdicts, scores and findings, one line each.
fn summary(report: &Value, jobs: &[String]) -> String {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| jobs.iter().any(|j| r["job_id"] == json!(j)))
        .map(|r| {
            let findings: Vec<String> = r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{}/{}: {}", f["class"], f["check"], f["detail"]))
                .collect();
            format!(
                "{} seq {} t={} tokens {} {} scores {} findings {findings:?}",
                r["job_id"],
                r["seq"],
                r["temperature"],
                r["output_tokens"],
                r["verdict"],
                r["scores"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn verdicts(report: &Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["job_id"].as_str().unwrap().to_owned(),
                r["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The cost model fitted on one honest run, shared by the runs on the same kernel.
fn cost_model(dir: &Path, honest: &Run) -> PathBuf {
    let out = dir.join("cost.toml");
    let _ = std::fs::remove_file(&out);
    let at = now();
    let (code, stdout, stderr) = verifier(&[
        "cost-model".as_ref(),
        honest.bundle.as_os_str(),
        "--policy".as_ref(),
        honest.policy.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--platform".as_ref(),
        "test: this machine's CPU, simulated TEE".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    eprintln!("{stdout}");
    out
}

/// Honest runtimes, 200+ jobs: one engine thread, two with concurrent clients, and every
/// CPU kernel path this machine has forced through the setting; not one job flagged, and
/// the time check (cost model fitted on the first run) passes the concurrent run.
#[test]
fn honest_runtimes_are_never_flagged() {
    let base = serve("honest-1", 50, 1, None, None, None);
    let cost = cost_model(&base.dir, &base);
    let mut runs = vec![(base, true)];
    runs.push((serve("honest-2", 50, 2, None, None, None), true));
    let kernels: Vec<&str> = inference::kernels::Isa::available()
        .into_iter()
        .map(|isa| match isa {
            inference::kernels::Isa::Scalar => "scalar",
            inference::kernels::Isa::Avx2 => "avx2",
            inference::kernels::Isa::Avx512Vnni => "avx512",
        })
        .collect();
    // Every path this CPU has (the others cannot run here, and the output says which ran),
    // with jobs enough for 200 honest ones in all.
    eprintln!("kernel paths on this CPU: {kernels:?} (the others are not checked here)");
    let per_kernel = 100usize.div_ceil(kernels.len()).max(30);
    for k in &kernels {
        runs.push((
            serve(&format!("honest-{k}"), per_kernel, 2, Some(k), None, None),
            false,
        ));
    }
    let mut total = 0;
    for (run, timed) in &runs {
        let cost_arg;
        let extra: Vec<&str> = if *timed {
            cost_arg = cost.to_str().unwrap().to_owned();
            vec!["--cost-model", &cost_arg]
        } else {
            vec![]
        };
        let (code, report) = audit(run, &extra);
        let flagged: Vec<_> = verdicts(&report)
            .into_iter()
            .filter(|(_, v)| v != "honest")
            .collect();
        assert!(
            flagged.is_empty() && code == 0,
            "{}: exit {code}, flagged {flagged:?}\n{}",
            run.dir.display(),
            summary(
                &report,
                &flagged.iter().map(|f| f.0.clone()).collect::<Vec<_>>()
            )
        );
        assert_eq!(report["sampled"], json!(run.jobs));
        assert_eq!(report["verdict"], json!("no_fraud"));
        assert!(run.cheated.is_empty());
        let maxima: Vec<f64> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["scores"]["max_tie_gap"].as_f64().unwrap())
            .collect();
        assert!(
            maxima.iter().all(|g| *g == 0.0),
            "honest CPU runs agree exactly: {maxima:?}"
        );
        total += run.jobs;
    }
    assert!(total >= 200, "{total} honest jobs");
    for (run, _) in runs {
        let _ = std::fs::remove_dir_all(&run.dir);
    }
}

/// One cheating mode: at least 50 cheated jobs, each flagged with `class`, every other
/// job honest; fraud proofs re-check, a tampered one is refused.
fn cheating_mode_is_caught(mode: CheatMode, class: &str, fixed_max_tokens: Option<u32>) {
    let name = mode.as_str();
    let cost = shared_cost_model();
    let run = serve(name, 56, 1, None, Some(mode), fixed_max_tokens);
    assert!(
        run.cheated.len() >= 50,
        "{name}: only {} of {} jobs cheated",
        run.cheated.len(),
        run.jobs
    );
    let proofs = run.dir.join("proofs");
    let (code, report) = audit(
        &run,
        &[
            "--cost-model",
            cost.to_str().unwrap(),
            "--fraud-dir",
            proofs.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{name}: {report}");
    assert_eq!(report["verdict"], json!("fraud"));
    let mut wrong = Vec::new();
    for (job, verdict) in verdicts(&report) {
        let want = if run.cheated.iter().any(|(id, _)| *id == job) {
            class
        } else {
            "honest"
        };
        if verdict != want {
            wrong.push((job, verdict, want));
        }
    }
    assert!(
        wrong.is_empty(),
        "{name}: {} of {} jobs misjudged: {wrong:?}\n{}",
        wrong.len(),
        run.jobs,
        summary(
            &report,
            &wrong.iter().map(|w| w.0.clone()).collect::<Vec<_>>()
        )
    );
    assert_eq!(report["classes"][class], json!(run.cheated.len()));
    // Every cheated job has a proof that re-checks; a tampered one is refused.
    let model = inference::gguf::model_for_tests();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&proofs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        run.cheated.len(),
        "{name}: one proof per cheated job"
    );
    for f in files.iter().take(3) {
        let (code, out, err) = verifier(&[
            "fraud-proof".as_ref(),
            f.as_os_str(),
            "--model".as_ref(),
            model.as_os_str(),
        ]);
        assert_eq!(code, 1, "{name}: {}: {out}\n{err}", f.display());
        assert!(out.starts_with("FRAUD CONFIRMED"), "{out}");
    }
    let mut proof: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let transcript = proof["transcript"].as_str().unwrap().to_owned();
    // One nibble of the transcript changed: no longer the receipt's commitment.
    let flipped = if transcript.ends_with('0') { "1" } else { "0" };
    proof["transcript"] = json!(format!("{}{flipped}", &transcript[..transcript.len() - 1]));
    let tampered = run.dir.join("tampered.json");
    std::fs::write(&tampered, proof.to_string()).unwrap();
    let (code, out, err) = verifier(&[
        "fraud-proof".as_ref(),
        tampered.as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
    ]);
    assert_eq!(code, 2, "{name}: tampered proof: {out}\n{err}");
    assert!(err.contains("REFUSED"), "{err}");
    let _ = std::fs::remove_dir_all(&run.dir);
}

/// The cost model of the cheating runs' time check: fitted once, on an honest run on this
/// machine, for every test in this binary.
fn shared_cost_model() -> PathBuf {
    static COST: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COST.get_or_init(|| {
        let honest = serve("reference", 16, 1, None, None, None);
        cost_model(&honest.dir, &honest)
    })
    .clone()
}

#[test]
fn model_swap_is_caught() {
    cheating_mode_is_caught(CheatMode::ModelSwap, "model_substitution", None);
}

#[test]
fn quantize_is_caught() {
    cheating_mode_is_caught(CheatMode::Quantize, "model_substitution", None);
}

#[test]
fn truncate_is_caught() {
    cheating_mode_is_caught(CheatMode::Truncate, "truncation", None);
}

#[test]
fn fabricate_is_caught() {
    cheating_mode_is_caught(CheatMode::Fabricate, "fabricated_tokens", None);
}

#[test]
fn inflate_tokens_is_caught() {
    cheating_mode_is_caught(CheatMode::InflateTokens, "count_inflation", None);
}

#[test]
fn inflate_time_is_caught() {
    cheating_mode_is_caught(CheatMode::InflateTime, "time_inflation", None);
}

#[test]
fn replay_is_caught() {
    // One length for all, so that every answer fits every later job.
    cheating_mode_is_caught(CheatMode::Replay, "replayed_output", Some(24));
}

/// Bad input is a usage error (exit 2) with a clear message; a withheld transcript is a
/// finding (exit 1).
#[test]
fn bad_input_is_refused_with_exit_2() {
    // Six real jobs, and a seventh signed by the same runtime whose fingerprint claims a
    // version this verifier does not know.
    let run = serve_then("bad-input", 6, 1, None, None, None, |issuer| {
        let mut fingerprint = vec![3u8, 2, 64, 2, 1, 0, 0, 0];
        fingerprint.extend_from_slice(&[0; 8]);
        let issued = issuer
            .issue(enclave::receipts::JobFacts {
                job_id: enclave::receipts::new_job_id(),
                request: job(0, None).to_string().into_bytes(),
                response_sha256: [0; 32],
                prompt_ids: vec![1, 2, 3],
                output_ids: vec![4],
                sampling: attestation::receipt::SamplingParams {
                    temperature: 0.0,
                    top_p: 1.0,
                    top_k: 0,
                    max_tokens: 1,
                    repetition_penalty: 1.0,
                    seed: 0,
                },
                fingerprint,
                end: attestation::transcript::JobEnd::Length,
                dangerous_cheat: None,
                metering: enclave::receipts::Metering::default(),
                audited: true,
            })
            .unwrap();
        issued.durable.wait_blocking().unwrap();
        1
    });
    let (code, report) = audit(&run, &[]);
    assert_eq!(code, 2, "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("fingerprint of version 3"),
        "{report}"
    );
    // The same bundle without the seventh job's transcript: it is withheld, a finding.
    let bytes = std::fs::read(&run.bundle).unwrap();
    let mut bundle = AuditBundle::from_cbor(&bytes).unwrap();
    bundle.sections[0].transcripts[6] = None;
    std::fs::write(&run.bundle, bundle.to_cbor()).unwrap();
    let (code, report) = audit(&run, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["classes"]["transcript_withheld"], json!(1));
    let withheld: Vec<_> = verdicts(&report)
        .into_iter()
        .filter(|(_, v)| v == "transcript_withheld")
        .collect();
    assert_eq!(withheld.len(), 1, "{report}");
    assert_eq!(
        verdicts(&report)
            .iter()
            .filter(|(_, v)| v == "honest")
            .count(),
        6
    );
    // A model file with another digest (one byte of its last tensor changed).
    let model = inference::gguf::model_for_tests();
    let mut other = std::fs::read(&model).unwrap();
    *other.last_mut().unwrap() ^= 1;
    let other_model = run.dir.join("other.gguf");
    std::fs::write(&other_model, other).unwrap();
    let usage = |args: &[&std::ffi::OsStr], want: &str| {
        let (code, out, err) = verifier(args);
        assert_eq!(code, 2, "{want}: {out}\n{err}");
        assert!(err.contains(want), "{want}: {err}");
    };
    let at = now();
    let base = |bundle: &Path, model: &Path, key: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "audit".into(),
            bundle.into(),
            "--model".into(),
            model.into(),
            "--auditor-key".into(),
            key.into(),
            "--policy".into(),
            run.policy.clone().into(),
            "--at".into(),
            at.clone().into(),
        ]
    };
    let a = base(&run.bundle, &other_model, &run.key);
    usage(&os(&a), "has digest");
    // Another auditor key: not one transcript opens.
    let wrong_key = run.dir.join("wrong.key");
    std::fs::write(&wrong_key, hex::encode([7u8; 32])).unwrap();
    let a = base(&run.bundle, &model, &wrong_key);
    usage(&os(&a), "opens with the auditor key");
    // A truncated bundle.
    let truncated = run.dir.join("truncated.cbor");
    let bytes = std::fs::read(&run.bundle).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let a = base(&truncated, &model, &run.key);
    usage(&os(&a), "is not an audit bundle");
    // Sample rates outside (0, 1].
    for rate in ["0", "1.5", "NaN"] {
        let mut a = base(&run.bundle, &model, &run.key);
        a.extend(["--sample-rate".into(), rate.into()]);
        usage(&os(&a), "--sample-rate must be in (0, 1]");
    }
    let _ = std::fs::remove_dir_all(&run.dir);
}
