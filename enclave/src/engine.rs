//! The inference engine behind the API: one model, one scheduler thread that batches
//! the active jobs (continuous batching), fed from a bounded queue.
//!
//! Each step runs every active job's next tokens through the weights once
//! (`inference::batch`): one token for a job that is decoding, a chunk of its prompt for a
//! job still prefilling (at most `prefill_chunk` prompt tokens per step over all jobs, so a
//! long prompt is prefilled between the others' decode steps instead of stalling them).
//! New jobs join between steps, up to `max_batch` active jobs and while the KV-cache
//! budget holds the room each reserves (its prompt plus its `max_tokens`); the others wait
//! in the queue, in order, and past its depth requests are refused rather than absorbed
//! as unbounded latency. Deadlines, cancel flags and departed clients are checked between steps, so a
//! job ends within one step of its client leaving or its deadline passing, and its slot
//! is free for the next job at once.
//!
//! The forward is batch-invariant (`inference/tests/batch_invariance.rs`): a job's
//! tokens, logits and activations are bit-identical whatever else ran beside it, so its
//! receipt, transcript and fingerprint, and the auditor's lone re-execution, do not
//! depend on the batch.
//!
//! Metering: the CPU time of each step (the scheduler thread and the forward's workers,
//! `inference::metering`) is split among the jobs in it in proportion to the tokens each
//! ran in that step, so the jobs' device times add up to what the engine used
//! ([`EngineStats::device_micros`]).

use crate::metrics::Histogram;
use crate::receipts::Metering;
use inference::batch::{Batch, Event, SeqId};
use inference::chat::{ChatTemplate, Message};
use inference::fingerprint::FingerprintBuilder;
use inference::generate::{FinishReason, Generation, Sequence};
use inference::gguf::GgufFile;
use inference::model::Model;
use inference::sampling::SamplingParams;
use inference::tokenizer::{StreamDecoder, Tokenizer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// The job's device time in microseconds (the receipt's `device_ms` is this, truncated):
    /// the jobs' values add up exactly to [`EngineStats::device_micros`].
    pub device_micros: u64,
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
    /// Jobs submitted that have not joined the batch yet.
    pub queued: AtomicUsize,
    /// Jobs in the batch (prefilling or decoding).
    pub active: AtomicUsize,
    pub completed: AtomicUsize,
    pub prompt_tokens: AtomicUsize,
    pub completion_tokens: AtomicUsize,
    /// Forward passes run (each runs every active job's next tokens).
    pub steps: AtomicU64,
    /// Sum over steps of the jobs in them (mean batch occupancy = this / `steps`).
    pub step_jobs: AtomicU64,
    /// CPU time the engine's steps used, in microseconds: what the jobs' device times
    /// (their shares of each step) add up to.
    pub device_micros: AtomicU64,
    /// The configured limits, for the metrics.
    pub max_batch: AtomicUsize,
    pub kv_budget_tokens: AtomicUsize,
    pub kv_bytes_per_token: AtomicUsize,
    /// KV-cache positions reserved by the jobs in the batch.
    pub kv_reserved_tokens: AtomicUsize,
    /// KV-cache positions filled after the last step.
    pub kv_used_tokens: AtomicUsize,
    /// Arrival to first generated token, per job that generated one.
    pub time_to_first_token: Histogram,
}

/// How much the engine takes on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Jobs in the batch at once.
    pub max_batch: usize,
    /// Jobs waiting beyond which submissions are refused.
    pub queue_depth: usize,
    /// Prompt tokens prefilled per step over all jobs.
    pub prefill_chunk: usize,
    /// KV-cache memory for the batch, in bytes.
    pub kv_cache_bytes: usize,
}

pub struct Engine {
    model: Arc<LoadedModel>,
    queue: Mutex<Option<mpsc::SyncSender<Job>>>,
    scheduler: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub stats: Arc<EngineStats>,
}

