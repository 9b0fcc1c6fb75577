//! `veritee`: the client's command line. Verifies the runtime before sending anything.
//!
//! Exit status: 0 verified (and the request succeeded), 1 the server was refused
//! (evidence, binding, policy, not TLS), 2 usage or transport errors.

use attestation::bundle::AttestedRuntime;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use client::receipts::SseReceiptFilter;
use client::sse::SseParser;
use client::{load_policy, ClientError, Connector, Target};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "veritee",
    version,
    about = "Verify a veritee runtime's attestation, then talk to it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify the runtime at URL and print what was verified.
    Attest(AttestArgs),
    /// Verify the runtime at URL, then stream a chat completion (interactive without -m).
    Chat(ChatArgs),
    /// A local plain-HTTP OpenAI-compatible endpoint forwarding only to a verified upstream.
    Proxy(ProxyArgs),
    /// Verify the runtime at URL, then save its audit bundle (evidence, receipts, sealed
    /// transcripts of the running instance) for `veritee-verify receipts`.
    AuditBundle(AuditBundleArgs),
}

#[derive(Args)]
struct AuditBundleArgs {
    #[command(flatten)]
    common: Common,
    /// Where to write the bundle (refuses to overwrite).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// File holding the auditor's bearer token (the one whose SHA-256 the launch
    /// configuration names as auditor_token_sha256); sent as `Authorization: Bearer`.
    #[arg(long, value_name = "FILE")]
    auditor_token: PathBuf,
}

#[derive(Args)]
struct ProxyArgs {
    /// Local address to listen on (plain HTTP: keep it on loopback).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// https:// URL of the runtime.
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// Policy file: the evidence policy plus its [runtime] section.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Opt every forwarded chat request out of auditing (`"veritee_audit": false`): the
    /// runtime then seals no transcript and its receipt says `audited: false`. A request
    /// that carries its own `veritee_audit` field is passed through unchanged.
    #[arg(long)]
    no_audit: bool,
}

#[derive(Args)]
struct Common {
    /// https:// URL of the runtime.
    url: String,
    /// Policy file: the evidence policy plus its [runtime] section.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Also ask for fresh evidence answering a random nonce (proves liveness now).
    #[arg(long)]
    nonce: bool,
}

#[derive(Args)]
struct AttestArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ChatArgs {
    #[command(flatten)]
    common: Common,
    /// The message; without it, read messages from stdin, one per line.
    #[arg(short, long)]
    message: Option<String>,
    /// Model name [default: the runtime's only model].
    #[arg(long)]
    model: Option<String>,
    /// Most tokens to generate per answer (at least 1).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 2.
    #[arg(long, default_value_t = 0.0, value_parser = parse_temperature)]
    temperature: f32,
    /// Opt out of auditing (`"veritee_audit": false`): the runtime seals no transcript
    /// of this chat and each receipt says `audited: false`.
    #[arg(long)]
    no_audit: bool,
}

/// A temperature the runtime accepts: a finite number from 0 to 2 (NaN would be written
/// as JSON `null`, which the runtime reads as its default, 1).
fn parse_temperature(text: &str) -> Result<f32, String> {
    let t: f32 = text
        .trim()
        .parse()
        .map_err(|e| format!("not a number: {e}"))?;
    if !t.is_finite() || !(0.0..=2.0).contains(&t) {
        return Err(format!("{text} is not a temperature from 0 to 2"));
    }
    Ok(t)
}

/// Write the whole output to stdout. A reader that went away early (`veritee attest |
/// head -1`) is not an error: the exit status stays the verification's, not a panic.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("veritee: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        match cli.command {
            Command::Attest(args) => attest(args).await,
            Command::Chat(args) => chat(args).await,
            Command::Proxy(args) => proxy(args).await,
            Command::AuditBundle(args) => audit_bundle(args).await,
        }
    })
}

