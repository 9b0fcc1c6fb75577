//! Transcripts: what an auditor needs to re-execute one job, sealed to the auditor's key.
//!
//! The runtime writes one transcript per audited job beside the receipt log, encrypted with
//! HPKE (RFC 9180) to the auditor key named in its attested runtime claims, so the operator
//! stores it but cannot read it. The receipt's activation-commitment claim is
//! [`Transcript::commitment`], SHA-256 of the transcript's canonical CBOR: that signed claim,
//! not the encryption, is what makes a decrypted transcript trustworthy (HPKE base mode does
//! not authenticate the sender: anyone holding the public key can seal), so an auditor always
//! follows [`open`] with [`check_against_receipt`].
//!
//! **Transcript** ([`Transcript::to_cbor`]): a map in RFC 8949 §4.2.1 core deterministic
//! encoding; every key mandatory, no others; anything that does not re-encode to the bytes
//! received is refused.
//!
//! | key | field | CBOR |
//! |---|---|---|
//! | 1 | format version ([`TRANSCRIPT_VERSION`]) | uint |
//! | 2 | job id (the receipt's `cti`) | bstr .size 16 |
//! | 3 | model digest | bstr .size 32 |
//! | 4 | prompt token ids (at most [`MAX_TOKENS`]) | [* uint .le u32] |
//! | 5 | output token ids (at most [`MAX_TOKENS`]) | [* uint .le u32] |
//! | 6 | sampling parameters, the receipt's map (claim -65548) | map |
//! | 7 | activation fingerprint, opaque (at most [`MAX_FINGERPRINT_LEN`] bytes) | bstr |
//! | 8 | the request body bytes the client sent (SHA-256 = the receipt's request hash; at most [`MAX_REQUEST_LEN`]) | bstr |
//! | 9 | how the job ended ([`JobEnd`]: 0 stop, 1 length, 2 timed out, 3 cancelled) | uint |
//!
//! Version 2 added keys 8 and 9, so that the auditor can re-derive the prompt, the
//! sampling parameters and the stop strings from what the client asked for, and check
//! that the answer ended where the runtime says; version 1 is refused.
//!
//! **Sealed transcript** ([`seal`]): the same rules, suite DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20Poly1305, base mode, `info` = [`HPKE_INFO`], AAD = the job id (so a
//! sealed transcript cannot be moved to another job's receipt).
//!
//! | key | field | CBOR |
//! |---|---|---|
//! | 1 | job id, also the AAD | bstr .size 16 |
//! | 2 | KEM id, 0x0020 | uint |
//! | 3 | KDF id, 0x0001 | uint |
//! | 4 | AEAD id, 0x0003 | uint |
//! | 5 | encapsulated key (`enc`) | bstr .size 32 |
//! | 6 | ciphertext of the transcript's CBOR, with its 16-byte tag | bstr |
//!
//! Unlike the rest of this crate, [`seal`] and [`generate_auditor_keypair`] read the
//! operating system's random number generator (HPKE needs a fresh ephemeral key).

use crate::binding::{hex_bytes, HpkeKey, HPKE_KEM_X25519_SHA256};
use crate::reason::{reject, Reason, Rejection};
use crate::receipt::{
    as_array, as_uint, bytes, fields_in_order, sampling_from_cbor, sampling_to_cbor, uint,
    ReceiptClaims, SamplingParams,
};
use ciborium::value::Value;
use hpke::{aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::X25519HkdfSha256};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use serde::Serialize;

/// The transcript format version this crate writes and accepts (key 1).
pub const TRANSCRIPT_VERSION: u64 = 2;
/// Most token ids in each of the prompt and the output.
pub const MAX_TOKENS: usize = 1_000_000;
/// Most bytes of activation fingerprint.
pub const MAX_FINGERPRINT_LEN: usize = 1 << 20;
/// Most bytes of request body (far above any runtime's request size limit).
pub const MAX_REQUEST_LEN: usize = 16 << 20;
/// Upper bound on a transcript's CBOR: both token lists full of five-byte integers, a full
/// fingerprint, a full request and the fixed fields.
pub const MAX_TRANSCRIPT_LEN: usize =
    2 * (5 * MAX_TOKENS + 5) + MAX_FINGERPRINT_LEN + MAX_REQUEST_LEN + 256;
/// Upper bound on a sealed transcript: the transcript, the AEAD tag and the envelope.
pub const MAX_SEALED_LEN: usize = MAX_TRANSCRIPT_LEN + 16 + 128;
/// HPKE `info`: binds every sealed transcript to this purpose and format.
pub const HPKE_INFO: &[u8] = b"veritee transcript v1";
/// HPKE KDF id of HKDF-SHA256 (RFC 9180 §7.2).
pub const HPKE_KDF_HKDF_SHA256: u16 = 0x0001;
/// HPKE AEAD id of ChaCha20Poly1305 (RFC 9180 §7.3).
pub const HPKE_AEAD_CHACHA20POLY1305: u16 = 0x0003;

const TRANSCRIPT_KEYS: [i64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
const SEALED_KEYS: [i64; 6] = [1, 2, 3, 4, 5, 6];

/// One job as the auditor re-executes it. See the module table for its encoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    #[serde(with = "hex_bytes")]
    pub job_id: [u8; 16],
    #[serde(with = "hex_bytes")]
    pub model_digest: [u8; 32],
    pub prompt_ids: Vec<u32>,
    pub output_ids: Vec<u32>,
    pub sampling: SamplingParams,
    /// Opaque activation-fingerprint bytes from the inference engine.
    #[serde(with = "hex_bytes")]
    pub fingerprint: Vec<u8>,
    /// The request body as received; its SHA-256 is the receipt's `request_sha256`.
    #[serde(with = "hex_bytes")]
    pub request: Vec<u8>,
    pub end: JobEnd,
}

