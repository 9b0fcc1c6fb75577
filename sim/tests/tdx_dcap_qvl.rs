//! The fake TDX evidence against dcap-qvl 0.7.1 with the fake root: the
//! defaults verify as UpToDate at `DEFAULT_AT`, and each broken variant is
//! rejected for its own reason.

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;
use sim::collateral::{CollateralSigning, TdxCollateralBuilder};
use sim::{FakeIntel, IntelAuthority, TdxQuoteBuilder, TdxQuoteFormat, DEFAULT_AT};

fn collateral_for(builder: &TdxCollateralBuilder, intel: &FakeIntel) -> QuoteCollateralV3 {
    let json = builder.build(intel).to_dcap_qvl_json();
    serde_json::from_str(&json).expect("collateral JSON has dcap-qvl's shape")
}

fn verify(
    intel: &FakeIntel,
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    at: i64,
    allow_debug: bool,
) -> Result<dcap_qvl::verify::VerifiedReport, String> {
    QuoteVerifier::new(intel.root_der().to_vec())
        .allow_debug(allow_debug)
        .verify(quote, collateral, at as u64)
        .map_err(|e| format!("{e:#}"))
}

fn default_parts() -> (FakeIntel, Vec<u8>, QuoteCollateralV3) {
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &pck);
    let collateral = collateral_for(&TdxCollateralBuilder::new(&intel), &intel);
    (intel, quote, collateral)
}

#[test]
fn default_quote_is_up_to_date() {
    let (intel, quote, collateral) = default_parts();
    let report = verify(&intel, &quote, &collateral, DEFAULT_AT, false).expect("accepted");
    assert_eq!(report.status, "UpToDate");
    assert!(report.advisory_ids.is_empty());
}

#[test]
fn default_evidence_helper_is_up_to_date() {
    let evidence = sim::default_tdx_evidence();
    let collateral: QuoteCollateralV3 =
        serde_json::from_str(&evidence.collateral.to_dcap_qvl_json()).unwrap();
    let report = QuoteVerifier::new(evidence.root_der)
        .verify(&evidence.quote, &collateral, DEFAULT_AT as u64)
        .unwrap();
    assert_eq!(report.status, "UpToDate");
}

#[test]
fn v5_quotes_with_td10_and_td15_bodies_are_up_to_date() {
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    let collateral = collateral_for(&TdxCollateralBuilder::new(&intel), &intel);
    for format in [TdxQuoteFormat::V5Td10, TdxQuoteFormat::V5Td15] {
        let quote = TdxQuoteBuilder::new().format(format).build(&intel, &pck);
        let report = verify(&intel, &quote, &collateral, DEFAULT_AT, false)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(report.status, "UpToDate", "{format:?}");
        let parsed = dcap_qvl::quote::Quote::parse(&quote).unwrap();
        assert_eq!(parsed.header.version, 5);
        match format {
            TdxQuoteFormat::V5Td15 => assert!(parsed.report.as_td15().is_some()),
            _ => assert!(parsed.report.as_td15().is_none()),
        }
    }
}

#[test]
fn trailing_bytes_are_tolerated() {
    let (intel, _, collateral) = default_parts();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new()
        .trailing_bytes(&[0; 70])
        .build(&intel, &pck);
    assert!(verify(&intel, &quote, &collateral, DEFAULT_AT, false).is_ok());
}

#[test]
fn debug_quote_fails_only_without_allow_debug() {
    let (intel, _, collateral) = default_parts();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new().debug(true).build(&intel, &pck);
    let err = verify(&intel, &quote, &collateral, DEFAULT_AT, false).unwrap_err();
    assert!(err.contains("Debug mode"), "{err}");
    assert!(verify(&intel, &quote, &collateral, DEFAULT_AT, true).is_ok());
}

#[test]
fn missing_sept_ve_disable_is_rejected() {
    let (intel, _, collateral) = default_parts();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new().td_attributes(0).build(&intel, &pck);
    let err = verify(&intel, &quote, &collateral, DEFAULT_AT, false).unwrap_err();
    assert!(err.contains("SEPT_VE_DISABLE"), "{err}");
}

