//! NVIDIA GPU evidence over the real vectors in `testdata/vectors/nvidia` (or
//! `$VERITEE_VECTORS/nvidia`): every vector gives its MANIFEST's expected outcome at its
//! verification time, trustee's expected claims are reproduced, and a corpus of mutations
//! of the real evidence and chains is rejected with exact reasons. A missing corpus or named
//! vector is a failure, never a skip.

use attestation::nvidia::{
    self, ExpectedNonce, GpuVerifier, NvidiaTrustAnchors, SpdmEvidence, VerifiedGpuEvidence,
};
use attestation::{Reason, ReasonClass, Timestamp};
use std::path::PathBuf;

const SAMPLE: &str = "nvtrust-hopper-h100-sample";
const COCO: &str = "trustee-hopper-h100-coco-ci";
const NEGATIVE: &str = "trustee-hopper-cert-chain-negative";

fn file(vector: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = sim::vectors::vector_dir("nvidia", vector).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(vector: &str) -> toml::Table {
    let text = String::from_utf8(file(vector, "MANIFEST.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn manifest_str(vector: &str, key: &str) -> String {
    manifest(vector)
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{vector}: MANIFEST has no {key}"))
        .to_owned()
}

fn at(vector: &str) -> Timestamp {
    Timestamp::parse_rfc3339(&manifest_str(vector, "verification_time")).unwrap()
}

fn nonce(vector: &str) -> ExpectedNonce {
    let mut n = [0u8; 32];
    hex::decode_to_slice(manifest_str(vector, "request_nonce"), &mut n).unwrap();
    ExpectedNonce::Exactly(n)
}

fn chain(vector: &str, name: &str) -> Vec<Vec<u8>> {
    nvidia::chain_from_pem(&file(vector, name)).unwrap()
}

/// (evidence hex text, chain DER) of a positive vector.
fn inputs(vector: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    match vector {
        SAMPLE => (
            file(SAMPLE, "hopperAttestationReport.txt"),
            chain(SAMPLE, "hopperCertChain.txt"),
        ),
        COCO => (
            file(COCO, "hopper_coco_report1.txt"),
            chain(COCO, "hopper_coco_certs1.txt"),
        ),
        other => panic!("{other} is not a positive GPU vector"),
    }
}

fn anchors() -> NvidiaTrustAnchors {
    NvidiaTrustAnchors::nvidia()
}

fn verify_vector(vector: &str) -> VerifiedGpuEvidence {
    let (evidence, chain) = inputs(vector);
    nvidia::verify(&evidence, &chain, nonce(vector), &anchors(), at(vector))
        .unwrap_or_else(|e| panic!("{vector}: {e}"))
}

fn reason_of(evidence: &[u8], chain: &[Vec<u8>], nonce: ExpectedNonce, at: Timestamp) -> Reason {
    match nvidia::verify(evidence, chain, nonce, &anchors(), at) {
        Ok(_) => panic!("verified, expected a rejection"),
        Err(e) => {
            eprintln!("  rejected: {e}");
            e.reason
        }
    }
}

/// The binary evidence of a vector.
fn binary(vector: &str) -> Vec<u8> {
    let (text, _) = inputs(vector);
    hex::decode(String::from_utf8(text).unwrap().trim()).unwrap()
}

#[test]
fn every_nvidia_vector_is_covered_here() {
    let dir = sim::vectors::platform_dir("nvidia");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "nvidia-roots",
            SAMPLE,
            "nvtrust-rim-test-samples",
            NEGATIVE,
            COCO
        ],
        "a new NVIDIA vector needs its expected outcome asserted in this file"
    );
}

#[test]
fn the_nvtrust_sample_verifies_and_gives_trustees_claims() {
    let v = verify_vector(SAMPLE);
    assert_eq!(v.architecture(), nvidia::Architecture::Hopper);
    assert_eq!(hex::encode(v.root_sha256()), nvidia::DEVICE_ROOT_SHA256);
    assert!(v.nonce_checked());
    assert!(!v.revocation_checked());
    assert_eq!(v.evidence().response.blocks.len(), 64);
    assert_eq!(v.evidence().trailing_padding(), 0);
    let claims = v.claims();

    // trustee's expected claims for this very evidence (deps/verifier/test_data/nvidia).
    let expected: serde_json::Value =
        serde_json::from_slice(&file(SAMPLE, "hopperAttestationReport-claims.txt")).unwrap();
    assert_eq!(expected["arch"], claims.architecture.as_str());
    let config = &expected["config"];
    let text = |k: &str| {
        config[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}"))
            .to_owned()
    };
    assert_eq!(claims.board_id.as_deref(), Some(&text("board_id")[..]));
    assert_eq!(claims.chip_sku.as_deref(), Some(&text("chip_sku")[..]));
    assert_eq!(
        claims.chip_sku_mod.as_deref(),
        Some(&text("chip_sku_mod")[..])
    );
    assert_eq!(claims.cpr_info.as_deref(), Some(&text("cpr_info")[..]));
    assert_eq!(
        claims.driver_version.as_deref(),
        Some(&text("driver_version")[..])
    );
    assert_eq!(claims.fwid, text("fwid"));
    assert_eq!(claims.gpu_info.as_deref(), Some(&text("gpu_info")[..]));
    assert_eq!(
        claims.nvdec0_status.as_deref(),
        Some(&text("nvdec0_status")[..])
    );
    assert_eq!(claims.project.as_deref(), Some(&text("project")[..]));
    assert_eq!(
        claims.project_sku.as_deref(),
        Some(&text("project_sku")[..])
    );
    assert_eq!(
        claims.project_sku_mod.as_deref(),
        Some(&text("project_sku_mod")[..])
    );
    assert_eq!(
        claims.protected_pcie_status.as_deref(),
        Some(&text("protected_pcie_status")[..])
    );
    assert_eq!(
        claims.vbios_version.as_deref(),
        Some(&text("vbios_version")[..])
    );
    let counts = config["measurement_count"].as_object().unwrap();
    assert_eq!(counts.len(), 64);
    assert_eq!(claims.measurement_count.len(), 64);
    for (k, v) in counts {
        let i: u8 = k.parse().unwrap();
        assert_eq!(
            u64::from(claims.measurement_count[&i]),
            v.as_u64().unwrap(),
            "count {k}"
        );
    }
    let measurements = expected["measurements"].as_object().unwrap();
    assert_eq!(measurements.len(), 64);
    assert_eq!(claims.measurements.len(), 64);
    for (k, v) in measurements {
        let i: u8 = k.parse().unwrap();
        assert_eq!(
            claims.measurements[&i],
            v.as_str().unwrap(),
            "measurement {k}"
        );
    }
    // trustee's claims name no other config field than those compared here.
    let mut keys: Vec<&String> = config.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys.len(), 14, "{keys:?}");

    // The MANIFEST's identity of the part.
    assert_eq!(claims.hwmodel, "GH100 A01 GSP BROM");
    assert_eq!(claims.spdm_version, "1.1");
    assert_eq!(claims.opaque_data_version, None);
    assert!(claims.other_opaque_fields.is_empty());
    assert_eq!(
        claims.nonce,
        "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
    );
    assert!(!claims.revocation_checked);
    // Serializable for JSON output.
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["measurements"]["2"], claims.measurements[&2]);
}

