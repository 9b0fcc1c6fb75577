//! The simulated SEV-SNP TEE behind the guest runtime's `--simulate` mode.
//!
//! # What it is
//!
//! A development stand-in for an AMD SEV-SNP guest: [`SimulatedSnp::report`]
//! returns reports in the real 1184-byte SNP ABI format (version 3, Genoa),
//! signed like real hardware (ECDSA P-384/SHA-384 over bytes
//! `0x000..0x2A0`) by a VCEK whose certificate chains to an ASK and a
//! self-signed ARK, with AMD's names (`ARK-Genoa`, `SEV-Genoa`, `SEV-VCEK`),
//! RSA-4096 RSASSA-PSS/SHA-384 signatures and VCEK extensions. The very same
//! verifier code that checks real evidence therefore runs end to end.
//!
//! Unlike the deterministic fake roots elsewhere in this crate (public
//! fixture keys), the chain here is generated with **fresh random keys for
//! each directory** on first use, so trusting one developer's simulated
//! root does not trust anyone else's.
//!
//! # Why it is never trusted
//!
//! The keys sit in an ordinary directory, readable by whoever controls the
//! machine, and the "hardware" is this process: a simulated report proves
//! nothing about isolation, the launch measurement is a constant
//! ([`SimulatedSnp::measurement`]), and every certificate carries
//! `OU=`[`SIMULATED_ORG_UNIT`] so a verifier can say "simulated root not
//! trusted" instead of a generic untrusted-root error. AMD's pinned ARKs
//! never chain to it.
//!
//! # How a policy trusts it
//!
//! Only explicitly, for development: a policy lists the simulated ARK's
//! SHA-256 ([`SimulatedSnp::ark_sha256`], also written to `README.txt` in the
//! directory) under `dangerous_trusted_roots`, and the verifier adds that
//! ARK as an extra anchor (`SnpTrustAnchors::dangerous_trust_ark`). The
//! runtime writes that policy; no production policy should contain it.
//!
//! # The directory
//!
//! `ark.cert.pem`, `ask.cert.pem`, `vcek.cert.pem` (PEM certificates),
//! `ark.key.pem`, `ask.key.pem`, `vcek.key.pem` (PKCS#8 `PRIVATE KEY` PEM,
//! mode 0600) and `README.txt`, in a directory of mode 0700. Generation
//! writes everything into a temporary sibling directory and renames it into
//! place, so concurrent first uses end with one consistent chain (the
//! losers load the winner's). Loading checks that each key matches its
//! certificate, the names, and the chain signatures.
//!
//! Certificates are valid from one day before creation to ten years after.
//!
//! # Revocation
//!
//! Like AMD's KDS, the simulated platform serves a CRL signed by its ARK
//! ([`SimulatedSnp::ark_crl`], revoking nothing), so the policy the runtime
//! writes can require one (`revocation = "require_crl"`) and the simulated
//! runtime exercises the same revocation check as real evidence. It is made
//! on first use, valid from a day before to [`CRL_VALIDITY_DAYS`] after, and
//! not stored.

use crate::amd::{amd_name_with_ou, amd_oids, AmdCertProfile, FakeAmd, FakeProduct};
use crate::der;
use crate::keys::{FakeP384Key, FakeRsaKey};
use crate::snp::{SnpReportBuilder, SnpTcb};
use crate::x509 as x509_gen;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Organisational unit written into every certificate of a simulated chain;
/// verifiers use it to say "simulated root not trusted" instead of a
/// generic untrusted-root error.
pub const SIMULATED_ORG_UNIT: &str = "veritee SIMULATED TEE - development only - never trust";

/// The simulated product.
const PRODUCT: FakeProduct = FakeProduct::Genoa;

/// Report version written (the current Genoa firmware's; the verifier
/// accepts 2, 3 and 5).
const REPORT_VERSION: u32 = 3;

/// The launch measurement is SHA-384 of this label.
const MEASUREMENT_LABEL: &str = "veritee simulated SEV-SNP launch measurement v1";

/// The CHIP_ID (VCEK hwID) is SHA-512 of this label and the VCEK's
/// SubjectPublicKeyInfo DER: one value per generated chip key.
const CHIP_ID_LABEL: &str = "veritee simulated SEV-SNP chip id v1/";

