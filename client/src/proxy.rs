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

use crate::connector::{AttestedConnection, Connector, Target};
use crate::error::ClientError;
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

/// Serve until the listener fails. `on_ready` gets the bound address.
pub async fn serve(
    listener: TcpListener,
    connector: Arc<Connector>,
    upstream: Target,
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
                        forward(req, &connector, &upstream, &slot).await,
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
        if !HOP_BY_HOP.contains(&name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    let upstream_req = builder
        .body(Full::new(body))
        .expect("parts of a request hyper accepted");
    match conn.send(upstream_req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let mut out = Response::from_parts(parts, body.boxed());
            for h in HOP_BY_HOP {
                out.headers_mut().remove(*h);
            }
            out
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
