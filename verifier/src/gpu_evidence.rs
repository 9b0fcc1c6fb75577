//! NVIDIA GPU evidence in `veritee-verify evidence`: recognised by content next to (or
//! instead of) a CPU report, verified with `attestation::nvidia`, reported with its own
//! verdict, checks and claims.
//!
//! Inputs: one evidence file (SPDM GET_MEASUREMENTS request + MEASUREMENTS response, binary
//! or hex text) and the GPU's device certificate chain (PEM, leaf first; several files are
//! joined in the order given), and optionally NVIDIA's reference integrity manifests (RIMs,
//! SWID XML) for its driver and VBIOS. No policy applies to GPU claims yet; the nonce is
//! checked only when `--gpu-nonce` gives one, and the output says so either way.
//!
//! OCSP responses (DER OCSPResponse, RFC 6960, fetched beforehand from NVIDIA's OCSP
//! service for the device chain's certificates) may be given too: each is verified
//! (responder, CertID, current at `--at`, status) or the verdict is its reason
//! (`certificate_revoked`, `ocsp_signature_invalid`, `malformed_ocsp`, ...); revocation is
//! reported checked when they say `good` for every certificate below the root but the
//! per-boot leaf.
//!
//! RIMs given: both the driver's and the VBIOS's are required (`gpu_rim_missing`), each
//! verified to NVIDIA's pinned RIM root at `--at` (`rim_signature_invalid`, chain
//! reasons), taken as the driver or VBIOS RIM by its colloquialVersion equal to the
//! evidence's driver or VBIOS version (one for neither: `gpu_rim_version_mismatch`; two
//! for one: `ambiguous_input`), then every active reference measurement must match
//! (`gpu_measurement_mismatch`). No RIM given: the measurements are not appraised, and
//! the output says so.

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

/// Whether an input is GPU evidence, an NVIDIA device certificate chain or a RIM.
pub fn is_gpu_input(bytes: &[u8]) -> bool {
    nvidia::looks_like_gpu_evidence(bytes)
        || is_gpu_chain(bytes)
        || is_rim(bytes)
        || nvidia::ocsp::looks_like_ocsp_response(bytes)
}

