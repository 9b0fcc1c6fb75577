//! FAKE Intel SGX/TDX PKI: "Intel SGX Root CA", "Intel SGX PCK Platform CA",
//! "Intel SGX TCB Signing" (all ECDSA P-256), PCK leaf certificates with the
//! SGX extension in Intel's exact ASN.1 layout, and the Root CA / PCK CRLs.
//!
//! Names keep Intel's structure because verifiers key off them, with an
//! added `OU=veritee FAKE test root`.

use crate::der;
use crate::keys::FakeP256Key;
use crate::x509::{
    self, issue_certificate, issue_crl, key_identifier, CertificateTemplate, CrlTemplate,
    DistinguishedName, Extension, NameAttribute, RevokedEntry, Signer,
};
use crate::{DEFAULT_AT, DEFAULT_NOT_AFTER, DEFAULT_NOT_BEFORE};
use sha2::{Digest, Sha256};

/// The organisational unit that marks every fake Intel name.
pub const FAKE_INTEL_OU: &str = "veritee FAKE test root - never trust";

pub const ROOT_CA_CN: &str = "Intel SGX Root CA";
pub const PCK_PLATFORM_CA_CN: &str = "Intel SGX PCK Platform CA";
pub const PCK_PROCESSOR_CA_CN: &str = "Intel SGX PCK Processor CA";
pub const TCB_SIGNING_CN: &str = "Intel SGX TCB Signing";
pub const PCK_LEAF_CN: &str = "Intel SGX PCK Certificate";

/// OIDs of the Intel SGX PCK certificate extension.
pub mod sgx_oids {
    pub const SGX_EXTENSION: &str = "1.2.840.113741.1.13.1";
    pub const PPID: &str = "1.2.840.113741.1.13.1.1";
    pub const TCB: &str = "1.2.840.113741.1.13.1.2";
    pub const PCEID: &str = "1.2.840.113741.1.13.1.3";
    pub const FMSPC: &str = "1.2.840.113741.1.13.1.4";
    pub const SGX_TYPE: &str = "1.2.840.113741.1.13.1.5";
    pub const PLATFORM_INSTANCE_ID: &str = "1.2.840.113741.1.13.1.6";
    pub const CONFIGURATION: &str = "1.2.840.113741.1.13.1.7";
}

/// An Intel-style distinguished name with the given common name.
pub fn intel_name(common_name: &str) -> DistinguishedName {
    DistinguishedName(vec![
        NameAttribute::CommonName(common_name.to_owned()),
        NameAttribute::OrganizationalUnit(FAKE_INTEL_OU.to_owned()),
        NameAttribute::Organization("Intel Corporation".to_owned()),
        NameAttribute::Locality("Santa Clara".to_owned()),
        NameAttribute::State("CA".to_owned()),
        NameAttribute::Country("US".to_owned()),
    ])
}

/// A positive 20-byte serial number derived from a label.
pub fn derived_serial(label: &str) -> Vec<u8> {
    let digest = Sha256::digest(format!("veritee-fake/serial/{label}"));
    let mut serial = digest[..20].to_vec();
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    serial
}

/// The three fake Intel authorities and their certificates.
#[derive(Clone)]
pub struct FakeIntel {
    root_key: FakeP256Key,
    pck_ca_key: FakeP256Key,
    tcb_signing_key: FakeP256Key,
    root_der: Vec<u8>,
    pck_ca_der: Vec<u8>,
    tcb_signing_der: Vec<u8>,
}

impl Default for FakeIntel {
    fn default() -> Self {
        Self::new()
    }
}

/// Which fake Intel authority signs a certificate or CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntelAuthority {
    Root,
    PckPlatformCa,
    TcbSigning,
}

