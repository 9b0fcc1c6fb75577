//! Batch invariance of continuous batching (inference::batch, Model::forward_batch): a
//! job's output ids, and the logits and hidden state of every step (as f32 bit patterns),
//! are the same whether it runs alone through `generate_chunked` or in a batch: with 1, 4
//! or 7 others, at any position, joining while others decode, its long prompt prefilled in
//! chunks between their decode steps, on 1 or 2 threads, and whether or not another
//! sequence is removed mid-way. Also: bad batch items get typed errors naming the item.
//!
//! Every comparison is shown to be able to fail: different jobs do give different logits,
//! and the sampled jobs do pick tokens other than the arg-max.
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use inference::batch::{Batch, Event, SeqId};
use inference::generate::{generate_chunked, FinishReason, Prefill, Sequence};
use inference::gguf::{model_for_tests, GgufFile};
use inference::model::{BatchItem, ForwardOutput, Model, Output, Variant, Weights};
use inference::sampling::{argmax, SamplingParams};
use inference::tokenizer::Tokenizer;
use inference::InferenceError;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, OnceLock};

struct Fixture {
    file: GgufFile,
    model: Model,
    eos: u32,
    jobs: Vec<Job>,
}

struct Job {
    prompt: Vec<u32>,
    params: SamplingParams,
}

/// A job's run: output ids, finish reason, and per step (token, logits bits, hidden bits).
#[derive(Clone, PartialEq)]
struct Trace {
    output_ids: Vec<u32>,
    finish: Option<FinishReason>,
    steps: Vec<(u32, Vec<u32>, Vec<u32>)>,
}

/// The index of the job with the long prompt.
const LONG: usize = 7;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let file = GgufFile::open(&model_for_tests()).expect("open model");
        let tokenizer = Tokenizer::from_gguf(&file).expect("tokenizer");
        let model = Model::load(&file, &Device::Cpu).expect("load model");
        assert!(
            model.uses_cpu_kernels(),
            "the bundled model runs on our kernels"
        );
        let eos = file.u32("tokenizer.ggml.eos_token_id").expect("eos id");
        let long = "The lighthouse keeper climbed the stairs at dusk, counting each step as \
                    his father had, and lit the lamp that ships had trusted for a hundred \
                    years. Storms came in from the west; he wrote them all down. "
            .repeat(4);
        let texts = [
            "The capital of France is",
            "Once upon a time, in a small village by the sea, there lived",
            "def fibonacci(n):",
            "Q: What is 17 times 3?\nA:",
            "Write a haiku about autumn leaves falling on a quiet pond.",
            "1, 2, 3, 5, 8, 13,",
            "Hello",
            long.as_str(),
        ];
        let sampled = |temperature, seed, top_p, top_k, max_tokens| SamplingParams {
            temperature,
            seed,
            top_p,
            top_k,
            max_tokens,
            ..SamplingParams::default()
        };
        let params = [
            sampled(0.0, 0, 1.0, 0, 8),
            sampled(0.7, 11, 0.9, 0, 10),
            sampled(1.0, 12345, 1.0, 40, 7),
            sampled(0.0, 0, 1.0, 0, 12),
            sampled(0.9, 3, 0.95, 50, 9),
            SamplingParams {
                repetition_penalty: 1.1,
                ..sampled(0.8, 99, 1.0, 0, 10)
            },
            sampled(1.0, 7, 1.0, 0, 6),
            sampled(0.75, 2024, 0.9, 0, 8),
        ];
        let jobs: Vec<Job> = texts
            .iter()
            .zip(params)
            .map(|(t, params)| Job {
                prompt: tokenizer.encode(t, false).expect("encode"),
                params,
            })
            .collect();
        assert!(jobs[LONG].prompt.len() > 100, "a prompt worth chunking");
        Fixture {
            file,
            model,
            eos,
            jobs,
        }
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Job `j` alone through `generate_chunked` (computed once per process).
fn alone(j: usize) -> Arc<Trace> {
    static CACHE: Mutex<Vec<Option<Arc<Trace>>>> = Mutex::new(Vec::new());
    if let Some(Some(t)) = CACHE.lock().unwrap().get(j) {
        return t.clone();
    }
    let f = fixture();
    let job = &f.jobs[j];
    let mut steps = Vec::new();
    let g = generate_chunked(
        &f.model,
        &job.prompt,
        &job.params,
        &[f.eos],
        None,
        Prefill::whole(),
        |s| {
            assert_eq!(s.index, steps.len());
            steps.push((s.token, bits(s.logits), bits(s.hidden)));
            ControlFlow::Continue(())
        },
    )
    .expect("generate");
    assert!(!steps.is_empty());
    let t = Arc::new(Trace {
        output_ids: g.output_ids,
        finish: Some(g.finish_reason),
        steps,
    });
    let mut cache = CACHE.lock().unwrap();
    if cache.len() <= j {
        cache.resize(j + 1, None);
    }
    cache[j] = Some(t.clone());
    t
}

