//! TOPLOC-style fingerprints of the final hidden states behind the output tokens.
//!
//! A receipt commits to a compact fingerprint of the hidden states (after the output norm)
//! that produced each output token: [`crate::generate::Step::hidden`] during generation,
//! or row `P-1+i` of one teacher-forced pass over `prompt + output[..n-1]`
//! ([`fingerprint_of_prefill`]). The auditor recomputes it with that one cheap pass and
//! [`check`]s it: a swapped, layer-skipping or re-quantized model, another prompt or a
//! fabricated output moves the largest activations, while honest re-execution keeps them
//! within a small tolerance (on one CPU, bit for bit).
//!
//! What is kept (version 2): for every output token, the [`TOP_M`] dimensions of its hidden
//! state with the largest absolute value (ties: the lower dimension; a NaN counts as
//! largest), each as its dimension and its value rounded to IEEE half precision (round to
//! nearest even), sorted by dimension. Every token is covered, so a failed check names the
//! output positions that diverge.
//!
//! Byte layout (version 2, all integers little-endian):
//!
//! | offset | size  | field                                            |
//! |--------|-------|--------------------------------------------------|
//! | 0      | 1     | version = 2                                      |
//! | 1      | 1     | entries per token `M` = 2                        |
//! | 2      | 2     | hidden size `h` (u16, 1..=65535)                 |
//! | 4      | 4     | token count `n` (u32, ≤ 2²⁴)                     |
//! | 8      | 4·k·n | token after token, `k = min(M, h)` entries each: dimension (u16) then value (f16 bits, u16) |
//!
//! The length is exact (`8 + 4·k·n`), and within a token the dimensions are strictly
//! increasing and below `h`; [`Fingerprint::from_bytes`] checks all of it, so a parsed
//! fingerprint re-encodes to the same bytes. Cost: 8 bytes per token, **256 bytes per 32
//! tokens** ([`BYTES_PER_32_TOKENS`]), plus the 8-byte header once per job.
//!
//! Version 1 (the top `8·t` values of each 32-token chunk, 1,536 bytes per 32 tokens) is
//! no longer read: its bytes, like any other version's, are refused with
//! [`FingerprintError::UnsupportedVersion`].
//!
//! The check ([`check`]) compares token by token, with the tolerances [`ABS_TOL`] and
//! [`REL_TOL`] and the job rule [`MAX_FAILING_FRACTION`] calibrated on the real model
//! (`tests/fingerprint.rs`): see the function. [`check_with`] takes other thresholds, such
//! as [`Thresholds::EXACT`] for re-execution on the provider's kind of hardware.

use crate::error::Result;
use crate::model::Model;
use half::f16;

/// Format version written in byte 0; the only one read.
pub const VERSION: u8 = 2;
/// Entries kept per token (fewer when the hidden size is smaller).
pub const TOP_M: usize = 2;
/// Largest hidden size accepted: dimensions are stored as `u16`.
pub const MAX_HIDDEN: usize = u16::MAX as usize;
/// Largest token count accepted (far beyond any context window).
pub const MAX_TOKENS: usize = 1 << 24;
/// Bytes before the entries.
pub const HEADER_LEN: usize = 8;
/// Bytes per entry.
pub const ENTRY_LEN: usize = 4;
/// What 32 output tokens cost (hidden size ≥ [`TOP_M`]), header excluded.
pub const BYTES_PER_32_TOKENS: usize = 32 * TOP_M * ENTRY_LEN;

/// Absolute part of the per-value tolerance of [`check`]: `ABS_TOL + REL_TOL · |value|`.
pub const ABS_TOL: f32 = 0.2;
/// Relative part of the per-value tolerance of [`check`].
pub const REL_TOL: f32 = 0.08;
/// A job passes [`check`] when at most this fraction of its positions fail.
pub const MAX_FAILING_FRACTION: f64 = 0.1;

/// The tolerances and job rule of a check ([`check_with`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Per value: `abs_tol + rel_tol · |reference|`.
    pub abs_tol: f32,
    pub rel_tol: f32,
    /// Most failing positions a passing job may have, as a fraction of its positions.
    pub max_failing_fraction: f64,
}

