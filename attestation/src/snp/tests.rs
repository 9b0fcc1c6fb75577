//! SNP tests over the real vectors in `testdata/vectors/snp` (or `$VERITEE_VECTORS/snp`).
//! A missing corpus or named vector is a failure, never a skip.

use super::certs::{product_name, spl_value, HwId};
use super::*;
use crate::reason::Reason;
use crate::time::Timestamp;
use crate::x509;
use sim::vectors::Expectation;
use std::path::{Path, PathBuf};

fn snp_dir() -> PathBuf {
    sim::vectors::platform_dir("snp")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Certificates (DER) from a file holding DER or PEM (possibly several certificates).
fn certs_in(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    if bytes.starts_with(b"-----BEGIN") {
        return Some(x509::certs_from_pem(bytes).unwrap());
    }
    x509::parse_cert(bytes, "input")
        .ok()
        .map(|_| vec![bytes.to_vec()])
}

/// A vector's inputs split into (evidence, certificates).
fn load_inputs(e: &Expectation) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut evidence = None;
    let mut certs = Vec::new();
    for (_, bytes) in e.read_inputs() {
        match certs_in(&bytes) {
            Some(c) => certs.extend(c),
            None => {
                assert!(
                    evidence.is_none(),
                    "two evidence files in {}",
                    e.dir.display()
                );
                evidence = Some(bytes);
            }
        }
    }
    (evidence.expect("no evidence among the inputs"), certs)
}

/// The SNP vectors' `[expect]` tables.
fn expectations() -> Vec<Expectation> {
    sim::vectors::expectations("snp")
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// What each vector must verify as, read from its manifest by hand.
fn expected_identity(name: &str) -> (Product, SigningKey, u32, u64) {
    match name {
        "go-sev-guest-milan-v2-vcek" => (Product::Milan, SigningKey::Vcek, 2, 0x4405000000000002),
        "oak-genoa-v5-vcek" => (Product::Genoa, SigningKey::Vcek, 5, 0x541900000000000a),
        "oak-turin-v5-vcek" => (Product::Turin, SigningKey::Vcek, 5, 0x4700000002000100),
        "trustee-az-snp-vtpm-genoa-v3-hcl" => {
            (Product::Genoa, SigningKey::Vcek, 3, 0x541700000000000a)
        }
        "trustee-az-snp-vtpm-milan-v2-hcl" => {
            (Product::Milan, SigningKey::Vcek, 2, 0x7308000000000003)
        }
        "trustee-milan-v2-vcek" => (Product::Milan, SigningKey::Vcek, 2, 0x7308000000000003),
        "trustee-milan-v3-vlek-aws" => (Product::Milan, SigningKey::Vlek, 3, 0xd918000000000004),
        "virtee-sev-milan-v2-vcek" => (Product::Milan, SigningKey::Vcek, 2, 0x7308000000000003),
        other => panic!("new SNP vector {other}: add its expected identity here"),
    }
}

#[test]
fn every_snp_vector_verifies_as_its_manifest_says() {
    let all = expectations();
    let anchors = SnpTrustAnchors::amd();
    assert!(
        all.len() >= 8,
        "expected at least 8 SNP vectors, found {}",
        all.len()
    );
    for e in all {
        assert_eq!(
            e.verdict, "accepted",
            "{}: only accepted SNP vectors exist so far",
            e.name
        );
        let (evidence, certs) = load_inputs(&e);
        let at = t(&e.at);
        let verified = verify(&evidence, &certs, &[], &anchors, at)
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
        let (product, key, version, reported_tcb) = expected_identity(&e.name);
        assert_eq!(verified.product(), product, "{}", e.name);
        assert_eq!(verified.signing_key(), key, "{}", e.name);
        let report = verified.report();
        assert_eq!(report.version, version, "{}", e.name);
        assert_eq!(report.reported_tcb, reported_tcb, "{}", e.name);
        assert_eq!(
            verified.reported_tcb(),
            TcbVersion::from_raw(reported_tcb, product),
            "{}",
            e.name
        );

        // Claims against the raw bytes, read independently of the parser.
        let raw = if evidence.starts_with(b"HCLA") {
            &evidence[32..1216]
        } else {
            &evidence[..]
        };
        let claims = verified.claims();
        assert_eq!(claims.platform, "snp");
        assert_eq!(
            claims.measurement,
            hex::encode(&raw[0x90..0xC0]),
            "{}",
            e.name
        );
        assert_eq!(
            claims.report_data,
            hex::encode(&raw[0x50..0x90]),
            "{}",
            e.name
        );
        assert_eq!(
            claims.host_data,
            hex::encode(&raw[0xC0..0xE0]),
            "{}",
            e.name
        );
        assert_eq!(
            claims.chip_id,
            hex::encode(&raw[0x1A0..0x1E0]),
            "{}",
            e.name
        );
        assert_eq!(
            claims.policy,
            format!("{:#018x}", le_u64(raw, 8)),
            "{}",
            e.name
        );
        assert_eq!(claims.cpuid.is_some(), version >= 3, "{}", e.name);
        assert_eq!(
            claims.launch_mit_vector.is_some(),
            version >= 5,
            "{}",
            e.name
        );
        // go-sev-guest's report has policy 0xb0000: debug (bit 19) IS allowed there.
        assert_eq!(claims.debug, raw[10] & 0x08 != 0, "{}", e.name);
        assert_eq!(
            verified.root_sha256(),
            anchors
                .pinned_roots()
                .into_iter()
                .find(|(p, _)| *p == product)
                .unwrap()
                .1
        );
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["product"], product.as_str());
        assert_eq!(json["signing_key"], key.as_str());
        assert_eq!(
            verified.runtime_data().is_some(),
            evidence.starts_with(b"HCLA")
        );
        assert_eq!(
            json.get("azure_hcl_runtime_data").is_some(),
            evidence.starts_with(b"HCLA")
        );

        // The same report with only its VCEK/VLEK verifies through the built-in chain.
        let leaf: Vec<Vec<u8>> = certs
            .iter()
            .filter(|c| {
                let cert = x509::parse_cert(c, "c").unwrap();
                let cn = x509::common_name(cert.subject()).unwrap();
                cn == "SEV-VCEK" || cn == "SEV-VLEK"
            })
            .cloned()
            .collect();
        assert_eq!(leaf.len(), 1, "{}", e.name);
        let alone = verify(&evidence, &leaf, &[], &anchors, at)
            .unwrap_or_else(|err| panic!("{} with the leaf alone: {err}", e.name));
        assert_eq!(alone.root_sha256(), verified.root_sha256());
    }
}

