use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use x509_parser::prelude::*;

/// A unique directory path under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let mut suffix = [0u8; 4];
        random(&mut suffix);
        let root = std::env::temp_dir().join(format!(
            "veritee-sim-tee-{what}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            hex::encode(suffix)
        ));
        fs::create_dir(&root).unwrap();
        TempDir(root)
    }

    /// A not-yet-existing chain directory inside the temp dir.
    fn chain(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn timed_create(dir: &Path) -> SimulatedSnp {
    let start = Instant::now();
    let sim = SimulatedSnp::open_or_create(dir).unwrap();
    eprintln!(
        "generated a simulated chain in {:.2?} ({})",
        start.elapsed(),
        dir.display()
    );
    sim
}

fn same_keys(a: &SimulatedSnp, b: &SimulatedSnp) -> bool {
    a.ark_key().spki_der() == b.ark_key().spki_der()
        && a.ask_key().spki_der() == b.ask_key().spki_der()
        && a.vcek_key().secret_bytes() == b.vcek_key().secret_bytes()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn ou_and_cn(name: &X509Name<'_>) -> (String, String) {
    let one = |attrs: Vec<&AttributeTypeAndValue<'_>>| -> String {
        assert_eq!(attrs.len(), 1, "one attribute of the type in {name}");
        attrs[0].as_str().unwrap().to_owned()
    };
    (
        one(name.iter_organizational_unit().collect()),
        one(name.iter_common_name().collect()),
    )
}

fn ring_verify_cert(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) {
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PSS_2048_8192_SHA384,
        issuer.public_key().subject_public_key.data.as_ref(),
    );
    key.verify(
        cert.tbs_certificate.as_ref(),
        cert.signature_value.data.as_ref(),
    )
    .expect("certificate signature verifies with the issuer's key");
}

fn extension<'a>(cert: &'a X509Certificate<'_>, oid: &str) -> &'a [u8] {
    let found: Vec<_> = cert
        .extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == oid)
        .collect();
    assert_eq!(found.len(), 1, "one extension {oid}");
    found[0].value
}