impl Thresholds {
    /// [`ABS_TOL`], [`REL_TOL`], [`MAX_FAILING_FRACTION`]: room for other hardware
    /// ([`check`]'s thresholds).
    pub const CALIBRATED: Thresholds = Thresholds {
        abs_tol: ABS_TOL,
        rel_tol: REL_TOL,
        max_failing_fraction: MAX_FAILING_FRACTION,
    };
    /// Bit-identical or fail: for an auditor that re-executes on the provider's kind of
    /// hardware (the same CPU kernels are bit-identical across kernels, thread counts and
    /// batch shapes). Catches changes too small for [`Thresholds::CALIBRATED`], such as one
    /// changed token early in a long prompt.
    pub const EXACT: Thresholds = Thresholds {
        abs_tol: 0.0,
        rel_tol: 0.0,
        max_failing_fraction: 0.0,
    };
}

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
    /// Byte 0 is not a version this code reads (only [`VERSION`]; version 1 is retired).
    #[error("unsupported fingerprint version {0} (this build reads version {VERSION} only)")]
    UnsupportedVersion(u8),
    /// Entries per token other than [`TOP_M`].
    #[error("unsupported fingerprint parameter: {0} entries per token, expected {TOP_M}")]
    UnsupportedParameters(u8),
    /// An entry's dimension is out of order or out of range.
    #[error("token {token}, entry {entry}: dimension {dim} is {why}")]
    BadEntry {
        token: usize,
        entry: usize,
        dim: u16,
        why: &'static str,
    },
}

/// One kept value: its dimension and its half-precision bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Index into the hidden state.
    pub dim: u16,
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
    TOP_M.min(h)
}

/// Builds a [`Fingerprint`] one hidden state at a time (one per output token, in order).
/// Each `push` selects that token's entries at once (one pass over the state, no buffer).
#[derive(Debug, Clone)]
pub struct FingerprintBuilder {
    hidden_size: usize,
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
        // The k best (|value|, dim) so far, best first: larger |value| (total order, so a
        // NaN, whose abs is a positive NaN, is largest), then lower dim.
        let k = per_token(self.hidden_size);
        let mut best: [(f32, u16); TOP_M] = [(0.0, 0); TOP_M];
        let mut len = 0;
        let better = |a: (f32, u16), b: (f32, u16)| a.0.total_cmp(&b.0).is_gt();
        for (d, &v) in hidden.iter().enumerate() {
            let cand = (v.abs(), d as u16);
            // Dims arrive in increasing order, so a tie in |value| keeps the earlier one.
            if len == k && !better(cand, best[k - 1]) {
                continue;
            }
            let mut i = len.min(k - 1);
            while i > 0 && better(cand, best[i - 1]) {
                best[i] = best[i - 1];
                i -= 1;
            }
            best[i] = cand;
            len = (len + 1).min(k);
        }
        let mut dims: [u16; TOP_M] = [0; TOP_M];
        for (slot, b) in dims.iter_mut().zip(&best[..k]) {
            *slot = b.1;
        }
        dims[..k].sort_unstable();
        self.entries.extend(dims[..k].iter().map(|&d| Entry {
            dim: d,
            value_bits: f16::from_f32(hidden[d as usize]).to_bits(),
        }));
        self.tokens += 1;
        Ok(())
    }

    /// Tokens pushed so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The fingerprint of everything pushed.
    pub fn finish(self) -> Fingerprint {
        Fingerprint {
            hidden_size: self.hidden_size,
            tokens: self.tokens,
            entries: self.entries,
        }
    }
}

