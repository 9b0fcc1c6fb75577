//! Our own llama forward pass on candle building blocks.
//!
//! Candle's `quantized_llama` returns only the last position's logits; teacher-forced
//! scoring (the auditor's one prefill over prompt + claimed output) needs the logits and
//! the final hidden states of many positions, so the forward is written here.
//!
//! Layout notes (llama.cpp's GGUF conventions, which this follows):
//! - Weights are stored as `[out, in]` (candle reverses ggml's `ne`), multiplied as `x · Wᵀ`.
//! - `convert_hf_to_gguf.py` permutes the Q and K projections of llama models so that
//!   rotary pairs are adjacent (`2i`, `2i+1`): llama.cpp's `LLAMA_ROPE_TYPE_NORM`. So the
//!   rotation is candle's interleaved `rope_i`, not the half-split `rope` of HF checkpoints.
//! - Grouped-query attention: query head `h` reads key/value head `h / (n_head / n_kv_head)`.
//! - `token_embd.weight` doubles as the output projection when `output.weight` is absent
//!   (tied embeddings, as in SmolLM2).
//!
//! On the CPU, a GGUF whose matrices are all `Q4_1` or `Q8_0` runs on our own kernels and
//! forward ([`crate::cpu`]); anything else (other types, `Weights::DequantizedF32`,
//! safetensors, CUDA) runs on candle's ops below.
//!
//! Long inputs are processed in chunks of [`MAX_CHUNK`] tokens through the KV cache, which
//! bounds the attention scratch memory; the chunk boundaries are fixed, so results stay
//! reproducible.

use crate::cpu::{CpuCache, CpuLayer, CpuModel, Segment};
use crate::error::{InferenceError, Result};
use crate::gguf::GgufFile;
use crate::kernels::{Isa, PackedMatrix};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use std::ops::Range;
use std::sync::Arc;

/// At most this many tokens go through one pass of the layers; longer inputs are chunked.
pub const MAX_CHUNK: usize = 512;

/// Hyper-parameters of a llama model, from the GGUF metadata (`llama.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub embedding_length: usize,
    pub feed_forward_length: usize,
    pub context_length: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
    pub vocab_size: usize,
    pub head_dim: usize,
}

impl LlamaConfig {
    /// Bytes a KV cache holds per position: keys and values of every layer, in f32 (what
    /// a scheduler budgets its batch's cache memory with).
    pub fn kv_bytes_per_token(&self) -> usize {
        self.n_layer * 2 * self.n_kv_head * self.head_dim * std::mem::size_of::<f32>()
    }

    /// Reads and checks the `llama.*` keys. `vocab_rows` is the row count of
    /// `token_embd.weight`, used when `llama.vocab_size` is absent.
    fn from_gguf(file: &GgufFile, vocab_rows: usize) -> Result<Self> {
        let positive = |key: &str| -> Result<usize> {
            let v = file.u32(key)? as usize;
            if v == 0 {
                return Err(metadata(key, "must be positive"));
            }
            Ok(v)
        };
        let n_layer = positive("llama.block_count")?;
        let n_head = positive("llama.attention.head_count")?;
        let n_kv_head = positive("llama.attention.head_count_kv")?;
        let embedding_length = positive("llama.embedding_length")?;
        let feed_forward_length = positive("llama.feed_forward_length")?;
        let context_length = positive("llama.context_length")?;
        let rms_eps = file.f32("llama.attention.layer_norm_rms_epsilon")?;
        if !(rms_eps.is_finite() && rms_eps > 0.0) {
            return Err(metadata(
                "llama.attention.layer_norm_rms_epsilon",
                "must be finite and positive",
            ));
        }
        let rope_freq_base = match file.value("llama.rope.freq_base") {
            Ok(_) => file.f32("llama.rope.freq_base")?,
            Err(_) => 10_000.0,
        };
        if !(rope_freq_base.is_finite() && rope_freq_base > 0.0) {
            return Err(metadata(
                "llama.rope.freq_base",
                "must be finite and positive",
            ));
        }
        let head_dim = LlamaConfig::head_dim(
            n_head,
            n_kv_head,
            embedding_length,
            &ShapeKeys {
                head_count: "head_count",
                head_count_kv: "llama.attention.head_count_kv",
                embedding_length: "llama.embedding_length",
            },
        )?;
        if file.value("llama.rope.dimension_count").is_ok() {
            let rope_dim = file.u32("llama.rope.dimension_count")? as usize;
            if rope_dim != head_dim {
                return Err(metadata(
                    "llama.rope.dimension_count",
                    &format!("partial rotary ({rope_dim} of {head_dim}) is not supported"),
                ));
            }
        }
        if let Ok(v) = file.value("llama.rope.scaling.type") {
            let kind = v.to_string().map(String::as_str).unwrap_or("?");
            if kind != "none" {
                return Err(metadata(
                    "llama.rope.scaling.type",
                    &format!("rope scaling {kind:?} is not supported"),
                ));
            }
        }
        if let Ok(v) = file.value("llama.expert_count") {
            let n = v.to_u32().unwrap_or(u32::MAX);
            if n > 1 {
                return Err(InferenceError::UnsupportedArchitecture(format!(
                    "llama with {n} experts (mixture of experts)"
                )));
            }
        }
        let vocab_size = match file.value("llama.vocab_size") {
            Ok(_) => file.u32("llama.vocab_size")? as usize,
            Err(_) => vocab_rows,
        };
        Ok(LlamaConfig {
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
        })
    }
}

/// The names one checkpoint format gives the attention shape, for error messages.
pub(crate) struct ShapeKeys {
    pub head_count: &'static str,
    pub head_count_kv: &'static str,
    pub embedding_length: &'static str,
}

