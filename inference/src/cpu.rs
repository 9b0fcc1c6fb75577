//! The CPU forward for GGUF models whose matrices all have kernels in [`crate::kernels`]
//! (`Q4_1`, `Q8_0`): plain `f32` buffers, no per-op tensor allocation, batched rows (every
//! row of a pass through each weight tile at once) and a fixed team of threads.
//!
//! Threads: each forward runs the same program on every thread (scoped threads, a spin
//! barrier between steps). Matrix products are split by output rows (whole tiles) and
//! attention by query heads; every thread then reads the full result back, and does the
//! small element-wise steps (norms, RoPE, quantizing inputs) itself. A value is always
//! computed whole by one thread with the same code, so results do not depend on the thread
//! count; and every row is computed on its own (per-row dot products, attention per
//! position over keys `0..=pos` in order), so they do not depend on how many rows share a
//! pass: prefill + decode and one teacher-forced pass agree bit for bit.
//!
//! Several sequences in one pass ([`CpuModel::forward_segments`], behind
//! `Model::forward_batch`, for continuous batching): a pass takes a list of segments, each
//! some new tokens of one sequence with that sequence's cache. Their rows are concatenated
//! and go together through every matrix product (one read of each weight tile for all of
//! them: what makes batching pay), the norms and the residual adds; only RoPE (each row at
//! its own position) and attention (each row over its own sequence: its cache, then its
//! segment's earlier rows) look at which segment a row belongs to, and each segment's new
//! keys and values go to its own cache. Why this is batch-invariant, i.e. a sequence's
//! logits and hidden states are the same bits whatever else shares its pass:
//! - matrix products: an output element depends only on its weight row and its input row
//!   (the kernels' contract: per-row activation quantization, fixed per-block order; not
//!   on the number of rows, their grouping or the thread split);
//! - norms, RoPE, SiLU, residual adds: per row (and per element);
//! - attention: per row and head, over that row's own sequence only, in position order,
//!   with the same code whether the keys come from the cache or from the same pass;
//! - the final norm and logits: per output row.
//!
//! So no value of one sequence ever enters a sum with a value of another, and each of its
//! values is computed by the same code in the same order as when it runs alone.
//! [`CpuModel::forward_chunk`] (one sequence) is the one-segment case.
//!
//! Metering: each worker thread reports its CPU time as it finishes, and the forward adds
//! the sum to the calling thread's counter ([`crate::metering`]), batched pass or not (a
//! batch's caller splits it among its sequences).
//!
//! Arithmetic follows the candle forward it replaces (RMS norm `x / rms · w`, candle's
//! interleaved RoPE, `silu(g)·u`, f32 KV cache), with the attention dot products, softmax
//! and weighted sums in a fixed order of our own.

use crate::kernels::{InputKind, Isa, PackedMatrix, QuantizedInput, TILE};
use crate::model::LlamaConfig;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, RwLock};

pub(crate) struct CpuLayer {
    pub attn_norm: Vec<f32>,
    pub wq: PackedMatrix,
    pub wk: PackedMatrix,
    pub wv: PackedMatrix,
    pub wo: PackedMatrix,
    pub ffn_norm: Vec<f32>,
    pub gate: PackedMatrix,
    pub up: PackedMatrix,
    pub down: PackedMatrix,
}

pub(crate) struct CpuModel {
    pub embed: std::sync::Arc<PackedMatrix>,
    pub output: std::sync::Arc<PackedMatrix>,
    pub output_norm: Vec<f32>,
    pub layers: Vec<CpuLayer>,
    /// `context_length × head_dim/2` rotary tables.
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    pub isa: Isa,
}

/// Keys and values of every held position, per layer: `positions × kv_dim` each.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuCache {
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

/// What one forward chunk returns: rows `out_rows` of the chunk.
pub(crate) struct ChunkOutput {
    pub hidden: Vec<f32>,
    pub logits: Vec<f32>,
}

