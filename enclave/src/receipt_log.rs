//! The durable receipt log: every signed usage receipt, append-only, on disk before the
//! client hears of it.
//!
//! **Layout.** Under a root directory (e.g. `STATE_DIR/receipts`), one directory per
//! runtime instance, named by the 16-byte instance id in lowercase hex:
//! `<root>/<instance-hex>/evidence.cbor` (the instance's evidence bundle, written once,
//! atomically: temp file, fsync, rename, fsync of the directory) and segment files
//! `seg-<seq of its first record, 20 digits>.log`. Segments hold consecutive sequence
//! numbers: the first segment starts at seq 0 and each next one at the seq after the
//! previous segment's last record. A segment is closed (fsync'd) before the next one is
//! created; the new file and the directory are fsync'd before any record goes into it.
//!
//! **Record.** A 13-byte header, then the payload:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | magic and format version, [`RECORD_MAGIC`] |
//! | 4 | payload length, u32 LE (at most [`MAX_PAYLOAD_BYTES`]) |
//! | 4 | CRC-32 (IEEE) of the payload, u32 LE |
//! | 4 | CRC-32 of the 9 bytes above, u32 LE |
//! | 8 | payload: seq, u64 LE |
//! | 4 | payload: receipt length, u32 LE (1 to [`MAX_RECEIPT_BYTES`]) |
//! | n | payload: the receipt (COSE_Sign1 bytes, as signed) |
//! | 1 | payload: 1 if a transcript follows, 0 if not |
//! | rest | payload: the transcript (opaque, at most [`MAX_TRANSCRIPT_BYTES`]) |
//!
//! The header has its own checksum so that a damaged length is never taken for a record
//! that merely runs past the end of the file (which would look like a torn tail). Lengths
//! are checked against the limits and the file size before anything is allocated.
//!
//! **Durability rule.** [`ReceiptLog::append`] only queues a record; one writer thread
//! writes everything queued, `fdatasync`s once per batch (group commit: a batch is whatever
//! arrived while the previous sync ran, at most [`LogOptions::max_batch`] records), and
//! only then completes the batch's [`Durable`]s. A receipt may be shown to the client only
//! after its `Durable` resolved `Ok`. Any I/O error poisons the log: the failed batch,
//! everything queued behind it and every later append get the error, because the hash
//! chain cannot skip a receipt. [`ReceiptLog::read`] returns durable records only. The
//! tests hold this against simulated power cuts (unsynced writes lost or torn, unsynced
//! directory entries lost) after every I/O operation of concurrent runs.
//!
//! **Recovery rule** ([`recover_all`], [`recover_instance`]). Only the end of the last
//! segment can hold bytes that were never acknowledged: everything before the last batch
//! was fsync'd, and earlier segments were closed with an fsync. So recovery validates every
//! record and, when the last segment ends in a damaged record (short header, bad header,
//! payload past the end of the file, payload checksum mismatch) after which no intact record
//! follows, truncates the file to the end of the last whole record, fsyncs it and reports
//! the bytes dropped. Damage anywhere else (in a segment that is not the last, or followed
//! by an intact record), a record that decodes wrongly despite its checksum, a seq that does
//! not follow, or a missing segment is an error naming the file and byte offset; nothing is
//! dropped. Recovery cannot tell a torn last record from one whose bytes rotted after it was
//! acknowledged; the report says what was dropped.

use crate::durable_fs::{Disk, DiskFile};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The instance's evidence bundle, beside its segments.
pub const EVIDENCE_FILE: &str = "evidence.cbor";
const EVIDENCE_TMP: &str = "evidence.cbor.tmp";
/// First byte of every record: marks a record start and the format version (1).
pub const RECORD_MAGIC: u8 = 0xA7;
/// Bytes before a record's payload.
pub const HEADER_LEN: usize = 13;
/// Largest receipt accepted (a receipt is < 2 KiB; this leaves room for format growth).
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;
/// Largest transcript accepted.
pub const MAX_TRANSCRIPT_BYTES: usize = 16 * 1024 * 1024;
/// Largest evidence bundle accepted.
pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024 * 1024;
const PAYLOAD_FIXED: usize = 8 + 4 + 1;
/// Largest payload a header may declare.
pub const MAX_PAYLOAD_BYTES: usize = PAYLOAD_FIXED + MAX_RECEIPT_BYTES + MAX_TRANSCRIPT_BYTES;
/// One in-memory (seq, offset) checkpoint per this many records of a segment.
const INDEX_STRIDE: u64 = 64;
/// Recovery reads the damaged tail into memory to look for intact records after it.
const MAX_TAIL_SCAN: u64 = 256 * 1024 * 1024;

/// What went wrong, and where.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("receipt log: {op} {}: {msg}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        kind: io::ErrorKind,
        msg: String,
    },
    /// The log failed to make `seq` durable; it and every later receipt are refused.
    #[error(
        "receipt log unusable: {op} {} failed ({msg}) while making seq {seq} durable; \
         seq {seq} and every later receipt are refused, since the hash chain cannot skip one",
        path.display()
    )]
    Poisoned {
        op: &'static str,
        path: PathBuf,
        seq: u64,
        msg: String,
    },
    #[error("receipt log: seq {got} appended where seq {expected} was expected")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("receipt log: seq {seq}: {what} of {len} bytes is outside 1..={max}")]
    BadSize {
        seq: u64,
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("receipt log: {} at byte {offset}: {what}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("receipt log: {}: {what}", path.display())]
    Layout { path: PathBuf, what: String },
    #[error("receipt log: instance directory {} already exists", .0.display())]
    Exists(PathBuf),
    #[error("receipt log is shut down; seq {0} refused")]
    ShutDown(u64),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |e| LogError::Io {
        op,
        path: path.to_path_buf(),
        kind: e.kind(),
        msg: e.to_string(),
    }
}

fn corrupt(path: &Path, offset: u64, what: impl Into<String>) -> LogError {
    LogError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.into(),
    }
}

/// Tuning for a [`ReceiptLog`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Start a new segment when a record would take the current one past this size (a
    /// record larger than this gets a segment of its own).
    pub segment_bytes: u64,
    /// The most records written under one fsync.
    pub max_batch: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 * 1024 * 1024,
            max_batch: 1024,
        }
    }
}

/// One receipt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    pub receipt: Vec<u8>,
    pub transcript: Option<Vec<u8>>,
}

/// Resolves once the appended record is durable (or the log failed).
#[derive(Debug)]
#[must_use = "a receipt may be acknowledged only after its Durable resolved Ok"]
pub struct Durable {
    seq: u64,
    rx: oneshot::Receiver<Result<(), LogError>>,
}

impl Durable {
    /// The seq this waits for.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Waits until the record is on disk.
    pub async fn wait(self) -> Result<(), LogError> {
        let seq = self.seq;
        self.rx.await.unwrap_or_else(|_| Err(writer_gone(seq)))
    }

    /// Blocking form of [`Durable::wait`]; not for use on an async runtime's thread.
    pub fn wait_blocking(self) -> Result<(), LogError> {
        let seq = self.seq;
        self.rx
            .blocking_recv()
            .unwrap_or_else(|_| Err(writer_gone(seq)))
    }
}

fn writer_gone(seq: u64) -> LogError {
    LogError::Poisoned {
        op: "writer thread",
        path: PathBuf::new(),
        seq,
        msg: "stopped without answering".into(),
    }
}

struct Pending {
    seq: u64,
    receipt: Vec<u8>,
    transcript: Option<Vec<u8>>,
    done: oneshot::Sender<Result<(), LogError>>,
}

/// Where durable records are: per segment, its first seq and sparse (seq, offset) points.
struct SegIndex {
    first_seq: u64,
    path: PathBuf,
    checkpoints: Vec<(u64, u64)>,
}

struct State {
    pending: VecDeque<Pending>,
    next_seq: u64,
    durable: Option<u64>,
    segments: Vec<SegIndex>,
    poison: Option<LogError>,
    shutdown: bool,
}