impl FakeIntel {
    /// Build the root (self-signed), PCK Platform CA and TCB Signing
    /// certificates, valid [`DEFAULT_NOT_BEFORE`]..[`DEFAULT_NOT_AFTER`].
    pub fn new() -> Self {
        let root_key = FakeP256Key::from_label("intel-sgx-root-ca");
        let pck_ca_key = FakeP256Key::from_label("intel-sgx-pck-platform-ca");
        let tcb_signing_key = FakeP256Key::from_label("intel-sgx-tcb-signing");
        let root_der = IntelCaBuilder::new(IntelCaKind::Root).build_with(&root_key, &root_key);
        let pck_ca_der =
            IntelCaBuilder::new(IntelCaKind::PckPlatformCa).build_with(&pck_ca_key, &root_key);
        let tcb_signing_der =
            IntelCaBuilder::new(IntelCaKind::TcbSigning).build_with(&tcb_signing_key, &root_key);
        FakeIntel {
            root_key,
            pck_ca_key,
            tcb_signing_key,
            root_der,
            pck_ca_der,
            tcb_signing_der,
        }
    }

    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    pub fn pck_platform_ca_der(&self) -> &[u8] {
        &self.pck_ca_der
    }

    pub fn tcb_signing_der(&self) -> &[u8] {
        &self.tcb_signing_der
    }

    pub fn key(&self, authority: IntelAuthority) -> &FakeP256Key {
        match authority {
            IntelAuthority::Root => &self.root_key,
            IntelAuthority::PckPlatformCa => &self.pck_ca_key,
            IntelAuthority::TcbSigning => &self.tcb_signing_key,
        }
    }

    pub fn certificate_der(&self, authority: IntelAuthority) -> &[u8] {
        match authority {
            IntelAuthority::Root => &self.root_der,
            IntelAuthority::PckPlatformCa => &self.pck_ca_der,
            IntelAuthority::TcbSigning => &self.tcb_signing_der,
        }
    }

    /// PEM chain PCK Platform CA, root (PCS `SGX-PCK-CRL-Issuer-Chain`).
    pub fn pck_crl_issuer_chain_pem(&self) -> String {
        x509::certificates_pem(&[&self.pck_ca_der, &self.root_der])
    }

    /// PEM chain TCB Signing, root (PCS `TCB-Info-Issuer-Chain`, also used
    /// for the QE identity).
    pub fn tcb_signing_chain_pem(&self) -> String {
        x509::certificates_pem(&[&self.tcb_signing_der, &self.root_der])
    }

    /// Start a PCK leaf certificate with valid defaults.
    pub fn pck_leaf(&self) -> PckLeafBuilder {
        PckLeafBuilder::default()
    }

    /// Start a Root CA CRL (signed by the root, nothing revoked).
    pub fn root_crl(&self) -> IntelCrlBuilder {
        IntelCrlBuilder::new(IntelAuthority::Root)
    }

    /// Start a PCK CRL (signed by the PCK Platform CA, nothing revoked).
    pub fn pck_crl(&self) -> IntelCrlBuilder {
        IntelCrlBuilder::new(IntelAuthority::PckPlatformCa)
    }

    /// Start a CA-level certificate (e.g. an expired TCB Signing cert, or a
    /// PCK CA with a different key) to swap into a chain.
    pub fn ca_certificate(&self, kind: IntelCaKind) -> IntelCaBuilder {
        IntelCaBuilder::new(kind)
    }
}

/// The CA-level certificates of the fake Intel PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntelCaKind {
    Root,
    PckPlatformCa,
    TcbSigning,
}

/// Builder for the root, PCK Platform CA and TCB Signing certificates, for
/// when a case needs one of them changed.
#[derive(Clone, Debug)]
pub struct IntelCaBuilder {
    kind: IntelCaKind,
    subject_cn: String,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    corrupt_signature: bool,
}