const ARK_CERT: &str = "ark.cert.pem";
const ARK_KEY: &str = "ark.key.pem";
const ASK_CERT: &str = "ask.cert.pem";
const ASK_KEY: &str = "ask.key.pem";
const VCEK_CERT: &str = "vcek.cert.pem";
const VCEK_KEY: &str = "vcek.key.pem";
const README: &str = "README.txt";

const DAY: i64 = 86_400;

/// How long the simulated ARK's CRL stays current after it is made: a year, like the
/// runtime's attested TLS certificate that carries it.
pub const CRL_VALIDITY_DAYS: i64 = 365;

/// Why a simulated TEE directory could not be loaded or created: the file
/// (or directory) concerned and what was wrong with it.
#[derive(Debug)]
pub struct SimError {
    path: PathBuf,
    what: String,
    io: Option<io::Error>,
}

impl SimError {
    fn new(path: &Path, what: impl Into<String>) -> Self {
        SimError {
            path: path.to_owned(),
            what: what.into(),
            io: None,
        }
    }

    fn io(path: &Path, what: impl Into<String>, error: io::Error) -> Self {
        SimError {
            path: path.to_owned(),
            what: what.into(),
            io: Some(error),
        }
    }

    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulated TEE: {}: {}", self.path.display(), self.what)?;
        if let Some(error) = &self.io {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A simulated SEV-SNP platform: a development ARK/ASK/VCEK chain (random
/// keys, stored in a directory) and a report signer. See the module docs.
#[derive(Clone)]
pub struct SimulatedSnp {
    dir: PathBuf,
    ark_key: FakeRsaKey,
    ask_key: FakeRsaKey,
    vcek_key: FakeP384Key,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
    vcek_der: Vec<u8>,
    chip_id: [u8; 64],
    tcb: SnpTcb,
    report_id: [u8; 32],
    ark_crl: std::sync::OnceLock<Vec<u8>>,
}

impl fmt::Debug for SimulatedSnp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedSnp")
            .field("dir", &self.dir)
            .field("product", &PRODUCT)
            .field("ark_sha256", &hex::encode(self.ark_sha256()))
            .finish_non_exhaustive()
    }
}

impl SimulatedSnp {
    /// Load the development chain stored in `dir`, or generate it there on
    /// first use (when `dir` is missing or empty).
    pub fn open_or_create(dir: &Path) -> Result<Self, SimError> {
        if !is_missing_or_empty(dir)? {
            return SimulatedSnp::open(dir);
        }
        let file_name = dir
            .file_name()
            .ok_or_else(|| SimError::new(dir, "directory path has no final component"))?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(parent)
            .map_err(|e| SimError::io(parent, "cannot create the parent directory", e))?;
        let mut suffix = [0u8; 8];
        random(&mut suffix);
        let tmp = parent.join(format!(
            ".{}.tmp-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            hex::encode(suffix)
        ));
        create_private_dir(&tmp)?;
        let written = generate(&tmp, unix_now()).and_then(|chain| chain.write(&tmp));
        if let Err(error) = written {
            let _ = fs::remove_dir_all(&tmp);
            return Err(error);
        }
        // rename(2) replaces a missing or empty directory atomically and fails
        // when another process got there first; then load the winner's chain.
        if let Err(error) = fs::rename(&tmp, dir) {
            let _ = fs::remove_dir_all(&tmp);
            if is_missing_or_empty(dir)? {
                return Err(SimError::io(
                    dir,
                    "cannot move the generated chain into place",
                    error,
                ));
            }
        }
        SimulatedSnp::open(dir)
    }

