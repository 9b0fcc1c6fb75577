//! The host side of a confidential guest: what the (untrusted) machine that launches a CVM
//! computes or prepares, so that a verifier knows what to expect before it sees evidence.
//!
//! Today this crate does one job: [`measure`] computes launch measurements **offline**, from
//! the firmware file (or hash-only launch inputs) and the launch configuration, and nothing
//! else: the SEV-SNP launch digest (the report's `MEASUREMENT`), the SEV and SEV-ES launch
//! digests, the TDX `MRTD`, and the TDX RTMRs replayed from a CC event log. A policy can
//! then pin the value instead of copying it from a first boot.
//!
//! Later jobs (not here yet): launching QEMU with a given configuration, a collateral cache
//! (AMD KDS certificates, Intel PCS collateral) for the verifier, and policy generation from
//! measured inputs.
//!
//! The algorithms are written here on `sha2` alone rather than taken from the `sev` crate;
//! [`measure`]'s documentation says why. The crate does no I/O: firmware and inputs are byte slices and values. Malformed
//! firmware gives a typed error that says where it is malformed; nothing panics on input.

pub mod measure;
