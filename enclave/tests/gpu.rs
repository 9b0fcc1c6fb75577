//! GPU binding end to end (issue 15): the real binary with `--simulate --simulate-gpus 1`
//! binds one simulated NVIDIA GPU in its claims (claim 8) and serves its evidence; the
//! verifying connector accepts it under the policy the launch wrote (which requires one
//! GPU) and refuses, inside the TLS handshake, under a policy requiring two or not trusting
//! the simulated GPU root. No prompt byte reaches the runtime on a refusal. Receipts and
//! the audit bundle of a GPU-bound runtime verify with the GPU policy.

#[macro_use]
mod common;

use attestation::audit::{self, AuditBundle};
use attestation::bundle::EvidenceBundle;
use attestation::receipt::RECEIPT_HEADER;
use attestation::Reason;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{connect, fresh_dir, now, rt, RequestExt, Server};
use enclave::gpu::{FixedGpuSource, GpuError, GpuEvidence};
use serde_json::json;

fn chat_body(message: &str) -> Vec<u8> {
    json!({
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "messages": [{"role": "user", "content": message}],
        "max_tokens": 4,
        "temperature": 0,
        "seed": 7,
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_simulated_gpu_is_bound_verified_and_required_by_the_written_policy() {
    let model_path = common::model();
    let state = fresh_dir("gpu-e2e");
    let server = Server::start_in(&model_path, &state, &["--simulate-gpus", "1"]);
    let policy = server.policy();
    assert_eq!(policy.gpu.count, 1, "the written policy requires the GPU");
    assert_eq!(policy.gpu.dangerous_trusted_roots.len(), 1);
    rt().block_on(async {
        // Refusals first, inside the handshake: two GPUs required; the GPU root untrusted.
        let mut two = policy.clone();
        two.gpu.count = 2;
        let err = connect(server.addr, &two).await.err().expect("refused");
        assert_eq!(err.reason, Reason::GpuCountBelowMinimum, "{err}");
        let mut untrusted = policy.clone();
        untrusted.gpu.dangerous_trusted_roots.clear();
        let err = connect(server.addr, &untrusted)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.reason, Reason::UntrustedRoot, "{err}");
        assert!(err.detail.starts_with("GPU 0:"), "{err}");

        // The written policy accepts it.
        let mut c = connect(server.addr, &policy)
            .await
            .expect("evidence verifies");
        assert_eq!(c.attested.gpus().len(), 1);
        let digest = c.attested.claims().gpu_evidence_digest.expect("claim 8");
        let gpu = &c.attested.gpus()[0];
        assert!(gpu.nonce_checked());
        assert_eq!(
            gpu.evidence().request.nonce,
            c.attested.claims().gpu_nonce()
        );

        // Nothing from the refused connections reached the API: no chat request counted.
        let metrics = String::from_utf8(c.request("GET", "/metrics", b"").await.body).unwrap();
        assert!(
            !metrics.contains("veritee_requests_total{endpoint=\"chat\""),
            "{metrics}"
        );

        // Fresh evidence (another client nonce) binds the same GPU evidence.
        let nonce = [0x5au8; 16];
        let r = c
            .request(
                "GET",
                &format!("/v1/attestation?nonce={}", hex::encode(nonce)),
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        let bundle = EvidenceBundle::from_cbor(&r.body).unwrap();
        assert_eq!(
            EvidenceBundle::from_cbor(&bundle.to_cbor()).unwrap(),
            bundle,
            "round trip"
        );
        let fresh = bundle.verify_with(&policy, now()).expect("fresh evidence");
        fresh.require_nonce(&nonce).unwrap();
        assert_eq!(fresh.claims().gpu_evidence_digest, Some(digest));
        assert_eq!(
            bundle.verify_with(&two, now()).unwrap_err().reason,
            Reason::GpuCountBelowMinimum
        );
        // The GPU evidence taken out of the bundle: claim 8 names missing evidence.
        let mut stripped = bundle.clone();
        stripped.entries.retain(|e| !e.label.starts_with("gpu"));
        let mut none_required = policy.clone();
        none_required.gpu.count = 0;
        assert_eq!(
            stripped
                .verify_with(&none_required, now())
                .unwrap_err()
                .reason,
            Reason::GpuEvidenceNotBound
        );

        // A job on the GPU-bound runtime: its receipt verifies against the attested keys.
        let request = chat_body("Say hi.");
        let r = c.request("POST", "/v1/chat/completions", &request).await;
        assert_eq!(r.status, 200);
        let header = r.headers.get(RECEIPT_HEADER).unwrap().to_str().unwrap();
        c.attested
            .verify_receipt(&BASE64.decode(header).unwrap())
            .expect("the receipt verifies");
    });
    drop(server);

    // The audit bundle of the GPU-bound runtime verifies offline with the GPU policy, and
    // is refused by one requiring two GPUs.
    let out = state.join("audit.cbor");
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_veritee-enclave"))
        .args(["export-audit", "--state-dir"])
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let bundle = AuditBundle::from_cbor(&std::fs::read(&out).unwrap()).unwrap();
    let report = audit::verify_bundle(&bundle, &policy, now(), None).expect("audit verifies");
    assert_eq!(report.jobs, 1);
    let mut two = policy.clone();
    two.gpu.count = 2;
    assert_eq!(
        audit::verify_bundle(&bundle, &two, now(), None)
            .unwrap_err()
            .reason,
        Reason::GpuCountBelowMinimum
    );
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn simulated_gpus_need_the_simulated_tee() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritee-enclave"))
        .args(["serve", "--simulate-gpus", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

/// The runtime refuses to bind GPU evidence made for other keys (a host relaying another
/// runtime's answer): it checks the nonce before claim 8 is set.
#[test]
fn the_runtime_refuses_gpu_evidence_for_other_keys() {
    use enclave::attester::{Attester, ClaimsTemplate, RuntimeKeys};
    struct NoEvidence;
    impl enclave::platform::EvidenceSource for NoEvidence {
        fn kind(&self) -> enclave::platform::TeeKind {
            enclave::platform::TeeKind::SevSnp
        }
        fn describe(&self) -> String {
            "none".into()
        }
        fn evidence(
            &self,
            _report_data: &[u8; 64],
        ) -> Result<enclave::platform::PlatformEvidence, enclave::platform::PlatformError> {
            unreachable!("not asked in this test")
        }
    }
    let template = ClaimsTemplate {
        model_digest: [1; 32],
        launch_config_digest: [2; 32],
        auditor_hpke_public_key: None,
    };
    let keys = RuntimeKeys::generate().unwrap();
    let mut attester = Attester::new(Box::new(NoEvidence), Vec::new(), &keys, &template, true);
    let other = RuntimeKeys::generate().unwrap();
    let other_attester = Attester::new(Box::new(NoEvidence), Vec::new(), &other, &template, true);
    let gpus = sim::nvidia::SimulatedGpus::from_seed("relay test", 1);
    let relayed = GpuEvidence {
        evidence: gpus.evidence(0, other_attester.claims().gpu_nonce()),
        chain_pem: gpus.chain_pem(0).into_bytes(),
    };
    let err = attester
        .bind_gpus(&FixedGpuSource(vec![relayed]))
        .unwrap_err();
    assert!(matches!(err, GpuError::Device { index: 0, .. }), "{err}");
    assert_eq!(attester.claims().gpu_evidence_digest, None);
    // Its own evidence binds.
    let own = GpuEvidence {
        evidence: gpus.evidence(0, attester.claims().gpu_nonce()),
        chain_pem: gpus.chain_pem(0).into_bytes(),
    };
    assert_eq!(attester.bind_gpus(&FixedGpuSource(vec![own])), Ok(1));
    assert!(attester.claims().gpu_evidence_digest.is_some());
}

/// Files (name, bytes) a test puts in a collateral subdirectory, made from the runtime's
/// simulated GPUs.
type CollateralFiles = dyn Fn(&sim::nvidia::SimulatedGpus) -> Vec<(&'static str, Vec<u8>)>;

/// A runtime with one simulated GPU and a collateral directory whose `subdir` holds
/// `files`. The GPUs derive from the seed in the state directory: it is made first, so
/// that the files are about (or signed for) the runtime's own GPU.
fn start_with_gpu_collateral(
    model_path: &std::path::Path,
    what: &str,
    subdir: &str,
    files: &CollateralFiles,
) -> (std::path::PathBuf, Server) {
    let state = fresh_dir(what);
    let gpus = sim::nvidia::SimulatedGpus::open_or_create(&state.join("simulated-gpu"), 1).unwrap();
    let collateral = state.join("collateral");
    std::fs::create_dir_all(collateral.join(subdir)).unwrap();
    for (name, bytes) in files(&gpus) {
        std::fs::write(collateral.join(subdir).join(name), bytes).unwrap();
    }
    let collateral = collateral.to_str().unwrap().to_owned();
    let server = Server::start_in(
        model_path,
        &state,
        &["--simulate-gpus", "1", "--collateral-dir", &collateral],
    );
    (state, server)
}

/// Issue 15, RIMs served: the host puts NVIDIA RIMs in the collateral directory's
/// `nvidia-rims/`; the runtime serves those whose versions are its GPUs' as
/// `gpu{i}-rim-driver` / `gpu{i}-rim-vbios`. Here the simulated GPU's RIMs (FAKE RIM root,
/// trusted only by the written policy's `dangerous_trusted_rim_roots`): a client policy
/// requiring RIMs accepts the runtime that has them, and refuses inside the handshake,
/// with `gpu_rim_missing`, a runtime without RIMs and one handed only a driver RIM for
/// another driver version (which it does not serve, and logs). A file that is not a RIM
/// is logged and does not stop the runtime.
#[test]
fn rims_in_the_collateral_directory_are_served_and_appraised() {
    use sim::nvidia::{sim_measurement, RimKind};
    let model_path = common::model();
    let start = |what: &str, rims: &CollateralFiles| {
        start_with_gpu_collateral(&model_path, what, "nvidia-rims", rims)
    };
    let (with_state, with) = start("gpu-rims", &|g| {
        let (driver, vbios) = g.rims();
        vec![
            ("driver.xml", driver),
            ("vbios.xml", vbios),
            ("notes.txt", b"not a RIM".to_vec()),
        ]
    });
    let (without_state, without) = start("gpu-no-rims", &|_| vec![]);
    let (other_state, other) = start("gpu-other-rim", &|g| {
        let entries: Vec<(u32, bool, Vec<Vec<u8>>)> = [2u8, 3]
            .iter()
            .map(|&i| (u32::from(i) - 1, true, vec![sim_measurement(i)]))
            .collect();
        vec![
            (
                "driver-570.124.07.xml",
                g.rim(RimKind::Driver, "570.124.07", &entries),
            ),
            ("vbios.xml", g.rims().1),
        ]
    });
    let require = |server: &Server| {
        let mut p = server.policy();
        assert_eq!(p.gpu.rim, attestation::policy::GpuRim::DangerousSkip);
        assert_eq!(p.gpu.dangerous_trusted_rim_roots.len(), 1);
        p.gpu.rim = attestation::policy::GpuRim::Require;
        p
    };
    rt().block_on(async {
        let c = connect(with.addr, &require(&with))
            .await
            .expect("the served RIMs verify and match");
        assert_eq!(c.attested.gpus().len(), 1);
        let err = connect(without.addr, &require(&without))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.reason, Reason::GpuRimMissing, "{err}");
        let err = connect(other.addr, &require(&other))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.reason, Reason::GpuRimMissing, "{err}");
        assert!(err.detail.contains("driver"), "{err}");
        // The written policies (RIMs not required) accept all three.
        for s in [&with, &without, &other] {
            connect(s.addr, &s.policy()).await.expect("accepted");
        }
        // The RIM root is trusted only because the written policy names it.
        let mut untrusted = require(&with);
        untrusted.gpu.dangerous_trusted_rim_roots.clear();
        let err = connect(with.addr, &untrusted).await.err().expect("refused");
        assert_eq!(err.reason, Reason::UntrustedRoot, "{err}");
        assert!(err.detail.contains("RIM"), "{err}");
    });
    assert!(
        with.stderr().contains("notes.txt: skipped, not a RIM")
            && with.stderr().contains("NVIDIA RIMs: 2 served for 1 GPU(s)"),
        "{}",
        with.stderr()
    );
    assert!(
        other
            .stderr()
            .contains("GPU 0: no driver RIM for version 570.124.06"),
        "{}",
        other.stderr()
    );
    drop((with, without, other));
    for d in [with_state, without_state, other_state] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Issue 15, GPU revocation: the host puts OCSP responses for the device chain in the
/// collateral directory's `nvidia-ocsp/`; the runtime serves those that verify for its
/// GPUs as `gpu{i}-ocsp-{k}`. A client policy requiring revocation checks accepts the
/// runtime handed responses for both certificates below the root (the per-boot leaf
/// excepted), and refuses, with `ocsp_missing`, a runtime handed none and one handed only
/// a stale response (which it does not serve, and logs). The written policies accept all
/// three.
#[test]
fn ocsp_responses_in_the_collateral_directory_are_served_and_required() {
    let model_path = common::model();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (hour, day) = (3_600, 86_400);
    let start = |what: &str, files: &CollateralFiles| {
        start_with_gpu_collateral(&model_path, what, "nvidia-ocsp", files)
    };
    let (with_state, with) = start("gpu-ocsp", &move |g| {
        vec![
            (
                "device.der",
                g.ocsp_good(0, 1, unix_now - hour, unix_now + day),
            ),
            (
                "identity.der",
                g.ocsp_good(0, 2, unix_now - hour, unix_now + day),
            ),
            ("notes.txt", b"not an OCSP response".to_vec()),
        ]
    });
    let (without_state, without) = start("gpu-no-ocsp", &|_| vec![]);
    let (stale_state, stale) = start("gpu-stale-ocsp", &move |g| {
        vec![(
            "device-old.der",
            g.ocsp_good(0, 1, unix_now - 3 * day, unix_now - day),
        )]
    });
    let require = |server: &Server| {
        let mut p = server.policy();
        assert_eq!(
            p.gpu.revocation,
            attestation::policy::GpuRevocation::DangerousSkip
        );
        p.gpu.revocation = attestation::policy::GpuRevocation::Require;
        p
    };
    rt().block_on(async {
        let c = connect(with.addr, &require(&with))
            .await
            .expect("the served responses verify and cover the chain");
        assert_eq!(c.attested.gpus().len(), 1);
        for server in [&without, &stale] {
            let err = connect(server.addr, &require(server))
                .await
                .err()
                .expect("refused");
            assert_eq!(err.reason, Reason::OcspMissing, "{err}");
        }
        for s in [&with, &without, &stale] {
            connect(s.addr, &s.policy()).await.expect("accepted");
        }
    });
    assert!(
        with.stderr()
            .contains("notes.txt: skipped, not an OCSP response")
            && with
                .stderr()
                .contains("NVIDIA OCSP: 2 served for 1 GPU(s) (2 file(s) handed in)"),
        "{}",
        with.stderr()
    );
    assert!(
        stale
            .stderr()
            .contains("NVIDIA OCSP: device-old.der: serves no GPU, not served (GPU 0:"),
        "{}",
        stale.stderr()
    );
    drop((with, without, stale));
    for d in [with_state, without_state, stale_state] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
