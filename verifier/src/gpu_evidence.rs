//! NVIDIA GPU evidence in `veritee-verify evidence`: recognised by content next to (or
//! instead of) a CPU report, verified with `attestation::nvidia`, reported with its own
//! verdict, checks and claims.
//!
//! Inputs: one evidence file (SPDM GET_MEASUREMENTS request + MEASUREMENTS response, binary
//! or hex text) and the GPU's device certificate chain (PEM, leaf first; several files are
//! joined in the order given). No policy applies to GPU claims yet; the nonce is checked
//! only when `--gpu-nonce` gives one, and the output says so either way.

use attestation::nvidia::{self, ExpectedNonce, GpuClaims, NvidiaTrustAnchors};
use attestation::{x509, Reason, Rejection, Timestamp};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// What GPU verification found.
pub struct GpuOutcome {
    pub inputs: Vec<(String, String)>,
    pub claims: Option<GpuClaims>,
    pub checks: Vec<(bool, String)>,
    pub rejection: Option<Rejection>,
    pub advice: Option<String>,
}

/// Whether an input is GPU evidence or an NVIDIA device certificate chain.
pub fn is_gpu_input(bytes: &[u8]) -> bool {
    nvidia::looks_like_gpu_evidence(bytes) || is_gpu_chain(bytes)
}

/// A PEM text holding NVIDIA device-identity certificates (a GH100 certificate, or the
/// NVIDIA Device Identity CA).
fn is_gpu_chain(bytes: &[u8]) -> bool {
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return false;
    }
    let Ok(certs) = x509::certs_from_pem(bytes) else {
        return false;
    };
    certs.iter().any(|der| {
        x509::parse_cert(der, "certificate").is_ok_and(|c| {
            let cn = x509::common_name(c.subject()).unwrap_or_default();
            cn.starts_with("GH100 ")
                || cn.starts_with("NVIDIA GH100 ")
                || cn == "NVIDIA Device Identity CA"
        })
    })
}

/// Parse `--gpu-nonce`: 64 hex digits.
pub fn parse_nonce(text: &str) -> Result<[u8; 32], String> {
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut nonce)
        .map_err(|e| format!("--gpu-nonce: {e} (want 64 hex digits, the SPDM requester nonce)"))?;
    Ok(nonce)
}

/// Verify the GPU inputs (`(file name, bytes)`, all recognised by [`is_gpu_input`]).
pub fn verify(files: &[(String, Vec<u8>)], nonce: Option<[u8; 32]>, at: Timestamp) -> GpuOutcome {
    let mut out = GpuOutcome {
        inputs: Vec::new(),
        claims: None,
        checks: Vec::new(),
        rejection: None,
        advice: None,
    };
    let mut evidence: Option<(&str, &[u8])> = None;
    let mut chain: Vec<Vec<u8>> = Vec::new();
    for (name, bytes) in files {
        if nvidia::looks_like_gpu_evidence(bytes) {
            let form = if bytes.first() == Some(&0x11) {
                "binary"
            } else {
                "hex text"
            };
            out.inputs.push((
                name.clone(),
                format!("NVIDIA GPU evidence (SPDM 1.1 MEASUREMENTS, {form})"),
            ));
            if let Some((first, _)) = evidence {
                return reject(
                    out,
                    Rejection::new(
                        Reason::AmbiguousInput,
                        format!(
                            "{name}: second piece of GPU evidence; {first} was already given \
                             (verify one at a time)"
                        ),
                    ),
                );
            }
            evidence = Some((name, bytes));
        } else {
            let certs = x509::certs_from_pem(bytes).unwrap_or_default();
            let names: Vec<String> = certs
                .iter()
                .map(|der| {
                    x509::parse_cert(der, "certificate")
                        .ok()
                        .and_then(|c| x509::common_name(c.subject()))
                        .unwrap_or_else(|| "unparsable certificate".into())
                })
                .collect();
            out.inputs.push((
                name.clone(),
                format!("NVIDIA GPU certificate chain (PEM): {}", names.join(" <- ")),
            ));
            chain.extend(certs);
        }
    }
    let Some((evidence_name, evidence)) = evidence else {
        return reject(
            out,
            Rejection::new(
                Reason::CertificateMissing,
                "a GPU certificate chain was given without the GPU evidence it certifies",
            ),
        );
    };
    if chain.is_empty() {
        return reject(
            out,
            Rejection::new(
                Reason::CertificateMissing,
                format!("{evidence_name}: no GPU certificate chain was given"),
            ),
        );
    }
    let expected = nonce.map_or(ExpectedNonce::DangerousAny, ExpectedNonce::Exactly);
    match nvidia::verify(
        evidence,
        &chain,
        expected,
        &NvidiaTrustAnchors::nvidia(),
        at,
    ) {
        Ok(v) => {
            out.checks = vec![
                (true, "evidence structure: SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response, every length bounds-checked".into()),
                (true, format!("device chain to the pinned NVIDIA Device Identity CA (ECDSA P-384), constraints of every issuer, every certificate valid at {at}")),
                (false, "revocation not checked: NVIDIA publishes the device chain's status by OCSP only (online)".into()),
                (true, "leaf certificate FWID (TcbInfo extension) equals the evidence's FWID".into()),
                (true, "SPDM signature: ECDSA P-384 over the request and the response as received".into()),
                if v.nonce_checked() {
                    (true, "requester nonce equals --gpu-nonce".into())
                } else {
                    (false, "requester nonce not checked: no --gpu-nonce given (the evidence may be a replay)".into())
                },
                (false, "measurements not appraised: no policy or reference manifest applies to GPU evidence yet".into()),
            ];
            out.claims = Some(v.claims());
            out
        }
        Err(e) => reject(out, e),
    }
}

