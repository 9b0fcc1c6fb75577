//! Every `[expect]` table under the real-hardware vectors is a test of the
//! `veritee-verify evidence` binary: same inputs, same time, same verdict.
//!
//! The corpus is the repository's `testdata/vectors` (or `VERITEE_VECTORS`); a missing
//! corpus is a failure (see `sim::vectors`).

use attestation::policy::{Permission, Policy};
use serde_json::Value;
use sim::vectors::Expectation;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Vectors whose manifest says "accepted" under a policy that "forbids debug", although the
/// evidence itself allows debugging (read from the bytes, not from here):
/// - go-sev-guest-milan-v2-vcek: guest POLICY = 0xb0000, bit 19 (DEBUG) set;
/// - trustee-tdx-v4-50806f-uptodate: TD_ATTRIBUTES = 01 00 00 10 .., bit 0 (DEBUG) set.
///
/// For these the test asserts both facts: the default policy rejects them with
/// `debug_not_allowed` and the claims show debug on, and under a policy that allows debug
/// (otherwise the default) the manifest's verdict and TCB status hold.
const DEBUG_VECTORS: &[(&str, &str)] = &[
    ("snp", "go-sev-guest-milan-v2-vcek"),
    ("tdx", "trustee-tdx-v4-50806f-uptodate"),
];

fn debug_allowing_policy(vector: &str) -> PathBuf {
    let mut policy = Policy::default_verifier();
    policy.debug = Permission::Allow;
    let path = std::env::temp_dir().join(format!(
        "veritee-debug-policy-{vector}-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, policy.to_toml()).unwrap();
    path
}

fn run_verifier(exp: &Expectation, policy: Option<&Path>) -> (i32, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veritee-verify"));
    command
        .arg("evidence")
        .args(exp.input_paths())
        .args(["--at", &exp.at, "--json"]);
    if let Some(policy) = policy {
        command.arg("--policy").arg(policy);
    }
    let output = command.output().unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {}\n{}",
            exp.dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), json)
}

fn check_platform(platform: &str, min_vectors: usize) {
    let exps = sim::vectors::expectations(platform);
    assert!(
        exps.len() >= min_vectors,
        "only {} {platform} vectors found",
        exps.len()
    );
    for exp in &exps {
        let name = &exp.name;
        let (mut code, mut json) = run_verifier(exp, None);
        if DEBUG_VECTORS.contains(&(platform, name.as_str())) {
            assert_eq!(json["verdict"], "rejected", "{name}: {json:#}");
            assert_eq!(json["reason"], "debug_not_allowed", "{name}: {json:#}");
            assert_eq!(code, 1, "{name}");
            assert_eq!(json["claims"]["debug"], true, "{name}");
            (code, json) = run_verifier(exp, Some(&debug_allowing_policy(name)));
        } else {
            assert_ne!(json["reason"], "debug_not_allowed", "{name}: {json:#}");
        }
        assert_eq!(json["verdict"], exp.verdict.as_str(), "{name}: {json:#}");
        assert_eq!(json["platform"], platform, "{name}");
        if exp.verdict == "accepted" {
            assert_eq!(code, 0, "{name}");
            assert!(json["reason"].is_null(), "{name}");
            assert_eq!(json["claims"]["platform"], platform, "{name}");
        } else {
            assert_eq!(code, 1, "{name}");
        }
        if let Some(status) = &exp.tcb_status {
            assert_eq!(json["claims"]["tcb_status"], status.as_str(), "{name}");
        }
        if let Some(class) = &exp.reason_class {
            assert_eq!(json["reason_class"], class.as_str(), "{name}: {json:#}");
        }
        eprintln!("{name}: {} ({})", exp.verdict, json["reason"]);
    }
    for (_, name) in DEBUG_VECTORS.iter().filter(|(p, _)| *p == platform) {
        assert!(
            exps.iter().any(|e| e.name == *name),
            "{platform}/{name} is missing from the corpus or lost its [expect] table"
        );
    }
    eprintln!(
        "{platform}: {} real-hardware vectors verified through veritee-verify",
        exps.len()
    );
}

#[test]
fn snp_vectors_give_their_expected_verdicts() {
    check_platform("snp", 8);
}

#[test]
fn tdx_vectors_give_their_expected_verdicts() {
    check_platform("tdx", 7);
}

