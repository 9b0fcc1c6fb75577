//! HTTP routes: the OpenAI-compatible API, fresh attestation, health and metrics.

use crate::attester::Attester;
use crate::config::Limits;
use crate::engine::{Engine, Job, JobEnd, JobEvent, JobSummary, SubmitError};
use crate::metrics::Metrics;
use crate::openai::{self, ApiError, Usage};
use crate::receipts::{new_job_id, Issued, Issuer, JobFacts};
use crate::server::{ConnState, Phase};
use attestation::binding::NONCE_LEN;
use attestation::receipt::{self, RECEIPT_EVENT, RECEIPT_HEADER};
use attestation::transcript;
use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The receipt's sequence number, for logs and `GET /v1/receipts?from=`.
pub const RECEIPT_SEQ_HEADER: &str = "x-veritee-receipt-seq";

/// Most bytes of an oversized body read (and dropped) before answering 413.
const MAX_DRAIN_BYTES: u64 = 64 << 20;

/// Everything a request handler needs.
pub struct AppState {
    pub engine: Engine,
    pub attester: Attester,
    /// Signs and logs receipts; `None` only when started with receipts dangerously off.
    pub issuer: Option<Issuer>,
    pub limits: Limits,
    pub metrics: Metrics,
    /// `system_fingerprint` of responses: runtime version and model digest.
    pub fingerprint: String,
    pub started_unix: u64,
    /// SHA-256 of the auditor's bearer token, from the attested launch configuration: the
    /// audit routes (`/v1/receipts`, `/v1/audit/bundle`) answer only it; `None` closes them.
    pub auditor_token_sha256: Option<[u8; 32]>,
}

/// A response body: all at once, or frames from a channel (server-sent events).
pub enum ApiBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ApiBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ApiBody::Channel(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ApiBody::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ApiBody::Full(b) => {
                hyper::body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            ApiBody::Channel(_) => hyper::body::SizeHint::default(),
        }
    }
}

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<ApiBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(ApiBody::Full(Some(body.into())))
        .expect("static response parts are valid")
}

fn json_response(status: u16, value: &Value) -> Response<ApiBody> {
    respond(status, "application/json", value.to_string())
}

fn error_response(e: &ApiError) -> Response<ApiBody> {
    json_response(e.status, &e.body())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The routes, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Models,
    Model,
    Attestation,
    Receipts,
    Audit,
    Health,
    Metrics,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/v1/chat/completions" => Route::Chat,
            "/v1/models" => Route::Models,
            p if p.starts_with("/v1/models/") => Route::Model,
            "/v1/attestation" => Route::Attestation,
            "/v1/receipts" => Route::Receipts,
            "/v1/audit/bundle" => Route::Audit,
            "/health" => Route::Health,
            "/metrics" => Route::Metrics,
            _ => return None,
        })
    }

    /// The `endpoint` label of its metrics.
    fn endpoint(self) -> &'static str {
        match self {
            Route::Chat => "chat",
            Route::Models | Route::Model => "models",
            Route::Attestation => "attestation",
            Route::Receipts => "receipts",
            Route::Audit => "audit",
            Route::Health => "health",
            Route::Metrics => "metrics",
        }
    }

    /// The methods it serves (the `Allow` header of a 405).
    fn allow(self) -> &'static str {
        match self {
            Route::Chat => "POST",
            _ => "GET, HEAD",
        }
    }

    fn serves(self, method: &Method) -> bool {
        match self {
            Route::Chat => method == Method::POST,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

/// Records a request whose handler was dropped before it answered (its client went
/// away) as status 499, as a stream whose client leaves is recorded.
struct RecordIfAbandoned<'a> {
    metrics: &'a Metrics,
    endpoint: &'static str,
    start: Instant,
    answered: bool,
}

impl Drop for RecordIfAbandoned<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.metrics
                .record(self.endpoint, 499, self.start.elapsed().as_secs_f64());
        }
    }
}

