//! The collateral directory the host hands the guest: AMD VCEK/VLEK/ASK/ARK certificates
//! (PEM or DER) and CRLs, Intel TDX collateral (PCS JSON bodies, dcap-qvl JSON, PCK chain).
//! The runtime serves these with its evidence so clients need no network. Each file must be
//! recognised by [`attestation::inputs::EvidenceInputs`] now, at start-up, rather than
//! surprise every client later. Two subdirectories are allowed: `nvidia-rims/` holds NVIDIA
//! reference integrity manifests, read by `crate::gpu::rims`, and `nvidia-ocsp/` OCSP
//! responses for the GPUs' device chains, read by `crate::gpu::ocsp` (a bad file in either
//! is logged, not fatal).

use super::error::{PlatformError, PlatformErrorKind};
use attestation::inputs::EvidenceInputs;
use std::fs;
use std::io::Read;
use std::path::Path;

/// Largest single collateral file (Intel collateral JSON is tens of KiB, certificates and
/// CRLs a few KiB).
pub const MAX_COLLATERAL_FILE: u64 = 4 << 20;
/// The subdirectory of the collateral directory holding NVIDIA RIMs (`crate::gpu::rims`),
/// skipped here.
pub const NVIDIA_RIMS_SUBDIR: &str = "nvidia-rims";
/// The subdirectory holding OCSP responses for the GPUs' device chains
/// (`crate::gpu::ocsp`), skipped here.
pub const NVIDIA_OCSP_SUBDIR: &str = "nvidia-ocsp";

/// Largest collateral directory in total.
pub const MAX_COLLATERAL_TOTAL: u64 = 16 << 20;

/// Load every file in `dir`, sorted by name, skipping names that start with `.` (editor
/// leftovers, Kubernetes' `..data` links) and the `nvidia-rims` and `nvidia-ocsp`
/// subdirectories, following
/// symbolic links. Fails on any other subdirectory or special file, a file over [`MAX_COLLATERAL_FILE`], a total over
/// [`MAX_COLLATERAL_TOTAL`], a file not recognised as collateral, and on a report or quote
/// (evidence is made fresh, never loaded).
pub fn load_collateral_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, PlatformError> {
    load_with_caps(dir, MAX_COLLATERAL_FILE, MAX_COLLATERAL_TOTAL)
}

