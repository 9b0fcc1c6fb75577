//! A fake configfs-tsm "kernel" over a temporary directory, and the tests of the configfs
//! path against it.
//!
//! Real configfs does three things a plain directory does not: `mkdir` of an entry makes
//! its attribute files, reading `outblob` generates the report from what was written to
//! `inblob`, and `rmdir` removes a populated entry. The fake does them like this:
//!
//! - `mkdir`/`rmdir` are the [`EntryDirs`] hooks the production code calls (the only
//!   substitution): create the entry and write `provider`, `generation` ("0"), an empty
//!   `inblob` (and `privlevel` for SNP), `auxblob`, and make `outblob` a named pipe; remove
//!   the whole entry.
//! - One thread per entry answers the `outblob` pipe: opening it for writing succeeds only
//!   once the runtime opens it for reading, which it does after writing `inblob`. The thread
//!   then reads `inblob` and `privlevel`, sets `generation` to the writes it saw (plus one
//!   when told to play another writer), and writes the report. The thread polls for the
//!   reader (bounded, 10 s) because a nonblocking open of a pipe with no reader fails with
//!   ENXIO; it ends early once the entry is removed.
//!
//! So the runtime's own file I/O, generation check, retries, checks and cleanup all run
//! for real against this tree.

use super::configfs::EntryDirs;
use super::*;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type MakeOutblob = dyn Fn(&[u8; 64], Option<u32>) -> Vec<u8> + Send + Sync;

pub(crate) struct FakeKernel {
    provider: String,
    auxblob: Option<Vec<u8>>,
    outblob: Box<MakeOutblob>,
    /// Entries still to be raced (another writer bumps generation once).
    races: AtomicUsize,
    /// errno for mkdir (e.g. ENXIO: no provider registered).
    mkdir_errno: Option<i32>,
    pub created: Mutex<Vec<PathBuf>>,
    pub removed: Mutex<Vec<PathBuf>>,
    /// Requests answered: (inblob, privlevel).
    pub answered: Mutex<Vec<(Vec<u8>, Option<u32>)>>,
}

impl FakeKernel {
    pub fn new(
        provider: &str,
        outblob: impl Fn(&[u8; 64], Option<u32>) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        FakeKernel {
            provider: provider.to_owned(),
            auxblob: None,
            outblob: Box::new(outblob),
            races: AtomicUsize::new(0),
            mkdir_errno: None,
            created: Mutex::new(Vec::new()),
            removed: Mutex::new(Vec::new()),
            answered: Mutex::new(Vec::new()),
        }
    }

    pub fn auxblob(mut self, bytes: Vec<u8>) -> Self {
        self.auxblob = Some(bytes);
        self
    }

    pub fn races(self, n: usize) -> Self {
        self.races.store(n, Ordering::SeqCst);
        self
    }

    pub fn mkdir_errno(mut self, errno: i32) -> Self {
        self.mkdir_errno = Some(errno);
        self
    }

    pub fn into_arc(self) -> Arc<Self> {
        Arc::new(self)
    }
}

/// `FakeKernel` behind an `Arc`, so the per-entry thread can share it.
pub(crate) struct FakeDirs(pub Arc<FakeKernel>);

impl EntryDirs for FakeDirs {
    fn create(&self, path: &Path) -> io::Result<()> {
        let k = &self.0;
        if let Some(errno) = k.mkdir_errno {
            return Err(io::Error::from_raw_os_error(errno));
        }
        fs::create_dir(path)?;
        fs::write(path.join("provider"), format!("{}\n", k.provider))?;
        fs::write(path.join("generation"), "0\n")?;
        fs::write(path.join("inblob"), b"")?;
        if k.provider == "sev_guest" {
            fs::write(path.join("privlevel"), b"")?;
            fs::write(path.join("privlevel_floor"), "0\n")?;
        }
        if let Some(aux) = &k.auxblob {
            fs::write(path.join("auxblob"), aux)?;
        }
        let fifo = CString::new(path.join("outblob").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) } != 0 {
            return Err(io::Error::last_os_error());
        }
        k.created.lock().unwrap().push(path.to_owned());
        let kernel = Arc::clone(k);
        let dir = path.to_owned();
        std::thread::spawn(move || serve(&kernel, &dir));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)?;
        self.0.removed.lock().unwrap().push(path.to_owned());
        Ok(())
    }
}

