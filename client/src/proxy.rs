//! `veritee proxy`: a local plain-HTTP OpenAI-compatible endpoint that forwards only to a
//! verified upstream, so any OpenAI SDK, curl or app works unchanged.
//!
//! Each downstream connection gets its own upstream connection, opened through the
//! [`Connector`] (evidence verified inside the TLS handshake, cached per certificate) when
//! the first request arrives and again whenever the upstream connection is gone: a new
//! certificate, hence a changed key, is verified before anything is forwarded. If
//! verification fails the request is answered 502 with an OpenAI-shaped error naming the
//! reason, and nothing is forwarded. Response bodies (server-sent events included) are
//! passed through frame by frame, without buffering.
//!
//! Chat completions must come with a usage receipt that checks against the verified
//! evidence and the exchange ([`crate::receipts`]): a non-streamed answer is buffered
//! until its header receipt checks; a stream's receipt event is checked and removed
//! (OpenAI SDKs do not know it) before `[DONE]` is passed on, and nothing but `[DONE]` may
//! follow it (the receipt does not cover what comes after). An answer whose receipt is
//! missing or does not check is refused (502, or an error event ending the stream); an
//! upstream that fails mid-stream ends the stream with an error event too, never with a
//! silent cut.
//!
//! With [`ProxyOptions::no_audit`], each chat request that does not say
//! `veritee_audit` itself is forwarded with `"veritee_audit": false`.

use crate::connector::{AttestedConnection, Connector, Target};
use crate::error::ClientError;
use crate::receipts::{self, SseReceiptFilter, RECEIPT_HEADER};
use attestation::bundle::AttestedRuntime;
use attestation::Rejection;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// Largest request body forwarded (requests are buffered; responses are streamed).
pub const MAX_REQUEST_BYTES: usize = 8 << 20;

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Headers that describe one hop, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
];

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn error(status: u16, kind: &str, code: &str, message: String) -> Response<ProxyBody> {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .expect("static response parts")
}

/// How the proxy treats what it forwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyOptions {
    /// Forward chat requests with `"veritee_audit": false` (unless a request says
    /// `veritee_audit` itself): the runtime seals no transcript of them.
    pub no_audit: bool,
}

/// Serve until the listener fails.
pub async fn serve(
    listener: TcpListener,
    connector: Arc<Connector>,
    upstream: Target,
    options: ProxyOptions,
) -> std::io::Result<()> {
    let upstream = Arc::new(upstream);
    loop {
        let (tcp, _) = listener.accept().await?;
        let connector = Arc::clone(&connector);
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            // This downstream connection's verified upstream connection, opened lazily.
            let slot: Arc<Mutex<Option<AttestedConnection>>> = Arc::new(Mutex::new(None));
            let service = service_fn(move |req| {
                let connector = Arc::clone(&connector);
                let upstream = Arc::clone(&upstream);
                let slot = Arc::clone(&slot);
                async move {
                    Ok::<_, std::convert::Infallible>(
                        forward(req, &connector, &upstream, &slot, options).await,
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn forward(
    req: Request<Incoming>,
    connector: &Connector,
    upstream: &Target,
    slot: &Mutex<Option<AttestedConnection>>,
    options: ProxyOptions,
) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    // Read the request first (bounded): nothing of it goes anywhere before verification.
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                413,
                "invalid_request_error",
                "request_too_large",
                format!(
                    "the request body could not be read or exceeds {MAX_REQUEST_BYTES} bytes: {e}"
                ),
            )
        }
    };
    let mut guard = slot.lock().await;
    let usable = match guard.as_mut() {
        Some(c) => c.sender.ready().await.is_ok(),
        None => false,
    };
    if !usable {
        match connector.connect(upstream, None).await {
            Ok(c) => *guard = Some(c),
            Err(e) => {
                *guard = None;
                return refusal(&e);
            }
        }
    }
    let conn = guard.as_mut().expect("connected above");
    let path = parts.uri.path().to_owned();
    let is_completion = path == "/v1/chat/completions";
    let body = if options.no_audit && is_completion && parts.method == hyper::Method::POST {
        opt_out_of_audit(body)
    } else {
        body
    };
    let mut builder = Request::builder()
        .method(parts.method)
        .uri(
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        )
        .header("host", format!("{}:{}", upstream.host, upstream.port));
    for (name, value) in &parts.headers {
        // The body's length is the one forwarded (it may have been rewritten).
        if !HOP_BY_HOP.contains(&name.as_str()) && name != hyper::header::CONTENT_LENGTH {
            builder = builder.header(name, value);
        }
    }
    let request_body = body.clone();
    let upstream_req = builder
        .body(Full::new(body))
        .expect("parts of a request hyper accepted");
    let attested = Arc::clone(&conn.attested);
    match conn.send(upstream_req).await {
        Ok(resp) => {
            drop(guard);
            let (mut parts, body) = resp.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(*h);
            }
            if !(is_completion && parts.status.is_success()) {
                return Response::from_parts(parts, body.boxed());
            }
            let is_stream = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if is_stream {
                let rx = check_stream(body, attested, request_body);
                Response::from_parts(parts, ChannelBody(rx).boxed())
            } else {
                check_whole(parts, body, &attested, &request_body).await
            }
        }
        Err(e) => {
            *guard = None;
            error(
                502,
                "upstream_error",
                "upstream_failed",
                format!("the verified upstream failed: {e}"),
            )
        }
    }
}

/// `"veritee_audit": false` added to a JSON object request that does not say
/// `veritee_audit` itself; anything else (the client's own choice, a body that is not a
/// JSON object, which the runtime will refuse) goes on byte for byte.
fn opt_out_of_audit(body: Bytes) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) if !map.contains_key("veritee_audit") => {
            map.insert("veritee_audit".into(), serde_json::Value::Bool(false));
            Bytes::from(serde_json::Value::Object(map).to_string())
        }
        _ => body,
    }
}

