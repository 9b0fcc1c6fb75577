//! The vector corpus is byte-identical to what was vendored: every file listed in
//! `testdata/vectors.sha256` is present with that SHA-256, no file is missing or extra, and
//! every file a `MANIFEST.toml` describes has the size and SHA-256 its manifest states (the
//! provenance record of the upstream bytes).

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file under `root`, by its path relative to `root` with `/` separators.
fn files_under(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, path);
            }
        }
    }
    out
}

fn checksum_list() -> BTreeMap<String, String> {
    let list = sim::vectors::bundled_root().with_extension("sha256");
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
    text.lines()
        .map(|line| {
            let (hash, path) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("{}: malformed line {line:?}", list.display()));
            assert_eq!(hash.len(), 64, "{}: {line:?}", list.display());
            (path.to_owned(), hash.to_owned())
        })
        .collect()
}

#[test]
fn corpus_matches_its_checksum_list() {
    let root = sim::vectors::corpus_root();
    let expected = checksum_list();
    assert!(
        expected.len() >= 130,
        "checksum list has only {} entries",
        expected.len()
    );
    let present = files_under(&root);
    let missing: Vec<_> = expected
        .keys()
        .filter(|p| !present.contains_key(*p))
        .collect();
    let extra: Vec<_> = present
        .keys()
        .filter(|p| !expected.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from {}: {missing:?}",
        root.display()
    );
    assert!(extra.is_empty(), "not in the checksum list: {extra:?}");
    let changed: Vec<_> = present
        .iter()
        .filter(|(rel, path)| sha256_hex(&std::fs::read(path).unwrap()) != expected[*rel])
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        changed.is_empty(),
        "bytes differ from the checksum list: {changed:?}"
    );
    eprintln!(
        "vector corpus at {}: {} files, all byte-identical",
        root.display(),
        present.len()
    );
}

#[test]
fn every_manifest_file_entry_matches_its_bytes() {
    let root = sim::vectors::corpus_root();
    let mut checked = 0;
    for (rel, path) in files_under(&root) {
        if !rel.ends_with("/MANIFEST.toml") {
            continue;
        }
        let dir = path.parent().unwrap();
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let Some(entries) = doc.get("file").and_then(|f| f.as_array()) else {
            continue;
        };
        for entry in entries {
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_else(|| panic!("{rel}: [[file]] without a name"));
            let file = dir.join(name);
            let bytes =
                std::fs::read(&file).unwrap_or_else(|e| panic!("{rel}: listed file {name}: {e}"));
            if let Some(size) = entry.get("size").and_then(|s| s.as_integer()) {
                assert_eq!(bytes.len() as i64, size, "{rel}: size of {name}");
            }
            if let Some(hash) = entry.get("sha256").and_then(|s| s.as_str()) {
                assert_eq!(
                    sha256_hex(&bytes),
                    hash.to_lowercase(),
                    "{rel}: sha256 of {name}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 90, "only {checked} manifest hashes checked");
    eprintln!("manifest hashes checked: {checked}");
}

/// What of the corpus the tests exercise beyond its checksums, printed for the record.
#[test]
fn corpus_use_is_accounted_for() {
    let count = |platform: &str| {
        std::fs::read_dir(sim::vectors::platform_dir(platform))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count()
    };
    let (snp, tdx, measure, nvidia) = (
        count("snp"),
        count("tdx"),
        count("measure"),
        count("nvidia"),
    );
    let snp_expect = sim::vectors::expectations("snp").len();
    let tdx_expect = sim::vectors::expectations("tdx").len();
    assert!(snp >= 10 && tdx >= 8 && measure >= 8 && nvidia >= 5);
    eprintln!(
        "corpus: snp {snp} folders ({snp_expect} with [expect], verified by \
         verifier/tests/vectors.rs; roots and chains used by attestation's SNP tests), tdx \
         {tdx} ({tdx_expect} with [expect]), measure {measure} (host/tests/measure_fixtures.rs \
         and attestation/tests/measure_evidence.rs), nvidia {nvidia} (GPU evidence, chains and RIMs: \
         attestation/tests/nvidia_vectors.rs)"
    );
}

/// The NVIDIA vectors are verified by `attestation/tests/nvidia_vectors.rs` (GPU evidence,
/// device chains, trustee's negative chains, RIMs); this keeps that suite naming every
/// NVIDIA vector folder, so that a new one cannot sit in the corpus only checksummed.
#[test]
fn nvidia_vectors_are_verified_by_the_attestation_suite() {
    let suite = sim::vectors::bundled_root().join("../../attestation/tests/nvidia_vectors.rs");
    let text =
        std::fs::read_to_string(&suite).unwrap_or_else(|e| panic!("{}: {e}", suite.display()));
    let dir = sim::vectors::platform_dir("nvidia");
    let mut named = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            text.contains(&format!("\"{name}\"")),
            "NVIDIA vector {name} is not named by {}",
            suite.display()
        );
        named += 1;
    }
    assert!(named >= 5, "only {named} NVIDIA vector folders");
}
