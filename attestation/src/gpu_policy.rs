//! The `[gpu]` section of a policy file, and the verification of the GPU evidence a
//! bundle serves against the runtime claims that bind it (claim 8).
//!
//! ```toml
//! [gpu]
//! count = 1                        # at least this many bound GPUs (0: none required)
//! architectures = ["hopper"]       # allowed GPU architectures
//! min_driver_version = "any"       # "any" | "570.124.06" (decimal parts)
//! min_vbios_version = "any"        # "any" | "96.00.9f.00.01" (hex parts)
//! rim = "require"                  # "require" | "dangerous_skip"
//! revocation = "require"           # "require" | "dangerous_skip" (optional, see below)
//! dangerous_trusted_roots = []     # SHA-256 (hex) of extra GPU device roots to trust
//! dangerous_trusted_rim_roots = [] # SHA-256 (hex) of extra RIM signing roots (optional)
//! ```
//!
//! Every field is mandatory when the section is present, except
//! `dangerous_trusted_rim_roots` (added later; absent is `[]`, which trusts nothing more)
//! and `revocation` (added later; absent is `"dangerous_skip"`, the behaviour policies
//! written before it had, so they still load; unlike `[snp] revocation`, which is
//! mandatory). `revocation = "require"` needs verified OCSP responses saying `good` for
//! every certificate of each GPU's device chain below the root (the per-boot leaf
//! excepted); without them: `ocsp_missing`. Without a `[gpu]` section the
//! policy is [`GpuPolicy::none`]: no GPU required, but GPU evidence that a runtime binds
//! (claim 8) is still verified (chain to NVIDIA's root, signature, nonce, digest), so a
//! claim 8 never passes unchecked.
//!
//! CC mode: evidence whose opaque FEATURE_FLAG (type 36, opaque data version >= 1) says
//! PPCIE (the GPU's own CC mode off) is refused under every policy (`gpu_cc_mode_off`);
//! SPT and MPT are CC mode on; evidence without the field (older drivers) states no mode.
//! Devtools mode is stated in no signed field; NVIDIA's verifier derives "dbgstat:
//! disabled" only from a full RIM match, so a policy that must exclude devtools mode
//! requires RIM appraisal (`rim = "require"`), and the runtime itself refuses to start
//! when NVML reports devtools mode (see the README).

use super::{Constraint, Hex};
use crate::binding::{gpu_evidence_digest, RuntimeClaims};
use crate::bundle::{
    Entry, GPU_CHAIN_MEDIA_TYPE, GPU_EVIDENCE_MEDIA_TYPE, GPU_OCSP_MEDIA_TYPE, GPU_RIM_MEDIA_TYPE,
};
use crate::nvidia::{self, Architecture, ExpectedNonce, NvidiaTrustAnchors, VerifiedGpuEvidence};
use crate::reason::{reject, Reason, Rejection};
use crate::time::Timestamp;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// What a client requires of the GPUs bound to a runtime.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPolicy {
    /// At least this many GPUs must be bound (claim 8) and verify. 0: none required.
    pub count: u32,
    /// Architectures every bound GPU must have (non-empty).
    pub architectures: Vec<GpuArchitecture>,
    /// Minimum driver version (opaque field 3) of every bound GPU.
    pub min_driver_version: Constraint<DriverVersion>,
    /// Minimum VBIOS version (opaque field 6) of every bound GPU.
    pub min_vbios_version: Constraint<VbiosVersion>,
    /// Whether each GPU's measurements must be appraised against its driver and VBIOS
    /// reference integrity manifests, served in the bundle.
    pub rim: GpuRim,
    /// DANGER: SHA-256 of extra self-signed roots trusted for GPU device chains (the
    /// simulated GPU's). The root must be the last certificate of the served chain.
    pub dangerous_trusted_roots: Vec<Hex<32>>,
    /// DANGER: SHA-256 of extra self-signed roots trusted for the signing chains of
    /// reference integrity manifests (the simulated GPUs' RIM root). The root must be the
    /// last certificate of the RIM's KeyInfo chain. Optional (absent: none), so that
    /// policies written before it still load; it can only add trust when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dangerous_trusted_rim_roots: Vec<Hex<32>>,
    /// Whether each GPU's device-chain revocation must have been checked with OCSP
    /// responses (NVIDIA's OCSP service, fetched beforehand). Optional: absent is
    /// [`GpuRevocation::DangerousSkip`], what policies written before the field got.
    #[serde(default = "GpuRevocation::absent")]
    pub revocation: GpuRevocation,
}

