//! Helpers for the tests that run the `veritee-host` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veritee-host"))
}

/// The result of one run: exit status, stdout, stderr.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Exit 0, or a panic showing what the binary said.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Exit 2 with `needle` in stderr, and nothing on stdout.
    pub fn refused(self, needle: &str) -> Self {
        assert_eq!(
            self.code, 2,
            "expected exit 2 with {needle:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr does not say {needle:?}:\n{}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Run the binary with `args`.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    bin().args(args).output().expect("veritee-host runs").into()
}

/// `testdata/vectors/measure/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    sim::vectors::platform_dir("measure").join(name)
}

pub fn debian_ovmf() -> PathBuf {
    fixture("debian-ovmf-2022.11-ovmfx64").join("OVMF.fd")
}

/// The last 4 KiB of an AmdSev OVMF build: SEV metadata with an SNP kernel-hashes section
/// (no TDX metadata that fits).
pub fn amdsev_suffix() -> PathBuf {
    fixture("sev-snp-measure-fixtures").join("ovmf_AmdSev_suffix.bin")
}

/// A fresh, empty directory under the test target's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("veritee-host")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic bytes (a 64-bit LCG), as a stand-in kernel or initrd.
pub fn synthetic(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as u8
        })
        .collect()
}

/// The synthetic command line of the test images.
pub const CMDLINE: &str = "console=ttyS0 veritee.listen=0.0.0.0:8443 quiet";

/// An image directory in the `images/` layout: synthetic kernel and initrd, [`CMDLINE`]
/// (with a trailing newline, as an editor leaves it), and `firmware` as `OVMF.fd`.
pub fn image_dir(name: &str, firmware: &Path) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("vmlinuz"), synthetic(300_000, 1)).unwrap();
    std::fs::write(dir.join("initrd"), synthetic(120_000, 2)).unwrap();
    std::fs::write(dir.join("cmdline"), format!("{CMDLINE}\n")).unwrap();
    std::fs::copy(firmware, dir.join("OVMF.fd")).unwrap();
    dir
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
