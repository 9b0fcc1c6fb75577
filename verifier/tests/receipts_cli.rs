//! `veritee-verify receipts` on audit bundles made by the runtime's own issuer and log
//! (simulated TEE), intact and tampered: each tampering refused with its reason code.

use attestation::audit::{AuditBundle, Section};
use attestation::receipt::{self, ReceiptClaims, SamplingParams};
use attestation::transcript;
use aws_lc_rs::signature::Ed25519KeyPair;
use coset::TaggedCborSerializable;
use enclave::attester::simulated::SimulatedSource;
use enclave::attester::{Attester, ClaimsTemplate, RuntimeKeys};
use enclave::receipt_log::{LogOptions, ReceiptLog};
use enclave::receipts::{Issuer, JobFacts, Metering};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODEL: [u8; 32] = [0x4d; 32];
const LAUNCH: [u8; 32] = [0x1a; 32];
/// 2026-11-30T10:00:00Z, in ms: the jobs start over three UTC hours.
const T0_MS: u64 = 1_796_032_800_000;

struct Fixture {
    dir: PathBuf,
    policy: PathBuf,
    secret: [u8; 32],
    /// Simulated GPUs bound in each instance's claims (and required by the policy).
    gpus: usize,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("veritee-verify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (secret, _) = transcript::generate_auditor_keypair();
        Fixture {
            policy: dir.join("policy.toml"),
            dir,
            secret,
            gpus: 0,
        }
    }

    /// [`Fixture::new`] whose runtime binds `gpus` simulated GPUs.
    fn with_gpus(name: &str, gpus: usize) -> Fixture {
        let mut f = Fixture::new(name);
        f.gpus = gpus;
        f
    }

    /// One runtime instance that ran `jobs` jobs (every third opted out of auditing).
    fn instance(&self, jobs: u64) -> Section {
        self.instance_with_receipt_model(jobs, MODEL)
    }

    /// [`Fixture::instance`], with receipts that name `receipt_model` while the evidence
    /// attests `MODEL` (a runtime whose receipts misstate what it served).
    fn instance_with_receipt_model(&self, jobs: u64, receipt_model: [u8; 32]) -> Section {
        self.instance_with(jobs, receipt_model, true, |_| {})
    }

    /// One runtime instance, with or without an auditor key, whose jobs' facts `edit`
    /// changes before they are signed.
    fn instance_with(
        &self,
        jobs: u64,
        receipt_model: [u8; 32],
        auditor: bool,
        edit: impl Fn(&mut JobFacts),
    ) -> Section {
        let public = auditor.then(|| transcript::auditor_public_key(&self.secret));
        let source = SimulatedSource::open(&self.dir.join("simulated-tee"), LAUNCH).unwrap();
        let mut policy = enclave::startup::simulated_policy(source.tee(), MODEL, LAUNCH, public);
        let gpus = (self.gpus > 0).then(|| {
            enclave::gpu::SimulatedGpuSource::open(&self.dir.join("simulated-gpu"), self.gpus)
                .unwrap()
        });
        if let Some(g) = &gpus {
            policy.push_str(&enclave::startup::simulated_gpu_policy(g.gpus()));
        }
        std::fs::write(&self.policy, policy).unwrap();
        let keys = RuntimeKeys::generate().unwrap();
        let template = ClaimsTemplate {
            model_digest: MODEL,
            launch_config_digest: LAUNCH,
            auditor_hpke_public_key: public,
        };
        let mut attester = Attester::new(Box::new(source), Vec::new(), &keys, &template, true);
        if let Some(g) = &gpus {
            assert_eq!(attester.bind_gpus(g).unwrap(), self.gpus);
        }
        let bundle = attester.bundle(None).unwrap();
        let instance = enclave::receipts::new_job_id();
        let root = self.dir.join("receipts");
        let log =
            ReceiptLog::create(&root, instance, &bundle.to_cbor(), LogOptions::default()).unwrap();
        let issuer = Issuer::new(
            keys.receipt,
            instance,
            bundle.sha256(),
            receipt_model,
            attester.claims().auditor_hpke_key.clone(),
            log,
        );
        for j in 0..jobs {
            let start = T0_MS + j * 1_500_000; // 25 minutes apart
            let mut facts = JobFacts {
                job_id: enclave::receipts::new_job_id(),
                request: format!("{{\"job\": {j}}}").into_bytes(),
                response_sha256: [!(j as u8); 32],
                prompt_ids: vec![1, 2, 3, j as u32],
                output_ids: (0..(5 + j as u32)).collect(),
                sampling: SamplingParams {
                    temperature: 0.0,
                    top_p: 1.0,
                    top_k: 0,
                    max_tokens: 64,
                    repetition_penalty: 1.0,
                    seed: j,
                },
                fingerprint: vec![j as u8; 40],
                end: transcript::JobEnd::Length,
                dangerous_cheat: None,
                metering: Metering {
                    queue_wait_ms: 3,
                    wall_start_ms: start,
                    wall_end_ms: start + 900,
                    device_ms: 1_250 + j,
                    device_share_ppm: 600_000,
                },
                audited: j % 3 != 2,
            };
            edit(&mut facts);
            let issued = issuer.issue(facts).unwrap();
            issued.durable.wait_blocking().unwrap();
        }
        let dir = issuer.log().dir().to_path_buf();
        issuer.log().shutdown();
        enclave::audit_export::section_of(&dir).unwrap()
    }

