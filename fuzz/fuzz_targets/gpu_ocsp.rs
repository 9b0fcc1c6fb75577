//! Fuzz target: `attestation::fuzzing::gpu_ocsp` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::gpu_ocsp(data));