struct Shared {
    dir: PathBuf,
    opts: LogOptions,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one
        // assignment or push), so a poisoned mutex is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The live log of this runtime instance.
pub struct ReceiptLog {
    shared: Arc<Shared>,
    instance: [u8; 16],
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl ReceiptLog {
    /// Creates `<root>/<instance-hex>/` (refused if it exists), writes the evidence bundle
    /// there and starts the writer thread.
    pub fn create(
        root: &Path,
        instance: [u8; 16],
        evidence: &[u8],
        opts: LogOptions,
    ) -> Result<ReceiptLog, LogError> {
        Self::create_on(Disk::Real, root, instance, evidence, opts)
    }

    /// [`ReceiptLog::create`] with its writes going to `disk` (tests pass a simulated one).
    fn create_on(
        disk: Disk,
        root: &Path,
        instance: [u8; 16],
        evidence: &[u8],
        opts: LogOptions,
    ) -> Result<ReceiptLog, LogError> {
        if evidence.len() > MAX_EVIDENCE_BYTES {
            return Err(LogError::Layout {
                path: root.to_path_buf(),
                what: format!(
                    "evidence bundle of {} bytes exceeds {MAX_EVIDENCE_BYTES}",
                    evidence.len()
                ),
            });
        }
        create_dir_all_durable(&disk, root)?;
        let dir = root.join(hex::encode(instance));
        match disk.create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(LogError::Exists(dir))
            }
            Err(e) => return Err(io_err("create directory", &dir)(e)),
        }
        disk.sync_dir(root)
            .map_err(io_err("fsync directory", root))?;
        let tmp = dir.join(EVIDENCE_TMP);
        let mut f = disk.create_new(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(evidence).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        let final_path = dir.join(EVIDENCE_FILE);
        disk.rename(&tmp, &final_path)
            .map_err(io_err("rename to evidence.cbor", &tmp))?;
        disk.sync_dir(&dir)
            .map_err(io_err("fsync directory", &dir))?;

        let shared = Arc::new(Shared {
            dir: dir.clone(),
            opts,
            state: Mutex::new(State {
                pending: VecDeque::new(),
                next_seq: 0,
                durable: None,
                segments: Vec::new(),
                poison: None,
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let mut writer = Writer {
            disk,
            shared: shared.clone(),
            file: None,
            seg_first: 0,
            seg_path: PathBuf::new(),
            seg_len: 0,
        };
        let handle = std::thread::Builder::new()
            .name("receipt-log".into())
            .spawn(move || writer.run())
            .map_err(io_err("spawn writer thread for", &dir))?;
        Ok(ReceiptLog {
            shared,
            instance,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// This log's instance id.
    pub fn instance(&self) -> [u8; 16] {
        self.instance
    }

    /// This instance's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The evidence bundle this instance's log was created with, read back from its file.
    pub fn evidence(&self) -> Result<Vec<u8>, LogError> {
        evidence_of(&self.shared.dir)
    }

    /// Queues a record (never waits for I/O). `seq` must be 0 for the first record and the previous seq + 1
    /// after that (the caller assigns seqs under its own lock); anything else is refused,
    /// as is every append once the log is poisoned or shut down.
    pub fn append(
        &self,
        seq: u64,
        receipt: Vec<u8>,
        transcript: Option<Vec<u8>>,
    ) -> Result<Durable, LogError> {
        if receipt.is_empty() || receipt.len() > MAX_RECEIPT_BYTES {
            return Err(LogError::BadSize {
                seq,
                what: "receipt",
                len: receipt.len(),
                max: MAX_RECEIPT_BYTES,
            });
        }
        if let Some(t) = &transcript {
            if t.len() > MAX_TRANSCRIPT_BYTES {
                return Err(LogError::BadSize {
                    seq,
                    what: "transcript",
                    len: t.len(),
                    max: MAX_TRANSCRIPT_BYTES,
                });
            }
        }
        let mut st = self.shared.lock();
        if let Some(e) = &st.poison {
            return Err(e.clone());
        }
        if st.shutdown {
            return Err(LogError::ShutDown(seq));
        }
        if seq != st.next_seq {
            return Err(LogError::OutOfOrder {
                expected: st.next_seq,
                got: seq,
            });
        }
        let (done, rx) = oneshot::channel();
        st.pending.push_back(Pending {
            seq,
            receipt,
            transcript,
            done,
        });
        st.next_seq = seq + 1;
        drop(st);
        self.shared.wake.notify_one();
        Ok(Durable { seq, rx })
    }

    /// False once an I/O error poisoned the log.
    pub fn is_healthy(&self) -> bool {
        self.shared.lock().poison.is_none()
    }

    /// The highest durable seq, if any record is durable.
    pub fn durable_seq(&self) -> Option<u64> {
        self.shared.lock().durable
    }

    /// Up to `max` durable records from `from_seq` on, in order, read from the segment files.
    pub fn read(&self, from_seq: u64, max: usize) -> Result<Vec<LogRecord>, LogError> {
        let (durable, segments, mut seq, mut offset) = {
            let st = self.shared.lock();
            let Some(durable) = st.durable else {
                return Ok(Vec::new());
            };
            if from_seq > durable || max == 0 {
                return Ok(Vec::new());
            }
            // segments[0] starts at seq 0 and every segment in the index has a checkpoint
            // at its first record, so both searches find an entry.
            let i = st.segments.partition_point(|s| s.first_seq <= from_seq) - 1;
            let seg = &st.segments[i];
            let j = seg.checkpoints.partition_point(|c| c.0 <= from_seq) - 1;
            let (cseq, coff) = seg.checkpoints[j];
            let segments: Vec<(u64, PathBuf)> = st.segments[i..]
                .iter()
                .map(|s| (s.first_seq, s.path.clone()))
                .collect();
            (durable, segments, cseq, coff)
        };
        let mut out = Vec::new();
        for (k, (first, path)) in segments.iter().enumerate() {
            if k > 0 {
                offset = 0;
                if *first != seq {
                    return Err(corrupt(
                        path,
                        0,
                        format!("segment starts at seq {first}, seq {seq} expected"),
                    ));
                }
            }
            let mut f = File::open(path).map_err(io_err("open", path))?;
            f.seek(SeekFrom::Start(offset))
                .map_err(io_err("seek", path))?;
            let mut r = BufReader::new(f);
            loop {
                if seq > durable || out.len() == max {
                    return Ok(out);
                }
                let mut h = [0u8; HEADER_LEN];
                let n = read_full(&mut r, &mut h).map_err(io_err("read", path))?;
                if n == 0 {
                    break;
                }
                if n < HEADER_LEN {
                    return Err(corrupt(path, offset, "short record header"));
                }
                let len = parse_header(&h).map_err(|w| corrupt(path, offset, w))?;
                if len < PAYLOAD_FIXED {
                    return Err(corrupt(path, offset, "payload too short"));
                }
                if seq < from_seq {
                    let mut s = [0u8; 8];
                    r.read_exact(&mut s).map_err(io_err("read", path))?;
                    let got = u64::from_le_bytes(s);
                    if got != seq {
                        return Err(corrupt(path, offset, format!("seq {got}, {seq} expected")));
                    }
                    r.seek_relative(len as i64 - 8)
                        .map_err(io_err("seek", path))?;
                } else {
                    let mut payload = vec![0u8; len];
                    r.read_exact(&mut payload).map_err(io_err("read", path))?;
                    if crc32fast::hash(&payload) != u32::from_le_bytes(h[5..9].try_into().unwrap())
                    {
                        return Err(corrupt(path, offset, "payload checksum mismatch"));
                    }
                    let rec = decode_payload(&payload).map_err(|w| corrupt(path, offset, w))?;
                    if rec.seq != seq {
                        return Err(corrupt(
                            path,
                            offset,
                            format!("seq {}, {seq} expected", rec.seq),
                        ));
                    }
                    out.push(rec);
                }
                offset += (HEADER_LEN + len) as u64;
                seq += 1;
            }
        }
        if seq <= durable {
            return Err(LogError::Layout {
                path: self.shared.dir.clone(),
                what: format!("durable seq {seq} not found in the segments"),
            });
        }
        Ok(out)
    }

    /// Writes and fsyncs everything queued, then stops the writer. Later appends are refused.
    /// Blocks until the writer thread has finished (so does `Drop`): from async code, call it
    /// through `spawn_blocking`.
    pub fn shutdown(&self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for ReceiptLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Writer {
    disk: Disk,
    shared: Arc<Shared>,
    file: Option<DiskFile>,
    seg_first: u64,
    seg_path: PathBuf,
    /// Bytes in the current segment, including those still in the batch buffer.
    seg_len: u64,
}

/// Fails whatever is left if the writer thread unwinds.
struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut st = self.0.lock();
            let e = LogError::Poisoned {
                op: "writer thread",
                path: self.0.dir.clone(),
                seq: st.durable.map_or(0, |d| d + 1),
                msg: "panicked".into(),
            };
            st.poison = Some(e.clone());
            for p in st.pending.drain(..) {
                let _ = p.done.send(Err(e.clone()));
            }
        }
    }
}

impl Writer {
    fn run(&mut self) {
        let shared = self.shared.clone();
        let _guard = PanicGuard(&shared);
        loop {
            let batch: Vec<Pending> = {
                let mut st = shared.lock();
                while st.pending.is_empty() && !st.shutdown {
                    st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.pending.is_empty() {
                    return;
                }
                let n = st.pending.len().min(shared.opts.max_batch.max(1));
                st.pending.drain(..n).collect()
            };
            match self.write_batch(&batch) {
                Ok(updates) => {
                    {
                        let mut st = shared.lock();
                        st.durable = batch.last().map(|p| p.seq);
                        for (seg_first, path, seq, offset) in updates {
                            if st.segments.last().map(|s| s.first_seq) != Some(seg_first) {
                                st.segments.push(SegIndex {
                                    first_seq: seg_first,
                                    path,
                                    checkpoints: Vec::new(),
                                });
                            }
                            let seg = st.segments.last_mut().expect("pushed above");
                            seg.checkpoints.push((seq, offset));
                        }
                    }
                    for p in batch {
                        let _ = p.done.send(Ok(()));
                    }
                }
                Err(e) => {
                    let rest: Vec<Pending> = {
                        let mut st = shared.lock();
                        st.poison = Some(e.clone());
                        st.pending.drain(..).collect()
                    };
                    for p in batch.into_iter().chain(rest) {
                        let _ = p.done.send(Err(e.clone()));
                    }
                    return;
                }
            }
        }
    }

    /// Writes and fsyncs one batch; returns the index points for it.
    #[allow(clippy::type_complexity)]
    fn write_batch(
        &mut self,
        batch: &[Pending],
    ) -> Result<Vec<(u64, PathBuf, u64, u64)>, LogError> {
        let first = batch[0].seq;
        let poisoned = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |e: io::Error| LogError::Poisoned {
                op,
                path,
                seq: first,
                msg: e.to_string(),
            }
        };
        let mut buf = Vec::new();
        let mut updates = Vec::new();
        for p in batch {
            let rec_len = (HEADER_LEN + PAYLOAD_FIXED + p.receipt.len()) as u64
                + p.transcript.as_ref().map_or(0, |t| t.len() as u64);
            let rotate = self.file.is_none()
                || (self.seg_len > 0 && self.seg_len + rec_len > self.shared.opts.segment_bytes);
            if rotate {
                if let Some(f) = &mut self.file {
                    f.write_all(&buf)
                        .map_err(poisoned("write", &self.seg_path))?;
                    buf.clear();
                    f.sync_data()
                        .map_err(poisoned("fdatasync", &self.seg_path))?;
                }
                let path = self.shared.dir.join(segment_name(p.seq));
                let f = self
                    .disk
                    .create_new(&path)
                    .map_err(poisoned("create segment", &path))?;
                f.sync_all().map_err(poisoned("fsync", &path))?;
                self.disk
                    .sync_dir(&self.shared.dir)
                    .map_err(poisoned("fsync directory", &self.shared.dir))?;
                self.file = Some(f);
                self.seg_first = p.seq;
                self.seg_path = path;
                self.seg_len = 0;
            }
            if self.seg_len == 0 || (p.seq - self.seg_first).is_multiple_of(INDEX_STRIDE) {
                updates.push((self.seg_first, self.seg_path.clone(), p.seq, self.seg_len));
            }
            encode_record(&mut buf, p.seq, &p.receipt, p.transcript.as_deref());
            self.seg_len += rec_len;
        }
        let f = self
            .file
            .as_mut()
            .expect("a segment is open after the loop");
        f.write_all(&buf)
            .map_err(poisoned("write", &self.seg_path))?;
        f.sync_data()
            .map_err(poisoned("fdatasync", &self.seg_path))?;
        Ok(updates)
    }
}

/// `create_dir_all`, with each directory it creates made durable in its parent (fsync of the
/// parent after the creation): on a first start, a power cut must not lose the whole
/// receipts tree after receipts were acknowledged in it.
fn create_dir_all_durable(disk: &Disk, root: &Path) -> Result<(), LogError> {
    let mut missing = Vec::new();
    let mut at = root;
    while !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match disk.create_dir(dir) {
            Ok(()) => {}
            // Another process made it meanwhile: it is its creator's to make durable, but
            // syncing the parent again costs little and closes the gap for us too.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create directory", dir)(e)),
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            disk.sync_dir(parent)
                .map_err(io_err("fsync directory", parent))?;
        }
    }
    Ok(())
}

fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn encode_record(out: &mut Vec<u8>, seq: u64, receipt: &[u8], transcript: Option<&[u8]>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(receipt.len() as u32).to_le_bytes());
    out.extend_from_slice(receipt);
    match transcript {
        Some(t) => {
            out.push(1);
            out.extend_from_slice(t);
        }
        None => out.push(0),
    }
    let payload_len = (out.len() - start - HEADER_LEN) as u32;
    let payload_crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    let h = &mut out[start..start + HEADER_LEN];
    h[0] = RECORD_MAGIC;
    h[1..5].copy_from_slice(&payload_len.to_le_bytes());
    h[5..9].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&h[..9]);
    h[9..13].copy_from_slice(&header_crc.to_le_bytes());
}

/// Checks a header; returns the payload length.
fn parse_header(h: &[u8]) -> Result<usize, String> {
    if h[0] != RECORD_MAGIC {
        return Err(format!("bad magic byte {:#04x}", h[0]));
    }
    if crc32fast::hash(&h[..9]) != u32::from_le_bytes(h[9..13].try_into().unwrap()) {
        return Err("header checksum mismatch".into());
    }
    let len = u32::from_le_bytes(h[1..5].try_into().unwrap()) as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload length {len} exceeds the limit {MAX_PAYLOAD_BYTES}"
        ));
    }
    Ok(len)
}

fn decode_payload(p: &[u8]) -> Result<LogRecord, String> {
    if p.len() < PAYLOAD_FIXED {
        return Err(format!("payload of {} bytes is too short", p.len()));
    }
    let seq = u64::from_le_bytes(p[..8].try_into().unwrap());
    let rlen = u32::from_le_bytes(p[8..12].try_into().unwrap()) as usize;
    if rlen == 0 || rlen > MAX_RECEIPT_BYTES || 12 + rlen + 1 > p.len() {
        return Err(format!(
            "seq {seq}: receipt length {rlen} does not fit the payload"
        ));
    }
    let receipt = p[12..12 + rlen].to_vec();
    let rest = &p[12 + rlen..];
    let transcript = match rest[0] {
        0 if rest.len() == 1 => None,
        0 => {
            return Err(format!(
                "seq {seq}: bytes after a record without transcript"
            ))
        }
        1 if rest.len() - 1 <= MAX_TRANSCRIPT_BYTES => Some(rest[1..].to_vec()),
        1 => return Err(format!("seq {seq}: transcript over the limit")),
        b => return Err(format!("seq {seq}: bad transcript flag {b}")),
    };
    Ok(LogRecord {
        seq,
        receipt,
        transcript,
    })
}

/// Whether `b` starts with a whole, valid record.
fn intact_at(b: &[u8]) -> bool {
    if b.len() < HEADER_LEN {
        return false;
    }
    let Ok(len) = parse_header(&b[..HEADER_LEN]) else {
        return false;
    };
    let Some(p) = b.get(HEADER_LEN..HEADER_LEN + len) else {
        return false;
    };
    crc32fast::hash(p) == u32::from_le_bytes(b[5..9].try_into().unwrap())
        && decode_payload(p).is_ok()
}

/// Reads until `buf` is full or the end of input; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A damaged end of the last segment: what recovery drops (or dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the damaged record starts: the file's length after truncation.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    pub reason: String,
}

