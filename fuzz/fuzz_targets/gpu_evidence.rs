//! Fuzz target: `attestation::fuzzing::gpu_evidence` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::gpu_evidence(data));