fn spl(cert: &X509Certificate<'_>, oid: &str) -> u8 {
    match extension(cert, oid) {
        [0x02, 0x01, v] => *v,
        [0x02, 0x02, 0x00, v] => *v,
        other => panic!("SPL extension {oid} is {other:02x?}"),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generates_a_chain_that_verifies_and_reopens_identically() {
    let tmp = TempDir::new("main");
    let dir = tmp.chain("sim");
    let before = unix_now();
    let sim = timed_create(&dir);
    let after = unix_now();
    assert_eq!(sim.product(), FakeProduct::Genoa);

    // Storage: private directory, private keys, one file per item.
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        for key in [ARK_KEY, ASK_KEY, VCEK_KEY] {
            assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
        }
    }
    let readme = fs::read_to_string(dir.join(README)).unwrap();
    assert!(readme.contains(&hex::encode(sim.ark_sha256())));
    let leftovers: Vec<_> = fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("sim")]);

    // Reopening (either way) gives the same certificates and keys.
    for reopened in [
        SimulatedSnp::open_or_create(&dir).unwrap(),
        SimulatedSnp::open(&dir).unwrap(),
    ] {
        assert_eq!(reopened.ark_der(), sim.ark_der());
        assert_eq!(reopened.ask_der(), sim.ask_der());
        assert_eq!(reopened.vcek_der(), sim.vcek_der());
        assert!(same_keys(&reopened, &sim));
        assert_eq!(reopened.chip_id(), sim.chip_id());
        assert_eq!(reopened.reported_tcb(), sim.reported_tcb());
        assert_eq!(reopened.measurement(), sim.measurement());
    }

    // Certificates: AMD's structure, the simulated OU, each signed by its
    // issuer, valid from a day before creation to ten years after.
    let ark = parse(sim.ark_der());
    let ask = parse(sim.ask_der());
    let vcek = parse(sim.vcek_der());
    let cns = [
        (&ark, "ARK-Genoa", "ARK-Genoa"),
        (&ask, "SEV-Genoa", "ARK-Genoa"),
        (&vcek, "SEV-VCEK", "SEV-Genoa"),
    ];
    for (cert, subject_cn, issuer_cn) in cns {
        assert_eq!(
            ou_and_cn(cert.subject()),
            (SIMULATED_ORG_UNIT.to_owned(), subject_cn.to_owned())
        );
        assert_eq!(
            ou_and_cn(cert.issuer()),
            (SIMULATED_ORG_UNIT.to_owned(), issuer_cn.to_owned())
        );
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        assert!((before - DAY..=after - DAY).contains(&not_before));
        assert!((before + 3652 * DAY..=after + 3653 * DAY).contains(&not_after));
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            crate::keys::oids::RSASSA_PSS
        );
    }
    ring_verify_cert(&ark, &ark);
    ring_verify_cert(&ask, &ark);
    ring_verify_cert(&vcek, &ask);
    assert_eq!(
        ark.public_key().subject_public_key.data.len(),
        526,
        "RSA-4096 RSAPublicKey DER"
    );
    assert_eq!(
        ask.public_key().subject_public_key.data.len(),
        526,
        "RSA-4096 RSAPublicKey DER"
    );

    // The VCEK names the chip and TCB the reports carry.
    assert_eq!(extension(&vcek, amd_oids::HW_ID), &sim.chip_id()[..]);
    let cert_tcb = SnpTcb {
        fmc: 0,
        bootloader: spl(&vcek, amd_oids::BL_SPL),
        tee: spl(&vcek, amd_oids::TEE_SPL),
        snp: spl(&vcek, amd_oids::SNP_SPL),
        microcode: spl(&vcek, amd_oids::UCODE_SPL),
    };
    assert_eq!(cert_tcb.to_u64(FakeProduct::Genoa), sim.reported_tcb());
    assert_eq!(
        sim.reported_tcb(),
        SnpTcb::default_for(FakeProduct::Genoa).to_u64(FakeProduct::Genoa)
    );
    assert_eq!(extension(&vcek, amd_oids::PRODUCT_NAME), b"\x16\x05Genoa");

    // The report: ABI offsets and a signature over 0x000..0x2A0.
    let report_data: [u8; 64] = std::array::from_fn(|i| i as u8);
    let host_data: [u8; 32] = std::array::from_fn(|i| 0xA0 ^ i as u8);
    let report = sim.report(&report_data, &host_data);
    assert_eq!(report.len(), 1184);
    let u32_at = |at: usize| u32::from_le_bytes(report[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(report[at..at + 8].try_into().unwrap());
    assert_eq!(u32_at(0x000), 3, "version");
    let policy = u64_at(0x008);
    assert_eq!(policy & (1 << 19), 0, "debug off");
    assert_eq!(policy & (1 << 18), 0, "no migration agent");
    assert_ne!(policy & (1 << 16), 0, "SMT allowed");
    assert_ne!(policy & (1 << 17), 0, "reserved bit 17 set");
    assert_eq!(u32_at(0x030), 0, "VMPL 0");
    assert_eq!(u32_at(0x034), 1, "signature algorithm ECDSA P-384/SHA-384");
    assert_eq!((u32_at(0x048) >> 2) & 7, 0, "signed by the VCEK");
    assert_eq!(&report[0x050..0x090], &report_data[..]);
    assert_eq!(&report[0x090..0x0C0], &sim.measurement()[..]);
    assert_eq!(&report[0x0C0..0x0E0], &host_data[..]);
    for tcb_at in [0x038, 0x180, 0x1E0, 0x1F0] {
        assert_eq!(u64_at(tcb_at), sim.reported_tcb(), "TCB at {tcb_at:#x}");
    }
    assert_eq!(&report[0x1A0..0x1E0], &sim.chip_id()[..]);
    assert_eq!(
        sim.measurement().to_vec(),
        Sha384::digest(b"veritee simulated SEV-SNP launch measurement v1").to_vec()
    );
    let mut r_s = [0u8; 96];
    r_s[..48].copy_from_slice(&report[0x2A0..0x2D0]);
    r_s[48..].copy_from_slice(&report[0x2E8..0x318]);
    r_s[..48].reverse();
    r_s[48..].reverse();
    let vcek_public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_FIXED,
        vcek.public_key().subject_public_key.data.as_ref(),
    );
    vcek_public
        .verify(&report[..0x2A0], &r_s)
        .expect("report signature verifies with the VCEK");
    let mut tampered = report.clone();
    tampered[0x050] ^= 1;
    assert!(vcek_public.verify(&tampered[..0x2A0], &r_s).is_err());

    // The ARK's CRL: issued by exactly the ARK's name, signed by its key, current now,
    // revoking nothing; made once per value.
    let der = sim.ark_crl().to_vec();
    assert_eq!(sim.ark_crl(), &der[..], "the same CRL on every call");
    let (rest, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    assert!(rest.is_empty());
    assert_eq!(crl.issuer().as_raw(), ark.subject().as_raw());
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PSS_2048_8192_SHA384,
        ark.public_key().subject_public_key.data.as_ref(),
    )
    .verify(
        crl.tbs_cert_list.as_ref(),
        crl.signature_value.data.as_ref(),
    )
    .expect("CRL signature verifies with the ARK's key");
    let now = unix_now();
    assert!(crl.last_update().timestamp() < now);
    let next = crl.next_update().expect("nextUpdate").timestamp();
    assert!(
        next > now + (CRL_VALIDITY_DAYS - 1) * DAY,
        "current for a year"
    );
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
}

