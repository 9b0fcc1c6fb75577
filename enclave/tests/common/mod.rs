//! Test harness: start the real `veritee-enclave` binary in simulated-TEE mode on
//! 127.0.0.1, and talk to it over TLS with a client that verifies the certificate's
//! evidence with the `attestation` crate before sending anything.

#![allow(dead_code)]

use attestation::binding::PolicyFile as Policy;
use attestation::{Rejection, Timestamp};
use bytes::Bytes;
use client::AttestedConnection;
use http_body_util::{BodyExt, Full};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A multi-threaded tokio runtime for a test's client side.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// The bundled model (a test that needs it fails when it is missing).
pub fn model() -> PathBuf {
    inference::gguf::model_for_tests()
}

/// A running runtime; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: std::net::SocketAddr,
    pub state_dir: PathBuf,
    pub stderr: Arc<Mutex<String>>,
    /// Whether dropping the server removes its state directory.
    owns_state_dir: bool,
}

impl Server {
    /// Start `veritee-enclave serve --simulate` with extra flags; waits (bounded) for the
    /// listening line on stdout.
    pub fn start(model: &Path, extra: &[&str]) -> Server {
        let state_dir = fresh_dir("e2e");
        let mut server = Self::start_in(model, &state_dir, extra);
        server.owns_state_dir = true;
        server
    }

    /// Start on an existing state directory (a restart), which the caller owns.
    pub fn start_in(model: &Path, state_dir: &Path, extra: &[&str]) -> Server {
        let state_dir = state_dir.to_path_buf();
        // Defined for integration tests only; the benchmark example never starts a child.
        let Some(bin) = option_env!("CARGO_BIN_EXE_veritee-enclave") else {
            panic!("Server::start runs from integration tests, where cargo builds the binary")
        };
        let mut child = Command::new(bin)
            .args(["serve", "--simulate", "--listen", "127.0.0.1:0"])
            .arg("--model")
            .arg(model)
            .arg("--state-dir")
            .arg(&state_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the veritee-enclave binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let out_pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("veritee-enclave: listening on https://") {
                    let _ = tx.send(addr.parse::<std::net::SocketAddr>().unwrap());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the runtime did not start within 120 s; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Server {
            child,
            addr,
            state_dir,
            stderr,
            owns_state_dir: false,
        }
    }

    pub fn policy(&self) -> Policy {
        Self::policy_from(&self.state_dir)
    }

    /// The client policy a simulated runtime wrote into its state directory.
    pub fn policy_from(state_dir: &Path) -> Policy {
        let text = std::fs::read_to_string(state_dir.join("policy.toml"))
            .expect("the simulated runtime writes its client policy");
        Policy::from_toml(&text).expect("the written policy loads")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_state_dir {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

/// A new, empty directory under the system temporary directory.
pub fn fresh_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "veritee-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn now() -> Timestamp {
    Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

/// A client that accepts any certificate (still checking the handshake signature): the
/// plain-TLS baseline of the connection benchmark. Never use it for anything else.
pub fn client_config_no_verify() -> Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS handshake with `config`, then close.
pub async fn plain_tls_connect(addr: std::net::SocketAddr, config: Arc<rustls::ClientConfig>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("localhost").unwrap();
    connector
        .connect(name, tcp)
        .await
        .expect("plain TLS handshake");
}

/// Connect with the client crate's verifying connector (evidence checked inside the
/// handshake, before HTTP); the typed rejection when it refuses.
pub async fn connect(
    addr: std::net::SocketAddr,
    policy: &Policy,
) -> Result<AttestedConnection, Rejection> {
    let connector = client::Connector::new(policy.clone());
    let target = client::Target {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    match connector.connect(&target, None).await {
        Ok(c) => Ok(c),
        Err(client::ClientError::Evidence(r)) => Err(r),
        Err(e) => panic!("connection failed before verification: {e}"),
    }
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request and its whole reply, for tests (bounded in time).
pub trait RequestExt {
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Reply;
    /// [`RequestExt::request`] with extra headers.
    async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply;
}

impl RequestExt for AttestedConnection {
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Reply {
        self.request_with(method, path, body, &[]).await
    }

    async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(300), self.send(req))
            .await
            .expect("a response within 300 s")
            .expect("the request is answered");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            content_type,
            headers,
            body,
        }
    }
}

/// Server-sent events of a body: the `data:` payloads, in order.
/// The value of an unlabelled metric (a gauge such as `veritee_jobs_active`) in
/// `/metrics`.
pub async fn metric(c: &mut AttestedConnection, name: &str) -> f64 {
    let text = metrics_text(c).await;
    metric_in(&text, name).unwrap_or_else(|| panic!("{name} is not in /metrics:\n{text}"))
}

async fn metrics_text(c: &mut AttestedConnection) -> String {
    let reply = c.request("GET", "/metrics", b"").await;
    assert_eq!(reply.status, 200);
    String::from_utf8(reply.body).unwrap()
}

/// The value of the sample named exactly `name` (labels included), if present.
fn metric_in(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Polls `/metrics` until `name` satisfies `ok` (bounded: 60 s); the runtime's own state
/// decides when a test goes on, not a sleep. A sample not yet present (a labelled counter
/// before its first event) is waited for like any other value.
pub async fn wait_for_metric(c: &mut AttestedConnection, name: &str, ok: impl Fn(f64) -> bool) {
    let start = Instant::now();
    loop {
        let text = metrics_text(c).await;
        let value = metric_in(&text, name);
        if value.is_some_and(&ok) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} is still {value:?} after 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn sse_events(body: &[u8]) -> Vec<String> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

/// Poll `f` until it returns Some, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The auditor's bearer token the tests' launch configurations name.
pub const AUDITOR_TOKEN: &str = "test-auditor-token-2a41c9e07f";

/// `auditor_token_sha256 = "<SHA-256 of AUDITOR_TOKEN>"`: the launch configuration line
/// that opens the audit routes to the tests' auditor.
pub fn auditor_token_line() -> String {
    format!(
        "auditor_token_sha256 = \"{}\"\n",
        hex::encode(attestation::x509::sha256(AUDITOR_TOKEN.as_bytes()))
    )
}

/// The Authorization header of the tests' auditor.
pub fn auditor_header() -> (&'static str, String) {
    ("authorization", format!("Bearer {AUDITOR_TOKEN}"))
}

/// A TLS connection that checks no evidence (the raw bytes of hostile clients go over it).
pub async fn raw_tls(
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config_no_verify());
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// A raw HTTP/1.1 response: status, headers (names lower-case), body (as sent: chunked
/// encoding is not undone).
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn parse(bytes: &[u8]) -> RawReply {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete response head: {text:?}"));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {text:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        RawReply {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server configuration file in `dir` with `toml` in it.
pub fn config_file(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, toml).unwrap();
    path
}
