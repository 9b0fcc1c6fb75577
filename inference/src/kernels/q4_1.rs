//! `Q4_1` weights (per 32 values: f16 scale `d`, f16 minimum `m`, 4-bit `q`; value
//! `q·d + m`) against `Q8_1` inputs.
//!
//! Per (weight row, input row) pair: `sum += isum·dw·da + mw·sa` block by block, where
//! `isum = Σ q_w·q_a` (exact) and `sa = da·Σq_a` (see [`super::QuantizedInput`]).

use super::{f16_to_f32, InputRow, Isa, QuantizedInput, BLOCK, ROW_GROUP, TILE};

/// Raw GGUF block: f16 `d`, f16 `m`, 16 bytes of nibbles (low: values 0..16, high:
/// values 16..32).
const RAW_BLOCK: usize = 20;

/// One block of 16 rows. `qs[(g·16 + r)·4 + j]` is byte `4g + j` of row `r` (its low
/// nibble is value `4g + j`, its high nibble value `16 + 4g + j`), so a 64-byte load holds
/// 4 bytes of each of the 16 rows.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct TileQ4_1 {
    pub d: [u16; TILE],
    pub m: [u16; TILE],
    pub qs: [u8; TILE * BLOCK / 2],
}

impl TileQ4_1 {
    pub(super) fn dequantize(&self, r: usize, out: &mut [f32]) {
        let (d, m) = (f16_to_f32(self.d[r]), f16_to_f32(self.m[r]));
        for g in 0..4 {
            for j in 0..4 {
                let q = self.qs[(g * TILE + r) * 4 + j];
                out[g * 4 + j] = ((q & 0x0f) as f32) * d + m;
                out[16 + g * 4 + j] = ((q >> 4) as f32) * d + m;
            }
        }
    }
}

/// Repacks `rows × blocks` raw blocks; `None` if `raw` has the wrong length.
pub(super) fn pack(raw: &[u8], rows: usize, blocks: usize) -> Option<Vec<TileQ4_1>> {
    if raw.len() != rows * blocks * RAW_BLOCK {
        return None;
    }
    let n_tiles = rows.div_ceil(TILE);
    let mut out = Vec::with_capacity(n_tiles * blocks);
    for t in 0..n_tiles {
        for b in 0..blocks {
            let mut tile = TileQ4_1 {
                d: [0; TILE],
                m: [0; TILE],
                qs: [0; TILE * BLOCK / 2],
            };
            for r in 0..TILE.min(rows - t * TILE) {
                let o = ((t * TILE + r) * blocks + b) * RAW_BLOCK;
                let blk = &raw[o..o + RAW_BLOCK];
                tile.d[r] = u16::from_le_bytes([blk[0], blk[1]]);
                tile.m[r] = u16::from_le_bytes([blk[2], blk[3]]);
                for g in 0..4 {
                    for j in 0..4 {
                        tile.qs[(g * TILE + r) * 4 + j] = blk[4 + g * 4 + j];
                    }
                }
            }
            out.push(tile);
        }
    }
    Some(out)
}

/// `acc[i][r]` = row `r` of the tile · input row `s0 + i`, for `i < ns` (`ns ≤ 4`).
pub(super) fn tile(
    isa: Isa,
    tb: &[TileQ4_1],
    x: &QuantizedInput,
    s0: usize,
    ns: usize,
    acc: &mut [[f32; TILE]; ROW_GROUP],
) {
    match isa {
        Isa::Scalar => scalar(tb, x, s0, ns, acc),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            // SAFETY: `PackedMatrix::matmul` checked that the CPU has AVX2 and F16C.
            unsafe {
                match ns {
                    1 => avx2::<1>(tb, x, s0, acc),
                    2 => avx2::<2>(tb, x, s0, acc),
                    3 => avx2::<3>(tb, x, s0, acc),
                    _ => avx2::<4>(tb, x, s0, acc),
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            // SAFETY: `PackedMatrix::matmul` checked that the CPU has AVX-512 F/BW/VNNI.
            unsafe {
                match ns {
                    1 => avx512::<1>(tb, x, s0, acc),
                    2 => avx512::<2>(tb, x, s0, acc),
                    3 => avx512::<3>(tb, x, s0, acc),
                    _ => avx512::<4>(tb, x, s0, acc),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("no SIMD kernels on this architecture"),
    }
}

/// The reference: what every SIMD path must reproduce bit for bit.
fn scalar(
    tb: &[TileQ4_1],
    x: &QuantizedInput,
    s0: usize,
    ns: usize,
    acc: &mut [[f32; TILE]; ROW_GROUP],
) {
    for (i, acc) in acc.iter_mut().take(ns).enumerate() {
        let row = x.row(s0 + i);
        for (r, acc) in acc.iter_mut().enumerate() {
            let mut sum = 0f32;
            for (b, t) in tb.iter().enumerate() {
                let a = &row.qs[b];
                let mut isum = 0i32;
                for g in 0..4 {
                    for j in 0..4 {
                        let q = t.qs[(g * TILE + r) * 4 + j] as i32;
                        isum +=
                            (q & 0x0f) * a[g * 4 + j] as i32 + (q >> 4) * a[16 + g * 4 + j] as i32;
                    }
                }
                sum += isum as f32 * f16_to_f32(t.d[r]) * row.d[b] + f16_to_f32(t.m[r]) * row.s[b];
            }
            *acc = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// 4 input bytes `a[o..o + 4]` broadcast to every 32-bit lane.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn bcast4(a: &[i8; BLOCK], o: usize) -> i32 {
    i32::from_le_bytes([a[o] as u8, a[o + 1] as u8, a[o + 2] as u8, a[o + 3] as u8])
}

/// AVX2: each tile as two halves of 8 rows; `maddubs` (u8 nibble × i8) pairs summed in
/// i16 (at most 8 · 2 · 15 · 128 < 2^15), then widened once per block.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn avx2<const NS: usize>(
    tb: &[TileQ4_1],
    x: &QuantizedInput,
    s0: usize,
    out: &mut [[f32; TILE]; ROW_GROUP],
) {
    let mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let rows: [InputRow; NS] = std::array::from_fn(|i| x.row(s0 + i));
    for half in 0..2 {
        let mut acc = [_mm256_setzero_ps(); NS];
        for (b, t) in tb.iter().enumerate() {
            let mut lo = [_mm256_setzero_si256(); 4];
            let mut hi = [_mm256_setzero_si256(); 4];
            for g in 0..4 {
                // SAFETY: bytes g·64 + half·32 .. +32 lie within `qs` (256 bytes), which starts
                // 64 bytes into the 64-byte-aligned tile: the address is 32-byte aligned.
                let w = unsafe {
                    _mm256_load_si256(t.qs.as_ptr().add(g * 64 + half * 32) as *const __m256i)
                };
                lo[g] = _mm256_and_si256(w, mask);
                hi[g] = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
            }
            // SAFETY: 8 f16 (16 bytes) at half·8 lie within `d` and `m` (16 each), at offsets
            // 0, 16, 32, 48 of the 64-byte-aligned tile (16-byte aligned).
            let (dw, mw) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_load_si128(t.d.as_ptr().add(half * 8) as *const __m128i)),
                    _mm256_cvtph_ps(_mm_load_si128(t.m.as_ptr().add(half * 8) as *const __m128i)),
                )
            };
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let a = &row.qs[b];
                let mut p = _mm256_setzero_si256();
                for g in 0..4 {
                    let a_lo = _mm256_set1_epi32(bcast4(a, g * 4));
                    let a_hi = _mm256_set1_epi32(bcast4(a, 16 + g * 4));
                    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo[g], a_lo));
                    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi[g], a_hi));
                }
                let f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                let t1 = _mm256_mul_ps(_mm256_mul_ps(f, dw), _mm256_set1_ps(row.d[b]));
                let t2 = _mm256_mul_ps(mw, _mm256_set1_ps(row.s[b]));
                *acc = _mm256_add_ps(*acc, _mm256_add_ps(t1, t2));
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            // SAFETY: 8 floats at half·8 lie within a 16-float row.
            unsafe { _mm256_storeu_ps(out[i].as_mut_ptr().add(half * 8), *acc) };
        }
    }
}