impl IntelCaBuilder {
    fn new(kind: IntelCaKind) -> Self {
        let (cn, label) = match kind {
            IntelCaKind::Root => (ROOT_CA_CN, "intel-root"),
            IntelCaKind::PckPlatformCa => (PCK_PLATFORM_CA_CN, "intel-pck-platform-ca"),
            IntelCaKind::TcbSigning => (TCB_SIGNING_CN, "intel-tcb-signing"),
        };
        IntelCaBuilder {
            kind,
            subject_cn: cn.to_owned(),
            serial: derived_serial(label),
            not_before: DEFAULT_NOT_BEFORE,
            not_after: DEFAULT_NOT_AFTER,
            corrupt_signature: false,
        }
    }

    pub fn subject_cn(mut self, cn: &str) -> Self {
        self.subject_cn = cn.to_owned();
        self
    }

    pub fn serial(mut self, serial: &[u8]) -> Self {
        self.serial = serial.to_vec();
        self
    }

    pub fn validity(mut self, not_before: i64, not_after: i64) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// Sign `subject_key`'s certificate with `issuer_key` (the issuer name is
    /// the root's unless this is the root itself).
    pub fn build_with(&self, subject_key: &FakeP256Key, issuer_key: &FakeP256Key) -> Vec<u8> {
        let spki = subject_key.spki_der();
        let own_id = key_identifier(&spki);
        let issuer_id = key_identifier(&issuer_key.spki_der());
        let (key_usage, basic_constraints) = match self.kind {
            IntelCaKind::Root => (
                Extension::key_usage(&[5, 6]),
                Extension::basic_constraints(true, Some(1)),
            ),
            IntelCaKind::PckPlatformCa => (
                Extension::key_usage(&[5, 6]),
                Extension::basic_constraints(true, Some(0)),
            ),
            IntelCaKind::TcbSigning => (
                Extension::key_usage(&[0, 1]),
                Extension::basic_constraints(false, None),
            ),
        };
        let issuer = match self.kind {
            IntelCaKind::Root => intel_name(&self.subject_cn),
            _ => intel_name(ROOT_CA_CN),
        };
        let template = CertificateTemplate {
            serial: self.serial.clone(),
            issuer,
            subject: intel_name(&self.subject_cn),
            not_before: self.not_before,
            not_after: self.not_after,
            subject_spki: spki,
            extensions: vec![
                Extension::authority_key_identifier(&issuer_id),
                Extension::crl_distribution_point(
                    "https://certificates.fake.veritee.invalid/IntelSGXRootCA.der",
                ),
                Extension::subject_key_identifier(&own_id),
                key_usage,
                basic_constraints,
            ],
        };
        issue_certificate(&template, Signer::P256(issuer_key), self.corrupt_signature)
    }

    /// Sign with the matching authority of `intel` (root for everything but
    /// the root itself, which signs itself) using `subject_key`.
    pub fn build(&self, intel: &FakeIntel, subject_key: &FakeP256Key) -> Vec<u8> {
        let issuer_key = match self.kind {
            IntelCaKind::Root => subject_key,
            _ => intel.key(IntelAuthority::Root),
        };
        self.build_with(subject_key, issuer_key)
    }
}

/// SGX type in the PCK certificate (ENUMERATED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgxType {
    Standard,
    Scalable,
    ScalableWithIntegrity,
}

impl SgxType {
    fn value(self) -> u64 {
        match self {
            SgxType::Standard => 0,
            SgxType::Scalable => 1,
            SgxType::ScalableWithIntegrity => 2,
        }
    }
}

/// Platform configuration flags of a Platform-CA-issued PCK certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PckConfiguration {
    pub dynamic_platform: bool,
    pub cached_keys: bool,
    pub smt_enabled: bool,
}

/// Default SGX TCB components of the fake platform (CPUSVN bytes).
pub const DEFAULT_SGX_TCB_COMPONENTS: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
/// Default PCESVN of the fake platform.
pub const DEFAULT_PCESVN: u16 = 11;
/// Default FMSPC of the fake platform.
pub const DEFAULT_FMSPC: [u8; 6] = [0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00];
/// Default PCE-ID.
pub const DEFAULT_PCE_ID: [u8; 2] = [0, 0];

