//! Usage receipts: one signed statement per job, checked offline by an auditor.
//!
//! A receipt is a COSE_Sign1 (RFC 9052) whose payload is a CWT claims set (RFC 8392)
//! describing one inference job. The runtime signs it with the receipt key named in its
//! runtime claims ([`crate::binding::RuntimeClaims::receipt_key`]), which the hardware
//! attests; each receipt names the digest of the evidence bundle that binds that key, and
//! chains to the previous receipt of the same runtime instance by hash and sequence number,
//! so a log with a receipt removed, repeated, reordered, forked or spliced in from another
//! instance is refused ([`verify_chain`]).
//!
//! **Logs.** An auditor checks a whole log with [`verify_log`]: every receipt is parsed and
//! its claims checked, the chain is checked, and every receipt is authenticated, either
//! through the hash chain into the signatures the chain needs (each receipt's hash is in
//! the next one's signed payload) or by its own signature; see [`verify_log`] for why a
//! forged receipt cannot pass either way. Parsing and encoding go directly over the bytes
//! (the formats are canonical, so there is one encoding to expect); anything the direct
//! parse does not accept goes through the general one (coset, ciborium) for its reason.
//!
//! **Envelope.** Written tagged (CBOR tag 18), accepted tagged or untagged. Protected
//! header: exactly `{1: alg, 3: "application/vnd.veritee.receipt+cbor"}` with alg EdDSA
//! (-8) or ES256 (-7); the unprotected header is empty; no external AAD. The signature is
//! checked over the Sig_structure built from the protected-header and payload bytes as
//! received. The envelope must be exactly what [`sign`] writes (definite lengths, shortest
//! forms), so one receipt has one byte string and one hash: [`VerifiedReceipt::sha256`] is
//! SHA-256 of the tagged encoding (for an untagged receipt, of `0xd2 ||` its bytes).
//!
//! **Claims.** A CBOR map in RFC 8949 §4.2.1 core deterministic encoding: definite
//! lengths, shortest integers and floats, keys sorted by their encoded bytes (so the two
//! registered keys 6 and 7 come first, then the private keys from -65537 downwards). Every
//! claim is mandatory; the parser rejects unknown or missing keys, wrong types or sizes,
//! and anything that does not re-encode to the bytes received.
//!
//! Claim keys were checked against the IANA "CBOR Web Token (CWT) Claims" registry:
//! registered keys are used only where the meaning is the registered one (`iat` 6, `cti`
//! 7). None of the others matches a registered claim (EAT's `measurements`, `hwmodel`,
//! `bootseed`, `nonce` describe other things), so they are private claims, in the range
//! the registry reserves for private use (less than -65536).
//!
//! | key | claim | CBOR |
//! |---|---|---|
//! | 6 (`iat`) | issued at, seconds since the Unix epoch | uint |
//! | 7 (`cti`) | job id | bstr .size 16 |
//! | -65537 | receipt format version ([`RECEIPT_VERSION`]) | uint |
//! | -65538 | model digest (SHA-256 of the weights, as in the runtime claims) | bstr .size 32 |
//! | -65539 | request hash: SHA-256 of the request body bytes | bstr .size 32 |
//! | -65540 | response hash: SHA-256 of the response body bytes | bstr .size 32 |
//! | -65541 | prompt (input) tokens | uint |
//! | -65542 | output tokens | uint |
//! | -65543 | queue wait, ms | uint |
//! | -65544 | wall-clock start, Unix ms | uint |
//! | -65545 | wall-clock end, Unix ms (not before the start) | uint |
//! | -65546 | metered device time, ms | uint |
//! | -65547 | share of the device during the job, parts per million (at most 1,000,000) | uint |
//! | -65548 | sampling parameters | map, below |
//! | -65549 | activation-fingerprint commitment | bstr .size 32 |
//! | -65550 | audited (false: the request opted out of auditing) | bool |
//! | -65551 | evidence digest: SHA-256 of the evidence bundle that binds the receipt key | bstr .size 32 |
//! | -65552 | sequence number within the runtime instance, from 0 | uint |
//! | -65553 | previous receipt hash (all zero exactly when the sequence number is 0) | bstr .size 32 |
//! | -65554 | runtime instance id (random per runtime start) | bstr .size 16 |
//!
//! Sampling parameters (claim -65548), a map with its own keys:
//! `1` temperature (float, an f32 value), `2` top_p (f32), `3` top_k (uint, u32),
//! `4` max_tokens (uint, u32), `5` repetition_penalty (f32), `6` seed (uint, u64).

use crate::binding::{hex_bytes, ReceiptKey, COSE_ALG_EDDSA, COSE_ALG_ES256};
use crate::crypto::signature;
use crate::reason::{reject, Reason, Rejection};
use ciborium::value::Value;
use coset::iana::EnumI64;
use coset::{
    iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, ProtectedHeader,
    RegisteredLabelWithPrivate, TaggedCborSerializable,
};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// The receipt format version this crate writes and accepts (claim -65537).
pub const RECEIPT_VERSION: u64 = 1;
/// The HTTP response header that carries a non-streamed answer's receipt (base64).
pub const RECEIPT_HEADER: &str = "x-veritee-receipt";
/// The server-sent-event name of a stream's final receipt (before `[DONE]`).
pub const RECEIPT_EVENT: &str = "veritee.receipt";
/// The COSE content type (header 3) of a receipt's payload.
pub const CONTENT_TYPE: &str = "application/vnd.veritee.receipt+cbor";
/// A whole device, in the units of [`ReceiptClaims::device_share_ppm`].
pub const DEVICE_SHARE_FULL: u32 = 1_000_000;
/// Upper bound on an encoded receipt: its claims are fixed-size but for integers.
pub const MAX_RECEIPT_LEN: usize = 2048;
/// The CBOR tag of a COSE_Sign1 (18), as its one-byte encoding.
const COSE_SIGN1_TAG_BYTE: u8 = 0xd2;

/// Claim keys, in canonical (encoded-byte) order. See the module table.
pub mod keys {
    /// `iat` (RFC 8392): issued at, seconds.
    pub const IAT: i64 = 6;
    /// `cti` (RFC 8392): the job id.
    pub const CTI: i64 = 7;
    pub const VERSION: i64 = -65537;
    pub const MODEL_DIGEST: i64 = -65538;
    pub const REQUEST_SHA256: i64 = -65539;
    pub const RESPONSE_SHA256: i64 = -65540;
    pub const PROMPT_TOKENS: i64 = -65541;
    pub const OUTPUT_TOKENS: i64 = -65542;
    pub const QUEUE_WAIT_MS: i64 = -65543;
    pub const WALL_START_MS: i64 = -65544;
    pub const WALL_END_MS: i64 = -65545;
    pub const DEVICE_MS: i64 = -65546;
    pub const DEVICE_SHARE_PPM: i64 = -65547;
    pub const SAMPLING: i64 = -65548;
    pub const ACTIVATION_COMMITMENT: i64 = -65549;
    pub const AUDITED: i64 = -65550;
    pub const EVIDENCE_DIGEST: i64 = -65551;
    pub const SEQ: i64 = -65552;
    pub const PREV_RECEIPT_SHA256: i64 = -65553;
    pub const RUNTIME_INSTANCE: i64 = -65554;

    /// Every claim key in the order a canonical encoding holds them.
    pub const ORDER: [i64; 20] = [
        IAT,
        CTI,
        VERSION,
        MODEL_DIGEST,
        REQUEST_SHA256,
        RESPONSE_SHA256,
        PROMPT_TOKENS,
        OUTPUT_TOKENS,
        QUEUE_WAIT_MS,
        WALL_START_MS,
        WALL_END_MS,
        DEVICE_MS,
        DEVICE_SHARE_PPM,
        SAMPLING,
        ACTIVATION_COMMITMENT,
        AUDITED,
        EVIDENCE_DIGEST,
        SEQ,
        PREV_RECEIPT_SHA256,
        RUNTIME_INSTANCE,
    ];
}

/// Sampling parameters of a job (claim -65548).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SamplingParams {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub max_tokens: u32,
    pub repetition_penalty: f32,
    pub seed: u64,
}

/// The CWT claims set of one job. See the module table for keys and encodings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiptClaims {
    #[serde(with = "hex_bytes")]
    pub job_id: [u8; 16],
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    #[serde(with = "hex_bytes")]
    pub model_digest: [u8; 32],
    /// SHA-256 of the request body bytes.
    #[serde(with = "hex_bytes")]
    pub request_sha256: [u8; 32],
    /// SHA-256 of the response body bytes.
    #[serde(with = "hex_bytes")]
    pub response_sha256: [u8; 32],
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub queue_wait_ms: u64,
    /// Unix milliseconds.
    pub wall_start_ms: u64,
    /// Unix milliseconds, not before `wall_start_ms`.
    pub wall_end_ms: u64,
    pub device_ms: u64,
    /// Parts per million of the device the job had, at most [`DEVICE_SHARE_FULL`].
    pub device_share_ppm: u32,
    pub sampling: SamplingParams,
    #[serde(with = "hex_bytes")]
    pub activation_commitment: [u8; 32],
    /// True only when the job's transcript was sealed to the auditor key (false: the
    /// request opted out, or the runtime has no auditor key).
    pub audited: bool,
    /// SHA-256 of the evidence bundle bytes that bind the receipt-signing key.
    #[serde(with = "hex_bytes")]
    pub evidence_digest: [u8; 32],
    pub seq: u64,
    /// SHA-256 of the previous receipt's tagged COSE_Sign1 bytes; all zero for seq 0.
    #[serde(with = "hex_bytes")]
    pub prev_receipt_sha256: [u8; 32],
    #[serde(with = "hex_bytes")]
    pub runtime_instance: [u8; 16],
}

fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection::new(Reason::ReceiptMalformed, detail)
}

#[cfg(test)]
fn int(k: i64) -> Value {
    Value::Integer(k.into())
}

pub(crate) fn uint(v: u64) -> Value {
    Value::Integer(v.into())
}

pub(crate) fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

// ---- direct canonical CBOR (RFC 8949 section 4.2.1), for the claims and the envelope ----
// Verification encodes and decodes every receipt of a log; going through
// `ciborium::Value` (a tree of allocations) cost most of the time of a log's audit.

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const CBOR_FALSE: u8 = 0xf4;
const CBOR_TRUE: u8 = 0xf5;
const CBOR_F16: u8 = 0xf9;
const CBOR_F32: u8 = 0xfa;

/// The shortest head of major type `major` with argument `arg` (RFC 8949 section 3).
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

/// An integer map key (or value): major 0 for `k >= 0`, major 1 with argument `-1 - k`.
fn int_head(out: &mut Vec<u8>, k: i64) {
    if k >= 0 {
        head(out, MAJOR_UINT, k as u64);
    } else {
        head(out, MAJOR_NINT, !k as u64);
    }
}

/// `x` as a half-precision float, if that is exactly its value. Finite `x` only.
fn f16_exact(x: f32) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0 {
        // Zero; a single-precision subnormal is far below the smallest half.
        return (man == 0).then_some(sign);
    }
    let e = exp - 127;
    if (-14..=15).contains(&e) {
        // A normal half: 10 of the 23 mantissa bits.
        (man & 0x1fff == 0).then(|| sign | (((e + 15) as u16) << 10) | (man >> 13) as u16)
    } else if (-24..=-15).contains(&e) {
        // A subnormal half: m * 2^-24 with m < 1024.
        let significand = man | 0x80_0000;
        let shift = (-(e + 1)) as u32;
        (significand & ((1 << shift) - 1) == 0).then(|| sign | (significand >> shift) as u16)
    } else {
        None
    }
}