/// A barrier that spins briefly, then sleeps on a condition variable (so an oversubscribed
/// machine does not lose a core to spinning); a thread that panics poisons it so the
/// others panic instead of waiting forever.
struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
    sleepers: AtomicUsize,
    poisoned: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        SpinBarrier {
            n,
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn wait(&self) {
        if self.n == 1 {
            return;
        }
        let gen = self.generation.load(Ordering::SeqCst);
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.count.store(0, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
            if self.sleepers.load(Ordering::SeqCst) > 0 {
                let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.wake.notify_all();
            }
            return;
        }
        for _ in 0..SPINS {
            if self.generation.load(Ordering::Acquire) != gen {
                return;
            }
            std::hint::spin_loop();
        }
        // Either the last thread sees `sleepers > 0` and notifies under the lock, or we
        // see its new generation before waiting (both orders are sequentially consistent).
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.generation.load(Ordering::SeqCst) == gen {
            if self.poisoned.load(Ordering::SeqCst) {
                drop(g);
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                panic!("a forward thread panicked");
            }
            g = self
                .wake
                .wait_timeout(g, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(g);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Spin iterations before a barrier waiter sleeps (some tens of microseconds).
const SPINS: u32 = 2_000;

/// Poisons the barrier if its thread unwinds.
struct PoisonOnPanic<'a>(&'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::SeqCst);
            let _g = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.0.wake.notify_all();
        }
    }
}

/// State shared by the threads of one forward.
struct Shared {
    barrier: SpinBarrier,
    /// Exchange buffers, used alternately: a thread can only write buffer `i` again after
    /// everyone passed the next barrier, i.e. finished reading it.
    bufs: [RwLock<Vec<f32>>; 2],
}

/// A thread's inputs of the next matrix products, quantized once per kind.
#[derive(Default)]
struct Quant {
    q8_1: QuantizedInput,
    q8_0: QuantizedInput,
}

impl Quant {
    /// Quantizes `x` (`rows × cols`) for every kind the matrices `ws` need.
    fn prepare(&mut self, isa: Isa, x: &[f32], cols: usize, ws: &[&PackedMatrix]) {
        for kind in [InputKind::Q8_1, InputKind::Q8_0] {
            if ws.iter().any(|w| w.input_kind() == kind) {
                let q = match kind {
                    InputKind::Q8_1 => &mut self.q8_1,
                    InputKind::Q8_0 => &mut self.q8_0,
                };
                q.quantize(isa, kind, x, cols);
            }
        }
    }

    fn get(&self, kind: InputKind) -> &QuantizedInput {
        match kind {
            InputKind::Q8_1 => &self.q8_1,
            InputKind::Q8_0 => &self.q8_0,
        }
    }
}

/// `part` of `n` in `n_threads` pieces: thread `t` gets `[n·t/T, n·(t+1)/T)`.
fn split(n: usize, t: usize, threads: usize) -> Range<usize> {
    n * t / threads..n * (t + 1) / threads
}

/// RMS norm of each `dim`-wide row, as candle's `rms_norm`: `x / sqrt(mean(x²) + eps) · w`.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut Vec<f32>) {
    let dim = w.len();
    out.resize(x.len(), 0.0);
    for (xs, os) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum2 = xs.iter().map(|&v| v * v).sum::<f32>();
        let m = (sum2 / dim as f32 + eps).sqrt();
        for ((o, &v), &a) in os.iter_mut().zip(xs).zip(w) {
            *o = v / m * a;
        }
    }
}

/// Dot product in a fixed order: 8 interleaved partial sums, then a fixed tree.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += x * y;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// candle's `rope_i` on one head: pairs `(2i, 2i+1)` rotated by `(cos_i, sin_i)`.
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    for ((p, &c), &s) in x.chunks_exact_mut(2).zip(cos).zip(sin) {
        let (a, b) = (p[0], p[1]);
        p[0] = a * c - b * s;
        p[1] = a * s + b * c;
    }
}

/// One sequence's part of a batched forward ([`CpuModel::forward_segments`]): its new
/// `tokens` at positions `start_pos..` over the `start_pos` keys and values its `cache`
/// holds, and which of its rows (indices into `tokens`) to return.
pub(crate) struct Segment<'a> {
    pub tokens: &'a [u32],
    pub start_pos: usize,
    pub cache: &'a mut CpuCache,
    pub out_rows: Range<usize>,
}

/// One segment's new keys and values, per layer (`rows × kv_dim` each).
type LayerKv = Vec<(Vec<f32>, Vec<f32>)>;