/// A signed PCK leaf certificate and its P-256 key (which signs QE reports).
#[derive(Clone)]
pub struct FakePckLeaf {
    pub der: Vec<u8>,
    pub key: FakeP256Key,
    pub cpu_svn: [u8; 16],
    pub pcesvn: u16,
    pub fmspc: [u8; 6],
}

/// Builder for PCK leaf certificates. Defaults: issued by the PCK Platform
/// CA, serial derived from the key label, validity
/// [`DEFAULT_NOT_BEFORE`]..[`DEFAULT_NOT_AFTER`], FMSPC [`DEFAULT_FMSPC`],
/// TCB components [`DEFAULT_SGX_TCB_COMPONENTS`], CPUSVN equal to them,
/// PCESVN [`DEFAULT_PCESVN`], SGX type Scalable, with platform instance id
/// and configuration (dynamic, cached keys, SMT all true).
#[derive(Clone, Debug)]
pub struct PckLeafBuilder {
    key_label: String,
    serial: Option<Vec<u8>>,
    subject_cn: String,
    issuer: IntelAuthority,
    not_before: i64,
    not_after: i64,
    pub ppid: [u8; 16],
    pub sgx_tcb_components: [u8; 16],
    pub pcesvn: u16,
    pub cpu_svn: Option<[u8; 16]>,
    pub pce_id: Vec<u8>,
    pub fmspc: Vec<u8>,
    pub sgx_type: SgxType,
    pub platform_instance_id: Option<[u8; 16]>,
    pub configuration: Option<PckConfiguration>,
    omit_sgx_extension: bool,
    corrupt_signature: bool,
}

impl Default for PckLeafBuilder {
    fn default() -> Self {
        PckLeafBuilder {
            key_label: "intel-pck-leaf".to_owned(),
            serial: None,
            subject_cn: PCK_LEAF_CN.to_owned(),
            issuer: IntelAuthority::PckPlatformCa,
            not_before: DEFAULT_NOT_BEFORE,
            not_after: DEFAULT_NOT_AFTER,
            ppid: [0x42; 16],
            sgx_tcb_components: DEFAULT_SGX_TCB_COMPONENTS,
            pcesvn: DEFAULT_PCESVN,
            cpu_svn: None,
            pce_id: DEFAULT_PCE_ID.to_vec(),
            fmspc: DEFAULT_FMSPC.to_vec(),
            sgx_type: SgxType::Scalable,
            platform_instance_id: Some([0x07; 16]),
            configuration: Some(PckConfiguration {
                dynamic_platform: true,
                cached_keys: true,
                smt_enabled: true,
            }),
            omit_sgx_extension: false,
            corrupt_signature: false,
        }
    }
}

impl PckLeafBuilder {
    /// Label the leaf key is derived from (distinct labels, distinct keys).
    pub fn key_label(mut self, label: &str) -> Self {
        self.key_label = label.to_owned();
        self
    }

    /// Serial number magnitude (default derived from the key label).
    pub fn serial(mut self, serial: &[u8]) -> Self {
        self.serial = Some(serial.to_vec());
        self
    }

    pub fn subject_cn(mut self, cn: &str) -> Self {
        self.subject_cn = cn.to_owned();
        self
    }

    /// Sign with another authority (e.g. the root directly, or the TCB
    /// Signing key); the issuer name follows the signer.
    pub fn issuer(mut self, issuer: IntelAuthority) -> Self {
        self.issuer = issuer;
        self
    }

    pub fn validity(mut self, not_before: i64, not_after: i64) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    pub fn fmspc(mut self, fmspc: &[u8]) -> Self {
        self.fmspc = fmspc.to_vec();
        self
    }

    pub fn pce_id(mut self, pce_id: &[u8]) -> Self {
        self.pce_id = pce_id.to_vec();
        self
    }

    /// The 16 SGX TCB components (CPUSVN follows unless set separately).
    pub fn sgx_tcb_components(mut self, components: [u8; 16]) -> Self {
        self.sgx_tcb_components = components;
        self
    }