/// Route one request. Never fails: every problem becomes an OpenAI-shaped error.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<ApiBody> {
    let start = Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let route = match Route::of(&path) {
        Some(route) if route.serves(&method) => route,
        Some(route) => {
            let mut response = error_response(&ApiError::new(
                405,
                "invalid_request_error",
                format!("method {method} is not allowed on {path}"),
            ));
            response.headers_mut().insert(
                hyper::header::ALLOW,
                HeaderValue::from_static(route.allow()),
            );
            state
                .metrics
                .record("other", 405, start.elapsed().as_secs_f64());
            return response;
        }
        None => {
            state
                .metrics
                .record("other", 404, start.elapsed().as_secs_f64());
            return error_response(&ApiError::new(
                404,
                "invalid_request_error",
                format!("unknown endpoint {method} {path}"),
            ));
        }
    };
    let endpoint = route.endpoint();
    let mut record = RecordIfAbandoned {
        metrics: &state.metrics,
        endpoint,
        start,
        answered: false,
    };
    let mut response = match route {
        Route::Chat => chat_completions(Arc::clone(&state), req, start).await,
        Route::Models => json_response(200, &models_list(&state)),
        Route::Model => model_one(&state, &path["/v1/models/".len()..]),
        Route::Attestation => attestation(&state, &req).await,
        Route::Receipts => match refuse_unless_auditor(&state, &req) {
            None => receipts_page(&state, &req).await,
            Some(refused) => refused,
        },
        Route::Audit => match refuse_unless_auditor(&state, &req) {
            None => audit_bundle(&state).await,
            Some(refused) => refused,
        },
        Route::Health => health(&state),
        Route::Metrics => respond(
            200,
            "text/plain; version=0.0.4",
            state.metrics.render(&state.engine.stats),
        ),
    };
    record.answered = true;
    let status = response.status().as_u16();
    if matches!(status, 408 | 413) {
        // The rest of the body was not read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if method == Method::HEAD {
        // GET's status and headers, its length, no body.
        if let ApiBody::Full(body) = response.body_mut() {
            let len = body.take().map_or(0, |b| b.len());
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    // Streams record their own duration when the last event is sent.
    if !matches!(response.body(), ApiBody::Channel(_)) {
        state
            .metrics
            .record(endpoint, status, start.elapsed().as_secs_f64());
    }
    response
}

/// The audit routes answer only the auditor: the bearer token whose SHA-256 the attested
/// launch configuration names (`auditor_token_sha256`), compared in constant time. Without
/// one configured they answer no one (403). `None`: the auditor asks.
fn refuse_unless_auditor(state: &AppState, req: &Request<Incoming>) -> Option<Response<ApiBody>> {
    let Some(expected) = state.auditor_token_sha256 else {
        return Some(error_response(
            &ApiError::new(
                403,
                "permission_error",
                "the audit routes are closed: the launch configuration names no auditor_token_sha256",
            )
            .with_code("auditor_token_not_configured"),
        ));
    };
    let presented = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| crate::sha256(token.trim().as_bytes()));
    match presented {
        Some(digest)
            if aws_lc_rs::constant_time::verify_slices_are_equal(&digest, &expected).is_ok() =>
        {
            None
        }
        _ => {
            let mut response = error_response(
                &ApiError::new(
                    401,
                    "authentication_error",
                    "the audit routes need the auditor's token: Authorization: Bearer <token>",
                )
                .with_code("invalid_auditor_token"),
            );
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            Some(response)
        }
    }
}

fn model_entry(state: &AppState) -> Value {
    json!({
        "id": state.engine.model().id,
        "object": "model",
        "created": state.started_unix,
        "owned_by": "veritee",
    })
}

fn models_list(state: &AppState) -> Value {
    json!({"object": "list", "data": [model_entry(state)]})
}

fn model_one(state: &AppState, id: &str) -> Response<ApiBody> {
    if id == state.engine.model().id {
        json_response(200, &model_entry(state))
    } else {
        error_response(&model_not_found(id))
    }
}

fn model_not_found(id: &str) -> ApiError {
    ApiError {
        status: 404,
        kind: "invalid_request_error",
        message: format!("The model '{id}' does not exist"),
        param: Some("model".into()),
        code: Some("model_not_found"),
    }
}

fn health(state: &AppState) -> Response<ApiBody> {
    let receipts = match &state.issuer {
        None => json!({"enabled": false}),
        Some(issuer) => json!({
            "enabled": true,
            "healthy": issuer.log().is_healthy(),
            "instance": hex::encode(issuer.instance()),
            "durable_seq": issuer.log().durable_seq(),
        }),
    };
    // A failed receipt log stops the runtime from serving jobs: say so to load balancers.
    let ok = state.issuer.as_ref().is_none_or(|i| i.log().is_healthy());
    json_response(
        if ok { 200 } else { 503 },
        &json!({
            "status": if ok { "ok" } else { "receipt_log_failed" },
            "model": state.engine.model().id,
            "model_digest": hex::encode(state.engine.model().digest),
            "tee": state.attester.describe(),
            "simulated": state.attester.is_simulated(),
            "runtime_version": crate::RUNTIME_VERSION,
            "receipts": receipts,
        }),
    )
}