struct SegScan {
    records: u64,
    torn: Option<TornTail>,
}

/// Validates one segment, passing each record to `visit`. A damaged tail of the last
/// segment is returned as `torn`; any other damage is an error.
fn scan_segment(
    path: &Path,
    first_seq: u64,
    last: bool,
    visit: &mut dyn FnMut(LogRecord),
) -> Result<SegScan, LogError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let file_len = f.metadata().map_err(io_err("stat", path))?.len();
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut pos = 0u64;
    let mut seq = first_seq;
    loop {
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(&mut r, &mut h).map_err(io_err("read", path))?;
        if n == 0 {
            return Ok(SegScan {
                records: seq - first_seq,
                torn: None,
            });
        }
        let damage = if n < HEADER_LEN {
            format!("short record header ({n} of {HEADER_LEN} bytes)")
        } else {
            match parse_header(&h) {
                Err(w) => w,
                Ok(len) if pos + (HEADER_LEN + len) as u64 > file_len => format!(
                    "record of {len} payload bytes runs {} bytes past the end of the file",
                    pos + (HEADER_LEN + len) as u64 - file_len
                ),
                Ok(len) => {
                    let mut payload = vec![0u8; len];
                    r.read_exact(&mut payload).map_err(io_err("read", path))?;
                    if crc32fast::hash(&payload) != u32::from_le_bytes(h[5..9].try_into().unwrap())
                    {
                        "payload checksum mismatch".to_string()
                    } else {
                        let rec = decode_payload(&payload).map_err(|w| corrupt(path, pos, w))?;
                        if rec.seq != seq {
                            return Err(corrupt(
                                path,
                                pos,
                                format!("seq {} where seq {seq} was expected", rec.seq),
                            ));
                        }
                        visit(rec);
                        pos += (HEADER_LEN + len) as u64;
                        seq += 1;
                        continue;
                    }
                }
            }
        };
        if !last {
            return Err(corrupt(
                path,
                pos,
                format!(
                    "{damage} (seq {seq} expected) in a segment that is not the last: \
                     not a torn tail"
                ),
            ));
        }
        if let Some(at) = find_intact_after(path, pos, file_len)? {
            return Err(corrupt(
                path,
                pos,
                format!(
                    "{damage} (seq {seq} expected), followed by an intact record at byte \
                     {at}: not a torn tail"
                ),
            ));
        }
        return Ok(SegScan {
            records: seq - first_seq,
            torn: Some(TornTail {
                path: path.to_path_buf(),
                offset: pos,
                bytes: file_len - pos,
                reason: format!("{damage} (seq {seq} expected)"),
            }),
        });
    }
}