impl LlamaConfig {
    /// The head dimension, after the shape checks every format needs: KV heads divide
    /// the heads (grouped-query attention), heads divide the width, and the head
    /// dimension is even (RoPE rotates pairs).
    pub(crate) fn head_dim(
        n_head: usize,
        n_kv_head: usize,
        embedding_length: usize,
        keys: &ShapeKeys,
    ) -> Result<usize> {
        if !n_head.is_multiple_of(n_kv_head) {
            return Err(metadata(
                keys.head_count_kv,
                &format!("{n_kv_head} does not divide {} {n_head}", keys.head_count),
            ));
        }
        if !embedding_length.is_multiple_of(n_head) {
            return Err(metadata(
                keys.embedding_length,
                &format!(
                    "{embedding_length} is not a multiple of {} {n_head}",
                    keys.head_count
                ),
            ));
        }
        let head_dim = embedding_length / n_head;
        if !head_dim.is_multiple_of(2) {
            return Err(metadata(
                keys.embedding_length,
                &format!("head dimension {head_dim} is odd"),
            ));
        }
        Ok(head_dim)
    }
}

fn metadata(key: &str, detail: &str) -> InferenceError {
    InferenceError::Metadata {
        key: key.into(),
        detail: detail.into(),
    }
}

fn malformed(file: &GgufFile, detail: String) -> InferenceError {
    InferenceError::MalformedModel(format!("{}: {detail}", file.path()))
}

/// Which rows of the input the forward pass returns logits and hidden states for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Only the last input position (what decoding needs).
    Last,
    /// Every input position.
    All,
    /// Input positions `start..end` (indices into the `tokens` slice).
    Rows(Range<usize>),
}

/// Result of [`Model::forward`]: row-major logits and final hidden states (after the
/// output norm) for the requested rows, as `f32`.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// Index into the `tokens` slice of the first returned row.
    pub first_row: usize,
    /// Number of rows returned.
    pub rows: usize,
    /// `rows × vocab_size` logits.
    pub logits: Vec<f32>,
    /// `rows × embedding_length` final hidden states (after the output RMS norm).
    pub hidden: Vec<f32>,
    vocab: usize,
    dim: usize,
}

impl ForwardOutput {
    /// Logits of returned row `i` (0-based within the returned rows).
    pub fn logits_row(&self, i: usize) -> &[f32] {
        &self.logits[i * self.vocab..(i + 1) * self.vocab]
    }

    /// Final hidden state of returned row `i`.
    pub fn hidden_row(&self, i: usize) -> &[f32] {
        &self.hidden[i * self.dim..(i + 1) * self.dim]
    }

    /// Logits of the last returned row.
    pub fn last_logits(&self) -> &[f32] {
        self.logits_row(self.rows - 1)
    }

    /// Hidden state of the last returned row.
    pub fn last_hidden(&self) -> &[f32] {
        self.hidden_row(self.rows - 1)
    }
}

/// Per-sequence attention keys and values, one entry per layer.
#[derive(Debug, Clone)]
pub struct KvCache {
    store: KvStore,
    len: usize,
}

#[derive(Debug, Clone)]
enum KvStore {
    /// Candle forward: per layer `(n_kv_head, positions, head_dim)` keys and values.
    Candle(Vec<Option<(Tensor, Tensor)>>),
    /// CPU forward ([`crate::cpu`]).
    Cpu(CpuCache),
}

impl KvCache {
    /// Positions held (the next forward must start here).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        match &mut self.store {
            KvStore::Candle(layers) => layers.iter_mut().for_each(|l| *l = None),
            KvStore::Cpu(c) => c.layers.iter_mut().for_each(|(k, v)| {
                k.clear();
                v.clear();
            }),
        }
        self.len = 0;
    }

    /// Keeps only the first `len` positions (a shared prefix); no-op if `len >= self.len()`.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        if len == 0 {
            self.clear();
            return Ok(());
        }
        match &mut self.store {
            KvStore::Candle(layers) => {
                for (k, v) in layers.iter_mut().flatten() {
                    *k = k.narrow(1, 0, len)?.contiguous()?;
                    *v = v.narrow(1, 0, len)?.contiguous()?;
                }
            }
            KvStore::Cpu(c) => {
                for (k, v) in c.layers.iter_mut() {
                    let kv_dim = k.len() / self.len;
                    k.truncate(len * kv_dim);
                    v.truncate(len * kv_dim);
                }
            }
        }
        self.len = len;
        Ok(())
    }
}

/// One block's weights: `Layer<Tensor, QMatMul>` for the candle forward, and
/// `Layer<QTensor, QTensor>` as read from a GGUF.
struct Layer<N = Tensor, M = QMatMul> {
    attn_norm: N,
    wq: M,
    wk: M,
    wv: M,
    wo: M,
    ffn_norm: N,
    gate: M,
    up: M,
    down: M,
}

/// Weights for the forward on candle's ops.
struct CandleWeights {
    embed: QMatMul,
    layers: Vec<Layer>,
    output_norm: Tensor,
    output: QMatMul,
    /// `context_length × head_dim/2` rotary tables.
    cos: Tensor,
    sin: Tensor,
}

enum Backend {
    Candle(CandleWeights),
    Cpu(CpuModel),
}

/// A loaded llama model: quantized weights on a candle device, its config and digest.
pub struct Model {
    config: LlamaConfig,
    digest: [u8; 32],
    device: Device,
    backend: Backend,
}

/// How matrix weights are computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weights {
    /// As stored (Q4_1, Q8_0, …), activations quantized to 8 bits per 32-value block before
    /// each dot product: llama.cpp's arithmetic. Small, but slow on candle's CPU for Q4_1
    /// (no SIMD kernel) and numerically sensitive (see the crate's test notes).
    #[default]
    Quantized,
    /// Dequantized once at load to f32 (the exact stored weight values) and multiplied in
    /// f32 without activation quantization: ~4× the memory, faster on CPU, and stable
    /// under tiny perturbations. Does not reproduce llama.cpp's int8 activation rounding.
    DequantizedF32,
}