/// The fingerprint of the hidden states behind `n` output tokens; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    hidden_size: usize,
    tokens: usize,
    /// Every token's entries, token after token.
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

    /// Entries of output token `i` (sorted by dimension); empty past the last token.
    pub fn token(&self, i: usize) -> &[Entry] {
        let k = per_token(self.hidden_size);
        let i = i.min(self.tokens);
        let end = (i + 1).min(self.tokens);
        &self.entries[i * k..end * k]
    }

    /// The encoding described in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.entries.len());
        out.push(VERSION);
        out.push(TOP_M as u8);
        out.extend_from_slice(&(self.hidden_size as u16).to_le_bytes());
        out.extend_from_slice(&(self.tokens as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.dim.to_le_bytes());
            out.extend_from_slice(&e.value_bits.to_le_bytes());
        }
        out
    }

    /// Parses [`Fingerprint::to_bytes`]'s encoding, checking everything the format
    /// determines (version, parameter, bounds, exact length, dimension order and range).
    /// Allocates at most in proportion to `bytes.len()`.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Fingerprint, FingerprintError> {
        let Some(&version) = bytes.first() else {
            return Err(FingerprintError::Truncated {
                expected: HEADER_LEN,
                got: 0,
            });
        };
        if version != VERSION {
            return Err(FingerprintError::UnsupportedVersion(version));
        }
        if bytes.len() < HEADER_LEN {
            return Err(FingerprintError::Truncated {
                expected: HEADER_LEN,
                got: bytes.len(),
            });
        }
        if bytes[1] as usize != TOP_M {
            return Err(FingerprintError::UnsupportedParameters(bytes[1]));
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let hidden_size = u16_at(2) as usize;
        if hidden_size == 0 {
            return Err(FingerprintError::HiddenSize(0));
        }
        let tokens = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if tokens > MAX_TOKENS {
            return Err(FingerprintError::TooManyTokens(tokens));
        }
        let k = per_token(hidden_size);
        // ≤ 2²⁴ · 2 · 4 + 8: no overflow even in 32 bits.
        let expected = HEADER_LEN + tokens * k * ENTRY_LEN;
        if bytes.len() < expected {
            return Err(FingerprintError::Truncated {
                expected,
                got: bytes.len(),
            });
        }
        if bytes.len() > expected {
            return Err(FingerprintError::TrailingBytes(bytes.len() - expected));
        }
        let mut entries = Vec::with_capacity(tokens * k);
        for token in 0..tokens {
            let mut prev: Option<u16> = None;
            for entry in 0..k {
                let o = HEADER_LEN + (token * k + entry) * ENTRY_LEN;
                let dim = u16_at(o);
                let bad = |why| FingerprintError::BadEntry {
                    token,
                    entry,
                    dim,
                    why,
                };
                if dim as usize >= hidden_size {
                    return Err(bad("beyond the hidden size"));
                }
                if prev.is_some_and(|p| dim <= p) {
                    return Err(bad("not above the previous one"));
                }
                prev = Some(dim);
                entries.push(Entry {
                    dim,
                    value_bits: u16_at(o + 2),
                });
            }
        }
        Ok(Fingerprint {
            hidden_size,
            tokens,
            entries,
        })
    }
}

/// How one output token of a claimed fingerprint compares with the recomputed one.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCheck {
    /// 0-based index into the output.
    pub position: usize,
    /// Claimed dimensions that are among the recomputed token's dimensions too.
    pub shared: usize,
    /// Largest |claimed − recomputed| over the shared dimensions (of the f16 values, in
    /// f32; equal bits count 0, a NaN difference counts as infinite); 0 when none shared.
    pub max_abs_diff: f32,
    /// Mean of the same differences; 0 when none shared.
    pub mean_abs_diff: f32,
    /// The worst deviation in units of the tolerance `abs_tol + rel_tol·|reference|`
    /// (see [`check_with`]; infinite for any deviation under a zero tolerance); the token
    /// passes when it is at most 1.
    pub score: f32,
}

impl TokenCheck {
    pub fn passed(&self) -> bool {
        self.score <= 1.0
    }
}

/// The result of [`check`] and [`check_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationCheck {
    /// Hidden sizes and token counts agree, and at most the thresholds' fraction of the
    /// positions failed.
    pub passed: bool,
    /// Why the fingerprints cannot be compared position by position (different hidden
    /// sizes or token counts), if they cannot.
    pub mismatch: Option<String>,
    /// Output positions (0-based) whose token failed; with a `mismatch`, also every
    /// position of the longer fingerprint that the shorter lacks.
    pub failing_positions: Vec<usize>,
    /// One per position both fingerprints have (none when the hidden sizes differ).
    pub positions: Vec<TokenCheck>,
}

