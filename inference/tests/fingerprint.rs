//! Fingerprints on the real model: what generation commits to (from `Step::hidden`) is
//! what the auditor recomputes from one teacher-forced pass over prompt + output, and the
//! calibration of [`check`] (its tolerances and job rule) on 22 varied jobs: honest
//! re-execution passes on every kernel and thread count, other arithmetic passes, and every
//! cheaper variant of the model fails every job. The score distributions are printed
//! (`--nocapture`) so they can be quoted.
//!
//! Needs the real model: fails when it is absent (run scripts/fetch-model.sh).

use candle_core::Device;
use inference::chat::{ChatTemplate, Message};
use inference::fingerprint::{
    check, check_with, fingerprint_of_prefill, ActivationCheck, Fingerprint, FingerprintBuilder,
    Thresholds, BYTES_PER_32_TOKENS, HEADER_LEN, MAX_FAILING_FRACTION,
};
use inference::generate::generate;
use inference::gguf::{model_for_tests, GgufFile};
use inference::kernels::Isa;
use inference::model::{Model, Output, Variant, Weights};
use inference::sampling::SamplingParams;
use inference::score::score;
use inference::tokenizer::Tokenizer;
use inference::InferenceError;
use std::ops::ControlFlow;
use std::sync::OnceLock;

fn file() -> &'static GgufFile {
    static F: OnceLock<GgufFile> = OnceLock::new();
    F.get_or_init(|| GgufFile::open(&model_for_tests()).expect("open model"))
}

fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| Model::load(file(), &Device::Cpu).expect("load model"))
}

/// Greedy generation of 70 tokens (two full 32-token spans and a partial one; no EOS ids,
/// so it runs to the end) from a golden prompt; the prefill fingerprint is bit-identical
/// (the CPU forward is batch-invariant and thread-count-invariant).
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
    let g = generate(model, &prompt, &params, &[], None, |s| {
        builder.push(s.hidden).expect("hidden size");
        ControlFlow::Continue(())
    })
    .expect("generate");
    assert_eq!(g.output_ids.len(), 70);
    let claimed = builder.finish();
    assert_eq!(claimed.tokens(), 70);
    // The budget: at most 300 bytes per 32 tokens.
    assert_eq!(claimed.to_bytes().len(), HEADER_LEN + 70 * 8);
    assert_eq!(BYTES_PER_32_TOKENS, 256);

    let recomputed = fingerprint_of_prefill(model, &prompt, &g.output_ids).expect("prefill");
    let c = check(&claimed, &recomputed);
    assert!(c.passed && c.failing_positions.is_empty());
    assert_eq!(c.max_score(), 0.0);
    assert!(c.positions.iter().all(|t| t.max_abs_diff == 0.0));
    assert_eq!(claimed.to_bytes(), recomputed.to_bytes());
    assert_eq!(
        Fingerprint::from_bytes(&claimed.to_bytes()).unwrap(),
        claimed
    );

    // The same from score's hidden rows.
    let scored = score(model, &prompt, &g.output_ids, 1).expect("score");
    let from_score =
        Fingerprint::from_rows(hidden_size, scored.hidden.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(from_score, recomputed);

    // One changed prompt token (early in the prompt) moves the fingerprint as
    // in v1 (which showed only a nonzero difference): the exact check fails, and the
    // calibrated one names the positions that moved beyond its tolerance, though it lets
    // the job pass (the change is about as small as other arithmetic's; see `check`).
    let mut other = prompt.clone();
    other[5] = 2000;
    let moved = fingerprint_of_prefill(model, &other, &g.output_ids).expect("prefill");
    let exact = check_with(&claimed, &moved, &Thresholds::EXACT);
    let c = check(&claimed, &moved);
    eprintln!(
        "changed prompt token 5 of {}: exact check fails {} of 70 positions; calibrated \
         check fails {:?}, median score {:.2}, passed {}",
        prompt.len(),
        exact.failing_positions.len(),
        c.failing_positions,
        c.median_score(),
        c.passed
    );
    assert!(!exact.passed);
    assert!(exact.failing_positions.len() >= 35);
    assert!(!c.failing_positions.is_empty());
    assert!(c.max_score() > 1.0 && c.median_score() > 0.0);
}

/// One calibration job: a chat prompt and sampling parameters.
struct Job {
    prompt: Vec<u32>,
    params: SamplingParams,
}

const PROMPTS: &[&str] = &[
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain photosynthesis briefly.",
    "List three prime numbers greater than 50.",
    "Translate 'good morning' into Spanish and German.",
    "Write a Python function that reverses a string.",
    "Why is the sky blue?",
    "Give me a recipe for pancakes.",
    "What is 17 times 23?",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Tell me a joke about computers.",
    "What are the benefits of regular exercise?",
    "Describe a sunset over the ocean.",
    "How do vaccines work?",
    "Write a short story opening about a lost robot.",
    "What is the difference between weather and climate?",
    "Name five animals that live in the Arctic.",
    "Explain what a black hole is to a child.",
    "Write an email asking for a day off.",
    "What does HTTP stand for, and what is it used for?",
    "Compose a limerick about a cat.",
    "How many continents are there? Name them.",
];

fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| Tokenizer::from_gguf(file()).expect("tokenizer"))
}

/// 22 jobs: even ones greedy, odd ones sampled at temperature 0.7 to 1.0 (seeded), with
/// at most 8 to 48 new tokens (generation may stop earlier at an end-of-turn id; kept
/// short so that the test command stays within its time budget).
fn jobs() -> &'static [Job] {
    static J: OnceLock<Vec<Job>> = OnceLock::new();
    J.get_or_init(|| {
        let tok = tokenizer();
        let template = ChatTemplate::from_gguf(file(), tok).expect("template");
        PROMPTS
            .iter()
            .enumerate()
            .map(|(j, text)| {
                let sampled = j % 2 == 1;
                Job {
                    prompt: template
                        .prompt_tokens(tok, &[Message::new("user", *text)])
                        .expect("prompt"),
                    params: SamplingParams {
                        max_tokens: 8 + (j * 17) % 41,
                        temperature: if sampled {
                            [0.7, 0.8, 0.9, 1.0][j / 2 % 4]
                        } else {
                            0.0
                        },
                        seed: 1000 + j as u64,
                        ..Default::default()
                    },
                }
            })
            .collect()
    })
}

/// A provider's side of a job on `model`: its output ids and the fingerprint of the hidden
/// states it computed them from.
fn serve(model: &Model, job: &Job) -> (Vec<u32>, Fingerprint) {
    let mut b = FingerprintBuilder::new(model.config().embedding_length).unwrap();
    let g = generate(
        model,
        &job.prompt,
        &job.params,
        tokenizer().eog_ids(),
        None,
        |s| {
            b.push(s.hidden).expect("hidden size");
            ControlFlow::Continue(())
        },
    )
    .expect("generate");
    (g.output_ids, b.finish())
}

/// The honest provider's output and fingerprint for every job.
fn honest() -> &'static [(Vec<u32>, Fingerprint)] {
    static H: OnceLock<Vec<(Vec<u32>, Fingerprint)>> = OnceLock::new();
    H.get_or_init(|| jobs().iter().map(|j| serve(model(), j)).collect())
}

/// The auditor's teacher-forced fingerprint on `threads` threads.
fn prefill_with_threads(model: &Model, job: &Job, output: &[u32], threads: usize) -> Fingerprint {
    let (p, n) = (job.prompt.len(), output.len());
    let mut tokens = job.prompt.clone();
    tokens.extend_from_slice(&output[..n - 1]);
    let mut cache = model.new_cache();
    let out = model
        .forward_with_threads(
            &tokens,
            0,
            &mut cache,
            Output::Rows(p - 1..p + n - 1),
            threads,
        )
        .expect("prefill");
    Fingerprint::from_rows(
        model.config().embedding_length,
        (0..out.rows).map(|i| out.hidden_row(i)),
    )
    .unwrap()
}

/// `min / median / max` of some per-job numbers.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "min {:.3} / median {:.3} / max {:.3}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

/// Prints the per-job statistics of a set of checks and returns them.
fn report(label: &str, checks: &[ActivationCheck]) {
    let median: Vec<f64> = checks.iter().map(|c| c.median_score() as f64).collect();
    let max: Vec<f64> = checks.iter().map(|c| c.max_score() as f64).collect();
    let failing: Vec<f64> = checks
        .iter()
        .map(ActivationCheck::failing_fraction)
        .collect();
    let tokens: usize = checks.iter().map(|c| c.positions.len()).sum();
    eprintln!(
        "{label}: {} jobs, {tokens} positions, {} jobs passed\n  job median score {}\n  job max score    {}\n  failing fraction {}",
        checks.len(),
        checks.iter().filter(|c| c.passed).count(),
        spread(median),
        spread(max),
        spread(failing),
    );
}

/// The jobs cover what the calibration claims: ≥ 20, greedy and sampled, 8 to 100 new
/// tokens at most.
#[test]
fn calibration_jobs_are_varied() {
    let jobs = jobs();
    assert!(jobs.len() >= 20);
    let sampled = jobs.iter().filter(|j| j.params.temperature > 0.0).count();
    assert!(sampled >= 10 && jobs.len() - sampled >= 10);
    assert!(jobs.iter().all(|j| (8..=48).contains(&j.params.max_tokens)));
    assert!(jobs
        .iter()
        .filter(|j| j.params.temperature > 0.0)
        .all(|j| (0.7..=1.0).contains(&j.params.temperature)));
    let lens: Vec<usize> = honest().iter().map(|(o, _)| o.len()).collect();
    eprintln!("honest output lengths: {lens:?}");
    assert!(lens.iter().all(|&n| (1..=48).contains(&n)));
    assert!(lens.iter().sum::<usize>() >= 300);
}