/// A cheaper model than the one in the file, **for testing the audit** (and the runtime's
/// `--dangerous-cheat` mode): what a dishonest provider could serve while claiming the
/// attested model. [`Model::load_variant`] builds it; its digest stays the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The same weights with every `every`-th transformer block removed (blocks
    /// `every-1, 2·every-1, …`; `every ≥ 2`): about `1/every` less compute per token.
    SkipLayers { every: usize },
    /// The same weights with every block matrix (attention and feed-forward; not the
    /// embeddings, output projection or norms) dequantized and requantized to `bits` bits
    /// per weight (2 or 3) with fresh per-32-value scales and minimums, stored in `Q4_1`'s
    /// layout so it runs on the same kernels: a real precision loss that a cheaper,
    /// smaller model file would carry (3 bits still gives coherent text on SmolLM2-135M; 2
    /// bits does not). 4 bits is refused: it is no variant of a `Q4_1` model (ggml's `Q4_1`
    /// quantizer is this same min/max one; on SmolLM2-135M the outputs were bit-identical).
    Requantized { bits: u8 },
}

/// `t` (any supported type, `rows × cols`, `cols` a multiple of 64) dequantized and
/// requantized to `bits` bits per value in `Q4_1` blocks: per 32 values, the f16 minimum
/// `m` and step `d = (max − min) / (2^bits − 1)`, and `q = round((x − m) / d)` in
/// `0..2^bits` (computed with the f16-rounded `d` and `m`, clamped).
fn requantize(t: &QTensor, bits: u8, device: &Device) -> Result<QTensor> {
    const RAW_BLOCK: usize = 20;
    let (rows, cols) = t.shape().dims2()?;
    // Whole blocks, and an even number of them (candle's Q4_1 dot product needs that).
    if !cols.is_multiple_of(64) {
        return Err(InferenceError::InvalidParameter {
            name: "variant",
            detail: format!(
                "cannot requantize rows of {cols} values into pairs of 32-value blocks"
            ),
        });
    }
    let x = t.dequantize(device)?.flatten_all()?.to_vec1::<f32>()?;
    let top = ((1u32 << bits) - 1) as f32;
    let mut raw = Vec::with_capacity(rows * cols / 32 * RAW_BLOCK);
    for block in x.chunks_exact(32) {
        let lo = block.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let d = half::f16::from_f32((hi - lo) / top);
        let m = half::f16::from_f32(lo);
        let (df, mf) = (d.to_f32(), m.to_f32());
        let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
        let q: Vec<u8> = block
            .iter()
            .map(|&v| ((v - mf) * inv).round().clamp(0.0, top) as u8)
            .collect();
        raw.extend_from_slice(&d.to_bits().to_le_bytes());
        raw.extend_from_slice(&m.to_bits().to_le_bytes());
        // Q4_1 nibbles: byte j holds value j (low) and value j + 16 (high).
        raw.extend((0..16).map(|j| q[j] | (q[j + 16] << 4)));
    }
    Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(
        GgmlDType::Q4_1,
        &raw,
        vec![rows, cols],
        device,
    )?)
}

/// Tensor types the forward pass computes with. `Q8_1` and `Q8_K` are ggml's activation
/// (dot-product partner) formats, never weight formats: refused.
fn supported(dtype: GgmlDType) -> bool {
    use GgmlDType::*;
    matches!(
        dtype,
        F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q2K | Q3K | Q4K | Q5K | Q6K
    )
}

impl Model {
    /// Loads a llama GGUF onto `device`.
    ///
    /// Errors: `UnsupportedArchitecture` for anything but llama (or llama MoE),
    /// `UnsupportedTensorType` for a tensor type the forward cannot compute with,
    /// `Metadata` for missing or out-of-range `llama.*` keys, `MalformedModel` for missing
    /// tensors or wrong shapes.
    pub fn load(file: &GgufFile, device: &Device) -> Result<Model> {
        Self::load_with(file, device, Weights::Quantized)
    }

    /// [`Model::load`] with a choice of how matrix weights are computed with.
    pub fn load_with(file: &GgufFile, device: &Device, weights: Weights) -> Result<Model> {
        Self::load_inner(file, device, weights, None)
    }

    /// A cheaper stand-in for the model in `file`, **for testing the audit only**: what a
    /// cheating provider would serve while claiming the attested model. Its [`digest`]
    /// is still the file's (that is the claim the audit must see through), but its
    /// outputs and hidden states are those of `variant`; see [`Variant`]. Matrices are
    /// computed as [`Weights::Quantized`].
    ///
    /// Errors: those of [`Model::load`], and `InvalidParameter("variant")` for a variant
    /// out of range (`every < 2`, `bits` other than 2 or 3).
    ///
    /// [`digest`]: Model::digest
    pub fn load_variant(file: &GgufFile, device: &Device, variant: Variant) -> Result<Model> {
        match variant {
            Variant::SkipLayers { every } if every < 2 => Err(InferenceError::InvalidParameter {
                name: "variant",
                detail: format!("SkipLayers every {every}: must be at least 2"),
            }),
            Variant::Requantized { bits } if !(2..=3).contains(&bits) => {
                Err(InferenceError::InvalidParameter {
                    name: "variant",
                    detail: format!("Requantized to {bits} bits: must be 2 or 3"),
                })
            }
            _ => Self::load_inner(file, device, Weights::Quantized, Some(variant)),
        }
    }

