//! `SnpVerifier` / `TdxVerifier` remember verified chains and platforms. These tests show
//! the cache never changes an answer: same claims as the uncached path, tampering still
//! caught, and a time outside the cached window gives the uncached path's exact reason.

use attestation::snp::{self, SnpTrustAnchors, SnpVerifier};
use attestation::tdx::{self, TdxCollateral, TdxTrustAnchors, TdxVerifier};
use attestation::{Reason, Timestamp};
use std::path::Path;

fn example(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/evidence")
            .join(path),
    )
    .unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn claims_json<T: serde::Serialize>(claims: &T) -> String {
    serde_json::to_string(claims).unwrap()
}

#[test]
fn snp_cache_hits_give_the_same_claims_and_still_check_the_report() {
    let report = example("snp-genoa/report.bin");
    let certs = vec![example("snp-genoa/vcek.der")];
    let t = at("2025-10-01T08:00:00Z");
    let uncached = snp::verify(&report, &certs, &[], &SnpTrustAnchors::amd(), t).unwrap();
    let verifier = SnpVerifier::new(SnpTrustAnchors::amd());
    assert_eq!(verifier.cached_chains(), 0);
    for _ in 0..3 {
        let cached = verifier.verify(&report, &certs, &[], t).unwrap();
        assert_eq!(
            claims_json(&cached.claims()),
            claims_json(&uncached.claims())
        );
    }
    assert_eq!(verifier.cached_chains(), 1, "one chain, verified once");

    let mut tampered = report.clone();
    tampered[0x90] ^= 1; // REPORT_DATA, inside the signed range
    let err = verifier.verify(&tampered, &certs, &[], t).unwrap_err();
    assert_eq!(err.reason, Reason::ReportSignatureInvalid);

    // Far outside the VCEK's validity: the cached chain does not apply.
    let err = verifier
        .verify(&report, &certs, &[], at("2099-01-01T00:00:00Z"))
        .unwrap_err();
    let direct = snp::verify(
        &report,
        &certs,
        &[],
        &SnpTrustAnchors::amd(),
        at("2099-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(err.reason, direct.reason);
    assert!(matches!(err.reason, Reason::CertificateExpired), "{err}");
}

#[test]
fn snp_cache_is_per_anchor_set() {
    let report = example("snp-genoa/report.bin");
    let certs = vec![example("snp-genoa/vcek.der")];
    let t = at("2025-10-01T08:00:00Z");
    let trusting_nothing = SnpVerifier::new(SnpTrustAnchors::empty());
    let err = trusting_nothing
        .verify(&report, &certs, &[], t)
        .unwrap_err();
    assert_eq!(err.reason, Reason::UntrustedRoot);
    assert_eq!(
        trusting_nothing.cached_chains(),
        0,
        "failures are never cached"
    );
}

#[test]
fn tdx_cache_hits_give_the_same_claims_and_still_check_the_quote() {
    let quote = example("tdx-b0c06f/tdx_quote");
    let collateral =
        TdxCollateral::from_dcap_qvl_json(&example("tdx-b0c06f/tdx_quote_collateral.json"))
            .unwrap();
    let t = at("2025-07-01T00:00:00Z");
    let uncached = tdx::verify(&quote, Some(&collateral), &TdxTrustAnchors::intel(), t).unwrap();
    let verifier = TdxVerifier::new(TdxTrustAnchors::intel());
    for _ in 0..3 {
        let cached = verifier.verify(&quote, Some(&collateral), t).unwrap();
        assert_eq!(
            claims_json(&cached.claims()),
            claims_json(&uncached.claims())
        );
    }
    assert_eq!(verifier.cached_platforms(), 1);

    // A byte of MRTD (not part of the platform key) changed: the quote signature fails.
    let mut tampered = quote.clone();
    tampered[48 + 16 + 48 + 48 + 8 + 8 + 8] ^= 1;
    let err = verifier
        .verify(&tampered, Some(&collateral), t)
        .unwrap_err();
    assert_eq!(err.reason, Reason::QuoteSignatureInvalid);

    // After the collateral's nextUpdate the cached platform does not apply.
    let late = at("2025-08-01T00:00:00Z");
    let err = verifier
        .verify(&quote, Some(&collateral), late)
        .unwrap_err();
    let direct =
        tdx::verify(&quote, Some(&collateral), &TdxTrustAnchors::intel(), late).unwrap_err();
    assert_eq!(err.reason, direct.reason);
    assert_eq!(err.reason, Reason::CollateralExpired);

    // Without collateral the answer is the uncached one.
    let err = verifier.verify(&quote, None, t).unwrap_err();
    assert_eq!(err.reason, Reason::CollateralMissing);
}

#[test]
fn tdx_cache_key_covers_the_collateral() {
    let quote = example("tdx-b0c06f/tdx_quote");
    let json = example("tdx-b0c06f/tdx_quote_collateral.json");
    let collateral = TdxCollateral::from_dcap_qvl_json(&json).unwrap();
    let t = at("2025-07-01T00:00:00Z");
    let verifier = TdxVerifier::new(TdxTrustAnchors::intel());
    verifier.verify(&quote, Some(&collateral), t).unwrap();

    // Same quote, TCB info tampered (one digit of tcbEvaluationDataNumber): must be
    // re-verified, and fail, not served from the cache.
    let text = String::from_utf8(json).unwrap();
    let tampered = text.replacen(
        "\\\"tcbEvaluationDataNumber\\\":17",
        "\\\"tcbEvaluationDataNumber\\\":18",
        1,
    );
    assert_ne!(tampered, text, "the edit must change the collateral");
    let bad = TdxCollateral::from_dcap_qvl_json(tampered.as_bytes()).unwrap();
    let err = verifier.verify(&quote, Some(&bad), t).unwrap_err();
    assert_eq!(err.reason, Reason::CollateralSignatureInvalid);
}
