//! The runtime's fuzz target (`chat_request`) over its seed corpus, as an ordinary test
//! (`fuzz/seed_runner.rs`), and the generator of the FAKE runtime that the attestation and
//! client fuzz targets use as their genuine partner (`fuzz/fixtures/`): made by this
//! crate's own attester, certificate builder, receipt issuer and audit export, on FAKE
//! evidence from veritee-sim's deterministic signers.

#[path = "../../fuzz/seed_runner.rs"]
mod seed_runner;

use seed_runner::{check_owned_targets, fuzz_dir, run_target};

#[test]
fn enclave_fuzz_targets_have_seed_tests() {
    check_owned_targets("enclave", &["chat_request"]);
}

#[test]
fn chat_request_seeds() {
    run_target("chat_request", enclave::fuzzing::chat_request);
}

/// The genuine request seed is one the runtime accepts: the target reaches past parsing.
#[test]
fn the_fixture_request_is_accepted() {
    let chat = enclave::openai::parse_chat_request(
        attestation::fuzzing::SIM_CHAT_REQUEST,
        &enclave::config::Limits::default(),
    )
    .expect("fuzz/fixtures/sim-chat-request.json parses");
    assert!(chat.stream && chat.include_usage);
}

/// Regenerate `fuzz/fixtures/` and the `sim-*` (and `code-*`) seeds of the targets that use
/// them:
/// `cargo test -p veritee-enclave --test fuzz_seeds -- --ignored regenerate_sim_fixture`.
/// Keys are fresh and transcripts are sealed with fresh randomness, so every run writes
/// different bytes with the same meaning.
#[test]
#[ignore = "writes fuzz/fixtures/ and fuzz/corpus/*/sim-*; run by hand after a format change"]
fn regenerate_sim_fixture() {
    fixture::regenerate();
}

mod fixture {
    use super::fuzz_dir;
    use attestation::audit::AuditBundle;
    use attestation::binding::{PolicyFile, RuntimePolicy, HPKE_KEM_X25519_SHA256};
    use attestation::bundle::EvidenceBundle;
    use attestation::fuzzing::{PART_SEPARATOR, SIM_AUDITOR_SECRET, SIM_TIME};
    use attestation::policy::{Constraint, Hex, Policy};
    use attestation::receipt::SamplingParams;
    use attestation::{snp, tdx, transcript, x509, Timestamp};
    use base64::Engine as _;
    use enclave::attester::{Attester, ClaimsTemplate, RuntimeKeys};
    use enclave::platform::{EvidenceSource, PlatformError, PlatformEvidence, TeeKind};
    use enclave::receipt_log::{LogOptions, ReceiptLog};
    use enclave::receipts::{Issuer, JobFacts, Metering};
    use serde_json::json;
    use sim::{FakeAmd, FakeIntel, FakeProduct, SnpReportBuilder, TdxQuoteBuilder};

    /// What the FAKE runtime claims to serve and how it was launched.
    const MODEL: &[u8] = b"FAKE model: the veritee fuzz fixture serves no weights";
    const LAUNCH: &[u8] = b"# FAKE launch configuration of the veritee fuzz fixture\n";

    /// FAKE SEV-SNP: a Genoa VCEK of veritee-sim's deterministic AMD signer, HOST_DATA =
    /// the launch configuration digest as the simulated TEE does it.
    struct FakeSnp;

