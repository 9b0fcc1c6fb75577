//! Appraisal policy: what verified evidence must claim to be accepted.
//!
//! A policy is a TOML file in which **every field must be given**; "don't care" is an
//! explicit value (`"any"` for a value or list, `"any"` for a bit rule, `"dangerous_skip"`
//! for SNP revocation), never an absent field (an absent or misspelt field is a load
//! error). Sections exist exactly for the platforms the policy accepts. Appraisal takes
//! only [`VerifiedEvidence`], so nothing unverified is ever appraised, and returns an
//! [`Appraised`] proof on success. The README's "Policy files" section lists every field
//! with its meaning and its value in [`Policy::default_verifier`].
//!
//! ```toml
//! version = 1
//! platforms = ["snp", "tdx"]
//! debug = "forbid"                 # "forbid" | "allow"
//! report_data = "any"              # "any" | "<128 hex digits>"
//! dangerous_trusted_roots = []     # SHA-256 (hex) of extra root certificates to trust
//!
//! [snp]
//! products = ["Milan", "Genoa", "Turin"]
//! signing_keys = ["vcek", "vlek"]
//! revocation = "require_crl"       # "require_crl" | "dangerous_skip"
//! measurement = "any"              # "any" | ["<96 hex digits>", ...]
//! host_data = "any"                # "any" | ["<64 hex digits>", ...]
//! min_tcb = "any"                  # REPORTED_TCB: "any" | { bootloader = 3, tee = 0, snp = 14, microcode = 209, fmc = 0 }
//! min_launch_tcb = "any"           # LAUNCH_TCB, same form
//! min_committed_tcb = "any"        # COMMITTED_TCB, same form
//! vmpl = [0]                       # "any" | [0, 1, ...]
//! migration_agent = "forbid"       # guest policy bit 18: "forbid" | "allow"
//! smt = "allow"                    # guest policy bit 16: "forbid" | "allow"
//! min_guest_svn = "any"            # "any" | 3
//! id_key_digest = "any"            # "any" | ["<96 hex digits>", ...]
//! author_key_digest = "any"        # "any" | ["<96 hex digits>", ...]
//! family_id = "any"                # "any" | ["<32 hex digits>", ...]
//! image_id = "any"                 # "any" | ["<32 hex digits>", ...]
//!
//! [snp.guest_policy]               # bit rules: "require" | "forbid" | "any"
//! min_abi = "any"                  # "any" | { major = 1, minor = 55 }
//! single_socket = "any"            # bit 20
//! cxl_allow = "any"                # bit 21
//! mem_aes_256_xts = "any"          # bit 22
//! rapl_dis = "any"                 # bit 23
//! ciphertext_hiding = "any"        # bit 24
//! page_swap_disable = "any"        # bit 25
//!
//! [snp.platform_info]              # bit rules: "require" | "forbid" | "any"
//! smt_en = "any"                   # bit 0
//! tsme_en = "any"                  # bit 1
//! ecc_en = "any"                   # bit 2
//! rapl_dis = "any"                 # bit 3
//! ciphertext_hiding_en = "any"     # bit 4
//! alias_check_complete = "any"     # bit 5
//! tio_en = "any"                   # bit 7
//!
//! [tdx]
//! tcb_statuses = ["UpToDate"]
//! forbidden_advisory_ids = []
//! min_tcb_evaluation_data_number = "any"   # "any" | 17
//! max_collateral_age_days = "any"          # "any" | 30
//! pck_dynamic_platform = "any"     # "require" | "forbid" | "any"
//! pck_cached_keys = "any"
//! pck_smt_enabled = "any"
//! mrseam = "any"                   # "any" | ["<96 hex digits>", ...]
//! mrsignerseam = "any"
//! mrtd = "any"
//! rtmr0 = "any"
//! rtmr1 = "any"
//! rtmr2 = "any"
//! rtmr3 = "any"
//! mrconfigid = "any"
//! mrowner = "any"
//! mrownerconfig = "any"
//! xfam = "any"                     # "any" | ["<16 hex digits>", ...] (the quote's 8 bytes)
//! ```

use crate::evidence::{Platform, VerifiedEvidence};
use crate::reason::{reject, Reason, Rejection};
use crate::snp::{Product, SigningKey, TcbVersion, VerifiedSnpReport};
use crate::tdx::{CollateralVersion, TcbStatus, VerifiedTdxQuote};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::fmt;

#[path = "gpu_policy.rs"]
mod gpu;
pub(crate) use gpu::verify_bound_gpus;
pub use gpu::{
    DottedVersion, DriverVersion, GpuArchitecture, GpuPolicy, GpuRevocation, GpuRim, VbiosVersion,
};

/// The only policy format version this build reads.
pub const POLICY_VERSION: u32 = 1;

/// A complete appraisal policy. Build it with [`Policy::from_toml`] or
/// [`Policy::default_verifier`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    pub platforms: Vec<Platform>,
    pub debug: Permission,
    pub report_data: Constraint<Hex<64>>,
    /// Root certificates (by SHA-256 of their DER) trusted in addition to AMD's and
    /// Intel's. Named dangerous: anything listed here can mint "genuine" evidence.
    pub dangerous_trusted_roots: Vec<Hex<32>>,
    pub snp: Option<SnpPolicy>,
    pub tdx: Option<TdxPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPolicy {
    pub products: Vec<Product>,
    pub signing_keys: Vec<SigningKey>,
    /// Whether a current AMD CRL signed by the ARK must have been checked.
    pub revocation: Revocation,
    pub measurement: Constraint<Vec<Hex<48>>>,
    pub host_data: Constraint<Vec<Hex<32>>>,
    /// Minimum REPORTED_TCB (the TCB the VCEK/VLEK is for).
    pub min_tcb: Constraint<MinTcb>,
    /// Minimum LAUNCH_TCB (the TCB the guest was launched on).
    pub min_launch_tcb: Constraint<MinTcb>,
    /// Minimum COMMITTED_TCB (the TCB the firmware cannot be rolled back below).
    pub min_committed_tcb: Constraint<MinTcb>,
    pub vmpl: Constraint<Vec<u32>>,
    pub migration_agent: Permission,
    pub smt: Permission,
    pub min_guest_svn: Constraint<u32>,
    /// ID_KEY_DIGEST: SHA-384 of the key that signed the launch's ID block (zero: none).
    pub id_key_digest: Constraint<Vec<Hex<48>>>,
    /// AUTHOR_KEY_DIGEST: SHA-384 of the ID key's author key (zero: none).
    pub author_key_digest: Constraint<Vec<Hex<48>>>,
    pub family_id: Constraint<Vec<Hex<16>>>,
    pub image_id: Constraint<Vec<Hex<16>>>,
    pub guest_policy: SnpGuestPolicy,
    pub platform_info: SnpPlatformInfo,
}

