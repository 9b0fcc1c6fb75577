//! Re-executing one audited job: the checks behind `veritee-verify audit`.
//!
//! The transcript (opened with the auditor's key, and matched to its signed receipt by the
//! commitment) says what the runtime claims it did: the request it got, the prompt ids,
//! the output ids, the sampling parameters, the activation fingerprint and how the job
//! ended. The auditor re-derives or recomputes each with the attested model file:
//!
//! | check | how | fraud class when it fails |
//! |---|---|---|
//! | transcript | present, opens, its SHA-256 is the receipt's commitment | `transcript_withheld` |
//! | prompt | the request bytes hash to the receipt's request hash; re-parsed, rendered and tokenized they give the prompt ids; their sampling parameters are the ones run | `prompt_mismatch` |
//! | counts | the receipt's token counts are the transcript's | `count_inflation` |
//! | tokens | one teacher-forced pass; at every position the seeded sampler (arg-max when greedy) is replayed and must pick the claimed token, except at a near-tie ([`GREEDY_TIE_LOGITS`], [`SAMPLED_TIE_MASS`]) | `replayed_output` when the output is another request's, else `fabricated_tokens` when the activations agree, else see activations |
//! | activations | the fingerprint recomputed from the same pass against the claimed one ([`inference::fingerprint::check`]) | `model_substitution` when most positions fail ([`SUBSTITUTION_FRACTION`]), else `wrong_computation` |
//! | stop | the answer ends where the model, the request's stop strings or `max_tokens` end it, and not before | `truncation` (ended early) or `count_inflation` (went on past its end) |
//! | time | the claimed device time within the auditor's cost model | `time_inflation` |
//!
//! The thresholds are calibrated on honest CPU runs (see the README's audit section): the
//! CPU forward is bit-identical between generation and the auditor's pass, so every
//! honest job scores exactly 0; the margins leave room for a provider on other hardware.

use crate::cost_model::CostModel;
use attestation::receipt::ReceiptClaims;
use attestation::transcript::{JobEnd, Transcript};
use inference::chat::ChatTemplate;
use inference::fingerprint::{self, Fingerprint};
use inference::gguf::GgufFile;
use inference::model::Model;
use inference::request::{parse_chat_request, RequestLimits};
use inference::sampling::{Sampler, SamplingParams};
use inference::tokenizer::{StreamDecoder, Tokenizer};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;

/// Greedy near-tie: a claimed token whose logit is within this of the arg-max's is
/// accepted (another device's rounding can swap two almost equal logits).
pub const GREEDY_TIE_LOGITS: f64 = 0.05;
/// Sampled near-tie: a claimed token whose slice of the cumulative distribution is within
/// this fraction of the probability mass of the replayed draw is accepted.
pub const SAMPLED_TIE_MASS: f64 = 1e-3;
/// Activations that fail at this fraction of the output positions or more mean another
/// model computed them; fewer, a computation that went wrong part of the way.
pub const SUBSTITUTION_FRACTION: f64 = 0.5;
/// Most failing positions listed per finding (the count is always given).
const MAX_LISTED: usize = 32;

/// What a job is found to be, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudClass {
    TranscriptWithheld,
    PromptMismatch,
    CountInflation,
    ReplayedOutput,
    FabricatedTokens,
    ModelSubstitution,
    WrongComputation,
    Truncation,
    TimeInflation,
}

impl FraudClass {
    pub const ALL: [FraudClass; 9] = [
        FraudClass::TranscriptWithheld,
        FraudClass::PromptMismatch,
        FraudClass::CountInflation,
        FraudClass::ReplayedOutput,
        FraudClass::FabricatedTokens,
        FraudClass::ModelSubstitution,
        FraudClass::WrongComputation,
        FraudClass::Truncation,
        FraudClass::TimeInflation,
    ];

