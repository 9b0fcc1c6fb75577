//! Quantized matrix × activation kernels for the CPU forward: GGUF `Q4_1` and `Q8_0`
//! weights against activations quantized to 8 bits per 32-value block (ggml's `Q8_1` and
//! `Q8_0`), with SIMD chosen at run time (AVX-512 VNNI, AVX2) and a scalar fallback.
//!
//! Why our own: candle's CPU `Q4_1` dot product is a scalar routine and its quantized
//! matmul allocates and re-quantizes per call; at batch 1 on a 135M model that dominates
//! the decode step. Here weights are repacked once at load into tiles of [`TILE`] rows
//! whose bytes interleave the rows 4 values at a time, so one SIMD lane accumulates one
//! row and no horizontal sums are needed.
//!
//! Determinism (what the auditor relies on):
//! - The integer part of each block's dot product is exact in every path.
//! - The float part is the same in every path, lane by lane: for each (weight row, input
//!   row) pair the per-block terms are added in block order with separate multiplies and
//!   adds (never FMA), exactly as the scalar code writes them. So the SIMD paths are
//!   bit-identical to the scalar one (tested), and an output element depends only on its
//!   weight row and its input row: not on how many rows are in the batch, which rows a
//!   thread computes, or which CPU feature path ran.
//! - The formulas are ggml's reference ones as candle's `vec_dot_unopt` writes them:
//!   `Q4_1`: `sum += isum·dw·da + mw·sa`; `Q8_0`: `sum += isum·dw·da`; and the
//!   activations are quantized exactly as candle's `from_float` does.

mod q4_1;
mod q8_0;

use candle_core::quantized::GgmlDType;
use std::ops::Range;
use std::sync::OnceLock;

pub use q4_1::TileQ4_1;
pub use q8_0::TileQ8_0;

/// Weight rows per packed tile (one AVX-512 lane per row, two AVX2 halves).
pub const TILE: usize = 16;
/// Values per quantization block (all the formats here).
pub const BLOCK: usize = 32;
/// Input rows computed together against one weight tile (weight reuse in prefill).
const ROW_GROUP: usize = 4;
/// How many tile blocks ahead the AVX-512 kernels prefetch.
const PREFETCH: usize = 4;

/// A kernel implementation. All give bit-identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    /// AVX2 + F16C (8 rows per vector, `maddubs`).
    Avx2,
    /// AVX-512 F/BW + VNNI (16 rows per vector, `vpdpbusd`).
    Avx512Vnni,
}

impl Isa {
    /// Whether this CPU can run `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every implementation this CPU can run, scalar first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni]
            .into_iter()
            .filter(|i| i.is_available())
            .collect()
    }

    /// The fastest available implementation, detected once. `VERITEE_KERNEL=scalar|avx2`
    /// caps it (for comparisons; results are the same either way).
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = match std::env::var("VERITEE_KERNEL").as_deref() {
                Ok("scalar") => Isa::Scalar,
                Ok("avx2") => Isa::Avx2,
                _ => Isa::Avx512Vnni,
            };
            let order = [Isa::Avx512Vnni, Isa::Avx2, Isa::Scalar];
            order
                .into_iter()
                .skip_while(|&i| i != cap)
                .find(|i| i.is_available())
                .unwrap_or(Isa::Scalar)
        })
    }
}

