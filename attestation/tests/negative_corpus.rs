//! The negative corpus: one table row per way SEV-SNP or TDX evidence
//! can be wrong, built with the deterministic fake signers of the `sim` crate, each with
//! the exact [`Reason`] verification or appraisal must give. Covers policy fields changed
//! and re-signed, bytes flipped without re-signing, every certificate and CRL wrong in its
//! own way, TDX collateral (time, signatures, TCB levels, QE identity, missing pieces),
//! parse errors, the Azure HCL wrapper and the content-recognition path
//! ([`EvidenceInputs`]). Positive controls prove the unmodified defaults are accepted, so
//! no negative passes for the wrong reason; the last rows are regressions for bugs this
//! corpus found; a proptest flips random bits of the signed regions.
//!
//! The fake roots are trusted only through the `dangerous_*` escape hatches.

use attestation::evidence::{TrustAnchors, VerifiedEvidence};
use attestation::inputs::EvidenceInputs;
use attestation::policy::{
    AbiVersion, BitRule, Constraint, Hex, MinTcb, Permission, Policy, Revocation, SnpPolicy,
    TdxPolicy,
};
use attestation::snp::{Product, SigningKey, SnpTrustAnchors};
use attestation::tdx::{TcbStatus, TdxTrustAnchors};
use attestation::{Reason, Rejection, Timestamp};
use proptest::prelude::*;
use sim::amd::{amd_authority_key, amd_name, amd_oids};
use sim::collateral::{CollateralSigning, QeIdentityBuilder};
use sim::intel::{IntelCaKind, PckConfiguration, DEFAULT_FMSPC, DEFAULT_PCESVN};
use sim::snp::{platform_info as info, policy as guest};
use sim::tdx::{TD_ATTR_MIGRATABLE, TD_ATTR_SEPT_VE_DISABLE};
use sim::x509::{certificates_pem, issue_certificate, CertificateTemplate, Extension, Signer};
use sim::{
    AmdIssuer, AmdLeafBuilder, AmdLeafKind, AmdRole, FakeAmd, FakeAmdLeaf, FakeIntel, FakePckLeaf,
    FakeProduct, IntelAuthority, PckLeafBuilder, SnpReportBuilder, SnpSigningKey, SnpTcb,
    TdxCollateralBuilder, TdxQuoteBuilder, TdxQuoteFormat, DEFAULT_AT, DEFAULT_NOT_AFTER,
    DEFAULT_NOT_BEFORE,
};
use std::sync::OnceLock;

const DAY: i64 = 86_400;

fn at() -> Timestamp {
    Timestamp::from_unix(DEFAULT_AT)
}

// ---------------------------------------------------------------------------------------
// Evidence set-ups
// ---------------------------------------------------------------------------------------

/// What one case verifies and the policy it is appraised against.
struct Setup {
    evidence: Evidence,
    policy: Policy,
}

enum Evidence {
    /// `snp::verify(report, certs, crls, anchors, DEFAULT_AT)`.
    Snp {
        report: Vec<u8>,
        certs: Vec<Vec<u8>>,
        crls: Vec<Vec<u8>>,
        anchors: SnpTrustAnchors,
    },
    /// `tdx::verify(quote, collateral, anchors, DEFAULT_AT)`.
    Tdx {
        quote: Vec<u8>,
        collateral: Option<sim::TdxCollateral>,
        anchors: TdxTrustAnchors,
    },
    /// Files recognised by content through [`EvidenceInputs`], then verified.
    Files {
        files: Vec<(String, Vec<u8>)>,
        anchors: TrustAnchors,
    },
}

impl Setup {
    fn new(evidence: Evidence) -> Self {
        Setup {
            evidence,
            policy: Policy::default_verifier(),
        }
    }

    fn policy(mut self, edit: impl FnOnce(&mut Policy)) -> Self {
        edit(&mut self.policy);
        self
    }

    fn snp_policy(self, edit: impl FnOnce(&mut SnpPolicy)) -> Self {
        self.policy(|p| edit(p.snp.as_mut().expect("default policy has [snp]")))
    }

    fn tdx_policy(self, edit: impl FnOnce(&mut TdxPolicy)) -> Self {
        self.policy(|p| edit(p.tdx.as_mut().expect("default policy has [tdx]")))
    }

    /// Change the evidence bytes (report, quote) after signing.
    fn bytes(mut self, edit: impl FnOnce(&mut Vec<u8>)) -> Self {
        match &mut self.evidence {
            Evidence::Snp { report, .. } => edit(report),
            Evidence::Tdx { quote, .. } => edit(quote),
            Evidence::Files { .. } => panic!("edit files directly"),
        }
        self
    }

