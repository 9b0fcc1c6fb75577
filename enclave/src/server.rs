//! The TLS listener: accept, handshake (bounded in time), serve HTTP/1.1, and shut down
//! gracefully (stop accepting, let in-flight requests finish within the grace period).

use crate::api::{self, AppState};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Serve until `shutdown` completes, then drain. Returns whether every in-flight
/// connection finished within the grace period.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(state.limits.max_connections));
    let handshake_timeout = Duration::from_secs(state.limits.handshake_timeout_secs);
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    eprintln!("veritee-enclave: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            state
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        state
            .metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                // A plain-HTTP client, a scanner, or a client that rejected our evidence.
                _ => {
                    state
                        .metrics
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            state
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            let service_state = Arc::clone(&state);
            let service = service_fn(move |req| {
                let state = Arc::clone(&service_state);
                async move { Ok::<_, std::convert::Infallible>(api::handle(state, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .serve_connection(TokioIo::new(tls), service);
            let _ = watcher.watch(conn).await;
            state
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(state.limits.shutdown_grace_secs);
    tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok()
}