    /// Load the development chain stored in `dir` (never generates one).
    pub fn open(dir: &Path) -> Result<Self, SimError> {
        let ark_der = read_certificate(&dir.join(ARK_CERT))?;
        let ask_der = read_certificate(&dir.join(ASK_CERT))?;
        let vcek_der = read_certificate(&dir.join(VCEK_CERT))?;
        let ark_key = read_rsa_key(&dir.join(ARK_KEY), "simulated-ark")?;
        let ask_key = read_rsa_key(&dir.join(ASK_KEY), "simulated-ask")?;
        let vcek_key = read_p384_key(&dir.join(VCEK_KEY), "simulated-vcek")?;

        let ark_cn = format!("ARK-{}", PRODUCT.name());
        let ask_cn = format!("SEV-{}", PRODUCT.name());
        // (certificate file, its DER, key file, key's SPKI, subject CN, issuer CN, issuer key)
        let checks = [
            (
                ARK_CERT,
                &ark_der,
                ARK_KEY,
                ark_key.spki_der(),
                ark_cn.as_str(),
                ark_cn.as_str(),
                &ark_key,
            ),
            (
                ASK_CERT,
                &ask_der,
                ASK_KEY,
                ask_key.spki_der(),
                ask_cn.as_str(),
                ark_cn.as_str(),
                &ark_key,
            ),
            (
                VCEK_CERT,
                &vcek_der,
                VCEK_KEY,
                vcek_key.spki_der(),
                "SEV-VCEK",
                ask_cn.as_str(),
                &ask_key,
            ),
        ];
        let mut vcek_extensions = None;
        for (cert_file, cert_der, key_file, spki, cn, issuer_cn, issuer_key) in checks {
            let cert_path = dir.join(cert_file);
            let cert = parse_certificate(&cert_path, cert_der)?;
            if cert.public_key().raw != spki.as_slice() {
                return Err(SimError::new(
                    &dir.join(key_file),
                    format!("private key does not match the certificate in {cert_file}"),
                ));
            }
            check_name(&cert_path, cert.subject(), "subject", cn)?;
            check_name(&cert_path, cert.issuer(), "issuer", issuer_cn)?;
            verify_rsa_pss(&cert_path, &cert, issuer_key)?;
            if cert_file == VCEK_CERT {
                vcek_extensions = Some(read_vcek_extensions(&cert_path, &cert)?);
            }
        }
        let (chip_id, tcb) = vcek_extensions.expect("the VCEK was checked");
        let mut report_id = [0u8; 32];
        random(&mut report_id);
        Ok(SimulatedSnp {
            dir: dir.to_owned(),
            ark_key,
            ask_key,
            vcek_key,
            ark_der,
            ask_der,
            vcek_der,
            chip_id,
            tcb,
            report_id,
            ark_crl: std::sync::OnceLock::new(),
        })
    }

    /// The simulated product: Genoa.
    pub fn product(&self) -> FakeProduct {
        PRODUCT
    }

    /// The directory the chain is stored in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The self-signed simulated ARK-Genoa (DER).
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    /// SHA-256 of [`SimulatedSnp::ark_der`]: what a development policy lists
    /// under `dangerous_trusted_roots`.
    pub fn ark_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.ark_der).into()
    }

    /// The simulated SEV-Genoa ASK (DER), signed by the ARK.
    pub fn ask_der(&self) -> &[u8] {
        &self.ask_der
    }

    /// The simulated VCEK (DER), signed by the ASK.
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek_der
    }

    /// The ARK's CRL (DER), as AMD's KDS serves one per product: signed by the simulated
    /// ARK (RSA-PSS SHA-384), revoking nothing, current from a day before its first use
    /// to [`CRL_VALIDITY_DAYS`] after. Made once per [`SimulatedSnp`] value.
    pub fn ark_crl(&self) -> &[u8] {
        self.ark_crl.get_or_init(|| {
            self.ark_crl_valid(unix_now() - DAY, unix_now() + CRL_VALIDITY_DAYS * DAY)
        })
    }

    /// An ARK CRL with a chosen validity (revoking nothing), e.g. an expired one.
    pub fn ark_crl_valid(&self, this_update: i64, next_update: i64) -> Vec<u8> {
        let cn = format!("ARK-{}", PRODUCT.name());
        let template = x509_gen::CrlTemplate {
            issuer: amd_name_with_ou(SIMULATED_ORG_UNIT, &cn),
            this_update,
            next_update: Some(next_update),
            revoked: Vec::new(),
            crl_number: 1,
            authority_key_id: Some(x509_gen::key_identifier(&self.ark_key.spki_der()).to_vec()),
        };
        x509_gen::issue_crl(&template, x509_gen::Signer::RsaPss(&self.ark_key), false)
    }

    /// KDS-style `cert_chain` PEM: ASK first, then ARK.
    pub fn vcek_chain_pem(&self) -> String {
        x509_gen::certificates_pem(&[&self.ask_der, &self.ark_der])
    }

    /// The ARK's RSA key.
    pub fn ark_key(&self) -> &FakeRsaKey {
        &self.ark_key
    }

    /// The ASK's RSA key.
    pub fn ask_key(&self) -> &FakeRsaKey {
        &self.ask_key
    }

    /// The VCEK's P-384 key.
    pub fn vcek_key(&self) -> &FakeP384Key {
        &self.vcek_key
    }

    /// The fixed simulated launch measurement: SHA-384 of the label
    /// `"veritee simulated SEV-SNP launch measurement v1"`, the same for
    /// every directory.
    pub fn measurement(&self) -> [u8; 48] {
        Sha384::digest(MEASUREMENT_LABEL).into()
    }

    /// The CHIP_ID the reports carry (the VCEK's hwID extension).
    pub fn chip_id(&self) -> [u8; 64] {
        self.chip_id
    }

    /// The TCB_VERSION raw value the reports carry in REPORTED_TCB (and
    /// CURRENT, COMMITTED and LAUNCH TCB): the VCEK's TCB extensions.
    pub fn reported_tcb(&self) -> u64 {
        self.tcb.to_u64(PRODUCT)
    }

    /// A signed 1184-byte SNP report with the given REPORT_DATA and
    /// HOST_DATA: version 3, VMPL 0, guest policy SMT + reserved bit 17
    /// (debug and migration agent off), the fixed measurement, the VCEK's
    /// TCB and CHIP_ID, signed by the VCEK (ECDSA P-384/SHA-384 over bytes
    /// 0x000..0x2A0, r and s little-endian as in the SNP ABI). REPORT_ID is
    /// random per [`SimulatedSnp`] value (one simulated launch).
    pub fn report(&self, report_data: &[u8; 64], host_data: &[u8; 32]) -> Vec<u8> {
        self.report_as(report_data, host_data, false)
    }

    /// [`SimulatedSnp::report`] of a launch with the guest policy's DEBUG bit set: what a
    /// debug VM would report. Exists so verifiers can show they refuse it.
    pub fn debug_report(&self, report_data: &[u8; 64], host_data: &[u8; 32]) -> Vec<u8> {
        self.report_as(report_data, host_data, true)
    }

    fn report_as(&self, report_data: &[u8; 64], host_data: &[u8; 32], debug: bool) -> Vec<u8> {
        let mut builder = SnpReportBuilder::new(PRODUCT)
            .version(REPORT_VERSION)
            .all_tcbs(self.tcb)
            .chip_id(self.chip_id)
            .measurement(self.measurement())
            .report_data(*report_data)
            .host_data(*host_data)
            .vmpl(0)
            .debug(debug)
            .migrate_ma(false);
        builder.report_id = self.report_id;
        builder.sign_with(&self.vcek_key)
    }
}

