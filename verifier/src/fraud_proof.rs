//! Fraud proofs: one self-contained file per job the audit found cheating, that anyone
//! holding the model file can re-check (`veritee-verify fraud-proof`).
//!
//! The file carries what makes the finding independent of the auditor: the evidence
//! bundle that binds the runtime's receipt key, the signed receipt, and the opened
//! transcript, whose SHA-256 is the receipt's signed activation commitment, so neither the
//! auditor's private key nor trust in the auditor is needed. Re-checking verifies the
//! evidence (with the policy in the file, or the checker's own), the receipt's signature
//! with the bound key, and the commitment; then it re-runs the audit of that one job and
//! confirms the class. Anything altered in the signed parts is refused; an altered class
//! or finding is simply not confirmed, because the checker recomputes it.
//!
//! JSON, every field required (`null` where marked), no others:
//!
//! | field | |
//! |---|---|
//! | `format` | `"veritee-fraud-proof"` |
//! | `version` | 1 |
//! | `class` | the fraud class (`fabricated_tokens`, …) |
//! | `at` | the verification time (RFC 3339) for the evidence |
//! | `policy` | the auditor's policy file (TOML text); empty when the audit ran with `--dangerous-any-runtime` (re-checking then needs `--policy`) |
//! | `evidence` | the evidence bundle, hex |
//! | `receipt` | the job's tagged COSE_Sign1 receipt, hex |
//! | `transcript` | the job's opened transcript (canonical CBOR), hex |
//! | `related_receipt`, `related_transcript` | for `replayed_output`: the job whose answer was replayed (same evidence), hex, else `null` |
//! | `cost_model` | for `time_inflation`: the auditor's cost model (TOML text), else `null` |
//! | `findings` | what the audit found: checks, positions, values (informative; recomputed) |

