//! Checking the usage receipt that comes with each answer, against the evidence the
//! connection already verified: signed by the receipt key those claims bind, naming that
//! evidence, and describing this exchange (SHA-256 of the request body sent and of the
//! response bytes received).
//!
//! A non-streamed answer carries its receipt in the `x-veritee-receipt` header (base64)
//! over the whole body. A stream ends with an `event: veritee.receipt` whose data is
//! `{"seq", "receipt" (base64), "response_sha256"}`, over every byte before that event;
//! [`SseReceiptFilter`] takes it out of the stream (OpenAI SDKs do not know the event)
//! while hashing what it lets through. The receipt covers only the bytes before it, so
//! after the receipt event nothing but `data: [DONE]` may follow: any other event is an
//! error (`receipt_mismatch`), and nothing from it on is passed on.

use attestation::bundle::AttestedRuntime;
use attestation::receipt::VerifiedReceipt;
use attestation::{Reason, Rejection};
use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

pub use attestation::receipt::{RECEIPT_EVENT, RECEIPT_HEADER};

fn sha256(bytes: &[u8]) -> [u8; 32] {
    attestation::x509::sha256(bytes)
}

/// Decode a receipt as carried in the header or the event (base64).
pub fn decode(text: &str) -> Result<Vec<u8>, Rejection> {
    BASE64.decode(text.trim()).map_err(|e| {
        Rejection::new(
            Reason::ReceiptMalformed,
            format!("the receipt is not base64: {e}"),
        )
    })
}

/// Verify `receipt` against the attested runtime and this exchange.
pub fn check_exchange(
    attested: &AttestedRuntime,
    receipt: &[u8],
    request_body: &[u8],
    response_sha256: &[u8; 32],
) -> Result<VerifiedReceipt, Rejection> {
    let verified = attested.verify_receipt(receipt)?;
    let c = verified.claims();
    if c.request_sha256 != sha256(request_body) {
        return Err(Rejection::new(
            Reason::ReceiptMismatch,
            format!(
                "receipt seq {} is for request {}, not the request sent ({})",
                c.seq,
                hex::encode(c.request_sha256),
                hex::encode(sha256(request_body))
            ),
        ));
    }
    if &c.response_sha256 != response_sha256 {
        return Err(Rejection::new(
            Reason::ReceiptMismatch,
            format!(
                "receipt seq {} is for response {}, not the response received ({})",
                c.seq,
                hex::encode(c.response_sha256),
                hex::encode(response_sha256)
            ),
        ));
    }
    Ok(verified)
}

/// Verify a non-streamed answer's receipt header against its body.
pub fn check_header(
    attested: &AttestedRuntime,
    header: Option<&str>,
    request_body: &[u8],
    response_body: &[u8],
) -> Result<VerifiedReceipt, Rejection> {
    let header = header.ok_or_else(|| {
        Rejection::new(
            Reason::ReceiptMissing,
            format!("the answer has no {RECEIPT_HEADER} header"),
        )
    })?;
    check_exchange(
        attested,
        &decode(header)?,
        request_body,
        &sha256(response_body),
    )
}

/// The one event allowed after the receipt event.
const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Passes a server-sent-event stream through, event by event, minus the receipt event;
/// remembers the receipt and the SHA-256 of every byte before it. After the receipt
/// event only `data: [DONE]` passes; anything else, and everything after an error, is
/// held back and the error kept for [`SseReceiptFilter::check`].
pub struct SseReceiptFilter {
    pending: Vec<u8>,
    hash: Option<digest::Context>,
    receipt: Option<(Vec<u8>, [u8; 32])>,
    /// `[DONE]` has passed after the receipt.
    done: bool,
    error: Option<Rejection>,
}

impl Default for SseReceiptFilter {
    fn default() -> Self {
        SseReceiptFilter {
            pending: Vec::new(),
            hash: Some(digest::Context::new(&digest::SHA256)),
            receipt: None,
            done: false,
            error: None,
        }
    }
}

