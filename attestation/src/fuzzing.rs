//! Fuzz entry points: one function per fuzz target in `fuzz/` (cargo-fuzz), also fed the
//! seed corpus by `tests/fuzz_seeds.rs` in every `cargo test` run.
//!
//! Each function takes arbitrary bytes, runs a parser and the verification behind it, and
//! returns nothing: every input must end in `Ok` or a [`Rejection`](crate::Rejection),
//! so any panic is a bug. Verification runs at fixed times inside the validity windows
//! of the real example evidence (`examples/evidence/`), which is embedded here so that a
//! fuzzed certificate or collateral is checked against a genuine report or quote.
//!
//! Targets that take several inputs (`tdx_collateral`, `evidence_inputs`) split the bytes
//! at [`PART_SEPARATOR`].

use crate::evidence::{Platform, TrustAnchors, VerifiedEvidence};
use crate::inputs::EvidenceInputs;
use crate::policy::Policy;
use crate::reason::Reason;
use crate::snp::{self, HwId, SnpEvidence, SnpReport, SnpTrustAnchors};
use crate::tdx::{self, CollateralParts, Quote, TdxCollateral, TdxTrustAnchors};
use crate::time::Timestamp;
use crate::x509;
use std::hint::black_box;
use std::sync::OnceLock;

/// Separates the inputs packed into one fuzz input (`tdx_collateral`, `evidence_inputs`).
pub const PART_SEPARATOR: &[u8] = b"\n%%part%%\n";

/// A real SEV-SNP v5 report from an AMD Genoa (project-oak), valid at [`SNP_TIME`].
const GENOA_REPORT: &[u8] = include_bytes!("../../examples/evidence/snp-genoa/report.bin");
/// The VCEK that signed [`GENOA_REPORT`].
const GENOA_VCEK: &[u8] = include_bytes!("../../examples/evidence/snp-genoa/vcek.der");
/// 2025-10-01T08:00:00Z, inside the validity of the Genoa report's chain.
const SNP_TIME: Timestamp = Timestamp::from_unix(1_759_305_600);

/// A real TDX v4 quote (Phala dcap-qvl sample, FMSPC B0C06F000000).
const TDX_QUOTE: &[u8] = include_bytes!("../../examples/evidence/tdx-b0c06f/tdx_quote");
/// The dcap-qvl collateral JSON for [`TDX_QUOTE`].
const TDX_COLLATERAL: &[u8] =
    include_bytes!("../../examples/evidence/tdx-b0c06f/tdx_quote_collateral.json");
/// 2025-07-01T00:00:00Z, inside the validity of the TDX quote's collateral.
const TDX_TIME: Timestamp = Timestamp::from_unix(1_751_328_000);

fn anchors() -> &'static TrustAnchors {
    static ANCHORS: OnceLock<TrustAnchors> = OnceLock::new();
    ANCHORS.get_or_init(TrustAnchors::production)
}

fn amd() -> &'static SnpTrustAnchors {
    &anchors().snp
}

fn intel() -> &'static TdxTrustAnchors {
    &anchors().tdx
}

fn example_collateral() -> Option<&'static TdxCollateral> {
    static COLLATERAL: OnceLock<Option<TdxCollateral>> = OnceLock::new();
    COLLATERAL
        .get_or_init(|| TdxCollateral::from_dcap_qvl_json(TDX_COLLATERAL).ok())
        .as_ref()
}

/// The example evidence, verified once, for appraising fuzzed policies.
fn example_evidence() -> &'static [VerifiedEvidence] {
    static EVIDENCE: OnceLock<Vec<VerifiedEvidence>> = OnceLock::new();
    EVIDENCE.get_or_init(|| {
        let snp = snp::verify(GENOA_REPORT, &[GENOA_VCEK.to_vec()], &[], amd(), SNP_TIME)
            .map(|v| VerifiedEvidence::Snp(Box::new(v)));
        let tdx = tdx::verify(TDX_QUOTE, example_collateral(), intel(), TDX_TIME)
            .map(|v| VerifiedEvidence::Tdx(Box::new(v)));
        [snp, tdx].into_iter().filter_map(Result::ok).collect()
    })
}