/// GPU device-chain revocation, as `[snp] revocation` for the AMD chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuRevocation {
    /// Verified OCSP responses must say `good` for every certificate below the root but
    /// the leaf; otherwise `ocsp_missing`.
    Require,
    /// Revocation may go unchecked (supplied OCSP responses are still verified, and a
    /// revoked certificate is still refused).
    DangerousSkip,
}

impl GpuRevocation {
    fn absent() -> Self {
        GpuRevocation::DangerousSkip
    }
}

/// A GPU architecture a policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuArchitecture {
    Hopper,
}

impl GpuArchitecture {
    fn matches(self, a: Architecture) -> bool {
        match (self, a) {
            (GpuArchitecture::Hopper, Architecture::Hopper) => true,
        }
    }
}

/// RIM appraisal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuRim {
    /// Each bound GPU `i` needs `gpu{i}-rim-driver` and `gpu{i}-rim-vbios` in the bundle,
    /// verified to NVIDIA's RIM root, and every active reference measurement must match.
    Require,
    /// RIMs are not appraised (even when served): the measurements are not checked.
    DangerousSkip,
}

/// A dotted version whose parts are numbers in base `RADIX`: the driver's
/// ("570.124.06", decimal) or the VBIOS's ("96.00.9f.00.01", hex). Compared part by part,
/// missing parts counting as 0.
#[derive(Clone, PartialEq, Eq)]
pub struct DottedVersion<const RADIX: u32> {
    text: String,
    parts: Vec<u64>,
}

/// A driver version: decimal parts.
pub type DriverVersion = DottedVersion<10>;
/// A VBIOS version: hex parts.
pub type VbiosVersion = DottedVersion<16>;

impl<const RADIX: u32> DottedVersion<RADIX> {
    pub fn parse(text: &str) -> Option<Self> {
        let parts = text
            .split('.')
            .map(|p| {
                (!p.is_empty() && p.len() <= 8)
                    .then(|| u64::from_str_radix(p, RADIX).ok())
                    .flatten()
            })
            .collect::<Option<Vec<u64>>>()?;
        Some(DottedVersion {
            text: text.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Part-by-part order, missing parts as 0.
    pub fn compare(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        let at = |v: &Self, i: usize| v.parts.get(i).copied().unwrap_or(0);
        (0..n)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl<const RADIX: u32> fmt::Debug for DottedVersion<RADIX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl<'de, const RADIX: u32> Deserialize<'de> for DottedVersion<RADIX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "{text:?} is not a dotted version of base-{RADIX} numbers"
            ))
        })
    }
}

impl<const RADIX: u32> Serialize for DottedVersion<RADIX> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl GpuPolicy {
    /// The policy of a file without `[gpu]`: no GPU required; bound GPU evidence is
    /// still verified to NVIDIA's root, its nonce and claim 8, Hopper only, no RIM
    /// appraisal.
    pub fn none() -> Self {
        GpuPolicy {
            count: 0,
            architectures: vec![GpuArchitecture::Hopper],
            min_driver_version: Constraint::Any,
            min_vbios_version: Constraint::Any,
            rim: GpuRim::DangerousSkip,
            dangerous_trusted_roots: Vec::new(),
            dangerous_trusted_rim_roots: Vec::new(),
            revocation: GpuRevocation::DangerousSkip,
        }
    }

