//! `veritee-verify fraud-proof`: re-check one fraud proof independently.

use crate::fraud_proof::{FraudProof, Refused, MAX_PROOF_BYTES};
use crate::inputs;
use crate::reexec::ReferenceModel;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

pub fn run(proof: &Path, model: &Path, policy: Option<&Path>, json: bool) -> ExitCode {
    let refuse = |message: String| {
        if json {
            crate::emit(&format!(
                "{}\n",
                json!({"verdict": "refused", "error": message})
            ));
        }
        eprintln!(
            "veritee-verify: fraud proof {}: REFUSED: {message}",
            proof.display()
        );
        ExitCode::from(2)
    };
    let bytes = match inputs::bounded_file(proof, MAX_PROOF_BYTES) {
        Ok(b) => b,
        Err(e) => return refuse(e),
    };
    let parsed = match FraudProof::from_json(&bytes) {
        Ok(p) => p,
        Err(Refused(e)) => return refuse(e),
    };
    let own_policy = match policy {
        None => None,
        Some(path) => match inputs::policy(Some(path), false) {
            Ok(p) => Some(p),
            Err(e) => return refuse(e),
        },
    };
    let model = match ReferenceModel::load(model) {
        Ok(m) => m,
        Err(e) => return refuse(e),
    };
    let recheck = match parsed.recheck(
        &model,
        own_policy.as_ref().map(|(p, name)| (p, name.clone())),
    ) {
        Ok(r) => r,
        Err(Refused(e)) => return refuse(e),
    };
    let confirmed = recheck.confirmed();
    let claims = &recheck.job.claims;
    if json {
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "verdict": if confirmed { "confirmed" } else { "not_confirmed" },
                "class": recheck.claimed.code(),
                "job_id": hex::encode(claims.job_id),
                "seq": claims.seq,
                "runtime_instance": hex::encode(claims.runtime_instance),
                "policy": recheck.policy_source,
                "recomputed": recheck.audit,
            }))
            .expect("JSON")
        ));
    } else {
        let mut s = String::new();
        let w = &mut s;
        writeln!(
            w,
            "{}: {} in job {} (seq {} of runtime instance {})",
            if confirmed {
                "FRAUD CONFIRMED"
            } else {
                "NOT CONFIRMED"
            },
            recheck.claimed.code(),
            hex::encode(claims.job_id),
            claims.seq,
            hex::encode(claims.runtime_instance)
        )
        .unwrap();
        writeln!(
            w,
            "  evidence verified with {}; receipt signed by the bound key; transcript is the receipt's commitment",
            recheck.policy_source
        )
        .unwrap();
        match recheck.audit.class {
            None => writeln!(w, "  re-execution finds the job honest").unwrap(),
            Some(_) => {
                for f in &recheck.audit.findings {
                    writeln!(w, "  {}: {} {}", f.class.code(), f.check, f.detail).unwrap();
                }
            }
        }
        crate::emit(&s);
    }
    if confirmed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
