//! Runtime configuration: a TOML file, overridden by command-line flags, plus the
//! provider's launch configuration (whose digest the runtime claims bind).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything the runtime needs to start. Every field has a default so that
/// `veritee-enclave serve --simulate` runs with no file at all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The TLS listener. There is no plain-HTTP listener.
    pub listen: SocketAddr,
    /// GGUF model file; default: the bundled SmolLM2 in the models directory.
    pub model: Option<PathBuf>,
    /// Name the API reports for the model; default: the file's stem.
    pub model_id: Option<String>,
    /// Where the runtime keeps state it may keep: the simulated TEE's development chain
    /// and the policy it writes for clients. Never private keys of the runtime itself.
    pub state_dir: PathBuf,
    /// The provider's launch configuration (TOML); its SHA-256 is bound in the claims.
    pub launch_config: Option<PathBuf>,
    /// `launch_config` is where the host may have put one (the sealed image: QEMU's
    /// fw_cfg); when it is absent the runtime runs with the empty configuration. Safe
    /// because the digest of what was loaded must equal the one the hardware carries
    /// (SNP HOST_DATA, TDX MRCONFIGID), which the host set at launch.
    pub launch_config_optional: bool,
    /// Certificates and collateral handed in by the host, served with the evidence.
    pub collateral_dir: Option<PathBuf>,
    /// configfs-tsm report directory and the SEV guest device (real TEEs only).
    pub tsm_report_dir: PathBuf,
    pub sev_guest_device: PathBuf,
    /// The CPU kernels the engine uses: `scalar`, `avx2` or `avx512` (must be available);
    /// default: the fastest this CPU has. Results are bit-identical on every path.
    pub cpu_kernel: Option<String>,
    /// NVIDIA GPUs to attest through NVML (`libnvidia-ml.so.1`) and bind in claim 8; NVML
    /// must see exactly this many, in confidential-computing mode with devtools mode off,
    /// or the runtime does not start. 0: no GPU (real TEEs only; simulated GPUs are
    /// `--simulate-gpus`).
    pub gpus: usize,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8443".parse().expect("literal address"),
            model: None,
            model_id: None,
            state_dir: PathBuf::from(".veritee"),
            launch_config: None,
            launch_config_optional: false,
            collateral_dir: None,
            tsm_report_dir: PathBuf::from("/sys/kernel/config/tsm/report"),
            sev_guest_device: PathBuf::from("/dev/sev-guest"),
            cpu_kernel: None,
            gpus: 0,
            limits: Limits::default(),
        }
    }
}

/// Limits on what one request and the whole server may ask for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// Longest prompt accepted (tokens, after the chat template); capped by the context.
    pub max_prompt_tokens: usize,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: usize,
    /// Jobs waiting for an engine slot beyond which requests are refused (503).
    pub queue_depth: usize,
    /// Jobs in the engine's batch at once (each decode step runs them all through the
    /// weights together); more wait in the queue.
    pub max_batch: usize,
    /// Memory for the active jobs' KV caches (MiB). A job reserves room for its prompt and
    /// its `max_tokens` when it joins the batch; one that does not fit waits in the queue
    /// until others finish. It must hold at least one request of the largest size allowed.
    pub kv_cache_mib: usize,
    /// A request's whole life, queue wait included (seconds).
    pub request_timeout_secs: u64,
    /// Time allowed for the TLS handshake and for reading a request's headers (seconds);
    /// also how long an idle keep-alive connection waits for its next request.
    pub handshake_timeout_secs: u64,
    /// Longest a request body may take to arrive once its headers are in (seconds); past
    /// it the request is answered 408 and the connection closed.
    pub body_timeout_secs: u64,
    /// Slowest a request body may arrive: from 2 s after its headers, at least this many
    /// bytes per second on average, else 408 (0: no minimum rate, only the timeout).
    pub body_min_bytes_per_sec: u64,
    /// Open connections at most. At the limit a new connection closes the one that has
    /// waited longest without a request in progress (in its handshake, idle, or sending
    /// headers or a body); when every connection has a request in progress, the new one
    /// is closed at once.
    pub max_connections: usize,
    /// Prompt tokens prefilled per engine step, over all jobs: a long prompt is prefilled
    /// in chunks of this size between the others' decode steps, so it delays each of their
    /// tokens by at most one chunk's work (results do not depend on it).
    pub prefill_chunk_tokens: usize,
    /// After SIGTERM/SIGINT: how long in-flight requests may take to finish (seconds).
    pub shutdown_grace_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_prompt_tokens: 8192,
            max_tokens: 2048,
            default_max_tokens: 256,
            queue_depth: 64,
            max_batch: 8,
            kv_cache_mib: 1024,
            request_timeout_secs: 300,
            handshake_timeout_secs: 10,
            body_timeout_secs: 30,
            body_min_bytes_per_sec: 1024,
            max_connections: 512,
            prefill_chunk_tokens: 128,
            shutdown_grace_secs: 30,
        }
    }
}