/// A freshly generated chain, before it is written.
struct Generated {
    ark_pkcs8: Vec<u8>,
    ask_pkcs8: Vec<u8>,
    vcek_pkcs8: Vec<u8>,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
    vcek_der: Vec<u8>,
}

/// Generate ARK and ASK (RSA-4096) and VCEK (P-384) keys and certificates
/// valid from a day before `now` to ten years after it (errors name files
/// in `dir`, where they are going to be written).
fn generate(dir: &Path, now: i64) -> Result<Generated, SimError> {
    let ark_pkcs8 = generate_rsa4096(&dir.join(ARK_KEY))?;
    let ask_pkcs8 = generate_rsa4096(&dir.join(ASK_KEY))?;
    let internal = |e: crate::keys::KeyError| {
        SimError::new(
            dir,
            format!("internal error: generated key does not load: {e}"),
        )
    };
    let ark_key = FakeRsaKey::from_pkcs8_der("simulated-ark", &ark_pkcs8).map_err(internal)?;
    let ask_key = FakeRsaKey::from_pkcs8_der("simulated-ask", &ask_pkcs8).map_err(internal)?;
    let vcek_key = loop {
        let mut secret = [0u8; 48];
        random(&mut secret);
        if let Ok(key) = FakeP384Key::from_secret_bytes("simulated-vcek", &secret) {
            break key;
        }
    };
    let profile = AmdCertProfile {
        org_unit: SIMULATED_ORG_UNIT.to_owned(),
        not_before: now - DAY,
        not_after: ten_years_after(now),
    };
    // The simulated platform has no VLEK authority: the ASK key stands in
    // for the ASVK, whose certificate is neither stored nor served.
    let amd = FakeAmd::with_keys_and_profile(PRODUCT, ark_key, ask_key.clone(), ask_key, &profile);
    let spki = vcek_key.spki_der();
    let chip_id: [u8; 64] = Sha512::new()
        .chain_update(CHIP_ID_LABEL)
        .chain_update(&spki)
        .finalize()
        .into();
    let vcek = amd
        .vcek()
        .key(vcek_key.clone())
        .tcb(SnpTcb::default_for(PRODUCT))
        .hw_id(Some(&chip_id))
        .validity(profile.not_before, profile.not_after)
        .build();
    Ok(Generated {
        ark_pkcs8,
        ask_pkcs8,
        vcek_pkcs8: vcek_key.to_pkcs8_der(),
        ark_der: amd.ark_der().to_vec(),
        ask_der: amd.ask_der().to_vec(),
        vcek_der: vcek.der,
    })
}

