//! The fuzz targets' seed corpus (`fuzz/corpus/<target>/`) as an ordinary test: every seed
//! and deterministic mutations of it (prefixes, single-byte changes, splices) go through
//! the target's `attestation::fuzzing` function, and none may panic. A panicking input is
//! written to `fuzz/artifacts/<target>/` so `cargo fuzz run <target> <file>` replays it.

use attestation::fuzzing;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

type Target = fn(&[u8]);

/// Every fuzz target, named as its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
const TARGETS: [(&str, Target); 6] = [
    ("snp_report", fuzzing::snp_report),
    ("snp_certificate", fuzzing::snp_certificate),
    ("tdx_quote", fuzzing::tdx_quote),
    ("tdx_collateral", fuzzing::tdx_collateral),
    ("evidence_inputs", fuzzing::evidence_inputs),
    ("policy_toml", fuzzing::policy_toml),
];

/// Seeds up to this size get every prefix; bigger ones about `MAX_STEPS` of them.
const ALL_PREFIXES_UP_TO: usize = 8 * 1024;
/// Prefixes of big seeds, and byte changes per seed.
const MAX_STEPS: usize = 256;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The seeds of one target, sorted by file name; a missing or empty corpus fails.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
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
fn mutations(seed: &[u8], next: &[u8], feed: &mut dyn FnMut(String, &[u8])) {
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
        &splice(&[seed, fuzzing::PART_SEPARATOR, next]),
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

/// Feed every seed of `target` and its mutations to it; fail listing every panic.
fn run_target(target: &str) {
    let run = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a known target");
    let seeds = seeds(target);
    let mut inputs = 0usize;
    let mut panics = Vec::new();
    for (i, (name, seed)) in seeds.iter().enumerate() {
        let next = &seeds[(i + 1) % seeds.len()].1;
        mutations(seed, next, &mut |mutation, bytes| {
            inputs += 1;
            if catch_unwind(AssertUnwindSafe(|| run(bytes))).is_err() {
                let saved = save_artifact(target, panics.len(), bytes);
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
        panics.join("\n")
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

#[test]
fn every_corpus_directory_has_a_target() {
    let dir = fuzz_dir().join("corpus");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("corpus entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let mut expected: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "fuzz/corpus/* must match the fuzz targets");
    for (name, _) in TARGETS {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
    }
}

#[test]
fn snp_report_seeds() {
    run_target("snp_report");
}

#[test]
fn snp_certificate_seeds() {
    run_target("snp_certificate");
}

#[test]
fn tdx_quote_seeds() {
    run_target("tdx_quote");
}

#[test]
fn tdx_collateral_seeds() {
    run_target("tdx_collateral");
}

#[test]
fn evidence_inputs_seeds() {
    run_target("evidence_inputs");
}

#[test]
fn policy_toml_seeds() {
    run_target("policy_toml");
}

/// Regenerate the `sim-*` seeds (FAKE evidence from veritee-sim (lib `sim`), shapes the real corpus
/// lacks): `cargo test -p veritee-attestation --test fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes fuzz/corpus/*/sim-*; run by hand after changing veritee-sim"]
fn regenerate_sim_seeds() {
    use sim::{
        FakeAmd, FakeIntel, FakeProduct, SnpReportBuilder, TdxCollateralBuilder, TdxQuoteBuilder,
        TdxQuoteFormat,
    };
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    };
    let join = |parts: &[&[u8]]| parts.join(fuzzing::PART_SEPARATOR);

    // SEV-SNP: a Turin VLEK-signed v5 report with its fake chain, and an ARK CRL that
    // revokes a serial (no real AMD CRL is in the corpus).
    let amd = FakeAmd::new(FakeProduct::Turin);
    let vlek = amd.vlek().build();
    let report = SnpReportBuilder::for_leaf(&vlek).sign(&vlek);
    let crl = amd
        .crl()
        .revoke(&[0x01, 0x02], sim::DEFAULT_AT - 86_400)
        .build();
    write("snp_report", "sim-turin-vlek.bin", &report);
    write("snp_certificate", "sim-turin-vlek.der", &vlek.der);
    write("snp_certificate", "sim-turin-ark-crl-revoked.der", &crl);
    write(
        "evidence_inputs",
        "sim-snp-turin-vlek-chain-crl.bin",
        &join(&[
            &report,
            vlek.pem().as_bytes(),
            amd.vlek_chain_pem().as_bytes(),
            &crl,
        ]),
    );

    // TDX: a v5 TD 1.5 quote with trailing bytes, and its collateral as PCS files.
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new()
        .format(TdxQuoteFormat::V5Td15)
        .trailing_bytes(&[0; 16])
        .build(&intel, &pck);
    let collateral = TdxCollateralBuilder::new(&intel).build(&intel);
    let files = collateral.pcs_files();
    let pcs: Vec<&[u8]> = files.iter().map(|(_, bytes)| &bytes[..]).collect();
    write("tdx_quote", "sim-v5-td15-trailing.dat", &quote);
    write("tdx_collateral", "sim-pcs-parts.bin", &join(&pcs));
    write(
        "evidence_inputs",
        "sim-tdx-v5-quote-pcs-parts.bin",
        &join(&[&[&quote[..]], &pcs[..]].concat()),
    );
}
