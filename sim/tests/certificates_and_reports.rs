//! Every fake certificate and CRL parses with x509-parser and its signature
//! verifies with ring; SEV-SNP reports verify with the leaf key; the same
//! inputs always give the same bytes.

use ring::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384,
};
use sim::amd::{amd_oids, AmdIssuer, AmdRole};
use sim::snp::{SnpReportBuilder, SNP_REPORT_LEN, SNP_SIGNED_LEN};
use sim::{
    FakeAmd, FakeIntel, FakeProduct, SnpTcb, TdxCollateralBuilder, TdxQuoteBuilder, DEFAULT_AT,
};
use x509_parser::prelude::*;

fn algorithm_for(cert: &X509Certificate<'_>) -> &'static dyn VerificationAlgorithm {
    match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.10" => &RSA_PSS_2048_8192_SHA384,
        "1.2.840.10045.4.3.2" => &ECDSA_P256_SHA256_ASN1,
        "1.2.840.10045.4.3.3" => &ECDSA_P384_SHA384_ASN1,
        other => panic!("unexpected algorithm {other}"),
    }
}

fn public_key_bits<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    &cert.public_key().subject_public_key.data
}

/// Parse `child_der`, check it was issued by `issuer_der` (name and
/// signature), and that it is valid at `at`.
fn assert_issued_by(child_der: &[u8], issuer_der: &[u8]) {
    let (rest, child) = X509Certificate::from_der(child_der).expect("child parses");
    assert!(rest.is_empty());
    let (_, issuer) = X509Certificate::from_der(issuer_der).expect("issuer parses");
    assert_eq!(child.issuer(), issuer.subject(), "issuer name");
    let key = UnparsedPublicKey::new(algorithm_for(&child), public_key_bits(&issuer));
    key.verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
        .expect("certificate signature verifies");
    let at = ASN1Time::from_timestamp(DEFAULT_AT).unwrap();
    assert!(child.validity().is_valid_at(at), "valid at DEFAULT_AT");
    assert!(child
        .subject()
        .to_string()
        .contains("veritee FAKE test root"));
}

fn assert_crl_signed_by(crl_der: &[u8], issuer_der: &[u8]) -> Vec<Vec<u8>> {
    let (rest, crl) = CertificateRevocationList::from_der(crl_der).expect("CRL parses");
    assert!(rest.is_empty());
    let (_, issuer) = X509Certificate::from_der(issuer_der).unwrap();
    assert_eq!(crl.issuer(), issuer.subject());
    let algorithm: &dyn VerificationAlgorithm =
        match crl.signature_algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.10" => &RSA_PSS_2048_8192_SHA384,
            _ => &ECDSA_P256_SHA256_ASN1,
        };
    UnparsedPublicKey::new(algorithm, public_key_bits(&issuer))
        .verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
        .expect("CRL signature verifies");
    crl.iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect()
}

fn common_name(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    name
}

fn extension_value<'a>(cert: &'a X509Certificate<'_>, oid: &str) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .map(|e| e.value)
}

#[test]
fn amd_chains_verify_for_every_product() {
    for product in FakeProduct::ALL {
        let amd = FakeAmd::new(product);
        let name = product.name();
        assert_eq!(common_name(amd.ark_der()), format!("ARK-{name}"));
        assert_eq!(common_name(amd.ask_der()), format!("SEV-{name}"));
        assert_eq!(common_name(amd.asvk_der()), format!("SEV-VLEK-{name}"));
        assert_issued_by(amd.ark_der(), amd.ark_der());
        assert_issued_by(amd.ask_der(), amd.ark_der());
        assert_issued_by(amd.asvk_der(), amd.ark_der());

        let vcek = amd.vcek().build();
        assert_eq!(common_name(&vcek.der), "SEV-VCEK");
        assert_issued_by(&vcek.der, amd.ask_der());
        let (_, cert) = X509Certificate::from_der(&vcek.der).unwrap();
        assert_eq!(cert.raw_serial(), &[0]);
        let hw_id = extension_value(&cert, amd_oids::HW_ID).unwrap();
        assert_eq!(hw_id.len(), product.hw_id_len());
        let product_name = extension_value(&cert, amd_oids::PRODUCT_NAME).unwrap();
        assert_eq!(product_name[0], 0x16, "IA5String like AMD's certs");
        assert_eq!(
            &product_name[2..],
            product.default_vcek_product_name().as_bytes()
        );

        let vlek = amd.vlek().build();
        assert_eq!(common_name(&vlek.der), "SEV-VLEK");
        assert_issued_by(&vlek.der, amd.asvk_der());
        let (_, cert) = X509Certificate::from_der(&vlek.der).unwrap();
        assert!(extension_value(&cert, amd_oids::CSP_ID).is_some());
        assert!(extension_value(&cert, amd_oids::HW_ID).is_none());

        let crl = amd
            .crl()
            .revoke(&[0x01, 0x00, 0x01], DEFAULT_AT - 86_400)
            .build();
        assert_eq!(
            assert_crl_signed_by(&crl, amd.ark_der()),
            vec![vec![1, 0, 1]]
        );
    }
}

