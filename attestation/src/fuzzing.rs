//! Fuzz entry points: one function per fuzz target in `fuzz/` (cargo-fuzz), also fed the
//! seed corpus by `tests/fuzz_seeds.rs` in every `cargo test` run.
//!
//! Each function takes arbitrary bytes, runs a parser and the verification behind it, and
//! returns nothing: every input must end in `Ok` or a [`Rejection`](crate::Rejection),
//! so any panic is a bug. Where a parse succeeds, the function asserts the round trip or
//! invariant the format promises (canonical re-encoding, what may verify).
//!
//! Fuzzed certificates, collateral and policies are checked against genuine partners:
//! the real example evidence (`examples/evidence/`), verified at fixed times inside its
//! validity windows; fuzzed bundles, claims, receipts, transcripts, audit bundles and
//! policy files against a FAKE runtime built with veritee-sim's deterministic signers
//! (`fuzz/fixtures/`, trusted only through [`sim_policy`]'s `dangerous_trusted_roots`). Both
//! are verified on first use and a partner that no longer verifies panics at once, naming
//! itself: otherwise every target would silently test nothing but rejections.
//!
//! Targets that take several inputs (`tdx_collateral`, `evidence_inputs`, `receipt`) split
//! the bytes at [`PART_SEPARATOR`].

use crate::audit::{self, AuditBundle, Section};
use crate::binding::{self, HpkeKey, PolicyFile, RuntimeClaims, RuntimePolicy};
use crate::bundle::{AttestedRuntime, EvidenceBundle};
use crate::evidence::{Platform, TrustAnchors, VerifiedEvidence};
use crate::inputs::EvidenceInputs;
use crate::nvidia::{self, NvidiaTrustAnchors};
use crate::policy::{Constraint, Hex, Policy};
use crate::reason::{Reason, Rejection};
use crate::receipt::{self, ReceiptClaims, VerifiedReceipt};
use crate::snp::{self, HwId, SnpEvidence, SnpReport, SnpTrustAnchors};
use crate::tdx::{self, CollateralParts, Quote, TdxCollateral, TdxTrustAnchors};
use crate::time::Timestamp;
use crate::transcript::{self, SealedTranscript, Transcript};
use crate::x509;
use std::hint::black_box;
use std::sync::OnceLock;

/// Separates the inputs packed into one fuzz input (`tdx_collateral`, `evidence_inputs`,
/// `receipt`).
pub const PART_SEPARATOR: &[u8] = b"\n%%part%%\n";

/// A real SEV-SNP v5 report from an AMD Genoa (project-oak), valid at [`SNP_TIME`].
const GENOA_REPORT: &[u8] = include_bytes!("../../examples/evidence/snp-genoa/report.bin");
/// The VCEK that signed [`GENOA_REPORT`].
const GENOA_VCEK: &[u8] = include_bytes!("../../examples/evidence/snp-genoa/vcek.der");
/// 2025-10-01T08:00:00Z, inside the validity of the Genoa report's chain.
pub const SNP_TIME: Timestamp = Timestamp::from_unix(1_759_305_600);

/// A real TDX v4 quote (Phala dcap-qvl sample, FMSPC B0C06F000000).
const TDX_QUOTE: &[u8] = include_bytes!("../../examples/evidence/tdx-b0c06f/tdx_quote");
/// The dcap-qvl collateral JSON for [`TDX_QUOTE`].
const TDX_COLLATERAL: &[u8] =
    include_bytes!("../../examples/evidence/tdx-b0c06f/tdx_quote_collateral.json");
/// 2025-07-01T00:00:00Z, inside the validity of the TDX quote's collateral.
pub const TDX_TIME: Timestamp = Timestamp::from_unix(1_751_328_000);