use crate::cost_model::CostModel;
use crate::reexec::{EarlierOutput, FraudClass, JobAudit, ReferenceModel};
use attestation::binding::PolicyFile;
use attestation::bundle::EvidenceBundle;
use attestation::receipt::{self, ReceiptClaims};
use attestation::transcript::Transcript;
use attestation::{Rejection, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FORMAT: &str = "veritee-fraud-proof";
pub const VERSION: u64 = 1;
/// The largest proof file read (a transcript can hold a long request and output).
pub const MAX_PROOF_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudProof {
    pub format: String,
    pub version: u64,
    pub class: String,
    pub at: String,
    pub policy: String,
    pub evidence: String,
    pub receipt: String,
    pub transcript: String,
    pub related_receipt: Option<String>,
    pub related_transcript: Option<String>,
    pub cost_model: Option<String>,
    pub findings: Value,
}

/// Why a proof cannot be re-checked at all (exit 2): it is malformed, or its signed
/// parts do not verify.
#[derive(Debug)]
pub struct Refused(pub String);

impl From<Rejection> for Refused {
    fn from(r: Rejection) -> Self {
        Refused(format!("{} ({})", r.detail, r.reason.code()))
    }
}

/// A verified job: the receipt's claims and its transcript, matched by the commitment.
pub struct ProvenJob {
    pub claims: ReceiptClaims,
    pub transcript: Transcript,
}

/// What re-checking a proof found.
pub struct Recheck {
    pub claimed: FraudClass,
    pub audit: JobAudit,
    pub job: ProvenJob,
    pub policy_source: String,
}

impl Recheck {
    /// The proof's class is among what the re-run audit finds.
    pub fn confirmed(&self) -> bool {
        self.audit.findings.iter().any(|f| f.class == self.claimed)
    }
}

fn unhex(field: &str, text: &str) -> Result<Vec<u8>, Refused> {
    hex::decode(text).map_err(|e| Refused(format!("{field} is not hex: {e}")))
}

impl FraudProof {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a fraud proof serializes") + "\n"
    }

    pub fn from_json(bytes: &[u8]) -> Result<FraudProof, Refused> {
        let p: FraudProof = serde_json::from_slice(bytes)
            .map_err(|e| Refused(format!("not a fraud proof: {e}")))?;
        if p.format != FORMAT {
            return Err(Refused(format!("format is '{}', not '{FORMAT}'", p.format)));
        }
        if p.version != VERSION {
            return Err(Refused(format!(
                "fraud proof version {}; this verifier reads version {VERSION}",
                p.version
            )));
        }
        Ok(p)
    }

    /// Verify the signed parts and re-run the audit of the job with `model`.
    /// `policy_override`: the checker's own policy instead of the one in the file.
    pub fn recheck(
        &self,
        model: &ReferenceModel,
        policy_override: Option<(&PolicyFile, String)>,
    ) -> Result<Recheck, Refused> {
        let claimed = FraudClass::from_code(&self.class)
            .ok_or_else(|| Refused(format!("unknown fraud class '{}'", self.class)))?;
        let at =
            Timestamp::parse_rfc3339(&self.at).map_err(|e| Refused(format!("at: {}", e.detail)))?;
        let embedded;
        let (policy, policy_source) = match policy_override {
            Some((p, name)) => (p, name),
            None if self.policy.trim().is_empty() => {
                return Err(Refused(
                    "the proof carries no policy (the audit ran with --dangerous-any-runtime): re-check it with --policy FILE".into(),
                ))
            }
            None => {
                embedded = PolicyFile::from_toml(&self.policy)
                    .map_err(|e| Refused(format!("the proof's policy: {}", e.detail)))?;
                (&embedded, "the policy in the proof".to_string())
            }
        };
        let evidence = unhex("evidence", &self.evidence)?;
        let attested = EvidenceBundle::from_cbor(&evidence)?.verify_with(policy, at)?;
        let runtime = attested.claims();
        let verify_job = |receipt_hex: &str, transcript_hex: &str, what: &str| {
            let receipt = receipt::verify(
                &unhex(what, receipt_hex)?,
                &runtime.receipt_key,
                &attested.evidence_sha256(),
            )?;
            let claims = receipt.claims().clone();
            if claims.model_digest != runtime.model_digest {
                return Err(Refused(format!(
                    "{what}: names model {}, the attested runtime serves {}",
                    hex::encode(claims.model_digest),
                    hex::encode(runtime.model_digest)
                )));
            }
            let transcript = Transcript::from_cbor(&unhex(what, transcript_hex)?)?;
            if transcript.commitment() != claims.activation_commitment
                || transcript.job_id != claims.job_id
            {
                return Err(Refused(format!(
                    "{what}: the transcript is not the one the receipt commits to"
                )));
            }
            Ok(ProvenJob { claims, transcript })
        };
        let job = verify_job(&self.receipt, &self.transcript, "receipt")?;
        let related = match (&self.related_receipt, &self.related_transcript) {
            (Some(r), Some(t)) => Some(verify_job(r, t, "related_receipt")?),
            (None, None) => None,
            _ => {
                return Err(Refused(
                    "related_receipt and related_transcript come together".into(),
                ))
            }
        };
        if job.claims.model_digest != model.digest {
            return Err(Refused(format!(
                "the model file's digest is {}, the receipt's {}: re-check with the model the receipt names",
                hex::encode(model.digest),
                hex::encode(job.claims.model_digest)
            )));
        }
        let cost = match &self.cost_model {
            None => None,
            Some(text) => Some(CostModel::from_toml(text).map_err(Refused)?),
        };
        let others: Vec<EarlierOutput<'_>> = related
            .iter()
            .map(|r| EarlierOutput {
                job_id: r.claims.job_id,
                request_sha256: r.claims.request_sha256,
                transcript: &r.transcript,
            })
            .collect();
        let audit = model.audit(&job.claims, &job.transcript, cost.as_ref(), &others);
        drop(others);
        Ok(Recheck {
            claimed,
            audit,
            job,
            policy_source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof() -> FraudProof {
        FraudProof {
            format: FORMAT.into(),
            version: VERSION,
            class: "fabricated_tokens".into(),
            at: "2026-12-05T00:00:00Z".into(),
            policy: String::new(),
            evidence: String::new(),
            receipt: String::new(),
            transcript: String::new(),
            related_receipt: None,
            related_transcript: None,
            cost_model: None,
            findings: Value::Null,
        }
    }

    fn refusal(p: &FraudProof, model: &ReferenceModel) -> String {
        match p.recheck(model, None) {
            Err(Refused(why)) => why,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn malformed_proofs_are_refused_with_what_is_wrong() {
        let back = FraudProof::from_json(proof().to_json().as_bytes()).unwrap();
        assert_eq!(back, proof());
        let mut v: Value = serde_json::from_str(&proof().to_json()).unwrap();
        v["extra"] = Value::Bool(true);
        let e = FraudProof::from_json(v.to_string().as_bytes())
            .unwrap_err()
            .0;
        assert!(e.contains("unknown field"), "{e}");
        let e = FraudProof::from_json(
            proof()
                .to_json()
                .replace("\"version\": 1", "\"version\": 2")
                .as_bytes(),
        )
        .unwrap_err()
        .0;
        assert!(e.contains("version 2"), "{e}");
        let model = ReferenceModel::load(&inference::gguf::model_for_tests()).unwrap();
        let e = refusal(&proof(), &model);
        assert!(e.contains("carries no policy"), "{e}");
        let unknown = FraudProof {
            class: "cheating".into(),
            ..proof()
        };
        assert!(refusal(&unknown, &model).contains("unknown fraud class"));
        let bad_time = FraudProof {
            at: "yesterday".into(),
            ..proof()
        };
        assert!(refusal(&bad_time, &model).starts_with("at:"));
    }
}
