//! HTTP routes: the OpenAI-compatible API, fresh attestation, health and metrics.

use crate::attester::Attester;
use crate::config::Limits;
use crate::engine::{Engine, Job, JobEnd, JobEvent, SubmitError};
use crate::metrics::Metrics;
use crate::openai::{self, ApiError, Usage};
use attestation::binding::NONCE_LEN;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Most bytes of an oversized body read (and dropped) before answering 413.
const MAX_DRAIN_BYTES: u64 = 64 << 20;

/// Everything a request handler needs.
pub struct AppState {
    pub engine: Engine,
    pub attester: Attester,
    pub limits: Limits,
    pub metrics: Metrics,
    /// `system_fingerprint` of responses: runtime version and model digest.
    pub fingerprint: String,
    pub started_unix: u64,
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

/// Route one request. Never fails: every problem becomes an OpenAI-shaped error.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<ApiBody> {
    let start = Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let (endpoint, response) = match (method.clone(), path.as_str()) {
        (Method::POST, "/v1/chat/completions") => (
            "chat",
            chat_completions(Arc::clone(&state), req, start).await,
        ),
        (Method::GET, "/v1/models") => ("models", json_response(200, &models_list(&state))),
        (Method::GET, p) if p.starts_with("/v1/models/") => {
            let id = &p["/v1/models/".len()..];
            ("models", model_one(&state, id))
        }
        (Method::GET, "/v1/attestation") => ("attestation", attestation(&state, &req).await),
        (Method::GET, "/health") => ("health", health(&state)),
        (Method::GET, "/metrics") => (
            "metrics",
            respond(
                200,
                "text/plain; version=0.0.4",
                state.metrics.render(&state.engine.stats),
            ),
        ),
        (_, "/v1/chat/completions" | "/v1/models" | "/v1/attestation" | "/health" | "/metrics") => {
            (
                "other",
                error_response(&ApiError::new(
                    405,
                    "invalid_request_error",
                    format!("method {method} is not allowed on {path}"),
                )),
            )
        }
        _ => (
            "other",
            error_response(&ApiError::new(
                404,
                "invalid_request_error",
                format!("unknown endpoint {method} {path}"),
            )),
        ),
    };
    // Streams record their own duration when the last event is sent.
    if !matches!(response.body(), ApiBody::Channel(_)) {
        state.metrics.record(
            endpoint,
            response.status().as_u16(),
            start.elapsed().as_secs_f64(),
        );
    }
    response
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
    json_response(
        200,
        &json!({
            "status": "ok",
            "model": state.engine.model().id,
            "model_digest": hex::encode(state.engine.model().digest),
            "tee": state.attester.describe(),
            "simulated": state.attester.is_simulated(),
            "runtime_version": crate::RUNTIME_VERSION,
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

async fn chat_completions(
    state: Arc<AppState>,
    req: Request<Incoming>,
    start: Instant,
) -> Response<ApiBody> {
    match prepare_chat(&state, req).await {
        Ok((chat, prompt_ids)) => run_chat(state, chat, prompt_ids, start).await,
        Err(e) => error_response(&e),
    }
}

/// Read, parse and check a request, and turn its messages into prompt ids.
async fn prepare_chat(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<(openai::ChatRequest, Vec<u32>), ApiError> {
    let limit = state.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|n| *n > limit as u64) {
        // Read and drop what the client is still sending (bounded), so that it gets this
        // answer instead of a connection reset mid-upload.
        let mut body = req.into_body();
        let mut drained = 0u64;
        while drained < MAX_DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len() as u64),
                _ => break,
            }
        }
        return Err(ApiError::new(
            413,
            "invalid_request_error",
            format!("the request body is {declared} bytes; this server accepts at most {limit}"),
        ));
    }
    let body = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::new(
                    413,
                    "invalid_request_error",
                    format!("the request body exceeds {limit} bytes"),
                )
            } else {
                ApiError::invalid(None, format!("reading the request body failed: {e}"))
            }
        })?
        .to_bytes();
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
    Ok((chat, prompt_ids))
}