    fn certs(mut self, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Self {
        match &mut self.evidence {
            Evidence::Snp { certs, .. } => edit(certs),
            _ => panic!("certs are SNP inputs"),
        }
        self
    }

    fn crls(mut self, list: Vec<Vec<u8>>) -> Self {
        match &mut self.evidence {
            Evidence::Snp { crls, .. } => *crls = list,
            _ => panic!("CRLs are SNP inputs"),
        }
        self
    }

    fn snp_anchors(mut self, new: SnpTrustAnchors) -> Self {
        match &mut self.evidence {
            Evidence::Snp { anchors, .. } => *anchors = new,
            _ => panic!("SNP anchors for SNP evidence"),
        }
        self
    }

    fn tdx_anchors(mut self, new: TdxTrustAnchors) -> Self {
        match &mut self.evidence {
            Evidence::Tdx { anchors, .. } => *anchors = new,
            _ => panic!("TDX anchors for TDX evidence"),
        }
        self
    }

    fn no_collateral(mut self) -> Self {
        match &mut self.evidence {
            Evidence::Tdx { collateral, .. } => *collateral = None,
            _ => panic!("collateral is a TDX input"),
        }
        self
    }

    /// Verify at [`DEFAULT_AT`] with the case's inputs.
    fn verify(self) -> (Result<VerifiedEvidence, Rejection>, Policy) {
        let verified = match self.evidence {
            Evidence::Snp {
                report,
                certs,
                crls,
                anchors,
            } => attestation::snp::verify(&report, &certs, &crls, &anchors, at())
                .map(|report| VerifiedEvidence::Snp(Box::new(report))),
            Evidence::Tdx {
                quote,
                collateral,
                anchors,
            } => {
                let collateral = collateral.map(|c| {
                    attestation::tdx::TdxCollateral::from_dcap_qvl_json(
                        c.to_dcap_qvl_json().as_bytes(),
                    )
                });
                match collateral.transpose() {
                    Ok(collateral) => {
                        attestation::tdx::verify(&quote, collateral.as_ref(), &anchors, at())
                            .map(|quote| VerifiedEvidence::Tdx(Box::new(quote)))
                    }
                    Err(e) => Err(e),
                }
            }
            Evidence::Files { files, anchors } => {
                let mut inputs = EvidenceInputs::new();
                let mut added = Ok(());
                for (name, bytes) in &files {
                    added = inputs.add(name, bytes);
                    if added.is_err() {
                        break;
                    }
                }
                added.and_then(|()| inputs.verify(&anchors, at()))
            }
        };
        (verified, self.policy)
    }

    /// Verify, then appraise; `Ok` only when both pass.
    fn outcome(self) -> Result<(), Rejection> {
        let (verified, policy) = self.verify();
        let verified = verified?;
        policy.appraise(&verified).map(|_| ())
    }
}

// ---- SEV-SNP ----------------------------------------------------------------------------

fn amd(product: FakeProduct) -> &'static FakeAmd {
    static AMD: [OnceLock<FakeAmd>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match product {
        FakeProduct::Milan => 0,
        FakeProduct::Genoa => 1,
        FakeProduct::Turin => 2,
    };
    AMD[i].get_or_init(|| FakeAmd::new(product))
}

/// AMD's production ARKs plus the three fake ARKs (dangerous, tests only).
fn fake_snp_anchors() -> SnpTrustAnchors {
    FakeProduct::ALL
        .into_iter()
        .fold(SnpTrustAnchors::amd(), |anchors, p| {
            anchors.dangerous_trust_ark(amd(p).ark_der().to_vec())
        })
}

fn leaf(
    product: FakeProduct,
    kind: AmdLeafKind,
    edit: impl FnOnce(AmdLeafBuilder) -> AmdLeafBuilder,
) -> FakeAmdLeaf {
    let amd = amd(product);
    let builder = match kind {
        AmdLeafKind::Vcek => amd.vcek(),
        AmdLeafKind::Vlek => amd.vlek(),
    };
    edit(builder).build()
}

/// The leaf, its product's intermediate for its kind, and the ARK, in that order.
fn chain_for(leaf: &FakeAmdLeaf) -> Vec<Vec<u8>> {
    let amd = amd(leaf.product);
    let intermediate = match leaf.kind {
        AmdLeafKind::Vcek => amd.ask_der(),
        AmdLeafKind::Vlek => amd.asvk_der(),
    };
    vec![
        leaf.der.clone(),
        intermediate.to_vec(),
        amd.ark_der().to_vec(),
    ]
}

/// A report built for `leaf` (after `edit`), signed by it, with the full fake chain.
fn snp_for(leaf: &FakeAmdLeaf, edit: impl FnOnce(SnpReportBuilder) -> SnpReportBuilder) -> Setup {
    let report = edit(SnpReportBuilder::for_leaf(leaf)).sign(leaf);
    Setup::new(Evidence::Snp {
        report,
        certs: chain_for(leaf),
        crls: Vec::new(),
        anchors: fake_snp_anchors(),
    })
}

/// The default VCEK of `product`; its report after `edit`, re-signed.
fn snp(product: FakeProduct, edit: impl FnOnce(SnpReportBuilder) -> SnpReportBuilder) -> Setup {
    snp_for(&leaf(product, AmdLeafKind::Vcek, |b| b), edit)
}

/// A default VLEK of `product`; its report after `edit`, re-signed.
fn snp_vlek(
    product: FakeProduct,
    edit: impl FnOnce(SnpReportBuilder) -> SnpReportBuilder,
) -> Setup {
    snp_for(&leaf(product, AmdLeafKind::Vlek, |b| b), edit)
}

/// A VCEK changed by `edit_leaf`, with a default report for it.
fn snp_leaf(
    product: FakeProduct,
    edit_leaf: impl FnOnce(AmdLeafBuilder) -> AmdLeafBuilder,
) -> Setup {
    snp_for(&leaf(product, AmdLeafKind::Vcek, edit_leaf), |b| b)
}

/// A fake AMD authority certificate (ASK or ARK) with a chosen validity, signed like the
/// sim signs its own (the sim has no builder for authority certificates).
fn authority_cert(product: FakeProduct, role: AmdRole, not_before: i64, not_after: i64) -> Vec<u8> {
    let key = amd_authority_key(product, role);
    let ark_key = amd_authority_key(product, AmdRole::Ark);
    let cn = |r: AmdRole| match r {
        AmdRole::Ark => format!("ARK-{}", product.name()),
        AmdRole::Ask => format!("SEV-{}", product.name()),
        AmdRole::Asvk => format!("SEV-VLEK-{}", product.name()),
    };
    let template = CertificateTemplate {
        serial: vec![0x01, 0x00, 0x01],
        issuer: amd_name(&cn(AmdRole::Ark)),
        subject: amd_name(&cn(role)),
        not_before,
        not_after,
        subject_spki: key.spki_der(),
        extensions: vec![
            Extension::basic_constraints(true, None),
            Extension::key_usage(&[5, 6]),
        ],
    };
    issue_certificate(&template, Signer::RsaPss(&ark_key), false)
}

/// The Azure HCL ("HCLA") wrapper around `report`, binding `runtime_data` with SHA-256,
/// followed by `padding` zero bytes (the vTPM NV index is fixed-size).
fn hcl_wrap(report: &[u8], runtime_data: &[u8], padding: usize) -> Vec<u8> {
    let var_size = runtime_data.len() as u32;
    let total = 32 + report.len() as u32 + 20 + var_size;
    let mut out = Vec::new();
    out.extend_from_slice(b"HCLA");
    out.extend_from_slice(&2u32.to_le_bytes()); // header version
    out.extend_from_slice(&total.to_le_bytes()); // report_size
    out.resize(32, 0);
    out.extend_from_slice(report);
    for field in [20 + var_size, 1, 2, 1, var_size] {
        // data_size, request version, report type SNP, hash type SHA-256, var size
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(runtime_data);
    out.resize(out.len() + padding, 0);
    out
}

const HCL_RUNTIME_DATA: &[u8] =
    br#"{"keys":[{"kid":"HCLAkPub","kty":"RSA"}],"vm-configuration":{"secure-boot":true}}"#;

/// A Milan report whose REPORT_DATA binds the HCL runtime data, wrapped; `tamper` edits
/// the wrapper afterwards.
fn hcl(tamper: impl FnOnce(&mut Vec<u8>)) -> Setup {
    let mut report_data = [0u8; 64];
    report_data[..32].copy_from_slice(&attestation::x509::sha256(HCL_RUNTIME_DATA));
    snp(FakeProduct::Milan, |b| b.report_data(report_data)).bytes(|r| {
        let mut wrapped = hcl_wrap(r, HCL_RUNTIME_DATA, 64);
        tamper(&mut wrapped);
        *r = wrapped;
    })
}

// ---- TDX ----------------------------------------------------------------------------------

fn intel() -> &'static FakeIntel {
    static INTEL: OnceLock<FakeIntel> = OnceLock::new();
    INTEL.get_or_init(FakeIntel::new)
}

fn tdx_anchors() -> TdxTrustAnchors {
    TdxTrustAnchors::dangerous_custom_root(intel().root_der().to_vec())
}

/// A quote (PCK leaf after `edit_pck`, quote after `edit_quote`) with the default
/// collateral after `edit_collateral`.
fn tdx_custom(
    edit_pck: impl FnOnce(PckLeafBuilder) -> PckLeafBuilder,
    edit_quote: impl FnOnce(TdxQuoteBuilder) -> TdxQuoteBuilder,
    edit_collateral: impl FnOnce(TdxCollateralBuilder) -> TdxCollateralBuilder,
) -> Setup {
    let intel = intel();
    let pck: FakePckLeaf = edit_pck(intel.pck_leaf()).build(intel);
    let quote = edit_quote(TdxQuoteBuilder::new()).build(intel, &pck);
    let collateral = edit_collateral(TdxCollateralBuilder::new(intel)).build(intel);
    Setup::new(Evidence::Tdx {
        quote,
        collateral: Some(collateral),
        anchors: tdx_anchors(),
    })
}

/// A PCK configuration with every flag `on`.
fn all_pck_flags(on: bool) -> PckConfiguration {
    PckConfiguration {
        dynamic_platform: on,
        cached_keys: on,
        smt_enabled: on,
    }
}

fn tdx(edit_quote: impl FnOnce(TdxQuoteBuilder) -> TdxQuoteBuilder) -> Setup {
    tdx_custom(|p| p, edit_quote, |c| c)
}

fn tdx_collateral(edit: impl FnOnce(TdxCollateralBuilder) -> TdxCollateralBuilder) -> Setup {
    tdx_custom(|p| p, |q| q, edit)
}

/// Offset of the QE report inside a quote: signed region, signature data length (4),
/// quote signature (64), attestation key (64), certification data type and size (6).
fn qe_report_offset(quote: &[u8]) -> usize {
    let parsed = attestation::tdx::Quote::parse(quote).expect("default quote parses");
    parsed.signed_len() + 4 + 64 + 64 + 6
}

// ---- content recognition ------------------------------------------------------------------

fn files_anchors() -> TrustAnchors {
    TrustAnchors {
        snp: fake_snp_anchors(),
        tdx: tdx_anchors(),
    }
}

/// The default Milan VCEK report as files: raw report, VCEK DER, KDS-style PEM chain.
fn snp_files(extra: Vec<(String, Vec<u8>)>) -> Setup {
    let amd = amd(FakeProduct::Milan);
    let vcek = leaf(FakeProduct::Milan, AmdLeafKind::Vcek, |b| b);
    let mut files = vec![
        (
            "report.bin".to_owned(),
            SnpReportBuilder::for_leaf(&vcek).sign(&vcek),
        ),
        ("vcek.der".to_owned(), vcek.der.clone()),
        (
            "cert_chain.pem".to_owned(),
            amd.vcek_chain_pem().into_bytes(),
        ),
    ];
    files.extend(extra);
    Setup::new(Evidence::Files {
        files,
        anchors: files_anchors(),
    })
}

/// The default quote (hex text) and the PCS-style collateral files, after `edit`.
fn tdx_files(edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Setup {
    let intel = intel();
    let pck = intel.pck_leaf().build(intel);
    let quote = TdxQuoteBuilder::new().build(intel, &pck);
    let collateral = TdxCollateralBuilder::new(intel).build(intel);
    let mut files = vec![("quote.hex".to_owned(), hex::encode(quote).into_bytes())];
    files.extend(
        collateral
            .pcs_files()
            .into_iter()
            .map(|(name, bytes)| (name.to_owned(), bytes)),
    );
    edit(&mut files);
    Setup::new(Evidence::Files {
        files,
        anchors: files_anchors(),
    })
}

fn file<'a>(files: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut files
        .iter_mut()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no file {name}"))
        .1
}

// ---- policies -----------------------------------------------------------------------------

fn hex48(bytes: [u8; 48]) -> Hex<48> {
    Hex(bytes)
}

/// `tcb` as a policy minimum.
fn min_tcb(tcb: SnpTcb) -> MinTcb {
    MinTcb {
        bootloader: tcb.bootloader,
        tee: tcb.tee,
        snp: tcb.snp,
        microcode: tcb.microcode,
        fmc: tcb.fmc,
    }
}

/// The default TCB of `product` with its SNP SPL one lower, as a raw TCB_VERSION.
fn older_tcb(product: FakeProduct) -> u64 {
    let current = SnpTcb::default_for(product);
    SnpTcb {
        snp: current.snp - 1,
        ..current
    }
    .to_u64(product)
}

/// An empty, current CRL signed by `product`'s fake ARK (what AMD's KDS serves).
fn ark_crl(product: FakeProduct) -> Vec<u8> {
    amd(product).crl().build()
}

/// SNP default evidence with one guest-policy bit set to `on` and the policy's rule for
/// that bit set to `rule`.
fn snp_guest_bit(
    bit: u64,
    on: bool,
    rule: BitRule,
    field: fn(&mut SnpPolicy) -> &mut BitRule,
) -> Setup {
    snp(Genoa, |b| b.policy_bits(bit, on)).snp_policy(|p| *field(p) = rule)
}

/// SNP default evidence with PLATFORM_INFO `platform_info` and one rule set.
fn snp_platform_bit(
    platform_info: u64,
    rule: BitRule,
    field: fn(&mut SnpPolicy) -> &mut BitRule,
) -> Setup {
    snp(Milan, |b| b.platform_info(platform_info)).snp_policy(|p| *field(p) = rule)
}

/// Default TDX evidence whose PCK states `configuration`, with one PCK flag rule set.
fn tdx_pck_flag(
    configuration: Option<PckConfiguration>,
    rule: BitRule,
    field: fn(&mut TdxPolicy) -> &mut BitRule,
) -> Setup {
    tdx_custom(|p| p.configuration(configuration), |q| q, |c| c).tdx_policy(|p| *field(p) = rule)
}

/// A complete TOML policy accepting only SNP, with MEASUREMENT pinned to `measurement`.
fn snp_only_toml(measurement: [u8; 48]) -> Policy {
    let text = format!(
        r#"
version = 1
platforms = ["snp"]
debug = "forbid"
report_data = "any"
dangerous_trusted_roots = []

[snp]
products = ["Milan", "Genoa", "Turin"]
signing_keys = ["vcek", "vlek"]
revocation = "dangerous_skip"
measurement = ["{}"]
host_data = "any"
min_tcb = "any"
min_launch_tcb = "any"
min_committed_tcb = "any"
vmpl = [0]
migration_agent = "forbid"
smt = "allow"
min_guest_svn = "any"
id_key_digest = "any"
author_key_digest = "any"
family_id = "any"
image_id = "any"

[snp.guest_policy]
min_abi = "any"
single_socket = "any"
cxl_allow = "any"
mem_aes_256_xts = "any"
rapl_dis = "any"
ciphertext_hiding = "any"
page_swap_disable = "any"

[snp.platform_info]
smt_en = "any"
tsme_en = "any"
ecc_en = "any"
rapl_dis = "any"
ciphertext_hiding_en = "any"
alias_check_complete = "any"
tio_en = "any"
"#,
        hex::encode(measurement)
    );
    Policy::from_toml(&text).expect("the SNP-only policy loads")
}

/// A complete TOML policy accepting only TDX, everything else "any".
fn tdx_only_toml() -> Policy {
    Policy::from_toml(
        r#"
version = 1
platforms = ["tdx"]
debug = "forbid"
report_data = "any"
dangerous_trusted_roots = []

[tdx]
tcb_statuses = ["UpToDate"]
forbidden_advisory_ids = []
min_tcb_evaluation_data_number = "any"
max_collateral_age_days = "any"
pck_dynamic_platform = "any"
pck_cached_keys = "any"
pck_smt_enabled = "any"
mrseam = "any"
mrsignerseam = "any"
mrtd = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
mrconfigid = "any"
mrowner = "any"
mrownerconfig = "any"
xfam = "any"
"#,
    )
    .expect("the TDX-only policy loads")
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    build: fn() -> Setup,
    expect: Reason,
}

fn case(name: &'static str, expect: Reason, build: fn() -> Setup) -> Case {
    Case {
        name,
        build,
        expect,
    }
}

use FakeProduct::{Genoa, Milan, Turin};

fn cases() -> Vec<Case> {
    vec![
        // ---- SNP: a field changed and re-signed, rejected by policy ----
        case("snp_debug_allowed", Reason::DebugNotAllowed, || {
            snp(Milan, |b| b.debug(true))
        }),
        case(
            "snp_migration_agent_allowed",
            Reason::MigrationAgentNotAllowed,
            || snp(Genoa, |b| b.migrate_ma(true)),
        ),
        case("snp_vmpl_2_policy_vmpl_0", Reason::VmplNotAllowed, || {
            snp(Milan, |b| b.vmpl(2)).snp_policy(|p| p.vmpl = Constraint::Only(vec![0]))
        }),
        case("snp_smt_forbidden", Reason::SmtNotAllowed, || {
            snp(Turin, |b| b).snp_policy(|p| p.smt = Permission::Forbid)
        }),
        case("snp_tcb_below_minimum", Reason::TcbBelowMinimum, || {
            // A VCEK and report for an older SNP firmware; policy: the current default.
            let current = SnpTcb::default_for(Milan);
            let older = SnpTcb {
                snp: current.snp - 1,
                ..current
            };
            snp_for(&leaf(Milan, AmdLeafKind::Vcek, |b| b.tcb(older)), |b| b).snp_policy(|p| {
                p.min_tcb = Constraint::Only(MinTcb {
                    bootloader: current.bootloader,
                    tee: current.tee,
                    snp: current.snp,
                    microcode: current.microcode,
                    fmc: current.fmc,
                })
            })
        }),
        case(
            "snp_turin_fmc_below_minimum",
            Reason::TcbBelowMinimum,
            || {
                let tcb = SnpTcb::default_for(Turin);
                snp(Turin, |b| b).snp_policy(|p| {
                    p.min_tcb = Constraint::Only(MinTcb {
                        bootloader: tcb.bootloader,
                        tee: tcb.tee,
                        snp: tcb.snp,
                        microcode: tcb.microcode,
                        fmc: tcb.fmc + 1,
                    })
                })
            },
        ),
        case(
            "snp_measurement_not_pinned_value",
            Reason::MeasurementMismatch,
            || {
                let pinned = SnpReportBuilder::new(Genoa).measurement;
                snp(Genoa, |b| b.measurement([0xA5; 48]))
                    .snp_policy(|p| p.measurement = Constraint::Only(vec![hex48(pinned)]))
            },
        ),
        case(
            "snp_measurement_toml_policy",
            Reason::MeasurementMismatch,
            || {
                let pinned = SnpReportBuilder::new(Milan).measurement;
                let mut setup = snp(Milan, |b| b.measurement([0x01; 48]));
                setup.policy = snp_only_toml(pinned);
                setup
            },
        ),
        case("snp_host_data_mismatch", Reason::HostDataMismatch, || {
            snp(Milan, |b| b.host_data([0x77; 32]))
                .snp_policy(|p| p.host_data = Constraint::Only(vec![Hex([0x66; 32])]))
        }),
        case(
            "snp_report_data_mismatch",
            Reason::ReportDataMismatch,
            || {
                snp(Milan, |b| b.report_data([0x01; 64]))
                    .policy(|p| p.report_data = Constraint::Only(Hex([0x02; 64])))
            },
        ),
        case("snp_product_not_allowed", Reason::ProductNotAllowed, || {
            snp(Genoa, |b| b).snp_policy(|p| p.products = vec![Product::Milan, Product::Turin])
        }),
        case("snp_vlek_not_allowed", Reason::SigningKeyNotAllowed, || {
            snp_vlek(Milan, |b| b).snp_policy(|p| p.signing_keys = vec![SigningKey::Vcek])
        }),
        case(
            "snp_platform_not_allowed",
            Reason::PlatformNotAllowed,
            || {
                let mut setup = snp(Milan, |b| b);
                setup.policy = tdx_only_toml();
                setup
            },
        ),
        // ---- SNP: bytes changed without re-signing ----
        case(
            "snp_report_body_byte_flipped",
            Reason::ReportSignatureInvalid,
            || {
                snp(Milan, |b| b).bytes(|r| r[0x90] ^= 0x01) // MEASUREMENT
            },
        ),
        case(
            "snp_report_data_flipped_vlek",
            Reason::ReportSignatureInvalid,
            || snp_vlek(Genoa, |b| b).bytes(|r| r[0x50] ^= 0x80),
        ),
        case(
            "snp_report_signature_corrupted",
            Reason::ReportSignatureInvalid,
            || snp(Turin, |b| b.corrupt_signature()),
        ),
        case(
            "snp_report_signed_by_other_chip",
            Reason::ReportSignatureInvalid,
            || {
                // Same certificate, report signed by another chip's key.
                let vcek = leaf(Milan, AmdLeafKind::Vcek, |b| b);
                let other = leaf(Milan, AmdLeafKind::Vcek, |b| b.key_label("other-chip"));
                let report = SnpReportBuilder::for_leaf(&vcek).sign(&other);
                snp_for(&vcek, |b| b).bytes(|r| *r = report)
            },
        ),
        // ---- SNP: parse ----
        case("snp_report_truncated", Reason::Truncated, || {
            snp(Milan, |b| b).bytes(|r| r.truncate(r.len() - 1))
        }),
        case("snp_trailing_garbage", Reason::TrailingData, || {
            snp(Milan, |b| b).bytes(|r| r.extend_from_slice(b"garbage"))
        }),
        case("snp_version_4", Reason::UnsupportedVersion, || {
            snp(Genoa, |b| b.version(4))
        }),
        case(
            "snp_reserved_byte_0x4c_set",
            Reason::ReservedNotZero,
            || snp(Milan, |b| b.poke(0x4C, 1)),
        ),
        case(
            "snp_v3_report_with_v5_mitigation_field",
            Reason::ReservedNotZero,
            || snp(Milan, |b| b.poke(0x1F8, 1)),
        ),
        case(
            "snp_signature_padding_not_zero",
            Reason::ReservedNotZero,
            || snp(Milan, |b| b).bytes(|r| r[0x2A0 + 48] = 1),
        ),
        case(
            "snp_signature_algorithm_2",
            Reason::UnsupportedAlgorithm,
            || snp(Milan, |b| b.signature_algo(2)),
        ),
        case("snp_unsigned_signing_key_7", Reason::InvalidField, || {
            snp(Milan, |b| b.signing_key(SnpSigningKey::None))
        }),
        // key_info bit 1 is MASK_CHIP_KEY (AMD ABI): the firmware did not sign the report.
        case("snp_chip_key_masked", Reason::ReportChipKeyMasked, || {
            snp(Milan, |mut b| {
                b.mask_chip_key = true;
                b
            })
        }),
        // ---- SNP: certificates, each wrong in its own way ----
        case("snp_vcek_expired", Reason::CertificateExpired, || {
            snp_leaf(Milan, |b| b.validity(DEFAULT_NOT_BEFORE, DEFAULT_AT - 1))
        }),
        case(
            "snp_vcek_not_yet_valid",
            Reason::CertificateNotYetValid,
            || snp_leaf(Genoa, |b| b.validity(DEFAULT_AT + 1, DEFAULT_NOT_AFTER)),
        ),
        case("snp_vlek_expired", Reason::CertificateExpired, || {
            snp_for(
                &leaf(Milan, AmdLeafKind::Vlek, |b| {
                    b.validity(DEFAULT_AT - 365 * DAY, DEFAULT_AT - DAY)
                }),
                |b| b,
            )
        }),
        case(
            "snp_vlek_not_yet_valid",
            Reason::CertificateNotYetValid,
            || {
                snp_for(
                    &leaf(Turin, AmdLeafKind::Vlek, |b| {
                        b.validity(DEFAULT_AT + DAY, DEFAULT_AT + 365 * DAY)
                    }),
                    |b| b,
                )
            },
        ),
        case("snp_ask_expired", Reason::CertificateExpired, || {
            let ask = authority_cert(Milan, AmdRole::Ask, DEFAULT_NOT_BEFORE, DEFAULT_AT - 1);
            snp(Milan, |b| b).certs(|c| c[1] = ask)
        }),
        case(
            "snp_ask_not_yet_valid",
            Reason::CertificateNotYetValid,
            || {
                let ask = authority_cert(Genoa, AmdRole::Ask, DEFAULT_AT + 1, DEFAULT_NOT_AFTER);
                snp(Genoa, |b| b).certs(|c| c[1] = ask)
            },
        ),
        case("snp_ark_expired", Reason::CertificateExpired, || {
            // The same ARK key in an expired self-signed certificate, trusted by hash.
            let ark = authority_cert(Milan, AmdRole::Ark, DEFAULT_NOT_BEFORE, DEFAULT_AT - 1);
            snp(Milan, |b| b)
                .snp_anchors(SnpTrustAnchors::empty().dangerous_trust_ark(ark.clone()))
                .certs(|c| c[2] = ark)
        }),
        case(
            "snp_vcek_issued_by_other_products_ask",
            Reason::ProductMismatch,
            || snp_leaf(Milan, |b| b.issuer(AmdIssuer::Other(Genoa, AmdRole::Ask))),
        ),
        case(
            "snp_vcek_named_milan_signed_by_genoa_ask",
            Reason::CertificateSignatureInvalid,
            || {
                snp_leaf(Milan, |b| {
                    b.issuer(AmdIssuer::Other(Genoa, AmdRole::Ask))
                        .issuer_name(amd_name("SEV-Milan"))
                })
            },
        ),
        case(
            "snp_chain_with_other_products_ask",
            Reason::ProductMismatch,
            || snp(Milan, |b| b).certs(|c| c[1] = amd(Genoa).ask_der().to_vec()),
        ),
        case("snp_wrong_product_root", Reason::ProductMismatch, || {
            snp(Milan, |b| b).certs(|c| c[2] = amd(Genoa).ark_der().to_vec())
        }),
        case(
            "snp_vcek_product_name_of_other_product",
            Reason::ProductMismatch,
            || snp_leaf(Milan, |b| b.product_name(Some("Genoa"))),
        ),
        case(
            "snp_cpuid_of_other_product",
            Reason::ProductMismatch,
            || {
                snp(Milan, |mut b| {
                    b.cpuid_fam_mod_step = Genoa.cpuid_fam_mod_step();
                    b
                })
            },
        ),
        case(
            "snp_untrusted_root_production_anchors_only",
            Reason::UntrustedRoot,
            || snp(Milan, |b| b).snp_anchors(SnpTrustAnchors::amd()),
        ),
        case(
            "snp_untrusted_root_other_fake_ark_trusted",
            Reason::UntrustedRoot,
            || {
                snp(Turin, |b| b).snp_anchors(
                    SnpTrustAnchors::empty().dangerous_trust_ark(amd(Genoa).ark_der().to_vec()),
                )
            },
        ),
        case(
            "snp_ark_byte_flipped_is_not_pinned",
            Reason::UntrustedRoot,
            || {
                snp(Milan, |b| b).certs(|c| {
                    let n = c[2].len();
                    c[2][n - 3] ^= 1;
                })
            },
        ),
        case(
            "snp_fake_vcek_alone_under_amd_ask",
            Reason::IssuerMismatch,
            || {
                // Only the fake VCEK: the built-in production ASK-Milan has another name.
                snp(Milan, |b| b)
                    .certs(|c| c.truncate(1))
                    .snp_anchors(SnpTrustAnchors::amd())
            },
        ),
        case(
            "snp_ask_missing_for_fake_root",
            Reason::CertificateMissing,
            || {
                snp(Genoa, |b| b).certs(|c| {
                    c.remove(1);
                })
            },
        ),
        case("snp_vcek_missing", Reason::CertificateMissing, || {
            snp(Genoa, |b| b).certs(|c| {
                c.remove(0);
            })
        }),
        case(
            "snp_vcek_signature_corrupted",
            Reason::CertificateSignatureInvalid,
            || snp_leaf(Milan, |b| b.corrupt_signature()),
        ),
        case(
            "snp_ask_signature_flipped",
            Reason::CertificateSignatureInvalid,
            || {
                snp(Milan, |b| b).certs(|c| {
                    let n = c[1].len();
                    c[1][n - 3] ^= 1;
                })
            },
        ),
        case(
            "snp_vcek_signature_flipped_in_der",
            Reason::CertificateSignatureInvalid,
            || {
                snp(Turin, |b| b).certs(|c| {
                    let n = c[0].len();
                    c[0][n - 3] ^= 1;
                })
            },
        ),
        case(
            "snp_vcek_report_with_only_vlek",
            Reason::SigningKeyMismatch,
            || {
                let vlek = leaf(Milan, AmdLeafKind::Vlek, |b| b);
                snp(Milan, |b| b).certs(|c| *c = chain_for(&vlek))
            },
        ),
        case(
            "snp_vlek_report_with_only_vcek",
            Reason::SigningKeyMismatch,
            || {
                let vcek = leaf(Genoa, AmdLeafKind::Vcek, |b| b);
                snp_vlek(Genoa, |b| b).certs(|c| *c = chain_for(&vcek))
            },
        ),
        case(
            "snp_vcek_issued_by_asvk",
            Reason::SigningKeyMismatch,
            || snp_leaf(Milan, |b| b.issuer(AmdIssuer::Own(AmdRole::Asvk))),
        ),
        case("snp_vlek_issued_by_ask", Reason::SigningKeyMismatch, || {
            snp_for(
                &leaf(Genoa, AmdLeafKind::Vlek, |b| {
                    b.issuer(AmdIssuer::Own(AmdRole::Ask))
                }),
                |b| b,
            )
        }),
        case(
            "snp_report_says_vlek_key_info_with_vcek",
            Reason::SigningKeyMismatch,
            || snp(Milan, |b| b.signing_key(SnpSigningKey::Vlek)),
        ),
        case("snp_hwid_mismatch", Reason::HwIdMismatch, || {
            snp(Milan, |b| b.chip_id([0xAB; 64]))
        }),
        case("snp_turin_hwid_mismatch", Reason::HwIdMismatch, || {
            snp(Turin, |b| {
                let mut chip = b.chip_id;
                chip[0] ^= 0xFF;
                b.chip_id(chip)
            })
        }),
        case("snp_vcek_without_hwid", Reason::HwIdMismatch, || {
            snp_leaf(Genoa, |b| b.hw_id(None))
        }),
        case(
            "snp_reported_tcb_ucode_above_vcek",
            Reason::TcbExtensionMismatch,
            || {
                snp(Milan, |b| {
                    let mut tcb = SnpTcb::default_for(Milan);
                    tcb.microcode += 1;
                    b.reported_tcb(tcb.to_u64(Milan))
                })
            },
        ),
        case(
            "snp_reported_tcb_bootloader_below_vcek",
            Reason::TcbExtensionMismatch,
            || {
                snp(Genoa, |b| {
                    let mut tcb = SnpTcb::default_for(Genoa);
                    tcb.bootloader -= 1;
                    b.reported_tcb(tcb.to_u64(Genoa))
                })
            },
        ),
        case(
            "snp_reported_tcb_reserved_byte",
            Reason::TcbExtensionMismatch,
            || {
                snp(Milan, |b| {
                    let raw = SnpTcb::default_for(Milan).to_u64(Milan) | (1 << 24);
                    b.reported_tcb(raw)
                })
            },
        ),
        case(
            "snp_vcek_without_snp_spl",
            Reason::TcbExtensionMismatch,
            || snp_leaf(Milan, |b| b.omit_extension(amd_oids::SNP_SPL)),
        ),
        // ---- SNP: CRLs ----
        case(
            "snp_vcek_revoked_by_ask_crl",
            Reason::CertificateRevoked,
            || {
                let crl = amd(Milan)
                    .crl()
                    .signer(AmdIssuer::Own(AmdRole::Ask))
                    .revoke(&[0x12, 0x34], DEFAULT_AT - DAY)
                    .build();
                // An empty ARK CRL first: the revocation is found on the second.
                let empty_ark_crl = amd(Milan).crl().build();
                snp_leaf(Milan, |b| b.serial(&[0x12, 0x34])).crls(vec![empty_ark_crl, crl])
            },
        ),
        case(
            "snp_ask_revoked_by_ark_crl",
            Reason::CertificateRevoked,
            || {
                let ask_serial = 0x10001u64.to_be_bytes();
                let crl = amd(Genoa)
                    .crl()
                    .revoke(&ask_serial, DEFAULT_AT - DAY)
                    .build();
                let empty_ask_crl = amd(Genoa)
                    .crl()
                    .signer(AmdIssuer::Own(AmdRole::Ask))
                    .build();
                snp(Genoa, |b| b).crls(vec![empty_ask_crl, crl])
            },
        ),
        case(
            "snp_asvk_revoked_by_ark_crl",
            Reason::CertificateRevoked,
            || {
                let asvk_serial = 0x10101u64.to_be_bytes();
                let crl = amd(Turin)
                    .crl()
                    .revoke(&asvk_serial, DEFAULT_AT - DAY)
                    .build();
                snp_vlek(Turin, |b| b).crls(vec![crl])
            },
        ),
        case("snp_stale_crl", Reason::CollateralExpired, || {
            let crl = amd(Milan).crl().next_update(Some(DEFAULT_AT - 1)).build();
            snp(Milan, |b| b).crls(vec![crl])
        }),
        case(
            "snp_crl_not_yet_valid",
            Reason::CollateralNotYetValid,
            || {
                let crl = amd(Milan).crl().this_update(DEFAULT_AT + DAY).build();
                snp(Milan, |b| b).crls(vec![crl])
            },
        ),
        case(
            "snp_crl_signature_corrupted",
            Reason::CrlSignatureInvalid,
            || {
                let crl = amd(Milan).crl().corrupt_signature().build();
                snp(Milan, |b| b).crls(vec![crl])
            },
        ),
        case("snp_crl_of_other_product", Reason::IssuerMismatch, || {
            let crl = amd(Genoa).crl().build();
            snp(Milan, |b| b).crls(vec![crl])
        }),
        // ---- SNP: revocation decided by the policy, not by which CRLs the host sent ----
        case("snp_crl_missing_require_crl", Reason::CrlMissing, || {
            snp(Milan, |b| b).snp_policy(|p| p.revocation = Revocation::RequireCrl)
        }),
        case("snp_only_ask_crl_require_crl", Reason::CrlMissing, || {
            // A CRL of the ASK covers the VCEK, not the ASK: AMD's ARK CRL is missing.
            let ask_crl = amd(Genoa)
                .crl()
                .signer(AmdIssuer::Own(AmdRole::Ask))
                .build();
            snp(Genoa, |b| b)
                .crls(vec![ask_crl])
                .snp_policy(|p| p.revocation = Revocation::RequireCrl)
        }),
        case(
            "snp_vlek_crl_missing_require_crl",
            Reason::CrlMissing,
            || snp_vlek(Turin, |b| b).snp_policy(|p| p.revocation = Revocation::RequireCrl),
        ),
        // ---- SNP: the other TCBs, GUEST_SVN and the ID block ----
        case(
            "snp_launch_tcb_below_minimum",
            Reason::LaunchTcbBelowMinimum,
            || {
                snp(Milan, |b| b.launch_tcb(older_tcb(Milan))).snp_policy(|p| {
                    p.min_launch_tcb = Constraint::Only(min_tcb(SnpTcb::default_for(Milan)))
                })
            },
        ),
        case(
            "snp_committed_tcb_below_minimum",
            Reason::CommittedTcbBelowMinimum,
            || {
                snp(Turin, |b| b.committed_tcb(older_tcb(Turin))).snp_policy(|p| {
                    p.min_committed_tcb = Constraint::Only(min_tcb(SnpTcb::default_for(Turin)))
                })
            },
        ),
        case(
            "snp_guest_svn_below_minimum",
            Reason::GuestSvnBelowMinimum,
            || snp(Genoa, |b| b.guest_svn(4)).snp_policy(|p| p.min_guest_svn = Constraint::Only(5)),
        ),
        case(
            "snp_id_key_digest_not_listed",
            Reason::IdKeyNotAllowed,
            || {
                snp(Milan, |b| b.id_key_digest([0x1D; 48]))
                    .snp_policy(|p| p.id_key_digest = Constraint::Only(vec![hex48([0x1E; 48])]))
            },
        ),
        case(
            "snp_author_key_digest_not_listed",
            Reason::AuthorKeyNotAllowed,
            || {
                snp(Milan, |b| b.author_key_digest([0xA1; 48]))
                    .snp_policy(|p| p.author_key_digest = Constraint::Only(vec![hex48([0xA2; 48])]))
            },
        ),
        case("snp_family_id_mismatch", Reason::FamilyIdMismatch, || {
            snp(Genoa, |b| b.family_id([0xF1; 16]))
                .snp_policy(|p| p.family_id = Constraint::Only(vec![Hex([0xF2; 16])]))
        }),
        case("snp_image_id_mismatch", Reason::ImageIdMismatch, || {
            snp(Genoa, |b| b.image_id([0x11; 16]))
                .snp_policy(|p| p.image_id = Constraint::Only(vec![Hex([0x12; 16])]))
        }),
        // ---- SNP: guest-policy bits and ABI (one row per bit) ----
        case(
            "snp_guest_abi_below_minimum",
            Reason::GuestAbiBelowMinimum,
            || {
                snp(Milan, |b| b.policy_bits(guest::abi(1, 51), true)).snp_policy(|p| {
                    p.guest_policy.min_abi = Constraint::Only(AbiVersion {
                        major: 1,
                        minor: 55,
                    })
                })
            },
        ),
        case(
            "snp_single_socket_required",
            Reason::GuestPolicyNotAllowed,
            || {
                snp_guest_bit(guest::SINGLE_SOCKET, false, BitRule::Require, |p| {
                    &mut p.guest_policy.single_socket
                })
            },
        ),
        case(
            "snp_cxl_allow_forbidden",
            Reason::GuestPolicyNotAllowed,
            || {
                snp_guest_bit(guest::CXL_ALLOW, true, BitRule::Forbid, |p| {
                    &mut p.guest_policy.cxl_allow
                })
            },
        ),
        case(
            "snp_mem_aes_256_xts_required",
            Reason::GuestPolicyNotAllowed,
            || {
                snp_guest_bit(guest::MEM_AES_256_XTS, false, BitRule::Require, |p| {
                    &mut p.guest_policy.mem_aes_256_xts
                })
            },
        ),
        case(
            "snp_guest_rapl_dis_required",
            Reason::GuestPolicyNotAllowed,
            || {
                snp_guest_bit(guest::RAPL_DIS, false, BitRule::Require, |p| {
                    &mut p.guest_policy.rapl_dis
                })
            },
        ),
        case(
            "snp_ciphertext_hiding_required",
            Reason::GuestPolicyNotAllowed,
            || {
                snp_guest_bit(
                    guest::CIPHERTEXT_HIDING_DRAM,
                    false,
                    BitRule::Require,
                    |p| &mut p.guest_policy.ciphertext_hiding,
                )
            },
        ),
        case(
            "snp_page_swap_disable_required",
            Reason::GuestPolicyNotAllowed,
            || {
                snp_guest_bit(guest::PAGE_SWAP_DISABLE, false, BitRule::Require, |p| {
                    &mut p.guest_policy.page_swap_disable
                })
            },
        ),
        // ---- SNP: PLATFORM_INFO bits (one row per bit; the default report has SMT_EN) ----
        case(
            "snp_platform_smt_en_forbidden",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::SMT_EN, BitRule::Forbid, |p| {
                    &mut p.platform_info.smt_en
                })
            },
        ),
        case(
            "snp_platform_tsme_en_required",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::SMT_EN, BitRule::Require, |p| {
                    &mut p.platform_info.tsme_en
                })
            },
        ),
        case(
            "snp_platform_ecc_en_required",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::SMT_EN, BitRule::Require, |p| {
                    &mut p.platform_info.ecc_en
                })
            },
        ),
        case(
            "snp_platform_rapl_dis_required",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::SMT_EN, BitRule::Require, |p| {
                    &mut p.platform_info.rapl_dis
                })
            },
        ),
        case(
            "snp_platform_ciphertext_hiding_en_required",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::SMT_EN, BitRule::Require, |p| {
                    &mut p.platform_info.ciphertext_hiding_en
                })
            },
        ),
        case(
            "snp_platform_alias_check_complete_required",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::SMT_EN, BitRule::Require, |p| {
                    &mut p.platform_info.alias_check_complete
                })
            },
        ),
        case(
            "snp_platform_tio_en_forbidden",
            Reason::PlatformInfoNotAllowed,
            || {
                snp_platform_bit(info::TIO_EN, BitRule::Forbid, |p| {
                    &mut p.platform_info.tio_en
                })
            },
        ),
        // ---- SNP: Azure HCL wrapper ----
        case(
            "hcl_runtime_data_tampered",
            Reason::ReportDataMismatch,
            || {
                hcl(|w| {
                    let i = 32 + 1184 + 20 + 3;
                    w[i] ^= 0x01;
                })
            },
        ),
        case("hcl_nonzero_padding", Reason::TrailingData, || {
            hcl(|w| *w.last_mut().expect("padded") = 1)
        }),
        case(
            "hcl_report_body_flipped",
            Reason::ReportSignatureInvalid,
            || hcl(|w| w[32 + 0x90] ^= 0x01),
        ),
        // ---- TDX: a field changed and re-signed, rejected by policy ----
        case("tdx_debug", Reason::DebugNotAllowed, || {
            tdx(|q| q.debug(true))
        }),
        case("tdx_tcb_out_of_date", Reason::TcbStatusNotAllowed, || {
            tdx_collateral(|mut c| {
                c.tcb_info = c
                    .tcb_info
                    .first_level_status("OutOfDate", &["INTEL-SA-00837"]);
                c
            })
        }),
        case("tdx_forbidden_advisory", Reason::AdvisoryNotAllowed, || {
            tdx_collateral(|mut c| {
                c.tcb_info = c
                    .tcb_info
                    .first_level_status("SWHardeningNeeded", &["INTEL-SA-00837"]);
                c
            })
            .tdx_policy(|p| {
                p.tcb_statuses = vec![TcbStatus::UpToDate, TcbStatus::SwHardeningNeeded];
                p.forbidden_advisory_ids = vec!["INTEL-SA-00837".to_owned()];
            })
        }),
        case("tdx_mrtd_mismatch", Reason::MeasurementMismatch, || {
            let pinned = TdxQuoteBuilder::new().mr_td;
            tdx(|q| q.mr_td([0x11; 48]))
                .tdx_policy(|p| p.mrtd = Constraint::Only(vec![hex48(pinned)]))
        }),
        case("tdx_rtmr2_mismatch", Reason::RtmrMismatch, || {
            let default = TdxQuoteBuilder::new().rtmr;
            tdx(|q| q.rtmr(2, [0x22; 48])).tdx_policy(|p| {
                p.rtmr0 = Constraint::Only(vec![hex48(default[0])]);
                p.rtmr1 = Constraint::Only(vec![hex48(default[1])]);
                p.rtmr2 = Constraint::Only(vec![hex48(default[2])]);
                p.rtmr3 = Constraint::Only(vec![hex48(default[3])]);
            })
        }),
        case("tdx_mrconfigid_mismatch", Reason::HostDataMismatch, || {
            tdx(|q| q.mr_config_id([0x33; 48]))
                .tdx_policy(|p| p.mrconfigid = Constraint::Only(vec![hex48([0; 48])]))
        }),
        case(
            "tdx_report_data_mismatch",
            Reason::ReportDataMismatch,
            || {
                tdx(|q| q.report_data([0x44; 64]))
                    .policy(|p| p.report_data = Constraint::Only(Hex([0x45; 64])))
            },
        ),
        case(
            "tdx_platform_not_allowed",
            Reason::PlatformNotAllowed,
            || {
                let mut setup = tdx(|q| q);
                setup.policy = snp_only_toml([0; 48]);
                setup
            },
        ),
        case("tdx_v5_td15_debug", Reason::DebugNotAllowed, || {
            tdx(|q| q.format(TdxQuoteFormat::V5Td15).debug(true))
        }),
        // ---- TDX: module, owner and XFAM fields ----
        case("tdx_mrseam_mismatch", Reason::MrSeamMismatch, || {
            let pinned = TdxQuoteBuilder::new().mr_seam;
            tdx(|mut q| {
                q.mr_seam = [0xA5; 48];
                q
            })
            .tdx_policy(|p| p.mrseam = Constraint::Only(vec![hex48(pinned)]))
        }),
        case(
            "tdx_mrsignerseam_not_listed",
            Reason::MrSignerSeamMismatch,
            || {
                // The module's signer is checked against the TCB info by dcap-qvl too, so
                // the evidence keeps Intel's and the policy names another.
                tdx(|q| q)
                    .tdx_policy(|p| p.mrsignerseam = Constraint::Only(vec![hex48([0x51; 48])]))
            },
        ),
        case("tdx_xfam_not_allowed", Reason::XfamNotAllowed, || {
            let allowed = TdxQuoteBuilder::new().xfam;
            tdx(|mut q| {
                q.xfam = allowed | 1 << 14; // one more extended feature than the policy allows
                q
            })
            .tdx_policy(|p| p.xfam = Constraint::Only(vec![Hex(allowed.to_le_bytes())]))
        }),
        case("tdx_mrowner_mismatch", Reason::MrOwnerMismatch, || {
            tdx(|mut q| {
                q.mr_owner = [0x0A; 48];
                q
            })
            .tdx_policy(|p| p.mrowner = Constraint::Only(vec![hex48([0x0B; 48])]))
        }),
        case(
            "tdx_mrownerconfig_mismatch",
            Reason::MrOwnerConfigMismatch,
            || {
                tdx(|mut q| {
                    q.mr_owner_config = [0x0C; 48];
                    q
                })
                .tdx_policy(|p| p.mrownerconfig = Constraint::Only(vec![hex48([0; 48])]))
            },
        ),
        // ---- TDX: collateral edition and age ----
        case(
            "tdx_tcb_info_evaluation_number_below_minimum",
            Reason::TcbEvaluationDataNumberBelowMinimum,
            || {
                tdx_collateral(|mut c| {
                    c.tcb_info.tcb_evaluation_data_number = 18;
                    c
                })
                .tdx_policy(|p| p.min_tcb_evaluation_data_number = Constraint::Only(19))
            },
        ),
        case(
            "tdx_qe_identity_evaluation_number_below_minimum",
            Reason::TcbEvaluationDataNumberBelowMinimum,
            || {
                tdx_collateral(|mut c| {
                    c.qe_identity.tcb_evaluation_data_number = 18;
                    c
                })
                .tdx_policy(|p| p.min_tcb_evaluation_data_number = Constraint::Only(19))
            },
        ),
        case("tdx_tcb_info_too_old", Reason::CollateralTooOld, || {
            // Issued 7 days before the verification time, still before its nextUpdate.
            tdx(|q| q).tdx_policy(|p| p.max_collateral_age_days = Constraint::Only(6))
        }),
        case("tdx_qe_identity_too_old", Reason::CollateralTooOld, || {
            tdx_collateral(|mut c| {
                c.tcb_info.issue_date = sim::rfc3339(DEFAULT_AT - DAY);
                c
            })
            .tdx_policy(|p| p.max_collateral_age_days = Constraint::Only(3))
        }),
        // ---- TDX: PCK platform flags (the default PCK states all three as true) ----
        case(
            "tdx_pck_dynamic_platform_forbidden",
            Reason::PckPlatformFlagNotAllowed,
            || {
                tdx_pck_flag(Some(all_pck_flags(true)), BitRule::Forbid, |p| {
                    &mut p.pck_dynamic_platform
                })
            },
        ),
        case(
            "tdx_pck_cached_keys_forbidden",
            Reason::PckPlatformFlagNotAllowed,
            || {
                tdx_pck_flag(Some(all_pck_flags(true)), BitRule::Forbid, |p| {
                    &mut p.pck_cached_keys
                })
            },
        ),
        case(
            "tdx_pck_smt_enabled_forbidden",
            Reason::PckPlatformFlagNotAllowed,
            || {
                tdx_pck_flag(Some(all_pck_flags(true)), BitRule::Forbid, |p| {
                    &mut p.pck_smt_enabled
                })
            },
        ),
        case(
            "tdx_pck_smt_enabled_required_but_off",
            Reason::PckPlatformFlagNotAllowed,
            || {
                tdx_pck_flag(Some(all_pck_flags(false)), BitRule::Require, |p| {
                    &mut p.pck_smt_enabled
                })
            },
        ),
        case(
            "tdx_pck_flags_not_stated",
            Reason::PckPlatformFlagNotAllowed,
            || tdx_pck_flag(None, BitRule::Forbid, |p| &mut p.pck_cached_keys),
        ),
        // ---- TDX: fixed rules on TD attributes (dcap-qvl) ----
        case("tdx_migratable", Reason::MigrationAgentNotAllowed, || {
            tdx(|q| q.td_attributes(TD_ATTR_SEPT_VE_DISABLE | TD_ATTR_MIGRATABLE))
        }),
        case("tdx_sept_ve_disable_clear", Reason::InvalidField, || {
            tdx(|q| q.td_attributes(0))
        }),
        case(
            "tdx_reserved_td_attribute_bit",
            Reason::ReservedNotZero,
            || tdx(|q| q.td_attributes(TD_ATTR_SEPT_VE_DISABLE | 1 << 1)),
        ),
        // ---- TDX: bytes changed without re-signing ----
        case(
            "tdx_quote_body_flipped",
            Reason::QuoteSignatureInvalid,
            || {
                // MRTD starts at 48 (header) + 136 in the TD report.
                tdx(|q| q).bytes(|b| b[48 + 136] ^= 0x01)
            },
        ),
        case(
            "tdx_quote_header_flipped",
            Reason::QuoteSignatureInvalid,
            || {
                tdx(|q| q).bytes(|b| b[30] ^= 0x01) // header user data
            },
        ),
        case(
            "tdx_quote_signature_corrupted",
            Reason::QuoteSignatureInvalid,
            || tdx(|q| q.corrupt_quote_signature()),
        ),
        case(
            "tdx_v5_td15_body_flipped",
            Reason::QuoteSignatureInvalid,
            || {
                tdx(|q| q.format(TdxQuoteFormat::V5Td15)).bytes(|b| {
                    let end = attestation::tdx::Quote::parse(b).unwrap().signed_len();
                    b[end - 1] ^= 0x80; // last byte of MRSERVICETD
                })
            },
        ),
        case(
            "tdx_qe_report_flipped",
            Reason::QeReportSignatureInvalid,
            || {
                tdx(|q| q).bytes(|b| {
                    let qe = qe_report_offset(b);
                    b[qe + 64] ^= 0x01; // MRENCLAVE
                })
            },
        ),
        case(
            "tdx_qe_report_signature_corrupted",
            Reason::QeReportSignatureInvalid,
            || tdx(|q| q.corrupt_qe_report_signature()),
        ),
        case(
            "tdx_qe_report_signed_by_other_key",
            Reason::QeReportSignatureInvalid,
            || {
                tdx(|mut q| {
                    q.qe_report_signer_label = Some("not-the-pck".to_owned());
                    q
                })
            },
        ),
        case("tdx_qe_binding_broken", Reason::QeBindingMismatch, || {
            tdx(|q| q.break_qe_report_binding())
        }),
        case(
            "tdx_qe_auth_data_flipped",
            Reason::QeBindingMismatch,
            || {
                tdx(|q| q).bytes(|b| {
                    let auth = qe_report_offset(b) + 384 + 64 + 2;
                    b[auth] ^= 0x01;
                })
            },
        ),
        case(
            "tdx_attestation_key_swapped",
            Reason::QeBindingMismatch,
            || {
                // Quote re-signed by another attestation key the QE never certified.
                let intel = intel();
                let pck = intel.pck_leaf().build(intel);
                let honest = TdxQuoteBuilder::new().build(intel, &pck);
                let mut forged = TdxQuoteBuilder::new();
                forged.attestation_key_label = "attacker".to_owned();
                let forged = forged.build(intel, &pck);
                // Keep the honest QE report (binding the honest key), the forged key and
                // quote signature.
                let qe = qe_report_offset(&honest);
                let mut quote = forged;
                quote[qe..qe + 384 + 64].copy_from_slice(&honest[qe..qe + 384 + 64]);
                tdx(|q| q).bytes(|b| *b = quote)
            },
        ),
        // ---- TDX: parse ----
        case(
            "tdx_quote_truncated_in_signature_data",
            Reason::Truncated,
            || tdx(|q| q).bytes(|b| b.truncate(b.len() - 10)),
        ),
        case("tdx_quote_truncated_in_body", Reason::Truncated, || {
            tdx(|q| q).bytes(|b| b.truncate(300))
        }),
        case("tdx_version_3", Reason::UnsupportedVersion, || {
            tdx(|mut q| {
                q.version = Some(3);
                q
            })
        }),
        case("tdx_tee_type_sgx", Reason::InvalidField, || {
            tdx(|mut q| {
                q.tee_type = 0;
                q
            })
        }),
        case("tdx_unknown_qe_vendor", Reason::InvalidField, || {
            tdx(|mut q| {
                q.qe_vendor_id = [0; 16];
                q
            })
        }),
        // ---- TDX: certificates ----
        case("tdx_pck_expired", Reason::CertificateExpired, || {
            tdx_custom(
                |p| p.validity(DEFAULT_NOT_BEFORE, DEFAULT_AT - 1),
                |q| q,
                |c| c,
            )
        }),
        case(
            "tdx_pck_not_yet_valid",
            Reason::CertificateNotYetValid,
            || {
                tdx_custom(
                    |p| p.validity(DEFAULT_AT + 1, DEFAULT_NOT_AFTER),
                    |q| q,
                    |c| c,
                )
            },
        ),
        case("tdx_pck_revoked", Reason::CertificateRevoked, || {
            tdx_custom(
                |p| p.serial(&[0x12, 0x34]),
                |q| q,
                |mut c| {
                    c.pck_crl = intel().pck_crl().revoke(&[0x12, 0x34], DEFAULT_AT - DAY);
                    c
                },
            )
        }),
        case(
            "tdx_pck_signature_corrupted",
            Reason::CertificateSignatureInvalid,
            || tdx_custom(|p| p.corrupt_signature(), |q| q, |c| c),
        ),
        case(
            "tdx_pck_issued_by_tcb_signing_key",
            Reason::IssuerMismatch,
            || tdx_custom(|p| p.issuer(IntelAuthority::TcbSigning), |q| q, |c| c),
        ),
        case(
            "tdx_pck_fmspc_not_tcb_info_fmspc",
            Reason::CollateralMismatch,
            || {
                tdx_custom(
                    |p| p.fmspc(&[0x00, 0x90, 0x6E, 0xA1, 0x00, 0x00]),
                    |q| q,
                    |c| c,
                )
            },
        ),
        case(
            "tdx_tcb_info_for_other_fmspc",
            Reason::CollateralMismatch,
            || {
                tdx_collateral(|mut c| {
                    c.tcb_info.fmspc = [0x00, 0x90, 0x6E, 0xA1, 0x00, 0x00];
                    c
                })
            },
        ),
        case("tdx_pck_ca_expired", Reason::CertificateExpired, || {
            let intel = intel();
            let pck = intel.pck_leaf().build(intel);
            let ca = intel
                .ca_certificate(IntelCaKind::PckPlatformCa)
                .validity(DEFAULT_NOT_BEFORE, DEFAULT_AT - 1)
                .build(intel, intel.key(IntelAuthority::PckPlatformCa));
            let chain = certificates_pem(&[&pck.der, &ca, intel.root_der()]);
            tdx(|mut q| {
                q.cert_chain_pem = Some(chain);
                q
            })
        }),
        case(
            "tdx_untrusted_root_intel_anchor_only",
            Reason::UntrustedRoot,
            || tdx(|q| q).tdx_anchors(TdxTrustAnchors::intel()),
        ),
        case(
            "tdx_tcb_signing_cert_expired",
            Reason::CertificateExpired,
            || {
                let intel = intel();
                let signing = intel
                    .ca_certificate(IntelCaKind::TcbSigning)
                    .validity(DEFAULT_NOT_BEFORE, DEFAULT_AT - 1)
                    .build(intel, intel.key(IntelAuthority::TcbSigning));
                let chain = certificates_pem(&[&signing, intel.root_der()]);
                tdx_collateral(|mut c| {
                    c.tcb_info_issuer_chain = Some(chain.clone());
                    c.qe_identity_issuer_chain = Some(chain);
                    c
                })
            },
        ),
        case(
            "tdx_pck_ca_revoked_by_root_crl",
            Reason::CertificateRevoked,
            || {
                let serial = sim::intel::derived_serial("intel-pck-platform-ca");
                tdx_collateral(|mut c| {
                    c.root_crl = intel().root_crl().revoke(&serial, DEFAULT_AT - DAY);
                    c
                })
            },
        ),
        case(
            "tdx_tcb_signing_revoked_by_root_crl",
            Reason::CertificateRevoked,
            || {
                let serial = sim::intel::derived_serial("intel-tcb-signing");
                tdx_collateral(|mut c| {
                    c.root_crl = intel().root_crl().revoke(&serial, DEFAULT_AT - DAY);
                    c
                })
            },
        ),
        case("tdx_v5_td15_service_td_set", Reason::InvalidField, || {
            tdx(|mut q| {
                q.mr_service_td = [0x01; 48];
                q.format(TdxQuoteFormat::V5Td15)
            })
        }),
        case(
            "tdx_qe_out_of_date_converges",
            Reason::TcbStatusNotAllowed,
            || {
                // Platform UpToDate, QE at the OutOfDate level: the converged status counts.
                tdx(|mut q| {
                    q.qe_report.isv_svn = 3;
                    q
                })
            },
        ),
        case(
            "tdx_qe_advisory_forbidden",
            Reason::AdvisoryNotAllowed,
            || {
                // QE at the OutOfDate level, whose advisory the policy forbids.
                tdx(|mut q| {
                    q.qe_report.isv_svn = 3;
                    q
                })
                .tdx_policy(|p| {
                    p.tcb_statuses = vec![TcbStatus::UpToDate, TcbStatus::OutOfDate];
                    // The advisory of the sim's OutOfDate QE identity level.
                    p.forbidden_advisory_ids = QeIdentityBuilder::default().tcb_levels[1]
                        .advisory_ids
                        .clone();
                })
            },
        ),
        // ---- TDX: collateral ----
        case("tdx_collateral_missing", Reason::CollateralMissing, || {
            tdx(|q| q).no_collateral()
        }),
        case("tdx_tcb_info_expired", Reason::CollateralExpired, || {
            tdx_collateral(|mut c| {
                c.tcb_info.next_update = sim::rfc3339(DEFAULT_AT - 1);
                c
            })
        }),
        case(
            "tdx_tcb_info_not_yet_valid",
            Reason::CollateralNotYetValid,
            || {
                tdx_collateral(|mut c| {
                    c.tcb_info.issue_date = sim::rfc3339(DEFAULT_AT + 1);
                    c
                })
            },
        ),
        case(
            "tdx_tcb_info_signature_corrupted",
            Reason::CollateralSignatureInvalid,
            || {
                tdx_collateral(|mut c| {
                    c.tcb_info.signing = CollateralSigning::Corrupted;
                    c
                })
            },
        ),
        case(
            "tdx_tcb_info_signed_by_other_key",
            Reason::CollateralSignatureInvalid,
            || {
                tdx_collateral(|mut c| {
                    c.tcb_info.signing = CollateralSigning::OtherKey("attacker".to_owned());
                    c
                })
            },
        ),
        case(
            "tdx_qe_identity_signature_corrupted",
            Reason::CollateralSignatureInvalid,
            || {
                tdx_collateral(|mut c| {
                    c.qe_identity.signing = CollateralSigning::Corrupted;
                    c
                })
            },
        ),
        case("tdx_qe_identity_expired", Reason::CollateralExpired, || {
            tdx_collateral(|mut c| {
                c.qe_identity.next_update = sim::rfc3339(DEFAULT_AT - 1);
                c
            })
        }),
        case("tdx_pck_crl_expired", Reason::CollateralExpired, || {
            tdx_collateral(|mut c| {
                c.pck_crl = intel().pck_crl().next_update(Some(DEFAULT_AT - 1));
                c
            })
        }),
        case(
            "tdx_root_crl_not_yet_valid",
            Reason::CollateralNotYetValid,
            || {
                tdx_collateral(|mut c| {
                    c.root_crl = intel().root_crl().this_update(DEFAULT_AT + DAY);
                    c
                })
            },
        ),
        case(
            "tdx_root_crl_signature_corrupted",
            Reason::CrlSignatureInvalid,
            || {
                tdx_collateral(|mut c| {
                    c.root_crl = intel().root_crl().corrupt_signature();
                    c
                })
            },
        ),
        case(
            "tdx_pck_crl_signed_by_other_key",
            Reason::CrlSignatureInvalid,
            || {
                tdx_collateral(|mut c| {
                    c.pck_crl = intel().pck_crl().sign_with_label("attacker");
                    c
                })
            },
        ),
        case("tdx_tcb_level_revoked", Reason::TcbRevoked, || {
            tdx_collateral(|mut c| {
                c.tcb_info = c.tcb_info.first_level_status("Revoked", &[]);
                c
            })
        }),
        case(
            "tdx_no_matching_tcb_level",
            Reason::TcbLevelNotFound,
            || {
                tdx_collateral(|mut c| {
                    for level in &mut c.tcb_info.tcb_levels {
                        level.pcesvn = DEFAULT_PCESVN + 1;
                    }
                    c
                })
            },
        ),
        case(
            "tdx_qe_mrsigner_mismatch",
            Reason::QeIdentityMismatch,
            || {
                tdx_collateral(|mut c| {
                    c.qe_identity.mrsigner = [0x11; 32];
                    c
                })
            },
        ),
        case(
            "tdx_qe_isvsvn_below_every_level",
            Reason::QeIdentityMismatch,
            || {
                tdx(|mut q| {
                    q.qe_report.isv_svn = 1;
                    q
                })
            },
        ),
        case(
            "tdx_module_version_unknown",
            Reason::TdxModuleMismatch,
            || {
                tdx(|q| {
                    let mut svn = q.tee_tcb_svn;
                    svn[1] = 2; // "TDX_02": not in the TCB info
                    q.tee_tcb_svn(svn)
                })
            },
        ),
        // ---- content recognition (EvidenceInputs) ----
        case(
            "files_snp_vcek_revoked_crl_file",
            Reason::CertificateRevoked,
            || {
                let crl = amd(Milan)
                    .crl()
                    .signer(AmdIssuer::Own(AmdRole::Ask))
                    .revoke(&[0], DEFAULT_AT - DAY)
                    .build();
                snp_files(vec![("ask.crl".to_owned(), crl)])
            },
        ),
        case("files_two_reports", Reason::AmbiguousInput, || {
            let other = SnpReportBuilder::new(Genoa).sign(&leaf(Genoa, AmdLeafKind::Vcek, |b| b));
            snp_files(vec![("second.bin".to_owned(), other)])
        }),
        case("files_unrecognised_input", Reason::UnknownInput, || {
            snp_files(vec![(
                "notes.txt".to_owned(),
                b"hello, not evidence".to_vec(),
            )])
        }),
        case(
            "files_tdx_quote_hex_flipped",
            Reason::QuoteSignatureInvalid,
            || {
                tdx_files(|files| {
                    let q = file(files, "quote.hex");
                    // Hex digit of MRTD's first byte (offset 184): '7' -> '6'.
                    q[2 * 184] ^= 0x01;
                })
            },
        ),
        case(
            "files_tdx_tcb_info_text_edited",
            Reason::CollateralSignatureInvalid,
            || {
                tdx_files(|files| {
                    let body = file(files, "tcb_info.json");
                    let text = String::from_utf8(body.clone()).unwrap();
                    let edited = text.replacen(
                        "\"tcbEvaluationDataNumber\":19",
                        "\"tcbEvaluationDataNumber\":20",
                        1,
                    );
                    assert_ne!(text, edited, "the TCB info carries the field");
                    *body = edited.into_bytes();
                })
            },
        ),
        case(
            "files_tdx_qe_identity_missing",
            Reason::CollateralMissing,
            || tdx_files(|files| files.retain(|(n, _)| n != "qe_identity.json")),
        ),
        // ---- Regressions: bugs the corpus found, one case each ----
        // The SNP CRL check took nextUpdate as inclusive while the TDX path (like webpki)
        // takes it as exclusive; both now expire a CRL at its nextUpdate second.
        case(
            "snp_crl_next_update_equals_verification_time",
            Reason::CollateralExpired,
            || {
                let crl = amd(Milan).crl().next_update(Some(DEFAULT_AT)).build();
                snp(Milan, |b| b).crls(vec![crl])
            },
        ),
        // Policy "debug = forbid" checked only TD_ATTRIBUTES bit 0; a TD with another TUD
        // bit (profiling, bit 4) was accepted. Every TUD bit 7:0 now counts as debug.
        case(
            "tdx_td_profiling_bit_with_debug_forbidden",
            Reason::DebugNotAllowed,
            || tdx(|q| q.td_attributes(TD_ATTR_SEPT_VE_DISABLE | 1 << 4)),
        ),
        // TCB info signed by the PCK CA (a CA used as end entity) fell to the catch-all
        // tdx_verification_failed; webpki's CaUsedAsEndEntity now maps to issuer_mismatch.
        case(
            "tdx_tcb_info_signed_by_pck_platform_ca",
            Reason::IssuerMismatch,
            || {
                let intel = intel();
                let key = intel.key(IntelAuthority::PckPlatformCa);
                let pck = intel.pck_leaf().build(intel);
                let quote = TdxQuoteBuilder::new().build(intel, &pck);
                let mut collateral = TdxCollateralBuilder::new(intel).build(intel);
                collateral.tcb_info_signature =
                    key.sign_raw(collateral.tcb_info.as_bytes()).to_vec();
                collateral.tcb_info_issuer_chain =
                    certificates_pem(&[intel.pck_platform_ca_der(), intel.root_der()]);
                Setup::new(Evidence::Tdx {
                    quote,
                    collateral: Some(collateral),
                    anchors: tdx_anchors(),
                })
            },
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------------------

fn describe(result: &Result<(), Rejection>) -> String {
    match result {
        Ok(()) => "ACCEPTED".to_owned(),
        Err(e) => format!("{:?} ({})", e.reason, e.detail),
    }
}

#[test]
fn corpus_has_at_least_50_cases_with_unique_names() {
    let cases = cases();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "case names are unique");
}