fn reject(mut out: GpuOutcome, e: Rejection) -> GpuOutcome {
    out.advice = advice(&e);
    out.rejection = Some(e);
    out
}

fn advice(e: &Rejection) -> Option<String> {
    let text = match e.reason {
        Reason::GpuNonceMismatch => "the evidence answers another request: check --gpu-nonce, or ask the GPU again with this nonce",
        Reason::GpuFwidMissing => "give the GPU's whole certificate chain, leaf (\"... GSP FMC LF\") first, as the driver returns it with the evidence",
        Reason::GpuFwidMismatch => "the certificate chain belongs to another GPU or boot: give the chain returned with this evidence",
        Reason::CertificateMissing => "give the GPU evidence and its certificate chain (PEM, leaf first) together",
        Reason::UntrustedRoot => "the chain does not end in NVIDIA's pinned Device Identity CA",
        Reason::CertificateExpired | Reason::CertificateNotYetValid => "check --at: a certificate of the GPU chain is not valid at the verification time",
        _ => return None,
    };
    Some(text.into())
}

/// The GPU outcome as a JSON object (the `gpu` key of the command's JSON).
pub fn to_json(out: &GpuOutcome) -> Value {
    let rejected = out.rejection.as_ref();
    json!({
        "verdict": if rejected.is_none() { "accepted" } else { "rejected" },
        "reason": rejected.map(|r| r.reason.code()),
        "reason_class": rejected.map(|r| r.reason.class().as_str()),
        "detail": rejected.map(|r| r.detail.clone()),
        "advice": out.advice,
        "claims": out.claims,
        "nonce_checked": out.claims.as_ref().map(|c| c.nonce_checked),
        "revocation_checked": out.claims.as_ref().map(|c| c.revocation_checked),
        "checks": out.checks.iter().map(|(_, line)| line).collect::<Vec<_>>(),
        "inputs": out.inputs.iter().map(|(n, k)| json!({"file": n, "recognised_as": k})).collect::<Vec<_>>(),
    })
}

/// The GPU outcome as text (a section of the command's text output).
pub fn render_text(out: &GpuOutcome, w: &mut String) {
    crate::evidence_cmd::write_verdict(
        w,
        "GPU evidence: ",
        out.rejection.as_ref(),
        out.advice.as_deref(),
    );
    // Writing to a String cannot fail.
    writeln!(w, "\nGPU inputs:").unwrap();
    for (name, kind) in &out.inputs {
        writeln!(w, "  {name}: {kind}").unwrap();
    }
    if !out.checks.is_empty() {
        writeln!(w, "\nGPU checked:").unwrap();
        for (done, check) in &out.checks {
            let mark = if *done { "ok" } else { "--" };
            writeln!(w, "  {mark}  {check}").unwrap();
        }
    }
    if let Some(claims) = &out.claims {
        writeln!(w, "\nverified GPU claims:").unwrap();
        let value = serde_json::to_value(claims).unwrap_or(Value::Null);
        crate::evidence_cmd::write_flat(w, "", &value);
    }
}