/// How a job ended, as the runtime reports it (transcript key 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEnd {
    /// An end-of-generation or stop id, or a stop string the request gave.
    Stop,
    /// `max_tokens` were generated.
    Length,
    /// The request's deadline passed.
    TimedOut,
    /// The client went away.
    Cancelled,
}

impl JobEnd {
    pub fn code(self) -> u64 {
        match self {
            JobEnd::Stop => 0,
            JobEnd::Length => 1,
            JobEnd::TimedOut => 2,
            JobEnd::Cancelled => 3,
        }
    }

    pub fn from_code(code: u64) -> Option<JobEnd> {
        Some(match code {
            0 => JobEnd::Stop,
            1 => JobEnd::Length,
            2 => JobEnd::TimedOut,
            3 => JobEnd::Cancelled,
            _ => return None,
        })
    }
}

fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection::new(Reason::TranscriptMalformed, detail)
}

fn token_array(ids: &[u32]) -> Value {
    Value::Array(ids.iter().map(|&id| uint(id.into())).collect())
}

fn take_tokens(v: Option<Value>, name: &str) -> Result<Vec<u32>, Rejection> {
    let Some(Value::Array(items)) = v else {
        return Err(malformed(format!(
            "transcript {name} token ids are missing or not an array"
        )));
    };
    if items.len() > MAX_TOKENS {
        return Err(malformed(format!(
            "transcript has {} {name} token ids, more than the {MAX_TOKENS} allowed",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|item| {
            as_uint::<u32>(Some(item)).ok_or_else(|| {
                malformed(format!(
                    "a transcript {name} token id is not an unsigned 32-bit integer"
                ))
            })
        })
        .collect()
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing to a Vec");
    out
}

impl Transcript {
    /// The canonical CBOR encoding, whose SHA-256 is [`Self::commitment`].
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(&Value::Map(vec![
            (uint(1), uint(TRANSCRIPT_VERSION)),
            (uint(2), bytes(&self.job_id)),
            (uint(3), bytes(&self.model_digest)),
            (uint(4), token_array(&self.prompt_ids)),
            (uint(5), token_array(&self.output_ids)),
            (uint(6), sampling_to_cbor(&self.sampling)),
            (uint(7), bytes(&self.fingerprint)),
            (uint(8), bytes(&self.request)),
            (uint(9), uint(self.end.code())),
        ]))
    }

    /// Parse strictly: every key once in order, right types and sizes, within the limits,
    /// and exactly the bytes [`Self::to_cbor`] would write. A future version is
    /// [`Reason::UnsupportedVersion`]; anything else wrong is [`Reason::TranscriptMalformed`].
    pub fn from_cbor(cbor: &[u8]) -> Result<Self, Rejection> {
        if cbor.len() > MAX_TRANSCRIPT_LEN {
            return Err(malformed(format!(
                "transcript is {} bytes, more than the {MAX_TRANSCRIPT_LEN} allowed",
                cbor.len()
            )));
        }
        let value: Value = ciborium::from_reader(cbor)
            .map_err(|e| malformed(format!("transcript is not CBOR: {e}")))?;
        let [version, job_id, model, prompt, output, sampling, fingerprint, request, end] =
            fields_in_order(value, &TRANSCRIPT_KEYS, "transcript").map_err(malformed)?;
        let version = as_uint::<u64>(version)
            .ok_or_else(|| malformed("transcript version is missing or not a uint"))?;
        if version != TRANSCRIPT_VERSION {
            return reject(
                Reason::UnsupportedVersion,
                format!(
                    "transcript format version {version}; this verifier knows {TRANSCRIPT_VERSION}"
                ),
            );
        }
        let fingerprint = match fingerprint {
            Some(Value::Bytes(b)) => b,
            _ => return Err(malformed("transcript fingerprint is missing or not bytes")),
        };
        let request = match request {
            Some(Value::Bytes(b)) => b,
            _ => return Err(malformed("transcript request is missing or not bytes")),
        };
        let end = as_uint::<u64>(end)
            .and_then(JobEnd::from_code)
            .ok_or_else(|| malformed("transcript end is missing or not one of 0, 1, 2, 3"))?;
        let transcript = Transcript {
            job_id: as_array(job_id)
                .ok_or_else(|| malformed("transcript job id is missing or not 16 bytes"))?,
            model_digest: as_array(model)
                .ok_or_else(|| malformed("transcript model digest is missing or not 32 bytes"))?,
            prompt_ids: take_tokens(prompt, "prompt")?,
            output_ids: take_tokens(output, "output")?,
            sampling: sampling_from_cbor(sampling).map_err(malformed)?,
            fingerprint,
            request,
            end,
        };
        transcript.check()?;
        if transcript.to_cbor() != cbor {
            return Err(malformed(
                "transcript is not in canonical CBOR (shortest integers and floats, definite lengths, nothing after the map)",
            ));
        }
        Ok(transcript)
    }

    /// SHA-256 of [`Self::to_cbor`]: the receipt's activation-commitment claim.
    pub fn commitment(&self) -> [u8; 32] {
        crate::x509::sha256(&self.to_cbor())
    }

    /// The limits the types alone do not ensure.
    fn check(&self) -> Result<(), Rejection> {
        for (name, ids) in [("prompt", &self.prompt_ids), ("output", &self.output_ids)] {
            if ids.len() > MAX_TOKENS {
                return Err(malformed(format!(
                    "transcript has {} {name} token ids, more than the {MAX_TOKENS} allowed",
                    ids.len()
                )));
            }
        }
        if self.fingerprint.len() > MAX_FINGERPRINT_LEN {
            return Err(malformed(format!(
                "transcript fingerprint is {} bytes, more than the {MAX_FINGERPRINT_LEN} allowed",
                self.fingerprint.len()
            )));
        }
        if self.request.len() > MAX_REQUEST_LEN {
            return Err(malformed(format!(
                "transcript request is {} bytes, more than the {MAX_REQUEST_LEN} allowed",
                self.request.len()
            )));
        }
        Ok(())
    }

    /// SHA-256 of the request bytes: the receipt's `request_sha256`.
    pub fn request_sha256(&self) -> [u8; 32] {
        crate::x509::sha256(&self.request)
    }
}

/// A sealed transcript's envelope, parsed but not decrypted. See the module table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTranscript {
    /// The job id, also the AEAD's associated data.
    pub job_id: [u8; 16],
    /// The HPKE encapsulated key.
    pub enc: [u8; 32],
    /// The transcript's CBOR, encrypted, with the AEAD tag.
    pub ciphertext: Vec<u8>,
}

impl SealedTranscript {
    /// The canonical CBOR encoding of the envelope.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(&Value::Map(vec![
            (uint(1), bytes(&self.job_id)),
            (uint(2), uint(HPKE_KEM_X25519_SHA256.into())),
            (uint(3), uint(HPKE_KDF_HKDF_SHA256.into())),
            (uint(4), uint(HPKE_AEAD_CHACHA20POLY1305.into())),
            (uint(5), bytes(&self.enc)),
            (uint(6), bytes(&self.ciphertext)),
        ]))
    }

    /// Parse an envelope strictly ([`Reason::TranscriptMalformed`]); another HPKE suite than
    /// the one this format uses is [`Reason::UnsupportedAlgorithm`].
    pub fn from_cbor(cbor: &[u8]) -> Result<Self, Rejection> {
        if cbor.len() > MAX_SEALED_LEN {
            return Err(malformed(format!(
                "sealed transcript is {} bytes, more than the {MAX_SEALED_LEN} allowed",
                cbor.len()
            )));
        }
        let value: Value = ciborium::from_reader(cbor)
            .map_err(|e| malformed(format!("sealed transcript is not CBOR: {e}")))?;
        let [job_id, kem, kdf, aead, enc, ciphertext] =
            fields_in_order(value, &SEALED_KEYS, "sealed transcript").map_err(malformed)?;
        let suite = [
            ("KEM", kem, HPKE_KEM_X25519_SHA256),
            ("KDF", kdf, HPKE_KDF_HKDF_SHA256),
            ("AEAD", aead, HPKE_AEAD_CHACHA20POLY1305),
        ];
        for (name, got, want) in suite {
            match as_uint::<u64>(got) {
                Some(id) if id == u64::from(want) => {}
                Some(id) => {
                    return reject(
                        Reason::UnsupportedAlgorithm,
                        format!(
                        "sealed transcript HPKE {name} 0x{id:04x}; only 0x{want:04x} is supported"
                    ),
                    )
                }
                None => {
                    return Err(malformed(format!(
                        "sealed transcript HPKE {name} id is missing or not a uint"
                    )))
                }
            }
        }
        let sealed = SealedTranscript {
            job_id: as_array(job_id)
                .ok_or_else(|| malformed("sealed transcript job id is missing or not 16 bytes"))?,
            enc: as_array(enc).ok_or_else(|| {
                malformed("sealed transcript encapsulated key is missing or not 32 bytes")
            })?,
            ciphertext: match ciphertext {
                Some(Value::Bytes(b)) => b,
                _ => {
                    return Err(malformed(
                        "sealed transcript ciphertext is missing or not bytes",
                    ))
                }
            },
        };
        if sealed.to_cbor() != cbor {
            return Err(malformed(
                "sealed transcript is not in canonical CBOR (shortest integers, definite lengths, nothing after the map)",
            ));
        }
        Ok(sealed)
    }
}

