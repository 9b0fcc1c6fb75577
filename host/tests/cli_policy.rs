//! `veritee-host policy` through the binary: the policy it writes loads as a client policy,
//! pins exactly this image (evidence carrying the image's measurement and launch
//! configuration is accepted by the attestation crate; another vCPU shape, another launch
//! configuration or another boot is refused), and its launch configuration digest,
//! HOST_DATA and runtime version are the ones the runtime computes for the same file.

mod common;

use attestation::binding::{PolicyFile, ReceiptKey, RuntimeClaims};
use attestation::evidence::{Platform, VerifiedEvidence};
use attestation::policy::{Constraint, Hex};
use attestation::snp::SnpTrustAnchors;
use attestation::tdx::{TdxCollateral, TdxTrustAnchors};
use attestation::{Reason, Timestamp};
use common::{run, temp_dir};
use std::path::{Path, PathBuf};

fn hex48(s: &str) -> [u8; 48] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// A launch configuration naming an auditor key and a model.
fn launch_config(dir: &Path) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            "# deployment 7\nauditor_hpke_public_key = \"{}\"\nmodel_digest = \"{}\"\n",
            "ab".repeat(32),
            "cd".repeat(32)
        ),
    )
    .unwrap();
    path
}

fn load(text: &str) -> PolicyFile {
    PolicyFile::from_toml(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn measure(image: &Path, vcpus: &str, vcpu_type: &str) -> String {
    run([
        "measure",
        "--platform",
        "snp",
        "--image",
        image.to_str().unwrap(),
        "--vcpus",
        vcpus,
        "--vcpu-type",
        vcpu_type,
        "--json",
    ])
    .ok()
    .json()["measurement"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn only<T: Clone + std::fmt::Debug>(c: &Constraint<T>) -> T {
    match c {
        Constraint::Only(v) => v.clone(),
        Constraint::Any => panic!("expected a pinned value, got \"any\""),
    }
}

/// The SEV-SNP report the image would get, signed by the fake AMD chain, appraised under
/// the policy.
fn appraise_snp(
    policy: &PolicyFile,
    measurement: [u8; 48],
    host_data: [u8; 32],
) -> Result<(), Reason> {
    use sim::{FakeAmd, FakeProduct, SnpReportBuilder};
    let amd = FakeAmd::new(FakeProduct::Genoa);
    let leaf = amd.vcek().build();
    let report = SnpReportBuilder::for_leaf(&leaf)
        .measurement(measurement)
        .host_data(host_data)
        .sign(&leaf);
    let certs = vec![
        leaf.der.clone(),
        amd.ask_der().to_vec(),
        amd.ark_der().to_vec(),
    ];
    let anchors = SnpTrustAnchors::amd().dangerous_trust_ark(amd.ark_der().to_vec());
    let at = Timestamp::from_unix(sim::DEFAULT_AT);
    let verified = attestation::snp::verify(&report, &certs, &[], &anchors, at)
        .map(|r| VerifiedEvidence::Snp(Box::new(r)))
        .expect("the fake report verifies");
    policy
        .evidence
        .appraise(&verified)
        .map(|_| ())
        .map_err(|e| e.reason)
}

/// The TDX quote the image would get, signed by the fake Intel chain, appraised.
fn appraise_tdx(
    policy: &PolicyFile,
    mrtd: [u8; 48],
    mrconfigid: [u8; 48],
    rtmrs: [[u8; 48]; 4],
) -> Result<(), Reason> {
    use sim::{FakeIntel, TdxCollateralBuilder, TdxQuoteBuilder};
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    let mut q = TdxQuoteBuilder::new().mr_td(mrtd).mr_config_id(mrconfigid);
    for (i, r) in rtmrs.into_iter().enumerate() {
        q = q.rtmr(i, r);
    }
    let quote = q.build(&intel, &pck);
    let collateral = TdxCollateralBuilder::new(&intel).build(&intel);
    let collateral =
        TdxCollateral::from_dcap_qvl_json(collateral.to_dcap_qvl_json().as_bytes()).unwrap();
    let anchors = TdxTrustAnchors::dangerous_custom_root(intel.root_der().to_vec());
    let at = Timestamp::from_unix(sim::DEFAULT_AT);
    let verified = attestation::tdx::verify(&quote, Some(&collateral), &anchors, at)
        .map(|q| VerifiedEvidence::Tdx(Box::new(q)))
        .expect("the fake quote verifies");
    policy
        .evidence
        .appraise(&verified)
        .map(|_| ())
        .map_err(|e| e.reason)
}

/// The runtime's claims for this launch configuration and model, appraised by `[runtime]`.
fn appraise_runtime(
    policy: &PolicyFile,
    launch_digest: [u8; 32],
    auditor: Option<[u8; 32]>,
    model: [u8; 32],
    version: &str,
) -> Result<(), Reason> {
    let claims = RuntimeClaims {
        tls_spki_sha256: [1; 32],
        receipt_key: ReceiptKey {
            alg: -8,
            public_key: vec![2; 32],
        },
        auditor_hpke_key: auditor.map(|k| attestation::binding::HpkeKey {
            kem: 0x20,
            public_key: k.to_vec(),
        }),
        model_digest: model,
        runtime_version: version.to_owned(),
        launch_config_digest: launch_digest,
        nonce: None,
        gpu_evidence_digest: None,
    };
    policy.runtime.appraise(&claims).map_err(|e| e.reason)
}

#[test]
fn snp_policy_accepts_exactly_this_image() {
    let image = common::image_dir("policy-snp", &common::amdsev_suffix());
    let tmp = temp_dir("policy-snp-out");
    let config = launch_config(&tmp);
    let out = tmp.join("policy.toml");
    let r = run([
        "policy",
        "--image",
        image.to_str().unwrap(),
        "--launch-config",
        config.to_str().unwrap(),
        "--vcpus",
        "1,4",
        "--vcpu-type",
        "EPYC-v4",
        "--vcpu-type",
        "EPYC-Genoa",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    assert!(
        r.stderr
            .contains("accepts snp (4 SNP measurement(s), 0 TDX MRTD(s))"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("not in the policy: tdx:"), "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let policy = load(&text);
    assert_eq!(policy.evidence.platforms, vec![Platform::Snp]);
    assert!(policy.evidence.tdx.is_none());

    // One measurement per shape, each what `measure` prints for it.
    let snp = policy.evidence.snp.as_ref().unwrap();
    let want: Vec<Hex<48>> = [
        ("1", "EPYC-v4"),
        ("4", "EPYC-v4"),
        ("1", "EPYC-Genoa"),
        ("4", "EPYC-Genoa"),
    ]
    .iter()
    .map(|(n, t)| Hex(hex48(&measure(&image, n, t))))
    .collect();
    assert_eq!(only(&snp.measurement), want);
    assert_eq!(only(&snp.vmpl), vec![0]);

    // HOST_DATA and the launch configuration digest: what the runtime computes for the
    // same file (enclave::config, the code `veritee-enclave serve --launch-config` runs).
    let runtime = enclave::config::LoadedLaunchConfig::load(Some(&config)).unwrap();
    assert_eq!(only(&snp.host_data), vec![Hex(runtime.digest)]);
    assert_eq!(
        only(&policy.runtime.launch_config_digests),
        vec![Hex(runtime.digest)]
    );
    assert_eq!(
        only(&policy.runtime.auditor_hpke_keys),
        vec![Hex(runtime.auditor_hpke_public_key.unwrap())]
    );
    assert_eq!(
        only(&policy.runtime.model_digests),
        vec![Hex(runtime.model_digest.unwrap())]
    );
    assert_eq!(
        only(&policy.runtime.runtime_versions),
        vec![enclave::RUNTIME_VERSION.to_owned()]
    );
    // Everything else is the verifier's default.
    let default = attestation::policy::Policy::default_verifier();
    assert_eq!(policy.evidence.debug, default.debug);
    assert_eq!(policy.evidence.report_data, default.report_data);

    // Evidence of this image, this launch configuration: accepted; anything else: refused.
    let m = hex48(&measure(&image, "4", "EPYC-Genoa"));
    assert_eq!(appraise_snp(&policy, m, runtime.digest), Ok(()));
    let other_shape = hex48(&measure(&image, "2", "EPYC-Genoa"));
    assert_eq!(
        appraise_snp(&policy, other_shape, runtime.digest),
        Err(Reason::MeasurementMismatch)
    );
    let other_config = enclave::config::LoadedLaunchConfig::load(None).unwrap();
    assert_eq!(
        appraise_snp(&policy, m, other_config.digest),
        Err(Reason::HostDataMismatch)
    );
    // Another command line is another image.
    let other_image = common::image_dir("policy-snp-other", &common::amdsev_suffix());
    std::fs::write(other_image.join("cmdline"), "console=ttyS0 init=/bin/sh\n").unwrap();
    let other_boot = hex48(&measure(&other_image, "4", "EPYC-Genoa"));
    assert_ne!(other_boot, m);
    assert_eq!(
        appraise_snp(&policy, other_boot, runtime.digest),
        Err(Reason::MeasurementMismatch)
    );

    // The runtime's claims under this launch configuration pass [runtime]; another
    // launch configuration, auditor key or version does not.
    let (auditor, model) = (
        runtime.auditor_hpke_public_key,
        runtime.model_digest.unwrap(),
    );
    let v = enclave::RUNTIME_VERSION;
    assert_eq!(
        appraise_runtime(&policy, runtime.digest, auditor, model, v),
        Ok(())
    );
    assert_eq!(
        appraise_runtime(&policy, other_config.digest, auditor, model, v),
        Err(Reason::LaunchConfigNotAllowed)
    );
    assert_eq!(
        appraise_runtime(&policy, runtime.digest, Some([7; 32]), model, v),
        Err(Reason::AuditorKeyNotAllowed)
    );
    assert_eq!(
        appraise_runtime(&policy, runtime.digest, auditor, [8; 32], v),
        Err(Reason::ModelNotAllowed)
    );
    assert_eq!(
        appraise_runtime(
            &policy,
            runtime.digest,
            auditor,
            model,
            "veritee-enclave 9.9.9"
        ),
        Err(Reason::RuntimeVersionNotAllowed)
    );

    // The same policy from `measure --json` files of the same shapes.
    let mut files = Vec::new();
    for (n, t) in [
        ("1", "EPYC-v4"),
        ("4", "EPYC-v4"),
        ("1", "EPYC-Genoa"),
        ("4", "EPYC-Genoa"),
    ] {
        let f = tmp.join(format!("m-{n}-{t}.json"));
        let json = run([
            "measure",
            "--platform",
            "snp",
            "--image",
            image.to_str().unwrap(),
            "--vcpus",
            n,
            "--vcpu-type",
            t,
            "--json",
        ])
        .ok()
        .stdout;
        std::fs::write(&f, json).unwrap();
        files.push(f);
    }
    let mut args: Vec<String> = vec![
        "policy".into(),
        "--launch-config".into(),
        config.to_str().unwrap().into(),
        "--measurement-json".into(),
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_owned()));
    let from_json = load(&run(&args).ok().stdout);
    assert_eq!(from_json, policy);

    // ... but not from measurements of two different images.
    let other = tmp.join("other.json");
    std::fs::write(
        &other,
        run([
            "measure",
            "--platform",
            "snp",
            "--image",
            other_image.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .stdout,
    )
    .unwrap();
    let mut mixed = args.clone();
    mixed.push(other.to_str().unwrap().into());
    run(&mixed).refused(
        "measure different kernels, initrds or command lines: one policy is for one image",
    );
}

#[test]
fn tdx_policy_pins_mrtd_mrconfigid_and_the_reference_boot() {
    let image = common::image_dir("policy-tdx", &common::debian_ovmf());
    let tmp = temp_dir("policy-tdx-out");
    let config = launch_config(&tmp);
    let log_dir = common::fixture("dstack-tdx-quote-eventlog");
    let log = log_dir.join("event_log.json");
    let text = run([
        "policy",
        "--image",
        image.to_str().unwrap(),
        "--launch-config",
        config.to_str().unwrap(),
        "--platform",
        "tdx",
        "--event-log",
        log.to_str().unwrap(),
    ])
    .ok()
    .stdout;
    let policy = load(&text);
    assert_eq!(policy.evidence.platforms, vec![Platform::Tdx]);
    let tdx = policy.evidence.tdx.as_ref().unwrap();
    let m: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            common::fixture("debian-ovmf-2022.11-ovmfx64").join("MANIFEST.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mrtd = hex48(m["expected"]["tdx"]["mrtd_single_pass"].as_str().unwrap());
    assert_eq!(only(&tdx.mrtd), vec![Hex(mrtd)]);
    let runtime = enclave::config::LoadedLaunchConfig::load(Some(&config)).unwrap();
    let mut mrconfigid = [0u8; 48];
    mrconfigid[..32].copy_from_slice(&runtime.digest);
    assert_eq!(only(&tdx.mrconfigid), vec![Hex(mrconfigid)]);
    assert!(tdx.rtmr3.is_any(), "RTMR3 is for runtime events");
    let quote =
        host::measure::tdx::quote_measurements(&std::fs::read(log_dir.join("quote.bin")).unwrap())
            .unwrap();
    assert_eq!(only(&tdx.rtmr1), vec![Hex(quote.rtmrs[1])]);

    assert_eq!(appraise_tdx(&policy, mrtd, mrconfigid, quote.rtmrs), Ok(()));
    let two_pass = hex48(m["expected"]["tdx"]["mrtd_two_pass"].as_str().unwrap());
    assert_eq!(
        appraise_tdx(&policy, two_pass, mrconfigid, quote.rtmrs),
        Err(Reason::MeasurementMismatch)
    );
    assert_eq!(
        appraise_tdx(&policy, mrtd, [0; 48], quote.rtmrs),
        Err(Reason::HostDataMismatch)
    );
    let mut other_kernel = quote.rtmrs;
    other_kernel[1][0] ^= 1;
    assert_eq!(
        appraise_tdx(&policy, mrtd, mrconfigid, other_kernel),
        Err(Reason::RtmrMismatch)
    );

    // Both page-add orders when asked.
    let both = load(
        &run([
            "policy",
            "--image",
            image.to_str().unwrap(),
            "--launch-config",
            config.to_str().unwrap(),
            "--platform",
            "tdx",
            "--event-log",
            log.to_str().unwrap(),
            "--mrtd-order",
            "both",
        ])
        .ok()
        .stdout,
    );
    assert_eq!(
        only(&both.evidence.tdx.unwrap().mrtd),
        vec![Hex(mrtd), Hex(two_pass)]
    );

    // Without a reference event log the kernel is not pinned: refused unless named dangerous.
    run([
        "policy",
        "--image",
        image.to_str().unwrap(),
        "--launch-config",
        config.to_str().unwrap(),
        "--platform",
        "tdx",
    ])
    .refused("pass --event-log FILE from a reference boot");
    let r = run([
        "policy",
        "--image",
        image.to_str().unwrap(),
        "--launch-config",
        config.to_str().unwrap(),
        "--platform",
        "tdx",
        "--dangerous-unmeasured-boot",
    ])
    .ok();
    assert!(
        r.stderr.contains("WARNING: TDX RTMR0..2 are \"any\""),
        "{}",
        r.stderr
    );
    assert!(r
        .stdout
        .contains("the kernel, initrd and command line are NOT pinned"));
    assert!(load(&r.stdout).evidence.tdx.unwrap().rtmr1.is_any());
}

#[test]
fn bad_input_is_refused() {
    let image = common::image_dir("policy-bad", &common::amdsev_suffix());
    let img = image.to_str().unwrap();
    let tmp = temp_dir("policy-bad-out");
    let config = launch_config(&tmp);
    let cfg = config.to_str().unwrap();

    // No model anywhere.
    run(["policy", "--image", img]).refused("the policy must name the model");
    // Two different models.
    run([
        "policy",
        "--image",
        img,
        "--launch-config",
        cfg,
        "--model-digest",
        &"ee".repeat(32),
    ])
    .refused("name different models");
    // The same model twice is fine, and a model file is hashed.
    let model = tmp.join("model.gguf");
    std::fs::write(&model, b"GGUF fake").unwrap();
    let p = load(
        &run(["policy", "--image", img, "--model", model.to_str().unwrap()])
            .ok()
            .stdout,
    );
    assert_eq!(
        only(&p.runtime.model_digests),
        vec![Hex(hex::decode(common::sha256_hex(b"GGUF fake"))
            .unwrap()
            .try_into()
            .unwrap())]
    );
    assert_eq!(
        only(&p.runtime.auditor_hpke_keys),
        vec![],
        "no launch configuration: no auditor"
    );

    // A launch configuration the runtime would refuse is refused here too.
    let bad = tmp.join("bad.toml");
    for (text, needle) in [
        (
            "auditor_hpke_public_key = \"abcd\"\n",
            "auditor_hpke_public_key must be 64 hex digits",
        ),
        (
            "model_digest = \"zz\"\n",
            "model_digest must be 64 hex digits",
        ),
        ("model_digest = 7\n", "invalid type"),
        ("not toml", "launch configuration"),
    ] {
        std::fs::write(&bad, text).unwrap();
        assert!(
            enclave::config::LoadedLaunchConfig::load(Some(&bad)).is_err(),
            "{text}"
        );
        run([
            "policy",
            "--image",
            img,
            "--launch-config",
            bad.to_str().unwrap(),
            "--model-digest",
            &"ee".repeat(32),
        ])
        .refused(needle);
    }
    // Whatever the runtime loads, this tool reads to the same digest, auditor key and model.
    let upper = format!("model_digest = \"{}\"\n", "AB".repeat(32));
    let both = format!(
        "# deployment\nmodel_digest = \"{}\"\nauditor_hpke_public_key = \"{}\"\n",
        "01".repeat(32),
        "fe".repeat(32)
    );
    for text in ["", "# nothing\n", upper.as_str(), both.as_str()] {
        std::fs::write(&bad, text).unwrap();
        let runtime = enclave::config::LoadedLaunchConfig::load(Some(&bad)).unwrap();
        let ours = host::launch_config::LaunchConfig::parse(text.as_bytes()).unwrap();
        assert_eq!(ours.digest, runtime.digest, "{text}");
        assert_eq!(ours.host_data(), runtime.digest, "{text}");
        assert_eq!(
            ours.auditor_hpke_public_key,
            runtime.auditor_hpke_public_key
        );
        assert_eq!(ours.model_digest, runtime.model_digest);
    }
    // A key this tool does not read is noted (the runtime decides), and still digested.
    std::fs::write(&bad, format!("{both}future_key = 1\n")).unwrap();
    let r = run([
        "policy",
        "--image",
        img,
        "--launch-config",
        bad.to_str().unwrap(),
    ])
    .ok();
    assert!(
        r.stderr
            .contains("key \"future_key\" is the runtime's to check"),
        "{}",
        r.stderr
    );
    let p = load(&r.stdout);
    assert_eq!(
        only(&p.runtime.launch_config_digests),
        vec![Hex(hex::decode(common::sha256_hex(
            &std::fs::read(&bad).unwrap()
        ))
        .unwrap()
        .try_into()
        .unwrap())]
    );

    // SNP on a firmware without kernel hashes.
    let debian = common::image_dir("policy-debian", &common::debian_ovmf());
    run([
        "policy",
        "--image",
        debian.to_str().unwrap(),
        "--launch-config",
        cfg,
        "--platform",
        "snp",
    ])
    .refused("has no SNP_KERNEL_HASHES (0x10) section");
    // ... and with no platform asked for: neither SNP nor (without a log) TDX.
    run([
        "policy",
        "--image",
        debian.to_str().unwrap(),
        "--launch-config",
        cfg,
    ])
    .refused("this image can be measured for no platform");

    // A firmware-only measurement does not pin the OS.
    let fo = tmp.join("fo.json");
    std::fs::write(
        &fo,
        run([
            "measure",
            "--platform",
            "snp",
            "--firmware",
            common::debian_ovmf().to_str().unwrap(),
            "--firmware-only",
            "--json",
        ])
        .ok()
        .stdout,
    )
    .unwrap();
    run([
        "policy",
        "--launch-config",
        cfg,
        "--measurement-json",
        fo.to_str().unwrap(),
    ])
    .refused("a firmware-only SEV-SNP measurement does not cover the kernel");
    run([
        "policy",
        "--launch-config",
        cfg,
        "--measurement-json",
        fo.to_str().unwrap(),
        "--dangerous-unmeasured-boot",
    ])
    .ok();

    // The [gpu] section (issue 15): written as asked, loads back, and requires it.
    let gpu_text = run([
        "policy",
        "--launch-config",
        cfg,
        "--measurement-json",
        fo.to_str().unwrap(),
        "--dangerous-unmeasured-boot",
        "--gpus",
        "2",
        "--gpu-arch",
        "hopper",
        "--gpu-min-driver",
        "570.124.06",
        "--gpu-min-vbios",
        "96.00.9F.00.01",
        "--gpu-require-rims",
    ])
    .ok()
    .stdout;
    let gpu = load(&gpu_text).gpu;
    assert_eq!(gpu.count, 2);
    assert_eq!(
        gpu.architectures,
        vec![attestation::policy::GpuArchitecture::Hopper]
    );
    assert_eq!(only(&gpu.min_driver_version).as_str(), "570.124.06");
    assert_eq!(only(&gpu.min_vbios_version).as_str(), "96.00.9F.00.01");
    assert_eq!(gpu.rim, attestation::policy::GpuRim::Require);
    assert!(gpu.dangerous_trusted_roots.is_empty());
    // Without --gpu-require-rims the skip is explicit and the header says so; without
    // --gpus no GPU is required.
    let skip_text = run([
        "policy",
        "--launch-config",
        cfg,
        "--measurement-json",
        fo.to_str().unwrap(),
        "--dangerous-unmeasured-boot",
        "--gpus",
        "1",
    ])
    .ok()
    .stdout;
    let skip = load(&skip_text).gpu;
    assert_eq!(skip.count, 1);
    assert_eq!(skip.rim, attestation::policy::GpuRim::DangerousSkip);
    assert!(skip.min_driver_version.is_any());
    assert!(skip_text.contains("NOT appraised"), "{skip_text}");
    assert_eq!(
        load(
            &run([
                "policy",
                "--launch-config",
                cfg,
                "--measurement-json",
                fo.to_str().unwrap(),
                "--dangerous-unmeasured-boot",
            ])
            .ok()
            .stdout
        )
        .gpu,
        attestation::policy::GpuPolicy::none()
    );
    for (bad, says) in [
        (
            &["--gpus", "1", "--gpu-min-driver", "570.x"][..],
            "is not a driver version",
        ),
        (
            &["--gpus", "1", "--gpu-min-vbios", "96.00.zz"],
            "is not a VBIOS version",
        ),
        (
            &["--gpus", "1", "--gpu-arch", "blackwell"],
            "is not a GPU architecture",
        ),
        (&["--gpu-require-rims"], "--gpus"),
    ] {
        let mut args = vec![
            "policy",
            "--launch-config",
            cfg,
            "--measurement-json",
            fo.to_str().unwrap(),
            "--dangerous-unmeasured-boot",
        ];
        args.extend_from_slice(bad);
        run(&args).refused(says);
    }

    // Shape flags belong to an image, not to measurement files.
    run([
        "policy",
        "--launch-config",
        cfg,
        "--measurement-json",
        fo.to_str().unwrap(),
        "--vcpus",
        "8",
    ])
    .refused("with --measurement-json the shapes are the files'");
    // Unknown vCPU type; not JSON; both sources.
    run([
        "policy",
        "--image",
        img,
        "--launch-config",
        cfg,
        "--vcpu-type",
        "Skylake",
    ])
    .refused("unknown vCPU type \"Skylake\"");
    run(["policy", "--launch-config", cfg, "--measurement-json", cfg]).refused("not JSON");
    run([
        "policy",
        "--launch-config",
        cfg,
        "--measurement-json",
        fo.to_str().unwrap(),
        "--image",
        img,
    ])
    .refused("cannot be used with");
}
