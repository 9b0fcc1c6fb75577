//! `veritee-verify audit`: everything `receipts` checks, then a random sample of the
//! audited jobs re-executed with the attested model (see [`crate::reexec`]), fraud
//! classes per job, and fraud proofs.
//!
//! The sample is drawn after the fact from a seed the provider never sees (fresh by
//! default, printed so the run can be repeated), so the provider cannot know at serving
//! time which jobs will be checked: cheating on a fraction f of n jobs is caught with the
//! probability the report prints.

use crate::cost_model::CostModel;
use crate::fraud_proof::{self, FraudProof};
use crate::inputs;
use crate::reexec::{EarlierOutput, FraudClass, JobAudit, ReferenceModel};
use attestation::audit::{self, AuditBundle, AuditReport};
use attestation::binding::PolicyFile;
use attestation::receipt::ReceiptClaims;
use attestation::transcript::{self, JobEnd, Transcript};
use attestation::{Rejection, Timestamp};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The biggest bundle this command reads.
const MAX_BUNDLE_BYTES: u64 = 4 << 30;

/// How many audited jobs to re-execute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// This fraction of the audited jobs, rounded up: (0, 1].
    Rate(f64),
    /// This many (all of them when fewer).
    Count(usize),
}

pub struct Args<'a> {
    pub bundle: &'a Path,
    pub model: &'a Path,
    pub auditor_key: &'a Path,
    pub policy: Option<&'a Path>,
    pub dangerous_any_runtime: bool,
    pub at: &'a str,
    pub sample: Sample,
    pub seed: Option<&'a str>,
    pub cost_model: Option<&'a Path>,
    pub fraud_dir: Option<&'a Path>,
    pub every_signature: bool,
    /// Sampled jobs re-executed at once, one forward thread each (≥ 1).
    pub parallel_jobs: usize,
    pub json: bool,
}

/// One audited job, located in the bundle.
struct AuditedJob {
    section: usize,
    index: usize,
    claims: ReceiptClaims,
    receipt: Vec<u8>,
    /// The opened transcript, or why there is none.
    transcript: Result<Transcript, String>,
}

/// The verdict on one sampled job, for the report.
#[derive(Serialize)]
struct JobReport {
    section: usize,
    seq: u64,
    /// Hex.
    job_id: String,
    prompt_tokens: u64,
    output_tokens: u64,
    temperature: f32,
    verdict: &'static str,
    /// Wall time of this job's re-execution and checks here.
    reexec_ms: f64,
    /// CPU time of the same (this thread and its forward workers): the auditor's device
    /// time, in the unit of the receipt's `device_ms`.
    reexec_device_ms: f64,
    /// The job's metered device time (its receipt).
    device_ms: u64,
    #[serde(flatten)]
    audit: JobAudit,
    #[serde(skip_serializing_if = "Option::is_none")]
    fraud_proof: Option<String>,
}

struct Prepared {
    bundle_bytes: Vec<u8>,
    policy: PolicyFile,
    policy_name: String,
    policy_text: String,
    at: Timestamp,
    secret: [u8; 32],
    seed: [u8; 32],
    seed_hex: String,
    cost: Option<(CostModel, String)>,
}

fn prepare(args: &Args<'_>) -> Result<Prepared, String> {
    let at = inputs::time(args.at)?;
    let (policy, policy_name, policy_text) =
        inputs::policy_with_text(args.policy, args.dangerous_any_runtime)?;
    match args.sample {
        Sample::Rate(r) if !(r > 0.0 && r <= 1.0) => {
            return Err(format!("--sample-rate must be in (0, 1], got {r}"))
        }
        Sample::Count(0) => return Err("--sample must be at least 1".into()),
        _ => {}
    }
    let secret = inputs::auditor_key(args.auditor_key)?;
    let (seed, seed_hex) = match args.seed {
        Some(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .filter(|b| (1..=32).contains(&b.len()))
                .ok_or_else(|| format!("--seed: expected 2 to 64 hex digits, got '{text}'"))?;
            (attestation::x509::sha256(&bytes), hex::encode(bytes))
        }
        None => {
            let fresh: [u8; 32] = rand::rng().random();
            (attestation::x509::sha256(&fresh), hex::encode(fresh))
        }
    };
    let cost = match args.cost_model {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cost model {}: {e}", path.display()))?;
            let model = CostModel::from_toml(&text)
                .map_err(|e| format!("cost model {}: {e}", path.display()))?;
            Some((model, text))
        }
    };
    let bundle_bytes = inputs::bounded_file(args.bundle, MAX_BUNDLE_BYTES)?;
    Ok(Prepared {
        bundle_bytes,
        policy,
        policy_name,
        policy_text,
        at,
        secret,
        seed,
        seed_hex,
        cost,
    })
}