    fn write(&self, name: &str, bundle: &AuditBundle) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bundle.to_cbor()).unwrap();
        path
    }

    /// Run the verifier with --json; (exit code, output).
    fn verify(&self, bundle: &Path, extra: &[&str]) -> (i32, Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
            .arg("receipts")
            .arg(bundle)
            .args(["--at", &now(), "--json", "--policy"])
            .arg(&self.policy)
            .args(extra)
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), json)
    }

    /// The reason code of a rejected bundle, the same with and without
    /// `--every-signature`.
    fn reason(&self, bundle: &AuditBundle, extra: &[&str]) -> String {
        let path = self.write("tampered.cbor", bundle);
        let mut reasons = [false, true].map(|every| {
            let mut args = extra.to_vec();
            if every {
                args.push("--every-signature");
            }
            let (code, v) = self.verify(&path, &args);
            assert_eq!(v["verdict"], "rejected", "{v}");
            assert_eq!(code, 1);
            (
                v["reason"].as_str().unwrap().to_owned(),
                v["detail"].clone(),
            )
        });
        assert_eq!(reasons[0], reasons[1], "the modes disagree");
        std::mem::take(&mut reasons[0].0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The verification time: now (the simulated chain is made on the spot).
fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    attestation::Timestamp::from_unix(secs as i64).to_rfc3339()
}

/// `receipt` with its claims edited, the signature left as it was.
fn edit_claims(receipt: &[u8], edit: impl Fn(&mut ReceiptClaims)) -> Vec<u8> {
    let mut sign1 = coset::CoseSign1::from_tagged_slice(receipt).unwrap();
    let mut claims = ReceiptClaims::from_cbor(sign1.payload.as_ref().unwrap()).unwrap();
    edit(&mut claims);
    sign1.payload = Some(claims.to_cbor());
    sign1.to_tagged_vec().unwrap()
}

fn claims_of(receipt: &[u8]) -> ReceiptClaims {
    let sign1 = coset::CoseSign1::from_tagged_slice(receipt).unwrap();
    ReceiptClaims::from_cbor(sign1.payload.as_ref().unwrap()).unwrap()
}

#[test]
fn an_intact_bundle_verifies_with_totals_per_hour() {
    let f = Fixture::new("intact");
    let section = f.instance(6);
    let bundle = AuditBundle {
        sections: vec![section.clone()],
    };
    let path = f.write("audit.cbor", &bundle);
    let key_file = f.dir.join("auditor.key");
    std::fs::write(&key_file, format!("{}\n", hex::encode(f.secret))).unwrap();
    let (code, v) = f.verify(&path, &["--auditor-key", key_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "accepted");
    let report = &v["report"];
    assert_eq!(report["jobs"], 6);
    let claims: Vec<ReceiptClaims> = section.receipts.iter().map(|r| claims_of(r)).collect();
    let output: u64 = claims.iter().map(|c| c.output_tokens).sum();
    let device: u64 = claims.iter().map(|c| c.device_ms).sum();
    assert_eq!(report["output_tokens"], output);
    assert_eq!(report["prompt_tokens"], 24);
    assert_eq!(report["device_ms"], device);
    // 1,250 to 1,255 ms per job: two billed seconds each.
    assert_eq!(report["billed_device_seconds"], 12);
    // 25 minutes apart from 10:00: jobs at 10:00, 10:25, 10:50 | 11:15, 11:40 | 12:05.
    let hours: Vec<(u64, u64)> = report["per_hour"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(h, t)| (h.parse().unwrap(), t["jobs"].as_u64().unwrap()))
        .collect();
    let h0 = T0_MS / 1000;
    assert_eq!(hours, vec![(h0, 3), (h0 + 3600, 2), (h0 + 7200, 1)]);
    let t = &report["sections"][0]["transcripts"];
    assert_eq!(t["audited_jobs"], 4);
    assert_eq!(t["present"], 4);
    assert_eq!(t["opened"], 4);

    // Text output names the totals too.
    let out = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
        .args(["receipts"])
        .arg(&path)
        .args(["--at", &now(), "--policy"])
        .arg(&f.policy)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.starts_with("ACCEPTED"), "{text}");
    assert!(
        text.contains(&format!("{}.{:03}", device / 1000, device % 1000)),
        "{text}"
    );

    assert!(
        text.contains("transcripts: 4 audited job(s), 2 not audited; 4 transcript(s) present, none opened (no --auditor-key)"),
        "{text}"
    );

    // Without the policy that trusts the simulated root, the evidence is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
        .args([
            "receipts",
            "--json",
            "--dangerous-any-runtime",
            "--at",
            &now(),
        ])
        .arg(&path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "simulated_root_not_trusted", "{v}");
}

/// Issue 13: without `--policy`, receipts from any runtime code in any genuine CVM were
/// accepted. `--policy` is required (usage error, exit 2) unless the danger is named
/// with `--dangerous-any-runtime`, which warns.
#[test]
fn receipts_need_a_policy_or_the_named_danger() {
    let f = Fixture::new("policy-required");
    let path = f.write(
        "audit.cbor",
        &AuditBundle {
            sections: vec![f.instance(1)],
        },
    );
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
            .arg("receipts")
            .arg(&path)
            .args(["--at", &now()])
            .args(args)
            .output()
            .unwrap()
    };
    for json in [&[][..], &["--json"][..]] {
        let out = run(json);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--policy FILE is required"), "{stderr}");
        assert!(stderr.contains("--dangerous-any-runtime"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("ACCEPTED"));
    }
    let out = run(&["--dangerous-any-runtime"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARNING: --dangerous-any-runtime"),
        "{stderr}"
    );
    // (The simulated root is still refused: only the runtime claims are unchecked.)
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("DANGEROUS"), "{stdout}");
    // Both at once is a contradiction.
    let out = run(&[
        "--dangerous-any-runtime",
        "--policy",
        f.policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Issue 13: a runtime with no auditor key marked its receipts `audited: true`, and the
/// verifier reported "N audited, 0 present" and accepted. Such a runtime's receipts now
/// say `audited: false`, and the report counts them as not audited.
#[test]
fn a_runtime_without_an_auditor_key_audits_nothing() {
    let f = Fixture::new("no-auditor");
    // Every job asks to be audited; there is no key to seal to.
    let section = f.instance_with(3, MODEL, false, |facts| facts.audited = true);
    assert!(std::fs::read_to_string(&f.policy)
        .unwrap()
        .contains("auditor_hpke_keys = \"none\""));
    assert!(section.receipts.iter().all(|r| !claims_of(r).audited));
    assert!(section.transcripts.iter().all(Option::is_none));
    let path = f.write(
        "audit.cbor",
        &AuditBundle {
            sections: vec![section.clone()],
        },
    );
    let (code, v) = f.verify(&path, &[]);
    assert_eq!(code, 0, "{v}");
    let t = &v["report"]["sections"][0]["transcripts"];
    assert_eq!(
        (
            t["audited_jobs"].as_u64(),
            t["not_audited"].as_u64(),
            t["present"].as_u64()
        ),
        (Some(0), Some(3), Some(0))
    );

    // A receipt that claims an audit whose transcript is not there is refused; here one
    // from a runtime with a key, its transcript removed.
    let g = Fixture::new("audited-missing");
    let mut with_key = g.instance(2);
    assert!(claims_of(&with_key.receipts[0]).audited);
    with_key.transcripts[0] = None;
    assert_eq!(
        g.reason(
            &AuditBundle {
                sections: vec![with_key]
            },
            &[]
        ),
        "transcript_missing"
    );
}

/// Issue 13: the totals across sections were unchecked sums. Two instances whose signed
/// device times add up past 2^64 are refused, not wrapped into a small bill.
#[test]
fn totals_that_overflow_are_refused() {
    let f = Fixture::new("overflow");
    let huge = |facts: &mut JobFacts| facts.metering.device_ms = u64::MAX / 2 + 1;
    let a = f.instance_with(1, MODEL, true, huge);
    let b = f.instance_with(1, MODEL, true, huge);
    // Each instance alone verifies.
    let one = f.write(
        "one.cbor",
        &AuditBundle {
            sections: vec![a.clone()],
        },
    );
    assert_eq!(f.verify(&one, &[]).0, 0);
    let both = AuditBundle {
        sections: vec![a, b],
    };
    let path = f.write("both.cbor", &both);
    let (code, v) = f.verify(&path, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["reason"], "receipt_malformed", "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.starts_with("section 1: "), "{detail}");
    assert!(detail.contains("overflow 64 bits"), "{detail}");
}

#[test]
fn each_tampering_is_refused_with_its_reason() {
    let f = Fixture::new("tamper");
    let a = f.instance(5);
    let b = f.instance(2);
    let one = |s: Section| AuditBundle { sections: vec![s] };

    let mut t = a.clone();
    t.receipts[1] = edit_claims(&t.receipts[1], |c| c.output_tokens += 100);
    assert_eq!(f.reason(&one(t), &[]), "receipt_signature_invalid");

    let mut t = a.clone();
    t.receipts[2] = edit_claims(&t.receipts[2], |c| c.device_ms *= 10);
    assert_eq!(f.reason(&one(t), &[]), "receipt_signature_invalid");

    let mut t = a.clone();
    t.receipts.remove(2);
    t.transcripts.remove(2);
    assert_eq!(f.reason(&one(t), &[]), "receipt_gap");

    let mut t = a.clone();
    t.receipts.remove(0);
    t.transcripts.remove(0);
    assert_eq!(f.reason(&one(t), &[]), "receipt_gap");

    let mut t = a.clone();
    t.receipts.insert(3, t.receipts[2].clone());
    t.transcripts.insert(3, t.transcripts[2].clone());
    assert_eq!(f.reason(&one(t), &[]), "receipt_duplicate");

    let mut t = a.clone();
    t.receipts.swap(1, 3);
    t.transcripts.swap(1, 3);
    assert_eq!(f.reason(&one(t), &[]), "receipt_reordered");

    // Signed by a key the evidence does not bind.
    let mut t = a.clone();
    let other = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    t.receipts[4] = receipt::sign(&claims_of(&t.receipts[4]), &other);
    assert_eq!(f.reason(&one(t), &[]), "receipt_signature_invalid");

    // Replayed from another runtime instance.
    let mut t = a.clone();
    t.receipts.push(b.receipts[1].clone());
    t.transcripts.push(b.transcripts[1].clone());
    assert_eq!(f.reason(&one(t), &[]), "receipt_instance_mismatch");

    // Receipts signed by the attested key that name another model than the one attested.
    let other_model = f.instance_with_receipt_model(2, [0xEE; 32]);
    assert_eq!(f.reason(&one(other_model), &[]), "receipt_model_mismatch");

    // Evidence that binds another key.
    let mut t = a.clone();
    t.evidence = b.evidence.clone();
    assert_eq!(f.reason(&one(t), &[]), "receipt_key_not_bound");

    // An audited job's transcript removed, or another job's put in its place.
    let mut t = a.clone();
    t.transcripts[0] = None;
    assert_eq!(f.reason(&one(t), &[]), "transcript_missing");
    let mut t = a.clone();
    t.transcripts.swap(0, 1);
    assert_eq!(f.reason(&one(t), &[]), "transcript_mismatch");

    // The wrong auditor key cannot open the transcripts.
    let key_file = f.dir.join("wrong.key");
    let (wrong, _) = transcript::generate_auditor_keypair();
    std::fs::write(&key_file, hex::encode(wrong)).unwrap();
    assert_eq!(
        f.reason(
            &one(a.clone()),
            &["--auditor-key", key_file.to_str().unwrap()]
        ),
        "transcript_undecryptable"
    );

    // The same instance twice in one bundle.
    let twice = AuditBundle {
        sections: vec![a.clone(), a.clone()],
    };
    assert_eq!(f.reason(&twice, &[]), "receipt_duplicate");

    // Both instances together verify.
    let both = f.write(
        "both.cbor",
        &AuditBundle {
            sections: vec![a, b],
        },
    );
    let (code, v) = f.verify(&both, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["report"]["jobs"], 7);

    // Not a bundle at all: a verdict, not a crash.
    let junk = f.dir.join("junk.cbor");
    std::fs::write(&junk, b"\xa1\x01\x02").unwrap();
    let (code, v) = f.verify(&junk, &[]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("receipt_malformed")));
}

/// Issue 11: by default the signatures the hash chain needs are checked (here the last
/// receipt's), the others authenticated through the chain; `--every-signature` checks
/// them all. Both say so, in JSON and in text.
#[test]
fn every_signature_checks_every_receipt_and_the_output_says_how_many() {
    let f = Fixture::new("every-signature");
    let path = f.write(
        "audit.cbor",
        &AuditBundle {
            sections: vec![f.instance(6)],
        },
    );
    let (code, v) = f.verify(&path, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["every_signature"], false);
    let s = &v["report"]["sections"][0]["signatures"];
    assert_eq!(
        (
            &s["every_signature"],
            &s["verified"],
            &s["chain_authenticated"]
        ),
        (&Value::from(false), &Value::from(1), &Value::from(5)),
        "{v}"
    );
    let (code, v) = f.verify(&path, &["--every-signature"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["every_signature"], true);
    let s = &v["report"]["sections"][0]["signatures"];
    assert_eq!(
        (
            &s["every_signature"],
            &s["verified"],
            &s["chain_authenticated"]
        ),
        (&Value::from(true), &Value::from(6), &Value::from(0)),
        "{v}"
    );

    let text = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
            .arg("receipts")
            .arg(&path)
            .args(["--at", &now(), "--policy"])
            .arg(&f.policy)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let chain = text(&[]);
    assert!(
        chain.contains("receipts: seq 0..=5 (6 jobs), all by the bound key, chain unbroken; 1 signature(s) checked (the last receipt's and every 1024th), 5 receipt(s) authenticated through the hash chain into them"),
        "{chain}"
    );
    let every = text(&["--every-signature"]);
    assert!(
        every.contains(
            "(6 jobs), all by the bound key, chain unbroken; 6 signature(s) checked, every one"
        ),
        "{every}"
    );
}

/// Issue 11: a forged receipt is refused in both modes and named, wherever it is: one in
/// the middle whose signature chain mode does not check itself (its changed bytes break
/// the next receipt's link, and the receipt itself is named), and the last.
#[test]
fn a_forged_receipt_is_refused_and_named_in_both_modes() {
    let f = Fixture::new("forged");
    let a = f.instance(5);
    let other = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    type Forge<'a> = Box<dyn Fn(&mut Section) + 'a>;
    let forgeries: [(&str, usize, Forge<'_>); 4] = [
        (
            "re-signed by another key",
            2,
            Box::new(|s| s.receipts[2] = receipt::sign(&claims_of(&s.receipts[2]), &other)),
        ),
        (
            "claims altered, signature kept",
            1,
            Box::new(|s| s.receipts[1] = edit_claims(&s.receipts[1], |c| c.output_tokens += 100)),
        ),
        (
            "a signature bit flipped",
            3,
            Box::new(|s| *s.receipts[3].last_mut().unwrap() ^= 1),
        ),
        (
            "the last signature bit flipped",
            4,
            Box::new(|s| *s.receipts[4].last_mut().unwrap() ^= 1),
        ),
    ];
    for (what, at, forge) in &forgeries {
        let mut s = a.clone();
        forge(&mut s);
        let path = f.write("forged.cbor", &AuditBundle { sections: vec![s] });
        for extra in [&[][..], &["--every-signature"][..]] {
            let (code, v) = f.verify(&path, extra);
            assert_eq!(code, 1, "{what} {extra:?}: {v}");
            assert_eq!(
                v["reason"], "receipt_signature_invalid",
                "{what} {extra:?}: {v}"
            );
            let detail = v["detail"].as_str().unwrap();
            assert!(
                detail.starts_with(&format!("section 0: receipt {at}: ")),
                "{what} {extra:?}: {detail}"
            );
        }
    }
}

/// Issue 15: the audit bundle of a runtime with a bound (simulated) GPU verifies under the
/// policy requiring it, and is refused under one requiring two GPUs, or once the GPU
/// evidence is taken out of the sections' evidence.
#[test]
fn a_gpu_bound_runtime_s_receipts_verify_with_the_gpu_policy() {
    let f = Fixture::with_gpus("gpu", 1);
    let bundle = AuditBundle {
        sections: vec![f.instance(3)],
    };
    let path = f.write("gpu.cbor", &bundle);
    let (code, v) = f.verify(&path, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "accepted", "{v}");
    let text = std::fs::read_to_string(&f.policy).unwrap();
    assert!(text.contains("[gpu]\ncount = 1\n"), "{text}");
    std::fs::write(
        &f.policy,
        text.replace("[gpu]\ncount = 1\n", "[gpu]\ncount = 2\n"),
    )
    .unwrap();
    assert_eq!(f.reason(&bundle, &[]), "gpu_count_below_minimum");
    std::fs::write(&f.policy, &text).unwrap();
    let mut stripped = bundle.clone();
    for s in &mut stripped.sections {
        let mut e = attestation::bundle::EvidenceBundle::from_cbor(&s.evidence).unwrap();
        e.entries.retain(|e| !e.label.starts_with("gpu"));
        s.evidence = e.to_cbor();
    }
    // The evidence is verified before the receipts that name it.
    assert_eq!(f.reason(&stripped, &[]), "gpu_evidence_not_bound");
}
