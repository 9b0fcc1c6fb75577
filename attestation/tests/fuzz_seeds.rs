//! The fuzz targets' seed corpus (`fuzz/corpus/<target>/`) as an ordinary test: every seed
//! and deterministic mutations of it (prefixes, single-byte changes, splices) go through
//! the target's `attestation::fuzzing` function, and none may panic (`fuzz/seed_runner.rs`).
//! The genuine partners those functions verify fuzzed inputs against must themselves
//! verify, with exactly the outcome recorded here.

#[path = "../../fuzz/seed_runner.rs"]
mod seed_runner;

use attestation::audit::{self, AuditBundle};
use attestation::binding::PolicyFile;
use attestation::bundle::EvidenceBundle;
use attestation::evidence::Platform;
use attestation::evidence::{TrustAnchors, VerifiedEvidence};
use attestation::fuzzing;
use attestation::policy::{Constraint, Hex, Policy};
use attestation::receipt::ReceiptClaims;
use attestation::snp::{self, Product, SigningKey};
use attestation::tdx::{self, TcbStatus, TdxCollateral};
use attestation::transcript;
use seed_runner::{fuzz_dir, run_target, Target};

/// Every fuzz target of this crate, named as its `fuzz/fuzz_targets/<name>.rs` and corpus
/// directory.
const TARGETS: [(&str, Target); 16] = [
    ("snp_report", fuzzing::snp_report),
    ("snp_certificate", fuzzing::snp_certificate),
    ("tdx_quote", fuzzing::tdx_quote),
    ("tdx_collateral", fuzzing::tdx_collateral),
    ("evidence_inputs", fuzzing::evidence_inputs),
    ("policy_toml", fuzzing::policy_toml),
    ("evidence_bundle", fuzzing::evidence_bundle),
    ("bundle_certificate", fuzzing::bundle_certificate),
    ("runtime_claims", fuzzing::runtime_claims),
    ("policy_file", fuzzing::policy_file),
    ("receipt", fuzzing::receipt),
    ("transcript", fuzzing::transcript),
    ("audit_bundle", fuzzing::audit_bundle),
    ("gpu_evidence", fuzzing::gpu_evidence),
    ("gpu_rim", fuzzing::gpu_rim),
    ("gpu_ocsp", fuzzing::gpu_ocsp),
];

fn run(target: &str) {
    let (_, f) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of this crate");
    run_target(target, *f);
}