    pub(crate) fn check(&self) -> Result<(), Rejection> {
        if self.architectures.is_empty() {
            return reject(
                Reason::PolicyInvalid,
                "[gpu] architectures is empty: name the architectures allowed ([\"hopper\"])",
            );
        }
        Ok(())
    }

    /// Appraise one verified GPU (index `i` in the bundle) in a fixed order: architecture,
    /// CC mode (feature flag), driver, VBIOS, then RIMs (`rims`: the driver's and the
    /// VBIOS's, when served).
    pub fn appraise_gpu(
        &self,
        i: usize,
        gpu: &VerifiedGpuEvidence,
        rims: (Option<&[u8]>, Option<&[u8]>),
        at: Timestamp,
    ) -> Result<(), Rejection> {
        let arch = gpu.architecture();
        if !self.architectures.iter().any(|a| a.matches(arch)) {
            return reject(
                Reason::GpuArchitectureNotAllowed,
                format!("GPU {i} is {arch}, not in the policy's [gpu] architectures"),
            );
        }
        let claims = gpu.claims();
        if let Some(flag) = claims.feature_flag.filter(|f| !f.gpu_cc_on()) {
            return reject(
                Reason::GpuCcModeOff,
                format!(
                    "GPU {i}'s evidence states mode {} (feature flag): its own confidential-computing mode is off",
                    flag.as_str()
                ),
            );
        }
        if let Constraint::Only(min) = &self.min_driver_version {
            check_min(
                i,
                "driver",
                claims.driver_version.as_deref(),
                min,
                Reason::GpuDriverBelowMinimum,
            )?;
        }
        if let Constraint::Only(min) = &self.min_vbios_version {
            check_min(
                i,
                "VBIOS",
                claims.vbios_version.as_deref(),
                min,
                Reason::GpuVbiosBelowMinimum,
            )?;
        }
        if self.revocation == GpuRevocation::Require && !gpu.revocation_checked() {
            return reject(
                Reason::OcspMissing,
                format!(
                    "the policy requires the GPU device chain's revocation to be checked \
                     ([gpu] revocation = \"require\") and no verified OCSP responses covered \
                     every certificate of GPU {i}'s chain below the root"
                ),
            );
        }
        if self.rim == GpuRim::Require {
            let (Some(driver), Some(vbios)) = rims else {
                return reject(
                    Reason::GpuRimMissing,
                    format!(
                        "the policy requires RIM appraisal and the bundle carries no {} RIM for GPU {i} (gpu{i}-rim-driver, gpu{i}-rim-vbios)",
                        if rims.0.is_none() { "driver" } else { "VBIOS" }
                    ),
                );
            };
            let driver = nvidia::verify_rim(driver, &self.rim_anchors(driver), at)
                .map_err(|e| in_rim(i, "driver", e))?;
            let vbios = nvidia::verify_rim(vbios, &self.rim_anchors(vbios), at)
                .map_err(|e| in_rim(i, "VBIOS", e))?;
            check_rim_version(i, "driver", &driver, claims.driver_version.as_deref())?;
            check_rim_version(i, "VBIOS", &vbios, claims.vbios_version.as_deref())?;
            nvidia::compare_measurements(gpu, &[&driver, &vbios])?
                .into_result()
                .map_err(|e| Rejection::new(e.reason, format!("GPU {i}: {}", e.detail)))?;
        }
        Ok(())
    }
}

impl GpuPolicy {
    /// NVIDIA's RIM root, plus the last certificate of this RIM's signing chain when the
    /// policy names it in `dangerous_trusted_rim_roots` (a RIM that does not parse gets
    /// NVIDIA's root only; [`nvidia::verify_rim`] then says why it does not parse).
    fn rim_anchors(&self, rim: &[u8]) -> NvidiaTrustAnchors {
        let anchors = NvidiaTrustAnchors::nvidia();
        let Some(last) = nvidia::Rim::parse(rim)
            .ok()
            .and_then(|r| r.certificates.last().cloned())
        else {
            return anchors;
        };
        let sha = crate::x509::sha256(&last);
        if self.dangerous_trusted_rim_roots.iter().any(|h| h.0 == sha) {
            anchors.dangerous_trust_rim_root(last)
        } else {
            anchors
        }
    }
}