/// A segment as the threads of a forward see it: its cache read-only, and where its rows
/// start among the concatenated rows of the pass.
struct SegView<'a> {
    tokens: &'a [u32],
    start_pos: usize,
    prefix: &'a CpuCache,
    /// Index of its first row among all rows of the pass.
    row0: usize,
    out_rows: Range<usize>,
}

impl CpuModel {
    /// Runs `tokens` at positions `start_pos..` over the keys and values `cache` holds
    /// (`start_pos` of them), appends the new ones to `cache`, and returns the final
    /// hidden states and logits of rows `out_rows` (indices into `tokens`). One segment of
    /// [`Self::forward_segments`].
    pub fn forward_chunk(
        &self,
        c: &LlamaConfig,
        tokens: &[u32],
        start_pos: usize,
        cache: &mut CpuCache,
        out_rows: Range<usize>,
        threads: usize,
    ) -> ChunkOutput {
        let mut segs = [Segment {
            tokens,
            start_pos,
            cache,
            out_rows,
        }];
        self.forward_segments(c, &mut segs, threads)
            .pop()
            .expect("one output per segment")
    }

    /// One pass over several sequences: the rows of all `segs` concatenated go through
    /// every matrix product together (each weight tile is read once for all of them);
    /// RoPE uses each row's own position, and attention reads each row's own sequence
    /// (its cache, then its segment's earlier rows). Appends each segment's new keys and
    /// values to its own cache and returns, per segment, the final hidden states and logits
    /// of its `out_rows`. Every row goes through exactly the code it would alone, so the
    /// results are those of one [`Self::forward_chunk`] per segment, bit for bit.
    ///
    /// The caller checked the segments: non-empty tokens, `start_pos` = positions held,
    /// ids in the vocabulary, positions within the context, `out_rows` within the tokens.
    pub fn forward_segments(
        &self,
        c: &LlamaConfig,
        segs: &mut [Segment<'_>],
        threads: usize,
    ) -> Vec<ChunkOutput> {
        let threads = threads.max(1);
        for s in segs.iter_mut() {
            if s.cache.layers.len() != self.layers.len() {
                s.cache.layers = vec![(Vec::new(), Vec::new()); self.layers.len()];
            }
        }
        let shared = Shared {
            barrier: SpinBarrier::new(threads),
            bufs: [RwLock::new(Vec::new()), RwLock::new(Vec::new())],
        };
        let mut row0 = 0;
        let views: Vec<SegView<'_>> = segs
            .iter()
            .map(|s| {
                let v = SegView {
                    tokens: s.tokens,
                    start_pos: s.start_pos,
                    prefix: &*s.cache,
                    row0,
                    out_rows: s.out_rows.clone(),
                };
                row0 += s.tokens.len();
                v
            })
            .collect();
        let mut new_kv: Vec<LayerKv> = Vec::with_capacity(segs.len());
        let (main, parts) = std::thread::scope(|s| {
            let workers: Vec<_> = (1..threads)
                .map(|tid| {
                    let (shared, views) = (&shared, &views);
                    s.spawn(move || {
                        let out = self.run(c, tid, threads, shared, views, None);
                        // The worker exits with the forward: hand its CPU time back to the
                        // caller's meter (crate::metering).
                        (out, crate::metering::thread_cpu_time())
                    })
                })
                .collect();
            let main = self.run(c, 0, threads, &shared, &views, Some(&mut new_kv));
            let mut worker_cpu = std::time::Duration::ZERO;
            let parts: Vec<_> = workers
                .into_iter()
                .map(|w| {
                    let (out, cpu) = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                    worker_cpu += cpu;
                    out
                })
                .collect();
            crate::metering::add_worker_cpu_time(worker_cpu);
            (main, parts)
        });
        drop(views);
        for (s, kv) in segs.iter_mut().zip(new_kv) {
            for ((k, v), (nk, nv)) in s.cache.layers.iter_mut().zip(kv) {
                k.extend_from_slice(&nk);
                v.extend_from_slice(&nv);
            }
        }
        // Assemble the logits of all output rows from each thread's columns, then hand
        // each segment its rows.
        let (vocab, dim) = (c.vocab_size, c.embedding_length);
        let rows: usize = segs.iter().map(|s| s.out_rows.len()).sum();
        let mut logits = vec![0f32; rows * vocab];
        for p in std::iter::once(&main).chain(parts.iter()) {
            let w = p.cols.len();
            for r in 0..rows {
                logits[r * vocab + p.cols.start..r * vocab + p.cols.end]
                    .copy_from_slice(&p.logits[r * w..(r + 1) * w]);
            }
        }
        let mut r0 = 0;
        segs.iter()
            .map(|s| {
                let r = r0..r0 + s.out_rows.len();
                r0 = r.end;
                ChunkOutput {
                    hidden: main.hidden[r.start * dim..r.end * dim].to_vec(),
                    logits: logits[r.start * vocab..r.end * vocab].to_vec(),
                }
            })
            .collect()
    }

    /// One thread's share of the forward over `segs`; the main thread (`new_kv` set) also
    /// collects each segment's new keys and values, per layer.
    fn run(
        &self,
        c: &LlamaConfig,
        tid: usize,
        n: usize,
        shared: &Shared,
        segs: &[SegView<'_>],
        mut new_kv: Option<&mut Vec<LayerKv>>,
    ) -> ThreadOutput {
        let _guard = PoisonOnPanic(&shared.barrier);
        let seq: usize = segs.iter().map(|s| s.tokens.len()).sum();
        let dim = c.embedding_length;
        let (hd, n_head, n_kv) = (c.head_dim, c.n_head, c.n_kv_head);
        let (q_dim, kv_dim) = (n_head * hd, n_kv * hd);
        let qkv_w = q_dim + 2 * kv_dim;
        let ffn = c.feed_forward_length;
        let n_rep = n_head / n_kv;
        let half = hd / 2;
        let scale = 1.0 / (hd as f32).sqrt();
        let isa = self.isa;
        let mut ex = Exchange {
            shared,
            count: 0,
            threads: n,
        };
        let mut q = Quant::default();
        let (mut h, mut part, mut part2, mut full) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut qkv, mut scores) = (Vec::new(), Vec::new());
        let mut x = vec![0f32; seq * dim];
        let tokens = segs.iter().flat_map(|s| s.tokens);
        for (row, &t) in x.chunks_exact_mut(dim).zip(tokens) {
            self.embed.dequantize_row(t as usize, row);
        }
        if let Some(new_kv) = new_kv.as_deref_mut() {
            new_kv.clear();
            new_kv.resize_with(segs.len(), || Vec::with_capacity(self.layers.len()));
        }
        let heads = split(n_head, tid, n);
        for (li, layer) in self.layers.iter().enumerate() {
            // Attention.
            rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut h);
            let ws = [&layer.wq, &layer.wk, &layer.wv];
            q.prepare(isa, &h, dim, &ws);
            let cols = mm_group(isa, &ws, &q, tid, n, &mut part, &mut part2);
            ex.run(seq, qkv_w, cols, &part, &mut qkv);
            for sg in segs {
                let rows = sg.row0 * qkv_w..(sg.row0 + sg.tokens.len()) * qkv_w;
                for (s, row) in qkv[rows].chunks_exact_mut(qkv_w).enumerate() {
                    let pos = sg.start_pos + s;
                    let cos = &self.cos[pos * half..(pos + 1) * half];
                    let sin = &self.sin[pos * half..(pos + 1) * half];
                    for head in row[..q_dim + kv_dim].chunks_exact_mut(hd) {
                        rope(head, cos, sin);
                    }
                }
            }
            let pw = heads.len() * hd;
            part.clear();
            part.resize(seq * pw, 0.0);
            for sg in segs {
                let (pk, pv) = &sg.prefix.layers[li];
                let (start_pos, row0) = (sg.start_pos, sg.row0);
                for s in 0..sg.tokens.len() {
                    let pos = start_pos + s;
                    let r = row0 + s;
                    for (hi, head) in heads.clone().enumerate() {
                        let g = head / n_rep;
                        // Key or value `j` of KV head `g`: from this sequence's cache before
                        // `start_pos`, from its segment's rows after.
                        let kv = |j: usize, off: usize| -> &[f32] {
                            if j < start_pos {
                                let src = if off == 0 { pk } else { pv };
                                &src[j * kv_dim + g * hd..j * kv_dim + (g + 1) * hd]
                            } else {
                                let o = (row0 + j - start_pos) * qkv_w + q_dim + off + g * hd;
                                &qkv[o..o + hd]
                            }
                        };
                        let qh = &qkv[r * qkv_w + head * hd..r * qkv_w + (head + 1) * hd];
                        scores.clear();
                        scores.extend((0..=pos).map(|j| dot(qh, kv(j, 0)) * scale));
                        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                        let mut sum = 0f32;
                        for v in scores.iter_mut() {
                            *v = (*v - max).exp();
                            sum += *v;
                        }
                        let out = &mut part[r * pw + hi * hd..r * pw + (hi + 1) * hd];
                        for (j, &e) in scores.iter().enumerate() {
                            let w = e / sum;
                            for (o, &v) in out.iter_mut().zip(kv(j, kv_dim)) {
                                *o += w * v;
                            }
                        }
                    }
                }
            }
            ex.run(
                seq,
                q_dim,
                heads.start * hd..heads.end * hd,
                &part,
                &mut full,
            );
            if let Some(new_kv) = new_kv.as_deref_mut() {
                for (sg, seg_kv) in segs.iter().zip(new_kv.iter_mut()) {
                    let len = sg.tokens.len();
                    let mut k = Vec::with_capacity(len * kv_dim);
                    let mut v = Vec::with_capacity(len * kv_dim);
                    let rows = sg.row0 * qkv_w..(sg.row0 + len) * qkv_w;
                    for row in qkv[rows].chunks_exact(qkv_w) {
                        k.extend_from_slice(&row[q_dim..q_dim + kv_dim]);
                        v.extend_from_slice(&row[q_dim + kv_dim..]);
                    }
                    seg_kv.push((k, v));
                }
            }
            q.prepare(isa, &full, q_dim, &[&layer.wo]);
            let cols = mm_group(isa, &[&layer.wo], &q, tid, n, &mut part, &mut part2);
            ex.run(seq, dim, cols, &part, &mut full);
            for (x, a) in x.iter_mut().zip(&full) {
                *x += a;
            }

            // Feed-forward: each thread computes the same rows of gate and up, so it applies
            // silu(g)·u to its own rows before the exchange.
            rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut h);
            q.prepare(isa, &h, dim, &[&layer.gate, &layer.up]);
            let tiles = split(layer.gate.tiles(), tid, n);
            mm(isa, &layer.gate, &q, tiles.clone(), &mut part);
            mm(isa, &layer.up, &q, tiles.clone(), &mut part2);
            for (g, &u) in part.iter_mut().zip(&part2) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
            let cols = tiles.start * TILE..(tiles.end * TILE).min(ffn);
            trim(&mut part, seq, tiles.len() * TILE, cols.len());
            ex.run(seq, ffn, cols, &part, &mut full);
            q.prepare(isa, &full, ffn, &[&layer.down]);
            let cols = mm_group(isa, &[&layer.down], &q, tid, n, &mut part, &mut part2);
            ex.run(seq, dim, cols, &part, &mut full);
            for (x, a) in x.iter_mut().zip(&full) {
                *x += a;
            }
        }
        // Output rows of every segment, in order: the final norm, then this thread's
        // columns of the logits.
        let out: usize = segs.iter().map(|s| s.out_rows.len()).sum();
        full.clear();
        for sg in segs {
            let r = sg.row0 + sg.out_rows.start..sg.row0 + sg.out_rows.end;
            full.extend_from_slice(&x[r.start * dim..r.end * dim]);
        }
        let mut hidden = Vec::new();
        rms_norm(&full, &self.output_norm, c.rms_eps, &mut hidden);
        q.prepare(isa, &hidden, dim, &[&self.output]);
        let tiles = split(self.output.tiles(), tid, n);
        mm(isa, &self.output, &q, tiles.clone(), &mut part);
        let cols = tiles.start * TILE..(tiles.end * TILE).min(self.output.rows());
        trim(&mut part, out, tiles.len() * TILE, cols.len());
        ThreadOutput {
            hidden: if tid == 0 { hidden } else { Vec::new() },
            logits: part,
            cols,
        }
    }
}

