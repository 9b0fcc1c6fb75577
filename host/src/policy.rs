//! The client policy that accepts exactly one image under one launch configuration.
//!
//! Built through the attestation crate's own types: the evidence policy starts from
//! [`Policy::default_verifier`] (so a field someone adds there keeps its safe default here)
//! and only the fields the image determines are set; the `[runtime]` section starts from
//! every field explicit. The result is serialised with [`PolicyFile::to_toml`] and read back
//! with [`PolicyFile::from_toml`] before it is returned, so what is written is what loads.
//!
//! | field | value |
//! |---|---|
//! | `platforms` | the platforms measured |
//! | `snp.measurement` | the launch digest of every accepted vCPU shape |
//! | `snp.host_data` | the launch configuration digest ([`LaunchConfig::host_data`]) |
//! | `snp.vmpl` | `[0]`: the runtime asks for its report at VMPL 0 (no SVSM below it) |
//! | `tdx.mrtd` | MRTD for each accepted page-add order |
//! | `tdx.rtmr0..2` | a reference boot's replayed event log, or `"any"` (see the caller) |
//! | `tdx.mrconfigid` | the launch configuration digest, zero-padded ([`LaunchConfig::mr_config_id`]) |
//! | `runtime.*` | the model digest, the runtime version, the launch configuration digest, its auditor key (`[]` / `"none"` without one) |
//! | `gpu.*` | as given ([`ImagePolicy::gpu`]): GPU count, architectures, minimum driver and VBIOS versions, RIM appraisal; [`GpuPolicy::none`] when the image runs without GPUs |
//!
//! Everything else (debug forbidden, migration agents forbidden, TCB rules, products, key
//! types, `report_data`) stays the verifier's default.

use attestation::binding::{PolicyFile, RuntimePolicy};
use attestation::evidence::Platform;
use attestation::policy::{Constraint, GpuPolicy, Hex, Policy};
use thiserror::Error;

use crate::launch_config::LaunchConfig;
use crate::measure::Sha384Digest;

/// What the policy pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicy {
    /// SEV-SNP launch digests the image may have, one per accepted vCPU shape (empty: the
    /// policy does not accept SEV-SNP).
    pub snp_measurements: Vec<Sha384Digest>,
    /// TDX MRTDs, one per accepted page-add order (empty: the policy does not accept TDX).
    pub tdx_mrtds: Vec<Sha384Digest>,
    /// RTMR0..2 of a reference boot of this image; `None` leaves them `"any"`.
    pub tdx_rtmrs: Option<[Sha384Digest; 3]>,
    /// The launch configuration the host will hand the runtime.
    pub launch_config: LaunchConfig,
    /// SHA-256 of the model the runtime must serve.
    pub model_digest: [u8; 32],
    /// The runtime's version string (claim 5), e.g. `veritee-enclave 0.1.0`.
    pub runtime_version: String,
    /// The `[gpu]` section: what the runtime's bound NVIDIA GPUs must be
    /// ([`GpuPolicy::none`]: none required; bound GPU evidence is still verified).
    pub gpu: GpuPolicy,
}

/// Why no policy was built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// Nothing measured: a policy with no platform accepts nothing.
    #[error("no SEV-SNP measurement and no TDX MRTD: the policy would accept nothing")]
    NoPlatform,
    /// The attestation crate's default policy lacks a section this image needs.
    #[error("the verifier's default policy has no [{0}] section to start from")]
    NoDefaultSection(Platform),
    /// The built policy did not read back as itself (a bug here or in the attestation crate).
    #[error("the generated policy does not load back: {0}")]
    RoundTrip(String),
}

fn dedup(values: &[Sha384Digest]) -> Vec<Hex<48>> {
    let mut out: Vec<Hex<48>> = Vec::new();
    for v in values {
        if !out.iter().any(|h| h.0 == *v) {
            out.push(Hex(*v));
        }
    }
    out
}