/// The inputs packed into one fuzz input.
fn parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest
        .windows(PART_SEPARATOR.len())
        .position(|w| w == PART_SEPARATOR)
    {
        parts.push(&rest[..i]);
        rest = &rest[i + PART_SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// SEV-SNP evidence (bare or Azure HCL report): parse, then verify without certificates
/// and with the real Genoa VCEK.
pub fn snp_report(data: &[u8]) {
    black_box(snp::looks_like_snp_evidence(data));
    if let Ok(evidence) = SnpEvidence::parse(data) {
        let report = evidence.report();
        black_box((
            report.debug_allowed(),
            report.migration_agent_allowed(),
            report.smt_allowed(),
            report.policy_abi(),
            report.author_key_enabled(),
            report.chip_id_masked(),
            report.signing_key().is_ok(),
            report.signed_bytes().len(),
            evidence.runtime_data().map(<[u8]>::len),
        ));
    }
    black_box(SnpReport::parse(data).is_ok());
    black_box(snp::verify(data, &[], &[], amd(), SNP_TIME).is_ok());
    if let Ok(verified) = snp::verify(data, &[GENOA_VCEK.to_vec()], &[], amd(), SNP_TIME) {
        black_box(verified.claims());
    }
}

/// A certificate (DER or PEM, or a bare extension value): x509 parsing, the VCEK/VLEK
/// extension readers (TCB SPLs, productName, hwID), then as the signing certificate (or a
/// CRL) of the real Genoa report.
pub fn snp_certificate(data: &[u8]) {
    let mut ders = match x509::pem_blocks(data) {
        Ok(blocks) => blocks.into_iter().map(|b| b.der).collect(),
        Err(_) => Vec::new(),
    };
    if ders.is_empty() {
        ders.push(data.to_vec());
    }
    HwId::fuzz_extension_readers(data);
    for der in &ders {
        HwId::fuzz_extension_readers(der);
        black_box(HwId::from_cert_der(der).is_ok());
        if let Ok(cert) = x509::parse_cert(der, "fuzzed certificate") {
            black_box(x509::common_name(cert.subject()));
        }
    }
    black_box(snp::verify(GENOA_REPORT, &ders, &[], amd(), SNP_TIME).is_ok());
    // Next to the real VCEK, a fuzzed one with the same CN is matched against the report
    // (productName, TCB and hwID extensions) to pick the leaf.
    let mut with_real = vec![GENOA_VCEK.to_vec()];
    with_real.extend(ders.iter().cloned());
    black_box(snp::verify(GENOA_REPORT, &with_real, &[], amd(), SNP_TIME).is_ok());
    if x509::parse_crl(data, "fuzzed CRL").is_ok() {
        let crls = [data.to_vec()];
        black_box(snp::verify(GENOA_REPORT, &with_real[..1], &crls, amd(), SNP_TIME).is_ok());
    }
}

/// A TDX quote: parse, then verify without collateral (PCK chain, QE report, quote
/// signature); a quote whose signatures hold is also verified with the example collateral.
pub fn tdx_quote(data: &[u8]) {
    black_box(tdx::looks_like_tdx_quote(data));
    if let Ok(quote) = Quote::parse(data) {
        black_box((
            quote.body_type(),
            quote.signed_len(),
            quote.trailing_bytes(),
            quote.pck_chain_der().len(),
            quote.body.under_debug(),
            quote.body.sept_ve_disable(),
        ));
    }
    match tdx::verify(data, None, intel(), TDX_TIME) {
        Err(e) if e.reason == Reason::CollateralMissing => {
            if let Ok(verified) = tdx::verify(data, example_collateral(), intel(), TDX_TIME) {
                black_box(verified.claims());
            }
        }
        other => {
            black_box(other.is_ok());
        }
    }
}

/// TDX collateral: a dcap-qvl collateral JSON, and PCS parts (JSON bodies, certificates,
/// CRLs, split at [`PART_SEPARATOR`]) assembled by [`CollateralParts`]; whatever builds is
/// used to verify the real example quote.
pub fn tdx_collateral(data: &[u8]) {
    if let Ok(collateral) = TdxCollateral::from_dcap_qvl_json(data) {
        black_box(collateral.validity_window());
        black_box(tdx::verify(TDX_QUOTE, Some(&collateral), intel(), TDX_TIME).is_ok());
    }
    let mut collected = CollateralParts::default();
    for part in parts(data) {
        let _ = collected.offer_json(part);
        let _ = collected.offer_crl(part);
        match x509::pem_blocks(part) {
            Ok(blocks) if !blocks.is_empty() => {
                for block in blocks {
                    let _ = collected.offer_cert(&block.der);
                    let _ = collected.offer_crl(&block.der);
                }
            }
            _ => {
                let _ = collected.offer_cert(part);
            }
        }
    }
    if let Ok(Some(collateral)) = collected.build() {
        black_box(tdx::verify(TDX_QUOTE, Some(&collateral), intel(), TDX_TIME).is_ok());
    }
}

/// Evidence inputs in any form (split at [`PART_SEPARATOR`]): recognised by
/// [`EvidenceInputs::add`], verified at the example evidence's time for its platform, and
/// appraised against the default policy.
pub fn evidence_inputs(data: &[u8]) {
    let mut inputs = EvidenceInputs::new();
    for (i, part) in parts(data).into_iter().enumerate() {
        let _ = inputs.add(&format!("input{i}"), part);
    }
    black_box((inputs.recognised().len(), inputs.snp_crl_count()));
    let at = match inputs.platform() {
        Some(Platform::Tdx) => TDX_TIME,
        _ => SNP_TIME,
    };
    if let Ok(verified) = inputs.verify(anchors(), at) {
        black_box(verified.claims());
        black_box(Policy::default_verifier().appraise(&verified).is_ok());
    }
}

/// A policy TOML: load, serialise and reload (which must give the same policy), and
/// appraise the verified example evidence with it.
pub fn policy_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let again = Policy::from_toml(&policy.to_toml());
    assert_eq!(
        again.as_ref(),
        Ok(&policy),
        "policy does not survive to_toml"
    );
    black_box(policy.unpinned_fields());
    for evidence in example_evidence() {
        black_box(policy.appraise(evidence).is_ok());
    }
    black_box(TrustAnchors::for_policy(&policy, &[GENOA_VCEK.to_vec()]).1);
}