/// Tiles `tiles` of `w` applied to the prepared input: `rows × 16·tiles.len()` into `out`
/// (padding rows included).
fn mm(isa: Isa, w: &PackedMatrix, q: &Quant, tiles: Range<usize>, out: &mut Vec<f32>) {
    let x = q.get(w.input_kind());
    out.clear();
    out.resize(x.rows() * tiles.len() * TILE, 0.0);
    if !tiles.is_empty() {
        w.matmul(isa, x, tiles, out);
    }
}

/// Thread `tid`'s tiles of the matrices `ws` stacked by rows, applied to the prepared
/// input: `rows × (its output columns)` into `out`; returns which columns of the stacked
/// output they are. `scratch` is a work buffer.
fn mm_group(
    isa: Isa,
    ws: &[&PackedMatrix],
    q: &Quant,
    tid: usize,
    n: usize,
    out: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) -> Range<usize> {
    let total: usize = ws.iter().map(|w| w.tiles()).sum();
    let mine = split(total, tid, n);
    let rows = q.get(ws[0].input_kind()).rows();
    // Each matrix's tiles within `mine`: (matrix, its tiles, kept columns).
    let mut pieces = Vec::with_capacity(ws.len());
    let (mut t0, mut c0) = (0, 0);
    let mut cols: Option<Range<usize>> = None;
    for w in ws {
        let r = mine.start.max(t0)..mine.end.min(t0 + w.tiles());
        if r.start < r.end {
            let local = r.start - t0..r.end - t0;
            let lo = c0 + local.start * TILE;
            let hi = c0 + (local.end * TILE).min(w.rows());
            cols = Some(cols.map_or(lo, |c| c.start)..hi);
            pieces.push((*w, local, hi - lo));
        }
        t0 += w.tiles();
        c0 += w.rows();
    }
    let cols = cols.unwrap_or(0..0);
    if let [(w, tiles, keep)] = pieces.as_slice() {
        mm(isa, w, q, tiles.clone(), out);
        trim(out, rows, tiles.len() * TILE, *keep);
        return cols;
    }
    let width = cols.len();
    out.clear();
    out.resize(rows * width, 0.0);
    let mut off = 0;
    for (w, tiles, keep) in pieces {
        mm(isa, w, q, tiles.clone(), scratch);
        let got = tiles.len() * TILE;
        for s in 0..rows {
            out[s * width + off..s * width + off + keep]
                .copy_from_slice(&scratch[s * got..s * got + keep]);
        }
        off += keep;
    }
    cols
}