#[test]
fn the_coco_ci_vector_verifies_with_its_trailing_zero_byte() {
    let v = verify_vector(COCO);
    let claims = v.claims();
    assert_eq!(v.evidence().as_bytes().len(), 4130);
    assert_eq!(v.evidence().trailing_padding(), 1);
    assert_eq!(claims.trailing_padding, 1);
    assert_eq!(v.evidence().signed_bytes().len(), 4130 - 97);
    assert_eq!(claims.driver_version.as_deref(), Some("580.95.05"));
    assert_eq!(claims.vbios_version.as_deref(), Some("96.00.74.00.1a"));
    assert_eq!(claims.project.as_deref(), Some("1010"));
    assert_eq!(claims.project_sku.as_deref(), Some("0200"));
    assert_eq!(claims.chip_sku.as_deref(), Some("882"));
    assert_eq!(claims.opaque_data_version, Some(1));
    // Opaque type 36, the feature flag, is 0: single-GPU passthrough, CC mode on.
    assert!(claims.other_opaque_fields.is_empty());
    assert_eq!(
        claims.feature_flag,
        Some(attestation::nvidia::FeatureFlag::Spt)
    );
    assert!(claims.fwid.starts_with("f1ae7d00"), "{}", claims.fwid);
    assert!(claims.fwid.ends_with("1f7b2d"), "{}", claims.fwid);
    assert_eq!(claims.measurements.len(), 64);
    // The evidence digest is over the bytes without the padding.
    assert_eq!(
        claims.evidence_sha256,
        hex::encode(attestation::x509::sha256(&binary(COCO)[..4129]))
    );
    // trustee passes 48 bytes of expected report data: only the first 32 are the nonce.
    assert_eq!(
        claims.nonce,
        &"87d8e24ab336adafe228d49e83d745f6dba4ae505372b6a5704820856b343fece279b616efefc2aae21da80cf5581250"[..64]
    );
}

