//! Chunked prefill (`generate_chunked`) on the real model: the same bits as one-shot
//! prefill for every chunk size (logits and hidden states of every step, output ids, the
//! activation fingerprint), which the auditor's re-execution and the fingerprint depend
//! on; and a check that breaks stops the prefill before its next chunk.
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use candle_core::Device;
use inference::fingerprint::FingerprintBuilder;
use inference::generate::{generate, generate_chunked, FinishReason, Generation, Prefill};
use inference::gguf::{model_for_tests, GgufFile};
use inference::model::{Model, MAX_CHUNK};
use inference::sampling::SamplingParams;
use inference::tokenizer::Tokenizer;
use std::ops::ControlFlow;
use std::sync::OnceLock;

struct Fixture {
    model: Model,
    /// A prompt longer than the forward's own pass limit (`MAX_CHUNK`).
    prompt: Vec<u32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let file = GgufFile::open(&model_for_tests()).expect("open model");
        let tokenizer = Tokenizer::from_gguf(&file).expect("tokenizer");
        let model = Model::load(&file, &Device::Cpu).expect("load model");
        let paragraph = "The lighthouse keeper climbed the stairs at dusk, counting each step \
                         as his father had, and lit the lamp that ships had trusted for a \
                         hundred years. Storms came in from the west; he wrote them all down. ";
        let mut prompt = Vec::new();
        while prompt.len() <= MAX_CHUNK + 60 {
            prompt.extend(tokenizer.encode(paragraph, false).expect("encode"));
        }
        Fixture { model, prompt }
    })
}

/// Every step's token, logits and hidden state (as bits), and the fingerprint bytes.
type Trace = (Generation, Vec<(u32, Vec<u32>, Vec<u32>)>, Vec<u8>);

fn params() -> SamplingParams {
    SamplingParams {
        max_tokens: 6,
        temperature: 0.0,
        ..SamplingParams::default()
    }
}

fn trace(run: impl FnOnce(&mut dyn FnMut(u32, &[f32], &[f32])) -> Generation) -> Trace {
    let f = fixture();
    let mut steps = Vec::new();
    let mut fp = FingerprintBuilder::new(f.model.config().embedding_length).unwrap();
    let g = run(&mut |token, logits, hidden| {
        fp.push(hidden).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        steps.push((token, bits(logits), bits(hidden)));
    });
    (g, steps, fp.finish().to_bytes())
}

fn one_shot() -> Trace {
    let f = fixture();
    trace(|on| {
        generate(&f.model, &f.prompt, &params(), &[], None, |s| {
            on(s.token, s.logits, s.hidden);
            ControlFlow::Continue(())
        })
        .unwrap()
    })
}

fn chunked(chunk: usize, seen: &mut Vec<usize>) -> Trace {
    let f = fixture();
    trace(|on| {
        generate_chunked(
            &f.model,
            &f.prompt,
            &params(),
            &[],
            None,
            Prefill {
                chunk,
                check: |done| {
                    seen.push(done);
                    ControlFlow::Continue(())
                },
            },
            |s| {
                on(s.token, s.logits, s.hidden);
                ControlFlow::Continue(())
            },
        )
        .unwrap()
    })
}

#[test]
fn chunked_prefill_gives_the_same_bits_as_one_shot() {
    let f = fixture();
    let n = f.prompt.len();
    assert!(
        n > MAX_CHUNK,
        "the prompt crosses the forward's own pass limit"
    );
    let (reference, ref_steps, ref_fp) = one_shot();
    assert_eq!(ref_steps.len(), 6);
    for chunk in [7, 128, MAX_CHUNK, MAX_CHUNK + 1] {
        let mut seen = Vec::new();
        let (g, steps, fp) = chunked(chunk, &mut seen);
        assert_eq!(g.output_ids, reference.output_ids, "chunk {chunk}");
        assert_eq!(g.finish_reason, reference.finish_reason, "chunk {chunk}");
        assert_eq!(g.prompt_tokens, n);
        for (i, (a, b)) in steps.iter().zip(&ref_steps).enumerate() {
            assert_eq!(a.0, b.0, "chunk {chunk}, step {i}: token");
            assert!(
                a.1 == b.1,
                "chunk {chunk}, step {i}: logits differ in some bit"
            );
            assert!(
                a.2 == b.2,
                "chunk {chunk}, step {i}: hidden state differs in some bit"
            );
        }
        assert_eq!(fp, ref_fp, "chunk {chunk}: activation fingerprint");
        // The check runs before every chunk, with the prompt tokens run so far.
        let want: Vec<usize> = (0..n).step_by(chunk.min(n)).collect();
        assert_eq!(seen, want, "chunk {chunk}");
    }
}

#[test]
fn a_check_that_breaks_stops_the_prefill_before_its_next_chunk() {
    let f = fixture();
    let mut seen = Vec::new();
    let mut tokens = 0;
    let g = generate_chunked(
        &f.model,
        &f.prompt,
        &params(),
        &[],
        None,
        Prefill {
            chunk: 64,
            check: |done| {
                seen.push(done);
                if done >= 128 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        },
        |_| {
            tokens += 1;
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(seen, [0, 64, 128], "two chunks ran, the third was refused");
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert!(g.output_ids.is_empty());
    assert_eq!(tokens, 0, "no token was sampled");
    assert_eq!(g.prompt_tokens, f.prompt.len());
}
