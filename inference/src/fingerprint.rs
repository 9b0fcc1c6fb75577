//! TOPLOC-style fingerprints of the final hidden states behind the output tokens.
//!
//! A receipt commits to a compact fingerprint of the hidden states (after the output norm)
//! that produced each output token: [`crate::generate::Step::hidden`] during generation,
//! or row `P-1+i` of one teacher-forced pass over `prompt + output[..n-1]`
//! ([`fingerprint_of_prefill`]). The auditor recomputes it with that one cheap pass and
//! [`compare`]s: a swapped or re-quantized model, another prompt or a fabricated output
//! moves the largest activations, while honest re-execution (even on other hardware) keeps
//! them within a small tolerance.
//!
//! What is kept: the output tokens are taken in chunks of [`CHUNK_TOKENS`] (the last chunk
//! may be shorter); for a chunk of `t` tokens, the `t · min(K, hidden_size)` entries of
//! largest absolute value among its `t × hidden_size` values ([`TOP_K`] = `K` per token on
//! average, not per token), ties broken by the lower index. Each entry is its flattened
//! index within the chunk, `token_in_chunk · hidden_size + dim`, and its value rounded to
//! IEEE half precision (round to nearest even). Entries are sorted by index.
//!
//! Byte layout (version 1, all integers little-endian):
//!
//! | offset | size | field                                        |
//! |--------|------|----------------------------------------------|
//! | 0      | 1    | version = 1                                  |
//! | 1      | 1    | tokens per chunk = 32                        |
//! | 2      | 1    | K = 8                                        |
//! | 3      | 4    | hidden size `h` (u32, 1..=2²⁰)               |
//! | 7      | 4    | token count `n` (u32, ≤ 2²⁴)                 |
//! | 11     | 6·E  | entries: index (u32) then value (f16 bits, u16) |
//!
//! Chunk `c` holds `t_c = min(32, n - 32c)` tokens and `t_c · min(K, h)` entries, so `E`
//! and every chunk boundary follow from the header: the length is exact, indices are
//! strictly increasing within a chunk and below `t_c · h`. [`Fingerprint::from_bytes`]
//! checks all of it, so a parsed fingerprint re-encodes to the same bytes. A full chunk
//! takes 256 · 6 = 1536 bytes.

use crate::error::Result;
use crate::model::Model;
use half::f16;

/// Format version written in byte 0.
pub const VERSION: u8 = 1;
/// Output tokens per chunk.
pub const CHUNK_TOKENS: usize = 32;
/// Entries kept per token (per chunk: `K ×` its token count).
pub const TOP_K: usize = 8;
/// Largest hidden size accepted (so a chunk's flattened index fits a `u32` with room).
pub const MAX_HIDDEN: usize = 1 << 20;
/// Largest token count accepted (far beyond any context window).
pub const MAX_TOKENS: usize = 1 << 24;
/// Bytes before the entries.
pub const HEADER_LEN: usize = 11;
/// Bytes per entry.
pub const ENTRY_LEN: usize = 6;

/// Why a fingerprint could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// A pushed hidden state has the wrong number of values.
    #[error("hidden state has {got} values, expected {expected}")]
    WrongLength { expected: usize, got: usize },
    /// The hidden size is 0 or above [`MAX_HIDDEN`].
    #[error("hidden size {0} is out of range (1..={MAX_HIDDEN})")]
    HiddenSize(usize),
    /// More than [`MAX_TOKENS`] tokens, pushed or declared.
    #[error("{0} tokens, more than the limit of {MAX_TOKENS}")]
    TooManyTokens(usize),
    /// The input ends before the header or the entries it declares.
    #[error("fingerprint truncated: {got} bytes, expected {expected}")]
    Truncated { expected: usize, got: usize },
    /// The input continues after the entries the header declares.
    #[error("fingerprint has {0} trailing bytes")]
    TrailingBytes(usize),
    /// Byte 0 is not a version this code reads.
    #[error("unsupported fingerprint version {0}")]
    UnsupportedVersion(u8),
    /// Chunk size or K other than version 1's 32 and 8.
    #[error("unsupported fingerprint parameters: {chunk} tokens per chunk, K = {k}")]
    UnsupportedParameters { chunk: u8, k: u8 },
    /// An entry's index is out of order or out of range.
    #[error("chunk {chunk}, entry {entry}: index {index} is {why}")]
    BadEntry {
        chunk: usize,
        entry: usize,
        index: u32,
        why: &'static str,
    },
}