/// The offset of the first intact record strictly after `pos`, if any.
fn find_intact_after(path: &Path, pos: u64, file_len: u64) -> Result<Option<u64>, LogError> {
    let tail_len = file_len - pos;
    if tail_len > MAX_TAIL_SCAN {
        return Err(corrupt(
            path,
            pos,
            format!("{tail_len} damaged bytes at the end: too many to treat as a torn tail"),
        ));
    }
    let mut f = File::open(path).map_err(io_err("open", path))?;
    f.seek(SeekFrom::Start(pos)).map_err(io_err("seek", path))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    f.take(tail_len)
        .read_to_end(&mut tail)
        .map_err(io_err("read", path))?;
    Ok((1..tail.len())
        .find(|&o| tail[o] == RECORD_MAGIC && intact_at(&tail[o..]))
        .map(|o| pos + o as u64))
}

fn parse_instance_dir(dir: &Path) -> Result<[u8; 16], LogError> {
    let bad = || LogError::Layout {
        path: dir.to_path_buf(),
        what: "directory name is not a 32-digit hex instance id".into(),
    };
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    parse_instance_name(name).ok_or_else(bad)
}

fn parse_instance_name(name: &str) -> Option<[u8; 16]> {
    if name.len() != 32 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(name).ok()?.try_into().ok()
}

/// The instance's segments, ordered by first seq.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("seg-") {
            let seq = parse_segment_name(name).ok_or_else(|| LogError::Layout {
                path: entry.path(),
                what: "not a segment name (seg-<20 digits>.log)".into(),
            })?;
            segs.push((seq, entry.path()));
        }
    }
    segs.sort();
    Ok(segs)
}

/// Validates all segments of an instance in order.
fn scan_instance(
    dir: &Path,
    visit: &mut dyn FnMut(LogRecord),
) -> Result<(usize, u64, Option<TornTail>), LogError> {
    let segs = list_segments(dir)?;
    let mut next = 0u64;
    let mut torn = None;
    for (i, (first, path)) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if *first != next {
            return Err(corrupt(
                path,
                0,
                format!("segment starts at seq {first}, seq {next} expected (missing records)"),
            ));
        }
        let scan = scan_segment(path, *first, last, visit)?;
        if scan.records == 0 && !last && scan.torn.is_none() {
            return Err(corrupt(path, 0, "empty segment that is not the last"));
        }
        next += scan.records;
        torn = scan.torn;
    }
    Ok((segs.len(), next, torn))
}

/// [`read_evidence`], where a missing file is an error.
fn evidence_of(dir: &Path) -> Result<Vec<u8>, LogError> {
    read_evidence(dir)?.ok_or_else(|| LogError::Layout {
        path: dir.join(EVIDENCE_FILE),
        what: "missing".into(),
    })
}

fn read_evidence(dir: &Path) -> Result<Option<Vec<u8>>, LogError> {
    let path = dir.join(EVIDENCE_FILE);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    let len = f.metadata().map_err(io_err("stat", &path))?.len();
    if len > MAX_EVIDENCE_BYTES as u64 {
        return Err(LogError::Layout {
            path,
            what: format!("{len} bytes, more than {MAX_EVIDENCE_BYTES}"),
        });
    }
    let mut v = Vec::with_capacity(len as usize);
    f.take(len)
        .read_to_end(&mut v)
        .map_err(io_err("read", &path))?;
    Ok(Some(v))
}

/// What recovery found (and did) in one instance directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub instance: [u8; 16],
    pub dir: PathBuf,
    /// False only for an instance whose creation did not finish (it has no segments).
    pub evidence_present: bool,
    pub segments: usize,
    /// Whole records kept (seqs 0..records).
    pub records: u64,
    /// The torn tail that was truncated away, if any.
    pub truncated: Option<TornTail>,
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "instance {}: {} record(s) in {} segment(s)",
            hex::encode(self.instance),
            self.records,
            self.segments
        )?;
        if !self.evidence_present {
            write!(f, ", creation never finished (no evidence)")?;
        }
        if let Some(t) = &self.truncated {
            write!(
                f,
                "; dropped a torn tail of {} byte(s) at {} offset {} ({}), never acknowledged",
                t.bytes,
                t.path.display(),
                t.offset,
                t.reason
            )?;
        }
        Ok(())
    }
}

/// Recovers one instance directory of a log that is not running: validates every record
/// and truncates a torn tail of the last segment (see the module doc).
pub fn recover_instance(dir: &Path) -> Result<RecoveryReport, LogError> {
    let instance = parse_instance_dir(dir)?;
    let evidence_present = read_evidence(dir)?.is_some();
    let (segments, records, torn) = scan_instance(dir, &mut |_| {})?;
    if !evidence_present && segments > 0 {
        return Err(LogError::Layout {
            path: dir.join(EVIDENCE_FILE),
            what: "missing, yet the instance has segments".into(),
        });
    }
    if let Some(t) = &torn {
        let f = OpenOptions::new()
            .write(true)
            .open(&t.path)
            .map_err(io_err("open for truncation", &t.path))?;
        f.set_len(t.offset).map_err(io_err("truncate", &t.path))?;
        f.sync_all().map_err(io_err("fsync", &t.path))?;
    }
    Ok(RecoveryReport {
        instance,
        dir: dir.to_path_buf(),
        evidence_present,
        segments,
        records,
        truncated: torn,
    })
}

/// Runs [`recover_instance`] on every instance under `root`, in [`list_instances`] order;
/// stops at the first instance that fails (use `recover_instance` to go past one).
pub fn recover_all(root: &Path) -> Result<Vec<RecoveryReport>, LogError> {
    list_instances(root)?
        .into_iter()
        .map(|id| recover_instance(&root.join(hex::encode(id))))
        .collect()
}

/// The instance ids under `root`, sorted by name (the ids are random, so this is not the
/// order the instances ran in). Entries whose name is not an instance id are ignored.
pub fn list_instances(root: &Path) -> Result<Vec<[u8; 16]>, LogError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err("list", root))? {
        let entry = entry.map_err(io_err("list", root))?;
        let is_dir = entry
            .file_type()
            .map_err(io_err("stat", &entry.path()))?
            .is_dir();
        if let (true, Some(id)) = (
            is_dir,
            entry.file_name().to_str().and_then(parse_instance_name),
        ) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// A whole instance, read offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLog {
    pub instance: [u8; 16],
    pub evidence: Vec<u8>,
    /// Every whole record, seqs 0, 1, 2, ...
    pub records: Vec<LogRecord>,
    /// A torn tail found after the records (not removed: this is read-only; run
    /// [`recover_instance`] to truncate it). Always `None` after recovery.
    pub torn_tail: Option<TornTail>,
}

