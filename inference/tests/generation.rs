//! The forward pass, greedy and seeded generation and teacher-forced scoring on the real
//! model, against llama.cpp's greedy goldens (tests/fixtures/greedy_golden.json).
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use candle_core::Device;
use inference::generate::{generate, FinishReason, Generation};
use inference::gguf::{model_for_tests, GgufFile};
use inference::model::{Model, Output};
use inference::sampling::SamplingParams;
use inference::score::{score, score_with, top_k_of};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::ops::ControlFlow;
use std::sync::OnceLock;

/// Two correct implementations of llama.cpp's arithmetic (Q4_1 weights, activations
/// quantized to 8 bits per 32-value block before every dot product) differ by up to about
/// this much in the top logits: the int8 activation rounding amplifies ulp-level
/// differences (accumulation order, f16 KV cache in llama.cpp, exp/silu approximations).
/// Measured: scaling every matmul input by (1 + 1e-6) moves the top logits of
/// capital_of_france by up to 0.6, and our top-5 logits at the fixture's first three
/// positions differ from llama.cpp's by up to 0.62.
const INT8_NOISE: f32 = 1.0;

/// A greedy choice that differs from llama.cpp's is accepted only at a near-tie: the gap
/// between the two tokens is below this, on our side (and llama.cpp's recorded top-1
/// margin there is below it too). Observed gaps at the divergences: 0.01 to 0.24 (ours),
/// 0.02 to 0.27 (llama.cpp's).
const NEAR_TIE: f32 = 0.5;

/// Max |score logit - generation logit| at the same position (the brief's bound; the
/// forward is batch-invariant, so the observed difference is 0).
const SCORE_VS_GENERATE_TOL: f32 = 1e-3;

/// Cases whose greedy generation is actually run in the default test (the shortest
/// ones; the others are covered by teacher forcing, which is equivalent because the
/// forward is batch-invariant). `--ignored greedy_generation_all_cases` runs every case.
const GENERATED_CASES: &[&str] = &["haiku_with_system", "arithmetic", "primes"];

struct Fixture {
    model: Model,
    eos: u32,
    sha256: [u8; 32],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = model_for_tests();
        let file = GgufFile::open(&path).expect("open model");
        let model = Model::load(&file, &Device::Cpu).expect("load model");
        let eos = file.u32("tokenizer.ggml.eos_token_id").expect("eos id");
        let bytes = std::fs::read(&path).expect("read model");
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        Fixture { model, eos, sha256 }
    })
}

fn goldens() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/greedy_golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read goldens")).expect("json")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Per generated token: top-5 (id, logit) and the full logits' value at the golden token.
struct StepRecord {
    token: u32,
    top: Vec<(u32, f32)>,
}