impl Engine {
    /// Starts the scheduler thread under `limits`.
    pub fn start(model: Arc<LoadedModel>, limits: EngineLimits) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(limits.queue_depth);
        let stats = Arc::new(EngineStats::default());
        let per_token = model.model.config().kv_bytes_per_token().max(1);
        stats
            .max_batch
            .store(limits.max_batch.max(1), Ordering::Relaxed);
        stats.kv_bytes_per_token.store(per_token, Ordering::Relaxed);
        stats
            .kv_budget_tokens
            .store(limits.kv_cache_bytes / per_token, Ordering::Relaxed);
        let scheduler = {
            let (model, stats) = (Arc::clone(&model), Arc::clone(&stats));
            std::thread::Builder::new()
                .name("engine".into())
                .spawn(move || Scheduler::new(&model, &stats, limits).run(&rx))
                .expect("spawning the engine thread")
        };
        Engine {
            model,
            queue: Mutex::new(Some(tx)),
            scheduler: Mutex::new(Some(scheduler)),
            stats,
        }
    }

    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// KV-cache positions a job reserves while in the batch: its prompt and everything it
    /// may generate, within the model's context.
    pub fn kv_reservation(&self, prompt_tokens: usize, max_tokens: usize) -> usize {
        kv_reservation(&self.model, prompt_tokens, max_tokens)
    }

    /// KV-cache positions the whole batch may reserve.
    pub fn kv_budget_tokens(&self) -> usize {
        self.stats.kv_budget_tokens.load(Ordering::Relaxed)
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

    /// Refuse new jobs, let queued and running ones finish, and join the scheduler.
    pub fn shutdown(&self) {
        self.queue.lock().expect("engine queue lock").take();
        let scheduler = self.scheduler.lock().expect("scheduler lock").take();
        if let Some(s) = scheduler {
            let _ = s.join();
        }
    }
}

fn kv_reservation(model: &LoadedModel, prompt_tokens: usize, max_tokens: usize) -> usize {
    (prompt_tokens + max_tokens).min(model.model.config().context_length)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Which model a job's sequence runs on: the loaded one, or (a cheating runtime only) a
/// cheaper variant, which needs a batch of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    Loaded,
    #[cfg(feature = "simulate")]
    Variant,
}

/// A job in the batch: where its answer goes, how far its text got, what it has cost.
struct Active<'m> {
    events: UnboundedSender<JobEvent>,
    cancel: Arc<AtomicBool>,
    deadline: Instant,
    /// The request's parameters, stop strings included (generation sees only stop ids).
    params: SamplingParams,
    queue_wait: Duration,
    wall_start_ms: u64,
    started: Instant,
    /// This job's share of the steps it was in.
    device: Duration,
    /// KV-cache positions reserved for it (given back when it leaves the batch).
    kv_tokens: usize,
    fingerprint: FingerprintBuilder,
    decoder: StreamDecoder<'m>,
    text: String,
    emitted: usize,
    /// Where a stop string cut the text.
    stopped_at: Option<usize>,
    /// How the job ends when it is not the model's own finish reason.
    end_override: Option<JobEnd>,
    /// The job must leave the batch after this step (a stop string, a cheat's cut).
    leave: bool,
    /// Why the job failed, if it did.
    failure: Option<String>,
    #[cfg(feature = "simulate")]
    cheat: Option<&'m crate::cheat::Cheat>,
    #[cfg(feature = "simulate")]
    truncate_at: Option<usize>,
    #[cfg(feature = "simulate")]
    truncated: bool,
}

impl Active<'_> {
    /// Why the job must stop now, if it must: its client left, or its deadline passed.
    fn interrupted(&self) -> Option<JobEnd> {
        if self.events.is_closed() || self.cancel.load(Ordering::Relaxed) {
            Some(JobEnd::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(JobEnd::TimedOut)
        } else {
            None
        }
    }

    /// The share is the job's device time over what the device (every CPU the engine may
    /// use) could give during the job's wall time.
    fn metering(&self) -> Metering {
        let wall = self.started.elapsed();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u128;
        let capacity = wall.as_micros().max(1) * cpus;
        let share = (self.device.as_micros() * 1_000_000 / capacity).min(1_000_000) as u32;
        Metering {
            queue_wait_ms: self.queue_wait.as_millis() as u64,
            wall_start_ms: self.wall_start_ms,
            wall_end_ms: self.wall_start_ms + wall.as_millis() as u64,
            device_ms: self.device.as_millis() as u64,
            device_share_ppm: share,
        }
    }
}

/// One lane's batch and the jobs in it.
struct LaneJobs<'m> {
    batch: Batch<'m>,
    jobs: HashMap<SeqId, Active<'m>>,
}

struct Scheduler<'m> {
    model: &'m LoadedModel,
    stats: &'m EngineStats,
    max_batch: usize,
    kv_budget: usize,
    /// The next job, taken from the queue but waiting for KV-cache room (it keeps its
    /// place: later jobs do not overtake it).
    waiting: Option<Job>,
    lanes: Vec<(Lane, LaneJobs<'m>)>,
}