/// `GET /v1/attestation?nonce=<hex>`: fresh evidence whose claims carry the nonce, as the
/// CBOR evidence bundle (`application/cmw+cbor`).
async fn attestation(state: &Arc<AppState>, req: &Request<Incoming>) -> Response<ApiBody> {
    let mut nonce = None;
    for pair in req.uri().query().unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "nonce" {
            match hex::decode(v) {
                Ok(n) if NONCE_LEN.contains(&n.len()) => nonce = Some(n),
                _ => {
                    return error_response(&ApiError::invalid(
                        Some("nonce"),
                        format!(
                            "nonce must be {}..={} bytes as hex",
                            NONCE_LEN.start(),
                            NONCE_LEN.end()
                        ),
                    ))
                }
            }
        }
    }
    let state2 = Arc::clone(state);
    // Reading a report may block on the platform (configfs, ioctl): off the async threads.
    let result =
        tokio::task::spawn_blocking(move || state2.attester.bundle(nonce.as_deref())).await;
    match result {
        Ok(Ok(bundle)) => {
            state
                .metrics
                .attestations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            respond(200, "application/cmw+cbor", bundle.to_cbor())
        }
        Ok(Err(e)) => error_response(&ApiError::new(
            500,
            "server_error",
            format!("the platform could not produce evidence: {e}"),
        )),
        Err(_) => error_response(&ApiError::new(500, "server_error", "evidence task failed")),
    }
}

/// Receipts per page of `GET /v1/receipts` at most (and by default).
const RECEIPTS_PAGE: usize = 256;

fn query_u64(req: &Request<Incoming>, name: &'static str) -> Result<Option<u64>, ApiError> {
    for pair in req.uri().query().unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return v.parse().map(Some).map_err(|_| {
                ApiError::invalid(Some(name), format!("{name} must be a non-negative integer"))
            });
        }
    }
    Ok(None)
}

fn no_receipts() -> ApiError {
    ApiError::new(
        404,
        "invalid_request_error",
        "this runtime was started with receipts off",
    )
}

/// `GET /v1/receipts?from=SEQ&limit=N`: this instance's durable receipts from `from`, with
/// their sealed transcripts, and the evidence digest that binds their key.
async fn receipts_page(state: &Arc<AppState>, req: &Request<Incoming>) -> Response<ApiBody> {
    let Some(issuer) = &state.issuer else {
        return error_response(&no_receipts());
    };
    let (from, limit) = match (query_u64(req, "from"), query_u64(req, "limit")) {
        (Ok(f), Ok(l)) => (
            f.unwrap_or(0),
            l.map_or(RECEIPTS_PAGE, |l| (l as usize).clamp(1, RECEIPTS_PAGE)),
        ),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    let state2 = Arc::clone(state);
    let read = tokio::task::spawn_blocking(move || {
        let issuer = state2.issuer.as_ref().expect("checked above");
        issuer.log().read(from, limit)
    })
    .await;
    let records = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return error_response(&ApiError::new(
                500,
                "server_error",
                format!("reading the receipt log: {e}"),
            ))
        }
        Err(_) => return error_response(&ApiError::new(500, "server_error", "log task failed")),
    };
    let next = records.last().map_or(from, |r| r.seq + 1);
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "receipt": BASE64.encode(&r.receipt),
                "transcript": r.transcript.as_ref().map(|t| BASE64.encode(t)),
            })
        })
        .collect();
    json_response(
        200,
        &json!({
            "object": "list",
            "instance": hex::encode(issuer.instance()),
            "evidence_sha256": hex::encode(issuer.evidence_digest()),
            "durable_seq": issuer.log().durable_seq(),
            "data": items,
            "next": next,
        }),
    )
}