#[test]
fn hex_text_and_binary_evidence_verify_alike() {
    for vector in [SAMPLE, COCO] {
        let (text, chain) = inputs(vector);
        let from_text = SpdmEvidence::parse_hex(&text).unwrap();
        let from_binary = SpdmEvidence::parse(&binary(vector)).unwrap();
        assert_eq!(from_text, from_binary, "{vector}");
        assert!(nvidia::looks_like_gpu_evidence(&text));
        let v = nvidia::verify(
            &binary(vector),
            &chain,
            nonce(vector),
            &anchors(),
            at(vector),
        )
        .unwrap();
        assert_eq!(v.evidence(), &from_text);
    }
}

#[test]
fn the_dstack_nvattest_fixture_names_the_same_device_model() {
    // NVIDIA's own verifier output for another H100: its hwmodel is the device
    // certificate's CN, as our claims report it, and the device type is "gpu".
    let path = sim::vectors::vector_dir("measure", "dstack-nvattest-h100-claims")
        .join("gpu_attestation_h100.json");
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let c = &fixture["claims"][0];
    for vector in [SAMPLE, COCO] {
        let claims = verify_vector(vector).claims();
        assert_eq!(c["hwmodel"], claims.hwmodel, "{vector}");
        assert_eq!(c["x-nvidia-device-type"], claims.device, "{vector}");
        // The fixture states what NVIDIA checked online; offline we cannot.
        assert_eq!(
            c["x-nvidia-gpu-attestation-report-cert-chain"]["x-nvidia-cert-ocsp-status"],
            "good"
        );
        assert!(!claims.revocation_checked);
    }
}

#[test]
fn trustees_negative_chains_fail_with_their_reasons() {
    let (evidence, _) = inputs(SAMPLE);
    let t = at(NEGATIVE);
    // case 2: only the root CA.
    eprintln!("case 2");
    assert_eq!(
        reason_of(
            &evidence,
            &chain(NEGATIVE, "hopper_cert_chain_case2.txt"),
            nonce(SAMPLE),
            t
        ),
        Reason::CertificateMissing
    );
    // case 3: an intermediate CA missing: the link above it does not verify.
    eprintln!("case 3");
    assert_eq!(
        reason_of(
            &evidence,
            &chain(NEGATIVE, "hopper_cert_chain_case3.txt"),
            nonce(SAMPLE),
            t
        ),
        Reason::IssuerMismatch
    );
    // case 4: the leaf missing: the chain verifies, but its first certificate has no FWID.
    eprintln!("case 4");
    assert_eq!(
        reason_of(
            &evidence,
            &chain(NEGATIVE, "hopper_cert_chain_case4.txt"),
            nonce(SAMPLE),
            t
        ),
        Reason::GpuFwidMissing
    );
    // The leaf alone: its issuer is no pinned root.
    eprintln!("leaf alone");
    assert_eq!(
        reason_of(
            &evidence,
            &chain(NEGATIVE, "hopper_signing_cert.pem"),
            nonce(SAMPLE),
            t
        ),
        Reason::UntrustedRoot
    );
}

