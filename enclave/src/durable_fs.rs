//! The file-system calls the receipt log makes while writing (create a directory or a new
//! file, write, `fdatasync`, `fsync`, fsync a directory, rename), behind one seam so that
//! tests can put a simulated power cut under the log.
//!
//! Production uses [`Disk::Real`]: the plain `std::fs` calls. Outside tests the enums have a
//! single variant, so every match compiles to the direct call.
//!
//! Tests use `sim::SimDisk` (test builds only). It writes through to real files (the page
//! cache, which the live log reads back and a kill -9 would keep) and also tracks what a
//! power cut keeps: per file the content as of its last sync plus the writes since, and
//! per directory the entries as of its last fsync. `SimDisk::power_cut_image` materialises
//! that durable state into a fresh directory, where the real recovery code reads it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Where the receipt log's writes go.
pub(crate) enum Disk {
    /// The real file system.
    Real,
    /// The simulated disk of a test.
    #[cfg(test)]
    Sim(std::sync::Arc<sim::SimDisk>),
}

impl Disk {
    /// Fails with `AlreadyExists` if the name is taken.
    pub(crate) fn create_dir(&self, path: &Path) -> io::Result<()> {
        match self {
            Disk::Real => fs::create_dir(path),
            #[cfg(test)]
            Disk::Sim(s) => s.create_dir(path),
        }
    }

    /// fsync of a directory: makes the entries created or renamed in it durable.
    pub(crate) fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match self {
            Disk::Real => File::open(path)?.sync_all(),
            #[cfg(test)]
            Disk::Sim(s) => s.sync_dir(path),
        }
    }

    /// A new, empty file opened for writing; fails if the name is taken.
    pub(crate) fn create_new(&self, path: &Path) -> io::Result<DiskFile> {
        match self {
            Disk::Real => OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map(DiskFile::Real),
            #[cfg(test)]
            Disk::Sim(s) => s.create_new(path).map(DiskFile::Sim),
        }
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self {
            Disk::Real => fs::rename(from, to),
            #[cfg(test)]
            Disk::Sim(s) => s.rename(from, to),
        }
    }
}

/// A file opened by [`Disk::create_new`].
pub(crate) enum DiskFile {
    Real(File),
    #[cfg(test)]
    Sim(sim::SimFile),
}

impl DiskFile {
    pub(crate) fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            DiskFile::Real(f) => f.write_all(buf),
            #[cfg(test)]
            DiskFile::Sim(f) => f.write_all(buf),
        }
    }

    /// `fdatasync`: the data written so far (and the size) is durable once this returns.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        match self {
            DiskFile::Real(f) => f.sync_data(),
            #[cfg(test)]
            DiskFile::Sim(f) => f.sync(sim::SyncKind::Data),
        }
    }

    /// `fsync`: data and metadata.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        match self {
            DiskFile::Real(f) => f.sync_all(),
            #[cfg(test)]
            DiskFile::Sim(f) => f.sync(sim::SyncKind::All),
        }
    }
}

