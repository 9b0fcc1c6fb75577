//! GPU evidence bound to the runtime claims (issue 15, part 2), at the library level:
//! a simulated SEV-SNP report binds claims whose claim 8 names the evidence of simulated
//! NVIDIA GPUs (FAKE chain, real SPDM format) answering the nonce derived from the
//! claims. Every bundle path (`verify`, `verify_with`) checks the binding; each refusal
//! has its reason.

use attestation::binding::{
    gpu_evidence_digest, HpkeKey, PolicyFile, ReceiptKey, RuntimeClaims, COSE_ALG_EDDSA,
};
use attestation::bundle::{
    EvidenceBundle, CERT_MEDIA_TYPE, GPU_CHAIN_MEDIA_TYPE, GPU_EVIDENCE_MEDIA_TYPE,
    IND_ENDORSEMENT, IND_EVIDENCE, SNP_REPORT_MEDIA_TYPE,
};
use attestation::policy::{GpuPolicy, Hex, Policy};
use attestation::{Reason, Timestamp};
use sim::nvidia::SimulatedGpus;
use sim::tee::SimulatedSnp;
use std::sync::OnceLock;

fn tee() -> &'static SimulatedSnp {
    static TEE: OnceLock<SimulatedSnp> = OnceLock::new();
    TEE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("veritee-gpu-binding-{}", std::process::id()));
        let tee = SimulatedSnp::open_or_create(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        tee
    })
}

fn gpus() -> &'static SimulatedGpus {
    static GPUS: OnceLock<SimulatedGpus> = OnceLock::new();
    GPUS.get_or_init(|| SimulatedGpus::from_seed("gpu-binding test", 2))
}

fn claims(tls: u8) -> RuntimeClaims {
    RuntimeClaims {
        tls_spki_sha256: [tls; 32],
        receipt_key: ReceiptKey {
            alg: COSE_ALG_EDDSA,
            public_key: vec![8; 32],
        },
        auditor_hpke_key: Some(HpkeKey {
            kem: attestation::binding::HPKE_KEM_X25519_SHA256,
            public_key: vec![7; 32],
        }),
        model_digest: [6; 32],
        runtime_version: "test".into(),
        launch_config_digest: [5; 32],
        nonce: Some(vec![1; 16]),
        gpu_evidence_digest: None,
    }
}