/// The FAKE runtime's audit bundle: one instance (FAKE SEV-SNP evidence from veritee-sim's
/// deterministic AMD signer, binding a receipt key and [`SIM_AUDITOR_SECRET`]'s public
/// key), three chained receipts and two sealed transcripts. Regenerate with
/// `cargo test -p veritee-enclave --test fuzz_seeds -- --ignored regenerate_sim_fixture`.
const SIM_AUDIT_BUNDLE: &[u8] = include_bytes!("../../fuzz/fixtures/sim-audit-bundle.cbor");
/// The body of the chat request that the FAKE runtime's first receipt answers (its
/// streamed answer is the `sse_stream` seed `sim-stream.txt`).
pub const SIM_CHAT_REQUEST: &[u8] = include_bytes!("../../fuzz/fixtures/sim-chat-request.json");
/// veritee-sim's `DEFAULT_AT` (2026-06-01T00:00:00Z), inside its fake chains' validity.
pub const SIM_TIME: Timestamp = Timestamp::from_unix(1_780_272_000);
/// The auditor's X25519 secret key the FAKE runtime seals transcripts to.
pub const SIM_AUDITOR_SECRET: [u8; 32] = [0x5a; 32];

// What the FAKE runtime is, as its policy pins it; the fixture generator checks these
// against what it made.
/// SHA-256 of veritee-sim's fake ARK-Genoa and fake Intel SGX Root CA.
const SIM_ROOTS: [&str; 2] = [
    "eb3aefe273cfe6c9f2b19d64c2e7f0ae734a2a60af2572c50d21d9d4c639a93d",
    "c68e95202cc876fdb2d1a02c801b687d9b745531b7330438339d0617b16e5b02",
];
/// veritee-sim's default SNP MEASUREMENT and TDX MRTD.
const SIM_SNP_MEASUREMENT: [u8; 48] = [0x5a; 48];
const SIM_TDX_MRTD: [u8; 48] = [0x7d; 48];
/// The FAKE runtime's claims: model digest, launch configuration digest (also its
/// HOST_DATA), version.
const SIM_MODEL_DIGEST: &str = "e0e3eabd0c14ec5a0e7fda7f5640a20f57fb7098bc0ad3acb755b3f2a63da7cb";
const SIM_LAUNCH_DIGEST: &str = "a2d3c729fdddd5dbd4fbf375cf3b395d9d27aabbaa446f9ee2d1092608163dfe";
const SIM_RUNTIME_VERSION: &str = "veritee-enclave 0.1.0";

/// The policy file that accepts exactly the FAKE runtime: the verifier's default policy
/// plus veritee-sim's fake roots in `dangerous_trusted_roots`, the runtime's measurement,
/// HOST_DATA and MRTD, and a `[runtime]` pinning its claims and auditor key. Built here,
/// not loaded from TOML, so that it keeps up with changes to the policy format.
pub fn sim_policy() -> PolicyFile {
    fn hex32(text: &str) -> Hex<32> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).expect("a 64-digit hex constant");
        Hex(out)
    }
    let mut evidence = Policy::default_verifier();
    evidence.dangerous_trusted_roots = SIM_ROOTS.iter().map(|r| hex32(r)).collect();
    if let Some(snp) = evidence.snp.as_mut() {
        snp.measurement = Constraint::Only(vec![Hex(SIM_SNP_MEASUREMENT)]);
        snp.host_data = Constraint::Only(vec![hex32(SIM_LAUNCH_DIGEST)]);
    }
    if let Some(tdx) = evidence.tdx.as_mut() {
        tdx.mrtd = Constraint::Only(vec![Hex(SIM_TDX_MRTD)]);
    }
    PolicyFile {
        evidence,
        runtime: RuntimePolicy {
            model_digests: Constraint::Only(vec![hex32(SIM_MODEL_DIGEST)]),
            launch_config_digests: Constraint::Only(vec![hex32(SIM_LAUNCH_DIGEST)]),
            runtime_versions: Constraint::Only(vec![SIM_RUNTIME_VERSION.into()]),
            auditor_hpke_keys: Constraint::Only(vec![Hex(transcript::auditor_public_key(
                &SIM_AUDITOR_SECRET,
            ))]),
        },
        gpu: crate::policy::GpuPolicy::none(),
    }
}

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