#[test]
fn every_case_is_rejected_with_its_reason() {
    let mut failures = Vec::new();
    for case in cases() {
        let result = (case.build)().outcome();
        eprintln!("{}: {}", case.name, describe(&result));
        let ok = matches!(&result, Err(e) if e.reason == case.expect);
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {}",
                case.name,
                case.expect,
                describe(&result)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Positive controls: the unmodified defaults of every platform and product, through
/// every input path, are accepted, so each negative fails for its own reason.
type Control = (&'static str, fn() -> Setup);

fn controls() -> Vec<Control> {
    vec![
        ("snp_milan_vcek", || snp(Milan, |b| b)),
        ("snp_genoa_vcek", || snp(Genoa, |b| b)),
        ("snp_turin_vcek", || snp(Turin, |b| b)),
        ("snp_milan_vlek", || snp_vlek(Milan, |b| b)),
        ("snp_genoa_vlek", || snp_vlek(Genoa, |b| b)),
        ("snp_turin_vlek", || snp_vlek(Turin, |b| b)),
        ("snp_report_v2", || snp(Milan, |b| b.version(2))),
        ("snp_report_v5", || snp(Turin, |b| b.version(5))),
        ("snp_without_supplied_ark", || {
            snp(Milan, |b| b).certs(|c| c.truncate(2))
        }),
        ("snp_current_tcb_differs_from_vcek", || {
            snp(Milan, |b| {
                let mut tcb = SnpTcb::default_for(Milan);
                tcb.microcode += 1;
                b.current_tcb(tcb.to_u64(Milan))
            })
        }),
        ("snp_with_empty_ark_and_ask_crls", || {
            let amd = amd(Genoa);
            let crls = vec![
                amd.crl().build(),
                amd.crl().signer(AmdIssuer::Own(AmdRole::Ask)).build(),
            ];
            snp(Genoa, |b| b).crls(crls)
        }),
        ("snp_vcek_serial_on_ark_crl", || {
            // Serials are per issuer: the ARK's CRL lists intermediates, never VCEKs.
            let crl = amd(Milan)
                .crl()
                .revoke(&[0x12, 0x34], DEFAULT_AT - DAY)
                .build();
            snp_leaf(Milan, |b| b.serial(&[0x12, 0x34])).crls(vec![crl])
        }),
        ("snp_pinned_policy_values", || {
            let defaults = SnpReportBuilder::new(Milan);
            let tcb = SnpTcb::default_for(Milan);
            let mut setup = snp(Milan, |b| b);
            setup.policy = snp_only_toml(defaults.measurement);
            setup
                .snp_policy(|p| {
                    p.host_data = Constraint::Only(vec![Hex(defaults.host_data)]);
                    p.min_tcb = Constraint::Only(MinTcb {
                        bootloader: tcb.bootloader,
                        tee: tcb.tee,
                        snp: tcb.snp,
                        microcode: tcb.microcode,
                        fmc: 0,
                    });
                    p.smt = Permission::Allow;
                })
                .policy(|p| p.report_data = Constraint::Only(Hex(defaults.report_data)))
        }),
        ("snp_azure_hcl", || hcl(|_| {})),
        ("tdx_v4_td10", || tdx(|q| q)),
        ("tdx_v5_td10", || tdx(|q| q.format(TdxQuoteFormat::V5Td10))),
        ("tdx_v5_td15", || tdx(|q| q.format(TdxQuoteFormat::V5Td15))),
        ("tdx_pinned_policy_values", || {
            let d = TdxQuoteBuilder::new();
            tdx(|q| q)
                .tdx_policy(|p| {
                    p.mrtd = Constraint::Only(vec![hex48(d.mr_td)]);
                    p.rtmr0 = Constraint::Only(vec![hex48(d.rtmr[0])]);
                    p.rtmr1 = Constraint::Only(vec![hex48(d.rtmr[1])]);
                    p.rtmr2 = Constraint::Only(vec![hex48(d.rtmr[2])]);
                    p.rtmr3 = Constraint::Only(vec![hex48(d.rtmr[3])]);
                    p.mrconfigid = Constraint::Only(vec![hex48(d.mr_config_id)]);
                })
                .policy(|p| p.report_data = Constraint::Only(Hex(d.report_data)))
        }),
        ("tdx_tdx_only_toml_policy", || {
            let mut setup = tdx(|q| q);
            setup.policy = tdx_only_toml();
            setup
        }),
        ("files_snp", || snp_files(Vec::new())),
        ("files_snp_with_empty_crl", || {
            let crl = amd(Milan).crl().build();
            snp_files(vec![("ark.crl".to_owned(), crl)])
        }),
        ("files_tdx_pcs", || tdx_files(|_| {})),
        ("snp_require_crl_with_ark_crl", || {
            snp(Milan, |b| b)
                .crls(vec![ark_crl(Milan)])
                .snp_policy(|p| p.revocation = Revocation::RequireCrl)
        }),
        ("snp_vlek_require_crl_with_ark_crl", || {
            snp_vlek(Turin, |b| b)
                .crls(vec![ark_crl(Turin)])
                .snp_policy(|p| p.revocation = Revocation::RequireCrl)
        }),
        ("files_snp_require_crl_with_ark_crl", || {
            snp_files(vec![("ark.crl".to_owned(), ark_crl(Milan))])
                .snp_policy(|p| p.revocation = Revocation::RequireCrl)
        }),
        // Every new SNP field pinned to what the evidence says, bits "require" where set.
        ("snp_new_fields_pinned_require", || {
            let tcb = SnpTcb::default_for(Genoa);
            snp(Genoa, |b| {
                b.guest_svn(7)
                    .id_key_digest([0x1D; 48])
                    .author_key_digest([0xA1; 48])
                    .family_id([0xF1; 16])
                    .image_id([0x11; 16])
                    .policy_bits(
                        guest::abi(1, 55)
                            | guest::SINGLE_SOCKET
                            | guest::MEM_AES_256_XTS
                            | guest::RAPL_DIS
                            | guest::CIPHERTEXT_HIDING_DRAM
                            | guest::PAGE_SWAP_DISABLE,
                        true,
                    )
                    .platform_info(
                        info::SMT_EN
                            | info::TSME_EN
                            | info::ECC_EN
                            | info::RAPL_DIS
                            | info::CIPHERTEXT_HIDING_DRAM_EN
                            | info::ALIAS_CHECK_COMPLETE,
                    )
            })
            .crls(vec![ark_crl(Genoa)])
            .snp_policy(|p| {
                p.revocation = Revocation::RequireCrl;
                p.min_launch_tcb = Constraint::Only(min_tcb(tcb));
                p.min_committed_tcb = Constraint::Only(min_tcb(tcb));
                p.min_guest_svn = Constraint::Only(7);
                p.id_key_digest = Constraint::Only(vec![hex48([0x1D; 48])]);
                p.author_key_digest = Constraint::Only(vec![hex48([0xA1; 48])]);
                p.family_id = Constraint::Only(vec![Hex([0xF1; 16])]);
                p.image_id = Constraint::Only(vec![Hex([0x11; 16])]);
                let g = &mut p.guest_policy;
                g.min_abi = Constraint::Only(AbiVersion {
                    major: 1,
                    minor: 55,
                });
                g.single_socket = BitRule::Require;
                g.cxl_allow = BitRule::Forbid;
                g.mem_aes_256_xts = BitRule::Require;
                g.rapl_dis = BitRule::Require;
                g.ciphertext_hiding = BitRule::Require;
                g.page_swap_disable = BitRule::Require;
                let i = &mut p.platform_info;
                i.smt_en = BitRule::Require;
                i.tsme_en = BitRule::Require;
                i.ecc_en = BitRule::Require;
                i.rapl_dis = BitRule::Require;
                i.ciphertext_hiding_en = BitRule::Require;
                i.alias_check_complete = BitRule::Require;
                i.tio_en = BitRule::Forbid;
            })
        }),
        // The opposite: every bit "forbid" where clear, a lower minimum than the evidence.
        ("snp_new_fields_pinned_forbid", || {
            snp(Turin, |b| {
                b.guest_svn(7)
                    .policy_bits(guest::abi(2, 0) | guest::CXL_ALLOW, true)
                    .platform_info(info::TIO_EN)
            })
            .snp_policy(|p| {
                p.min_launch_tcb = Constraint::Only(min_tcb(SnpTcb::default_for(Turin)));
                p.min_guest_svn = Constraint::Only(6);
                let g = &mut p.guest_policy;
                g.min_abi = Constraint::Only(AbiVersion {
                    major: 1,
                    minor: 58,
                });
                g.single_socket = BitRule::Forbid;
                g.cxl_allow = BitRule::Require;
                g.mem_aes_256_xts = BitRule::Forbid;
                g.rapl_dis = BitRule::Forbid;
                g.ciphertext_hiding = BitRule::Forbid;
                g.page_swap_disable = BitRule::Forbid;
                let i = &mut p.platform_info;
                i.smt_en = BitRule::Forbid;
                i.tsme_en = BitRule::Forbid;
                i.ecc_en = BitRule::Forbid;
                i.rapl_dis = BitRule::Forbid;
                i.ciphertext_hiding_en = BitRule::Forbid;
                i.alias_check_complete = BitRule::Forbid;
                i.tio_en = BitRule::Require;
            })
        }),
        // Every new TDX field pinned to the evidence; the collateral is exactly 7 days old.
        ("tdx_new_fields_pinned_require", || {
            let d = TdxQuoteBuilder::new();
            tdx(|q| q).tdx_policy(|p| {
                p.min_tcb_evaluation_data_number = Constraint::Only(19);
                p.max_collateral_age_days = Constraint::Only(7);
                p.pck_dynamic_platform = BitRule::Require;
                p.pck_cached_keys = BitRule::Require;
                p.pck_smt_enabled = BitRule::Require;
                p.mrseam = Constraint::Only(vec![hex48(d.mr_seam)]);
                p.mrsignerseam = Constraint::Only(vec![hex48(d.mr_signer_seam)]);
                p.mrowner = Constraint::Only(vec![hex48(d.mr_owner)]);
                p.mrownerconfig = Constraint::Only(vec![hex48(d.mr_owner_config)]);
                p.xfam = Constraint::Only(vec![Hex([0; 8]), Hex(d.xfam.to_le_bytes())]);
            })
        }),
        ("tdx_pck_flags_forbidden_and_off", || {
            tdx_pck_flag(Some(all_pck_flags(false)), BitRule::Forbid, |p| {
                &mut p.pck_dynamic_platform
            })
            .tdx_policy(|p| {
                p.pck_cached_keys = BitRule::Forbid;
                p.pck_smt_enabled = BitRule::Forbid;
            })
        }),
        ("tdx_pck_flags_not_stated_any", || {
            tdx_pck_flag(None, BitRule::Any, |p| &mut p.pck_smt_enabled)
        }),
        ("files_tdx_dcap_qvl_json", || {
            tdx_files(|files| {
                let collateral = TdxCollateralBuilder::new(intel()).build(intel());
                files.truncate(1);
                files.push((
                    "collateral.json".to_owned(),
                    collateral.to_dcap_qvl_json().into_bytes(),
                ));
            })
        }),
    ]
}

#[test]
fn positive_controls_are_accepted() {
    let mut failures = Vec::new();
    for (name, build) in controls() {
        let result = build().outcome();
        if result.is_err() {
            failures.push(format!("{name}: {}", describe(&result)));
        }
    }
    assert!(
        failures.is_empty(),
        "positive controls rejected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn verified_claims_come_from_the_fake_evidence() {
    for product in FakeProduct::ALL {
        let (verified, _) = snp(product, |b| b).verify();
        let VerifiedEvidence::Snp(report) = verified.expect("default SNP evidence verifies") else {
            panic!("SNP evidence verified as another platform");
        };
        assert_eq!(report.product().as_str(), product.name());
        assert_eq!(report.signing_key(), SigningKey::Vcek);
        assert_eq!(
            report.root_sha256(),
            attestation::x509::sha256(amd(product).ark_der()),
            "{product:?}: the chain ends in the fake ARK"
        );
        let tcb = SnpTcb::default_for(product);
        assert_eq!(report.reported_tcb().microcode, tcb.microcode);
        assert_eq!(report.reported_tcb().snp, tcb.snp);
    }

    let (verified, _) = snp_vlek(Milan, |b| b).verify();
    let VerifiedEvidence::Snp(report) = verified.expect("VLEK evidence verifies") else {
        panic!("not SNP");
    };
    assert_eq!(report.signing_key(), SigningKey::Vlek);

    let (verified, _) = hcl(|_| {}).verify();
    let VerifiedEvidence::Snp(report) = verified.expect("HCL evidence verifies") else {
        panic!("not SNP");
    };
    assert_eq!(report.runtime_data(), Some(HCL_RUNTIME_DATA));

    let (verified, _) = tdx(|q| q).verify();
    let VerifiedEvidence::Tdx(quote) = verified.expect("default TDX evidence verifies") else {
        panic!("not TDX");
    };
    assert_eq!(quote.tcb_status(), TcbStatus::UpToDate);
    assert!(
        quote.custom_root(),
        "verified under the dangerous custom root"
    );
    assert_eq!(quote.fmspc(), DEFAULT_FMSPC);
    assert_eq!(quote.quote().body.mr_td, TdxQuoteBuilder::new().mr_td);
}

// ---------------------------------------------------------------------------------------
// Property: a bit flipped in the signed region is never accepted
// ---------------------------------------------------------------------------------------

/// A signed report and its certificates (leaf, intermediate, ARK).
type ReportAndChain = (Vec<u8>, Vec<Vec<u8>>);

fn default_snp_report(product: FakeProduct) -> &'static ReportAndChain {
    static REPORTS: [OnceLock<ReportAndChain>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = FakeProduct::ALL.iter().position(|p| *p == product).unwrap();
    REPORTS[i].get_or_init(|| {
        let ev = sim::default_snp_evidence(product);
        (
            ev.report,
            vec![ev.leaf_der, ev.intermediate_der, ev.ark_der],
        )
    })
}

fn default_quote(format: TdxQuoteFormat) -> &'static Vec<u8> {
    static QUOTES: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match format {
        TdxQuoteFormat::V4Td10 => 0,
        TdxQuoteFormat::V5Td10 => 1,
        TdxQuoteFormat::V5Td15 => 2,
    };
    QUOTES[i].get_or_init(|| {
        let intel = intel();
        let pck = intel.pck_leaf().build(intel);
        TdxQuoteBuilder::new().format(format).build(intel, &pck)
    })
}

fn tdx_collateral_default() -> &'static attestation::tdx::TdxCollateral {
    static COLLATERAL: OnceLock<attestation::tdx::TdxCollateral> = OnceLock::new();
    COLLATERAL.get_or_init(|| {
        let json = TdxCollateralBuilder::new(intel())
            .build(intel())
            .to_dcap_qvl_json();
        attestation::tdx::TdxCollateral::from_dcap_qvl_json(json.as_bytes()).unwrap()
    })
}

/// Whether `rejection` is the one a flipped bit in an SNP report's signed region must give:
/// the parser's own reason when the flipped report no longer parses; otherwise the report
/// signature, or, where the flip changed a field the certificate is matched on (signing
/// key, CPUID, CHIP_ID, TCB), the matching check that runs before the signature.
fn expected_snp_flip_rejection(flipped: &[u8], rejection: &Rejection) -> bool {
    match attestation::snp::SnpReport::parse(flipped) {
        Err(parse) => rejection.reason == parse.reason,
        Ok(_) => matches!(
            rejection.reason,
            Reason::ReportSignatureInvalid
                | Reason::SigningKeyMismatch
                | Reason::CertificateMissing
                | Reason::ProductMismatch
                | Reason::HwIdMismatch
                | Reason::TcbExtensionMismatch
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn snp_bit_flip_in_signed_region_is_never_accepted(
        product in prop::sample::select(FakeProduct::ALL.to_vec()),
        bit in 0usize..0x2A0 * 8,
    ) {
        let (report, certs) = default_snp_report(product);
        let anchors = fake_snp_anchors();
        attestation::snp::verify(report, certs, &[], &anchors, at()).expect("the control verifies");
        let mut flipped = report.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let rejection = attestation::snp::verify(&flipped, certs, &[], &anchors, at())
            .err()
            .unwrap_or_else(|| panic!("bit {bit} of {product:?} flipped was accepted"));
        let expected = expected_snp_flip_rejection(&flipped, &rejection);
        prop_assert!(expected, "bit {} of {:?}: {}", bit, product, rejection);
    }

    #[test]
    fn tdx_bit_flip_in_signed_region_is_never_accepted(
        format in prop::sample::select(vec![
            TdxQuoteFormat::V4Td10,
            TdxQuoteFormat::V5Td10,
            TdxQuoteFormat::V5Td15,
        ]),
        fraction in 0.0f64..1.0,
    ) {
        let quote = default_quote(format);
        let signed_bits = attestation::tdx::Quote::parse(quote).unwrap().signed_len() * 8;
        let bit = ((fraction * signed_bits as f64) as usize).min(signed_bits - 1);
        let collateral = tdx_collateral_default();
        let anchors = tdx_anchors();
        attestation::tdx::verify(quote, Some(collateral), &anchors, at()).expect("the control verifies");
        let mut flipped = quote.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let rejection = attestation::tdx::verify(&flipped, Some(collateral), &anchors, at())
            .err()
            .unwrap_or_else(|| panic!("bit {bit} of {format:?} flipped was accepted"));
        // A flip the parser refuses gives the parser's reason; any other breaks the quote
        // signature, which is checked before collateral and TCB.
        let expected = match attestation::tdx::Quote::parse(&flipped) {
            Err(parse) => parse.reason,
            Ok(_) => Reason::QuoteSignatureInvalid,
        };
        prop_assert_eq!(rejection.reason, expected, "bit {} of {:?}: {}", bit, format, rejection);
    }
}