async fn proxy(args: ProxyArgs) -> ExitCode {
    let policy = match load_policy(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("veritee: {e}");
            return ExitCode::from(2);
        }
    };
    let upstream = match Target::parse(&args.upstream) {
        Ok(t) => t,
        Err(e) => return refused(&e),
    };
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "veritee: warning: the proxy speaks plain HTTP on {}, reachable beyond this machine",
            args.listen
        );
    }
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("veritee: listening on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().map_or(args.listen, |a| a);
    eprintln!(
        "veritee: forwarding to {} only after verifying it under {}",
        args.upstream,
        args.policy.display()
    );
    if args.no_audit {
        eprintln!("veritee: chat requests are forwarded with \"veritee_audit\": false unless they carry their own");
    }
    // The one stdout line: scripts read the address from it.
    emit(&format!("veritee: proxy listening on http://{addr}\n"));
    let connector = std::sync::Arc::new(Connector::new(policy));
    let options = client::proxy::ProxyOptions {
        no_audit: args.no_audit,
    };
    match client::proxy::serve(listener, connector, upstream, options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("veritee: proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn refused(e: &ClientError) -> ExitCode {
    eprintln!("veritee: refused: {e}");
    ExitCode::from(if e.is_refusal() { 1 } else { 2 })
}

async fn connect(
    common: &Common,
) -> Result<(client::AttestedConnection, Option<Vec<u8>>), ExitCode> {
    let policy = load_policy(&common.policy).map_err(|e| {
        eprintln!("veritee: {e}");
        ExitCode::from(2)
    })?;
    let target = Target::parse(&common.url).map_err(|e| refused(&e))?;
    let nonce = common
        .nonce
        .then(|| client::connector::random_nonce().to_vec());
    let connector = Connector::new(policy);
    let conn = connector
        .connect(&target, nonce.as_deref())
        .await
        .map_err(|e| refused(&e))?;
    Ok((conn, nonce))
}

fn describe(attested: &AttestedRuntime) -> Value {
    let claims = attested.claims();
    json!({
        "platform": attested.evidence().platform().as_str(),
        "evidence": attested.evidence().claims(),
        "runtime": claims,
        "gpus": attested
            .gpus()
            .iter()
            .map(|g| g.claims())
            .collect::<Vec<_>>(),
    })
}

async fn attest(args: AttestArgs) -> ExitCode {
    let policy_path = args.common.policy.display().to_string();
    let (conn, nonce) = match connect(&args.common).await {
        Ok(c) => c,
        Err(code) => {
            if args.json {
                emit(&format!(
                    "{}\n",
                    json!({"verdict": "refused", "url": args.common.url})
                ));
            }
            return code;
        }
    };
    let mut out = describe(&conn.attested);
    out["verdict"] = json!("verified");
    out["url"] = json!(args.common.url);
    out["policy"] = json!(policy_path);
    out["nonce"] = json!(nonce.as_ref().map(hex::encode));
    if args.json {
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&out).expect("JSON")
        ));
        return ExitCode::SUCCESS;
    }
    let claims = conn.attested.claims();
    let mut text = String::new();
    // Writing to a String cannot fail.
    let w = &mut text;
    writeln!(
        w,
        "veritee: {} VERIFIED under {policy_path}",
        args.common.url
    )
    .unwrap();
    writeln!(
        w,
        "  platform        {}",
        out["platform"].as_str().unwrap_or("?")
    )
    .unwrap();
    // The fields a person checks; `--json` has every field.
    const SHOWN: &[&str] = &[
        "product",
        "signing_key",
        "measurement",
        "host_data",
        "debug",
        "migration_agent",
        "vmpl",
        "reported_tcb",
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "mrconfigid",
        "tcb_status",
        "fmspc",
        "root_sha256",
    ];
    if let Value::Object(fields) = &out["evidence"] {
        for key in SHOWN {
            if let Some(v) = fields.get(*key) {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                writeln!(w, "  {key:<15} {v}").unwrap();
            }
        }
    }
    for (i, g) in conn.attested.gpus().iter().enumerate() {
        let c = g.claims();
        writeln!(
            w,
            "  gpu {i:<11} {} {} driver {} VBIOS {} (bound: claim 8, nonce from the claims)",
            c.architecture,
            c.hwmodel,
            c.driver_version.as_deref().unwrap_or("?"),
            c.vbios_version.as_deref().unwrap_or("?"),
        )
        .unwrap();
    }
    writeln!(w, "  model digest    {}", hex::encode(claims.model_digest)).unwrap();
    writeln!(w, "  runtime         {}", claims.runtime_version).unwrap();
    writeln!(
        w,
        "  launch config   {}",
        hex::encode(claims.launch_config_digest)
    )
    .unwrap();
    writeln!(
        w,
        "  TLS key         sha256 {} (this connection's certificate key)",
        hex::encode(claims.tls_spki_sha256)
    )
    .unwrap();
    writeln!(
        w,
        "  receipt key     COSE alg {} {}",
        claims.receipt_key.alg,
        hex::encode(&claims.receipt_key.public_key)
    )
    .unwrap();
    writeln!(
        w,
        "  auditor key     {}",
        claims.auditor_hpke_key.as_ref().map_or(
            "none (transcripts not escrowed)".into(),
            |k| format!(
                "{} (transcripts are sealed to it)",
                hex::encode(&k.public_key)
            )
        )
    )
    .unwrap();
    match &nonce {
        Some(n) => writeln!(
            w,
            "  freshness       evidence answered nonce {}",
            hex::encode(n)
        ),
        None => writeln!(w, "  freshness       not asked (use --nonce)"),
    }
    .unwrap();
    emit(&text);
    ExitCode::SUCCESS
}