/// A genuine partner failed: say which, and stop. Without its partner a target would
/// only ever see rejections, so carrying on would report a clean run that tested nothing.
fn partner_broken(what: &str, r: &Rejection) -> ! {
    panic!(
        "fuzzing's genuine partner is broken: {what}: {} ({}). Every fuzz target that uses \
         it would test nothing but rejections; see fuzz/README.md",
        r.reason.code(),
        r.detail
    )
}

/// The value, or [`partner_broken`].
fn or_broken<T>(result: Result<T, Rejection>, what: &str) -> T {
    result.unwrap_or_else(|r| partner_broken(what, &r))
}

/// The real example evidence, verified once.
struct Examples {
    collateral: TdxCollateral,
    evidence: [VerifiedEvidence; 2],
}

fn examples() -> &'static Examples {
    static EXAMPLES: OnceLock<Examples> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let collateral = TdxCollateral::from_dcap_qvl_json(TDX_COLLATERAL).unwrap_or_else(|r| {
            partner_broken("examples/evidence/tdx-b0c06f collateral does not load", &r)
        });
        let snp = snp::verify(GENOA_REPORT, &[GENOA_VCEK.to_vec()], &[], amd(), SNP_TIME)
            .unwrap_or_else(|r| {
                partner_broken(
                    "examples/evidence/snp-genoa does not verify at 2025-10-01T08:00:00Z",
                    &r,
                )
            });
        let tdx =
            tdx::verify(TDX_QUOTE, Some(&collateral), intel(), TDX_TIME).unwrap_or_else(|r| {
                partner_broken(
                    "examples/evidence/tdx-b0c06f does not verify at 2025-07-01T00:00:00Z",
                    &r,
                )
            });
        Examples {
            collateral,
            evidence: [
                VerifiedEvidence::Snp(Box::new(snp)),
                VerifiedEvidence::Tdx(Box::new(tdx)),
            ],
        }
    })
}

fn example_collateral() -> Option<&'static TdxCollateral> {
    Some(&examples().collateral)
}

/// The example evidence, verified, for appraising fuzzed policies.
fn example_evidence() -> &'static [VerifiedEvidence] {
    &examples().evidence
}

/// The FAKE runtime of `fuzz/fixtures/`, verified once, transcripts opened.
struct Simulated {
    policy: PolicyFile,
    section: Section,
    evidence: EvidenceBundle,
    runtime: AttestedRuntime,
    receipts: Vec<VerifiedReceipt>,
    /// The canonical CBOR of each receipt's transcript, where it has one.
    transcripts: Vec<Option<Vec<u8>>>,
    auditor: HpkeKey,
}

fn simulated() -> &'static Simulated {
    static SIMULATED: OnceLock<Simulated> = OnceLock::new();
    SIMULATED.get_or_init(|| {
        let policy = sim_policy();
        let mut audit = or_broken(
            AuditBundle::from_cbor(SIM_AUDIT_BUNDLE),
            "fuzz/fixtures/sim-audit-bundle.cbor does not parse",
        );
        let opener = |sealed: &[u8], claims: &ReceiptClaims| -> Result<(), Rejection> {
            transcript::check_against_receipt(
                &transcript::open(sealed, &SIM_AUDITOR_SECRET)?,
                claims,
            )
        };
        or_broken(
            audit::verify_bundle(&audit, &policy, SIM_TIME, Some(&opener)),
            "fuzz/fixtures/sim-audit-bundle.cbor does not verify (with its transcripts) under \
             sim_policy() at 2026-06-01T00:00:00Z",
        );
        let section = audit.sections.remove(0);
        let evidence = or_broken(
            EvidenceBundle::from_cbor(&section.evidence),
            "the fixture's evidence bundle does not parse",
        );
        let runtime = or_broken(
            evidence.verify_with(&policy, SIM_TIME),
            "the fixture's evidence bundle does not verify",
        );
        let receipts = receipt::verify_many(
            &section.receipts,
            &runtime.claims().receipt_key,
            &runtime.evidence_sha256(),
            &section.instance,
        )
        .unwrap_or_else(|(_, r)| partner_broken("the fixture's receipts do not verify", &r));
        let transcripts = section
            .transcripts
            .iter()
            .map(|sealed| {
                sealed.as_ref().map(|sealed| {
                    or_broken(
                        transcript::open(sealed, &SIM_AUDITOR_SECRET),
                        "a fixture transcript does not open",
                    )
                    .to_cbor()
                })
            })
            .collect();
        let auditor = runtime
            .claims()
            .auditor_hpke_key
            .clone()
            .unwrap_or_else(|| {
                partner_broken(
                    "the fixture's claims name no auditor key",
                    &Rejection::new(Reason::ClaimsMalformed, "no key 3"),
                )
            });
        Simulated {
            policy,
            section,
            evidence,
            runtime,
            receipts,
            transcripts,
            auditor,
        }
    })
}