impl Config {
    /// Read a TOML configuration file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("config {}: {e}", path.display()))?;
        let config: Config =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        config
            .check()
            .map_err(|e| format!("config {}: {e}", path.display()))?;
        Ok(config)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.launch_config_optional && self.launch_config.is_none() {
            return Err(
                "launch_config_optional needs launch_config (where the host may put one)".into(),
            );
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_prompt_tokens", l.max_prompt_tokens),
            ("limits.max_tokens", l.max_tokens),
            ("limits.default_max_tokens", l.default_max_tokens),
            ("limits.max_batch", l.max_batch),
            ("limits.kv_cache_mib", l.kv_cache_mib),
            ("limits.max_connections", l.max_connections),
            ("limits.prefill_chunk_tokens", l.prefill_chunk_tokens),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if l.default_max_tokens > l.max_tokens {
            return Err(format!(
                "limits.default_max_tokens ({}) exceeds limits.max_tokens ({})",
                l.default_max_tokens, l.max_tokens
            ));
        }
        if l.request_timeout_secs == 0 || l.handshake_timeout_secs == 0 || l.body_timeout_secs == 0
        {
            return Err("timeouts must be at least 1 second".into());
        }
        Ok(())
    }
}

/// The provider's launch configuration. On real hardware its digest is also placed in
/// SNP HOST_DATA / TDX MRCONFIGID by the host, so the image measurement stays the same
/// for every deployment while each deployment's settings are still attested.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchConfig {
    /// The auditor's HPKE public key (X25519, 64 hex digits) transcripts are encrypted to.
    pub auditor_hpke_public_key: Option<String>,
    /// The model digest (SHA-256, 64 hex digits) this deployment must serve; the runtime
    /// refuses to start with any other model.
    pub model_digest: Option<String>,
    /// SHA-256 (64 hex digits) of the auditor's bearer token: `GET /v1/receipts` and
    /// `GET /v1/audit/bundle` answer only a request with `Authorization: Bearer <token>`.
    /// Without it those routes answer 403 to everyone.
    pub auditor_token_sha256: Option<String>,
}

/// A launch configuration with the digest of its exact bytes.
#[derive(Debug, Clone)]
pub struct LoadedLaunchConfig {
    pub config: LaunchConfig,
    pub auditor_hpke_public_key: Option<[u8; 32]>,
    pub model_digest: Option<[u8; 32]>,
    pub auditor_token_sha256: Option<[u8; 32]>,
    /// SHA-256 of the file's bytes; of the empty string when there is no file.
    pub digest: [u8; 32],
}

