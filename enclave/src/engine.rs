//! The inference engine behind the API: one model shared by a fixed number of engine
//! threads, fed from a bounded queue.
//!
//! Each engine thread runs one job at a time (prefill, then token by token through its own
//! KV cache) and streams text back over a channel. The prefill runs in chunks of
//! `prefill_chunk` tokens and the job's deadline and cancel flag are checked between
//! chunks as between tokens, so a long prompt neither outlives its deadline by more than
//! one chunk nor keeps its engine thread once its client has gone. The engine does not
//! batch sequences together (the `inference` crate's forward pass takes one sequence);
//! concurrency comes from `parallel_jobs` threads sharing the weights, and overload is
//! refused at the queue rather than absorbed as unbounded latency.

use crate::receipts::Metering;
use inference::chat::{ChatTemplate, Message};
use inference::fingerprint::FingerprintBuilder;
use inference::generate::{generate_chunked, FinishReason, Prefill};
use inference::gguf::GgufFile;
use inference::model::Model;
use inference::sampling::SamplingParams;
use inference::tokenizer::{StreamDecoder, Tokenizer};
use std::cell::Cell;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedSender;

/// The loaded model with its tokenizer and chat template.
pub struct LoadedModel {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    pub id: String,
    pub digest: [u8; 32],
    pub context_len: usize,
    /// DANGEROUS: cheat on jobs (`--dangerous-cheat`; never in a release build).
    #[cfg(feature = "simulate")]
    pub cheat: Option<Arc<crate::cheat::Cheat>>,
}

impl LoadedModel {
    pub fn load(path: &Path, id: Option<&str>) -> Result<Self, String> {
        let file = GgufFile::open(path).map_err(|e| format!("model {}: {e}", path.display()))?;
        let tokenizer =
            Tokenizer::from_gguf(&file).map_err(|e| format!("model {}: {e}", path.display()))?;
        let template = ChatTemplate::from_gguf(&file, &tokenizer)
            .map_err(|e| format!("model {}: {e}", path.display()))?;
        let model = Model::load(&file, &candle_core::Device::Cpu)
            .map_err(|e| format!("model {}: {e}", path.display()))?;
        let id = id.map(str::to_owned).unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into())
        });
        Ok(LoadedModel {
            context_len: model.config().context_length,
            digest: model.digest(),
            model,
            tokenizer,
            template,
            id,
            #[cfg(feature = "simulate")]
            cheat: None,
        })
    }

    /// Computes with the CPU kernels `name` names (`scalar`, `avx2`, `avx512`) instead of
    /// the fastest available.
    pub fn force_cpu_kernel(&mut self, name: &str) -> Result<(), String> {
        use inference::kernels::Isa;
        let isa = match name {
            "scalar" => Isa::Scalar,
            "avx2" => Isa::Avx2,
            "avx512" => Isa::Avx512Vnni,
            other => {
                return Err(format!(
                    "cpu_kernel '{other}' is not one of scalar, avx2, avx512"
                ))
            }
        };
        self.model
            .set_kernel(isa)
            .map_err(|e| format!("cpu_kernel '{name}': {e}"))
    }

    /// Prompt token ids for chat messages, through the model's own template.
    pub fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        self.template
            .prompt_tokens(&self.tokenizer, messages)
            .map_err(|e| e.to_string())
    }
}

