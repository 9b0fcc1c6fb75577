//! Usage receipts signed and verified per second on one core (the bar: at least 50,000
//! verifications per second), and a 1,000-receipt log's chain check. `ed25519_baseline`
//! is aws-lc-rs's bare Ed25519 verification of a message the size of a Sig_structure: the
//! floor under `verify` (which adds parsing, canonical re-encoding and hashing).
//! `verify_many_1000_then_chain` is the auditor's path: a 1,000-receipt log, every
//! signature checked in Ed25519 batches, then the chain. `parse_only` is verify without the
//! signature (a receipt naming other evidence is refused just before it).
//! Run: `cargo bench -p veritee-attestation --bench receipts`.

use attestation::binding::{ReceiptKey, COSE_ALG_EDDSA};
use attestation::receipt::{self, ReceiptClaims, SamplingParams};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

fn claims(seq: u64, prev: [u8; 32]) -> ReceiptClaims {
    ReceiptClaims {
        job_id: [7; 16],
        issued_at: 1_790_000_000,
        model_digest: [1; 32],
        request_sha256: [2; 32],
        response_sha256: [3; 32],
        prompt_tokens: 812,
        output_tokens: 256,
        queue_wait_ms: 12,
        wall_start_ms: 1_790_000_000_000 + seq * 1000,
        wall_end_ms: 1_790_000_000_900 + seq * 1000,
        device_ms: 870,
        device_share_ppm: 250_000,
        sampling: SamplingParams {
            temperature: 0.7,
            top_p: 0.95,
            top_k: 40,
            max_tokens: 256,
            repetition_penalty: 1.1,
            seed: 42,
        },
        activation_commitment: [4; 32],
        audited: true,
        evidence_digest: [5; 32],
        seq,
        prev_receipt_sha256: prev,
        runtime_instance: [6; 16],
    }
}

fn receipts(c: &mut Criterion) {
    let key = Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap();
    let bound = ReceiptKey {
        alg: COSE_ALG_EDDSA,
        public_key: key.public_key().as_ref().to_vec(),
    };
    let one = claims(1, [8; 32]);
    let bytes = receipt::sign(&one, &key);
    receipt::verify(&bytes, &bound, &[5; 32]).expect("the receipt verifies");

    let mut group = c.benchmark_group("receipts");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| b.iter(|| receipt::sign(black_box(&one), &key)));
    group.bench_function("verify", |b| {
        b.iter(|| receipt::verify(black_box(&bytes), &bound, &[5; 32]).unwrap())
    });
    // Everything but the signature: a receipt naming other evidence is refused after
    // parsing, before its signature is checked.
    group.bench_function("parse_only", |b| {
        b.iter(|| receipt::verify(black_box(&bytes), &bound, &[0; 32]).unwrap_err())
    });
    let message = vec![1u8; bytes.len()];
    let sig = key.sign(&message);
    let public = UnparsedPublicKey::new(&ED25519, bound.public_key.clone());
    group.bench_function("ed25519_baseline", |b| {
        b.iter(|| public.verify(black_box(&message), sig.as_ref()).unwrap())
    });

    let mut log = Vec::new();
    let mut prev = [0u8; 32];
    for seq in 0..1000 {
        let v =
            receipt::verify(&receipt::sign(&claims(seq, prev), &key), &bound, &[5; 32]).unwrap();
        prev = v.sha256();
        log.push(v);
    }
    group.throughput(Throughput::Elements(log.len() as u64));
    group.bench_function("verify_chain_1000", |b| {
        b.iter(|| receipt::verify_chain(black_box(&log)).unwrap())
    });
    // What an auditor runs per log: every receipt parsed and its signature checked (Ed25519
    // batches), then the chain.
    let bytes: Vec<Vec<u8>> = {
        let mut prev = [0u8; 32];
        (0..1000)
            .map(|seq| {
                let b = receipt::sign(&claims(seq, prev), &key);
                prev = receipt::verify(&b, &bound, &[5; 32]).unwrap().sha256();
                b
            })
            .collect()
    };
    group.bench_function("verify_many_1000_then_chain", |b| {
        b.iter(|| {
            let v = receipt::verify_many(black_box(&bytes), &bound, &[5; 32], &[6; 16]).unwrap();
            receipt::verify_chain(&v).unwrap()
        })
    });
    group.finish();

    const LOG: u64 = 10_000;
    let bytes: Vec<Vec<u8>> = {
        let mut prev = [0u8; 32];
        (0..LOG)
            .map(|seq| {
                let b = receipt::sign(&claims(seq, prev), &key);
                prev = receipt::verify(&b, &bound, &[5; 32]).unwrap().sha256();
                b
            })
            .collect()
    };
    let mut group = c.benchmark_group("receipt_log");
    group.throughput(Throughput::Elements(LOG));
    group.sample_size(10);
    for (name, every_signature) in [("chain_10000", false), ("every_signature_10000", true)] {
        let log = receipt::verify_log(&bytes, &bound, &[5; 32], &[6; 16], every_signature).unwrap();
        assert_eq!(log.receipts.len() as u64, LOG);
        group.bench_function(name, |b| {
            b.iter(|| {
                receipt::verify_log(
                    black_box(&bytes),
                    &bound,
                    &[5; 32],
                    &[6; 16],
                    every_signature,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, receipts);
criterion_main!(benches);
