//! The engine's scheduler on the bundled model, without the server around it: metering
//! conservation under batching, the KV-cache budget, and a long prompt arriving while
//! others decode (issue 14).

use enclave::engine::{Engine, EngineLimits, Job, JobEvent, JobSummary, LoadedModel};
use inference::chat::Message;
use inference::sampling::SamplingParams;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn engine(max_batch: usize, prefill_chunk: usize, kv_cache_bytes: usize) -> Engine {
    let model = LoadedModel::load(&inference::gguf::model_for_tests(), None).expect("model");
    Engine::start(
        Arc::new(model),
        EngineLimits {
            max_batch,
            queue_depth: 64,
            prefill_chunk,
            kv_cache_bytes,
        },
    )
}

fn prompt(engine: &Engine, text: &str) -> Vec<u32> {
    engine
        .model()
        .prompt_ids(&[Message::new("user", text)])
        .expect("prompt")
}

/// What a job's client saw: when each piece of text arrived, and how it ended.
#[derive(Debug)]
struct Seen {
    queue_wait: Option<Duration>,
    text_at: Vec<Instant>,
    summary: Option<JobSummary>,
    failed: Option<String>,
    ended_at: Instant,
}

struct Submitted {
    cancel: Arc<AtomicBool>,
    client: JoinHandle<Seen>,
}

fn submit(
    engine: &Engine,
    prompt_ids: Vec<u32>,
    params: SamplingParams,
    life: Duration,
) -> Submitted {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let now = Instant::now();
    engine
        .submit(Job {
            prompt_ids,
            params,
            deadline: now + life,
            events: tx,
            enqueued: now,
            cancel: Arc::clone(&cancel),
        })
        .expect("queued");
    let client = std::thread::spawn(move || {
        let mut seen = Seen {
            queue_wait: None,
            text_at: Vec::new(),
            summary: None,
            failed: None,
            ended_at: Instant::now(),
        };
        while let Some(event) = rx.blocking_recv() {
            match event {
                JobEvent::Started { queue_wait } => seen.queue_wait = Some(queue_wait),
                JobEvent::Text(_) => seen.text_at.push(Instant::now()),
                JobEvent::Finished(s) => seen.summary = Some(s),
                JobEvent::Failed(e) => seen.failed = Some(e),
            }
        }
        seen.ended_at = Instant::now();
        seen
    });
    Submitted { cancel, client }
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        ..SamplingParams::default()
    }
}

const TOPICS: [&str; 6] = [
    "the sea",
    "a lighthouse keeper who counts ships",
    "bread",
    "why the sky is blue, in detail, for a curious child who asks many questions",
    "a cat",
    "mountains in winter",
];