    pub fn code(self) -> &'static str {
        match self {
            FraudClass::TranscriptWithheld => "transcript_withheld",
            FraudClass::PromptMismatch => "prompt_mismatch",
            FraudClass::CountInflation => "count_inflation",
            FraudClass::ReplayedOutput => "replayed_output",
            FraudClass::FabricatedTokens => "fabricated_tokens",
            FraudClass::ModelSubstitution => "model_substitution",
            FraudClass::WrongComputation => "wrong_computation",
            FraudClass::Truncation => "truncation",
            FraudClass::TimeInflation => "time_inflation",
        }
    }

    pub fn from_code(code: &str) -> Option<FraudClass> {
        FraudClass::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// One failed check, with where and what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub class: FraudClass,
    /// `transcript`, `prompt`, `counts`, `tokens`, `activations`, `stop` or `time`.
    pub check: &'static str,
    pub detail: String,
    /// Output positions (0-based) where it failed, at most 32 listed.
    pub positions: Vec<usize>,
    /// How many positions failed in all.
    pub failing_positions: usize,
    /// The values behind the finding (per position, or the numbers compared).
    pub values: Value,
}

impl Finding {
    fn new(class: FraudClass, check: &'static str, detail: impl Into<String>) -> Self {
        Finding {
            class,
            check,
            detail: detail.into(),
            positions: Vec::new(),
            failing_positions: 0,
            values: Value::Null,
        }
    }

    fn with_values(mut self, values: Value) -> Self {
        self.values = values;
        self
    }
}

/// The scores of the re-execution, for calibration and the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    pub output_tokens: usize,
    pub greedy: bool,
    /// Positions where the replayed sampler disagreed beyond the near-tie margin.
    pub token_failures: usize,
    /// The largest gap at a position where the tokens agreed or tied (0 when exact).
    pub max_tie_gap: f64,
    /// Output positions whose activations failed the fingerprint check.
    pub activation_failures: usize,
    /// Claimed device milliseconds over the cost model's prediction (no cost model: none).
    pub time_ratio: Option<f64>,
}

/// The verdict on one re-executed job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobAudit {
    /// `None`: honest.
    pub class: Option<FraudClass>,
    pub findings: Vec<Finding>,
    pub scores: Scores,
    /// How the job ended, as the transcript says (`None` when there is no transcript).
    pub end: Option<JobEnd>,
}

impl JobAudit {
    fn from_findings(mut findings: Vec<Finding>, scores: Scores, end: Option<JobEnd>) -> Self {
        findings.sort_by_key(|f| f.class);
        JobAudit {
            class: findings.first().map(|f| f.class),
            findings,
            scores,
            end,
        }
    }

    pub fn withheld(detail: impl Into<String>) -> Self {
        JobAudit::from_findings(
            vec![Finding::new(
                FraudClass::TranscriptWithheld,
                "transcript",
                detail,
            )],
            Scores::default(),
            None,
        )
    }
}

/// Another audited job, for telling a replayed answer from a fabricated one.
pub struct EarlierOutput<'a> {
    pub job_id: [u8; 16],
    pub request_sha256: [u8; 32],
    pub transcript: &'a Transcript,
}

/// The model the receipts name, loaded for re-execution.
pub struct ReferenceModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    pub digest: [u8; 32],
    /// Threads of each re-execution's forward (the results do not depend on it).
    pub forward_threads: usize,
}

impl ReferenceModel {
    pub fn load(path: &Path) -> Result<Self, String> {
        let what = |e: &dyn std::fmt::Display| format!("model {}: {e}", path.display());
        let file = GgufFile::open(path).map_err(|e| what(&e))?;
        let tokenizer = Tokenizer::from_gguf(&file).map_err(|e| what(&e))?;
        let template = ChatTemplate::from_gguf(&file, &tokenizer).map_err(|e| what(&e))?;
        let model = Model::load(&file, &candle_core::Device::Cpu).map_err(|e| what(&e))?;
        Ok(ReferenceModel {
            digest: model.digest(),
            model,
            tokenizer,
            template,
            forward_threads: candle_core::utils::get_num_threads(),
        })
    }

