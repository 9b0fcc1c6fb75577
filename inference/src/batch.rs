//! Continuous batching: many generations advanced together, one batched forward per step.
//!
//! A [`Batch`] holds [`Sequence`]s (each one generation's state: see
//! [`crate::generate::Sequence`]). Each [`Batch::step`] runs one
//! [`Model::forward_batch`] over every sequence that has work: one token for each
//! sequence that is decoding, and chunks of the prompts still being prefilled, from a
//! per-step budget of prompt tokens handed out in join order (so a long prompt is
//! prefilled in chunks interleaved with the others' decode steps). Sequences join with
//! [`Batch::add`] between steps and leave when they finish or with [`Batch::remove`] /
//! [`Batch::cancel`] (a client that left, a deadline), at any step.
//!
//! Batch invariance: the forward computes every row on its own, with the same code as
//! when it runs alone, and each sequence samples from its own seeded stream; so a
//! sequence's tokens, logits and hidden states (hence its activation fingerprint) are
//! bit-identical to [`crate::generate::generate_chunked`] on it alone, whatever else runs
//! beside it, where it sits in the batch, when it joined, how its prompt was chunked and
//! how many threads run the pass (tests/batch_invariance.rs).
//!
//! Metering: the CPU time of each pass lands on the calling thread ([`crate::metering`]);
//! [`Batch::last_step_tokens`] says how many tokens each sequence ran in the last step, to
//! split it.
//!
//! No threads or channels here: a runtime drives [`Batch::step`] from its engine thread.

use crate::error::{InferenceError, Result};
use crate::generate::{Generation, Progress, Sequence};
use crate::model::{Model, MAX_BATCH_ITEMS, MAX_BATCH_ROWS};

/// A sequence's handle in its [`Batch`] (never reused within one batch).
pub type SeqId = u64;

/// What happened to one sequence in a [`Batch::step`].
#[derive(Debug)]
pub enum Event {
    /// A prefill chunk ran: `done` of the `prompt` tokens are in its cache.
    Prefilled { done: usize, prompt: usize },
    /// Output token `index` was sampled, from `logits` (raw, before penalty and
    /// temperature) computed from the final `hidden` state (what the activation
    /// fingerprint takes).
    Token {
        index: usize,
        token: u32,
        logits: Vec<f32>,
        hidden: Vec<f32>,
    },
    /// It ended (after its last `Token` event in the same step) and left the batch.
    Finished(Generation),
    /// Its forward or sampling failed; it left the batch.
    Failed(InferenceError),
}

/// Sequences advanced together on one model (see the module docs).
pub struct Batch<'a> {
    model: &'a Model,
    threads: usize,
    prefill_budget: usize,
    /// In join order.
    seqs: Vec<(SeqId, Sequence<'a>)>,
    next_id: SeqId,
    last_tokens: Vec<(SeqId, usize)>,
}

impl<'a> Batch<'a> {
    /// An empty batch on `model`, its passes on `threads` threads, prefilling at most
    /// `prefill_budget` prompt tokens per step in all (at least 1; also bounded by what
    /// [`MAX_BATCH_ROWS`] leaves after the decoding sequences).
    pub fn new(model: &'a Model, threads: usize, prefill_budget: usize) -> Self {
        Batch {
            model,
            threads: threads.max(1),
            prefill_budget: prefill_budget.max(1),
            seqs: Vec::new(),
            next_id: 0,
            last_tokens: Vec::new(),
        }
    }

    /// Adds a sequence (made with [`Sequence::new`] on this batch's model); it takes part
    /// from the next step.
    pub fn add(&mut self, seq: Sequence<'a>) -> SeqId {
        let id = self.next_id;
        self.next_id += 1;
        self.seqs.push((id, seq));
        id
    }

