//! The host side of a confidential guest: what the (untrusted) machine that launches a CVM
//! computes or prepares, so that a verifier knows what to expect before it sees evidence.
//!
//! - [`measure`] computes launch measurements **offline**, from the firmware file (or
//!   hash-only launch inputs) and the launch configuration: the SEV-SNP launch digest (the
//!   report's `MEASUREMENT`), the SEV and SEV-ES launch digests, the TDX `MRTD`, and the TDX
//!   RTMRs replayed from a CC event log. A policy can then pin the value instead of copying
//!   it from a first boot.
//! - [`launch_config`] reads the provider's launch configuration exactly as the runtime
//!   does and derives what the host puts in SNP `HOST_DATA` / TDX `MRCONFIGID`.
//! - [`policy`] builds the client policy that accepts exactly one image under one launch
//!   configuration, through the attestation crate's own policy types.
//! - [`qemu`] builds the QEMU command line of a launch.
//!
//! The `veritee-host` binary (`src/bin/veritee-host/`) puts them together: `measure`,
//! `policy`, `launch`; it reads files and checks the host, the library does no I/O.
//!
//! The algorithms are written here on `sha2` alone rather than taken from the `sev` crate;
//! [`measure`]'s documentation says why. Firmware and inputs are byte slices and values.
//! Malformed firmware gives a typed error that says where it is malformed; nothing panics
//! on input.
//!
//! Not here yet: a collateral cache (AMD KDS certificates, Intel PCS collateral) for the
//! verifier; the host only hands a directory it was given to the guest.

pub mod launch_config;
pub mod measure;
pub mod policy;
pub mod qemu;