/// When a job joins the batch, and optionally when (before which step) it is cancelled.
#[derive(Clone, Copy)]
struct Entry {
    job: usize,
    join: usize,
    cancel: Option<usize>,
}

fn at(job: usize, join: usize) -> Entry {
    Entry {
        job,
        join,
        cancel: None,
    }
}

/// What a batch run did: the most sequences in one pass, and prefill chunks that left
/// prompt tokens for later steps.
#[derive(Default, Debug)]
struct Shape {
    widest: usize,
    partial_prefills: usize,
}

/// Runs the schedule through a `Batch` (entries joining in order at their step) and
/// returns each entry's trace.
fn run_batch(entries: &[Entry], threads: usize, prefill_budget: usize) -> Vec<Trace> {
    run_batch_shaped(entries, threads, prefill_budget).0
}

fn run_batch_shaped(
    entries: &[Entry],
    threads: usize,
    prefill_budget: usize,
) -> (Vec<Trace>, Shape) {
    let mut shape = Shape::default();
    let f = fixture();
    let mut batch = Batch::new(&f.model, threads, prefill_budget);
    let mut ids: Vec<Option<SeqId>> = vec![None; entries.len()];
    let mut traces = vec![
        Trace {
            output_ids: Vec::new(),
            finish: None,
            steps: Vec::new(),
        };
        entries.len()
    ];
    let entry_of = |ids: &[Option<SeqId>], id: SeqId| {
        ids.iter().position(|&i| i == Some(id)).expect("known id")
    };
    let last_join = entries.iter().map(|e| e.join).max().unwrap_or(0);
    let mut step = 0;
    while step <= last_join || !batch.is_empty() {
        for (k, e) in entries.iter().enumerate() {
            if e.join == step {
                let job = &f.jobs[e.job];
                let seq = Sequence::new(&f.model, &job.prompt, &job.params, &[f.eos], None)
                    .expect("sequence");
                ids[k] = Some(batch.add(seq));
            }
            if e.cancel == Some(step) {
                let id = ids[k].expect("joined before it is cancelled");
                if let Some(g) = batch.cancel(id) {
                    assert_eq!(g.finish_reason, FinishReason::Cancelled);
                    assert_eq!(g.output_ids, traces[k].output_ids);
                    traces[k].finish = Some(FinishReason::Cancelled);
                }
            }
        }
        let events = batch.step();
        shape.widest = shape.widest.max(batch.last_step_tokens().len());
        for (id, event) in events {
            let t = &mut traces[entry_of(&ids, id)];
            match event {
                Event::Prefilled { done, prompt } => {
                    assert!(done < prompt && t.steps.is_empty());
                    shape.partial_prefills += 1;
                }
                Event::Token {
                    index,
                    token,
                    logits,
                    hidden,
                } => {
                    assert_eq!(index, t.steps.len());
                    t.output_ids.push(token);
                    t.steps.push((token, bits(&logits), bits(&hidden)));
                }
                Event::Finished(g) => {
                    assert_eq!(g.output_ids, t.output_ids);
                    t.finish = Some(g.finish_reason);
                }
                Event::Failed(e) => panic!("sequence {id} failed: {e}"),
            }
        }
        step += 1;
        assert!(step < 10_000, "the batch makes progress");
    }
    (traces, shape)
}

fn assert_same(label: &str, got: &Trace, want: &Trace) {
    assert_eq!(got.output_ids, want.output_ids, "{label}: output ids");
    assert_eq!(got.finish, want.finish, "{label}: finish reason");
    assert_eq!(got.steps.len(), want.steps.len(), "{label}: steps");
    for (i, (a, b)) in got.steps.iter().zip(&want.steps).enumerate() {
        assert_eq!(a.0, b.0, "{label}, step {i}: token");
        assert!(a.1 == b.1, "{label}, step {i}: logits differ in some bit");
        assert!(
            a.2 == b.2,
            "{label}, step {i}: hidden state differs in some bit"
        );
    }
}