/// Encrypt `transcript` to the auditor's key; returns the [`SealedTranscript`] CBOR.
///
/// Refuses another KEM than X25519 ([`Reason::UnsupportedAlgorithm`]), a key that is not a
/// usable 32-byte X25519 public key ([`Reason::InvalidField`]) and a transcript over the
/// limits ([`Reason::TranscriptMalformed`]), so it never writes what [`open`] would refuse.
pub fn seal(transcript: &Transcript, auditor: &HpkeKey) -> Result<Vec<u8>, Rejection> {
    if auditor.kem != HPKE_KEM_X25519_SHA256 {
        return reject(
            Reason::UnsupportedAlgorithm,
            format!(
                "auditor HPKE KEM 0x{:04x}; only DHKEM(X25519, HKDF-SHA256) (0x0020) is supported",
                auditor.kem
            ),
        );
    }
    transcript.check()?;
    seal_bytes(
        &transcript.to_cbor(),
        transcript.job_id,
        &auditor.public_key,
    )
}

/// HPKE-seal `plaintext` with `job_id` as the AAD and wrap it in the envelope.
fn seal_bytes(plaintext: &[u8], job_id: [u8; 16], public_key: &[u8]) -> Result<Vec<u8>, Rejection> {
    let unusable = || {
        Rejection::new(
            Reason::InvalidField,
            format!(
                "auditor HPKE key {} is not a usable 32-byte X25519 public key",
                hex::encode(public_key)
            ),
        )
    };
    let pk =
        <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(public_key).map_err(|_| unusable())?;
    let (enc, ciphertext) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeS::Base,
            &pk,
            HPKE_INFO,
            plaintext,
            &job_id,
        )
        // Encapsulation fails for a low-order point (the shared secret would be all zero).
        .map_err(|_| unusable())?;
    let enc: [u8; 32] = enc.to_bytes().into();
    Ok(SealedTranscript {
        job_id,
        enc,
        ciphertext,
    }
    .to_cbor())
}

/// The job id a sealed transcript names, without decrypting it (strict envelope parse).
pub fn sealed_job_id(sealed: &[u8]) -> Result<[u8; 16], Rejection> {
    Ok(SealedTranscript::from_cbor(sealed)?.job_id)
}