/// Verify every genuine partner now (each target also does on first use), panicking with
/// the one that fails. The seed test calls it so that a partner gone bad fails by name.
pub fn check_genuine_partners() {
    black_box(examples());
    black_box(simulated());
}

/// The FAKE runtime of `fuzz/fixtures/`, verified: the attested partner of the client's
/// stream target (its first receipt answers [`SIM_CHAT_REQUEST`]).
pub fn sim_runtime() -> &'static AttestedRuntime {
    &simulated().runtime
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
    examples();
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
    examples();
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
    examples();
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
    examples();
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
    examples();
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

/// Verify a parsed evidence bundle under the FAKE runtime's policy; what verifies must be
/// bound to exactly the bundle's claims bytes and name this bundle's digest.
fn verify_bundle(bundle: &EvidenceBundle) -> Option<AttestedRuntime> {
    let sim = simulated();
    let attested = bundle.verify_with(&sim.policy, SIM_TIME).ok()?;
    assert_eq!(
        RuntimeClaims::from_cbor(&bundle.claims).as_ref(),
        Ok(attested.claims()),
        "a bundle verified with claims other than its own"
    );
    assert_eq!(
        attested.evidence().report_data(),
        binding::report_data_of(&bundle.claims),
        "a bundle verified whose REPORT_DATA is not SHA-512 of its claims"
    );
    assert_eq!(attested.evidence_sha256(), bundle.sha256());
    Some(attested)
}

/// An evidence bundle (CBOR CMW collection): parse, re-encode (which must parse to the
/// same bundle), and verify under the FAKE runtime's policy (production roots plus
/// veritee-sim's fake ones) at [`SIM_TIME`].
pub fn evidence_bundle(data: &[u8]) {
    simulated();
    let Ok(bundle) = EvidenceBundle::from_cbor(data) else {
        return;
    };
    assert_eq!(
        EvidenceBundle::from_cbor(&bundle.to_cbor()).as_ref(),
        Ok(&bundle),
        "evidence bundle does not survive to_cbor"
    );
    black_box(verify_bundle(&bundle));
}

/// The attested TLS certificate (DER, or PEM): what the client's connector does with the
/// server's certificate in the handshake. Its public key, the bundle in its `id-pe-cmw`
/// (or TCG CMW) extension, that bundle verified under the FAKE runtime's policy, and the
/// claims' TLS key against the certificate's.
pub fn bundle_certificate(data: &[u8]) {
    simulated();
    let mut ders = match x509::pem_blocks(data) {
        Ok(blocks) => blocks.into_iter().map(|b| b.der).collect(),
        Err(_) => Vec::new(),
    };
    if ders.is_empty() {
        ders.push(data.to_vec());
    }
    for der in &ders {
        let spki =
            x509::parse_cert(der, "fuzzed certificate").map(|cert| cert.public_key().raw.to_vec());
        let Ok(bundle) = EvidenceBundle::from_certificate(der) else {
            continue;
        };
        // The CBOR inside the extension is the `cbor` choice: the same parser as a bundle
        // served from /v1/attestation.
        assert_eq!(
            EvidenceBundle::from_cbor(&bundle.to_cbor()).as_ref(),
            Ok(&bundle),
            "evidence bundle from a certificate does not survive to_cbor"
        );
        if let (Some(attested), Ok(spki)) = (verify_bundle(&bundle), spki) {
            black_box(attested.require_tls_key(&spki).is_ok());
        }
    }
}

