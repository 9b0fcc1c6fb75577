//! Fuzz target: `attestation::fuzzing::bundle_certificate` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::bundle_certificate(data));