/// IEEE binary16 → f32 (exact).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    match exp {
        0 => {
            // Zero or subnormal: man · 2^-24, exact in f32.
            let v = man as f32 * (1.0 / 16_777_216.0);
            f32::from_bits(v.to_bits() | sign)
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// f32 → IEEE binary16, rounding to nearest even (as the `half` crate candle uses).
#[inline]
pub fn f32_to_f16(value: f32) -> u16 {
    let x = value.to_bits();
    let sign = x & 0x8000_0000;
    let exp = x & 0x7f80_0000;
    let man = x & 0x007f_ffff;
    let half_sign = sign >> 16;
    if exp == 0x7f80_0000 {
        let nan_bit = if man == 0 { 0 } else { 0x0200 };
        return (half_sign | 0x7c00 | nan_bit | (man >> 13)) as u16;
    }
    let half_exp = ((exp >> 23) as i32) - 127 + 15;
    if half_exp >= 0x1f {
        return (half_sign | 0x7c00) as u16;
    }
    if half_exp <= 0 {
        if 14 - half_exp > 24 {
            return half_sign as u16;
        }
        let man = man | 0x0080_0000;
        let mut half_man = man >> (14 - half_exp);
        let round_bit = 1 << (13 - half_exp);
        if (man & round_bit) != 0 && (man & (3 * round_bit - 1)) != 0 {
            half_man += 1;
        }
        return (half_sign | half_man) as u16;
    }
    let half_exp = (half_exp as u32) << 10;
    let half_man = man >> 13;
    let round_bit = 0x0000_1000;
    if (man & round_bit) != 0 && (man & (3 * round_bit - 1)) != 0 {
        ((half_sign | half_exp | half_man) + 1) as u16
    } else {
        (half_sign | half_exp | half_man) as u16
    }
}

/// How the inputs of a matrix are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// ggml `Q8_1`: 8-bit values, scale `d` and `s = d·Σq` (the partner of `Q4_1`).
    Q8_1,
    /// ggml `Q8_0`: 8-bit values and scale `d` (the partner of `Q8_0`).
    Q8_0,
}

/// Input rows quantized per 32-value block, kept in reusable buffers.
#[derive(Debug, Clone, Default)]
pub struct QuantizedInput {
    rows: usize,
    blocks: usize,
    kind: Option<InputKind>,
    /// `rows × blocks` blocks of 32 values.
    qs: Vec<[i8; BLOCK]>,
    /// `qs` + 128 as unsigned bytes (`Q8_0` only; the unsigned operand of `vpdpbusd`).
    qu: Vec<[u8; BLOCK]>,
    /// Per block: the f16 scale, widened.
    d: Vec<f32>,
    /// Per block (`Q8_1` only): the f16 `d·Σq`, widened.
    s: Vec<f32>,
}

impl QuantizedInput {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn kind(&self) -> Option<InputKind> {
        self.kind
    }

    /// Quantizes `x` (`rows × cols`, row-major; `cols` a multiple of 32) as `kind`, with
    /// `isa`'s code (every path gives the same bytes; panics if `isa` is not available).
    pub fn quantize(&mut self, isa: Isa, kind: InputKind, x: &[f32], cols: usize) {
        assert!(cols > 0 && cols.is_multiple_of(BLOCK) && x.len().is_multiple_of(cols));
        assert!(isa.is_available(), "{isa:?} is not available on this CPU");
        self.kind = Some(kind);
        self.rows = x.len() / cols;
        self.blocks = cols / BLOCK;
        let n = self.rows * self.blocks;
        self.qs.resize(n, [0; BLOCK]);
        self.d.resize(n, 0.0);
        match kind {
            InputKind::Q8_1 => {
                self.s.resize(n, 0.0);
                self.qu.clear();
            }
            InputKind::Q8_0 => {
                self.s.clear();
                self.qu.resize(n, [0; BLOCK]);
            }
        }
        for (k, xs) in x.chunks_exact(BLOCK).enumerate() {
            let xs: &[f32; BLOCK] = xs.try_into().expect("a whole block");
            // candle's BlockQ8_1::from_float / BlockQ8_0::from_float, value for value.
            let (d, sum) = quantize_block(isa, xs, &mut self.qs[k]);
            self.d[k] = d;
            match kind {
                InputKind::Q8_1 => {
                    // half's f16 × f16: both widened, multiplied in f32, rounded to f16.
                    let s = f16_to_f32(f32_to_f16(sum as f32)) * d;
                    self.s[k] = f16_to_f32(f32_to_f16(s));
                }
                InputKind::Q8_0 => {
                    for (u, &q) in self.qu[k].iter_mut().zip(self.qs[k].iter()) {
                        *u = (q as u8) ^ 0x80;
                    }
                }
            }
        }
    }

    /// Row `row`: its blocks' values, scales and (`Q8_1`) sums.
    #[inline]
    fn row(&self, row: usize) -> InputRow<'_> {
        let r = row * self.blocks..(row + 1) * self.blocks;
        InputRow {
            qs: &self.qs[r.clone()],
            qu: self.qu.get(r.clone()).unwrap_or(&[]),
            d: &self.d[r.clone()],
            s: self.s.get(r).unwrap_or(&[]),
        }
    }
}

