//! `veritee-verify evidence`: read the files, verify, appraise, report.
//!
//! A rejection names what failed (the report or quote, or the certificate, CRL or
//! collateral item and the file that held it), prints every date as RFC 3339 UTC, says
//! what to do about it, and lists what had been checked before it.

use crate::gpu_evidence;
use attestation::evidence::{Claims, Platform, TrustAnchors, VerifiedEvidence};
use attestation::inputs::EvidenceInputs;
use attestation::policy::Policy;
use attestation::{Reason, Rejection, Timestamp};
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
    /// What was checked (`true`) or, said as plainly, left unchecked (`false`). On a
    /// rejection: what had passed before it.
    checks: Vec<(bool, String)>,
    rejection: Option<Rejection>,
    /// What to do about the rejection, where there is something to do.
    advice: Option<String>,
}

pub fn run(
    files: &[std::path::PathBuf],
    at: &str,
    policy_path: Option<&Path>,
    gpu_nonce: Option<&str>,
    json: bool,
) -> ExitCode {
    let nonce = match gpu_nonce.map(gpu_evidence::parse_nonce).transpose() {
        Ok(nonce) => nonce,
        Err(message) => return usage_error(&message, json),
    };
    let prepared = prepare(files, at, policy_path).and_then(|(inputs, policy, outcome)| {
        // GPU evidence and its chain go their own way; the rest is the CPU's.
        let (gpu, cpu): (Vec<NamedFile>, Vec<NamedFile>) = inputs
            .into_iter()
            .partition(|(_, bytes)| gpu_evidence::is_gpu_input(bytes));
        if gpu.is_empty() || !cpu.is_empty() {
            recognise(&cpu).map(|recognised| (cpu, Some(recognised), gpu, policy, outcome))
        } else {
            Ok((cpu, None, gpu, policy, outcome))
        }
    });
    match prepared {
        Ok((inputs, recognised, gpu_files, policy, outcome)) => {
            let at = outcome.at;
            let gpu = (!gpu_files.is_empty()).then(|| gpu_evidence::verify(&gpu_files, nonce, at));
            let cpu = recognised.map(|recognised| verify(inputs, recognised, &policy, outcome));
            let accepted = cpu.as_ref().is_none_or(|o| o.rejection.is_none())
                && gpu.as_ref().is_none_or(|g| g.rejection.is_none());
            if json {
                let value = match (&cpu, &gpu) {
                    (Some(cpu), None) => to_json(cpu),
                    (Some(cpu), Some(gpu)) => {
                        let mut value = to_json(cpu);
                        // The first failure is the command's: the CPU's, else the GPU's.
                        if cpu.rejection.is_none() && gpu.rejection.is_some() {
                            let g = gpu_evidence::to_json(gpu);
                            for key in ["verdict", "reason", "reason_class", "detail", "advice"] {
                                value[key] = g[key].clone();
                            }
                        }
                        value["gpu"] = gpu_evidence::to_json(gpu);
                        value
                    }
                    (None, Some(gpu)) => gpu_only_json(gpu, at),
                    (None, None) => unreachable!("at least one file was given"),
                };
                let mut text = serde_json::to_string_pretty(&value).expect("JSON");
                text.push('\n');
                crate::emit(&text);
            } else {
                let mut text = String::new();
                if let Some(cpu) = &cpu {
                    text.push_str(&render_text(cpu));
                }
                if let Some(gpu) = &gpu {
                    if cpu.is_some() {
                        text.push('\n');
                    } else {
                        writeln!(text, "{}", if accepted { "ACCEPTED" } else { "REJECTED" })
                            .unwrap();
                        writeln!(text, "\nverification time: {at}\n").unwrap();
                    }
                    gpu_evidence::render_text(gpu, &mut text);
                }
                crate::emit(&text);
            }
            if accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => usage_error(&message, json),
    }
}

fn usage_error(message: &str, json: bool) -> ExitCode {
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

/// The JSON of a run with GPU evidence only: the GPU's verdict and claims at the top, as a
/// CPU run's, and under `gpu`.
fn gpu_only_json(gpu: &gpu_evidence::GpuOutcome, at: Timestamp) -> Value {
    let g = gpu_evidence::to_json(gpu);
    json!({
        "verdict": g["verdict"],
        "reason": g["reason"],
        "reason_class": g["reason_class"],
        "detail": g["detail"],
        "advice": g["advice"],
        "platform": "nvidia-gpu",
        "claims": g["claims"],
        "at": at.to_rfc3339(),
        "policy": "none: no policy applies to GPU evidence yet",
        "revocation_checked": g["revocation_checked"],
        "checks": g["checks"],
        "inputs": g["inputs"],
        "gpu": g,
    })
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
        advice: None,
    };
    Ok((inputs, policy, outcome))
}

/// Sort the inputs. A file that is none of the formats this command reads is bad usage
/// (exit 2), like a missing file: the command was given something that is not evidence.
/// Anything else found here (two reports, a damaged certificate) is a verdict.
fn recognise(files: &[NamedFile]) -> Result<Result<EvidenceInputs, Rejection>, String> {
    let mut inputs = EvidenceInputs::new();
    for (name, bytes) in files {
        match inputs.add(name, bytes) {
            Ok(()) => {}
            Err(e) if e.reason == Reason::UnknownInput => {
                return Err(format!(
                    "{}; give the report or quote and its certificates, CRLs and collateral as AMD and Intel publish them",
                    e.detail
                ))
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(inputs))
}

fn verify(
    files: Vec<NamedFile>,
    recognised: Result<EvidenceInputs, Rejection>,
    policy: &Policy,
    mut out: Outcome,
) -> Outcome {
    let inputs = match recognised {
        Ok(inputs) => inputs,
        Err(e) => {
            // Recognise again up to the failing file, for the inputs list.
            let mut partial = EvidenceInputs::new();
            for (name, bytes) in &files {
                if partial.add(name, bytes).is_err() {
                    break;
                }
            }
            out.inputs = partial.recognised().to_vec();
            out.advice = advice(&e, None);
            out.rejection = Some(e);
            return out;
        }
    };
    out.inputs = inputs.recognised().to_vec();
    out.platform = inputs.platform().map(|p| p.as_str());
    let (anchors, extra_roots) = TrustAnchors::for_policy(policy, inputs.certificates());
    let snp_crls = inputs.snp_crl_count();
    if let Some(platform) = out.platform {
        let other = if platform == "snp" { "tdx." } else { "snp." };
        out.unpinned.retain(|field| !field.starts_with(other));
    }
    out.extra_roots = extra_roots;
    let platform = inputs.platform();
    let verified = match inputs.verify(&anchors, out.at) {
        Ok(v) => v,
        Err(e) => {
            out.checks = checked_before(&files, &out.inputs, platform, &anchors, out.at, &e);
            out.advice = advice(&e, platform);
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

/// What had been checked when verification failed with `e`, found by verifying again
/// with less (never by guessing from the message), so that a rejection late in the
/// chain still says which signatures did verify:
///
/// - TDX: the quote alone. If that fails only for want of collateral, its structure, the
///   PCK chain, the QE report and the quote signature all verified.
/// - SEV-SNP with CRLs: everything but the CRL files. If that verifies, the failure was
///   revocation, and all the rest passed.
/// - SEV-SNP `hwid_mismatch` / `tcb_extension_mismatch`: `snp::verify` compares the
///   certificate with the report only after the chain and the report signature verified
///   (and the hwID before the TCB), and raises these reasons nowhere else.
fn checked_before(
    files: &[NamedFile],
    recognised: &[(String, String)],
    platform: Option<Platform>,
    anchors: &TrustAnchors,
    at: Timestamp,
    e: &Rejection,
) -> Vec<(bool, String)> {
    let evidence_file = |kind: &str| {
        recognised
            .iter()
            .find(|(_, k)| k.starts_with(kind))
            .map(|(name, _)| name.as_str())
    };
    let verify_only = |keep: &dyn Fn(&str) -> bool| {
        let mut inputs = EvidenceInputs::new();
        for (name, bytes) in files.iter().filter(|(name, _)| keep(name)) {
            inputs.add(name, bytes).ok()?;
        }
        Some(inputs.verify(anchors, at))
    };
    if e.reason == Reason::AmbiguousInput {
        // The inputs were not one piece of evidence: nothing was verified.
        return Vec::new();
    }
    match platform {
        Some(Platform::Tdx) => {
            let Some(quote) = evidence_file("TDX quote") else {
                return Vec::new();
            };
            match verify_only(&|name| name == quote) {
                Some(Err(r)) if r.reason == Reason::CollateralMissing => vec![
                    (true, "quote structure: header, TD report body, signature data".into()),
                    (true, format!("PCK chain to the pinned Intel SGX Root CA, valid at {at}")),
                    (true, "QE report signature by the PCK key; QE report data binds the attestation key".into()),
                    (true, "quote signature: ECDSA P-256 over header and body as received".into()),
                ],
                _ => Vec::new(),
            }
        }
        Some(Platform::Snp) => {
            // Files holding CRLs and nothing else (a file that mixes certificates and
            // CRLs would take certificates away too: then no second try).
            let crl_only = |kind: &str| {
                kind == "CRL (DER)"
                    || kind
                        .strip_prefix("PEM: ")
                        .is_some_and(|parts| parts.split(", ").all(|p| p == "CRL"))
            };
            let crl_files: Vec<&str> = recognised
                .iter()
                .filter(|(_, kind)| crl_only(kind))
                .map(|(name, _)| name.as_str())
                .collect();
            let mixed = recognised
                .iter()
                .any(|(_, kind)| kind.contains("CRL") && !crl_only(kind));
            if !crl_files.is_empty() && !mixed {
                if let Some(Ok(v)) = verify_only(&|name| !crl_files.contains(&name)) {
                    return checks_passed(&v, at, 0)
                        .into_iter()
                        .filter(|(done, _)| *done)
                        .collect();
                }
            }
            let mut passed: Vec<(bool, String)> = match e.reason {
                Reason::HwIdMismatch | Reason::TcbExtensionMismatch => vec![
                    (true, "report structure: size, version, reserved fields".into()),
                    (
                        true,
                        format!("certificate chain to a pinned AMD ARK (RSA-PSS SHA-384), every certificate valid at {at}"),
                    ),
                    if recognised.iter().any(|(_, kind)| kind.contains("CRL")) {
                        (true, "CRLs: signed by AMD, current, no certificate of the chain revoked".into())
                    } else {
                        (false, "revocation not checked: no AMD CRL supplied".into())
                    },
                    (true, "report signature: ECDSA P-384 over the received bytes 0x000..0x29F".into()),
                ],
                _ => Vec::new(),
            };
            if e.reason == Reason::TcbExtensionMismatch && e.detail.contains("VCEK") {
                passed.push((true, "certificate hwID extension equals CHIP_ID".into()));
            }
            passed
        }
        None => Vec::new(),
    }
}

/// What an auditor can do about a rejection, where there is something to do.
fn advice(e: &Rejection, platform: Option<Platform>) -> Option<String> {
    let d = e.detail.as_str();
    let tdx = platform == Some(Platform::Tdx);
    let amd_leaf = d.contains("VCEK") || d.contains("VLEK");
    let at_hint = "or give --at a time inside its validity";
    let text = match e.reason {
        Reason::CertificateExpired | Reason::CertificateNotYetValid if tdx => {
            if d.contains("PCK") {
                format!("the PCK certificate comes inside the quote: check --at, or get a quote made with a current PCK certificate (Intel PCS), {at_hint}")
            } else {
                format!("fetch current collateral (TCB info, QE identity and their issuer chain, CRLs) from Intel PCS (https://api.trustedservices.intel.com/tdx/certification/v4/), {at_hint}")
            }
        }
        Reason::CertificateExpired | Reason::CertificateNotYetValid if amd_leaf => format!(
            "fetch a current certificate for this chip and TCB from AMD KDS (https://kdsintf.amd.com/vcek/v1/<product>/<hwid>?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..), {at_hint}"
        ),
        Reason::CertificateExpired | Reason::CertificateNotYetValid => {
            format!("check --at: the certificate is not valid at the verification time; {at_hint}")
        }
        Reason::CollateralExpired | Reason::CollateralNotYetValid if tdx => format!(
            "fetch current collateral for this FMSPC from Intel PCS (https://api.trustedservices.intel.com/tdx/certification/v4/: tcb, qe/identity, pckcrl, and the root CA CRL), {at_hint}"
        ),
        Reason::CollateralExpired | Reason::CollateralNotYetValid => format!(
            "fetch a current CRL from AMD KDS (https://kdsintf.amd.com/vcek/v1/<product>/crl), {at_hint}"
        ),
        Reason::CollateralMissing if tdx => "supply the collateral: Intel PCS's TCB info, QE identity, the TCB Signing issuer chain, the PCK CRL and the root CA CRL (https://api.trustedservices.intel.com/tdx/certification/v4/), or one dcap-qvl collateral JSON".into(),
        Reason::CertificateMissing if tdx => "the quote's certification data lacks the PCK chain: fetch the PCK certificate from Intel PCS and use a quote that carries it".into(),
        Reason::CertificateMissing => "supply the VCEK for this chip and TCB from AMD KDS (https://kdsintf.amd.com/vcek/v1/<product>/<hwid>?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..), or a VLEK from the cloud provider".into(),
        Reason::CertificateRevoked | Reason::TcbRevoked => "the platform's key or TCB is revoked by its vendor: do not trust this evidence".into(),
        Reason::CrlSignatureInvalid | Reason::MalformedCrl | Reason::CollateralSignatureInvalid | Reason::MalformedCollateral => {
            if tdx {
                "fetch the collateral again from Intel PCS: this copy is damaged or not Intel's".into()
            } else {
                "fetch the CRL again from AMD KDS: this copy is damaged or not AMD's".into()
            }
        }
        Reason::SimulatedRootNotTrusted => "this is a simulated TEE's development chain: it proves nothing about hardware (a development policy may name it in dangerous_trusted_roots)".into(),
        Reason::UntrustedRoot => "the chain does not end in AMD's or Intel's pinned root; only a policy's dangerous_trusted_roots adds another".into(),
        Reason::TcbLevelNotFound => "fetch the current TCB info for this FMSPC from Intel PCS; if it still has no matching level, Intel does not support this platform's TCB".into(),
        Reason::AmbiguousInput => "verify one report or quote at a time, with only its own certificates and collateral".into(),
        _ => return None,
    };
    Some(text)
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
        "advice": out.advice,
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

/// The verdict line (`ACCEPTED`, or `REJECTED: code (class)` and its detail), after
/// `label`, and the advice when there is one: the head of the CPU and the GPU text.
pub(crate) fn write_verdict(
    w: &mut String,
    label: &str,
    rejection: Option<&Rejection>,
    advice: Option<&str>,
) {
    // Writing to a String cannot fail.
    match rejection {
        None => writeln!(w, "{label}ACCEPTED"),
        Some(r) => writeln!(
            w,
            "{label}REJECTED: {} ({})\n  {}",
            r.reason.code(),
            r.reason.class().as_str(),
            r.detail
        ),
    }
    .unwrap();
    if let Some(advice) = advice {
        writeln!(w, "  what to do: {advice}").unwrap();
    }
}

fn render_text(out: &Outcome) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let w = &mut s;
    write_verdict(w, "", out.rejection.as_ref(), out.advice.as_deref());
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
        let heading = if out.rejection.is_some() && out.claims.is_none() {
            "\nchecked before the rejection:"
        } else {
            "\nchecked:"
        };
        writeln!(w, "{heading}").unwrap();
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

pub(crate) fn write_flat(w: &mut String, prefix: &str, value: &Value) {
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
