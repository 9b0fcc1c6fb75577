//! Usage receipts: the signed, chained, durable record of every job this instance ran.
//!
//! For each job the API hands the [`Issuer`] what it metered and hashed ([`JobFacts`]).
//! The issuer seals the job's transcript to the auditor's HPKE key (when one is
//! configured and the request did not opt out), then, under one lock, gives the receipt
//! the next sequence number and the hash of the previous receipt, signs it with the
//! receipt key the evidence binds, and appends it to the [`ReceiptLog`]. The caller
//! acknowledges the receipt to the client only once [`Durable::wait`] says it is on disk.
//!
//! One instance is one chain: the receipt key lives only in this process, so a restart
//! starts a new instance (new id, key, evidence and chain from seq 0) next to the old
//! ones in the log directory.

use crate::receipt_log::{Durable, LogError, ReceiptLog};
use attestation::binding::HpkeKey;
use attestation::receipt::{self, ReceiptClaims, SamplingParams};
use attestation::transcript::{self, Transcript};
use aws_lc_rs::signature::Ed25519KeyPair;
use std::sync::Mutex;

/// What the engine measured about one job. Times in milliseconds; see the README's
/// "Metering" section for how each is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metering {
    pub queue_wait_ms: u64,
    /// Unix milliseconds when an engine thread took the job.
    pub wall_start_ms: u64,
    /// Unix milliseconds when it finished.
    pub wall_end_ms: u64,
    /// CPU time of every thread that worked on the job (device time on the CPU).
    pub device_ms: u64,
    /// The job's share of the device over its wall time, in parts per million.
    pub device_share_ppm: u32,
}

/// Everything a receipt states about one job, except its place in the chain.
#[derive(Debug, Clone)]
pub struct JobFacts {
    pub job_id: [u8; 16],
    /// The request body as received (sealed in the transcript; its SHA-256 is signed).
    pub request: Vec<u8>,
    pub response_sha256: [u8; 32],
    pub prompt_ids: Vec<u32>,
    pub output_ids: Vec<u32>,
    pub sampling: SamplingParams,
    /// Activation fingerprint bytes (`inference::fingerprint`).
    pub fingerprint: Vec<u8>,
    /// How the job ended (in the transcript, for the auditor's stop check).
    pub end: transcript::JobEnd,
    /// DANGEROUS: the cheat applied to the job (`InflateTokens` changes the receipt).
    #[cfg(feature = "simulate")]
    pub dangerous_cheat: Option<crate::cheat::CheatMode>,
    pub metering: Metering,
    /// False when the request opted out of auditing. The receipt says `audited` only when
    /// a transcript was sealed: with no auditor key nothing is, whatever the request asked.
    pub audited: bool,
}

/// A receipt that is signed and queued for the log.
pub struct Issued {
    pub receipt: Vec<u8>,
    pub seq: u64,
    pub durable: Durable,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("sealing the transcript to the auditor key failed: {0}")]
    Seal(String),
    #[error("the receipt log refused the receipt: {0}")]
    Log(#[from] LogError),
}

struct ChainHead {
    next_seq: u64,
    prev: [u8; 32],
}

/// Signs and logs this instance's receipts.
pub struct Issuer {
    key: Ed25519KeyPair,
    instance: [u8; 16],
    evidence_digest: [u8; 32],
    model_digest: [u8; 32],
    auditor: Option<HpkeKey>,
    head: Mutex<ChainHead>,
    log: ReceiptLog,
    /// DANGEROUS: the jobs a cheating runtime cheated on (ground truth for its tests).
    #[cfg(feature = "simulate")]
    cheated: Mutex<Vec<([u8; 16], crate::cheat::CheatMode)>>,
}

impl Issuer {
    pub fn new(
        key: Ed25519KeyPair,
        instance: [u8; 16],
        evidence_digest: [u8; 32],
        model_digest: [u8; 32],
        auditor: Option<HpkeKey>,
        log: ReceiptLog,
    ) -> Self {
        Issuer {
            key,
            instance,
            evidence_digest,
            model_digest,
            auditor,
            head: Mutex::new(ChainHead {
                next_seq: 0,
                prev: [0; 32],
            }),
            log,
            #[cfg(feature = "simulate")]
            cheated: Mutex::new(Vec::new()),
        }
    }