#[test]
fn the_chain_verifies_without_its_root_and_not_to_another_root() {
    let (evidence, mut chain) = inputs(SAMPLE);
    let root = chain.pop().unwrap();
    let v = nvidia::verify(&evidence, &chain, nonce(SAMPLE), &anchors(), at(SAMPLE)).unwrap();
    assert_eq!(hex::encode(v.root_sha256()), nvidia::DEVICE_ROOT_SHA256);
    // No pinned root at all.
    let none = NvidiaTrustAnchors::empty();
    let mut full = chain.clone();
    full.push(root.clone());
    for c in [&chain, &full] {
        let err = nvidia::verify(&evidence, c, nonce(SAMPLE), &none, at(SAMPLE)).unwrap_err();
        assert_eq!(err.reason, Reason::UntrustedRoot, "{err}");
    }
    // The RIM root in the device root's place: self-signed, not pinned for devices.
    let rim_root = nvidia::chain_from_pem(&file("nvidia-roots", "verifier_RIM_root.pem")).unwrap();
    let mut wrong = chain.clone();
    wrong.extend(rim_root.clone());
    assert_eq!(
        reason_of(&evidence, &wrong, nonce(SAMPLE), at(SAMPLE)),
        Reason::UntrustedRoot
    );
    // Trusting the device root only through the RIM anchors does not help.
    let rim_only = rim_root
        .into_iter()
        .fold(NvidiaTrustAnchors::empty(), |a, r| {
            a.dangerous_trust_rim_root(r)
        });
    assert_eq!(
        nvidia::verify(&evidence, &full, nonce(SAMPLE), &rim_only, at(SAMPLE))
            .unwrap_err()
            .reason,
        Reason::UntrustedRoot
    );
    // Trusting it explicitly does.
    let explicit = NvidiaTrustAnchors::empty().dangerous_trust_device_root(root);
    assert!(nvidia::verify(&evidence, &full, nonce(SAMPLE), &explicit, at(SAMPLE)).is_ok());
}

#[test]
fn time_outside_the_chains_validity_is_rejected() {
    let (evidence, chain) = inputs(SAMPLE);
    // The Provisioner ICA is valid from 2022-03-01T00:00:00Z, the certificates until
    // 9999-12-31T23:59:59Z.
    let t = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    assert_eq!(
        reason_of(&evidence, &chain, nonce(SAMPLE), t("2022-02-28T23:59:59Z")),
        Reason::CertificateNotYetValid
    );
    assert!(nvidia::verify(
        &evidence,
        &chain,
        nonce(SAMPLE),
        &anchors(),
        t("2022-03-01T00:00:00Z")
    )
    .is_ok());
    assert!(nvidia::verify(
        &evidence,
        &chain,
        nonce(SAMPLE),
        &anchors(),
        t("9999-12-31T23:59:59Z")
    )
    .is_ok());
    assert_eq!(
        reason_of(
            &evidence,
            &chain,
            nonce(SAMPLE),
            Timestamp::from_unix(253_402_300_800) // 10000-01-01T00:00:00Z
        ),
        Reason::CertificateExpired
    );
}

/// The offset of the first byte of the measurement value of SPDM block `index` (1-based)
/// in the binary evidence: request 37, response header 8, then blocks of 4 + 3 + 48 bytes.
fn measurement_offset(index: usize) -> usize {
    37 + 8 + (index - 1) * 55 + 7
}

