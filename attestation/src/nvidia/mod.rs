//! NVIDIA GPU attestation (Hopper): evidence parsed and verified offline, claims for
//! policy, and reference integrity manifests.
//!
//! A confidential VM's CPU report says nothing about a GPU passed through to it; the GPU
//! attests itself. Its evidence is an SPDM 1.1 GET_MEASUREMENTS request (carrying the
//! caller's nonce) and the signed MEASUREMENTS response (64 measurement blocks and
//! NVIDIA's opaque data: driver and VBIOS versions, SKUs, FWID, ...), signed with ECDSA
//! P-384 by a per-boot key whose certificate chains to the NVIDIA Device Identity CA.
//!
//! Layers, as for the CPU platforms (the README's trust rules):
//! - [`spdm`] and [`opaque`]: the evidence bytes (binary or hex text) as typed fields
//!   ([`SpdmEvidence::parse`]), bounds-checked, with offsets in every rejection,
//! - [`NvidiaTrustAnchors`]: the pinned roots (device identity, RIM signing), compared by
//!   SHA-256 of their DER,
//! - [`verify()`]: the device chain to the pinned root at a given time, the leaf's FWID
//!   (TCG DICE TcbInfo extension) against the evidence's, the SPDM signature over the
//!   received bytes and the requester nonce against the caller's; only it (and
//!   [`GpuVerifier`]) builds a [`VerifiedGpuEvidence`], whose [`GpuClaims`] a policy reads.
//!
//! - [`rim`]: reference integrity manifests (SWID tags with an enveloped XMLDSig): parsed,
//!   their signing chain verified to the pinned RIM root, their XMLDSig verified with a
//!   Canonical XML 1.1 implementation for exactly the subset NVIDIA's manifests use
//!   ([`verify_rim`] builds a [`VerifiedRim`]); [`compare_measurements`] holds verified
//!   evidence against them.
//!
//! - [`ocsp`]: OCSP responses (RFC 6960) for the device chain, fetched beforehand from
//!   NVIDIA's OCSP service and given to [`verify_with_ocsp`] as inputs.
//!
//! Revocation is checked only as far as OCSP responses are supplied
//! ([`VerifiedGpuEvidence::revocation_checked`]); RIM signing chains' revocation is not
//! checked ([`VerifiedRim::revocation_checked`]).

mod certs;
pub mod ocsp;
pub mod opaque;
pub mod rim;
pub mod spdm;
mod verify;
mod xml;

#[cfg(test)]
mod tests;

pub use certs::{
    fwid_of_certificate, NvidiaTrustAnchors, DEVICE_ROOT_SHA256, OID_TCG_DICE_TCB_INFO,
    RIM_ROOT_SHA256,
};
pub use opaque::{FeatureFlag, OpaqueData, OpaqueField};
pub use rim::{
    compare_measurements, verify_rim, MeasurementComparison, MeasurementMismatch, Rim,
    RimMeasurement, VerifiedRim,
};
pub use spdm::{
    looks_like_gpu_evidence, GetMeasurementsRequest, MeasurementBlock, MeasurementsResponse,
    SpdmEvidence,
};
pub use verify::{
    parse_evidence, verify, verify_with_ocsp, Architecture, ExpectedNonce, GpuClaims, GpuVerifier,
    VerifiedGpuEvidence,
};

/// Certificates (DER) of a PEM chain text, in order (NVIDIA chains are leaf first).
pub fn chain_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, crate::Rejection> {
    crate::x509::certs_from_pem(text)
}

/// Fuzzing entry ([`crate::fuzzing`]): the certificate DER readers on arbitrary bytes.
pub(crate) fn fuzz_der(bytes: &[u8]) {
    certs::fuzz_der(bytes)
}

/// Fuzzing entry ([`crate::fuzzing`]): the OCSP response parser on arbitrary bytes.
pub(crate) fn fuzz_ocsp(bytes: &[u8]) {
    ocsp::fuzz(bytes)
}

/// Fuzzing entry ([`crate::fuzzing`]): the XML reader and canonicalization on arbitrary
/// bytes; a canonical form must canonicalize to itself.
pub(crate) fn fuzz_xml(bytes: &[u8]) {
    xml::fuzz(bytes)
}
