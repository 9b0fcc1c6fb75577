//! Aggregate decode throughput of continuous batching on the bundled model: for each
//! batch size B, B sequences (distinct short prompts, greedy, no EOS, NEW_TOKENS each) are
//! prefilled in one pass, then decoded together, one `Model::forward_batch` per step; it
//! prints the decode tokens/s of all sequences together (and CPU seconds per token, from
//! `inference::metering`) and the ratio to batch 1. Not a test: numbers depend on the
//! machine and its load.
//!
//! Usage: batch_bench [NEW_TOKENS] [THREADS] [BATCH...]   (defaults: 64 2 1 4 8 16 32)

use candle_core::Device;
use inference::batch::{Batch, Event};
use inference::generate::Sequence;
use inference::gguf::{default_model_path, GgufFile};
use inference::metering::job_cpu_time;
use inference::model::Model;
use inference::sampling::SamplingParams;
use std::time::Instant;

/// One run: (decode tokens, wall seconds, CPU seconds) of the decode steps.
fn run(model: &Model, batch_size: usize, new_tokens: usize, threads: usize) -> (usize, f64, f64) {
    let params = SamplingParams {
        max_tokens: new_tokens,
        ..SamplingParams::default()
    };
    let mut batch = Batch::new(model, threads, usize::MAX);
    for b in 0..batch_size as u32 {
        // 16 ordinary text-like ids, different per sequence.
        let prompt: Vec<u32> = (0..16)
            .map(|i| 200 + (b * 977 + i * 7919) % 40_000)
            .collect();
        let seq = Sequence::new(model, &prompt, &params, &[], None).expect("sequence");
        batch.add(seq);
    }
    // The prefill pass (samples each sequence's first token).
    let events = batch.step();
    assert!(events
        .iter()
        .all(|(_, e)| matches!(e, Event::Token { index: 0, .. })));
    let (wall0, cpu0) = (Instant::now(), job_cpu_time());
    let mut tokens = 0;
    while !batch.is_empty() {
        for (_, e) in batch.step() {
            match e {
                Event::Token { .. } => tokens += 1,
                Event::Failed(e) => panic!("{e}"),
                _ => {}
            }
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = (job_cpu_time() - cpu0).as_secs_f64();
    (tokens, wall, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let new_tokens: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let sizes: Vec<usize> = if args.len() > 3 {
        args[3..]
            .iter()
            .map(|s| s.parse().expect("a batch size"))
            .collect()
    } else {
        vec![1, 4, 8, 16, 32]
    };
    let file = GgufFile::open(&default_model_path()).expect("model (run scripts/fetch-model.sh)");
    let model = Model::load(&file, &Device::Cpu).expect("model loads");
    let cpu_name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "cpu: {cpu_name}; {} hardware threads; load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "kernel: {:?}; forward threads: {threads}; {new_tokens} new tokens per sequence after a \
         16-token prompt; build: {}",
        model.kernel(),
        if cfg!(debug_assertions) {
            "dev profile (inference at opt-level 3)"
        } else {
            "release"
        }
    );
    run(&model, 2, 4, threads); // warm-up
    let mut base = None;
    println!("batch  decode tok/s  vs batch 1  ms/step  CPU ms/token");
    for b in sizes {
        let (tokens, wall, cpu) = run(&model, b, new_tokens, threads);
        let tps = tokens as f64 / wall;
        let base_tps = *base.get_or_insert(tps);
        let steps = new_tokens.saturating_sub(1).max(1);
        println!(
            "{b:>5}  {tps:>12.1}  {:>9.2}x  {:>7.1}  {:>12.2}",
            tps / base_tps,
            wall * 1e3 / steps as f64,
            cpu * 1e3 / tokens.max(1) as f64
        );
    }
}