/// Checks every entry of a schedule against its job alone; returns what the batch did.
fn check(label: &str, entries: &[Entry], threads: usize, budget: usize) -> Shape {
    let (traces, shape) = run_batch_shaped(entries, threads, budget);
    for (k, (e, t)) in entries.iter().zip(&traces).enumerate() {
        let label = format!("{label}, entry {k} (job {})", e.job);
        assert_same(&label, t, &alone(e.job));
    }
    shape
}

/// The comparisons can fail: other jobs give other bits, and seeded sampling does not
/// just take the arg-max.
#[test]
fn the_comparison_is_not_vacuous() {
    let traces: Vec<Arc<Trace>> = (0..fixture().jobs.len()).map(alone).collect();
    for (i, a) in traces.iter().enumerate() {
        for b in &traces[i + 1..] {
            assert!(
                a.steps[0].1 != b.steps[0].1,
                "first-step logits of two jobs"
            );
            assert!(
                a.steps[0].2 != b.steps[0].2,
                "first-step hidden of two jobs"
            );
        }
    }
    let off_argmax = traces
        .iter()
        .zip(&fixture().jobs)
        .filter(|(_, j)| !j.params.is_greedy())
        .flat_map(|(t, _)| &t.steps)
        .filter(|(token, logits, _)| {
            let l: Vec<f32> = logits.iter().map(|&b| f32::from_bits(b)).collect();
            argmax(&l) != *token
        })
        .count();
    assert!(off_argmax > 0, "sampled jobs pick some non-arg-max tokens");
    // And a changed step is caught.
    let t = alone(1);
    let mut bad = (*t).clone();
    bad.steps[2].1[17] ^= 1;
    let caught = std::panic::catch_unwind(|| assert_same("flipped bit", &bad, &t));
    assert!(caught.is_err(), "one flipped logit bit is caught");
}

#[test]
fn jobs_alone_and_in_mixes_of_2_5_8_match_generate_chunked() {
    // Alone in a batch.
    check("alone", &[at(1, 0)], 2, 512);
    check("alone", &[at(LONG, 0)], 1, 40);
    // Two, five, eight together; the same jobs at other positions; 1 and 2 threads.
    check("2", &[at(1, 0), at(0, 0)], 1, 512);
    check("2 swapped", &[at(0, 0), at(1, 0)], 2, 512);
    check(
        "5",
        &[at(2, 0), at(3, 0), at(4, 0), at(5, 0), at(6, 0)],
        2,
        512,
    );
    let all: Vec<Entry> = (0..8).map(|j| at(j, 0)).collect();
    let shape = check("8", &all, 1, 512);
    assert_eq!(shape.widest, 8, "all eight in one pass");
    let reversed: Vec<Entry> = (0..8).rev().map(|j| at(j, 0)).collect();
    let shape = check("8 reversed, chunked prefill", &reversed, 2, 64);
    assert!(shape.partial_prefills > 0, "{shape:?}");
}

#[test]
fn joining_mid_way_and_chunked_prefill_while_others_decode_match() {
    // Three decode; the long prompt joins at step 2 and is prefilled 24 tokens per step
    // between their decode steps; another joins at step 4 and one at step 9 (last
    // position), while the others are at various points (some jobs end early, at EOS).
    let entries = [
        at(0, 0),
        at(4, 0),
        at(2, 0),
        at(LONG, 2),
        at(5, 4),
        at(6, 9),
    ];
    let shape = check("joining", &entries, 2, 24);
    assert!(
        shape.widest >= 4 && shape.partial_prefills >= 3,
        "{shape:?}"
    );
    // The same on one thread, the prompts in smaller chunks (the budget goes to the
    // prefilling sequences in join order), and other positions.
    let entries = [at(3, 0), at(6, 1), at(1, 1), at(LONG, 1), at(0, 5)];
    let shape = check("joining, 1 thread", &entries, 1, 13);
    assert!(
        shape.widest >= 3 && shape.partial_prefills >= 5,
        "{shape:?}"
    );
}