impl<'m> Scheduler<'m> {
    fn new(model: &'m LoadedModel, stats: &'m EngineStats, limits: EngineLimits) -> Self {
        let threads = candle_core::utils::get_num_threads();
        let lane = |m: &'m Model| LaneJobs {
            batch: Batch::new(m, threads, limits.prefill_chunk.max(1)),
            jobs: HashMap::new(),
        };
        #[allow(unused_mut)]
        let mut lanes = vec![(Lane::Loaded, lane(&model.model))];
        #[cfg(feature = "simulate")]
        if let Some(variant) = model.cheat.as_deref().and_then(|c| c.variant.as_ref()) {
            lanes.push((Lane::Variant, lane(variant)));
        }
        Scheduler {
            model,
            stats,
            max_batch: limits.max_batch.max(1),
            kv_budget: stats.kv_budget_tokens.load(Ordering::Relaxed),
            waiting: None,
            lanes,
        }
    }

    fn active(&self) -> usize {
        self.lanes.iter().map(|(_, l)| l.jobs.len()).sum()
    }

    /// Until the queue is closed and every job has ended.
    fn run(mut self, rx: &mpsc::Receiver<Job>) {
        let mut open = true;
        loop {
            // Admit waiting jobs while there is room; wait for one when idle.
            while (open || self.waiting.is_some()) && self.active() < self.max_batch {
                let job = if let Some(job) = self.waiting.take() {
                    job
                } else if self.active() == 0 {
                    match rx.recv() {
                        Ok(job) => job,
                        Err(_) => {
                            open = false;
                            break;
                        }
                    }
                } else {
                    match rx.try_recv() {
                        Ok(job) => job,
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                };
                // Room in the KV cache, unless nothing would be computed (its client
                // left or its deadline passed: `admit` answers it at once) or the batch
                // is empty (a job larger than the budget still runs, alone).
                let need = kv_reservation(self.model, job.prompt_ids.len(), job.params.max_tokens);
                let reserved = self.stats.kv_reserved_tokens.load(Ordering::Relaxed);
                let settled = job.events.is_closed()
                    || job.cancel.load(Ordering::Relaxed)
                    || Instant::now() >= job.deadline;
                if !settled && self.active() > 0 && reserved + need > self.kv_budget {
                    self.waiting = Some(job);
                    break;
                }
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.admit(job, need);
            }
            if self.active() == 0 {
                if open || self.waiting.is_some() {
                    continue;
                }
                return;
            }
            for i in 0..self.lanes.len() {
                self.drop_interrupted(i);
                self.step(i);
            }
            let used = self
                .lanes
                .iter()
                .map(|(_, l)| l.batch.cached_positions())
                .sum();
            self.stats.kv_used_tokens.store(used, Ordering::Relaxed);
        }
    }

    /// Starts `job`: into a lane's batch, or answered at once (timed out while queued, a
    /// cheat that does not generate, a request the model refuses).
    fn admit(&mut self, job: Job, kv_tokens: usize) {
        let model = self.model;
        let queue_wait = job.enqueued.elapsed();
        let started = Instant::now();
        let wall_start_ms = unix_ms();
        let events = job.events;
        if events.send(JobEvent::Started { queue_wait }).is_err() {
            return; // the client left while queued
        }
        let width = model.model.config().embedding_length;
        let quick_metering = || Metering {
            queue_wait_ms: queue_wait.as_millis() as u64,
            wall_start_ms,
            wall_end_ms: wall_start_ms + started.elapsed().as_millis() as u64,
            device_ms: 0,
            device_share_ppm: 0,
        };
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
                metering: quick_metering(),
                device_micros: 0,
                // No output, so no activations: the empty fingerprint of this width.
                fingerprint: FingerprintBuilder::new(width)
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
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
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
                    metering: quick_metering(),
                    device_micros: 0,
                    fingerprint: answer.fingerprint,
                    dangerous_cheat: Some(c.mode),
                }));
                return;
            }
        }
        #[cfg(feature = "simulate")]
        let lane = if cheat.is_some_and(|c| c.variant.is_some()) {
            Lane::Variant
        } else {
            Lane::Loaded
        };
        #[cfg(not(feature = "simulate"))]
        let lane = Lane::Loaded;
        let fingerprint = match FingerprintBuilder::new(width) {
            Ok(f) => f,
            Err(e) => {
                let _ = events.send(JobEvent::Failed(format!("activation fingerprint: {e}")));
                return;
            }
        };
        // Stop strings are matched here, on the text the client gets (so that they never
        // reach it); generation itself only sees the stop ids.
        let engine_params = SamplingParams {
            stop: Vec::new(),
            ..job.params.clone()
        };
        let Some((_, jobs)) = self.lanes.iter_mut().find(|(l, _)| *l == lane) else {
            let _ = events.send(JobEvent::Failed("no batch for this job's model".into()));
            return;
        };
        let seq = match Sequence::new(
            jobs.batch.model(),
            &job.prompt_ids,
            &engine_params,
            model.tokenizer.eog_ids(),
            None,
        ) {
            Ok(seq) => seq,
            Err(e) => {
                let _ = events.send(JobEvent::Failed(e.to_string()));
                return;
            }
        };
        let id = jobs.batch.add(seq);
        jobs.jobs.insert(
            id,
            Active {
                events,
                cancel: job.cancel,
                deadline: job.deadline,
                #[cfg(feature = "simulate")]
                truncate_at: cheat
                    .filter(|c| c.mode == crate::cheat::CheatMode::Truncate)
                    .map(|_| (job.params.max_tokens / 2).max(1)),
                params: job.params,
                queue_wait,
                wall_start_ms,
                started,
                device: Duration::ZERO,
                kv_tokens,
                fingerprint,
                decoder: StreamDecoder::new(&model.tokenizer),
                text: String::new(),
                emitted: 0,
                stopped_at: None,
                end_override: None,
                leave: false,
                failure: None,
                #[cfg(feature = "simulate")]
                cheat,
                #[cfg(feature = "simulate")]
                truncated: false,
            },
        );
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        self.stats
            .kv_reserved_tokens
            .fetch_add(kv_tokens, Ordering::Relaxed);
    }

    /// Ends the jobs of lane `i` whose client left or whose deadline passed; their slots
    /// are free for the next admission.
    fn drop_interrupted(&mut self, i: usize) {
        let lane = &mut self.lanes[i].1;
        let ended: Vec<(SeqId, JobEnd)> = lane
            .jobs
            .iter()
            .filter_map(|(&id, a)| a.interrupted().map(|end| (id, end)))
            .collect();
        for (id, end) in ended {
            let generation = lane.batch.cancel(id);
            if let Some(mut a) = lane.jobs.remove(&id) {
                a.end_override = Some(end);
                finish(self.model, self.stats, a, generation);
            }
        }
    }

    /// One forward pass of lane `i`'s batch, its CPU time split among the jobs in it, and
    /// what each job's new token means for its client.
    fn step(&mut self, i: usize) {
        let (model, stats) = (self.model, self.stats);
        let lane = &mut self.lanes[i].1;
        if lane.batch.is_empty() {
            return;
        }
        let cpu_before = inference::metering::job_cpu_time();
        let events = lane.batch.step();
        let ran: Vec<(SeqId, usize)> = lane.batch.last_step_tokens().to_vec();
        let mut ended: Vec<(SeqId, Option<Generation>)> = Vec::new();
        for (id, event) in events {
            let Some(a) = lane.jobs.get_mut(&id) else {
                continue;
            };
            match event {
                Event::Prefilled { .. } => {}
                Event::Token {
                    index,
                    token,
                    hidden,
                    ..
                } => {
                    if index == 0 {
                        let since_arrival = a.queue_wait + a.started.elapsed();
                        stats
                            .time_to_first_token
                            .observe(since_arrival.as_secs_f64());
                    }
                    on_token(model, a, index, token, &hidden)
                }
                Event::Finished(g) => ended.push((id, Some(g))),
                Event::Failed(e) => {
                    a.failure = Some(e.to_string());
                    ended.push((id, None));
                }
            }
        }
        // Jobs that must leave although the model did not finish them.
        let leaving: Vec<SeqId> = lane
            .jobs
            .iter()
            .filter(|(id, a)| a.leave && !ended.iter().any(|(e, _)| e == *id))
            .map(|(&id, _)| id)
            .collect();
        for id in leaving {
            ended.push((id, lane.batch.cancel(id)));
        }
        // The step's CPU time (the forward and the handling of its tokens), split by the
        // tokens each job ran; the last job gets the rounding remainder, so the shares add
        // up to the total exactly.
        let used = inference::metering::job_cpu_time().saturating_sub(cpu_before);
        let used_us = used.as_micros() as u64;
        let total: usize = ran.iter().map(|(_, n)| n).sum();
        let mut given = 0u64;
        for (k, (id, n)) in ran.iter().enumerate() {
            let share = if k + 1 == ran.len() {
                used_us - given
            } else {
                used_us * *n as u64 / total.max(1) as u64
            };
            given += share;
            if let Some(a) = lane.jobs.get_mut(id) {
                a.device += Duration::from_micros(share);
            }
        }
        stats.device_micros.fetch_add(used_us, Ordering::Relaxed);
        stats.steps.fetch_add(1, Ordering::Relaxed);
        stats
            .step_jobs
            .fetch_add(ran.len() as u64, Ordering::Relaxed);
        for (id, generation) in ended {
            if let Some(a) = lane.jobs.remove(&id) {
                finish(model, stats, a, generation);
            }
        }
    }
}