    impl EvidenceSource for FakeSnp {
        fn kind(&self) -> TeeKind {
            TeeKind::SevSnp
        }
        fn describe(&self) -> String {
            "FAKE SEV-SNP (veritee-sim, fuzz fixture)".into()
        }
        fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
            let amd = FakeAmd::new(FakeProduct::Genoa);
            let vcek = amd.vcek().build();
            let report = SnpReportBuilder::for_leaf(&vcek)
                .report_data(*report_data)
                .host_data(x509::sha256(LAUNCH))
                .sign(&vcek);
            Ok(PlatformEvidence {
                kind: TeeKind::SevSnp,
                report,
                certificates: vec![
                    ("vcek.der".into(), vcek.der.clone()),
                    ("ask.der".into(), amd.ask_der().to_vec()),
                    ("ark.der".into(), amd.ark_der().to_vec()),
                ],
            })
        }
    }

    /// FAKE TDX: a v4 quote of veritee-sim's deterministic Intel signer (its collateral and
    /// root come as the host's collateral files).
    struct FakeTdx;

    impl EvidenceSource for FakeTdx {
        fn kind(&self) -> TeeKind {
            TeeKind::Tdx
        }
        fn describe(&self) -> String {
            "FAKE TDX (veritee-sim, fuzz fixture)".into()
        }
        fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
            let intel = FakeIntel::new();
            let pck = intel.pck_leaf().build(&intel);
            Ok(PlatformEvidence {
                kind: TeeKind::Tdx,
                report: TdxQuoteBuilder::new()
                    .report_data(*report_data)
                    .build(&intel, &pck),
                certificates: Vec::new(),
            })
        }
    }

    fn write(path: &str, bytes: &[u8]) {
        let path = fuzz_dir().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn template() -> ClaimsTemplate {
        ClaimsTemplate {
            model_digest: x509::sha256(MODEL),
            launch_config_digest: x509::sha256(LAUNCH),
            auditor_hpke_public_key: Some(transcript::auditor_public_key(&SIM_AUDITOR_SECRET)),
        }
    }

    /// The policy file accepting exactly the FAKE runtime, from what it is: its fake roots
    /// (dangerously), its measurement, HOST_DATA and MRTD, and its claims in `[runtime]`.
    /// `attestation::fuzzing::sim_policy` must be this policy.
    fn policy(snp_report: &[u8], tdx_quote: &[u8]) -> PolicyFile {
        let amd = FakeAmd::new(FakeProduct::Genoa);
        let intel = FakeIntel::new();
        let report = snp::SnpReport::parse(snp_report).unwrap();
        let quote = tdx::Quote::parse(tdx_quote).unwrap();
        let mut evidence = Policy::default_verifier();
        evidence.dangerous_trusted_roots = vec![
            Hex(x509::sha256(amd.ark_der())),
            Hex(x509::sha256(intel.root_der())),
        ];
        let snp = evidence.snp.as_mut().unwrap();
        snp.measurement = Constraint::Only(vec![Hex(report.measurement)]);
        snp.host_data = Constraint::Only(vec![Hex(report.host_data)]);
        evidence.tdx.as_mut().unwrap().mrtd = Constraint::Only(vec![Hex(quote.body.mr_td)]);
        let t = template();
        PolicyFile {
            evidence,
            runtime: RuntimePolicy {
                model_digests: Constraint::Only(vec![Hex(t.model_digest)]),
                launch_config_digests: Constraint::Only(vec![Hex(t.launch_config_digest)]),
                runtime_versions: Constraint::Only(vec![enclave::RUNTIME_VERSION.into()]),
                auditor_hpke_keys: Constraint::Only(vec![Hex(t.auditor_hpke_public_key.unwrap())]),
            },
            gpu: attestation::policy::GpuPolicy::none(),
        }
    }

    /// The request `veritee chat` sends (same fields, same JSON writer).
    fn chat_request() -> Vec<u8> {
        json!({
            "model": "SmolLM2-135M-Instruct-Q4_1",
            "messages": [{"role": "user", "content": "Say hello in three words."}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 16,
            "temperature": 0.7,
        })
        .to_string()
        .into_bytes()
    }

    /// The streamed answer before its receipt event, as the runtime writes it.
    fn stream_before_receipt() -> Vec<u8> {
        let fingerprint = format!(
            "{}-{}",
            enclave::RUNTIME_VERSION.replace(' ', "-"),
            &hex::encode(x509::sha256(MODEL))[..12]
        );
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let body = enclave::openai::chunk_body(
                "chatcmpl-fuzzfixture",
                1_780_272_000,
                "SmolLM2-135M-Instruct-Q4_1",
                &fingerprint,
                delta,
                finish,
            );
            format!("data: {body}\n\n")
        };
        let mut out = chunk(json!({"role": "assistant", "content": ""}), None);
        for t in ["Hello", " there", ",", " friend", "!"] {
            out.push_str(&chunk(json!({"content": t}), None));
        }
        out.push_str(&chunk(json!({}), Some("stop")));
        let usage = enclave::openai::usage_chunk_body(
            "chatcmpl-fuzzfixture",
            1_780_272_000,
            "SmolLM2-135M-Instruct-Q4_1",
            &fingerprint,
            enclave::openai::Usage::new(12, 5),
        );
        out.push_str(&format!("data: {usage}\n\n"));
        out.into_bytes()
    }

    fn fingerprint(tokens: usize) -> Vec<u8> {
        let mut b = inference::fingerprint::FingerprintBuilder::new(64).unwrap();
        for t in 0..tokens {
            let row: Vec<f32> = (0..64)
                .map(|i| ((t * 64 + i) as f32 * 0.37).sin())
                .collect();
            b.push(&row).unwrap();
        }
        b.finish().to_bytes()
    }

    fn job(n: u8, request: &[u8], response: &[u8], prompt: usize, output: usize) -> JobFacts {
        let start = SIM_TIME.unix() as u64 * 1000 - 60_000 + u64::from(n) * 1000;
        JobFacts {
            job_id: [0xf0 | n; 16],
            request: request.to_vec(),
            response_sha256: x509::sha256(response),
            prompt_ids: (0..prompt as u32).map(|i| 1 + i * 7).collect(),
            output_ids: (0..output as u32).map(|i| 100 + i).collect(),
            sampling: SamplingParams {
                temperature: 0.7,
                top_p: 1.0,
                top_k: 0,
                max_tokens: 16,
                repetition_penalty: 1.0,
                seed: 7 + u64::from(n),
            },
            fingerprint: fingerprint(output),
            end: attestation::transcript::JobEnd::Length,
            dangerous_cheat: None,
            metering: Metering {
                queue_wait_ms: 3,
                wall_start_ms: start,
                wall_end_ms: start + 412,
                device_ms: 398,
                device_share_ppm: 1_000_000,
            },
            audited: n != 1,
        }
    }

    pub fn regenerate() {
        assert_eq!(SIM_TIME, Timestamp::from_unix(sim::DEFAULT_AT));
        // One key set per runtime: the SNP runtime signs receipts, the TDX one only attests.
        let snp_keys = RuntimeKeys::generate().unwrap();
        let tdx_keys = RuntimeKeys::generate().unwrap();
        let snp = Attester::new(Box::new(FakeSnp), Vec::new(), &snp_keys, &template(), true);
        let intel = FakeIntel::new();
        let collateral = sim::TdxCollateralBuilder::new(&intel).build(&intel);
        let tdx = Attester::new(
            Box::new(FakeTdx),
            vec![
                (
                    "tdx_quote_collateral.json".into(),
                    collateral.to_dcap_qvl_json().into_bytes(),
                ),
                ("intel-root.der".into(), intel.root_der().to_vec()),
            ],
            &tdx_keys,
            &template(),
            true,
        );
        let snp_bundle = snp.bundle(None).unwrap();
        let snp_nonce = snp.bundle(Some(&[0x4e; 32])).unwrap();
        let tdx_bundle = tdx.bundle(Some(&[0x4e; 16])).unwrap();
        let report = &snp_bundle.entries[0].value;
        let quote = &tdx_bundle.entries[0].value;
        assert_eq!(
            policy(report, quote),
            attestation::fuzzing::sim_policy(),
            "update the SIM_* constants in attestation/src/fuzzing.rs"
        );
        let policy = format!(
            "# FAKE: accepts only the veritee fuzz fixture (fuzz/fixtures/), whose evidence\n\
             # comes from veritee-sim's fake signers. It proves nothing about hardware.\n{}",
            attestation::fuzzing::sim_policy().to_toml()
        );

        // Three jobs of the SNP runtime: a streamed answer to the fixture request, a job
        // that opted out of auditing, and another audited one.
        let request = chat_request();
        let before = stream_before_receipt();
        let dir = std::env::temp_dir().join(format!("veritee-fuzz-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let instance = [0x1d; 16];
        let log = ReceiptLog::create(&dir, instance, &snp_bundle.to_cbor(), LogOptions::default())
            .unwrap();
        let t = template();
        let issuer = Issuer::new(
            snp_keys.receipt,
            instance,
            snp_bundle.sha256(),
            t.model_digest,
            Some(attestation::binding::HpkeKey {
                kem: HPKE_KEM_X25519_SHA256,
                public_key: t.auditor_hpke_public_key.unwrap().to_vec(),
            }),
            log,
        );
        let jobs = [
            job(0, &request, &before, 12, 5),
            job(
                1,
                b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                b"{}",
                9,
                3,
            ),
            job(2, b"{}", b"{}", 30, 16),
        ];
        let mut receipts = Vec::new();
        for facts in jobs {
            let issued = issuer.issue(facts).unwrap();
            issued.durable.wait_blocking().unwrap();
            receipts.push(issued.receipt);
        }
        let section = enclave::audit_export::section_of_live(issuer.log()).unwrap();
        issuer.log().shutdown();
        let _ = std::fs::remove_dir_all(&dir);
        let audit = AuditBundle {
            sections: vec![section],
        };
        let sealed: Vec<Vec<u8>> = audit.sections[0]
            .transcripts
            .iter()
            .flatten()
            .cloned()
            .collect();
        let event = json!({
            "seq": 0,
            "receipt": base64::engine::general_purpose::STANDARD.encode(&receipts[0]),
            "response_sha256": hex::encode(x509::sha256(&before)),
        });
        let receipt_event = format!(
            "event: {}\ndata: {event}\n\n",
            attestation::receipt::RECEIPT_EVENT
        );
        let done = b"data: [DONE]\n\n";
        let cert = |bundle: &EvidenceBundle, key: &rcgen::KeyPair| {
            enclave::tls::attested_certificate(key, bundle, &["localhost".into()], 365)
                .unwrap()
                .to_vec()
        };

        write("fixtures/sim-audit-bundle.cbor", &audit.to_cbor());
        write("fixtures/sim-chat-request.json", &request);
        write("corpus/evidence_bundle/sim-snp.cbor", &snp_bundle.to_cbor());
        write(
            "corpus/evidence_bundle/sim-snp-nonce.cbor",
            &snp_nonce.to_cbor(),
        );
        write(
            "corpus/evidence_bundle/sim-tdx-nonce.cbor",
            &tdx_bundle.to_cbor(),
        );
        write(
            "corpus/bundle_certificate/sim-snp.der",
            &cert(&snp_bundle, &snp_keys.tls),
        );
        write(
            "corpus/bundle_certificate/sim-tdx.pem",
            sim::x509::certificate_pem(&cert(&tdx_bundle, &tdx_keys.tls)).as_bytes(),
        );
        write("corpus/runtime_claims/sim-snp.cbor", &snp_bundle.claims);
        write(
            "corpus/runtime_claims/sim-tdx-nonce.cbor",
            &tdx_bundle.claims,
        );
        write("corpus/policy_file/sim-policy.toml", policy.as_bytes());
        // The current policy format as the code writes it, so that some seed always loads.
        write(
            "corpus/policy_toml/code-default-verifier.toml",
            Policy::default_verifier().to_toml().as_bytes(),
        );
        for (i, r) in receipts.iter().enumerate() {
            write(&format!("corpus/receipt/sim-{i}.cose"), r);
        }
        write("corpus/receipt/sim-1-untagged.cose", &receipts[1][1..]);
        write("corpus/receipt/sim-log.bin", &receipts.join(PART_SEPARATOR));
        for (i, s) in sealed.iter().enumerate() {
            write(&format!("corpus/transcript/sim-sealed-{i}.cbor"), s);
        }
        write(
            "corpus/transcript/sim-plain-0.cbor",
            &transcript::open(&sealed[0], &SIM_AUDITOR_SECRET)
                .unwrap()
                .to_cbor(),
        );
        write(
            "corpus/audit_bundle/sim-audit-bundle.cbor",
            &audit.to_cbor(),
        );
        write(
            "corpus/sse_stream/sim-stream.txt",
            &[&before[..], receipt_event.as_bytes(), done].concat(),
        );
        write(
            "corpus/sse_stream/sim-stream-unreceipted.txt",
            &[&before[..], done].concat(),
        );
        write("corpus/chat_request/sim-chat-request.json", &request);
    }
}
