//! `veritee-verify evidence`: read the files, verify, appraise, report.

use attestation::evidence::{Claims, TrustAnchors, VerifiedEvidence};
use attestation::inputs::EvidenceInputs;
use attestation::policy::Policy;
use attestation::{Rejection, Timestamp};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

const DEFAULT_POLICY_NOTE: &str =
    "default (pins no measurement, forbids debug and migration agents; TDX: TCB status UpToDate only; SEV-SNP: no TCB minimum, any VMPL, no AMD CRL required)";

/// An input file's name (as given) and its bytes.
type NamedFile = (String, Vec<u8>);

/// Everything the command found, for both text and JSON output.
struct Outcome {
    at: Timestamp,
    policy: String,
    unpinned: Vec<&'static str>,
    extra_roots: Vec<String>,
    inputs: Vec<(String, String)>,
    platform: Option<&'static str>,
    claims: Option<Claims>,
    /// What was checked (`true`) or, said as plainly, left unchecked (`false`).
    checks: Vec<(bool, String)>,
    rejection: Option<Rejection>,
}

pub fn run(
    files: &[std::path::PathBuf],
    at: &str,
    policy_path: Option<&Path>,
    json: bool,
) -> ExitCode {
    match prepare(files, at, policy_path) {
        Ok((inputs, policy, outcome)) => {
            let outcome = verify(inputs, &policy, outcome);
            if json {
                let mut text = serde_json::to_string_pretty(&to_json(&outcome)).expect("JSON");
                text.push('\n');
                crate::emit(&text);
            } else {
                crate::emit(&render_text(&outcome));
            }
            if outcome.rejection.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            if json {
                // Same keys as a verdict, so that a consumer reading "platform" or
                // "claims" finds null rather than nothing.
                let value = json!({
                    "verdict": "error",
                    "reason": null,
                    "reason_class": null,
                    "platform": null,
                    "claims": null,
                    "error": message,
                });
                crate::emit(&format!("{value}\n"));
            }
            eprintln!("veritee-verify: {message}");
            ExitCode::from(2)
        }
    }
}

/// Usage-level work: the time, the policy, reading the files. Errors here exit 2.
fn prepare(
    files: &[std::path::PathBuf],
    at: &str,
    policy_path: Option<&Path>,
) -> Result<(Vec<NamedFile>, Policy, Outcome), String> {
    let at = Timestamp::parse_rfc3339(at).map_err(|e| format!("--at: {}", e.detail))?;
    let (policy, policy_name) = match policy_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("policy {}: {e}", path.display()))?;
            let policy = Policy::from_toml(&text)
                .map_err(|e| format!("policy {}: {}", path.display(), e.detail))?;
            (policy, path.display().to_string())
        }
        None => (Policy::default_verifier(), DEFAULT_POLICY_NOTE.to_string()),
    };
    let mut inputs = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        inputs.push((file.display().to_string(), bytes));
    }
    let outcome = Outcome {
        at,
        unpinned: policy.unpinned_fields(),
        policy: policy_name,
        extra_roots: Vec::new(),
        inputs: Vec::new(),
        platform: None,
        claims: None,
        checks: Vec::new(),
        rejection: None,
    };
    Ok((inputs, policy, outcome))
}

fn verify(files: Vec<NamedFile>, policy: &Policy, mut out: Outcome) -> Outcome {
    let mut inputs = EvidenceInputs::new();
    for (name, bytes) in &files {
        if let Err(e) = inputs.add(name, bytes) {
            out.inputs = inputs.recognised().to_vec();
            out.rejection = Some(e);
            return out;
        }
    }
    out.inputs = inputs.recognised().to_vec();
    out.platform = inputs.platform().map(|p| p.as_str());
    let (anchors, extra_roots) = TrustAnchors::for_policy(policy, inputs.certificates());
    let snp_crls = inputs.snp_crl_count();
    if let Some(platform) = out.platform {
        let other = if platform == "snp" { "tdx." } else { "snp." };
        out.unpinned.retain(|field| !field.starts_with(other));
    }
    out.extra_roots = extra_roots;
    let verified = match inputs.verify(&anchors, out.at) {
        Ok(v) => v,
        Err(e) => {
            out.rejection = Some(e);
            return out;
        }
    };
    out.checks = checks_passed(&verified, out.at, snp_crls);
    out.claims = Some(verified.claims());
    match policy.appraise(&verified) {
        Ok(_) => out
            .checks
            .push((true, "policy: every field appraised and accepted".into())),
        Err(e) => out.rejection = Some(e),
    }
    out
}