    fn load_inner(
        file: &GgufFile,
        device: &Device,
        weights: Weights,
        variant: Option<Variant>,
    ) -> Result<Model> {
        file.architecture()?;
        let content = file.content();
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        for name in names {
            let dtype = content.tensor_infos[name].ggml_dtype;
            if !supported(dtype) {
                return Err(InferenceError::UnsupportedTensorType {
                    tensor: name.clone(),
                    dtype: format!("{dtype:?}"),
                });
            }
        }
        let embd_info = content
            .tensor_infos
            .get("token_embd.weight")
            .ok_or_else(|| malformed(file, "missing tensor token_embd.weight".into()))?;
        let vocab_rows = match embd_info.shape.dims() {
            [rows, _] => *rows,
            dims => {
                return Err(malformed(
                    file,
                    format!("token_embd.weight has shape {dims:?}, expected 2 dimensions"),
                ))
            }
        };
        let mut config = LlamaConfig::from_gguf(file, vocab_rows)?;
        let c = &config;
        let dim = c.embedding_length;
        let q_dim = c.n_head * c.head_dim;
        let kv_dim = c.n_kv_head * c.head_dim;

        let mut reader = file.reader();
        let mut tensor = |name: &str, shape: &[usize]| -> Result<QTensor> {
            if !content.tensor_infos.contains_key(name) {
                return Err(malformed(file, format!("missing tensor {name}")));
            }
            let t = content
                .tensor(&mut reader, name, device)
                .map_err(|e| malformed(file, format!("tensor {name}: {e}")))?;
            // candle's Q4_1/Q5_0/Q5_1 dot products need an even number of blocks per row
            // (a debug assertion in candle: a panic in debug builds).
            let dtype = t.dtype();
            if let (2, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1) = (shape.len(), dtype) {
                if !(shape[1] / dtype.block_size()).is_multiple_of(2) {
                    return Err(malformed(
                        file,
                        format!(
                            "tensor {name} ({dtype:?}) rows hold an odd number of blocks ({})",
                            shape[1] / dtype.block_size()
                        ),
                    ));
                }
            }
            if t.shape().dims() != shape {
                return Err(malformed(
                    file,
                    format!(
                        "tensor {name} has shape {:?}, expected {shape:?}",
                        t.shape().dims()
                    ),
                ));
            }
            Ok(t)
        };
        let embd = tensor("token_embd.weight", &[c.vocab_size, dim])?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            Some(tensor("output.weight", &[c.vocab_size, dim])?)
        } else {
            None
        };
        let output_norm = tensor("output_norm.weight", &[dim])?;
        let ffn = c.feed_forward_length;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let p = format!("blk.{i}");
            layers.push(Layer {
                attn_norm: tensor(&format!("{p}.attn_norm.weight"), &[dim])?,
                wq: tensor(&format!("{p}.attn_q.weight"), &[q_dim, dim])?,
                wk: tensor(&format!("{p}.attn_k.weight"), &[kv_dim, dim])?,
                wv: tensor(&format!("{p}.attn_v.weight"), &[kv_dim, dim])?,
                wo: tensor(&format!("{p}.attn_output.weight"), &[dim, q_dim])?,
                ffn_norm: tensor(&format!("{p}.ffn_norm.weight"), &[dim])?,
                gate: tensor(&format!("{p}.ffn_gate.weight"), &[ffn, dim])?,
                up: tensor(&format!("{p}.ffn_up.weight"), &[ffn, dim])?,
                down: tensor(&format!("{p}.ffn_down.weight"), &[dim, ffn])?,
            });
        }

        match variant {
            None => {}
            Some(Variant::SkipLayers { every }) => {
                // Block i is dropped when i + 1 is a multiple of `every` (never the first).
                layers = layers
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !(i + 1).is_multiple_of(every))
                    .map(|(_, l)| l)
                    .collect();
                config.n_layer = layers.len();
            }
            Some(Variant::Requantized { bits }) => {
                let rq = |t: QTensor| requantize(&t, bits, device);
                layers = layers
                    .into_iter()
                    .map(|l| {
                        Ok(Layer {
                            wq: rq(l.wq)?,
                            wk: rq(l.wk)?,
                            wv: rq(l.wv)?,
                            wo: rq(l.wo)?,
                            gate: rq(l.gate)?,
                            up: rq(l.up)?,
                            down: rq(l.down)?,
                            ..l
                        })
                    })
                    .collect::<Result<_>>()?;
            }
        }
        let c = &config;

        // Our kernels when every matrix has one (and we run on the CPU, as stored).
        let has_kernel = |t: &QTensor| matches!(t.dtype(), GgmlDType::Q4_1 | GgmlDType::Q8_0);
        let all_kernels = has_kernel(&embd)
            && output.as_ref().is_none_or(has_kernel)
            && layers.iter().all(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down]
                    .into_iter()
                    .all(has_kernel)
            });
        let backend = if device.is_cpu() && weights == Weights::Quantized && all_kernels {
            let pack = |t: QTensor| -> Result<PackedMatrix> {
                let (rows, cols) = t.shape().dims2()?;
                PackedMatrix::from_ggml(t.dtype(), &t.data()?, rows, cols).ok_or_else(|| {
                    malformed(file, format!("cannot repack a {:?} tensor", t.dtype()))
                })
            };
            let vec =
                |t: QTensor| -> Result<Vec<f32>> { Ok(t.dequantize(device)?.to_vec1::<f32>()?) };
            let embed = Arc::new(pack(embd)?);
            let output = match output {
                Some(t) => Arc::new(pack(t)?),
                None => embed.clone(),
            };
            let mut cpu_layers = Vec::with_capacity(layers.len());
            for l in layers {
                cpu_layers.push(CpuLayer {
                    attn_norm: vec(l.attn_norm)?,
                    wq: pack(l.wq)?,
                    wk: pack(l.wk)?,
                    wv: pack(l.wv)?,
                    wo: pack(l.wo)?,
                    ffn_norm: vec(l.ffn_norm)?,
                    gate: pack(l.gate)?,
                    up: pack(l.up)?,
                    down: pack(l.down)?,
                });
            }
            let (cos, sin) = rope_values(c);
            Backend::Cpu(CpuModel {
                embed,
                output,
                output_norm: vec(output_norm)?,
                layers: cpu_layers,
                cos,
                sin,
                isa: Isa::best(),
            })
        } else {
            let norm = |t: QTensor| -> Result<Tensor> { Ok(t.dequantize(device)?) };
            let matmul = |t: QTensor| -> Result<QMatMul> {
                Ok(match weights {
                    Weights::Quantized => QMatMul::from_arc(Arc::new(t))?,
                    Weights::DequantizedF32 => QMatMul::Tensor(t.dequantize(device)?),
                })
            };
            let embed = matmul(embd)?;
            let output = match output {
                Some(t) => matmul(t)?,
                None => embed.clone(),
            };
            let mut candle_layers = Vec::with_capacity(layers.len());
            for l in layers {
                candle_layers.push(Layer {
                    attn_norm: norm(l.attn_norm)?,
                    wq: matmul(l.wq)?,
                    wk: matmul(l.wk)?,
                    wv: matmul(l.wv)?,
                    wo: matmul(l.wo)?,
                    ffn_norm: norm(l.ffn_norm)?,
                    gate: matmul(l.gate)?,
                    up: matmul(l.up)?,
                    down: matmul(l.down)?,
                });
            }
            let (cos, sin) = rope_tables(c, device)?;
            Backend::Candle(CandleWeights {
                embed,
                layers: candle_layers,
                output_norm: norm(output_norm)?,
                output,
                cos,
                sin,
            })
        };
        Ok(Model {
            config,
            digest: file.sha256(),
            device: device.clone(),
            backend,
        })
    }

    /// Loads a Hugging Face llama checkpoint directory (`config.json` and `*.safetensors`
    /// in F32, F16 or BF16) onto `device`; weights are converted to f32 and the Q/K
    /// projections permuted into llama.cpp's row layout at load, so the same forward (with
    /// interleaved rope) runs GGUF and safetensors models. The digest is SHA-256 over the
    /// weight files (sorted by name) followed by `config.json`: see [`crate::safetensors`].
    ///
    /// Errors: `Io` for an unreadable directory or file, `UnsupportedArchitecture` unless
    /// `architectures` lists `LlamaForCausalLM`, `Metadata` for missing or out-of-range
    /// config keys, `UnsupportedTensorType` for a tensor that is not F32/F16/BF16,
    /// `MalformedModel` for bad JSON, unparsable safetensors, missing tensors or wrong shapes.
    pub fn load_safetensors(dir: &std::path::Path, device: &Device) -> Result<Model> {
        let ckpt = crate::safetensors::read_checkpoint(dir, device)?;
        let c = &ckpt.config;
        let dim = c.embedding_length;
        let q_dim = c.n_head * c.head_dim;
        let kv_dim = c.n_kv_head * c.head_dim;
        let tensor = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = ckpt.tensors.get(name).ok_or_else(|| {
                InferenceError::MalformedModel(format!("{}: missing tensor {name}", ckpt.path))
            })?;
            if t.dims() != shape {
                return Err(InferenceError::MalformedModel(format!(
                    "{}: tensor {name} has shape {:?}, expected {shape:?}",
                    ckpt.path,
                    t.dims()
                )));
            }
            Ok(t.clone())
        };
        let matmul = |name: &str, shape: &[usize]| -> Result<QMatMul> {
            Ok(QMatMul::Tensor(tensor(name, shape)?))
        };
        let embed = matmul("model.embed_tokens.weight", &[c.vocab_size, dim])?;
        let output = if ckpt.tie_word_embeddings {
            embed.clone()
        } else {
            matmul("lm_head.weight", &[c.vocab_size, dim])?
        };
        let output_norm = tensor("model.norm.weight", &[dim])?;
        let ffn = c.feed_forward_length;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                attn_norm: tensor(&format!("{p}.input_layernorm.weight"), &[dim])?,
                wq: matmul(&format!("{p}.self_attn.q_proj.weight"), &[q_dim, dim])?,
                wk: matmul(&format!("{p}.self_attn.k_proj.weight"), &[kv_dim, dim])?,
                wv: matmul(&format!("{p}.self_attn.v_proj.weight"), &[kv_dim, dim])?,
                wo: matmul(&format!("{p}.self_attn.o_proj.weight"), &[dim, q_dim])?,
                ffn_norm: tensor(&format!("{p}.post_attention_layernorm.weight"), &[dim])?,
                gate: matmul(&format!("{p}.mlp.gate_proj.weight"), &[ffn, dim])?,
                up: matmul(&format!("{p}.mlp.up_proj.weight"), &[ffn, dim])?,
                down: matmul(&format!("{p}.mlp.down_proj.weight"), &[dim, ffn])?,
            });
        }
        let (cos, sin) = rope_tables(c, device)?;
        Ok(Model {
            config: ckpt.config.clone(),
            digest: ckpt.digest,
            device: device.clone(),
            backend: Backend::Candle(CandleWeights {
                embed,
                layers,
                output_norm,
                output,
                cos,
                sin,
            }),
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// SHA-256 of the GGUF file the weights came from (for a safetensors checkpoint, of its
    /// weight files and `config.json`: see [`crate::safetensors`]).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty KV cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        let n = self.config.n_layer;
        KvCache {
            store: match self.backend {
                Backend::Candle(_) => KvStore::Candle(vec![None; n]),
                Backend::Cpu(_) => KvStore::Cpu(CpuCache {
                    layers: vec![(Vec::new(), Vec::new()); n],
                }),
            },
            len: 0,
        }
    }

    /// Whether this model runs on our CPU kernels ([`crate::kernels`]) rather than
    /// candle's ops.
    pub fn uses_cpu_kernels(&self) -> bool {
        matches!(self.backend, Backend::Cpu(_))
    }

    /// The kernel implementation the CPU forward uses (`None` on candle's ops).
    pub fn kernel(&self) -> Option<Isa> {
        match &self.backend {
            Backend::Cpu(m) => Some(m.isa),
            Backend::Candle(_) => None,
        }
    }

    /// Switches the CPU forward to `isa` (all give bit-identical results; for comparing
    /// them in one process, where [`Isa::best`] is fixed once). `InvalidParameter("isa")`
    /// when this CPU cannot run it or the model is not on our CPU kernels.
    pub fn set_kernel(&mut self, isa: Isa) -> Result<()> {
        match &mut self.backend {
            Backend::Cpu(m) if isa.is_available() => {
                m.isa = isa;
                Ok(())
            }
            _ => Err(InferenceError::InvalidParameter {
                name: "isa",
                detail: format!("{isa:?} is not available for this model on this CPU"),
            }),
        }
    }

    /// Runs `tokens` at positions `start_pos..` (which must equal `cache.len()`), appends
    /// their keys and values to `cache`, and returns logits and final hidden states of the
    /// rows `output` asks for.
    pub fn forward(
        &self,
        tokens: &[u32],
        start_pos: usize,
        cache: &mut KvCache,
        output: Output,
    ) -> Result<ForwardOutput> {
        let threads = candle_core::utils::get_num_threads();
        self.forward_with_threads(tokens, start_pos, cache, output, threads)
    }

    /// [`Model::forward`] on `threads` threads (the CPU kernels; candle's ops use its own
    /// pool, `RAYON_NUM_THREADS`). The results do not depend on the thread count.
    pub fn forward_with_threads(
        &self,
        tokens: &[u32],
        start_pos: usize,
        cache: &mut KvCache,
        output: Output,
        threads: usize,
    ) -> Result<ForwardOutput> {
        let c = &self.config;
        let rows = self.check_input(tokens, start_pos, cache, output)?;
        let mut logits = Vec::with_capacity(rows.len() * c.vocab_size);
        let mut hidden = Vec::with_capacity(rows.len() * c.embedding_length);
        let mut chunk_start = 0;
        while chunk_start < tokens.len() {
            let chunk_end = (chunk_start + MAX_CHUNK).min(tokens.len());
            let chunk = &tokens[chunk_start..chunk_end];
            let pos = start_pos + chunk_start;
            let lo = rows.start.max(chunk_start);
            let hi = rows.end.min(chunk_end);
            match (&self.backend, &mut cache.store) {
                (Backend::Cpu(m), KvStore::Cpu(kv)) => {
                    let out_rows = if lo < hi {
                        lo - chunk_start..hi - chunk_start
                    } else {
                        0..0
                    };
                    let out = m.forward_chunk(c, chunk, pos, kv, out_rows, threads);
                    hidden.extend(out.hidden);
                    logits.extend(out.logits);
                }
                (Backend::Candle(w), KvStore::Candle(kv)) => {
                    let x = w.layers_forward(c, &self.device, chunk, pos, kv)?;
                    if lo < hi {
                        let x = x.narrow(0, lo - chunk_start, hi - lo)?;
                        let h = candle_nn::ops::rms_norm(&x, &w.output_norm, c.rms_eps)?;
                        let l = w.output.forward(&h)?;
                        hidden.extend(h.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
                        logits.extend(l.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
                    }
                }
                _ => unreachable!("checked above"),
            }
            cache.len = pos + chunk.len();
            chunk_start = chunk_end;
        }
        Ok(ForwardOutput {
            first_row: rows.start,
            rows: rows.len(),
            logits,
            hidden,
            vocab: c.vocab_size,
            dim: c.embedding_length,
        })
    }
}

impl Model {
    /// The checks every forward makes before any compute; returns the rows to output.
    fn check_input(
        &self,
        tokens: &[u32],
        start_pos: usize,
        cache: &KvCache,
        output: Output,
    ) -> Result<Range<usize>> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(InferenceError::InvalidParameter {
                name: "tokens",
                detail: "no tokens to run".into(),
            });
        }
        let cache_fits = match (&self.backend, &cache.store) {
            (Backend::Candle(_), KvStore::Candle(l)) => l.len() == c.n_layer,
            (Backend::Cpu(m), KvStore::Cpu(l)) => {
                // Same depth, and keys and values of this model's width for every position.
                let kv_dim = c.n_kv_head * c.head_dim;
                l.layers.len() == c.n_layer
                    && l.layers.len() == m.layers.len()
                    && l.layers.iter().all(|(k, v)| {
                        k.len() == cache.len * kv_dim && v.len() == cache.len * kv_dim
                    })
            }
            _ => false,
        };
        if !cache_fits {
            return Err(InferenceError::InvalidParameter {
                name: "cache",
                detail: "the cache belongs to another model".into(),
            });
        }
        if start_pos != cache.len {
            return Err(InferenceError::InvalidParameter {
                name: "start_pos",
                detail: format!("{start_pos}, but the cache holds {} positions", cache.len),
            });
        }
        if start_pos + tokens.len() > c.context_length {
            return Err(InferenceError::ContextOverflow {
                prompt: start_pos + tokens.len(),
                max_new_tokens: 0,
                context: c.context_length,
            });
        }
        if let Some((i, t)) = tokens
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= c.vocab_size)
        {
            return Err(InferenceError::InvalidParameter {
                name: "tokens",
                detail: format!(
                    "token {t} at index {i} is outside the vocabulary ({})",
                    c.vocab_size
                ),
            });
        }
        match output {
            Output::Last => Ok(tokens.len() - 1..tokens.len()),
            Output::All => Ok(0..tokens.len()),
            Output::Rows(r) => {
                if r.start >= r.end || r.end > tokens.len() {
                    return Err(InferenceError::InvalidParameter {
                        name: "output",
                        detail: format!("rows {r:?} of {} tokens", tokens.len()),
                    });
                }
                Ok(r)
            }
        }
    }

    /// One forward over several sequences (continuous batching): each item's `tokens` run
    /// at positions `item.start_pos..` over its own cache, which gets their keys and
    /// values; returns one [`ForwardOutput`] per item, in order, with the rows its
    /// `output` asks for.
    ///
    /// On our CPU kernels this is one pass: the rows of all items go through each weight
    /// tile together, while RoPE, attention and the cache are per item (the header of
    /// `src/cpu.rs` explains why that is batch-invariant).
    /// Every row is computed exactly as it is alone, so each item's logits and hidden
    /// states are bit-identical to those of [`Model::forward_with_threads`] on that item
    /// alone, whatever the other items, their order or `threads` (batch invariance).
    /// On candle's ops (models not on our kernels) the items run one after another
    /// through [`Model::forward_with_threads`] (a compute error there leaves the items
    /// before it advanced).
    ///
    /// Bounds: at most [`MAX_BATCH_ROWS`] tokens in all items together (the caller, a
    /// scheduler, splits prefills into chunks to stay under it), and at most
    /// [`MAX_BATCH_ITEMS`] items. Every item is checked before any compute, as
    /// [`Model::forward_with_threads`] checks its input; a refused item is reported as
    /// [`InferenceError::BatchItem`] with its index and the reason, and then no cache has
    /// changed. An empty `items` returns an empty vector.
    ///
    /// Metering ([`crate::metering`]): the pass's worker threads add their CPU time to the
    /// calling thread, for the whole batch; the caller splits it among the sequences (by
    /// tokens run, say).
    pub fn forward_batch(
        &self,
        items: &mut [BatchItem<'_>],
        threads: usize,
    ) -> Result<Vec<ForwardOutput>> {
        let c = &self.config;
        if items.len() > MAX_BATCH_ITEMS {
            return Err(InferenceError::InvalidParameter {
                name: "items",
                detail: format!("{} items (at most {MAX_BATCH_ITEMS})", items.len()),
            });
        }
        let total: usize = items.iter().map(|i| i.tokens.len()).sum();
        if total > MAX_BATCH_ROWS {
            return Err(InferenceError::InvalidParameter {
                name: "items",
                detail: format!("{total} tokens in all (at most {MAX_BATCH_ROWS} per pass)"),
            });
        }
        let mut rows = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let r = self
                .check_input(item.tokens, item.start_pos, item.cache, item.output.clone())
                .map_err(|e| InferenceError::BatchItem {
                    index,
                    source: Box::new(e),
                })?;
            rows.push(r);
        }
        let Backend::Cpu(m) = &self.backend else {
            return items
                .iter_mut()
                .enumerate()
                .map(|(index, item)| {
                    self.forward_with_threads(
                        item.tokens,
                        item.start_pos,
                        item.cache,
                        item.output.clone(),
                        threads,
                    )
                    .map_err(|e| InferenceError::BatchItem {
                        index,
                        source: Box::new(e),
                    })
                })
                .collect();
        };
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut segs: Vec<Segment<'_>> = items
            .iter_mut()
            .zip(&rows)
            .map(|(item, r)| {
                let KvStore::Cpu(kv) = &mut item.cache.store else {
                    unreachable!("checked above");
                };
                Segment {
                    tokens: item.tokens,
                    start_pos: item.start_pos,
                    cache: kv,
                    out_rows: r.clone(),
                }
            })
            .collect();
        let outs = m.forward_segments(c, &mut segs, threads);
        drop(segs);
        Ok(items
            .iter_mut()
            .zip(rows)
            .zip(outs)
            .map(|((item, r), out)| {
                item.cache.len += item.tokens.len();
                ForwardOutput {
                    first_row: r.start,
                    rows: r.len(),
                    logits: out.logits,
                    hidden: out.hidden,
                    vocab: c.vocab_size,
                    dim: c.embedding_length,
                }
            })
            .collect())
    }
}