/// SNP revocation: whether the evidence must come with a current AMD CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// A CRL signed by the chain's ARK, current at the verification time and not listing
    /// the ASK/ASVK, must have been verified; without one: `crl_missing`.
    RequireCrl,
    /// A missing CRL is accepted and revocation then goes unchecked (a supplied CRL is
    /// still verified, and a revoked certificate still rejected).
    DangerousSkip,
}

/// The GUEST_POLICY bits beyond debug, migration agent and SMT (AMD SEV-SNP ABI, table
/// "GUEST_POLICY"; Linux `SNP_POLICY_MASK_*`), and its ABI version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnpGuestPolicy {
    /// Minimum ABI_MAJOR.ABI_MINOR (bits 15:8 and 7:0) the guest policy demands.
    pub min_abi: Constraint<AbiVersion>,
    /// Bit 20: the guest may be activated on one socket only.
    pub single_socket: BitRule,
    /// Bit 21: CXL may be populated with devices or memory.
    pub cxl_allow: BitRule,
    /// Bit 22: AES-256-XTS is required for memory encryption.
    pub mem_aes_256_xts: BitRule,
    /// Bit 23: Running Average Power Limit (RAPL) must be disabled.
    pub rapl_dis: BitRule,
    /// Bit 24: ciphertext hiding for DRAM must be enabled.
    pub ciphertext_hiding: BitRule,
    /// Bit 25: the guest may not use the page swap/move commands.
    pub page_swap_disable: BitRule,
}

/// The PLATFORM_INFO bits (AMD SEV-SNP ABI, table "PLATFORM_INFO").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPlatformInfo {
    /// Bit 0: SMT is enabled on the host.
    pub smt_en: BitRule,
    /// Bit 1: transparent SME is enabled.
    pub tsme_en: BitRule,
    /// Bit 2: the platform uses ECC memory.
    pub ecc_en: BitRule,
    /// Bit 3: RAPL is disabled.
    pub rapl_dis: BitRule,
    /// Bit 4: ciphertext hiding for DRAM is enabled.
    pub ciphertext_hiding_en: BitRule,
    /// Bit 5: the DRAM alias check completed (a BadRAM mitigation).
    pub alias_check_complete: BitRule,
    /// Bit 7: SEV-TIO is enabled.
    pub tio_en: BitRule,
}

/// A guest-policy ABI version, compared as (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AbiVersion {
    pub major: u8,
    pub minor: u8,
}

/// What one bit (or flag) must be: set, clear, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BitRule {
    Require,
    Forbid,
    Any,
}

/// Minimum SNP TCB per component (`fmc` is compared on Turin only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MinTcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    pub fmc: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TdxPolicy {
    pub tcb_statuses: Vec<TcbStatus>,
    pub forbidden_advisory_ids: Vec<String>,
    /// Minimum tcbEvaluationDataNumber of both the TCB info and the QE identity.
    pub min_tcb_evaluation_data_number: Constraint<u32>,
    /// The TCB info and QE identity must be issued at most this many days before the
    /// verification time.
    pub max_collateral_age_days: Constraint<u32>,
    /// The PCK certificate's platform flags; "require"/"forbid" need the certificate to
    /// state the flag (only Platform CA certificates do).
    pub pck_dynamic_platform: BitRule,
    pub pck_cached_keys: BitRule,
    pub pck_smt_enabled: BitRule,
    /// MRSEAM: the TDX module's measurement.
    pub mrseam: Constraint<Vec<Hex<48>>>,
    /// MRSIGNERSEAM: the TDX module's signer (zero for Intel's modules).
    pub mrsignerseam: Constraint<Vec<Hex<48>>>,
    pub mrtd: Constraint<Vec<Hex<48>>>,
    pub rtmr0: Constraint<Vec<Hex<48>>>,
    pub rtmr1: Constraint<Vec<Hex<48>>>,
    pub rtmr2: Constraint<Vec<Hex<48>>>,
    pub rtmr3: Constraint<Vec<Hex<48>>>,
    pub mrconfigid: Constraint<Vec<Hex<48>>>,
    pub mrowner: Constraint<Vec<Hex<48>>>,
    pub mrownerconfig: Constraint<Vec<Hex<48>>>,
    /// XFAM, the quote's 8 bytes as they are (little-endian).
    pub xfam: Constraint<Vec<Hex<8>>>,
}

/// A yes/no switch written as a word so that intent is explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Allow,
    Forbid,
}

/// Either the explicit word `"any"` or a required value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint<T> {
    Any,
    Only(T),
}

impl<T> Constraint<T> {
    pub fn is_any(&self) -> bool {
        matches!(self, Constraint::Any)
    }
}

impl<'de, T: de::DeserializeOwned> Deserialize<'de> for Constraint<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Policies are TOML. Buffer the value, take the word "any", else parse the value
        // and pass its own error on (e.g. "missing field `fmc`"), which an untagged enum
        // would have replaced with "did not match any variant". A single hex value is a
        // string too, but never the string "any".
        let value = toml::Value::deserialize(deserializer)?;
        if value.as_str() == Some("any") {
            return Ok(Constraint::Any);
        }
        T::deserialize(value)
            .map(Constraint::Only)
            .map_err(|e| de::Error::custom(format!("expected \"any\" or a value: {e}")))
    }
}