/// Every job's device time is its share of the steps it was in, and the shares add up
/// exactly to the CPU time the engine measured; each receipt's `device_ms` is its job's
/// share, truncated. Jobs of every kind are mixed: greedy and sampled, short and long
/// prompts, one cancelled mid-answer, one that times out.
#[test]
fn device_time_split_among_batched_jobs_adds_up_to_the_measured_total() {
    let engine = engine(4, 32, 1 << 30);
    let mut jobs = Vec::new();
    for (i, topic) in TOPICS.iter().enumerate() {
        let text = format!("Write a few sentences about {topic}.").repeat(1 + i % 3);
        let params = SamplingParams {
            temperature: if i % 2 == 0 { 0.0 } else { 0.8 },
            seed: i as u64,
            max_tokens: 12 + 7 * i,
            ..SamplingParams::default()
        };
        jobs.push(submit(
            &engine,
            prompt(&engine, &text),
            params,
            Duration::from_secs(600),
        ));
    }
    // One cancelled by its client after it started, one whose deadline passes mid-way.
    let cancelled = submit(
        &engine,
        prompt(&engine, "Tell me a long story about a dragon."),
        greedy(200),
        Duration::from_secs(600),
    );
    let timed_out = submit(
        &engine,
        prompt(&engine, "Tell me a long story about a knight."),
        greedy(400),
        Duration::from_millis(1500),
    );
    std::thread::sleep(Duration::from_millis(700));
    cancelled.cancel.store(true, Ordering::Relaxed);
    jobs.push(cancelled);
    jobs.push(timed_out);
    let seen: Vec<Seen> = jobs.into_iter().map(|j| j.client.join().unwrap()).collect();

    let mut sum = 0u64;
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.failed, None, "job {i}");
        let summary = s
            .summary
            .as_ref()
            .unwrap_or_else(|| panic!("job {i} has no summary"));
        assert_eq!(
            summary.metering.device_ms,
            summary.device_micros / 1000,
            "job {i}: the receipt's device time is the job's share"
        );
        if summary.completion_tokens > 0 {
            assert!(
                summary.device_micros > 0,
                "job {i} generated on no device time"
            );
        }
        sum += summary.device_micros;
    }
    let total = engine.stats.device_micros.load(Ordering::Relaxed);
    eprintln!(
        "{} jobs: shares {sum} us, engine total {total} us; {} steps, {} job-steps",
        seen.len(),
        engine.stats.steps.load(Ordering::Relaxed),
        engine.stats.step_jobs.load(Ordering::Relaxed)
    );
    assert!(total > 0);
    assert_eq!(sum, total, "the jobs' shares add up to the measured total");
    let receipts_ms: u64 = seen
        .iter()
        .map(|s| s.summary.as_ref().unwrap().metering.device_ms)
        .sum();
    let gap = total / 1000 - receipts_ms;
    assert!(
        gap <= seen.len() as u64
            && (gap as f64) <= 0.01 * (total as f64 / 1000.0) + seen.len() as f64,
        "receipts carry {receipts_ms} ms of {} ms measured",
        total / 1000
    );
    // The batch really ran jobs together (else this test would show nothing).
    let steps = engine.stats.steps.load(Ordering::Relaxed);
    let job_steps = engine.stats.step_jobs.load(Ordering::Relaxed);
    assert!(
        job_steps as f64 / steps as f64 > 1.5,
        "mean occupancy {job_steps}/{steps}"
    );
    let ends: Vec<_> = seen
        .iter()
        .map(|s| s.summary.as_ref().unwrap().end)
        .collect();
    assert_eq!(ends[ends.len() - 2], enclave::engine::JobEnd::Cancelled);
    assert_eq!(ends[ends.len() - 1], enclave::engine::JobEnd::TimedOut);
    engine.shutdown();
}

/// With room in the KV cache for two jobs' reservations, the batch holds two although
/// `max_batch` allows eight; the others wait in the queue in order and all finish.
#[test]
fn the_kv_cache_budget_bounds_the_batch_and_the_rest_wait() {
    let probe = engine(1, 32, 1 << 30);
    let ids = prompt(&probe, "Name three colours.");
    let need = probe.kv_reservation(ids.len(), 24);
    let per_token = probe.model().model.config().kv_bytes_per_token();
    probe.shutdown();
    drop(probe);
    // Room for two reservations and a half.
    let engine = engine(8, 32, per_token * (2 * need + need / 2));
    assert_eq!(engine.kv_budget_tokens(), 2 * need + need / 2);
    let submitted = Instant::now();
    let jobs: Vec<Submitted> = (0..5)
        .map(|_| submit(&engine, ids.clone(), greedy(24), Duration::from_secs(600)))
        .collect();
    let budget = engine.kv_budget_tokens();
    let (mut most_active, mut most_reserved) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(300);
    while jobs.iter().any(|j| !j.client.is_finished()) && Instant::now() < deadline {
        most_active = most_active.max(engine.stats.active.load(Ordering::Relaxed));
        most_reserved = most_reserved.max(engine.stats.kv_reserved_tokens.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen: Vec<Seen> = jobs.into_iter().map(|j| j.client.join().unwrap()).collect();
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.failed, None, "job {i}");
        assert!(s.summary.is_some(), "job {i} did not finish");
    }
    eprintln!("budget {budget} positions, reservation {need} each: at most {most_active} active, {most_reserved} reserved");
    assert!(
        most_active <= 2,
        "{most_active} jobs in the batch with room for 2"
    );
    assert!(
        most_reserved <= budget,
        "{most_reserved} reserved of {budget}"
    );
    assert_eq!(
        engine.stats.kv_reserved_tokens.load(Ordering::Relaxed),
        0,
        "all given back"
    );
    // The third job joined only when one of the first two had finished (its client saw
    // the end a moment after the engine moved on: 100 ms of slack).
    let first_done = seen[..2].iter().map(|s| s.ended_at).min().unwrap() - submitted;
    let third_wait = seen[2].queue_wait.expect("started");
    assert!(
        third_wait + Duration::from_millis(100) >= first_done,
        "the third job waited {third_wait:?}; the first job ended {first_done:?} after submission"
    );
    engine.shutdown();
}

