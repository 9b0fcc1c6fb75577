//! Hugging Face llama checkpoints: a directory holding `config.json` and one or more
//! `*.safetensors` files (F32, F16 or BF16), loaded with [`crate::model::Model::load_safetensors`].
//!
//! # Layout
//!
//! HF checkpoints keep the Q and K projections in the order their half-split rotary
//! embedding expects (pair `i` is rows `i` and `i + head_dim/2` of a head). This engine's
//! forward uses llama.cpp's layout (pair `i` is rows `2i` and `2i+1`, the interleaved
//! `rope_i`), so the Q and K rows of every head are permuted at load into that layout —
//! the permutation `convert_hf_to_gguf.py` applies. The forward pass is then the same code
//! for GGUF and safetensors models, and the two agree on the same weights.
//!
//! All weights are converted to f32 at load and multiplied in f32 (like
//! [`crate::model::Weights::DequantizedF32`]).
//!
//! # Digest
//!
//! [`digest_files`]: SHA-256 over the bytes of every `*.safetensors` file of the directory,
//! in ascending byte order of their file names, followed by the bytes of `config.json` —
//! the same as `cat $(ls *.safetensors | LC_ALL=C sort) config.json | sha256sum`.
//! `config.json` is included because its hyper-parameters (`rms_norm_eps`, `rope_theta`,
//! head counts, tied embeddings) change the outputs exactly as the weights do, and a GGUF
//! digest covers the same metadata; a safetensors file is self-delimiting (its header gives
//! its length), so the concatenation is unambiguous. Tokenizer files are not covered (they
//! are not read here). The bytes hashed are the bytes parsed: each file is read once.

use crate::error::{InferenceError, Result};
use crate::model::{LlamaConfig, ShapeKeys};
use candle_core::safetensors::SliceSafetensors;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The architecture `config.json` must name.
pub const ARCHITECTURE: &str = "LlamaForCausalLM";

/// A checkpoint directory read into memory: its config, every tensor as f32 on the target
/// device (Q/K already permuted into llama.cpp's layout), and its digest.
pub(crate) struct Checkpoint {
    /// The directory, for messages.
    pub path: String,
    pub config: LlamaConfig,
    pub tie_word_embeddings: bool,
    pub tensors: HashMap<String, Tensor>,
    pub digest: [u8; 32],
}

/// The `*.safetensors` files of `dir`, sorted by file name (byte order).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| InferenceError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "safetensors") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(InferenceError::MalformedModel(format!(
            "{}: no *.safetensors file",
            dir.display()
        )));
    }
    Ok(files)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| InferenceError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The digest of a checkpoint: SHA-256 over the weight files' bytes (in the order given)
/// followed by the `config.json` bytes. See the module documentation.
pub fn digest_files(weight_files: &[&[u8]], config_json: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for bytes in weight_files {
        h.update(bytes);
    }
    h.update(config_json);
    h.finalize().into()
}

fn metadata(key: &str, detail: String) -> InferenceError {
    InferenceError::Metadata {
        key: key.into(),
        detail,
    }
}

/// Reads a HF llama `config.json` (already parsed). Returns the config and
/// `tie_word_embeddings`. `num_key_value_heads` defaults to `num_attention_heads`,
/// `rope_theta` to 10000 and `tie_word_embeddings` to false, as in HF's `LlamaConfig`;
/// the other keys are required.
pub fn config_from_json(json: &Value) -> Result<(LlamaConfig, bool)> {
    let archs = json
        .get("architectures")
        .ok_or_else(|| metadata("architectures", "missing from config.json".into()))?;
    let archs: Vec<&str> = archs
        .as_array()
        .ok_or_else(|| metadata("architectures", "not an array".into()))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !archs.contains(&ARCHITECTURE) {
        return Err(InferenceError::UnsupportedArchitecture(archs.join(",")));
    }
    let get = |key: &str| -> Result<&Value> {
        json.get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| metadata(key, "missing from config.json".into()))
    };
    let positive = |key: &str| -> Result<usize> {
        let v = get(key)?
            .as_u64()
            .ok_or_else(|| metadata(key, "not a non-negative integer".into()))?;
        if v == 0 || v > u32::MAX as u64 {
            return Err(metadata(key, format!("{v} is out of range")));
        }
        Ok(v as usize)
    };
    let float = |key: &str| -> Result<f32> {
        let v = get(key)?
            .as_f64()
            .ok_or_else(|| metadata(key, "not a number".into()))? as f32;
        if !(v.is_finite() && v > 0.0) {
            return Err(metadata(key, "must be finite and positive".into()));
        }
        Ok(v)
    };
    let n_layer = positive("num_hidden_layers")?;
    let n_head = positive("num_attention_heads")?;
    let n_kv_head = match json.get("num_key_value_heads") {
        Some(v) if !v.is_null() => positive("num_key_value_heads")?,
        _ => n_head,
    };
    let embedding_length = positive("hidden_size")?;
    let feed_forward_length = positive("intermediate_size")?;
    let context_length = positive("max_position_embeddings")?;
    let vocab_size = positive("vocab_size")?;
    let rms_eps = float("rms_norm_eps")?;
    let rope_freq_base = match json.get("rope_theta") {
        Some(v) if !v.is_null() => float("rope_theta")?,
        _ => 10_000.0,
    };
    let tie = match json.get("tie_word_embeddings") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| metadata("tie_word_embeddings", "not a boolean".into()))?,
    };
    let head_dim = LlamaConfig::head_dim(
        n_head,
        n_kv_head,
        embedding_length,
        &ShapeKeys {
            head_count: "num_attention_heads",
            head_count_kv: "num_key_value_heads",
            embedding_length: "hidden_size",
        },
    )?;
    if let Some(v) = json.get("head_dim").filter(|v| !v.is_null()) {
        if v.as_u64() != Some(head_dim as u64) {
            return Err(metadata(
                "head_dim",
                format!("{v} differs from hidden_size / num_attention_heads = {head_dim}"),
            ));
        }
    }
    if let Some(v) = json.get("rope_scaling").filter(|v| !v.is_null()) {
        return Err(metadata(
            "rope_scaling",
            format!("rope scaling {v} is not supported"),
        ));
    }
    if let Some(v) = json.get("hidden_act").filter(|v| !v.is_null()) {
        if v.as_str() != Some("silu") {
            return Err(metadata(
                "hidden_act",
                format!("{v} is not supported (only silu)"),
            ));
        }
    }
    for key in ["attention_bias", "mlp_bias"] {
        if json.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(metadata(key, "biases are not supported".into()));
        }
    }
    let config = LlamaConfig {
        n_layer,
        n_head,
        n_kv_head,
        embedding_length,
        feed_forward_length,
        context_length,
        rope_freq_base,
        rms_eps,
        vocab_size,
        head_dim,
    };
    Ok((config, tie))
}