#[test]
fn mutations_of_the_real_evidence_fail_with_exact_reasons() {
    let bin = binary(SAMPLE);
    let (_, chain) = inputs(SAMPLE);
    let t = at(SAMPLE);
    let e = SpdmEvidence::parse(&bin).unwrap();
    assert_eq!(
        &bin[measurement_offset(2)..measurement_offset(2) + 48],
        &e.block(2).unwrap().value[..]
    );
    let sig_at = e.signed_bytes().len();
    let flip = |off: usize, bit: u8| {
        let mut b = bin.clone();
        b[off] ^= 1 << bit;
        b
    };
    let cases: Vec<(&str, Vec<u8>, Reason)> = vec![
        (
            "signature r",
            flip(sig_at + 5, 0),
            Reason::GpuSignatureInvalid,
        ),
        (
            "signature s",
            flip(sig_at + 95, 7),
            Reason::GpuSignatureInvalid,
        ),
        (
            "measurement 2",
            flip(measurement_offset(2) + 10, 3),
            Reason::GpuSignatureInvalid,
        ),
        ("requester nonce", flip(4, 0), Reason::GpuSignatureInvalid),
        ("slot id", flip(36, 0), Reason::InvalidField),
        ("request code", flip(1, 0), Reason::InvalidField),
        (
            "responder nonce",
            flip(37 + 8 + 3520, 1),
            Reason::GpuSignatureInvalid,
        ),
        (
            "protected PCIe status",
            flip(sig_at - 1, 2),
            Reason::GpuSignatureInvalid,
        ),
        (
            "truncated by one",
            bin[..bin.len() - 1].to_vec(),
            Reason::Truncated,
        ),
        ("truncated request", bin[..20].to_vec(), Reason::Truncated),
        ("empty", Vec::new(), Reason::Truncated),
        (
            "a non-zero trailing byte",
            [&bin[..], &[1]].concat(),
            Reason::TrailingData,
        ),
    ];
    for (what, evidence, reason) in cases {
        eprintln!("{what}");
        let got = match nvidia::verify(&evidence, &chain, nonce(SAMPLE), &anchors(), t) {
            Ok(_) => panic!("{what}: verified"),
            Err(e) => {
                eprintln!("  {e}");
                e.reason
            }
        };
        assert_eq!(got, reason, "{what}");
    }
    // The FWID in the opaque data is signed: flipping it breaks the FWID check first.
    let fwid_at = bin
        .windows(48)
        .position(|w| hex::encode(w).starts_with("f5c384aebb579217"))
        .unwrap();
    assert_eq!(
        reason_of(&flip(fwid_at, 0), &chain, nonce(SAMPLE), t),
        Reason::GpuFwidMismatch
    );
    // A zero byte of padding is accepted (as in the CoCo CI vector) and not signed.
    assert!(nvidia::verify(
        &[&bin[..], &[0]].concat(),
        &chain,
        nonce(SAMPLE),
        &anchors(),
        t
    )
    .is_ok());
}

#[test]
fn the_nonce_must_be_the_expected_one() {
    let (evidence, chain) = inputs(SAMPLE);
    let t = at(SAMPLE);
    let ExpectedNonce::Exactly(mut n) = nonce(SAMPLE) else {
        unreachable!()
    };
    n[31] ^= 1;
    assert_eq!(
        reason_of(&evidence, &chain, ExpectedNonce::Exactly(n), t),
        Reason::GpuNonceMismatch
    );
    assert_eq!(Reason::GpuNonceMismatch.class(), ReasonClass::Binding);
    // The escape hatch verifies and says the nonce was not checked.
    let v = nvidia::verify(
        &evidence,
        &chain,
        ExpectedNonce::DangerousAny,
        &anchors(),
        t,
    )
    .unwrap();
    assert!(!v.nonce_checked());
    assert!(!v.claims().nonce_checked);
}

#[test]
fn evidence_with_another_gpus_chain_is_a_fwid_mismatch() {
    let (sample, sample_chain) = inputs(SAMPLE);
    let (coco, coco_chain) = inputs(COCO);
    assert_eq!(
        reason_of(&sample, &coco_chain, nonce(SAMPLE), at(COCO)),
        Reason::GpuFwidMismatch
    );
    assert_eq!(
        reason_of(&coco, &sample_chain, nonce(COCO), at(COCO)),
        Reason::GpuFwidMismatch
    );
}

#[test]
fn mutated_certificates_are_rejected() {
    let (evidence, chain) = inputs(SAMPLE);
    let t = at(SAMPLE);
    let last_byte = |i: usize| {
        let mut c = chain.clone();
        let n = c[i].len();
        // The last byte is inside the signature's S value.
        c[i][n - 1] ^= 0x01;
        c
    };
    // Each certificate's signature, leaf to root.
    for i in 0..chain.len() {
        eprintln!("certificate #{i}");
        assert_eq!(
            reason_of(&evidence, &last_byte(i), nonce(SAMPLE), t),
            if i == chain.len() - 1 {
                // A changed root is no longer the pinned root.
                Reason::UntrustedRoot
            } else {
                Reason::CertificateSignatureInvalid
            },
            "certificate #{i}"
        );
    }
    // The leaf's public key (inside the signed TBS): its issuer's signature breaks.
    let mut c = chain.clone();
    let key_at = c[0]
        .windows(3)
        .position(|w| w == [0x03, 0x62, 0x00])
        .unwrap();
    c[0][key_at + 10] ^= 0x01;
    assert_eq!(
        reason_of(&evidence, &c, nonce(SAMPLE), t),
        Reason::CertificateSignatureInvalid
    );
    // Garbage instead of a certificate.
    let mut c = chain.clone();
    c[1] = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    assert_eq!(
        reason_of(&evidence, &c, nonce(SAMPLE), t),
        Reason::MalformedCertificate
    );
    // The chain out of order.
    let mut c = chain.clone();
    c.swap(1, 2);
    assert_eq!(
        reason_of(&evidence, &c, nonce(SAMPLE), t),
        Reason::IssuerMismatch
    );
    // No chain.
    assert_eq!(
        reason_of(&evidence, &[], nonce(SAMPLE), t),
        Reason::CertificateMissing
    );
}