/// `GET /v1/audit/bundle`: this instance's audit bundle (evidence, every durable receipt
/// and sealed transcript) as one CBOR file. Earlier instances: `veritee-enclave export-audit`.
async fn audit_bundle(state: &Arc<AppState>) -> Response<ApiBody> {
    if state.issuer.is_none() {
        return error_response(&no_receipts());
    }
    let state2 = Arc::clone(state);
    let built = tokio::task::spawn_blocking(move || {
        let issuer = state2.issuer.as_ref().expect("checked above");
        crate::audit_export::section_of_live(issuer.log())
    })
    .await;
    match built {
        Ok(Ok(section)) => respond(
            200,
            "application/vnd.veritee.audit+cbor",
            attestation::audit::AuditBundle {
                sections: vec![section],
            }
            .to_cbor(),
        ),
        Ok(Err(e)) => error_response(&ApiError::new(
            500,
            "server_error",
            format!("reading the receipt log: {e}"),
        )),
        Err(_) => error_response(&ApiError::new(500, "server_error", "log task failed")),
    }
}

async fn chat_completions(
    state: Arc<AppState>,
    req: Request<Incoming>,
    start: Instant,
) -> Response<ApiBody> {
    match prepare_chat(&state, req, start).await {
        Ok((chat, prompt_ids, request)) => run_chat(state, chat, prompt_ids, request, start).await,
        Err(e) => error_response(&e),
    }
}

/// Read, parse and check a request, and turn its messages into prompt ids. Also returns
/// the body bytes (sealed in the transcript; their SHA-256 is the receipt's request hash).
async fn prepare_chat(
    state: &AppState,
    req: Request<Incoming>,
    started: Instant,
) -> Result<(openai::ChatRequest, Vec<u32>, Vec<u8>), ApiError> {
    let limit = state.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let conn = req.extensions().get::<Arc<ConnState>>().cloned();
    let body = req.into_body();
    if let Some(declared) = declared.filter(|n| *n > limit as u64) {
        // Read and drop what the client is still sending (bounded in bytes and time), so
        // that it gets this answer instead of a connection reset mid-upload.
        let _ = read_body(body, &state.limits, started, None).await;
        return Err(too_large(format!(
            "the request body is {declared} bytes; this server accepts at most {limit}"
        )));
    }
    let body = read_body(body, &state.limits, started, Some(limit)).await?;
    if let Some(conn) = conn {
        // The request is in: from now on its connection is busy, not stalled.
        conn.set(Phase::Busy);
    }
    let mut chat = openai::parse_chat_request(&body, &state.limits)?;
    let model = state.engine.model();
    if chat.model != model.id {
        return Err(model_not_found(&chat.model));
    }
    let prompt_ids = model
        .prompt_ids(&chat.messages)
        .map_err(|e| ApiError::invalid(Some("messages"), e))?;
    let context = model.context_len;
    let max_prompt = state.limits.max_prompt_tokens.min(context - 1);
    if prompt_ids.len() > max_prompt {
        return Err(ApiError::invalid(
            Some("messages"),
            format!(
                "the prompt is {} tokens; this server accepts at most {max_prompt}",
                prompt_ids.len()
            ),
        )
        .with_code("context_length_exceeded"));
    }
    let room = context - prompt_ids.len();
    match chat.max_tokens {
        Some(n) if n > room => {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                format!(
                    "this model's maximum context length is {context} tokens; the prompt is {} tokens and max_tokens asks for {n} more",
                    prompt_ids.len()
                ),
            )
            .with_code("context_length_exceeded"))
        }
        Some(_) => {}
        None => chat.params.max_tokens = chat.params.max_tokens.min(room),
    }
    Ok((chat, prompt_ids, body.to_vec()))
}

/// How long after its headers a body may send nothing before the minimum rate applies.
const BODY_RATE_GRACE: Duration = Duration::from_secs(2);

fn too_large(message: String) -> ApiError {
    ApiError::new(413, "invalid_request_error", message)
}

