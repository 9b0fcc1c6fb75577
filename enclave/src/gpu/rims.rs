//! NVIDIA reference integrity manifests (RIMs) the host hands the guest, served with the
//! GPU evidence so that clients requiring RIM appraisal (`[gpu] rim = "require"`) need no
//! network.
//!
//! RIMs are public, signed collateral (NVIDIA's RIM service,
//! `https://rim.attestation.nvidia.com/v1/rim/<id>`; the driver's id is
//! `NV_GPU_DRIVER_GH100_<driver version>`, the VBIOS's
//! `NV_GPU_VBIOS_<project>_<sku>_<chip sku>_<VBIOS version, hex without dots>`). The host
//! downloads them and puts the XML documents (the service's base64 `rim` field, decoded)
//! in the `nvidia-rims/` subdirectory of the collateral directory, under any file names.
//!
//! The runtime does not trust them and does not verify their signatures (clients do, to
//! NVIDIA's RIM root). It reads every file there as a RIM, skipping (and logging) any that
//! is unreadable, too large or does not parse, and serves for GPU `i` as
//! `gpu{i}-rim-driver` the RIM whose colloquialVersion is the driver version its evidence
//! states, and as `gpu{i}-rim-vbios` the one whose colloquialVersion is its VBIOS version
//! (compared case-insensitively, as NVIDIA's verifier does). A GPU for which no RIM has
//! its version gets none of that kind (logged): clients requiring RIMs then refuse with
//! `gpu_rim_missing`. A bad or missing RIM never stops the runtime.

use super::GpuEvidence;
use attestation::bundle::{EvidenceBundle, GPU_RIM_MEDIA_TYPE, IND_ENDORSEMENT};
use std::path::Path;

/// The subdirectory of the collateral directory that holds the RIMs.
pub const RIMS_SUBDIR: &str = crate::platform::NVIDIA_RIMS_SUBDIR;
/// Largest RIM file read (NVIDIA's are about 20 KiB).
pub const MAX_RIM_FILE: u64 = 1 << 20;
/// Most RIM files read (hidden names aside, whether they parse or not).
pub const MAX_RIMS: usize = 64;

/// A RIM the host handed in: it parses; nothing about it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRim {
    /// The file name in `nvidia-rims/`.
    pub name: String,
    /// Meta colloquialVersion.
    pub version: String,
    pub bytes: Vec<u8>,
}

/// The RIMs served for one GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuRims {
    pub driver: Option<Vec<u8>>,
    pub vbios: Option<Vec<u8>>,
}

/// Read `collateral_dir/nvidia-rims/` (absent: no RIM). Returns the RIMs that parse,
/// sorted by file name, and a line for each file skipped (for the log).
pub fn load(collateral_dir: &Path) -> (Vec<HostRim>, Vec<String>) {
    let dir = collateral_dir.join(RIMS_SUBDIR);
    let (files, mut skipped) = super::read_collateral_files(&dir, "RIM", MAX_RIMS, MAX_RIM_FILE);
    let mut rims = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(&name);
        match attestation::nvidia::Rim::parse(&bytes) {
            Ok(rim) => match rim.colloquial_version {
                Some(version) => rims.push(HostRim {
                    name,
                    version,
                    bytes,
                }),
                None => skipped.push(format!(
                    "{}: skipped: the RIM names no version (Meta colloquialVersion)",
                    path.display()
                )),
            },
            Err(e) => skipped.push(format!("{}: skipped, not a RIM: {e}", path.display())),
        }
    }
    (rims, skipped)
}