/// What verification established, in the words an auditor checks off, and what it did not
/// check (`false`): those must never be listed as "ok".
fn checks_passed(
    verified: &VerifiedEvidence,
    at: Timestamp,
    snp_crls: usize,
) -> Vec<(bool, String)> {
    let done = |lines: Vec<String>| lines.into_iter().map(|l| (true, l)).collect::<Vec<_>>();
    match verified {
        VerifiedEvidence::Snp(r) => vec![
            (true, "report structure: size, version, reserved fields".into()),
            (
                true,
                format!(
                    "{} chain to the pinned AMD ARK-{} (RSA-PSS SHA-384), every certificate valid at {at}",
                    r.signing_key().as_str().to_uppercase(),
                    r.product().as_str()
                ),
            ),
            if r.revocation_checked() {
                (
                    true,
                    format!("{snp_crls} CRL(s): signed by AMD, current, no certificate of the chain revoked"),
                )
            } else {
                (
                    false,
                    format!(
                        "revocation not checked: no current AMD CRL signed by ARK-{} supplied",
                        r.product().as_str()
                    ),
                )
            },
            (true, "report signature: ECDSA P-384 over the received bytes 0x000..0x29F".into()),
            (true, "certificate hwID and TCB extensions equal CHIP_ID and REPORTED_TCB".into()),
        ],
        VerifiedEvidence::Tdx(q) => done(vec![
            "quote structure: header, TD report body, signature data".into(),
            format!("PCK chain to the pinned Intel SGX Root CA, valid at {at}"),
            "QE report signature by the PCK key; QE report data binds the attestation key".into(),
            "quote signature: ECDSA P-256 over header and body as received".into(),
            format!("collateral: TCB info, QE identity and CRLs signed by Intel and current at {at}"),
            format!(
                "TCB level: {} (FMSPC {})",
                q.tcb_status().as_str(),
                hex::encode(q.fmspc())
            ),
        ]),
    }
}

fn to_json(out: &Outcome) -> Value {
    let rejected = out.rejection.as_ref();
    json!({
        "verdict": if rejected.is_none() { "accepted" } else { "rejected" },
        "reason": rejected.map(|r| r.reason.code()),
        "reason_class": rejected.map(|r| r.reason.class().as_str()),
        "detail": rejected.map(|r| r.detail.clone()),
        "platform": out.platform,
        "claims": out.claims,
        "at": out.at.to_rfc3339(),
        "policy": out.policy,
        "policy_unpinned": out.unpinned,
        "dangerous_trusted_roots": out.extra_roots,
        // SEV-SNP: whether an AMD CRL signed by the ARK was checked; TDX collateral always
        // carries Intel's CRLs.
        "revocation_checked": match &out.claims {
            Some(Claims::Snp(c)) => Some(c.revocation_checked),
            Some(Claims::Tdx(_)) => Some(true),
            None => None,
        },
        "checks": out.checks.iter().map(|(_, line)| line).collect::<Vec<_>>(),
        "inputs": out.inputs.iter().map(|(n, k)| json!({"file": n, "recognised_as": k})).collect::<Vec<_>>(),
    })
}

fn render_text(out: &Outcome) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let w = &mut s;
    match &out.rejection {
        None => writeln!(w, "ACCEPTED"),
        Some(r) => writeln!(
            w,
            "REJECTED: {} ({})\n  {}",
            r.reason.code(),
            r.reason.class().as_str(),
            r.detail
        ),
    }
    .unwrap();
    writeln!(w, "\nverification time: {}", out.at).unwrap();
    writeln!(w, "policy: {}", out.policy).unwrap();
    if !out.unpinned.is_empty() {
        writeln!(w, "  not pinned by the policy: {}", out.unpinned.join(", ")).unwrap();
    }
    for root in &out.extra_roots {
        writeln!(w, "  WARNING: dangerously trusting extra root {root}").unwrap();
    }
    writeln!(w, "\ninputs:").unwrap();
    for (name, kind) in &out.inputs {
        writeln!(w, "  {name}: {kind}").unwrap();
    }
    if !out.checks.is_empty() {
        writeln!(w, "\nchecked:").unwrap();
        for (done, check) in &out.checks {
            let mark = if *done { "ok" } else { "--" };
            writeln!(w, "  {mark}  {check}").unwrap();
        }
    }
    if let Some(claims) = &out.claims {
        writeln!(w, "\nverified claims:").unwrap();
        let value = serde_json::to_value(claims).unwrap_or(Value::Null);
        write_flat(w, "", &value);
    }
    s
}

fn write_flat(w: &mut String, prefix: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                write_flat(w, &key, v);
            }
        }
        Value::String(s) => writeln!(w, "  {prefix}: {s}").unwrap(),
        Value::Null => {}
        other => writeln!(w, "  {prefix}: {other}").unwrap(),
    }
}
