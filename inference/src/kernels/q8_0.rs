//! `Q8_0` weights (per 32 values: f16 scale `d`, 8-bit signed `q`; value `q·d`) against
//! `Q8_0` inputs.
//!
//! Per (weight row, input row) pair: `sum += isum·dw·da` block by block, `isum = Σ q_w·q_a`
//! (exact).

use super::{f16_to_f32, InputRow, Isa, QuantizedInput, BLOCK, ROW_GROUP, TILE};

/// Raw GGUF block: f16 `d`, 32 signed bytes.
const RAW_BLOCK: usize = 34;

/// One block of 16 rows. `qs[(g·16 + r)·4 + j]` is value `4g + j` of row `r`; `wsum[r]`
/// is `Σ q` of row `r` (for the VNNI path, which multiplies `q_a + 128` as unsigned and
/// subtracts `128·Σq_w`).
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct TileQ8_0 {
    pub d: [u16; TILE],
    pub wsum: [i16; TILE],
    pub qs: [i8; TILE * BLOCK],
}

impl TileQ8_0 {
    pub(super) fn dequantize(&self, r: usize, out: &mut [f32]) {
        let d = f16_to_f32(self.d[r]);
        for g in 0..8 {
            for j in 0..4 {
                out[g * 4 + j] = self.qs[(g * TILE + r) * 4 + j] as f32 * d;
            }
        }
    }
}

/// Repacks `rows × blocks` raw blocks; `None` if `raw` has the wrong length.
pub(super) fn pack(raw: &[u8], rows: usize, blocks: usize) -> Option<Vec<TileQ8_0>> {
    if raw.len() != rows * blocks * RAW_BLOCK {
        return None;
    }
    let n_tiles = rows.div_ceil(TILE);
    let mut out = Vec::with_capacity(n_tiles * blocks);
    for t in 0..n_tiles {
        for b in 0..blocks {
            let mut tile = TileQ8_0 {
                d: [0; TILE],
                wsum: [0; TILE],
                qs: [0; TILE * BLOCK],
            };
            for r in 0..TILE.min(rows - t * TILE) {
                let o = ((t * TILE + r) * blocks + b) * RAW_BLOCK;
                let blk = &raw[o..o + RAW_BLOCK];
                tile.d[r] = u16::from_le_bytes([blk[0], blk[1]]);
                let mut sum = 0i16;
                for g in 0..8 {
                    for j in 0..4 {
                        let q = blk[2 + g * 4 + j] as i8;
                        tile.qs[(g * TILE + r) * 4 + j] = q;
                        sum += q as i16;
                    }
                }
                tile.wsum[r] = sum;
            }
            out.push(tile);
        }
    }
    Some(out)
}

/// `acc[i][r]` = row `r` of the tile · input row `s0 + i`, for `i < ns` (`ns ≤ 4`).
pub(super) fn tile(
    isa: Isa,
    tb: &[TileQ8_0],
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
    tb: &[TileQ8_0],
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
                for g in 0..8 {
                    for j in 0..4 {
                        isum += t.qs[(g * TILE + r) * 4 + j] as i32 * a[g * 4 + j] as i32;
                    }
                }
                sum += isum as f32 * f16_to_f32(t.d[r]) * row.d[b];
            }
            *acc = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// 4 bytes `a[o..o + 4]` as one 32-bit lane.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lane4<T: Copy + Into<i64>>(a: &[T; BLOCK], o: usize) -> i32 {
    let b = |i: usize| (a[o + i].into() & 0xff) as u8;
    i32::from_le_bytes([b(0), b(1), b(2), b(3)])
}