/// Reorders the rows of a HF Q or K projection `[heads·head_dim, in]` into llama.cpp's
/// layout: within each head, row `j·head_dim/2 + i` moves to row `2i + j` (`j` ∈ {0, 1}).
pub fn permute_qk(w: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    Ok(w.reshape((heads, 2, head_dim / 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

/// Reads `dir` (see the module documentation) onto `device`.
pub(crate) fn read_checkpoint(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let name = dir.display().to_string();
    let malformed = |detail: String| InferenceError::MalformedModel(format!("{name}: {detail}"));
    let config_path = dir.join("config.json");
    let config_bytes = read(&config_path)?;
    let json: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| malformed(format!("config.json: {e}")))?;
    let (config, tie_word_embeddings) = config_from_json(&json)?;

    let files = weight_files(dir)?;
    let contents = files
        .iter()
        .map(|f| read(f))
        .collect::<Result<Vec<Vec<u8>>>>()?;
    let slices: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
    let digest = digest_files(&slices, &config_bytes);

    let mut parsed = Vec::with_capacity(files.len());
    for (file, bytes) in files.iter().zip(&contents) {
        let fname = file.file_name().unwrap_or_default().to_string_lossy();
        let st = SliceSafetensors::new(bytes).map_err(|e| malformed(format!("{fname}: {e}")))?;
        let mut views = st.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        for (tensor, view) in &views {
            let dtype = format!("{:?}", view.dtype());
            if !matches!(dtype.as_str(), "F32" | "F16" | "BF16") {
                return Err(InferenceError::UnsupportedTensorType {
                    tensor: tensor.clone(),
                    dtype,
                });
            }
        }
        let names: Vec<String> = views.into_iter().map(|(n, _)| n).collect();
        parsed.push((fname.into_owned(), st, names));
    }

    let c = &config;
    let mut tensors = HashMap::new();
    for (fname, st, views) in &parsed {
        for tensor in views {
            if tensors.contains_key(tensor) {
                return Err(malformed(format!(
                    "tensor {tensor} appears in more than one file (again in {fname})"
                )));
            }
            let t = st
                .load(tensor, device)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| malformed(format!("{fname}: tensor {tensor}: {e}")))?;
            let t = if tensor.ends_with(".self_attn.q_proj.weight") {
                permute_checked(&t, c.n_head, c, tensor, &malformed)?
            } else if tensor.ends_with(".self_attn.k_proj.weight") {
                permute_checked(&t, c.n_kv_head, c, tensor, &malformed)?
            } else {
                t
            };
            tensors.insert(tensor.clone(), t);
        }
    }
    Ok(Checkpoint {
        path: name.clone(),
        config,
        tie_word_embeddings,
        tensors,
        digest,
    })
}

fn permute_checked(
    t: &Tensor,
    heads: usize,
    c: &LlamaConfig,
    tensor: &str,
    malformed: &dyn Fn(String) -> InferenceError,
) -> Result<Tensor> {
    let expected = [heads * c.head_dim, c.embedding_length];
    if t.dims() != expected {
        return Err(malformed(format!(
            "tensor {tensor} has shape {:?}, expected {expected:?}",
            t.dims()
        )));
    }
    permute_qk(t, heads, c.head_dim)
}