fn serve(k: &FakeKernel, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let outblob = dir.join("outblob");
    let mut pipe = loop {
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&outblob)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(_) => return, // entry removed, or gave up
        }
    };
    let inblob = fs::read(dir.join("inblob")).unwrap_or_default();
    let privlevel = fs::read_to_string(dir.join("privlevel"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let mut generation = u64::from(!inblob.is_empty()) + u64::from(privlevel.is_some());
    let raced = k
        .races
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if raced {
        generation += 1;
    }
    let _ = fs::write(dir.join("generation"), format!("{generation}\n"));
    let mut report_data = [0u8; 64];
    let n = inblob.len().min(64);
    report_data[..n].copy_from_slice(&inblob[..n]);
    let report = (k.outblob)(&report_data, privlevel);
    k.answered.lock().unwrap().push((inblob, privlevel));
    // Back to blocking writes for reports larger than the pipe buffer.
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a file descriptor we own.
    unsafe {
        let fd = pipe.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    let _ = pipe.write_all(&report);
}

#[cfg(test)]
mod tests {
    use super::super::cert_table::{build_cert_table, ARK_GUID, ASK_GUID, VCEK_GUID};
    use super::super::test_evidence::{snp_report, tdx_quote};
    use super::*;
    use sim::{FakeProduct, SnpReportBuilder, TdxQuoteFormat};

    const RD: [u8; 64] = [0x42; 64];

    struct Tree {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        device: PathBuf,
    }

    fn tree() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tsm/report");
        fs::create_dir_all(&root).unwrap();
        let device = tmp.path().join("sev-guest");
        Tree {
            _tmp: tmp,
            root,
            device,
        }
    }

    fn snp_kernel() -> FakeKernel {
        FakeKernel::new("sev_guest", |rd, vmpl| {
            SnpReportBuilder::new(FakeProduct::Genoa)
                .report_data(*rd)
                .vmpl(vmpl.unwrap_or(0))
                .build_unsigned()
        })
    }

    fn open(t: &Tree, k: &Arc<FakeKernel>) -> Result<Box<dyn EvidenceSource>, PlatformError> {
        detect_with(&t.root, &t.device, Arc::new(FakeDirs(k.clone())))
    }

    fn assert_clean(t: &Tree, k: &FakeKernel) {
        let left: Vec<_> = fs::read_dir(&t.root).unwrap().collect();
        assert!(left.is_empty(), "entries left behind: {left:?}");
        let created = k.created.lock().unwrap().clone();
        let mut removed = k.removed.lock().unwrap().clone();
        removed.sort();
        let mut sorted = created.clone();
        sorted.sort();
        assert_eq!(removed, sorted, "every entry created was removed");
        let unique: std::collections::HashSet<_> = created.iter().collect();
        assert_eq!(unique.len(), created.len(), "entry names are unique");
    }

    #[test]
    fn snp_happy_path() {
        let t = tree();
        let table = build_cert_table(&[
            (VCEK_GUID, b"vcek-der"),
            (ASK_GUID, b"ask-der"),
            (ARK_GUID, b"ark-der"),
        ]);
        let k = snp_kernel().auxblob(table).into_arc();
        let source = open(&t, &k).unwrap();
        assert_eq!(source.kind(), TeeKind::SevSnp);
        assert_eq!(
            source.describe(),
            format!("configfs-tsm at {} (provider sev_guest)", t.root.display())
        );
        let evidence = source.evidence(&RD).unwrap();
        assert_eq!(evidence.kind, TeeKind::SevSnp);
        assert_eq!(evidence.report.len(), 1184);
        assert_eq!(&evidence.report[0x50..0x90], &RD, "report_data round-trips");
        let certs: Vec<(&str, &[u8])> = evidence
            .certificates
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert_eq!(
            certs,
            [
                ("vcek.der", &b"vcek-der"[..]),
                ("ask.der", b"ask-der"),
                ("ark.der", b"ark-der")
            ]
        );
        assert_eq!(k.answered.lock().unwrap().as_slice(), [(RD.to_vec(), None)]);
        assert_clean(&t, &k);
    }

    #[test]
    fn snp_privlevel_is_written() {
        let t = tree();
        let k = snp_kernel().into_arc();
        let source = ConfigfsTsm::open_with(&t.root, Arc::new(FakeDirs(k.clone())))
            .unwrap()
            .with_privlevel(2)
            .unwrap();
        assert!(source.describe().ends_with(", privlevel 2"));
        let evidence = source.evidence(&RD).unwrap();
        assert_eq!(evidence.report[0x30], 2, "VMPL field");
        assert!(
            evidence.certificates.is_empty(),
            "no auxblob: no certificates"
        );
        assert_eq!(k.answered.lock().unwrap()[0].1, Some(2));
        let e = source.with_privlevel(4).err().unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::InvalidArgument);
        assert_clean(&t, &k);
    }

    #[test]
    fn tdx_happy_path() {
        let t = tree();
        let k =
            FakeKernel::new("tdx_guest", |rd, _| tdx_quote(*rd, TdxQuoteFormat::V4Td10)).into_arc();
        let source = open(&t, &k).unwrap();
        assert_eq!(source.kind(), TeeKind::Tdx);
        assert!(source.describe().contains("provider tdx_guest"));
        let evidence = source.evidence(&RD).unwrap();
        assert_eq!(evidence.kind, TeeKind::Tdx);
        assert_eq!(evidence.report, tdx_quote(RD, TdxQuoteFormat::V4Td10));
        assert!(evidence.certificates.is_empty());
        let e = ConfigfsTsm::open_with(&t.root, Arc::new(FakeDirs(k.clone())))
            .unwrap()
            .with_privlevel(0)
            .err()
            .unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::InvalidArgument);
        assert_clean(&t, &k);
    }

    #[test]
    fn a_raced_entry_is_retried_with_a_fresh_one() {
        let t = tree();
        let k = snp_kernel().races(2).into_arc();
        let evidence = open(&t, &k).unwrap().evidence(&RD).unwrap();
        assert_eq!(&evidence.report[0x50..0x90], &RD);
        // Probe entry + two raced entries + the one that worked.
        assert_eq!(k.created.lock().unwrap().len(), 4);
        assert_clean(&t, &k);
    }

    #[test]
    fn a_persistent_race_is_a_typed_error() {
        let t = tree();
        let k = snp_kernel().races(usize::MAX).into_arc();
        let e = open(&t, &k).unwrap().evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::GenerationRace);
        assert!(e.detail().contains("3 tries"), "{e}");
        assert!(e.detail().contains("generation"), "{e}");
        assert_clean(&t, &k);
    }

    #[test]
    fn a_wrong_size_outblob_is_a_typed_error_naming_the_file() {
        let t = tree();
        let k = FakeKernel::new("sev_guest", |rd, _| snp_report(*rd)[..1000].to_vec()).into_arc();
        let e = open(&t, &k).unwrap().evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::UnexpectedEvidence);
        assert!(e.detail().contains("/outblob: 1000 bytes"), "{e}");
        assert_clean(&t, &k);
    }

    #[test]
    fn a_stale_report_is_a_report_data_mismatch() {
        let t = tree();
        let k = FakeKernel::new("sev_guest", |_, _| snp_report([7; 64])).into_arc();
        let e = open(&t, &k).unwrap().evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::ReportDataMismatch);
        assert_clean(&t, &k);
    }

    #[test]
    fn a_malformed_auxblob_is_a_typed_error() {
        let t = tree();
        let k = snp_kernel().auxblob(vec![1; 30]).into_arc();
        let e = open(&t, &k).unwrap().evidence(&RD).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableTruncated);
        assert!(e.detail().contains("/auxblob"), "{e}");
        assert_clean(&t, &k);
    }

    #[test]
    fn an_unknown_provider_is_refused() {
        let t = tree();
        let k = FakeKernel::new("arm_cca_guest", |_, _| Vec::new()).into_arc();
        let e = open(&t, &k).err().unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::UnsupportedProvider);
        assert!(e.detail().contains("arm_cca_guest"), "{e}");
        assert_clean(&t, &k);
    }

    #[test]
    fn without_configfs_the_sev_guest_device_is_used() {
        let t = tree();
        fs::write(&t.device, b"").unwrap(); // stands in for the device node; never ioctl'd
        let missing = t.root.join("absent");
        let source = detect(&missing, &t.device).unwrap();
        assert_eq!(source.kind(), TeeKind::SevSnp);
        assert!(
            source.describe().starts_with("SNP guest device "),
            "{}",
            source.describe()
        );

        // configfs-tsm present, but no provider registered (mkdir fails with ENXIO).
        let k = snp_kernel().mkdir_errno(libc::ENXIO).into_arc();
        let source = open(&t, &k).unwrap();
        assert!(source.describe().starts_with("SNP guest device "));
        fs::remove_file(&t.device).unwrap();
        let e = open(&t, &k).err().unwrap();
        assert_eq!(e.kind(), PlatformErrorKind::NoTee);
        assert!(e.detail().contains("no TSM provider"), "{e}");
        assert!(e.detail().contains("--simulate"), "{e}");
    }
}
