//! The TLS listener: accept, handshake (bounded in time), serve HTTP/1.1, and shut down
//! gracefully (stop accepting, let in-flight requests finish within the grace period).
//!
//! Every phase a client controls is bounded: the TLS handshake and each request's headers
//! (`handshake_timeout_secs`, which also ends an idle keep-alive connection), and each
//! request body (`body_timeout_secs` and a minimum rate, in [`crate::api`]). And the
//! connection limit is fair to new clients: at `max_connections` a new connection closes
//! the one that has waited longest without a request in progress (still in its handshake,
//! idle between requests, or sending headers or a body), so stalled connections cannot
//! keep a verified client out; only when every connection has a request in progress (on
//! the engine or being answered) is the new one refused. Connections are ordered by how
//! long they have waited in their current phase, so a client that is merely slower than a
//! flood of newcomers still gets as many newcomers' time as there are connections.

use crate::api::{self, ApiBody, AppState};
use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Accepted, TLS handshake under way.
    Handshake = 0,
    /// Between requests: waiting for the next request's headers.
    Idle = 1,
    /// A request's headers are in, its body is arriving.
    Body = 2,
    /// A request is in progress: on the engine, or its answer being sent.
    Busy = 3,
    /// Chosen to be closed to make room for a new connection.
    Evicted = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Handshake,
            1 => Phase::Idle,
            2 => Phase::Body,
            3 => Phase::Busy,
            _ => Phase::Evicted,
        }
    }
}

/// One connection's phase and since when it is in it; the request handler finds it in
/// the request's extensions.
pub struct ConnState {
    phase: AtomicU8,
    /// Milliseconds since the server started.
    since_ms: AtomicU64,
    epoch: Instant,
    evict: Notify,
}

