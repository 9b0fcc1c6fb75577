//! Audit bundles: everything an auditor needs to check a provider's metered usage
//! offline, in one file.
//!
//! A runtime start is one *instance*: fresh keys, one evidence bundle binding them, one
//! receipt chain from seq 0. A bundle holds one section per instance:
//!
//! ```text
//! AuditBundle = { 1: version (1), 2: [ Section* ] }
//! Section     = { 1: instance id (bstr .size 16),
//!                 2: evidence bundle (bstr: the CMW collection the runtime served),
//!                 3: [ receipt (bstr: tagged COSE_Sign1) * ],
//!                 4: [ sealed transcript (bstr) / null ] }   ; one per receipt
//! ```
//!
//! Maps use deterministic encoding (keys in order, definite lengths, shortest forms); the
//! parser refuses anything else, so one bundle has one encoding.
//!
//! [`verify_bundle`] checks, per section, in this order: the evidence (chain, policy,
//! binding of the runtime claims: [`crate::bundle::EvidenceBundle::verify_with`]); the
//! receipt log ([`receipt::verify_log`]: every receipt parsed strictly and checked for its
//! instance, evidence digest and algorithm, the chain from seq 0, and every receipt
//! authenticated by the key those claims bind: through the hash chain into the signatures
//! the chain needs, or every signature with [`VerifyOptions::every_signature`]); then each
//! receipt's model digest against the attested one and its transcript's envelope (or,
//! given the auditor's secret key, its contents against the receipt). A log cut short at
//! the end cannot be told from a log that ended there; a client holding a later receipt
//! can.
//!
//! [`verify_bundle_detailed`] returns the authenticated receipts too, and with
//! [`VerifyOptions::withheld_transcripts_are_findings`] records an audited job whose
//! transcript is missing or does not open as a finding instead of refusing the bundle.

use crate::binding::PolicyFile;
use crate::bundle::EvidenceBundle;
use crate::receipt::{self, ChainSummary, HourTotals, SignatureTotals, VerifiedReceipt};
use crate::{Reason, Rejection, Timestamp};
use ciborium::Value;
use serde::Serialize;
use std::collections::BTreeMap;

pub const AUDIT_BUNDLE_VERSION: u64 = 1;

/// One runtime instance's evidence, receipts and transcripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub instance: [u8; 16],
    pub evidence: Vec<u8>,
    pub receipts: Vec<Vec<u8>>,
    /// One per receipt; `None` for a job that opted out of auditing (or a runtime with
    /// no auditor key).
    pub transcripts: Vec<Option<Vec<u8>>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditBundle {
    pub sections: Vec<Section>,
}

fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection::new(Reason::ReceiptMalformed, detail)
}

fn key(k: u64) -> Value {
    Value::Integer(k.into())
}