impl<T: Serialize> Serialize for Constraint<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Constraint::Any => serializer.serialize_str("any"),
            Constraint::Only(v) => v.serialize(serializer),
        }
    }
}

/// Exactly `N` bytes written as `2N` hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(text.trim())
            .map_err(|e| de::Error::custom(format!("not hex ({e}): {text:?}")))?;
        let array: [u8; N] = bytes.try_into().map_err(|b: Vec<u8>| {
            de::Error::custom(format!(
                "expected {N} bytes ({} hex digits), got {}",
                2 * N,
                b.len()
            ))
        })?;
        Ok(Hex(array))
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

/// Proof that a piece of verified evidence passed a policy. Only
/// [`Policy::appraise`] constructs it.
#[derive(Debug)]
pub struct Appraised<'a> {
    evidence: &'a VerifiedEvidence,
}

impl<'a> Appraised<'a> {
    pub fn evidence(&self) -> &'a VerifiedEvidence {
        self.evidence
    }
}

impl Policy {
    /// Parse and check a TOML policy. Missing, unknown or ill-typed fields are errors.
    pub fn from_toml(text: &str) -> Result<Policy, Rejection> {
        let policy: Policy = toml::from_str(text)
            .map_err(|e| Rejection::new(Reason::PolicyInvalid, e.to_string()))?;
        policy.check()?;
        Ok(policy)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a policy always serialises")
    }

    pub(crate) fn check(&self) -> Result<(), Rejection> {
        if self.version != POLICY_VERSION {
            return reject(
                Reason::PolicyInvalid,
                format!(
                    "policy version {} (this build reads {POLICY_VERSION})",
                    self.version
                ),
            );
        }
        if self.platforms.is_empty() {
            return reject(
                Reason::PolicyInvalid,
                "platforms is empty: nothing could pass",
            );
        }
        for (platform, present) in [
            (Platform::Snp, self.snp.is_some()),
            (Platform::Tdx, self.tdx.is_some()),
        ] {
            let listed = self.platforms.contains(&platform);
            if listed != present {
                return reject(
                    Reason::PolicyInvalid,
                    format!(
                        "platform {platform}: listed in platforms = {listed}, [{platform}] section present = {present}; both or neither"
                    ),
                );
            }
        }
        Ok(())
    }

    /// The offline verifier's default (`veritee-verify` without `--policy`): pins no
    /// measurement, forbids debug and migration agents, accepts any AMD product and key
    /// type and any VMPL, sets no SEV-SNP TCB minimum (SNP has no TCB status; a policy
    /// compares the TCB against minimums), does not require an AMD CRL (`revocation =
    /// "dangerous_skip"`: real evidence rarely comes with one, and the verifier says so
    /// when revocation went unchecked), and accepts only the TDX TCB status `UpToDate`.
    /// Every other field is "any". A client policy should be stricter: see the README's
    /// "Policy files".
    pub fn default_verifier() -> Policy {
        Policy {
            version: POLICY_VERSION,
            platforms: vec![Platform::Snp, Platform::Tdx],
            debug: Permission::Forbid,
            report_data: Constraint::Any,
            dangerous_trusted_roots: Vec::new(),
            snp: Some(SnpPolicy {
                products: vec![Product::Milan, Product::Genoa, Product::Turin],
                signing_keys: vec![SigningKey::Vcek, SigningKey::Vlek],
                revocation: Revocation::DangerousSkip,
                measurement: Constraint::Any,
                host_data: Constraint::Any,
                min_tcb: Constraint::Any,
                min_launch_tcb: Constraint::Any,
                min_committed_tcb: Constraint::Any,
                vmpl: Constraint::Any,
                migration_agent: Permission::Forbid,
                smt: Permission::Allow,
                min_guest_svn: Constraint::Any,
                id_key_digest: Constraint::Any,
                author_key_digest: Constraint::Any,
                family_id: Constraint::Any,
                image_id: Constraint::Any,
                guest_policy: SnpGuestPolicy::any(),
                platform_info: SnpPlatformInfo::any(),
            }),
            tdx: Some(TdxPolicy {
                tcb_statuses: vec![TcbStatus::UpToDate],
                forbidden_advisory_ids: Vec::new(),
                min_tcb_evaluation_data_number: Constraint::Any,
                max_collateral_age_days: Constraint::Any,
                pck_dynamic_platform: BitRule::Any,
                pck_cached_keys: BitRule::Any,
                pck_smt_enabled: BitRule::Any,
                mrseam: Constraint::Any,
                mrsignerseam: Constraint::Any,
                mrtd: Constraint::Any,
                rtmr0: Constraint::Any,
                rtmr1: Constraint::Any,
                rtmr2: Constraint::Any,
                rtmr3: Constraint::Any,
                mrconfigid: Constraint::Any,
                mrowner: Constraint::Any,
                mrownerconfig: Constraint::Any,
                xfam: Constraint::Any,
            }),
        }
    }