/// One NVIDIA vector's file and MANIFEST field.
fn nvidia_file(vector: &str, name: &str) -> PathBuf {
    sim::vectors::vector_dir("nvidia", vector).join(name)
}

fn nvidia_manifest(vector: &str, key: &str) -> String {
    let text = std::fs::read_to_string(nvidia_file(vector, "MANIFEST.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc[key].as_str().unwrap().to_owned()
}

fn run_args(args: &[&std::ffi::OsStr]) -> (i32, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_veritee-verify"))
        .arg("evidence")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap(), json, stdout)
}

/// (vector, evidence file, chain file) of the GPU vectors that verify.
const GPU_VECTORS: [(&str, &str, &str); 2] = [
    (
        "nvtrust-hopper-h100-sample",
        "hopperAttestationReport.txt",
        "hopperCertChain.txt",
    ),
    (
        "trustee-hopper-h100-coco-ci",
        "hopper_coco_report1.txt",
        "hopper_coco_certs1.txt",
    ),
];

#[test]
fn nvidia_gpu_vectors_verify_through_the_binary() {
    for (vector, report, chain) in GPU_VECTORS {
        let at = nvidia_manifest(vector, "verification_time");
        let nonce = nvidia_manifest(vector, "request_nonce");
        let report = nvidia_file(vector, report);
        let chain = nvidia_file(vector, chain);
        // Chain first: files are recognised by content.
        let (code, json, _) = run_args(&[
            chain.as_os_str(),
            report.as_os_str(),
            "--at".as_ref(),
            at.as_ref(),
            "--gpu-nonce".as_ref(),
            nonce.as_ref(),
            "--json".as_ref(),
        ]);
        assert_eq!(code, 0, "{vector}: {json:#}");
        assert_eq!(json["verdict"], "accepted", "{vector}");
        assert_eq!(json["platform"], "nvidia-gpu", "{vector}");
        assert_eq!(json["claims"]["architecture"], "Hopper", "{vector}");
        assert_eq!(json["claims"]["nonce"], nonce.as_str(), "{vector}");
        assert_eq!(json["gpu"]["nonce_checked"], true, "{vector}");
        assert_eq!(json["revocation_checked"], false, "{vector}");
        assert_eq!(
            json["claims"]["measurements"].as_object().unwrap().len(),
            64
        );
        // Another nonce: rejected, exit 1.
        let mut wrong = nonce.clone().into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        let wrong = String::from_utf8(wrong).unwrap();
        let (code, json, _) = run_args(&[
            report.as_os_str(),
            chain.as_os_str(),
            "--at".as_ref(),
            at.as_ref(),
            "--gpu-nonce".as_ref(),
            wrong.as_ref(),
            "--json".as_ref(),
        ]);
        assert_eq!(code, 1, "{vector}");
        assert_eq!(json["reason"], "gpu_nonce_mismatch", "{vector}: {json:#}");
        assert_eq!(json["reason_class"], "binding", "{vector}");
        // No nonce given: accepted, and the output says the nonce was not checked.
        let (code, _, text) = run_args(&[
            report.as_os_str(),
            chain.as_os_str(),
            "--at".as_ref(),
            at.as_ref(),
        ]);
        assert_eq!(code, 0, "{vector}: {text}");
        assert!(text.starts_with("ACCEPTED\n"), "{text}");
        assert!(text.contains("GPU evidence: ACCEPTED"), "{text}");
        assert!(
            text.contains("--  requester nonce not checked: no --gpu-nonce given"),
            "{text}"
        );
        assert!(text.contains("--  revocation not checked"), "{text}");
        assert!(text.contains("  vbios_version: 96.00."), "{text}");
        eprintln!("nvidia/{vector}: accepted through veritee-verify");
    }
}

#[test]
fn trustees_negative_gpu_chains_are_rejected_through_the_binary() {
    let (vector, report, _) = GPU_VECTORS[0];
    let report = nvidia_file(vector, report);
    let negative = "trustee-hopper-cert-chain-negative";
    let at = nvidia_manifest(negative, "verification_time");
    for (chain, reason) in [
        ("hopper_cert_chain_case2.txt", "certificate_missing"),
        ("hopper_cert_chain_case3.txt", "issuer_mismatch"),
        ("hopper_cert_chain_case4.txt", "gpu_fwid_missing"),
        ("hopper_signing_cert.pem", "untrusted_root"),
    ] {
        let chain = nvidia_file(negative, chain);
        let (code, json, _) = run_args(&[
            report.as_os_str(),
            chain.as_os_str(),
            "--at".as_ref(),
            at.as_ref(),
            "--json".as_ref(),
        ]);
        assert_eq!(code, 1, "{}: {json:#}", chain.display());
        assert_eq!(json["verdict"], "rejected");
        assert_eq!(json["reason"], reason, "{}: {json:#}", chain.display());
        assert!(json["claims"].is_null());
    }
    // Evidence without its chain.
    let (code, json, _) = run_args(&[
        report.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["reason"], "certificate_missing", "{json:#}");
    // A malformed nonce is a usage error.
    let (code, _, _) = run_args(&[
        report.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--gpu-nonce".as_ref(),
        "12".as_ref(),
    ]);
    assert_eq!(code, 2);
}

/// Issue 15: RIM files given with GPU evidence are verified and held against it. NVIDIA's
/// test RIMs (driver 545.00, VBIOS 96.00.5E.00.01; valid at the sample's verification
/// time) verify to the pinned RIM root but are for other versions than the nvtrust
/// sample runs (driver 550.90.07, VBIOS 96.00.9F.00.01): `gpu_rim_version_mismatch`; a RIM
/// altered after signing is `rim_signature_invalid`; without RIMs the output says the
/// measurements were not appraised.
#[test]
fn rim_files_are_appraised_with_gpu_evidence() {
    let (vector, report, chain) = GPU_VECTORS[0];
    let at = nvidia_manifest(vector, "verification_time");
    let report = nvidia_file(vector, report);
    let chain = nvidia_file(vector, chain);
    let rims = "nvtrust-rim-test-samples";
    let driver = nvidia_file(rims, "Driver_RIM_test_no_gpu.swidtag");
    let vbios = nvidia_file(rims, "1010_0200_882_96005E0001_test_no_gpu.swidtag");
    let (code, json, _) = run_args(&[
        report.as_os_str(),
        chain.as_os_str(),
        driver.as_os_str(),
        vbios.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["reason"], "gpu_rim_version_mismatch", "{json:#}");
    assert_eq!(json["reason_class"], "policy");
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"545.00\"") && detail.contains("\"550.90.07\""),
        "{detail}"
    );
    let inputs = json["gpu"]["inputs"].as_array().unwrap();
    assert_eq!(
        inputs[2]["recognised_as"],
        "NVIDIA reference integrity manifest (RIM, SWID XML), version 545.00"
    );
    // Altered after signing (one reference hash digit).
    let dir = std::env::temp_dir().join(format!("veritee-rim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut altered = std::fs::read(&driver).unwrap();
    let at_digit = altered.windows(6).position(|w| w == b"Hash0=").unwrap() + 7;
    altered[at_digit] = if altered[at_digit] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let altered_path = dir.join("altered.swidtag");
    std::fs::write(&altered_path, altered).unwrap();
    let (code, json, _) = run_args(&[
        report.as_os_str(),
        chain.as_os_str(),
        altered_path.as_os_str(),
        vbios.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["reason"], "rim_signature_invalid", "{json:#}");
    std::fs::remove_dir_all(&dir).unwrap();
    // No RIM: accepted, measurements not appraised, said so.
    let (code, _, text) = run_args(&[
        report.as_os_str(),
        chain.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("--  measurements not appraised: no reference integrity manifest"),
        "{text}"
    );
}

fn refs(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

#[test]
fn cpu_and_gpu_evidence_verify_together() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/evidence/snp-genoa");
    let (report_vec, gpu_report, gpu_chain) = GPU_VECTORS[0];
    let gpu_report = nvidia_file(report_vec, gpu_report);
    let gpu_chain = nvidia_file(report_vec, gpu_chain);
    let snp_report = examples.join("report.bin");
    let vcek = examples.join("vcek.der");
    let nonce = nvidia_manifest(report_vec, "request_nonce");
    let at = "2025-10-01T08:00:00Z";
    let args = |nonce: &str| -> Vec<std::ffi::OsString> {
        vec![
            gpu_report.clone().into(),
            snp_report.clone().into(),
            gpu_chain.clone().into(),
            vcek.clone().into(),
            "--at".into(),
            at.into(),
            "--gpu-nonce".into(),
            nonce.into(),
            "--json".into(),
        ]
    };
    let a = args(&nonce);
    let (code, json, _) = run_args(&refs(&a));
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["verdict"], "accepted");
    assert_eq!(json["platform"], "snp");
    assert_eq!(json["claims"]["platform"], "snp");
    assert_eq!(json["gpu"]["verdict"], "accepted");
    assert_eq!(json["gpu"]["claims"]["hwmodel"], "GH100 A01 GSP BROM");
    // The CPU report verifies, the GPU's nonce does not: the command rejects, naming the GPU.
    let b = args(&"00".repeat(32));
    let (code, json, _) = run_args(&refs(&b));
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["verdict"], "rejected");
    assert_eq!(json["reason"], "gpu_nonce_mismatch");
    assert_eq!(json["claims"]["platform"], "snp");
    assert_eq!(json["gpu"]["verdict"], "rejected");
}

/// An OCSP response for certificate `index` of `chain` (issued by `index + 1`), status
/// good, current at 2025-01-01, signed with a key that is not NVIDIA's.
fn foreign_ocsp(chain: &[Vec<u8>], index: usize, response_status: u64) -> Vec<u8> {
    use sim::der;
    let sha1 = |b: &[u8]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
            .as_ref()
            .to_vec()
    };
    let cert = attestation::x509::parse_cert(&chain[index], "cert").unwrap();
    let issuer = attestation::x509::parse_cert(&chain[index + 1], "issuer").unwrap();
    let key_hash = sha1(&issuer.public_key().subject_public_key.data);
    let cert_id = der::seq(&[
        &der::seq(&[&der::oid("1.3.14.3.2.26"), &der::null()]),
        &der::octet_string(&sha1(cert.issuer().as_raw())),
        &der::octet_string(&key_hash),
        &der::tlv(0x02, cert.raw_serial()),
    ]);
    let this_update = der::tlv(0x18, b"20241231000000Z");
    let next_update = der::explicit(0, &der::tlv(0x18, b"20250102000000Z"));
    let tbs = der::seq(&[
        &der::explicit(2, &der::octet_string(&key_hash)),
        &this_update,
        &der::seq(&[&der::seq(&[
            &cert_id,
            &[0x80, 0x00],
            &this_update,
            &next_update,
        ])]),
    ]);
    let signer = sim::keys::FakeP384Key::from_label("not NVIDIA's OCSP responder");
    let basic = der::seq(&[
        &tbs,
        &der::seq(&[&der::oid("1.2.840.10045.4.3.3")]),
        &der::bit_string(&signer.sign_der(&tbs)),
    ]);
    let bytes = der::explicit(
        0,
        &der::seq(&[
            &der::oid("1.3.6.1.5.5.7.48.1.1"),
            &der::octet_string(&basic),
        ]),
    );
    der::seq(&[&der::enumerated(response_status), &bytes])
}

/// Issue 15, revocation: OCSP response files (DER) given with GPU evidence are recognised
/// and verified; one for the real device certificate signed by another key is
/// `ocsp_signature_invalid`, an unsuccessful one `ocsp_unsuccessful`; without any the
/// output says revocation was not checked.
#[test]
fn ocsp_files_are_verified_with_gpu_evidence() {
    let (vector, report, chain) = GPU_VECTORS[0];
    let at = nvidia_manifest(vector, "verification_time");
    let report = nvidia_file(vector, report);
    let chain = nvidia_file(vector, chain);
    let chain_der = attestation::x509::certs_from_pem(&std::fs::read(&chain).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("veritee-ocsp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (status, reason) in [(0, "ocsp_signature_invalid"), (3, "ocsp_unsuccessful")] {
        let path = dir.join(format!("device-{status}.ocsp"));
        std::fs::write(&path, foreign_ocsp(&chain_der, 1, status)).unwrap();
        let (code, json, _) = run_args(&[
            report.as_os_str(),
            chain.as_os_str(),
            path.as_os_str(),
            "--at".as_ref(),
            at.as_ref(),
            "--json".as_ref(),
        ]);
        assert_eq!(code, 1, "{json:#}");
        assert_eq!(json["reason"], reason, "{json:#}");
        let inputs = json["gpu"]["inputs"].as_array().unwrap();
        assert_eq!(
            inputs[2]["recognised_as"],
            "OCSP response (DER, RFC 6960) #0"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let (code, _, text) = run_args(&[
        report.as_os_str(),
        chain.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("revocation not checked"), "{text}");
}