/// One sequence's part of [`Model::forward_batch`]: its new `tokens`, run at positions
/// `start_pos..` (which must equal `cache.len()`, as for [`Model::forward`]: a check
/// against running a position twice or skipping one), its KV cache, and which of its rows
/// to return.
#[derive(Debug)]
pub struct BatchItem<'a> {
    pub tokens: &'a [u32],
    pub start_pos: usize,
    pub cache: &'a mut KvCache,
    pub output: Output,
}

/// At most this many tokens (all items together) in one [`Model::forward_batch`]: one
/// pass's worth, as [`MAX_CHUNK`] bounds a single sequence's passes (scratch memory
/// grows with the rows of a pass).
pub const MAX_BATCH_ROWS: usize = MAX_CHUNK;

/// At most this many items in one [`Model::forward_batch`].
pub const MAX_BATCH_ITEMS: usize = MAX_BATCH_ROWS;

impl CandleWeights {
    /// The transformer layers over one chunk; returns the residual stream `(seq, dim)`
    /// before the output norm.
    fn layers_forward(
        &self,
        c: &LlamaConfig,
        device: &Device,
        tokens: &[u32],
        start_pos: usize,
        cache: &mut [Option<(Tensor, Tensor)>],
    ) -> Result<Tensor> {
        let seq = tokens.len();
        let ids = Tensor::new(tokens, device)?;
        let mut x = self.embed.embedding(&ids)?.to_dtype(DType::F32)?;
        let cos = self.cos.narrow(0, start_pos, seq)?;
        let sin = self.sin.narrow(0, start_pos, seq)?;
        let eps = c.rms_eps;
        for (layer, kv) in self.layers.iter().zip(cache.iter_mut()) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let a = Self::attention(c, layer, &h, start_pos, &cos, &sin, kv)?;
            x = (x + a)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
            let g = candle_nn::ops::silu(&layer.gate.forward(&h)?)?;
            let u = layer.up.forward(&h)?;
            x = (x + layer.down.forward(&(g * u)?)?)?;
        }
        Ok(x)
    }

    /// Attention for `seq` new rows. Each row is computed on its own, with exactly the
    /// shapes a one-token decode step at that position uses, so a row's result does not
    /// depend on how many rows share the pass: a prefill over prompt + output reproduces
    /// the logits of prefill + decode bit for bit (what teacher-forced scoring relies on).
    fn attention(
        c: &LlamaConfig,
        layer: &Layer,
        h: &Tensor,
        start_pos: usize,
        cos: &Tensor,
        sin: &Tensor,
        kv: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let (seq, _) = h.dims2()?;
        let (hd, n_head, n_kv) = (c.head_dim, c.n_head, c.n_kv_head);
        let n_rep = n_head / n_kv;
        // (seq, heads·hd) → (1, heads, seq, hd)
        let heads = |t: Tensor, n: usize| -> Result<Tensor> {
            Ok(t.reshape((1, seq, n, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads(layer.wq.forward(h)?, n_head)?;
        let k = heads(layer.wk.forward(h)?, n_kv)?;
        let v = heads(layer.wv.forward(h)?, n_kv)?;
        let q = candle_nn::rotary_emb::rope_i(&q, cos, sin)?.reshape((n_head, seq, hd))?;
        let k = candle_nn::rotary_emb::rope_i(&k, cos, sin)?.reshape((n_kv, seq, hd))?;
        let v = v.reshape((n_kv, seq, hd))?;
        let (k, v) = match kv.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 1)?, Tensor::cat(&[&pv, &v], 1)?),
        };
        *kv = Some((k.clone(), v.clone()));
        let total = k.dim(1)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut rows = Vec::with_capacity(seq);
        for i in 0..seq {
            let len = start_pos + i + 1;
            let (ki, vi) = if len == total {
                (k.clone(), v.clone())
            } else {
                (
                    k.narrow(1, 0, len)?.contiguous()?,
                    v.narrow(1, 0, len)?.contiguous()?,
                )
            };
            // Query heads sharing one KV head are consecutive: (n_kv, n_rep, hd).
            let qi = q
                .narrow(1, i, 1)?
                .contiguous()?
                .reshape((n_kv, n_rep, hd))?;
            let att = (qi.matmul(&ki.t()?)? * scale)?;
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            rows.push(att.matmul(&vi)?.reshape((1, n_head * hd))?);
        }
        let y = if seq == 1 {
            rows.pop().expect("one row")
        } else {
            Tensor::cat(&rows, 0)?
        };
        Ok(layer.wo.forward(&y)?)
    }
}

