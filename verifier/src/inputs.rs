//! Reading the verifier's inputs (usage-level errors, exit 2): the time, the policy, the
//! auditor's key and bounded files.

use attestation::binding::PolicyFile;
use attestation::policy::Policy;
use attestation::Timestamp;
use std::path::Path;

pub fn time(at: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(at).map_err(|e| format!("--at: {}", e.detail))
}

/// The policy file, or with `dangerous_any_runtime` the default evidence policy and any
/// runtime claims (with a warning on stderr). Returns the policy and how to name it.
pub fn policy(
    path: Option<&Path>,
    dangerous_any_runtime: bool,
) -> Result<(PolicyFile, String), String> {
    policy_with_text(path, dangerous_any_runtime).map(|(policy, name, _)| (policy, name))
}

/// [`policy`], and the file's text (empty without a file), for a fraud proof to carry.
pub fn policy_with_text(
    path: Option<&Path>,
    dangerous_any_runtime: bool,
) -> Result<(PolicyFile, String, String), String> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("policy {}: {e}", path.display()))?;
            let policy = PolicyFile::from_toml(&text)
                .map_err(|e| format!("policy {}: {}", path.display(), e.detail))?;
            Ok((policy, path.display().to_string(), text))
        }
        None if !dangerous_any_runtime => {
            Err("--policy FILE is required: it names the runtime code (model, launch configuration, version, auditor key) whose receipts count; without it receipts from any runtime in any genuine CVM would be accepted (--dangerous-any-runtime, for inspection only)".into())
        }
        None => {
            eprintln!(
                "veritee-verify: WARNING: --dangerous-any-runtime: receipts from ANY runtime code in any genuine CVM are accepted (no model, launch configuration, runtime version or auditor key is checked); audit with --policy"
            );
            Ok((
                PolicyFile {
                    evidence: Policy::default_verifier(),
                    runtime: attestation::binding::RuntimePolicy::dangerous_any(),
                    gpu: attestation::policy::GpuPolicy::none(),
                },
                "DANGEROUS: default evidence policy (pins no measurement, forbids debug; TDX: TCB status UpToDate only; SEV-SNP: no TCB minimum, revocation checked only if an AMD CRL is given) and any runtime claims (--dangerous-any-runtime)".to_string(),
                String::new(),
            ))
        }
    }
}

/// The auditor's X25519 secret key: 64 hex digits in a file.
pub fn auditor_key(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("auditor key {}: {e}", path.display()))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            format!(
                "auditor key {}: expected 64 hex digits (an X25519 secret key)",
                path.display()
            )
        })
}

/// A whole file, refusing one over `max` bytes before reading it.
pub fn bounded_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > max {
        return Err(format!(
            "{}: {size} bytes, more than the {max} this command reads",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