async fn run_chat(
    state: Arc<AppState>,
    chat: openai::ChatRequest,
    prompt_ids: Vec<u32>,
    start: Instant,
) -> Response<ApiBody> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let job = Job {
        prompt_ids,
        params: chat.params.clone(),
        deadline: start + Duration::from_secs(state.limits.request_timeout_secs),
        events: tx,
        enqueued: Instant::now(),
    };
    if let Err(e) = state.engine.submit(job) {
        let message = match e {
            SubmitError::Overloaded => "the server is at capacity; retry later",
            SubmitError::Closed => "the server is shutting down",
        };
        return error_response(
            &ApiError::new(503, "server_error", message).with_code("overloaded"),
        );
    }
    let id = completion_id();
    let created = now_unix();
    let model_id = state.engine.model().id.clone();
    if chat.stream {
        let (body_tx, body_rx) = mpsc::channel::<Bytes>(64);
        let state2 = Arc::clone(&state);
        tokio::spawn(async move {
            let fp = state2.fingerprint.clone();
            let status = stream_events(
                &mut rx,
                &body_tx,
                &id,
                created,
                &model_id,
                &fp,
                chat.include_usage,
            )
            .await;
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
                    JobEnd::Stop => "stop",
                    JobEnd::Length => "length",
                    JobEnd::TimedOut | JobEnd::Cancelled => {
                        return error_response(
                            &ApiError::new(
                                504,
                                "timeout",
                                format!(
                                    "the request did not finish within {} s",
                                    state.limits.request_timeout_secs
                                ),
                            )
                            .with_code("timeout"),
                        )
                    }
                };
                let usage = Usage::new(summary.prompt_tokens, summary.completion_tokens);
                return json_response(
                    200,
                    &openai::completion_body(
                        &id,
                        created,
                        &model_id,
                        &state.fingerprint,
                        &text,
                        finish,
                        usage,
                    ),
                );
            }
        }
    }
    error_response(&ApiError::new(
        500,
        "server_error",
        "the engine dropped the request",
    ))
}

/// Forward engine events as server-sent events; returns the status to record (200, or
/// 499 when the client went away, 504 on timeout, 500 on an engine failure).
#[allow(clippy::too_many_arguments)]
async fn stream_events(
    rx: &mut mpsc::UnboundedReceiver<JobEvent>,
    out: &mpsc::Sender<Bytes>,
    id: &str,
    created: u64,
    model: &str,
    fingerprint: &str,
    include_usage: bool,
) -> u16 {
    let sse = |v: &Value| Bytes::from(format!("data: {v}\n\n"));
    let chunk = |delta: Value, finish: Option<&str>| {
        sse(&openai::chunk_body(
            id,
            created,
            model,
            fingerprint,
            delta,
            finish,
        ))
    };
    if out
        .send(chunk(json!({"role": "assistant", "content": ""}), None))
        .await
        .is_err()
    {
        return 499;
    }
    while let Some(event) = rx.recv().await {
        let (bytes, done, status) = match event {
            JobEvent::Started { .. } => continue,
            JobEvent::Text(t) => (vec![chunk(json!({"content": t}), None)], false, 200),
            JobEvent::Failed(message) => (
                vec![sse(&ApiError::new(500, "server_error", message).body())],
                true,
                500,
            ),
            JobEvent::Finished(summary) => match summary.end {
                JobEnd::Stop | JobEnd::Length => {
                    let finish = if summary.end == JobEnd::Stop {
                        "stop"
                    } else {
                        "length"
                    };
                    let mut frames = vec![chunk(json!({}), Some(finish))];
                    if include_usage {
                        frames.push(sse(&openai::usage_chunk_body(
                            id,
                            created,
                            model,
                            fingerprint,
                            Usage::new(summary.prompt_tokens, summary.completion_tokens),
                        )));
                    }
                    (frames, true, 200)
                }
                JobEnd::TimedOut => (
                    vec![sse(&ApiError::new(504, "timeout", "the request timed out")
                        .with_code("timeout")
                        .body())],
                    true,
                    504,
                ),
                JobEnd::Cancelled => return 499,
            },
        };
        for b in bytes {
            if out.send(b).await.is_err() {
                return 499;
            }
        }
        if done {
            let _ = out.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
            return status;
        }
    }
    500
}

fn completion_id() -> String {
    let mut bytes = [0u8; 12];
    // A failing RNG leaves zeros: ids are labels, not secrets.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    format!("chatcmpl-{}", hex::encode(bytes))
}