    /// Fields left at "any" that pin identity: a production deployment should pin them.
    pub fn unpinned_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.report_data.is_any() {
            out.push("report_data");
        }
        if let Some(snp) = &self.snp {
            for (name, any) in [
                ("snp.measurement", snp.measurement.is_any()),
                ("snp.host_data", snp.host_data.is_any()),
                ("snp.min_tcb", snp.min_tcb.is_any()),
                ("snp.vmpl", snp.vmpl.is_any()),
            ] {
                if any {
                    out.push(name);
                }
            }
        }
        if let Some(tdx) = &self.tdx {
            for (name, any) in [
                ("tdx.mrtd", tdx.mrtd.is_any()),
                ("tdx.rtmr0", tdx.rtmr0.is_any()),
                ("tdx.rtmr1", tdx.rtmr1.is_any()),
                ("tdx.rtmr2", tdx.rtmr2.is_any()),
                ("tdx.rtmr3", tdx.rtmr3.is_any()),
                ("tdx.mrconfigid", tdx.mrconfigid.is_any()),
            ] {
                if any {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Appraise verified evidence. Checks run in a fixed order so that a given piece of
    /// evidence always fails with the same reason.
    pub fn appraise<'a>(&self, evidence: &'a VerifiedEvidence) -> Result<Appraised<'a>, Rejection> {
        let platform = evidence.platform();
        if !self.platforms.contains(&platform) {
            return reject(
                Reason::PlatformNotAllowed,
                format!("platform {platform} is not in the policy's platforms"),
            );
        }
        match evidence {
            VerifiedEvidence::Snp(report) => {
                let policy = self
                    .snp
                    .as_ref()
                    .ok_or_else(|| Rejection::new(Reason::PolicyInvalid, "no [snp] section"))?;
                self.appraise_snp(policy, report)?;
            }
            VerifiedEvidence::Tdx(quote) => {
                let policy = self
                    .tdx
                    .as_ref()
                    .ok_or_else(|| Rejection::new(Reason::PolicyInvalid, "no [tdx] section"))?;
                self.appraise_tdx(policy, quote)?;
            }
        }
        check_exact(
            &self.report_data,
            &evidence.report_data(),
            Reason::ReportDataMismatch,
            "REPORT_DATA",
        )?;
        Ok(Appraised { evidence })
    }

    fn appraise_snp(
        &self,
        policy: &SnpPolicy,
        verified: &VerifiedSnpReport,
    ) -> Result<(), Rejection> {
        let report = verified.report();
        let product = verified.product();
        if !policy.products.contains(&product) {
            return reject(
                Reason::ProductNotAllowed,
                format!("product {product:?} is not accepted"),
            );
        }
        let key = verified.signing_key();
        if !policy.signing_keys.contains(&key) {
            return reject(
                Reason::SigningKeyNotAllowed,
                format!("signing key {key:?} is not accepted"),
            );
        }
        if policy.revocation == Revocation::RequireCrl && !verified.revocation_checked() {
            return reject(
                Reason::CrlMissing,
                format!(
                    "no current CRL signed by ARK-{product} was supplied, so revocation of the \
                     {} was not checked; the policy says revocation = \"require_crl\"",
                    match key {
                        SigningKey::Vcek => "ASK",
                        SigningKey::Vlek => "ASVK",
                    }
                ),
            );
        }
        if self.debug == Permission::Forbid && report.debug_allowed() {
            return reject(
                Reason::DebugNotAllowed,
                "guest policy allows debugging (bit 19)",
            );
        }
        if policy.migration_agent == Permission::Forbid && report.migration_agent_allowed() {
            return reject(
                Reason::MigrationAgentNotAllowed,
                "guest policy allows a migration agent (bit 18)",
            );
        }
        if policy.smt == Permission::Forbid && report.smt_allowed() {
            return reject(Reason::SmtNotAllowed, "guest policy allows SMT (bit 16)");
        }
        check_guest_policy(&policy.guest_policy, report.policy)?;
        check_platform_info(&policy.platform_info, report.platform_info)?;
        if let Constraint::Only(vmpls) = &policy.vmpl {
            if !vmpls.contains(&report.vmpl) {
                return reject(
                    Reason::VmplNotAllowed,
                    format!("VMPL {} is not in {vmpls:?}", report.vmpl),
                );
            }
        }
        for (constraint, tcb, what, reason) in [
            (
                &policy.min_tcb,
                verified.reported_tcb(),
                "REPORTED_TCB",
                Reason::TcbBelowMinimum,
            ),
            (
                &policy.min_committed_tcb,
                verified.committed_tcb(),
                "COMMITTED_TCB",
                Reason::CommittedTcbBelowMinimum,
            ),
            (
                &policy.min_launch_tcb,
                verified.launch_tcb(),
                "LAUNCH_TCB",
                Reason::LaunchTcbBelowMinimum,
            ),
        ] {
            if let Constraint::Only(min) = constraint {
                check_tcb_minimum(&tcb, min, what, reason)?;
            }
        }
        if let Constraint::Only(min) = policy.min_guest_svn {
            if report.guest_svn < min {
                return reject(
                    Reason::GuestSvnBelowMinimum,
                    format!(
                        "GUEST_SVN {} is below the policy minimum {min}",
                        report.guest_svn
                    ),
                );
            }
        }
        check_one_of(
            &policy.measurement,
            &report.measurement,
            Reason::MeasurementMismatch,
            "MEASUREMENT",
        )?;
        check_one_of(
            &policy.host_data,
            &report.host_data,
            Reason::HostDataMismatch,
            "HOST_DATA",
        )?;
        check_one_of(
            &policy.id_key_digest,
            &report.id_key_digest,
            Reason::IdKeyNotAllowed,
            "ID_KEY_DIGEST",
        )?;
        check_one_of(
            &policy.author_key_digest,
            &report.author_key_digest,
            Reason::AuthorKeyNotAllowed,
            "AUTHOR_KEY_DIGEST",
        )?;
        check_one_of(
            &policy.family_id,
            &report.family_id,
            Reason::FamilyIdMismatch,
            "FAMILY_ID",
        )?;
        check_one_of(
            &policy.image_id,
            &report.image_id,
            Reason::ImageIdMismatch,
            "IMAGE_ID",
        )?;
        Ok(())
    }

    fn appraise_tdx(
        &self,
        policy: &TdxPolicy,
        verified: &VerifiedTdxQuote,
    ) -> Result<(), Rejection> {
        let body = &verified.quote().body;
        // All of TD_ATTRIBUTES bits 7:0 (TUD: debug, profiling) put the TD under the host's
        // control, so "forbid" covers every one of them, not just bit 0.
        if self.debug == Permission::Forbid && body.under_debug() {
            return reject(
                Reason::DebugNotAllowed,
                format!(
                    "TD_ATTRIBUTES TUD bits 7:0 = {:#04x} (debug/profiling)",
                    body.td_attributes[0]
                ),
            );
        }
        let status = verified.tcb_status();
        if !policy.tcb_statuses.contains(&status) {
            return reject(
                Reason::TcbStatusNotAllowed,
                format!(
                    "TCB status {} is not in {:?}",
                    status.as_str(),
                    policy.tcb_statuses
                ),
            );
        }
        if let Some(id) = verified
            .advisory_ids()
            .iter()
            .find(|id| policy.forbidden_advisory_ids.contains(id))
        {
            return reject(Reason::AdvisoryNotAllowed, format!("advisory {id} applies"));
        }
        let editions = [
            ("TCB info", verified.tcb_info_version()),
            ("QE identity", verified.qe_identity_version()),
        ];
        if let Constraint::Only(min) = policy.min_tcb_evaluation_data_number {
            check_evaluation_data_number(&editions, min)?;
        }
        if let Constraint::Only(days) = policy.max_collateral_age_days {
            check_collateral_age(&editions, days, verified.verified_at())?;
        }
        let flags = verified.pck_flags();
        for (rule, value, what) in [
            (
                policy.pck_dynamic_platform,
                flags.dynamic_platform,
                "PCK certificate flag dynamicPlatform",
            ),
            (
                policy.pck_cached_keys,
                flags.cached_keys,
                "PCK certificate flag cachedKeys",
            ),
            (
                policy.pck_smt_enabled,
                flags.smt_enabled,
                "PCK certificate flag SMTEnabled",
            ),
        ] {
            check_bit(rule, value, Reason::PckPlatformFlagNotAllowed, what)?;
        }
        check_one_of(
            &policy.mrseam,
            &body.mr_seam,
            Reason::MrSeamMismatch,
            "MRSEAM",
        )?;
        check_one_of(
            &policy.mrsignerseam,
            &body.mr_signer_seam,
            Reason::MrSignerSeamMismatch,
            "MRSIGNERSEAM",
        )?;
        check_one_of(
            &policy.mrtd,
            &body.mr_td,
            Reason::MeasurementMismatch,
            "MRTD",
        )?;
        for (i, (constraint, value)) in [&policy.rtmr0, &policy.rtmr1, &policy.rtmr2, &policy.rtmr3]
            .into_iter()
            .zip(body.rtmr.iter())
            .enumerate()
        {
            check_one_of(constraint, value, Reason::RtmrMismatch, &format!("RTMR{i}"))?;
        }
        check_one_of(
            &policy.mrconfigid,
            &body.mr_config_id,
            Reason::HostDataMismatch,
            "MRCONFIGID",
        )?;
        check_one_of(
            &policy.mrowner,
            &body.mr_owner,
            Reason::MrOwnerMismatch,
            "MROWNER",
        )?;
        check_one_of(
            &policy.mrownerconfig,
            &body.mr_owner_config,
            Reason::MrOwnerConfigMismatch,
            "MROWNERCONFIG",
        )?;
        check_one_of(&policy.xfam, &body.xfam, Reason::XfamNotAllowed, "XFAM")?;
        Ok(())
    }
}

impl SnpGuestPolicy {
    /// Every bit "any", no minimum ABI.
    pub fn any() -> Self {
        SnpGuestPolicy {
            min_abi: Constraint::Any,
            single_socket: BitRule::Any,
            cxl_allow: BitRule::Any,
            mem_aes_256_xts: BitRule::Any,
            rapl_dis: BitRule::Any,
            ciphertext_hiding: BitRule::Any,
            page_swap_disable: BitRule::Any,
        }
    }
}

impl SnpPlatformInfo {
    /// Every bit "any".
    pub fn any() -> Self {
        SnpPlatformInfo {
            smt_en: BitRule::Any,
            tsme_en: BitRule::Any,
            ecc_en: BitRule::Any,
            rapl_dis: BitRule::Any,
            ciphertext_hiding_en: BitRule::Any,
            alias_check_complete: BitRule::Any,
            tio_en: BitRule::Any,
        }
    }
}

impl BitRule {
    pub fn as_str(self) -> &'static str {
        match self {
            BitRule::Require => "require",
            BitRule::Forbid => "forbid",
            BitRule::Any => "any",
        }
    }
}