/// AVX-512 VNNI: 16 rows per vector, `vpdpbusd` (u8 nibble × i8) into i32 lanes.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn avx512<const NS: usize>(
    tb: &[TileQ4_1],
    x: &QuantizedInput,
    s0: usize,
    out: &mut [[f32; TILE]; ROW_GROUP],
) {
    let mask = _mm512_set1_epi8(0x0f);
    let rows: [InputRow; NS] = std::array::from_fn(|i| x.row(s0 + i));
    let mut acc = [_mm512_setzero_ps(); NS];
    for (b, t) in tb.iter().enumerate() {
        prefetch(t);
        let mut lo = [_mm512_setzero_si512(); 4];
        let mut hi = [_mm512_setzero_si512(); 4];
        for g in 0..4 {
            // SAFETY: bytes g·64 .. g·64 + 64 lie within `qs` (256 bytes) at offset 64 of the
            // 64-byte-aligned tile: the address is 64-byte aligned.
            let w = unsafe { _mm512_load_si512(t.qs.as_ptr().add(g * 64) as *const __m512i) };
            lo[g] = _mm512_and_si512(w, mask);
            hi[g] = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
        }
        // SAFETY: `d` and `m` are 16 f16 (32 bytes) each, at offsets 0 and 32 of the
        // 64-byte-aligned tile (32-byte aligned).
        let (dw, mw) = unsafe {
            (
                _mm512_cvtph_ps(_mm256_load_si256(t.d.as_ptr() as *const __m256i)),
                _mm512_cvtph_ps(_mm256_load_si256(t.m.as_ptr() as *const __m256i)),
            )
        };
        for (acc, row) in acc.iter_mut().zip(&rows) {
            let a = &row.qs[b];
            let mut p0 = _mm512_setzero_si512();
            let mut p1 = _mm512_setzero_si512();
            for g in 0..4 {
                p0 = _mm512_dpbusd_epi32(p0, lo[g], _mm512_set1_epi32(bcast4(a, g * 4)));
                p1 = _mm512_dpbusd_epi32(p1, hi[g], _mm512_set1_epi32(bcast4(a, 16 + g * 4)));
            }
            let f = _mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1));
            let t1 = _mm512_mul_ps(_mm512_mul_ps(f, dw), _mm512_set1_ps(row.d[b]));
            let t2 = _mm512_mul_ps(mw, _mm512_set1_ps(row.s[b]));
            *acc = _mm512_add_ps(*acc, _mm512_add_ps(t1, t2));
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        // SAFETY: a row of `out` holds 16 floats.
        unsafe { _mm512_storeu_ps(out[i].as_mut_ptr(), *acc) };
    }
}

/// Asks for the tile block [`PREFETCH`] blocks after `t` (the weights are read as one
/// sequential stream; this runs ahead of the hardware prefetcher across page boundaries).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(t: &TileQ4_1) {
    let p = (t as *const TileQ4_1).wrapping_add(super::PREFETCH) as *const i8;
    for line in 0..std::mem::size_of::<TileQ4_1>() / 64 {
        // SAFETY: a prefetch is only a hint: it never faults and reads nothing into the
        // program, so an address past the end of the weights is harmless.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line * 64)) };
    }
}