/// Read a request body whose headers arrived at `started`, bounded in time: all of it
/// within `body_timeout_secs`, and from [`BODY_RATE_GRACE`] on at least
/// `body_min_bytes_per_sec` on average (a body shorter than its Content-Length, or a
/// chunked body that never ends, is answered 408). `Some(limit)`: keep at most `limit`
/// bytes (more is 413); `None`: drop what arrives, at most [`MAX_DRAIN_BYTES`].
async fn read_body(
    mut body: Incoming,
    limits: &Limits,
    started: Instant,
    keep: Option<usize>,
) -> Result<Bytes, ApiError> {
    let timeout = Duration::from_secs(limits.body_timeout_secs);
    let rate = limits.body_min_bytes_per_sec;
    // (An absurd configured timeout is a year, not an overflow.)
    let hard = started
        .checked_add(timeout)
        .unwrap_or_else(|| started + Duration::from_secs(365 * 86_400));
    let mut kept = Vec::new();
    let mut received = 0u64;
    loop {
        // The time by which more must have arrived to keep up the minimum rate.
        let deadline = if rate == 0 {
            hard
        } else {
            let due = BODY_RATE_GRACE.as_secs_f64() + received as f64 / rate as f64;
            hard.min(started + Duration::from_secs_f64(due.min(timeout.as_secs_f64())))
        };
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    408,
                    "invalid_request_error",
                    format!(
                        "the request body did not arrive in time ({received} bytes; a body must \
                         arrive within {} s and at {rate} bytes/s or more)",
                        limits.body_timeout_secs
                    ),
                )
                .with_code("request_timeout"))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::invalid(
                    None,
                    format!("reading the request body failed: {e}"),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        received += data.len() as u64;
        match keep {
            Some(limit) if received > limit as u64 => {
                return Err(too_large(format!("the request body exceeds {limit} bytes")))
            }
            Some(_) => kept.extend_from_slice(&data),
            None if received >= MAX_DRAIN_BYTES => break,
            None => {}
        }
    }
    Ok(Bytes::from(kept))
}

/// What a job's receipt needs besides the engine's summary and the response hash.
struct ReceiptInputs {
    job_id: [u8; 16],
    /// The request body as received.
    request: Vec<u8>,
    prompt_ids: Vec<u32>,
    sampling: receipt::SamplingParams,
    audited: bool,
}

/// Sign, log and wait for the job's receipt. `Ok(None)`: receipts are off. An error means
/// the receipt is not durable, so nothing that depends on it may be acknowledged.
async fn durable_receipt(
    state: &AppState,
    inputs: ReceiptInputs,
    summary: JobSummary,
    response_sha256: [u8; 32],
) -> Result<Option<(Vec<u8>, u64)>, ApiError> {
    let Some(issuer) = &state.issuer else {
        return Ok(None);
    };
    let facts = JobFacts {
        job_id: inputs.job_id,
        request: inputs.request,
        response_sha256,
        prompt_ids: inputs.prompt_ids,
        output_ids: summary.output_ids,
        sampling: inputs.sampling,
        fingerprint: summary.fingerprint,
        end: match summary.end {
            JobEnd::Stop => transcript::JobEnd::Stop,
            JobEnd::Length => transcript::JobEnd::Length,
            JobEnd::TimedOut => transcript::JobEnd::TimedOut,
            JobEnd::Cancelled => transcript::JobEnd::Cancelled,
        },
        #[cfg(feature = "simulate")]
        dangerous_cheat: summary.dangerous_cheat,
        metering: summary.metering,
        audited: inputs.audited,
    };
    let unavailable = |e: String| {
        state
            .metrics
            .receipt_failures
            .fetch_add(1, Ordering::Relaxed);
        ApiError::new(
            503,
            "server_error",
            format!("the job ran but its usage receipt could not be made durable, so its result is withheld: {e}"),
        )
        .with_code("receipt_unavailable")
    };
    let Issued {
        receipt,
        seq,
        durable,
    } = issuer
        .issue(facts)
        .map_err(|e| unavailable(e.to_string()))?;
    durable
        .wait()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    state.metrics.receipts.fetch_add(1, Ordering::Relaxed);
    Ok(Some((receipt, seq)))
}

fn receipt_sampling(p: &inference::sampling::SamplingParams) -> receipt::SamplingParams {
    receipt::SamplingParams {
        temperature: p.temperature,
        top_p: p.top_p,
        top_k: u32::try_from(p.top_k).unwrap_or(u32::MAX),
        max_tokens: u32::try_from(p.max_tokens).unwrap_or(u32::MAX),
        repetition_penalty: p.repetition_penalty,
        seed: p.seed,
    }
}