/// One block of activations to 8 bits: writes the values, returns the scale (f16,
/// widened) and the sum of the values. Rounds half away from zero and saturates like
/// `f32::round` and `as i8`.
fn quantize_block(isa: Isa, xs: &[f32; BLOCK], qs: &mut [i8; BLOCK]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: `quantize` checked that `isa` (AVX2 or better, which includes AVX2) is
        // available.
        if let Some(r) = unsafe { quantize_block_avx2(xs, qs) } {
            return r;
        }
    }
    let _ = isa;
    quantize_block_scalar(xs, qs)
}

/// The reference: what the SIMD path must reproduce bit for bit.
fn quantize_block_scalar(xs: &[f32; BLOCK], qs: &mut [i8; BLOCK]) -> (f32, i32) {
    let mut amax = 0f32;
    for &v in xs {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (v * id).round() as i8;
        sum += *q as i32;
    }
    (f16_to_f32(f32_to_f16(d)), sum)
}

/// AVX2: `None` for a block holding a NaN or an infinity, or whose scale's inverse
/// overflows (the scalar code's saturating casts of NaN and ±inf are not what the SIMD
/// conversion gives; such blocks never occur in a sane forward, and the scalar code then
/// does them).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_block_avx2(xs: &[f32; BLOCK], qs: &mut [i8; BLOCK]) -> Option<(f32, i32)> {
    use std::arch::x86_64::*;
    // SAFETY: 4 loads of 8 floats within the 32 of `xs`.
    let v: [__m256; 4] =
        std::array::from_fn(|i| unsafe { _mm256_loadu_ps(xs.as_ptr().add(i * 8)) });
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut amax = _mm256_setzero_ps();
    let mut unordered = _mm256_setzero_ps();
    for v in v {
        // `max(|v|, acc)` keeps `acc` when `|v|` is NaN, as `f32::max` does.
        amax = _mm256_max_ps(_mm256_and_ps(v, abs_mask), amax);
        unordered = _mm256_or_ps(unordered, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    }
    if _mm256_movemask_ps(unordered) != 0 {
        return None;
    }
    let mut lanes = [0f32; 8];
    // SAFETY: 8 floats into an 8-float array.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), amax) };
    let amax = lanes.iter().fold(0f32, |a, &b| a.max(b));
    if !amax.is_finite() {
        return None;
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    if !id.is_finite() {
        // A subnormal scale: every value would be ±inf before the saturating cast.
        return None;
    }
    let idv = _mm256_set1_ps(id);
    let half = _mm256_set1_ps(0.5);
    let sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
    let one = _mm256_set1_ps(1.0);
    let mut sum = _mm256_setzero_si256();
    let q: [__m256i; 4] = std::array::from_fn(|i| {
        let y = _mm256_mul_ps(v[i], idv);
        // Round half away from zero: truncate, then step away from zero when the
        // (exact) fraction is at least one half.
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(y);
        let frac = _mm256_and_ps(_mm256_sub_ps(y, t), abs_mask);
        let step = _mm256_or_ps(_mm256_and_ps(y, sign_mask), one);
        let r = _mm256_add_ps(
            t,
            _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(frac, half), step),
        );
        let q = _mm256_cvttps_epi32(r);
        sum = _mm256_add_epi32(sum, q);
        q
    });
    // Saturating packs (as `as i8` saturates), then the 4-byte groups back in order.
    let w = _mm256_packs_epi16(
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    );
    let w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: 32 bytes into the 32-byte `qs`.
    unsafe { _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, w) };
    let mut s = [0i32; 8];
    // SAFETY: 8 i32 into an 8-i32 array.
    unsafe { _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, sum) };
    Some((f16_to_f32(f32_to_f16(d)), s.iter().sum()))
}

/// One quantized input row, as the kernels read it.
#[derive(Clone, Copy)]
struct InputRow<'a> {
    qs: &'a [[i8; BLOCK]],
    /// Empty unless `Q8_0`.
    qu: &'a [[u8; BLOCK]],
    d: &'a [f32],
    /// Empty unless `Q8_1`.
    s: &'a [f32],
}

