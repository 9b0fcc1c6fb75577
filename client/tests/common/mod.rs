//! Test servers for the client: the real runtime in simulated-TEE mode (in process, real
//! model), and a fake runtime that serves chosen evidence and records every application
//! byte it receives, so refusal tests can check nothing was sent.

#![allow(dead_code)]

use attestation::binding::{ReceiptKey, RuntimeClaims, COSE_ALG_EDDSA};
use attestation::bundle::{
    EvidenceBundle, CERT_MEDIA_TYPE, CRL_MEDIA_TYPE, IND_ENDORSEMENT, IND_EVIDENCE,
    SNP_REPORT_MEDIA_TYPE,
};
use sim::tee::SimulatedSnp;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veritee-client-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real runtime (library start-up, simulated TEE, bundled model) on 127.0.0.1; it
/// stops when the returned sender is dropped.
pub fn start_runtime(state_dir: &Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_runtime_with(state_dir, false)
}

/// [`start_runtime`], optionally with receipts dangerously off.
pub fn start_runtime_with(
    state_dir: &Path,
    no_receipts: bool,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_runtime_launched(state_dir, no_receipts, None)
}

/// [`start_runtime`] with a launch configuration file (e.g. naming an auditor key); the
/// policy it writes to `state_dir/policy.toml` pins that key.
pub fn start_runtime_launched(
    state_dir: &Path,
    no_receipts: bool,
    launch_config: Option<PathBuf>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_runtime_full(state_dir, no_receipts, launch_config, 0)
}

/// [`start_runtime_launched`] with `simulate_gpus` simulated GPUs bound (the written
/// policy requires them).
pub fn start_runtime_full(
    state_dir: &Path,
    no_receipts: bool,
    launch_config: Option<PathBuf>,
    simulate_gpus: usize,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    // Fails here, naming the fetch script, when the model is missing.
    inference::gguf::model_for_tests();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let state_dir = state_dir.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = enclave::config::Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                state_dir,
                launch_config,
                ..Default::default()
            };
            let runtime = enclave::startup::start(enclave::startup::Options {
                config,
                simulate: true,
                simulate_gpus,
                dangerous_no_receipts: no_receipts,
                dangerous_cheat: None,
                ..Default::default()
            })
            .await
            .expect("the runtime starts");
            addr_tx.send(runtime.local_addr().unwrap()).unwrap();
            runtime
                .serve(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the runtime starts within 120 s");
    (addr, stop_tx)
}

/// The fake runtime's claimed model and launch configuration; HOST_DATA carries the
/// launch digest, as the simulated runtime's does.
pub const MODEL_DIGEST: [u8; 32] = [2; 32];
pub const LAUNCH_DIGEST: [u8; 32] = [3; 32];

/// What a fake runtime presents.
pub struct FakeEvidence {
    pub tee: SimulatedSnp,
    /// The key whose certificate the server presents.
    pub tls_key: rcgen::KeyPair,
}

impl FakeEvidence {
    pub fn new(dir: &Path) -> Self {
        FakeEvidence {
            tee: SimulatedSnp::open_or_create(dir).unwrap(),
            tls_key: rcgen::KeyPair::generate().unwrap(),
        }
    }

    pub fn claims_for(&self, key: &rcgen::KeyPair, nonce: Option<Vec<u8>>) -> RuntimeClaims {
        self.claims_with_receipt_key(key, nonce, vec![1; 32])
    }

    /// [`FakeEvidence::claims_for`] binding `receipt_public` (Ed25519) as the receipt key.
    pub fn claims_with_receipt_key(
        &self,
        key: &rcgen::KeyPair,
        nonce: Option<Vec<u8>>,
        receipt_public: Vec<u8>,
    ) -> RuntimeClaims {
        RuntimeClaims {
            tls_spki_sha256: attestation::binding::spki_sha256(
                &rcgen::PublicKeyData::subject_public_key_info(key),
            ),
            receipt_key: ReceiptKey {
                alg: COSE_ALG_EDDSA,
                public_key: receipt_public,
            },
            auditor_hpke_key: None,
            model_digest: MODEL_DIGEST,
            runtime_version: enclave::RUNTIME_VERSION.into(),
            launch_config_digest: LAUNCH_DIGEST,
            nonce,
            gpu_evidence_digest: None,
        }
    }

    /// A bundle of `report` (a function of REPORT_DATA) and the chain, over `claims`.
    pub fn bundle(
        &self,
        claims: &RuntimeClaims,
        report: impl Fn(&[u8; 64]) -> Vec<u8>,
    ) -> EvidenceBundle {
        let bytes = claims.to_cbor();
        let mut b = EvidenceBundle::new(bytes.clone());
        b.push(
            "report",
            SNP_REPORT_MEDIA_TYPE,
            report(&attestation::binding::report_data_of(&bytes)),
            IND_EVIDENCE,
        );
        for (label, der) in [
            ("vcek.der", self.tee.vcek_der()),
            ("ask.der", self.tee.ask_der()),
            ("ark.der", self.tee.ark_der()),
        ] {
            b.push(label, CERT_MEDIA_TYPE, der.to_vec(), IND_ENDORSEMENT);
        }
        // The ARK's CRL, as the simulated runtime serves it: its policy requires one.
        let crl = self.tee.ark_crl().to_vec();
        b.push("ark.crl", CRL_MEDIA_TYPE, crl, IND_ENDORSEMENT);
        b
    }