fn now() -> Timestamp {
    Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

/// A bundle as the runtime builds it: `served` is the GPU set (evidence, chain PEM) it
/// serves, `bound` the set claim 8 names (None: no claim 8).
fn bundle_of(
    mut c: RuntimeClaims,
    bound: Option<&[(Vec<u8>, String)]>,
    served: &[(Vec<u8>, String)],
) -> EvidenceBundle {
    c.gpu_evidence_digest = bound.map(gpu_evidence_digest);
    let mut b = EvidenceBundle::new(c.to_cbor());
    b.push(
        "report",
        SNP_REPORT_MEDIA_TYPE,
        tee().report(&c.report_data(), &[5; 32]),
        IND_EVIDENCE,
    );
    for (label, der) in [
        ("vcek", tee().vcek_der()),
        ("ask", tee().ask_der()),
        ("ark", tee().ark_der()),
    ] {
        b.push(label, CERT_MEDIA_TYPE, der.to_vec(), IND_ENDORSEMENT);
    }
    for (i, (evidence, chain)) in served.iter().enumerate() {
        b.push(
            &format!("gpu{i}"),
            GPU_EVIDENCE_MEDIA_TYPE,
            evidence.clone(),
            IND_EVIDENCE,
        );
        b.push(
            &format!("gpu{i}-chain"),
            GPU_CHAIN_MEDIA_TYPE,
            chain.as_bytes().to_vec(),
            IND_ENDORSEMENT,
        );
    }
    // The wire format round trip is part of every case.
    EvidenceBundle::from_cbor(&b.to_cbor()).unwrap()
}

/// The GPU set the runtime with claims `c` collects: GPUs `0..n`, each answering
/// `c.gpu_nonce()`.
fn collect(c: &RuntimeClaims, n: usize) -> Vec<(Vec<u8>, String)> {
    (0..n)
        .map(|i| (gpus().evidence(i, c.gpu_nonce()), gpus().chain_pem(i)))
        .collect()
}

/// A bundle of a runtime with `n` GPUs bound.
fn bound_bundle(n: usize) -> EvidenceBundle {
    let c = claims(9);
    let set = collect(&c, n);
    bundle_of(c, Some(&set), &set)
}

fn evidence_policy() -> Policy {
    let mut p = Policy::default_verifier();
    p.dangerous_trusted_roots = vec![Hex(attestation::x509::sha256(tee().ark_der()))];
    p
}

fn gpu_section(count: u32, extra: &str) -> String {
    let base = format!(
        "[gpu]\ncount = {count}\narchitectures = [\"hopper\"]\nmin_driver_version = \"any\"\nmin_vbios_version = \"any\"\nrim = \"dangerous_skip\"\ndangerous_trusted_roots = [\"{}\"]\n",
        hex::encode(gpus().root_sha256())
    );
    let mut out = base;
    for line in extra.lines() {
        let key = line.split('=').next().unwrap().trim();
        out = out
            .lines()
            .map(|l| {
                if l.split('=').next().unwrap().trim() == key {
                    line.to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
    }
    out
}

fn policy_file(gpu: &str) -> PolicyFile {
    let text = format!(
        "{}\n[runtime]\nmodel_digests = \"any\"\nlaunch_config_digests = \"any\"\nruntime_versions = \"any\"\nauditor_hpke_keys = \"dangerous_any\"\n\n{gpu}",
        evidence_policy().to_toml()
    );
    let file = PolicyFile::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        PolicyFile::from_toml(&file.to_toml()).unwrap(),
        file,
        "to_toml round trip"
    );
    file
}

fn outcome(b: &EvidenceBundle, policy: &PolicyFile) -> Result<usize, Reason> {
    b.verify_with(policy, now())
        .map(|a| a.gpus().len())
        .map_err(|e| {
            eprintln!("  {e}");
            e.reason
        })
}

#[test]
fn one_bound_gpu_verifies_under_a_policy_requiring_one_and_two_are_refused() {
    let b = bound_bundle(1);
    let attested = b
        .verify_with(&policy_file(&gpu_section(1, "")), now())
        .unwrap();
    assert_eq!(attested.gpus().len(), 1);
    let gpu = &attested.gpus()[0];
    assert!(gpu.nonce_checked());
    assert_eq!(
        gpu.evidence().request.nonce,
        claims(9).gpu_nonce(),
        "the GPU answered the nonce derived from the claims"
    );
    assert_eq!(gpu.claims().driver_version.as_deref(), Some("570.124.06"));
    assert_eq!(
        gpu.claims().vbios_version.as_deref(),
        Some("96.00.9f.00.01")
    );
    // count is a minimum: 0 accepts it (and still verifies it), 2 refuses it.
    assert_eq!(outcome(&b, &policy_file(&gpu_section(0, ""))), Ok(1));
    assert_eq!(
        outcome(&b, &policy_file(&gpu_section(2, ""))),
        Err(Reason::GpuCountBelowMinimum)
    );
    // Two GPUs satisfy two.
    assert_eq!(
        outcome(&bound_bundle(2), &policy_file(&gpu_section(2, ""))),
        Ok(2)
    );
}

#[test]
fn the_simulated_gpu_root_is_trusted_only_when_the_policy_names_it() {
    let b = bound_bundle(1);
    let untrusted = gpu_section(1, "dangerous_trusted_roots = []");
    assert_eq!(
        outcome(&b, &policy_file(&untrusted)),
        Err(Reason::UntrustedRoot)
    );
    // Without [gpu] (GpuPolicy::none) a bound GPU is still verified, to NVIDIA's roots only.
    let text = policy_file("").to_toml();
    let no_section = PolicyFile::from_toml(&text).unwrap();
    assert_eq!(no_section.gpu, GpuPolicy::none());
    assert!(!text.contains("[gpu]"));
    assert_eq!(outcome(&b, &no_section), Err(Reason::UntrustedRoot));
    assert_eq!(
        b.verify(&evidence_policy(), now()).unwrap_err().reason,
        Reason::UntrustedRoot,
        "EvidenceBundle::verify checks claim 8 too"
    );
}

#[test]
fn evidence_made_for_other_keys_is_refused_even_when_bound() {
    // A host hands the runtime evidence its GPU produced for another runtime's keys
    // (another TLS key): the runtime binds it (claim 8 matches), the nonce does not.
    let ours = claims(9);
    let theirs = claims(10);
    assert_ne!(ours.gpu_nonce(), theirs.gpu_nonce());
    let relayed = collect(&theirs, 1);
    let b = bundle_of(ours.clone(), Some(&relayed), &relayed);
    assert_eq!(
        outcome(&b, &policy_file(&gpu_section(1, ""))),
        Err(Reason::GpuNonceMismatch)
    );
    // The client nonce (claim 7) is not part of the GPU nonce: evidence collected once
    // serves every request.
    let other_request = RuntimeClaims {
        nonce: Some(vec![2; 16]),
        ..ours.clone()
    };
    assert_eq!(other_request.gpu_nonce(), ours.gpu_nonce());
}

#[test]
fn swapped_missing_or_unbound_gpu_evidence_is_refused() {
    let policy = policy_file(&gpu_section(1, ""));
    let c = claims(9);
    let set = collect(&c, 1);
    // Evidence swapped after the CPU signed the claims: claim 8 names other evidence.
    let other = vec![(gpus().evidence(1, c.gpu_nonce()), gpus().chain_pem(1))];
    let swapped = bundle_of(c.clone(), Some(&set), &other);
    assert_eq!(outcome(&swapped, &policy), Err(Reason::GpuEvidenceNotBound));
    // Claim 8 present, evidence left out: refused even by a policy requiring no GPU.
    let stripped = bundle_of(c.clone(), Some(&set), &[]);
    assert_eq!(
        outcome(&stripped, &policy),
        Err(Reason::GpuEvidenceNotBound)
    );
    assert_eq!(
        outcome(&stripped, &policy_file(&gpu_section(0, ""))),
        Err(Reason::GpuEvidenceNotBound)
    );
    // GPU evidence served that no claim 8 binds.
    let unbound = bundle_of(c.clone(), None, &set);
    assert_eq!(
        outcome(&unbound, &policy_file(&gpu_section(0, ""))),
        Err(Reason::GpuEvidenceNotBound)
    );
    // No GPU at all: fine without a requirement, refused with one.
    let none = bundle_of(c.clone(), None, &[]);
    assert_eq!(outcome(&none, &policy_file(&gpu_section(0, ""))), Ok(0));
    assert_eq!(outcome(&none, &policy), Err(Reason::GpuCountBelowMinimum));
    // One GPU listed twice to meet count = 2.
    let twice = vec![set[0].clone(), set[0].clone()];
    let doubled = bundle_of(c.clone(), Some(&twice), &twice);
    assert_eq!(
        outcome(&doubled, &policy_file(&gpu_section(2, ""))),
        Err(Reason::GpuEvidenceNotBound)
    );
    // A GPU entry without its chain, or under another label: malformed.
    let mut no_chain = bound_bundle(1);
    no_chain.entries.retain(|e| e.label != "gpu0-chain");
    assert_eq!(outcome(&no_chain, &policy), Err(Reason::BundleMalformed));
    let mut odd = bound_bundle(1);
    odd.entries
        .iter_mut()
        .filter(|e| e.label == "gpu0")
        .for_each(|e| e.label = "gpu7".into());
    assert_eq!(outcome(&odd, &policy), Err(Reason::BundleMalformed));
}

#[test]
fn each_gpu_policy_field_refuses_with_its_reason() {
    let b = bound_bundle(1);
    let with = |extra: &str| outcome(&b, &policy_file(&gpu_section(1, extra)));
    assert_eq!(with("min_driver_version = \"570.124.06\""), Ok(1));
    assert_eq!(with("min_driver_version = \"570.86\""), Ok(1));
    assert_eq!(
        with("min_driver_version = \"570.124.7\""),
        Err(Reason::GpuDriverBelowMinimum)
    );
    assert_eq!(
        with("min_driver_version = \"575\""),
        Err(Reason::GpuDriverBelowMinimum)
    );
    assert_eq!(with("min_vbios_version = \"96.00.9f.00.01\""), Ok(1));
    assert_eq!(with("min_vbios_version = \"96.00.74\""), Ok(1));
    assert_eq!(
        with("min_vbios_version = \"96.00.a0.00.00\""),
        Err(Reason::GpuVbiosBelowMinimum)
    );
    // RIM appraisal required, no RIM served: typed.
    assert_eq!(with("rim = \"require\""), Err(Reason::GpuRimMissing));
    // Policy errors: no architecture, unknown architecture, bad version, unknown field.
    for bad in [
        "architectures = []",
        "architectures = [\"blackwell\"]",
        "min_driver_version = \"570.x\"",
        "min_vbios_version = \"\"",
        "rim = \"skip\"",
    ] {
        let text = format!(
            "{}\n[runtime]\nmodel_digests = \"any\"\nlaunch_config_digests = \"any\"\nruntime_versions = \"any\"\nauditor_hpke_keys = \"dangerous_any\"\n\n{}",
            evidence_policy().to_toml(),
            gpu_section(1, bad)
        );
        assert_eq!(
            PolicyFile::from_toml(&text).unwrap_err().reason,
            Reason::PolicyInvalid,
            "{bad}"
        );
    }
    // A missing field is a policy error too (every field is mandatory in [gpu]).
    let text = format!(
        "{}\n[runtime]\nmodel_digests = \"any\"\nlaunch_config_digests = \"any\"\nruntime_versions = \"any\"\nauditor_hpke_keys = \"dangerous_any\"\n\n[gpu]\ncount = 1\n",
        evidence_policy().to_toml()
    );
    assert_eq!(
        PolicyFile::from_toml(&text).unwrap_err().reason,
        Reason::PolicyInvalid
    );
}

/// `rim = "require"` with NVIDIA's real test RIMs (verified at their time, 2024-06-01):
/// they verify, and they are for other versions than the simulated GPU runs, so the
/// version check refuses; a missing or altered RIM is refused with its own reason.
#[test]
fn rim_appraisal_uses_served_rims_and_refuses_mismatches() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/vectors/nvidia/nvtrust-rim-test-samples");
    let driver = std::fs::read(dir.join("Driver_RIM_test_no_gpu.swidtag")).unwrap();
    let vbios = std::fs::read(dir.join("1010_0200_882_96005E0001_test_no_gpu.swidtag")).unwrap();
    let at = Timestamp::parse_rfc3339("2024-06-01T00:00:00Z").unwrap();
    let nonce = [3u8; 32];
    let anchors = attestation::nvidia::NvidiaTrustAnchors::nvidia()
        .dangerous_trust_device_root(gpus().root_der().to_vec());
    let gpu = attestation::nvidia::verify(
        &gpus().evidence(0, nonce),
        gpus().chain_der(0),
        attestation::nvidia::ExpectedNonce::Exactly(nonce),
        &anchors,
        at,
    )
    .unwrap();
    let policy = GpuPolicy {
        rim: attestation::policy::GpuRim::Require,
        ..GpuPolicy::none()
    };
    let reason = |rims: (Option<&[u8]>, Option<&[u8]>)| {
        policy
            .appraise_gpu(0, &gpu, rims, at)
            .map_err(|e| {
                eprintln!("  {e}");
                e.reason
            })
            .unwrap_err()
    };
    // NVIDIA's test RIMs are for driver 545.00 and VBIOS 96.00.5E.00.01; the simulated
    // GPU runs 570.124.06 and 96.00.9f.00.01: the version check refuses before the
    // measurements are compared.
    assert_eq!(
        reason((Some(&driver), Some(&vbios))),
        Reason::GpuRimVersionMismatch
    );
    assert_eq!(reason((Some(&driver), None)), Reason::GpuRimMissing);
    assert_eq!(reason((None, Some(&vbios))), Reason::GpuRimMissing);
    let mut altered = driver.clone();
    let at_digit = altered
        .windows(6)
        .position(|w| w == b"Hash0=")
        .expect("a reference hash")
        + 7;
    altered[at_digit] = if altered[at_digit] == b'0' {
        b'1'
    } else {
        b'0'
    };
    assert_eq!(
        reason((Some(&altered), Some(&vbios))),
        Reason::RimSignatureInvalid
    );
    // Not required: not appraised.
    GpuPolicy::none()
        .appraise_gpu(0, &gpu, (Some(&driver), Some(&vbios)), at)
        .unwrap();
}

/// Issue 15, CC mode: the signed feature flag (opaque type 36). PPCIE (the GPU's own CC
/// mode off) is refused under every policy, `[gpu]` or none; SPT and MPT are accepted and
/// shown in the claims; evidence without the flag states no mode.
#[test]
fn evidence_stating_the_gpu_cc_mode_off_is_refused() {
    let c = claims(9);
    let with_flag = |flag: u16| {
        let blocks: Vec<(u8, Vec<u8>)> = vec![(1, vec![1; 48])];
        let evidence = gpus().evidence_custom(
            0,
            c.gpu_nonce(),
            &sim::nvidia::EvidenceContent {
                driver: sim::nvidia::SIM_DRIVER_VERSION,
                vbios: [0x00, 0x9f, 0x00, 0x96, 0x01],
                blocks: &blocks,
                extra_opaque: &[(36, flag.to_le_bytes().to_vec())],
            },
        );
        let set = vec![(evidence, gpus().chain_pem(0))];
        bundle_of(c.clone(), Some(&set), &set)
    };
    let policy = policy_file(&gpu_section(1, ""));
    assert_eq!(outcome(&with_flag(0), &policy), Ok(1));
    assert_eq!(outcome(&with_flag(1), &policy), Ok(1));
    assert_eq!(outcome(&with_flag(2), &policy), Err(Reason::GpuCcModeOff));
    // Without a [gpu] section (GpuPolicy::none) too, once the FAKE root is trusted.
    let none = policy_file(&gpu_section(0, ""));
    assert_eq!(outcome(&with_flag(2), &none), Err(Reason::GpuCcModeOff));
    // A value NVIDIA does not define is malformed evidence.
    assert_eq!(outcome(&with_flag(3), &policy), Err(Reason::InvalidField));
    let accepted = with_flag(1).verify_with(&policy, now()).unwrap();
    assert_eq!(
        accepted.gpus()[0].claims().feature_flag,
        Some(attestation::nvidia::FeatureFlag::Mpt)
    );
    // The standard simulated evidence carries no flag: no mode stated, accepted.
    assert_eq!(outcome(&bound_bundle(1), &policy), Ok(1));
    let plain = bound_bundle(1).verify_with(&policy, now()).unwrap();
    assert_eq!(plain.gpus()[0].claims().feature_flag, None);
}

/// Issue 15, positive RIM match: evidence (signed under the simulated GPU's FAKE root,
/// trusted by the test) whose 64 measurement blocks carry the reference values of
/// NVIDIA's real signed test RIMs (driver 545.00, VBIOS 96.00.5E.00.01). With
/// `rim = "require"` both RIMs verify to NVIDIA's RIM root and every active index matches;
/// changing one block back is a mismatch naming it.
#[test]
fn evidence_meeting_nvidias_test_rims_is_accepted_with_rim_appraisal() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/vectors/nvidia/nvtrust-rim-test-samples");
    let driver = std::fs::read(dir.join("Driver_RIM_test_no_gpu.swidtag")).unwrap();
    let vbios = std::fs::read(dir.join("1010_0200_882_96005E0001_test_no_gpu.swidtag")).unwrap();
    let at = Timestamp::parse_rfc3339("2024-06-01T00:00:00Z").unwrap();
    let anchors = attestation::nvidia::NvidiaTrustAnchors::nvidia()
        .dangerous_trust_device_root(gpus().root_der().to_vec());
    let driver_rim = attestation::nvidia::verify_rim(&driver, &anchors, at).unwrap();
    let vbios_rim = attestation::nvidia::verify_rim(&vbios, &anchors, at).unwrap();
    assert_eq!(
        driver_rim.rim().colloquial_version.as_deref(),
        Some("545.00")
    );
    assert_eq!(
        vbios_rim.rim().colloquial_version.as_deref(),
        Some("96.00.5E.00.01")
    );
    // Block i + 1 = the first alternative of the active RIM entry i; other blocks a
    // filler no RIM governs.
    let reference = |spdm: u8| {
        [&driver_rim, &vbios_rim]
            .iter()
            .flat_map(|r| r.rim().active())
            .find(|m| m.index + 1 == u32::from(spdm))
            .map(|m| m.alternatives[0].clone())
    };
    let blocks: Vec<(u8, Vec<u8>)> = (1u8..=64)
        .map(|i| (i, reference(i).unwrap_or_else(|| vec![0xEE; 48])))
        .collect();
    let nonce = [4u8; 32];
    let make = |blocks: &[(u8, Vec<u8>)]| {
        let evidence = gpus().evidence_custom(
            0,
            nonce,
            &sim::nvidia::EvidenceContent {
                driver: "545.00",
                vbios: [0x00, 0x5e, 0x00, 0x96, 0x01],
                blocks,
                extra_opaque: &[(36, vec![0, 0])],
            },
        );
        attestation::nvidia::verify(
            &evidence,
            gpus().chain_der(0),
            attestation::nvidia::ExpectedNonce::Exactly(nonce),
            &anchors,
            at,
        )
        .unwrap()
    };
    let gpu = make(&blocks);
    let cmp = attestation::nvidia::compare_measurements(&gpu, &[&driver_rim, &vbios_rim]).unwrap();
    assert!(cmp.mismatches.is_empty(), "{:?}", cmp.mismatches);
    let driver_indices: Vec<u32> = driver_rim.rim().active().map(|m| m.index + 1).collect();
    let vbios_indices: Vec<u32> = vbios_rim.rim().active().map(|m| m.index + 1).collect();
    let mut all = [driver_indices.clone(), vbios_indices.clone()].concat();
    all.sort();
    assert_eq!(cmp.compared, all);
    // The active indices of each RIM (SPDM block numbers): the driver governs 8 and
    // 22..=41, the VBIOS 1..=7 and 9..=13.
    assert_eq!(
        driver_indices,
        [&[8u32][..], &(22..=41).collect::<Vec<u32>>()].concat()
    );
    assert_eq!(
        vbios_indices,
        [(1..=7).collect::<Vec<u32>>(), (9..=13).collect()].concat()
    );
    // Through the policy, as a verifier appraises a bundle's GPU with its served RIMs.
    let policy = GpuPolicy {
        count: 1,
        min_driver_version: attestation::policy::Constraint::Only(
            attestation::policy::DriverVersion::parse("545.00").unwrap(),
        ),
        min_vbios_version: attestation::policy::Constraint::Only(
            attestation::policy::VbiosVersion::parse("96.00.5e.00.01").unwrap(),
        ),
        rim: attestation::policy::GpuRim::Require,
        ..GpuPolicy::none()
    };
    policy
        .appraise_gpu(0, &gpu, (Some(&driver), Some(&vbios)), at)
        .unwrap();
    let claims = gpu.claims();
    assert_eq!(claims.driver_version.as_deref(), Some("545.00"));
    assert_eq!(claims.vbios_version.as_deref(), Some("96.00.5e.00.01"));
    assert_eq!(claims.measurements.len(), 64);
    // One active driver index and one active VBIOS index changed: a mismatch naming each.
    let (d, v) = (driver_indices[0] as u8, vbios_indices[0] as u8);
    let mut altered = blocks.clone();
    altered[usize::from(d) - 1].1 = vec![0xAB; 48];
    altered[usize::from(v) - 1].1 = vec![0xCD; 48];
    let bad = make(&altered);
    let cmp = attestation::nvidia::compare_measurements(&bad, &[&driver_rim, &vbios_rim]).unwrap();
    let mut named: Vec<u32> = cmp.mismatches.iter().map(|m| m.spdm_index).collect();
    named.sort();
    let mut want = vec![u32::from(d), u32::from(v)];
    want.sort();
    assert_eq!(named, want);
    assert_eq!(
        policy
            .appraise_gpu(0, &bad, (Some(&driver), Some(&vbios)), at)
            .unwrap_err()
            .reason,
        Reason::GpuMeasurementMismatch
    );
}

/// Bundle `b` with RIMs added for GPU 0 (`driver`, `vbios`: each served when given).
/// Claim 8 does not cover RIMs: they are public signed collateral, as AMD certificates.
fn with_rims(mut b: EvidenceBundle, driver: Option<&[u8]>, vbios: Option<&[u8]>) -> EvidenceBundle {
    for (label, rim) in [("gpu0-rim-driver", driver), ("gpu0-rim-vbios", vbios)] {
        if let Some(rim) = rim {
            b.push(
                label,
                attestation::bundle::GPU_RIM_MEDIA_TYPE,
                rim.to_vec(),
                IND_ENDORSEMENT,
            );
        }
    }
    EvidenceBundle::from_cbor(&b.to_cbor()).unwrap()
}

/// The `[gpu]` section requiring RIMs, trusting the simulated RIM root when `trust_rim_root`.
fn rim_section(trust_rim_root: bool) -> String {
    let mut s = gpu_section(1, "rim = \"require\"");
    if trust_rim_root {
        s.push_str(&format!(
            "dangerous_trusted_rim_roots = [\"{}\"]\n",
            hex::encode(gpus().rim_root_sha256())
        ));
    }
    s
}

/// Issue 15, RIMs served in the bundle: the simulated GPUs' RIMs (FAKE RIM root, signed
/// XMLDSig in NVIDIA's format) verify under a policy naming their root and every active
/// entry matches the standard simulated evidence; without the root named they are
/// untrusted; a missing RIM, a RIM for another version, RIMs in each other's place and a
/// measurement that differs are each refused with their reason.
#[test]
fn served_simulated_rims_are_appraised_with_versions_and_measurements() {
    use sim::nvidia::{sim_measurement, RimKind, SIM_DRIVER_VERSION, SIM_VBIOS_RIM_VERSION};
    let (driver, vbios) = gpus().rims();
    let b = bound_bundle(1);
    let require = policy_file(&rim_section(true));
    assert_eq!(require.gpu.rim, attestation::policy::GpuRim::Require);
    assert_eq!(require.gpu.dangerous_trusted_rim_roots.len(), 1);
    let both = with_rims(b.clone(), Some(&driver), Some(&vbios));
    assert_eq!(outcome(&both, &require), Ok(1));
    // The RIMs themselves: verified to the FAKE RIM root only when it is trusted.
    let anchors = attestation::nvidia::NvidiaTrustAnchors::nvidia()
        .dangerous_trust_rim_root(gpus().rim_root_der().to_vec());
    let v = attestation::nvidia::verify_rim(&driver, &anchors, now()).unwrap();
    assert_eq!(
        v.rim().colloquial_version.as_deref(),
        Some(SIM_DRIVER_VERSION)
    );
    assert_eq!(v.root_sha256(), gpus().rim_root_sha256());
    assert_eq!(
        attestation::nvidia::verify_rim(
            &driver,
            &attestation::nvidia::NvidiaTrustAnchors::nvidia(),
            now()
        )
        .unwrap_err()
        .reason,
        Reason::UntrustedRoot
    );
    // The RIM root is not trusted by the device-root field, nor by default.
    assert_eq!(
        outcome(&both, &policy_file(&rim_section(false))),
        Err(Reason::UntrustedRoot)
    );
    // Missing RIMs.
    assert_eq!(
        outcome(&with_rims(b.clone(), None, None), &require),
        Err(Reason::GpuRimMissing)
    );
    assert_eq!(
        outcome(&with_rims(b.clone(), Some(&driver), None), &require),
        Err(Reason::GpuRimMissing)
    );
    // Not required: not appraised (RIMs served or not).
    assert_eq!(outcome(&both, &policy_file(&gpu_section(1, ""))), Ok(1));
    // A driver RIM for another driver version, with the very measurements the GPU has.
    let entries = |spdm: &[u8]| -> Vec<(u32, bool, Vec<Vec<u8>>)> {
        spdm.iter()
            .map(|&i| (u32::from(i) - 1, true, vec![sim_measurement(i)]))
            .collect()
    };
    let other_driver = gpus().rim(RimKind::Driver, "570.124.07", &entries(&[2, 3]));
    let e = both_err(
        &with_rims(b.clone(), Some(&other_driver), Some(&vbios)),
        &require,
    );
    assert_eq!(e.reason, Reason::GpuRimVersionMismatch);
    assert!(
        e.detail.contains("\"570.124.07\"") && e.detail.contains("\"570.124.06\""),
        "{e}"
    );
    // "570.124.6" is the same number, not the same text: NVIDIA compares text.
    let short = gpus().rim(RimKind::Driver, "570.124.6", &entries(&[2, 3]));
    assert_eq!(
        outcome(&with_rims(b.clone(), Some(&short), Some(&vbios)), &require),
        Err(Reason::GpuRimVersionMismatch)
    );
    // A VBIOS RIM for another VBIOS; the RIM's upper-case hex matches the evidence's
    // lower case (case-insensitive, as NVIDIA's verifier lowercases the RIM's).
    let other_vbios = gpus().rim(RimKind::Vbios, "96.00.A0.00.01", &entries(&[1, 4]));
    assert_eq!(
        outcome(
            &with_rims(b.clone(), Some(&driver), Some(&other_vbios)),
            &require
        ),
        Err(Reason::GpuRimVersionMismatch)
    );
    let lower = gpus().rim(
        RimKind::Vbios,
        &SIM_VBIOS_RIM_VERSION.to_ascii_lowercase(),
        &entries(&[1, 4]),
    );
    assert_eq!(
        outcome(&with_rims(b.clone(), Some(&driver), Some(&lower)), &require),
        Ok(1)
    );
    // The two RIMs in each other's place.
    assert_eq!(
        outcome(&with_rims(b.clone(), Some(&vbios), Some(&driver)), &require),
        Err(Reason::GpuRimVersionMismatch)
    );
    // Right versions, one reference value the GPU does not have.
    let mut wrong = entries(&[2, 3]);
    wrong[1].2 = vec![vec![0xAB; 48]];
    let wrong_driver = gpus().rim(RimKind::Driver, SIM_DRIVER_VERSION, &wrong);
    let e = both_err(
        &with_rims(b.clone(), Some(&wrong_driver), Some(&vbios)),
        &require,
    );
    assert_eq!(e.reason, Reason::GpuMeasurementMismatch);
    assert!(e.detail.contains("[3]"), "{e}");
    // A RIM altered after signing.
    let mut altered = driver.clone();
    let at = altered.windows(3).position(|w| w == b"GPU").unwrap();
    altered[at] = b'X';
    assert_eq!(
        outcome(
            &with_rims(b.clone(), Some(&altered), Some(&vbios)),
            &require
        ),
        Err(Reason::RimSignatureInvalid)
    );
}

fn both_err(b: &EvidenceBundle, policy: &PolicyFile) -> attestation::Rejection {
    b.verify_with(policy, now()).map(|_| ()).unwrap_err()
}

/// `[gpu] revocation = "require"`: the bundle's `gpu{i}-ocsp-{k}` responses (DER, signed by
/// the simulated chain's CAs) must cover the device chain below the root; without them,
/// or with one missing, `ocsp_missing`; absent field: accepted as before.
#[test]
fn revocation_required_uses_the_ocsp_responses_the_bundle_serves() {
    use attestation::bundle::GPU_OCSP_MEDIA_TYPE;
    let at = now().unix();
    let with_ocsp = |indices: &[usize]| {
        let mut b = bound_bundle(1);
        for (k, &index) in indices.iter().enumerate() {
            b.push(
                &format!("gpu0-ocsp-{k}"),
                GPU_OCSP_MEDIA_TYPE,
                gpus().ocsp_good(0, index, at - 3600, at + 3600),
                IND_ENDORSEMENT,
            );
        }
        EvidenceBundle::from_cbor(&b.to_cbor()).unwrap()
    };
    let require = policy_file(&(gpu_section(1, "") + "revocation = \"require\"\n"));
    assert_eq!(outcome(&with_ocsp(&[1, 2]), &require), Ok(1));
    let attested = with_ocsp(&[1, 2]).verify_with(&require, now()).unwrap();
    assert!(attested.gpus()[0].revocation_checked());
    assert_eq!(outcome(&with_ocsp(&[]), &require), Err(Reason::OcspMissing));
    assert_eq!(
        outcome(&with_ocsp(&[2]), &require),
        Err(Reason::OcspMissing)
    );
    assert_eq!(
        outcome(&with_ocsp(&[]), &policy_file(&gpu_section(1, ""))),
        Ok(1)
    );
    // A served response for GPU 0 under another label is malformed.
    let mut b = bound_bundle(1);
    b.push(
        "gpu0-ocsp-1",
        GPU_OCSP_MEDIA_TYPE,
        gpus().ocsp_good(0, 1, at - 3600, at + 3600),
        IND_ENDORSEMENT,
    );
    assert_eq!(outcome(&b, &require), Err(Reason::BundleMalformed));
}