async fn chat(args: ChatArgs) -> ExitCode {
    let (mut conn, _) = match connect(&args.common).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    eprintln!(
        "veritee: verified {} (model {}); sending",
        args.common.url,
        hex::encode(&conn.attested.claims().model_digest[..8])
    );
    let model = match &args.model {
        Some(m) => m.clone(),
        None => match get_json(&mut conn, "/v1/models").await {
            Ok(v) => v["data"][0]["id"].as_str().unwrap_or_default().to_owned(),
            Err(e) => {
                eprintln!("veritee: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut history: Vec<Value> = Vec::new();
    let one_shot = args.message.is_some();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        let message = match &args.message {
            Some(m) if history.is_empty() => m.clone(),
            Some(_) => break,
            None => {
                eprint!("> ");
                let _ = std::io::stderr().flush();
                match lines.next() {
                    Some(Ok(l)) if !l.trim().is_empty() => l,
                    Some(Ok(_)) => continue,
                    _ => break,
                }
            }
        };
        history.push(json!({"role": "user", "content": message}));
        let body = json!({
            "model": model,
            "messages": history,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
        });
        let mut body = body;
        if args.no_audit {
            body["veritee_audit"] = json!(false);
        }
        match stream_chat(&mut conn, &body).await {
            Ok(answer) => history.push(json!({"role": "assistant", "content": answer})),
            Err(ChatError::Refused(e)) => {
                eprintln!("veritee: {e}");
                return ExitCode::from(1);
            }
            Err(ChatError::Failed(e)) => {
                eprintln!("veritee: {e}");
                return ExitCode::from(2);
            }
        }
        if one_shot {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// `GET /v1/audit/bundle` over the verified connection; the bundle must parse and carry
/// the evidence this connection verified, before it is written.
async fn audit_bundle(args: AuditBundleArgs) -> ExitCode {
    let authorization = match std::fs::read_to_string(&args.auditor_token)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            let t = t.trim();
            if t.is_empty() {
                return Err("the file is empty".into());
            }
            hyper::header::HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| "the token is not a valid header value".into())
        }) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("veritee: {}: {e}", args.auditor_token.display());
            return ExitCode::from(2);
        }
    };
    let (mut conn, _) = match connect(&args.common).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let req = hyper::Request::get("/v1/audit/bundle")
        .header("host", "veritee")
        .header(hyper::header::AUTHORIZATION, authorization)
        .body(Full::new(Bytes::new()))
        .expect("static request parts");
    let fetched = async {
        let resp = conn.send(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "the runtime answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(body)
    }
    .await;
    let body = match fetched {
        Ok(b) => b,
        Err(e) => {
            eprintln!("veritee: /v1/audit/bundle: {e}");
            return ExitCode::from(2);
        }
    };
    let bundle = match attestation::audit::AuditBundle::from_cbor(&body) {
        Ok(b) => b,
        Err(r) => {
            eprintln!("veritee: refused the audit bundle: {r}");
            return ExitCode::from(1);
        }
    };
    let verified = conn.attested.evidence_sha256();
    let ours = bundle.sections.iter().any(|s| {
        attestation::bundle::EvidenceBundle::from_cbor(&s.evidence)
            .is_ok_and(|e| e.sha256() == verified)
    });
    if !ours {
        eprintln!("veritee: refused the audit bundle: it does not carry the evidence this connection verified");
        return ExitCode::from(1);
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .and_then(|mut f| f.write_all(&body).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        eprintln!("veritee: {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    let receipts: usize = bundle.sections.iter().map(|s| s.receipts.len()).sum();
    eprintln!(
        "veritee: wrote {} ({} bytes): {} receipt(s) of the verified runtime; check them with `veritee-verify receipts`",
        args.out.display(),
        body.len(),
        receipts
    );
    ExitCode::SUCCESS
}

async fn get_json(conn: &mut client::AttestedConnection, path: &str) -> Result<Value, String> {
    let req = hyper::Request::get(path)
        .header("host", "veritee")
        .body(Full::new(Bytes::new()))
        .expect("static request parts");
    let resp = conn.send(req).await.map_err(|e| e.to_string())?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body.to_bytes()).map_err(|e| format!("{path}: {e}"))
}

/// Why a chat answer was not accepted.
enum ChatError {
    /// Its receipt is missing or does not check, or bytes came that it does not cover
    /// (exit status 1, like any refusal).
    Refused(String),
    /// Transport or server errors (exit status 2).
    Failed(String),
}

impl From<String> for ChatError {
    fn from(e: String) -> Self {
        ChatError::Failed(e)
    }
}

fn receipt_refused(r: &attestation::Rejection) -> ChatError {
    ChatError::Refused(format!(
        "REFUSED the answer's receipt: {} ({})",
        r.reason.code(),
        r.detail
    ))
}

/// Send one streamed chat request, print the answer as it arrives, then check the
/// stream's usage receipt against the verified evidence; returns the text.
async fn stream_chat(
    conn: &mut client::AttestedConnection,
    body: &Value,
) -> Result<String, ChatError> {
    let request = Bytes::from(body.to_string());
    let req = hyper::Request::post("/v1/chat/completions")
        .header("host", "veritee")
        .header("content-type", "application/json")
        .body(Full::new(request.clone()))
        .expect("static request parts");
    let resp = conn.send(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        return Err(ChatError::Failed(format!(
            "the runtime answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    let mut receipt = SseReceiptFilter::default();
    let mut parser = SseParser::default();
    let mut answer = String::new();
    let mut stdout = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let passed = receipt.push(data);
        if let Some(r) = receipt.error() {
            // Whatever came with or after a bad receipt event is not shown.
            return Err(receipt_refused(r));
        }
        for event in parser.push(&passed) {
            if event == "[DONE]" {
                let _ = writeln!(stdout);
                let verified = receipt
                    .check(&conn.attested, &request)
                    .map_err(|r| receipt_refused(&r))?;
                let c = verified.claims();
                eprintln!(
                    "[receipt seq {} verified: {} prompt + {} output tokens, {} ms device time, {}, job {}]",
                    c.seq,
                    c.prompt_tokens,
                    c.output_tokens,
                    c.device_ms,
                    if c.audited {
                        "audited (transcript sealed to the auditor)"
                    } else {
                        "not audited (no transcript kept)"
                    },
                    hex::encode(c.job_id)
                );
                return Ok(answer);
            }
            let v: Value = serde_json::from_str(&event).map_err(|e| format!("bad event: {e}"))?;
            if let Some(err) = v.get("error") {
                return Err(ChatError::Failed(format!(
                    "the runtime failed mid-answer: {err}"
                )));
            }
            if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
                answer.push_str(text);
                let _ = write!(stdout, "{text}");
                let _ = stdout.flush();
            }
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                eprintln!(
                    "\n[{} prompt + {} completion tokens]",
                    u["prompt_tokens"], u["completion_tokens"]
                );
            }
        }
    }
    Err(ChatError::Failed("the stream ended without [DONE]".into()))
}
