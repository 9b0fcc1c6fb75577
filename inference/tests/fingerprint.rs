//! Fingerprints on the real model: what generation commits to (from `Step::hidden`) is
//! what the auditor recomputes from one teacher-forced pass over prompt + output.
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use candle_core::Device;
use inference::fingerprint::{compare, fingerprint_of_prefill, FingerprintBuilder};
use inference::generate::generate;
use inference::gguf::{model_for_tests, GgufFile};
use inference::model::Model;
use inference::sampling::SamplingParams;
use inference::score::score;
use std::ops::ControlFlow;

fn model() -> Model {
    let path = model_for_tests();
    let file = GgufFile::open(&path).expect("open model");
    Model::load(&file, &Device::Cpu).expect("load model")
}

/// Greedy generation of 70 tokens (two full chunks and a partial one; no EOS ids, so it
/// runs to the end) from a golden prompt; the prefill fingerprint is bit-identical (the CPU forward is
/// batch-invariant and thread-count-invariant).
#[test]
fn generation_fingerprint_equals_prefill_fingerprint() {
    let model = model();
    let hidden_size = model.config().embedding_length;
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/greedy_golden.json"
        ))
        .expect("read goldens"),
    )
    .expect("json");
    let prompt: Vec<u32> = goldens["cases"][0]["prompt_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect();
    let params = SamplingParams {
        max_tokens: 70,
        ..Default::default()
    };
    let mut builder = FingerprintBuilder::new(hidden_size).unwrap();
    let g = generate(&model, &prompt, &params, &[], None, |s| {
        builder.push(s.hidden).expect("hidden size");
        ControlFlow::Continue(())
    })
    .expect("generate");
    assert_eq!(g.output_ids.len(), 70);
    let claimed = builder.finish();
    assert_eq!(claimed.tokens(), 70);
    assert_eq!(claimed.chunk_count(), 3);

    let recomputed = fingerprint_of_prefill(&model, &prompt, &g.output_ids).expect("prefill");
    let c = compare(&claimed, &recomputed);
    eprintln!(
        "generate vs prefill: {} chunks, shared {:?}, max diff {}",
        c.chunks.len(),
        c.chunks
            .iter()
            .map(|k| (k.shared, k.claimed))
            .collect::<Vec<_>>(),
        c.max_abs_diff()
    );
    assert!(c.all_indices_shared());
    assert_eq!(c.max_abs_diff(), 0.0);
    assert_eq!(claimed.to_bytes(), recomputed.to_bytes());

    // The same from score's hidden rows.
    let scored = score(&model, &prompt, &g.output_ids, 1).expect("score");
    let from_score = inference::fingerprint::Fingerprint::from_rows(
        hidden_size,
        scored.hidden.iter().map(Vec::as_slice),
    )
    .unwrap();
    assert_eq!(from_score, recomputed);

    // A changed prompt moves the fingerprint.
    let mut other = prompt.clone();
    other[5] = 2000;
    let moved = fingerprint_of_prefill(&model, &other, &g.output_ids).expect("prefill");
    let c = compare(&claimed, &moved);
    eprintln!(
        "changed prompt: shared {:?}, max diff {}",
        c.chunks
            .iter()
            .map(|k| (k.shared, k.claimed))
            .collect::<Vec<_>>(),
        c.max_abs_diff()
    );
    assert!(c.max_abs_diff() > 0.0);
}
