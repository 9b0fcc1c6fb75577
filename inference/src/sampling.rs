//! Sampling parameters and the seeded sampler.
//!
//! The sampler is a pure function of (parameters, seed, logits, context): the auditor
//! replays it over recomputed logits to check that the claimed tokens are the ones the
//! seeded sampler would have chosen. Its exact procedure, per token:
//!
//! 1. Repetition penalty (when `repetition_penalty != 1`): every distinct token among the
//!    last [`REPETITION_WINDOW`] tokens of the context (prompt + output so far) has its
//!    logit divided by the penalty when positive, multiplied by it otherwise (llama.cpp /
//!    Hugging Face convention).
//! 2. `temperature == 0`: the arg-max, ties to the lowest id. The random stream is not
//!    advanced.
//! 3. Otherwise candidates are ordered by logit descending, ties by id ascending; `top_k`
//!    (0 = off) keeps the first k; probabilities are `exp((l - l_max) / temperature)`
//!    in f64; `top_p < 1` keeps the shortest prefix whose mass reaches `top_p` of the
//!    total; one `f64` uniform draw `u` in [0, 1) from `ChaCha20Rng::seed_from_u64(seed)`
//!    picks the first candidate whose cumulative mass exceeds `u · kept_mass`.

use crate::error::{InferenceError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// How many trailing context tokens the repetition penalty looks at (llama.cpp's default
/// `penalty_last_n`).
pub const REPETITION_WINDOW: usize = 64;

/// At most this many stop strings per request.
pub const MAX_STOP_STRINGS: usize = 16;

/// How to pick tokens and when to stop. `Default` is greedy with 256 new tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy (arg-max); otherwise the softmax temperature.
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 = off.
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 = off.
    pub top_k: usize,
    /// > 0; 1 = off.
    pub repetition_penalty: f32,
    pub seed: u64,
    /// New tokens at most (> 0).
    pub max_tokens: usize,
    /// Stop when the decoded output contains one of these (non-empty strings).
    pub stop: Vec<String>,
    /// Stop after emitting one of these ids (in addition to the model's EOS ids).
    pub stop_token_ids: Vec<u32>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            seed: 0,
            max_tokens: 256,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
        }
    }
}

fn invalid(name: &'static str, detail: impl Into<String>) -> InferenceError {
    InferenceError::InvalidParameter {
        name,
        detail: detail.into(),
    }
}

impl SamplingParams {
    /// Rejects out-of-range values with `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !t.is_finite() || t < 0.0 {
            return Err(invalid(
                "temperature",
                format!("{t} (must be finite and >= 0)"),
            ));
        }
        let p = self.top_p;
        if !(p.is_finite() && p > 0.0 && p <= 1.0) {
            return Err(invalid("top_p", format!("{p} (must be in (0, 1])")));
        }
        let r = self.repetition_penalty;
        if !(r.is_finite() && r > 0.0) {
            return Err(invalid(
                "repetition_penalty",
                format!("{r} (must be finite and > 0)"),
            ));
        }
        if self.max_tokens == 0 {
            return Err(invalid("max_tokens", "0 (must be at least 1)"));
        }
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(invalid(
                "stop",
                format!("{} strings (at most {MAX_STOP_STRINGS})", self.stop.len()),
            ));
        }
        if let Some(i) = self.stop.iter().position(String::is_empty) {
            return Err(invalid("stop", format!("stop string {i} is empty")));
        }
        Ok(())
    }

    /// Whether tokens are chosen by arg-max (no randomness).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// Index of the largest value, ties to the lowest index. NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

/// The seeded sampler for one sequence (see the module docs for the exact procedure).
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha20Rng,
    scratch: Vec<f32>,
    /// The radix sort's second buffer, kept between steps.
    radix_scratch: Vec<(u32, f32)>,
}

