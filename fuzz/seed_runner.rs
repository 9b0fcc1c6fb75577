//! The seed-corpus runner shared by the crates that own fuzz targets: each one's
//! `tests/fuzz_seeds.rs` includes this file (`#[path = "../../fuzz/seed_runner.rs"]`), so
//! the same seeds and mutations run for every target without libFuzzer.
//!
//! Every file of `fuzz/corpus/<target>/` and deterministic mutations of it (prefixes,
//! single-byte changes, splices) go through the target's `fuzzing` function, and none may
//! panic. A panicking input is written to `fuzz/artifacts/<target>/` so that
//! `cargo fuzz run -s none <target> <file>` replays it.

// Not every including test uses every helper.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Seeds up to this size get every prefix; bigger ones about `MAX_STEPS` of them.
const ALL_PREFIXES_UP_TO: usize = 8 * 1024;
/// Prefixes of big seeds, and byte changes per seed.
const MAX_STEPS: usize = 256;
/// Panicking inputs listed and saved per target.
const MAX_SAVED: usize = 20;

/// `fuzz/`, from the including crate's directory (a sibling of it).
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The seeds of one target, sorted by file name; a missing or empty corpus fails.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "corpus {} is empty", dir.display());
    seeds
}

/// Call `feed(mutation name, bytes)` for the seed and each deterministic mutation of it;
/// `next` is another seed of the same target, for splices.
pub fn mutations(seed: &[u8], next: &[u8], feed: &mut dyn FnMut(String, &[u8])) {
    feed("as is".into(), seed);
    let len = seed.len();

    // Prefixes: every length for small seeds, a stride for big ones, always len - 1.
    let stride = if len <= ALL_PREFIXES_UP_TO {
        1
    } else {
        len.div_ceil(MAX_STEPS)
    };
    for cut in (0..len).step_by(stride).chain(len.checked_sub(1)) {
        feed(format!("prefix {cut}"), &seed[..cut]);
    }

    // Single-byte changes at a stride (every byte of small seeds).
    let stride = len.div_ceil(MAX_STEPS).max(1);
    let mut changed = seed.to_vec();
    for (k, at) in (0..len).step_by(stride).enumerate() {
        let old = changed[at];
        let new = match k % 5 {
            0 => old ^ 0x01,
            1 => old ^ 0x80,
            2 => !old,
            3 => 0x00,
            _ => 0xFF,
        };
        if new == old {
            continue;
        }
        changed[at] = new;
        feed(format!("byte {at} {old:#04x} -> {new:#04x}"), &changed);
        changed[at] = old;
    }

    // Splices.
    let mid = len / 2;
    let splice = |parts: &[&[u8]]| parts.concat();
    feed(
        "first half + second half of next seed".into(),
        &splice(&[&seed[..mid], &next[next.len() / 2..]]),
    );
    feed("twice".into(), &splice(&[seed, seed]));
    feed(
        "seed + separator + next seed".into(),
        &splice(&[seed, attestation::fuzzing::PART_SEPARATOR, next]),
    );
    feed(
        "byte inserted in the middle".into(),
        &splice(&[&seed[..mid], &[0x00], &seed[mid..]]),
    );
    if len > 0 {
        feed(
            "middle byte removed".into(),
            &splice(&[&seed[..mid], &seed[mid + 1..]]),
        );
    }
}

/// Feed every seed of `target` and its mutations to `run`; fail listing every panic.
pub fn run_target(target: &str, run: Target) {
    let seeds = seeds(target);
    let mut inputs = 0usize;
    let mut panics = Vec::new();
    for (i, (name, seed)) in seeds.iter().enumerate() {
        let next = &seeds[(i + 1) % seeds.len()].1;
        mutations(seed, next, &mut |mutation, bytes| {
            inputs += 1;
            if catch_unwind(AssertUnwindSafe(|| run(bytes))).is_err() {
                // The first few name and save their input; a broken genuine partner makes
                // every input panic, and thousands of copies would help nobody.
                let saved = if panics.len() < MAX_SAVED {
                    save_artifact(target, panics.len(), bytes)
                } else {
                    "not saved".into()
                };
                panics.push(format!(
                    "{target}: seed {name}, {mutation} (saved: {saved})"
                ));
            }
        });
    }
    assert!(
        panics.is_empty(),
        "{} of {inputs} inputs panicked:\n{}",
        panics.len(),
        panics[..panics.len().min(MAX_SAVED)].join("\n")
    );
    eprintln!("{target}: {} seeds, {inputs} inputs, no panic", seeds.len());
}

fn save_artifact(target: &str, n: usize, bytes: &[u8]) -> String {
    let dir = fuzz_dir().join("artifacts").join(target);
    let path = dir.join(format!("seed-test-panic-{n}"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("not saved: {e}"),
    }
}

/// Every fuzz target, `(name, crate)`, from `fuzz/fuzz_targets/<name>.rs`, each of which
/// must call `<crate>::fuzzing::<name>` and be a `[[bin]]` of `fuzz/Cargo.toml`.
pub fn fuzz_targets() -> Vec<(String, String)> {
    let dir = fuzz_dir().join("fuzz_targets");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut targets: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("fuzz target").path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&path).expect("fuzz target source");
            let krate = ["attestation", "client", "enclave"]
                .into_iter()
                .find(|k| source.contains(&format!("{k}::fuzzing::{name}(")))
                .unwrap_or_else(|| {
                    panic!("{} calls no <crate>::fuzzing::{name}(data)", path.display())
                });
            assert!(
                manifest.contains(&format!(
                    "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
                )),
                "fuzz/Cargo.toml has no [[bin]] for {name}"
            );
            (name, krate.to_owned())
        })
        .collect();
    targets.sort();
    targets
}

/// The fuzz targets that call `krate`'s fuzzing module must be exactly `owned` (the ones
/// its seed test runs), each with a corpus directory.
pub fn check_owned_targets(krate: &str, owned: &[&str]) {
    let mut calling: Vec<String> = fuzz_targets()
        .into_iter()
        .filter(|(_, k)| k == krate)
        .map(|(name, _)| name)
        .collect();
    calling.sort();
    let mut owned: Vec<String> = owned.iter().map(|s| s.to_string()).collect();
    owned.sort();
    assert_eq!(
        calling, owned,
        "the fuzz targets calling {krate}::fuzzing must be the ones its seed test runs"
    );
    for name in &owned {
        let dir = fuzz_dir().join("corpus").join(name);
        assert!(dir.is_dir(), "{} is missing", dir.display());
    }
}