/// Decrypt a sealed transcript with the auditor's X25519 secret key and parse it strictly.
///
/// A malformed envelope or plaintext, or a plaintext naming another job than the envelope,
/// is [`Reason::TranscriptMalformed`]; another key, or a tampered encapsulated key,
/// ciphertext or job id, is [`Reason::TranscriptUndecryptable`]. The result is only as
/// trustworthy as the receipt it is then checked against ([`check_against_receipt`]).
pub fn open(sealed: &[u8], auditor_secret: &[u8; 32]) -> Result<Transcript, Rejection> {
    let envelope = SealedTranscript::from_cbor(sealed)?;
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(auditor_secret)
        .expect("every 32-byte string is an X25519 secret key (it is clamped)");
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&envelope.enc)
        .expect("the encapsulated key is 32 bytes");
    let plaintext = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        HPKE_INFO,
        &envelope.ciphertext,
        &envelope.job_id,
    )
    .map_err(|_| {
        Rejection::new(
            Reason::TranscriptUndecryptable,
            format!(
                "sealed transcript for job {} does not decrypt with auditor key {} (another key, or a tampered ciphertext, encapsulated key or job id)",
                hex::encode(envelope.job_id),
                hex::encode(auditor_public_key(auditor_secret))
            ),
        )
    })?;
    let transcript = Transcript::from_cbor(&plaintext)?;
    if transcript.job_id != envelope.job_id {
        return Err(malformed(format!(
            "sealed transcript names job {} outside and job {} inside",
            hex::encode(envelope.job_id),
            hex::encode(transcript.job_id)
        )));
    }
    Ok(transcript)
}

/// A fresh auditor key pair from the operating system's RNG: `(secret, public)`.
pub fn generate_auditor_keypair() -> ([u8; 32], [u8; 32]) {
    let (sk, pk) = X25519HkdfSha256::gen_keypair();
    (sk.to_bytes().into(), pk.to_bytes().into())
}

/// The X25519 public key of an auditor secret key.
pub fn auditor_public_key(secret: &[u8; 32]) -> [u8; 32] {
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(secret)
        .expect("every 32-byte string is an X25519 secret key (it is clamped)");
    X25519HkdfSha256::sk_to_pk(&sk).to_bytes().into()
}

/// Check a transcript against the (verified) receipt of its job: job id, model digest,
/// token counts, request hash, sampling parameters (bit for bit) and, last, that the receipt's
/// activation commitment is this transcript's. Any difference is
/// [`Reason::TranscriptMismatch`], its detail naming the field.
pub fn check_against_receipt(t: &Transcript, claims: &ReceiptClaims) -> Result<(), Rejection> {
    let mismatch = |field: &str, transcript: String, receipt: String| {
        reject(
            Reason::TranscriptMismatch,
            format!("{field}: the transcript has {transcript}, the receipt {receipt}"),
        )
    };
    if t.job_id != claims.job_id {
        return mismatch("job_id", hex::encode(t.job_id), hex::encode(claims.job_id));
    }
    if t.model_digest != claims.model_digest {
        return mismatch(
            "model_digest",
            hex::encode(t.model_digest),
            hex::encode(claims.model_digest),
        );
    }
    if t.prompt_ids.len() as u64 != claims.prompt_tokens {
        return mismatch(
            "prompt_tokens",
            t.prompt_ids.len().to_string(),
            claims.prompt_tokens.to_string(),
        );
    }
    if t.output_ids.len() as u64 != claims.output_tokens {
        return mismatch(
            "output_tokens",
            t.output_ids.len().to_string(),
            claims.output_tokens.to_string(),
        );
    }
    if t.request_sha256() != claims.request_sha256 {
        return mismatch(
            "request_sha256",
            hex::encode(t.request_sha256()),
            hex::encode(claims.request_sha256),
        );
    }
    if !same_sampling(&t.sampling, &claims.sampling) {
        return mismatch(
            "sampling",
            format!("{:?}", t.sampling),
            format!("{:?}", claims.sampling),
        );
    }
    let commitment = t.commitment();
    if commitment != claims.activation_commitment {
        return mismatch(
            "activation_commitment",
            hex::encode(commitment),
            hex::encode(claims.activation_commitment),
        );
    }
    Ok(())
}

