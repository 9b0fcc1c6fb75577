//! Teacher-forced scoring: one forward pass over prompt + claimed output.
//!
//! For output token `j` (absolute position `P + j`, `P` = prompt length) the distribution
//! that produced it is the one computed at position `P + j - 1`, so the pass runs over
//! `prompt + output[..n-1]` and reads rows `P-1 .. P+n-1`. The hidden states returned are
//! those same rows (after the output norm): exactly the states generation has in hand
//! when it samples each token (see [`crate::generate::Step`]).

use crate::error::{InferenceError, Result};
use crate::model::{ForwardOutput, Model, Output};

/// One output position.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredToken {
    /// The claimed token.
    pub token: u32,
    /// Its logit.
    pub logit: f32,
    /// How many tokens the arg-max would prefer to it: strictly larger logits, plus equal
    /// logits with a lower id. 0 = the greedy choice.
    pub rank: usize,
    /// The `top_k` highest `(id, logit)`, logit descending, ties by id ascending.
    pub top: Vec<(u32, f32)>,
}

/// The result of [`score`].
#[derive(Debug, Clone)]
pub struct Scored {
    pub prompt_tokens: usize,
    /// One entry per output token.
    pub positions: Vec<ScoredToken>,
    /// Final hidden states (after the output norm) that produced each output token.
    pub hidden: Vec<Vec<f32>>,
}

/// Scores `output_ids` as the continuation of `prompt_ids` with one forward pass.
pub fn score(
    model: &Model,
    prompt_ids: &[u32],
    output_ids: &[u32],
    top_k: usize,
) -> Result<Scored> {
    score_with(model, prompt_ids, output_ids, top_k, |_, _| {})
}

/// Like [`score`], and hands each position's full logits to `visit(j, logits)` (for
/// replaying a seeded sampler without keeping `n × vocab` floats).
pub fn score_with(
    model: &Model,
    prompt_ids: &[u32],
    output_ids: &[u32],
    top_k: usize,
    visit: impl FnMut(usize, &[f32]),
) -> Result<Scored> {
    let threads = candle_core::utils::get_num_threads();
    score_on_threads(model, prompt_ids, output_ids, top_k, threads, visit)
}

/// Like [`score_with`], with the forward on `threads` threads (the results do not depend
/// on it; an auditor running several jobs at once gives each one thread).
pub fn score_on_threads(
    model: &Model,
    prompt_ids: &[u32],
    output_ids: &[u32],
    top_k: usize,
    threads: usize,
    mut visit: impl FnMut(usize, &[f32]),
) -> Result<Scored> {
    let out = teacher_forced(model, prompt_ids, output_ids, threads)?;
    let (p, n) = (prompt_ids.len(), output_ids.len());
    let mut positions = Vec::with_capacity(n);
    let mut hidden = Vec::with_capacity(n);
    for (j, &token) in output_ids.iter().enumerate() {
        let logits = out.logits_row(j);
        visit(j, logits);
        let logit = logits[token as usize];
        let rank = logits
            .iter()
            .enumerate()
            .filter(|&(i, &l)| l > logit || (l == logit && (i as u32) < token))
            .count();
        positions.push(ScoredToken {
            token,
            logit,
            rank,
            top: top_k_of(logits, top_k),
        });
        hidden.push(out.hidden_row(j).to_vec());
    }
    Ok(Scored {
        prompt_tokens: p,
        positions,
        hidden,
    })
}

/// The checks and the one forward pass of teacher forcing: returns rows `P-1 .. P+n-1` of
/// a pass over `prompt + output[..n-1]`, row `j` being the one that produced `output[j]`.
pub(crate) fn teacher_forced(
    model: &Model,
    prompt_ids: &[u32],
    output_ids: &[u32],
    threads: usize,
) -> Result<ForwardOutput> {
    let c = model.config();
    if prompt_ids.is_empty() {
        return Err(InferenceError::InvalidParameter {
            name: "prompt_ids",
            detail: "the prompt is empty".into(),
        });
    }
    if output_ids.is_empty() {
        return Err(InferenceError::InvalidParameter {
            name: "output_ids",
            detail: "nothing to score".into(),
        });
    }
    for (name, ids) in [("prompt_ids", prompt_ids), ("output_ids", output_ids)] {
        if let Some(t) = ids.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(InferenceError::InvalidParameter {
                name,
                detail: format!("token {t} is outside the vocabulary ({})", c.vocab_size),
            });
        }
    }
    let (p, n) = (prompt_ids.len(), output_ids.len());
    if p.saturating_add(n) > c.context_length {
        return Err(InferenceError::ContextOverflow {
            prompt: p,
            max_new_tokens: n,
            context: c.context_length,
        });
    }
    let mut tokens = Vec::with_capacity(p + n - 1);
    tokens.extend_from_slice(prompt_ids);
    tokens.extend_from_slice(&output_ids[..n - 1]);
    let mut cache = model.new_cache();
    model.forward_with_threads(
        &tokens,
        0,
        &mut cache,
        Output::Rows(p - 1..p + n - 1),
        threads.max(1),
    )
}

/// The `k` highest `(id, logit)`, logit descending, ties by id ascending.
pub fn top_k_of(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let order = crate::sampling::by_logit_descending;
    let mut all: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, l))
        .collect();
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, order);
        all.truncate(k);
    }
    all.sort_unstable_by(order);
    all
}