/// `cos`/`sin` of `pos · base^(-2i/head_dim)` for every position of the context and every
/// rotary pair, computed in f64 and rounded once to f32.
fn rope_tables(c: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = c.head_dim / 2;
    let (cos, sin) = rope_values(c);
    let cos = Tensor::from_vec(cos, (c.context_length, half), device)?;
    let sin = Tensor::from_vec(sin, (c.context_length, half), device)?;
    Ok((cos, sin))
}

/// The rotary tables as `context_length × head_dim/2` row-major values.
fn rope_values(c: &LlamaConfig) -> (Vec<f32>, Vec<f32>) {
    let half = c.head_dim / 2;
    let base = c.rope_freq_base as f64;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| base.powf(-2.0 * i as f64 / c.head_dim as f64))
        .collect();
    let mut cos = Vec::with_capacity(c.context_length * half);
    let mut sin = Vec::with_capacity(c.context_length * half);
    for p in 0..c.context_length {
        for f in &inv_freq {
            let a = p as f64 * f;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requantized blocks hold at most `2^bits` levels, each value within half a step of
    /// the original (plus the f16 rounding of the step and minimum).
    #[test]
    fn requantize_keeps_bits_levels_per_block() {
        let (rows, cols) = (3, 128);
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * (1.0 + (i % 5) as f32))
            .collect();
        let t = Tensor::from_vec(x.clone(), (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        let orig = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let orig = orig.to_vec1::<f32>().unwrap();
        let mut errors = Vec::new();
        for bits in [2u8, 3] {
            let r = requantize(&q, bits, &Device::Cpu).unwrap();
            assert_eq!(r.dtype(), GgmlDType::Q4_1);
            assert_eq!(r.shape().dims(), &[rows, cols]);
            let y = r.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
            let y = y.to_vec1::<f32>().unwrap();
            for (a, b) in orig.chunks(32).zip(y.chunks(32)) {
                let mut levels: Vec<u32> = b.iter().map(|v| v.to_bits()).collect();
                levels.sort_unstable();
                levels.dedup();
                assert!(
                    levels.len() <= 1 << bits,
                    "{bits} bits: {} levels",
                    levels.len()
                );
                let lo = a.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let step = (hi - lo) / ((1u32 << bits) - 1) as f32;
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() <= step * 0.51 + 2e-3,
                        "{bits} bits: {u} → {v}"
                    );
                }
            }
            errors.push(orig.iter().zip(&y).map(|(u, v)| (u - v).abs()).sum::<f32>());
        }
        // A real precision loss, larger with fewer bits.
        assert!(errors[0] > errors[1] && errors[1] > 0.0, "{errors:?}");
        let odd = Tensor::zeros((2, 96), DType::F32, &Device::Cpu).unwrap();
        let odd = QTensor::quantize(&odd, GgmlDType::Q8_0).unwrap();
        assert!(matches!(
            requantize(&odd, 3, &Device::Cpu),
            Err(InferenceError::InvalidParameter {
                name: "variant",
                ..
            })
        ));
    }
}