/// Runtime claims (canonical CBOR): a claims parse must re-encode to the very bytes it
/// read. The claims go into the FAKE runtime's bundle in place of its own: they bind its
/// report exactly when they are its claims, byte for byte.
pub fn runtime_claims(data: &[u8]) {
    let sim = simulated();
    let Ok(claims) = RuntimeClaims::from_cbor(data) else {
        return;
    };
    assert_eq!(claims.to_cbor(), data, "claims parse is not canonical");
    assert_eq!(claims.report_data(), binding::report_data_of(data));
    assert_eq!(RuntimePolicy::any().appraise(&claims), Ok(()));
    black_box(sim.policy.runtime.appraise(&claims).is_ok());
    let mut bundle = sim.evidence.clone();
    bundle.claims = data.to_vec();
    let result = bundle.verify_with(&sim.policy, SIM_TIME);
    if data == sim.evidence.claims.as_slice() {
        assert!(result.is_ok(), "the fixture's own claims no longer verify");
    } else {
        assert_eq!(
            result.map(|_| ()).map_err(|r| r.reason),
            Err(Reason::ClaimsNotBound),
            "claims other than the report's were bound"
        );
    }
}

/// A policy file (evidence policy plus `[runtime]`, as `veritee` and `veritee-verify` load
/// it): load, serialise and reload (which must give the same policy), appraise the
/// verified example evidence, and verify the FAKE runtime's bundle with it.
pub fn policy_file(data: &[u8]) {
    let sim = simulated();
    examples();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = PolicyFile::from_toml(text) else {
        return;
    };
    assert_eq!(
        PolicyFile::from_toml(&file.to_toml()).as_ref(),
        Ok(&file),
        "policy file does not survive to_toml"
    );
    for evidence in example_evidence() {
        black_box(file.evidence.appraise(evidence).is_ok());
    }
    let runtime = file.runtime.appraise(sim.runtime.claims());
    match sim.evidence.verify_with(&file, SIM_TIME) {
        // Verification appraises the same claims last: it passes only if they do.
        Ok(attested) => {
            assert_eq!(attested.claims(), sim.runtime.claims());
            assert_eq!(runtime, Ok(()));
        }
        Err(r) => {
            black_box(r);
        }
    }
}

/// Usage receipts: one, or a log split at [`PART_SEPARATOR`]. Each is verified with the
/// FAKE runtime's bound receipt key (what verifies must be one of its genuine receipts:
/// nobody else can sign), and the log through `verify_many` (batch verification, which
/// must agree with one-by-one verification) and `verify_chain`.
pub fn receipt(data: &[u8]) {
    let sim = simulated();
    let key = &sim.runtime.claims().receipt_key;
    let evidence = sim.runtime.evidence_sha256();
    let instance = sim.section.instance;
    let log = parts(data);
    let mut singles = Vec::with_capacity(log.len());
    for bytes in &log {
        if let Ok(claims) = ReceiptClaims::from_cbor(bytes) {
            assert_eq!(
                &claims.to_cbor(),
                bytes,
                "receipt claims parse is not canonical"
            );
        }
        let single = receipt::verify(bytes, key, &evidence);
        if let Ok(verified) = &single {
            assert!(
                sim.receipts.contains(verified),
                "a receipt verified that the runtime never signed"
            );
            // Its hash names the tagged encoding, also for an untagged receipt.
            let tagged = match bytes.first() {
                Some(0xd2) => bytes.to_vec(),
                _ => [&[0xd2], *bytes].concat(),
            };
            assert_eq!(verified.sha256(), x509::sha256(&tagged));
        }
        singles.push(single);
    }
    let many = receipt::verify_many(&log, key, &evidence, &instance);
    let every_single = singles
        .iter()
        .all(|s| matches!(s, Ok(v) if v.claims().runtime_instance == instance));
    assert_eq!(
        many.is_ok(),
        every_single,
        "verify_many and verify disagree: {many:?}"
    );
    if let Ok(verified) = many {
        for (batch, single) in verified.iter().zip(&singles) {
            assert!(matches!(single, Ok(v) if v == batch));
        }
        if let Ok(summary) = receipt::verify_chain(&verified) {
            assert_eq!(summary.jobs, verified.len() as u64);
        }
    }
}