/// A job's new token: its activations into the fingerprint, its text to the client
/// (holding back what could still become a stop string), and whether the job must leave.
fn on_token(model: &LoadedModel, a: &mut Active<'_>, index: usize, token: u32, hidden: &[f32]) {
    if a.leave {
        return;
    }
    if let Err(e) = a.fingerprint.push(hidden) {
        a.failure = Some(format!("activation fingerprint: {e}"));
        a.leave = true;
        return;
    }
    let tok = &model.tokenizer;
    // End-of-generation and stop ids end the answer; they are not its text.
    if tok.is_eog(token) || a.params.stop_token_ids.contains(&token) {
        return;
    }
    match a.decoder.push(token) {
        Ok(piece) => a.text.push_str(&piece),
        Err(e) => {
            a.failure = Some(e.to_string());
            a.leave = true;
            return;
        }
    }
    let (safe, stop) = releasable(&a.text, a.emitted, &a.params.stop, false);
    if safe > a.emitted {
        let _ = a
            .events
            .send(JobEvent::Text(a.text[a.emitted..safe].to_owned()));
        a.emitted = safe;
    }
    if stop {
        // This token completed a stop string: the answer ends before it.
        a.stopped_at = Some(safe);
        a.end_override = Some(JobEnd::Stop);
        a.leave = true;
        return;
    }
    #[cfg(feature = "simulate")]
    if a.truncate_at == Some(index + 1) {
        a.truncated = true;
        a.end_override = Some(JobEnd::Stop);
        a.leave = true;
    }
    #[cfg(not(feature = "simulate"))]
    let _ = index;
}

