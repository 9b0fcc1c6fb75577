//! The inference engine shared by the runtime (which serves it) and the auditor (which
//! re-executes it): GGUF model loading with a weight digest, a tokenizer that gives
//! exactly llama.cpp's ids, chat templates from the model's own metadata, seeded and greedy
//! generation (and the sampler's replay for auditors), the OpenAI chat request parser that
//! runtime and auditor share, teacher-forced scoring that returns per-position logits and final
//! hidden states, fingerprints of those hidden states for receipts and audits, and CPU-time
//! metering of a job's threads. CPU by default; the `cuda` feature adds candle's CUDA
//! backend.
//!
//! This crate knows nothing of TLS, receipts or HTTP.

pub mod chat;
mod cpu;
pub mod error;
pub mod fingerprint;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod metering;
pub mod model;
pub mod request;
pub mod safetensors;
pub mod sampling;
pub mod score;
pub mod tokenizer;

pub use error::InferenceError;