/// A transcript, sealed or not. Sealed: the envelope re-encodes to itself, and opening it
/// with the FAKE auditor's key gives a genuine transcript that matches its receipt (only
/// the runtime's ciphertexts open). Plain: a parse re-encodes to itself, seals to the
/// auditor and opens to the same bytes, and matches a genuine receipt only if it is that
/// receipt's transcript.
pub fn transcript(data: &[u8]) {
    let sim = simulated();
    if let Ok(envelope) = SealedTranscript::from_cbor(data) {
        assert_eq!(
            envelope.to_cbor(),
            data,
            "sealed transcript parse is not canonical"
        );
        assert_eq!(transcript::sealed_job_id(data), Ok(envelope.job_id));
    }
    if let Ok(opened) = transcript::open(data, &SIM_AUDITOR_SECRET) {
        let (receipt, genuine) = sim
            .receipts
            .iter()
            .zip(&sim.transcripts)
            .find(|(r, _)| r.claims().job_id == opened.job_id)
            .expect("a transcript opened for a job the runtime never ran");
        assert_eq!(genuine.as_deref(), Some(&opened.to_cbor()[..]));
        assert_eq!(
            transcript::check_against_receipt(&opened, receipt.claims()),
            Ok(())
        );
    }
    let Ok(plain) = Transcript::from_cbor(data) else {
        return;
    };
    assert_eq!(plain.to_cbor(), data, "transcript parse is not canonical");
    assert_eq!(plain.commitment(), x509::sha256(data));
    let sealed = transcript::seal(&plain, &sim.auditor).expect("a parsed transcript seals");
    let opened = transcript::open(&sealed, &SIM_AUDITOR_SECRET).expect("a sealed transcript opens");
    assert_eq!(
        opened.to_cbor(),
        data,
        "seal then open changed the transcript"
    );
    for (receipt, genuine) in sim.receipts.iter().zip(&sim.transcripts) {
        if transcript::check_against_receipt(&plain, receipt.claims()).is_ok() {
            assert_eq!(
                genuine.as_deref(),
                Some(data),
                "a transcript matched a receipt not its own"
            );
        }
    }
}

/// An audit bundle: a parse re-encodes to itself; the bundle is verified under the FAKE
/// runtime's policy at [`SIM_TIME`], with and without opening its transcripts. Opening
/// can only add failures, and what verifies adds up to its receipts.
pub fn audit_bundle(data: &[u8]) {
    let sim = simulated();
    let Ok(bundle) = AuditBundle::from_cbor(data) else {
        return;
    };
    assert_eq!(
        bundle.to_cbor(),
        data,
        "audit bundle parse is not canonical"
    );
    let opener = |sealed: &[u8], claims: &ReceiptClaims| -> Result<(), Rejection> {
        transcript::check_against_receipt(&transcript::open(sealed, &SIM_AUDITOR_SECRET)?, claims)
    };
    let opened = audit::verify_bundle(&bundle, &sim.policy, SIM_TIME, Some(&opener));
    let unopened = audit::verify_bundle(&bundle, &sim.policy, SIM_TIME, None);
    if let Ok(report) = &opened {
        let mut unopened = unopened.expect("a bundle verified only with its transcripts opened");
        let receipts: usize = bundle.sections.iter().map(|s| s.receipts.len()).sum();
        assert_eq!(report.jobs, receipts as u64);
        assert_eq!(report.sections.len(), bundle.sections.len());
        for (s, o) in unopened.sections.iter_mut().zip(&report.sections) {
            assert_eq!(s.transcripts.opened, 0);
            s.transcripts.opened = o.transcripts.opened;
        }
        assert_eq!(&unopened, report);
    }
}