    pub fn pcesvn(mut self, pcesvn: u16) -> Self {
        self.pcesvn = pcesvn;
        self
    }

    /// CPUSVN bytes if they should differ from the TCB components.
    pub fn cpu_svn(mut self, cpu_svn: [u8; 16]) -> Self {
        self.cpu_svn = Some(cpu_svn);
        self
    }

    pub fn sgx_type(mut self, sgx_type: SgxType) -> Self {
        self.sgx_type = sgx_type;
        self
    }

    pub fn configuration(mut self, configuration: Option<PckConfiguration>) -> Self {
        self.configuration = configuration;
        self
    }

    /// Leave the SGX extension out entirely.
    pub fn omit_sgx_extension(mut self) -> Self {
        self.omit_sgx_extension = true;
        self
    }

    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// The SGX extension value (the DER SEQUENCE inside the extnValue).
    pub fn sgx_extension_der(&self) -> Vec<u8> {
        let entry = |oid: &str, value: Vec<u8>| der::seq(&[&der::oid(oid), &value]);
        let mut tcb_entries: Vec<Vec<u8>> = self
            .sgx_tcb_components
            .iter()
            .enumerate()
            .map(|(i, svn)| {
                entry(
                    &format!("{}.{}", sgx_oids::TCB, i + 1),
                    der::uint(u64::from(*svn)),
                )
            })
            .collect();
        tcb_entries.push(entry(
            &format!("{}.17", sgx_oids::TCB),
            der::uint(u64::from(self.pcesvn)),
        ));
        tcb_entries.push(entry(
            &format!("{}.18", sgx_oids::TCB),
            der::octet_string(&self.cpu_svn.unwrap_or(self.sgx_tcb_components)),
        ));
        let tcb_refs: Vec<&[u8]> = tcb_entries.iter().map(Vec::as_slice).collect();
        let mut entries = vec![
            entry(sgx_oids::PPID, der::octet_string(&self.ppid)),
            entry(sgx_oids::TCB, der::seq(&tcb_refs)),
            entry(sgx_oids::PCEID, der::octet_string(&self.pce_id)),
            entry(sgx_oids::FMSPC, der::octet_string(&self.fmspc)),
            entry(sgx_oids::SGX_TYPE, der::enumerated(self.sgx_type.value())),
        ];
        if let Some(id) = &self.platform_instance_id {
            entries.push(entry(sgx_oids::PLATFORM_INSTANCE_ID, der::octet_string(id)));
        }
        if let Some(config) = &self.configuration {
            let flags = [
                (1, config.dynamic_platform),
                (2, config.cached_keys),
                (3, config.smt_enabled),
            ]
            .map(|(n, flag)| {
                entry(
                    &format!("{}.{n}", sgx_oids::CONFIGURATION),
                    der::boolean(flag),
                )
            });
            entries.push(entry(
                sgx_oids::CONFIGURATION,
                der::seq(&[&flags[0], &flags[1], &flags[2]]),
            ));
        }
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        der::seq(&refs)
    }