/// One kept value: where it is in its chunk and its half-precision bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// `token_in_chunk · hidden_size + dim`.
    pub index: u32,
    /// IEEE 754 binary16 bits of the value.
    pub value_bits: u16,
}

impl Entry {
    /// The value, widened to `f32` (exact).
    pub fn value(&self) -> f32 {
        f16::from_bits(self.value_bits).to_f32()
    }
}

/// Entries kept per token for hidden size `h`.
fn per_token(h: usize) -> usize {
    TOP_K.min(h)
}

/// Builds a [`Fingerprint`] one hidden state at a time (one per output token, in order).
///
/// `push` only copies into a chunk buffer allocated once; the top-K selection runs when a
/// chunk fills (and for the last one in `finish`).
#[derive(Debug, Clone)]
pub struct FingerprintBuilder {
    hidden_size: usize,
    /// The current chunk's hidden states, row after row.
    buf: Vec<f32>,
    /// Selection scratch: flattened indices into `buf`.
    order: Vec<u32>,
    tokens: usize,
    entries: Vec<Entry>,
}

impl FingerprintBuilder {
    /// A builder for hidden states of `hidden_size` values (1..=[`MAX_HIDDEN`]).
    pub fn new(hidden_size: usize) -> std::result::Result<Self, FingerprintError> {
        if hidden_size == 0 || hidden_size > MAX_HIDDEN {
            return Err(FingerprintError::HiddenSize(hidden_size));
        }
        Ok(FingerprintBuilder {
            hidden_size,
            buf: Vec::with_capacity(CHUNK_TOKENS * hidden_size),
            order: Vec::with_capacity(CHUNK_TOKENS * hidden_size),
            tokens: 0,
            entries: Vec::new(),
        })
    }

    /// Adds the hidden state of the next output token.
    pub fn push(&mut self, hidden: &[f32]) -> std::result::Result<(), FingerprintError> {
        if hidden.len() != self.hidden_size {
            return Err(FingerprintError::WrongLength {
                expected: self.hidden_size,
                got: hidden.len(),
            });
        }
        if self.tokens >= MAX_TOKENS {
            return Err(FingerprintError::TooManyTokens(self.tokens + 1));
        }
        self.buf.extend_from_slice(hidden);
        self.tokens += 1;
        if self.buf.len() == CHUNK_TOKENS * self.hidden_size {
            self.flush();
        }
        Ok(())
    }

    /// Tokens pushed so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The fingerprint of everything pushed.
    pub fn finish(mut self) -> Fingerprint {
        if !self.buf.is_empty() {
            self.flush();
        }
        Fingerprint {
            hidden_size: self.hidden_size,
            tokens: self.tokens,
            entries: self.entries,
        }
    }

    /// Selects the current chunk's entries and empties the buffer.
    fn flush(&mut self) {
        let buf = &self.buf;
        let t = buf.len() / self.hidden_size;
        let keep = t * per_token(self.hidden_size);
        self.order.clear();
        self.order.extend(0..buf.len() as u32);
        // Larger |value| first (total order: a NaN counts as largest), then lower index.
        let by_magnitude = |a: &u32, b: &u32| {
            let (x, y) = (buf[*a as usize].abs(), buf[*b as usize].abs());
            y.total_cmp(&x).then(a.cmp(b))
        };
        if keep < self.order.len() {
            self.order.select_nth_unstable_by(keep - 1, by_magnitude);
            self.order.truncate(keep);
        }
        self.order.sort_unstable();
        self.entries.extend(self.order.iter().map(|&i| Entry {
            index: i,
            value_bits: f16::from_f32(buf[i as usize]).to_bits(),
        }));
        self.buf.clear();
    }
}

/// The fingerprint of the hidden states behind `n` output tokens; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    hidden_size: usize,
    tokens: usize,
    /// Every chunk's entries, chunk after chunk.
    entries: Vec<Entry>,
}