fn usage_error(json: bool, message: &str) -> ExitCode {
    if json {
        crate::emit(&format!(
            "{}\n",
            json!({"verdict": "error", "reason": null, "error": message})
        ));
    }
    eprintln!("veritee-verify: {message}");
    ExitCode::from(2)
}

pub fn run(args: &Args<'_>) -> ExitCode {
    let p = match prepare(args) {
        Ok(p) => p,
        Err(message) => return usage_error(args.json, &message),
    };
    // A file that is no audit bundle at all (truncated, another format) is bad input.
    let bundle = match AuditBundle::from_cbor(&p.bundle_bytes) {
        Ok(b) => b,
        Err(r) => {
            return usage_error(
                args.json,
                &format!(
                    "{} is not an audit bundle: {} ({})",
                    args.bundle.display(),
                    r.detail,
                    r.reason.code()
                ),
            )
        }
    };
    // The receipts first: a bundle that fails them is rejected before any re-execution.
    let verified = verify_receipts(&bundle, &p.policy, p.at, args.every_signature)
        .map(|(report, jobs)| (bundle, report, jobs));
    let (bundle, report, mut jobs) = match verified {
        Ok(v) => v,
        Err(r) => {
            let text = if args.json {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&json!({
                        "verdict": "rejected",
                        "reason": r.reason.code(),
                        "reason_class": r.reason.class().as_str(),
                        "detail": r.detail,
                        "at": p.at.to_rfc3339(),
                        "policy": p.policy_name,
                    }))
                    .expect("JSON")
                )
            } else {
                format!(
                    "REJECTED (receipts): {} ({})\n  {}\n\nverification time: {}\npolicy: {}\n",
                    r.reason.code(),
                    r.reason.class().as_str(),
                    r.detail,
                    p.at,
                    p.policy_name
                )
            };
            crate::emit(&text);
            return ExitCode::from(1);
        }
    };
    for job in &mut jobs {
        if matches!(&job.transcript, Err(why) if !why.is_empty()) {
            continue; // withheld: the bundle does not deliver it
        }
        let sealed = bundle.sections[job.section].transcripts[job.index].as_deref();
        job.transcript = match sealed {
            None => Err(
                "the receipt says the job was audited, but the bundle holds no transcript for it"
                    .into(),
            ),
            Some(sealed) => transcript::open(sealed, &p.secret).map_err(|r| {
                format!(
                    "the transcript does not open: {} ({})",
                    r.detail,
                    r.reason.code()
                )
            }),
        };
    }
    // Not one transcript opens although some are there: the auditor's key is not the one
    // they were sealed to (a usage error), not a provider withholding every transcript.
    let present = jobs
        .iter()
        .filter(|j| bundle.sections[j.section].transcripts[j.index].is_some())
        .count();
    if present > 0 && jobs.iter().all(|j| j.transcript.is_err()) {
        return usage_error(
            args.json,
            &format!(
                "none of the {present} transcripts opens with the auditor key {} (public key {}): is it the key of this runtime's launch configuration? First: {}",
                args.auditor_key.display(),
                hex::encode(transcript::auditor_public_key(&p.secret)),
                jobs.iter().find_map(|j| j.transcript.as_ref().err()).cloned().unwrap_or_default()
            ),
        );
    }
    // A fingerprint format this verifier does not know cannot be judged: upgrade it.
    if let Some((job, v)) = jobs.iter().find_map(|j| {
        let t = j.transcript.as_ref().ok()?;
        match inference::fingerprint::Fingerprint::from_bytes(&t.fingerprint) {
            Err(inference::fingerprint::FingerprintError::UnsupportedVersion(v)) => Some((j, v)),
            _ => None,
        }
    }) {
        return usage_error(
            args.json,
            &format!(
                "job {} (seq {}) has an activation fingerprint of version {v}, which this verifier does not know (it reads version {}): audit with a verifier that does",
                hex::encode(job.claims.job_id),
                job.claims.seq,
                inference::fingerprint::VERSION
            ),
        );
    }
    let model = match ReferenceModel::load(args.model) {
        Ok(m) => m,
        Err(e) => return usage_error(args.json, &e),
    };
    if let Some(s) = report
        .sections
        .iter()
        .find(|s| s.model_digest != model.digest)
    {
        return usage_error(
            args.json,
            &format!(
                "the model file {} has digest {}, but the receipts of instance {} name {}: audit with the model the receipts name",
                args.model.display(),
                hex::encode(model.digest),
                hex::encode(s.instance),
                hex::encode(s.model_digest)
            ),
        );
    }
    if let Some((cost, _)) = &p.cost {
        if cost.model_digest != hex::encode(model.digest) {
            return usage_error(
                args.json,
                &format!(
                    "the cost model is for model {}, the receipts name {}",
                    cost.model_digest,
                    hex::encode(model.digest)
                ),
            );
        }
    }
    let n_audited = jobs.len();
    let sample_size = match args.sample {
        Sample::Rate(r) => ((r * n_audited as f64).ceil() as usize).min(n_audited),
        Sample::Count(n) => n.min(n_audited),
    };
    let chosen = choose(n_audited, sample_size, p.seed);
    let others: Vec<EarlierOutput<'_>> = jobs
        .iter()
        .filter_map(|j| {
            j.transcript.as_ref().ok().map(|t| EarlierOutput {
                job_id: j.claims.job_id,
                request_sha256: j.claims.request_sha256,
                transcript: t,
            })
        })
        .collect();
    let cost = p.cost.as_ref().map(|(m, _)| m);
    let mut reports = Vec::with_capacity(chosen.len());
    let mut proofs_written = 0usize;
    let mut proof_errors = Vec::new();
    // The re-executions, `parallel_jobs` at a time with one forward thread each (an
    // auditor's throughput: no barrier waits between the threads of one pass), in sample
    // order; each job's CPU time is its own thread's.
    let model = model.with_forward_threads(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<Option<(JobAudit, f64, f64)>> = Vec::new();
    done.resize_with(chosen.len(), || None);
    let done = std::sync::Mutex::new(done);
    std::thread::scope(|scope| {
        for _ in 0..args.parallel_jobs.clamp(1, chosen.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&k) = chosen.get(i) else { break };
                let job = &jobs[k];
                let started = std::time::Instant::now();
                let cpu_start = inference::metering::job_cpu_time();
                let audit = match &job.transcript {
                    Err(why) => JobAudit::withheld(why.clone()),
                    Ok(t) => model.audit(&job.claims, t, cost, &others),
                };
                let reexec_ms = started.elapsed().as_secs_f64() * 1e3;
                let reexec_device_ms =
                    (inference::metering::job_cpu_time().saturating_sub(cpu_start)).as_secs_f64()
                        * 1e3;
                done.lock().unwrap_or_else(|e| e.into_inner())[i] =
                    Some((audit, reexec_ms, reexec_device_ms));
            });
        }
    });
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    for (&k, result) in chosen.iter().zip(done) {
        let job = &jobs[k];
        let (audit, reexec_ms, reexec_device_ms) =
            result.expect("every sampled job was re-executed (a worker panicked otherwise)");
        let mut fraud_proof = None;
        if let (Some(dir), Some(class), Ok(t)) = (args.fraud_dir, audit.class, &job.transcript) {
            let related = audit
                .findings
                .iter()
                .find_map(|f| f.values.get("replayed_from_job").and_then(|v| v.as_str()))
                .and_then(|id| {
                    jobs.iter()
                        .find(|o| hex::encode(o.claims.job_id) == id && o.transcript.is_ok())
                });
            let proof = FraudProof {
                format: fraud_proof::FORMAT.into(),
                version: fraud_proof::VERSION,
                class: class.code().into(),
                at: p.at.to_rfc3339(),
                policy: p.policy_text.clone(),
                evidence: hex::encode(&bundle.sections[job.section].evidence),
                receipt: hex::encode(&job.receipt),
                transcript: hex::encode(t.to_cbor()),
                related_receipt: related.map(|o| hex::encode(&o.receipt)),
                related_transcript: related
                    .and_then(|o| o.transcript.as_ref().ok())
                    .map(|t| hex::encode(t.to_cbor())),
                cost_model: (class == FraudClass::TimeInflation)
                    .then(|| p.cost.as_ref().map(|(_, text)| text.clone()))
                    .flatten(),
                findings: serde_json::to_value(&audit.findings).expect("JSON"),
            };
            let path = dir.join(format!("fraud-{}.json", hex::encode(job.claims.job_id)));
            match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, proof.to_json()))
            {
                Ok(()) => {
                    proofs_written += 1;
                    fraud_proof = Some(path.display().to_string());
                }
                Err(e) => proof_errors.push(format!("{}: {e}", path.display())),
            }
        }
        reports.push(JobReport {
            section: job.section,
            seq: job.claims.seq,
            job_id: hex::encode(job.claims.job_id),
            prompt_tokens: job.claims.prompt_tokens,
            output_tokens: job.claims.output_tokens,
            temperature: job.claims.sampling.temperature,
            verdict: audit.class.map_or("honest", FraudClass::code),
            reexec_ms,
            reexec_device_ms,
            device_ms: job.claims.device_ms,
            audit,
            fraud_proof,
        });
    }
    // Withheld transcripts among the jobs not sampled are findings too: opening costs
    // nothing next to a re-execution.
    let withheld_unsampled: Vec<(u64, String)> = jobs
        .iter()
        .enumerate()
        .filter(|(k, j)| !chosen.contains(k) && j.transcript.is_err())
        .map(|(_, j)| (j.claims.seq, hex::encode(j.claims.job_id)))
        .collect();
    let mut classes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &reports {
        if let Some(c) = r.audit.class {
            *classes.entry(c.code()).or_default() += 1;
        }
    }
    if !withheld_unsampled.is_empty() {
        *classes
            .entry(FraudClass::TranscriptWithheld.code())
            .or_default() += withheld_unsampled.len();
    }
    let fraud = !classes.is_empty();
    let ended_early = reports
        .iter()
        .filter(|r| matches!(r.audit.end, Some(JobEnd::TimedOut | JobEnd::Cancelled)))
        .count();
    let detection: Vec<(f64, f64)> = [0.01, 0.05, 0.1, 0.25]
        .into_iter()
        .map(|f| (f, catch_probability(n_audited, sample_size, f)))
        .collect();
    let not_audited = report.jobs as usize - n_audited;
    if args.json {
        let v = json!({
            "verdict": if fraud { "fraud" } else { "no_fraud" },
            "at": p.at.to_rfc3339(),
            "policy": p.policy_name,
            "model_digest": hex::encode(model.digest),
            "seed": p.seed_hex,
            "jobs": report.jobs,
            "audited_jobs": n_audited,
            "not_audited": not_audited,
            "sampled": sample_size,
            "classes": classes,
            "withheld_not_sampled": withheld_unsampled.iter().map(|(seq, id)| json!({"seq": seq, "job_id": id})).collect::<Vec<_>>(),
            "ended_early": ended_early,
            "time_check": p.cost.as_ref().map(|(m, _)| json!(m)),
            "detection": detection.iter().map(|(f, pr)| json!({"cheating_fraction": f, "catch_probability": pr})).collect::<Vec<_>>(),
            "fraud_proofs_written": proofs_written,
            "fraud_proof_errors": proof_errors,
            "thresholds": thresholds(),
            "results": reports,
            "receipts": report,
        });
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).expect("JSON")
        ));
    } else {
        let mut s = String::new();
        let w = &mut s;
        let bad = reports.iter().filter(|r| r.audit.class.is_some()).count();
        if fraud {
            writeln!(
                w,
                "FRAUD FOUND: {bad} of {} re-executed job(s){}",
                reports.len(),
                if withheld_unsampled.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and {} more audited job(s) whose transcript is withheld",
                        withheld_unsampled.len()
                    )
                }
            )
            .unwrap();
        } else {
            writeln!(w, "NO FRAUD FOUND in {} re-executed job(s)", reports.len()).unwrap();
        }
        writeln!(
            w,
            "\nverification time: {}\npolicy: {}",
            p.at, p.policy_name
        )
        .unwrap();
        writeln!(
            w,
            "model: {} ({})",
            args.model.display(),
            hex::encode(model.digest)
        )
        .unwrap();
        writeln!(
            w,
            "receipts: {} job(s) in {} instance(s), every receipt authenticated and every check of `veritee-verify receipts` passed",
            report.jobs,
            report.sections.len()
        )
        .unwrap();
        writeln!(
            w,
            "sample: {sample_size} of {n_audited} audited job(s) ({not_audited} not audited), seed {} (repeat with --seed {})",
            p.seed_hex, p.seed_hex
        )
        .unwrap();
        writeln!(w, "\nper job (section, seq, job id, tokens, verdict):").unwrap();
        for r in &reports {
            writeln!(
                w,
                "  {} {:>6} {} {:>5}+{:<5} t={:<4} {}",
                r.section,
                r.seq,
                r.job_id,
                r.prompt_tokens,
                r.output_tokens,
                r.temperature,
                r.verdict
            )
            .unwrap();
            for f in &r.audit.findings {
                let at = if f.positions.is_empty() {
                    String::new()
                } else {
                    format!(
                        " [positions {:?}{}]",
                        f.positions,
                        if f.failing_positions > f.positions.len() {
                            format!(" of {}", f.failing_positions)
                        } else {
                            String::new()
                        }
                    )
                };
                writeln!(w, "      {}: {} {}{at}", f.class.code(), f.check, f.detail).unwrap();
            }
            if let Some(path) = &r.fraud_proof {
                writeln!(w, "      fraud proof: {path}").unwrap();
            }
        }
        for (seq, id) in &withheld_unsampled {
            writeln!(w, "  (not sampled) seq {seq} job {id}: transcript_withheld").unwrap();
        }
        if !classes.is_empty() {
            writeln!(
                w,
                "\nfraud classes: {}",
                classes
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .unwrap();
        }
        match &p.cost {
            Some((m, _)) => writeln!(
                w,
                "\ntime check: cost model for {} ({:.1} ms + {:.3} ms/prompt token + {:.2} ms/output token; a job may claim {:.2}x that + {:.0} ms)",
                m.platform, m.overhead_ms, m.prefill_ms_per_token, m.decode_ms_per_token, m.tolerance, m.slack_ms
            )
            .unwrap(),
            None => writeln!(w, "\ntime check: NOT CHECKED (no --cost-model)").unwrap(),
        }
        if ended_early > 0 {
            writeln!(
                w,
                "ended early: {ended_early} sampled job(s) ended by their deadline or a client that left; whether they were cut short cannot be judged"
            )
            .unwrap();
        }
        writeln!(
            w,
            "\ndetection: a provider cheating on a fraction f of the {n_audited} audited jobs is caught (at least one cheating job sampled) with probability"
        )
        .unwrap();
        for (f, pr) in &detection {
            writeln!(w, "  f = {:>4}%: {:.4}", f * 100.0, pr).unwrap();
        }
        if args.fraud_dir.is_some() {
            writeln!(w, "\nfraud proofs written: {proofs_written}").unwrap();
        }
        for e in &proof_errors {
            writeln!(w, "fraud proof NOT written: {e}").unwrap();
        }
        crate::emit(&s);
    }
    if !proof_errors.is_empty() {
        eprintln!(
            "veritee-verify: {} fraud proof(s) could not be written",
            proof_errors.len()
        );
    }
    if fraud {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn thresholds() -> serde_json::Value {
    json!({
        "greedy_tie_logits": crate::reexec::GREEDY_TIE_LOGITS,
        "sampled_tie_mass": crate::reexec::SAMPLED_TIE_MASS,
        "substitution_fraction": crate::reexec::SUBSTITUTION_FRACTION,
    })
}

/// Every check `receipts` makes (a withheld transcript is a finding here, not a
/// rejection), then each audited job's verified claims and receipt bytes; a job whose
/// transcript the bundle does not deliver carries why.
fn verify_receipts(
    bundle: &AuditBundle,
    policy: &PolicyFile,
    at: Timestamp,
    every_signature: bool,
) -> Result<(AuditReport, Vec<AuditedJob>), Rejection> {
    let verified = audit::verify_bundle_detailed(
        bundle,
        policy,
        at,
        None,
        &audit::VerifyOptions {
            every_signature,
            withheld_transcripts_are_findings: true,
        },
    )?;
    let mut jobs = Vec::new();
    for (s, receipts) in verified.receipts.iter().enumerate() {
        for (i, r) in receipts.iter().enumerate() {
            if !r.claims().audited {
                continue;
            }
            let withheld = verified
                .withheld
                .iter()
                .find(|w| w.section == s && w.index == i)
                .map(|w| format!("{} ({})", w.rejection.detail, w.rejection.reason.code()));
            jobs.push(AuditedJob {
                section: s,
                index: i,
                claims: r.claims().clone(),
                receipt: bundle.sections[s].receipts[i].clone(),
                transcript: match withheld {
                    Some(why) => Err(why),
                    None => Err(String::new()), // opened by the caller
                },
            });
        }
    }
    Ok((verified.report, jobs))
}

/// `k` distinct indices below `n`, uniformly, from the seed (a partial Fisher-Yates
/// shuffle on ChaCha20), in increasing order.
fn choose(n: usize, k: usize, seed: [u8; 32]) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        all.swap(i, j);
    }
    let mut chosen = all[..k].to_vec();
    chosen.sort_unstable();
    chosen
}