#[test]
fn directories_have_different_roots_and_corrupt_files_are_named() {
    let tmp = TempDir::new("two");
    let (dir_a, dir_b) = (tmp.chain("a"), tmp.chain("b"));
    // An existing empty directory is used too.
    fs::create_dir(&dir_b).unwrap();
    let a = timed_create(&dir_a);
    let b = timed_create(&dir_b);
    assert_ne!(a.ark_der(), b.ark_der());
    assert_ne!(a.ark_sha256(), b.ark_sha256());
    assert_ne!(a.ask_der(), b.ask_der());
    assert_ne!(a.vcek_der(), b.vcek_der());
    assert_ne!(a.chip_id(), b.chip_id());
    assert!(!same_keys(&a, &b));
    assert_eq!(a.measurement(), b.measurement());

    let fails = |dir: &Path, file: &str, mention: &str| {
        let error = SimulatedSnp::open_or_create(dir).unwrap_err();
        let text = error.to_string();
        assert_eq!(error.path(), dir.join(file), "{text}");
        assert!(text.contains(file) && text.contains(mention), "{text}");
    };

    // A truncated key file.
    let copy = |from: &Path, to: &Path| {
        fs::create_dir(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    };
    let c = tmp.chain("c");
    copy(&dir_a, &c);
    let key = fs::read(c.join(VCEK_KEY)).unwrap();
    fs::write(c.join(VCEK_KEY), &key[..key.len() / 2]).unwrap();
    fails(&c, VCEK_KEY, "corrupt");

    // A key that decodes but is not the certificate's (another directory's).
    fs::copy(dir_b.join(VCEK_KEY), c.join(VCEK_KEY)).unwrap();
    fails(&c, VCEK_KEY, "does not match");

    // An RSA key with a flipped bit inside its prime.
    fs::copy(dir_a.join(VCEK_KEY), c.join(VCEK_KEY)).unwrap();
    SimulatedSnp::open(&c).unwrap();
    let mut der = read_pem(&c.join(ASK_KEY), "PRIVATE KEY").unwrap();
    let at = der.len() - 700;
    der[at] ^= 0x10;
    let config = ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF);
    let text = ::pem::encode_config(&::pem::Pem::new("PRIVATE KEY", der), config);
    fs::write(c.join(ASK_KEY), text).unwrap();
    fails(&c, ASK_KEY, "corrupt RSA private key");

    // Another directory's ASK with its own key: the ARK did not sign it.
    fs::copy(dir_b.join(ASK_KEY), c.join(ASK_KEY)).unwrap();
    fs::copy(dir_b.join(ASK_CERT), c.join(ASK_CERT)).unwrap();
    fails(&c, ASK_CERT, "signature does not verify");

    // A missing file in a non-empty directory is named, not regenerated.
    fs::remove_file(c.join(ARK_CERT)).unwrap();
    fails(&c, ARK_CERT, "cannot read");

    // A deterministic fake-root certificate is not a simulated one.
    copy(&dir_a, &tmp.chain("d"));
    let fake = crate::FakeAmd::new(FakeProduct::Genoa);
    let fake_ark = x509_gen::certificate_pem(fake.ark_der());
    fs::write(tmp.chain("d").join(ARK_CERT), fake_ark).unwrap();
    fails(&tmp.chain("d"), ARK_KEY, "does not match");
}

#[test]
fn concurrent_first_use_ends_with_one_chain() {
    let tmp = TempDir::new("race");
    let dir = tmp.chain("shared");
    let start = Instant::now();
    let sims: Vec<SimulatedSnp> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| SimulatedSnp::open_or_create(&dir).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("4 concurrent first uses took {:.2?}", start.elapsed());
    for sim in &sims[1..] {
        assert_eq!(sim.ark_der(), sims[0].ark_der());
        assert_eq!(sim.vcek_der(), sims[0].vcek_der());
        assert!(same_keys(sim, &sims[0]));
    }
    let on_disk = SimulatedSnp::open(&dir).unwrap();
    assert_eq!(on_disk.ark_der(), sims[0].ark_der());
    // The losers' temporary directories are gone.
    let entries: Vec<_> = fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("shared")]);
}

#[test]
fn ten_years_keeps_the_calendar_date() {
    // 2026-06-01T00:00:00Z -> 2036-06-01T00:00:00Z.
    assert_eq!(ten_years_after(1_780_272_000), 2_095_891_200);
    // 2028-02-29T12:00:00Z -> 2038-03-01T12:00:00Z.
    assert_eq!(ten_years_after(1_835_438_400), 2_151_057_600);
}

#[test]
fn an_unwritable_location_is_an_error_naming_it() {
    let tmp = TempDir::new("file");
    let file = tmp.chain("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let error = SimulatedSnp::open_or_create(&file.join("sim")).unwrap_err();
    assert!(error.to_string().contains("not-a-dir"), "{error}");
}