impl ActivationCheck {
    /// Failing positions over the positions checked or missing (0 for two empty ones).
    pub fn failing_fraction(&self) -> f64 {
        // Failing positions past the compared ones are those the shorter side lacks.
        let checked = self.positions.len();
        let missing = self
            .failing_positions
            .iter()
            .filter(|&&p| p >= checked)
            .count();
        let total = checked + missing;
        if total == 0 {
            0.0
        } else {
            self.failing_positions.len() as f64 / total as f64
        }
    }

    /// The largest per-token score (0 when no position was compared).
    pub fn max_score(&self) -> f32 {
        self.positions.iter().fold(0.0, |m, t| m.max(t.score))
    }

    /// The median per-token score (the upper one for an even count; 0 when no position
    /// was compared): the job-level summary the calibration reports.
    pub fn median_score(&self) -> f32 {
        let mut s: Vec<f32> = self.positions.iter().map(|t| t.score).collect();
        if s.is_empty() {
            return 0.0;
        }
        s.sort_unstable_by(f32::total_cmp);
        s[s.len() / 2]
    }
}

/// `x` (a deviation ≥ 0, or NaN) in units of the tolerance for reference `r`: 0 for no
/// deviation (even under a zero tolerance), infinite for a NaN.
fn ratio(x: f32, r: f32, t: &Thresholds) -> f32 {
    if x == 0.0 {
        return 0.0;
    }
    let q = x / (t.abs_tol + t.rel_tol * r.abs());
    if q.is_nan() {
        f32::INFINITY
    } else {
        q
    }
}

/// Compares one token's entries (both sorted by dimension).
fn check_token(
    position: usize,
    claimed: &[Entry],
    recomputed: &[Entry],
    t: &Thresholds,
) -> TokenCheck {
    let (mut shared, mut max, mut sum, mut score) = (0usize, 0f32, 0f64, 0f32);
    for c in claimed {
        if let Some(r) = recomputed.iter().find(|r| r.dim == c.dim) {
            let d = if c.value_bits == r.value_bits {
                0.0
            } else {
                let d = (c.value() - r.value()).abs();
                if d.is_nan() {
                    f32::INFINITY
                } else {
                    d
                }
            };
            shared += 1;
            max = max.max(d);
            sum += f64::from(d);
            score = score.max(ratio(d, r.value(), t));
        }
    }
    // A dimension kept on one side only is honest only as a near tie at the cut: it must
    // be no larger in magnitude (within tolerance) than the smallest the other side kept,
    // which it would otherwise have displaced.
    let smallest = |es: &[Entry]| {
        es.iter()
            .map(|e| e.value().abs())
            .fold(
                f32::INFINITY,
                |m, v| if v.total_cmp(&m).is_lt() { v } else { m },
            )
    };
    for (side, other) in [(claimed, recomputed), (recomputed, claimed)] {
        let cut = smallest(other);
        for e in side {
            if !other.iter().any(|o| o.dim == e.dim) {
                let excess = (e.value().abs() - cut).max(0.0);
                score = score.max(ratio(excess, cut, t));
            }
        }
    }
    let mean = if shared == 0 {
        0.0
    } else {
        (sum / shared as f64) as f32
    };
    TokenCheck {
        position,
        shared,
        max_abs_diff: max,
        mean_abs_diff: mean,
        score,
    }
}

/// Checks a claimed fingerprint against the auditor's recomputation, token by token, with
/// [`Thresholds::CALIBRATED`] (room for other hardware); see [`check_with`].
///
/// Calibration (SmolLM2-135M Q4_1, 22 greedy and sampled jobs, `tests/fingerprint.rs`):
/// on one CPU, generation and the auditor's prefill agree bit for bit (score 0 on every
/// kernel and thread count). Recomputing with other arithmetic (f32 weights without
/// activation quantization, a stand-in for other hardware) gives job median scores of
/// 0.08 to 0.30 and at most 1.13, failing at most 1 position of a job (2.8%); every
/// cheaper variant ([`crate::model::Variant`]) fails at least 80% of the positions of
/// every job (3-bit weights: job medians 2.1 to 6.4; skipping every third block or 2-bit
/// weights: 8.5 and up), and so does another prompt (44% and up). What it does not see:
/// a change as small as one token early in a long prompt moves the states by about as
/// much as other arithmetic does; [`Thresholds::EXACT`] catches that on same hardware.
pub fn check(claimed: &Fingerprint, recomputed: &Fingerprint) -> ActivationCheck {
    check_with(claimed, recomputed, &Thresholds::CALIBRATED)
}