#[test]
fn removing_a_sequence_mid_way_does_not_change_the_others() {
    let entries = [
        at(3, 0),
        Entry {
            job: 1,
            join: 0,
            cancel: Some(3),
        },
        at(5, 0),
        // Cancelled while its prompt is still being prefilled.
        Entry {
            job: LONG,
            join: 1,
            cancel: Some(3),
        },
        at(2, 2),
    ];
    let traces = run_batch(&entries, 2, 30);
    for k in [0, 2, 4] {
        let label = format!("entry {k} (job {})", entries[k].job);
        assert_same(&label, &traces[k], &alone(entries[k].job));
    }
    // The removed ones stopped with what they had, a prefix of their lone run.
    let (removed, want) = (&traces[1], alone(1));
    assert_eq!(removed.finish, Some(FinishReason::Cancelled));
    assert!(!removed.steps.is_empty() && removed.steps.len() < want.steps.len());
    assert!(removed.steps[..] == want.steps[..removed.steps.len()]);
    assert_eq!(traces[3].finish, Some(FinishReason::Cancelled));
    assert!(traces[3].steps.is_empty(), "cancelled during its prefill");
}

/// Three caches at different points (decoding, mid-prompt, empty).
fn primed(model: &Model, prompts: &[&[u32]]) -> Vec<inference::model::KvCache> {
    prompts
        .iter()
        .map(|p| {
            let mut c = model.new_cache();
            if !p.is_empty() {
                model
                    .forward_with_threads(p, 0, &mut c, Output::Last, 1)
                    .expect("prime");
            }
            c
        })
        .collect()
}

fn same_output(label: &str, a: &ForwardOutput, b: &ForwardOutput) {
    assert_eq!(
        (a.first_row, a.rows),
        (b.first_row, b.rows),
        "{label}: rows"
    );
    assert!(bits(&a.logits) == bits(&b.logits), "{label}: logits bits");
    assert!(bits(&a.hidden) == bits(&b.hidden), "{label}: hidden bits");
}

#[test]
fn forward_batch_rows_match_lone_forwards() {
    let f = fixture();
    let (p0, p1) = (&f.jobs[1].prompt, &f.jobs[LONG].prompt);
    let new: [&[u32]; 3] = [&[42], &p1[40..47], &f.jobs[4].prompt];
    let outputs = [Output::Last, Output::All, Output::Rows(1..4)];
    for threads in [1, 2] {
        let mut lone = primed(&f.model, &[p0, &p1[..40], &[]]);
        let mut batched = lone.clone();
        let want: Vec<ForwardOutput> = (0..3)
            .map(|i| {
                let start = lone[i].len();
                let out = outputs[i].clone();
                f.model
                    .forward_with_threads(new[i], start, &mut lone[i], out, threads)
                    .expect("lone forward")
            })
            .collect();
        let mut items: Vec<BatchItem<'_>> = batched
            .iter_mut()
            .enumerate()
            .map(|(i, cache)| BatchItem {
                tokens: new[i],
                start_pos: cache.len(),
                cache,
                output: outputs[i].clone(),
            })
            .collect();
        let got = f.model.forward_batch(&mut items, threads).expect("batch");
        assert_eq!(got.len(), 3);
        for i in 0..3 {
            same_output(&format!("{threads} threads, item {i}"), &got[i], &want[i]);
        }
        assert!(bits(want[0].last_logits()) != bits(want[1].last_logits()));
        // The caches took the same keys and values: one more token gives the same bits.
        for i in 0..3 {
            assert_eq!(batched[i].len(), lone[i].len());
            let pos = lone[i].len();
            let a = f
                .model
                .forward_with_threads(&[7], pos, &mut lone[i], Output::Last, 1);
            let b = f
                .model
                .forward_with_threads(&[7], pos, &mut batched[i], Output::Last, 1);
            same_output(&format!("after, item {i}"), &a.unwrap(), &b.unwrap());
        }
    }
    // No items: nothing to do.
    assert!(f.model.forward_batch(&mut [], 2).unwrap().is_empty());
}

fn refused(r: Result<Vec<ForwardOutput>, InferenceError>) -> (usize, InferenceError) {
    match r {
        Err(InferenceError::BatchItem { index, source }) => (index, *source),
        Err(e) => panic!("expected a batch item error, got {e}"),
        Ok(_) => panic!("expected a batch item error, got outputs"),
    }
}

