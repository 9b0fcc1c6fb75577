//! The real-hardware vector corpus (`testdata/vectors/` in this repository) and the
//! `[expect]` table of each vector's `MANIFEST.toml` (see the corpus README,
//! "Machine-readable expectations").
//!
//! The corpus root is `$VERITEE_VECTORS`, else the repository's own `testdata/vectors`.
//! A missing corpus, platform folder or named vector is a failure (a panic), never a
//! silent skip: the corpus is part of the repository.

use std::path::{Path, PathBuf};

/// The repository's own copy of the corpus.
pub fn bundled_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

/// The corpus root: `$VERITEE_VECTORS`, else [`bundled_root`].
///
/// # Panics
///
/// When it is not a folder.
pub fn corpus_root() -> PathBuf {
    let dir = std::env::var_os("VERITEE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(bundled_root);
    existing(dir)
}

/// The corpus folder of one platform (`snp`, `tdx`, `measure`, ...).
///
/// # Panics
///
/// When the folder is missing.
pub fn platform_dir(platform: &str) -> PathBuf {
    existing(corpus_root().join(platform))
}

/// One vector's folder, e.g. `vector_dir("snp", "oak-genoa-v5-vcek")`.
///
/// # Panics
///
/// When the folder is missing: a test that names a vector must not pass without it.
pub fn vector_dir(platform: &str, name: &str) -> PathBuf {
    existing(platform_dir(platform).join(name))
}

/// `dir` if it is a folder; a panic that says how to get it otherwise.
fn existing(dir: PathBuf) -> PathBuf {
    if !dir.is_dir() {
        panic!(
            "vector corpus folder missing: {} (the corpus is testdata/vectors in the \
             repository; VERITEE_VECTORS overrides it)",
            dir.display()
        );
    }
    dir
}

/// One vector's `[expect]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The vector's folder name.
    pub name: String,
    /// The vector's folder.
    pub dir: PathBuf,
    /// Input files, relative to [`Expectation::dir`], in no particular order.
    pub inputs: Vec<String>,
    /// The verification time (RFC 3339).
    pub at: String,
    /// `accepted` or `rejected`.
    pub verdict: String,
    /// Intel's TCB status name, where it applies.
    pub tcb_status: Option<String>,
    /// `tcb` or `collateral`, where it applies.
    pub reason_class: Option<String>,
}

impl Expectation {
    /// The inputs as paths.
    pub fn input_paths(&self) -> Vec<PathBuf> {
        self.inputs.iter().map(|i| self.dir.join(i)).collect()
    }

    /// The inputs as (file name, bytes), in manifest order.
    ///
    /// # Panics
    ///
    /// When an input cannot be read.
    pub fn read_inputs(&self) -> Vec<(String, Vec<u8>)> {
        self.inputs
            .iter()
            .map(|name| {
                let path = self.dir.join(name);
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (name.clone(), bytes)
            })
            .collect()
    }
}

/// Every `[expect]` table under one platform's folder, sorted by folder name; vectors
/// without a manifest or without `[expect]` (bare roots, chains) are left out.
///
/// # Panics
///
/// When a manifest is malformed or the corpus is missing.
pub fn expectations(platform: &str) -> Vec<Expectation> {
    let root = platform_dir(platform);
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let manifest = dir.join("MANIFEST.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let Some(expect) = doc.get("expect").and_then(|e| e.as_table()) else {
            continue;
        };
        let get = |k: &str| expect.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let required = |k: &str| {
            get(k).unwrap_or_else(|| panic!("{}: [expect] lacks {k}", manifest.display()))
        };
        let inputs = expect
            .get("inputs")
            .and_then(|v| v.as_array())
            .unwrap_or_else(|| panic!("{}: [expect] lacks inputs", manifest.display()))
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{}: non-string input", manifest.display()))
                    .to_owned()
            })
            .collect();
        out.push(Expectation {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            inputs,
            at: required("at"),
            verdict: required("verdict"),
            tcb_status: get("tcb_status"),
            reason_class: get("reason_class"),
            dir,
        });
    }
    out
}

/// The `[expect]` table of one named vector.
///
/// # Panics
///
/// When the vector or its `[expect]` table is missing.
pub fn expectation(platform: &str, name: &str) -> Expectation {
    expectations(platform)
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("vector {platform}/{name} has no [expect] table in the corpus"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    #[test]
    fn both_platforms_have_well_formed_expectations() {
        for platform in ["snp", "tdx"] {
            let all = expectations(platform);
            assert!(all.len() >= 7, "only {} {platform} expectations", all.len());
            let mut names: Vec<_> = all.iter().map(|e| e.name.clone()).collect();
            names.sort();
            assert_eq!(
                names,
                all.iter().map(|e| e.name.clone()).collect::<Vec<_>>()
            );
            for e in &all {
                assert!(!e.inputs.is_empty(), "{}", e.name);
                assert!(
                    OffsetDateTime::parse(&e.at, &Rfc3339).is_ok(),
                    "{}: at = {}",
                    e.name,
                    e.at
                );
                assert!(
                    ["accepted", "rejected"].contains(&e.verdict.as_str()),
                    "{}",
                    e.name
                );
                assert!(e.input_paths().iter().all(|p| p.is_file()), "{}", e.name);
                assert_eq!(e.read_inputs().len(), e.inputs.len(), "{}", e.name);
            }
        }
    }
}