impl LoadedLaunchConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let bytes = match path {
            Some(p) => {
                std::fs::read(p).map_err(|e| format!("launch config {}: {e}", p.display()))?
            }
            None => Vec::new(),
        };
        Self::from_bytes(path, &bytes)
    }

    /// The configuration at `path` if there is a file there, else the empty one (what a
    /// host that passed none put in HOST_DATA / MRCONFIGID: SHA-256 of no bytes). Any
    /// other error reading it is an error.
    pub fn load_if_present(path: &Path) -> Result<Self, String> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_bytes(Some(path), &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::from_bytes(None, b""),
            Err(e) => Err(format!("launch config {}: {e}", path.display())),
        }
    }

    fn from_bytes(path: Option<&Path>, bytes: &[u8]) -> Result<Self, String> {
        let name = path.map_or("(none)".to_string(), |p| p.display().to_string());
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("launch config {name}: not UTF-8 text"))?;
        let config: LaunchConfig =
            toml::from_str(text).map_err(|e| format!("launch config {name}: {e}"))?;
        let hex32 = |field: &str, v: &Option<String>| -> Result<Option<[u8; 32]>, String> {
            v.as_deref()
                .map(|h| {
                    hex::decode(h)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| {
                            format!("launch config {name}: {field} must be 64 hex digits")
                        })
                })
                .transpose()
        };
        Ok(LoadedLaunchConfig {
            auditor_hpke_public_key: hex32(
                "auditor_hpke_public_key",
                &config.auditor_hpke_public_key,
            )?,
            model_digest: hex32("model_digest", &config.model_digest)?,
            auditor_token_sha256: hex32("auditor_token_sha256", &config.auditor_token_sha256)?,
            config,
            digest: crate::sha256(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_keys_are_errors() {
        Config::default().check().unwrap();
        let err = toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisen = 2\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let c: Config = toml::from_str("[limits]\nqueue_depth = 3\n").unwrap();
        assert_eq!(c.limits.queue_depth, 3);
        assert_eq!(c.limits.max_batch, Limits::default().max_batch);
        let c: Config = toml::from_str("[limits]\nmax_tokens = 10\n").unwrap();
        assert!(c.check().unwrap_err().contains("default_max_tokens"));
        let c: Config = toml::from_str("[limits]\nprefill_chunk_tokens = 0\n").unwrap();
        assert!(c.check().unwrap_err().contains("prefill_chunk_tokens"));
        let c: Config = toml::from_str("[limits]\nbody_timeout_secs = 0\n").unwrap();
        assert!(c.check().unwrap_err().contains("timeouts"));
    }

    #[test]
    fn launch_config_digest_covers_the_exact_bytes() {
        let dir = std::env::temp_dir().join(format!("veritee-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("launch.toml");
        let key = "ab".repeat(32);
        std::fs::write(&path, format!("auditor_hpke_public_key = \"{key}\"\n")).unwrap();
        let loaded = LoadedLaunchConfig::load(Some(&path)).unwrap();
        assert_eq!(loaded.auditor_hpke_public_key, Some([0xab; 32]));
        assert_eq!(loaded.digest, crate::sha256(&std::fs::read(&path).unwrap()));
        std::fs::write(&path, "auditor_hpke_public_key = \"abcd\"\n").unwrap();
        let err = LoadedLaunchConfig::load(Some(&path)).unwrap_err();
        assert!(err.contains("64 hex digits"), "{err}");
        std::fs::write(
            &path,
            format!("auditor_token_sha256 = \"{}\"\n", "cd".repeat(32)),
        )
        .unwrap();
        let loaded = LoadedLaunchConfig::load(Some(&path)).unwrap();
        assert_eq!(loaded.auditor_token_sha256, Some([0xcd; 32]));
        assert_eq!(loaded.auditor_hpke_public_key, None);
        std::fs::write(&path, "auditor_token_sha256 = \"secret\"\n").unwrap();
        let err = LoadedLaunchConfig::load(Some(&path)).unwrap_err();
        assert!(err.contains("auditor_token_sha256"), "{err}");
        let none = LoadedLaunchConfig::load(None).unwrap();
        assert_eq!(none.auditor_token_sha256, None);
        assert_eq!(none.digest, crate::sha256(b""));
        // Where the host may put one: absent is the empty configuration, present is read,
        // unreadable (here a directory) is an error, not the empty configuration.
        let absent = LoadedLaunchConfig::load_if_present(&dir.join("absent.toml")).unwrap();
        assert_eq!(absent.digest, crate::sha256(b""));
        let key_file = format!("auditor_hpke_public_key = \"{key}\"\n");
        std::fs::write(&path, &key_file).unwrap();
        let present = LoadedLaunchConfig::load_if_present(&path).unwrap();
        assert_eq!(present.digest, crate::sha256(key_file.as_bytes()));
        assert_eq!(present.auditor_hpke_public_key, Some([0xab; 32]));
        let err = LoadedLaunchConfig::load_if_present(&dir).unwrap_err();
        assert!(err.starts_with("launch config "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