impl Fingerprint {
    /// The fingerprint of `rows` (one hidden state per output token, in order), e.g. the
    /// `hidden` of a [`crate::score::Scored`].
    pub fn from_rows<'a>(
        hidden_size: usize,
        rows: impl IntoIterator<Item = &'a [f32]>,
    ) -> std::result::Result<Fingerprint, FingerprintError> {
        let mut b = FingerprintBuilder::new(hidden_size)?;
        for row in rows {
            b.push(row)?;
        }
        Ok(b.finish())
    }

    /// Output tokens covered.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Number of chunks: `ceil(tokens / 32)`.
    pub fn chunk_count(&self) -> usize {
        self.tokens.div_ceil(CHUNK_TOKENS)
    }

    /// Entries of chunk `i` (sorted by index); empty past the last chunk.
    pub fn chunk(&self, i: usize) -> &[Entry] {
        let m = per_token(self.hidden_size);
        let start = (i * CHUNK_TOKENS).min(self.tokens) * m;
        let end = ((i + 1) * CHUNK_TOKENS).min(self.tokens) * m;
        &self.entries[start..end]
    }

    /// The encoding described in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.entries.len());
        out.push(VERSION);
        out.push(CHUNK_TOKENS as u8);
        out.push(TOP_K as u8);
        out.extend_from_slice(&(self.hidden_size as u32).to_le_bytes());
        out.extend_from_slice(&(self.tokens as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.index.to_le_bytes());
            out.extend_from_slice(&e.value_bits.to_le_bytes());
        }
        out
    }

    /// Parses [`Fingerprint::to_bytes`]'s encoding, checking everything the format
    /// determines (version, parameters, bounds, exact length, index order and range).
    /// Allocates at most in proportion to `bytes.len()`.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Fingerprint, FingerprintError> {
        if bytes.is_empty() {
            return Err(FingerprintError::Truncated {
                expected: HEADER_LEN,
                got: 0,
            });
        }
        if bytes[0] != VERSION {
            return Err(FingerprintError::UnsupportedVersion(bytes[0]));
        }
        if bytes.len() < HEADER_LEN {
            return Err(FingerprintError::Truncated {
                expected: HEADER_LEN,
                got: bytes.len(),
            });
        }
        let (chunk, k) = (bytes[1], bytes[2]);
        if chunk as usize != CHUNK_TOKENS || k as usize != TOP_K {
            return Err(FingerprintError::UnsupportedParameters { chunk, k });
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let hidden_size = u32_at(3) as usize;
        if hidden_size == 0 || hidden_size > MAX_HIDDEN {
            return Err(FingerprintError::HiddenSize(hidden_size));
        }
        let tokens = u32_at(7) as usize;
        if tokens > MAX_TOKENS {
            return Err(FingerprintError::TooManyTokens(tokens));
        }
        let m = per_token(hidden_size);
        // ≤ 2²⁴ · 8 · 6 + 11: no overflow even in 32 bits.
        let expected = HEADER_LEN + tokens * m * ENTRY_LEN;
        if bytes.len() < expected {
            return Err(FingerprintError::Truncated {
                expected,
                got: bytes.len(),
            });
        }
        if bytes.len() > expected {
            return Err(FingerprintError::TrailingBytes(bytes.len() - expected));
        }
        let mut entries = Vec::with_capacity(tokens * m);
        for (c, first) in (0..tokens).step_by(CHUNK_TOKENS).enumerate() {
            let t = CHUNK_TOKENS.min(tokens - first);
            let limit = (t * hidden_size) as u64;
            let mut prev: Option<u32> = None;
            for e in 0..t * m {
                let o = HEADER_LEN + (first * m + e) * ENTRY_LEN;
                let index = u32_at(o);
                let value_bits = u16::from_le_bytes([bytes[o + 4], bytes[o + 5]]);
                let bad = |why| FingerprintError::BadEntry {
                    chunk: c,
                    entry: e,
                    index,
                    why,
                };
                if u64::from(index) >= limit {
                    return Err(bad("beyond the chunk"));
                }
                if prev.is_some_and(|p| index <= p) {
                    return Err(bad("not above the previous one"));
                }
                prev = Some(index);
                entries.push(Entry { index, value_bits });
            }
        }
        Ok(Fingerprint {
            hidden_size,
            tokens,
            entries,
        })
    }
}