/// The probability that `k` jobs drawn without replacement from `n` include at least one
/// of the `ceil(f · n)` cheating ones (hypergeometric).
fn catch_probability(n: usize, k: usize, f: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let bad = ((f * n as f64).ceil() as usize).min(n);
    if bad == 0 || k == 0 {
        return 0.0;
    }
    if k > n - bad {
        return 1.0; // too few honest jobs to fill the sample
    }
    let mut miss = 1.0f64;
    for i in 0..k {
        miss *= (n - bad - i) as f64 / (n - i) as f64;
    }
    1.0 - miss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_uniform_reproducible_and_seed_dependent() {
        let a = choose(1000, 50, [1; 32]);
        assert_eq!(a.len(), 50);
        assert_eq!(a, choose(1000, 50, [1; 32]));
        assert_ne!(a, choose(1000, 50, [2; 32]));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(choose(10, 10, [3; 32]), (0..10).collect::<Vec<_>>());
        // Every index about equally often over many seeds.
        let mut hits = vec![0u32; 20];
        for s in 0..2000u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&s.to_le_bytes());
            for i in choose(20, 5, seed) {
                hits[i] += 1;
            }
        }
        // Expected 500 each; binomial sd ~19.
        assert!(hits.iter().all(|&h| (400..600).contains(&h)), "{hits:?}");
    }

    #[test]
    fn catch_probability_is_hypergeometric() {
        assert_eq!(catch_probability(100, 100, 0.01), 1.0);
        assert_eq!(catch_probability(100, 0, 0.5), 0.0);
        // One bad job in 10, 1 sampled: 1/10.
        assert!((catch_probability(10, 1, 0.1) - 0.1).abs() < 1e-12);
        // 5 bad in 100, 20 sampled: 1 - C(95,20)/C(100,20).
        let exact = 1.0
            - (0..20)
                .map(|i| (95 - i) as f64 / (100 - i) as f64)
                .product::<f64>();
        assert!((catch_probability(100, 20, 0.05) - exact).abs() < 1e-12);
        // All bad: caught whenever one is sampled.
        assert_eq!(catch_probability(50, 1, 1.0), 1.0);
    }
}
