//! GPU evidence collection in the guest (issue 15): the runtime asks each of its GPUs for
//! SPDM evidence answering the nonce derived from its claims
//! ([`attestation::binding::RuntimeClaims::gpu_nonce`]) and binds the set in claim 8.
//!
//! Sources:
//! - [`NvidiaDriverSource`]: the real interface is NOT in this build. NVIDIA exposes GPU
//!   evidence through NVML (`nvmlDeviceGetConfComputeGpuAttestationReport` and
//!   `nvmlDeviceGetConfComputeGpuCertificate` in `libnvidia-ml.so`); calling it needs
//!   either a C build dependency or a hand-written dlopen binding of those structures,
//!   neither of which this crate has. It answers [`GpuError::NoInterface`] so that a
//!   launch asking for GPUs fails closed instead of serving without them.
//! - [`FixedGpuSource`]: evidence given up front (tests).
//! - `SimulatedGpuSource` (simulate builds): simulated NVIDIA GPUs (veritee-sim) signing
//!   real-format evidence with a FAKE chain generated in the state directory.

use attestation::bundle::{
    EvidenceBundle, GPU_CHAIN_MEDIA_TYPE, GPU_EVIDENCE_MEDIA_TYPE, IND_ENDORSEMENT, IND_EVIDENCE,
};

/// One GPU's evidence as the driver returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuEvidence {
    /// SPDM GET_MEASUREMENTS request || MEASUREMENTS response (binary).
    pub evidence: Vec<u8>,
    /// The device certificate chain, PEM, leaf first.
    pub chain_pem: Vec<u8>,
}

/// Why GPU evidence could not be collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// This build has no way to reach NVIDIA's attestation interface.
    #[error("no NVIDIA attestation interface in this build: {0}")]
    NoInterface(String),
    /// GPU `index` answered, but not usably.
    #[error("GPU {index}: {detail}")]
    Device { index: usize, detail: String },
}

/// Something that can ask the guest's GPUs for evidence.
pub trait GpuEvidenceSource: Send + Sync {
    /// For the start-up log.
    fn describe(&self) -> String;
    /// Evidence of every GPU, in a fixed order, each answering `nonce`.
    fn collect(&self, nonce: [u8; 32]) -> Result<Vec<GpuEvidence>, GpuError>;
}

/// The real NVIDIA interface: missing from this build (see the module docs).
#[derive(Debug, Default)]
pub struct NvidiaDriverSource;

impl GpuEvidenceSource for NvidiaDriverSource {
    fn describe(&self) -> String {
        "NVIDIA driver (not available in this build)".into()
    }

    fn collect(&self, _nonce: [u8; 32]) -> Result<Vec<GpuEvidence>, GpuError> {
        Err(GpuError::NoInterface(
            "collecting GPU evidence needs NVML's confidential-computing attestation calls (libnvidia-ml.so), which veritee-enclave does not link or load".into(),
        ))
    }
}

/// Evidence fixed up front, whatever the nonce (tests: relayed or swapped evidence).
#[derive(Debug, Clone, Default)]
pub struct FixedGpuSource(pub Vec<GpuEvidence>);

impl GpuEvidenceSource for FixedGpuSource {
    fn describe(&self) -> String {
        format!("{} fixed GPU evidence set(s) (tests)", self.0.len())
    }

    fn collect(&self, _nonce: [u8; 32]) -> Result<Vec<GpuEvidence>, GpuError> {
        Ok(self.0.clone())
    }
}

/// Collect evidence for `nonce` and check what the runtime can check itself before
/// binding it: every piece parses and answers `nonce` (a host that hands the runtime
/// evidence made for other keys is caught here, not only by clients).
pub fn collect_checked(
    source: &dyn GpuEvidenceSource,
    nonce: [u8; 32],
) -> Result<Vec<GpuEvidence>, GpuError> {
    let gpus = source.collect(nonce)?;
    for (index, g) in gpus.iter().enumerate() {
        let parsed =
            attestation::nvidia::parse_evidence(&g.evidence).map_err(|e| GpuError::Device {
                index,
                detail: format!("its evidence does not parse: {e}"),
            })?;
        if parsed.request.nonce != nonce {
            return Err(GpuError::Device {
                index,
                detail: format!(
                    "its evidence answers nonce {}, not this runtime's {}",
                    hex::encode(parsed.request.nonce),
                    hex::encode(nonce)
                ),
            });
        }
        attestation::nvidia::chain_from_pem(&g.chain_pem).map_err(|e| GpuError::Device {
            index,
            detail: format!("its certificate chain is not PEM: {e}"),
        })?;
    }
    Ok(gpus)
}