/// Real H100 evidence (nvtrust sample, hex text), valid at [`GPU_TIME`] with
/// [`GPU_CHAIN`] and [`GPU_NONCE`].
const GPU_EVIDENCE: &[u8] = include_bytes!(
    "../../testdata/vectors/nvidia/nvtrust-hopper-h100-sample/hopperAttestationReport.txt"
);
/// The device chain (PEM, leaf first) of [`GPU_EVIDENCE`].
const GPU_CHAIN: &[u8] =
    include_bytes!("../../testdata/vectors/nvidia/nvtrust-hopper-h100-sample/hopperCertChain.txt");
/// The requester nonce of [`GPU_EVIDENCE`].
const GPU_NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
/// 2025-01-01T00:00:00Z, inside the validity of [`GPU_CHAIN`].
pub const GPU_TIME: Timestamp = Timestamp::from_unix(1_735_689_600);

/// The genuine GPU partner: the real evidence, verified once, and its chain.
fn gpu_partner() -> &'static (nvidia::VerifiedGpuEvidence, Vec<Vec<u8>>) {
    static PARTNER: OnceLock<(nvidia::VerifiedGpuEvidence, Vec<Vec<u8>>)> = OnceLock::new();
    PARTNER.get_or_init(|| {
        let chain = nvidia::chain_from_pem(GPU_CHAIN)
            .unwrap_or_else(|r| partner_broken("the nvtrust H100 chain does not parse", &r));
        let verified = nvidia::verify(
            GPU_EVIDENCE,
            &chain,
            gpu_nonce(),
            &NvidiaTrustAnchors::nvidia(),
            GPU_TIME,
        )
        .unwrap_or_else(|r| {
            partner_broken(
                "the nvtrust H100 sample evidence does not verify at 2025-01-01T00:00:00Z",
                &r,
            )
        });
        (verified, chain)
    })
}

fn gpu_nonce() -> nvidia::ExpectedNonce {
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(GPU_NONCE, &mut nonce).expect("a 64-digit hex constant");
    nvidia::ExpectedNonce::Exactly(nonce)
}

/// NVIDIA GPU evidence (binary or hex text), or a device chain (PEM or DER certificates):
/// the SPDM and opaque-data parsers and every opaque decoder; the input as evidence
/// verified with the real H100 chain (what verifies must be the genuine evidence's signed
/// bytes), and as the chain of the real evidence (what verifies must name the genuine root
/// and FWID); the TcbInfo FWID reader on the bytes and on each certificate.
pub fn gpu_evidence(data: &[u8]) {
    let (genuine, chain) = gpu_partner();
    black_box(nvidia::looks_like_gpu_evidence(data));
    if let Ok(e) = nvidia::parse_evidence(data) {
        let o = &e.response.opaque;
        black_box((
            o.driver_version().is_ok(),
            o.vbios_version().is_ok(),
            o.fwid().is_ok(),
            o.measurement_counts().is_ok(),
            o.opaque_data_version().is_ok(),
            e.signed_bytes().len(),
            e.canonical_bytes().len(),
            e.trailing_padding(),
        ));
        assert!(e.trailing_padding() <= nvidia::spdm::MAX_TRAILING_PADDING);
        let anchors = NvidiaTrustAnchors::nvidia();
        if let Ok(v) = nvidia::verify(data, chain, gpu_nonce(), &anchors, GPU_TIME) {
            assert_eq!(
                v.evidence().signed_bytes(),
                genuine.evidence().signed_bytes(),
                "fuzzed GPU evidence verified with other signed bytes"
            );
            black_box(v.claims());
        }
    }
    nvidia::fuzz_der(data);
    let ders: Vec<Vec<u8>> = match x509::pem_blocks(data) {
        Ok(blocks) if !blocks.is_empty() => blocks.into_iter().map(|b| b.der).collect(),
        _ => vec![data.to_vec()],
    };
    for der in &ders {
        nvidia::fuzz_der(der);
    }
    let anchors = NvidiaTrustAnchors::nvidia();
    if let Ok(v) = nvidia::verify(
        genuine.evidence().as_bytes(),
        &ders,
        gpu_nonce(),
        &anchors,
        GPU_TIME,
    ) {
        assert_eq!(v.root_sha256(), genuine.root_sha256());
        assert_eq!(v.fwid(), genuine.fwid());
    }
}

