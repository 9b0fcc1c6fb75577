//! Verifications per second on one core, for real evidence from `examples/evidence/`:
//! a Genoa SEV-SNP report with its VCEK, and a TDX quote with its collateral parsed.
//!
//! `*_cached` is the bar's case (BENCHMARKS.md, the bars: chain and collateral already
//! verified): `SnpVerifier` / `TdxVerifier` after one warm-up verification, so each
//! iteration parses the evidence and checks its own signature. `*_uncached` re-verifies
//! chain and collateral every time. Run: `cargo bench -p veritee-attestation --bench verify`.

use attestation::snp::{self, SnpTrustAnchors, SnpVerifier};
use attestation::tdx::{self, TdxCollateral, TdxTrustAnchors, TdxVerifier};
use attestation::Timestamp;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;

fn example(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/evidence")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn snp_verification(c: &mut Criterion) {
    let report = example("snp-genoa/report.bin");
    let certs = vec![example("snp-genoa/vcek.der")];
    let anchors = SnpTrustAnchors::amd();
    let at = Timestamp::parse_rfc3339("2025-10-01T08:00:00Z").unwrap();
    snp::verify(&report, &certs, &[], &anchors, at).expect("the example verifies");

    let mut group = c.benchmark_group("snp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_uncached", |b| {
        b.iter(|| snp::verify(black_box(&report), &certs, &[], &anchors, at).unwrap())
    });
    let verifier = SnpVerifier::new(anchors.clone());
    verifier.verify(&report, &certs, &[], at).unwrap();
    group.bench_function("verify_cached", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&report), &certs, &[], at)
                .unwrap()
        })
    });
    group.finish();
}

fn tdx_verification(c: &mut Criterion) {
    let quote = example("tdx-b0c06f/tdx_quote");
    let collateral =
        TdxCollateral::from_dcap_qvl_json(&example("tdx-b0c06f/tdx_quote_collateral.json"))
            .unwrap();
    let anchors = TdxTrustAnchors::intel();
    let at = Timestamp::parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
    tdx::verify(&quote, Some(&collateral), &anchors, at).expect("the example verifies");

    let mut group = c.benchmark_group("tdx");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_uncached", |b| {
        b.iter(|| tdx::verify(black_box(&quote), Some(&collateral), &anchors, at).unwrap())
    });
    // The peer: dcap-qvl's own verification of the same quote and collateral.
    let root = anchors.root_der().to_vec();
    let now = at.unix() as u64;
    group.bench_function("dcap_qvl_alone", |b| {
        b.iter(|| {
            dcap_qvl::verify::QuoteVerifier::new(root.clone())
                .verify(black_box(&quote), collateral.dcap_qvl(), now)
                .unwrap()
        })
    });
    let verifier = TdxVerifier::new(anchors.clone());
    verifier.verify(&quote, Some(&collateral), at).unwrap();
    group.bench_function("verify_cached", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&quote), Some(&collateral), at)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, snp_verification, tdx_verification);
criterion_main!(benches);