/// How one chunk of a claimed fingerprint compares with the recomputed one.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkComparison {
    /// Entries in the claimed chunk.
    pub claimed: usize,
    /// Claimed indices also in the recomputed chunk's set.
    pub shared: usize,
    /// Largest |claimed - recomputed| over the shared indices (in f32, of the f16
    /// values; equal bits count 0, a NaN difference counts as infinite). Infinite when
    /// nothing is shared.
    pub max_abs_diff: f32,
    /// Mean of the same differences; infinite when nothing is shared.
    pub mean_abs_diff: f32,
}

/// The result of [`compare`]: raw numbers for the auditor's thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Same hidden size (the format fixes chunk size and K). When false, indices mean
    /// different things and `chunks` is empty.
    pub same_shape: bool,
    pub claimed_tokens: usize,
    pub recomputed_tokens: usize,
    /// One per chunk both fingerprints have (the shorter's chunk count).
    pub chunks: Vec<ChunkComparison>,
}

impl Comparison {
    /// Shapes and token counts agree, and every claimed index is in the recomputed set.
    pub fn all_indices_shared(&self) -> bool {
        self.same_shape
            && self.claimed_tokens == self.recomputed_tokens
            && self.chunks.iter().all(|c| c.shared == c.claimed)
    }

    /// The largest `max_abs_diff` over the chunks (0 when there are none).
    pub fn max_abs_diff(&self) -> f32 {
        self.chunks.iter().fold(0.0, |m, c| m.max(c.max_abs_diff))
    }
}

/// Compares a claimed fingerprint with one recomputed by the auditor, chunk by chunk.
pub fn compare(claimed: &Fingerprint, recomputed: &Fingerprint) -> Comparison {
    let same_shape = claimed.hidden_size == recomputed.hidden_size;
    let mut chunks = Vec::new();
    if same_shape {
        let n = claimed.chunk_count().min(recomputed.chunk_count());
        for i in 0..n {
            chunks.push(compare_chunk(claimed.chunk(i), recomputed.chunk(i)));
        }
    }
    Comparison {
        same_shape,
        claimed_tokens: claimed.tokens,
        recomputed_tokens: recomputed.tokens,
        chunks,
    }
}

/// Merges two index-sorted entry lists.
fn compare_chunk(a: &[Entry], b: &[Entry]) -> ChunkComparison {
    let (mut i, mut j) = (0, 0);
    let (mut shared, mut max, mut sum) = (0usize, 0f32, 0f64);
    while i < a.len() && j < b.len() {
        match a[i].index.cmp(&b[j].index) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let d = if a[i].value_bits == b[j].value_bits {
                    0.0
                } else {
                    let d = (a[i].value() - b[j].value()).abs();
                    if d.is_nan() {
                        f32::INFINITY
                    } else {
                        d
                    }
                };
                shared += 1;
                max = max.max(d);
                sum += f64::from(d);
                i += 1;
                j += 1;
            }
        }
    }
    let (max_abs_diff, mean_abs_diff) = if shared == 0 {
        (f32::INFINITY, f32::INFINITY)
    } else {
        (max, (sum / shared as f64) as f32)
    };
    ChunkComparison {
        claimed: a.len(),
        shared,
        max_abs_diff,
        mean_abs_diff,
    }
}