/// A disk that can lose power. Everything it is asked to do happens on real files under
/// its base directory (so the live log works as usual) and is mirrored in a model of what
/// is durable; only calls that reach the model can be made to fail or do nothing.
#[cfg(test)]
pub(crate) mod sim {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs::{self, File, OpenOptions};
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, MutexGuard};

    /// Switches that make one kind of sync return Ok without making anything durable, as
    /// if the call had been removed from the code (or the drive ignored it). Each exists so
    /// that a test can show the power-cut check notices the missing sync.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Faults {
        /// `fdatasync` of a file (the writer's batch and segment-close syncs).
        pub sync_data_noop: bool,
        /// `fsync` of a file (the evidence temp file; a new, empty segment).
        pub sync_all_noop: bool,
        /// fsync of a directory.
        pub dir_sync_noop: bool,
    }

    /// What becomes, at the cut, of the writes made to a file since its last sync.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Unsynced {
        /// None of them reached the disk.
        Lost,
        /// A prefix of them (in write order) reached the disk, its length drawn from the
        /// seed: none, all, or a cut inside a write (a torn tail).
        Torn(u64),
        /// As `Torn`, and the file's new size reached the disk though the rest of the data
        /// did not: zeros up to the length written.
        TornZeros(u64),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum SyncKind {
        Data,
        All,
    }

    enum Node {
        Dir,
        File {
            durable: Vec<u8>,
            current: Vec<u8>,
            /// (offset, bytes) of each write since the last sync, in order.
            unsynced: Vec<(usize, Vec<u8>)>,
        },
    }

    struct State {
        nodes: Vec<Node>,
        /// Every name as the running system sees it.
        names: BTreeMap<PathBuf, usize>,
        /// The names a power cut keeps: each directory's entries as of its last fsync.
        durable_names: BTreeMap<PathBuf, usize>,
        ops: u64,
        /// Operations after this many fail, and do nothing: the power is gone.
        cut_after: Option<u64>,
        faults: Faults,
        fail_next_sync_data: bool,
    }

    pub(crate) struct SimDisk {
        /// An existing directory, taken as durable; everything the disk holds is below it.
        base: PathBuf,
        state: Mutex<State>,
    }

    fn other(msg: &str) -> io::Error {
        io::Error::other(msg.to_string())
    }

    impl SimDisk {
        pub(crate) fn new(base: &Path) -> Arc<SimDisk> {
            Arc::new(SimDisk {
                base: base.to_path_buf(),
                state: Mutex::new(State {
                    nodes: Vec::new(),
                    names: BTreeMap::new(),
                    durable_names: BTreeMap::new(),
                    ops: 0,
                    cut_after: None,
                    faults: Faults::default(),
                    fail_next_sync_data: false,
                }),
            })
        }

        pub(crate) fn base(&self) -> &Path {
            &self.base
        }

        pub(crate) fn set_faults(&self, faults: Faults) {
            self.lock().faults = faults;
        }

        /// The next `fdatasync` fails with an error (and makes nothing durable).
        pub(crate) fn fail_next_sync_data(&self) {
            self.lock().fail_next_sync_data = true;
        }

        /// Operations so far (including refused ones).
        pub(crate) fn ops(&self) -> u64 {
            self.lock().ops
        }

        /// The power goes after the disk's `n`-th operation: operations `n + 1` onwards fail.
        pub(crate) fn cut_after(&self, n: u64) {
            self.lock().cut_after = Some(n);
        }

        /// The power goes now: every later operation fails.
        pub(crate) fn cut(&self) {
            let mut st = self.lock();
            st.cut_after = Some(st.ops);
        }

        fn lock(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Counts one operation; refuses it once the power is gone.
        fn op(&self) -> io::Result<MutexGuard<'_, State>> {
            let mut st = self.lock();
            st.ops += 1;
            if st.cut_after.is_some_and(|c| st.ops > c) {
                return Err(other("simulated power cut"));
            }
            Ok(st)
        }

        /// Refuses paths outside the base: the model would not know them.
        fn check_inside(&self, path: &Path) -> io::Result<()> {
            if path.starts_with(&self.base) && path != self.base {
                Ok(())
            } else {
                Err(other("path outside the simulated disk"))
            }
        }

        /// Whether `dir` is the base or a directory the model holds.
        fn is_dir(&self, st: &State, dir: &Path) -> bool {
            dir == self.base
                || st
                    .names
                    .get(dir)
                    .is_some_and(|&n| matches!(st.nodes[n], Node::Dir))
        }

        fn add(st: &mut State, path: &Path, node: Node) -> usize {
            st.nodes.push(node);
            let n = st.nodes.len() - 1;
            st.names.insert(path.to_path_buf(), n);
            n
        }

        pub(crate) fn create_dir(&self, path: &Path) -> io::Result<()> {
            let mut st = self.op()?;
            self.check_inside(path)?;
            fs::create_dir(path)?;
            Self::add(&mut st, path, Node::Dir);
            Ok(())
        }

        pub(crate) fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            let mut st = self.op()?;
            if !self.is_dir(&st, dir) {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
            }
            if st.faults.dir_sync_noop {
                return Ok(());
            }
            let in_dir = |p: &Path| p.parent() == Some(dir);
            st.durable_names.retain(|p, _| !in_dir(p));
            let now: Vec<(PathBuf, usize)> = st
                .names
                .iter()
                .filter(|(p, _)| in_dir(p))
                .map(|(p, &n)| (p.clone(), n))
                .collect();
            st.durable_names.extend(now);
            Ok(())
        }

        pub(crate) fn create_new(self: &Arc<Self>, path: &Path) -> io::Result<SimFile> {
            let mut st = self.op()?;
            self.check_inside(path)?;
            let file = OpenOptions::new().write(true).create_new(true).open(path)?;
            let node = Self::add(
                &mut st,
                path,
                Node::File {
                    durable: Vec::new(),
                    current: Vec::new(),
                    unsynced: Vec::new(),
                },
            );
            Ok(SimFile {
                disk: self.clone(),
                node,
                file,
                pos: 0,
            })
        }

        pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            let mut st = self.op()?;
            self.check_inside(from)?;
            self.check_inside(to)?;
            if !st.names.contains_key(from) {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such file"));
            }
            fs::rename(from, to)?;
            let n = st.names.remove(from).expect("checked above");
            st.names.insert(to.to_path_buf(), n);
            Ok(())
        }

        /// Writes into `out` (an empty directory) what the base would hold after a power
        /// cut now: the durable names (or, with `keep_unsynced_names`, every current name:
        /// directory updates may also reach the disk without an fsync), each file with its
        /// durable content and, per `unsynced`, some of its later writes.
        pub(crate) fn power_cut_image(
            &self,
            out: &Path,
            unsynced: Unsynced,
            keep_unsynced_names: bool,
        ) -> io::Result<()> {
            let st = self.lock();
            let names = if keep_unsynced_names {
                &st.names
            } else {
                &st.durable_names
            };
            // A parent sorts before its children, so one pass sees every directory first.
            let mut made: BTreeSet<&Path> = BTreeSet::new();
            for (path, &n) in names {
                let parent = path.parent().expect("below the base");
                if parent != self.base && !made.contains(parent) {
                    continue; // its directory's entry did not survive
                }
                let target = out.join(path.strip_prefix(&self.base).expect("below the base"));
                match &st.nodes[n] {
                    Node::Dir => {
                        fs::create_dir(&target)?;
                        made.insert(path);
                    }
                    Node::File {
                        durable,
                        current,
                        unsynced: writes,
                    } => fs::write(
                        &target,
                        after_cut(durable, current.len(), writes, unsynced, n as u64),
                    )?,
                }
            }
            Ok(())
        }
    }

    /// A file's content after the cut.
    fn after_cut(
        durable: &[u8],
        current_len: usize,
        writes: &[(usize, Vec<u8>)],
        mode: Unsynced,
        salt: u64,
    ) -> Vec<u8> {
        let total: usize = writes.iter().map(|w| w.1.len()).sum();
        let keep = match mode {
            Unsynced::Lost => 0,
            Unsynced::Torn(seed) | Unsynced::TornZeros(seed) => {
                let r = mix(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                match r % 4 {
                    0 => 0,
                    1 => total,
                    _ => ((r >> 2) % (total as u64 + 1)) as usize,
                }
            }
        };
        let mut out = durable.to_vec();
        let mut left = keep;
        for (off, data) in writes {
            let k = left.min(data.len());
            if k == 0 {
                break;
            }
            if out.len() < off + k {
                out.resize(off + k, 0);
            }
            out[*off..off + k].copy_from_slice(&data[..k]);
            left -= k;
        }
        if matches!(mode, Unsynced::TornZeros(_)) && keep < total && out.len() < current_len {
            out.resize(current_len, 0);
        }
        out
    }

    /// SplitMix64: a well-mixed 64-bit value from a seed.
    pub(crate) fn mix(seed: u64) -> u64 {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A file of a [`SimDisk`], written sequentially from offset 0.
    pub(crate) struct SimFile {
        disk: Arc<SimDisk>,
        node: usize,
        file: File,
        pos: usize,
    }

    impl SimFile {
        pub(crate) fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            let mut st = self.disk.op()?;
            self.file.write_all(buf)?;
            let Node::File {
                current, unsynced, ..
            } = &mut st.nodes[self.node]
            else {
                unreachable!("a SimFile names a file node");
            };
            let end = self.pos + buf.len();
            if current.len() < end {
                current.resize(end, 0);
            }
            current[self.pos..end].copy_from_slice(buf);
            unsynced.push((self.pos, buf.to_vec()));
            self.pos = end;
            Ok(())
        }

        pub(crate) fn sync(&self, kind: SyncKind) -> io::Result<()> {
            let mut st = self.disk.op()?;
            if kind == SyncKind::Data && std::mem::take(&mut st.fail_next_sync_data) {
                return Err(other("injected failure"));
            }
            let noop = match kind {
                SyncKind::Data => st.faults.sync_data_noop,
                SyncKind::All => st.faults.sync_all_noop,
            };
            if noop {
                return Ok(());
            }
            let Node::File {
                durable,
                current,
                unsynced,
            } = &mut st.nodes[self.node]
            else {
                unreachable!("a SimFile names a file node");
            };
            durable.clone_from(current);
            unsynced.clear();
            Ok(())
        }
    }

    mod tests {
        use super::*;

        // Named for the receipt log, whose test filter runs it.
        #[test]
        fn receipt_log_sim_unsynced_writes_survive_as_a_prefix() {
            let writes = vec![(3, b"defg".to_vec()), (7, b"hij".to_vec())];
            assert_eq!(after_cut(b"abc", 10, &writes, Unsynced::Lost, 0), b"abc");
            let mut seen = BTreeSet::new();
            for seed in 0..200 {
                let t = after_cut(b"abc", 10, &writes, Unsynced::Torn(seed), 0);
                assert!(b"abcdefghij".starts_with(&t), "{t:?}");
                seen.insert(t.len());
                let z = after_cut(b"abc", 10, &writes, Unsynced::TornZeros(seed), 0);
                assert!(z.len() == 10 && z.starts_with(&t) && z[t.len()..].iter().all(|&b| b == 0));
            }
            assert_eq!(seen, (3..=10).collect(), "every cut point is drawn");
        }
    }
}