/// What an engine thread reports about a job, in order: `Started`, any number of `Text`,
/// then exactly one of `Finished` or `Failed`.
#[derive(Debug)]
pub enum JobEvent {
    Started { queue_wait: Duration },
    Text(String),
    Finished(JobSummary),
    Failed(String),
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// The model stopped (EOS, stop token or stop string).
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The request's deadline passed.
    TimedOut,
    /// The client went away.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct JobSummary {
    pub end: JobEnd,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Every generated id, including the one that ended generation (what the auditor
    /// re-executes; `completion_tokens` counts them all).
    pub output_ids: Vec<u32>,
    pub queue_wait: Duration,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    /// What the job cost, for its receipt.
    pub metering: Metering,
    /// The activation fingerprint of the output (`inference::fingerprint` bytes).
    pub fingerprint: Vec<u8>,
    /// DANGEROUS: the cheat applied to this job, if any.
    #[cfg(feature = "simulate")]
    pub dangerous_cheat: Option<crate::cheat::CheatMode>,
}

pub struct Job {
    pub prompt_ids: Vec<u32>,
    pub params: SamplingParams,
    pub deadline: Instant,
    pub events: UnboundedSender<JobEvent>,
    pub enqueued: Instant,
    /// Set when the client has gone: the job stops at the next token (or prefill chunk)
    /// and still reports `Finished` (its receipt is still due). Dropping the receiver
    /// stops it too.
    pub cancel: Arc<AtomicBool>,
    /// Prompt tokens per prefill chunk (the deadline and `cancel` are checked between).
    pub prefill_chunk: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full.
    Overloaded,
    /// The engine is shutting down.
    Closed,
}

/// Counters the metrics endpoint reads.
#[derive(Default)]
pub struct EngineStats {
    pub queued: AtomicUsize,
    pub active: AtomicUsize,
    pub completed: AtomicUsize,
    pub prompt_tokens: AtomicUsize,
    pub completion_tokens: AtomicUsize,
}

pub struct Engine {
    model: Arc<LoadedModel>,
    queue: Mutex<Option<mpsc::SyncSender<Job>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    pub stats: Arc<EngineStats>,
}

impl Engine {
    pub fn start(model: Arc<LoadedModel>, parallel_jobs: usize, queue_depth: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue_depth);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(EngineStats::default());
        let workers = (0..parallel_jobs)
            .map(|i| {
                let rx = Arc::clone(&rx);
                let model = Arc::clone(&model);
                let stats = Arc::clone(&stats);
                std::thread::Builder::new()
                    .name(format!("engine-{i}"))
                    .spawn(move || loop {
                        // Hold the lock only while waiting, not while generating.
                        let job = match rx.lock().expect("engine queue lock").recv() {
                            Ok(job) => job,
                            Err(_) => return, // every sender dropped: shutdown
                        };
                        stats.queued.fetch_sub(1, Ordering::Relaxed);
                        stats.active.fetch_add(1, Ordering::Relaxed);
                        run_job(&model, &stats, job);
                        stats.active.fetch_sub(1, Ordering::Relaxed);
                    })
                    .expect("spawning an engine thread")
            })
            .collect();
        Engine {
            model,
            queue: Mutex::new(Some(tx)),
            workers: Mutex::new(workers),
            stats,
        }
    }

    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        let guard = self.queue.lock().expect("engine queue lock");
        let Some(tx) = guard.as_ref() else {
            return Err(SubmitError::Closed);
        };
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        tx.try_send(job).map_err(|e| {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            match e {
                mpsc::TrySendError::Full(_) => SubmitError::Overloaded,
                mpsc::TrySendError::Disconnected(_) => SubmitError::Closed,
            }
        })
    }

    /// Refuse new jobs, let queued and running ones finish, and join the threads.
    pub fn shutdown(&self) {
        self.queue.lock().expect("engine queue lock").take();
        let workers = std::mem::take(&mut *self.workers.lock().expect("workers lock"));
        for w in workers {
            let _ = w.join();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Meters one job on the engine thread that runs it: wall clock, and the CPU time of
/// this thread plus the forward's worker threads (`inference::metering`).
struct Meter {
    queue_wait: Duration,
    wall_start_ms: u64,
    started: Instant,
    cpu_start: Duration,
}

impl Meter {
    fn start(queue_wait: Duration) -> Self {
        Meter {
            queue_wait,
            wall_start_ms: unix_ms(),
            started: Instant::now(),
            cpu_start: inference::metering::job_cpu_time(),
        }
    }

    /// The share is the job's CPU time over what the device (every CPU the engine may
    /// use) could give during the job's wall time.
    fn finish(&self) -> Metering {
        let wall = self.started.elapsed();
        let device = inference::metering::job_cpu_time().saturating_sub(self.cpu_start);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u128;
        let capacity = wall.as_micros().max(1) * cpus;
        let share = (device.as_micros() * 1_000_000 / capacity).min(1_000_000) as u32;
        Metering {
            queue_wait_ms: self.queue_wait.as_millis() as u64,
            wall_start_ms: self.wall_start_ms,
            wall_end_ms: self.wall_start_ms + wall.as_millis() as u64,
            device_ms: device.as_millis() as u64,
            device_share_ppm: share,
        }
    }
}

fn run_job(model: &LoadedModel, stats: &EngineStats, job: Job) {
    let queue_wait = job.enqueued.elapsed();
    let meter = Meter::start(queue_wait);
    let events = job.events;
    if events.send(JobEvent::Started { queue_wait }).is_err() {
        return; // the client left while queued
    }
    if Instant::now() >= job.deadline {
        // Timed out while queued: nothing was computed.
        let _ = events.send(JobEvent::Finished(JobSummary {
            end: JobEnd::TimedOut,
            prompt_tokens: job.prompt_ids.len(),
            completion_tokens: 0,
            output_ids: Vec::new(),
            queue_wait,
            prefill_secs: 0.0,
            decode_secs: 0.0,
            metering: meter.finish(),
            // No output, so no activations: the empty fingerprint of this model's width.
            fingerprint: FingerprintBuilder::new(model.model.config().embedding_length)
                .map(|b| b.finish().to_bytes())
                .unwrap_or_default(),
            #[cfg(feature = "simulate")]
            dangerous_cheat: None,
        }));
        return;
    }
    #[cfg(feature = "simulate")]
    let cheat = model.cheat.as_deref().filter(|c| c.roll());
    #[cfg(feature = "simulate")]
    if let Some(c) = cheat {
        if let Some(answer) = cheat_without_generating(model, c, &job.prompt_ids, &job.params) {
            let n = answer.output_ids.len();
            let _ = events.send(JobEvent::Text(answer.text));
            stats.completed.fetch_add(1, Ordering::Relaxed);
            let last_ends = answer
                .output_ids
                .last()
                .is_some_and(|&t| model.tokenizer.is_eog(t));
            let _ = events.send(JobEvent::Finished(JobSummary {
                end: if last_ends {
                    JobEnd::Stop
                } else {
                    JobEnd::Length
                },
                prompt_tokens: job.prompt_ids.len(),
                completion_tokens: n,
                output_ids: answer.output_ids,
                queue_wait,
                prefill_secs: 0.0,
                decode_secs: 0.0,
                metering: meter.finish(),
                fingerprint: answer.fingerprint,
                dangerous_cheat: Some(c.mode),
            }));
            return;
        }
    }
    // The model that generates: the loaded one, or a cheater's cheaper one.
    let generating: &inference::model::Model = {
        #[cfg(feature = "simulate")]
        {
            cheat
                .and_then(|c| c.variant.as_ref())
                .unwrap_or(&model.model)
        }
        #[cfg(not(feature = "simulate"))]
        {
            &model.model
        }
    };
    #[cfg(feature = "simulate")]
    let truncate_at = cheat
        .filter(|c| c.mode == crate::cheat::CheatMode::Truncate)
        .map(|_| (job.params.max_tokens / 2).max(1));
    #[cfg(feature = "simulate")]
    let mut truncated = false;
    let mut fingerprint = match FingerprintBuilder::new(model.model.config().embedding_length) {
        Ok(f) => f,
        Err(e) => {
            let _ = events.send(JobEvent::Failed(format!("activation fingerprint: {e}")));
            return;
        }
    };
    let tok = &model.tokenizer;
    let params = &job.params;
    // Stop strings are matched here, on the text the client gets (so that they never
    // reach it); generation itself only sees the stop ids.
    let engine_params = SamplingParams {
        stop: Vec::new(),
        ..params.clone()
    };
    let mut decoder = StreamDecoder::new(tok);
    let mut text = String::new();
    let mut emitted = 0usize;
    let mut stopped_at = None;
    let end_override = Cell::new(None);
    let mut failure = None;
    // Why the job must stop now, if it must: its client left, or its deadline passed.
    let interrupted = || {
        if events.is_closed() || job.cancel.load(Ordering::Relaxed) {
            Some(JobEnd::Cancelled)
        } else if Instant::now() >= job.deadline {
            Some(JobEnd::TimedOut)
        } else {
            None
        }
    };
    let prefill = Prefill {
        chunk: job.prefill_chunk,
        check: |_done: usize| match interrupted() {
            Some(end) => {
                end_override.set(Some(end));
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        },
    };
    let result = generate_chunked(
        generating,
        &job.prompt_ids,
        &engine_params,
        tok.eog_ids(),
        None,
        prefill,
        |step| {
            if let Err(e) = fingerprint.push(step.hidden) {
                failure = Some(format!("activation fingerprint: {e}"));
                return ControlFlow::Break(());
            }
            if let Some(end) = interrupted() {
                end_override.set(Some(end));
                return ControlFlow::Break(());
            }
            // End-of-generation and stop ids end the answer; they are not its text.
            if tok.is_eog(step.token) || params.stop_token_ids.contains(&step.token) {
                return ControlFlow::Continue(());
            }
            match decoder.push(step.token) {
                Ok(piece) => text.push_str(&piece),
                Err(e) => {
                    failure = Some(e.to_string());
                    return ControlFlow::Break(());
                }
            }
            let (safe, stop) = releasable(&text, emitted, &params.stop, false);
            if safe > emitted {
                let _ = events.send(JobEvent::Text(text[emitted..safe].to_owned()));
                emitted = safe;
            }
            if stop {
                // This token completed a stop string: the answer ends before it.
                stopped_at = Some(safe);
                end_override.set(Some(JobEnd::Stop));
                return ControlFlow::Break(());
            }
            #[cfg(feature = "simulate")]
            if truncate_at == Some(step.index + 1) {
                truncated = true;
                end_override.set(Some(JobEnd::Stop));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    );
    if let Some(message) = failure {
        let _ = events.send(JobEvent::Failed(message));
        return;
    }
    let generation = match result {
        Ok(g) => g,
        Err(e) => {
            let _ = events.send(JobEvent::Failed(e.to_string()));
            return;
        }
    };
    let mut end = end_override
        .get()
        .unwrap_or(match generation.finish_reason {
            FinishReason::Stop | FinishReason::StopString => JobEnd::Stop,
            FinishReason::Length => JobEnd::Length,
            FinishReason::Cancelled => JobEnd::Cancelled,
        });
    if stopped_at.is_none() {
        // The rest of the text: nothing more follows, so a held-back tail that did not
        // become a stop string is released; one that did is cut off.
        text.push_str(&decoder.finish());
        let (cut, stop) = releasable(&text, emitted, &params.stop, true);
        if stop && end == JobEnd::Length {
            end = JobEnd::Stop;
        }
        if cut > emitted {
            let _ = events.send(JobEvent::Text(text[emitted..cut].to_owned()));
        }
    }
    #[allow(unused_mut)]
    let mut metering = meter.finish();
    let fingerprint = fingerprint.finish().to_bytes();
    #[allow(unused_mut)]
    let mut completion_tokens = generation.output_ids.len();
    #[cfg(feature = "simulate")]
    let dangerous_cheat = match cheat.map(|c| c.mode) {
        Some(crate::cheat::CheatMode::Truncate) if !truncated => None,
        Some(crate::cheat::CheatMode::InflateTime) => {
            metering.device_ms *= crate::cheat::TIME_FACTOR;
            Some(crate::cheat::CheatMode::InflateTime)
        }
        Some(crate::cheat::CheatMode::InflateTokens) => {
            completion_tokens = crate::cheat::inflated(completion_tokens as u64) as usize;
            Some(crate::cheat::CheatMode::InflateTokens)
        }
        // A replay with no earlier answer that fits, or a fabrication that could not be
        // made, ran honestly.
        Some(crate::cheat::CheatMode::Replay | crate::cheat::CheatMode::Fabricate) | None => None,
        other => other,
    };
    #[cfg(feature = "simulate")]
    if let Some(c) = model.cheat.as_deref() {
        if c.mode == crate::cheat::CheatMode::Replay && dangerous_cheat.is_none() {
            *c.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(crate::cheat::Recorded {
                output_ids: generation.output_ids.clone(),
                fingerprint: fingerprint.clone(),
                text: text.clone(),
            });
        }
    }
    stats.completed.fetch_add(1, Ordering::Relaxed);
    stats
        .prompt_tokens
        .fetch_add(generation.prompt_tokens, Ordering::Relaxed);
    stats
        .completion_tokens
        .fetch_add(generation.output_ids.len(), Ordering::Relaxed);
    let _ = events.send(JobEvent::Finished(JobSummary {
        end,
        prompt_tokens: generation.prompt_tokens,
        completion_tokens,
        output_ids: generation.output_ids,
        queue_wait,
        prefill_secs: generation.prefill_secs,
        decode_secs: generation.decode_secs,
        metering,
        fingerprint,
        #[cfg(feature = "simulate")]
        dangerous_cheat,
    }));
}

/// DANGEROUS: the answer of a job that is cheated without generating (`Fabricate`, and
/// `Replay` once there is an answer to replay), or `None` to generate.
#[cfg(feature = "simulate")]
fn cheat_without_generating(
    model: &LoadedModel,
    cheat: &crate::cheat::Cheat,
    prompt_ids: &[u32],
    params: &SamplingParams,
) -> Option<crate::cheat::Recorded> {
    use crate::cheat::{Cheat, CheatMode};
    match cheat.mode {
        CheatMode::Fabricate => Cheat::fabricate(
            &model.model,
            &model.tokenizer,
            prompt_ids,
            params.max_tokens,
            prompt_ids.len(),
        )
        .ok(),
        // A longer answer than this job may have is not replayed (the job runs honestly).
        CheatMode::Replay => cheat
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|a| a.output_ids.len() <= params.max_tokens),
        _ => None,
    }
}

/// How much of `text` may go to the client, of which `emitted` bytes already went (and
/// those never hold a whole stop string): up to the first stop string, which ends the
/// answer and is never sent (then `true`); else all of it but, unless `at_end`, a tail
/// that could still grow into a stop string. Cuts fall on character boundaries.
fn releasable(text: &str, emitted: usize, stops: &[String], at_end: bool) -> (usize, bool) {
    // A stop string not wholly inside the sent text starts at most len - 1 bytes before
    // its end.
    let longest = stops.iter().map(String::len).max().unwrap_or(0);
    let mut from = emitted.saturating_sub(longest.saturating_sub(1));
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let window = &text[from..];
    if let Some(first) = stops.iter().filter_map(|s| window.find(s.as_str())).min() {
        return (from + first, true);
    }
    if at_end {
        return (text.len(), false);
    }
    let bytes = text.as_bytes();
    let mut hold = 0;
    for stop in stops {
        let s = stop.as_bytes();
        let max = s.len().saturating_sub(1).min(bytes.len());
        for k in (hold + 1..=max).rev() {
            if bytes[bytes.len() - k..] == s[..k] {
                hold = k;
                break;
            }
        }
    }
    // Never split a character: move the cut left to a boundary.
    let mut cut = text.len() - hold;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (cut.max(emitted), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_possible_stop_prefix_is_held_back_and_a_stop_string_never_released() {
        let stops = vec!["\n\nUser:".to_string(), "END".to_string()];
        let held = |text: &str, stops: &[String]| text.len() - releasable(text, 0, stops, false).0;
        assert_eq!(held("hello", &stops), 0);
        assert_eq!(held("hello\n", &stops), 1);
        assert_eq!(held("hello\n\nUs", &stops), 4);
        assert_eq!(held("hello EN", &stops), 2);
        assert_eq!(held("hello", &[]), 0);
        assert_eq!(held("éE", &["EX".to_string()]), 1);
        // A whole stop string: the text before it, and the answer ends.
        assert_eq!(releasable("hello END", 0, &stops, false), (6, true));
        assert_eq!(
            releasable("hello END and more", 0, &stops, false),
            (6, true)
        );
        // The first of several, wherever it starts relative to what was sent.
        assert_eq!(releasable("a\n\nUser: b END", 0, &stops, false), (1, true));
        assert_eq!(releasable("hello EN", 6, &stops, false), (6, false));
        assert_eq!(releasable("hello END", 6, &stops, false), (6, true));
        // At the end a tail that never became a stop string is released.
        assert_eq!(releasable("hello EN", 0, &stops, true), (8, false));
        assert_eq!(releasable("hello END", 0, &stops, true), (6, true));
        // Multi-byte stop strings and text: cuts on character boundaries.
        let stops = vec!["é!".to_string()];
        assert_eq!(releasable("caféé", 0, &stops, false), (5, false));
        assert_eq!(releasable("caféé!", 3, &stops, false), (5, true));
    }
}