/// An XML document whose text names a SWID SoftwareIdentity: a RIM (whether it parses is
/// the verdict's business).
fn is_rim(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let rest = rest.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(rest);
    rest.first() == Some(&b'<') && rest.windows(16).any(|w| w == b"SoftwareIdentity")
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
    let mut rims: Vec<(&str, &[u8])> = Vec::new();
    let mut ocsp: Vec<Vec<u8>> = Vec::new();
    for (name, bytes) in files {
        if nvidia::ocsp::looks_like_ocsp_response(bytes) {
            out.inputs.push((
                name.clone(),
                format!("OCSP response (DER, RFC 6960) #{}", ocsp.len()),
            ));
            ocsp.push(bytes.clone());
        } else if is_rim(bytes) && !nvidia::looks_like_gpu_evidence(bytes) {
            let version = nvidia::Rim::parse(bytes)
                .ok()
                .and_then(|r| r.colloquial_version)
                .map_or_else(|| "unreadable".into(), |v| format!("version {v}"));
            out.inputs.push((
                name.clone(),
                format!("NVIDIA reference integrity manifest (RIM, SWID XML), {version}"),
            ));
            rims.push((name, bytes));
        } else if nvidia::looks_like_gpu_evidence(bytes) {
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
    match nvidia::verify_with_ocsp(
        evidence,
        &chain,
        &ocsp,
        expected,
        &NvidiaTrustAnchors::nvidia(),
        at,
    ) {
        Ok(v) => {
            let appraisal = (!rims.is_empty()).then(|| appraise(&v, &rims, at));
            out.checks = vec![
                (true, "evidence structure: SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response, every length bounds-checked".into()),
                (true, format!("device chain to the pinned NVIDIA Device Identity CA (ECDSA P-384), constraints of every issuer, every certificate valid at {at}")),
                if v.revocation_checked() {
                    (true, format!("revocation: {} OCSP response(s) verified (responder, CertID, current at {at}) say good for every certificate below the root but the per-boot leaf", ocsp.len()))
                } else if ocsp.is_empty() {
                    (false, "revocation not checked: NVIDIA publishes the device chain's status by OCSP only; give its OCSP responses (DER) for the certificates below the root".into())
                } else {
                    (false, format!("revocation partly checked: the {} OCSP response(s) verified but do not cover every certificate below the root but the leaf", ocsp.len()))
                },
                (true, "leaf certificate FWID (TcbInfo extension) equals the evidence's FWID".into()),
                (true, "SPDM signature: ECDSA P-384 over the request and the response as received".into()),
                if v.nonce_checked() {
                    (true, "requester nonce equals --gpu-nonce".into())
                } else {
                    (false, "requester nonce not checked: no --gpu-nonce given (the evidence may be a replay)".into())
                },
            ];
            out.claims = Some(v.claims());
            match appraisal {
                None => {
                    out.checks.push((false, "measurements not appraised: no reference integrity manifest (RIM) was given (give the driver's and the VBIOS's)".into()));
                    out
                }
                Some(Ok(lines)) => {
                    out.checks.extend(lines.into_iter().map(|l| (true, l)));
                    out.checks.push((false, "revocation of the RIM signing chains not checked: NVIDIA serves it by OCSP only (online)".into()));
                    out
                }
                Some(Err(e)) => {
                    // Rejected: no claims shown as if accepted.
                    out.claims = None;
                    reject(out, e)
                }
            }
        }
        Err(e) => reject(out, e),
    }
}

/// Appraise verified evidence against the RIMs given (see the module comment); the check
/// lines on success.
fn appraise(
    v: &nvidia::VerifiedGpuEvidence,
    rims: &[(&str, &[u8])],
    at: Timestamp,
) -> Result<Vec<String>, Rejection> {
    let claims = v.claims();
    let anchors = NvidiaTrustAnchors::nvidia();
    let (mut driver, mut vbios) = (None, None);
    for (name, bytes) in rims {
        let rim = nvidia::verify_rim(bytes, &anchors, at)
            .map_err(|e| Rejection::new(e.reason, format!("{name}: {}", e.detail)))?;
        let version = rim.rim().colloquial_version.clone().unwrap_or_default();
        let is = |stated: &Option<String>| {
            stated
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(&version))
        };
        let slot = if is(&claims.driver_version) {
            &mut driver
        } else if is(&claims.vbios_version) {
            &mut vbios
        } else {
            return Err(Rejection::new(
                Reason::GpuRimVersionMismatch,
                format!(
                    "{name}: the RIM is for version {version:?}; the evidence states driver {:?} and VBIOS {:?}",
                    claims.driver_version.as_deref().unwrap_or("(none)"),
                    claims.vbios_version.as_deref().unwrap_or("(none)")
                ),
            ));
        };
        if let Some((first, _)) = slot {
            return Err(Rejection::new(
                Reason::AmbiguousInput,
                format!("{name} and {first} are both RIMs for version {version}"),
            ));
        }
        *slot = Some((*name, rim));
    }
    let (Some((dn, driver)), Some((vn, vbios))) = (driver, vbios) else {
        return Err(Rejection::new(
            Reason::GpuRimMissing,
            "the RIMs given are not both the driver's and the VBIOS's: give both to appraise the measurements",
        ));
    };
    let cmp = nvidia::compare_measurements(v, &[&driver, &vbios])?;
    let compared = cmp.compared.len();
    cmp.into_result()?;
    Ok(vec![
        format!("driver RIM {dn} and VBIOS RIM {vn}: XMLDSig signatures verify, signing chains to the pinned NVIDIA RIM root, valid at {at}"),
        format!("RIM versions equal the evidence's: driver {}, VBIOS {}", driver.rim().colloquial_version.as_deref().unwrap_or(""), vbios.rim().colloquial_version.as_deref().unwrap_or("")),
        format!("measurements: all {compared} active reference measurements match"),
    ])
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
        Reason::CertificateExpired | Reason::CertificateNotYetValid => "check --at: a certificate of the GPU chain (or of a RIM's signing chain) is not valid at the verification time",
        Reason::GpuRimVersionMismatch => "give the RIMs for the driver and VBIOS versions the evidence states (NVIDIA's RIM service: NV_GPU_DRIVER_GH100_<driver>, NV_GPU_VBIOS_<project>_<sku>_<chip sku>_<VBIOS>)",
        Reason::GpuRimMissing => "give both the driver's and the VBIOS's RIM, or none",
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