impl Generated {
    fn write(&self, dir: &Path) -> Result<(), SimError> {
        let cert = |der: &[u8]| x509_gen::certificate_pem(der);
        let key = |der: &[u8]| {
            let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            pem::encode_config(&pem::Pem::new("PRIVATE KEY", der.to_vec()), config)
        };
        let ark_sha256 = hex::encode(Sha256::digest(&self.ark_der));
        let readme = format!(
            "veritee SIMULATED SEV-SNP TEE - development only - never trust\n\
             \n\
             A development ARK/ASK/VCEK chain with random keys, generated for\n\
             `veritee-enclave --simulate`. Reports it signs prove nothing about\n\
             isolation or the software that runs. A development policy trusts this\n\
             directory's root only by listing its SHA-256 under\n\
             dangerous_trusted_roots:\n\
             \n\
             ARK-{} SHA-256: {ark_sha256}\n",
            PRODUCT.name()
        );
        let files: [(&str, String, u32); 7] = [
            (ARK_KEY, key(&self.ark_pkcs8), 0o600),
            (ASK_KEY, key(&self.ask_pkcs8), 0o600),
            (VCEK_KEY, key(&self.vcek_pkcs8), 0o600),
            (ARK_CERT, cert(&self.ark_der), 0o644),
            (ASK_CERT, cert(&self.ask_der), 0o644),
            (VCEK_CERT, cert(&self.vcek_der), 0o644),
            (README, readme, 0o644),
        ];
        for (name, text, mode) in files {
            let path = dir.join(name);
            write_new_file(&path, text.as_bytes(), mode)
                .map_err(|e| SimError::io(&path, "cannot write", e))?;
        }
        Ok(())
    }
}

fn generate_rsa4096(path: &Path) -> Result<Vec<u8>, SimError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    let failed = || SimError::new(path, "RSA-4096 key generation failed");
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa4096)
        .map_err(|_| failed())?;
    let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed())?;
    Ok(pkcs8.as_ref().to_vec())
}

/// Fill `out` from the operating system's CSPRNG (via aws-lc).
fn random(out: &mut [u8]) {
    aws_lc_rs::rand::fill(out).expect("the system random number generator works");
}

fn unix_now() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_secs()).expect("the clock fits an i64")
}

/// The same calendar time ten years later (29 February becomes 1 March).
fn ten_years_after(unix_secs: i64) -> i64 {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .expect("time within the range the time crate supports");
    let year = t.year() + 10;
    t.replace_year(year)
        .or_else(|_| (t + time::Duration::days(1)).replace_year(year))
        .expect("ten years later is a valid date")
        .unix_timestamp()
}

fn is_missing_or_empty(dir: &Path) -> Result<bool, SimError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(SimError::io(dir, "cannot read the directory", e)),
    }
}

fn create_private_dir(path: &Path) -> Result<(), SimError> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .map_err(|e| SimError::io(path, "cannot create the directory", e))
}

fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn read_pem(path: &Path, tag: &str) -> Result<Vec<u8>, SimError> {
    let bytes = fs::read(path).map_err(|e| SimError::io(path, "cannot read", e))?;
    let blocks = pem::parse_many(&bytes)
        .map_err(|e| SimError::new(path, format!("corrupt or unreadable PEM ({e})")))?;
    match blocks.as_slice() {
        [one] if one.tag() == tag => Ok(one.contents().to_vec()),
        [one] => Err(SimError::new(
            path,
            format!("PEM block is {:?}, expected {tag:?}", one.tag()),
        )),
        [] => Err(SimError::new(
            path,
            format!("corrupt or truncated: no complete {tag:?} PEM block"),
        )),
        _ => Err(SimError::new(
            path,
            format!("holds {} PEM blocks, expected one {tag:?}", blocks.len()),
        )),
    }
}