    /// DANGEROUS: the jobs this runtime cheated on so far, with how.
    #[cfg(feature = "simulate")]
    pub fn dangerous_cheated_jobs(&self) -> Vec<([u8; 16], crate::cheat::CheatMode)> {
        self.cheated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn instance(&self) -> [u8; 16] {
        self.instance
    }

    pub fn evidence_digest(&self) -> [u8; 32] {
        self.evidence_digest
    }

    pub fn log(&self) -> &ReceiptLog {
        &self.log
    }

    /// Sign the job's receipt as the next link of the chain and queue it (with the sealed
    /// transcript) for the log. Wait on [`Issued::durable`] before showing it to anyone.
    pub fn issue(&self, facts: JobFacts) -> Result<Issued, IssueError> {
        let transcript = Transcript {
            job_id: facts.job_id,
            model_digest: self.model_digest,
            prompt_ids: facts.prompt_ids,
            output_ids: facts.output_ids,
            sampling: facts.sampling,
            fingerprint: facts.fingerprint,
            request: facts.request,
            end: facts.end,
        };
        let commitment = transcript.commitment();
        let sealed = match (&self.auditor, facts.audited) {
            (Some(key), true) => Some(
                transcript::seal(&transcript, key).map_err(|e| IssueError::Seal(e.to_string()))?,
            ),
            _ => None,
        };
        let m = facts.metering;
        let mut claims = ReceiptClaims {
            job_id: facts.job_id,
            issued_at: m.wall_end_ms / 1000,
            model_digest: self.model_digest,
            request_sha256: transcript.request_sha256(),
            response_sha256: facts.response_sha256,
            prompt_tokens: transcript.prompt_ids.len() as u64,
            output_tokens: transcript.output_ids.len() as u64,
            queue_wait_ms: m.queue_wait_ms,
            wall_start_ms: m.wall_start_ms,
            wall_end_ms: m.wall_end_ms.max(m.wall_start_ms),
            device_ms: m.device_ms,
            device_share_ppm: m.device_share_ppm.min(receipt::DEVICE_SHARE_FULL),
            sampling: facts.sampling,
            activation_commitment: commitment,
            // What happened, not what was asked for: audited means a transcript is stored.
            audited: sealed.is_some(),
            evidence_digest: self.evidence_digest,
            seq: 0,
            prev_receipt_sha256: [0; 32],
            runtime_instance: self.instance,
        };
        #[cfg(feature = "simulate")]
        if let Some(mode) = facts.dangerous_cheat {
            if mode == crate::cheat::CheatMode::InflateTokens {
                claims.output_tokens = crate::cheat::inflated(claims.output_tokens);
            }
            // Ground truth for the tests of the audit.
            self.cheated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((claims.job_id, mode));
            eprintln!(
                "veritee-enclave: DANGEROUS: cheated ({}) on job {}",
                mode.as_str(),
                hex::encode(claims.job_id)
            );
        }
        // The sequence number, the link and the log order are decided together.
        let mut head = self.head.lock().expect("receipt chain lock");
        claims.seq = head.next_seq;
        claims.prev_receipt_sha256 = head.prev;
        let bytes = receipt::sign(&claims, &self.key);
        let durable = self.log.append(claims.seq, bytes.clone(), sealed)?;
        head.next_seq += 1;
        head.prev = attestation::x509::sha256(&bytes);
        Ok(Issued {
            receipt: bytes,
            seq: claims.seq,
            durable,
        })
    }
}

/// A random job id (the receipt's `cti`).
pub fn new_job_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    // Job ids must be unique, not secret; a failing RNG is still a fault worth stopping for.
    aws_lc_rs::rand::fill(&mut id).expect("the system random number generator failed");
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt_log::LogOptions;
    use attestation::binding::{ReceiptKey, COSE_ALG_EDDSA, HPKE_KEM_X25519_SHA256};
    use aws_lc_rs::signature::KeyPair;

    fn facts(audited: bool) -> JobFacts {
        JobFacts {
            job_id: new_job_id(),
            request: b"{}".to_vec(),
            response_sha256: [2; 32],
            prompt_ids: vec![1, 2, 3],
            output_ids: vec![4, 5],
            sampling: attestation::receipt::SamplingParams {
                temperature: 0.0,
                top_p: 1.0,
                top_k: 0,
                max_tokens: 8,
                repetition_penalty: 1.0,
                seed: 7,
            },
            fingerprint: vec![9; 16],
            end: transcript::JobEnd::Length,
            dangerous_cheat: None,
            metering: Metering {
                wall_start_ms: 1_000,
                wall_end_ms: 2_000,
                device_ms: 900,
                ..Metering::default()
            },
            audited,
        }
    }

    /// Issue 13: a runtime with no auditor key marked every receipt `audited: true`
    /// (the request's wish), though no transcript was sealed. The flag now says whether a
    /// transcript was sealed and stored.
    #[test]
    fn audited_means_a_transcript_was_sealed() {
        let root =
            std::env::temp_dir().join(format!("veritee-receipts-audited-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (_, auditor_public) = attestation::transcript::generate_auditor_keypair();
        let auditor = HpkeKey {
            kem: HPKE_KEM_X25519_SHA256,
            public_key: auditor_public.to_vec(),
        };
        for (key, asked, want) in [
            (None, true, false),
            (None, false, false),
            (Some(auditor.clone()), true, true),
            (Some(auditor), false, false),
        ] {
            let instance = new_job_id();
            let log =
                ReceiptLog::create(&root, instance, b"evidence", LogOptions::default()).unwrap();
            let key_pair = Ed25519KeyPair::from_seed_unchecked(&[3u8; 32]).unwrap();
            let bound = ReceiptKey {
                alg: COSE_ALG_EDDSA,
                public_key: key_pair.public_key().as_ref().to_vec(),
            };
            let issuer = Issuer::new(key_pair, instance, [4; 32], [5; 32], key.clone(), log);
            let issued = issuer.issue(facts(asked)).unwrap();
            issued.durable.wait_blocking().unwrap();
            let records = issuer.log().read(0, 10).unwrap();
            issuer.log().shutdown();
            let verified = receipt::verify(&issued.receipt, &bound, &[4; 32]).unwrap();
            let claims = verified.claims();
            let case = format!("auditor key {}, asked {asked}", key.is_some());
            assert_eq!(claims.audited, want, "{case}");
            assert_eq!(records.len(), 1, "{case}");
            assert_eq!(records[0].transcript.is_some(), want, "{case}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