/// AVX2: two halves of 8 rows; `maddubs(|w|, sign(a, w))` (at most 2 · 128 · 127 per
/// i16 pair, no saturation), widened with `madd` per group.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn avx2<const NS: usize>(
    tb: &[TileQ8_0],
    x: &QuantizedInput,
    s0: usize,
    out: &mut [[f32; TILE]; ROW_GROUP],
) {
    let ones = _mm256_set1_epi16(1);
    let rows: [InputRow; NS] = std::array::from_fn(|i| x.row(s0 + i));
    for half in 0..2 {
        let mut acc = [_mm256_setzero_ps(); NS];
        for (b, t) in tb.iter().enumerate() {
            let mut w = [_mm256_setzero_si256(); 8];
            let mut aw = [_mm256_setzero_si256(); 8];
            for g in 0..8 {
                // SAFETY: bytes g·64 + half·32 .. +32 lie within `qs` (512 bytes), which starts
                // 64 bytes into the 64-byte-aligned tile: the address is 32-byte aligned.
                w[g] = unsafe {
                    _mm256_load_si256(t.qs.as_ptr().add(g * 64 + half * 32) as *const __m256i)
                };
                aw[g] = _mm256_abs_epi8(w[g]);
            }
            // SAFETY: 8 f16 (16 bytes) at half·8 lie within `d` (16), at offset 0 or 16 of the
            // 64-byte-aligned tile (16-byte aligned).
            let dw = unsafe {
                _mm256_cvtph_ps(_mm_load_si128(t.d.as_ptr().add(half * 8) as *const __m128i))
            };
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let a = &row.qs[b];
                let mut isum = _mm256_setzero_si256();
                for g in 0..8 {
                    let sa = _mm256_sign_epi8(_mm256_set1_epi32(lane4(a, g * 4)), w[g]);
                    let p = _mm256_maddubs_epi16(aw[g], sa);
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ones));
                }
                let f = _mm256_cvtepi32_ps(isum);
                let t1 = _mm256_mul_ps(_mm256_mul_ps(f, dw), _mm256_set1_ps(row.d[b]));
                *acc = _mm256_add_ps(*acc, t1);
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            // SAFETY: 8 floats at half·8 lie within a 16-float row.
            unsafe { _mm256_storeu_ps(out[i].as_mut_ptr().add(half * 8), *acc) };
        }
    }
}

/// AVX-512 VNNI: `vpdpbusd(q_a + 128, q_w)` then `- 128·Σq_w`, 16 rows per vector.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn avx512<const NS: usize>(
    tb: &[TileQ8_0],
    x: &QuantizedInput,
    s0: usize,
    out: &mut [[f32; TILE]; ROW_GROUP],
) {
    let rows: [InputRow; NS] = std::array::from_fn(|i| x.row(s0 + i));
    let mut acc = [_mm512_setzero_ps(); NS];
    for (b, t) in tb.iter().enumerate() {
        prefetch(t);
        let mut w = [_mm512_setzero_si512(); 8];
        for (g, w) in w.iter_mut().enumerate() {
            // SAFETY: bytes g·64 .. g·64 + 64 lie within `qs` (512 bytes) at offset 64 of the
            // 64-byte-aligned tile: the address is 64-byte aligned.
            *w = unsafe { _mm512_load_si512(t.qs.as_ptr().add(g * 64) as *const __m512i) };
        }
        // SAFETY: `d` and `wsum` are 16 × 16 bits (32 bytes) each, at offsets 0 and 32 of
        // the 64-byte-aligned tile (32-byte aligned).
        let (dw, corr) = unsafe {
            (
                _mm512_cvtph_ps(_mm256_load_si256(t.d.as_ptr() as *const __m256i)),
                _mm512_slli_epi32(
                    _mm512_cvtepi16_epi32(_mm256_load_si256(t.wsum.as_ptr() as *const __m256i)),
                    7,
                ),
            )
        };
        for (acc, row) in acc.iter_mut().zip(&rows) {
            let au = &row.qu[b];
            let mut p0 = _mm512_setzero_si512();
            let mut p1 = _mm512_setzero_si512();
            for g in 0..4 {
                p0 = _mm512_dpbusd_epi32(p0, _mm512_set1_epi32(lane4(au, g * 4)), w[g]);
                p1 = _mm512_dpbusd_epi32(p1, _mm512_set1_epi32(lane4(au, 16 + g * 4)), w[g + 4]);
            }
            let isum = _mm512_sub_epi32(_mm512_add_epi32(p0, p1), corr);
            let f = _mm512_cvtepi32_ps(isum);
            let t1 = _mm512_mul_ps(_mm512_mul_ps(f, dw), _mm512_set1_ps(row.d[b]));
            *acc = _mm512_add_ps(*acc, t1);
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
fn prefetch(t: &TileQ8_0) {
    let p = (t as *const TileQ8_0).wrapping_add(super::PREFETCH) as *const i8;
    for line in 0..std::mem::size_of::<TileQ8_0>() / 64 {
        // SAFETY: a prefetch is only a hint: it never faults and reads nothing into the
        // program, so an address past the end of the weights is harmless.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line * 64)) };
    }
}