#[test]
fn amd_issuer_overrides_change_the_signer() {
    let milan = FakeAmd::new(FakeProduct::Milan);
    let genoa = FakeAmd::new(FakeProduct::Genoa);
    let wrong_product = milan
        .vcek()
        .issuer(AmdIssuer::Other(FakeProduct::Genoa, AmdRole::Ask))
        .build();
    assert_issued_by(&wrong_product.der, genoa.ask_der());
    let by_asvk = milan.vcek().issuer(AmdIssuer::Own(AmdRole::Asvk)).build();
    assert_issued_by(&by_asvk.der, milan.asvk_der());

    let corrupt = milan.vcek().corrupt_signature().build();
    let (_, child) = X509Certificate::from_der(&corrupt.der).unwrap();
    let (_, ask) = X509Certificate::from_der(milan.ask_der()).unwrap();
    assert!(
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, public_key_bits(&ask))
            .verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
            .is_err()
    );
}

#[test]
fn vcek_tcb_extensions_follow_the_builder() {
    let amd = FakeAmd::new(FakeProduct::Turin);
    let tcb = SnpTcb {
        fmc: 3,
        bootloader: 4,
        tee: 5,
        snp: 6,
        microcode: 0xD9,
    };
    let vcek = amd.vcek().tcb(tcb).build();
    let (_, cert) = X509Certificate::from_der(&vcek.der).unwrap();
    let int = |oid| extension_value(&cert, oid).unwrap().to_vec();
    assert_eq!(int(amd_oids::FMC_SPL), vec![2, 1, 3]);
    assert_eq!(int(amd_oids::BL_SPL), vec![2, 1, 4]);
    assert_eq!(int(amd_oids::TEE_SPL), vec![2, 1, 5]);
    assert_eq!(int(amd_oids::SNP_SPL), vec![2, 1, 6]);
    assert_eq!(int(amd_oids::UCODE_SPL), vec![2, 2, 0, 0xD9]);
}

fn report_signature_verifies(report: &[u8], leaf_der: &[u8]) -> bool {
    let (_, leaf) = X509Certificate::from_der(leaf_der).unwrap();
    let mut fixed = Vec::with_capacity(96);
    for start in [0x2A0, 0x2E8] {
        let mut component = report[start..start + 48].to_vec();
        component.reverse();
        fixed.extend_from_slice(&component);
    }
    assert!(report[0x2A0 + 48..0x2A0 + 72].iter().all(|b| *b == 0));
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key_bits(&leaf))
        .verify(&report[..SNP_SIGNED_LEN], &fixed)
        .is_ok()
}

#[test]
fn snp_reports_verify_with_the_leaf_key() {
    for product in FakeProduct::ALL {
        let amd = FakeAmd::new(product);
        let vcek = amd.vcek().build();
        for version in [2, 3, 5] {
            let report = SnpReportBuilder::for_leaf(&vcek)
                .version(version)
                .sign(&vcek);
            assert_eq!(report.len(), SNP_REPORT_LEN);
            assert_eq!(
                u32::from_le_bytes(report[0..4].try_into().unwrap()),
                version
            );
            assert_eq!(
                u32::from_le_bytes(report[0x34..0x38].try_into().unwrap()),
                1
            );
            let reported = u64::from_le_bytes(report[0x180..0x188].try_into().unwrap());
            assert_eq!(reported, vcek.tcb.to_u64(product));
            assert!(
                report_signature_verifies(&report, &vcek.der),
                "{product:?} v{version}"
            );
        }
        let vlek = amd.vlek().build();
        let report = SnpReportBuilder::for_leaf(&vlek).sign(&vlek);
        assert_eq!(report[0x48] >> 2 & 7, 1, "VLEK signing key");
        assert!(report_signature_verifies(&report, &vlek.der));

        let corrupted = SnpReportBuilder::for_leaf(&vcek)
            .corrupt_signature()
            .sign(&vcek);
        assert!(!report_signature_verifies(&corrupted, &vcek.der));
        let debug = SnpReportBuilder::for_leaf(&vcek).debug(true).sign(&vcek);
        assert_eq!(debug[0x0A] & 0x08, 0x08, "policy bit 19");
        assert!(report_signature_verifies(&debug, &vcek.der));
    }
}

#[test]
fn default_snp_evidence_helper_verifies() {
    for product in FakeProduct::ALL {
        let evidence = sim::default_snp_evidence(product);
        assert_issued_by(&evidence.intermediate_der, &evidence.ark_der);
        assert_issued_by(&evidence.leaf_der, &evidence.intermediate_der);
        assert!(report_signature_verifies(
            &evidence.report,
            &evidence.leaf_der
        ));
    }
}