#[test]
fn bad_items_get_typed_errors_naming_the_item() {
    let f = fixture();
    let vocab = f.model.config().vocab_size as u32;
    let mut caches = primed(&f.model, &[&[1, 2, 3], &[4, 5]]);
    let mut try_batch = |second: &[u32], start: Option<usize>, output: Output| {
        let [a, b] = &mut caches[..] else {
            unreachable!()
        };
        let mut items = [
            BatchItem {
                tokens: &[9],
                start_pos: 3,
                cache: a,
                output: Output::Last,
            },
            BatchItem {
                tokens: second,
                start_pos: start.unwrap_or(2),
                cache: b,
                output,
            },
        ];
        f.model.forward_batch(&mut items, 2)
    };
    let (i, e) = refused(try_batch(&[], None, Output::Last));
    assert!(matches!(
        e,
        InferenceError::InvalidParameter { name: "tokens", .. }
    ));
    assert_eq!(i, 1);
    let (i, e) = refused(try_batch(&[6], Some(5), Output::Last));
    assert!(matches!(
        e,
        InferenceError::InvalidParameter {
            name: "start_pos",
            ..
        }
    ));
    assert_eq!(i, 1);
    let (i, e) = refused(try_batch(&[6, vocab], None, Output::Last));
    assert!(matches!(
        e,
        InferenceError::InvalidParameter { name: "tokens", .. }
    ));
    assert!(e.to_string().contains("index 1"), "{e}");
    assert_eq!(i, 1);
    let (i, e) = refused(try_batch(&[6, 7], None, Output::Rows(1..3)));
    assert!(matches!(
        e,
        InferenceError::InvalidParameter { name: "output", .. }
    ));
    assert_eq!(i, 1);
    // Nothing ran: the caches are as they were, and a good batch still works.
    assert_eq!((caches[0].len(), caches[1].len()), (3, 2));
    // A cache of another model (fewer layers) in the middle of a batch.
    let other = Model::load_variant(&f.file, &Device::Cpu, Variant::SkipLayers { every: 2 })
        .expect("variant");
    let mut foreign = other.new_cache();
    let [a, b] = &mut caches[..] else {
        unreachable!()
    };
    let mut items = [
        BatchItem {
            tokens: &[9],
            start_pos: 3,
            cache: a,
            output: Output::Last,
        },
        BatchItem {
            tokens: &[9],
            start_pos: 0,
            cache: &mut foreign,
            output: Output::Last,
        },
        BatchItem {
            tokens: &[6],
            start_pos: 2,
            cache: b,
            output: Output::Last,
        },
    ];
    let (i, e) = refused(f.model.forward_batch(&mut items, 1));
    assert!(matches!(
        e,
        InferenceError::InvalidParameter { name: "cache", .. }
    ));
    assert_eq!(i, 1);
    assert!(e.to_string().contains("another model"));
    // Without it, the batch runs.
    items.swap(1, 2);
    let outs = f
        .model
        .forward_batch(&mut items[..2], 1)
        .expect("good batch");
    assert_eq!(outs.len(), 2);
    assert_eq!((caches[0].len(), caches[1].len()), (4, 3));
    // Too many tokens in one pass.
    let many = vec![1u32; inference::model::MAX_BATCH_ROWS + 1];
    let mut c = f.model.new_cache();
    let mut items = [BatchItem {
        tokens: &many,
        start_pos: 0,
        cache: &mut c,
        output: Output::Last,
    }];
    assert!(matches!(
        f.model.forward_batch(&mut items, 1),
        Err(InferenceError::InvalidParameter { name: "items", .. })
    ));
    // A sequence of another model in a batch fails alone; the others go on.
    let job = &f.jobs[0];
    let mut batch = Batch::new(&f.model, 1, 64);
    let good = batch.add(Sequence::new(&f.model, &job.prompt, &job.params, &[], None).unwrap());
    let bad = batch.add(Sequence::new(&other, &job.prompt, &job.params, &[], None).unwrap());
    let events = batch.step();
    assert!(events.iter().any(|(id, e)| *id == bad
        && matches!(
            e,
            Event::Failed(InferenceError::InvalidParameter { name: "cache", .. })
        )));
    assert_eq!(batch.ids(), [good]);
    let events = batch.step();
    assert!(matches!(events[..], [(id, Event::Token { index: 0, .. })] if id == good));
}