/// One bit (or flag) against its rule; `None` (not stated) passes only "any".
fn check_bit(
    rule: BitRule,
    value: Option<bool>,
    reason: Reason,
    what: &str,
) -> Result<(), Rejection> {
    match (rule, value) {
        (BitRule::Any, _) | (BitRule::Require, Some(true)) | (BitRule::Forbid, Some(false)) => {
            Ok(())
        }
        (BitRule::Require, Some(false)) => {
            reject(reason, format!("{what} is clear; the policy requires it"))
        }
        (BitRule::Forbid, Some(true)) => {
            reject(reason, format!("{what} is set; the policy forbids it"))
        }
        (rule, None) => reject(
            reason,
            format!(
                "{what} is not stated, so \"{}\" cannot be checked",
                rule.as_str()
            ),
        ),
    }
}

/// GUEST_POLICY: the minimum ABI, then bits 20..=25 in order.
fn check_guest_policy(rules: &SnpGuestPolicy, policy: u64) -> Result<(), Rejection> {
    if let Constraint::Only(min) = &rules.min_abi {
        let have = AbiVersion {
            major: ((policy >> 8) & 0xFF) as u8,
            minor: (policy & 0xFF) as u8,
        };
        if have < *min {
            return reject(
                Reason::GuestAbiBelowMinimum,
                format!(
                    "guest policy ABI {}.{} is below the policy minimum {}.{}",
                    have.major, have.minor, min.major, min.minor
                ),
            );
        }
    }
    for (rule, bit, name) in [
        (rules.single_socket, 20, "SINGLE_SOCKET"),
        (rules.cxl_allow, 21, "CXL_ALLOW"),
        (rules.mem_aes_256_xts, 22, "MEM_AES_256_XTS"),
        (rules.rapl_dis, 23, "RAPL_DIS"),
        (rules.ciphertext_hiding, 24, "CIPHERTEXT_HIDING_DRAM"),
        (rules.page_swap_disable, 25, "PAGE_SWAP_DISABLE"),
    ] {
        check_bit(
            rule,
            Some(policy & (1 << bit) != 0),
            Reason::GuestPolicyNotAllowed,
            &format!("guest policy bit {bit} ({name})"),
        )?;
    }
    Ok(())
}

