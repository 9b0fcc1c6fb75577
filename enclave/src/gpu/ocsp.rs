//! OCSP responses for the GPUs' device chains that the host hands the guest, served with
//! the GPU evidence so that clients requiring GPU revocation checks (`[gpu] revocation =
//! "require"`) need no network.
//!
//! NVIDIA states the revocation of device-chain certificates only through its OCSP
//! service (`ocsp.ndis.nvidia.com`). The host asks it about each GPU's device certificate
//! and the "GH100 Identity" above it (the chain `veritee-host` reads from the guest, or the
//! one NVIDIA's tools print) and puts the DER responses in the `nvidia-ocsp/`
//! subdirectory of the collateral directory, under any file names. Responses expire
//! (nextUpdate), so the host replaces them before they do; the runtime re-reads the
//! directory every [`RELOAD_EVERY`] and stops serving a response at its nextUpdate.
//!
//! Clients verify every response a bundle carries and refuse the bundle when one fails,
//! so the runtime serves for GPU `i`, as `gpu{i}-ocsp-0`, `gpu{i}-ocsp-1`, ..., only the
//! responses that verify against that GPU's evidence and chain at the current time with
//! the same code the clients run ([`attestation::nvidia::verify_with_ocsp`]): a stale
//! response, one about another GPU's certificate, one with a bad signature or one saying
//! `revoked` is logged and not served (a revoked GPU is then refused by clients requiring
//! revocation checks, with `ocsp_missing`, and by the NVIDIA status its host cannot hide
//! from clients that ask NVIDIA themselves). A bad or missing response never stops the
//! runtime.

use super::GpuEvidence;
use attestation::bundle::{EvidenceBundle, GPU_OCSP_MEDIA_TYPE, IND_ENDORSEMENT};
use attestation::nvidia::{ExpectedNonce, NvidiaTrustAnchors};
use attestation::time::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The subdirectory of the collateral directory that holds the OCSP responses.
pub const OCSP_SUBDIR: &str = crate::platform::NVIDIA_OCSP_SUBDIR;
/// Largest response file read (NVIDIA's are about 2 KiB with the responder certificate).
pub const MAX_OCSP_FILE: u64 = 64 << 10;
/// Most response files read (hidden names aside, whether they parse or not).
pub const MAX_OCSP_FILES: usize = 64;
/// How often the directory is read again (the host refreshes the files in place).
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// A response file the host handed in: it parses as an OCSP response; nothing about it is
/// verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOcsp {
    /// The file name in `nvidia-ocsp/`.
    pub name: String,
    pub bytes: Vec<u8>,
    /// Its earliest nextUpdate (None: a SingleResponse without one, which never verifies).
    pub expires: Option<Timestamp>,
}

/// A response served for one GPU, until `expires` (its earliest nextUpdate, exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedOcsp {
    pub name: String,
    pub bytes: Vec<u8>,
    pub expires: Timestamp,
}

/// Read `collateral_dir/nvidia-ocsp/` (absent: no response). Returns the files that parse
/// as OCSP responses, sorted by name, and a line for each file skipped (for the log).
pub fn load(collateral_dir: &Path) -> (Vec<HostOcsp>, Vec<String>) {
    let dir = collateral_dir.join(OCSP_SUBDIR);
    let (files, mut skipped) =
        super::read_collateral_files(&dir, "OCSP response", MAX_OCSP_FILES, MAX_OCSP_FILE);
    let mut found = Vec::new();
    for (name, bytes) in files {
        match attestation::nvidia::ocsp::parse(&bytes, "OCSP response") {
            Ok(parsed) => {
                let expires = parsed.responses.iter().filter_map(|s| s.next_update).min();
                found.push(HostOcsp {
                    name,
                    bytes,
                    expires,
                })
            }
            Err(e) => skipped.push(format!(
                "{}: skipped, not an OCSP response: {e}",
                dir.join(&name).display()
            )),
        }
    }
    (found, skipped)
}

