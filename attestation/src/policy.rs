//! Appraisal policy: what verified evidence must claim to be accepted.
//!
//! A policy is a TOML file in which **every field must be given**; "don't care" is the
//! explicit word `"any"`, never an absent field (an absent or misspelt field is a load
//! error). Sections exist exactly for the platforms the policy accepts. Appraisal takes
//! only [`VerifiedEvidence`], so nothing unverified is ever appraised, and returns an
//! [`Appraised`] proof on success.
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
//! measurement = "any"              # "any" | ["<96 hex digits>", ...]
//! host_data = "any"                # "any" | ["<64 hex digits>", ...]
//! min_tcb = "any"                  # "any" | { bootloader = 3, tee = 0, snp = 14, microcode = 209, fmc = 0 }
//! vmpl = "any"                     # "any" | [0, 1]
//! migration_agent = "forbid"
//! smt = "allow"
//!
//! [tdx]
//! tcb_statuses = ["UpToDate"]
//! forbidden_advisory_ids = []
//! mrtd = "any"                     # "any" | ["<96 hex digits>", ...]
//! rtmr0 = "any"
//! rtmr1 = "any"
//! rtmr2 = "any"
//! rtmr3 = "any"
//! mrconfigid = "any"
//! ```

use crate::evidence::{Platform, VerifiedEvidence};
use crate::reason::{reject, Reason, Rejection};
use crate::snp::{Product, SigningKey, TcbVersion, VerifiedSnpReport};
use crate::tdx::{TcbStatus, VerifiedTdxQuote};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    pub measurement: Constraint<Vec<Hex<48>>>,
    pub host_data: Constraint<Vec<Hex<32>>>,
    pub min_tcb: Constraint<MinTcb>,
    pub vmpl: Constraint<Vec<u32>>,
    pub migration_agent: Permission,
    pub smt: Permission,
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
    pub mrtd: Constraint<Vec<Hex<48>>>,
    pub rtmr0: Constraint<Vec<Hex<48>>>,
    pub rtmr1: Constraint<Vec<Hex<48>>>,
    pub rtmr2: Constraint<Vec<Hex<48>>>,
    pub rtmr3: Constraint<Vec<Hex<48>>>,
    pub mrconfigid: Constraint<Vec<Hex<48>>>,
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

    /// The verifier's default: pins no measurement, forbids debug and migration agents,
    /// accepts only an up-to-date TDX TCB, any AMD product and key type.
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
                measurement: Constraint::Any,
                host_data: Constraint::Any,
                min_tcb: Constraint::Any,
                vmpl: Constraint::Any,
                migration_agent: Permission::Forbid,
                smt: Permission::Allow,
            }),
            tdx: Some(TdxPolicy {
                tcb_statuses: vec![TcbStatus::UpToDate],
                forbidden_advisory_ids: Vec::new(),
                mrtd: Constraint::Any,
                rtmr0: Constraint::Any,
                rtmr1: Constraint::Any,
                rtmr2: Constraint::Any,
                rtmr3: Constraint::Any,
                mrconfigid: Constraint::Any,
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
        if let Constraint::Only(vmpls) = &policy.vmpl {
            if !vmpls.contains(&report.vmpl) {
                return reject(
                    Reason::VmplNotAllowed,
                    format!("VMPL {} is not in {vmpls:?}", report.vmpl),
                );
            }
        }
        if let Constraint::Only(min) = &policy.min_tcb {
            check_min_tcb(&verified.reported_tcb(), min)?;
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
        Ok(())
    }
}

fn check_min_tcb(tcb: &TcbVersion, min: &MinTcb) -> Result<(), Rejection> {
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
                Reason::TcbBelowMinimum,
                format!("reported TCB {name} = {have}, policy minimum {need}"),
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
measurement = ["000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"]
host_data = "any"
min_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115, fmc = 0 }
vmpl = [0]
migration_agent = "forbid"
smt = "allow"

[tdx]
tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
forbidden_advisory_ids = ["INTEL-SA-00837"]
mrtd = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
mrconfigid = "any"
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
        assert_eq!(checked, 21);
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
        assert_eq!(again.tdx.unwrap().tcb_statuses, vec![TcbStatus::UpToDate]);
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