#[test]
fn the_caching_verifier_agrees_and_keeps_exact_reasons() {
    let verifier = GpuVerifier::new(anchors());
    for vector in [SAMPLE, COCO] {
        let (evidence, chain) = inputs(vector);
        for _ in 0..2 {
            let v = verifier
                .verify(&evidence, &chain, nonce(vector), at(vector))
                .unwrap();
            assert_eq!(v.claims(), verify_vector(vector).claims());
        }
    }
    assert_eq!(verifier.cached_chains(), 2);
    let (evidence, chain) = inputs(SAMPLE);
    // Outside the cached window the chain is checked again, with its exact reason.
    let err = verifier
        .verify(
            &evidence,
            &chain,
            nonce(SAMPLE),
            Timestamp::parse_rfc3339("2021-01-01T00:00:00Z").unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.reason, Reason::CertificateNotYetValid);
    // A cached chain does not excuse a bad signature.
    let mut bin = binary(SAMPLE);
    let n = bin.len();
    bin[n - 1] ^= 1;
    assert_eq!(
        verifier
            .verify(&bin, &chain, nonce(SAMPLE), at(SAMPLE))
            .unwrap_err()
            .reason,
        Reason::GpuSignatureInvalid
    );
}

const RIMS: &str = "nvtrust-rim-test-samples";
const DRIVER_RIM: &str = "Driver_RIM_test_no_gpu.swidtag";
const VBIOS_RIM: &str = "1010_0200_882_96005E0001_test_no_gpu.swidtag";