/// The policy file for `image`.
pub fn policy_file(image: &ImagePolicy) -> Result<PolicyFile, PolicyError> {
    let snp = !image.snp_measurements.is_empty();
    let tdx = !image.tdx_mrtds.is_empty();
    if !snp && !tdx {
        return Err(PolicyError::NoPlatform);
    }
    let mut evidence = Policy::default_verifier();
    evidence.platforms.retain(|p| match p {
        Platform::Snp => snp,
        Platform::Tdx => tdx,
    });
    for (wanted, p) in [(snp, Platform::Snp), (tdx, Platform::Tdx)] {
        if wanted && !evidence.platforms.contains(&p) {
            evidence.platforms.push(p);
        }
    }
    if snp {
        let s = evidence
            .snp
            .as_mut()
            .ok_or(PolicyError::NoDefaultSection(Platform::Snp))?;
        s.measurement = Constraint::Only(dedup(&image.snp_measurements));
        s.host_data = Constraint::Only(vec![Hex(image.launch_config.host_data())]);
        s.vmpl = Constraint::Only(vec![0]);
    } else {
        evidence.snp = None;
    }
    if tdx {
        let t = evidence
            .tdx
            .as_mut()
            .ok_or(PolicyError::NoDefaultSection(Platform::Tdx))?;
        t.mrtd = Constraint::Only(dedup(&image.tdx_mrtds));
        t.mrconfigid = Constraint::Only(vec![Hex(image.launch_config.mr_config_id())]);
        if let Some([r0, r1, r2]) = image.tdx_rtmrs {
            t.rtmr0 = Constraint::Only(vec![Hex(r0)]);
            t.rtmr1 = Constraint::Only(vec![Hex(r1)]);
            t.rtmr2 = Constraint::Only(vec![Hex(r2)]);
        }
    } else {
        evidence.tdx = None;
    }

    // Every field is set below; `any()` is only the starting value.
    let mut runtime = RuntimePolicy::any();
    runtime.model_digests = Constraint::Only(vec![Hex(image.model_digest)]);
    runtime.launch_config_digests = Constraint::Only(vec![Hex(image.launch_config.digest)]);
    runtime.runtime_versions = Constraint::Only(vec![image.runtime_version.clone()]);
    runtime.auditor_hpke_keys = Constraint::Only(
        image
            .launch_config
            .auditor_hpke_public_key
            .map(Hex)
            .into_iter()
            .collect(),
    );

    let file = PolicyFile {
        evidence,
        runtime,
        gpu: image.gpu.clone(),
    };
    match PolicyFile::from_toml(&file.to_toml()) {
        Ok(back) if back == file => Ok(file),
        Ok(back) => Err(PolicyError::RoundTrip(format!(
            "read back as {back:?}, built {file:?}"
        ))),
        Err(e) => Err(PolicyError::RoundTrip(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImagePolicy {
        ImagePolicy {
            snp_measurements: vec![[1; 48], [2; 48], [1; 48]],
            tdx_mrtds: vec![[3; 48]],
            tdx_rtmrs: None,
            launch_config: LaunchConfig::parse(
                format!("auditor_hpke_public_key = \"{}\"\n", "cd".repeat(32)).as_bytes(),
            )
            .unwrap(),
            model_digest: [9; 32],
            runtime_version: "veritee-enclave 0.1.0".into(),
            gpu: GpuPolicy::none(),
        }
    }

    #[test]
    fn the_gpu_section_is_written_as_given_and_loads_back() {
        use attestation::policy::{DriverVersion, GpuArchitecture, GpuRim, VbiosVersion};
        let gpu = GpuPolicy {
            count: 2,
            architectures: vec![GpuArchitecture::Hopper],
            min_driver_version: Constraint::Only(DriverVersion::parse("570.124.06").unwrap()),
            min_vbios_version: Constraint::Only(VbiosVersion::parse("96.00.9f.00.01").unwrap()),
            rim: GpuRim::Require,
            dangerous_trusted_roots: vec![],
            dangerous_trusted_rim_roots: vec![],
            revocation: attestation::policy::GpuRevocation::DangerousSkip,
        };
        let f = policy_file(&ImagePolicy {
            gpu: gpu.clone(),
            ..image()
        })
        .unwrap();
        assert_eq!(f.gpu, gpu);
        let text = f.to_toml();
        assert!(text.contains("[gpu]"), "{text}");
        assert!(text.contains("count = 2"), "{text}");
        assert!(text.contains("rim = \"require\""), "{text}");
        assert_eq!(PolicyFile::from_toml(&text).unwrap().gpu, gpu);
        // Without GPUs: the none section.
        assert_eq!(policy_file(&image()).unwrap().gpu, GpuPolicy::none());
    }

    #[test]
    fn pins_what_the_image_determines() {
        let img = image();
        let f = policy_file(&img).unwrap();
        assert_eq!(f.evidence.platforms, vec![Platform::Snp, Platform::Tdx]);
        let snp = f.evidence.snp.as_ref().unwrap();
        assert_eq!(
            snp.measurement,
            Constraint::Only(vec![Hex([1; 48]), Hex([2; 48])])
        );
        assert_eq!(
            snp.host_data,
            Constraint::Only(vec![Hex(img.launch_config.digest)])
        );
        let tdx = f.evidence.tdx.as_ref().unwrap();
        assert_eq!(tdx.mrtd, Constraint::Only(vec![Hex([3; 48])]));
        assert!(tdx.rtmr0.is_any() && tdx.rtmr3.is_any());
        assert_eq!(
            f.runtime.auditor_hpke_keys,
            Constraint::Only(vec![Hex([0xcd; 32])])
        );
        // The rest is the verifier's default.
        let default = Policy::default_verifier();
        assert_eq!(f.evidence.debug, default.debug);
        assert_eq!(
            snp.min_tcb,
            default.snp.as_ref().unwrap().min_tcb,
            "min_tcb stays the default"
        );

        let snp_only = policy_file(&ImagePolicy {
            tdx_mrtds: vec![],
            launch_config: LaunchConfig::none(),
            ..img.clone()
        })
        .unwrap();
        assert_eq!(snp_only.evidence.platforms, vec![Platform::Snp]);
        assert!(snp_only.evidence.tdx.is_none());
        assert_eq!(
            snp_only.runtime.auditor_hpke_keys,
            Constraint::Only(vec![]),
            "no auditor key in the launch configuration: the runtime must name none"
        );

        let with_rtmrs = policy_file(&ImagePolicy {
            snp_measurements: vec![],
            tdx_rtmrs: Some([[4; 48], [5; 48], [6; 48]]),
            ..img.clone()
        })
        .unwrap();
        let tdx = with_rtmrs.evidence.tdx.unwrap();
        assert_eq!(tdx.rtmr2, Constraint::Only(vec![Hex([6; 48])]));
        assert!(tdx.rtmr3.is_any());
        assert!(with_rtmrs.evidence.snp.is_none());

        assert_eq!(
            policy_file(&ImagePolicy {
                snp_measurements: vec![],
                tdx_mrtds: vec![],
                ..img
            }),
            Err(PolicyError::NoPlatform)
        );
    }
}
