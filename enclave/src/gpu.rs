//! GPU evidence collection in the guest (issue 15): the runtime asks each of its GPUs for
//! SPDM evidence answering the nonce derived from its claims
//! ([`attestation::binding::RuntimeClaims::gpu_nonce`]) and binds the set in claim 8.
//!
//! Sources:
//! - [`NvidiaDriverSource`]: the real GPUs, through NVIDIA's NVML loaded at run time
//!   ([`nvml`]: `nvmlDeviceGetConfComputeGpuAttestationReport` and
//!   `nvmlDeviceGetConfComputeGpuCertificate` in `libnvidia-ml.so.1`), after checking
//!   that the system is in confidential-computing mode with devtools mode off. Without
//!   the library it answers [`GpuError::NoInterface`], so that a launch asking for GPUs
//!   fails closed instead of serving without them.
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

pub mod nvml;
pub mod ocsp;
pub mod rims;

/// Why GPU evidence could not be collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// NVIDIA's attestation interface (NVML) cannot be reached: library or function
    /// missing, or NVML does not initialise.
    #[error("no NVIDIA attestation interface: {0}")]
    NoInterface(String),
    /// NVML reports the confidential-computing feature off (`ccFeature`).
    #[error("the GPUs are not in confidential-computing mode (NVML ccFeature = {cc_feature})")]
    CcOff { cc_feature: u32 },
    /// NVML reports devtools mode on: the GPU is debuggable and its secrets readable.
    #[error("the GPUs are in confidential-computing devtools mode (NVML devToolsMode = {dev_tools_mode}): debuggable, not confidential")]
    CcDevTools { dev_tools_mode: u32 },
    /// NVML reports a confidential-computing environment other than production.
    #[error("the confidential-computing environment is not production (NVML environment = {environment}; 1 is simulation)")]
    CcNotProduction { environment: u32 },
    /// The guest sees another number of GPUs than the launch asks for.
    #[error("the launch asks for {expected} GPU(s) and NVML sees {found}")]
    Count { expected: usize, found: usize },
    /// An NVML call failed (for GPU `index` when it is per device).
    #[error("{}{call} failed: {message} (NVML code {code})", index.map(|i| format!("GPU {i}: ")).unwrap_or_default())]
    Nvml {
        index: Option<usize>,
        call: &'static str,
        code: u32,
        message: String,
    },
    /// NVML returned a size larger than its array (or 0).
    #[error("GPU {index}: NVML's {field} is {size}, outside 1..={capacity}")]
    SizeOutOfRange {
        index: usize,
        field: &'static str,
        size: u32,
        capacity: usize,
    },
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
    /// The roots the runtime's own check of OCSP responses before serving them
    /// ([`ocsp::select`]) trusts: NVIDIA's device root; simulated GPUs add their FAKE
    /// one (only for choosing what to serve: clients decide what they trust).
    fn device_anchors(&self) -> attestation::nvidia::NvidiaTrustAnchors {
        attestation::nvidia::NvidiaTrustAnchors::nvidia()
    }
}

/// The real GPUs through NVML ([`nvml`]): exactly `gpus` of them, in NVML index order.
#[derive(Debug, Clone)]
pub struct NvidiaDriverSource {
    /// How many GPUs the launch asks for (NVML must see exactly these).
    pub gpus: usize,
    /// The library to load ([`nvml::LIBRARY`]).
    pub library: String,
}

impl NvidiaDriverSource {
    pub fn new(gpus: usize) -> Self {
        NvidiaDriverSource {
            gpus,
            library: nvml::LIBRARY.into(),
        }
    }
}

impl GpuEvidenceSource for NvidiaDriverSource {
    fn describe(&self) -> String {
        format!(
            "{} NVIDIA GPU(s) through NVML ({})",
            self.gpus, self.library
        )
    }

    fn collect(&self, nonce: [u8; 32]) -> Result<Vec<GpuEvidence>, GpuError> {
        let api = nvml::LoadedNvml::open(&self.library)?;
        nvml::collect_with(&api, self.gpus, nonce)
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

/// The files of `dir` (absent: none) that the host handed in as GPU collateral, sorted by
/// name, hidden names skipped: at most `max_files`, each at most `max_bytes`; and a line
/// for each file (or the directory) left out, for the log. `what` names the files in
/// those lines ("RIM", "OCSP response").
pub(crate) fn read_collateral_files(
    dir: &std::path::Path,
    what: &str,
    max_files: usize,
    max_bytes: u64,
) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    use std::io::Read;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (files, skipped),
        Err(e) => {
            skipped.push(format!("{}: {e}: no {what} served", dir.display()));
            return (files, skipped);
        }
    };
    let mut names: Vec<String> = listing
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if files.len() >= max_files {
            skipped.push(format!(
                "{}: skipped, more than {max_files} {what} files",
                path.display()
            ));
            continue;
        }
        let mut bytes = Vec::new();
        let read =
            std::fs::File::open(&path).and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            skipped.push(format!("{}: skipped: {e}", path.display()));
            continue;
        }
        if bytes.len() as u64 > max_bytes {
            skipped.push(format!(
                "{}: skipped: larger than {max_bytes} bytes",
                path.display()
            ));
            continue;
        }
        files.push((name, bytes));
    }
    (files, skipped)
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

    fn device_anchors(&self) -> attestation::nvidia::NvidiaTrustAnchors {
        attestation::nvidia::NvidiaTrustAnchors::nvidia()
            .dangerous_trust_device_root(self.gpus.root_der().to_vec())
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
    fn without_nvidias_library_the_real_source_refuses_naming_it() {
        let source = NvidiaDriverSource {
            gpus: 1,
            library: "libnvidia-ml-absent-for-this-test.so.1".into(),
        };
        let err = collect_checked(&source, [0; 32]).unwrap_err();
        let GpuError::NoInterface(detail) = &err else {
            panic!("{err}");
        };
        assert!(
            detail.contains("libnvidia-ml-absent-for-this-test.so.1"),
            "{detail}"
        );
        // The default library name is NVIDIA's soname; this machine has no NVIDIA driver
        // (when it has one, NVML answers instead and this part says nothing).
        assert_eq!(NvidiaDriverSource::new(2).library, "libnvidia-ml.so.1");
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
