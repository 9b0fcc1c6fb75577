//! Evidence through Linux configfs-tsm (`Documentation/ABI/testing/configfs-tsm-report`).
//!
//! Per request we `mkdir` a fresh entry under the report directory (the kernel populates it
//! with attribute files), optionally write `privlevel` (SNP VMPL), write the 64 bytes of
//! REPORT_DATA to `inblob`, read `outblob` (the kernel generates the report on that read)
//! and `auxblob` (SNP: the certificate table), and `rmdir` the entry, also on error.
//!
//! `generation` counts writes to the entry. We read it before our writes and after our
//! reads; if it moved by more than our own writes, someone else wrote in between and the
//! blobs may answer their request, so we throw the entry away and try a fresh one, a bounded
//! number of times. A fresh entry per request means this only happens when another process
//! writes into our entries. The same check catches a write the kernel dropped: configfs
//! applies binary attributes on `close`, whose errors never reach userspace, and a dropped
//! write does not bump the counter.

use super::cert_table::parse_cert_table;
use super::error::{PlatformError, PlatformErrorKind};
use super::{check_report, EvidenceSource, PlatformEvidence, TeeKind};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Fresh entries tried per request before a persistent generation race is an error.
const MAX_ATTEMPTS: usize = 3;
/// Highest privilege level configfs-tsm accepts (TSM_PRIVLEVEL_MAX).
const PRIVLEVEL_MAX: u32 = 3;

/// Creating and removing a report entry: the two configfs operations whose semantics a
/// plain directory cannot imitate (the kernel's `mkdir` populates the entry's attribute
/// files; its `rmdir` removes a populated entry). Production uses the real syscalls; the
/// tests substitute a fake kernel over a temporary directory, and everything else in this
/// module (the file reads and writes, the generation check, the retries, the cleanup) runs
/// unchanged against that tree.
pub(crate) trait EntryDirs: Send + Sync {
    fn create(&self, path: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
}

struct KernelDirs;

impl EntryDirs for KernelDirs {
    fn create(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }
}

pub(crate) fn kernel_dirs() -> Arc<dyn EntryDirs> {
    Arc::new(KernelDirs)
}

/// configfs-tsm as an [`EvidenceSource`].
pub struct ConfigfsTsm {
    root: PathBuf,
    provider: String,
    kind: TeeKind,
    privlevel: Option<u32>,
    dirs: Arc<dyn EntryDirs>,
}

impl ConfigfsTsm {
    /// Use configfs-tsm at `root` (normally `/sys/kernel/config/tsm/report`). Creates and
    /// removes one probe entry to learn the provider.
    pub fn open(root: &Path) -> Result<Self, PlatformError> {
        Self::open_with(root, kernel_dirs())
    }

    pub(crate) fn open_with(root: &Path, dirs: Arc<dyn EntryDirs>) -> Result<Self, PlatformError> {
        if !root.is_dir() {
            return Err(PlatformError::new(
                PlatformErrorKind::NoTee,
                format!(
                    "{} does not exist (configfs-tsm needs Linux 6.7+ with configfs mounted)",
                    root.display()
                ),
            ));
        }
        let entry = Entry::create(root, dirs.clone())?;
        let provider = read_text(&entry.path.join("provider"));
        entry.remove()?;
        let provider = provider?;
        let kind = match provider.as_str() {
            "sev_guest" => TeeKind::SevSnp,
            "tdx_guest" => TeeKind::Tdx,
            other => {
                return Err(PlatformError::new(
                    PlatformErrorKind::UnsupportedProvider,
                    format!(
                        "{}: provider {other:?} (supported: sev_guest, tdx_guest)",
                        root.join("*/provider").display()
                    ),
                ))
            }
        };
        Ok(ConfigfsTsm {
            root: root.to_owned(),
            provider,
            kind,
            privlevel: None,
            dirs,
        })
    }

    /// Ask for reports at this privilege level (SEV-SNP VMPL, 0-3). Without it the kernel
    /// uses its default (the provider's `privlevel_floor`).
    pub fn with_privlevel(mut self, level: u32) -> Result<Self, PlatformError> {
        if self.kind != TeeKind::SevSnp {
            return Err(PlatformError::new(
                PlatformErrorKind::InvalidArgument,
                format!(
                    "privlevel is an SEV-SNP (VMPL) setting; provider {} has none",
                    self.provider
                ),
            ));
        }
        if level > PRIVLEVEL_MAX {
            return Err(PlatformError::new(
                PlatformErrorKind::InvalidArgument,
                format!("privlevel {level} (configfs-tsm accepts 0-{PRIVLEVEL_MAX})"),
            ));
        }
        self.privlevel = Some(level);
        Ok(self)
    }

    /// The provider name the kernel reported (`sev_guest`, `tdx_guest`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    fn attempt(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
        let entry = Entry::create(&self.root, self.dirs.clone())?;
        let result = self.generate(&entry.path, report_data);
        match (result, entry.remove()) {
            (Ok(evidence), Ok(())) => Ok(evidence),
            (Ok(_), Err(e)) | (Err(e), Ok(())) => Err(e),
            (Err(e), Err(cleanup)) => Err(PlatformError::new(
                e.kind(),
                format!("{}; then {cleanup}", e.detail()),
            )),
        }
    }