/// The tiles of a packed matrix.
#[derive(Debug, Clone)]
pub enum Tiles {
    Q4_1(Vec<TileQ4_1>),
    Q8_0(Vec<TileQ8_0>),
}

/// A weight matrix (`rows × cols`, multiplied as `x · Wᵀ`) repacked into tiles of
/// [`TILE`] rows; tile `t`, block `b` is at index `t · blocks + b`. Rows past `rows` in
/// the last tile are zero.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    rows: usize,
    cols: usize,
    blocks: usize,
    tiles: Tiles,
}

impl PackedMatrix {
    /// Repacks a GGUF tensor's raw bytes (`rows` rows of `cols / 32` blocks). `None` for a
    /// type without a kernel here or a width that is not a whole number of blocks.
    pub fn from_ggml(dtype: GgmlDType, raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if rows == 0 || cols == 0 || !cols.is_multiple_of(BLOCK) {
            return None;
        }
        let blocks = cols / BLOCK;
        let tiles = match dtype {
            GgmlDType::Q4_1 => Tiles::Q4_1(q4_1::pack(raw, rows, blocks)?),
            GgmlDType::Q8_0 => Tiles::Q8_0(q8_0::pack(raw, rows, blocks)?),
            _ => return None,
        };
        Some(PackedMatrix {
            rows,
            cols,
            blocks,
            tiles,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of tiles (`rows / 16`, rounded up).
    pub fn tiles(&self) -> usize {
        self.rows.div_ceil(TILE)
    }

    /// How inputs must be quantized for [`PackedMatrix::matmul`].
    pub fn input_kind(&self) -> InputKind {
        match self.tiles {
            Tiles::Q4_1(_) => InputKind::Q8_1,
            Tiles::Q8_0(_) => InputKind::Q8_0,
        }
    }

    /// Row `row` dequantized (as candle's `to_float`).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        assert!(row < self.rows && out.len() == self.cols);
        let (t, r) = (row / TILE, row % TILE);
        for (b, out) in out.chunks_exact_mut(BLOCK).enumerate() {
            let k = t * self.blocks + b;
            match &self.tiles {
                Tiles::Q4_1(tiles) => tiles[k].dequantize(r, out),
                Tiles::Q8_0(tiles) => tiles[k].dequantize(r, out),
            }
        }
    }

    /// `out[s][j] = x_s · W_{16·tiles.start + j}` for every input row `s` and the rows of
    /// `tiles` (padding rows included): `out` is `x.rows() × 16·tiles.len()`, row-major.
    ///
    /// Panics if `isa` is not available, `x` was quantized for another kind or width, or
    /// `out` has the wrong length.
    pub fn matmul(&self, isa: Isa, x: &QuantizedInput, tiles: Range<usize>, out: &mut [f32]) {
        assert!(isa.is_available(), "{isa:?} is not available on this CPU");
        assert_eq!(
            x.kind,
            Some(self.input_kind()),
            "input quantized for another kind"
        );
        assert_eq!(x.blocks, self.blocks, "input width");
        assert!(tiles.end <= self.tiles());
        let width = tiles.len() * TILE;
        assert_eq!(out.len(), x.rows * width, "output length");
        let nb = self.blocks;
        for (ti, t) in tiles.enumerate() {
            let mut s0 = 0;
            while s0 < x.rows {
                let ns = (x.rows - s0).min(ROW_GROUP);
                let mut acc = [[0f32; TILE]; ROW_GROUP];
                match &self.tiles {
                    Tiles::Q4_1(all) => {
                        q4_1::tile(isa, &all[t * nb..(t + 1) * nb], x, s0, ns, &mut acc)
                    }
                    Tiles::Q8_0(all) => {
                        q8_0::tile(isa, &all[t * nb..(t + 1) * nb], x, s0, ns, &mut acc)
                    }
                }
                for (i, acc) in acc.iter().take(ns).enumerate() {
                    let o = (s0 + i) * width + ti * TILE;
                    out[o..o + TILE].copy_from_slice(acc);
                }
                s0 += ns;
            }
        }
    }
}

#[cfg(test)]
mod tests;
