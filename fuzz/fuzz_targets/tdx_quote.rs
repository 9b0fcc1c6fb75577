//! Fuzz target: `attestation::fuzzing::tdx_quote` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::tdx_quote(data));