/// The value of a half-precision float; `None` for infinities and NaNs.
fn f16_value(h: u16) -> Option<f32> {
    let negative = h & 0x8000 != 0;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let magnitude = match exp {
        0 => man as f32 * (1.0 / 16_777_216.0), // m * 2^-24, exact
        31 => return None,
        _ => f32::from_bits(((exp + 127 - 15) << 23) | (man << 13)),
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A float in its shortest exact form, as ciborium writes an `f64` (half, else single;
/// an `f32` value never needs double). Non-finite values go through ciborium itself.
fn write_f32(out: &mut Vec<u8>, x: f32) {
    if !x.is_finite() {
        ciborium::into_writer(&f64::from(x), out).expect("writing to a Vec");
    } else if let Some(h) = f16_exact(x) {
        out.push(CBOR_F16);
        out.extend_from_slice(&h.to_be_bytes());
    } else {
        out.push(CBOR_F32);
        out.extend_from_slice(&x.to_be_bytes());
    }
}

/// The sampling map, as [`sampling_to_cbor`] encodes it.
fn write_sampling(out: &mut Vec<u8>, s: &SamplingParams) {
    head(out, MAJOR_MAP, 6);
    out.push(1);
    write_f32(out, s.temperature);
    out.push(2);
    write_f32(out, s.top_p);
    out.push(3);
    head(out, MAJOR_UINT, s.top_k.into());
    out.push(4);
    head(out, MAJOR_UINT, s.max_tokens.into());
    out.push(5);
    write_f32(out, s.repetition_penalty);
    out.push(6);
    head(out, MAJOR_UINT, s.seed);
}

/// A cursor over canonical CBOR. Every method returns `None` on anything unexpected,
/// including a head that is not in its shortest form; the caller then falls back to the
/// general parser for the reason.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A head in its shortest form: (major type, argument).
    fn head(&mut self) -> Option<(u8, u64)> {
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let (arg, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.byte()?), 24),
            25 => (
                u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
                0x100,
            ),
            26 => (
                u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                0x1_0000,
            ),
            27 => (
                u64::from_be_bytes(self.take(8)?.try_into().ok()?),
                0x1_0000_0000,
            ),
            _ => return None,
        };
        (arg >= min).then_some((major, arg))
    }

    fn expect_head(&mut self, major: u8, arg: u64) -> Option<()> {
        (self.head()? == (major, arg)).then_some(())
    }

    fn key(&mut self, k: i64) -> Option<()> {
        if k >= 0 {
            self.expect_head(MAJOR_UINT, k as u64)
        } else {
            self.expect_head(MAJOR_NINT, !k as u64)
        }
    }

    fn uint(&mut self) -> Option<u64> {
        match self.head()? {
            (MAJOR_UINT, v) => Some(v),
            _ => None,
        }
    }

    fn bstr(&mut self) -> Option<&'a [u8]> {
        match self.head()? {
            (MAJOR_BYTES, len) => self.take(usize::try_from(len).ok()?),
            _ => None,
        }
    }

    fn uint_claim(&mut self, k: i64) -> Option<u64> {
        self.key(k)?;
        self.uint()
    }

    fn bytes_claim<const N: usize>(&mut self, k: i64) -> Option<[u8; N]> {
        self.key(k)?;
        self.bstr()?.try_into().ok()
    }

    /// A finite half or single float (a double is never the shortest form of an `f32`).
    fn float(&mut self) -> Option<f32> {
        let x = match self.byte()? {
            CBOR_F16 => f16_value(u16::from_be_bytes(self.take(2)?.try_into().ok()?))?,
            CBOR_F32 => f32::from_be_bytes(self.take(4)?.try_into().ok()?),
            _ => return None,
        };
        x.is_finite().then_some(x)
    }

    fn sampling(&mut self) -> Option<SamplingParams> {
        self.expect_head(MAJOR_MAP, 6)?;
        self.key(1)?;
        let temperature = self.float()?;
        self.key(2)?;
        let top_p = self.float()?;
        self.key(3)?;
        let top_k = u32::try_from(self.uint()?).ok()?;
        self.key(4)?;
        let max_tokens = u32::try_from(self.uint()?).ok()?;
        self.key(5)?;
        let repetition_penalty = self.float()?;
        self.key(6)?;
        let seed = self.uint()?;
        Some(SamplingParams {
            temperature,
            top_p,
            top_k,
            max_tokens,
            repetition_penalty,
            seed,
        })
    }
}

impl ReceiptClaims {
    /// The canonical CBOR encoding (the COSE payload). Written directly rather than
    /// through `ciborium::Value` (every verification re-encodes the claims to compare);
    /// the tests check it against ciborium's encoding of the same map.
    pub fn to_cbor(&self) -> Vec<u8> {
        use keys::*;
        let mut out = Vec::with_capacity(480);
        let o = &mut out;
        head(o, MAJOR_MAP, keys::ORDER.len() as u64);
        let uint_claim = |o: &mut Vec<u8>, k: i64, v: u64| {
            int_head(o, k);
            head(o, MAJOR_UINT, v);
        };
        let bytes_claim = |o: &mut Vec<u8>, k: i64, v: &[u8]| {
            int_head(o, k);
            head(o, MAJOR_BYTES, v.len() as u64);
            o.extend_from_slice(v);
        };
        uint_claim(o, IAT, self.issued_at);
        bytes_claim(o, CTI, &self.job_id);
        uint_claim(o, VERSION, RECEIPT_VERSION);
        bytes_claim(o, MODEL_DIGEST, &self.model_digest);
        bytes_claim(o, REQUEST_SHA256, &self.request_sha256);
        bytes_claim(o, RESPONSE_SHA256, &self.response_sha256);
        uint_claim(o, PROMPT_TOKENS, self.prompt_tokens);
        uint_claim(o, OUTPUT_TOKENS, self.output_tokens);
        uint_claim(o, QUEUE_WAIT_MS, self.queue_wait_ms);
        uint_claim(o, WALL_START_MS, self.wall_start_ms);
        uint_claim(o, WALL_END_MS, self.wall_end_ms);
        uint_claim(o, DEVICE_MS, self.device_ms);
        uint_claim(o, DEVICE_SHARE_PPM, self.device_share_ppm.into());
        int_head(o, SAMPLING);
        write_sampling(o, &self.sampling);
        bytes_claim(o, ACTIVATION_COMMITMENT, &self.activation_commitment);
        int_head(o, AUDITED);
        o.push(if self.audited { CBOR_TRUE } else { CBOR_FALSE });
        bytes_claim(o, EVIDENCE_DIGEST, &self.evidence_digest);
        uint_claim(o, SEQ, self.seq);
        bytes_claim(o, PREV_RECEIPT_SHA256, &self.prev_receipt_sha256);
        bytes_claim(o, RUNTIME_INSTANCE, &self.runtime_instance);
        out
    }

    /// Parse claims strictly: every known key exactly once in canonical order, right types
    /// and sizes, consistent values, and exactly the bytes [`Self::to_cbor`] would write.
    ///
    /// Two paths with one outcome: a direct decoder that accepts only claims it can prove
    /// canonical (they re-encode to the bytes received), and, for anything it does not
    /// accept, the general parse through `ciborium::Value`, which says what is wrong. What
    /// the direct decoder accepts, the general parse accepts as the same claims (tested
    /// exhaustively for the floats, by mutation for the rest).
    pub fn from_cbor(cbor: &[u8]) -> Result<Self, Rejection> {
        match Self::from_canonical(cbor) {
            Some(claims) => Ok(claims),
            None => Self::from_cbor_general(cbor),
        }
    }

    /// The direct decoder of [`Self::from_cbor`]: `None` unless the bytes are the canonical
    /// encoding of claims that pass every check.
    fn from_canonical(cbor: &[u8]) -> Option<Self> {
        use keys::*;
        if cbor.len() > MAX_RECEIPT_LEN {
            return None;
        }
        let mut r = Reader::new(cbor);
        r.expect_head(MAJOR_MAP, keys::ORDER.len() as u64)?;
        let issued_at = r.uint_claim(IAT)?;
        let job_id = r.bytes_claim(CTI)?;
        if r.uint_claim(VERSION)? != RECEIPT_VERSION {
            return None;
        }
        let model_digest = r.bytes_claim(MODEL_DIGEST)?;
        let request_sha256 = r.bytes_claim(REQUEST_SHA256)?;
        let response_sha256 = r.bytes_claim(RESPONSE_SHA256)?;
        let prompt_tokens = r.uint_claim(PROMPT_TOKENS)?;
        let output_tokens = r.uint_claim(OUTPUT_TOKENS)?;
        let queue_wait_ms = r.uint_claim(QUEUE_WAIT_MS)?;
        let wall_start_ms = r.uint_claim(WALL_START_MS)?;
        let wall_end_ms = r.uint_claim(WALL_END_MS)?;
        let device_ms = r.uint_claim(DEVICE_MS)?;
        let device_share_ppm = u32::try_from(r.uint_claim(DEVICE_SHARE_PPM)?).ok()?;
        r.key(SAMPLING)?;
        let sampling = r.sampling()?;
        let activation_commitment = r.bytes_claim(ACTIVATION_COMMITMENT)?;
        r.key(AUDITED)?;
        let audited = match r.byte()? {
            CBOR_TRUE => true,
            CBOR_FALSE => false,
            _ => return None,
        };
        let evidence_digest = r.bytes_claim(EVIDENCE_DIGEST)?;
        let seq = r.uint_claim(SEQ)?;
        let prev_receipt_sha256 = r.bytes_claim(PREV_RECEIPT_SHA256)?;
        let runtime_instance = r.bytes_claim(RUNTIME_INSTANCE)?;
        if !r.at_end() {
            return None;
        }
        let claims = ReceiptClaims {
            job_id,
            issued_at,
            model_digest,
            request_sha256,
            response_sha256,
            prompt_tokens,
            output_tokens,
            queue_wait_ms,
            wall_start_ms,
            wall_end_ms,
            device_ms,
            device_share_ppm,
            sampling,
            activation_commitment,
            audited,
            evidence_digest,
            seq,
            prev_receipt_sha256,
            runtime_instance,
        };
        // The reader takes shortest heads only; the re-encoding settles the rest (floats).
        (claims.check().is_ok() && claims.to_cbor() == cbor).then_some(claims)
    }

    /// The general parse of [`Self::from_cbor`], with a reason for whatever is wrong.
    fn from_cbor_general(cbor: &[u8]) -> Result<Self, Rejection> {
        if cbor.len() > MAX_RECEIPT_LEN {
            return Err(malformed(format!(
                "receipt claims are {} bytes, more than the {MAX_RECEIPT_LEN} allowed",
                cbor.len()
            )));
        }
        let value: Value = ciborium::from_reader(cbor)
            .map_err(|e| malformed(format!("receipt claims are not CBOR: {e}")))?;
        let fields = fields_in_order(value, &keys::ORDER, "receipt claims").map_err(malformed)?;
        let [iat, cti, version, model, request, response, prompt, output, queue, start, end, device, share, sampling, activation, audited, evidence, seq, prev, instance] =
            fields;
        let version = take_uint(version, keys::VERSION)?;
        if version != RECEIPT_VERSION {
            return reject(
                Reason::UnsupportedVersion,
                format!("receipt format version {version}; this verifier knows {RECEIPT_VERSION}"),
            );
        }
        let claims = ReceiptClaims {
            job_id: take_bytes(cti, keys::CTI)?,
            issued_at: take_uint(iat, keys::IAT)?,
            model_digest: take_bytes(model, keys::MODEL_DIGEST)?,
            request_sha256: take_bytes(request, keys::REQUEST_SHA256)?,
            response_sha256: take_bytes(response, keys::RESPONSE_SHA256)?,
            prompt_tokens: take_uint(prompt, keys::PROMPT_TOKENS)?,
            output_tokens: take_uint(output, keys::OUTPUT_TOKENS)?,
            queue_wait_ms: take_uint(queue, keys::QUEUE_WAIT_MS)?,
            wall_start_ms: take_uint(start, keys::WALL_START_MS)?,
            wall_end_ms: take_uint(end, keys::WALL_END_MS)?,
            device_ms: take_uint(device, keys::DEVICE_MS)?,
            device_share_ppm: take_u32(share, keys::DEVICE_SHARE_PPM)?,
            sampling: sampling_from_cbor(sampling).map_err(malformed)?,
            activation_commitment: take_bytes(activation, keys::ACTIVATION_COMMITMENT)?,
            audited: match audited {
                Some(Value::Bool(b)) => b,
                _ => return Err(missing_or_wrong(keys::AUDITED, "a bool")),
            },
            evidence_digest: take_bytes(evidence, keys::EVIDENCE_DIGEST)?,
            seq: take_uint(seq, keys::SEQ)?,
            prev_receipt_sha256: take_bytes(prev, keys::PREV_RECEIPT_SHA256)?,
            runtime_instance: take_bytes(instance, keys::RUNTIME_INSTANCE)?,
        };
        claims.check()?;
        if claims.to_cbor() != cbor {
            return Err(malformed(
                "receipt claims are not in canonical CBOR (shortest integers and floats, definite lengths, nothing after the map)",
            ));
        }
        Ok(claims)
    }

    /// Consistency of values that the types alone do not ensure.
    fn check(&self) -> Result<(), Rejection> {
        if self.device_share_ppm > DEVICE_SHARE_FULL {
            return Err(malformed(format!(
                "device share {} ppm is more than the whole device ({DEVICE_SHARE_FULL})",
                self.device_share_ppm
            )));
        }
        if self.wall_end_ms < self.wall_start_ms {
            return Err(malformed(format!(
                "the job ends ({} ms) before it starts ({} ms)",
                self.wall_end_ms, self.wall_start_ms
            )));
        }
        let zero = self.prev_receipt_sha256 == [0u8; 32];
        if (self.seq == 0) != zero {
            return Err(malformed(format!(
                "sequence number {} with {} previous-receipt hash: the hash is all zero exactly for the first receipt",
                self.seq,
                if zero { "an all-zero" } else { "a non-zero" }
            )));
        }
        Ok(())
    }
}

fn missing_or_wrong(key: i64, what: &str) -> Rejection {
    malformed(format!("receipt claim {key} is missing or not {what}"))
}

fn take_uint(v: Option<Value>, key: i64) -> Result<u64, Rejection> {
    as_uint(v).ok_or_else(|| missing_or_wrong(key, "an unsigned 64-bit integer"))
}

fn take_u32(v: Option<Value>, key: i64) -> Result<u32, Rejection> {
    as_uint(v).ok_or_else(|| missing_or_wrong(key, "an unsigned 32-bit integer"))
}

fn take_bytes<const N: usize>(v: Option<Value>, key: i64) -> Result<[u8; N], Rejection> {
    as_array(v).ok_or_else(|| missing_or_wrong(key, &format!("a {N}-byte string")))
}

