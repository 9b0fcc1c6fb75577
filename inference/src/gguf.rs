//! GGUF model files: parse the header and metadata, compute the weight digest once.
//!
//! The digest (SHA-256 of the whole file) is what attestation claims and receipts name,
//! so it is computed from the bytes actually loaded, in the same read.

use crate::error::{InferenceError, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// A GGUF file held in memory with its parsed header and its SHA-256.
pub struct GgufFile {
    path: String,
    bytes: Vec<u8>,
    content: Content,
    sha256: [u8; 32],
}

impl GgufFile {
    /// Read and parse a GGUF file.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let io = |source| InferenceError::Io {
            path: name.clone(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io)?;
        Self::from_bytes(name, bytes)
    }

    /// Parse GGUF bytes (`name` is used in messages).
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Self> {
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let content = Content::read(&mut Cursor::new(&bytes))
            .map_err(|e| InferenceError::MalformedModel(format!("{name}: {e}")))?;
        // Every tensor must lie inside the file: candle reads them lazily, and a
        // truncated file must fail here, at load, with a clear message.
        for (tensor, info) in &content.tensor_infos {
            let size = info.shape.elem_count() / info.ggml_dtype.block_size()
                * info.ggml_dtype.type_size();
            let end = (content.tensor_data_offset as u128)
                .saturating_add(info.offset as u128)
                .saturating_add(size as u128);
            if end > bytes.len() as u128 {
                return Err(InferenceError::MalformedModel(format!(
                    "{name}: tensor {tensor} ends at byte {end}, the file has {}",
                    bytes.len()
                )));
            }
        }
        Ok(GgufFile {
            path: name,
            bytes,
            content,
            sha256,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// SHA-256 of the file: the model digest named in claims and receipts.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    /// A reader over the file bytes, for loading tensors.
    pub fn reader(&self) -> Cursor<&[u8]> {
        Cursor::new(&self.bytes)
    }

    pub fn value(&self, key: &str) -> Result<&Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| InferenceError::Metadata {
                key: key.into(),
                detail: "absent".into(),
            })
    }

    pub fn string(&self, key: &str) -> Result<&str> {
        self.value(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|e| metadata_type(key, e))
    }

    pub fn u32(&self, key: &str) -> Result<u32> {
        let v = self.value(key)?;
        // Writers differ in integer width; accept any that fits.
        v.to_u32()
            .or_else(|_| v.to_u64().map(|x| x as u32))
            .or_else(|_| v.to_i32().map(|x| x as u32))
            .map_err(|e| metadata_type(key, e))
    }

    pub fn f32(&self, key: &str) -> Result<f32> {
        self.value(key)?.to_f32().map_err(|e| metadata_type(key, e))
    }

    pub fn array(&self, key: &str) -> Result<&Vec<Value>> {
        self.value(key)?.to_vec().map_err(|e| metadata_type(key, e))
    }

    /// `general.architecture`, checked against what this engine runs.
    pub fn architecture(&self) -> Result<&str> {
        let arch = self.string("general.architecture")?;
        match arch {
            "llama" => Ok(arch),
            other => Err(InferenceError::UnsupportedArchitecture(other.into())),
        }
    }
}

fn metadata_type(key: &str, e: candle_core::Error) -> InferenceError {
    InferenceError::Metadata {
        key: key.into(),
        detail: e.to_string(),
    }
}

/// File name of the real model (SmolLM2-135M-Instruct, Q4_1), as `scripts/fetch-model.sh`
/// installs it.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The models directory: `$VERITEE_MODELS`, else `models/` at the workspace root.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("VERITEE_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("models"),
    }
}

/// Where the real model is expected: [`models_dir`] / [`DEFAULT_MODEL_FILE`].
pub fn default_model_path() -> PathBuf {
    models_dir().join(DEFAULT_MODEL_FILE)
}

/// For tests that need the real model: its path.
///
/// # Panics
///
/// When the model is absent: a test that needs it fails (naming `scripts/fetch-model.sh`,
/// which the README's test command runs first) instead of passing without it.
pub fn model_for_tests() -> PathBuf {
    let path = default_model_path();
    if !path.is_file() {
        panic!(
            "model {} is missing: run scripts/fetch-model.sh (or set VERITEE_MODELS)",
            path.display()
        );
    }
    path
}