/// Reads a whole instance without changing anything. A torn tail is reported in
/// [`InstanceLog::torn_tail`], not refused; any other damage is an error. Meant for
/// instances that are no longer running: for the live one, bytes past the durable seq may
/// be mid-write, so use [`ReceiptLog::read`].
pub fn open_instance(dir: &Path) -> Result<InstanceLog, LogError> {
    let instance = parse_instance_dir(dir)?;
    let evidence = evidence_of(dir)?;
    let mut records = Vec::new();
    let (_, _, torn_tail) = scan_instance(dir, &mut |r| records.push(r))?;
    Ok(InstanceLog {
        instance,
        evidence,
        records,
        torn_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable_fs::sim::{mix, Faults, SimDisk, Unsynced};
    use std::collections::BTreeSet;
    use std::io::{BufRead, Write};

    const ID: [u8; 16] = [0x5a; 16];

    fn receipt(seq: u64) -> Vec<u8> {
        let mut r = format!("receipt-{seq}-").into_bytes();
        r.resize(40 + (seq % 7) as usize, b'r');
        r
    }

    fn transcript(seq: u64) -> Option<Vec<u8>> {
        seq.is_multiple_of(3)
            .then(|| vec![(seq % 251) as u8; (seq % 5 * 100) as usize])
    }

    fn expected(seq: u64) -> LogRecord {
        LogRecord {
            seq,
            receipt: receipt(seq),
            transcript: transcript(seq),
        }
    }

    fn open(root: &Path, opts: LogOptions) -> ReceiptLog {
        ReceiptLog::create(root, ID, b"evidence-bytes", opts).unwrap()
    }

    /// Appends seqs `from..to`, waiting for each.
    fn fill(log: &ReceiptLog, from: u64, to: u64) {
        for seq in from..to {
            log.append(seq, receipt(seq), transcript(seq))
                .unwrap()
                .wait_blocking()
                .unwrap();
        }
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|s| s.1)
            .collect()
    }

    /// Byte offsets at which each record of a segment starts.
    fn record_offsets(path: &Path) -> Vec<u64> {
        let bytes = fs::read(path).unwrap();
        let mut offs = Vec::new();
        let mut pos = 0usize;
        while pos < bytes.len() {
            offs.push(pos as u64);
            pos += HEADER_LEN + parse_header(&bytes[pos..pos + HEADER_LEN]).unwrap();
        }
        offs
    }

    #[test]
    fn receipt_log_concurrent_appends_read_back() {
        let root = tempfile::tempdir().unwrap();
        let log = Arc::new(open(root.path(), LogOptions::default()));
        let next = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (log, next) = (log.clone(), next.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let durable = {
                            let mut g = next.lock().unwrap();
                            let seq = *g;
                            let d = log.append(seq, receipt(seq), transcript(seq)).unwrap();
                            *g += 1;
                            d
                        };
                        let seq = durable.seq();
                        durable.wait_blocking().unwrap();
                        assert!(log.durable_seq().unwrap() >= seq);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(log.durable_seq(), Some(199));
        assert!(log.is_healthy());
        let all = log.read(0, 1000).unwrap();
        assert_eq!(all, (0..200).map(expected).collect::<Vec<_>>());
        log.shutdown();
        assert!(matches!(
            log.append(200, receipt(200), None),
            Err(LogError::ShutDown(200))
        ));
        let dir = root.path().join(hex::encode(ID));
        let offline = open_instance(&dir).unwrap();
        assert_eq!(offline.instance, ID);
        assert_eq!(offline.evidence, b"evidence-bytes");
        assert_eq!(offline.records, all);
        assert_eq!(offline.torn_tail, None);
        assert_eq!(list_instances(root.path()).unwrap(), vec![ID]);
    }

    #[tokio::test]
    async fn receipt_log_async_wait_and_shutdown_flushes() {
        let root = tempfile::tempdir().unwrap();
        let log = open(root.path(), LogOptions::default());
        let waits: Vec<Durable> = (0..20)
            .map(|s| log.append(s, receipt(s), transcript(s)).unwrap())
            .collect();
        for w in waits {
            w.wait().await.unwrap();
        }
        assert_eq!(log.durable_seq(), Some(19));
        // Not waited for: shutdown (through Drop) must still write them.
        let _unwaited: Vec<Durable> = (20..30)
            .map(|s| log.append(s, receipt(s), transcript(s)).unwrap())
            .collect();
        drop(log);
        let inst = open_instance(&root.path().join(hex::encode(ID))).unwrap();
        assert_eq!(inst.records, (0..30).map(expected).collect::<Vec<_>>());
    }

    #[test]
    fn receipt_log_create_refuses_existing_instance() {
        let root = tempfile::tempdir().unwrap();
        let _log = open(root.path(), LogOptions::default());
        let again = ReceiptLog::create(root.path(), ID, b"x", LogOptions::default());
        assert!(matches!(again, Err(LogError::Exists(p)) if p.ends_with(hex::encode(ID))));
    }

    #[test]
    fn receipt_log_read_pages() {
        let root = tempfile::tempdir().unwrap();
        let log = open(root.path(), LogOptions::default());
        assert_eq!(log.durable_seq(), None);
        assert!(log.read(0, 10).unwrap().is_empty());
        fill(&log, 0, 200);
        let mut paged = Vec::new();
        let mut from = 0;
        loop {
            let page = log.read(from, 13).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 13);
            from = page.last().unwrap().seq + 1;
            paged.extend(page);
        }
        assert_eq!(paged, (0..200).map(expected).collect::<Vec<_>>());
        // From the middle of a checkpoint stride and past one.
        assert_eq!(
            log.read(150, 3).unwrap(),
            (150..153).map(expected).collect::<Vec<_>>()
        );
        assert_eq!(log.read(64, 1).unwrap(), vec![expected(64)]);
        assert_eq!(
            log.read(195, 10).unwrap(),
            (195..200).map(expected).collect::<Vec<_>>()
        );
        assert!(log.read(200, 10).unwrap().is_empty());
        assert!(log.read(37, 0).unwrap().is_empty());
    }

    #[test]
    fn receipt_log_rotates_and_reads_across_segments() {
        let root = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            segment_bytes: 300,
            max_batch: 4,
        };
        let log = open(root.path(), opts);
        for seq in 0..20 {
            log.append(seq, vec![seq as u8 + 1; 100], None)
                .unwrap()
                .wait_blocking()
                .unwrap();
        }
        // A record larger than a segment gets a segment of its own.
        log.append(20, vec![9; 100], Some(vec![7; 1000]))
            .unwrap()
            .wait_blocking()
            .unwrap();
        log.append(21, vec![9; 100], None)
            .unwrap()
            .wait_blocking()
            .unwrap();
        // Each record is 13 + 13 + 100 = 126 bytes: two per 300-byte segment.
        let segs = segments(log.dir());
        assert_eq!(segs.len(), 12);
        assert!(segs[0].ends_with("seg-00000000000000000000.log"));
        assert!(segs[9].ends_with("seg-00000000000000000018.log"));
        assert!(segs[10].ends_with("seg-00000000000000000020.log"));
        assert!(segs[11].ends_with("seg-00000000000000000021.log"));
        for p in &segs[..10] {
            assert_eq!(fs::metadata(p).unwrap().len(), 252);
        }
        let got = log.read(3, 7).unwrap();
        assert_eq!(
            got.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (3..10).collect::<Vec<_>>()
        );
        assert_eq!(got[0].receipt, vec![4; 100]);
        let tail = log.read(19, 10).unwrap();
        assert_eq!(
            tail.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![19, 20, 21]
        );
        assert_eq!(tail[1].transcript, Some(vec![7; 1000]));
        log.shutdown();
        let rep = recover_all(root.path()).unwrap();
        assert_eq!(rep.len(), 1);
        assert_eq!(
            (rep[0].segments, rep[0].records, rep[0].truncated.clone()),
            (12, 22, None)
        );
    }

    #[test]
    fn receipt_log_out_of_order_refused() {
        let root = tempfile::tempdir().unwrap();
        let log = open(root.path(), LogOptions::default());
        assert!(matches!(
            log.append(5, receipt(5), None),
            Err(LogError::OutOfOrder {
                expected: 0,
                got: 5
            })
        ));
        log.append(0, receipt(0), None)
            .unwrap()
            .wait_blocking()
            .unwrap();
        assert!(matches!(
            log.append(2, receipt(2), None),
            Err(LogError::OutOfOrder {
                expected: 1,
                got: 2
            })
        ));
        assert!(matches!(
            log.append(0, receipt(0), None),
            Err(LogError::OutOfOrder {
                expected: 1,
                got: 0
            })
        ));
        assert!(matches!(
            log.append(1, Vec::new(), None),
            Err(LogError::BadSize {
                seq: 1,
                what: "receipt",
                ..
            })
        ));
        log.append(1, receipt(1), None)
            .unwrap()
            .wait_blocking()
            .unwrap();
        assert_eq!(log.read(0, 10).unwrap().len(), 2);
        assert!(log.is_healthy());
    }

    #[test]
    fn receipt_log_io_failure_poisons() {
        let root = tempfile::tempdir().unwrap();
        let sim = SimDisk::new(root.path());
        let log = sim_log(&sim, LogOptions::default()).unwrap();
        fill(&log, 0, 5);
        // Seqs 0..5 were each synced on their own, so the next sync is that of seq 5's batch.
        sim.fail_next_sync_data();
        // The writer may fail seq 5 before 6 and 7 are appended: then their appends are
        // refused at once, with the same cause, instead of through their waiters.
        let outcomes: Vec<Result<Durable, LogError>> =
            (5..8).map(|s| log.append(s, receipt(s), None)).collect();
        assert!(
            outcomes[0].is_ok(),
            "nothing had failed when seq 5 was appended"
        );
        for outcome in outcomes {
            let e = match outcome {
                Ok(w) => w.wait_blocking().unwrap_err(),
                Err(e) => e,
            };
            match &e {
                LogError::Poisoned { op, path, seq, msg } => {
                    assert_eq!(*op, "fdatasync");
                    assert!(path.ends_with("seg-00000000000000000000.log"), "{path:?}");
                    assert_eq!(*seq, 5);
                    assert!(msg.contains("injected"));
                }
                other => panic!("unexpected {other:?}"),
            }
            let text = e.to_string();
            assert!(text.contains("seg-00000000000000000000.log") && text.contains("seq 5"));
        }
        assert!(!log.is_healthy());
        assert_eq!(log.durable_seq(), Some(4));
        // Later appends are refused with the same cause, even with the next seq.
        let later = log.append(8, receipt(8), None).unwrap_err();
        assert!(matches!(
            later,
            LogError::Poisoned {
                seq: 5,
                op: "fdatasync",
                ..
            }
        ));
        assert_eq!(
            log.read(0, 100).unwrap(),
            (0..5).map(expected).collect::<Vec<_>>()
        );
    }

    /// Writes seqs 0..10 in one segment and returns (root, dir, segment path).
    fn ten_records() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let log = open(root.path(), LogOptions::default());
        fill(&log, 0, 10);
        let dir = log.dir().to_path_buf();
        drop(log);
        let seg = segments(&dir).pop().unwrap();
        (root, dir, seg)
    }

    #[test]
    fn receipt_log_torn_tail_truncated_by_recovery() {
        // A last record cut short.
        let (root, dir, seg) = ten_records();
        let len = fs::metadata(&seg).unwrap().len();
        let last = *record_offsets(&seg).last().unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let seen = open_instance(&dir).unwrap();
        assert_eq!(seen.records.len(), 9);
        assert_eq!(
            seen.torn_tail.as_ref().map(|t| (t.offset, t.bytes)),
            Some((last, len - 5 - last))
        );
        let rep = recover_all(root.path()).unwrap();
        let t = rep[0].truncated.clone().unwrap();
        assert_eq!(
            (t.offset, t.bytes, rep[0].records),
            (last, len - 5 - last, 9)
        );
        assert!(t.reason.contains("past the end"), "{}", t.reason);
        assert_eq!(fs::metadata(&seg).unwrap().len(), last);
        let inst = open_instance(&dir).unwrap();
        assert_eq!(inst.records, (0..9).map(expected).collect::<Vec<_>>());
        assert_eq!(inst.torn_tail, None);
        // Idempotent.
        assert_eq!(recover_all(root.path()).unwrap()[0].truncated, None);

        // Half a header, then zeros (an extended file whose data never landed), then a
        // record whose payload checksum fails at the very end.
        for garbage in [vec![RECORD_MAGIC, 1, 2, 3, 4], vec![0u8; 4096], {
            let mut v = Vec::new();
            encode_record(&mut v, 9, &receipt(9), None);
            let n = v.len();
            v[n - 1] ^= 0xff;
            v
        }] {
            let before = fs::metadata(&seg).unwrap().len();
            let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
            f.write_all(&garbage).unwrap();
            drop(f);
            let rep = recover_instance(&dir).unwrap();
            let t = rep.truncated.unwrap();
            assert_eq!((t.offset, t.bytes), (before, garbage.len() as u64));
            assert_eq!(rep.records, 9);
            assert_eq!(fs::metadata(&seg).unwrap().len(), before);
        }
        assert_eq!(open_instance(&dir).unwrap().records.len(), 9);
    }

    #[test]
    fn receipt_log_damage_in_the_middle_is_an_error() {
        let (root, dir, seg) = ten_records();
        let offs = record_offsets(&seg);
        let len = fs::metadata(&seg).unwrap().len();
        let mut bytes = fs::read(&seg).unwrap();
        let at = offs[3] as usize + HEADER_LEN + 2; // inside record 3's seq field
        bytes[at] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        let e = recover_all(root.path()).unwrap_err();
        match &e {
            LogError::Corrupt { path, offset, what } => {
                assert_eq!(path, &seg);
                assert_eq!(*offset, offs[3]);
                assert!(
                    what.contains("checksum") && what.contains("not a torn tail"),
                    "{what}"
                );
                assert!(
                    what.contains(&format!("intact record at byte {}", offs[4])),
                    "{what}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().contains(&format!("at byte {}", offs[3])));
        assert_eq!(fs::metadata(&seg).unwrap().len(), len, "nothing dropped");
        assert!(open_instance(&dir).is_err());

        // A flipped length byte: the header checksum catches it.
        bytes[at] ^= 0x01;
        bytes[offs[6] as usize + 2] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        let e = recover_instance(&dir).unwrap_err();
        assert!(
            matches!(&e, LogError::Corrupt { offset, what, .. }
            if *offset == offs[6] && what.contains("header checksum")),
            "{e}"
        );
    }

    #[test]
    fn receipt_log_damage_in_an_earlier_segment_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let log = open(
            root.path(),
            LogOptions {
                segment_bytes: 300,
                max_batch: 8,
            },
        );
        for seq in 0..6 {
            log.append(seq, vec![1; 100], None)
                .unwrap()
                .wait_blocking()
                .unwrap();
        }
        let dir = log.dir().to_path_buf();
        drop(log);
        let segs = segments(&dir);
        assert_eq!(segs.len(), 3);
        // The last record of the first segment, cut short.
        let len = fs::metadata(&segs[0]).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&segs[0])
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let e = recover_instance(&dir).unwrap_err();
        assert!(
            matches!(&e, LogError::Corrupt { path, offset: 126, what }
            if path == &segs[0] && what.contains("not the last")),
            "{e}"
        );
        assert_eq!(fs::metadata(&segs[0]).unwrap().len(), len - 1);
        // A missing segment: seqs would not follow.
        fs::remove_file(&segs[0]).unwrap();
        let e = recover_instance(&dir).unwrap_err();
        assert!(e.to_string().contains("seq 0 expected"), "{e}");
    }

    #[test]
    fn receipt_log_record_with_wrong_seq_is_an_error() {
        let (_root, dir, seg) = ten_records();
        let mut extra = Vec::new();
        encode_record(&mut extra, 11, &receipt(11), None); // 10 is skipped
        let len = fs::metadata(&seg).unwrap().len();
        fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&extra)
            .unwrap();
        let e = recover_instance(&dir).unwrap_err();
        assert!(
            matches!(&e, LogError::Corrupt { offset, what, .. }
            if *offset == len && what.contains("seq 11 where seq 10")),
            "{e}"
        );
    }

    #[test]
    fn receipt_log_bounds_absurd_lengths() {
        let (_root, dir, seg) = ten_records();
        // A header with a valid checksum declaring 4 GiB: refused, not allocated.
        let mut h = [0u8; HEADER_LEN];
        h[0] = RECORD_MAGIC;
        h[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let c = crc32fast::hash(&h[..9]);
        h[9..13].copy_from_slice(&c.to_le_bytes());
        assert!(parse_header(&h).unwrap_err().contains("exceeds the limit"));
        fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&h)
            .unwrap();
        let rep = recover_instance(&dir).unwrap();
        assert!(rep.truncated.unwrap().reason.contains("exceeds the limit"));
        assert_eq!(rep.records, 10);
    }

    /// Run by `receipt_log_ack_survives_kill`, in a child process: appends from four
    /// threads and prints each seq once its wait returned Ok, until killed.
    #[test]
    #[ignore = "child process of receipt_log_ack_survives_kill"]
    fn receipt_log_crash_child() {
        let Ok(root) = std::env::var("VERITEE_RECEIPT_LOG_CRASH_ROOT") else {
            return;
        };
        let log = Arc::new(open(
            Path::new(&root),
            LogOptions {
                segment_bytes: 4096,
                max_batch: 16,
            },
        ));
        let next = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (log, next) = (log.clone(), next.clone());
                std::thread::spawn(move || loop {
                    let d = {
                        let mut g = next.lock().unwrap();
                        let d = log.append(*g, receipt(*g), transcript(*g)).unwrap();
                        *g += 1;
                        d
                    };
                    let seq = d.seq();
                    d.wait_blocking().unwrap();
                    let mut out = io::stdout().lock();
                    writeln!(out, "ack {seq}").unwrap();
                    out.flush().unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn receipt_log_ack_survives_kill() {
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "receipt_log::tests::receipt_log_crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("VERITEE_RECEIPT_LOG_CRASH_ROOT", root.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        for line in io::BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(s) = line.unwrap().strip_prefix("ack ") {
                acked.push(s.parse::<u64>().unwrap());
                if acked.len() == 500 {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert_eq!(acked.len(), 500, "child stopped early");
        let rep = recover_all(root.path()).unwrap();
        assert_eq!(rep.len(), 1);
        let inst = open_instance(&rep[0].dir).unwrap();
        assert_eq!(inst.records.len() as u64, rep[0].records);
        for (i, r) in inst.records.iter().enumerate() {
            assert_eq!(r, &expected(i as u64));
        }
        let max_acked = *acked.iter().max().unwrap();
        assert!(
            rep[0].records > max_acked,
            "acknowledged seq {max_acked} missing: {} records",
            rep[0].records
        );
    }

    // Power cuts, on the simulated disk of `durable_fs`: what was never synced is gone (or
    // torn), unlike after the kill -9 above, where the page cache keeps every write.

    /// The evidence bundle of the power-cut tests: long enough that a torn copy shows.
    fn sim_evidence() -> Vec<u8> {
        (0..3000u32).map(|i| (i % 251) as u8).collect()
    }

    fn sim_log(sim: &Arc<SimDisk>, opts: LogOptions) -> Result<ReceiptLog, LogError> {
        ReceiptLog::create_on(
            Disk::Sim(sim.clone()),
            sim.base(),
            ID,
            &sim_evidence(),
            opts,
        )
    }

    /// What a run's callers were told before the power went.
    #[derive(Debug, Default)]
    struct Told {
        /// `ReceiptLog::create` returned Ok.
        created: bool,
        /// Seqs 0..appended were accepted by `append`.
        appended: u64,
        /// Seqs whose `Durable` resolved Ok.
        acked: BTreeSet<u64>,
    }

    /// Creates a log on `sim` and appends `records` receipts from `threads` threads, each
    /// waiting for its receipt, until all are acknowledged or the disk fails.
    fn append_until_cut(
        sim: &Arc<SimDisk>,
        opts: LogOptions,
        threads: usize,
        records: u64,
    ) -> Told {
        let Ok(log) = sim_log(sim, opts) else {
            return Told::default();
        };
        let log = Arc::new(log);
        let next = Arc::new(Mutex::new(0u64));
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (log, next, acked) = (log.clone(), next.clone(), acked.clone());
                std::thread::spawn(move || loop {
                    let durable = {
                        let mut g = next.lock().unwrap();
                        if *g == records {
                            return;
                        }
                        let Ok(d) = log.append(*g, receipt(*g), transcript(*g)) else {
                            return;
                        };
                        *g += 1;
                        d
                    };
                    let seq = durable.seq();
                    if durable.wait_blocking().is_err() {
                        return;
                    }
                    acked.lock().unwrap().insert(seq);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let appended = *next.lock().unwrap();
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        Told {
            created: true,
            appended,
            acked,
        }
    }

    #[derive(Debug)]
    enum Violation {
        /// Acknowledged, yet not among the records recovery kept.
        AckLost { seq: u64, recovered: u64 },
        /// Recovery refused the image: it fails closed, but the receipts are not readable.
        Recovery(LogError),
        /// Evidence missing although `create` returned Ok, or not the bytes written.
        Evidence(String),
        /// Records other than those appended, or damage left behind by recovery.
        Content(String),
    }

    impl std::fmt::Display for Violation {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Violation::AckLost { seq, recovered } => write!(
                    f,
                    "acknowledged seq {seq} lost: recovery kept {recovered} record(s)"
                ),
                Violation::Recovery(e) => write!(f, "recovery refused the image: {e}"),
                Violation::Evidence(what) => write!(f, "evidence: {what}"),
                Violation::Content(what) => write!(f, "records: {what}"),
            }
        }
    }

    /// What the checked images held, to show that a sweep reached each case.
    #[derive(Debug, Default)]
    struct CutStats {
        images: u64,
        /// An instance directory without evidence: the cut came during `create`.
        unfinished_create: u64,
        /// The last segment ended in a torn record, which recovery dropped.
        torn_tails_dropped: u64,
        /// Records past the highest acknowledged seq survived (written, never acknowledged).
        unacked_survived: u64,
        /// Acknowledged receipts found intact, summed over the images.
        acked_checked: u64,
    }

    /// Runs the real recovery on a power-cut image and checks it against what the callers
    /// were told: every acknowledged receipt intact, and nothing but whole, expected records.
    fn check_image(img: &Path, told: &Told, stats: &mut CutStats) -> Result<(), Violation> {
        stats.images += 1;
        let lost = |recovered: u64| match told.acked.iter().find(|&&s| s >= recovered) {
            Some(&seq) => Err(Violation::AckLost { seq, recovered }),
            None => Ok(()),
        };
        let reports = recover_all(img).map_err(Violation::Recovery)?;
        let Some(rep) = reports.first() else {
            lost(0)?;
            if told.created {
                return Err(Violation::Evidence(
                    "instance directory gone, though create returned Ok".into(),
                ));
            }
            return Ok(());
        };
        if reports.len() != 1 || rep.instance != ID {
            return Err(Violation::Content(format!("instances {reports:?}")));
        }
        if !rep.evidence_present {
            stats.unfinished_create += 1;
            lost(rep.records)?;
            if told.created {
                return Err(Violation::Evidence(
                    "evidence gone, though create returned Ok".into(),
                ));
            }
            return Ok(());
        }
        let inst = open_instance(&rep.dir).map_err(Violation::Recovery)?;
        if inst.evidence != sim_evidence() {
            return Err(Violation::Evidence(format!(
                "{} bytes that are not the {} written",
                inst.evidence.len(),
                sim_evidence().len()
            )));
        }
        if inst.torn_tail.is_some()
            || inst.records.len() as u64 != rep.records
            || rep.records > told.appended
        {
            return Err(Violation::Content(format!(
                "recovery kept {} records ({} appended), {} read back, torn tail {:?}",
                rep.records,
                told.appended,
                inst.records.len(),
                inst.torn_tail
            )));
        }
        for (i, r) in inst.records.iter().enumerate() {
            if *r != expected(i as u64) {
                return Err(Violation::Content(format!("record {i} is {r:?}")));
            }
        }
        lost(rep.records)?;
        let again = recover_all(img).map_err(Violation::Recovery)?;
        if again[0].truncated.is_some() || again[0].records != rep.records {
            return Err(Violation::Content(format!(
                "a second recovery changed it: {}",
                again[0]
            )));
        }
        stats.acked_checked += told.acked.len() as u64;
        stats.torn_tails_dropped += u64::from(rep.truncated.is_some());
        let acked_end = told.acked.last().map_or(0, |&s| s + 1);
        stats.unacked_survived += u64::from(rep.records > acked_end);
        Ok(())
    }

    /// The ways one cut's durable state is materialised (all of them realistic).
    fn cut_variants(seed: u64) -> [(&'static str, Unsynced, bool); 4] {
        [
            ("unsynced writes lost", Unsynced::Lost, false),
            ("unsynced writes torn", Unsynced::Torn(seed), false),
            (
                "unsynced writes torn, zeros to the written size",
                Unsynced::TornZeros(seed),
                false,
            ),
            (
                "unsynced writes torn, unsynced directory entries kept",
                Unsynced::Torn(mix(seed)),
                true,
            ),
        ]
    }

    struct Sweep {
        /// Cut points run: after operation 0, 1, ..., cuts - 1.
        cuts: u64,
        stats: CutStats,
        /// Images with an acknowledged receipt missing.
        acked_lost: u64,
        violations: Vec<String>,
    }

    /// For every k from 0 to past the end of an uncut run: a fresh run of `threads`
    /// appenders of `records` receipts whose power goes after the disk's k-th operation;
    /// each of the [`cut_variants`] of its durable state is recovered and checked. `round`
    /// seeds the torn lengths.
    fn sweep(faults: Faults, opts: &LogOptions, threads: usize, records: u64, round: u64) -> Sweep {
        let uncut_ops = {
            let base = tempfile::tempdir().unwrap();
            let sim = SimDisk::new(base.path());
            sim.set_faults(faults);
            append_until_cut(&sim, opts.clone(), threads, records);
            sim.ops()
        };
        // How records fall into batches depends on thread timing, so a run may take more
        // operations than this one did; the last cuts come after the end of most runs.
        let cuts = uncut_ops + uncut_ops / 4 + 1;
        let mut out = Sweep {
            cuts,
            stats: CutStats::default(),
            acked_lost: 0,
            violations: Vec::new(),
        };
        for cut in 0..cuts {
            let base = tempfile::tempdir().unwrap();
            let sim = SimDisk::new(base.path());
            sim.set_faults(faults);
            sim.cut_after(cut);
            let told = append_until_cut(&sim, opts.clone(), threads, records);
            for (what, unsynced, keep_names) in cut_variants(mix(round << 32 | cut)) {
                let img = tempfile::tempdir().unwrap();
                sim.power_cut_image(img.path(), unsynced, keep_names)
                    .unwrap();
                if let Err(v) = check_image(img.path(), &told, &mut out.stats) {
                    out.acked_lost += u64::from(matches!(v, Violation::AckLost { .. }));
                    out.violations.push(format!(
                        "round {round}, cut after operation {cut}, {what}, {} acknowledged: {v}",
                        told.acked.len()
                    ));
                }
            }
        }
        out
    }

    /// Small segments and batches: many rotations, so cuts land inside them too.
    fn small_segments() -> LogOptions {
        LogOptions {
            segment_bytes: 1024,
            max_batch: 3,
        }
    }

    #[test]
    fn receipt_log_power_cut_at_every_operation_keeps_acknowledged() {
        // Each round is a fresh set of runs: other batch boundaries, other torn lengths.
        for (round, (opts, threads, records)) in [
            (small_segments(), 4, 60),
            // One segment; group commits of up to 8 (one waiting receipt per thread).
            (LogOptions::default(), 8, 80),
        ]
        .into_iter()
        .cycle()
        .take(4)
        .enumerate()
        {
            let s = sweep(Faults::default(), &opts, threads, records, round as u64);
            assert!(
                s.violations.is_empty(),
                "{} of {} images ({} cut points) violate durability, e.g. {:#?}",
                s.violations.len(),
                s.stats.images,
                s.cuts,
                &s.violations[..s.violations.len().min(5)]
            );
            // The sweep reached every case: cuts during create, torn tails dropped,
            // unacknowledged records kept, many acknowledged receipts checked.
            let st = &s.stats;
            eprintln!(
                "round {round}, {threads} threads, {opts:?}: {} cut points, {st:?}",
                s.cuts
            );
            assert!(
                st.unfinished_create > 0
                    && st.torn_tails_dropped > 0
                    && st.unacked_survived > 0
                    && st.acked_checked > 10 * records,
                "{st:?}"
            );
        }
    }

    /// Test of the test: with `fdatasync` made a no-op, the same sweep loses receipts that
    /// were acknowledged.
    #[test]
    fn receipt_log_power_cut_check_catches_missing_fdatasync() {
        let faults = Faults {
            sync_data_noop: true,
            ..Faults::default()
        };
        let s = sweep(faults, &small_segments(), 4, 40, 0);
        assert!(s.acked_lost > 0, "{:#?}", s.violations);
    }

    /// Test of the test: with directory fsyncs made no-ops, the same sweep loses receipts
    /// that were acknowledged (their files' directory entries never became durable).
    #[test]
    fn receipt_log_power_cut_check_catches_missing_directory_fsync() {
        let faults = Faults {
            dir_sync_noop: true,
            ..Faults::default()
        };
        let s = sweep(faults, &small_segments(), 4, 40, 0);
        assert!(s.acked_lost > 0, "{:#?}", s.violations);
    }

    /// Ten receipts acknowledged one by one, then the power goes: all of them come back;
    /// with `fdatasync` a no-op, none do.
    #[test]
    fn receipt_log_power_cut_after_acks_needs_fdatasync() {
        for noop in [false, true] {
            let base = tempfile::tempdir().unwrap();
            let sim = SimDisk::new(base.path());
            sim.set_faults(Faults {
                sync_data_noop: noop,
                ..Faults::default()
            });
            let log = sim_log(&sim, LogOptions::default()).unwrap();
            fill(&log, 0, 10);
            sim.cut();
            drop(log);
            let told = Told {
                created: true,
                appended: 10,
                acked: (0..10).collect(),
            };
            let img = tempfile::tempdir().unwrap();
            sim.power_cut_image(img.path(), Unsynced::Lost, false)
                .unwrap();
            let got = check_image(img.path(), &told, &mut CutStats::default());
            match noop {
                false => got.unwrap(),
                true => assert!(
                    matches!(
                        got,
                        Err(Violation::AckLost {
                            seq: 0,
                            recovered: 0
                        })
                    ),
                    "{got:?}"
                ),
            }
        }
    }

    /// A new segment's records are acknowledged after their `fdatasync`, but the segment's
    /// directory entry is durable only through the directory fsync at its creation: without
    /// it the file, and the acknowledged receipts in it, vanish at the power cut.
    #[test]
    fn receipt_log_power_cut_new_segment_needs_directory_fsync() {
        for noop in [false, true] {
            let base = tempfile::tempdir().unwrap();
            let sim = SimDisk::new(base.path());
            let log = sim_log(
                &sim,
                LogOptions {
                    segment_bytes: 200,
                    max_batch: 1,
                },
            )
            .unwrap();
            fill(&log, 0, 2);
            assert_eq!(segments(log.dir()).len(), 1);
            // From here on (the first segment's entry is durable already).
            sim.set_faults(Faults {
                dir_sync_noop: noop,
                ..Faults::default()
            });
            fill(&log, 2, 6);
            let segs = segments(log.dir());
            assert!(segs.len() >= 2, "{segs:?}");
            let second = segs[1].file_name().unwrap().to_str().unwrap();
            let second_first = parse_segment_name(second).unwrap();
            sim.cut();
            drop(log);
            let told = Told {
                created: true,
                appended: 6,
                acked: (0..6).collect(),
            };
            let img = tempfile::tempdir().unwrap();
            sim.power_cut_image(img.path(), Unsynced::Lost, false)
                .unwrap();
            let got = check_image(img.path(), &told, &mut CutStats::default());
            match noop {
                false => got.unwrap(),
                true => {
                    assert!(
                        matches!(got, Err(Violation::AckLost { seq, recovered })
                            if seq == second_first && recovered == second_first),
                        "{got:?}"
                    );
                    let img_dir = img.path().join(hex::encode(ID));
                    assert!(!img_dir.join(second).exists());
                }
            }
        }
    }

    /// On a first start the receipts root does not exist yet: `create` makes every missing
    /// directory durable in its parent, so acknowledged receipts survive a power cut. Before
    /// (a plain `create_dir_all`), the root's own entry was never fsync'd and the whole tree
    /// could vanish with them.
    #[test]
    fn receipt_log_power_cut_keeps_a_freshly_made_root() {
        let base = tempfile::tempdir().unwrap();
        let sim = SimDisk::new(base.path());
        let root = sim.base().join("state").join("receipts");
        let log = ReceiptLog::create_on(
            Disk::Sim(sim.clone()),
            &root,
            ID,
            &sim_evidence(),
            LogOptions::default(),
        )
        .unwrap();
        fill(&log, 0, 3);
        sim.cut();
        drop(log);
        let img = tempfile::tempdir().unwrap();
        sim.power_cut_image(img.path(), Unsynced::Lost, false)
            .unwrap();
        let recovered = recover_all(&img.path().join("state").join("receipts")).unwrap();
        assert_eq!(recovered.len(), 1, "the instance survived");
        let log = open_instance(&img.path().join("state/receipts").join(hex::encode(ID))).unwrap();
        assert_eq!(log.records.len(), 3, "every acknowledged receipt survived");
    }

    /// A power cut after each operation of `create`: the evidence file is absent or whole,
    /// and present once `create` returned. With the temp file's fsync before the rename a
    /// no-op, the renamed name can survive without its content.
    #[test]
    fn receipt_log_power_cut_evidence_is_atomic() {
        let create_ops = {
            let base = tempfile::tempdir().unwrap();
            let sim = SimDisk::new(base.path());
            drop(sim_log(&sim, LogOptions::default()).unwrap());
            sim.ops()
        };
        for noop in [false, true] {
            let mut bad = Vec::new();
            for cut in 0..=create_ops {
                let base = tempfile::tempdir().unwrap();
                let sim = SimDisk::new(base.path());
                sim.set_faults(Faults {
                    sync_all_noop: noop,
                    ..Faults::default()
                });
                sim.cut_after(cut);
                let created = sim_log(&sim, LogOptions::default()).is_ok();
                assert_eq!(created, cut == create_ops);
                let told = Told {
                    created,
                    ..Told::default()
                };
                for (what, unsynced, keep_names) in cut_variants(mix(cut)) {
                    let img = tempfile::tempdir().unwrap();
                    sim.power_cut_image(img.path(), unsynced, keep_names)
                        .unwrap();
                    if let Err(v) = check_image(img.path(), &told, &mut CutStats::default()) {
                        bad.push(format!("cut after operation {cut}, {what}: {v}"));
                    }
                }
            }
            match noop {
                false => assert!(bad.is_empty(), "{bad:#?}"),
                true => assert!(
                    bad.iter().any(|b| b.contains("evidence: 0 bytes")),
                    "{bad:#?}"
                ),
            }
        }
    }

    /// The power goes between a batch's write and its `fdatasync`: recovery keeps the
    /// acknowledged records and drops whatever part of the unacknowledged one landed.
    #[test]
    fn receipt_log_power_cut_mid_batch_drops_only_the_torn_tail() {
        let base = tempfile::tempdir().unwrap();
        let sim = SimDisk::new(base.path());
        let log = sim_log(&sim, LogOptions::default()).unwrap();
        fill(&log, 0, 9);
        sim.cut_after(sim.ops() + 1); // the write goes through, the sync does not
        let e = log
            .append(9, receipt(9), transcript(9))
            .unwrap()
            .wait_blocking()
            .unwrap_err();
        assert!(
            matches!(
                e,
                LogError::Poisoned {
                    op: "fdatasync",
                    seq: 9,
                    ..
                }
            ),
            "{e}"
        );
        drop(log);
        let told = Told {
            created: true,
            appended: 10,
            acked: (0..9).collect(),
        };
        let mut stats = CutStats::default();
        let mut kept = BTreeSet::new();
        for seed in 0..64 {
            for unsynced in [Unsynced::Torn(seed), Unsynced::TornZeros(seed)] {
                let img = tempfile::tempdir().unwrap();
                sim.power_cut_image(img.path(), unsynced, false).unwrap();
                check_image(img.path(), &told, &mut stats).unwrap();
                kept.insert(recover_all(img.path()).unwrap()[0].records);
            }
        }
        // Seq 9 was lost, torn (and dropped), or survived whole, across the seeds.
        assert_eq!(kept, BTreeSet::from([9, 10]));
        assert!(
            stats.torn_tails_dropped > 0 && stats.unacked_survived > 0,
            "{stats:?}"
        );
    }
}