// ---- strict CBOR helpers shared with the other canonical maps (transcripts) ----
// Each returns what is wrong as a plain message, for the caller to wrap in its own reason.

/// The values of a CBOR map with integer keys, each one of `order`, at most once, in that
/// order (missing keys are `None`; the caller decides which may be absent).
pub(crate) fn fields_in_order<const N: usize>(
    value: Value,
    order: &[i64; N],
    what: &str,
) -> Result<[Option<Value>; N], String> {
    let Value::Map(entries) = value else {
        return Err(format!("{what} are not a CBOR map"));
    };
    let mut fields: [Option<Value>; N] = std::array::from_fn(|_| None);
    let mut last: Option<usize> = None;
    for (k, v) in entries {
        let k = match k {
            Value::Integer(i) => i64::try_from(i128::from(i)).ok(),
            _ => None,
        }
        .ok_or_else(|| format!("{what}: a key is not an integer"))?;
        let pos = order
            .iter()
            .position(|&o| o == k)
            .ok_or_else(|| format!("{what}: key {k} is unknown"))?;
        if last.is_some_and(|l| pos <= l) {
            return Err(format!(
                "{what}: key {k} is out of canonical order or repeated"
            ));
        }
        last = Some(pos);
        fields[pos] = Some(v);
    }
    Ok(fields)
}

/// An unsigned integer that fits `T`, or `None` (absent, another type, out of range).
pub(crate) fn as_uint<T: TryFrom<ciborium::value::Integer>>(v: Option<Value>) -> Option<T> {
    match v {
        Some(Value::Integer(i)) => T::try_from(i).ok(),
        _ => None,
    }
}

/// A byte string of exactly `N` bytes, or `None`.
pub(crate) fn as_array<const N: usize>(v: Option<Value>) -> Option<[u8; N]> {
    match v {
        Some(Value::Bytes(b)) => b.try_into().ok(),
        _ => None,
    }
}

/// The sampling-parameter map, as receipts (claim -65548) and transcripts encode it.
pub(crate) fn sampling_to_cbor(s: &SamplingParams) -> Value {
    Value::Map(vec![
        (uint(1), Value::Float(s.temperature.into())),
        (uint(2), Value::Float(s.top_p.into())),
        (uint(3), uint(s.top_k.into())),
        (uint(4), uint(s.max_tokens.into())),
        (uint(5), Value::Float(s.repetition_penalty.into())),
        (uint(6), uint(s.seed)),
    ])
}

/// Parse the map [`sampling_to_cbor`] writes: every key once, in order, right types. Floats
/// must be f32 values (the caller's re-encoding check then demands their shortest form).
pub(crate) fn sampling_from_cbor(v: Option<Value>) -> Result<SamplingParams, String> {
    let v = v.ok_or("sampling parameters are missing")?;
    let [temperature, top_p, top_k, max_tokens, repetition_penalty, seed] =
        fields_in_order(v, &[1, 2, 3, 4, 5, 6], "sampling parameters")?;
    let f32_of = |v: Option<Value>, name: &str| match v {
        Some(Value::Float(f)) if f64::from(f as f32).to_bits() == f.to_bits() => Ok(f as f32),
        _ => Err(format!(
            "sampling parameter {name} is missing or not a single-precision float"
        )),
    };
    let u32_of = |v: Option<Value>, name: &str| {
        as_uint::<u32>(v).ok_or_else(|| {
            format!("sampling parameter {name} is missing or not an unsigned 32-bit integer")
        })
    };
    Ok(SamplingParams {
        temperature: f32_of(temperature, "temperature")?,
        top_p: f32_of(top_p, "top_p")?,
        top_k: u32_of(top_k, "top_k")?,
        max_tokens: u32_of(max_tokens, "max_tokens")?,
        repetition_penalty: f32_of(repetition_penalty, "repetition_penalty")?,
        seed: as_uint::<u64>(seed).ok_or("sampling parameter seed is missing or not a u64")?,
    })
}

fn cose_alg(alg: i64) -> Option<iana::Algorithm> {
    match alg {
        COSE_ALG_EDDSA => Some(iana::Algorithm::EdDSA),
        COSE_ALG_ES256 => Some(iana::Algorithm::ES256),
        _ => None,
    }
}

fn protected_header(alg: iana::Algorithm) -> coset::Header {
    HeaderBuilder::new()
        .algorithm(alg)
        .content_type(CONTENT_TYPE.to_string())
        .build()
}

/// The canonical protected-header bytes for `alg`.
fn protected_bytes(alg: iana::Algorithm) -> Vec<u8> {
    ProtectedHeader {
        original_data: None,
        header: protected_header(alg),
    }
    .to_vec()
    .expect("encoding a header to a Vec")
}

/// [`protected_bytes`], encoded once per algorithm (verification compares against it for
/// every receipt).
fn protected_bytes_cached(alg: iana::Algorithm) -> &'static [u8] {
    static EDDSA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    static ES256: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    match alg {
        iana::Algorithm::EdDSA => EDDSA.get_or_init(|| protected_bytes(alg)),
        _ => ES256.get_or_init(|| protected_bytes(iana::Algorithm::ES256)),
    }
}

/// The shortest CBOR head of a byte string of `len` bytes (RFC 8949 section 3).
fn bstr_head(out: &mut Vec<u8>, len: usize) {
    head(out, MAJOR_BYTES, len as u64);
}

/// The one canonical encoding of a tagged COSE_Sign1 with these parts and an empty
/// unprotected header: tag 18, array of 4, bstr, empty map, bstr, bstr. Written directly
/// because verification needs it for every receipt (coset re-encodes through
/// `ciborium::Value`, several times slower); the tests check it against coset's.
fn canonical_envelope(protected: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + protected.len() + payload.len() + signature.len());
    out.extend_from_slice(&[COSE_SIGN1_TAG_BYTE, 0x84]);
    bstr_head(&mut out, protected.len());
    out.extend_from_slice(protected);
    out.push(0xa0);
    bstr_head(&mut out, payload.len());
    out.extend_from_slice(payload);
    bstr_head(&mut out, signature.len());
    out.extend_from_slice(signature);
    out
}

/// The Sig_structure a COSE_Sign1 signature covers (RFC 9052 section 4.4):
/// `["Signature1", protected, external_aad = h'', payload]`, written directly like
/// [`canonical_envelope`].
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + protected.len() + payload.len());
    out.extend_from_slice(b"\x84\x6aSignature1");
    bstr_head(&mut out, protected.len());
    out.extend_from_slice(protected);
    out.push(0x40);
    bstr_head(&mut out, payload.len());
    out.extend_from_slice(payload);
    out
}

/// Build a tagged COSE_Sign1 over `payload` with `signer` producing the signature of the
/// Sig_structure bytes.
fn sign_payload(
    payload: Vec<u8>,
    alg: iana::Algorithm,
    signer: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    CoseSign1Builder::new()
        .protected(protected_header(alg))
        .payload(payload)
        .create_signature(&[], signer)
        .build()
        .to_tagged_vec()
        .expect("encoding a COSE_Sign1 to a Vec")
}

/// Sign a receipt (EdDSA, tagged COSE_Sign1). Deterministic: Ed25519 signatures are.
/// Claims that break the checks [`verify`] makes (a share above the whole device, an end
/// before the start, a sequence number that disagrees with the previous hash) still sign,
/// and verification refuses them.
pub fn sign(claims: &ReceiptClaims, key: &signature::Ed25519KeyPair) -> Vec<u8> {
    sign_payload(claims.to_cbor(), iana::Algorithm::EdDSA, |tbs| {
        key.sign(tbs).as_ref().to_vec()
    })
}

/// A receipt whose envelope and claims parsed, not yet verified. The direct parse borrows
/// payload and signature from the receipt's bytes.
struct Parsed<'a> {
    alg: i64,
    /// The canonical protected header of `alg`: what the receipt carries, byte for byte.
    protected: &'static [u8],
    payload: Cow<'a, [u8]>,
    signature: Cow<'a, [u8]>,
    claims: ReceiptClaims,
    sha256: [u8; 32],
}

/// The parts of a receipt in the canonical envelope.
struct Envelope<'a> {
    alg: i64,
    protected: &'static [u8],
    payload: &'a [u8],
    signature: &'a [u8],
}

/// The parts of a receipt that is exactly the envelope [`sign`] writes (tagged or not)
/// around a protected header this verifier knows. `None` for anything else, which
/// [`parse_general`] then explains.
fn split_canonical(receipt: &[u8]) -> Option<Envelope<'_>> {
    let body = match receipt.split_first() {
        Some((&COSE_SIGN1_TAG_BYTE, rest)) => rest,
        _ => receipt,
    };
    let mut r = Reader::new(body);
    r.expect_head(MAJOR_ARRAY, 4)?;
    let protected = r.bstr()?;
    let (alg, known) = [
        (COSE_ALG_EDDSA, iana::Algorithm::EdDSA),
        (COSE_ALG_ES256, iana::Algorithm::ES256),
    ]
    .into_iter()
    .map(|(alg, cose)| (alg, protected_bytes_cached(cose)))
    .find(|(_, known)| *known == protected)?;
    r.expect_head(MAJOR_MAP, 0)?;
    let payload = r.bstr()?;
    let signature = r.bstr()?;
    r.at_end().then_some(Envelope {
        alg,
        protected: known,
        payload,
        signature,
    })
}

/// SHA-256 of the tagged encoding of a receipt received untagged.
fn tagged_sha256(untagged: &[u8]) -> [u8; 32] {
    let mut ctx = crate::crypto::digest::Context::new(&crate::crypto::digest::SHA256);
    ctx.update(&[COSE_SIGN1_TAG_BYTE]);
    ctx.update(untagged);
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Parse a receipt strictly. A receipt in the canonical envelope (every genuine one) is
/// split directly; anything else goes through coset, which accepts exactly the same
/// receipts and says what is wrong with the others.
fn parse(receipt: &[u8]) -> Result<Parsed<'_>, Rejection> {
    if receipt.len() > MAX_RECEIPT_LEN {
        return Err(malformed(format!(
            "receipt is {} bytes, more than the {MAX_RECEIPT_LEN} allowed",
            receipt.len()
        )));
    }
    let Some(Envelope {
        alg,
        protected,
        payload,
        signature,
    }) = split_canonical(receipt)
    else {
        return parse_general(receipt);
    };
    // A canonical envelope passes every check of `parse_general` but the claims'.
    let claims = ReceiptClaims::from_cbor(payload)?;
    let sha256 = if receipt[0] == COSE_SIGN1_TAG_BYTE {
        crate::x509::sha256(receipt)
    } else {
        tagged_sha256(receipt)
    };
    Ok(Parsed {
        alg,
        protected,
        payload: Cow::Borrowed(payload),
        signature: Cow::Borrowed(signature),
        claims,
        sha256,
    })
}

/// The general parse of [`parse`], through coset, with a reason for whatever is wrong.
fn parse_general(receipt: &[u8]) -> Result<Parsed<'static>, Rejection> {
    let tagged = receipt.first() == Some(&COSE_SIGN1_TAG_BYTE);
    let sign1 = if tagged {
        CoseSign1::from_tagged_slice(receipt)
    } else {
        CoseSign1::from_slice(receipt)
    }
    .map_err(|e| malformed(format!("receipt is not a COSE_Sign1: {e}")))?;
    let alg = match &sign1.protected.header.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => a.to_i64(),
        Some(RegisteredLabelWithPrivate::PrivateUse(a)) => *a,
        Some(RegisteredLabelWithPrivate::Text(t)) => {
            return reject(
                Reason::UnsupportedAlgorithm,
                format!("receipt algorithm {t:?} is not a COSE algorithm this verifier knows"),
            )
        }
        None => return Err(malformed("receipt protected header names no algorithm")),
    };
    let Some(cose) = cose_alg(alg) else {
        return reject(
            Reason::UnsupportedAlgorithm,
            format!("receipt algorithm {alg}; EdDSA (-8) and ES256 (-7) are supported"),
        );
    };
    if sign1.protected.original_data.as_deref() != Some(protected_bytes_cached(cose)) {
        return Err(malformed(format!(
            "receipt protected header is not exactly {{1: {alg}, 3: \"{CONTENT_TYPE}\"}} in canonical CBOR"
        )));
    }
    if !sign1.unprotected.is_empty() {
        return Err(malformed("receipt unprotected header is not empty"));
    }
    let Some(payload) = sign1.payload else {
        return Err(malformed("receipt payload is detached"));
    };
    let claims = ReceiptClaims::from_cbor(&payload)?;
    let protected = protected_bytes_cached(cose);
    let canonical = canonical_envelope(protected, &payload, &sign1.signature);
    let expected = if tagged {
        &canonical[..]
    } else {
        &canonical[1..]
    };
    if receipt != expected {
        return Err(malformed(
            "receipt envelope is not in canonical CBOR (definite lengths, shortest forms)",
        ));
    }
    let sha256 = crate::x509::sha256(&canonical);
    Ok(Parsed {
        alg,
        protected,
        payload: Cow::Owned(payload),
        signature: Cow::Owned(sign1.signature),
        claims,
        sha256,
    })
}

