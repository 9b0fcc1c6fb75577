//! The client's fuzz target (`sse_stream`) over its seed corpus, as an ordinary test
//! (`fuzz/seed_runner.rs`).

#[path = "../../fuzz/seed_runner.rs"]
mod seed_runner;

use client::receipts::SseReceiptFilter;
use seed_runner::{check_owned_targets, fuzz_dir, run_target};

#[test]
fn client_fuzz_targets_have_seed_tests() {
    check_owned_targets("client", &["sse_stream"]);
}

#[test]
fn sse_stream_seeds() {
    run_target("sse_stream", client::fuzzing::sse_stream);
}

/// The genuine stream seed carries a receipt that checks against the FAKE runtime and the
/// fixture request: the target reaches the receipt check's success path, and a stream
/// without that event is refused as unreceipted.
#[test]
fn the_genuine_stream_seed_checks() {
    let read = |name: &str| {
        std::fs::read(fuzz_dir().join("corpus/sse_stream").join(name)).expect("sse_stream seed")
    };
    let runtime = attestation::fuzzing::sim_runtime();
    let request = attestation::fuzzing::SIM_CHAT_REQUEST;
    let mut filter = SseReceiptFilter::default();
    let passed = filter.push(&read("sim-stream.txt"));
    let verified = filter
        .check(runtime, request)
        .expect("the genuine stream checks");
    assert_eq!(verified.claims().seq, 0);
    assert!(passed.ends_with(b"data: [DONE]\n\n") && filter.leftover().is_empty());
    let mut filter = SseReceiptFilter::default();
    filter.push(&read("sim-stream-unreceipted.txt"));
    assert_eq!(
        filter.check(runtime, request).unwrap_err().reason,
        attestation::Reason::ReceiptMissing
    );
}