/// [`check`] with chosen thresholds.
///
/// Per position: every dimension kept on both sides must agree within the tolerance
/// `abs_tol + rel_tol·|recomputed value|`; a dimension kept on one side only is accepted
/// only as a near tie at the top-[`TOP_M`] cut (its magnitude within tolerance of the
/// smallest magnitude the other side kept), which is all that honest rounding differences
/// can produce. [`TokenCheck::score`] is the worst deviation in units of tolerance; the
/// position fails above 1. The job passes when the hidden sizes and token counts agree
/// and at most `max_failing_fraction` of the positions fail.
pub fn check_with(
    claimed: &Fingerprint,
    recomputed: &Fingerprint,
    t: &Thresholds,
) -> ActivationCheck {
    let mut mismatch = Vec::new();
    if claimed.hidden_size != recomputed.hidden_size {
        mismatch.push(format!(
            "hidden size {} claimed, {} recomputed",
            claimed.hidden_size, recomputed.hidden_size
        ));
    }
    if claimed.tokens != recomputed.tokens {
        mismatch.push(format!(
            "{} tokens claimed, {} recomputed",
            claimed.tokens, recomputed.tokens
        ));
    }
    let compared = if claimed.hidden_size == recomputed.hidden_size {
        claimed.tokens.min(recomputed.tokens)
    } else {
        0
    };
    let positions: Vec<TokenCheck> = (0..compared)
        .map(|i| check_token(i, claimed.token(i), recomputed.token(i), t))
        .collect();
    let mut failing_positions: Vec<usize> = positions
        .iter()
        .filter(|t| !t.passed())
        .map(|t| t.position)
        .collect();
    failing_positions.extend(compared..claimed.tokens.max(recomputed.tokens));
    let failing_ok = failing_positions.len() as f64 <= t.max_failing_fraction * compared as f64;
    ActivationCheck {
        passed: mismatch.is_empty() && failing_ok,
        mismatch: (!mismatch.is_empty()).then(|| mismatch.join("; ")),
        failing_positions,
        positions,
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
    let threads = candle_core::utils::get_num_threads();
    let out = crate::score::teacher_forced(model, prompt_ids, output_ids, threads)?;
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
                        // Spiky, like real hidden states: a few large values.
                        ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0).powi(5) * 8.0
                    })
                    .collect()
            })
            .collect()
    }

    fn fp(rows: &[Vec<f32>], h: usize) -> Fingerprint {
        Fingerprint::from_rows(h, rows.iter().map(Vec::as_slice)).unwrap()
    }

    #[test]
    fn same_input_same_bytes_and_size() {
        let r = rows(75, 64, 1);
        let a = fp(&r, 64).to_bytes();
        assert_eq!(a, fp(&r, 64).to_bytes());
        assert_eq!(a.len(), HEADER_LEN + 75 * TOP_M * ENTRY_LEN);
        assert_eq!(&a[..HEADER_LEN], &[2, 2, 64, 0, 75, 0, 0, 0]);
        // The budget: at most 300 bytes per 32 tokens.
        assert_eq!(BYTES_PER_32_TOKENS, 256);
        let f32t = fp(&rows(32, 576, 2), 576).to_bytes();
        assert_eq!(f32t.len() - HEADER_LEN, BYTES_PER_32_TOKENS);
    }

    #[test]
    fn round_trip() {
        for (n, h) in [
            (0, 16),
            (1, 1),
            (1, 3),
            (31, 16),
            (33, 2),
            (100, 64),
            (5, 576),
        ] {
            let f = fp(&rows(n, h, n as u64 + 7), h);
            let bytes = f.to_bytes();
            let back = Fingerprint::from_bytes(&bytes).unwrap();
            assert_eq!(back, f, "{n} tokens, hidden {h}");
            assert_eq!(back.to_bytes(), bytes);
            assert_eq!(back.tokens(), n);
            assert_eq!(back.hidden_size(), h);
            for i in 0..n {
                assert_eq!(back.token(i).len(), TOP_M.min(h));
            }
            assert!(back.token(n).is_empty());
        }
    }

    #[test]
    fn keeps_each_tokens_largest_magnitudes_sorted_by_dim() {
        let h = 8;
        let r = vec![
            // A negative value is largest; 3.0 beats 2.0.
            vec![0.5, 2.0, -9.0, 0.0, 3.0, 1.0, -1.0, 0.0],
            // Ties in |value| keep the lower dims (1 and 3, not 5 or 7).
            vec![0.0, 4.0, 0.0, -4.0, 0.0, 4.0, 0.0, -4.0],
            // The largest values at the ends.
            vec![7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -8.0],
            // All equal: dims 0 and 1.
            vec![1.0; 8],
            // A NaN counts as largest.
            vec![0.0, 1.0, f32::NAN, 5.0, 0.0, 0.0, 0.0, 0.0],
        ];
        let f = fp(&r, h);
        let dims = |i: usize| f.token(i).iter().map(|e| e.dim).collect::<Vec<_>>();
        let vals = |i: usize| f.token(i).iter().map(Entry::value).collect::<Vec<_>>();
        assert_eq!(dims(0), vec![2, 4]);
        assert_eq!(vals(0), vec![-9.0, 3.0]);
        assert_eq!(dims(1), vec![1, 3]);
        assert_eq!(vals(1), vec![4.0, -4.0]);
        assert_eq!(dims(2), vec![0, 7]);
        assert_eq!(dims(3), vec![0, 1]);
        assert_eq!(dims(4), vec![2, 3]);
        assert!(vals(4)[0].is_nan());
        // Hidden size 1: one entry per token.
        let one = fp(&[vec![-2.5], vec![0.0]], 1);
        assert_eq!(
            one.token(0),
            &[Entry {
                dim: 0,
                value_bits: 0xC100
            }]
        );
        assert_eq!(one.to_bytes().len(), HEADER_LEN + 2 * ENTRY_LEN);
    }

    #[test]
    fn values_round_to_nearest_even_half() {
        // 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰: ties to even (1.0).
        let r: Vec<Vec<f32>> = [1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11), 70000.0]
            .iter()
            .map(|&x| vec![x])
            .collect();
        let f = fp(&r, 1);
        let bits: Vec<u16> = (0..3).map(|i| f.token(i)[0].value_bits).collect();
        assert_eq!(bits, vec![0x3C00, 0x3C02, 0x7C00]);
    }

    #[test]
    fn builder_checks_sizes() {
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
        assert_eq!(
            FingerprintBuilder::new(0).err(),
            Some(FingerprintError::HiddenSize(0))
        );
        assert!(FingerprintBuilder::new(MAX_HIDDEN).is_ok());
        assert_eq!(
            FingerprintBuilder::new(MAX_HIDDEN + 1).err(),
            Some(FingerprintError::HiddenSize(65536))
        );
        // The largest dim still fits its u16.
        let mut row = vec![0.0; MAX_HIDDEN];
        row[MAX_HIDDEN - 1] = 1.0;
        let f = Fingerprint::from_rows(MAX_HIDDEN, [row.as_slice()]).unwrap();
        assert_eq!(f.token(0)[1].dim, 65534);
        assert_eq!(Fingerprint::from_bytes(&f.to_bytes()).unwrap(), f);
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
    fn rejects_other_versions_and_garbled_input() {
        let good = fp(&rows(40, 16, 4), 16).to_bytes();
        let with = |o: usize, b: &[u8]| {
            let mut v = good.clone();
            v[o..o + b.len()].copy_from_slice(b);
            Fingerprint::from_bytes(&v)
        };
        assert_eq!(with(0, &[1]), Err(FingerprintError::UnsupportedVersion(1)));
        assert_eq!(with(0, &[3]), Err(FingerprintError::UnsupportedVersion(3)));
        assert_eq!(
            FingerprintError::UnsupportedVersion(1).to_string(),
            "unsupported fingerprint version 1 (this build reads version 2 only)"
        );
        // A version-1 header (11 bytes) is refused by its version, not misread.
        let v1 = [1u8, 32, 8, 64, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Fingerprint::from_bytes(&v1),
            Err(FingerprintError::UnsupportedVersion(1))
        );
        assert_eq!(
            with(1, &[3]),
            Err(FingerprintError::UnsupportedParameters(3))
        );
        assert_eq!(with(2, &[0, 0]), Err(FingerprintError::HiddenSize(0)));
        // Another hidden size: dims out of range, or fewer entries per token.
        assert!(matches!(
            with(2, &[4, 0]),
            Err(FingerprintError::BadEntry { .. })
        ));
        assert!(matches!(
            with(2, &[1, 0]),
            Err(FingerprintError::TrailingBytes(160))
        ));
        // Declared token counts: huge, more than present, fewer than present.
        assert!(matches!(
            with(4, &[0xff; 4]),
            Err(FingerprintError::TooManyTokens(_))
        ));
        assert!(matches!(
            with(4, &[41, 0, 0, 0]),
            Err(FingerprintError::Truncated { .. })
        ));
        assert_eq!(
            with(4, &[39, 0, 0, 0]),
            Err(FingerprintError::TrailingBytes(8))
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            Fingerprint::from_bytes(&long),
            Err(FingerprintError::TrailingBytes(1))
        );
        // A dim out of range, equal to or below the previous one.
        let e0 = HEADER_LEN;
        assert!(matches!(
            with(e0, &16u16.to_le_bytes()),
            Err(FingerprintError::BadEntry {
                token: 0,
                entry: 0,
                dim: 16,
                ..
            })
        ));
        let second = u16::from_le_bytes([good[e0 + 4], good[e0 + 5]]);
        assert!(matches!(
            with(e0, &second.to_le_bytes()),
            Err(FingerprintError::BadEntry {
                token: 0,
                entry: 1,
                ..
            })
        ));
        let last = HEADER_LEN + (39 * 2 + 1) * ENTRY_LEN;
        assert!(matches!(
            with(last, &0u16.to_le_bytes()),
            Err(FingerprintError::BadEntry {
                token: 39,
                entry: 1,
                dim: 0,
                ..
            })
        ));
        // Every single-byte corruption is caught or re-encodes to exactly the corrupted
        // bytes (values are free).
        for o in 0..good.len() {
            let mut v = good.clone();
            v[o] ^= 0x5a;
            if let Ok(f) = Fingerprint::from_bytes(&v) {
                assert_eq!(f.to_bytes(), v, "byte {o}");
            }
        }
    }

    #[test]
    fn check_passes_equal_and_slightly_moved_states() {
        let r = rows(70, 32, 9);
        let a = fp(&r, 32);
        let same = check(&a, &a);
        assert!(same.passed && same.mismatch.is_none());
        assert_eq!(same.positions.len(), 70);
        assert!(same.failing_positions.is_empty());
        assert_eq!(same.max_score(), 0.0);
        assert_eq!(same.failing_fraction(), 0.0);
        assert!(same.positions.iter().all(|t| t.shared == TOP_M));

        // Every value 0.5% larger: within tolerance everywhere.
        let nudged: Vec<Vec<f32>> = r
            .iter()
            .map(|row| row.iter().map(|v| v * 1.005).collect())
            .collect();
        let c = check(&a, &fp(&nudged, 32));
        assert!(c.passed, "max score {}", c.max_score());
        assert!(c.max_score() > 0.0);
        assert!(c
            .positions
            .iter()
            .all(|t| t.mean_abs_diff <= t.max_abs_diff));
        assert_eq!(check_with(&a, &fp(&nudged, 32), &Thresholds::CALIBRATED), c);

        // Exact thresholds: identical passes, any moved value fails its position.
        assert!(check_with(&a, &a, &Thresholds::EXACT).passed);
        let exact = check_with(&a, &fp(&nudged, 32), &Thresholds::EXACT);
        assert!(!exact.passed);
        let moved: Vec<usize> = c
            .positions
            .iter()
            .filter(|t| t.max_abs_diff > 0.0)
            .map(|t| t.position)
            .collect();
        assert!(moved.len() > 60);
        assert_eq!(exact.failing_positions, moved);
        assert!(exact.max_score().is_infinite());
    }

    #[test]
    fn check_names_the_failing_positions() {
        let r = rows(40, 32, 11);
        let a = fp(&r, 32);
        let mut moved = r.clone();
        // Position 3: the same dims with other values (the top one tripled, the rest a tenth).
        let d3 = a.token(3)[0].dim as usize;
        let big = a
            .token(3)
            .iter()
            .map(|e| e.value().abs())
            .fold(0.0, f32::max);
        moved[3].iter_mut().for_each(|v| *v *= 0.1);
        moved[3][d3] = big * 3.0;
        // Position 17: a new dimension far above the others.
        let free = (0..32)
            .find(|&d| a.token(17).iter().all(|e| e.dim as usize != d))
            .unwrap();
        moved[17][free] = 100.0;
        // Position 30: a near tie at the cut swaps the second dim, within tolerance.
        let t30 = a.token(30);
        let (lo, hi) = if t30[0].value().abs() < t30[1].value().abs() {
            (t30[0], t30[1])
        } else {
            (t30[1], t30[0])
        };
        let runner_up = (0..32)
            .filter(|&d| d != lo.dim as usize && d != hi.dim as usize)
            .max_by(|&x, &y| r[30][x].abs().total_cmp(&r[30][y].abs()))
            .unwrap();
        moved[30][runner_up] = lo.value().abs() * 1.001 + 1e-3;
        let c = check(&a, &fp(&moved, 32));
        assert!(c.mismatch.is_none());
        assert_eq!(c.failing_positions, vec![3, 17]);
        assert!(c.positions[30].passed() && c.positions[30].shared == 1);
        assert_eq!(c.positions[17].shared, 1);
        assert!((c.failing_fraction() - 2.0 / 40.0).abs() < 1e-12);
        // 2 of 40 is within MAX_FAILING_FRACTION; 5 of 40 is not.
        assert!(c.passed);
        for p in [8, 20, 33] {
            moved[p].iter_mut().for_each(|v| *v = -*v * 2.0);
        }
        let c = check(&a, &fp(&moved, 32));
        assert_eq!(c.failing_positions, vec![3, 8, 17, 20, 33]);
        assert!(!c.passed);
        // Unrelated states fail nearly everywhere.
        let other = check(&a, &fp(&rows(40, 32, 12), 32));
        assert!(!other.passed);
        assert!(
            other.failing_positions.len() >= 34,
            "{:?}",
            other.failing_positions
        );
    }

    #[test]
    fn check_reports_shape_and_length_mismatches() {
        let r = rows(10, 32, 13);
        let a = fp(&r, 32);
        let short = check(&a, &fp(&r[..7], 32));
        assert!(!short.passed);
        assert_eq!(
            short.mismatch.as_deref(),
            Some("10 tokens claimed, 7 recomputed")
        );
        assert_eq!(short.positions.len(), 7);
        assert_eq!(short.failing_positions, vec![7, 8, 9]);
        assert!((short.failing_fraction() - 0.3).abs() < 1e-12);
        let wide = check(&a, &fp(&rows(12, 64, 13), 64));
        assert!(!wide.passed && wide.positions.is_empty());
        assert_eq!(
            wide.mismatch.as_deref(),
            Some("hidden size 32 claimed, 64 recomputed; 10 tokens claimed, 12 recomputed")
        );
        assert_eq!(wide.failing_positions, (0..12).collect::<Vec<_>>());
        assert_eq!(wide.failing_fraction(), 1.0);
        let empty = fp(&[], 32);
        let e = check(&empty, &empty);
        assert!(e.passed && e.failing_fraction() == 0.0);
    }
}