/// The nvtrust test driver RIM, valid at [`RIM_TIME`].
const GPU_DRIVER_RIM: &[u8] = include_bytes!(
    "../../testdata/vectors/nvidia/nvtrust-rim-test-samples/Driver_RIM_test_no_gpu.swidtag"
);
/// The nvtrust test VBIOS RIM, valid at [`RIM_TIME`].
const GPU_VBIOS_RIM: &[u8] = include_bytes!(
    "../../testdata/vectors/nvidia/nvtrust-rim-test-samples/1010_0200_882_96005E0001_test_no_gpu.swidtag"
);
/// 2024-06-01T00:00:00Z, inside the validity of both test RIMs' signing chains.
pub const RIM_TIME: Timestamp = Timestamp::from_unix(1_717_200_000);

/// The genuine RIM partners, verified once: their canonical documents.
fn rim_partners() -> &'static [String; 2] {
    static PARTNERS: OnceLock<[String; 2]> = OnceLock::new();
    PARTNERS.get_or_init(|| {
        [GPU_DRIVER_RIM, GPU_VBIOS_RIM].map(|bytes| {
            nvidia::verify_rim(bytes, &NvidiaTrustAnchors::nvidia(), RIM_TIME)
                .unwrap_or_else(|r| {
                    partner_broken(
                        "an nvtrust test RIM does not verify at 2024-06-01T00:00:00Z",
                        &r,
                    )
                })
                .rim()
                .canonical_document()
        })
    })
}

/// An NVIDIA reference integrity manifest (SWID tag XML with an enveloped XMLDSig), or any
/// XML: the XML reader and Canonical XML 1.1 (canonicalizing the canonical form again
/// changes nothing), the RIM reader, `verify_rim` at 2024-06-01T00:00:00Z (what verifies
/// canonicalizes to a genuine RIM), and the comparison with the real H100 evidence.
pub fn gpu_rim(data: &[u8]) {
    let genuine = rim_partners();
    nvidia::fuzz_xml(data);
    if let Ok(rim) = nvidia::Rim::parse(data) {
        black_box((rim.canonical_signed_info().len(), rim.active().count()));
    }
    if let Ok(v) = nvidia::verify_rim(data, &NvidiaTrustAnchors::nvidia(), RIM_TIME) {
        let doc = v.rim().canonical_document();
        assert!(
            genuine.contains(&doc),
            "a fuzzed RIM verified with another canonical document"
        );
        let (evidence, _) = gpu_partner();
        let c = nvidia::compare_measurements(evidence, &[&v])
            .expect("one RIM cannot conflict with itself");
        assert!(!c.matches(), "the test RIMs match no real evidence");
    }
}

/// An OCSP response (RFC 6960 DER) for the GPU device chain: the parser on arbitrary
/// bytes (never panics; every error is a typed rejection).
pub fn gpu_ocsp(data: &[u8]) {
    nvidia::fuzz_ocsp(data);
}