/// A long prompt arriving while another job decodes is prefilled in chunks between the
/// decode steps: the decoding job keeps getting tokens throughout, and none of its gaps
/// comes near the time the whole prefill took (which is what it would wait without
/// chunking). Bound asserted: the longest gap is at most a third of the long prompt's
/// prefill, and the decoding job gets at least a third as many tokens as there are
/// chunks meanwhile.
#[test]
fn a_long_prompt_does_not_stall_jobs_that_are_decoding() {
    let chunk = 64;
    let engine = engine(4, chunk, 1 << 30);
    let decoding = submit(
        &engine,
        prompt(&engine, "Count from 1 to 400, separated by commas."),
        greedy(1500),
        Duration::from_secs(600),
    );
    // Let it reach steady decoding.
    std::thread::sleep(Duration::from_millis(1500));
    let long_text = "The committee reviewed the harbour's records, the tides, the weather and the ledgers of every ship. ".repeat(40);
    let long_ids = prompt(
        &engine,
        &format!("{long_text}\nSummarise this in one word."),
    );
    let chunks = long_ids.len().div_ceil(chunk);
    let arrived = Instant::now();
    let long = submit(
        &engine,
        long_ids.clone(),
        greedy(1),
        Duration::from_secs(600),
    );
    let long_seen = long.client.join().unwrap();
    let prefill = long_seen.ended_at - arrived;
    decoding.cancel.store(true, Ordering::Relaxed);
    let seen = decoding.client.join().unwrap();
    assert!(long_seen.summary.is_some(), "{:?}", long_seen.failed);
    let during: Vec<Instant> = seen
        .text_at
        .iter()
        .copied()
        .filter(|t| *t >= arrived && *t <= long_seen.ended_at)
        .collect();
    let mut marks = vec![arrived];
    marks.extend(&during);
    marks.push(long_seen.ended_at);
    let longest_gap = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    eprintln!(
        "long prompt: {} tokens in {chunks} chunks of {chunk}, prefilled in {prefill:?}; the decoding job got {} pieces of text meanwhile, longest gap {longest_gap:?}",
        long_ids.len(),
        during.len()
    );
    assert!(
        seen.summary.as_ref().is_some_and(|s| s.end == enclave::engine::JobEnd::Cancelled),
        "the decoding job was still decoding when the long prompt finished (else nothing was measured): {:?}",
        seen.summary.as_ref().map(|s| s.end)
    );
    assert!(
        chunks >= 9,
        "the long prompt is {} tokens: too short to show chunking",
        long_ids.len()
    );
    assert!(
        longest_gap <= prefill / 3,
        "the decoding job waited {longest_gap:?} at once while a {prefill:?} prefill ran"
    );
    assert!(
        during.len() >= chunks / 3,
        "only {} pieces of text during {chunks} prefill chunks",
        during.len()
    );
    engine.shutdown();
}