/// Result exchange between the threads of one forward.
struct Exchange<'a> {
    shared: &'a Shared,
    count: usize,
    threads: usize,
}

impl Exchange<'_> {
    /// Publishes this thread's columns `cols` (`part`: `seq × cols.len()`) of a
    /// `seq × width` result and reads the whole result back into `dst`.
    fn run(
        &mut self,
        seq: usize,
        width: usize,
        cols: Range<usize>,
        part: &[f32],
        dst: &mut Vec<f32>,
    ) {
        dst.resize(seq * width, 0.0);
        let w = cols.len();
        if self.threads == 1 {
            debug_assert_eq!(w, width);
            dst.copy_from_slice(&part[..seq * width]);
            return;
        }
        let buf = &self.shared.bufs[self.count % 2];
        self.count += 1;
        {
            let mut b = buf.write().unwrap_or_else(|e| e.into_inner());
            if b.len() < seq * width {
                b.resize(seq * width, 0.0);
            }
            for s in 0..seq {
                b[s * width + cols.start..s * width + cols.end]
                    .copy_from_slice(&part[s * w..(s + 1) * w]);
            }
        }
        self.shared.barrier.wait();
        let b = buf.read().unwrap_or_else(|e| e.into_inner());
        dst.copy_from_slice(&b[..seq * width]);
    }
}

/// Drops the padding columns: `rows × from` → `rows × to`.
fn trim(v: &mut Vec<f32>, rows: usize, from: usize, to: usize) {
    if from == to {
        return;
    }
    for r in 0..rows {
        v.copy_within(r * from..r * from + to, r * to);
    }
    v.truncate(rows * to);
}

/// What one thread hands back: the final hidden rows (main thread only) and its logits
/// columns (`rows × cols.len()`).
struct ThreadOutput {
    hidden: Vec<f32>,
    logits: Vec<f32>,
    cols: Range<usize>,
}