    /// The genuine simulated report for REPORT_DATA.
    pub fn report(&self, report_data: &[u8; 64]) -> Vec<u8> {
        self.tee.report(report_data, &LAUNCH_DIGEST)
    }

    /// The policy that accepts this fake's genuine evidence: the one the simulated runtime
    /// writes for its own launch.
    pub fn policy_text(&self) -> String {
        enclave::startup::simulated_policy(&self.tee, MODEL_DIGEST, LAUNCH_DIGEST, None)
    }
}

/// A TLS server presenting `cert_key`'s certificate carrying `bundle`, answering every HTTP
/// request with `attestation_reply` (a CBOR bundle) and recording every application byte.
pub struct FakeRuntime {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<u8>>>,
    /// How many connections have ended (on the server's side).
    closed: tokio::sync::watch::Receiver<usize>,
}

impl FakeRuntime {
    /// Waits until `n` connections have ended on the server's side (bounded: 30 s), so
    /// that everything a client sent on them is in [`FakeRuntime::received`].
    pub async fn wait_closed(&self, n: usize) {
        let mut closed = self.closed.clone();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            closed.wait_for(|c| *c >= n),
        )
        .await
        .unwrap_or_else(|_| panic!("{n} connection(s) still open after 30 s"))
        .unwrap();
    }
}

/// Counts a connection as ended when dropped, whichever way its task ends.
struct ClosedOnDrop(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.send_modify(|c| *c += 1);
    }
}

pub async fn fake_runtime(
    cert_key: &rcgen::KeyPair,
    bundle: &EvidenceBundle,
    attestation_reply: Vec<u8>,
) -> FakeRuntime {
    let cert =
        enclave::tls::attested_certificate(cert_key, bundle, &["localhost".into()], 1).unwrap();
    let config = enclave::tls::server_config(cert_key, cert).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let (closed_tx, closed) = tokio::sync::watch::channel(0);
    let closed_tx = Arc::new(closed_tx);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let sink = Arc::clone(&sink);
            let reply = attestation_reply.clone();
            let ended = ClosedOnDrop(Arc::clone(&closed_tx));
            tokio::spawn(async move {
                let _ended = ended;
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            sink.lock().unwrap().extend_from_slice(&buf[..n]);
                            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                                let head = format!(
                                    "HTTP/1.1 200 OK\r\ncontent-type: application/cmw+cbor\r\ncontent-length: {}\r\n\r\n",
                                    reply.len()
                                );
                                let _ = tls.write_all(head.as_bytes()).await;
                                let _ = tls.write_all(&reply).await;
                            }
                        }
                    }
                }
            });
        }
    });
    FakeRuntime {
        addr,
        received,
        closed,
    }
}

/// One HTTP request as a scripted fake runtime received it.
pub struct FakeRequest {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// What a scripted fake runtime sends back: raw response bytes, written in `pieces` (a
/// pause between each), then the connection is closed if `close`.
pub struct FakeReply {
    pub pieces: Vec<Vec<u8>>,
    pub close: bool,
}

type Handler = Arc<dyn Fn(&FakeRequest) -> FakeReply + Send + Sync>;

/// A TLS server presenting `cert_key`'s certificate carrying `bundle`, answering each
/// HTTP/1.1 request with whatever `handler` scripts (raw bytes, so it can misbehave).
pub async fn scripted_runtime(
    cert_key: &rcgen::KeyPair,
    bundle: &EvidenceBundle,
    handler: impl Fn(&FakeRequest) -> FakeReply + Send + Sync + 'static,
) -> SocketAddr {
    let cert =
        enclave::tls::attested_certificate(cert_key, bundle, &["localhost".into()], 1).unwrap();
    let config = enclave::tls::server_config(cert_key, cert).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler: Handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                loop {
                    let Some(request) = read_request(&mut tls, &mut buf).await else {
                        return;
                    };
                    let reply = handler(&request);
                    for piece in &reply.pieces {
                        if tls.write_all(piece).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    if reply.close {
                        // An abrupt end: no TLS close_notify, the TCP connection just goes.
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Read one request (head and a content-length body) from `stream`.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Option<FakeRequest> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Some(FakeRequest { method, path, body })
}

/// An HTTP/1.1 response head for a chunked server-sent-event stream, and one chunk.
pub fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        .to_vec()
}

pub fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// A plain-HTTP server (no TLS) that records what it receives and answers 400.
pub async fn plain_http_server() -> FakeRuntime {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let (closed_tx, closed) = tokio::sync::watch::channel(0);
    let closed_tx = Arc::new(closed_tx);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ended = ClosedOnDrop(Arc::clone(&closed_tx));
            let mut buf = [0u8; 4096];
            if let Ok(n) = tcp.read(&mut buf).await {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    FakeRuntime {
        addr,
        received,
        closed,
    }
}

/// A running `veritee proxy`, killed on drop.
pub struct Proxy {
    child: Child,
    pub base: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_proxy(upstream: &str, policy: &Path) -> Proxy {
    start_proxy_with(upstream, policy, &[])
}

/// `veritee proxy --listen 127.0.0.1:0 --upstream UPSTREAM --policy POLICY EXTRA...`
pub fn start_proxy_with(upstream: &str, policy: &Path, extra: &[&str]) -> Proxy {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--policy",
        ])
        .arg(policy)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the veritee binary starts");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("veritee: proxy listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the proxy prints its address");
    Proxy { child, base }
}

/// One HTTP/1.1 chat request to the proxy; the raw reply (chunked bodies as sent).
pub async fn raw_request(base: &str, body: &str) -> String {
    let addr = base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}
