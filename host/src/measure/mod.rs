//! Launch measurements computed offline.
//!
//! | module | computes | from |
//! |---|---|---|
//! | [`ovmf`] | the OVMF footer GUID table and what it points to: SEV metadata (`ASEV`), SEV-ES reset EIP, SEV hashes-table and secret areas, TDX metadata (`TDVF`) | the firmware bytes |
//! | [`snp`] | the SEV-SNP launch digest (the attestation report's `MEASUREMENT`), also for a Coconut-SVSM launch | OVMF bytes, or hash-only inputs ([`snp::SnpFirmware::from_parts`]) |
//! | [`sev`] | the SEV and SEV-ES launch digests (SHA-256) | OVMF bytes |
//! | [`tdx`] | TDX `MRTD` (both page-add orders), RTMR replay of a CC event log, the measurement fields of a quote | TDVF metadata, event digests, quote bytes |
//! | [`eventlog`] | the RTMR events of a CC event log in JSON (dstack's format) | the log's bytes |
//! | [`hashes`] | the kernel / initrd / command-line hashes table QEMU places in guest memory for direct boot (`kernel-hashes=on`) | the three SHA-256 digests |
//! | [`vmsa`] | the initial VMSA page of each vCPU (QEMU, EC2, GCE, SVSM), and vCPU signatures by QEMU CPU model | reset EIP, guest features, vCPU signature |
//!
//! # Why our own implementation, not the `sev` crate
//!
//! The `sev` crate (virtee, version 8.0.0) has `measurement::snp`, matching sev-snp-measure,
//! but it was not used:
//!
//! * it builds only with `openssl` or `crypto_nossl`; the crate already brings `bitfield`,
//!   `bitflags`, `byteorder`, `uuid`, `dirs`, `lazy_static`, `iocuddle` and more, and
//!   `crypto_nossl` adds `p384`, `rsa` and `x509-cert`, for a few hundred lines of hashing
//!   that need only SHA-384 (`sha2`, already in the workspace);
//! * its entry points read files by path (`PathBuf`), while this crate does no I/O;
//! * its errors are one broad `MeasurementError` (slice, UUID, file, hex, ...), not the
//!   place of failure;
//! * its EC2 VMSA still sets `rdx = 0`, which sev-snp-measure has since changed to 0x600
//!   (the `sev-snp-measure-fixtures` manifest records both values; we match the current).
//!
//! So this module follows the published algorithm (AMD SEV-SNP ABI spec, `PAGE_INFO` /
//! `SNP_LAUNCH_UPDATE`; Intel TDX module spec, `TDH.MEM.PAGE.ADD` / `TDH.MR.EXTEND`),
//! written here with `sha2` only, and is checked on the real fixtures in
//! `testdata/vectors/measure` (`host/tests/measure_fixtures.rs`), including a
//! hardware-signed SNP measurement and a hardware TDX quote.

pub mod eventlog;
pub mod hashes;
pub mod ovmf;
pub mod sev;
pub mod snp;
pub mod tdx;
pub mod vmsa;

/// The size of a guest page and of every measured unit of firmware.
pub const PAGE_SIZE: usize = 4096;

/// A SHA-384 digest: the SNP launch digest, `MRTD`, an RTMR.
pub type Sha384Digest = [u8; 48];

/// A SHA-256 digest: the SEV and SEV-ES launch digests, kernel / initrd / command-line hashes.
pub type Sha256Digest = [u8; 32];

pub(crate) fn sha384(data: &[u8]) -> Sha384Digest {
    use sha2::Digest as _;
    sha2::Sha384::digest(data).into()
}

pub(crate) fn sha256(data: &[u8]) -> Sha256Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}