    /// The same model with each re-execution's forward on `threads` threads.
    pub fn with_forward_threads(self, threads: usize) -> Self {
        ReferenceModel {
            forward_threads: threads.max(1),
            ..self
        }
    }

    /// Run every check on one job whose transcript opened. `receipt` is verified (its
    /// signature, key binding and chain) and `transcript` was decrypted with the auditor's
    /// key; `others` are the other audited jobs' outputs (for the replay check).
    pub fn audit(
        &self,
        receipt: &ReceiptClaims,
        transcript: &Transcript,
        cost: Option<&CostModel>,
        others: &[EarlierOutput<'_>],
    ) -> JobAudit {
        let mut findings = Vec::new();
        let mut scores = Scores {
            output_tokens: transcript.output_ids.len(),
            greedy: transcript.sampling.temperature == 0.0,
            ..Scores::default()
        };
        let end = Some(transcript.end);
        // The transcript must be the one the receipt commits to; anything else is as good
        // as no transcript.
        if transcript.commitment() != receipt.activation_commitment
            || transcript.job_id != receipt.job_id
        {
            return JobAudit::withheld(
                "the transcript given is not the one the receipt commits to (activation commitment or job id differ)",
            );
        }
        if transcript.model_digest != receipt.model_digest {
            findings.push(Finding::new(
                FraudClass::ModelSubstitution,
                "activations",
                format!(
                    "the transcript names model {}, the receipt {}",
                    hex::encode(transcript.model_digest),
                    hex::encode(receipt.model_digest)
                ),
            ));
        }
        let request = self.check_prompt(receipt, transcript, &mut findings);
        check_counts(receipt, transcript, &mut findings);
        if !transcript.output_ids.is_empty() {
            self.check_tokens_and_activations(
                receipt,
                transcript,
                others,
                &mut scores,
                &mut findings,
            );
        }
        let stops = request.map(|r| r.params.stop).unwrap_or_default();
        self.check_stop(transcript, &stops, &mut findings);
        if let Some(cost) = cost {
            let predicted = cost.predict_ms(receipt.prompt_tokens, receipt.output_tokens);
            let allowed = cost.allowed_ms(receipt.prompt_tokens, receipt.output_tokens);
            scores.time_ratio = Some(receipt.device_ms as f64 / predicted.max(1.0));
            if receipt.device_ms as f64 > allowed {
                findings.push(
                    Finding::new(
                        FraudClass::TimeInflation,
                        "time",
                        format!(
                            "claims {} device ms; the cost model predicts {predicted:.0} ms and allows at most {allowed:.0} ms for {} prompt and {} output tokens",
                            receipt.device_ms, receipt.prompt_tokens, receipt.output_tokens
                        ),
                    )
                    .with_values(json!({
                        "device_ms": receipt.device_ms,
                        "predicted_ms": predicted,
                        "allowed_ms": allowed,
                    })),
                );
            }
        }
        JobAudit::from_findings(findings, scores, end)
    }

    /// The request bytes against the receipt's hash, the prompt ids they give and the
    /// sampling parameters they ask for. Returns the parsed request when it parses.
    fn check_prompt(
        &self,
        receipt: &ReceiptClaims,
        t: &Transcript,
        findings: &mut Vec<Finding>,
    ) -> Option<inference::request::ChatRequest> {
        let mismatch = |detail: String| Finding::new(FraudClass::PromptMismatch, "prompt", detail);
        if t.request_sha256() != receipt.request_sha256 {
            findings.push(mismatch(format!(
                "the transcript's request hashes to {}, the receipt signs {}",
                hex::encode(t.request_sha256()),
                hex::encode(receipt.request_sha256)
            )));
            return None;
        }
        let limits = RequestLimits {
            max_tokens: usize::MAX,
            default_max_tokens: t.sampling.max_tokens as usize,
        };
        let request = match parse_chat_request(&t.request, &limits) {
            Ok(r) => r,
            Err(e) => {
                findings.push(mismatch(format!(
                    "the request the runtime says it served is not one it could accept: {e}"
                )));
                return None;
            }
        };
        match self
            .template
            .prompt_tokens(&self.tokenizer, &request.messages)
        {
            Ok(ids) if ids == t.prompt_ids => {}
            Ok(ids) => {
                let first = ids
                    .iter()
                    .zip(&t.prompt_ids)
                    .position(|(a, b)| a != b)
                    .unwrap_or(ids.len().min(t.prompt_ids.len()));
                findings.push(
                    mismatch(format!(
                        "the request renders to {} prompt tokens, the transcript ran {}; first difference at prompt position {first}",
                        ids.len(),
                        t.prompt_ids.len()
                    ))
                    .with_values(json!({
                        "position": first,
                        "expected": ids.get(first),
                        "ran": t.prompt_ids.get(first),
                    })),
                );
            }
            Err(e) => findings.push(mismatch(format!(
                "the request's messages do not render with the model's template: {e}"
            ))),
        }
        let s = &t.sampling;
        let asked = &request.params;
        let mut differ = Vec::new();
        if asked.temperature.to_bits() != s.temperature.to_bits() {
            differ.push(format!(
                "temperature {} ran as {}",
                asked.temperature, s.temperature
            ));
        }
        if asked.top_p.to_bits() != s.top_p.to_bits() {
            differ.push(format!("top_p {} ran as {}", asked.top_p, s.top_p));
        }
        if asked.top_k != s.top_k as usize {
            differ.push(format!("top_k {} ran as {}", asked.top_k, s.top_k));
        }
        if asked.repetition_penalty.to_bits() != s.repetition_penalty.to_bits() {
            differ.push(format!(
                "repetition_penalty {} ran as {}",
                asked.repetition_penalty, s.repetition_penalty
            ));
        }
        if let Some(seed) = request.seed {
            if seed != s.seed {
                differ.push(format!("seed {seed} ran as {}", s.seed));
            }
        }
        if let Some(n) = request.max_tokens {
            if n != s.max_tokens as usize {
                differ.push(format!("max_tokens {n} ran as {}", s.max_tokens));
            }
        }
        if !request.audited {
            differ.push("the request opted out of auditing, yet a transcript was kept".into());
        }
        if !differ.is_empty() {
            findings.push(mismatch(format!(
                "the job ran with other parameters than the request asked: {}",
                differ.join("; ")
            )));
        }
        Some(request)
    }

    /// The teacher-forced pass: sampler replay at every position and the recomputed
    /// fingerprint, then the replay check for a failed job.
    fn check_tokens_and_activations(
        &self,
        receipt: &ReceiptClaims,
        t: &Transcript,
        others: &[EarlierOutput<'_>],
        scores: &mut Scores,
        findings: &mut Vec<Finding>,
    ) {
        let TokenReplay {
            scored,
            failing,
            max_tie_gap,
            replay_error,
        } = match self.replay_tokens(t) {
            Ok(r) => r,
            Err(ReplayError::Parameters(e)) => {
                findings.push(Finding::new(
                    FraudClass::PromptMismatch,
                    "tokens",
                    format!("the sampling parameters cannot be replayed: {e}"),
                ));
                return;
            }
            Err(ReplayError::Scoring(e)) => {
                // Ids outside the vocabulary, a context overflow: no honest runtime
                // produces them with this model.
                findings.push(Finding::new(
                    FraudClass::FabricatedTokens,
                    "tokens",
                    format!("the claimed output cannot be scored with the attested model: {e}"),
                ));
                return;
            }
        };
        scores.max_tie_gap = max_tie_gap;
        if let Some(e) = replay_error {
            findings.push(Finding::new(
                FraudClass::WrongComputation,
                "tokens",
                format!("the sampler cannot be replayed on the recomputed logits: {e}"),
            ));
        }
        scores.token_failures = failing.len();
        let activation = activation_check(&self.model, t, &scored.hidden);
        scores.activation_failures = activation.failing.len();
        let n = t.output_ids.len();
        let tokens_fail = !failing.is_empty();
        let activations_fail = !activation.failing.is_empty() || activation.broken.is_some();
        if !tokens_fail && !activations_fail {
            return;
        }
        // An output that is another request's genuine answer (the model's own for that
        // prompt), and not this prompt's: replayed. Two fabricated or substituted answers
        // that happen to be equal are not a replay of either.
        let replayed = others.iter().find(|o| {
            o.job_id != receipt.job_id
                && o.request_sha256 != receipt.request_sha256
                && o.transcript.output_ids == t.output_ids
                && self.tokens_agree(o.transcript)
        });
        if let Some(o) = replayed {
            findings.push(
                Finding::new(
                    FraudClass::ReplayedOutput,
                    "tokens",
                    format!(
                        "the output is job {}'s answer to another request, and not what the model gives this prompt ({} of {n} positions disagree)",
                        hex::encode(o.job_id),
                        failing.len()
                    ),
                )
                .with_values(json!({"replayed_from_job": hex::encode(o.job_id)})),
            );
            return;
        }
        let token_finding = |class: FraudClass, detail: String| {
            let mut f = Finding::new(class, "tokens", detail);
            f.failing_positions = failing.len();
            f.positions = failing.iter().take(MAX_LISTED).map(|p| p.0).collect();
            f.values = Value::Array(
                failing
                    .iter()
                    .take(MAX_LISTED)
                    .map(|&(j, claimed, expected, gap)| {
                        json!({
                            "position": j,
                            "claimed": claimed,
                            "expected": expected,
                            "gap": if gap.is_finite() { json!(gap) } else { json!("inf") },
                        })
                    })
                    .collect(),
            );
            f
        };
        if activations_fail {
            let fraction = activation.failing.len() as f64 / n as f64;
            let class = if activation.broken.is_some() || fraction >= SUBSTITUTION_FRACTION {
                FraudClass::ModelSubstitution
            } else {
                FraudClass::WrongComputation
            };
            let mut f = Finding::new(
                class,
                "activations",
                activation.broken.clone().unwrap_or_else(|| {
                    format!(
                        "the hidden states behind {} of {n} output tokens are not the attested model's ({} of {n} tokens also disagree with its sampler)",
                        activation.failing.len(),
                        failing.len()
                    )
                }),
            );
            f.failing_positions = activation.failing.len();
            f.positions = activation
                .failing
                .iter()
                .take(MAX_LISTED)
                .copied()
                .collect();
            f.values = activation.values;
            findings.push(f);
            if tokens_fail {
                findings.push(token_finding(
                    class,
                    format!(
                        "{} of {n} claimed tokens are not what the attested model's sampler picks",
                        failing.len()
                    ),
                ));
            }
        } else {
            // The activations are the model's on these tokens, yet the model would not
            // have produced the tokens: they were written first and the fingerprint
            // computed over them afterwards.
            findings.push(token_finding(
                FraudClass::FabricatedTokens,
                format!(
                    "{} of {n} claimed tokens are not what the attested model's sampler picks, though the activations match them",
                    failing.len()
                ),
            ));
        }
    }

    /// One teacher-forced pass over `t` with the seeded sampler replayed at every position
    /// (arg-max when greedy) against the claimed token, within the near-tie margins.
    fn replay_tokens(&self, t: &Transcript) -> Result<TokenReplay, ReplayError> {
        let params = sampling_of(t);
        let mut sampler =
            Sampler::new(&params).map_err(|e| ReplayError::Parameters(e.to_string()))?;
        let tie = if params.is_greedy() {
            GREEDY_TIE_LOGITS
        } else {
            SAMPLED_TIE_MASS
        };
        let mut context = t.prompt_ids.clone();
        let mut failing = Vec::new();
        let mut max_tie_gap = 0f64;
        let mut replay_error = None;
        let scored = inference::score::score_on_threads(
            &self.model,
            &t.prompt_ids,
            &t.output_ids,
            0,
            self.forward_threads,
            |j, logits| {
                let claimed = t.output_ids[j];
                match sampler.replay(logits, &context, claimed) {
                    Ok(r) if r.gap <= tie => max_tie_gap = max_tie_gap.max(r.gap),
                    Ok(r) => failing.push((j, claimed, r.token, r.gap)),
                    Err(e) => {
                        if replay_error.is_none() {
                            replay_error = Some(format!("position {j}: {e}"));
                        }
                    }
                }
                context.push(claimed);
            },
        )
        .map_err(|e| ReplayError::Scoring(e.to_string()))?;
        Ok(TokenReplay {
            scored,
            failing,
            max_tie_gap,
            replay_error,
        })
    }

    /// Whether every token of `t` is what the seeded sampler picks on the model's logits
    /// (within the near-tie margins): the answer is the model's own for its prompt.
    fn tokens_agree(&self, t: &Transcript) -> bool {
        self.replay_tokens(t)
            .is_ok_and(|r| r.failing.is_empty() && r.replay_error.is_none())
    }

    /// Did the answer end where it should have, and not before or after?
    fn check_stop(&self, t: &Transcript, stops: &[String], findings: &mut Vec<Finding>) {
        let ids = &t.output_ids;
        let n = ids.len();
        let max = t.sampling.max_tokens as usize;
        let tok = &self.tokenizer;
        // The first position at which generation had to end: an end-of-generation id, or
        // the token that completes a stop string in the decoded text.
        let mut decoder = StreamDecoder::new(tok);
        let mut text = String::new();
        let mut natural_end = None;
        let mut why = "";
        for (j, &id) in ids.iter().enumerate() {
            if tok.is_eog(id) {
                natural_end = Some(j);
                why = "an end-of-generation token";
                break;
            }
            match decoder.push(id) {
                Ok(piece) => text.push_str(&piece),
                Err(_) => break, // out of vocabulary: the tokens check names it
            }
            if stops.iter().any(|s| text.contains(s.as_str())) {
                natural_end = Some(j);
                why = "a stop string";
                break;
            }
        }
        if natural_end.is_none() && n > 0 && n == max {
            // What the decoder still holds is released at the end, and may finish a stop
            // string then.
            text.push_str(&decoder.finish());
            if stops.iter().any(|s| text.contains(s.as_str())) {
                natural_end = Some(n - 1);
                why = "a stop string";
            }
        }
        let past_end = |end: usize, why: &str| {
            let mut f = Finding::new(
                FraudClass::CountInflation,
                "stop",
                format!(
                    "generation had to end at output position {end} ({why}), yet {} more tokens follow",
                    n - 1 - end
                ),
            );
            f.positions = vec![end];
            f.failing_positions = 1;
            f
        };
        if n > max {
            findings.push(Finding::new(
                FraudClass::CountInflation,
                "stop",
                format!("{n} output tokens, more than max_tokens {max}"),
            ));
            return;
        }
        match natural_end {
            Some(end) if end + 1 < n => findings.push(past_end(end, why)),
            Some(_) => {
                if t.end == JobEnd::Length && why == "an end-of-generation token" {
                    findings.push(Finding::new(
                        FraudClass::WrongComputation,
                        "stop",
                        "the transcript says the job reached max_tokens, but its last token ends generation",
                    ));
                }
            }
            None => match t.end {
                JobEnd::Length if n == max => {}
                JobEnd::TimedOut | JobEnd::Cancelled => {}
                JobEnd::Length | JobEnd::Stop => {
                    let mut f = Finding::new(
                        FraudClass::Truncation,
                        "stop",
                        format!(
                            "the answer ends after {n} tokens (the runtime says {}), but neither an end-of-generation token, a stop string nor max_tokens ({max}) ends it there",
                            match t.end {
                                JobEnd::Stop => "stop",
                                _ => "length",
                            }
                        ),
                    );
                    f.positions = vec![n.saturating_sub(1)];
                    f.failing_positions = 1;
                    findings.push(f);
                }
            },
        }
    }
}

/// What [`ReferenceModel::replay_tokens`] found.
struct TokenReplay {
    /// The pass (its hidden states feed the activation check).
    scored: inference::score::Scored,
    /// `(position, claimed, the sampler's pick, gap)` beyond the near-tie margin.
    failing: Vec<(usize, u32, u32, f64)>,
    /// The largest gap where the tokens agreed or tied.
    max_tie_gap: f64,
    /// The first position where the sampler could not run on the logits, if any.
    replay_error: Option<String>,
}

/// Why a job's tokens could not be replayed at all.
enum ReplayError {
    /// The sampling parameters are invalid.
    Parameters(String),
    /// The teacher-forced pass refused the ids (out of vocabulary, context overflow).
    Scoring(String),
}

/// The engine parameters the transcript says the job ran with (stop strings play no part
/// in the sampler).
fn sampling_of(t: &Transcript) -> SamplingParams {
    SamplingParams {
        temperature: t.sampling.temperature,
        top_p: t.sampling.top_p,
        top_k: t.sampling.top_k as usize,
        max_tokens: t.sampling.max_tokens as usize,
        repetition_penalty: t.sampling.repetition_penalty,
        seed: t.sampling.seed,
        stop: Vec::new(),
        stop_token_ids: Vec::new(),
    }
}

fn check_counts(receipt: &ReceiptClaims, t: &Transcript, findings: &mut Vec<Finding>) {
    let (p, n) = (t.prompt_ids.len() as u64, t.output_ids.len() as u64);
    if receipt.prompt_tokens != p || receipt.output_tokens != n {
        findings.push(
            Finding::new(
                FraudClass::CountInflation,
                "counts",
                format!(
                    "the receipt bills {} prompt and {} output tokens; the transcript holds {p} and {n}",
                    receipt.prompt_tokens, receipt.output_tokens
                ),
            )
            .with_values(json!({
                "receipt": [receipt.prompt_tokens, receipt.output_tokens],
                "transcript": [p, n],
            })),
        );
    }
}

/// The activation check's result, per output position.
struct ActivationResult {
    /// Output positions that failed.
    failing: Vec<usize>,
    /// The fingerprint cannot be compared at all (malformed, another shape or length).
    broken: Option<String>,
    values: Value,
}

fn activation_check(model: &Model, t: &Transcript, hidden: &[Vec<f32>]) -> ActivationResult {
    let n = t.output_ids.len();
    let broken = |detail: String| ActivationResult {
        failing: (0..n).collect(),
        broken: Some(detail),
        values: Value::Null,
    };
    let claimed = match Fingerprint::from_bytes(&t.fingerprint) {
        Ok(f) => f,
        Err(e) => {
            return broken(format!(
                "the claimed activation fingerprint does not parse: {e}"
            ))
        }
    };
    let recomputed = match Fingerprint::from_rows(
        model.config().embedding_length,
        hidden.iter().map(Vec::as_slice),
    ) {
        Ok(f) => f,
        Err(e) => return broken(format!("recomputing the fingerprint failed: {e}")),
    };
    let c = fingerprint::check(&claimed, &recomputed);
    if c.passed {
        return ActivationResult {
            failing: Vec::new(),
            broken: None,
            values: Value::Null,
        };
    }
    let values = c
        .positions
        .iter()
        .filter(|t| !t.passed())
        .take(MAX_LISTED)
        .map(|t| {
            json!({
                "position": t.position,
                "shared_dims": t.shared,
                "max_abs_diff": if t.max_abs_diff.is_finite() { json!(t.max_abs_diff) } else { json!("inf") },
                "score": if t.score.is_finite() { json!(t.score) } else { json!("inf") },
            })
        })
        .collect();
    ActivationResult {
        failing: c.failing_positions,
        broken: c
            .mismatch
            .map(|m| format!("the claimed fingerprint does not match the output's shape: {m}")),
        values: Value::Array(values),
    }
}