/// A receipt authenticated as signed by a bound receipt key, whose claims name the
/// evidence that binds it: its own signature verified ([`verify`], [`verify_many`]), or,
/// in a log checked by [`verify_log`], its exact bytes are hash-chained into a later
/// receipt whose signature verified. Only this module constructs it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedReceipt {
    claims: ReceiptClaims,
    sha256: [u8; 32],
    alg: i64,
}

impl VerifiedReceipt {
    pub fn claims(&self) -> &ReceiptClaims {
        &self.claims
    }

    /// SHA-256 of the receipt's tagged COSE_Sign1 bytes: what the next receipt's
    /// previous-receipt hash names.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The COSE algorithm it was signed with.
    pub fn alg(&self) -> i64 {
        self.alg
    }
}

/// Verify one receipt: parse it strictly ([`Reason::ReceiptMalformed`]), check that it
/// names `evidence_digest`, the SHA-256 of the evidence bundle that binds `key`
/// ([`Reason::ReceiptKeyNotBound`]), that its algorithm is the key's
/// ([`Reason::UnsupportedAlgorithm`] for one this verifier does not know), and its
/// signature over the received Sig_structure ([`Reason::ReceiptSignatureInvalid`]).
pub fn verify(
    receipt: &[u8],
    key: &ReceiptKey,
    evidence_digest: &[u8; 32],
) -> Result<VerifiedReceipt, Rejection> {
    verify_parsed(parse(receipt)?, key, evidence_digest)
}

fn verifier_for(
    key: &ReceiptKey,
) -> Result<&'static dyn signature::VerificationAlgorithm, Rejection> {
    match key.alg {
        COSE_ALG_EDDSA => Ok(&signature::ED25519),
        COSE_ALG_ES256 => Ok(&signature::ECDSA_P256_SHA256_FIXED),
        other => reject(
            Reason::UnsupportedAlgorithm,
            format!("receipt key algorithm {other}; EdDSA (-8) and ES256 (-7) are supported"),
        ),
    }
}

/// Every check of [`verify`] that comes before the signature.
fn check_before_signature(
    parsed: &Parsed,
    key: &ReceiptKey,
    evidence_digest: &[u8; 32],
) -> Result<(), Rejection> {
    verifier_for(key)?;
    // Checked before the signature: a receipt naming other evidence was signed by a key
    // this evidence does not bind, and that is the reason worth reporting.
    if &parsed.claims.evidence_digest != evidence_digest {
        return reject(
            Reason::ReceiptKeyNotBound,
            format!(
                "receipt seq {} names evidence {}, not the bundle that binds this key ({})",
                parsed.claims.seq,
                hex::encode(parsed.claims.evidence_digest),
                hex::encode(evidence_digest)
            ),
        );
    }
    if parsed.alg != key.alg {
        return reject(
            Reason::ReceiptSignatureInvalid,
            format!(
                "receipt is signed with algorithm {}; the bound receipt key is for {}",
                parsed.alg, key.alg
            ),
        );
    }
    Ok(())
}

fn bad_signature(parsed: &Parsed, key: &ReceiptKey) -> Rejection {
    Rejection::new(
        Reason::ReceiptSignatureInvalid,
        format!(
            "receipt seq {} signature does not verify with the bound receipt key {}",
            parsed.claims.seq,
            hex::encode(&key.public_key)
        ),
    )
}

/// The bytes the receipt's signature covers.
fn tbs(parsed: &Parsed<'_>) -> Vec<u8> {
    sig_structure(parsed.protected, &parsed.payload)
}

fn check_signature(parsed: &Parsed<'_>, key: &ReceiptKey) -> Result<(), Rejection> {
    let tbs = tbs(parsed);
    signature::UnparsedPublicKey::new(verifier_for(key)?, &key.public_key)
        .verify(&tbs, &parsed.signature)
        .map_err(|_| bad_signature(parsed, key))
}

fn verified(parsed: Parsed<'_>) -> VerifiedReceipt {
    VerifiedReceipt {
        claims: parsed.claims,
        sha256: parsed.sha256,
        alg: parsed.alg,
    }
}

fn verify_parsed(
    parsed: Parsed<'_>,
    key: &ReceiptKey,
    evidence_digest: &[u8; 32],
) -> Result<VerifiedReceipt, Rejection> {
    check_before_signature(&parsed, key, evidence_digest)?;
    check_signature(&parsed, key)?;
    Ok(verified(parsed))
}

/// Receipts per Ed25519 batch.
const BATCH: usize = 1024;

/// How a log's signatures are checked: Ed25519 in batches (one multi-scalar
/// multiplication per batch, about 2.5 times as fast per signature), any other key one by
/// one.
///
/// Batch verification uses the cofactored equation, single verification the cofactorless
/// one; they can disagree only on signatures crafted with small-order components, which
/// only the holder of the (attested, non-weak) key could make. A weak key is refused.
enum Checker<'k> {
    Batch(ed25519_dalek::VerifyingKey, &'k ReceiptKey),
    OneByOne(&'k ReceiptKey),
}

impl<'k> Checker<'k> {
    fn new(key: &'k ReceiptKey) -> Result<Self, Rejection> {
        let batch_key = (key.alg == COSE_ALG_EDDSA)
            .then(|| <[u8; 32]>::try_from(key.public_key.as_slice()).ok())
            .flatten()
            .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok());
        match batch_key {
            Some(vk) if vk.is_weak() => reject(
                Reason::ReceiptSignatureInvalid,
                "the bound receipt key is a weak (small-order) Ed25519 point",
            ),
            Some(vk) => Ok(Checker::Batch(vk, key)),
            None => Ok(Checker::OneByOne(key)),
        }
    }

    /// The first receipt among `which` (indices into `parsed`, ascending) whose signature
    /// does not verify, and why; `None` when all do. A batch that fails is checked one by
    /// one to name the receipt.
    fn first_invalid(&self, parsed: &[Parsed<'_>], which: &[usize]) -> Option<(usize, Rejection)> {
        let one_by_one = |key: &ReceiptKey, chunk: &[usize]| {
            chunk
                .iter()
                .find_map(|&i| check_signature(&parsed[i], key).err().map(|e| (i, e)))
        };
        match self {
            Checker::OneByOne(key) => one_by_one(key, which),
            Checker::Batch(vk, key) => which.chunks(BATCH).find_map(|chunk| {
                let tbs: Vec<Vec<u8>> = chunk.iter().map(|&i| tbs(&parsed[i])).collect();
                let messages: Vec<&[u8]> = tbs.iter().map(Vec::as_slice).collect();
                let sigs: Option<Vec<ed25519_dalek::Signature>> = chunk
                    .iter()
                    .map(|&i| ed25519_dalek::Signature::from_slice(&parsed[i].signature).ok())
                    .collect();
                let ok = sigs.is_some_and(|sigs| {
                    ed25519_dalek::verify_batch(&messages, &sigs, &vec![*vk; chunk.len()]).is_ok()
                });
                if ok {
                    None
                } else {
                    one_by_one(key, chunk)
                }
            }),
        }
    }
}

/// Parse every receipt of one instance's log and make every check that comes before a
/// signature; on failure, the index of the first receipt that failed.
fn parse_log<'a, R: AsRef<[u8]>>(
    receipts: &'a [R],
    key: &ReceiptKey,
    evidence_digest: &[u8; 32],
    instance: &[u8; 16],
) -> Result<Vec<Parsed<'a>>, (usize, Rejection)> {
    let mut parsed = Vec::with_capacity(receipts.len());
    for (i, r) in receipts.iter().enumerate() {
        let p = parse(r.as_ref()).map_err(|e| (i, e))?;
        if &p.claims.runtime_instance != instance {
            let detail = format!(
                "receipt seq {} claims runtime instance {}, not {}",
                p.claims.seq,
                hex::encode(p.claims.runtime_instance),
                hex::encode(instance)
            );
            return Err((i, Rejection::new(Reason::ReceiptInstanceMismatch, detail)));
        }
        check_before_signature(&p, key, evidence_digest).map_err(|e| (i, e))?;
        parsed.push(p);
    }
    Ok(parsed)
}

/// [`verify`] for every receipt of one runtime instance's log (an audit bundle's section),
/// with the same checks and reasons, plus one: a receipt from another instance is
/// [`Reason::ReceiptInstanceMismatch`], said before its signature is checked against a key
/// that is not its own. Every signature is checked (Ed25519 in batches of 1,024; when a
/// batch fails, its receipts one by one to name the first bad one). On failure: the index
/// of the first receipt that failed, and why. [`verify_log`] is the auditor's faster path.
pub fn verify_many<R: AsRef<[u8]>>(
    receipts: &[R],
    key: &ReceiptKey,
    evidence_digest: &[u8; 32],
    instance: &[u8; 16],
) -> Result<Vec<VerifiedReceipt>, (usize, Rejection)> {
    let parsed = parse_log(receipts, key, evidence_digest, instance)?;
    let checker = Checker::new(key).map_err(|e| (0, e))?;
    let all: Vec<usize> = (0..parsed.len()).collect();
    if let Some(bad) = checker.first_invalid(&parsed, &all) {
        return Err(bad);
    }
    Ok(parsed.into_iter().map(verified).collect())
}

/// In chain mode [`verify_log`] checks the signature of the last receipt and of every
/// receipt whose index is a multiple of this, less one.
pub const CHECKPOINT_INTERVAL: usize = 1024;

/// How a log's receipts were authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SignatureTotals {
    /// Every signature was checked (`--every-signature`), not only those the chain needs.
    pub every_signature: bool,
    /// Receipts whose own signature was checked.
    pub verified: u64,
    /// Receipts authenticated through the hash chain into a later verified signature,
    /// their own signature not checked.
    pub chain_authenticated: u64,
}

/// A runtime instance's log, every receipt authenticated and the chain checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedLog {
    /// Index-aligned with the log.
    pub receipts: Vec<VerifiedReceipt>,
    /// `None` for an empty log.
    pub chain: Option<ChainSummary>,
    pub signatures: SignatureTotals,
}

/// Authenticate receipts `0..=last`, whose hash links are already checked: verify the
/// signature of `last` and of the checkpoints before it. A valid signature at `last`
/// authenticates the whole range; the checkpoints only localise: when one fails (the first
/// in log order), the receipts after the checkpoint before it are checked one by one and
/// the first whose signature fails is named. Returns the number of signatures verified.
fn authenticate_prefix(
    checker: &Checker<'_>,
    parsed: &[Parsed<'_>],
    last: usize,
) -> Result<u64, (usize, Rejection)> {
    let mut points: Vec<usize> = (CHECKPOINT_INTERVAL - 1..last)
        .step_by(CHECKPOINT_INTERVAL)
        .collect();
    points.push(last);
    let Some((bad, why)) = checker.first_invalid(parsed, &points) else {
        return Ok(points.len() as u64);
    };
    let from = points
        .iter()
        .take_while(|&&p| p < bad)
        .last()
        .map_or(0, |p| p + 1);
    let segment: Vec<usize> = (from..=bad).collect();
    Err(checker
        .first_invalid(parsed, &segment)
        .unwrap_or((bad, why)))
}

/// Verify one runtime instance's log as an auditor does: every receipt parsed and checked
/// as [`verify_many`] checks it (strict parse, instance, evidence digest, algorithm, weak
/// key), the chain as [`verify_chain`] checks it, and every receipt **authenticated**,
/// which is not the same as every signature checked.
///
/// **Chain mode** (`every_signature == false`). Each receipt names the SHA-256 of the
/// previous receipt's whole tagged COSE_Sign1 (claims and signature), and that hash is
/// inside the next receipt's signed payload. So when the links `i -> i+1 -> ... -> j` all
/// hold (checked by recomputing each hash from the bytes received) and receipt `j`'s
/// signature verifies, the bound key signed a statement that fixes receipt `j-1`'s exact
/// bytes, which fix `j-2`'s, and so on down to `i`: each of them is authenticated by `j`'s
/// signature. The log is accepted only if every link holds from the first receipt to the
/// last and the last receipt's signature verifies, so no receipt's authentication rests on
/// a broken link. Passing off a forged receipt in the middle, with the links intact, takes
/// a byte string other than the genuine receipt with the same SHA-256: a second preimage,
/// which SHA-256 resists (2^256 work). A receipt whose own signature is never checked
/// still has its claims parsed and checked like any other (seq, instance, evidence digest,
/// algorithm), so an authenticated receipt that states the wrong thing is still refused.
///
/// The signatures of every [`CHECKPOINT_INTERVAL`]-th receipt are checked too, in one
/// batch with the last: they cost little and bound the search when something is wrong.
///
/// **Every-signature mode** checks every receipt's own signature, as [`verify_many`].
///
/// **Failures** name the first receipt in log order that is not authenticated or breaks
/// the chain. Chain mode finds it without checking every signature: when the link into
/// receipt `k` is broken, the receipts before `k` (linked to each other) are authenticated
/// as above, then receipt `k`'s own signature is checked, and only then is the break
/// reported as the chain's reason; so a receipt whose bytes were altered is named with
/// [`Reason::ReceiptSignatureInvalid`], not as the fork its changed hash makes at the next
/// receipt. When a signature in an intact chain fails, the first failing checkpoint (or
/// the last receipt) bounds the receipts checked one by one.
///
/// The two modes accept the same logs except one kind: a receipt with an invalid signature
/// whose exact bytes a later, validly signed receipt chains in. Only the key's holder
/// can make one, and it has vouched for those bytes with the later signature; chain mode
/// accepts it as that key's statement, every-signature mode refuses it.
pub fn verify_log<R: AsRef<[u8]>>(
    receipts: &[R],
    key: &ReceiptKey,
    evidence_digest: &[u8; 32],
    instance: &[u8; 16],
    every_signature: bool,
) -> Result<VerifiedLog, (usize, Rejection)> {
    let parsed = parse_log(receipts, key, evidence_digest, instance)?;
    let checker = Checker::new(key).map_err(|e| (0, e))?;
    let n = parsed.len();
    if n == 0 {
        return Ok(VerifiedLog {
            receipts: Vec::new(),
            chain: None,
            signatures: SignatureTotals {
                every_signature,
                ..SignatureTotals::default()
            },
        });
    }
    let chain = chain_summary(&parsed, |p| (&p.claims, &p.sha256));
    let (verified_count, summary) = if every_signature {
        let all: Vec<usize> = (0..n).collect();
        match (checker.first_invalid(&parsed, &all), chain) {
            // A tie goes to the signature: a link broken at k can come from k's own bytes.
            (Some(bad), Err(broken)) => return Err(if broken.0 < bad.0 { broken } else { bad }),
            (Some(bad), Ok(_)) => return Err(bad),
            (None, Err(broken)) => return Err(broken),
            (None, Ok(summary)) => (n as u64, summary),
        }
    } else {
        match chain {
            Ok(summary) => (authenticate_prefix(&checker, &parsed, n - 1)?, summary),
            Err((k, broken)) => {
                if k > 0 {
                    authenticate_prefix(&checker, &parsed, k - 1)?;
                }
                if let Some(bad) = checker.first_invalid(&parsed, &[k]) {
                    return Err(bad);
                }
                return Err((k, broken));
            }
        }
    };
    Ok(VerifiedLog {
        receipts: parsed.into_iter().map(verified).collect(),
        chain: Some(summary),
        signatures: SignatureTotals {
            every_signature,
            verified: verified_count,
            chain_authenticated: n as u64 - verified_count,
        },
    })
}

/// Totals of one UTC hour (by the jobs' wall-clock start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HourTotals {
    pub jobs: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub device_ms: u64,
    /// Billed per second: each job's device time rounded up to whole seconds, summed.
    pub billed_device_seconds: u64,
}

