//! The real evidence among the launch-measurement fixtures (`testdata/vectors/measure/`):
//! each verifies (or is rejected for the reason its manifest predicts), and the fields
//! its manifest records are the fields the verifier reads. The measurement computations
//! themselves are checked in the `host` crate.

use attestation::snp::{self, SnpReport, SnpTrustAnchors};
use attestation::tdx::{self, CollateralParts, Quote, TdxTrustAnchors};
use attestation::{x509, Reason, Timestamp};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    sim::vectors::vector_dir("measure", name)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(dir: &Path) -> toml::Table {
    toml::from_str(&String::from_utf8(read(&dir.join("MANIFEST.toml"))).unwrap()).unwrap()
}

/// `[expected] key` of a fixture's manifest, as a string.
fn expected(doc: &toml::Table, key: &str) -> String {
    doc["expected"][key]
        .as_str()
        .unwrap_or_else(|| panic!("[expected] {key} is not a string"))
        .to_owned()
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    x509::certs_from_pem(&read(path)).unwrap()
}

/// dstack's live Milan report: signed by the VCEK the fixture carries, through its ASK to
/// AMD's pinned ARK-Milan; every value the manifest records matches the verified claims.
#[test]
fn dstack_live_milan_report_verifies_with_its_recorded_values() {
    let dir = fixture("dstack-snp-live-milan");
    let doc = manifest(&dir);
    let report = read(&dir.join("snp_report.bin"));
    // The derived report is bytes [4, 1188) of the original attestation file.
    assert_eq!(report, read(&dir.join("sev_snp_attestation.bin"))[4..1188]);
    let mut certs = pem_certs(&dir.join("sev_snp_vcek.pem"));
    certs.extend(pem_certs(&dir.join("sev_snp_ask.pem")));
    // Captured 2026-06-17; its VCEK was issued that day at 01:05 UTC.
    let when = at("2026-07-01T00:00:00Z");
    let verified = snp::verify(&report, &certs, &[], &SnpTrustAnchors::amd(), when)
        .unwrap_or_else(|r| panic!("{r}"));
    let c = verified.claims();
    assert_eq!(c.measurement, expected(&doc, "measurement"));
    assert_eq!(c.host_data, expected(&doc, "host_data"));
    assert_eq!(c.chip_id, expected(&doc, "chip_id"));
    assert_eq!(
        c.report_version as i64,
        doc["expected"]["report_version"].as_integer().unwrap()
    );
    assert_eq!(
        u64::from_str_radix(c.policy.trim_start_matches("0x"), 16).unwrap() as i64,
        doc["expected"]["policy"].as_integer().unwrap()
    );
    let report_data = hex::decode(&c.report_data).unwrap();
    let ascii = expected(&doc, "report_data_ascii");
    assert!(
        report_data.starts_with(ascii.as_bytes()),
        "report_data {}",
        c.report_data
    );
    let parsed = SnpReport::parse(&report).unwrap();
    assert_eq!(
        hex::encode(parsed.reported_tcb.to_le_bytes()),
        expected(&doc, "reported_tcb_le_hex")
    );
    assert_eq!(
        hex::encode(parsed.current_tcb.to_le_bytes()),
        expected(&doc, "current_tcb_le_hex")
    );
    let fms = expected(&doc, "cpuid_fam_mod_step");
    assert_eq!(
        format!(
            "{:02x} {:02x} {:02x}",
            parsed.cpuid_fam_id.unwrap(),
            parsed.cpuid_mod_id.unwrap(),
            parsed.cpuid_step.unwrap()
        ),
        fms
    );
    // One flipped measurement bit breaks the report signature.
    let mut tampered = report.clone();
    tampered[0x90] ^= 1;
    let r = snp::verify(&tampered, &certs, &[], &SnpTrustAnchors::amd(), when).unwrap_err();
    assert_eq!(r.reason, Reason::ReportSignatureInvalid, "{r}");
}

/// virtee/sev's Milan report (hex text) verifies with its VCEK and KDS chain, and, as in
/// virtee's own test, flipping bit 0x80 of byte 21 breaks it; the Turin VCEK chains to
/// the Turin ARK in its KDS chain.
#[test]
fn virtee_milan_report_and_turin_chain() {
    let dir = fixture("virtee-sev-snp-report-certs");
    let text = String::from_utf8(read(&dir.join("report_milan.hex"))).unwrap();
    let report = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
    assert_eq!(report.len(), 1184);
    let mut certs = vec![read(&dir.join("vcek_milan.der"))];
    certs.extend(pem_certs(&dir.join("cert_chain_milan")));
    let when = at("2024-01-01T00:00:00Z");
    let verified = snp::verify(&report, &certs, &[], &SnpTrustAnchors::amd(), when)
        .unwrap_or_else(|r| panic!("{r}"));
    let c = verified.claims();
    assert_eq!(
        c.measurement,
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
    );
    assert_eq!(c.report_version, 2);
    let mut flipped = report.clone();
    flipped[21] ^= 0x80;
    let r = snp::verify(&flipped, &certs, &[], &SnpTrustAnchors::amd(), when).unwrap_err();
    assert_eq!(r.reason, Reason::ReportSignatureInvalid, "{r}");

    // Turin: the VCEK is signed by the ASK of the KDS chain, whose ARK is AMD's pinned one.
    let turin_chain = pem_certs(&dir.join("cert_chain_turin"));
    assert_eq!(turin_chain.len(), 2);
    let ark_sha = x509::sha256(&turin_chain[1]);
    assert!(
        SnpTrustAnchors::amd()
            .pinned_roots()
            .iter()
            .any(|(_, pinned)| *pinned == ark_sha),
        "Turin ARK {} is not pinned",
        hex::encode(ark_sha)
    );
    let vcek = read(&dir.join("vcek_turin.der"));
    let vcek = x509::parse_cert(&vcek, "Turin VCEK").unwrap();
    let ask = x509::parse_cert(&turin_chain[0], "Turin ASK").unwrap();
    assert_eq!(vcek.issuer(), ask.subject());
    assert!(vcek.subject().to_string().contains("SEV-VCEK"));
}