fn in_rim(i: usize, what: &str, e: Rejection) -> Rejection {
    Rejection::new(e.reason, format!("GPU {i} {what} RIM: {}", e.detail))
}

/// NVIDIA's verifier's version check: the RIM's colloquialVersion, lowercased, must be
/// the version the evidence states (driver: opaque field 3; VBIOS: field 6, which this
/// crate prints in lowercase hex). Compared as text, case-insensitively, like NVIDIA's
/// (`545.00` is not `545.0`); a RIM or evidence without a version does not match.
fn check_rim_version(
    i: usize,
    what: &str,
    rim: &nvidia::VerifiedRim,
    stated: Option<&str>,
) -> Result<(), Rejection> {
    let rim_version = rim.rim().colloquial_version.as_deref();
    match (rim_version, stated) {
        (Some(r), Some(s)) if r.eq_ignore_ascii_case(s) => Ok(()),
        _ => reject(
            Reason::GpuRimVersionMismatch,
            format!(
                "GPU {i}: the {what} RIM ({}) is for version {}, the GPU's evidence states {}",
                rim.rim().tag_id,
                rim_version.map_or("(none)".into(), |v| format!("{v:?}")),
                stated.map_or("(none)".into(), |v| format!("{v:?}")),
            ),
        ),
    }
}

fn check_min<const RADIX: u32>(
    i: usize,
    what: &str,
    stated: Option<&str>,
    min: &DottedVersion<RADIX>,
    reason: Reason,
) -> Result<(), Rejection> {
    let Some(text) = stated else {
        return reject(
            reason,
            format!(
                "GPU {i} states no {what} version; the policy requires at least {}",
                min.as_str()
            ),
        );
    };
    let Some(v) = DottedVersion::<RADIX>::parse(text) else {
        return reject(
            reason,
            format!(
                "GPU {i} {what} version {text:?} is not comparable with the policy's minimum {}",
                min.as_str()
            ),
        );
    };
    if v.compare(min) == Ordering::Less {
        return reject(
            reason,
            format!(
                "GPU {i} {what} version {text} is below the policy's minimum {}",
                min.as_str()
            ),
        );
    }
    Ok(())
}

/// One GPU as served in a bundle.
pub(crate) struct ServedGpu<'a> {
    pub evidence: &'a [u8],
    pub chain: &'a [u8],
    pub rim_driver: Option<&'a [u8]>,
    pub rim_vbios: Option<&'a [u8]>,
    /// `gpu{i}-ocsp-0`, `gpu{i}-ocsp-1`, ...: OCSP responses for the device chain.
    pub ocsp: Vec<Vec<u8>>,
}

