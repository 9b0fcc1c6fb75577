//! `veritee-verify auditor-keygen`: a new auditor HPKE key pair (X25519).
//!
//! The secret goes to a file only its owner can read, written once: overwriting an
//! auditor's secret would make every transcript sealed to the old key unreadable. The
//! public key is printed for the launch config (`auditor_hpke_public_key`) and the policy
//! (`auditor_hpke_keys`).

use attestation::transcript::generate_auditor_keypair;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

pub fn run(out: &Path) -> ExitCode {
    let (secret, public) = generate_auditor_keypair();
    match write_secret(out, &secret) {
        Ok(()) => {
            eprintln!(
                "veritee-verify: auditor secret key written to {} (mode 0600); its public key, for auditor_hpke_public_key and auditor_hpke_keys:",
                out.display()
            );
            println!("{}", hex::encode(public));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veritee-verify: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}

/// Write `secret` as 64 hex digits and a newline to a new file, mode 0600 on Unix. An
/// existing file is never touched (`AlreadyExists`); a file that could not be written
/// whole is removed.
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file
        .write_all(format!("{}\n", hex::encode(secret)).as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(path);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use attestation::transcript::auditor_public_key;

    #[test]
    fn writes_once_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("veritee-keygen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auditor.key");
        let _ = std::fs::remove_file(&path);

        let (secret, public) = generate_auditor_keypair();
        write_secret(&path, &secret).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let read: [u8; 32] = hex::decode(text.trim_end()).unwrap().try_into().unwrap();
        assert_eq!(read, secret);
        assert_eq!(auditor_public_key(&read), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let (other, _) = generate_auditor_keypair();
        let err = write_secret(&path, &other).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_file() {
        let path = std::env::temp_dir()
            .join(format!("veritee-keygen-missing-{}", std::process::id()))
            .join("auditor.key");
        assert_eq!(
            write_secret(&path, &[1; 32]).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert!(!path.exists());
    }
}