/// The RIMs to serve for each GPU, chosen by the versions its evidence states, and a log
/// line for each GPU and kind left without one.
pub fn select(gpus: &[GpuEvidence], rims: &[HostRim]) -> (Vec<GpuRims>, Vec<String>) {
    let mut notes = Vec::new();
    let offered: Vec<&str> = rims.iter().map(|r| r.version.as_str()).collect();
    let chosen = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| {
            // collect_checked parsed every piece of evidence already.
            let opaque = attestation::nvidia::parse_evidence(&g.evidence)
                .map(|e| e.response.opaque)
                .ok();
            let driver = opaque
                .as_ref()
                .and_then(|o| o.driver_version().ok().flatten());
            let vbios = opaque
                .as_ref()
                .and_then(|o| o.vbios_version().ok().flatten());
            let mut pick = |what: &str, version: Option<String>| {
                let found = version.as_deref().and_then(|v| {
                    rims.iter()
                        .find(|r| r.version.eq_ignore_ascii_case(v))
                        .map(|r| r.bytes.clone())
                });
                if found.is_none() && !rims.is_empty() {
                    notes.push(format!(
                        "GPU {i}: no {what} RIM for version {} among the RIMs handed in \
                         (versions {offered:?}): none served",
                        version.as_deref().unwrap_or("(none stated)")
                    ));
                }
                found
            };
            GpuRims {
                driver: pick("driver", driver),
                vbios: pick("VBIOS", vbios),
            }
        })
        .collect();
    (chosen, notes)
}

/// Add `gpu{i}-rim-driver` / `gpu{i}-rim-vbios` to a bundle for the RIMs there are.
pub fn push_entries(bundle: &mut EvidenceBundle, rims: &[GpuRims]) {
    for (i, r) in rims.iter().enumerate() {
        for (kind, rim) in [("driver", &r.driver), ("vbios", &r.vbios)] {
            if let Some(rim) = rim {
                bundle.push(
                    &format!("gpu{i}-rim-{kind}"),
                    GPU_RIM_MEDIA_TYPE,
                    rim.clone(),
                    IND_ENDORSEMENT,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::nvidia::{RimKind, SimulatedGpus, SIM_DRIVER_VERSION};

    fn gpus() -> SimulatedGpus {
        SimulatedGpus::from_seed("rims unit test", 2)
    }

    #[test]
    fn loads_rims_skipping_what_is_not_one_and_selects_by_version() {
        let g = gpus();
        let dir = tempfile::tempdir().unwrap();
        let rims_dir = dir.path().join(RIMS_SUBDIR);
        std::fs::create_dir(&rims_dir).unwrap();
        let (driver, vbios) = g.rims();
        let other = g.rim(RimKind::Driver, "575.00", &[]);
        std::fs::write(rims_dir.join("b-driver.xml"), &driver).unwrap();
        std::fs::write(rims_dir.join("c-vbios.xml"), &vbios).unwrap();
        std::fs::write(rims_dir.join("a-other.xml"), &other).unwrap();
        std::fs::write(rims_dir.join("broken.xml"), b"<not a rim").unwrap();
        std::fs::write(rims_dir.join(".hidden"), b"ignored").unwrap();
        let (rims, skipped) = load(dir.path());
        let names: Vec<&str> = rims.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a-other.xml", "b-driver.xml", "c-vbios.xml"]);
        assert_eq!(rims[1].version, SIM_DRIVER_VERSION);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("broken.xml"), "{skipped:?}");

        let evidence = |i: usize| GpuEvidence {
            evidence: g.evidence(i, [1; 32]),
            chain_pem: g.chain_pem(i).into_bytes(),
        };
        let (chosen, notes) = select(&[evidence(0), evidence(1)], &rims);
        assert!(notes.is_empty(), "{notes:?}");
        for c in &chosen {
            assert_eq!(c.driver.as_deref(), Some(&driver[..]));
            assert_eq!(c.vbios.as_deref(), Some(&vbios[..]));
        }
        let mut bundle = EvidenceBundle::new(vec![]);
        push_entries(&mut bundle, &chosen);
        let labels: Vec<&str> = bundle.entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "gpu0-rim-driver",
                "gpu0-rim-vbios",
                "gpu1-rim-driver",
                "gpu1-rim-vbios"
            ]
        );
        assert!(bundle
            .entries
            .iter()
            .all(|e| e.media_type == GPU_RIM_MEDIA_TYPE));

        // Only a RIM for another driver version: none served for the driver, logged.
        let (chosen, notes) = select(&[evidence(0)], &rims[..1]);
        assert_eq!(chosen, vec![GpuRims::default()]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("driver RIM for version 570.124.06"),
            "{notes:?}"
        );
        // No directory: nothing, nothing logged.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(load(empty.path()), (vec![], vec![]));
    }
}