/// Greedy generation that stops early (Cancelled) at the first token differing from `want`.
fn run_greedy(f: &Fixture, prompt: &[u32], want: &[u32]) -> (Generation, Vec<StepRecord>) {
    let params = SamplingParams {
        max_tokens: want.len(),
        ..Default::default()
    };
    let mut steps = Vec::new();
    let g = generate(&f.model, prompt, &params, &[f.eos], None, |s| {
        steps.push(StepRecord {
            token: s.token,
            top: top_k_of(s.logits, 5),
        });
        if want.get(s.index) == Some(&s.token) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
    .expect("generate");
    (g, steps)
}

#[test]
fn model_digest_is_the_file_sha256() {
    let f = fixture();
    assert_eq!(f.model.digest(), f.sha256);
    let golden = goldens();
    assert_eq!(
        hex(&f.model.digest()),
        golden["model"]["sha256"].as_str().unwrap(),
        "the fixtures were made from another file"
    );
    let c = f.model.config();
    assert_eq!(
        (
            c.n_layer,
            c.n_head,
            c.n_kv_head,
            c.embedding_length,
            c.head_dim
        ),
        (30, 9, 3, 576, 64)
    );
    assert_eq!((c.vocab_size, c.context_length), (49152, 8192));
}

struct CaseReport {
    name: String,
    /// First output index where our greedy choice differs from llama.cpp's, with our gap
    /// and llama.cpp's top-1 margin there.
    divergence: Option<(usize, f32, f32)>,
}

/// Teacher-forces every golden case (one pass each) and checks it against llama.cpp.
fn check_case(
    f: &Fixture,
    case: &Value,
    failures: &mut Vec<String>,
    max_diff: &mut f32,
) -> CaseReport {
    let name = case["name"].as_str().unwrap().to_string();
    let prompt = ids(&case["prompt_ids"]);
    let want = ids(&case["output_ids"]);
    let llama_margin = |j: usize| case["top1_margin"][j].as_f64().unwrap() as f32;
    let mut first_logits: Vec<Vec<f32>> = Vec::new();
    let scored = score_with(&f.model, &prompt, &want, 5, |j, l| {
        if j < 3 {
            first_logits.push(l.to_vec());
        }
    })
    .expect("score");
    assert_eq!(scored.positions.len(), want.len());
    assert_eq!(scored.hidden.len(), want.len());
    assert!(scored.hidden.iter().all(|h| h.len() == 576));

    // Top-5 logits of the first positions against llama.cpp's.
    for t in case["top_logits"].as_array().unwrap() {
        let step = t["step"].as_u64().unwrap() as usize;
        for e in t["top"].as_array().unwrap() {
            let id = e["id"].as_u64().unwrap() as usize;
            let logit = e["logit"].as_f64().unwrap() as f32;
            let ours = first_logits[step][id];
            let d = (ours - logit).abs();
            *max_diff = max_diff.max(d);
            if d > INT8_NOISE {
                failures.push(format!(
                    "{name}: step {step} id {id}: ours {ours}, llama.cpp {logit}"
                ));
            }
        }
    }

    // Every golden token is our greedy choice or loses only a near-tie.
    let mut divergence = None;
    for (j, p) in scored.positions.iter().enumerate() {
        if p.rank == 0 {
            continue;
        }
        let gap = p.top[0].1 - p.logit;
        if divergence.is_none() {
            divergence = Some((j, gap, llama_margin(j)));
        }
        if gap >= NEAR_TIE || llama_margin(j) >= NEAR_TIE || p.rank > 2 {
            failures.push(format!(
                "{name}: output {j}: golden token {} has rank {} and gap {gap} (llama.cpp margin {}); top {:?}",
                p.token, p.rank, llama_margin(j), p.top
            ));
        }
    }
    CaseReport { name, divergence }
}

fn check_generation(
    f: &Fixture,
    case: &Value,
    div: Option<usize>,
    failures: &mut Vec<String>,
    max_diff: &mut f32,
) {
    let name = case["name"].as_str().unwrap();
    let prompt = ids(&case["prompt_ids"]);
    let want = ids(&case["output_ids"]);
    let (g, steps) = run_greedy(f, &prompt, &want);
    // Generation diverges exactly where teacher forcing said it would.
    let first = g.output_ids.iter().zip(&want).position(|(a, b)| a != b);
    if first != div {
        failures.push(format!(
            "{name}: generation diverges at {first:?}, scoring predicted {div:?}"
        ));
    }
    if div.is_none() {
        let want_reason = match case["stop_reason"].as_str().unwrap() {
            "eog" => FinishReason::Stop,
            _ => FinishReason::Length,
        };
        if (g.output_ids.as_slice(), g.finish_reason) != (want.as_slice(), want_reason) {
            failures.push(format!(
                "{name}: {:?} {:?} vs golden {want:?} {want_reason:?}",
                g.output_ids, g.finish_reason
            ));
        }
    }
    // Generation's logits equal teacher forcing's at every position.
    let scored = score(&f.model, &prompt, &g.output_ids, 5).expect("score");
    for (j, (s, p)) in steps.iter().zip(&scored.positions).enumerate() {
        assert_eq!(s.token, p.token);
        let mut d = 0f32;
        for ((ia, la), (ib, lb)) in s.top.iter().zip(&p.top) {
            d = d.max(if ia == ib {
                (la - lb).abs()
            } else {
                f32::INFINITY
            });
        }
        *max_diff = max_diff.max(d);
        if d > SCORE_VS_GENERATE_TOL {
            failures.push(format!(
                "{name}: output {j}: score vs generation logits differ by {d}"
            ));
        }
    }
}

fn golden_check(generate_all: bool) {
    let f = fixture();
    let golden = goldens();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let mut failures = Vec::new();
    let (mut llama_diff, mut score_diff) = (0f32, 0f32);
    let mut exact = 0;
    let t = std::time::Instant::now();
    for case in cases {
        let r = check_case(f, case, &mut failures, &mut llama_diff);
        // Where llama.cpp agrees with itself (its batched and token-by-token prompt runs
        // give the same ids), a near-tie excuse is not available: ours must match exactly.
        let self_consistent = case["token_by_token_prompt"]["same_ids"].as_bool() == Some(true);
        if self_consistent {
            if let Some((j, gap, lm)) = r.divergence {
                failures.push(format!(
                    "{}: llama.cpp is self-consistent here, yet ours diverges at output {j} (gap {gap}, llama.cpp margin {lm})",
                    r.name
                ));
            }
        }
        match r.divergence {
            None => exact += 1,
            Some((j, gap, lm)) => eprintln!(
                "{}: greedy diverges from llama.cpp at output {j}: our gap {gap:.4}, llama.cpp top-1 margin {lm:.4}",
                r.name
            ),
        }
        if generate_all || GENERATED_CASES.contains(&r.name.as_str()) {
            check_generation(
                f,
                case,
                r.divergence.map(|d| d.0),
                &mut failures,
                &mut score_diff,
            );
        }
    }
    eprintln!(
        "{exact}/{} cases reproduce llama.cpp's greedy output exactly; max |ours - llama.cpp| over the \
         fixture's top-5 logits: {llama_diff:.4} (bound {INT8_NOISE}); max |score - generation|: \
         {score_diff:e} (bound {SCORE_VS_GENERATE_TOL}); {:.1}s",
        cases.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        exact >= 5,
        "only {exact} cases reproduce llama.cpp exactly (need 5)"
    );
}

#[test]
fn greedy_agrees_with_llama_cpp_and_score_reproduces_generation() {
    golden_check(false);
}

#[test]
#[ignore = "slow (minutes): greedy generation of every golden case"]
fn greedy_generation_all_cases() {
    golden_check(true);
}

#[test]
fn all_rows_and_last_row_agree() {
    let f = fixture();
    let prompt = ids(&goldens()["cases"][0]["prompt_ids"]);
    let mut cache = f.model.new_cache();
    let all = f
        .model
        .forward(&prompt, 0, &mut cache, Output::All)
        .unwrap();
    assert_eq!(all.rows, prompt.len());
    assert_eq!(cache.len(), prompt.len());
    let mut cache2 = f.model.new_cache();
    let last = f
        .model
        .forward(&prompt, 0, &mut cache2, Output::Last)
        .unwrap();
    assert_eq!(last.last_logits(), all.last_logits());
    assert_eq!(last.last_hidden(), all.last_hidden());
    assert_eq!(last.last_hidden().len(), 576);
    // Out of order positions are refused.
    assert!(f.model.forward(&[1], 0, &mut cache, Output::Last).is_err());
}

fn seeded_params(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 0.8,
        top_p: 0.95,
        top_k: 40,
        repetition_penalty: 1.1,
        seed,
        max_tokens: 8,
        ..Default::default()
    }
}

fn seeded_tokens(f: &Fixture, seed: u64) -> Vec<u32> {
    let prompt = ids(&goldens()["cases"][0]["prompt_ids"]);
    generate(
        &f.model,
        &prompt,
        &seeded_params(seed),
        &[f.eos],
        None,
        |_| ControlFlow::Continue(()),
    )
    .expect("generate")
    .output_ids
}

const CHILD_ENV: &str = "VERITEE_SEEDED_CHILD";

/// Run by `seeded_sampling_is_reproducible` in a child process with another thread count.
#[test]
#[ignore = "helper: run by seeded_sampling_is_reproducible in a child process"]
fn seeded_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let f = fixture();
    println!("TOKENS {:?}", seeded_tokens(f, 1));
}