fn read_certificate(path: &Path) -> Result<Vec<u8>, SimError> {
    read_pem(path, "CERTIFICATE")
}

fn read_rsa_key(path: &Path, label: &str) -> Result<FakeRsaKey, SimError> {
    let der = read_pem(path, "PRIVATE KEY")?;
    FakeRsaKey::from_pkcs8_der(label, &der)
        .map_err(|e| SimError::new(path, format!("corrupt RSA private key ({e})")))
}

fn read_p384_key(path: &Path, label: &str) -> Result<FakeP384Key, SimError> {
    let der = read_pem(path, "PRIVATE KEY")?;
    FakeP384Key::from_pkcs8_der(label, &der)
        .map_err(|e| SimError::new(path, format!("corrupt P-384 private key ({e})")))
}

fn parse_certificate<'a>(
    path: &Path,
    der_bytes: &'a [u8],
) -> Result<x509_parser::certificate::X509Certificate<'a>, SimError> {
    match x509_parser::parse_x509_certificate(der_bytes) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(SimError::new(path, "trailing bytes after the certificate")),
        Err(e) => Err(SimError::new(path, format!("corrupt certificate ({e})"))),
    }
}

/// The name must be the simulated chain's: OU [`SIMULATED_ORG_UNIT`] and the
/// expected CN.
fn check_name(
    path: &Path,
    name: &x509_parser::x509::X509Name<'_>,
    which: &str,
    expected_cn: &str,
) -> Result<(), SimError> {
    let cn = name.iter_common_name().next().and_then(|a| a.as_str().ok());
    let ou = name
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok());
    if cn != Some(expected_cn) || ou != Some(SIMULATED_ORG_UNIT) {
        return Err(SimError::new(
            path,
            format!(
                "{which} is not the simulated chain's (CN {cn:?}, OU {ou:?}; want CN \
                 {expected_cn:?}, OU {SIMULATED_ORG_UNIT:?})"
            ),
        ));
    }
    Ok(())
}

fn verify_rsa_pss(
    path: &Path,
    cert: &x509_parser::certificate::X509Certificate<'_>,
    issuer: &FakeRsaKey,
) -> Result<(), SimError> {
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PSS_2048_8192_SHA384};
    let algorithm = cert.signature_algorithm.algorithm.to_id_string();
    if algorithm != crate::keys::oids::RSASSA_PSS {
        return Err(SimError::new(
            path,
            format!("signature algorithm {algorithm} is not RSASSA-PSS"),
        ));
    }
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, issuer.rsa_public_key_der())
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| SimError::new(path, "signature does not verify with its issuer's key"))
}

/// The VCEK's hwID (64 bytes on Genoa) and TCB extensions.
fn read_vcek_extensions(
    path: &Path,
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<([u8; 64], SnpTcb), SimError> {
    let extension = |oid: &str| -> Result<&[u8], SimError> {
        let mut found = cert
            .extensions()
            .iter()
            .filter(|e| e.oid.to_id_string() == oid);
        match (found.next(), found.next()) {
            (Some(e), None) => Ok(e.value),
            _ => Err(SimError::new(
                path,
                format!("VCEK needs exactly one extension {oid}"),
            )),
        }
    };
    let spl = |oid: &str| -> Result<u8, SimError> {
        let value = extension(oid)?;
        let mut reader = der::Reader::new(value);
        let int = reader
            .expect(der::tag::INTEGER)
            .filter(|_| reader.read().is_none());
        let magnitude = int.map(|b| &b[b.iter().take_while(|x| **x == 0).count()..]);
        match magnitude {
            Some([]) => Ok(0),
            Some([v]) if int.is_some_and(|b| b[0] & 0x80 == 0) => Ok(*v),
            _ => Err(SimError::new(
                path,
                format!("VCEK extension {oid} is not a small INTEGER"),
            )),
        }
    };
    let chip_id: [u8; 64] = extension(amd_oids::HW_ID)?
        .try_into()
        .map_err(|_| SimError::new(path, "VCEK hwID extension is not 64 bytes"))?;
    let tcb = SnpTcb {
        fmc: 0,
        bootloader: spl(amd_oids::BL_SPL)?,
        tee: spl(amd_oids::TEE_SPL)?,
        snp: spl(amd_oids::SNP_SPL)?,
        microcode: spl(amd_oids::UCODE_SPL)?,
    };
    Ok((chip_id, tcb))
}

#[cfg(test)]
mod tests;