impl HourTotals {
    /// `self + other`, field by field; `None` when any total would overflow 64 bits (the
    /// counts are whatever a runtime signed: an auditor's totals must not wrap).
    pub fn checked_add(&self, other: &HourTotals) -> Option<HourTotals> {
        Some(HourTotals {
            jobs: self.jobs.checked_add(other.jobs)?,
            prompt_tokens: self.prompt_tokens.checked_add(other.prompt_tokens)?,
            output_tokens: self.output_tokens.checked_add(other.output_tokens)?,
            device_ms: self.device_ms.checked_add(other.device_ms)?,
            billed_device_seconds: self
                .billed_device_seconds
                .checked_add(other.billed_device_seconds)?,
        })
    }
}

/// What a verified receipt log adds up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    #[serde(with = "hex_bytes")]
    pub runtime_instance: [u8; 16],
    #[serde(with = "hex_bytes")]
    pub evidence_digest: [u8; 32],
    pub jobs: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub device_ms: u64,
    /// Each job's device time rounded up to whole seconds, summed.
    pub billed_device_seconds: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Keyed by the start of the UTC hour, in seconds since the Unix epoch.
    pub per_hour: BTreeMap<u64, HourTotals>,
}

fn add(total: &mut u64, v: u64) -> Result<(), Rejection> {
    *total = total
        .checked_add(v)
        .ok_or_else(|| malformed("receipt totals overflow 64 bits"))?;
    Ok(())
}

/// Check a receipt log, in log order, from one runtime instance: consecutive sequence
/// numbers, each receipt naming the hash of the one before (the first may start anywhere;
/// at 0 its previous hash is all zero), one runtime instance and evidence digest
/// throughout. Reasons: [`Reason::ReceiptInstanceMismatch`], [`Reason::ReceiptDuplicate`]
/// (a byte-identical repeat), [`Reason::ReceiptFork`] (two receipts for one sequence
/// number, or a broken hash link), [`Reason::ReceiptReordered`] (the sequence goes back,
/// or jumps to a number whose predecessors come later), [`Reason::ReceiptGap`] (missing
/// sequence numbers). An empty log is [`Reason::ReceiptMalformed`].
pub fn verify_chain(receipts: &[VerifiedReceipt]) -> Result<ChainSummary, Rejection> {
    chain_summary(receipts, |r| (&r.claims, &r.sha256)).map_err(|(_, e)| e)
}

/// [`verify_chain`] over anything that has claims and a receipt hash; on failure, the
/// index of the receipt the rejection concerns.
fn chain_summary<T>(
    receipts: &[T],
    view: impl Fn(&T) -> (&ReceiptClaims, &[u8; 32]),
) -> Result<ChainSummary, (usize, Rejection)> {
    let Some(first) = receipts.first() else {
        return Err((0, malformed("an empty receipt log")));
    };
    let c0 = view(first).0;
    let mut seen: HashMap<u64, [u8; 32]> = HashMap::with_capacity(receipts.len());
    let mut summary = ChainSummary {
        runtime_instance: c0.runtime_instance,
        evidence_digest: c0.evidence_digest,
        jobs: 0,
        prompt_tokens: 0,
        output_tokens: 0,
        device_ms: 0,
        billed_device_seconds: 0,
        first_seq: c0.seq,
        last_seq: c0.seq,
        per_hour: BTreeMap::new(),
    };
    let mut prev: Option<(&ReceiptClaims, &[u8; 32])> = None;
    for (i, r) in receipts.iter().enumerate() {
        let (c, sha256) = view(r);
        let fail = |reason, detail: String| Err((i, Rejection::new(reason, detail)));
        if c.runtime_instance != c0.runtime_instance {
            return fail(
                Reason::ReceiptInstanceMismatch,
                format!(
                    "receipt {i} (seq {}) is from runtime instance {}, the log from {}",
                    c.seq,
                    hex::encode(c.runtime_instance),
                    hex::encode(c0.runtime_instance)
                ),
            );
        }
        if c.evidence_digest != c0.evidence_digest {
            return fail(
                Reason::ReceiptInstanceMismatch,
                format!(
                    "receipt {i} (seq {}) names evidence {}, the log {}",
                    c.seq,
                    hex::encode(c.evidence_digest),
                    hex::encode(c0.evidence_digest)
                ),
            );
        }
        if let Some((p, p_sha256)) = prev {
            let want = p.seq.checked_add(1);
            if Some(c.seq) != want {
                if c.seq <= p.seq {
                    return match seen.get(&c.seq) {
                        Some(h) if h == sha256 => fail(
                            Reason::ReceiptDuplicate,
                            format!("receipt {i} repeats the receipt with seq {}", c.seq),
                        ),
                        Some(_) => fail(
                            Reason::ReceiptFork,
                            format!(
                                "receipt {i} is a second, different receipt with seq {}",
                                c.seq
                            ),
                        ),
                        None => fail(
                            Reason::ReceiptReordered,
                            format!("receipt {i} has seq {} after seq {}", c.seq, p.seq),
                        ),
                    };
                }
                // Not a range scan: a forged jump to seq 2^63 must not loop for ever.
                let later = receipts[i + 1..]
                    .iter()
                    .map(|r| view(r).0.seq)
                    .filter(|s| (p.seq + 1..c.seq).contains(s))
                    .min();
                return match later {
                    Some(s) => fail(
                        Reason::ReceiptReordered,
                        format!(
                            "receipt {i} has seq {} after seq {}; seq {s} comes later in the log",
                            c.seq, p.seq
                        ),
                    ),
                    None => fail(
                        Reason::ReceiptGap,
                        format!(
                            "receipt {i} has seq {} after seq {}: {} receipt(s) missing",
                            c.seq,
                            p.seq,
                            c.seq - p.seq - 1
                        ),
                    ),
                };
            }
            if &c.prev_receipt_sha256 != p_sha256 {
                return fail(
                    Reason::ReceiptFork,
                    format!(
                        "receipt {i} (seq {}) follows {}, not the receipt before it in the log ({})",
                        c.seq,
                        hex::encode(c.prev_receipt_sha256),
                        hex::encode(p_sha256)
                    ),
                );
            }
        }
        seen.insert(c.seq, *sha256);
        add_totals(&mut summary, c).map_err(|e| (i, e))?;
        prev = Some((c, sha256));
    }
    Ok(summary)
}