impl Sampler {
    /// Validates `params` and seeds the random stream with `params.seed`.
    pub fn new(params: &SamplingParams) -> Result<Sampler> {
        params.validate()?;
        Ok(Sampler {
            params: params.clone(),
            rng: ChaCha20Rng::seed_from_u64(params.seed),
            scratch: Vec::new(),
            radix_scratch: Vec::new(),
        })
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits` given the `context` (prompt + output so far,
    /// used only by the repetition penalty). Errors on empty or non-finite logits
    /// (`-inf` is allowed: a masked token).
    pub fn sample(&mut self, logits: &[f32], context: &[u32]) -> Result<u32> {
        Ok(self.decide(logits, context, None)?.token)
    }

    /// The auditor's replay of one step: samples exactly as [`Self::sample`] does (the
    /// random stream advances the same way, so later steps stay in step whatever the
    /// result) and says how far `claimed` was from being the choice ([`Replay`]).
    pub fn replay(&mut self, logits: &[f32], context: &[u32], claimed: u32) -> Result<Replay> {
        self.decide(logits, context, Some(claimed))
    }

    fn decide(&mut self, logits: &[f32], context: &[u32], claimed: Option<u32>) -> Result<Replay> {
        if logits.is_empty() {
            return Err(InferenceError::Compute("empty logits".into()));
        }
        if let Some(i) = logits
            .iter()
            .position(|v| v.is_nan() || *v == f32::INFINITY)
        {
            return Err(InferenceError::Compute(format!(
                "logit {i} is {} (not finite)",
                logits[i]
            )));
        }
        if logits.iter().all(|v| *v == f32::NEG_INFINITY) {
            return Err(InferenceError::Compute("every logit is -inf".into()));
        }
        let p = &self.params;
        let logits: &[f32] = if p.repetition_penalty != 1.0 {
            self.scratch.clear();
            self.scratch.extend_from_slice(logits);
            let window = &context[context.len().saturating_sub(REPETITION_WINDOW)..];
            let mut seen: Vec<u32> = window
                .iter()
                .copied()
                .filter(|&t| (t as usize) < logits.len())
                .collect();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                let l = &mut self.scratch[t as usize];
                if *l > 0.0 {
                    *l /= p.repetition_penalty;
                } else {
                    *l *= p.repetition_penalty;
                }
            }
            &self.scratch
        } else {
            logits
        };
        let claimed_logit = claimed.and_then(|c| logits.get(c as usize).copied());
        if p.is_greedy() {
            let token = argmax(logits);
            let gap = match (claimed, claimed_logit) {
                (Some(c), _) if c == token => 0.0,
                (_, Some(l)) if l != f32::NEG_INFINITY => {
                    f64::from(logits[token as usize]) - f64::from(l)
                }
                _ => f64::INFINITY,
            };
            return Ok(Replay { token, gap });
        }
        let order = by_logit_descending;
        let mut cands: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| **l != f32::NEG_INFINITY)
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if p.top_k > 0 && p.top_k < cands.len() {
            cands.select_nth_unstable_by(p.top_k - 1, order);
            cands.truncate(p.top_k);
            cands.sort_unstable_by(order);
        } else {
            // Still in id order: the whole vocabulary, sorted by a radix pass (the same
            // order as `order`, several times faster on 50k candidates).
            sort_by_logit_descending(&mut cands, &mut self.radix_scratch);
        }
        let max = cands[0].1 as f64;
        let temp = p.temperature as f64;
        let weights: Vec<f64> = cands
            .iter()
            .map(|&(_, l)| ((l as f64 - max) / temp).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut kept = weights.len();
        let mut kept_mass = total;
        if p.top_p < 1.0 {
            let target = p.top_p as f64 * total;
            let mut acc = 0.0;
            for (i, w) in weights.iter().enumerate() {
                acc += w;
                if acc >= target {
                    kept = i + 1;
                    kept_mass = acc;
                    break;
                }
            }
        }
        let u: f64 = self.rng.random::<f64>() * kept_mass;
        let mut acc = 0.0;
        let mut token = cands[kept - 1].0;
        // The claimed token's slice of the cumulative weights, [lo, hi).
        let mut claimed_slice = None;
        let mut chosen = false;
        for (i, w) in weights[..kept].iter().enumerate() {
            let lo = acc;
            acc += w;
            if !chosen && acc > u {
                token = cands[i].0;
                chosen = true;
            }
            if Some(cands[i].0) == claimed {
                claimed_slice = Some((lo, acc));
            }
            if chosen && (claimed.is_none() || claimed_slice.is_some()) {
                break;
            }
        }
        let gap = match claimed_slice {
            _ if Some(token) == claimed => 0.0,
            Some((lo, hi)) => {
                let d = if u < lo { lo - u } else { u - hi };
                d.max(0.0) / kept_mass
            }
            None => f64::INFINITY,
        };
        Ok(Replay { token, gap })
    }
}

/// The candidates' order: logit descending (`f32::total_cmp`), ties by id ascending.
pub(crate) fn by_logit_descending(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Sorts `(id, logit)` pairs given in ascending id order by logit descending
/// (`f32::total_cmp`), ties by id ascending: a stable least-significant-digit radix sort
/// on a key whose unsigned order is the reverse of `total_cmp`'s, so equal logits keep
/// their id order. Short inputs use the comparison sort (same result).
fn sort_by_logit_descending(cands: &mut Vec<(u32, f32)>, scratch: &mut Vec<(u32, f32)>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    debug_assert!(cands.windows(2).all(|w| w[0].0 < w[1].0), "ids ascending");
    if cands.len() < 4 * BUCKETS {
        cands.sort_unstable_by(by_logit_descending);
        return;
    }
    // `total_cmp`'s order as unsigned integers (negative values flipped whole, positive
    // ones above them), then reversed for descending.
    let key = |l: f32| {
        let b = l.to_bits();
        !(if b & 0x8000_0000 != 0 {
            !b
        } else {
            b | 0x8000_0000
        })
    };
    scratch.clear();
    scratch.resize(cands.len(), (0, 0.0));
    let (mut src, mut dst) = (std::mem::take(cands), std::mem::take(scratch));
    for shift in (0..32).step_by(BITS as usize) {
        let digit = |l: f32| ((key(l) >> shift) as usize) & (BUCKETS - 1);
        let mut start = [0usize; BUCKETS];
        for &(_, l) in &src {
            start[digit(l)] += 1;
        }
        if start.contains(&src.len()) {
            continue; // one bucket: this digit is the same everywhere
        }
        let mut sum = 0;
        for c in start.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for &item in &src {
            let d = digit(item.1);
            dst[start[d]] = item;
            start[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    *cands = src;
    *scratch = dst;
}

/// One replayed sampling step ([`Sampler::replay`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    /// What the sampler picks.
    pub token: u32,
    /// How far the claimed token was from being picked; 0 when it is `token`. Greedy: the
    /// winning logit minus the claimed one (after the repetition penalty). Sampled: the
    /// distance of the random draw from the claimed token's slice of the cumulative
    /// distribution, as a fraction of the kept probability mass. Infinite when the claimed
    /// token could not be chosen at all (masked, outside top-k/top-p, or out of range).
    pub gap: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_order_is_the_comparison_order() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::MAX,
            f32::MIN,
            1e-45,
            -1e-45,
            f32::NEG_INFINITY,
        ];
        for (case, n) in [10usize, 9000, 49152, 50000].into_iter().enumerate() {
            let mut cands: Vec<(u32, f32)> = (0..n as u32)
                .map(|i| {
                    let l = match rng.random_range(0..10) {
                        0 => specials[rng.random_range(0..specials.len())],
                        // Few distinct values: many ties, broken by id.
                        1..=3 => rng.random_range(-4..4) as f32 * 0.5,
                        _ => rng.random_range(-30.0f32..30.0),
                    };
                    (i, l)
                })
                .collect();
            let mut want = cands.clone();
            want.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut scratch = Vec::new();
            sort_by_logit_descending(&mut cands, &mut scratch);
            let same = cands.len() == want.len()
                && cands
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
            assert!(same, "case {case} ({n} candidates)");
        }
    }

    #[test]
    fn argmax_ties_go_to_lowest_id() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.5]), 1);
    }

    #[test]
    fn greedy_ignores_seed_and_penalty_applies() {
        let mut s = Sampler::new(&SamplingParams::default()).unwrap();
        assert_eq!(s.sample(&[0.0, 2.0, 1.9], &[]).unwrap(), 1);
        let p = SamplingParams {
            repetition_penalty: 2.0,
            ..Default::default()
        };
        let mut s = Sampler::new(&p).unwrap();
        // 2.0 / 2 = 1.0 < 1.9
        assert_eq!(s.sample(&[0.0, 2.0, 1.9], &[1]).unwrap(), 2);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_respects_top_k() {
        let logits: Vec<f32> = (0..100).map(|i| (i % 7) as f32 * 0.3).collect();
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 5,
            seed: 42,
            ..Default::default()
        };
        let run = |p: &SamplingParams| {
            let mut s = Sampler::new(p).unwrap();
            (0..50)
                .map(|_| s.sample(&logits, &[]).unwrap())
                .collect::<Vec<_>>()
        };
        let a = run(&p);
        assert_eq!(a, run(&p));
        // top-5 by (logit desc, id asc): the five lowest ids with i % 7 == 6.
        let allowed = [6, 13, 20, 27, 34];
        assert!(a.iter().all(|t| allowed.contains(t)), "{a:?}");
        let b = run(&SamplingParams { seed: 43, ..p });
        assert_ne!(a, b);
    }

    #[test]
    fn replay_picks_what_sample_picks_and_measures_the_gap() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.2).collect();
        for (temperature, top_k) in [(0.0, 0), (0.8, 0), (1.0, 5)] {
            let p = SamplingParams {
                temperature,
                top_k,
                repetition_penalty: 1.3,
                seed: 11,
                ..Default::default()
            };
            let (mut a, mut b) = (Sampler::new(&p).unwrap(), Sampler::new(&p).unwrap());
            for step in 0..40u32 {
                let context = [step % 50, 3];
                let want = a.sample(&logits, &context).unwrap();
                // Claim something else every other step: the stream must not drift.
                let claimed = if step % 2 == 0 { want } else { (want + 1) % 50 };
                let r = b.replay(&logits, &context, claimed).unwrap();
                assert_eq!(r.token, want, "t={temperature} step {step}");
                if claimed == want {
                    assert_eq!(r.gap, 0.0);
                } else {
                    assert!(r.gap > 0.0, "t={temperature} step {step}: {r:?}");
                }
            }
        }
        // Greedy gap is the logit difference; a token outside top-k cannot be chosen.
        let mut g = Sampler::new(&SamplingParams::default()).unwrap();
        let r = g.replay(&[0.0, 2.0, 1.5], &[], 2).unwrap();
        assert_eq!((r.token, r.gap), (1, 0.5));
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        };
        let r = Sampler::new(&p)
            .unwrap()
            .replay(&[0.0, 2.0, 1.5], &[], 2)
            .unwrap();
        assert_eq!(r.token, 1);
        assert!(r.gap.is_infinite());
        assert!(g.replay(&[0.0, 2.0], &[], 9).unwrap().gap.is_infinite());
    }

    #[test]
    fn tiny_top_p_is_greedy() {
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 1e-6,
            seed: 7,
            ..Default::default()
        };
        let mut s = Sampler::new(&p).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&[0.1, 0.2, 0.15], &[]).unwrap(), 1);
        }
    }

    #[test]
    fn non_finite_logits_are_errors() {
        let mut s = Sampler::new(&SamplingParams::default()).unwrap();
        assert!(s.sample(&[0.0, f32::NAN], &[]).is_err());
        assert!(s.sample(&[], &[]).is_err());
        assert!(s.sample(&[f32::NEG_INFINITY; 3], &[]).is_err());
    }
}