/// Equal bit for bit (so -0.0 is not 0.0, and a NaN equals only the same NaN).
fn same_sampling(a: &SamplingParams, b: &SamplingParams) -> bool {
    a.temperature.to_bits() == b.temperature.to_bits()
        && a.top_p.to_bits() == b.top_p.to_bits()
        && a.top_k == b.top_k
        && a.max_tokens == b.max_tokens
        && a.repetition_penalty.to_bits() == b.repetition_penalty.to_bits()
        && a.seed == b.seed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Entry = (Value, Value);
    type EntryEdit = Box<dyn Fn(&mut Vec<Entry>)>;
    type ClaimsEdit = fn(&mut ReceiptClaims);

    fn sampling() -> SamplingParams {
        SamplingParams {
            temperature: 0.7,
            top_p: 0.95,
            top_k: 40,
            max_tokens: 256,
            repetition_penalty: 1.1,
            seed: 42,
        }
    }

    fn transcript() -> Transcript {
        Transcript {
            job_id: [7; 16],
            model_digest: [1; 32],
            prompt_ids: vec![1, 23, 500, 65_535, 70_000, u32::MAX],
            output_ids: vec![2, 3, 24, 0],
            sampling: sampling(),
            fingerprint: (0..=255u8).chain(0..2).collect(),
            request: br#"{"model":"m","messages":[]}"#.to_vec(),
            end: JobEnd::Length,
        }
    }

    fn receipt_for(t: &Transcript) -> ReceiptClaims {
        ReceiptClaims {
            job_id: t.job_id,
            issued_at: 1_790_000_000,
            model_digest: t.model_digest,
            request_sha256: t.request_sha256(),
            response_sha256: [3; 32],
            prompt_tokens: t.prompt_ids.len() as u64,
            output_tokens: t.output_ids.len() as u64,
            queue_wait_ms: 4,
            wall_start_ms: 1_790_000_000_000,
            wall_end_ms: 1_790_000_001_000,
            device_ms: 870,
            device_share_ppm: 1_000_000,
            sampling: t.sampling,
            activation_commitment: t.commitment(),
            audited: true,
            evidence_digest: [4; 32],
            seq: 0,
            prev_receipt_sha256: [0; 32],
            runtime_instance: [6; 16],
        }
    }

    fn auditor(public: [u8; 32]) -> HpkeKey {
        HpkeKey {
            kem: HPKE_KEM_X25519_SHA256,
            public_key: public.to_vec(),
        }
    }

    fn reason<T: std::fmt::Debug>(r: Result<T, Rejection>) -> Reason {
        r.expect_err("expected a rejection").reason
    }

    fn entries(cbor: &[u8]) -> Vec<Entry> {
        let Value::Map(entries) = ciborium::from_reader(cbor).unwrap() else {
            panic!("not a map")
        };
        entries
    }

    fn encode_entries(entries: Vec<Entry>) -> Vec<u8> {
        encode(&Value::Map(entries))
    }

    #[test]
    fn suite_ids_are_the_crates() {
        assert_eq!(X25519HkdfSha256::KEM_ID, HPKE_KEM_X25519_SHA256);
        assert_eq!(HPKE_KEM_X25519_SHA256, 0x0020);
    }

    #[test]
    fn auditor_public_key_matches_rfc7748() {
        // RFC 7748 §6.1, Alice's key pair.
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            hex::encode(auditor_public_key(&secret)),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let (sk, pk) = generate_auditor_keypair();
        assert_eq!(auditor_public_key(&sk), pk);
        assert_ne!(generate_auditor_keypair().0, sk);
    }

    #[test]
    fn transcript_encoding_is_the_documented_layout() {
        let t = transcript();
        let cbor = t.to_cbor();
        // Map of 9; key 1 version 2; key 2 a 16-byte string of 7s.
        assert_eq!(&cbor[..5], &[0xa9, 0x01, 0x02, 0x02, 0x50]);
        assert_eq!(&cbor[5..21], &[7; 16]);
        let e = entries(&cbor);
        let keys: Vec<Value> = e.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, (1..=9u64).map(uint).collect::<Vec<_>>());
        assert_eq!(e[7].1, Value::Bytes(t.request.clone()));
        assert_eq!(e[8].1, uint(1), "end: length");
        assert_eq!(
            e[3].1,
            Value::Array(t.prompt_ids.iter().map(|&i| uint(i.into())).collect())
        );
        assert_eq!(e[5].1, sampling_to_cbor(&t.sampling));
        assert_eq!(Transcript::from_cbor(&cbor).unwrap(), t);
        assert_eq!(t.commitment(), crate::x509::sha256(&cbor));
    }

    #[test]
    fn seal_and_open_round_trip() {
        let (sk, pk) = generate_auditor_keypair();
        let t = transcript();
        let sealed = seal(&t, &auditor(pk)).unwrap();
        assert_eq!(sealed_job_id(&sealed).unwrap(), t.job_id);
        let envelope = SealedTranscript::from_cbor(&sealed).unwrap();
        assert_eq!(envelope.ciphertext.len(), t.to_cbor().len() + 16);
        let e = entries(&sealed);
        assert_eq!(e[1].1, uint(0x0020));
        assert_eq!(e[2].1, uint(0x0001));
        assert_eq!(e[3].1, uint(0x0003));
        assert_eq!(open(&sealed, &sk).unwrap(), t);
        // A fresh ephemeral key per seal: same transcript, other bytes, same plaintext.
        let again = seal(&t, &auditor(pk)).unwrap();
        assert_ne!(again, sealed);
        assert_eq!(open(&again, &sk).unwrap(), t);
        // Empty lists and fingerprint are allowed.
        let empty = Transcript {
            prompt_ids: vec![],
            output_ids: vec![],
            fingerprint: vec![],
            ..t
        };
        assert_eq!(
            open(&seal(&empty, &auditor(pk)).unwrap(), &sk).unwrap(),
            empty
        );
    }

    #[test]
    fn another_key_cannot_open() {
        let (_, pk) = generate_auditor_keypair();
        let (other, _) = generate_auditor_keypair();
        let sealed = seal(&transcript(), &auditor(pk)).unwrap();
        assert_eq!(
            reason(open(&sealed, &other)),
            Reason::TranscriptUndecryptable
        );
    }

    #[test]
    fn tampered_ciphertext_or_enc_cannot_open() {
        let (sk, pk) = generate_auditor_keypair();
        let sealed = seal(&transcript(), &auditor(pk)).unwrap();
        let envelope = SealedTranscript::from_cbor(&sealed).unwrap();
        for at in [
            0,
            1,
            envelope.ciphertext.len() / 2,
            envelope.ciphertext.len() - 1,
        ] {
            let mut e = envelope.clone();
            e.ciphertext[at] ^= 0x01;
            assert_eq!(
                reason(open(&e.to_cbor(), &sk)),
                Reason::TranscriptUndecryptable,
                "ciphertext byte {at}"
            );
        }
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 0x80;
        assert_eq!(reason(open(&flipped, &sk)), Reason::TranscriptUndecryptable);
        let mut e = envelope.clone();
        e.ciphertext.pop();
        assert_eq!(
            reason(open(&e.to_cbor(), &sk)),
            Reason::TranscriptUndecryptable
        );
        let mut e = envelope.clone();
        e.ciphertext.clear();
        assert_eq!(
            reason(open(&e.to_cbor(), &sk)),
            Reason::TranscriptUndecryptable
        );
        let mut e = envelope.clone();
        e.enc[3] ^= 0x10;
        assert_eq!(
            reason(open(&e.to_cbor(), &sk)),
            Reason::TranscriptUndecryptable
        );
        // A low-order encapsulated key (all zero) fails decapsulation, not a panic.
        let mut e = envelope.clone();
        e.enc = [0; 32];
        assert_eq!(
            reason(open(&e.to_cbor(), &sk)),
            Reason::TranscriptUndecryptable
        );
    }

    #[test]
    fn a_sealed_transcript_cannot_move_to_another_job() {
        let (sk, pk) = generate_auditor_keypair();
        let sealed = seal(&transcript(), &auditor(pk)).unwrap();
        let mut moved = SealedTranscript::from_cbor(&sealed).unwrap();
        moved.job_id = [8; 16];
        let moved = moved.to_cbor();
        assert_eq!(sealed_job_id(&moved).unwrap(), [8; 16]);
        assert_eq!(reason(open(&moved, &sk)), Reason::TranscriptUndecryptable);
        // Sealed consistently (AAD = outer id) but naming another job inside: anyone with
        // the public key can do this, and it is refused after decryption.
        let inner = transcript().to_cbor();
        let forged = seal_bytes(&inner, [8; 16], &pk).unwrap();
        let r = open(&forged, &sk).unwrap_err();
        assert_eq!(r.reason, Reason::TranscriptMalformed);
        assert!(r.detail.contains("outside"), "{}", r.detail);
        // A well-sealed plaintext that is not a transcript.
        let garbage = seal_bytes(b"\xa0", [7; 16], &pk).unwrap();
        assert_eq!(reason(open(&garbage, &sk)), Reason::TranscriptMalformed);
    }

    #[test]
    fn seal_refuses_keys_it_cannot_use_and_oversized_transcripts() {
        let (_, pk) = generate_auditor_keypair();
        let t = transcript();
        let p256 = HpkeKey {
            kem: 0x0010,
            public_key: vec![4; 65],
        };
        assert_eq!(reason(seal(&t, &p256)), Reason::UnsupportedAlgorithm);
        let short = HpkeKey {
            kem: HPKE_KEM_X25519_SHA256,
            public_key: pk[..31].to_vec(),
        };
        assert_eq!(reason(seal(&t, &short)), Reason::InvalidField);
        assert_eq!(reason(seal(&t, &auditor([0; 32]))), Reason::InvalidField);

        let big_fp = Transcript {
            fingerprint: vec![0; MAX_FINGERPRINT_LEN + 1],
            ..t.clone()
        };
        assert_eq!(
            reason(seal(&big_fp, &auditor(pk))),
            Reason::TranscriptMalformed
        );
        assert_eq!(
            reason(Transcript::from_cbor(&big_fp.to_cbor())),
            Reason::TranscriptMalformed
        );
        let many = Transcript {
            output_ids: vec![5; MAX_TOKENS + 1],
            ..t.clone()
        };
        assert_eq!(
            reason(seal(&many, &auditor(pk))),
            Reason::TranscriptMalformed
        );
        assert_eq!(
            reason(Transcript::from_cbor(&many.to_cbor())),
            Reason::TranscriptMalformed
        );
        // At the limits exactly, it seals.
        let full = Transcript {
            fingerprint: vec![0; MAX_FINGERPRINT_LEN],
            output_ids: vec![u32::MAX; MAX_TOKENS],
            prompt_ids: vec![u32::MAX; MAX_TOKENS],
            ..t
        };
        assert!(full.to_cbor().len() <= MAX_TRANSCRIPT_LEN);
        let sealed = seal(&full, &auditor(pk)).unwrap();
        assert!(sealed.len() <= MAX_SEALED_LEN);
    }

    #[test]
    fn malformed_transcripts() {
        let t = transcript();
        let cbor = t.to_cbor();
        let check = |bytes: &[u8], what: &str| {
            assert_eq!(
                reason(Transcript::from_cbor(bytes)),
                Reason::TranscriptMalformed,
                "{what}"
            )
        };
        for n in 0..cbor.len() {
            check(&cbor[..n], &format!("truncated to {n}"));
        }
        let mut trailing = cbor.clone();
        trailing.push(0);
        check(&trailing, "trailing byte");
        check(&[0xa0], "empty map");
        check(&[0x80], "an array");
        check(b"{\"job_id\": 1}", "JSON");

        let e = entries(&cbor);
        let edits: Vec<(&str, EntryEdit)> = vec![
            ("unknown key 8", Box::new(|e| e.push((uint(8), uint(0))))),
            (
                "negative key",
                Box::new(|e| e.insert(0, (Value::Integer((-1).into()), uint(0)))),
            ),
            ("text key", Box::new(|e| e[0].0 = Value::Text("1".into()))),
            (
                "missing job id",
                Box::new(|e| {
                    e.remove(1);
                }),
            ),
            (
                "missing end",
                Box::new(|e| {
                    e.pop();
                }),
            ),
            (
                "missing fingerprint",
                Box::new(|e| {
                    e.remove(6);
                }),
            ),
            (
                "missing request",
                Box::new(|e| {
                    e.remove(7);
                }),
            ),
            ("end 4", Box::new(|e| e[8].1 = uint(4))),
            (
                "end as text",
                Box::new(|e| e[8].1 = Value::Text("stop".into())),
            ),
            (
                "request as text",
                Box::new(|e| e[7].1 = Value::Text("{}".into())),
            ),
            ("keys out of order", Box::new(|e| e.swap(3, 4))),
            ("repeated key", Box::new(|e| e.insert(4, e[3].clone()))),
            (
                "job id 15 bytes",
                Box::new(|e| e[1].1 = Value::Bytes(vec![7; 15])),
            ),
            (
                "model digest 33 bytes",
                Box::new(|e| e[2].1 = Value::Bytes(vec![1; 33])),
            ),
            (
                "token as text",
                Box::new(|e| e[3].1 = Value::Array(vec![Value::Text("1".into())])),
            ),
            (
                "token over u32",
                Box::new(|e| e[4].1 = Value::Array(vec![uint(u64::from(u32::MAX) + 1)])),
            ),
            (
                "negative token",
                Box::new(|e| e[4].1 = Value::Array(vec![Value::Integer((-1).into())])),
            ),
            (
                "tokens as bytes",
                Box::new(|e| e[3].1 = Value::Bytes(vec![1, 2])),
            ),
            (
                "fingerprint as text",
                Box::new(|e| e[6].1 = Value::Text("ab".into())),
            ),
            ("sampling not a map", Box::new(|e| e[5].1 = uint(0))),
            (
                "sampling missing seed",
                Box::new(|e| {
                    let Value::Map(m) = &mut e[5].1 else { panic!() };
                    m.pop();
                }),
            ),
            (
                "temperature as f64",
                Box::new(|e| {
                    let Value::Map(m) = &mut e[5].1 else { panic!() };
                    m[0].1 = Value::Float(0.7);
                }),
            ),
            (
                "version missing",
                Box::new(|e| {
                    e.remove(0);
                }),
            ),
        ];
        for (what, edit) in edits {
            let mut e = e.clone();
            edit(&mut e);
            check(&encode_entries(e), what);
        }

        // Non-canonical encodings of the same values.
        // Token id 1 (first prompt id) written as a two-byte integer.
        let at = cbor
            .windows(3)
            .position(|w| w == [0x04, 0x86, 0x01])
            .expect("prompt array");
        let mut long = cbor[..at + 2].to_vec();
        long.extend_from_slice(&[0x18, 0x01]);
        long.extend_from_slice(&cbor[at + 3..]);
        check(&long, "non-shortest token id");
        // The prompt array with an indefinite length.
        let mut indefinite = cbor[..at + 1].to_vec();
        indefinite.push(0x9f);
        let end = at + 2 + 1 + 1 + 3 + 3 + 5 + 5; // six ids: 1, 23, 500, 65535, 70000, u32::MAX
        indefinite.extend_from_slice(&cbor[at + 2..end]);
        indefinite.push(0xff);
        indefinite.extend_from_slice(&cbor[end..]);
        assert_eq!(
            ciborium::from_reader::<Value, _>(&indefinite[..]).unwrap(),
            ciborium::from_reader::<Value, _>(&cbor[..]).unwrap(),
            "same value"
        );
        check(&indefinite, "indefinite-length array");
        // The whole map with an indefinite length.
        let mut indefinite_map = vec![0xbf];
        indefinite_map.extend_from_slice(&cbor[1..]);
        indefinite_map.push(0xff);
        check(&indefinite_map, "indefinite-length map");

        // A future version, or version 1 (no request, no end), is not malformed: it is
        // unsupported.
        for version in [3, 1] {
            let mut other = e.clone();
            other[0].1 = uint(version);
            assert_eq!(
                reason(Transcript::from_cbor(&encode_entries(other))),
                Reason::UnsupportedVersion,
                "version {version}"
            );
        }
    }

    #[test]
    fn malformed_envelopes() {
        let (sk, pk) = generate_auditor_keypair();
        let sealed = seal(&transcript(), &auditor(pk)).unwrap();
        let check = |bytes: &[u8], want: Reason, what: &str| {
            assert_eq!(reason(open(bytes, &sk)), want, "{what}");
            assert_eq!(reason(sealed_job_id(bytes)), want, "{what}");
        };
        for n in 0..sealed.len() {
            check(
                &sealed[..n],
                Reason::TranscriptMalformed,
                &format!("truncated to {n}"),
            );
        }
        let mut trailing = sealed.clone();
        trailing.push(0);
        check(&trailing, Reason::TranscriptMalformed, "trailing byte");
        check(
            &vec![0x40; MAX_SEALED_LEN + 1],
            Reason::TranscriptMalformed,
            "oversized",
        );
        let e = entries(&sealed);
        let edits: Vec<(&str, Reason, EntryEdit)> = vec![
            (
                "unknown key",
                Reason::TranscriptMalformed,
                Box::new(|e| e.push((uint(7), uint(0)))),
            ),
            (
                "missing ciphertext",
                Reason::TranscriptMalformed,
                Box::new(|e| {
                    e.pop();
                }),
            ),
            (
                "out of order",
                Reason::TranscriptMalformed,
                Box::new(|e| e.swap(4, 5)),
            ),
            (
                "enc 31 bytes",
                Reason::TranscriptMalformed,
                Box::new(|e| e[4].1 = Value::Bytes(vec![9; 31])),
            ),
            (
                "job id 17 bytes",
                Reason::TranscriptMalformed,
                Box::new(|e| e[0].1 = Value::Bytes(vec![7; 17])),
            ),
            (
                "kem as text",
                Reason::TranscriptMalformed,
                Box::new(|e| e[1].1 = Value::Text("x25519".into())),
            ),
            (
                "P-256 KEM",
                Reason::UnsupportedAlgorithm,
                Box::new(|e| e[1].1 = uint(0x0010)),
            ),
            (
                "HKDF-SHA384",
                Reason::UnsupportedAlgorithm,
                Box::new(|e| e[2].1 = uint(0x0002)),
            ),
            (
                "AES-128-GCM",
                Reason::UnsupportedAlgorithm,
                Box::new(|e| e[3].1 = uint(0x0001)),
            ),
            (
                "export-only AEAD",
                Reason::UnsupportedAlgorithm,
                Box::new(|e| e[3].1 = uint(0xffff)),
            ),
        ];
        for (what, want, edit) in edits {
            let mut e = e.clone();
            edit(&mut e);
            check(&encode_entries(e), want, what);
        }
        // KEM id 0x0020 written as a four-byte integer.
        let at = sealed
            .windows(3)
            .position(|w| w == [0x02, 0x18, 0x20])
            .expect("kem id");
        let mut long = sealed[..at + 1].to_vec();
        long.extend_from_slice(&[0x1a, 0, 0, 0, 0x20]);
        long.extend_from_slice(&sealed[at + 3..]);
        check(&long, Reason::TranscriptMalformed, "non-shortest KEM id");
    }

    #[test]
    fn the_commitment_covers_every_field() {
        let t = transcript();
        let base = t.commitment();
        let edits: [fn(&mut Transcript); 15] = [
            |t| t.request.push(b' '),
            |t| t.request.clear(),
            |t| t.end = JobEnd::Stop,
            |t| t.job_id[15] ^= 1,
            |t| t.model_digest[0] ^= 1,
            |t| t.prompt_ids[0] += 1,
            |t| t.prompt_ids.push(9),
            |t| t.output_ids.truncate(3),
            |t| t.output_ids[0] = 3,
            |t| t.sampling.temperature = 0.8,
            |t| t.sampling.top_k = 41,
            |t| t.sampling.seed = 43,
            |t| t.fingerprint[0] ^= 1,
            |t| t.fingerprint.clear(),
            // The boundary between prompt and output moves.
            |t| {
                let id = t.output_ids.remove(0);
                t.prompt_ids.push(id);
            },
        ];
        let mut seen = vec![base];
        for (i, edit) in edits.iter().enumerate() {
            let mut changed = t.clone();
            edit(&mut changed);
            let c = changed.commitment();
            assert!(!seen.contains(&c), "edit {i} left the commitment as it was");
            seen.push(c);
        }
        assert_eq!(t.clone().commitment(), base);
    }

    #[test]
    fn check_against_receipt_names_each_mismatch() {
        let t = transcript();
        let claims = receipt_for(&t);
        check_against_receipt(&t, &claims).unwrap();
        let cases: [(&str, ClaimsEdit); 11] = [
            ("job_id", |c| c.job_id = [8; 16]),
            ("request_sha256", |c| c.request_sha256[31] ^= 1),
            ("model_digest", |c| c.model_digest = [9; 32]),
            ("prompt_tokens", |c| c.prompt_tokens += 1),
            ("output_tokens", |c| c.output_tokens -= 1),
            ("sampling", |c| c.sampling.seed = 7),
            ("sampling", |c| c.sampling.top_p = 0.9),
            ("sampling", |c| c.sampling.max_tokens = 16),
            // -0.0 == 0.0 as floats, but not as the bytes the commitment covers.
            ("sampling", |c| c.sampling.repetition_penalty = -0.0),
            ("activation_commitment", |c| c.activation_commitment[0] ^= 1),
            ("activation_commitment", |c| {
                c.activation_commitment = [0; 32]
            }),
        ];
        for (field, edit) in cases {
            let mut c = claims.clone();
            edit(&mut c);
            let r = check_against_receipt(&t, &c).unwrap_err();
            assert_eq!(r.reason, Reason::TranscriptMismatch, "{field}");
            assert!(
                r.detail.starts_with(&format!("{field}:")),
                "{field}: {}",
                r.detail
            );
        }
        // A transcript edited after the receipt was signed: only the commitment tells.
        let mut forged = t.clone();
        forged.output_ids[1] = 99;
        forged.fingerprint[7] ^= 0xff;
        let r = check_against_receipt(&forged, &claims).unwrap_err();
        assert_eq!(r.reason, Reason::TranscriptMismatch);
        assert!(
            r.detail.starts_with("activation_commitment:"),
            "{}",
            r.detail
        );
        // Zero in the receipt and -0.0 in the transcript is a mismatch too.
        let mut zero = t.clone();
        zero.sampling.repetition_penalty = 0.0;
        let mut c = receipt_for(&zero);
        c.sampling.repetition_penalty = -0.0;
        assert_eq!(
            reason(check_against_receipt(&zero, &c)),
            Reason::TranscriptMismatch
        );
    }

    #[test]
    fn mutated_sealed_transcripts_never_open_as_something_else() {
        let (sk, pk) = generate_auditor_keypair();
        let t = transcript();
        let sealed = seal(&t, &auditor(pk)).unwrap();
        for m in crate::testing::mutants(&sealed, 0x2545_f491_4f6c_dd1d, 3_000, 3) {
            match open(&m, &sk) {
                Ok(opened) => assert_eq!(opened, t, "a mutation opened as another transcript"),
                Err(r) => assert!(
                    matches!(
                        r.reason,
                        Reason::TranscriptMalformed
                            | Reason::TranscriptUndecryptable
                            | Reason::UnsupportedAlgorithm
                    ),
                    "{r}"
                ),
            }
        }
    }

    fn arb_f32() -> impl Strategy<Value = f32> {
        any::<f32>().prop_filter("NaN never equals itself", |f| !f.is_nan())
    }

    prop_compose! {
        fn arb_transcript()(
            job_id in any::<[u8; 16]>(),
            model_digest in any::<[u8; 32]>(),
            prompt_ids in proptest::collection::vec(any::<u32>(), 0..64),
            output_ids in proptest::collection::vec(any::<u32>(), 0..64),
            temperature in arb_f32(),
            top_p in arb_f32(),
            top_k in any::<u32>(),
            max_tokens in any::<u32>(),
            repetition_penalty in arb_f32(),
            seed in any::<u64>(),
            fingerprint in proptest::collection::vec(any::<u8>(), 0..600),
            request in proptest::collection::vec(any::<u8>(), 0..200),
            end in 0u64..4,
        ) -> Transcript {
            Transcript {
                job_id,
                model_digest,
                prompt_ids,
                output_ids,
                sampling: SamplingParams { temperature, top_p, top_k, max_tokens, repetition_penalty, seed },
                fingerprint,
                request,
                end: JobEnd::from_code(end).unwrap(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn canonical_round_trip(t in arb_transcript()) {
            let cbor = t.to_cbor();
            let back = Transcript::from_cbor(&cbor).unwrap();
            prop_assert_eq!(back.to_cbor(), cbor);
            // Bit for bit, so -0.0 stays -0.0.
            prop_assert!(same_sampling(&back.sampling, &t.sampling));
            prop_assert_eq!(back, t);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Transcript::from_cbor(&bytes);
            prop_assert!(open(&bytes, &[3; 32]).is_err());
            let _ = sealed_job_id(&bytes);
        }
    }
}