/// (evidence, certs, at) of one vector.
fn vector(name: &str) -> (Vec<u8>, Vec<Vec<u8>>, Timestamp) {
    let e = sim::vectors::expectation("snp", name);
    let (evidence, certs) = load_inputs(&e);
    (evidence, certs, t(&e.at))
}

fn reason(r: Result<VerifiedSnpReport, crate::Rejection>) -> Reason {
    match r {
        Ok(v) => panic!("accepted unexpectedly: {:?}", v.claims()),
        Err(e) => e.reason,
    }
}

#[test]
fn specific_claims_of_real_vectors() {
    let (ev, certs, at) = vector("oak-turin-v5-vcek");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    let c = v.claims();
    assert!(c.chip_id.starts_with("3b42092f69c656d3"));
    assert_eq!(
        c.reported_tcb,
        TcbVersion {
            fmc: Some(0),
            bootloader: 1,
            tee: 0,
            snp: 2,
            microcode: 0x47
        }
    );
    assert_eq!(
        c.cpuid,
        Some(Cpuid {
            family: 0x1a,
            model: 0x02,
            stepping: 1
        })
    );

    let (ev, certs, at) = vector("trustee-milan-v3-vlek-aws");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    assert_eq!(v.report().vmpl, 1);
    // CHIP_ID is zero and key_info's MASK_CHIP_KEY (bit 1) is clear: VLEK reports carry
    // no chip identity, and the report is signed.
    assert!(!v.report().chip_key_masked());
    assert!(v.report().chip_id_masked());
    assert_eq!(v.report().chip_id, [0; 64]);
    assert_eq!(v.report().key_info, 0b100);
    assert_eq!(v.reported_tcb().microcode, 0xd9);
    assert_eq!(v.reported_tcb().snp, 0x18);

    let (ev, certs, at) = vector("go-sev-guest-milan-v2-vcek");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    assert!(
        v.report().debug_allowed(),
        "go-sev-guest's sample report allows debug"
    );
    assert_eq!(&v.report().report_data[..6], &[1, 2, 3, 4, 5, 0]);

    let (ev, certs, at) = vector("trustee-az-snp-vtpm-genoa-v3-hcl");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    assert_eq!(v.report().guest_svn, 65547);
    let runtime = v.claims().azure_hcl_runtime_data.unwrap();
    assert!(
        runtime.starts_with("{\"keys\":[{\"kid\":\"HCLAkPub\""),
        "{runtime}"
    );
    assert_eq!(v.runtime_data().unwrap().len(), 1200);

    let (ev, certs, at) = vector("trustee-milan-v2-vcek");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    // CURRENT_TCB differs from REPORTED_TCB here; the VCEK matches the reported one.
    assert_eq!(v.claims().current_tcb.microcode, 0xce);
    assert_eq!(v.reported_tcb().microcode, 0x73);
    assert_eq!(v.report().guest_svn, 4);
}