/// The responses to serve for each GPU at `now`: those that verify against its evidence
/// (which answers `nonce`) and chain with `anchors`, one at a time, as clients will check
/// them; and a log line for each response that serves no GPU, with why.
pub fn select(
    gpus: &[GpuEvidence],
    nonce: [u8; 32],
    anchors: &NvidiaTrustAnchors,
    responses: &[HostOcsp],
    now: Timestamp,
) -> (Vec<Vec<ServedOcsp>>, Vec<String>) {
    let mut served: Vec<Vec<ServedOcsp>> = vec![Vec::new(); gpus.len()];
    let mut notes = Vec::new();
    let chains: Vec<Option<Vec<Vec<u8>>>> = gpus
        .iter()
        .map(|g| attestation::nvidia::chain_from_pem(&g.chain_pem).ok())
        .collect();
    for r in responses {
        let mut why = Vec::new();
        for (i, (g, chain)) in gpus.iter().zip(&chains).enumerate() {
            let Some(chain) = chain else {
                why.push(format!("GPU {i}: its chain is not PEM"));
                continue;
            };
            let verified = attestation::nvidia::verify_with_ocsp(
                &g.evidence,
                chain,
                std::slice::from_ref(&r.bytes),
                ExpectedNonce::Exactly(nonce),
                anchors,
                now,
            );
            match (verified, r.expires) {
                (Ok(_), Some(expires)) => served[i].push(ServedOcsp {
                    name: r.name.clone(),
                    bytes: r.bytes.clone(),
                    expires,
                }),
                (Ok(_), None) => why.push(format!("GPU {i}: no nextUpdate")),
                (Err(e), _) => why.push(format!("GPU {i}: {e}")),
            }
        }
        if why.len() == gpus.len() {
            notes.push(format!(
                "{}: serves no GPU, not served ({})",
                r.name,
                why.join("; ")
            ));
        }
    }
    (served, notes)
}

/// Add `gpu{i}-ocsp-{k}` to a bundle for the responses current at `now`.
pub fn push_entries(bundle: &mut EvidenceBundle, served: &[Vec<ServedOcsp>], now: Timestamp) {
    for (i, responses) in served.iter().enumerate() {
        for (k, r) in responses.iter().filter(|r| now < r.expires).enumerate() {
            bundle.push(
                &format!("gpu{i}-ocsp-{k}"),
                GPU_OCSP_MEDIA_TYPE,
                r.bytes.clone(),
                IND_ENDORSEMENT,
            );
        }
    }
}

/// The runtime's OCSP responses: the directory, read again every [`RELOAD_EVERY`].
pub struct OcspServer {
    collateral_dir: PathBuf,
    gpus: Vec<GpuEvidence>,
    nonce: [u8; 32],
    anchors: NvidiaTrustAnchors,
    state: Mutex<OcspState>,
}

struct OcspState {
    loaded: Instant,
    served: Vec<Vec<ServedOcsp>>,
    /// The last load's log lines (logged again only when they change).
    notes: Vec<String>,
}

impl OcspServer {
    /// Reads the directory once now; returns the server and the log lines of this read.
    pub fn open(
        collateral_dir: &Path,
        gpus: &[GpuEvidence],
        nonce: [u8; 32],
        anchors: NvidiaTrustAnchors,
        now: Timestamp,
    ) -> (Self, Vec<String>) {
        let mut server = OcspServer {
            collateral_dir: collateral_dir.to_owned(),
            gpus: gpus.to_vec(),
            nonce,
            anchors,
            state: Mutex::new(OcspState {
                loaded: Instant::now(),
                served: Vec::new(),
                notes: Vec::new(),
            }),
        };
        let (served, notes) = server.read(now);
        let state = server.state.get_mut().unwrap_or_else(|e| e.into_inner());
        state.served = served;
        state.notes = notes.clone();
        (server, notes)
    }