#[test]
fn seeded_sampling_is_reproducible() {
    let f = fixture();
    let a = seeded_tokens(f, 1);
    assert_eq!(a, seeded_tokens(f, 1), "same seed, different tokens");
    let b = seeded_tokens(f, 2);
    assert_ne!(a, b, "seeds 1 and 2 gave the same 8 tokens");

    // The same seed on one thread instead of the default count gives the same tokens.
    let threads = candle_core::utils::get_num_threads();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "seeded_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("TOKENS ").map(|x| x.1))
        .expect("child printed no tokens");
    assert_eq!(line, format!("{a:?}"), "1 thread vs {threads} threads");
}

/// Prints prefill and decode tokens/s for both weight modes (`--ignored --nocapture`).
#[test]
#[ignore = "benchmark: prints tokens/s"]
fn throughput() {
    use inference::model::Weights;
    let path = model_for_tests();
    let file = GgufFile::open(&path).unwrap();
    let golden = goldens();
    let prompt: Vec<u32> = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| ids(&c["prompt_ids"]))
        .take(256)
        .collect();
    for w in [Weights::Quantized, Weights::DequantizedF32] {
        let model = Model::load_with(&file, &Device::Cpu, w).unwrap();
        let params = SamplingParams {
            max_tokens: 32,
            ..Default::default()
        };
        let g = generate(&model, &prompt, &params, &[], None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        eprintln!(
            "{w:?} ({} threads): prefill {} tokens {:.1} tok/s, decode {} tokens {:.1} tok/s",
            candle_core::utils::get_num_threads(),
            prompt.len(),
            prompt.len() as f64 / g.prefill_secs,
            g.output_ids.len() - 1,
            (g.output_ids.len() - 1) as f64 / g.decode_secs
        );
    }
}

