//! The provider's launch configuration as the host sees it: the same file, read the same way
//! as the runtime reads it (`veritee-enclave serve --launch-config`, `enclave::config`), so
//! that what the host declares at launch equals what the runtime claims.
//!
//! The runtime claims `SHA-256(file bytes)` (claim 6; of the empty string when it was given
//! no file). The host places the same digest in the hardware's host-provided field:
//!
//! * SEV-SNP `HOST_DATA` (32 bytes): the digest itself;
//! * TDX `MRCONFIGID` (48 bytes): the digest followed by 16 zero bytes.
//!
//! So the image's measurement stays one value for every deployment while each deployment's
//! settings (auditor key, pinned model) are attested twice: by the hardware field the
//! secure processor / TDX module signs, and by the runtime's claim. A client policy pins
//! both (`veritee-host policy`).
//!
//! The file is TOML. The host reads the two fields the client policy depends on, both
//! optional, both 64 hex digits, checked as the runtime checks them:
//!
//! ```toml
//! auditor_hpke_public_key = "<X25519 public key>"
//! model_digest = "<SHA-256 of the model file>"
//! ```
//!
//! Other keys are the runtime's business (it refuses keys it does not know, and its set of
//! keys grows); they are listed in [`LaunchConfig::other_keys`] rather than refused here, so
//! a newer runtime's configuration still gets its policy. They cannot change what the
//! policy pins: the digest covers every byte.

use serde::Deserialize;
use thiserror::Error;

use crate::measure::{sha256, Sha256Digest, Sha384Digest};

/// Why a launch configuration would not load in the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LaunchConfigError {
    /// The runtime reads the file as UTF-8 text.
    #[error("launch configuration is not UTF-8 text")]
    NotUtf8,
    /// Not TOML, or a key the runtime does not know.
    #[error("launch configuration: {0}")]
    Toml(String),
    /// A key whose value is not 64 hex digits.
    #[error("launch configuration: {field} must be 64 hex digits")]
    Hex { field: &'static str },
}

/// The fields the policy depends on, as the runtime's `LaunchConfig` declares them.
#[derive(Deserialize)]
struct Fields {
    auditor_hpke_public_key: Option<String>,
    model_digest: Option<String>,
}

/// The keys [`Fields`] reads.
pub const KNOWN_KEYS: &[&str] = &["auditor_hpke_public_key", "model_digest"];

/// A launch configuration: the digest of its exact bytes and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchConfig {
    /// SHA-256 of the file's bytes (of the empty string without a file).
    pub digest: Sha256Digest,
    /// The auditor's HPKE public key (X25519) transcripts are sealed to.
    pub auditor_hpke_public_key: Option<[u8; 32]>,
    /// The model digest the runtime must serve (it refuses to start with another model).
    pub model_digest: Option<[u8; 32]>,
    /// Top-level keys other than [`KNOWN_KEYS`], sorted, for the caller to report.
    pub other_keys: Vec<String>,
}

impl LaunchConfig {
    /// No launch configuration: what the runtime claims when it is given no file.
    pub fn none() -> Self {
        LaunchConfig {
            digest: sha256(b""),
            auditor_hpke_public_key: None,
            model_digest: None,
            other_keys: Vec::new(),
        }
    }

    /// The configuration from the file's bytes, checked as the runtime checks it.
    pub fn parse(bytes: &[u8]) -> Result<Self, LaunchConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| LaunchConfigError::NotUtf8)?;
        let table: toml::Table =
            toml::from_str(text).map_err(|e| LaunchConfigError::Toml(e.to_string()))?;
        let mut other_keys: Vec<String> = table
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        other_keys.sort();
        let fields: Fields = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| LaunchConfigError::Toml(e.to_string()))?;
        let hex32 = |field: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|h| {
                    hex::decode(h)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or(LaunchConfigError::Hex { field })
                })
                .transpose()
        };
        Ok(LaunchConfig {
            digest: sha256(bytes),
            auditor_hpke_public_key: hex32(
                "auditor_hpke_public_key",
                &fields.auditor_hpke_public_key,
            )?,
            model_digest: hex32("model_digest", &fields.model_digest)?,
            other_keys,
        })
    }

    /// The SEV-SNP `HOST_DATA` the host sets at launch: the digest.
    pub fn host_data(&self) -> [u8; 32] {
        self.digest
    }

    /// The TDX `MRCONFIGID` the host sets at launch: the digest, then 16 zero bytes.
    pub fn mr_config_id(&self) -> Sha384Digest {
        let mut id = [0u8; 48];
        id[..32].copy_from_slice(&self.digest);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_digest_and_refusals() {
        let key = "ab".repeat(32);
        let text = format!("auditor_hpke_public_key = \"{key}\"\n");
        let c = LaunchConfig::parse(text.as_bytes()).unwrap();
        assert_eq!(c.auditor_hpke_public_key, Some([0xab; 32]));
        assert_eq!(c.model_digest, None);
        assert_eq!(c.digest, sha256(text.as_bytes()));
        assert_eq!(c.host_data(), c.digest);
        assert_eq!(&c.mr_config_id()[..32], &c.digest);
        assert_eq!(&c.mr_config_id()[32..], &[0; 16]);

        assert_eq!(LaunchConfig::parse(b"").unwrap(), LaunchConfig::none());
        assert_eq!(
            LaunchConfig::parse(b"model_digest = \"abcd\"\n"),
            Err(LaunchConfigError::Hex {
                field: "model_digest"
            })
        );
        assert_eq!(
            LaunchConfig::parse(b"\xff"),
            Err(LaunchConfigError::NotUtf8)
        );
        let c = LaunchConfig::parse(b"model = \"x\"\n[limits]\n").unwrap();
        assert_eq!(
            c.other_keys,
            vec!["limits".to_string(), "model".to_string()]
        );
        let e = LaunchConfig::parse(b"model_digest = 7\n").unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert!(LaunchConfig::parse(b"model_digest = ").is_err());
    }
}