    /// Sign the PCK leaf with the chosen authority of `intel`.
    pub fn build(&self, intel: &FakeIntel) -> FakePckLeaf {
        let key = FakeP256Key::from_label(&self.key_label);
        let issuer_key = intel.key(self.issuer);
        let issuer_cn = match self.issuer {
            IntelAuthority::Root => ROOT_CA_CN,
            IntelAuthority::PckPlatformCa => PCK_PLATFORM_CA_CN,
            IntelAuthority::TcbSigning => TCB_SIGNING_CN,
        };
        let spki = key.spki_der();
        let mut extensions = vec![
            Extension::authority_key_identifier(&key_identifier(&issuer_key.spki_der())),
            Extension::crl_distribution_point(
                "https://api.fake.veritee.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
            ),
            Extension::subject_key_identifier(&key_identifier(&spki)),
            Extension::key_usage(&[0, 1]),
            Extension::basic_constraints(false, None),
        ];
        if !self.omit_sgx_extension {
            extensions.push(Extension::new(
                sgx_oids::SGX_EXTENSION,
                false,
                self.sgx_extension_der(),
            ));
        }
        let template = CertificateTemplate {
            serial: self
                .serial
                .clone()
                .unwrap_or_else(|| derived_serial(&self.key_label)),
            issuer: intel_name(issuer_cn),
            subject: intel_name(&self.subject_cn),
            not_before: self.not_before,
            not_after: self.not_after,
            subject_spki: spki,
            extensions,
        };
        let der = issue_certificate(&template, Signer::P256(issuer_key), self.corrupt_signature);
        let mut fmspc = [0u8; 6];
        let n = self.fmspc.len().min(6);
        fmspc[..n].copy_from_slice(&self.fmspc[..n]);
        FakePckLeaf {
            der,
            key,
            cpu_svn: self.cpu_svn.unwrap_or(self.sgx_tcb_components),
            pcesvn: self.pcesvn,
            fmspc,
        }
    }
}

/// Builder for the Root CA CRL or the PCK CRL. Defaults: nothing revoked,
/// thisUpdate 7 days before and nextUpdate 23 days after [`DEFAULT_AT`],
/// CRL number 1, signed by the issuing authority.
#[derive(Clone, Debug)]
pub struct IntelCrlBuilder {
    issuer: IntelAuthority,
    signer_override: Option<String>,
    this_update: i64,
    next_update: Option<i64>,
    revoked: Vec<RevokedEntry>,
    crl_number: u64,
    corrupt_signature: bool,
}

impl IntelCrlBuilder {
    fn new(issuer: IntelAuthority) -> Self {
        IntelCrlBuilder {
            issuer,
            signer_override: None,
            this_update: DEFAULT_AT - 7 * 86_400,
            next_update: Some(DEFAULT_AT + 23 * 86_400),
            revoked: Vec::new(),
            crl_number: 1,
            corrupt_signature: false,
        }
    }

    /// Revoke a serial (big-endian magnitude), reason keyCompromise.
    pub fn revoke(mut self, serial: &[u8], revocation_date: i64) -> Self {
        self.revoked.push(RevokedEntry {
            serial: serial.to_vec(),
            revocation_date,
            reason: Some(1),
        });
        self
    }

    pub fn this_update(mut self, at: i64) -> Self {
        self.this_update = at;
        self
    }

    pub fn next_update(mut self, at: Option<i64>) -> Self {
        self.next_update = at;
        self
    }

    pub fn crl_number(mut self, number: u64) -> Self {
        self.crl_number = number;
        self
    }

    /// Sign with a key derived from another label (issuer name unchanged).
    pub fn sign_with_label(mut self, label: &str) -> Self {
        self.signer_override = Some(label.to_owned());
        self
    }

    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// The DER CRL.
    pub fn build(&self, intel: &FakeIntel) -> Vec<u8> {
        let issuer_key = intel.key(self.issuer);
        let override_key = self.signer_override.as_deref().map(FakeP256Key::from_label);
        let signing_key = override_key.as_ref().unwrap_or(issuer_key);
        let issuer_cn = match self.issuer {
            IntelAuthority::Root => ROOT_CA_CN,
            IntelAuthority::PckPlatformCa => PCK_PLATFORM_CA_CN,
            IntelAuthority::TcbSigning => TCB_SIGNING_CN,
        };
        let template = CrlTemplate {
            issuer: intel_name(issuer_cn),
            this_update: self.this_update,
            next_update: self.next_update,
            revoked: self.revoked.clone(),
            crl_number: self.crl_number,
            authority_key_id: Some(key_identifier(&issuer_key.spki_der()).to_vec()),
        };
        issue_crl(&template, Signer::P256(signing_key), self.corrupt_signature)
    }
}