#[test]
fn default_snp_report_layout() {
    let amd = FakeAmd::new(FakeProduct::Genoa);
    let vcek = amd.vcek().build();
    let report = SnpReportBuilder::for_leaf(&vcek).sign(&vcek);
    let policy = u64::from_le_bytes(report[8..16].try_into().unwrap());
    assert_eq!(policy, 0x30000, "SMT + reserved bit 17, no debug, no MA");
    assert_eq!(
        u32::from_le_bytes(report[0x30..0x34].try_into().unwrap()),
        0,
        "VMPL 0"
    );
    assert_eq!(&report[0x188..0x18B], &[0x19, 0x11, 0x01]);
    let (_, cert) = X509Certificate::from_der(&vcek.der).unwrap();
    assert_eq!(
        &report[0x1A0..0x1E0],
        extension_value(&cert, amd_oids::HW_ID).unwrap()
    );
    assert!(report[0x18B..0x1A0].iter().all(|b| *b == 0));
    assert!(report[0x208..0x2A0].iter().all(|b| *b == 0));
    assert!(report[0x2A0 + 144..].iter().all(|b| *b == 0));
}

#[test]
fn intel_certificates_and_crls_verify() {
    let intel = FakeIntel::new();
    assert_eq!(common_name(intel.root_der()), "Intel SGX Root CA");
    assert_eq!(
        common_name(intel.pck_platform_ca_der()),
        "Intel SGX PCK Platform CA"
    );
    assert_eq!(
        common_name(intel.tcb_signing_der()),
        "Intel SGX TCB Signing"
    );
    assert_issued_by(intel.root_der(), intel.root_der());
    assert_issued_by(intel.pck_platform_ca_der(), intel.root_der());
    assert_issued_by(intel.tcb_signing_der(), intel.root_der());
    let pck = intel.pck_leaf().build(&intel);
    assert_issued_by(&pck.der, intel.pck_platform_ca_der());

    let extension = dcap_qvl::intel::parse_pck_extension(&pck.der).unwrap();
    assert_eq!(extension.fmspc, sim::intel::DEFAULT_FMSPC);
    assert_eq!(extension.pce_svn, sim::intel::DEFAULT_PCESVN);
    assert_eq!(extension.cpu_svn, sim::intel::DEFAULT_SGX_TCB_COMPONENTS);
    assert_eq!(extension.sgx_type, 1);
    assert_eq!(extension.smt_enabled, Some(true));

    let root_crl = intel.root_crl().build(&intel);
    assert!(assert_crl_signed_by(&root_crl, intel.root_der()).is_empty());
    let pck_crl = intel.pck_crl().revoke(&[0x55], DEFAULT_AT).build(&intel);
    assert_eq!(
        assert_crl_signed_by(&pck_crl, intel.pck_platform_ca_der()),
        vec![vec![0x55]]
    );
}

#[test]
fn same_inputs_give_same_bytes() {
    let build_amd = || {
        let amd = FakeAmd::new(FakeProduct::Milan);
        let vcek = amd.vcek().build();
        let report = SnpReportBuilder::for_leaf(&vcek).sign(&vcek);
        let crl = amd.crl().revoke(&[9], DEFAULT_AT).build();
        [
            amd.ark_der().to_vec(),
            amd.ask_der().to_vec(),
            vcek.der,
            report,
            crl,
        ]
    };
    assert_eq!(build_amd(), build_amd());

    let build_intel = || {
        let intel = FakeIntel::new();
        let pck = intel.pck_leaf().build(&intel);
        let quote = TdxQuoteBuilder::new().build(&intel, &pck);
        let collateral = TdxCollateralBuilder::new(&intel).build(&intel);
        (
            intel.root_der().to_vec(),
            quote,
            collateral.to_dcap_qvl_json(),
        )
    };
    assert_eq!(build_intel(), build_intel());
}

#[test]
fn collateral_json_has_the_shape_of_the_shared_vector() {
    let intel = FakeIntel::new();
    let collateral = TdxCollateralBuilder::new(&intel).build(&intel);
    let ours: serde_json::Value = serde_json::from_str(&collateral.to_dcap_qvl_json()).unwrap();
    let mut keys: Vec<_> = ours.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    let mut expected = vec![
        "pck_crl_issuer_chain",
        "root_ca_crl",
        "pck_crl",
        "tcb_info_issuer_chain",
        "tcb_info",
        "tcb_info_signature",
        "qe_identity_issuer_chain",
        "qe_identity",
        "qe_identity_signature",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    let body: serde_json::Value = serde_json::from_str(&collateral.tcb_info_body()).unwrap();
    assert_eq!(body["tcbInfo"]["id"], "TDX");
    assert_eq!(body["tcbInfo"]["version"], 3);
    let qe: serde_json::Value = serde_json::from_str(&collateral.qe_identity_body()).unwrap();
    assert_eq!(qe["enclaveIdentity"]["id"], "TD_QE");
    assert_eq!(collateral.pcs_files().len(), 7);
}