/// The real model runs on our CPU kernels, and its results do not depend on the thread
/// count: a prefill over a golden prompt (every row) and decode steps after it give the
/// same bits on 1, 2 and 3 threads.
#[test]
fn forward_is_bit_identical_across_thread_counts() {
    let f = fixture();
    assert!(
        f.model.uses_cpu_kernels(),
        "the Q4_1 model should run on the CPU kernels"
    );
    let prompt = ids(&goldens()["cases"][0]["prompt_ids"]);
    let run = |threads: usize| {
        let mut cache = f.model.new_cache();
        let mut outs = vec![f
            .model
            .forward_with_threads(&prompt, 0, &mut cache, Output::All, threads)
            .unwrap()];
        for t in [17u32, 4000, 9] {
            let pos = cache.len();
            outs.push(
                f.model
                    .forward_with_threads(&[t], pos, &mut cache, Output::Last, threads)
                    .unwrap(),
            );
        }
        outs
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let one = run(1);
    for threads in [2, 3] {
        for (a, b) in one.iter().zip(run(threads)) {
            assert_eq!(
                bits(&a.logits),
                bits(&b.logits),
                "logits, {threads} threads"
            );
            assert_eq!(
                bits(&a.hidden),
                bits(&b.hidden),
                "hidden, {threads} threads"
            );
        }
    }
}

/// Prefill + decode and one pass over the same tokens give the same bits at every
/// position (each row is computed on its own, whatever the batch).
#[test]
fn rows_do_not_depend_on_the_batch() {
    let f = fixture();
    let prompt = ids(&goldens()["cases"][2]["prompt_ids"]);
    let mut cache = f.model.new_cache();
    let all = f
        .model
        .forward(&prompt, 0, &mut cache, Output::All)
        .unwrap();
    let split = prompt.len() / 3;
    let mut cache = f.model.new_cache();
    let head = f
        .model
        .forward(&prompt[..split], 0, &mut cache, Output::All)
        .unwrap();
    for i in 0..split {
        assert_eq!(head.logits_row(i), all.logits_row(i), "row {i}");
    }
    for (i, &t) in prompt.iter().enumerate().skip(split) {
        let step = f.model.forward(&[t], i, &mut cache, Output::Last).unwrap();
        assert_eq!(step.last_logits(), all.logits_row(i), "row {i}");
        assert_eq!(step.last_hidden(), all.hidden_row(i), "row {i}");
    }
}
