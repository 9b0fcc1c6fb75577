//! Generation: a prefill over the prompt, then one token at a time through the KV cache.
//!
//! The prefill may run in chunks ([`generate_chunked`]) with a check between chunks, so a
//! caller can stop a long prompt at its deadline or when its client left. The forward is
//! batch-invariant (every row is computed on its own), so chunking changes no bit of the
//! logits, hidden states or output.
//!
//! `output_ids` include the token that ended generation (an EOS or stop id, or the token
//! that completed a stop string), because the auditor checks that the model chose to stop.
//! Stop strings are matched on text, so they need the tokenizer's decode: `generate`
//! takes it as a plain function and knows nothing of the tokenizer itself.

use crate::error::{InferenceError, Result};
use crate::model::{Model, Output};
use crate::sampling::{Sampler, SamplingParams};
use std::ops::ControlFlow;
use std::time::Instant;

/// Turns output ids into text (the tokenizer's decode), for stop strings.
pub type Decode<'a> = &'a dyn Fn(&[u32]) -> String;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An EOS id or one of `stop_token_ids` was generated (it is the last output id).
    Stop,
    /// `max_tokens` were generated.
    Length,
    /// The decoded output contains one of the stop strings (see `Generation::stop_string`).
    StopString,
    /// The `on_token` callback asked to stop.
    Cancelled,
}

/// The result of [`generate`].
#[derive(Debug, Clone)]
pub struct Generation {
    pub prompt_tokens: usize,
    /// Every generated id, including the one that ended generation.
    pub output_ids: Vec<u32>,
    pub finish_reason: FinishReason,
    /// The stop string matched when `finish_reason` is `StopString`.
    pub stop_string: Option<String>,
    /// Wall time of the prompt prefill.
    pub prefill_secs: f64,
    /// Wall time of everything after the prefill (decode steps and sampling).
    pub decode_secs: f64,
}

/// One generated token, handed to the `on_token` callback.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// 0-based index among the output tokens.
    pub index: usize,
    pub token: u32,
    /// The raw logits the token was sampled from (before penalty and temperature).
    pub logits: &'a [f32],
    /// The final hidden state (after the output norm) that produced `logits`.
    pub hidden: &'a [f32],
}