/// The auditor's recomputation: one teacher-forced pass over `prompt + output[..n-1]`
/// (the same pass and checks as [`crate::score::score`]), fingerprinting row `P-1+i` for
/// output token `i`.
pub fn fingerprint_of_prefill(
    model: &Model,
    prompt_ids: &[u32],
    output_ids: &[u32],
) -> Result<Fingerprint> {
    let out = crate::score::teacher_forced(model, prompt_ids, output_ids)?;
    let rows = (0..out.rows).map(|i| out.hidden_row(i));
    Ok(Fingerprint::from_rows(
        model.config().embedding_length,
        rows,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random hidden states.
    fn rows(n: usize, h: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                (0..h)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
                    })
                    .collect()
            })
            .collect()
    }

    fn fp(rows: &[Vec<f32>], h: usize) -> Fingerprint {
        Fingerprint::from_rows(h, rows.iter().map(Vec::as_slice)).unwrap()
    }

    #[test]
    fn same_input_same_bytes() {
        let r = rows(75, 64, 1);
        let a = fp(&r, 64).to_bytes();
        let b = fp(&r, 64).to_bytes();
        assert_eq!(a, b);
        assert_eq!(a.len(), HEADER_LEN + 75 * TOP_K * ENTRY_LEN);
        assert_eq!(&a[..HEADER_LEN], &[1, 32, 8, 64, 0, 0, 0, 75, 0, 0, 0]);
    }

    #[test]
    fn round_trip() {
        for (n, h) in [
            (0, 16),
            (1, 3),
            (31, 16),
            (32, 16),
            (33, 16),
            (100, 64),
            (5, 8),
        ] {
            let f = fp(&rows(n, h, n as u64 + 7), h);
            let bytes = f.to_bytes();
            let back = Fingerprint::from_bytes(&bytes).unwrap();
            assert_eq!(back, f, "{n} tokens, hidden {h}");
            assert_eq!(back.to_bytes(), bytes);
            assert_eq!(back.tokens(), n);
            assert_eq!(back.chunk_count(), n.div_ceil(32));
        }
    }

    #[test]
    fn keeps_the_largest_magnitudes_sorted_by_index() {
        // 2 tokens × 16: K·2 = 16 largest |v| of 32 values.
        let h = 16;
        let mut r = vec![vec![0.5f32; h], vec![0.5f32; h]];
        // 16 clear winners, negative ones included; everything else ties at 0.5.
        let big = [
            (0, 3, -9.0),
            (0, 0, 8.0),
            (1, 15, 7.0),
            (1, 2, -6.0),
            (0, 7, 5.0),
            (0, 8, 4.5),
            (1, 0, 4.0),
            (1, 1, 3.5),
            (0, 1, 3.0),
            (0, 2, -2.5),
            (1, 9, 2.0),
            (1, 10, 1.5),
            (0, 12, 1.25),
            (1, 3, -1.125),
        ];
        for &(t, d, v) in &big {
            r[t][d] = v;
        }
        let f = fp(&r, h);
        let got: Vec<u32> = f.chunk(0).iter().map(|e| e.index).collect();
        let mut want: Vec<u32> = big.iter().map(|&(t, d, _)| (t * h + d) as u32).collect();
        // Two more places among the 0.5 ties: the lowest free indices, token 0's dims 4, 5.
        want.extend([4, 5]);
        want.sort_unstable();
        assert_eq!(got, want);
        let v: Vec<f32> = f.chunk(0).iter().map(Entry::value).collect();
        assert_eq!(v[0], 8.0);
        assert_eq!(v[3], -9.0);
    }

    #[test]
    fn values_round_to_nearest_even_half() {
        let h = 1;
        // 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰: ties to even (1.0).
        let r: Vec<Vec<f32>> = [1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11), 70000.0]
            .iter()
            .map(|&x| vec![x])
            .collect();
        let bits: Vec<u16> = fp(&r, h).chunk(0).iter().map(|e| e.value_bits).collect();
        assert_eq!(bits, vec![0x3C00, 0x3C02, 0x7C00]);
    }

    #[test]
    fn push_checks_the_length() {
        let mut b = FingerprintBuilder::new(4).unwrap();
        assert_eq!(
            b.push(&[1.0; 5]),
            Err(FingerprintError::WrongLength {
                expected: 4,
                got: 5
            })
        );
        assert!(b.push(&[1.0; 4]).is_ok());
        assert_eq!(b.tokens(), 1);
        assert!(FingerprintBuilder::new(0).is_err());
        assert!(FingerprintBuilder::new(MAX_HIDDEN + 1).is_err());
    }

    #[test]
    fn rejects_truncated_input() {
        let bytes = fp(&rows(40, 16, 3), 16).to_bytes();
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    Fingerprint::from_bytes(&bytes[..len]),
                    Err(FingerprintError::Truncated { .. })
                ),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn rejects_garbled_and_oversized_input() {
        let good = fp(&rows(40, 16, 4), 16).to_bytes();
        let with = |o: usize, b: &[u8]| {
            let mut v = good.clone();
            v[o..o + b.len()].copy_from_slice(b);
            Fingerprint::from_bytes(&v)
        };
        assert_eq!(with(0, &[2]), Err(FingerprintError::UnsupportedVersion(2)));
        assert!(matches!(
            with(1, &[16]),
            Err(FingerprintError::UnsupportedParameters { .. })
        ));
        assert!(matches!(
            with(2, &[4]),
            Err(FingerprintError::UnsupportedParameters { .. })
        ));
        assert_eq!(with(3, &[0, 0, 0, 0]), Err(FingerprintError::HiddenSize(0)));
        assert!(matches!(
            with(3, &[0xff; 4]),
            Err(FingerprintError::HiddenSize(_))
        ));
        // A hidden size that changes the entry count or the index range.
        assert!(with(3, &[4, 0, 0, 0]).is_err());
        // Declared token counts: huge, more than present, fewer than present.
        assert!(matches!(
            with(7, &[0xff; 4]),
            Err(FingerprintError::TooManyTokens(_))
        ));
        assert!(matches!(
            with(7, &[41, 0, 0, 0]),
            Err(FingerprintError::Truncated { .. })
        ));
        assert!(matches!(
            with(7, &[39, 0, 0, 0]),
            Err(FingerprintError::TrailingBytes(48))
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            Fingerprint::from_bytes(&long),
            Err(FingerprintError::TrailingBytes(1))
        );
        // Index out of the chunk's range (first chunk: 32·16 values), and out of order.
        let e0 = HEADER_LEN;
        assert!(matches!(
            with(e0, &512u32.to_le_bytes()),
            Err(FingerprintError::BadEntry { entry: 0, .. })
        ));
        let second = u32::from_le_bytes(good[e0 + 6..e0 + 10].try_into().unwrap());
        assert!(matches!(
            with(e0, &second.to_le_bytes()),
            Err(FingerprintError::BadEntry { entry: 1, .. })
        ));
        // The last chunk (8 tokens) allows indices below 8·16 only.
        let last = HEADER_LEN + 32 * 8 * ENTRY_LEN + (8 * 8 - 1) * ENTRY_LEN;
        assert!(matches!(
            with(last, &128u32.to_le_bytes()),
            Err(FingerprintError::BadEntry { chunk: 1, .. })
        ));
        // Every single-byte corruption of the header or indices is caught or re-encodes
        // to exactly the corrupted bytes (values are free).
        for o in 0..good.len() {
            let mut v = good.clone();
            v[o] ^= 0x5a;
            if let Ok(f) = Fingerprint::from_bytes(&v) {
                assert_eq!(f.to_bytes(), v, "byte {o}");
            }
        }
    }

    #[test]
    fn compare_reports_overlap_and_differences() {
        let r = rows(70, 32, 9);
        let a = fp(&r, 32);
        let same = compare(&a, &a);
        assert!(same.all_indices_shared());
        assert_eq!(same.chunks.len(), 3);
        assert_eq!(same.max_abs_diff(), 0.0);
        assert_eq!(same.chunks[2].claimed, 6 * 8);

        // Nudge every value slightly: indices stay, values move a little.
        let nudged: Vec<Vec<f32>> = r
            .iter()
            .map(|row| row.iter().map(|v| v * 1.01).collect())
            .collect();
        let c = compare(&a, &fp(&nudged, 32));
        assert!(c.all_indices_shared());
        assert!(c.max_abs_diff() > 0.0 && c.max_abs_diff() < 0.05);
        assert!(c.chunks.iter().all(|k| k.mean_abs_diff <= k.max_abs_diff));

        // Other states: few indices shared.
        let other = compare(&a, &fp(&rows(70, 32, 10), 32));
        assert!(!other.all_indices_shared());
        assert!(other.chunks.iter().all(|k| k.shared < k.claimed / 2));

        // Other shapes and lengths.
        let short = compare(&a, &fp(&r[..40], 32));
        assert!(!short.all_indices_shared());
        assert_eq!(short.chunks.len(), 2);
        assert_eq!(short.chunks[0].shared, short.chunks[0].claimed);
        let wide = compare(&a, &fp(&rows(70, 64, 9), 64));
        assert!(!wide.same_shape && wide.chunks.is_empty());
    }
}