/// The GPUs of a bundle: entries `gpu0`, `gpu1`, ... (GPU evidence) each with
/// `gpu{i}-chain` and optionally `gpu{i}-rim-driver` / `gpu{i}-rim-vbios` and
/// `gpu{i}-ocsp-0`, `gpu{i}-ocsp-1`, ... (no gaps). Any other
/// label with a GPU media type, a gap, or a missing chain is malformed.
pub(crate) fn served_gpus(entries: &[Entry]) -> Result<Vec<ServedGpu<'_>>, Rejection> {
    let bad = |detail: String| Rejection::new(Reason::BundleMalformed, detail);
    let find = |label: &str, media: &str| -> Result<Option<&[u8]>, Rejection> {
        match entries.iter().find(|e| e.label == label) {
            None => Ok(None),
            Some(e) if e.media_type == media => Ok(Some(&e.value)),
            Some(e) => Err(bad(format!(
                "bundle entry \"{label}\" has media type {}, not {media}",
                e.media_type
            ))),
        }
    };
    let mut gpus = Vec::new();
    while let Some(evidence) = find(&format!("gpu{}", gpus.len()), GPU_EVIDENCE_MEDIA_TYPE)? {
        let i = gpus.len();
        let chain = find(&format!("gpu{i}-chain"), GPU_CHAIN_MEDIA_TYPE)?
            .ok_or_else(|| bad(format!("bundle entry gpu{i} has no gpu{i}-chain")))?;
        let mut ocsp = Vec::new();
        while let Some(r) = find(&format!("gpu{i}-ocsp-{}", ocsp.len()), GPU_OCSP_MEDIA_TYPE)? {
            ocsp.push(r.to_vec());
        }
        gpus.push(ServedGpu {
            evidence,
            chain,
            rim_driver: find(&format!("gpu{i}-rim-driver"), GPU_RIM_MEDIA_TYPE)?,
            rim_vbios: find(&format!("gpu{i}-rim-vbios"), GPU_RIM_MEDIA_TYPE)?,
            ocsp,
        });
    }
    let known = |label: &str| {
        gpus.iter().enumerate().any(|(i, g)| {
            [
                format!("gpu{i}"),
                format!("gpu{i}-chain"),
                format!("gpu{i}-rim-driver"),
                format!("gpu{i}-rim-vbios"),
            ]
            .iter()
            .any(|l| l == label)
                || (0..g.ocsp.len()).any(|k| label == format!("gpu{i}-ocsp-{k}"))
        })
    };
    for e in entries {
        let gpu_media = [
            GPU_EVIDENCE_MEDIA_TYPE,
            GPU_CHAIN_MEDIA_TYPE,
            GPU_RIM_MEDIA_TYPE,
            GPU_OCSP_MEDIA_TYPE,
        ]
        .contains(&e.media_type.as_str());
        if gpu_media && !known(&e.label) {
            return Err(bad(format!(
                "bundle entry \"{}\" ({}) is not gpu0..gpu{} or one of their chains and RIMs",
                e.label,
                e.media_type,
                gpus.len()
            )));
        }
    }
    Ok(gpus)
}