fn rim(name: &str) -> nvidia::VerifiedRim {
    nvidia::verify_rim(&file(RIMS, name), &anchors(), at(RIMS))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rim_reason(bytes: &[u8], anchors: &NvidiaTrustAnchors, at: Timestamp) -> Reason {
    match nvidia::verify_rim(bytes, anchors, at) {
        Ok(_) => panic!("the RIM verified, expected a rejection"),
        Err(e) => {
            eprintln!("  rejected: {e}");
            e.reason
        }
    }
}

/// `text` with the first occurrence of `from` replaced by `to` (which must exist).
fn edit(text: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(text.to_vec()).unwrap();
    assert!(s.contains(from), "{from:?} not found");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn the_test_rims_verify_at_their_time_and_read_as_the_manifest_says() {
    // (file, colloquialVersion, active RIM indices, indices with several alternatives).
    type Expected<'a> = (&'a str, &'a str, Vec<u32>, Vec<(u32, usize)>);
    let expected: [Expected; 2] = [
        (
            DRIVER_RIM,
            "545.00",
            [7].into_iter().chain(21..=40).collect(),
            vec![(23, 2), (24, 2), (35, 2)],
        ),
        (
            VBIOS_RIM,
            "96.00.5E.00.01",
            (0..=6).chain(8..=12).collect(),
            vec![(12, 4)],
        ),
    ];
    for (name, version, active, alternatives) in expected {
        let v = rim(name);
        assert_eq!(
            hex::encode(v.root_sha256()),
            nvidia::RIM_ROOT_SHA256,
            "{name}"
        );
        assert_eq!(v.signer(), "HCC RIM L4 Signer", "{name}");
        assert!(!v.revocation_checked());
        let r = v.rim();
        assert_eq!(r.colloquial_version.as_deref(), Some(version), "{name}");
        assert_eq!(r.product.as_deref(), Some("GH100"), "{name}");
        assert_eq!(
            r.platform_manufacturer_id.as_deref(),
            Some("5703"),
            "{name}"
        );
        assert_eq!(r.certificates.len(), 4, "{name}");
        assert_eq!(r.measurements.len(), 64, "{name}");
        assert_eq!(
            r.active().map(|m| m.index).collect::<Vec<_>>(),
            active,
            "{name}"
        );
        assert_eq!(
            r.measurements
                .iter()
                .filter(|m| m.alternatives.len() > 1)
                .map(|m| (m.index, m.alternatives.len()))
                .collect::<Vec<_>>(),
            alternatives,
            "{name}"
        );
        assert!(r
            .measurements
            .iter()
            .all(|m| m.alternatives.iter().all(|a| a.len() == 48)));
        assert_eq!(r.measurements[7].spdm_index(), Some(8));
    }
}

#[test]
fn the_test_rims_match_neither_evidence_vector() {
    let driver = rim(DRIVER_RIM);
    let vbios = rim(VBIOS_RIM);
    // SPDM indices (RIM index + 1) that differ, computed independently from the files.
    let driver_mismatch: Vec<u32> = vec![8, 22, 23, 26, 27, 28, 30, 31, 32, 33, 35, 37, 38, 40, 41];
    let vbios_mismatch: Vec<u32> = vec![2, 3, 4, 10, 12];
    for vector in [SAMPLE, COCO] {
        let evidence = verify_vector(vector);
        let d = nvidia::compare_measurements(&evidence, &[&driver]).unwrap();
        assert_eq!(d.compared.len(), 21, "{vector}");
        assert_eq!(
            d.mismatches
                .iter()
                .map(|m| m.spdm_index)
                .collect::<Vec<_>>(),
            driver_mismatch,
            "{vector}"
        );
        let v = nvidia::compare_measurements(&evidence, &[&vbios]).unwrap();
        assert_eq!(v.compared.len(), 12, "{vector}");
        assert_eq!(
            v.mismatches
                .iter()
                .map(|m| m.spdm_index)
                .collect::<Vec<_>>(),
            vbios_mismatch,
            "{vector}"
        );
        let both = nvidia::compare_measurements(&evidence, &[&driver, &vbios]).unwrap();
        let mut all: Vec<u32> = driver_mismatch
            .iter()
            .chain(&vbios_mismatch)
            .copied()
            .collect();
        all.sort();
        assert_eq!(
            both.mismatches
                .iter()
                .map(|m| m.spdm_index)
                .collect::<Vec<_>>(),
            all,
            "{vector}"
        );
        assert_eq!(both.compared.len(), 33);
        // Each mismatch reports what the evidence holds and what the RIM allows.
        let m = &both.mismatches[0];
        assert_eq!(m.rim_index + 1, m.spdm_index);
        assert_eq!(
            m.found.as_deref(),
            Some(&evidence.claims().measurements[&(m.spdm_index as u8)][..])
        );
        assert!(!m.expected.contains(m.found.as_ref().unwrap()));
        assert!(!both.matches());
        assert_eq!(
            both.into_result().unwrap_err().reason,
            Reason::GpuMeasurementMismatch
        );
        // One RIM given twice: which would govern its indices?
        assert_eq!(
            nvidia::compare_measurements(&evidence, &[&driver, &driver])
                .unwrap_err()
                .reason,
            Reason::AmbiguousInput
        );
    }
}

#[test]
fn canonicalization_ignores_what_xml_does_not_mean() {
    // Attribute order, quote style and empty-element syntax are not part of the canonical
    // form: the signature still verifies after changing them.
    let bytes = file(RIMS, DRIVER_RIM);
    let reordered = edit(
        &bytes,
        r#"<ns0:Resource type="Measurement" index="0" active="False" alternatives="1""#,
        r#"<ns0:Resource  alternatives='1' active="False"   index="0" type="Measurement""#,
    );
    let expanded = edit(
        &reordered,
        r#"name="Measurement_1" size="48"/>"#,
        r#"name="Measurement_1" size="48" ></ns0:Resource  >"#,
    );
    let escaped = edit(
        &expanded,
        r#"name="Measurement_2""#,
        r#"name="Measurement&#95;2""#,
    );
    assert!(nvidia::verify_rim(&escaped, &anchors(), at(RIMS)).is_ok());
}

#[test]
fn mutated_rims_fail_with_exact_reasons() {
    let bytes = file(RIMS, DRIVER_RIM);
    let t = at(RIMS);
    let a = anchors();
    let cases: Vec<(&str, Vec<u8>, Reason)> = vec![
        (
            "a reference hash",
            edit(&bytes, "0e0ee161b59bf124", "1e0ee161b59bf124"),
            Reason::RimSignatureInvalid,
        ),
        (
            "an inactive entry made active",
            edit(
                &bytes,
                r#"index="0" active="False""#,
                r#"index="0" active="True""#,
            ),
            Reason::RimSignatureInvalid,
        ),
        (
            "whitespace between elements",
            edit(&bytes, "    </ns0:Payload>", "     </ns0:Payload>"),
            Reason::RimSignatureInvalid,
        ),
        (
            "the signature value",
            edit(&bytes, "<ds:SignatureValue>/Bgn", "<ds:SignatureValue>/Cgn"),
            Reason::RimSignatureInvalid,
        ),
        (
            "the digest value",
            edit(&bytes, "<ds:DigestValue>Dc2C", "<ds:DigestValue>Dc3C"),
            Reason::RimSignatureInvalid,
        ),
        (
            "exclusive canonicalization",
            edit(
                &bytes,
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>"#,
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            ),
            Reason::UnsupportedAlgorithm,
        ),
        (
            "a reference to part of the document",
            edit(
                &bytes,
                r#"<ds:Reference URI="">"#,
                r##"<ds:Reference URI="#x">"##,
            ),
            Reason::RimMalformed,
        ),
        (
            "a comment",
            edit(&bytes, "</ns0:Payload>", "</ns0:Payload><!-- x -->"),
            Reason::RimMalformed,
        ),
        (
            "a hash beyond the alternatives",
            edit(
                &bytes,
                r#"index="7" active="True" alternatives="1""#,
                r#"index="7" active="True" alternatives="1" ns2:Hash1="00""#,
            ),
            Reason::RimMalformed,
        ),
        (
            "a duplicate index",
            edit(&bytes, r#"index="1" "#, r#"index="0" "#),
            Reason::RimMalformed,
        ),
        (
            "truncated",
            bytes[..bytes.len() / 2].to_vec(),
            Reason::RimMalformed,
        ),
        (
            "no signing certificate",
            {
                let s = String::from_utf8(bytes.clone()).unwrap();
                let start = s.find("<ds:X509Certificate>").unwrap();
                let end = s.find("</ds:X509Certificate>").unwrap() + "</ds:X509Certificate>".len();
                format!("{}{}", &s[..start], &s[end..]).into_bytes()
            },
            // The chain then starts at the L3 CA, which may sign certificates only.
            Reason::CertificateConstraintViolated,
        ),
    ];
    for (what, mutated, reason) in cases {
        eprintln!("{what}");
        assert_eq!(rim_reason(&mutated, &a, t), reason, "{what}");
    }
    // Time outside the L4 signer's validity (2023-06-27T06:10:12Z .. 2025-06-26T06:10:12Z).
    let ts = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    assert_eq!(
        rim_reason(&bytes, &a, ts("2023-06-27T06:10:11Z")),
        Reason::CertificateNotYetValid
    );
    assert!(nvidia::verify_rim(&bytes, &a, ts("2025-06-26T06:10:12Z")).is_ok());
    assert_eq!(
        rim_reason(&bytes, &a, ts("2025-06-26T06:10:13Z")),
        Reason::CertificateExpired
    );
    // Roots: none, or only the device root.
    assert_eq!(
        rim_reason(&bytes, &NvidiaTrustAnchors::empty(), t),
        Reason::UntrustedRoot
    );
    let device_only = nvidia::chain_from_pem(&file("nvidia-roots", "verifier_device_root.pem"))
        .unwrap()
        .into_iter()
        .fold(NvidiaTrustAnchors::empty(), |acc, r| {
            acc.dangerous_trust_device_root(r)
        });
    assert_eq!(rim_reason(&bytes, &device_only, t), Reason::UntrustedRoot);
    // GPU evidence is not a RIM, and a RIM is not GPU evidence.
    assert_eq!(
        rim_reason(&file(SAMPLE, "hopperAttestationReport.txt"), &a, t),
        Reason::RimMalformed
    );
    assert_eq!(
        reason_of(&bytes, &inputs(SAMPLE).1, nonce(SAMPLE), at(SAMPLE)),
        Reason::UnknownInput
    );
}