/// Add one receipt's counts to a log's totals, overall and in its hour.
fn add_totals(summary: &mut ChainSummary, c: &ReceiptClaims) -> Result<(), Rejection> {
    add(&mut summary.jobs, 1)?;
    add(&mut summary.prompt_tokens, c.prompt_tokens)?;
    add(&mut summary.output_tokens, c.output_tokens)?;
    add(&mut summary.device_ms, c.device_ms)?;
    let billed = c.device_ms.div_ceil(1000);
    add(&mut summary.billed_device_seconds, billed)?;
    let hour = c.wall_start_ms / 3_600_000 * 3600;
    let h = summary.per_hour.entry(hour).or_default();
    add(&mut h.jobs, 1)?;
    add(&mut h.prompt_tokens, c.prompt_tokens)?;
    add(&mut h.output_tokens, c.output_tokens)?;
    add(&mut h.device_ms, c.device_ms)?;
    add(&mut h.billed_device_seconds, billed)?;
    summary.last_seq = c.seq;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::rand::SystemRandom;
    use crate::crypto::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use proptest::prelude::*;

    const EVIDENCE: [u8; 32] = [5; 32];

    type Entry = (Value, Value);

    fn key(seed: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
    }

    fn bound(key: &Ed25519KeyPair) -> ReceiptKey {
        ReceiptKey {
            alg: COSE_ALG_EDDSA,
            public_key: key.public_key().as_ref().to_vec(),
        }
    }

    pub(crate) fn claims(seq: u64, prev: [u8; 32]) -> ReceiptClaims {
        ReceiptClaims {
            job_id: [seq as u8; 16],
            issued_at: 1_790_000_000 + seq,
            model_digest: [1; 32],
            request_sha256: [2; 32],
            response_sha256: [3; 32],
            prompt_tokens: 812,
            output_tokens: 256,
            queue_wait_ms: 12,
            // 20 minutes apart: three jobs per UTC hour.
            wall_start_ms: 1_789_995_600_000 + seq * 1_200_000,
            wall_end_ms: 1_789_995_600_900 + seq * 1_200_000,
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
            evidence_digest: EVIDENCE,
            seq,
            prev_receipt_sha256: prev,
            runtime_instance: [6; 16],
        }
    }

    /// A log of `n` receipts from seq 0, signed by `key`, each claims set passed through
    /// `edit` first.
    fn log_with(
        n: u64,
        key: &Ed25519KeyPair,
        edit: impl Fn(&mut ReceiptClaims),
    ) -> Vec<(Vec<u8>, VerifiedReceipt)> {
        let mut out = Vec::new();
        let mut prev = [0u8; 32];
        for seq in 0..n {
            let mut c = claims(seq, prev);
            edit(&mut c);
            let bytes = sign(&c, key);
            let v = verify(&bytes, &bound(key), &c.evidence_digest).unwrap();
            prev = v.sha256();
            out.push((bytes, v));
        }
        out
    }

    fn log(n: u64) -> Vec<VerifiedReceipt> {
        log_with(n, &key(9), |_| {})
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    fn reason<T: std::fmt::Debug>(r: Result<T, Rejection>) -> Reason {
        r.unwrap_err().reason
    }

    fn with_payload(receipt: &[u8], payload: Vec<u8>) -> Vec<u8> {
        let mut s = CoseSign1::from_tagged_slice(receipt).unwrap();
        s.payload = Some(payload);
        s.to_tagged_vec().unwrap()
    }

    fn sign_raw(payload: Vec<u8>, key: &Ed25519KeyPair) -> Vec<u8> {
        sign_payload(payload, iana::Algorithm::EdDSA, |tbs| {
            key.sign(tbs).as_ref().to_vec()
        })
    }

    #[test]
    fn round_trip() {
        let k = key(9);
        let c = claims(0, [0; 32]);
        let bytes = sign(&c, &k);
        assert_eq!(bytes[0], 0xd2, "written tagged");
        assert_eq!(bytes, sign(&c, &k), "signing is deterministic");
        let v = verify(&bytes, &bound(&k), &EVIDENCE).unwrap();
        assert_eq!(v.claims(), &c);
        assert_eq!(v.alg(), COSE_ALG_EDDSA);
        assert_eq!(v.sha256(), crate::x509::sha256(&bytes));
        // Untagged is accepted and has the same hash (that of the tagged form).
        let untagged = verify(&bytes[1..], &bound(&k), &EVIDENCE).unwrap();
        assert_eq!(untagged, v);
        assert_eq!(ReceiptClaims::from_cbor(&c.to_cbor()).unwrap(), c);
        let json = serde_json::to_value(v.claims()).unwrap();
        assert_eq!(json["prompt_tokens"], 812);
        assert_eq!(json["job_id"], "00".repeat(16));
    }

    #[test]
    fn claim_keys_are_registered_or_private_in_canonical_order() {
        assert_eq!(&keys::ORDER[..2], &[6, 7], "iat and cti, as registered");
        assert!(keys::ORDER[2..].iter().all(|&k| k < -65536));
        let Value::Map(entries) = ciborium::from_reader(&claims(1, [8; 32]).to_cbor()[..]).unwrap()
        else {
            panic!("a map")
        };
        let encoded: Vec<Vec<u8>> = entries
            .iter()
            .map(|(k, _)| {
                let mut b = Vec::new();
                ciborium::into_writer(k, &mut b).unwrap();
                b
            })
            .collect();
        assert!(
            encoded.windows(2).all(|w| w[0] < w[1]),
            "RFC 8949 4.2.1 order"
        );
        assert_eq!(entries.len(), keys::ORDER.len());
    }

    #[test]
    fn es256_receipts_verify_with_an_es256_key_only() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let ec =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap();
        let c = claims(0, [0; 32]);
        let bytes = sign_payload(c.to_cbor(), iana::Algorithm::ES256, |tbs| {
            ec.sign(&rng, tbs).unwrap().as_ref().to_vec()
        });
        let es_key = ReceiptKey {
            alg: COSE_ALG_ES256,
            public_key: ec.public_key().as_ref().to_vec(),
        };
        assert_eq!(verify(&bytes, &es_key, &EVIDENCE).unwrap().claims(), &c);
        // An ES256 receipt checked against an EdDSA key: algorithm substitution.
        assert_eq!(
            reason(verify(&bytes, &bound(&key(9)), &EVIDENCE)),
            Reason::ReceiptSignatureInvalid
        );
        // And an EdDSA receipt against the ES256 key.
        let ed = sign(&c, &key(9));
        assert_eq!(
            reason(verify(&ed, &es_key, &EVIDENCE)),
            Reason::ReceiptSignatureInvalid
        );
    }

    #[test]
    fn unknown_algorithms_are_unsupported() {
        let c = claims(0, [0; 32]);
        let es384 = sign_payload(c.to_cbor(), iana::Algorithm::ES384, |_| vec![0; 96]);
        assert_eq!(
            reason(verify(&es384, &bound(&key(9)), &EVIDENCE)),
            Reason::UnsupportedAlgorithm
        );
        let mut odd_key = bound(&key(9));
        odd_key.alg = -35;
        assert_eq!(
            reason(verify(&sign(&c, &key(9)), &odd_key, &EVIDENCE)),
            Reason::UnsupportedAlgorithm
        );
    }

    #[test]
    fn tampered_usage_breaks_the_signature() {
        let k = key(9);
        let c = claims(3, [8; 32]);
        let bytes = sign(&c, &k);
        let edits: [fn(&mut ReceiptClaims); 5] = [
            |c| c.prompt_tokens = 8120,
            |c| c.output_tokens += 1,
            |c| c.device_ms = 87,
            |c| c.device_share_ppm = 1_000_000,
            |c| c.audited = false,
        ];
        for edit in edits {
            let mut forged = c.clone();
            edit(&mut forged);
            let tampered = with_payload(&bytes, forged.to_cbor());
            assert_eq!(
                reason(verify(&tampered, &bound(&k), &EVIDENCE)),
                Reason::ReceiptSignatureInvalid
            );
        }
        // A flipped signature bit.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            reason(verify(&flipped, &bound(&k), &EVIDENCE)),
            Reason::ReceiptSignatureInvalid
        );
    }

    #[test]
    fn direct_encodings_equal_cosets() {
        for n in [0usize, 23, 24, 255, 256, 70_000] {
            let payload = vec![7u8; n];
            let sign1 = CoseSign1Builder::new()
                .protected(protected_header(iana::Algorithm::EdDSA))
                .payload(payload.clone())
                .signature(vec![9; 64])
                .build();
            let protected = protected_bytes_cached(iana::Algorithm::EdDSA);
            assert_eq!(
                canonical_envelope(protected, &payload, &[9; 64]),
                sign1.clone().to_tagged_vec().unwrap()
            );
            assert_eq!(sig_structure(protected, &payload), sign1.tbs_data(&[]));
        }
        assert_eq!(
            protected_bytes_cached(iana::Algorithm::ES256),
            protected_bytes(iana::Algorithm::ES256)
        );
    }

    #[test]
    fn verify_many_checks_every_signature_in_batches_and_names_the_bad_one() {
        let k = key(9);
        let log = log_with(1100, &k, |_| {});
        let bytes: Vec<Vec<u8>> = log.iter().map(|(b, _)| b.clone()).collect();
        let all = verify_many(&bytes, &bound(&k), &EVIDENCE, &[6; 16]).unwrap();
        assert_eq!(all, log.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
        // A flipped signature bit in the second batch: found and named by its index.
        let mut bad = bytes.clone();
        *bad[1050].last_mut().unwrap() ^= 1;
        let (i, e) = verify_many(&bad, &bound(&k), &EVIDENCE, &[6; 16]).unwrap_err();
        assert_eq!((i, e.reason), (1050, Reason::ReceiptSignatureInvalid));
        let mut first = bytes.clone();
        *first[3].last_mut().unwrap() ^= 1;
        let (i, e) = verify_many(&first, &bound(&k), &EVIDENCE, &[6; 16]).unwrap_err();
        assert_eq!((i, e.reason), (3, Reason::ReceiptSignatureInvalid));
        // Signed by another key, in the last, short batch.
        let mut other = bytes.clone();
        other[1099] = sign(log[1099].1.claims(), &key(10));
        let (i, e) = verify_many(&other, &bound(&k), &EVIDENCE, &[6; 16]).unwrap_err();
        assert_eq!((i, e.reason), (1099, Reason::ReceiptSignatureInvalid));
        // Another instance, and other evidence, are said before any signature.
        let (i, e) = verify_many(&bytes, &bound(&k), &EVIDENCE, &[7; 16]).unwrap_err();
        assert_eq!((i, e.reason), (0, Reason::ReceiptInstanceMismatch));
        let (i, e) = verify_many(&bytes, &bound(&k), &[0; 32], &[6; 16]).unwrap_err();
        assert_eq!((i, e.reason), (0, Reason::ReceiptKeyNotBound));
        // A weak (small-order) key is refused outright.
        let weak = ReceiptKey {
            alg: COSE_ALG_EDDSA,
            public_key: {
                let mut identity = vec![0u8; 32];
                identity[0] = 1;
                identity
            },
        };
        let (_, e) = verify_many(&bytes, &weak, &EVIDENCE, &[6; 16]).unwrap_err();
        assert_eq!(e.reason, Reason::ReceiptSignatureInvalid);
        assert!(verify_many::<Vec<u8>>(&[], &bound(&k), &EVIDENCE, &[6; 16])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_receipt_signed_by_another_key_is_refused() {
        let bytes = sign(&claims(0, [0; 32]), &key(10));
        assert_eq!(
            reason(verify(&bytes, &bound(&key(9)), &EVIDENCE)),
            Reason::ReceiptSignatureInvalid
        );
        let mut short = bound(&key(9));
        short.public_key.pop();
        assert_eq!(
            reason(verify(&bytes, &short, &EVIDENCE)),
            Reason::ReceiptSignatureInvalid
        );
    }

    #[test]
    fn a_receipt_naming_other_evidence_is_not_bound() {
        let k = key(9);
        let bytes = sign(&claims(0, [0; 32]), &k);
        assert_eq!(
            reason(verify(&bytes, &bound(&k), &[0xee; 32])),
            Reason::ReceiptKeyNotBound
        );
    }

    #[test]
    fn malformed_receipts() {
        let k = key(9);
        let c = claims(1, [8; 32]);
        let bytes = sign(&c, &k);
        let b = bound(&k);
        let check = |r: &[u8], what: &str| {
            assert_eq!(
                reason(verify(r, &b, &EVIDENCE)),
                Reason::ReceiptMalformed,
                "{what}"
            )
        };
        for n in 0..bytes.len() {
            check(&bytes[..n], &format!("truncated to {n}"));
        }
        check(b"{\"not\": \"cose\"}", "JSON");
        check(&[0xa0], "an empty CBOR map");
        check(&[0xd2, 0x80], "a tagged empty array");
        check(
            &[0xd8, 0x12, 0x84, 0x40, 0xa0, 0x40, 0x40],
            "tag 18 non-shortest",
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        check(&trailing, "trailing byte");
        let mut indefinite = bytes.clone();
        assert_eq!(indefinite[1], 0x84);
        indefinite[1] = 0x9f;
        indefinite.push(0xff);
        check(&indefinite, "indefinite-length envelope");
        check(&[0; 4096], "oversized");

        // An unknown claim key, validly signed.
        let Value::Map(mut entries) = ciborium::from_reader(&c.to_cbor()[..]).unwrap() else {
            panic!()
        };
        entries.push((int(-65600), uint(1)));
        let mut extra = Vec::new();
        ciborium::into_writer(&Value::Map(entries.clone()), &mut extra).unwrap();
        check(&sign_raw(extra, &k), "unknown claim key");
        // A missing claim, a reordered map, a registered claim we do not use (exp).
        let mut missing = Vec::new();
        ciborium::into_writer(&Value::Map(entries[1..20].to_vec()), &mut missing).unwrap();
        check(&sign_raw(missing, &k), "missing iat");
        let mut swapped = entries[..20].to_vec();
        swapped.swap(0, 1);
        let mut reordered = Vec::new();
        ciborium::into_writer(&Value::Map(swapped), &mut reordered).unwrap();
        check(&sign_raw(reordered, &k), "keys out of order");
        let mut exp = entries[..20].to_vec();
        exp.insert(0, (int(4), uint(1)));
        let mut with_exp = Vec::new();
        ciborium::into_writer(&Value::Map(exp), &mut with_exp).unwrap();
        check(&sign_raw(with_exp, &k), "exp claim");

        // Non-canonical: prompt tokens (812) as a four-byte integer, validly signed.
        let payload = c.to_cbor();
        let at = payload
            .windows(8)
            .position(|w| w == [0x3a, 0x00, 0x01, 0x00, 0x04, 0x19, 0x03, 0x2c])
            .unwrap();
        let mut long = payload[..at + 5].to_vec();
        long.extend_from_slice(&[0x1a, 0x00, 0x00, 0x03, 0x2c]);
        long.extend_from_slice(&payload[at + 8..]);
        check(&sign_raw(long, &k), "non-shortest integer");
        // A float stored as double precision.
        let mut long_float = Vec::new();
        let mut e2 = entries[..20].to_vec();
        e2[13].1 = Value::Map(vec![
            (uint(1), Value::Float(0.7)),
            (uint(2), Value::Float(0.95f32.into())),
            (uint(3), uint(40)),
            (uint(4), uint(256)),
            (uint(5), Value::Float(1.1f32.into())),
            (uint(6), uint(42)),
        ]);
        ciborium::into_writer(&Value::Map(e2), &mut long_float).unwrap();
        check(&sign_raw(long_float, &k), "temperature not an f32");

        // Wrong types and sizes.
        let bad_claims: [fn(&mut [Entry]); 5] = [
            |e| e[1].1 = Value::Bytes(vec![0; 15]),
            |e| e[3].1 = Value::Bytes(vec![0; 33]),
            |e| e[6].1 = Value::Text("812".into()),
            |e| e[15].1 = uint(1),
            |e| e[12].1 = uint(u64::from(u32::MAX) + 1),
        ];
        for edit in bad_claims {
            let mut e = entries[..20].to_vec();
            edit(&mut e);
            let mut p = Vec::new();
            ciborium::into_writer(&Value::Map(e), &mut p).unwrap();
            check(&sign_raw(p, &k), "wrong type or size");
        }

        // Inconsistent values.
        let inconsistent: [fn(&mut ReceiptClaims); 4] = [
            |c| c.device_share_ppm = DEVICE_SHARE_FULL + 1,
            |c| c.wall_end_ms = c.wall_start_ms - 1,
            |c| c.seq = 0,
            |c| c.prev_receipt_sha256 = [0; 32],
        ];
        for edit in inconsistent {
            let mut bad = c.clone();
            edit(&mut bad);
            check(&sign(&bad, &k), "inconsistent claims");
        }

        // Headers other than exactly {alg, content type}.
        let extra_protected = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::EdDSA)
                    .content_type(CONTENT_TYPE.into())
                    .key_id(b"k".to_vec())
                    .build(),
            )
            .payload(c.to_cbor())
            .create_signature(&[], |tbs| k.sign(tbs).as_ref().to_vec())
            .build()
            .to_tagged_vec()
            .unwrap();
        check(&extra_protected, "extra protected header");
        let other_type = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::EdDSA)
                    .content_type("application/cbor".into())
                    .build(),
            )
            .payload(c.to_cbor())
            .create_signature(&[], |tbs| k.sign(tbs).as_ref().to_vec())
            .build()
            .to_tagged_vec()
            .unwrap();
        check(&other_type, "another content type");
        let mut s = CoseSign1::from_tagged_slice(&bytes).unwrap();
        s.unprotected = HeaderBuilder::new().key_id(b"k".to_vec()).build();
        check(&s.to_tagged_vec().unwrap(), "unprotected header");
        let mut s = CoseSign1::from_tagged_slice(&bytes).unwrap();
        s.payload = None;
        check(&s.to_tagged_vec().unwrap(), "detached payload");

        // A future version.
        let mut v2 = entries[..20].to_vec();
        v2[2].1 = uint(2);
        let mut p = Vec::new();
        ciborium::into_writer(&Value::Map(v2), &mut p).unwrap();
        assert_eq!(
            reason(verify(&sign_raw(p, &k), &b, &EVIDENCE)),
            Reason::UnsupportedVersion
        );
    }

    #[test]
    fn a_whole_log_adds_up() {
        let log = log(7);
        let s = verify_chain(&log).unwrap();
        assert_eq!((s.jobs, s.first_seq, s.last_seq), (7, 0, 6));
        assert_eq!(
            (s.prompt_tokens, s.output_tokens, s.device_ms),
            (7 * 812, 7 * 256, 7 * 870)
        );
        assert_eq!(s.runtime_instance, [6; 16]);
        assert_eq!(s.evidence_digest, EVIDENCE);
        // Wall starts 20 minutes apart from the top of an hour: 3 + 3 + 1.
        let hours: Vec<(u64, u64)> = s.per_hour.iter().map(|(h, t)| (*h, t.jobs)).collect();
        assert_eq!(
            hours,
            vec![(1_789_995_600, 3), (1_789_999_200, 3), (1_790_002_800, 1)]
        );
        assert_eq!(s.per_hour[&1_789_995_600].output_tokens, 3 * 256);
        assert_eq!(s.per_hour[&1_789_995_600].device_ms, 3 * 870);
        // Billed per second: 870 ms is one second per job.
        assert_eq!(s.billed_device_seconds, 7);
        assert_eq!(s.per_hour[&1_789_995_600].billed_device_seconds, 3);
        // A log may start after seq 0 (an earlier part was archived).
        let tail = verify_chain(&log[3..]).unwrap();
        assert_eq!((tail.jobs, tail.first_seq, tail.last_seq), (4, 3, 6));
        assert_eq!(verify_chain(&log[..1]).unwrap().jobs, 1);
        assert_eq!(reason(verify_chain(&[])), Reason::ReceiptMalformed);
    }

    #[test]
    fn a_removed_receipt_is_a_gap() {
        let mut log = log(5);
        log.remove(2);
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptGap);
        let mut log = self::log(6);
        log.drain(1..4);
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptGap);
        // A jump to a huge sequence number is reported at once (no scan of the range).
        let k = key(9);
        let mut log = self::log(3);
        let far = ReceiptClaims {
            seq: u64::MAX - 1,
            ..claims(3, [8; 32])
        };
        log.push(verify(&sign(&far, &k), &bound(&k), &EVIDENCE).unwrap());
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptGap);
        // A log cut short at its end is consistent on its own: the caller compares
        // `last_seq` with the runtime's published count.
        let log = self::log(5);
        assert_eq!(verify_chain(&log[..3]).unwrap().last_seq, 2);
    }

    #[test]
    fn a_repeated_receipt_is_a_duplicate() {
        let mut log = log(5);
        log.insert(3, log[2].clone());
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptDuplicate);
        let mut again = self::log(5);
        again.push(again[1].clone());
        assert_eq!(reason(verify_chain(&again)), Reason::ReceiptDuplicate);
    }

    #[test]
    fn reordered_receipts() {
        let mut log = log(5);
        log.swap(1, 2);
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptReordered);
        let mut log = self::log(5);
        log.reverse();
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptReordered);
        let mut log = self::log(5);
        let last = log.pop().unwrap();
        log.insert(0, last);
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptReordered);
    }

    #[test]
    fn two_receipts_for_one_place_are_a_fork() {
        let k = key(9);
        let honest = log_with(4, &k, |_| {});
        // Another job signed as seq 2 after the same seq 1.
        let other = claims(2, honest[1].1.sha256());
        let other = ReceiptClaims {
            output_tokens: 9999,
            ..other
        };
        let other = verify(&sign(&other, &k), &bound(&k), &EVIDENCE).unwrap();
        let mut log: Vec<VerifiedReceipt> = honest.iter().map(|(_, v)| v.clone()).collect();
        log.insert(3, other.clone());
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptFork);
        // The other seq 2 in place of the honest one: seq 3 no longer links to it.
        let mut log: Vec<VerifiedReceipt> = honest.iter().map(|(_, v)| v.clone()).collect();
        log[2] = other;
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptFork);
    }

    #[test]
    fn a_receipt_from_another_runtime_instance_is_refused() {
        let k = key(9);
        let mut log = log(4);
        let elsewhere = log_with(4, &k, |c| c.runtime_instance = [0x77; 16]);
        // Instance B's seq 2 replayed into instance A's log.
        log[2] = elsewhere[2].1.clone();
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptInstanceMismatch);
        // Same instance id, other evidence (a re-attested key spliced in).
        let mut log = self::log(4);
        let other_evidence = log_with(4, &k, |c| c.evidence_digest = [0x55; 32]);
        log.push(other_evidence[3].1.clone());
        assert_eq!(reason(verify_chain(&log)), Reason::ReceiptInstanceMismatch);
    }

    #[test]
    fn mutated_receipts_never_panic_and_never_verify_as_something_else() {
        let k = key(9);
        let b = bound(&k);
        let bytes = sign(&claims(1, [8; 32]), &k);
        let original = verify(&bytes, &b, &EVIDENCE).unwrap();
        for m in crate::testing::mutants(&bytes, 0x9e37_79b9_7f4a_7c15, 20_000, 5) {
            if let Ok(v) = verify(&m, &b, &EVIDENCE) {
                assert_eq!(v, original, "a mutation verified as another receipt");
            }
        }
    }

    // ---- the direct parse and encoding against the general ones ----

    /// The claims encoded through `ciborium::Value`, as `to_cbor` did before it wrote them
    /// directly: the reference the direct encoding must equal.
    fn reference_cbor(c: &ReceiptClaims) -> Vec<u8> {
        use keys::*;
        let map = vec![
            (int(IAT), uint(c.issued_at)),
            (int(CTI), bytes(&c.job_id)),
            (int(VERSION), uint(RECEIPT_VERSION)),
            (int(MODEL_DIGEST), bytes(&c.model_digest)),
            (int(REQUEST_SHA256), bytes(&c.request_sha256)),
            (int(RESPONSE_SHA256), bytes(&c.response_sha256)),
            (int(PROMPT_TOKENS), uint(c.prompt_tokens)),
            (int(OUTPUT_TOKENS), uint(c.output_tokens)),
            (int(QUEUE_WAIT_MS), uint(c.queue_wait_ms)),
            (int(WALL_START_MS), uint(c.wall_start_ms)),
            (int(WALL_END_MS), uint(c.wall_end_ms)),
            (int(DEVICE_MS), uint(c.device_ms)),
            (int(DEVICE_SHARE_PPM), uint(c.device_share_ppm.into())),
            (int(SAMPLING), sampling_to_cbor(&c.sampling)),
            (int(ACTIVATION_COMMITMENT), bytes(&c.activation_commitment)),
            (int(AUDITED), Value::Bool(c.audited)),
            (int(EVIDENCE_DIGEST), bytes(&c.evidence_digest)),
            (int(SEQ), uint(c.seq)),
            (int(PREV_RECEIPT_SHA256), bytes(&c.prev_receipt_sha256)),
            (int(RUNTIME_INSTANCE), bytes(&c.runtime_instance)),
        ];
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out).unwrap();
        out
    }

    /// The direct decoder accepts only what the general parse accepts, as the same claims.
    fn assert_decoders_agree(cbor: &[u8]) {
        if let Some(fast) = ReceiptClaims::from_canonical(cbor) {
            assert_eq!(
                ReceiptClaims::from_cbor_general(cbor),
                Ok(fast),
                "the direct decoder accepted what the general parse does not: {}",
                hex::encode(cbor)
            );
        }
    }

    /// The claims of `claims(1, ..)` with the temperature's encoded bytes replaced.
    fn with_temperature_bytes(float: &[u8]) -> Vec<u8> {
        let c = ReceiptClaims {
            sampling: SamplingParams {
                temperature: 0.5,
                ..claims(1, [8; 32]).sampling
            },
            ..claims(1, [8; 32])
        };
        let payload = c.to_cbor();
        // The sampling map's head, key 1, then 0.5 as a half (0x3800).
        let at = payload
            .windows(5)
            .position(|w| w == [0xa6, 0x01, 0xf9, 0x38, 0x00])
            .unwrap();
        [&payload[..at + 2], float, &payload[at + 5..]].concat()
    }

    /// Every half-precision float, as a temperature: the direct decoder takes each finite
    /// one as the general parse does, and refuses the rest to it.
    #[test]
    fn every_half_float_decodes_as_the_general_parse_does() {
        let mut accepted = 0;
        for h in 0..=u16::MAX {
            let [a, b] = h.to_be_bytes();
            let p = with_temperature_bytes(&[CBOR_F16, a, b]);
            assert_decoders_agree(&p);
            let general = ReceiptClaims::from_cbor_general(&p);
            let fast = ReceiptClaims::from_canonical(&p);
            if let Ok(c) = &general {
                if c.sampling.temperature.is_finite() {
                    assert_eq!(fast.as_ref(), Some(c), "half {h:#06x}");
                    accepted += 1;
                }
            }
        }
        // Halves whose value has a shorter form: none (a half is the shortest float). The
        // finite ones: all but the 2 * 1024 with an all-ones exponent.
        assert_eq!(accepted, 65_536 - 2048);
        // A double is never the shortest form of an f32 value.
        let p = with_temperature_bytes(&[0xfb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ReceiptClaims::from_canonical(&p), None);
        assert_eq!(
            reason(ReceiptClaims::from_cbor(&p)),
            Reason::ReceiptMalformed
        );
    }

    #[test]
    fn the_direct_parse_agrees_with_the_general_one_on_mutants() {
        let k = key(9);
        let bytes = sign(&claims(1, [8; 32]), &k);
        let payload = claims(1, [8; 32]).to_cbor();
        let same =
            |a: &Result<Parsed<'_>, Rejection>, b: &Result<Parsed<'_>, Rejection>| match (a, b) {
                (Ok(a), Ok(b)) => {
                    (
                        a.alg,
                        a.protected,
                        &a.payload,
                        &a.signature,
                        &a.claims,
                        a.sha256,
                    ) == (
                        b.alg,
                        b.protected,
                        &b.payload,
                        &b.signature,
                        &b.claims,
                        b.sha256,
                    )
                }
                (Err(a), Err(b)) => a == b,
                _ => false,
            };
        for tagged in [&bytes[..], &bytes[1..]] {
            assert!(split_canonical(tagged).is_some());
            // A genuine receipt takes the direct path (borrowed, not rebuilt by coset).
            assert!(matches!(parse(tagged).unwrap().payload, Cow::Borrowed(_)));
            assert!(same(&parse(tagged), &parse_general(tagged)));
            for m in crate::testing::mutants(tagged, 0x2545_f491_4f6c_dd1d, 20_000, 4) {
                assert!(
                    same(&parse(&m), &parse_general(&m)),
                    "the parses disagree on {}",
                    hex::encode(&m)
                );
            }
        }
        for m in crate::testing::mutants(&payload, 0x9e37_79b9_7f4a_7c15, 20_000, 3) {
            assert_decoders_agree(&m);
        }
    }

    /// Claims with integers of every size (each u64 shifted right by a random amount).
    fn arb_claims() -> impl Strategy<Value = ReceiptClaims> {
        let n = || any::<u64>().prop_map(|v| v >> (v % 64));
        (
            proptest::collection::vec(n(), 12),
            any::<[u32; 3]>(),
            any::<[u8; 32]>(),
            any::<[u8; 16]>(),
            any::<bool>(),
        )
            .prop_map(|(v, floats, digest, id, audited)| ReceiptClaims {
                job_id: id,
                issued_at: v[0],
                model_digest: digest,
                request_sha256: [digest[0]; 32],
                response_sha256: [digest[1]; 32],
                prompt_tokens: v[1],
                output_tokens: v[2],
                queue_wait_ms: v[3],
                wall_start_ms: v[4],
                wall_end_ms: v[4].saturating_add(v[5]),
                device_ms: v[6],
                device_share_ppm: (v[7] % 1_000_001) as u32,
                sampling: SamplingParams {
                    temperature: f32::from_bits(floats[0]),
                    top_p: f32::from_bits(floats[1] >> (floats[1] % 32)),
                    top_k: v[8] as u32,
                    max_tokens: (v[9] >> 32) as u32,
                    repetition_penalty: f32::from_bits(floats[2]),
                    seed: v[10],
                },
                activation_commitment: [digest[2]; 32],
                audited,
                evidence_digest: [digest[3]; 32],
                seq: v[11],
                prev_receipt_sha256: if v[11] == 0 {
                    [0; 32]
                } else {
                    [digest[4] | 1; 32]
                },
                runtime_instance: id,
            })
    }

    // ---- chain-authenticated log verification ----

    const INSTANCE: [u8; 16] = [6; 16];

    fn bytes_of(log: &[(Vec<u8>, VerifiedReceipt)]) -> Vec<Vec<u8>> {
        log.iter().map(|(b, _)| b.clone()).collect()
    }

    /// `verify_log` in chain mode and in every-signature mode: (index, reason) of each.
    fn both_modes(bytes: &[Vec<u8>], k: &Ed25519KeyPair) -> [(usize, Reason); 2] {
        [false, true].map(|every| {
            let (i, e) = verify_log(bytes, &bound(k), &EVIDENCE, &INSTANCE, every).unwrap_err();
            (i, e.reason)
        })
    }

    /// A log of `n` receipts whose receipt `bad` (not the last) has a signature the key's
    /// holder broke on purpose and still chained into the next receipt.
    fn log_with_a_chained_bad_signature(n: u64, bad: u64, k: &Ed25519KeyPair) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut prev = [0u8; 32];
        for seq in 0..n {
            let mut b = sign(&claims(seq, prev), k);
            if seq == bad {
                *b.last_mut().unwrap() ^= 1;
            }
            prev = crate::x509::sha256(&b);
            out.push(b);
        }
        out
    }

    #[test]
    fn chain_mode_checks_the_signatures_the_chain_needs() {
        let k = key(9);
        let log = log_with(2100, &k, |_| {});
        let bytes = bytes_of(&log);
        let expected: Vec<VerifiedReceipt> = log.iter().map(|(_, v)| v.clone()).collect();
        let chain = verify_log(&bytes, &bound(&k), &EVIDENCE, &INSTANCE, false).unwrap();
        assert_eq!(chain.receipts, expected);
        // Receipts 1023 and 2047 (the checkpoints) and 2099 (the last).
        assert_eq!(
            chain.signatures,
            SignatureTotals {
                every_signature: false,
                verified: 3,
                chain_authenticated: 2097
            }
        );
        let summary = chain.chain.clone().unwrap();
        assert_eq!(
            (summary.jobs, summary.first_seq, summary.last_seq),
            (2100, 0, 2099)
        );
        let every = verify_log(&bytes, &bound(&k), &EVIDENCE, &INSTANCE, true).unwrap();
        assert_eq!(every.receipts, expected);
        assert_eq!(every.chain, chain.chain);
        assert_eq!(
            every.signatures,
            SignatureTotals {
                every_signature: true,
                verified: 2100,
                chain_authenticated: 0
            }
        );
        // One receipt: its own signature. None: nothing to check.
        let one = verify_log(&bytes[..1], &bound(&k), &EVIDENCE, &INSTANCE, false).unwrap();
        assert_eq!(
            (one.signatures.verified, one.signatures.chain_authenticated),
            (1, 0)
        );
        let none = verify_log::<Vec<u8>>(&[], &bound(&k), &EVIDENCE, &INSTANCE, false).unwrap();
        assert_eq!((none.receipts.len(), none.chain), (0, None));
        // Exactly 1,024 receipts: the last is the only checkpoint.
        let exact = verify_log(&bytes[..1024], &bound(&k), &EVIDENCE, &INSTANCE, false).unwrap();
        assert_eq!(exact.signatures.verified, 1);
    }

    #[test]
    fn a_forged_middle_receipt_is_refused_in_both_modes_and_named() {
        let k = key(9);
        let bytes = bytes_of(&log_with(2100, &k, |_| {}));
        for at in [5usize, 1023, 1500] {
            // Re-signed by another key, claims unchanged.
            let mut other_key = bytes.clone();
            other_key[at] = sign(
                &verify(&bytes[at], &bound(&k), &EVIDENCE).unwrap().claims,
                &key(10),
            );
            assert_eq!(
                both_modes(&other_key, &k),
                [(at, Reason::ReceiptSignatureInvalid); 2],
                "re-signed at {at}"
            );
            // Claims altered (more output tokens), the structure and signature kept.
            let mut altered = bytes.clone();
            let mut c = verify(&bytes[at], &bound(&k), &EVIDENCE).unwrap().claims;
            c.output_tokens += 1000;
            altered[at] = with_payload(&bytes[at], c.to_cbor());
            assert_eq!(
                both_modes(&altered, &k),
                [(at, Reason::ReceiptSignatureInvalid); 2],
                "altered at {at}"
            );
            // Forged with the link kept *and* the next receipt's link redone to match: the
            // next receipt's signature then breaks (its payload changed).
            let mut relinked = altered.clone();
            let mut next = verify(&bytes[at + 1], &bound(&k), &EVIDENCE)
                .unwrap()
                .claims;
            next.prev_receipt_sha256 = crate::x509::sha256(&altered[at]);
            relinked[at + 1] = with_payload(&bytes[at + 1], next.to_cbor());
            assert_eq!(
                both_modes(&relinked, &k),
                [(at, Reason::ReceiptSignatureInvalid); 2],
                "relinked at {at}"
            );
        }
    }

    #[test]
    fn a_bad_last_signature_is_refused() {
        let k = key(9);
        for n in [1u64, 7, 2100] {
            let mut bytes = bytes_of(&log_with(n, &k, |_| {}));
            let last = bytes.len() - 1;
            *bytes[last].last_mut().unwrap() ^= 1;
            assert_eq!(
                both_modes(&bytes, &k),
                [(last, Reason::ReceiptSignatureInvalid); 2],
                "{n} receipts"
            );
        }
    }

    /// A flipped signature bit at a receipt whose signature chain mode does not check: its
    /// bytes, so its hash, changed, and the next receipt's link no longer holds. The chain
    /// alone would say `receipt_fork` at the next receipt; the log check authenticates
    /// what comes before the break and names the altered receipt itself.
    #[test]
    fn a_bad_signature_that_chain_mode_does_not_check_is_found_through_the_next_link() {
        let k = key(9);
        let bytes = bytes_of(&log_with(2100, &k, |_| {}));
        for at in [7usize, 1024, 2000] {
            let mut bad = bytes.clone();
            *bad[at].last_mut().unwrap() ^= 1;
            let parsed = parse_log(&bad, &bound(&k), &EVIDENCE, &INSTANCE).unwrap();
            let (i, e) = chain_summary(&parsed, |p| (&p.claims, &p.sha256)).unwrap_err();
            assert_eq!((i, e.reason), (at + 1, Reason::ReceiptFork));
            let (i, e) = verify_log(&bad, &bound(&k), &EVIDENCE, &INSTANCE, false).unwrap_err();
            assert_eq!((i, e.reason), (at, Reason::ReceiptSignatureInvalid));
            assert!(
                e.detail
                    .starts_with(&format!("receipt seq {at} signature does not verify")),
                "{}",
                e.detail
            );
            assert_eq!(
                both_modes(&bad, &k)[1],
                (at, Reason::ReceiptSignatureInvalid)
            );
        }
    }

    #[test]
    fn a_log_signed_entirely_by_another_key_is_refused_at_its_first_receipt() {
        let bytes = bytes_of(&log_with(2100, &key(10), |_| {}));
        assert_eq!(
            both_modes(&bytes, &key(9)),
            [(0, Reason::ReceiptSignatureInvalid); 2]
        );
    }

    /// The one kind of log the modes disagree on: a bad signature that the key's holder
    /// chained into a later, valid one. Chain mode accepts it as the key's statement;
    /// every-signature mode checks that signature and refuses it.
    #[test]
    fn every_signature_refuses_a_bad_signature_the_key_holder_chained() {
        let k = key(9);
        let bytes = log_with_a_chained_bad_signature(20, 5, &k);
        let chain = verify_log(&bytes, &bound(&k), &EVIDENCE, &INSTANCE, false).unwrap();
        assert_eq!(chain.receipts.len(), 20);
        assert_eq!(chain.signatures.verified, 1);
        let (i, e) = verify_log(&bytes, &bound(&k), &EVIDENCE, &INSTANCE, true).unwrap_err();
        assert_eq!((i, e.reason), (5, Reason::ReceiptSignatureInvalid));
        assert_eq!(
            verify_many(&bytes, &bound(&k), &EVIDENCE, &INSTANCE)
                .unwrap_err()
                .0,
            5
        );
        // At the end of the log nothing later vouches for it: refused in both modes.
        let bytes = log_with_a_chained_bad_signature(20, 19, &k);
        assert_eq!(
            both_modes(&bytes, &k),
            [(19, Reason::ReceiptSignatureInvalid); 2]
        );
    }

    #[test]
    fn broken_chains_and_claims_checks_are_the_same_in_both_modes() {
        let k = key(9);
        let bytes = bytes_of(&log_with(12, &k, |_| {}));
        let mut gap = bytes.clone();
        gap.remove(4);
        assert_eq!(both_modes(&gap, &k), [(4, Reason::ReceiptGap); 2]);
        let mut duplicate = bytes.clone();
        duplicate.insert(6, bytes[5].clone());
        assert_eq!(
            both_modes(&duplicate, &k),
            [(6, Reason::ReceiptDuplicate); 2]
        );
        let mut reordered = bytes.clone();
        reordered.swap(2, 3);
        assert_eq!(
            both_modes(&reordered, &k),
            [(2, Reason::ReceiptReordered); 2]
        );
        // Two receipts the key signed for one place: a fork, in both modes.
        let honest = log_with(4, &k, |_| {});
        let other = ReceiptClaims {
            output_tokens: 9999,
            ..claims(2, honest[1].1.sha256())
        };
        let mut fork = bytes_of(&honest);
        fork[2] = sign(&other, &k);
        assert_eq!(both_modes(&fork, &k), [(3, Reason::ReceiptFork); 2]);
        // Receipts whose signatures are never checked still have their claims checked.
        let mut elsewhere = bytes.clone();
        elsewhere[3] = bytes_of(&log_with(4, &k, |c| c.runtime_instance = [0x77; 16]))[3].clone();
        assert_eq!(
            both_modes(&elsewhere, &k),
            [(3, Reason::ReceiptInstanceMismatch); 2]
        );
        let mut other_evidence = bytes.clone();
        other_evidence[3] =
            bytes_of(&log_with(4, &k, |c| c.evidence_digest = [0x55; 32]))[3].clone();
        assert_eq!(
            both_modes(&other_evidence, &k),
            [(3, Reason::ReceiptKeyNotBound); 2]
        );
        let mut malformed = bytes.clone();
        malformed[8].pop();
        assert_eq!(
            both_modes(&malformed, &k),
            [(8, Reason::ReceiptMalformed); 2]
        );
        // A weak key is refused outright.
        let weak = ReceiptKey {
            alg: COSE_ALG_EDDSA,
            public_key: {
                let mut identity = vec![0u8; 32];
                identity[0] = 1;
                identity
            },
        };
        for every in [false, true] {
            let (i, e) = verify_log(&bytes, &weak, &EVIDENCE, &INSTANCE, every).unwrap_err();
            assert_eq!((i, e.reason), (0, Reason::ReceiptSignatureInvalid));
        }
    }

    #[test]
    fn es256_logs_are_chain_authenticated_too() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let ec =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap();
        let es_key = ReceiptKey {
            alg: COSE_ALG_ES256,
            public_key: ec.public_key().as_ref().to_vec(),
        };
        let mut prev = [0u8; 32];
        let bytes: Vec<Vec<u8>> = (0..6)
            .map(|seq| {
                let b = sign_payload(claims(seq, prev).to_cbor(), iana::Algorithm::ES256, |tbs| {
                    ec.sign(&rng, tbs).unwrap().as_ref().to_vec()
                });
                prev = crate::x509::sha256(&b);
                b
            })
            .collect();
        let log = verify_log(&bytes, &es_key, &EVIDENCE, &INSTANCE, false).unwrap();
        assert_eq!((log.receipts.len(), log.signatures.verified), (6, 1));
        let mut bad = bytes.clone();
        *bad[2].last_mut().unwrap() ^= 1;
        for every in [false, true] {
            let (i, e) = verify_log(&bad, &es_key, &EVIDENCE, &INSTANCE, every).unwrap_err();
            assert_eq!((i, e.reason), (2, Reason::ReceiptSignatureInvalid));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn the_direct_claims_encoding_is_cborium_s(c in arb_claims()) {
            let direct = c.to_cbor();
            prop_assert_eq!(&direct, &reference_cbor(&c));
            assert_decoders_agree(&direct);
            let finite = [c.sampling.temperature, c.sampling.top_p, c.sampling.repetition_penalty]
                .iter()
                .all(|f| f.is_finite());
            if finite {
                prop_assert_eq!(ReceiptClaims::from_canonical(&direct), Some(c.clone()));
            }
        }

        #[test]
        fn single_floats_decode_as_the_general_parse_does(bits in any::<u32>()) {
            let mut f = vec![CBOR_F32];
            f.extend_from_slice(&bits.to_be_bytes());
            assert_decoders_agree(&with_temperature_bytes(&f));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let b = bound(&key(9));
            prop_assert!(verify(&bytes, &b, &EVIDENCE).is_err());
            let mut tagged = vec![0xd2, 0x84];
            tagged.extend_from_slice(&bytes);
            prop_assert!(verify(&tagged, &b, &EVIDENCE).is_err());
            let _ = ReceiptClaims::from_cbor(&bytes);
        }
    }
}
