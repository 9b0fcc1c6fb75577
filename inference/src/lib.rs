//! The inference engine shared by the runtime (which serves it) and the auditor (which
//! re-executes it): GGUF model loading with a weight digest, a tokenizer that gives
//! exactly llama.cpp's ids, chat templates from the model's own metadata, seeded and greedy
//! generation (and the sampler's replay for auditors), the OpenAI chat request parser that
//! runtime and auditor share, teacher-forced scoring that returns per-position logits and final
//! hidden states, fingerprints of those hidden states for receipts and audits, and CPU-time
//! metering of a job's threads. CPU by default; the `cuda` feature adds candle's CUDA
//! backend.
//!
//! Continuous batching: [`model::Model::forward_batch`] runs several sequences' new tokens
//! (decode steps and prefill chunks, each with its own KV cache) through one pass over the
//! weights; [`generate::Sequence`] is one generation's state that a scheduler advances step
//! by step ([`generate::generate`] is a sequence run alone), and [`batch::Batch`] drives
//! many together, one batched forward per step, prefilling long prompts in chunks between
//! the others' decode steps. The forward is batch-invariant (the header of `src/cpu.rs`
//! says why): a job's tokens, logits and hidden states, hence its activation fingerprint,
//! are bit-identical whether it ran alone or in any batch, which the auditor's
//! re-execution relies on.
//!
//! This crate knows nothing of TLS, receipts or HTTP.

pub mod batch;
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
