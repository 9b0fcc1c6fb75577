//! Typed errors: bad input gets a clear error naming what and where, never a panic.

/// Why loading, tokenizing or generating failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The model file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file is not a well-formed GGUF (truncated, corrupt, wrong magic or version).
    #[error("malformed model file: {0}")]
    MalformedModel(String),
    /// The model's architecture is not one this engine runs.
    #[error("unsupported architecture {0:?} (supported: llama)")]
    UnsupportedArchitecture(String),
    /// A tensor is stored in a type this engine cannot compute with.
    #[error("tensor {tensor}: unsupported type {dtype}")]
    UnsupportedTensorType { tensor: String, dtype: String },
    /// A metadata key the model needs is absent or has the wrong type.
    #[error("model metadata {key}: {detail}")]
    Metadata { key: String, detail: String },
    /// The model's tokenizer is of a kind this engine does not implement exactly
    /// (vocabulary type, pre-tokenizer); refused rather than giving different ids.
    #[error("unsupported tokenizer: {0}")]
    UnsupportedTokenizer(String),
    /// The tokenizer cannot encode or decode the input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to render the messages.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// The prompt plus the requested new tokens do not fit the context window.
    #[error(
        "{prompt} prompt tokens + {max_new_tokens} new tokens exceed the context length {context}"
    )]
    ContextOverflow {
        prompt: usize,
        max_new_tokens: usize,
        context: usize,
    },
    /// A sampling or generation parameter is out of range.
    #[error("invalid parameter {name}: {detail}")]
    InvalidParameter { name: &'static str, detail: String },
    /// The compute backend failed (shape, device or kernel error).
    #[error("compute: {0}")]
    Compute(String),
    /// Item `index` of a batched forward ([`crate::model::Model::forward_batch`]) was
    /// refused or failed; `source` says why (the error a lone forward would give).
    #[error("batch item {index}: {source}")]
    BatchItem {
        index: usize,
        source: Box<InferenceError>,
    },
    /// A hidden-state fingerprint could not be built.
    #[error("fingerprint: {0}")]
    Fingerprint(#[from] crate::fingerprint::FingerprintError),
}

impl From<candle_core::Error> for InferenceError {
    fn from(e: candle_core::Error) -> Self {
        InferenceError::Compute(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, InferenceError>;