#[test]
fn every_corpus_directory_has_a_target() {
    let dir = fuzz_dir().join("corpus");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("corpus entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let all: Vec<String> = seed_runner::fuzz_targets()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(found, all, "fuzz/corpus/* must match fuzz/fuzz_targets/*");
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    seed_runner::check_owned_targets("attestation", &names);
}

#[test]
fn snp_report_seeds() {
    run("snp_report");
}

#[test]
fn snp_certificate_seeds() {
    run("snp_certificate");
}

#[test]
fn tdx_quote_seeds() {
    run("tdx_quote");
}

#[test]
fn tdx_collateral_seeds() {
    run("tdx_collateral");
}

#[test]
fn evidence_inputs_seeds() {
    run("evidence_inputs");
}

#[test]
fn policy_toml_seeds() {
    run("policy_toml");
}

#[test]
fn evidence_bundle_seeds() {
    run("evidence_bundle");
}

#[test]
fn bundle_certificate_seeds() {
    run("bundle_certificate");
}

#[test]
fn runtime_claims_seeds() {
    run("runtime_claims");
}

#[test]
fn policy_file_seeds() {
    run("policy_file");
}

#[test]
fn receipt_seeds() {
    run("receipt");
}

#[test]
fn transcript_seeds() {
    run("transcript");
}

#[test]
fn gpu_evidence_seeds() {
    run("gpu_evidence");
}

#[test]
fn gpu_rim_seeds() {
    run("gpu_rim");
}

#[test]
fn gpu_ocsp_seeds() {
    run("gpu_ocsp");
}

#[test]
fn audit_bundle_seeds() {
    run("audit_bundle");
}

/// How one policy appraises the example SNP and TDX evidence: "ok" or the reason code.
fn appraisals(policy: &Policy, evidence: &[VerifiedEvidence; 2]) -> (String, String) {
    let outcome = |e: &VerifiedEvidence| match policy.appraise(e) {
        Ok(_) => "ok".to_string(),
        Err(r) => r.reason.code().to_string(),
    };
    (outcome(&evidence[0]), outcome(&evidence[1]))
}

/// The genuine partners of the fuzz targets verify, with exactly the outcome recorded
/// here: if the example evidence stopped verifying (or verified as something else), the
/// targets checking fuzzed certificates, collateral and policies against it would test
/// nothing but rejections.
#[test]
fn the_example_evidence_verifies_and_the_corpus_policies_appraise_it() {
    fuzzing::check_genuine_partners();
    let anchors = TrustAnchors::production();
    let snp = snp::verify(
        GENOA_REPORT,
        &[GENOA_VCEK.to_vec()],
        &[],
        &anchors.snp,
        fuzzing::SNP_TIME,
    )
    .expect("examples/evidence/snp-genoa verifies");
    let c = snp.claims();
    assert_eq!(
        (c.product, c.report_version, c.signing_key, c.vmpl, c.debug),
        (Product::Genoa, 5, SigningKey::Vcek, 0, false)
    );
    assert_eq!(c.measurement, SNP_MEASUREMENT);
    let tdx = tdx::verify(
        TDX_QUOTE,
        Some(&TdxCollateral::from_dcap_qvl_json(TDX_COLLATERAL).expect("collateral loads")),
        &anchors.tdx,
        fuzzing::TDX_TIME,
    )
    .expect("examples/evidence/tdx-b0c06f verifies");
    let c = tdx.claims();
    assert_eq!(
        (c.quote_version, c.body, c.tcb_status, c.fmspc.as_str()),
        (4, "TD10", TDX_TCB_STATUS, "b0c06f000000")
    );
    assert_eq!(c.advisory_ids, TDX_ADVISORIES);
    assert_eq!(c.mr_td, TDX_MRTD);
    let evidence = [
        VerifiedEvidence::Snp(Box::new(snp)),
        VerifiedEvidence::Tdx(Box::new(tdx)),
    ];

    // How the verifier's default policy, variants of it and the fixture's policy appraise
    // the two (built in code: the corpus policies follow the file format of their day).
    let mut snp_only = Policy::default_verifier();
    snp_only.platforms = vec![Platform::Snp];
    snp_only.tdx = None;
    let mut pinned = Policy::default_verifier();
    if let Some(snp) = pinned.snp.as_mut() {
        snp.measurement = Constraint::Only(vec![Hex([0; 48])]);
    }
    if let Some(tdx) = pinned.tdx.as_mut() {
        tdx.mrtd = Constraint::Only(vec![Hex([0; 48])]);
    }
    let policies = [
        ("default_verifier", Policy::default_verifier()),
        ("snp only", snp_only),
        ("measurement and MRTD pinned to zero", pinned),
        ("fixture", fuzzing::sim_policy().evidence),
    ];
    let got: Vec<String> = policies
        .iter()
        .map(|(name, policy)| {
            let (s, t) = appraisals(policy, &evidence);
            format!("{name}: snp {s}, tdx {t}")
        })
        .collect();
    assert_eq!(got.join("\n"), APPRAISALS.trim(), "appraisals changed");

    // The policy targets get seeds that load, so that they reach past the parser.
    let loading = |target: &str, load: &dyn Fn(&str) -> bool| {
        let n = seed_runner::seeds(target)
            .iter()
            .filter(|(_, bytes)| std::str::from_utf8(bytes).is_ok_and(load))
            .count();
        assert!(
            n > 0,
            "no fuzz/corpus/{target} seed loads: the policy format changed; regenerate the \
             code-* and sim-* seeds (see fuzz/README.md) and refresh the others"
        );
    };
    loading("policy_toml", &|t| Policy::from_toml(t).is_ok());
    loading("policy_file", &|t| PolicyFile::from_toml(t).is_ok());
}

/// The FAKE runtime of `fuzz/fixtures/` verifies under its policy with exactly the audit
/// report its generator made, and so do its other bundles (`sim-*` evidence_bundle seeds).
#[test]
fn the_fixture_runtime_verifies() {
    let read = |path: &str| std::fs::read(fuzz_dir().join(path)).expect(path);
    let policy = fuzzing::sim_policy();
    let bundle = AuditBundle::from_cbor(&read("fixtures/sim-audit-bundle.cbor")).unwrap();
    let opener = |sealed: &[u8], claims: &ReceiptClaims| {
        transcript::check_against_receipt(
            &transcript::open(sealed, &fuzzing::SIM_AUDITOR_SECRET)?,
            claims,
        )
    };
    let report = audit::verify_bundle(&bundle, &policy, fuzzing::SIM_TIME, Some(&opener))
        .expect("the fixture audit bundle verifies");
    assert_eq!(
        (report.jobs, report.prompt_tokens, report.output_tokens),
        (3, 51, 24)
    );
    assert_eq!((report.device_ms, report.billed_device_seconds), (1194, 3));
    let section = &report.sections[0];
    assert_eq!(section.platform, "snp");
    assert_eq!(
        (
            section.transcripts.audited_jobs,
            section.transcripts.present,
            section.transcripts.opened
        ),
        (2, 2, 2)
    );
    let mut platforms = Vec::new();
    for (name, bytes) in seed_runner::seeds("evidence_bundle") {
        if name.starts_with("sim-") {
            let attested = EvidenceBundle::from_cbor(&bytes)
                .and_then(|b| b.verify_with(&policy, fuzzing::SIM_TIME))
                .unwrap_or_else(|r| panic!("evidence_bundle/{name}: {r}"));
            platforms.push(attested.evidence().platform().as_str());
        }
    }
    assert_eq!(platforms, ["snp", "snp", "tdx"]);
}

const GENOA_REPORT: &[u8] = include_bytes!("../../examples/evidence/snp-genoa/report.bin");
const GENOA_VCEK: &[u8] = include_bytes!("../../examples/evidence/snp-genoa/vcek.der");
const TDX_QUOTE: &[u8] = include_bytes!("../../examples/evidence/tdx-b0c06f/tdx_quote");
const TDX_COLLATERAL: &[u8] =
    include_bytes!("../../examples/evidence/tdx-b0c06f/tdx_quote_collateral.json");
const SNP_MEASUREMENT: &str =
    "c57729018b0a6fb90dc17bb138b0aa35e4401004283ff4a2c24d3739ff3750f52384370e77b7032862a08c440a9bc4dc";
const TDX_MRTD: &str =
    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const TDX_TCB_STATUS: TcbStatus = TcbStatus::UpToDate;
const TDX_ADVISORIES: &[&str] = &[];
/// How each policy of the test appraises the example SNP and TDX evidence.
const APPRAISALS: &str = "
default_verifier: snp ok, tdx ok
snp only: snp ok, tdx platform_not_allowed
measurement and MRTD pinned to zero: snp measurement_mismatch, tdx measurement_mismatch
fixture: snp measurement_mismatch, tdx measurement_mismatch
";

/// Regenerate the `sim-*` seeds (FAKE evidence from veritee-sim (lib `sim`), shapes the real corpus
/// lacks): `cargo test -p veritee-attestation --test fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes fuzz/corpus/*/sim-*; run by hand after changing veritee-sim"]
fn regenerate_sim_seeds() {
    use sim::{
        FakeAmd, FakeIntel, FakeProduct, SnpReportBuilder, TdxCollateralBuilder, TdxQuoteBuilder,
        TdxQuoteFormat,
    };
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    };
    let join = |parts: &[&[u8]]| parts.join(fuzzing::PART_SEPARATOR);

    // SEV-SNP: a Turin VLEK-signed v5 report with its fake chain, and an ARK CRL that
    // revokes a serial (no real AMD CRL is in the corpus).
    let amd = FakeAmd::new(FakeProduct::Turin);
    let vlek = amd.vlek().build();
    let report = SnpReportBuilder::for_leaf(&vlek).sign(&vlek);
    let crl = amd
        .crl()
        .revoke(&[0x01, 0x02], sim::DEFAULT_AT - 86_400)
        .build();
    write("snp_report", "sim-turin-vlek.bin", &report);
    write("snp_certificate", "sim-turin-vlek.der", &vlek.der);
    write("snp_certificate", "sim-turin-ark-crl-revoked.der", &crl);
    write(
        "evidence_inputs",
        "sim-snp-turin-vlek-chain-crl.bin",
        &join(&[
            &report,
            vlek.pem().as_bytes(),
            amd.vlek_chain_pem().as_bytes(),
            &crl,
        ]),
    );

    // TDX: a v5 TD 1.5 quote with trailing bytes, and its collateral as PCS files.
    let intel = FakeIntel::new();
    let pck = intel.pck_leaf().build(&intel);
    let quote = TdxQuoteBuilder::new()
        .format(TdxQuoteFormat::V5Td15)
        .trailing_bytes(&[0; 16])
        .build(&intel, &pck);
    let collateral = TdxCollateralBuilder::new(&intel).build(&intel);
    let files = collateral.pcs_files();
    let pcs: Vec<&[u8]> = files.iter().map(|(_, bytes)| &bytes[..]).collect();
    write("tdx_quote", "sim-v5-td15-trailing.dat", &quote);
    write("tdx_collateral", "sim-pcs-parts.bin", &join(&pcs));
    write(
        "evidence_inputs",
        "sim-tdx-v5-quote-pcs-parts.bin",
        &join(&[&[&quote[..]], &pcs[..]].concat()),
    );
}