async fn run_chat(
    state: Arc<AppState>,
    chat: openai::ChatRequest,
    prompt_ids: Vec<u32>,
    request: Vec<u8>,
    start: Instant,
) -> Response<ApiBody> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let inputs = ReceiptInputs {
        job_id: new_job_id(),
        request,
        prompt_ids: prompt_ids.clone(),
        sampling: receipt_sampling(&chat.params),
        audited: chat.audited,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let job = Job {
        prompt_ids,
        params: chat.params.clone(),
        deadline: start + Duration::from_secs(state.limits.request_timeout_secs),
        events: tx,
        enqueued: Instant::now(),
        cancel: Arc::clone(&cancel),
    };
    if state.issuer.as_ref().is_some_and(|i| !i.log().is_healthy()) {
        return error_response(
            &ApiError::new(
                503,
                "server_error",
                "the receipt log failed; this runtime serves no more jobs until it is restarted",
            )
            .with_code("receipt_unavailable"),
        );
    }
    if let Err(e) = state.engine.submit(job) {
        let message = match e {
            SubmitError::Overloaded => "the server is at capacity; retry later",
            SubmitError::Closed => "the server is shutting down",
        };
        let mut response =
            error_response(&ApiError::new(503, "server_error", message).with_code("overloaded"));
        // The queue turns over within seconds; a client should not hammer it meanwhile.
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let id = completion_id();
    let created = now_unix();
    let model_id = state.engine.model().id.clone();
    if chat.stream {
        let (body_tx, body_rx) = mpsc::channel::<Bytes>(64);
        let state2 = Arc::clone(&state);
        tokio::spawn(async move {
            let stream = EventStream {
                state: &state2,
                out: &body_tx,
                id: &id,
                created,
                model: &model_id,
                include_usage: chat.include_usage,
                hash: digest::Context::new(&digest::SHA256),
                client_gone: false,
                cancel,
            };
            let status = stream.run(&mut rx, inputs).await;
            state2
                .metrics
                .record("chat", status, start.elapsed().as_secs_f64());
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(ApiBody::Channel(body_rx))
            .expect("static response parts are valid");
    }
    // In a task of its own: if the client goes away (this future is dropped), the job is
    // cancelled at its next token, still ends, and its receipt still goes to the log (the
    // device time was spent).
    let _cancel_on_drop = CancelOnDrop(cancel);
    let answer = tokio::spawn(async move {
        let mut text = String::new();
        while let Some(event) = rx.recv().await {
            match event {
                JobEvent::Started { .. } => {}
                JobEvent::Text(t) => text.push_str(&t),
                JobEvent::Failed(message) => {
                    return error_response(&ApiError::new(500, "server_error", message))
                }
                JobEvent::Finished(summary) => {
                    let finish = match summary.end {
                        JobEnd::Stop => Some("stop"),
                        JobEnd::Length => Some("length"),
                        JobEnd::TimedOut | JobEnd::Cancelled => None,
                    };
                    let (status, body) = match finish {
                        Some(finish) => {
                            let usage =
                                Usage::new(summary.prompt_tokens, summary.completion_tokens);
                            let body = openai::completion_body(
                                &id,
                                created,
                                &model_id,
                                &state.fingerprint,
                                &text,
                                finish,
                                usage,
                            );
                            (200, body)
                        }
                        None => {
                            let e = ApiError::new(
                                504,
                                "timeout",
                                format!(
                                    "the request did not finish within {} s",
                                    state.limits.request_timeout_secs
                                ),
                            )
                            .with_code("timeout");
                            (e.status, e.body())
                        }
                    };
                    let body = Bytes::from(body.to_string());
                    return match durable_receipt(&state, inputs, summary, crate::sha256(&body))
                        .await
                    {
                        Ok(issued) => {
                            let mut response = respond(status, "application/json", body);
                            if let Some((receipt, seq)) = issued {
                                let h = response.headers_mut();
                                h.insert(
                                    RECEIPT_HEADER,
                                    HeaderValue::from_str(&BASE64.encode(&receipt))
                                        .expect("base64 is a valid header value"),
                                );
                                h.insert(RECEIPT_SEQ_HEADER, HeaderValue::from(seq));
                            }
                            response
                        }
                        Err(e) => error_response(&e),
                    };
                }
            }
        }
        error_response(&ApiError::new(
            500,
            "server_error",
            "the engine dropped the request",
        ))
    });
    answer.await.unwrap_or_else(|_| {
        error_response(&ApiError::new(
            500,
            "server_error",
            "the answer task failed",
        ))
    })
}

/// Cancels the job when the request handler is dropped (the client went away).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One streamed response: forwards engine events as server-sent events, hashing every
/// byte sent, and ends with the receipt event over that hash.
struct EventStream<'a> {
    state: &'a AppState,
    out: &'a mpsc::Sender<Bytes>,
    id: &'a str,
    created: u64,
    model: &'a str,
    include_usage: bool,
    hash: digest::Context,
    /// The client stopped reading: keep draining the job for its receipt, send nothing.
    client_gone: bool,
    /// Set with `client_gone`, to stop the job.
    cancel: Arc<AtomicBool>,
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

impl EventStream<'_> {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        sse(&openai::chunk_body(
            self.id,
            self.created,
            self.model,
            &self.state.fingerprint,
            delta,
            finish,
        ))
    }

    async fn send(&mut self, frame: Bytes) {
        if self.client_gone {
            return;
        }
        self.hash.update(&frame);
        if self.out.send(frame).await.is_err() {
            self.client_gone = true;
            self.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Returns the status to record: 200, 499 when the client went away, 504 on timeout,
    /// 500 on an engine failure, 503 when the receipt could not be made durable.
    async fn run(
        mut self,
        rx: &mut mpsc::UnboundedReceiver<JobEvent>,
        inputs: ReceiptInputs,
    ) -> u16 {
        let first = self.chunk(json!({"role": "assistant", "content": ""}), None);
        self.send(first).await;
        let out = self.out;
        loop {
            let event = tokio::select! {
                event = rx.recv() => event,
                // The client left before the job sent anything (a long prefill): stop it.
                () = out.closed(), if !self.client_gone => {
                    self.client_gone = true;
                    self.cancel.store(true, Ordering::Relaxed);
                    continue;
                }
            };
            let Some(event) = event else { break };
            let summary = match event {
                JobEvent::Started { .. } => continue,
                JobEvent::Text(t) => {
                    let frame = self.chunk(json!({"content": t}), None);
                    self.send(frame).await;
                    continue;
                }
                JobEvent::Failed(message) => {
                    self.send(sse(&ApiError::new(500, "server_error", message).body()))
                        .await;
                    self.send(Bytes::from_static(DONE)).await;
                    return 500;
                }
                JobEvent::Finished(summary) => summary,
            };
            let status = match summary.end {
                JobEnd::Stop | JobEnd::Length => {
                    let finish = if summary.end == JobEnd::Stop {
                        "stop"
                    } else {
                        "length"
                    };
                    let frame = self.chunk(json!({}), Some(finish));
                    self.send(frame).await;
                    if self.include_usage {
                        let usage = sse(&openai::usage_chunk_body(
                            self.id,
                            self.created,
                            self.model,
                            &self.state.fingerprint,
                            Usage::new(summary.prompt_tokens, summary.completion_tokens),
                        ));
                        self.send(usage).await;
                    }
                    200
                }
                JobEnd::TimedOut => {
                    let e =
                        ApiError::new(504, "timeout", "the request timed out").with_code("timeout");
                    self.send(sse(&e.body())).await;
                    504
                }
                JobEnd::Cancelled => 499,
            };
            let response_sha256: [u8; 32] = self
                .hash
                .clone()
                .finish()
                .as_ref()
                .try_into()
                .expect("SHA-256 is 32 bytes");
            let status = match durable_receipt(self.state, inputs, summary, response_sha256).await {
                Ok(Some((receipt, seq))) => {
                    let event = json!({
                        "seq": seq,
                        "receipt": BASE64.encode(&receipt),
                        "response_sha256": hex::encode(response_sha256),
                    });
                    let frame = Bytes::from(format!("event: {RECEIPT_EVENT}\ndata: {event}\n\n"));
                    // Not hashed: the receipt covers every byte before it.
                    if !self.client_gone && self.out.send(frame).await.is_err() {
                        self.client_gone = true;
                    }
                    status
                }
                Ok(None) => status,
                Err(e) => {
                    self.send(sse(&e.body())).await;
                    503
                }
            };
            if !self.client_gone {
                let _ = self.out.send(Bytes::from_static(DONE)).await;
            }
            return if self.client_gone { 499 } else { status };
        }
        500
    }
}

const DONE: &[u8] = b"data: [DONE]\n\n";

fn completion_id() -> String {
    let mut bytes = [0u8; 12];
    // A failing RNG leaves zeros: ids are labels, not secrets.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    format!("chatcmpl-{}", hex::encode(bytes))
}