/// The SEV-SNP policy fields of issue 13 on real reports: accepted when the policy names
/// what the report says, rejected with the field's reason when it does not. No real
/// vector comes with an AMD CRL, so `revocation = "require_crl"` refuses every one.
#[test]
fn issue_13_policy_fields_on_real_reports() {
    use crate::evidence::VerifiedEvidence;
    use crate::policy::{
        AbiVersion, BitRule, Constraint, Hex, MinTcb, Policy, Revocation, SnpPolicy,
    };
    type Edit<'a> = dyn Fn(&mut SnpPolicy) + 'a;
    let appraise = |evidence: &VerifiedEvidence, edit: &Edit<'_>| {
        let mut policy = Policy::default_verifier();
        edit(policy.snp.as_mut().unwrap());
        policy.appraise(evidence).map(|_| ()).map_err(|r| r.reason)
    };

    // oak Genoa: PLATFORM_INFO 0x25 = SMT_EN | ECC_EN | ALIAS_CHECK_COMPLETE; guest policy
    // 0x30000 (ABI 0.0, SMT, reserved bit 17); TCBs all bl 10 tee 0 snp 25 ucode 84.
    let (ev, certs, at) = vector("oak-genoa-v5-vcek");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    assert!(!v.revocation_checked() && !v.claims().revocation_checked);
    assert_eq!(v.report().platform_info, 0x25);
    let genoa = VerifiedEvidence::Snp(Box::new(v));
    let tcb = MinTcb {
        bootloader: 10,
        tee: 0,
        snp: 25,
        microcode: 84,
        fmc: 0,
    };
    assert_eq!(
        appraise(&genoa, &|p| {
            p.min_launch_tcb = Constraint::Only(tcb);
            p.min_committed_tcb = Constraint::Only(tcb);
            p.min_guest_svn = Constraint::Only(0);
            p.id_key_digest = Constraint::Only(vec![Hex([0; 48])]);
            p.author_key_digest = Constraint::Only(vec![Hex([0; 48])]);
            p.family_id = Constraint::Only(vec![Hex([0; 16])]);
            p.image_id = Constraint::Only(vec![Hex([0; 16])]);
            p.guest_policy.min_abi = Constraint::Only(AbiVersion { major: 0, minor: 0 });
            p.guest_policy.cxl_allow = BitRule::Forbid;
            p.guest_policy.single_socket = BitRule::Forbid;
            let i = &mut p.platform_info;
            i.smt_en = BitRule::Require;
            i.ecc_en = BitRule::Require;
            i.alias_check_complete = BitRule::Require;
            i.tsme_en = BitRule::Forbid;
            i.rapl_dis = BitRule::Forbid;
            i.ciphertext_hiding_en = BitRule::Forbid;
            i.tio_en = BitRule::Forbid;
        }),
        Ok(())
    );
    let higher = MinTcb { snp: 26, ..tcb };
    let cases: [(&Edit<'_>, Reason); 8] = [
        (
            &|p| p.revocation = Revocation::RequireCrl,
            Reason::CrlMissing,
        ),
        (
            &|p| p.min_launch_tcb = Constraint::Only(higher),
            Reason::LaunchTcbBelowMinimum,
        ),
        (
            &|p| p.min_committed_tcb = Constraint::Only(higher),
            Reason::CommittedTcbBelowMinimum,
        ),
        (
            &|p| p.min_guest_svn = Constraint::Only(1),
            Reason::GuestSvnBelowMinimum,
        ),
        (
            &|p| p.guest_policy.min_abi = Constraint::Only(AbiVersion { major: 1, minor: 0 }),
            Reason::GuestAbiBelowMinimum,
        ),
        (
            &|p| p.guest_policy.ciphertext_hiding = BitRule::Require,
            Reason::GuestPolicyNotAllowed,
        ),
        (
            &|p| p.platform_info.alias_check_complete = BitRule::Forbid,
            Reason::PlatformInfoNotAllowed,
        ),
        (
            &|p| p.platform_info.tsme_en = BitRule::Require,
            Reason::PlatformInfoNotAllowed,
        ),
    ];
    for (edit, reason) in cases {
        assert_eq!(appraise(&genoa, edit), Err(reason));
    }

    // trustee Milan: an ID block (ID_KEY_DIGEST 0356..), FAMILY_ID 01.., IMAGE_ID 02..,
    // GUEST_SVN 4, guest policy ABI 0.31.
    let (ev, certs, at) = vector("trustee-milan-v2-vcek");
    let v = verify(&ev, &certs, &[], &SnpTrustAnchors::amd(), at).unwrap();
    let id_key: [u8; 48] = v.report().id_key_digest;
    assert_eq!(hex::encode(&id_key[..4]), "03562158");
    assert_eq!(v.report().policy_abi(), (0, 31));
    let milan = VerifiedEvidence::Snp(Box::new(v));
    let mut family = [0; 16];
    family[0] = 1;
    let mut image = [0; 16];
    image[0] = 2;
    assert_eq!(
        appraise(&milan, &|p| {
            p.id_key_digest = Constraint::Only(vec![Hex([9; 48]), Hex(id_key)]);
            p.family_id = Constraint::Only(vec![Hex(family)]);
            p.image_id = Constraint::Only(vec![Hex(image)]);
            p.min_guest_svn = Constraint::Only(4);
            p.guest_policy.min_abi = Constraint::Only(AbiVersion {
                major: 0,
                minor: 31,
            });
        }),
        Ok(())
    );
    let cases: [(&Edit<'_>, Reason); 5] = [
        (
            &|p| p.id_key_digest = Constraint::Only(vec![Hex([9; 48])]),
            Reason::IdKeyNotAllowed,
        ),
        (
            &|p| p.author_key_digest = Constraint::Only(vec![Hex([9; 48])]),
            Reason::AuthorKeyNotAllowed,
        ),
        (
            &|p| p.family_id = Constraint::Only(vec![Hex(image)]),
            Reason::FamilyIdMismatch,
        ),
        (
            &|p| p.image_id = Constraint::Only(vec![Hex(family)]),
            Reason::ImageIdMismatch,
        ),
        (
            &|p| p.min_guest_svn = Constraint::Only(5),
            Reason::GuestSvnBelowMinimum,
        ),
    ];
    for (edit, reason) in cases {
        assert_eq!(appraise(&milan, edit), Err(reason));
    }
}

#[test]
fn tampered_reports_fail_the_signature() {
    let (ev, certs, at) = vector("trustee-milan-v2-vcek");
    let anchors = SnpTrustAnchors::amd();
    let mut bad = ev.clone();
    bad[42] = bad[42].wrapping_add(1);
    assert_eq!(
        reason(verify(&bad, &certs, &[], &anchors, at)),
        Reason::ReportSignatureInvalid
    );
    // REPORTED_TCB changed: the signature check comes before the TCB extension check.
    let mut bad = ev.clone();
    bad[0x180] = bad[0x180].wrapping_add(1);
    assert_eq!(
        reason(verify(&bad, &certs, &[], &anchors, at)),
        Reason::ReportSignatureInvalid
    );
    // Signature bytes themselves.
    let mut bad = ev.clone();
    bad[0x2A0] ^= 1;
    assert_eq!(
        reason(verify(&bad, &certs, &[], &anchors, at)),
        Reason::ReportSignatureInvalid
    );
}

#[test]
fn certificate_field_checks_after_the_signature() {
    // The TCB and hwID checks on their own (a real signature cannot cover altered fields).
    let (ev, certs, _) = vector("trustee-milan-v2-vcek");
    let leaf = x509::parse_cert(&certs[0], "vcek").unwrap();
    let mut report = SnpReport::parse(&ev).unwrap();
    verify::check_tcb(&report, &leaf, Product::Milan).unwrap();
    verify::check_hwid(&report, &leaf, Product::Milan).unwrap();
    report.reported_tcb += 1;
    assert_eq!(
        verify::check_tcb(&report, &leaf, Product::Milan)
            .unwrap_err()
            .reason,
        Reason::TcbExtensionMismatch
    );
    report.chip_id[5] ^= 0x10;
    assert_eq!(
        verify::check_hwid(&report, &leaf, Product::Milan)
            .unwrap_err()
            .reason,
        Reason::HwIdMismatch
    );
    // Non-zero reserved TCB bytes are covered by no extension.
    let mut report = SnpReport::parse(&ev).unwrap();
    report.reported_tcb |= 1 << 24;
    assert_eq!(
        verify::check_tcb(&report, &leaf, Product::Milan)
            .unwrap_err()
            .reason,
        Reason::TcbExtensionMismatch
    );

    // Turin: 8-byte hwID against the first 8 bytes of CHIP_ID, FMC in the TCB.
    let (ev, certs, _) = vector("oak-turin-v5-vcek");
    let leaf = x509::parse_cert(&certs[0], "vcek").unwrap();
    let mut report = SnpReport::parse(&ev).unwrap();
    verify::check_hwid(&report, &leaf, Product::Turin).unwrap();
    verify::check_tcb(&report, &leaf, Product::Turin).unwrap();
    // Decoding the Turin TCB with the Milan layout would not match the certificate.
    assert_eq!(
        verify::check_tcb(&report, &leaf, Product::Milan)
            .unwrap_err()
            .reason,
        Reason::TcbExtensionMismatch
    );
    report.reported_tcb += 1; // FMC byte
    assert_eq!(
        verify::check_tcb(&report, &leaf, Product::Turin)
            .unwrap_err()
            .reason,
        Reason::TcbExtensionMismatch
    );
    report.chip_id[7] ^= 1;
    assert_eq!(
        verify::check_hwid(&report, &leaf, Product::Turin)
            .unwrap_err()
            .reason,
        Reason::HwIdMismatch
    );
}

#[test]
fn time_is_checked_against_every_certificate() {
    let (ev, certs, _) = vector("trustee-milan-v2-vcek");
    let anchors = SnpTrustAnchors::amd();
    // VCEK notBefore is 2023-01-24T17:58:26Z.
    assert_eq!(
        reason(verify(
            &ev,
            &certs,
            &[],
            &anchors,
            t("2023-01-24T17:58:25Z")
        )),
        Reason::CertificateNotYetValid
    );
    assert!(verify(&ev, &certs, &[], &anchors, t("2023-01-24T17:58:26Z")).is_ok());
    assert_eq!(
        reason(verify(
            &ev,
            &certs,
            &[],
            &anchors,
            t("2030-01-25T00:00:00Z")
        )),
        Reason::CertificateExpired
    );
    // The VLEK lives one year (until 2025-12-10T22:14:21Z).
    let (ev, certs, _) = vector("trustee-milan-v3-vlek-aws");
    assert_eq!(
        reason(verify(
            &ev,
            &certs,
            &[],
            &anchors,
            t("2026-01-01T00:00:00Z")
        )),
        Reason::CertificateExpired
    );
}

#[test]
fn certificates_of_the_wrong_product_or_kind() {
    let snp = snp_dir();
    let anchors = SnpTrustAnchors::amd();
    let milan_chain =
        x509::certs_from_pem(&read(&snp.join("amd-roots/ask_ark_milan.pem"))).unwrap();
    let (genoa_ev, genoa_certs, genoa_at) = vector("oak-genoa-v5-vcek");
    let genoa_vcek = read(&snp.join("oak-genoa-v5-vcek/vcek.der"));
    let milan_vcek = read(&snp.join("trustee-milan-v2-vcek/test-vcek.der"));

    // Genoa report + Genoa VCEK + Milan ASK/ARK: the supplied chain is for another product.
    let mut certs = vec![genoa_vcek.clone()];
    certs.extend(milan_chain.iter().cloned());
    assert_eq!(
        reason(verify(&genoa_ev, &certs, &[], &anchors, genoa_at)),
        Reason::ProductMismatch
    );
    // Only the Milan ARK supplied.
    let certs = vec![genoa_vcek.clone(), milan_chain[1].clone()];
    assert_eq!(
        reason(verify(&genoa_ev, &certs, &[], &anchors, genoa_at)),
        Reason::ProductMismatch
    );
    // Genoa v5 report (CPUID says Genoa) + Milan VCEK + Milan chain.
    let mut certs = vec![milan_vcek.clone()];
    certs.extend(milan_chain.iter().cloned());
    assert_eq!(
        reason(verify(
            &genoa_ev,
            &certs,
            &[],
            &anchors,
            t("2025-01-01T00:00:00Z")
        )),
        Reason::ProductMismatch
    );
    // A v2 Milan report carries no CPUID: a Genoa VCEK chains fine but cannot sign it.
    let (milan_ev, _, _) = vector("trustee-milan-v2-vcek");
    assert_eq!(
        reason(verify(&milan_ev, &genoa_certs, &[], &anchors, genoa_at)),
        Reason::ReportSignatureInvalid
    );
    // Another Milan chip's VCEK: the chain is fine, the signature is not.
    let other = read(&snp.join("virtee-sev-milan-v2-vcek/vcek_milan.der"));
    assert_eq!(
        reason(verify(
            &milan_ev,
            &[other],
            &[],
            &anchors,
            t("2024-01-01T00:00:00Z")
        )),
        Reason::ReportSignatureInvalid
    );

    // The VCEK twice, or beside another chip's VCEK: the one that fits is used.
    let at24 = t("2024-01-01T00:00:00Z");
    let twice = vec![milan_vcek.clone(), milan_vcek.clone()];
    assert!(verify(&milan_ev, &twice, &[], &anchors, at24).is_ok());
    let other = read(&snp.join("virtee-sev-milan-v2-vcek/vcek_milan.der"));
    let both = vec![other.clone(), milan_vcek.clone()];
    assert!(verify(&milan_ev, &both, &[], &anchors, at24).is_ok());

    // Missing leaf, or a leaf of the other kind.
    assert_eq!(
        reason(verify(
            &milan_ev,
            &milan_chain,
            &[],
            &anchors,
            t("2024-01-01T00:00:00Z")
        )),
        Reason::CertificateMissing
    );
    assert_eq!(
        reason(verify(
            &milan_ev,
            &[],
            &[],
            &anchors,
            t("2024-01-01T00:00:00Z")
        )),
        Reason::CertificateMissing
    );
    let (vlek_ev, _, vlek_at) = vector("trustee-milan-v3-vlek-aws");
    assert_eq!(
        reason(verify(
            &vlek_ev,
            std::slice::from_ref(&milan_vcek),
            &[],
            &anchors,
            vlek_at
        )),
        Reason::SigningKeyMismatch
    );
    // VLEK report + VLEK + the VCEK chain (ASK instead of ASVK).
    let vlek = read(&snp.join("trustee-milan-v3-vlek-aws/test-vlek.der"));
    let mut certs = vec![vlek];
    certs.extend(milan_chain.iter().cloned());
    assert_eq!(
        reason(verify(&vlek_ev, &certs, &[], &anchors, vlek_at)),
        Reason::SigningKeyMismatch
    );
    // Garbage among the certificates.
    assert_eq!(
        reason(verify(
            &milan_ev,
            &[vec![0x30, 0x03, 1, 2, 3]],
            &[],
            &anchors,
            vlek_at
        )),
        Reason::MalformedCertificate
    );
}

#[test]
fn trust_is_the_pin_not_the_chain() {
    let (ev, certs, at) = vector("trustee-milan-v2-vcek");
    // certs = [VCEK, ASK, ARK] in manifest order.
    assert_eq!(
        reason(verify(&ev, &certs, &[], &SnpTrustAnchors::empty(), at)),
        Reason::UntrustedRoot
    );
    let ark = certs
        .iter()
        .find(|c| {
            let cert = x509::parse_cert(c, "c").unwrap();
            x509::common_name(cert.subject()).unwrap() == "ARK-Milan"
        })
        .unwrap()
        .clone();
    let trusted = SnpTrustAnchors::empty().dangerous_trust_ark(ark.clone());
    let v = verify(&ev, &certs, &[], &trusted, at).unwrap();
    assert_eq!(v.root_sha256(), x509::sha256(&ark));
    // A dangerously trusted ARK has no built-in ASK: the VCEK alone is not enough.
    assert_eq!(
        reason(verify(&ev, &certs[..1], &[], &trusted, at)),
        Reason::CertificateMissing
    );
    // A non-ARK certificate adds no trust.
    let not_ark = SnpTrustAnchors::empty().dangerous_trust_ark(certs[1].clone());
    assert!(not_ark.pinned_roots().is_empty());
    // Adding the same AMD ARK again changes nothing.
    let again = SnpTrustAnchors::amd().dangerous_trust_ark(ark);
    assert_eq!(again.pinned_roots().len(), 3);
}

#[test]
fn amd_anchors_are_complete_and_pinned() {
    let anchors = SnpTrustAnchors::amd();
    let roots = anchors.pinned_roots();
    assert_eq!(
        roots.len(),
        3,
        "all three embedded ARKs must match their pins"
    );
    for product in Product::ALL {
        let a = anchors.for_product(product).next().unwrap();
        let ask = x509::parse_cert(a.ask_der.as_ref().unwrap(), "ask").unwrap();
        let asvk = x509::parse_cert(a.asvk_der.as_ref().unwrap(), "asvk").unwrap();
        assert_eq!(
            x509::common_name(ask.subject()).unwrap(),
            format!("SEV-{product}")
        );
        assert_eq!(
            x509::common_name(asvk.subject()).unwrap(),
            format!("SEV-VLEK-{product}")
        );
    }
    let snp = snp_dir();
    for file in [
        "ask_ark_milan.pem",
        "ask_ark_genoa.pem",
        "ask_ark_turin_vcek.pem",
    ] {
        let certs = x509::certs_from_pem(&read(&snp.join("amd-roots").join(file))).unwrap();
        assert!(
            roots.iter().any(|(_, h)| *h == x509::sha256(&certs[1])),
            "{file}"
        );
    }
}

#[test]
fn turin_chain_only_vector() {
    let snp = snp_dir();
    let dir = snp.join("virtee-sev-turin-vcek-chain");
    let vcek_der = read(&dir.join("vcek_turin.der"));
    let chain = x509::certs_from_pem(&read(&dir.join("cert_chain_turin"))).unwrap();
    let vcek = x509::parse_cert(&vcek_der, "vcek").unwrap();
    let anchors = SnpTrustAnchors::amd();
    let (sha, crls) = verify::check_chain(
        &vcek,
        &chain[0],
        &chain[1],
        SigningKey::Vcek,
        Product::Turin,
        &[],
        &anchors,
        t("2025-01-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(sha, x509::sha256(&chain[1]));
    assert_eq!(crls, verify::CrlCoverage::default(), "no CRL was supplied");
    assert_eq!(
        HwId::from_cert_der(&vcek_der).unwrap().unwrap().0,
        hex::decode("1e550a8ee5cf9f4d").unwrap()
    );
    // The Turin ASK under the Milan ARK is a product mismatch.
    let milan = anchors.for_product(Product::Milan).next().unwrap();
    assert_eq!(
        verify::check_chain(
            &vcek,
            &chain[0],
            &milan.ark_der,
            SigningKey::Vcek,
            Product::Turin,
            &[],
            &anchors,
            t("2025-01-01T00:00:00Z"),
        )
        .unwrap_err()
        .reason,
        Reason::ProductMismatch
    );
    // Garbage CRLs are rejected, not ignored.
    assert_eq!(
        verify::check_chain(
            &vcek,
            &chain[0],
            &chain[1],
            SigningKey::Vcek,
            Product::Turin,
            &[vec![0x30, 0x00]],
            &anchors,
            t("2025-01-01T00:00:00Z"),
        )
        .unwrap_err()
        .reason,
        Reason::MalformedCrl
    );
}

#[test]
fn parse_rejects_malformed_reports() {
    let (ev, _, _) = vector("trustee-milan-v2-vcek");
    let err = |b: &[u8]| SnpReport::parse(b).unwrap_err().reason;
    assert_eq!(err(&ev[..1183]), Reason::Truncated);
    assert_eq!(err(&[]), Reason::Truncated);
    let mut long = ev.clone();
    long.push(0);
    assert_eq!(err(&long), Reason::TrailingData);
    let mut v4 = ev.clone();
    v4[0] = 4;
    assert_eq!(err(&v4), Reason::UnsupportedVersion);
    let mut v1 = ev.clone();
    v1[0] = 1;
    assert_eq!(err(&v1), Reason::UnsupportedVersion);
    let mut algo = ev.clone();
    algo[0x34] = 2;
    assert_eq!(err(&algo), Reason::UnsupportedAlgorithm);
    for off in [
        0x4C,
        0x188,
        0x19F,
        0x1EB,
        0x1EF,
        0x1F8,
        0x29F,
        0x2A0 + 48,
        0x2E8 + 71,
        0x330,
        0x49F,
    ] {
        let mut r = ev.clone();
        r[off] = 1;
        let e = SnpReport::parse(&r).unwrap_err();
        assert_eq!(e.reason, Reason::ReservedNotZero, "offset {off:#x}");
        assert!(
            e.detail.contains(&format!("{off:#x}")),
            "{off:#x}: {}",
            e.detail
        );
    }
    // key_info: reserved bits, reserved signing-key encodings, MASK_CHIP_KEY (an unsigned
    // report, whatever its CHIP_ID).
    let mut r = ev.clone();
    r[0x48] = 0x20;
    assert_eq!(err(&r), Reason::ReservedNotZero);
    let mut r = ev.clone();
    r[0x48] = 2 << 2;
    assert_eq!(err(&r), Reason::InvalidField);
    let mut r = ev.clone();
    r[0x48] = 0b10;
    assert_eq!(err(&r), Reason::ReportChipKeyMasked);
    r[0x1A0..0x1E0].fill(0);
    assert_eq!(err(&r), Reason::ReportChipKeyMasked);
    // Field decoding.
    let rep = SnpReport::parse(&ev).unwrap();
    assert_eq!(rep.as_bytes(), &ev[..]);
    assert_eq!(rep.signed_bytes(), &ev[..0x2A0]);
    assert_eq!(rep.reported_tcb, 0x7308000000000003);
    assert_eq!(rep.current_tcb, 0xce08000000000003);
    assert_eq!(rep.cpuid_fam_id, None);
    let mut r_be = ev[0x2A0..0x2A0 + 48].to_vec();
    r_be.reverse();
    assert_eq!(&rep.signature_r[..], &r_be[..]);
    assert_eq!(rep.signing_key().unwrap(), SigningKey::Vcek);
    assert!(rep.smt_allowed() && !rep.debug_allowed() && !rep.migration_agent_allowed());
}

#[test]
fn hcl_wrapper_is_bound_by_report_data() {
    let (ev, certs, at) = vector("trustee-az-snp-vtpm-milan-v2-hcl");
    let anchors = SnpTrustAnchors::amd();
    let parsed = SnpEvidence::parse(&ev).unwrap();
    assert!(matches!(parsed, SnpEvidence::AzureHcl { .. }));
    assert_eq!(parsed.report_bytes(), &ev[32..1216]);
    // One byte of runtime data changed: REPORT_DATA no longer binds it.
    let mut bad = ev.clone();
    bad[1216 + 20 + 10] ^= 1;
    assert_eq!(
        reason(verify(&bad, &certs, &[], &anchors, at)),
        Reason::ReportDataMismatch
    );
    // Junk in the zero padding after the runtime data.
    let mut bad = ev.clone();
    *bad.last_mut().unwrap() = 1;
    assert_eq!(
        reason(verify(&bad, &certs, &[], &anchors, at)),
        Reason::TrailingData
    );
    // Inconsistent sizes / types.
    let mut bad = ev.clone();
    bad[1216 + 8] = 4; // report type TDX
    assert_eq!(
        SnpEvidence::parse(&bad).unwrap_err().reason,
        Reason::InvalidField
    );
    let mut bad = ev.clone();
    bad[1216 + 12] = 9; // hash type
    assert_eq!(
        SnpEvidence::parse(&bad).unwrap_err().reason,
        Reason::UnsupportedAlgorithm
    );
    let mut bad = ev.clone();
    bad[1216 + 16] ^= 1; // variable data size, no longer data_size - 20
    let e = SnpEvidence::parse(&bad).unwrap_err();
    assert_eq!(e.reason, Reason::InvalidField);
    assert!(e.detail.contains("variable_data_size"), "{e}");
    assert_eq!(
        SnpEvidence::parse(&ev[..1300]).unwrap_err().reason,
        Reason::Truncated
    );
    assert_eq!(
        SnpEvidence::parse(&ev[..100]).unwrap_err().reason,
        Reason::Truncated
    );
    // The report inside is signed: tampering with it fails the signature.
    let mut bad = ev.clone();
    bad[32 + 0x90] ^= 1;
    assert_eq!(
        reason(verify(&bad, &certs, &[], &anchors, at)),
        Reason::ReportSignatureInvalid
    );
}

#[test]
fn every_signed_byte_matters() {
    let (ev, certs, at) = vector("trustee-milan-v2-vcek");
    let anchors = SnpTrustAnchors::amd();
    verify(&ev, &certs, &[], &anchors, at).expect("the control verifies");
    for i in 0..0x2A0 {
        let mut bad = ev.clone();
        bad[i] ^= 0xFF;
        let got = verify(&bad, &certs, &[], &anchors, at)
            .err()
            .unwrap_or_else(|| panic!("flipping byte {i:#x} was accepted"))
            .reason;
        // The parser's reason where the flip breaks a field's rules; otherwise the
        // signature, or the certificate-versus-report check the flipped field feeds.
        match SnpReport::parse(&bad) {
            Err(parse) => assert_eq!(got, parse.reason, "byte {i:#x}"),
            Ok(_) => assert!(
                matches!(
                    got,
                    Reason::ReportSignatureInvalid
                        | Reason::SigningKeyMismatch
                        | Reason::CertificateMissing
                        | Reason::ProductMismatch
                        | Reason::HwIdMismatch
                        | Reason::TcbExtensionMismatch
                ),
                "byte {i:#x}: {got:?}"
            ),
        }
    }
}

#[test]
fn parsers_never_panic() {
    // Deterministic xorshift so failures reproduce.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seeds: Vec<Vec<u8>> = vec![vec![0; 1184], b"HCLA".to_vec()];
    let snp = snp_dir();
    seeds.push(read(&snp.join("trustee-milan-v2-vcek/test-report.bin")));
    seeds.push(read(
        &snp.join("trustee-az-snp-vtpm-milan-v2-hcl/hcl-report.bin"),
    ));
    seeds.push(read(&snp.join("oak-turin-v5-vcek/report.bin")));
    for seed in &seeds {
        for len in 0..=seed.len() {
            let _ = SnpReport::parse(&seed[..len]);
            let _ = SnpEvidence::parse(&seed[..len]);
            let _ = looks_like_snp_evidence(&seed[..len]);
        }
        for _ in 0..300 {
            let mut m = seed.clone();
            for _ in 0..(next() % 8 + 1) {
                if m.is_empty() {
                    break;
                }
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            // Random header fields of an HCL wrapper (sizes near the edges).
            if m.starts_with(b"HCLA") && m.len() > 1236 {
                let field = 1216 + 4 * ((next() as usize) % 5);
                m[field..field + 4].copy_from_slice(&(next() as u32).to_le_bytes());
            }
            let _ = SnpReport::parse(&m);
            let _ = SnpEvidence::parse(&m);
            let _ = looks_like_snp_evidence(&m);
        }
    }
    for _ in 0..2000 {
        let len = (next() % 2700) as usize;
        let mut m: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len >= 0x38 && next() % 2 == 0 {
            m[..4].copy_from_slice(&2u32.to_le_bytes());
            m[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        }
        if len >= 4 && next() % 3 == 0 {
            m[..4].copy_from_slice(b"HCLA");
        }
        let _ = SnpReport::parse(&m);
        let _ = SnpEvidence::parse(&m);
        let _ = looks_like_snp_evidence(&m);
    }
}

#[test]
fn input_sniffing() {
    let snp = snp_dir();
    assert!(looks_like_snp_evidence(&read(
        &snp.join("oak-genoa-v5-vcek/report.bin")
    )));
    assert!(looks_like_snp_evidence(&read(
        &snp.join("trustee-az-snp-vtpm-genoa-v3-hcl/hcl-report.bin")
    )));
    assert!(!looks_like_snp_evidence(&read(
        &snp.join("oak-genoa-v5-vcek/vcek.der")
    )));
    assert!(!looks_like_snp_evidence(&read(
        &snp.join("virtee-sev-milan-v2-vcek/report_milan.hex")
    )));
    assert!(!looks_like_snp_evidence(&[0u8; 1184]));
    assert!(!looks_like_snp_evidence(b"HCLA"));
}

#[test]
fn synthetic_hwid_encodings() {
    let snp = snp_dir();
    let want: Vec<u8> = (0u8..64).collect();
    for file in ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"] {
        let der = read(&snp.join("trustee-milan-v2-vcek").join(file));
        assert_eq!(
            HwId::from_cert_der(&der).unwrap().unwrap().0,
            want,
            "{file}"
        );
    }
    // The real VCEK stores it raw.
    let der = read(&snp.join("trustee-milan-v2-vcek/test-vcek.der"));
    let report =
        SnpReport::parse(&read(&snp.join("trustee-milan-v2-vcek/test-report.bin"))).unwrap();
    assert!(HwId::from_cert_der(&der)
        .unwrap()
        .unwrap()
        .matches(&report.chip_id, Product::Milan));
    // VLEKs have none.
    let vlek = read(&snp.join("trustee-milan-v3-vlek-aws/test-vlek.der"));
    assert_eq!(HwId::from_cert_der(&vlek).unwrap(), None);
}

#[test]
fn der_helpers() {
    assert_eq!(spl_value(&[0x02, 0x01, 0x03]), Some(3));
    assert_eq!(spl_value(&[0x02, 0x02, 0x00, 0xd9]), Some(0xd9));
    assert_eq!(spl_value(&[0x02, 0x01, 0x00]), Some(0));
    assert_eq!(spl_value(&[0x02, 0x01, 0x80]), None, "negative");
    assert_eq!(spl_value(&[0x02, 0x02, 0x01, 0x00]), None, "too large");
    assert_eq!(spl_value(&[0x02, 0x02, 0x03]), None, "short");
    assert_eq!(spl_value(&[0x04, 0x01, 0x03]), None, "not an INTEGER");
    assert_eq!(spl_value(&[]), None);
    assert_eq!(product_name(b"\x16\x08Milan-B0"), Some("Milan-B0"));
    assert_eq!(product_name(b"\x16\x09Milan-B0"), None);
    assert_eq!(
        certs::product_from_name_ext("Milan-B0"),
        Some(Product::Milan)
    );
    assert_eq!(certs::product_from_name_ext("Genoa"), Some(Product::Genoa));
    assert_eq!(
        certs::product_from_name_ext("Turin-C1"),
        Some(Product::Turin)
    );
    assert_eq!(certs::product_from_name_ext("milan"), None);
    let raw8 = [1u8, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(HwId::from_extension(&raw8).unwrap().0, raw8);
    let mut wrapped8 = vec![0x04, 0x08];
    wrapped8.extend(raw8);
    assert_eq!(HwId::from_extension(&wrapped8).unwrap().0, raw8);
    assert!(HwId::from_extension(&[1, 2, 3]).is_none());
}

#[test]
fn tcb_layouts_and_products() {
    let turin = TcbVersion::from_raw(0x4700000002000100, Product::Turin);
    assert_eq!(
        turin,
        TcbVersion {
            fmc: Some(0),
            bootloader: 1,
            tee: 0,
            snp: 2,
            microcode: 0x47
        }
    );
    assert_eq!(turin.to_raw(Product::Turin), 0x4700000002000100);
    let milan = TcbVersion::from_raw(0xd918000000000004, Product::Milan);
    assert_eq!(
        milan,
        TcbVersion {
            fmc: None,
            bootloader: 4,
            tee: 0,
            snp: 0x18,
            microcode: 0xd9
        }
    );
    assert_eq!(milan.to_raw(Product::Milan), 0xd918000000000004);
    assert_eq!(
        serde_json::to_string(&milan).unwrap(),
        r#"{"bootloader":4,"tee":0,"snp":24,"microcode":217}"#
    );
    assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
    assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
    assert_eq!(Product::from_cpuid(0x19, 0xA0), Some(Product::Genoa));
    assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
    assert_eq!(Product::from_cpuid(0x1A, 0x50), None);
    assert_eq!(Product::from_cpuid(0x17, 0x31), None);
    assert_eq!(serde_json::to_string(&Product::Genoa).unwrap(), "\"Genoa\"");
    assert_eq!(
        serde_json::to_string(&SigningKey::Vlek).unwrap(),
        "\"vlek\""
    );
    assert_eq!(
        serde_json::from_str::<SigningKey>("\"vcek\"").unwrap(),
        SigningKey::Vcek
    );
}

// Scenarios over a simulated AMD chain (trust only through the dangerous escape hatch,
// tampered certificates, report fields against the VCEK, CRLs) live in the table of
// `attestation/tests/negative_corpus.rs`, built with the `sim` crate.
