//! Fuzz target: `attestation::fuzzing::evidence_bundle` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::evidence_bundle(data));