    fn generate(
        &self,
        dir: &Path,
        report_data: &[u8; 64],
    ) -> Result<PlatformEvidence, PlatformError> {
        let provider = read_text(&dir.join("provider"))?;
        if provider != self.provider {
            return Err(PlatformError::new(
                PlatformErrorKind::UnsupportedProvider,
                format!(
                    "{}: {provider:?}, but it was {:?} at start-up",
                    dir.join("provider").display(),
                    self.provider
                ),
            ));
        }
        let generation_path = dir.join("generation");
        let before = read_generation(&generation_path)?;
        let mut writes = 0u64;
        if let Some(level) = self.privlevel {
            write_attribute(&dir.join("privlevel"), format!("{level}\n").as_bytes())?;
            writes += 1;
        }
        write_attribute(&dir.join("inblob"), report_data)?;
        writes += 1;

        let outblob_path = dir.join("outblob");
        let outblob =
            fs::read(&outblob_path).map_err(|e| PlatformError::io("read", &outblob_path, &e))?;
        let auxblob_path = dir.join("auxblob");
        let auxblob = match fs::read(&auxblob_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(PlatformError::io("read", &auxblob_path, &e)),
        };
        let after = read_generation(&generation_path)?;
        if Some(after) != before.checked_add(writes) {
            return Err(PlatformError::new(
                PlatformErrorKind::GenerationRace,
                format!(
                    "{}: {before} before our {writes} write(s), {after} after reading outblob",
                    generation_path.display()
                ),
            ));
        }

        check_report(
            self.kind,
            &outblob,
            report_data,
            &outblob_path.display().to_string(),
        )?;
        let certificates = match self.kind {
            TeeKind::SevSnp => parse_cert_table(&auxblob, &auxblob_path.display().to_string())?,
            // tdx_guest defines no auxblob; the quote carries its PCK chain itself.
            TeeKind::Tdx => Vec::new(),
        };
        Ok(PlatformEvidence {
            kind: self.kind,
            report: outblob,
            certificates,
        })
    }
}

impl EvidenceSource for ConfigfsTsm {
    fn kind(&self) -> TeeKind {
        self.kind
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "configfs-tsm at {} (provider {})",
            self.root.display(),
            self.provider
        );
        if let Some(level) = self.privlevel {
            s.push_str(&format!(", privlevel {level}"));
        }
        s
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<PlatformEvidence, PlatformError> {
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(report_data) {
                Err(e) if e.kind() == PlatformErrorKind::GenerationRace => last = Some(e),
                other => return other,
            }
        }
        let last = last.map(|e| e.detail().to_owned()).unwrap_or_default();
        Err(PlatformError::new(
            PlatformErrorKind::GenerationRace,
            format!(
                "another writer changed a fresh configfs-tsm entry on each of {MAX_ATTEMPTS} \
                 tries (last: {last}); is another process writing under {}?",
                self.root.display()
            ),
        ))
    }
}

/// One report entry directory, removed when dropped if not removed explicitly.
struct Entry {
    path: PathBuf,
    dirs: Arc<dyn EntryDirs>,
    removed: bool,
}

static NEXT_ENTRY: AtomicU64 = AtomicU64::new(0);

impl Entry {
    fn create(root: &Path, dirs: Arc<dyn EntryDirs>) -> Result<Entry, PlatformError> {
        let pid = std::process::id();
        let mut tries = 0;
        loop {
            let n = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
            let path = root.join(format!("veritee-{pid}-{n}"));
            match dirs.create(&path) {
                Ok(()) => {
                    return Ok(Entry {
                        path,
                        dirs,
                        removed: false,
                    })
                }
                // A leftover from an earlier process with our pid: pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                    return Err(PlatformError::new(
                        PlatformErrorKind::NoTee,
                        format!(
                            "mkdir {}: no TSM provider registered (ENXIO); is the sev-guest or \
                             tdx-guest driver loaded?",
                            path.display()
                        ),
                    ))
                }
                Err(e) => return Err(PlatformError::io("mkdir", &path, &e)),
            }
        }
    }

    fn remove(mut self) -> Result<(), PlatformError> {
        self.removed = true;
        self.dirs
            .remove(&self.path)
            .map_err(|e| PlatformError::io("rmdir", &self.path, &e))
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.dirs.remove(&self.path);
        }
    }
}

/// Write one attribute in a single open-write-close. No create, no truncate: the kernel
/// made the file, and configfs applies binary attributes when the file is closed.
fn write_attribute(path: &Path, bytes: &[u8]) -> Result<(), PlatformError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| PlatformError::io("open for writing", path, &e))?;
    file.write_all(bytes)
        .map_err(|e| PlatformError::io("write", path, &e))
}

fn read_text(path: &Path) -> Result<String, PlatformError> {
    let text = fs::read_to_string(path).map_err(|e| PlatformError::io("read", path, &e))?;
    Ok(text.trim().to_owned())
}

fn read_generation(path: &Path) -> Result<u64, PlatformError> {
    let text = read_text(path)?;
    text.parse().map_err(|_| {
        PlatformError::new(
            PlatformErrorKind::Io,
            format!("{}: {text:?} is not a number", path.display()),
        )
    })
}
