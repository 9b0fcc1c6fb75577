//! Fuzz entry points of the client (see `attestation::fuzzing` for the rules): fed by the
//! `fuzz/` targets and, with the seed corpus, by `tests/fuzz_seeds.rs`.

use crate::receipts::{self, SseReceiptFilter};
use crate::sse::SseParser;
use attestation::fuzzing::{sim_runtime, SIM_CHAT_REQUEST};
use std::hint::black_box;

/// Piece sizes the stream is cut into, in turn: a network hands the client arbitrary
/// frames, and the result must not depend on where they end.
const PIECES: [usize; 7] = [1, 2, 3, 5, 8, 13, 64];

/// What the client makes of one streamed answer.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// The bytes passed on (everything but the receipt event).
    passed: Vec<u8>,
    /// The `data` payloads `veritee chat` reads from them.
    events: Vec<String>,
    /// The `data` payloads of the unfiltered stream, parsed piece by piece too.
    raw_events: Vec<String>,
    receipt: Option<Vec<u8>>,
    has_receipt: bool,
    leftover: Vec<u8>,
    /// The receipt checked against the FAKE runtime and its request.
    check: Result<attestation::receipt::VerifiedReceipt, attestation::Rejection>,
}

fn consume<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut filter = SseReceiptFilter::default();
    let mut parser = SseParser::default();
    let mut raw_parser = SseParser::default();
    let mut passed = Vec::new();
    let mut events = Vec::new();
    let mut raw_events = Vec::new();
    for piece in pieces {
        raw_events.extend(raw_parser.push(piece));
        let out = filter.push(piece);
        events.extend(parser.push(&out));
        passed.extend_from_slice(&out);
    }
    Outcome {
        passed,
        events,
        raw_events,
        receipt: filter.receipt().map(<[u8]>::to_vec),
        has_receipt: filter.has_receipt(),
        leftover: filter.leftover().to_vec(),
        check: filter.check(sim_runtime(), SIM_CHAT_REQUEST),
    }
}

/// A streamed chat answer as the client receives it: the receipt filter (`veritee proxy`,
/// `veritee chat`) and the SSE parser (`veritee chat`), fed the stream whole and cut into
/// pieces, must agree; the receipt is checked against the FAKE runtime of
/// `attestation::fuzzing` and the request its first receipt answers. As a header value,
/// the bytes go through the receipt decoder.
pub fn sse_stream(data: &[u8]) {
    let whole = consume(std::iter::once(data));
    let mut rest = data;
    let pieces = PIECES.iter().cycle().map_while(|&n| {
        if rest.is_empty() {
            return None;
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Some(piece)
    });
    let cut = consume(pieces);
    assert_eq!(whole, cut, "the stream's outcome depends on how it was cut");
    assert!(
        data.ends_with(&whole.leftover),
        "the leftover is not the stream's tail"
    );
    assert!(whole.passed.len() + whole.leftover.len() <= data.len());
    if let Ok(verified) = &whole.check {
        // Only the genuine answer to the genuine request carries a receipt that checks.
        assert_eq!(
            verified.claims().request_sha256,
            attestation::x509::sha256(SIM_CHAT_REQUEST)
        );
        assert!(whole.has_receipt);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = receipts::decode(text) {
            black_box(sim_runtime().verify_receipt(&bytes).is_ok());
        }
    }
}