/// Largest non-streamed answer buffered to check its receipt.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A non-streamed answer: buffer it, check its receipt header, then pass it on (header
/// included, so the caller can keep it) or refuse it.
async fn check_whole(
    parts: hyper::http::response::Parts,
    body: Incoming,
    attested: &AttestedRuntime,
    request_body: &[u8],
) -> Response<ProxyBody> {
    let bytes = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                502,
                "upstream_error",
                "upstream_failed",
                format!("reading the verified upstream's answer: {e}"),
            )
        }
    };
    let header = parts
        .headers
        .get(RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok());
    match receipts::check_header(attested, header, request_body, &bytes) {
        Ok(_) => Response::from_parts(parts, full(bytes)),
        Err(r) => receipt_refusal(&r),
    }
}

fn receipt_refusal(r: &Rejection) -> Response<ProxyBody> {
    error(
        502,
        "upstream_receipt_invalid",
        r.reason.code(),
        format!(
            "veritee proxy refused the answer: its usage receipt does not check: {}",
            r.detail
        ),
    )
}

/// A streamed answer: pass events on as they come, minus the receipt event, which is
/// checked before anything after it (`[DONE]`) is passed on. A bad or missing receipt, an
/// event after the receipt other than `[DONE]`, or an upstream failure mid-stream ends the
/// stream with an OpenAI-shaped error event instead of `[DONE]`.
fn check_stream(
    mut body: Incoming,
    attested: Arc<AttestedRuntime>,
    request_body: Bytes,
) -> tokio::sync::mpsc::Receiver<Bytes> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut filter = SseReceiptFilter::default();
        let mut checked = false;
        let fail = |r: &Rejection| {
            let v = json!({"error": {
                "message": format!("veritee proxy refused the answer: its usage receipt does not check: {}", r.detail),
                "type": "upstream_receipt_invalid",
                "param": null,
                "code": r.reason.code(),
            }});
            Bytes::from(format!("data: {v}\n\n"))
        };
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    let _ = tx.send(upstream_failed_event(&e.to_string())).await;
                    return;
                }
            };
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let mut out = filter.push(data);
            if filter.has_receipt() && !checked {
                checked = true;
                if let Err(r) = filter.check(&attested, &request_body) {
                    let _ = tx.send(fail(&r)).await;
                    return;
                }
            }
            if !checked {
                // `[DONE]` before any receipt: the stream ends unreceipted; hold it back so
                // the caller sees the error event instead of a clean end.
                if let Some(at) = out.windows(DONE.len()).position(|w| w == DONE) {
                    out.truncate(at);
                }
            }
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            if let Some(r) = filter.error() {
                // An event after the checked receipt: nothing from it on goes out.
                let _ = tx.send(fail(r)).await;
                return;
            }
        }
        if !checked {
            let r = filter
                .check(&attested, &request_body)
                .err()
                .unwrap_or_else(|| {
                    Rejection::new(
                        attestation::Reason::ReceiptMissing,
                        "the stream ended without a receipt",
                    )
                });
            let _ = tx.send(fail(&r)).await;
        }
    });
    rx
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// The error event that ends a stream whose verified upstream failed mid-answer.
fn upstream_failed_event(why: &str) -> Bytes {
    let v = json!({"error": {
        "message": format!("veritee proxy: the verified upstream failed mid-answer; the answer is incomplete and has no receipt: {why}"),
        "type": "upstream_error",
        "param": null,
        "code": "upstream_failed",
    }});
    Bytes::from(format!("data: {v}\n\n"))
}

/// A response body fed from a channel.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn refusal(e: &ClientError) -> Response<ProxyBody> {
    let (status, kind) = if e.is_refusal() {
        (502, "upstream_verification_failed")
    } else {
        (502, "upstream_unreachable")
    };
    error(
        status,
        kind,
        e.code(),
        format!("veritee proxy refused the upstream; nothing was forwarded: {e}"),
    )
}