fn expect_rejected(quote: &[u8], collateral: &QuoteCollateralV3, intel: &FakeIntel, needle: &str) {
    let err = verify(intel, quote, collateral, DEFAULT_AT, false)
        .err()
        .unwrap_or_else(|| panic!("expected rejection containing {needle:?}"));
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn broken_signatures_and_binding_are_rejected() {
    let (intel, _, collateral) = default_parts();
    let pck = intel.pck_leaf().build(&intel);
    let cases = [
        (
            TdxQuoteBuilder::new().corrupt_quote_signature(),
            "ISV enclave report signature",
        ),
        (
            TdxQuoteBuilder::new().corrupt_qe_report_signature(),
            "qe_report",
        ),
        (
            TdxQuoteBuilder::new().break_qe_report_binding(),
            "QE report hash mismatch",
        ),
    ];
    for (builder, needle) in cases {
        expect_rejected(&builder.build(&intel, &pck), &collateral, &intel, needle);
    }
    let mut wrong_vendor = TdxQuoteBuilder::new();
    wrong_vendor.qe_vendor_id = [0; 16];
    expect_rejected(
        &wrong_vendor.build(&intel, &pck),
        &collateral,
        &intel,
        "QE vendor",
    );
    let mut wrong_qe = TdxQuoteBuilder::new();
    wrong_qe.qe_report.mr_signer = [1; 32];
    expect_rejected(
        &wrong_qe.build(&intel, &pck),
        &collateral,
        &intel,
        "MRSIGNER",
    );
}

#[test]
fn broken_pck_certificates_are_rejected() {
    let (intel, _, collateral) = default_parts();
    let bad_sig = intel.pck_leaf().corrupt_signature().build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &bad_sig);
    expect_rejected(&quote, &collateral, &intel, "InvalidSignatureForPublicKey");

    let expired = intel
        .pck_leaf()
        .validity(DEFAULT_AT - 400 * 86_400, DEFAULT_AT - 86_400)
        .build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &expired);
    expect_rejected(&quote, &collateral, &intel, "CertExpired");

    let other_fmspc = intel
        .pck_leaf()
        .fmspc(&[0x90, 0xC0, 0x6F, 0, 0, 0])
        .build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &other_fmspc);
    expect_rejected(&quote, &collateral, &intel, "Fmspc mismatch");

    let low_tcb = intel.pck_leaf().pcesvn(1).build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &low_tcb);
    expect_rejected(&quote, &collateral, &intel, "No matching TCB level");
}

#[test]
fn revoked_pck_is_rejected() {
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().serial(&[0x12, 0x34]).build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &pck);
    let mut builder = TdxCollateralBuilder::new(&intel);
    builder.pck_crl = intel.pck_crl().revoke(&[0x12, 0x34], DEFAULT_AT - 86_400);
    let collateral = collateral_for(&builder, &intel);
    expect_rejected(&quote, &collateral, &intel, "CertRevoked");
}

#[test]
fn broken_collateral_is_rejected() {
    let (intel, quote, _) = default_parts();
    let base = TdxCollateralBuilder::new(&intel);

    let mut b = base.clone();
    b.tcb_info.signing = CollateralSigning::Corrupted;
    expect_rejected(&quote, &collateral_for(&b, &intel), &intel, "tcb_info");

    let mut b = base.clone();
    b.qe_identity.signing = CollateralSigning::OtherKey("someone-else".into());
    expect_rejected(&quote, &collateral_for(&b, &intel), &intel, "qe_identity");

    let mut b = base.clone();
    b.tcb_info.next_update = sim::rfc3339(DEFAULT_AT - 1);
    expect_rejected(
        &quote,
        &collateral_for(&b, &intel),
        &intel,
        "TCBInfo expired",
    );

    let mut b = base.clone();
    b.pck_crl = intel.pck_crl().next_update(Some(DEFAULT_AT - 1));
    expect_rejected(&quote, &collateral_for(&b, &intel), &intel, "CrlExpired");

    let mut b = base.clone();
    b.root_crl = intel.root_crl().corrupt_signature();
    expect_rejected(&quote, &collateral_for(&b, &intel), &intel, "root CA CRL");

    let mut b = base.clone();
    b.tcb_info = b.tcb_info.first_level_status("Revoked", &[]);
    expect_rejected(&quote, &collateral_for(&b, &intel), &intel, "Revoked");

    let mut b = base;
    b.tcb_info.fmspc = [0x90, 0xC0, 0x6F, 0, 0, 0];
    expect_rejected(
        &quote,
        &collateral_for(&b, &intel),
        &intel,
        "Fmspc mismatch",
    );
}

#[test]
fn out_of_date_level_reports_its_status() {
    let (intel, quote, _) = default_parts();
    let b = TdxCollateralBuilder::new(&intel).tcb_info(
        sim::TcbInfoBuilder::default().first_level_status("OutOfDate", &["INTEL-SA-01234"]),
    );
    let report = verify(
        &intel,
        &quote,
        &collateral_for(&b, &intel),
        DEFAULT_AT,
        false,
    )
    .unwrap();
    assert_eq!(report.status, "OutOfDate");
    assert_eq!(report.advisory_ids, vec!["INTEL-SA-01234".to_string()]);
}

#[test]
fn intel_production_root_does_not_accept_fake_evidence() {
    let (_, quote, collateral) = default_parts();
    let err = QuoteVerifier::new_prod()
        .verify(&quote, &collateral, DEFAULT_AT as u64)
        .unwrap_err();
    assert!(format!("{err:#}").contains("root CA CRL"), "{err:#}");
}

#[test]
fn tcb_signing_key_signs_a_pck_leaf_is_rejected() {
    let (intel, _, collateral) = default_parts();
    let pck = intel
        .pck_leaf()
        .issuer(IntelAuthority::TcbSigning)
        .build(&intel);
    let quote = TdxQuoteBuilder::new().build(&intel, &pck);
    let err = verify(&intel, &quote, &collateral, DEFAULT_AT, false).unwrap_err();
    // The TCB Signing key is no PCK CA: the chain does not lead to the PCK leaf's issuer.
    assert!(err.contains("certificate chain: UnknownIssuer"), "{err}");
}
