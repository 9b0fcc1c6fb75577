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
//!
//! The generation logic (checks, sampling, stop conditions, timings) lives in
//! [`Sequence`], a generation a caller advances one forward at a time; [`generate`] and
//! [`generate_chunked`] run one alone, and [`crate::batch`] runs many in one batched
//! forward per step, with the same results bit for bit.

use crate::error::{InferenceError, Result};
use crate::model::{BatchItem, ForwardOutput, KvCache, Model, Output};
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
///
/// This is a [`Sequence`] run alone, one forward per chunk or token: the same generation
/// logic a scheduler batching many sequences ([`crate::batch`]) runs.
pub fn generate_chunked(
    model: &Model,
    prompt_ids: &[u32],
    params: &SamplingParams,
    eos_ids: &[u32],
    decode: Option<Decode<'_>>,
    mut prefill: Prefill<impl FnMut(usize) -> ControlFlow<()>>,
    mut on_token: impl FnMut(&Step<'_>) -> ControlFlow<()>,
) -> Result<Generation> {
    let mut seq = Sequence::new(model, prompt_ids, params, eos_ids, decode)?;
    let threads = candle_core::utils::get_num_threads();
    let chunk = prefill.chunk.max(1);
    while !seq.is_finished() {
        if seq.is_prefilling() && (prefill.check)(seq.prefilled()).is_break() {
            seq.cancel();
            break;
        }
        let out = {
            let item = seq
                .batch_item(chunk)
                .expect("an unfinished sequence has work");
            let (tokens, start) = (item.tokens, item.start_pos);
            model.forward_with_threads(tokens, start, item.cache, item.output, threads)?
        };
        if let Progress::Token { .. } = seq.absorb(out)? {
            let step = seq.last_step().expect("a token was just sampled");
            if on_token(&step).is_break() {
                seq.cancel();
            }
        }
    }
    Ok(seq.generation().expect("the sequence finished"))
}

/// What [`Sequence::absorb`] made of a forward output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A prefill chunk ran: `done` prompt tokens are in the cache, more remain.
    Prefilled { done: usize },
    /// Output token `index` was sampled ([`Sequence::last_step`] has its logits and hidden
    /// state); `finished` says why the sequence ended with it, if it did.
    Token {
        index: usize,
        token: u32,
        finished: Option<FinishReason>,
    },
}

/// One generation that a caller advances step by step: the state [`generate`] keeps
/// (prompt, sampler with its seeded stream, EOS and stop ids, stop strings, `max_tokens`,
/// KV cache, output so far, finish reason, timings), without the loop. A scheduler asks it
/// for its next tokens ([`Sequence::batch_item`]: a prefill chunk, or the last sampled
/// token), runs them (alone or in a [`Model::forward_batch`] with other sequences), and
/// hands the output back ([`Sequence::absorb`]), which samples the next token and decides
/// whether generation ends. [`generate_chunked`] is this run alone; since the forward is
/// batch-invariant, a sequence gives the same bits either way.
///
/// Timings ([`Generation::prefill_secs`], `decode_secs`) are wall time from its first
/// forward to the end of its prefill, and from there to its end (or to now): in a batch
/// they include the other sequences' share of each pass.
pub struct Sequence<'a> {
    sampler: Sampler,
    eos_ids: Vec<u32>,
    decode: Option<Decode<'a>>,
    cache: KvCache,
    /// The prompt, then every output id.
    context: Vec<u32>,
    prompt_len: usize,
    /// Cache length expected after the forward of the last [`Sequence::batch_item`].
    in_flight: Option<usize>,
    /// The output that produced the last sampled token.
    last: Option<ForwardOutput>,
    finish: Option<FinishReason>,
    stop_string: Option<String>,
    /// A sampling or bookkeeping error ended it without a finish reason.
    failed: bool,
    started: Option<Instant>,
    prefill_end: Option<Instant>,
    ended: Option<Instant>,
}

impl std::fmt::Debug for Sequence<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence")
            .field("prompt_len", &self.prompt_len)
            .field("prefilled", &self.prefilled())
            .field("output_ids", &self.output_ids())
            .field("finish", &self.finish)
            .finish_non_exhaustive()
    }
}

impl<'a> Sequence<'a> {
    /// A generation of `prompt_ids` with `params` on `model` (arguments as [`generate`]'s),
    /// with an empty cache. Makes the checks [`generate`] makes before any compute, with
    /// the same errors.
    pub fn new(
        model: &Model,
        prompt_ids: &[u32],
        params: &SamplingParams,
        eos_ids: &[u32],
        decode: Option<Decode<'a>>,
    ) -> Result<Self> {
        let sampler = Sampler::new(params)?;
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
        let mut context = Vec::with_capacity(prompt_ids.len() + params.max_tokens.min(4096));
        context.extend_from_slice(prompt_ids);
        Ok(Sequence {
            sampler,
            eos_ids: eos_ids.to_vec(),
            decode,
            cache: model.new_cache(),
            context,
            prompt_len: prompt_ids.len(),
            in_flight: None,
            last: None,
            finish: None,
            stop_string: None,
            failed: false,
            started: None,
            prefill_end: None,
            ended: None,
        })
    }

    pub fn params(&self) -> &SamplingParams {
        self.sampler.params()
    }

    pub fn prompt_ids(&self) -> &[u32] {
        &self.context[..self.prompt_len]
    }

    /// Every output id so far, including one that ended generation.
    pub fn output_ids(&self) -> &[u32] {
        &self.context[self.prompt_len..]
    }

    /// Prompt tokens in the cache.
    pub fn prefilled(&self) -> usize {
        self.cache.len().min(self.prompt_len)
    }