/// Verify the GPUs a bundle serves against the bound claims and the policy:
/// 1. claim 8 absent: no GPU entry may be served (`gpu_evidence_not_bound`) and the
///    policy may require none (`gpu_count_below_minimum`);
/// 2. claim 8 present: it must equal [`gpu_evidence_digest`] of the served GPUs
///    (`gpu_evidence_not_bound`);
/// 3. at least `count` GPUs, no device twice;
/// 4. each GPU: [`nvidia::verify_with_ocsp`] (its served OCSP responses) with the nonce [`RuntimeClaims::gpu_nonce`]
///    (`gpu_nonce_mismatch` for evidence made for other keys), then
///    [`GpuPolicy::appraise_gpu`].
pub(crate) fn verify_bound_gpus(
    entries: &[Entry],
    claims: &RuntimeClaims,
    policy: &GpuPolicy,
    at: Timestamp,
) -> Result<Vec<VerifiedGpuEvidence>, Rejection> {
    let gpus = served_gpus(entries)?;
    let Some(bound) = claims.gpu_evidence_digest else {
        if !gpus.is_empty() {
            return reject(
                Reason::GpuEvidenceNotBound,
                format!(
                    "the bundle serves evidence of {} GPU(s) and the runtime claims bind none (no claim 8)",
                    gpus.len()
                ),
            );
        }
        if policy.count > 0 {
            return reject(
                Reason::GpuCountBelowMinimum,
                format!(
                    "the policy requires at least {} GPU(s); the runtime binds none (no claim 8)",
                    policy.count
                ),
            );
        }
        return Ok(Vec::new());
    };
    let served: Vec<(&[u8], &[u8])> = gpus.iter().map(|g| (g.evidence, g.chain)).collect();
    let actual = gpu_evidence_digest(&served);
    if actual != bound {
        return reject(
            Reason::GpuEvidenceNotBound,
            format!(
                "claim 8 (gpu_evidence_digest) is {}; the {} GPU evidence entries served digest to {}",
                hex::encode(bound),
                gpus.len(),
                hex::encode(actual)
            ),
        );
    }
    if (gpus.len() as u64) < u64::from(policy.count) {
        return reject(
            Reason::GpuCountBelowMinimum,
            format!(
                "the runtime binds {} GPU(s); the policy requires at least {}",
                gpus.len(),
                policy.count
            ),
        );
    }
    let nonce = claims.gpu_nonce();
    let mut verified: Vec<VerifiedGpuEvidence> = Vec::with_capacity(gpus.len());
    for (i, g) in gpus.iter().enumerate() {
        let in_gpu = |e: Rejection| Rejection::new(e.reason, format!("GPU {i}: {}", e.detail));
        let chain = nvidia::chain_from_pem(g.chain).map_err(in_gpu)?;
        let mut anchors = NvidiaTrustAnchors::nvidia();
        if let Some(last) = chain.last() {
            let sha = crate::x509::sha256(last);
            if policy.dangerous_trusted_roots.iter().any(|h| h.0 == sha) {
                anchors = anchors.dangerous_trust_device_root(last.clone());
            }
        }
        let v = nvidia::verify_with_ocsp(
            g.evidence,
            &chain,
            &g.ocsp,
            ExpectedNonce::Exactly(nonce),
            &anchors,
            at,
        )
        .map_err(in_gpu)?;
        let claims_i = v.claims();
        if let Some(j) = verified.iter().position(|w| {
            let c = w.claims();
            c.hwmodel == claims_i.hwmodel
                && c.device_certificate_serial == claims_i.device_certificate_serial
        }) {
            return reject(
                Reason::GpuEvidenceNotBound,
                format!(
                    "GPU {i} and GPU {j} are the same device (certificate serial {}): one GPU counted twice",
                    claims_i.device_certificate_serial
                ),
            );
        }
        policy.appraise_gpu(i, &v, (g.rim_driver, g.rim_vbios), at)?;
        verified.push(v);
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_versions_parse_in_their_base_and_compare_part_by_part() {
        let d = |t: &str| DriverVersion::parse(t).unwrap();
        let v = |t: &str| VbiosVersion::parse(t).unwrap();
        assert_eq!(d("570.124.06").compare(&d("570.124.6")), Ordering::Equal);
        assert_eq!(d("570.124.06").compare(&d("570.86.15")), Ordering::Greater);
        assert_eq!(d("570").compare(&d("570.0.1")), Ordering::Less);
        assert_eq!(d("570.0").compare(&d("570")), Ordering::Equal);
        assert_eq!(v("96.00.9f.00.01").compare(&v("96.00.a0")), Ordering::Less);
        assert_eq!(
            v("96.00.9F.00.01").compare(&v("96.00.9f.00.01")),
            Ordering::Equal
        );
        for bad in ["", "570.", ".1", "5a0", "1..2", "123456789"] {
            assert!(DriverVersion::parse(bad).is_none(), "{bad:?}");
        }
        assert!(VbiosVersion::parse("96.00.9g").is_none());
        assert!(DriverVersion::parse("96.00.9f").is_none());
    }

    #[test]
    fn the_absent_section_is_the_none_policy_and_round_trips() {
        let none = GpuPolicy::none();
        none.check().unwrap();
        let text = toml::to_string(&none).unwrap();
        let back: GpuPolicy = toml::from_str(&text).unwrap();
        assert_eq!(back, none);
        assert!(text.contains("rim = \"dangerous_skip\""), "{text}");
        let empty = GpuPolicy {
            architectures: vec![],
            ..GpuPolicy::none()
        };
        assert_eq!(empty.check().unwrap_err().reason, Reason::PolicyInvalid);
    }
}
