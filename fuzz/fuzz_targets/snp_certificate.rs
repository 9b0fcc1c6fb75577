//! Fuzz target: `attestation::fuzzing::snp_certificate` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::snp_certificate(data));