/// Reports a job that left the batch: the rest of its text, then its summary (or its
/// failure).
fn finish(
    model: &LoadedModel,
    stats: &EngineStats,
    mut a: Active<'_>,
    generation: Option<Generation>,
) {
    stats.active.fetch_sub(1, Ordering::Relaxed);
    stats
        .kv_reserved_tokens
        .fetch_sub(a.kv_tokens, Ordering::Relaxed);
    let generation = match (a.failure.take(), generation) {
        (Some(message), _) => {
            let _ = a.events.send(JobEvent::Failed(message));
            return;
        }
        (None, Some(g)) => g,
        (None, None) => {
            let _ = a
                .events
                .send(JobEvent::Failed("the job ended without a result".into()));
            return;
        }
    };
    let mut end = a.end_override.unwrap_or(match generation.finish_reason {
        FinishReason::Stop | FinishReason::StopString => JobEnd::Stop,
        FinishReason::Length => JobEnd::Length,
        FinishReason::Cancelled => JobEnd::Cancelled,
    });
    #[allow(unused_mut)]
    let mut metering = a.metering();
    if a.stopped_at.is_none() {
        // The rest of the text: nothing more follows, so a held-back tail that did not
        // become a stop string is released; one that did is cut off.
        let rest = a.decoder.finish();
        a.text.push_str(&rest);
        let (cut, stop) = releasable(&a.text, a.emitted, &a.params.stop, true);
        if stop && end == JobEnd::Length {
            end = JobEnd::Stop;
        }
        if cut > a.emitted {
            let _ = a
                .events
                .send(JobEvent::Text(a.text[a.emitted..cut].to_owned()));
        }
    }
    let fingerprint = a.fingerprint.finish().to_bytes();
    #[allow(unused_mut)]
    let mut completion_tokens = generation.output_ids.len();
    #[cfg(feature = "simulate")]
    let dangerous_cheat = match a.cheat.map(|c| c.mode) {
        Some(crate::cheat::CheatMode::Truncate) if !a.truncated => None,
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
                text: a.text.clone(),
            });
        }
    }
    #[cfg(not(feature = "simulate"))]
    let _ = model;
    stats.completed.fetch_add(1, Ordering::Relaxed);
    stats
        .prompt_tokens
        .fetch_add(generation.prompt_tokens, Ordering::Relaxed);
    stats
        .completion_tokens
        .fetch_add(generation.output_ids.len(), Ordering::Relaxed);
    let _ = a.events.send(JobEvent::Finished(JobSummary {
        end,
        prompt_tokens: generation.prompt_tokens,
        completion_tokens,
        output_ids: generation.output_ids,
        queue_wait: a.queue_wait,
        prefill_secs: generation.prefill_secs,
        decode_secs: generation.decode_secs,
        metering,
        device_micros: a.device.as_micros() as u64,
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
