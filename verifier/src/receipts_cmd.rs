//! `veritee-verify receipts`: check an audit bundle offline and total the verified usage.

use attestation::audit::{self, AuditBundle, AuditReport, TranscriptOpener, VerifyOptions};
use attestation::binding::PolicyFile;
use attestation::receipt::{HourTotals, ReceiptClaims};
use attestation::{transcript, Rejection, Timestamp};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The biggest bundle this command reads (it holds every transcript of a provider's log).
const MAX_BUNDLE_BYTES: u64 = 4 << 30;

pub struct Args<'a> {
    pub bundle: &'a Path,
    pub at: &'a str,
    pub policy: Option<&'a Path>,
    /// Without a policy: accept any runtime claims (clap refuses both together).
    pub dangerous_any_runtime: bool,
    pub auditor_key: Option<&'a Path>,
    /// Check every receipt's signature, not only those the hash chain needs.
    pub every_signature: bool,
    pub json: bool,
}

pub fn run(args: &Args<'_>) -> ExitCode {
    let prepared = match prepare(args) {
        Ok(p) => p,
        Err(message) => {
            if args.json {
                crate::emit(&format!(
                    "{}\n",
                    json!({"verdict": "error", "reason": null, "error": message})
                ));
            }
            eprintln!("veritee-verify: {message}");
            return ExitCode::from(2);
        }
    };
    let (bytes, policy, policy_name, at, secret) = prepared;
    let opener = secret.map(|secret| {
        move |sealed: &[u8], claims: &ReceiptClaims| -> Result<(), Rejection> {
            let t = transcript::open(sealed, &secret)?;
            transcript::check_against_receipt(&t, claims)
        }
    });
    let options = VerifyOptions {
        every_signature: args.every_signature,
        withheld_transcripts_are_findings: false,
    };
    // A bundle that does not parse is a verdict (rejected), not a usage error: the file
    // is the thing under audit.
    let result = AuditBundle::from_cbor(&bytes).and_then(|bundle| {
        audit::verify_bundle_detailed(
            &bundle,
            &policy,
            at,
            opener.as_ref().map(|o| o as TranscriptOpener<'_>),
            &options,
        )
        .map(|verified| verified.report)
    });
    let text = if args.json {
        let mut v = match &result {
            Ok(report) => json!({"verdict": "accepted", "report": report}),
            Err(r) => json!({
                "verdict": "rejected",
                "reason": r.reason.code(),
                "reason_class": r.reason.class().as_str(),
                "detail": r.detail,
            }),
        };
        v["at"] = json!(at.to_rfc3339());
        v["policy"] = json!(policy_name);
        v["transcripts_opened"] = json!(secret.is_some());
        v["every_signature"] = json!(args.every_signature);
        format!("{}\n", serde_json::to_string_pretty(&v).expect("JSON"))
    } else {
        render_text(&result, &policy_name, at, secret.is_some())
    };
    crate::emit(&text);
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

type Prepared = (Vec<u8>, PolicyFile, String, Timestamp, Option<[u8; 32]>);

/// Usage-level work (exit 2): the time, the policy, the key, reading the bundle.
fn prepare(args: &Args<'_>) -> Result<Prepared, String> {
    let at = crate::inputs::time(args.at)?;
    let (policy, policy_name) = crate::inputs::policy(args.policy, args.dangerous_any_runtime)?;
    let secret = args
        .auditor_key
        .map(crate::inputs::auditor_key)
        .transpose()?;
    let bytes = crate::inputs::bounded_file(args.bundle, MAX_BUNDLE_BYTES)?;
    Ok((bytes, policy, policy_name, at, secret))
}

fn hour_label(hour: u64) -> String {
    Timestamp::from_unix(hour as i64).to_rfc3339()
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn render_text(
    result: &Result<AuditReport, Rejection>,
    policy: &str,
    at: Timestamp,
    opened: bool,
) -> String {
    let mut s = String::new();
    let w = &mut s;
    let report = match result {
        Err(r) => {
            writeln!(
                w,
                "REJECTED: {} ({})\n  {}",
                r.reason.code(),
                r.reason.class().as_str(),
                r.detail
            )
            .unwrap();
            writeln!(w, "\nverification time: {at}\npolicy: {policy}").unwrap();
            return s;
        }
        Ok(report) => report,
    };
    writeln!(w, "ACCEPTED").unwrap();
    writeln!(w, "\nverification time: {at}\npolicy: {policy}").unwrap();
    for sec in &report.sections {
        writeln!(
            w,
            "\nruntime instance {} ({}, {})",
            hex::encode(sec.instance),
            sec.platform,
            sec.runtime_version
        )
        .unwrap();
        writeln!(w, "  evidence sha256: {}", hex::encode(sec.evidence_sha256)).unwrap();
        writeln!(w, "  model digest:    {}", hex::encode(sec.model_digest)).unwrap();
        writeln!(w, "  receipt key:     {}", hex::encode(&sec.receipt_key)).unwrap();
        match &sec.chain {
            None => writeln!(w, "  receipts: none (the instance ran no job)").unwrap(),
            Some(c) => {
                let sig = &sec.signatures;
                let how = if sig.chain_authenticated == 0 {
                    format!("{} signature(s) checked, every one", sig.verified)
                } else {
                    format!(
                        "{} signature(s) checked (the last receipt's and every {}th), {} receipt(s) authenticated through the hash chain into them",
                        sig.verified,
                        attestation::receipt::CHECKPOINT_INTERVAL,
                        sig.chain_authenticated
                    )
                };
                writeln!(
                    w,
                    "  receipts: seq {}..={} ({} jobs), all by the bound key, chain unbroken; {how}",
                    c.first_seq, c.last_seq, c.jobs
                )
                .unwrap()
            }
        }
        let t = &sec.transcripts;
        writeln!(
            w,
            "  transcripts: {} audited job(s), {} not audited; {} transcript(s) present, {}",
            t.audited_jobs,
            t.not_audited,
            t.present,
            if opened {
                format!("{} opened and matched to their receipts", t.opened)
            } else {
                "none opened (no --auditor-key)".to_string()
            }
        )
        .unwrap();
    }
    writeln!(
        w,
        "\nper hour (UTC, by job start; billed s = each job's device time rounded up to a second):"
    )
    .unwrap();
    writeln!(
        w,
        "  {:<22} {:>8} {:>14} {:>14} {:>16} {:>10}",
        "hour", "jobs", "prompt tokens", "output tokens", "device-seconds", "billed s"
    )
    .unwrap();
    let row = |w: &mut String, label: &str, t: &HourTotals| {
        writeln!(
            w,
            "  {:<22} {:>8} {:>14} {:>14} {:>16} {:>10}",
            label,
            t.jobs,
            t.prompt_tokens,
            t.output_tokens,
            seconds(t.device_ms),
            t.billed_device_seconds
        )
        .unwrap();
    };
    for (hour, t) in &report.per_hour {
        row(w, &hour_label(*hour), t);
    }
    row(
        w,
        "total",
        &HourTotals {
            jobs: report.jobs,
            prompt_tokens: report.prompt_tokens,
            output_tokens: report.output_tokens,
            device_ms: report.device_ms,
            billed_device_seconds: report.billed_device_seconds,
        },
    );
    s
}