impl ConnState {
    fn new(epoch: Instant) -> Self {
        ConnState {
            phase: AtomicU8::new(Phase::Handshake as u8),
            since_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            epoch,
            evict: Notify::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Enter `phase` (not once evicted).
    pub fn set(&self, phase: Phase) {
        let mut current = self.phase.load(Ordering::Acquire);
        while current != Phase::Evicted as u8 {
            match self.phase.compare_exchange_weak(
                current,
                phase as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.since_ms
                        .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
                    return;
                }
                Err(now) => current = now,
            }
        }
    }

    /// Claim this connection for eviction if it has no request in progress.
    fn try_evict(&self) -> bool {
        let current = self.phase.load(Ordering::Acquire);
        if matches!(Phase::from_u8(current), Phase::Busy | Phase::Evicted) {
            return false;
        }
        if self
            .phase
            .compare_exchange(
                current,
                Phase::Evicted as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return false;
        }
        // Stored, so the connection's task sees it even if it is not waiting yet.
        self.evict.notify_one();
        true
    }
}

/// The open connections, for the connection limit.
struct Registry {
    epoch: Instant,
    max: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
}

enum Admission {
    /// Room: no one had to go.
    Room,
    /// At the limit: this connection was closed to make room.
    Evicted,
    /// At the limit and every connection has a request in progress.
    Full,
}

impl Registry {
    fn new(max: usize) -> Self {
        Registry {
            epoch: Instant::now(),
            max,
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Admit a new connection, closing the longest-waiting connection without a request
    /// in progress when at the limit.
    fn admit(&self) -> (Admission, Option<(u64, Arc<ConnState>)>) {
        let mut open = self.open.lock().expect("connection registry lock");
        let mut admission = Admission::Room;
        if open.len() >= self.max {
            let live = open
                .values()
                .filter(|c| c.phase() != Phase::Evicted)
                .count();
            if live >= self.max {
                let mut candidates: Vec<&Arc<ConnState>> = open
                    .values()
                    .filter(|c| !matches!(c.phase(), Phase::Busy | Phase::Evicted))
                    .collect();
                candidates.sort_by_key(|c| c.since_ms.load(Ordering::Acquire));
                if !candidates.into_iter().any(|c| c.try_evict()) {
                    return (Admission::Full, None);
                }
                admission = Admission::Evicted;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new(self.epoch));
        open.insert(id, Arc::clone(&state));
        (admission, Some((id, state)))
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .expect("connection registry lock")
            .remove(&id);
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered<'a>(&'a Registry, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// A response body that puts its connection back to `Idle` once it has been sent (or
/// dropped).
pub struct Tracked {
    inner: ApiBody,
    conn: Arc<ConnState>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.conn.set(Phase::Idle);
    }
}

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
    let registry = Arc::new(Registry::new(state.limits.max_connections));
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
        let (admission, admitted) = registry.admit();
        let Some((id, conn_state)) = admitted else {
            state
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        if matches!(admission, Admission::Evicted) {
            state
                .metrics
                .connections_evicted
                .fetch_add(1, Ordering::Relaxed);
        }
        let _ = tcp.set_nodelay(true);
        state
            .metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        let watcher = graceful.watcher();
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let _registered = Registered(&registry, id);
            let evicted = conn_state.evict.notified();
            tokio::pin!(evicted);
            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp));
            let tls = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(tls)) => tls,
                    // A plain-HTTP client, a scanner, or a client that rejected our evidence.
                    _ => {
                        state
                            .metrics
                            .tls_handshake_failures
                            .fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                },
                () = &mut evicted => return,
            };
            conn_state.set(Phase::Idle);
            state
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            let service_state = Arc::clone(&state);
            let service_conn = Arc::clone(&conn_state);
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let state = Arc::clone(&service_state);
                let conn = Arc::clone(&service_conn);
                async move {
                    conn.set(if req.body().is_end_stream() {
                        Phase::Busy
                    } else {
                        Phase::Body
                    });
                    req.extensions_mut().insert(Arc::clone(&conn));
                    let response: Response<ApiBody> = api::handle(state, req).await;
                    Ok::<_, Infallible>(response.map(|inner| Tracked { inner, conn }))
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = watcher.watch(conn) => {}
                // Dropping the connection closes it.
                () = &mut evicted => {}
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_longest_waiting_connection_without_a_request_goes() {
        let r = Registry::new(3);
        let (_, a) = r.admit();
        let (_, b) = r.admit();
        let (_, c) = r.admit();
        let (a, b, c) = (a.unwrap().1, b.unwrap().1, c.unwrap().1);
        // a: busy (a request in progress); b: idle since before c; c: sending a body.
        a.set(Phase::Busy);
        b.set(Phase::Idle);
        std::thread::sleep(Duration::from_millis(5));
        c.set(Phase::Body);
        std::thread::sleep(Duration::from_millis(5));
        let (admission, d) = r.admit();
        assert!(matches!(admission, Admission::Evicted));
        assert_eq!(b.phase(), Phase::Evicted);
        assert_eq!((a.phase(), c.phase()), (Phase::Busy, Phase::Body));
        // An evicted connection stays evicted, whatever its task does next.
        b.set(Phase::Idle);
        assert_eq!(b.phase(), Phase::Evicted);
        // b is on its way out: the next newcomer takes c's place, never a's.
        let (admission, e) = r.admit();
        assert!(matches!(admission, Admission::Evicted));
        assert_eq!(c.phase(), Phase::Evicted);
        assert_eq!(a.phase(), Phase::Busy);
        // When every live connection has a request in progress, a newcomer is refused.
        d.unwrap().1.set(Phase::Busy);
        e.unwrap().1.set(Phase::Busy);
        let (admission, none) = r.admit();
        assert!(matches!(admission, Admission::Full) && none.is_none());
        // Once one ends, there is room again without evicting anyone.
        r.remove(0);
        let (admission, _) = r.admit();
        assert!(matches!(admission, Admission::Room));
    }
}
