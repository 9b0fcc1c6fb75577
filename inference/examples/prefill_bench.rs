//! Chunked against one-shot prefill on the bundled model, paired: the same prompt run
//! whole and in chunks back to back, the order swapped every round; prints the median of
//! the per-pair time ratios (chunked / whole) for each chunk size, as one JSON line.
//! Also checks that both give the same bits (last logits, output ids).
//!
//! Usage: prefill_bench [PROMPT_TOKENS] [ROUNDS] [CHUNK...]

use candle_core::Device;
use inference::generate::{generate, generate_chunked, Prefill};
use inference::gguf::{default_model_path, GgufFile};
use inference::model::Model;
use inference::sampling::SamplingParams;
use std::ops::ControlFlow;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let len: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1400);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let chunks: Vec<usize> = if args.len() > 3 {
        args[3..]
            .iter()
            .map(|s| s.parse().expect("a chunk size"))
            .collect()
    } else {
        vec![64, 128, 256]
    };
    let file = GgufFile::open(&default_model_path()).expect("model (run scripts/fetch-model.sh)");
    let model = Model::load(&file, &Device::Cpu).expect("model loads");
    // Ordinary text-like ids (no special tokens), deterministic.
    let prompt: Vec<u32> = (0..len as u32).map(|i| 200 + (i * 7919) % 40_000).collect();
    let params = SamplingParams {
        max_tokens: 1,
        temperature: 0.0,
        ..SamplingParams::default()
    };
    let whole = || {
        let mut logits = Vec::new();
        let g = generate(&model, &prompt, &params, &[], None, |s| {
            logits = s.logits.to_vec();
            ControlFlow::Continue(())
        })
        .unwrap();
        (g, logits)
    };
    let chunked = |chunk: usize| {
        let mut logits = Vec::new();
        let g = generate_chunked(
            &model,
            &prompt,
            &params,
            &[],
            None,
            Prefill {
                chunk,
                check: |_| ControlFlow::Continue(()),
            },
            |s| {
                logits = s.logits.to_vec();
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        (g, logits)
    };
    let (reference, reference_logits) = whole();
    let mut out = Vec::new();
    for &chunk in &chunks {
        let (g, logits) = chunked(chunk);
        assert_eq!(g.output_ids, reference.output_ids, "chunk {chunk}");
        assert!(
            logits
                .iter()
                .zip(&reference_logits)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "chunk {chunk}: logits differ"
        );
        let (mut ratios, mut whole_s, mut chunk_s) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds * 2 {
            // Each side's own prefill time (generation's `prefill_secs`).
            let run_whole = || whole().0.prefill_secs;
            let run_chunked = || chunked(chunk).0.prefill_secs;
            let (w, c) = if round % 2 == 0 {
                let w = run_whole();
                (w, run_chunked())
            } else {
                let c = run_chunked();
                (run_whole(), c)
            };
            ratios.push(c / w);
            whole_s.push(w);
            chunk_s.push(c);
        }
        out.push(format!(
            "{{\"chunk\": {chunk}, \"whole_prefill_s\": {:.3}, \"chunked_prefill_s\": {:.3}, \"ratio_chunked_vs_whole_paired\": {:.4}}}",
            median(whole_s),
            median(chunk_s),
            median(ratios)
        ));
    }
    println!(
        "{{\"prompt_tokens\": {len}, \"pairs\": {}, \"results\": [{}]}}",
        rounds * 2,
        out.join(", ")
    );
}