/// Claim 8 of a collected set (None when there is no GPU).
pub fn evidence_digest(gpus: &[GpuEvidence]) -> Option<[u8; 32]> {
    if gpus.is_empty() {
        return None;
    }
    let set: Vec<(&[u8], &[u8])> = gpus
        .iter()
        .map(|g| (g.evidence.as_slice(), g.chain_pem.as_slice()))
        .collect();
    Some(attestation::binding::gpu_evidence_digest(&set))
}

/// Add the GPU entries (`gpu{i}`, `gpu{i}-chain`) to a bundle.
pub fn push_entries(bundle: &mut EvidenceBundle, gpus: &[GpuEvidence]) {
    for (i, g) in gpus.iter().enumerate() {
        bundle.push(
            &format!("gpu{i}"),
            GPU_EVIDENCE_MEDIA_TYPE,
            g.evidence.clone(),
            IND_EVIDENCE,
        );
        bundle.push(
            &format!("gpu{i}-chain"),
            GPU_CHAIN_MEDIA_TYPE,
            g.chain_pem.clone(),
            IND_ENDORSEMENT,
        );
    }
}

/// Simulated GPUs (development only).
#[cfg(feature = "simulate")]
pub struct SimulatedGpuSource {
    gpus: sim::nvidia::SimulatedGpus,
}

#[cfg(feature = "simulate")]
impl SimulatedGpuSource {
    /// `count` simulated GPUs whose FAKE chain derives from a seed kept in `dir`.
    pub fn open(dir: &std::path::Path, count: usize) -> Result<Self, String> {
        let gpus = sim::nvidia::SimulatedGpus::open_or_create(dir, count)
            .map_err(|e| format!("simulated GPUs in {}: {e}", dir.display()))?;
        Ok(SimulatedGpuSource { gpus })
    }

    pub fn gpus(&self) -> &sim::nvidia::SimulatedGpus {
        &self.gpus
    }
}

#[cfg(feature = "simulate")]
impl GpuEvidenceSource for SimulatedGpuSource {
    fn describe(&self) -> String {
        format!(
            "{} SIMULATED NVIDIA GPU(s) (FAKE root {})",
            self.gpus.count(),
            hex::encode(self.gpus.root_sha256())
        )
    }

    fn collect(&self, nonce: [u8; 32]) -> Result<Vec<GpuEvidence>, GpuError> {
        Ok((0..self.gpus.count())
            .map(|i| GpuEvidence {
                evidence: self.gpus.evidence(i, nonce),
                chain_pem: self.gpus.chain_pem(i).into_bytes(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_interface_is_a_typed_refusal() {
        let err = collect_checked(&NvidiaDriverSource, [0; 32]).unwrap_err();
        assert!(matches!(err, GpuError::NoInterface(_)), "{err}");
    }

    #[test]
    fn evidence_for_another_nonce_or_garbage_is_not_bound() {
        let gpus = sim::nvidia::SimulatedGpus::from_seed("enclave gpu test", 1);
        let good = GpuEvidence {
            evidence: gpus.evidence(0, [1; 32]),
            chain_pem: gpus.chain_pem(0).into_bytes(),
        };
        let source = FixedGpuSource(vec![good.clone()]);
        assert_eq!(
            collect_checked(&source, [1; 32]).unwrap(),
            vec![good.clone()]
        );
        assert!(matches!(
            collect_checked(&source, [2; 32]),
            Err(GpuError::Device { index: 0, .. })
        ));
        let garbage = FixedGpuSource(vec![GpuEvidence {
            evidence: vec![0x11, 0xe0],
            ..good
        }]);
        assert!(collect_checked(&garbage, [1; 32]).is_err());
        assert_eq!(evidence_digest(&[]), None);
    }
}