/// A tiny llama (one layer, width 64, vocab 64) written in memory: `Q8_0` matrices.
fn tiny_file() -> GgufFile {
    let (dim, vocab) = (64usize, 64usize);
    let meta: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(1)),
        ("llama.context_length", Value::U32(32)),
        ("llama.embedding_length", Value::U32(dim as u32)),
        ("llama.feed_forward_length", Value::U32(dim as u32)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
    ];
    let t = |shape: &[usize], dtype| {
        let x = Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap();
        QTensor::quantize(&x, dtype).unwrap()
    };
    let (f, q) = (GgmlDType::F32, GgmlDType::Q8_0);
    let tensors: Vec<(&str, QTensor)> = vec![
        ("token_embd.weight", t(&[vocab, dim], q)),
        ("output_norm.weight", t(&[dim], f)),
        ("blk.0.attn_norm.weight", t(&[dim], f)),
        ("blk.0.attn_q.weight", t(&[dim, dim], q)),
        ("blk.0.attn_k.weight", t(&[32, dim], q)),
        ("blk.0.attn_v.weight", t(&[32, dim], q)),
        ("blk.0.attn_output.weight", t(&[dim, dim], q)),
        ("blk.0.ffn_norm.weight", t(&[dim], f)),
        ("blk.0.ffn_gate.weight", t(&[dim, dim], q)),
        ("blk.0.ffn_up.weight", t(&[dim, dim], q)),
        ("blk.0.ffn_down.weight", t(&[dim, dim], q)),
    ];
    let mut buf = std::io::Cursor::new(Vec::new());
    let m: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut buf, &m, &ts).unwrap();
    GgufFile::from_bytes("tiny.gguf".into(), buf.into_inner()).expect("tiny gguf parses")
}

#[test]
fn candle_models_run_batches_item_by_item() {
    let file = tiny_file();
    let model = Model::load_with(&file, &Device::Cpu, Weights::DequantizedF32).unwrap();
    assert!(!model.uses_cpu_kernels());
    let prompts: [&[u32]; 3] = [&[1, 2, 3], &[4], &[5, 6, 7, 8, 9]];
    let mut lone: Vec<_> = (0..3).map(|_| model.new_cache()).collect();
    let want: Vec<ForwardOutput> = lone
        .iter_mut()
        .zip(prompts)
        .map(|(c, p)| model.forward_with_threads(p, 0, c, Output::All, 1).unwrap())
        .collect();
    let mut caches: Vec<_> = (0..3).map(|_| model.new_cache()).collect();
    let mut items: Vec<BatchItem<'_>> = caches
        .iter_mut()
        .zip(prompts)
        .map(|(cache, tokens)| BatchItem {
            tokens,
            start_pos: 0,
            cache,
            output: Output::All,
        })
        .collect();
    let got = model.forward_batch(&mut items, 2).unwrap();
    for i in 0..3 {
        same_output(&format!("candle item {i}"), &got[i], &want[i]);
    }
    assert!(bits(want[0].last_logits()) != bits(want[1].last_logits()));
    // A cache of the real model (on our kernels) is another model's.
    let mut real = fixture().model.new_cache();
    let mut items = [BatchItem {
        tokens: &[1],
        start_pos: 0,
        cache: &mut real,
        output: Output::Last,
    }];
    let (i, e) = refused(model.forward_batch(&mut items, 1));
    assert!(matches!(
        e,
        InferenceError::InvalidParameter { name: "cache", .. }
    ));
    assert_eq!(i, 0);
}

/// A batched pass meters like a lone one: its workers' CPU time lands on the caller.
#[test]
fn a_batched_pass_adds_its_workers_cpu_time_to_the_caller() {
    use inference::metering::worker_cpu_time;
    let f = fixture();
    let mut caches = primed(&f.model, &[&f.jobs[0].prompt, &[]]);
    let before = worker_cpu_time();
    let [a, b] = &mut caches[..] else {
        unreachable!()
    };
    let mut items = [
        BatchItem {
            tokens: &[5],
            start_pos: a.len(),
            cache: a,
            output: Output::Last,
        },
        BatchItem {
            tokens: &f.jobs[LONG].prompt[..64],
            start_pos: 0,
            cache: b,
            output: Output::Last,
        },
    ];
    f.model.forward_batch(&mut items, 2).expect("batch");
    assert!(
        worker_cpu_time() > before,
        "the second thread's time is counted"
    );
}

/// A sequence takes only the output of its own item's forward.
#[test]
fn a_sequence_refuses_an_output_it_did_not_ask_for() {
    let f = fixture();
    let job = &f.jobs[0];
    let mut seq = Sequence::new(&f.model, &job.prompt, &job.params, &[], None).unwrap();
    let mut cache = f.model.new_cache();
    let stray = f
        .model
        .forward_with_threads(&job.prompt, 0, &mut cache, Output::Last, 1)
        .unwrap();
    assert!(matches!(
        seq.absorb(stray.clone()),
        Err(InferenceError::InvalidParameter { name: "output", .. })
    ));
    // Its item, not run: still refused.
    assert!(seq.batch_item(usize::MAX).is_some());
    assert!(seq.absorb(stray).is_err());
    assert_eq!(seq.prefilled(), 0);
    assert!(seq.output_ids().is_empty() && !seq.is_finished());
}
