//! The shared real-hardware vector corpus and the `[expect]` table of each vector's
//! `MANIFEST.toml` (see the corpus README, "Machine-readable expectations").
//!
//! The corpus root is `$VERITEE_VECTORS`, else `shared/vectors` beside the repository
//! (`<repo>/../shared/vectors`). When it is missing, tests print a `SKIPPED` note and pass,
//! except under `CI=true`, where a missing corpus is a failure (a panic).

use std::path::{Path, PathBuf};

/// The corpus root, or `None` (after a `SKIPPED` note) when it is missing.
///
/// # Panics
///
/// When the corpus is missing and `CI=true`.
pub fn corpus_root() -> Option<PathBuf> {
    let dir = std::env::var_os("VERITEE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    existing(dir)
}

/// The corpus folder of one platform (`snp`, `tdx`, ...), or `None` (after a `SKIPPED`
/// note) when it is missing.
///
/// # Panics
///
/// When the folder is missing and `CI=true`.
pub fn platform_dir(platform: &str) -> Option<PathBuf> {
    existing(corpus_root()?.join(platform))
}

/// `dir` if it is a folder; otherwise the CI rule: panic under `CI=true`, else a note.
fn existing(dir: PathBuf) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "vector corpus missing at {} (required under CI=true)",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: vector corpus missing at {}; set VERITEE_VECTORS",
        dir.display()
    );
    None
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
/// without a manifest or without `[expect]` (bare roots, chains) are left out. `None` when
/// the corpus is missing (see [`platform_dir`]).
///
/// # Panics
///
/// When a manifest is malformed, or the corpus is missing and `CI=true`.
pub fn expectations(platform: &str) -> Option<Vec<Expectation>> {
    let root = platform_dir(platform)?;
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
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    #[test]
    fn both_platforms_have_well_formed_expectations() {
        for platform in ["snp", "tdx"] {
            let Some(all) = expectations(platform) else {
                return;
            };
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