    fn read(&self, now: Timestamp) -> (Vec<Vec<ServedOcsp>>, Vec<String>) {
        let (found, mut notes) = load(&self.collateral_dir);
        let (served, more) = select(&self.gpus, self.nonce, &self.anchors, &found, now);
        notes.extend(more);
        let count: usize = served.iter().map(Vec::len).sum();
        notes.push(format!(
            "{count} served for {} GPU(s) ({} file(s) handed in)",
            self.gpus.len(),
            found.len()
        ));
        (served, notes)
    }

    /// Add the responses current at `now` to a bundle ([`push_entries`]), reading the
    /// directory again first when the last read is older than [`RELOAD_EVERY`] (its log
    /// lines go to stderr when they differ from the previous read's).
    pub fn push_entries(&self, bundle: &mut EvidenceBundle, now: Timestamp) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.loaded.elapsed() >= RELOAD_EVERY {
            let (served, notes) = self.read(now);
            if notes != state.notes {
                for line in &notes {
                    eprintln!("veritee-enclave: NVIDIA OCSP: {line}");
                }
            }
            *state = OcspState {
                loaded: Instant::now(),
                served,
                notes,
            };
        }
        push_entries(bundle, &state.served, now);
    }
}

/// The current time as the verifier's [`Timestamp`] (the runtime's clock: used only to
/// choose what to serve; clients check at their own time).
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp::from_unix(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::nvidia::SimulatedGpus;

    const NOW: i64 = 1_780_000_000;
    const DAY: i64 = 86_400;
    const NONCE: [u8; 32] = [7; 32];

    fn evidence(g: &SimulatedGpus, i: usize) -> GpuEvidence {
        GpuEvidence {
            evidence: g.evidence(i, NONCE),
            chain_pem: g.chain_pem(i).into_bytes(),
        }
    }

    fn anchors(g: &SimulatedGpus) -> NvidiaTrustAnchors {
        NvidiaTrustAnchors::empty().dangerous_trust_device_root(g.root_der().to_vec())
    }

    #[test]
    fn serves_per_gpu_only_what_verifies_now_and_drops_it_at_next_update() {
        let g = SimulatedGpus::from_seed("ocsp serving test", 2);
        let gpus = [evidence(&g, 0), evidence(&g, 1)];
        let dir = tempfile::tempdir().unwrap();
        let ocsp = dir.path().join(OCSP_SUBDIR);
        std::fs::create_dir(&ocsp).unwrap();
        let files: [(&str, Vec<u8>); 7] = [
            ("a-gpu0-device.der", g.ocsp_good(0, 1, NOW - DAY, NOW + DAY)),
            (
                "b-identity.der",
                g.ocsp_good(0, 2, NOW - DAY, NOW + 2 * DAY),
            ),
            ("c-gpu1-device.der", g.ocsp_good(1, 1, NOW - DAY, NOW + DAY)),
            ("d-stale.der", g.ocsp_good(0, 1, NOW - 3 * DAY, NOW - DAY)),
            ("e-future.der", g.ocsp_good(1, 1, NOW + DAY, NOW + 2 * DAY)),
            ("f-notes.txt", b"not an OCSP response".to_vec()),
            (".hidden", b"ignored".to_vec()),
        ];
        for (name, bytes) in &files {
            std::fs::write(ocsp.join(name), bytes).unwrap();
        }
        let (found, skipped) = load(dir.path());
        let names: Vec<&str> = found.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a-gpu0-device.der",
                "b-identity.der",
                "c-gpu1-device.der",
                "d-stale.der",
                "e-future.der"
            ]
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("f-notes.txt: skipped, not an OCSP response"));

        let at = Timestamp::from_unix(NOW);
        let (served, notes) = select(&gpus, NONCE, &anchors(&g), &found, at);
        let served_names =
            |i: usize| -> Vec<&str> { served[i].iter().map(|r| r.name.as_str()).collect() };
        assert_eq!(served_names(0), ["a-gpu0-device.der", "b-identity.der"]);
        // The "GH100 Identity" above the device certificates is the same for both GPUs:
        // its response serves both.
        assert_eq!(served_names(1), ["b-identity.der", "c-gpu1-device.der"]);
        assert_eq!(served[0][0].expires, Timestamp::from_unix(NOW + DAY));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("d-stale.der: serves no GPU"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with("e-future.der: serves no GPU"),
            "{notes:?}"
        );

        // What a client then sees: each GPU's chain fully covered (revocation checked);
        // GPU 0's device certificate alone verifies but does not cover the chain.
        let bytes = |i: usize| {
            served[i]
                .iter()
                .map(|r| r.bytes.clone())
                .collect::<Vec<_>>()
        };
        for (i, served, complete) in [
            (0, bytes(0), true),
            (1, bytes(1), true),
            (0, bytes(0)[..1].to_vec(), false),
        ] {
            let chain = attestation::nvidia::chain_from_pem(&gpus[i].chain_pem).unwrap();
            let v = attestation::nvidia::verify_with_ocsp(
                &gpus[i].evidence,
                &chain,
                &served,
                ExpectedNonce::Exactly(NONCE),
                &anchors(&g),
                at,
            )
            .unwrap();
            assert_eq!(v.revocation_checked(), complete, "GPU {i}");
        }

        // Evidence answering another nonce is not what the responses are checked against.
        let (served_other, _) = select(&gpus, [8; 32], &anchors(&g), &found, at);
        assert!(served_other.iter().all(Vec::is_empty));
        // Without the device root trusted, nothing verifies, so nothing is served.
        let (served_untrusted, notes) =
            select(&gpus, NONCE, &NvidiaTrustAnchors::empty(), &found, at);
        assert!(served_untrusted.iter().all(Vec::is_empty));
        assert_eq!(notes.len(), 5, "{notes:?}");

        // Served entries stop at nextUpdate (exclusive), without waiting for a reload.
        let (server, open_notes) = OcspServer::open(dir.path(), &gpus, NONCE, anchors(&g), at);
        assert!(
            open_notes
                .last()
                .unwrap()
                .contains("4 served for 2 GPU(s) (5 file(s) handed in)"),
            "{open_notes:?}"
        );
        // The bundle's labels at time `t`, per GPU.
        let count = |t: i64| -> Vec<usize> {
            let mut bundle = EvidenceBundle::new(vec![0xa0]);
            server.push_entries(&mut bundle, Timestamp::from_unix(t));
            (0..2)
                .map(|i| {
                    let prefix = format!("gpu{i}-ocsp-");
                    bundle
                        .entries
                        .iter()
                        .filter(|e| e.label.starts_with(&prefix))
                        .count()
                })
                .collect()
        };
        assert_eq!(count(NOW), [2, 2]);
        assert_eq!(count(NOW + DAY - 1), [2, 2]);
        assert_eq!(count(NOW + DAY), [1, 1]);
        assert_eq!(count(NOW + 2 * DAY), [0, 0]);
        let mut bundle = EvidenceBundle::new(vec![0xa0]);
        server.push_entries(&mut bundle, at);
        let labels: Vec<&str> = bundle.entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            ["gpu0-ocsp-0", "gpu0-ocsp-1", "gpu1-ocsp-0", "gpu1-ocsp-1"]
        );
    }

    #[test]
    fn no_directory_serves_nothing_and_logs_nothing_but_the_count() {
        let g = SimulatedGpus::from_seed("ocsp serving test", 1);
        let dir = tempfile::tempdir().unwrap();
        let (found, skipped) = load(dir.path());
        assert!(found.is_empty() && skipped.is_empty());
        let (server, notes) = OcspServer::open(
            dir.path(),
            &[evidence(&g, 0)],
            NONCE,
            anchors(&g),
            Timestamp::from_unix(NOW),
        );
        assert_eq!(notes, ["0 served for 1 GPU(s) (0 file(s) handed in)"]);
        let mut bundle = EvidenceBundle::new(vec![0xa0]);
        server.push_entries(&mut bundle, Timestamp::from_unix(NOW));
        assert!(bundle.entries.is_empty());
    }
}