/// Honest generation vs the auditor's prefill: bit-identical fingerprints, so zero failing
/// positions, on every kernel this CPU has (`Model::set_kernel`, in process) and on 1 and
/// 2 threads.
#[test]
fn honest_jobs_pass_on_every_kernel_and_thread_count() {
    let mut auditor = Model::load(file(), &Device::Cpu).expect("load model");
    let isas = Isa::available();
    eprintln!(
        "kernels on this CPU: {isas:?}; generation ran on {:?}",
        model().kernel()
    );
    let mut checks = Vec::new();
    for isa in &isas {
        auditor.set_kernel(*isa).expect("available kernel");
        assert_eq!(auditor.kernel(), Some(*isa));
        for threads in [1, 2] {
            for (job, (output, claimed)) in jobs().iter().zip(honest()) {
                let recomputed = prefill_with_threads(&auditor, job, output, threads);
                let c = check(claimed, &recomputed);
                assert!(
                    c.passed && c.failing_positions.is_empty() && c.max_score() == 0.0,
                    "{isa:?}, {threads} threads: {c:?}"
                );
                assert!(check_with(claimed, &recomputed, &Thresholds::EXACT).passed);
                assert_eq!(recomputed.to_bytes(), claimed.to_bytes());
                checks.push(c);
            }
        }
    }
    report(
        &format!("honest, auditor on {isas:?} × 1 and 2 threads"),
        &checks,
    );
    assert!(auditor.set_kernel(Isa::Avx512Vnni).is_err() || Isa::Avx512Vnni.is_available());
}

/// Honest generation checked against a recomputation with other arithmetic: the same
/// weights dequantized to f32 and multiplied without activation quantization (candle's
/// ops). A stand-in for an auditor on other hardware: the tolerances must absorb it.
#[test]
fn honest_jobs_pass_against_other_arithmetic() {
    let auditor =
        Model::load_with(file(), &Device::Cpu, Weights::DequantizedF32).expect("load model");
    let checks: Vec<ActivationCheck> = jobs()
        .iter()
        .zip(honest())
        .map(|(job, (output, claimed))| {
            let recomputed = fingerprint_of_prefill(&auditor, &job.prompt, output).unwrap();
            check(claimed, &recomputed)
        })
        .collect();
    report(
        "honest, auditor with f32 weights (other arithmetic)",
        &checks,
    );
    for (j, c) in checks.iter().enumerate() {
        assert!(c.passed, "job {j}: {:?}", c.failing_positions);
        assert!(c.median_score() < 0.5, "job {j}: {}", c.median_score());
    }
}

/// A cheater serves a cheaper variant honestly (its tokens, fingerprints of its own hidden
/// states) while claiming the attested model; the auditor recomputes on the real model.
/// Every variant fails every job, on most positions.
#[test]
fn cheaper_variants_fail_every_job() {
    let real = model();
    for variant in [
        Variant::SkipLayers { every: 3 },
        Variant::Requantized { bits: 3 },
        Variant::Requantized { bits: 2 },
    ] {
        let cheat = Model::load_variant(file(), &Device::Cpu, variant).expect("variant");
        // The point of the cheat: it claims the attested model.
        assert_eq!(cheat.digest(), real.digest());
        let mut checks = Vec::new();
        for (j, job) in jobs().iter().enumerate() {
            let (output, claimed) = serve(&cheat, job);
            let recomputed = fingerprint_of_prefill(real, &job.prompt, &output).unwrap();
            let c = check(&claimed, &recomputed);
            assert!(!c.passed, "{variant:?}, job {j} passed: {c:?}");
            assert!(
                c.failing_fraction() >= 0.5,
                "{variant:?}, job {j}: {:?}",
                c.failing_positions
            );
            if j == 1 {
                eprintln!(
                    "{variant:?}, job 1: {:?}",
                    tokenizer().decode(&output).unwrap()
                );
            }
            checks.push(c);
        }
        report(&format!("cheat {variant:?}"), &checks);
        let worst = checks
            .iter()
            .map(ActivationCheck::failing_fraction)
            .fold(1.0, f64::min);
        assert!(worst > 5.0 * MAX_FAILING_FRACTION, "{variant:?}: {worst}");
    }
    assert_eq!(
        Model::load_variant(file(), &Device::Cpu, Variant::SkipLayers { every: 3 })
            .unwrap()
            .config()
            .n_layer,
        real.config().n_layer - real.config().n_layer / 3
    );
    for bad in [
        Variant::SkipLayers { every: 1 },
        Variant::Requantized { bits: 4 },
        Variant::Requantized { bits: 1 },
    ] {
        assert!(matches!(
            Model::load_variant(file(), &Device::Cpu, bad),
            Err(InferenceError::InvalidParameter {
                name: "variant",
                ..
            })
        ));
    }
}

/// The honest output checked against a prefill over another job's prompt (a provider that
/// ran another prompt than the one claimed): fails every job.
#[test]
fn changed_prompts_fail_every_job() {
    let jobs = jobs();
    let mut checks = Vec::new();
    for (j, (output, claimed)) in honest().iter().enumerate() {
        let other = &jobs[(j + 1) % jobs.len()].prompt;
        let recomputed = fingerprint_of_prefill(model(), other, output).unwrap();
        let c = check(claimed, &recomputed);
        assert!(!c.passed, "job {j}: {c:?}");
        checks.push(c);
    }
    report("changed prompt", &checks);
}