    /// Takes a sequence out as it is (between steps); `None` if it is not in the batch.
    pub fn remove(&mut self, id: SeqId) -> Option<Sequence<'a>> {
        let i = self.seqs.iter().position(|(s, _)| *s == id)?;
        Some(self.seqs.remove(i).1)
    }

    /// Takes a sequence out and ends it with `FinishReason::Cancelled`; returns its
    /// result (output so far).
    pub fn cancel(&mut self, id: SeqId) -> Option<Generation> {
        let mut seq = self.remove(id)?;
        seq.cancel();
        seq.generation()
    }

    /// The model every sequence of this batch runs on.
    pub fn model(&self) -> &'a Model {
        self.model
    }

    pub fn get(&self, id: SeqId) -> Option<&Sequence<'a>> {
        self.seqs.iter().find(|(s, _)| *s == id).map(|(_, q)| q)
    }

    /// The ids of the sequences in the batch, in join order.
    pub fn ids(&self) -> Vec<SeqId> {
        self.seqs.iter().map(|(id, _)| *id).collect()
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Positions held in the KV caches of every sequence in the batch.
    pub fn cached_positions(&self) -> usize {
        self.seqs.iter().map(|(_, q)| q.cache().len()).sum()
    }

    /// How many tokens each sequence ran in the last [`Batch::step`] (its share of that
    /// pass's work, for splitting the metered CPU time).
    pub fn last_step_tokens(&self) -> &[(SeqId, usize)] {
        &self.last_tokens
    }

    /// One pass: every decoding sequence runs its last token, and prefilling sequences
    /// (in join order) run chunks of their prompts from the step's prefill budget; each
    /// then samples or records progress. Returns the events, in join order (a finished
    /// sequence's `Token` comes before its `Finished`). Sequences that finish or fail
    /// leave the batch.
    ///
    /// When more sequences decode than [`MAX_BATCH_ROWS`] (or [`MAX_BATCH_ITEMS`]) allow,
    /// the earliest joined run and the others wait for the next step.
    pub fn step(&mut self) -> Vec<(SeqId, Event)> {
        self.last_tokens.clear();
        let mut events = Vec::new();
        // Plan: how many tokens each sequence may run (None: it waits).
        let mut plan: Vec<Option<usize>> = vec![None; self.seqs.len()];
        let (mut rows, mut items) = (0, 0);
        for (p, (_, s)) in plan.iter_mut().zip(&self.seqs) {
            if !s.is_prefilling() && rows < MAX_BATCH_ROWS && items < MAX_BATCH_ITEMS {
                *p = Some(1);
                rows += 1;
                items += 1;
            }
        }
        let mut budget = self.prefill_budget.min(MAX_BATCH_ROWS - rows);
        for (p, (_, s)) in plan.iter_mut().zip(&self.seqs) {
            if budget == 0 || items == MAX_BATCH_ITEMS {
                break;
            }
            if s.is_prefilling() {
                let n = s.next_tokens(budget).len();
                *p = Some(n);
                budget -= n;
                items += 1;
            }
        }
        // The items, in join order (the order changes no result).
        let mut ran: Vec<usize> = Vec::new();
        let result = {
            let mut batch = Vec::new();
            for (i, ((id, s), p)) in self.seqs.iter_mut().zip(&plan).enumerate() {
                if let Some(item) = p.and_then(|n| s.batch_item(n)) {
                    self.last_tokens.push((*id, item.tokens.len()));
                    batch.push(item);
                    ran.push(i);
                }
            }
            self.model.forward_batch(&mut batch, self.threads)
        };
        let mut gone = vec![false; self.seqs.len()];
        match result {
            Ok(outs) => {
                for (&i, out) in ran.iter().zip(outs) {
                    let (id, seq) = &mut self.seqs[i];
                    match seq.absorb(out) {
                        Ok(Progress::Prefilled { done }) => events.push((
                            *id,
                            Event::Prefilled {
                                done,
                                prompt: seq.prompt_ids().len(),
                            },
                        )),
                        Ok(Progress::Token {
                            index,
                            token,
                            finished,
                        }) => {
                            let out = seq.take_last_output().expect("a token was just sampled");
                            events.push((
                                *id,
                                Event::Token {
                                    index,
                                    token,
                                    logits: out.logits,
                                    hidden: out.hidden,
                                },
                            ));
                            if finished.is_some() {
                                let g = seq.generation().expect("it finished");
                                events.push((*id, Event::Finished(g)));
                                gone[i] = true;
                            }
                        }
                        Err(e) => {
                            events.push((*id, Event::Failed(e)));
                            gone[i] = true;
                        }
                    }
                }
            }
            // One item was refused: that sequence leaves; nothing ran, so the others
            // run again next step.
            Err(InferenceError::BatchItem { index, source }) if index < ran.len() => {
                let i = ran[index];
                events.push((self.seqs[i].0, Event::Failed(*source)));
                gone[i] = true;
                self.last_tokens.clear();
            }
            Err(e) => {
                let msg = e.to_string();
                for &i in &ran {
                    let err = InferenceError::Compute(msg.clone());
                    events.push((self.seqs[i].0, Event::Failed(err)));
                    gone[i] = true;
                }
            }
        }
        let mut k = 0;
        self.seqs.retain(|_| {
            k += 1;
            !gone[k - 1]
        });
        events
    }

    /// Steps until every sequence has finished or failed, passing each event to
    /// `on_event`.
    pub fn run(&mut self, mut on_event: impl FnMut(SeqId, Event)) {
        while !self.is_empty() {
            for (id, e) in self.step() {
                on_event(id, e);
            }
        }
    }
}

/// Runs `seqs` together to the end on `model` (a convenience for tests and benchmarks):
/// their results in the same order.
pub fn run_all<'a>(
    model: &'a Model,
    seqs: Vec<Sequence<'a>>,
    threads: usize,
    prefill_budget: usize,
) -> Result<Vec<Generation>> {
    let mut batch = Batch::new(model, threads, prefill_budget);
    let ids: Vec<SeqId> = seqs.into_iter().map(|s| batch.add(s)).collect();
    let mut results: Vec<Option<Result<Generation>>> = ids.iter().map(|_| None).collect();
    batch.run(|id, e| match e {
        Event::Finished(g) => results[id as usize] = Some(Ok(g)),
        Event::Failed(e) => results[id as usize] = Some(Err(e)),
        _ => {}
    });
    results
        .into_iter()
        .map(|r| r.expect("every sequence finishes or fails"))
        .collect()
}