/// Generates from `prompt_ids` with `params`.
///
/// - `eos_ids`: ids that end generation (the GGUF's `tokenizer.ggml.eos_token_id`, …),
///   joined with `params.stop_token_ids`.
/// - `decode`: turns output ids into text; required when `params.stop` is non-empty
///   (else `InvalidParameter("stop")`).
/// - `on_token`: called for every generated token; `ControlFlow::Break` ends generation
///   with `FinishReason::Cancelled`.
///
/// Errors before any compute: `InvalidParameter` for bad params, an empty prompt
/// (`prompt_ids`) or out-of-vocabulary ids; `ContextOverflow` when prompt + `max_tokens`
/// exceed the context length.
pub fn generate(
    model: &Model,
    prompt_ids: &[u32],
    params: &SamplingParams,
    eos_ids: &[u32],
    decode: Option<Decode<'_>>,
    on_token: impl FnMut(&Step<'_>) -> ControlFlow<()>,
) -> Result<Generation> {
    generate_chunked(
        model,
        prompt_ids,
        params,
        eos_ids,
        decode,
        Prefill::whole(),
        on_token,
    )
}

/// How [`generate_chunked`] runs the prompt: in chunks of at most `chunk` tokens, asking
/// `check` before each chunk (with the number of prompt tokens already run) whether to go
/// on.
pub struct Prefill<C> {
    pub chunk: usize,
    pub check: C,
}

impl Prefill<fn(usize) -> ControlFlow<()>> {
    /// The whole prompt in one call of the forward (which still bounds its own passes at
    /// [`crate::model::MAX_CHUNK`] tokens), never stopped.
    pub fn whole() -> Self {
        Prefill {
            chunk: usize::MAX,
            check: |_| ControlFlow::Continue(()),
        }
    }
}

/// [`generate`] with the prompt run in chunks (`prefill.chunk` tokens, at least 1), and
/// `prefill.check` asked before each. When it breaks, generation ends before any token is
/// sampled: `FinishReason::Cancelled`, no output ids, `prefill_secs` the time spent. The
/// results are bit-identical to [`generate`]'s for any chunk size (the forward computes
/// every row on its own, whatever shares its pass).
pub fn generate_chunked(
    model: &Model,
    prompt_ids: &[u32],
    params: &SamplingParams,
    eos_ids: &[u32],
    decode: Option<Decode<'_>>,
    mut prefill: Prefill<impl FnMut(usize) -> ControlFlow<()>>,
    mut on_token: impl FnMut(&Step<'_>) -> ControlFlow<()>,
) -> Result<Generation> {
    let mut sampler = Sampler::new(params)?;
    let c = model.config();
    if prompt_ids.is_empty() {
        return Err(InferenceError::InvalidParameter {
            name: "prompt_ids",
            detail: "the prompt is empty".into(),
        });
    }
    if let Some(t) = prompt_ids.iter().find(|&&t| t as usize >= c.vocab_size) {
        return Err(InferenceError::InvalidParameter {
            name: "prompt_ids",
            detail: format!("token {t} is outside the vocabulary ({})", c.vocab_size),
        });
    }
    if let Some(t) = params
        .stop_token_ids
        .iter()
        .find(|&&t| t as usize >= c.vocab_size)
    {
        return Err(InferenceError::InvalidParameter {
            name: "stop_token_ids",
            detail: format!("token {t} is outside the vocabulary ({})", c.vocab_size),
        });
    }
    if !params.stop.is_empty() && decode.is_none() {
        return Err(InferenceError::InvalidParameter {
            name: "stop",
            detail: "stop strings need a decode function".into(),
        });
    }
    if prompt_ids.len().saturating_add(params.max_tokens) > c.context_length {
        return Err(InferenceError::ContextOverflow {
            prompt: prompt_ids.len(),
            max_new_tokens: params.max_tokens,
            context: c.context_length,
        });
    }

    let start = Instant::now();
    let mut cache = model.new_cache();
    let chunk = prefill.chunk.max(1);
    let mut done = 0;
    let mut out = None;
    while done < prompt_ids.len() {
        if (prefill.check)(done).is_break() {
            return Ok(Generation {
                prompt_tokens: prompt_ids.len(),
                output_ids: Vec::new(),
                finish_reason: FinishReason::Cancelled,
                stop_string: None,
                prefill_secs: start.elapsed().as_secs_f64(),
                decode_secs: 0.0,
            });
        }
        let end = done.saturating_add(chunk).min(prompt_ids.len());
        out = Some(model.forward(&prompt_ids[done..end], done, &mut cache, Output::Last)?);
        done = end;
    }
    let mut out = out.expect("the prompt is not empty (checked above)");
    let prefill_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();

    let mut context: Vec<u32> = prompt_ids.to_vec();
    let mut output_ids = Vec::new();
    let mut stop_string = None;
    let finish_reason = loop {
        let token = sampler.sample(out.last_logits(), &context)?;
        output_ids.push(token);
        context.push(token);
        let step = Step {
            index: output_ids.len() - 1,
            token,
            logits: out.last_logits(),
            hidden: out.last_hidden(),
        };
        if on_token(&step).is_break() {
            break FinishReason::Cancelled;
        }
        if eos_ids.contains(&token) || params.stop_token_ids.contains(&token) {
            break FinishReason::Stop;
        }
        if let (Some(decode), false) = (decode, params.stop.is_empty()) {
            let text = decode(&output_ids);
            if let Some(s) = params.stop.iter().find(|s| text.contains(s.as_str())) {
                stop_string = Some(s.clone());
                break FinishReason::StopString;
            }
        }
        if output_ids.len() >= params.max_tokens {
            break FinishReason::Length;
        }
        out = model.forward(&[token], cache.len(), &mut cache, Output::Last)?;
    };
    Ok(Generation {
        prompt_tokens: prompt_ids.len(),
        output_ids,
        finish_reason,
        stop_string,
        prefill_secs,
        decode_secs: start.elapsed().as_secs_f64(),
    })
}