/// PLATFORM_INFO bits in order.
fn check_platform_info(rules: &SnpPlatformInfo, info: u64) -> Result<(), Rejection> {
    for (rule, bit, name) in [
        (rules.smt_en, 0, "SMT_EN"),
        (rules.tsme_en, 1, "TSME_EN"),
        (rules.ecc_en, 2, "ECC_EN"),
        (rules.rapl_dis, 3, "RAPL_DIS"),
        (rules.ciphertext_hiding_en, 4, "CIPHERTEXT_HIDING_DRAM_EN"),
        (rules.alias_check_complete, 5, "ALIAS_CHECK_COMPLETE"),
        (rules.tio_en, 7, "TIO_EN"),
    ] {
        check_bit(
            rule,
            Some(info & (1 << bit) != 0),
            Reason::PlatformInfoNotAllowed,
            &format!("PLATFORM_INFO bit {bit} ({name})"),
        )?;
    }
    Ok(())
}

fn check_evaluation_data_number(
    editions: &[(&str, CollateralVersion)],
    min: u32,
) -> Result<(), Rejection> {
    for (what, edition) in editions {
        if edition.tcb_evaluation_data_number < min {
            return reject(
                Reason::TcbEvaluationDataNumberBelowMinimum,
                format!(
                    "{what} tcbEvaluationDataNumber {} is below the policy minimum {min}",
                    edition.tcb_evaluation_data_number
                ),
            );
        }
    }
    Ok(())
}

