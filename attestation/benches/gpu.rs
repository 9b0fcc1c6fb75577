//! NVIDIA GPU evidence verifications per second on one core, for the real H100 evidence of
//! `testdata/vectors/nvidia/nvtrust-hopper-h100-sample` (binary form, 4117 bytes, 64
//! measurement blocks) with its 5-certificate device chain.
//!
//! `verify_cached`: `GpuVerifier` after one warm-up verification, so each iteration parses
//! the evidence, compares the FWID and nonce and checks the one SPDM signature (the device
//! chain already verified). `verify_uncached` re-verifies the chain every time (five more
//! ECDSA P-384 checks). `rim_verify`: one reference integrity manifest (the test driver
//! RIM: XML parse, two Canonical XML 1.1 passes, SHA-384, chain and signature).
//! Run: `cargo bench -p veritee-attestation --bench gpu`.

use attestation::nvidia::{self, ExpectedNonce, GpuVerifier, NvidiaTrustAnchors};
use attestation::Timestamp;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;

fn vector(dir: &str, name: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/vectors/nvidia")
        .join(dir)
        .join(name);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn gpu_verification(c: &mut Criterion) {
    let dir = "nvtrust-hopper-h100-sample";
    let text = vector(dir, "hopperAttestationReport.txt");
    let evidence = hex::decode(String::from_utf8(text).unwrap().trim()).unwrap();
    let chain = nvidia::chain_from_pem(&vector(dir, "hopperCertChain.txt")).unwrap();
    let mut n = [0u8; 32];
    hex::decode_to_slice(
        "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb",
        &mut n,
    )
    .unwrap();
    let nonce = ExpectedNonce::Exactly(n);
    let anchors = NvidiaTrustAnchors::nvidia();
    let at = Timestamp::parse_rfc3339("2025-01-01T00:00:00Z").unwrap();
    nvidia::verify(&evidence, &chain, nonce, &anchors, at).expect("the sample verifies");

    let mut group = c.benchmark_group("gpu");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_uncached", |b| {
        b.iter(|| nvidia::verify(black_box(&evidence), &chain, nonce, &anchors, at).unwrap())
    });
    let verifier = GpuVerifier::new(anchors.clone());
    verifier.verify(&evidence, &chain, nonce, at).unwrap();
    group.bench_function("verify_cached", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&evidence), &chain, nonce, at)
                .unwrap()
        })
    });
    let rim = vector("nvtrust-rim-test-samples", "Driver_RIM_test_no_gpu.swidtag");
    let rim_at = Timestamp::parse_rfc3339("2024-06-01T00:00:00Z").unwrap();
    group.bench_function("rim_verify", |b| {
        b.iter(|| nvidia::verify_rim(black_box(&rim), &anchors, rim_at).unwrap())
    });
    group.finish();
}

criterion_group!(benches, gpu_verification);
criterion_main!(benches);