    /// Whether prompt tokens remain to run.
    pub fn is_prefilling(&self) -> bool {
        self.cache.len() < self.prompt_len
    }

    /// Whether it ended (finish reason set, or an error from [`Sequence::absorb`]).
    pub fn is_finished(&self) -> bool {
        self.finish.is_some() || self.failed
    }

    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// The KV cache (positions of the prompt and output run so far).
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// The tokens its next forward must run: the next prefill chunk (at most
    /// `max_prefill` prompt tokens, at least 1) while prefilling, else the last sampled
    /// token; empty once finished.
    pub fn next_tokens(&self, max_prefill: usize) -> &[u32] {
        if self.is_finished() {
            return &[];
        }
        let held = self.cache.len();
        let end = if held < self.prompt_len {
            held + max_prefill.max(1).min(self.prompt_len - held)
        } else {
            self.context.len()
        };
        &self.context[held..end]
    }

    /// Its next forward as a [`BatchItem`] ([`Sequence::next_tokens`]`(max_prefill)`, its
    /// cache, the last row), for [`Model::forward_batch`] or alone; `None` once finished.
    /// Hand the output to [`Sequence::absorb`].
    pub fn batch_item(&mut self, max_prefill: usize) -> Option<BatchItem<'_>> {
        let n = self.next_tokens(max_prefill).len();
        if n == 0 {
            return None;
        }
        let held = self.cache.len();
        self.in_flight = Some(held + n);
        self.started.get_or_insert_with(Instant::now);
        Some(BatchItem {
            tokens: &self.context[held..held + n],
            start_pos: held,
            cache: &mut self.cache,
            output: Output::Last,
        })
    }

    /// Takes the output of the forward of its last [`Sequence::batch_item`]: after a
    /// prefill chunk that leaves prompt tokens, only records progress; else samples the
    /// next token from the last row's logits and decides whether generation ends (EOS or
    /// stop id, stop string, `max_tokens`, in that order, as [`generate`] does).
    ///
    /// `InvalidParameter("output")` when no forward of its item ran since its last
    /// output. A sampling error ends the sequence (it is then finished, with no reason).
    pub fn absorb(&mut self, out: ForwardOutput) -> Result<Progress> {
        let expected = self.in_flight.take();
        if self.is_finished() || expected != Some(self.cache.len()) || out.rows == 0 {
            return Err(InferenceError::InvalidParameter {
                name: "output",
                detail: "no forward of this sequence's item ran since its last output".into(),
            });
        }
        if self.is_prefilling() {
            return Ok(Progress::Prefilled {
                done: self.cache.len(),
            });
        }
        let now = Instant::now();
        self.prefill_end.get_or_insert(now);
        let token = match self.sampler.sample(out.last_logits(), &self.context) {
            Ok(t) => t,
            Err(e) => {
                self.failed = true;
                self.ended = Some(now);
                return Err(e);
            }
        };
        self.context.push(token);
        self.last = Some(out);
        let index = self.output_ids().len() - 1;
        let params = self.sampler.params();
        let finished = if self.eos_ids.contains(&token) || params.stop_token_ids.contains(&token) {
            Some(FinishReason::Stop)
        } else if let (Some(decode), false) = (self.decode, params.stop.is_empty()) {
            let text = decode(self.output_ids());
            match params.stop.iter().find(|s| text.contains(s.as_str())) {
                Some(s) => {
                    self.stop_string = Some(s.clone());
                    Some(FinishReason::StopString)
                }
                None => None,
            }
        } else {
            None
        };
        let finished =
            finished.or((index + 1 >= params.max_tokens).then_some(FinishReason::Length));
        if let Some(f) = finished {
            self.finish = Some(f);
            self.ended = Some(Instant::now());
        }
        Ok(Progress::Token {
            index,
            token,
            finished,
        })
    }

    /// The last sampled token with the logits and hidden state it came from (`None` before
    /// the first, or after [`Sequence::take_last_output`]).
    pub fn last_step(&self) -> Option<Step<'_>> {
        let out = self.last.as_ref()?;
        let index = self.output_ids().len().checked_sub(1)?;
        Some(Step {
            index,
            token: self.output_ids()[index],
            logits: out.last_logits(),
            hidden: out.last_hidden(),
        })
    }

    /// Moves out the forward output the last token was sampled from (one row: see
    /// [`Sequence::last_step`]), saving a copy of its logits and hidden state.
    pub fn take_last_output(&mut self) -> Option<ForwardOutput> {
        self.last.take()
    }

    /// Ends it now with [`FinishReason::Cancelled`] (whatever it was: as [`generate`]'s
    /// `on_token` breaking). Its output so far stays.
    pub fn cancel(&mut self) {
        self.finish = Some(FinishReason::Cancelled);
        self.stop_string = None;
        self.in_flight = None;
        self.ended.get_or_insert_with(Instant::now);
    }

    /// The result, once finished with a reason (`None` before, or after a sampling error).
    pub fn generation(&self) -> Option<Generation> {
        let finish_reason = self.finish?;
        let end = self.ended.unwrap_or_else(Instant::now);
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let (prefill_secs, decode_secs) = match (self.started, self.prefill_end) {
            (Some(s), Some(p)) => (secs(s, p), secs(p, end)),
            (Some(s), None) => (secs(s, end), 0.0),
            _ => (0.0, 0.0),
        };
        Some(Generation {
            prompt_tokens: self.prompt_len,
            output_ids: self.output_ids().to_vec(),
            finish_reason,
            stop_string: self.stop_string.clone(),
            prefill_secs,
            decode_secs,
        })
    }
}