impl SseReceiptFilter {
    /// Feed received bytes; returns the complete events to pass on.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(event) = crate::sse::take_event(&mut self.pending) {
            if self.error.is_some() {
                continue;
            }
            let name = format!("event: {RECEIPT_EVENT}\n");
            if event.starts_with(name.as_bytes()) {
                self.take_receipt(&event[name.len()..]);
                continue;
            }
            match self.hash.as_mut() {
                Some(h) => h.update(&event),
                None if event == DONE_EVENT && !self.done => self.done = true,
                None => {
                    self.error = Some(Rejection::new(
                        Reason::ReceiptMismatch,
                        format!(
                            // Not quoted: what the receipt does not cover is shown to no one.
                            "the stream carries {} ({} bytes) after its receipt event; the receipt covers only the bytes before it, so they are refused",
                            if self.done {
                                "an event after [DONE]"
                            } else {
                                "an event other than [DONE]"
                            },
                            event.len()
                        ),
                    ));
                    continue;
                }
            }
            out.extend_from_slice(&event);
        }
        out
    }

    /// The error found so far (a malformed receipt event, a second one, or an event after
    /// the receipt), if any: nothing from it on has been passed on.
    pub fn error(&self) -> Option<&Rejection> {
        self.error.as_ref()
    }

    fn take_receipt(&mut self, rest: &[u8]) {
        let Some(hash) = self.hash.take() else {
            self.error = Some(Rejection::new(
                Reason::ReceiptMalformed,
                "the stream carries more than one receipt event",
            ));
            return;
        };
        let digest: [u8; 32] = hash
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        let parsed = std::str::from_utf8(rest)
            .ok()
            .and_then(|t| t.trim_end().strip_prefix("data:"))
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
            .and_then(|v| v["receipt"].as_str().map(decode));
        match parsed {
            Some(Ok(receipt)) => self.receipt = Some((receipt, digest)),
            Some(Err(e)) => self.error = Some(e),
            None => {
                self.error = Some(Rejection::new(
                    Reason::ReceiptMalformed,
                    "the receipt event's data is not {\"receipt\": \"<base64>\", ...}",
                ))
            }
        }
    }

    /// The receipt's bytes, once its event has been seen.
    pub fn receipt(&self) -> Option<&[u8]> {
        self.receipt.as_ref().map(|(r, _)| r.as_slice())
    }

    /// Whether the receipt event (or a malformed one) has been seen.
    pub fn has_receipt(&self) -> bool {
        self.receipt.is_some() || self.error.is_some()
    }

    /// Bytes not yet ending in a blank line (should be none once the stream has ended).
    pub fn leftover(&self) -> &[u8] {
        &self.pending
    }

    /// Verify the stream's receipt against the attested runtime and the request sent.
    pub fn check(
        &self,
        attested: &AttestedRuntime,
        request_body: &[u8],
    ) -> Result<VerifiedReceipt, Rejection> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some((receipt, response_sha256)) = &self.receipt else {
            return Err(Rejection::new(
                Reason::ReceiptMissing,
                format!("the stream ended without an `event: {RECEIPT_EVENT}`"),
            ));
        };
        check_exchange(attested, receipt, request_body, response_sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_drops_only_the_receipt_event_and_hashes_what_came_before() {
        let mut f = SseReceiptFilter::default();
        let a = b"data: {\"x\":1}\n\n";
        let receipt = BASE64.encode([0xd2, 0x84]);
        let event =
            format!("event: {RECEIPT_EVENT}\ndata: {{\"seq\":0,\"receipt\":\"{receipt}\"}}\n\n");
        let mut out = f.push(&a[..5]);
        out.extend(f.push(&a[5..]));
        out.extend(f.push(event.as_bytes()));
        out.extend(f.push(b"data: [DONE]\n\n"));
        assert_eq!(out, [&a[..], b"data: [DONE]\n\n"].concat());
        let (r, h) = f.receipt.clone().unwrap();
        assert_eq!(r, vec![0xd2, 0x84]);
        assert_eq!(h, sha256(a));
        assert!(f.leftover().is_empty());
    }

    /// Issue 13: bytes between the receipt event and `[DONE]` are not covered by the
    /// receipt; a client or proxy passed them on as if they were.
    #[test]
    fn nothing_but_done_may_follow_the_receipt_event() {
        let receipt = BASE64.encode([0xd2, 0x84]);
        let event =
            format!("event: {RECEIPT_EVENT}\ndata: {{\"seq\":0,\"receipt\":\"{receipt}\"}}\n\n");
        let a = b"data: {\"x\":1}\n\n";
        for after in [
            &b"data: {\"choices\":[{\"delta\":{\"content\":\"injected\"}}]}\n\n"[..],
            b": a comment\n\n",
            b"event: other\ndata: 1\n\n",
        ] {
            let mut f = SseReceiptFilter::default();
            let mut out = f.push(a);
            out.extend(f.push(event.as_bytes()));
            // Byte by byte: the verdict does not depend on where frames end.
            for b in after.iter().chain(b"data: [DONE]\n\n") {
                out.extend(f.push(&[*b]));
            }
            assert_eq!(out, a, "only the bytes before the receipt pass");
            let err = f.error().expect("an error");
            assert_eq!(err.reason, Reason::ReceiptMismatch);
            assert!(err.detail.contains("after its receipt"), "{}", err.detail);
        }
        // [DONE] passes once; anything after it is refused too.
        let mut f = SseReceiptFilter::default();
        let mut out = f.push(a);
        out.extend(f.push(event.as_bytes()));
        out.extend(f.push(b"data: [DONE]\n\n"));
        assert_eq!(out, [&a[..], b"data: [DONE]\n\n"].concat());
        assert!(f.error().is_none());
        assert!(f.push(b"data: [DONE]\n\n").is_empty());
        assert_eq!(f.error().unwrap().reason, Reason::ReceiptMismatch);
    }

    #[test]
    fn a_second_receipt_event_or_bad_data_is_an_error() {
        let mut f = SseReceiptFilter::default();
        let e = format!("event: {RECEIPT_EVENT}\ndata: {{\"receipt\":\"AA==\"}}\n\n");
        f.push(e.as_bytes());
        f.push(e.as_bytes());
        assert_eq!(f.error.as_ref().unwrap().reason, Reason::ReceiptMalformed);
        let mut g = SseReceiptFilter::default();
        g.push(format!("event: {RECEIPT_EVENT}\ndata: nonsense\n\n").as_bytes());
        assert_eq!(g.error.as_ref().unwrap().reason, Reason::ReceiptMalformed);
        let h = SseReceiptFilter::default();
        assert!(h.receipt.is_none() && h.error.is_none());
    }
}