fn check_collateral_age(
    editions: &[(&str, CollateralVersion)],
    max_days: u32,
    at: crate::time::Timestamp,
) -> Result<(), Rejection> {
    for (what, edition) in editions {
        let age = at.unix().saturating_sub(edition.issue_date.unix());
        if age > i64::from(max_days) * 86_400 {
            return reject(
                Reason::CollateralTooOld,
                format!(
                    "{what} was issued {}, {} days before the verification time {at}; the \
                     policy accepts at most {max_days}",
                    edition.issue_date,
                    age / 86_400
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
fn check_min_tcb(tcb: &TcbVersion, min: &MinTcb) -> Result<(), Rejection> {
    check_tcb_minimum(tcb, min, "REPORTED_TCB", Reason::TcbBelowMinimum)
}

/// Every component of `tcb` (`fmc` only where the product has one) at least `min`'s.
fn check_tcb_minimum(
    tcb: &TcbVersion,
    min: &MinTcb,
    what: &str,
    reason: Reason,
) -> Result<(), Rejection> {
    let mut components = vec![
        ("bootloader", tcb.bootloader, min.bootloader),
        ("tee", tcb.tee, min.tee),
        ("snp", tcb.snp, min.snp),
        ("microcode", tcb.microcode, min.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        components.push(("fmc", fmc, min.fmc));
    }
    for (name, have, need) in components {
        if have < need {
            return reject(
                reason,
                format!("{what} {name} = {have}, policy minimum {need}"),
            );
        }
    }
    Ok(())
}

fn check_one_of<const N: usize>(
    constraint: &Constraint<Vec<Hex<N>>>,
    value: &[u8; N],
    reason: Reason,
    what: &str,
) -> Result<(), Rejection> {
    match constraint {
        Constraint::Any => Ok(()),
        Constraint::Only(allowed) if allowed.iter().any(|h| &h.0 == value) => Ok(()),
        Constraint::Only(_) => reject(
            reason,
            format!(
                "{what} {} is not one the policy accepts",
                hex::encode(value)
            ),
        ),
    }
}

fn check_exact<const N: usize>(
    constraint: &Constraint<Hex<N>>,
    value: &[u8; N],
    reason: Reason,
    what: &str,
) -> Result<(), Rejection> {
    match constraint {
        Constraint::Only(expected) if &expected.0 != value => reject(
            reason,
            format!(
                "{what} {} is not the expected {}",
                hex::encode(value),
                hex::encode(expected.0)
            ),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
version = 1
platforms = ["snp", "tdx"]
debug = "forbid"
report_data = "any"
dangerous_trusted_roots = []

[snp]
products = ["Milan", "Genoa", "Turin"]
signing_keys = ["vcek", "vlek"]
revocation = "require_crl"
measurement = ["000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"]
host_data = "any"
min_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115, fmc = 0 }
min_launch_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115, fmc = 0 }
min_committed_tcb = "any"
vmpl = [0]
migration_agent = "forbid"
smt = "allow"
min_guest_svn = 2
id_key_digest = "any"
author_key_digest = ["111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"]
family_id = ["01000000000000000000000000000000"]
image_id = "any"

[snp.guest_policy]
min_abi = { major = 1, minor = 51 }
single_socket = "any"
cxl_allow = "forbid"
mem_aes_256_xts = "any"
rapl_dis = "any"
ciphertext_hiding = "require"
page_swap_disable = "any"

[snp.platform_info]
smt_en = "any"
tsme_en = "require"
ecc_en = "any"
rapl_dis = "any"
ciphertext_hiding_en = "any"
alias_check_complete = "require"
tio_en = "forbid"

[tdx]
tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
forbidden_advisory_ids = ["INTEL-SA-00837"]
min_tcb_evaluation_data_number = 17
max_collateral_age_days = 30
pck_dynamic_platform = "any"
pck_cached_keys = "forbid"
pck_smt_enabled = "any"
mrseam = ["5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1"]
mrsignerseam = "any"
mrtd = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
mrconfigid = "any"
mrowner = "any"
mrownerconfig = "any"
xfam = ["e702060000000000"]
"#;

    #[test]
    fn full_policy_loads_with_values() {
        let p = Policy::from_toml(FULL).unwrap();
        let snp = p.snp.as_ref().unwrap();
        assert_eq!(snp.vmpl, Constraint::Only(vec![0]));
        assert_eq!(
            snp.min_tcb,
            Constraint::Only(MinTcb {
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
                fmc: 0
            })
        );
        assert!(
            matches!(&snp.measurement, Constraint::Only(v) if v.len() == 1 && v[0].0 == [0; 48])
        );
        let tdx = p.tdx.as_ref().unwrap();
        assert_eq!(
            tdx.tcb_statuses,
            vec![TcbStatus::UpToDate, TcbStatus::SwHardeningNeeded]
        );
        assert!(p.unpinned_fields().contains(&"snp.host_data"));
        assert!(!p.unpinned_fields().contains(&"snp.measurement"));
        assert_eq!(snp.revocation, Revocation::RequireCrl);
        assert_eq!(snp.min_committed_tcb, Constraint::Any);
        assert_eq!(snp.min_guest_svn, Constraint::Only(2));
        let mut family = [0u8; 16];
        family[0] = 1;
        assert_eq!(snp.family_id, Constraint::Only(vec![Hex(family)]));
        assert_eq!(
            snp.guest_policy.min_abi,
            Constraint::Only(AbiVersion {
                major: 1,
                minor: 51
            })
        );
        assert_eq!(snp.guest_policy.cxl_allow, BitRule::Forbid);
        assert_eq!(snp.guest_policy.ciphertext_hiding, BitRule::Require);
        assert_eq!(snp.platform_info.tio_en, BitRule::Forbid);
        assert_eq!(tdx.min_tcb_evaluation_data_number, Constraint::Only(17));
        assert_eq!(tdx.max_collateral_age_days, Constraint::Only(30));
        assert_eq!(tdx.pck_cached_keys, BitRule::Forbid);
        assert_eq!(
            tdx.xfam,
            Constraint::Only(vec![Hex([0xe7, 0x02, 0x06, 0, 0, 0, 0, 0])])
        );
    }

    /// Every policy, default or pinned, survives `to_toml` then `from_toml` unchanged.
    #[test]
    fn full_policy_round_trips_through_toml() {
        let p = Policy::from_toml(FULL).unwrap();
        let text = p.to_toml();
        assert_eq!(Policy::from_toml(&text).unwrap(), p, "{text}");
        let mut q = Policy::default_verifier();
        let snp = q.snp.as_mut().unwrap();
        snp.min_launch_tcb = Constraint::Only(MinTcb {
            bootloader: 1,
            tee: 2,
            snp: 3,
            microcode: 4,
            fmc: 5,
        });
        snp.guest_policy.page_swap_disable = BitRule::Require;
        snp.platform_info.smt_en = BitRule::Forbid;
        snp.image_id = Constraint::Only(vec![Hex([7; 16]), Hex([8; 16])]);
        let tdx = q.tdx.as_mut().unwrap();
        tdx.pck_smt_enabled = BitRule::Forbid;
        tdx.mrownerconfig = Constraint::Only(vec![Hex([9; 48])]);
        let text = q.to_toml();
        assert_eq!(Policy::from_toml(&text).unwrap(), q, "{text}");
    }

    #[test]
    fn bit_rules_and_dangerous_words_are_exact() {
        for (from, to) in [
            ("tio_en = \"forbid\"", "tio_en = \"forbidden\""),
            ("tio_en = \"forbid\"", "tio_en = false"),
            ("revocation = \"require_crl\"", "revocation = \"skip\""),
            ("revocation = \"require_crl\"", "revocation = \"any\""),
            (
                "min_abi = { major = 1, minor = 51 }",
                "min_abi = { major = 1 }",
            ),
            ("min_guest_svn = 2", "min_guest_svn = -1"),
            ("xfam = [\"e702060000000000\"]", "xfam = [\"e7020600\"]"),
            (
                "max_collateral_age_days = 30",
                "max_collateral_age_days = \"30\"",
            ),
        ] {
            let text = FULL.replace(from, to);
            assert_ne!(text, FULL);
            let err = Policy::from_toml(&text).expect_err(to);
            assert_eq!(err.reason, Reason::PolicyInvalid, "{to}: {err}");
        }
        let text = FULL.replace(
            "revocation = \"require_crl\"",
            "revocation = \"dangerous_skip\"",
        );
        let p = Policy::from_toml(&text).unwrap();
        assert_eq!(p.snp.unwrap().revocation, Revocation::DangerousSkip);
    }

    #[test]
    fn every_field_is_mandatory() {
        // Removing any one `key = value` line must make the policy fail to load.
        let lines: Vec<&str> = FULL.lines().collect();
        let mut checked = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.contains(" = ") {
                continue;
            }
            let text: String = lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            let err = Policy::from_toml(&text).expect_err(line);
            assert_eq!(err.reason, Reason::PolicyInvalid, "{line}");
            checked += 1;
        }
        assert_eq!(checked, 53);
    }

    #[test]
    fn rejects_typos_bad_words_and_bad_hex() {
        for (from, to) in [
            ("smt = \"allow\"", "smt = \"allow\"\nsmtt = \"allow\""),
            ("debug = \"forbid\"", "debug = \"maybe\""),
            ("host_data = \"any\"", "host_data = \"anything\""),
            ("host_data = \"any\"", "host_data = [\"abcd\"]"),
            ("version = 1", "version = 2"),
            ("platforms = [\"snp\", \"tdx\"]", "platforms = [\"snp\"]"),
        ] {
            let text = FULL.replace(from, to);
            assert_ne!(text, FULL);
            let err = Policy::from_toml(&text).expect_err(to);
            assert_eq!(err.reason, Reason::PolicyInvalid, "{to}: {err}");
        }
    }

    /// A value that does not parse says why (it used to say "did not match any variant").
    #[test]
    fn an_ill_formed_value_names_what_is_wrong() {
        let text = Policy::default_verifier().to_toml().replace(
            "min_tcb = \"any\"",
            "min_tcb = { bootloader = 1, tee = 0, snp = 1, microcode = 1 }",
        );
        let err = Policy::from_toml(&text).unwrap_err();
        assert_eq!(err.reason, Reason::PolicyInvalid);
        assert!(err.detail.contains("fmc"), "{}", err.detail);
        let text = Policy::default_verifier()
            .to_toml()
            .replace("report_data = \"any\"", "report_data = \"anything\"");
        assert_eq!(
            Policy::from_toml(&text).unwrap_err().reason,
            Reason::PolicyInvalid
        );
    }

    /// Regression (found by the policy_toml fuzz seed corpus): a single pinned hex value
    /// such as report_data was read as the word variant and always refused.
    #[test]
    fn single_pinned_report_data_loads() {
        let hex = "11".repeat(64);
        let text = FULL.replace("report_data = \"any\"", &format!("report_data = \"{hex}\""));
        let p = Policy::from_toml(&text).unwrap();
        assert_eq!(p.report_data, Constraint::Only(Hex([0x11; 64])));
        assert!(!p.unpinned_fields().contains(&"report_data"));
        let short = FULL.replace("report_data = \"any\"", "report_data = \"1111\"");
        assert_eq!(
            Policy::from_toml(&short).unwrap_err().reason,
            Reason::PolicyInvalid
        );
    }

    #[test]
    fn default_policy_round_trips_through_toml() {
        let p = Policy::default_verifier();
        let again = Policy::from_toml(&p.to_toml()).unwrap();
        assert_eq!(p, again);
        assert_eq!(again.debug, Permission::Forbid);
        let snp = again.snp.unwrap();
        // The documented defaults (README "Policy files").
        assert_eq!(snp.revocation, Revocation::DangerousSkip);
        assert_eq!(snp.vmpl, Constraint::Any);
        assert_eq!(snp.min_tcb, Constraint::Any);
        assert_eq!(snp.guest_policy, SnpGuestPolicy::any());
        assert_eq!(snp.platform_info, SnpPlatformInfo::any());
        let tdx = again.tdx.unwrap();
        assert_eq!(tdx.tcb_statuses, vec![TcbStatus::UpToDate]);
        assert_eq!(tdx.max_collateral_age_days, Constraint::Any);
        assert_eq!(tdx.pck_smt_enabled, BitRule::Any);
    }

    #[test]
    fn bit_rules_accept_and_reject() {
        let r = Reason::GuestPolicyNotAllowed;
        assert!(check_bit(BitRule::Any, Some(true), r, "x").is_ok());
        assert!(check_bit(BitRule::Any, None, r, "x").is_ok());
        assert!(check_bit(BitRule::Require, Some(true), r, "x").is_ok());
        assert!(check_bit(BitRule::Forbid, Some(false), r, "x").is_ok());
        for (rule, value) in [
            (BitRule::Require, Some(false)),
            (BitRule::Forbid, Some(true)),
            (BitRule::Require, None),
            (BitRule::Forbid, None),
        ] {
            assert_eq!(check_bit(rule, value, r, "x").unwrap_err().reason, r);
        }
        // Guest policy: ABI 1.51 with CIPHERTEXT_HIDING (bit 24) set.
        let policy = (1 << 24) | (1 << 17) | (1 << 8) | 51;
        let mut rules = SnpGuestPolicy::any();
        rules.min_abi = Constraint::Only(AbiVersion {
            major: 1,
            minor: 51,
        });
        rules.ciphertext_hiding = BitRule::Require;
        rules.cxl_allow = BitRule::Forbid;
        assert!(check_guest_policy(&rules, policy).is_ok());
        rules.min_abi = Constraint::Only(AbiVersion {
            major: 1,
            minor: 52,
        });
        assert_eq!(
            check_guest_policy(&rules, policy).unwrap_err().reason,
            Reason::GuestAbiBelowMinimum
        );
        rules.min_abi = Constraint::Only(AbiVersion {
            major: 0,
            minor: 99,
        });
        assert!(check_guest_policy(&rules, policy).is_ok());
        assert_eq!(
            check_guest_policy(&rules, policy | (1 << 21))
                .unwrap_err()
                .reason,
            Reason::GuestPolicyNotAllowed
        );
        // PLATFORM_INFO: bit 7 is TIO_EN, bit 6 is not a rule.
        let mut rules = SnpPlatformInfo::any();
        rules.tio_en = BitRule::Forbid;
        assert!(check_platform_info(&rules, 1 << 6).is_ok());
        assert_eq!(
            check_platform_info(&rules, 1 << 7).unwrap_err().reason,
            Reason::PlatformInfoNotAllowed
        );
    }

    #[test]
    fn collateral_editions_against_minimum_and_age() {
        let edition = |day: i64, number: u32| CollateralVersion {
            issue_date: crate::time::Timestamp::from_unix(day * 86_400),
            tcb_evaluation_data_number: number,
        };
        let editions = [
            ("TCB info", edition(100, 17)),
            ("QE identity", edition(95, 18)),
        ];
        assert!(check_evaluation_data_number(&editions, 17).is_ok());
        assert_eq!(
            check_evaluation_data_number(&editions, 18)
                .unwrap_err()
                .reason,
            Reason::TcbEvaluationDataNumberBelowMinimum
        );
        let at = crate::time::Timestamp::from_unix(105 * 86_400);
        assert!(
            check_collateral_age(&editions, 10, at).is_ok(),
            "exactly 10 days old"
        );
        let err = check_collateral_age(&editions, 9, at).unwrap_err();
        assert_eq!(err.reason, Reason::CollateralTooOld);
        assert!(err.detail.contains("QE identity"), "{}", err.detail);
    }

    #[test]
    fn min_tcb_compares_every_component() {
        let min = MinTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: 2,
        };
        let ok = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        };
        assert!(
            check_min_tcb(&ok, &min).is_ok(),
            "fmc is ignored without an FMC component"
        );
        let low_ucode = TcbVersion {
            microcode: 114,
            ..ok
        };
        assert_eq!(
            check_min_tcb(&low_ucode, &min).unwrap_err().reason,
            Reason::TcbBelowMinimum
        );
        let turin_low_fmc = TcbVersion { fmc: Some(1), ..ok };
        assert_eq!(
            check_min_tcb(&turin_low_fmc, &min).unwrap_err().reason,
            Reason::TcbBelowMinimum
        );
    }
}