/// dstack's TDX quote: the quote signature, QE report and PCK chain verify (the rejection
/// comes only at the missing collateral); its fields are the manifest's; the Intel PCS
/// collateral for its FMSPC is signed by Intel but older than the PCK certificate, so no
/// time makes both valid, and each side's rejection is the one that applies.
#[test]
fn dstack_tdx_quote_and_the_pcs_collateral_for_its_fmspc() {
    let dir = fixture("dstack-tdx-quote-eventlog");
    let doc = manifest(&dir);
    let quote_bytes = read(&dir.join("quote.bin"));
    let quote = Quote::parse(&quote_bytes).unwrap();
    let body = &quote.body;
    assert_eq!(hex::encode(body.mr_td), expected(&doc, "mrtd"));
    for (i, rtmr) in body.rtmr.iter().enumerate() {
        assert_eq!(
            hex::encode(rtmr),
            expected(&doc, &format!("rtmr{i}")),
            "rtmr{i}"
        );
    }
    assert_eq!(
        hex::encode(body.td_attributes),
        expected(&doc, "td_attributes")
    );
    assert_eq!(hex::encode(body.xfam), expected(&doc, "xfam"));
    assert_eq!(hex::encode(body.mr_config_id), expected(&doc, "mrconfigid"));
    assert_eq!(
        hex::encode(body.report_data),
        expected(&doc, "report_data_hex")
    );
    // The PEM chain the fixture extracted is the one inside the quote.
    let chain = pem_certs(&dir.join("pck_chain_from_quote.pem"));
    assert_eq!(chain.len(), 3);

    let anchors = TdxTrustAnchors::intel();
    let after_pck = at("2026-06-17T00:00:00Z");
    let r = tdx::verify(&quote_bytes, None, &anchors, after_pck).unwrap_err();
    // CollateralMissing comes only after every signature check passed.
    assert_eq!(r.reason, Reason::CollateralMissing, "{r}");
    let mut tampered = quote_bytes.clone();
    tampered[48 + 136] ^= 1; // a byte of MRTD, under the quote signature
    let r = tdx::verify(&tampered, None, &anchors, after_pck).unwrap_err();
    assert_eq!(r.reason, Reason::QuoteSignatureInvalid, "{r}");

    // The collateral: every PCS part is recognised and the set builds.
    let pcs = fixture("intel-pcs-collateral-fmspc-90c06f000000");
    let mut parts = CollateralParts::default();
    for name in [
        "qe_identity.json",
        "tcb_info_90c06f000000.json",
        "pck_crl_platform.crl",
        "root_ca.crl",
    ] {
        let bytes = read(&pcs.join(name));
        let taken = if name.ends_with(".json") {
            parts.offer_json(&bytes)
        } else {
            parts.offer_crl(&bytes)
        };
        assert!(taken.unwrap_or_else(|r| panic!("{name}: {r}")), "{name}");
    }
    for name in [
        "qe_identity_chain.txt",
        "tcb_info_90c06f000000_chain.txt",
        "pck_crl_platform_chain.txt",
    ] {
        let text = urlencoding_decode(&read(&pcs.join(name)));
        for der in x509::certs_from_pem(&text).unwrap() {
            parts
                .offer_cert(&der)
                .unwrap_or_else(|r| panic!("{name}: {r}"));
        }
    }
    let collateral = parts
        .build()
        .unwrap()
        .expect("the PCS parts make a collateral set");
    assert!(collateral
        .tcb_info_json()
        .to_lowercase()
        .contains("\"fmspc\":\"90c06f000000\""));
    // Inside the collateral's window the PCK certificate is not valid yet...
    let r = tdx::verify(
        &quote_bytes,
        Some(&collateral),
        &anchors,
        at("2026-01-20T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(r.reason, Reason::CertificateNotYetValid, "{r}");
    // ...and once it is, the collateral has expired.
    let r = tdx::verify(&quote_bytes, Some(&collateral), &anchors, after_pck).unwrap_err();
    assert_eq!(r.reason, Reason::CollateralExpired, "{r}");
}

/// Percent-decoding of the PCS issuer-chain headers as the fixture stores them.
fn urlencoding_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
