//! Fuzz entry points of the runtime (see `attestation::fuzzing` for the rules): fed by the
//! `fuzz/` targets and, with the seed corpus, by `tests/fuzz_seeds.rs`. No engine or model
//! is involved: what is fuzzed is what the runtime does with a request body before the
//! engine sees it.

use crate::config::Limits;
use crate::openai::{parse_chat_request, ApiError, ChatRequest};
use std::hint::black_box;

/// Tighter limits than the defaults, so that the limit checks are reachable with small
/// inputs too.
fn tight() -> Limits {
    Limits {
        max_tokens: 16,
        default_max_tokens: 4,
        ..Limits::default()
    }
}

/// What a parsed request promises the engine and the receipt, whatever the body said.
fn check_accepted(chat: &ChatRequest, limits: &Limits) {
    assert!(!chat.messages.is_empty(), "no messages");
    for m in &chat.messages {
        assert!(
            matches!(m.role.as_str(), "system" | "user" | "assistant"),
            "role {:?} reached the chat template",
            m.role
        );
    }
    let p = &chat.params;
    assert!(p.validate().is_ok(), "invalid sampling parameters: {p:?}");
    assert!((0.0..=2.0).contains(&p.temperature), "temperature {p:?}");
    match chat.max_tokens {
        Some(n) => {
            assert!((1..=limits.max_tokens).contains(&n), "max_tokens {n}");
            assert_eq!(p.max_tokens, n);
        }
        None => assert_eq!(p.max_tokens, limits.default_max_tokens),
    }
    // The receipt records these as u32 (saturating) and f32: they must be finite numbers.
    assert!(p.top_p.is_finite() && p.repetition_penalty.is_finite());
}

fn check_refused(e: &ApiError) {
    // A body is refused as the client's mistake; only a failing RNG is the server's.
    assert!(
        e.status == 400 || (e.status == 500 && e.kind == "server_error"),
        "status {} for a bad body: {e:?}",
        e.status
    );
    black_box(e.body().to_string());
}

/// A chat-completions request body (`POST /v1/chat/completions`), parsed and validated
/// against the default limits and tight ones: accepted requests keep every promise the
/// engine and receipt rely on, refused ones are a 400 with OpenAI's error shape, and the
/// outcome does not depend on the random seed drawn for a request without one.
pub fn chat_request(data: &[u8]) {
    for limits in [Limits::default(), tight()] {
        let first = parse_chat_request(data, &limits);
        match &first {
            Ok(chat) => check_accepted(chat, &limits),
            Err(e) => check_refused(e),
        }
        let again = parse_chat_request(data, &limits);
        match (&first, &again) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.messages, b.messages);
                assert_eq!(a.seed, b.seed);
                if a.seed.is_some() {
                    assert_eq!(a.params, b.params);
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("parsing the same body twice gave {first:?} and {again:?}"),
        }
    }
}