fn load_with_caps(
    dir: &Path,
    file_cap: u64,
    total_cap: u64,
) -> Result<Vec<(String, Vec<u8>)>, PlatformError> {
    let listing = fs::read_dir(dir).map_err(|e| PlatformError::io("read directory", dir, &e))?;
    let mut names = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| PlatformError::io("read directory", dir, &e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(PlatformError::new(
                PlatformErrorKind::CollateralUnrecognised,
                format!(
                    "{}: file name is not UTF-8",
                    dir.join(entry.file_name()).display()
                ),
            ));
        };
        if !name.starts_with('.') {
            names.push(name.to_owned());
        }
    }
    names.sort();

    let mut inputs = EvidenceInputs::new();
    let mut total = 0u64;
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let meta = fs::metadata(&path).map_err(|e| PlatformError::io("stat", &path, &e))?;
        if (name == NVIDIA_RIMS_SUBDIR || name == NVIDIA_OCSP_SUBDIR) && meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            return Err(PlatformError::new(
                PlatformErrorKind::CollateralUnrecognised,
                format!(
                    "{}: not a regular file (the collateral directory holds only files)",
                    path.display()
                ),
            ));
        }
        let too_large = |size: u64| {
            PlatformError::new(
                PlatformErrorKind::CollateralTooLarge,
                format!(
                    "{}: {size} bytes or more (at most {file_cap} per file)",
                    path.display()
                ),
            )
        };
        if meta.len() > file_cap {
            return Err(too_large(meta.len()));
        }
        // Read at most one byte past the cap: the size may change after stat.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        fs::File::open(&path)
            .and_then(|f| f.take(file_cap + 1).read_to_end(&mut bytes))
            .map_err(|e| PlatformError::io("read", &path, &e))?;
        if bytes.len() as u64 > file_cap {
            return Err(too_large(bytes.len() as u64));
        }
        total += bytes.len() as u64;
        if total > total_cap {
            return Err(PlatformError::new(
                PlatformErrorKind::CollateralTooLarge,
                format!(
                    "{}: {total} bytes up to and including {name} (at most \
                     {total_cap} in total)",
                    dir.display()
                ),
            ));
        }

        let had_evidence = inputs.platform().is_some();
        inputs.add(&name, &bytes).map_err(|r| {
            PlatformError::new(
                PlatformErrorKind::CollateralUnrecognised,
                format!("{}: {} ({:?})", dir.display(), r.detail, r.reason),
            )
        })?;
        if !had_evidence && inputs.platform().is_some() {
            return Err(PlatformError::new(
                PlatformErrorKind::CollateralUnrecognised,
                format!(
                    "{}: is a report or quote, not collateral (the runtime makes fresh evidence)",
                    path.display()
                ),
            ));
        }
        files.push((name, bytes));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{FakeAmd, FakeIntel, FakeProduct, TdxCollateralBuilder};

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    fn loads_amd_and_intel_collateral_sorted_and_skips_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let amd = FakeAmd::new(FakeProduct::Genoa);
        let vcek = amd.vcek().build();
        write(dir.path(), "vcek.der", &vcek.der);
        write(
            dir.path(),
            "cert_chain.pem",
            amd.vcek_chain_pem().as_bytes(),
        );
        write(dir.path(), "ark.crl", &amd.crl().build());
        let intel = FakeIntel::new();
        let collateral = TdxCollateralBuilder::new(&intel).build(&intel);
        for (i, (_, bytes)) in collateral.pcs_files().iter().enumerate() {
            write(dir.path(), &format!("tdx-{i}"), bytes);
        }
        write(dir.path(), ".notes.swp", b"not collateral, but hidden");

        let files = load_collateral_dir(dir.path()).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(
            names.starts_with(&["ark.crl", "cert_chain.pem"]),
            "{names:?}"
        );
        assert_eq!(*names.last().unwrap(), "vcek.der");
        assert!(!names.contains(&".notes.swp"));
        assert_eq!(files.last().unwrap().1, vcek.der);
        assert_eq!(names.len(), 3 + collateral.pcs_files().len());
    }

    #[test]
    fn an_unrecognised_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "readme.txt", b"hello");
        let e = load_collateral_dir(dir.path()).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CollateralUnrecognised);
        assert!(e.detail().contains("readme.txt"), "{e}");
    }

    #[test]
    fn a_report_is_not_collateral() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "report.bin",
            &crate::platform::test_evidence::snp_report([0; 64]),
        );
        let e = load_collateral_dir(dir.path()).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CollateralUnrecognised);
        assert!(e.detail().contains("report.bin"), "{e}");
    }

    #[test]
    fn size_caps_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = fs::File::create(dir.path().join("huge.der")).unwrap();
        f.set_len(MAX_COLLATERAL_FILE + 1).unwrap();
        let e = load_collateral_dir(dir.path()).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CollateralTooLarge);
        assert!(e.detail().contains("huge.der"), "{e}");
    }

    #[test]
    fn size_caps_in_total() {
        let dir = tempfile::tempdir().unwrap();
        let amd = FakeAmd::new(FakeProduct::Milan);
        write(dir.path(), "a-ark.der", amd.ark_der());
        write(dir.path(), "b-ask.der", amd.ask_der());
        let both = (amd.ark_der().len() + amd.ask_der().len()) as u64;
        assert_eq!(load_with_caps(dir.path(), both, both).unwrap().len(), 2);
        let e = load_with_caps(dir.path(), both, both - 1).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CollateralTooLarge);
        assert!(e.detail().contains("b-ask.der"), "{e}");
    }

    #[test]
    fn subdirectories_and_missing_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("nested")).unwrap();
        let e = load_collateral_dir(dir.path()).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CollateralUnrecognised);
        assert!(e.detail().contains("nested"), "{e}");

        let e = load_collateral_dir(&dir.path().join("absent")).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::Io);
        assert!(e.detail().contains("absent"), "{e}");

        // The RIM and OCSP subdirectories are not CPU collateral: skipped here, whatever
        // they hold.
        let dir = tempfile::tempdir().unwrap();
        for sub in [NVIDIA_RIMS_SUBDIR, NVIDIA_OCSP_SUBDIR] {
            fs::create_dir(dir.path().join(sub)).unwrap();
            write(&dir.path().join(sub), "x.xml", b"not read here");
        }
        assert!(load_collateral_dir(dir.path()).unwrap().is_empty());
        // A file of that name is still a file to recognise.
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), NVIDIA_RIMS_SUBDIR, b"hello");
        let e = load_collateral_dir(dir.path()).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CollateralUnrecognised);
        let e = load_collateral_dir(&dir.path().join("absent")).unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::Io);
        assert!(e.detail().contains("absent"), "{e}");
    }

    #[test]
    fn an_empty_directory_is_empty_collateral() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_collateral_dir(dir.path()).unwrap().is_empty());
    }
}