impl AuditBundle {
    pub fn to_cbor(&self) -> Vec<u8> {
        let sections = self
            .sections
            .iter()
            .map(|s| {
                Value::Map(vec![
                    (key(1), Value::Bytes(s.instance.to_vec())),
                    (key(2), Value::Bytes(s.evidence.clone())),
                    (
                        key(3),
                        Value::Array(s.receipts.iter().cloned().map(Value::Bytes).collect()),
                    ),
                    (
                        key(4),
                        Value::Array(
                            s.transcripts
                                .iter()
                                .map(|t| t.clone().map_or(Value::Null, Value::Bytes))
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        let bundle = Value::Map(vec![
            (key(1), key(AUDIT_BUNDLE_VERSION)),
            (key(2), Value::Array(sections)),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&bundle, &mut out).expect("writing to a Vec");
        out
    }

    /// Parse strictly: known keys in order, right types, one transcript slot per receipt,
    /// and exactly the bytes [`Self::to_cbor`] writes.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, Rejection> {
        let value: Value = ciborium::from_reader(bytes)
            .map_err(|e| malformed(format!("audit bundle is not CBOR: {e}")))?;
        let mut top = fields(value, &[1, 2], "audit bundle")?.into_iter();
        let version = match top.next() {
            Some(Value::Integer(v)) => u64::try_from(v).ok(),
            _ => None,
        };
        if version != Some(AUDIT_BUNDLE_VERSION) {
            return Err(Rejection::new(
                Reason::UnsupportedVersion,
                format!(
                    "audit bundle version {version:?}; this verifier knows {AUDIT_BUNDLE_VERSION}"
                ),
            ));
        }
        let Some(Value::Array(raw_sections)) = top.next() else {
            return Err(malformed("audit bundle key 2 (sections) is not an array"));
        };
        let mut sections = Vec::with_capacity(raw_sections.len());
        for (i, raw) in raw_sections.into_iter().enumerate() {
            let what = format!("audit bundle section {i}");
            let mut f = fields(raw, &[1, 2, 3, 4], &what)?.into_iter();
            let instance = match f.next() {
                Some(Value::Bytes(b)) => <[u8; 16]>::try_from(b.as_slice()).ok(),
                _ => None,
            }
            .ok_or_else(|| malformed(format!("{what}: instance id is not 16 bytes")))?;
            let Some(Value::Bytes(evidence)) = f.next() else {
                return Err(malformed(format!("{what}: evidence is not a byte string")));
            };
            let Some(Value::Array(receipts)) = f.next() else {
                return Err(malformed(format!("{what}: receipts are not an array")));
            };
            let receipts = receipts
                .into_iter()
                .enumerate()
                .map(|(j, r)| match r {
                    Value::Bytes(b) => Ok(b),
                    _ => Err(malformed(format!(
                        "{what}: receipt {j} is not a byte string"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let Some(Value::Array(transcripts)) = f.next() else {
                return Err(malformed(format!("{what}: transcripts are not an array")));
            };
            if transcripts.len() != receipts.len() {
                return Err(malformed(format!(
                    "{what}: {} transcript slots for {} receipts",
                    transcripts.len(),
                    receipts.len()
                )));
            }
            let transcripts = transcripts
                .into_iter()
                .enumerate()
                .map(|(j, t)| match t {
                    Value::Bytes(b) => Ok(Some(b)),
                    Value::Null => Ok(None),
                    _ => Err(malformed(format!(
                        "{what}: transcript {j} is neither bytes nor null"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            sections.push(Section {
                instance,
                evidence,
                receipts,
                transcripts,
            });
        }
        let bundle = AuditBundle { sections };
        if bundle.to_cbor() != bytes {
            return Err(malformed(
                "audit bundle is not in deterministic CBOR (definite lengths, shortest forms, nothing after it)",
            ));
        }
        Ok(bundle)
    }
}

/// The values of a map whose keys must be exactly `keys`, in that order.
fn fields<const N: usize>(
    value: Value,
    keys: &[i64; N],
    what: &str,
) -> Result<Vec<Value>, Rejection> {
    let found = receipt::fields_in_order(value, keys, what).map_err(malformed)?;
    keys.iter()
        .zip(found)
        .map(|(k, v)| v.ok_or_else(|| malformed(format!("{what}: key {k} is missing"))))
        .collect()
}

/// How far a section's transcripts were checked. In a bundle accepted without findings every
/// audited job has its transcript (`present == audited_jobs`, `withheld == 0`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TranscriptTotals {
    /// Receipts whose job was audited (the receipt says so).
    pub audited_jobs: u64,
    /// Receipts whose job was not audited (opted out, or a runtime with no auditor key).
    pub not_audited: u64,
    /// Sealed transcripts present, each addressed to its receipt's job.
    pub present: u64,
    /// Transcripts decrypted with the auditor's key and matched against their receipts
    /// (0 without the key).
    pub opened: u64,
    /// Audited jobs recorded as withheld-transcript findings
    /// ([`VerifyOptions::withheld_transcripts_are_findings`]; 0 otherwise): no transcript,
    /// a malformed envelope or one addressed to another job (none of these is `present`),
    /// or one present that the opener refused (not `opened`).
    pub withheld: u64,
}

/// What one verified section adds up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionReport {
    #[serde(with = "crate::binding::hex_bytes")]
    pub instance: [u8; 16],
    #[serde(with = "crate::binding::hex_bytes")]
    pub evidence_sha256: [u8; 32],
    pub platform: &'static str,
    #[serde(with = "crate::binding::hex_bytes")]
    pub model_digest: [u8; 32],
    pub runtime_version: String,
    #[serde(with = "crate::binding::hex_bytes")]
    pub receipt_key: Vec<u8>,
    /// `None` for an instance that issued no receipt.
    pub chain: Option<ChainSummary>,
    /// How the receipts were authenticated: signatures checked, and receipts authenticated
    /// through the hash chain.
    pub signatures: SignatureTotals,
    pub transcripts: TranscriptTotals,
}

/// The verified totals of a whole bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub sections: Vec<SectionReport>,
    pub jobs: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub device_ms: u64,
    pub billed_device_seconds: u64,
    /// Keyed by the start of the UTC hour (seconds since the Unix epoch), all instances.
    pub per_hour: BTreeMap<u64, HourTotals>,
}

/// The auditor's secret HPKE key opens transcripts; without it only their envelopes are
/// checked.
pub type TranscriptOpener<'a> = &'a dyn Fn(&[u8], &receipt::ReceiptClaims) -> Result<(), Rejection>;

fn in_section(i: usize, r: Rejection) -> Rejection {
    Rejection::new(r.reason, format!("section {i}: {}", r.detail))
}

/// How [`verify_bundle_detailed`] checks a bundle. The default: receipts authenticated
/// through the hash chain (the signatures the chain needs), and every failure refuses the
/// bundle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Check every receipt's own signature ([`receipt::verify_log`]'s every-signature
    /// mode) rather than those the chain needs.
    pub every_signature: bool,
    /// Record an audited job whose sealed transcript is missing, malformed, addressed to
    /// another job, or refused by the opener as a [`WithheldTranscript`] finding instead of
    /// refusing the bundle (the re-execution audit's `transcript_withheld`). Everything
    /// else still refuses the bundle, a transcript stored for a job that was not audited
    /// included.
    pub withheld_transcripts_are_findings: bool,
}

/// An audited job whose transcript the bundle does not deliver (see
/// [`VerifyOptions::withheld_transcripts_are_findings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithheldTranscript {
    /// Index of the section in the bundle.
    pub section: usize,
    /// Index of the receipt (and transcript slot) in the section.
    pub index: usize,
    pub job_id: [u8; 16],
    /// What is wrong: [`Reason::TranscriptMissing`], [`Reason::TranscriptMalformed`],
    /// [`Reason::TranscriptMismatch`] (addressed to another job), or the opener's reason.
    pub rejection: Rejection,
}

/// A verified bundle with what the re-execution audit needs beyond the totals.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedBundle {
    pub report: AuditReport,
    /// Per section, index-aligned with the section's `receipts` and `transcripts`: every
    /// receipt, authenticated.
    pub receipts: Vec<Vec<VerifiedReceipt>>,
    /// Withheld-transcript findings, in bundle order (empty unless asked for).
    pub withheld: Vec<WithheldTranscript>,
}

/// Verify a whole bundle against `policy` at `at` with the default [`VerifyOptions`] (see
/// the module doc for what is checked). The first failure is returned with the section and
/// receipt it concerns.
pub fn verify_bundle(
    bundle: &AuditBundle,
    policy: &PolicyFile,
    at: Timestamp,
    open_transcript: Option<TranscriptOpener<'_>>,
) -> Result<AuditReport, Rejection> {
    verify_bundle_detailed(
        bundle,
        policy,
        at,
        open_transcript,
        &VerifyOptions::default(),
    )
    .map(|v| v.report)
}

/// [`verify_bundle`] with options, returning the authenticated receipts and any
/// withheld-transcript findings with the report.
pub fn verify_bundle_detailed(
    bundle: &AuditBundle,
    policy: &PolicyFile,
    at: Timestamp,
    open_transcript: Option<TranscriptOpener<'_>>,
    options: &VerifyOptions,
) -> Result<VerifiedBundle, Rejection> {
    if bundle.sections.is_empty() {
        return Err(malformed("the audit bundle holds no runtime instance"));
    }
    let mut report = AuditReport {
        sections: Vec::with_capacity(bundle.sections.len()),
        jobs: 0,
        prompt_tokens: 0,
        output_tokens: 0,
        device_ms: 0,
        billed_device_seconds: 0,
        per_hour: BTreeMap::new(),
    };
    let mut receipts = Vec::with_capacity(bundle.sections.len());
    let mut withheld = Vec::new();
    let mut seen_instances = std::collections::HashSet::new();
    for (i, section) in bundle.sections.iter().enumerate() {
        if !seen_instances.insert(section.instance) {
            return Err(Rejection::new(
                Reason::ReceiptDuplicate,
                format!(
                    "section {i}: runtime instance {} appears twice in the bundle",
                    hex::encode(section.instance)
                ),
            ));
        }
        let (s, verified) = verify_section(section, policy, at, open_transcript, options)
            .map_err(|r| in_section(i, r))?;
        if let Some(chain) = &s.chain {
            add_chain(&mut report, chain).map_err(|r| in_section(i, r))?;
        }
        report.sections.push(s);
        withheld.extend(verified.withheld.into_iter().map(|(index, rejection)| {
            WithheldTranscript {
                section: i,
                index,
                job_id: verified.receipts[index].claims().job_id,
                rejection,
            }
        }));
        receipts.push(verified.receipts);
    }
    Ok(VerifiedBundle {
        report,
        receipts,
        withheld,
    })
}

impl AuditReport {
    /// The bundle's overall totals.
    pub fn totals(&self) -> HourTotals {
        HourTotals {
            jobs: self.jobs,
            prompt_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
            device_ms: self.device_ms,
            billed_device_seconds: self.billed_device_seconds,
        }
    }

    fn set_totals(&mut self, t: HourTotals) {
        self.jobs = t.jobs;
        self.prompt_tokens = t.prompt_tokens;
        self.output_tokens = t.output_tokens;
        self.device_ms = t.device_ms;
        self.billed_device_seconds = t.billed_device_seconds;
    }
}

/// Add one verified section's totals to the bundle's, overall and per hour. Every sum is
/// checked: the counts are what each runtime signed, and a sum past 64 bits is refused
/// (`receipt_malformed`, as within one chain) rather than wrapped.
fn add_chain(report: &mut AuditReport, chain: &ChainSummary) -> Result<(), Rejection> {
    let overflow = |what: String| {
        malformed(format!(
            "receipt totals overflow 64 bits ({what}) when this instance's are added to the bundle's"
        ))
    };
    let section = HourTotals {
        jobs: chain.jobs,
        prompt_tokens: chain.prompt_tokens,
        output_tokens: chain.output_tokens,
        device_ms: chain.device_ms,
        billed_device_seconds: chain.billed_device_seconds,
    };
    let total = report
        .totals()
        .checked_add(&section)
        .ok_or_else(|| overflow("overall".into()))?;
    let mut hours = Vec::with_capacity(chain.per_hour.len());
    for (hour, t) in &chain.per_hour {
        let sum = report
            .per_hour
            .get(hour)
            .copied()
            .unwrap_or_default()
            .checked_add(t)
            .ok_or_else(|| {
                overflow(format!(
                    "hour starting {}",
                    Timestamp::from_unix(*hour as i64)
                ))
            })?;
        hours.push((*hour, sum));
    }
    report.set_totals(total);
    report.per_hour.extend(hours);
    Ok(())
}

/// One section's authenticated receipts and its findings (receipt index, why).
struct SectionReceipts {
    receipts: Vec<VerifiedReceipt>,
    withheld: Vec<(usize, Rejection)>,
}

fn verify_section(
    section: &Section,
    policy: &PolicyFile,
    at: Timestamp,
    open_transcript: Option<TranscriptOpener<'_>>,
    options: &VerifyOptions,
) -> Result<(SectionReport, SectionReceipts), Rejection> {
    let evidence = EvidenceBundle::from_cbor(&section.evidence)?;
    let attested = evidence.verify_with(policy, at)?;
    let claims = attested.claims();
    let evidence_sha256 = attested.evidence_sha256();
    let at_receipt =
        |j: usize, r: Rejection| Rejection::new(r.reason, format!("receipt {j}: {}", r.detail));
    // Authenticity and completeness of the log first, then what the receipts say.
    let log = receipt::verify_log(
        &section.receipts,
        &claims.receipt_key,
        &evidence_sha256,
        &section.instance,
        options.every_signature,
    )
    .map_err(|(j, r)| at_receipt(j, r))?;
    if let Some(chain) = &log.chain {
        if chain.first_seq != 0 {
            return Err(Rejection::new(
                Reason::ReceiptGap,
                format!(
                    "the log starts at seq {}: receipts 0 to {} are missing",
                    chain.first_seq,
                    chain.first_seq - 1
                ),
            ));
        }
    }
    let mut transcripts = TranscriptTotals::default();
    let mut withheld = Vec::new();
    for (j, (r, sealed)) in log.receipts.iter().zip(&section.transcripts).enumerate() {
        let c = r.claims();
        if c.model_digest != claims.model_digest {
            return Err(at_receipt(
                j,
                Rejection::new(
                    Reason::ReceiptModelMismatch,
                    format!(
                        "receipt seq {} names model {}, the attested runtime serves {}",
                        c.seq,
                        hex::encode(c.model_digest),
                        hex::encode(claims.model_digest)
                    ),
                ),
            ));
        }
        if c.audited {
            transcripts.audited_jobs += 1;
        } else {
            transcripts.not_audited += 1;
        }
        let checked = check_transcript(
            c,
            sealed.as_deref(),
            claims.auditor_hpke_key.is_some(),
            open_transcript,
            &mut transcripts,
        );
        match checked {
            Ok(()) => {}
            // Only an audited job's transcript can be withheld; a transcript stored for a
            // job that was not audited is a malformed bundle.
            Err(r) if options.withheld_transcripts_are_findings && c.audited => {
                transcripts.withheld += 1;
                withheld.push((j, r));
            }
            Err(r) => return Err(at_receipt(j, r)),
        }
    }
    let report = SectionReport {
        instance: section.instance,
        evidence_sha256,
        platform: attested.evidence().platform().as_str(),
        model_digest: claims.model_digest,
        runtime_version: claims.runtime_version.clone(),
        receipt_key: claims.receipt_key.public_key.clone(),
        chain: log.chain,
        signatures: log.signatures,
        transcripts,
    };
    Ok((
        report,
        SectionReceipts {
            receipts: log.receipts,
            withheld,
        },
    ))
}

/// An audited job has a transcript addressed to it; any other job has none. A receipt
/// that says `audited` for a runtime with no auditor key is a receipt whose flag is false:
/// no transcript could have been sealed, so it is `transcript_missing`, never counted as
/// audited. `totals` counts the transcript as present once its envelope is addressed to
/// the job, and as opened once the opener accepts it.
fn check_transcript(
    claims: &receipt::ReceiptClaims,
    sealed: Option<&[u8]>,
    auditor_configured: bool,
    open_transcript: Option<TranscriptOpener<'_>>,
    totals: &mut TranscriptTotals,
) -> Result<(), Rejection> {
    match (claims.audited, sealed) {
        (false, None) => Ok(()),
        (true, None) => Err(Rejection::new(
            Reason::TranscriptMissing,
            if auditor_configured {
                format!(
                    "receipt seq {} is for an audited job but the bundle has no transcript for it",
                    claims.seq
                )
            } else {
                format!(
                    "receipt seq {} says its job was audited, but the runtime names no auditor key, so no transcript was sealed",
                    claims.seq
                )
            },
        )),
        (false, Some(_)) => Err(Rejection::new(
            Reason::TranscriptMalformed,
            format!(
                "receipt seq {} is for a job that was not audited, yet a transcript is stored for it",
                claims.seq
            ),
        )),
        (true, Some(_)) if !auditor_configured => Err(Rejection::new(
            Reason::TranscriptMalformed,
            format!(
                "receipt seq {} has a transcript, but the runtime names no auditor key to seal it to",
                claims.seq
            ),
        )),
        (true, Some(sealed)) => {
            let job = crate::transcript::sealed_job_id(sealed)?;
            if job != claims.job_id {
                return Err(Rejection::new(
                    Reason::TranscriptMismatch,
                    format!(
                        "receipt seq {} is job {}, its transcript is addressed to job {}",
                        claims.seq,
                        hex::encode(claims.job_id),
                        hex::encode(job)
                    ),
                ));
            }
            totals.present += 1;
            if let Some(open) = open_transcript {
                open(sealed, claims)?;
                totals.opened += 1;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> AuditBundle {
        AuditBundle {
            sections: vec![Section {
                instance: [3; 16],
                evidence: vec![1, 2, 3],
                receipts: vec![vec![0xd2; 40], vec![0xd2; 41]],
                transcripts: vec![Some(vec![9; 70]), None],
            }],
        }
    }

    fn reason(bytes: &[u8]) -> Reason {
        AuditBundle::from_cbor(bytes).unwrap_err().reason
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_and_strict_parsing() {
        let b = bundle();
        let bytes = b.to_cbor();
        assert_eq!(AuditBundle::from_cbor(&bytes).unwrap(), b);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(reason(&trailing), Reason::ReceiptMalformed);
        assert_eq!(reason(&bytes[..bytes.len() - 1]), Reason::ReceiptMalformed);
        let mut uneven = bundle();
        uneven.sections[0].transcripts.pop();
        assert_eq!(reason(&uneven.to_cbor()), Reason::ReceiptMalformed);
        let v2 = Value::Map(vec![(key(1), key(2)), (key(2), Value::Array(vec![]))]);
        assert_eq!(reason(&encode(&v2)), Reason::UnsupportedVersion);
        let missing = Value::Map(vec![(key(1), key(1))]);
        assert_eq!(reason(&encode(&missing)), Reason::ReceiptMalformed);
        let swapped = Value::Map(vec![(key(2), Value::Array(vec![])), (key(1), key(1))]);
        assert_eq!(reason(&encode(&swapped)), Reason::ReceiptMalformed);
    }

    fn chain(device_ms: u64, hour: u64) -> ChainSummary {
        let t = HourTotals {
            jobs: 1,
            prompt_tokens: 10,
            output_tokens: 5,
            device_ms,
            billed_device_seconds: device_ms.div_ceil(1000),
        };
        ChainSummary {
            runtime_instance: [1; 16],
            evidence_digest: [2; 32],
            jobs: t.jobs,
            prompt_tokens: t.prompt_tokens,
            output_tokens: t.output_tokens,
            device_ms: t.device_ms,
            billed_device_seconds: t.billed_device_seconds,
            first_seq: 0,
            last_seq: 0,
            per_hour: BTreeMap::from([(hour, t)]),
        }
    }

    fn empty_report() -> AuditReport {
        AuditReport {
            sections: Vec::new(),
            jobs: 0,
            prompt_tokens: 0,
            output_tokens: 0,
            device_ms: 0,
            billed_device_seconds: 0,
            per_hour: BTreeMap::new(),
        }
    }

    /// Issue 13: the totals across sections were unchecked additions, so two sections
    /// whose signed device times sum past 2^64 wrapped (a release build) into a small
    /// bill. Each sum is now checked, overall and per hour.
    #[test]
    fn totals_across_sections_are_checked() {
        let mut report = empty_report();
        add_chain(&mut report, &chain(1_500, 3600)).unwrap();
        add_chain(&mut report, &chain(2_000, 3600)).unwrap();
        add_chain(&mut report, &chain(700, 7200)).unwrap();
        assert_eq!(report.jobs, 3);
        assert_eq!(report.device_ms, 4_200);
        assert_eq!(report.billed_device_seconds, 2 + 2 + 1);
        assert_eq!(report.per_hour[&3600].device_ms, 3_500);
        assert_eq!(report.per_hour[&7200].jobs, 1);

        let before = report.clone();
        let huge = chain(u64::MAX - 1_000, 3600);
        let err = add_chain(&mut report, &huge).unwrap_err();
        assert_eq!(err.reason, Reason::ReceiptMalformed);
        assert!(err.detail.contains("overflow"), "{}", err.detail);
        assert_eq!(report, before, "a refused section adds nothing");
        // Overall totals fine, one hour's sum overflows: still refused, naming the hour.
        let mut report = empty_report();
        report.per_hour.insert(
            3600,
            HourTotals {
                device_ms: u64::MAX,
                ..HourTotals::default()
            },
        );
        let err = add_chain(&mut report, &chain(1, 3600)).unwrap_err();
        assert!(
            err.detail.contains("hour starting 1970-01-01T01:00:00Z"),
            "{}",
            err.detail
        );
        assert_eq!(
            HourTotals::default().checked_add(&HourTotals {
                jobs: u64::MAX,
                ..HourTotals::default()
            }),
            Some(HourTotals {
                jobs: u64::MAX,
                ..HourTotals::default()
            })
        );
    }

    /// Issue 13: a runtime with no auditor key marked receipts `audited: true` and the
    /// verifier accepted "516 audited, 0 present". An audited receipt without a transcript
    /// is `transcript_missing`, whether or not the runtime has an auditor key.
    #[test]
    fn an_audited_receipt_needs_its_transcript() {
        let mut c = crate::receipt::tests::claims(0, [0; 32]);
        c.audited = true;
        let mut totals = TranscriptTotals::default();
        for auditor_configured in [false, true] {
            assert_eq!(
                check_transcript(&c, None, auditor_configured, None, &mut totals)
                    .unwrap_err()
                    .reason,
                Reason::TranscriptMissing
            );
        }
        let sealed = [0u8; 8];
        assert_eq!(
            check_transcript(&c, Some(&sealed), false, None, &mut totals)
                .unwrap_err()
                .reason,
            Reason::TranscriptMalformed
        );
        c.audited = false;
        assert_eq!(check_transcript(&c, None, false, None, &mut totals), Ok(()));
        assert_eq!(check_transcript(&c, None, true, None, &mut totals), Ok(()));
        assert_eq!(
            check_transcript(&c, Some(&sealed), true, None, &mut totals)
                .unwrap_err()
                .reason,
            Reason::TranscriptMalformed
        );
        assert_eq!(totals, TranscriptTotals::default(), "nothing was present");
    }

    // ---- verify_bundle_detailed on the simulated runtime's bundle (fuzz/fixtures) ----

    const SIM_BUNDLE: &[u8] = include_bytes!("../../fuzz/fixtures/sim-audit-bundle.cbor");

    fn open_sim(sealed: &[u8], claims: &receipt::ReceiptClaims) -> Result<(), Rejection> {
        crate::transcript::check_against_receipt(
            &crate::transcript::open(sealed, &crate::fuzzing::SIM_AUDITOR_SECRET)?,
            claims,
        )
    }

    const STRICT: VerifyOptions = VerifyOptions {
        every_signature: false,
        withheld_transcripts_are_findings: false,
    };
    const FINDINGS: VerifyOptions = VerifyOptions {
        every_signature: false,
        withheld_transcripts_are_findings: true,
    };

    fn detailed(
        bundle: &AuditBundle,
        opener: Option<TranscriptOpener<'_>>,
        options: &VerifyOptions,
    ) -> Result<VerifiedBundle, Rejection> {
        verify_bundle_detailed(
            bundle,
            &crate::fuzzing::sim_policy(),
            crate::fuzzing::SIM_TIME,
            opener,
            options,
        )
    }

    #[test]
    fn the_detailed_verification_returns_the_authenticated_receipts() {
        let bundle = AuditBundle::from_cbor(SIM_BUNDLE).unwrap();
        let section = &bundle.sections[0];
        let n = section.receipts.len();
        let v = detailed(&bundle, Some(&open_sim), &VerifyOptions::default()).unwrap();
        assert_eq!(
            Ok(v.report.clone()),
            verify_bundle(
                &bundle,
                &crate::fuzzing::sim_policy(),
                crate::fuzzing::SIM_TIME,
                Some(&open_sim)
            )
        );
        assert!(v.withheld.is_empty());
        assert_eq!(v.receipts.len(), 1);
        assert_eq!(v.receipts[0].len(), n);
        for (r, bytes) in v.receipts[0].iter().zip(&section.receipts) {
            assert_eq!(r.sha256(), crate::x509::sha256(bytes));
        }
        let s = &v.report.sections[0];
        assert_eq!(
            (s.signatures.every_signature, s.signatures.verified),
            (false, 1),
            "one signature (the last receipt's) authenticates a log this short"
        );
        assert_eq!(s.signatures.chain_authenticated, n as u64 - 1);
        assert_eq!(s.transcripts.withheld, 0);
        let every = VerifyOptions {
            every_signature: true,
            ..VerifyOptions::default()
        };
        let all = detailed(&bundle, Some(&open_sim), &every).unwrap();
        assert_eq!(all.receipts, v.receipts);
        let s = &all.report.sections[0];
        assert_eq!(
            (s.signatures.verified, s.signatures.chain_authenticated),
            (n as u64, 0)
        );

        // A receipt in the middle altered: refused in both modes, named.
        let mut forged = bundle.clone();
        *forged.sections[0].receipts[1].last_mut().unwrap() ^= 1;
        for options in [VerifyOptions::default(), every] {
            let e = detailed(&forged, None, &options).unwrap_err();
            assert_eq!(e.reason, Reason::ReceiptSignatureInvalid);
            assert!(
                e.detail.starts_with("section 0: receipt 1: "),
                "{}",
                e.detail
            );
        }
    }

    #[test]
    fn withheld_transcripts_are_findings_when_asked_and_refusals_otherwise() {
        let bundle = AuditBundle::from_cbor(SIM_BUNDLE).unwrap();
        let genuine = detailed(&bundle, Some(&open_sim), &STRICT).unwrap();
        let receipts = &genuine.receipts[0];
        let audited: Vec<usize> = (0..receipts.len())
            .filter(|&j| receipts[j].claims().audited)
            .collect();
        let audited_jobs = audited.len() as u64;
        let [a, b] = audited[..2] else {
            panic!("the fixture has {audited_jobs} audited jobs, fewer than 2")
        };
        let job = |j: usize| receipts[j].claims().job_id;
        let (a_sealed, b_sealed) = {
            let t = &bundle.sections[0].transcripts;
            (t[a].clone(), t[b].clone())
        };
        // The auditor's opener refuses job b's transcript.
        let b_job = job(b);
        let refusing = |sealed: &[u8], claims: &receipt::ReceiptClaims| {
            if claims.job_id == b_job {
                return Err(Rejection::new(
                    Reason::TranscriptUndecryptable,
                    "the auditor's key does not open it",
                ));
            }
            open_sim(sealed, claims)
        };
        let edit = |edits: &[(usize, Option<Vec<u8>>)]| {
            let mut bundle = bundle.clone();
            for (j, t) in edits {
                bundle.sections[0].transcripts[*j] = t.clone();
            }
            bundle
        };
        let malformed = Some(vec![0xa0]); // an empty map: no sealed transcript
        let genuine_opener: TranscriptOpener<'_> = &open_sim;
        let cases = [
            (
                edit(&[(a, None)]),
                genuine_opener,
                a,
                Reason::TranscriptMissing,
            ),
            (
                edit(&[(a, malformed.clone())]),
                genuine_opener,
                a,
                Reason::TranscriptMalformed,
            ),
            // Addressed to another job.
            (
                edit(&[(a, b_sealed.clone())]),
                genuine_opener,
                a,
                Reason::TranscriptMismatch,
            ),
            (
                bundle.clone(),
                &refusing,
                b,
                Reason::TranscriptUndecryptable,
            ),
        ];
        // Strict (the default): each refuses the bundle, naming the receipt.
        for (bundle, opener, j, reason) in &cases {
            let e = detailed(bundle, Some(*opener), &STRICT).unwrap_err();
            assert_eq!(e.reason, *reason);
            assert!(
                e.detail.starts_with(&format!("section 0: receipt {j}: ")),
                "{}",
                e.detail
            );
        }
        // As findings: each one recorded with its indices and job.
        for (bundle, opener, j, reason) in &cases {
            let v = detailed(bundle, Some(*opener), &FINDINGS).unwrap();
            let w = &v.withheld[..];
            assert_eq!(w.len(), 1, "{w:?}");
            assert_eq!(
                (w[0].section, w[0].index, w[0].job_id, w[0].rejection.reason),
                (0, *j, job(*j), *reason)
            );
            assert_eq!(v.report.sections[0].transcripts.withheld, 1);
            assert_eq!(v.receipts, genuine.receipts, "the receipts are all there");
            assert_eq!(v.report.jobs, genuine.report.jobs);
        }
        let findings = |v: &VerifiedBundle| -> Vec<(usize, usize, [u8; 16], Reason)> {
            v.withheld
                .iter()
                .map(|w| (w.section, w.index, w.job_id, w.rejection.reason))
                .collect()
        };
        // Two at once; the counts say what was delivered.
        let v = detailed(&edit(&[(a, None)]), Some(&refusing), &FINDINGS).unwrap();
        assert_eq!(
            findings(&v),
            vec![
                (0, a, job(a), Reason::TranscriptMissing),
                (0, b, job(b), Reason::TranscriptUndecryptable)
            ]
        );
        let t = &v.report.sections[0].transcripts;
        assert_eq!(
            (t.audited_jobs, t.present, t.opened, t.withheld),
            (audited_jobs, audited_jobs - 1, audited_jobs - 2, 2),
            "a's transcript is not present; b's is, but it did not open"
        );
        let swapped = edit(&[(a, malformed.clone()), (b, a_sealed.clone())]);
        let v = detailed(&swapped, Some(&open_sim), &FINDINGS).unwrap();
        assert_eq!(
            findings(&v),
            vec![
                (0, a, job(a), Reason::TranscriptMalformed),
                (0, b, job(b), Reason::TranscriptMismatch)
            ]
        );
        let t = &v.report.sections[0].transcripts;
        assert_eq!(
            (t.present, t.opened, t.withheld),
            (audited_jobs - 2, audited_jobs - 2, 2)
        );
        // Without the auditor's key only the envelopes are checked.
        let v = detailed(&swapped, None, &FINDINGS).unwrap();
        let t = &v.report.sections[0].transcripts;
        assert_eq!((t.present, t.opened, t.withheld), (audited_jobs - 2, 0, 2));
        // Strict, the first of them refuses the bundle.
        let e = detailed(&swapped, None, &STRICT).unwrap_err();
        assert_eq!(e.reason, Reason::TranscriptMalformed);

        // Everything else still refuses the bundle: a forged receipt, and a transcript
        // stored for a job that was not audited.
        let mut forged = swapped.clone();
        *forged.sections[0].receipts[b].last_mut().unwrap() ^= 1;
        let e = detailed(&forged, Some(&refusing), &FINDINGS).unwrap_err();
        assert_eq!(e.reason, Reason::ReceiptSignatureInvalid);
        let not_audited = (0..receipts.len())
            .find(|&j| !receipts[j].claims().audited)
            .expect("the fixture has a job that was not audited");
        let stored = edit(&[(not_audited, a_sealed)]);
        let e = detailed(&stored, None, &FINDINGS).unwrap_err();
        assert_eq!(e.reason, Reason::TranscriptMalformed);
        assert!(e.detail.contains("not audited"), "{}", e.detail);
    }

    #[test]
    fn an_empty_bundle_is_refused() {
        let policy = PolicyFile {
            evidence: crate::policy::Policy::default_verifier(),
            runtime: crate::binding::RuntimePolicy::dangerous_any(),
            gpu: crate::policy::GpuPolicy::none(),
        };
        let r = verify_bundle(
            &AuditBundle::default(),
            &policy,
            Timestamp::from_unix(0),
            None,
        );
        assert_eq!(r.unwrap_err().reason, Reason::ReceiptMalformed);
    }
}
