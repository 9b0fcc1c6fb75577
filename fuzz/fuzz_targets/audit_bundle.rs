//! Fuzz target: `attestation::fuzzing::audit_bundle` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::audit_bundle(data));
