//! FAKE AMD key distribution: ARK / ASK / ASVK certificates per product,
//! VCEK and VLEK leaf certificates with chosen fields, and ARK-signed CRLs.
//!
//! Names keep AMD's structure (ARK-Milan, SEV-Milan, SEV-VLEK-Milan,
//! SEV-VCEK, SEV-VLEK) because verifiers key off them, but every name
//! carries `OU=veritee FAKE test root` instead of AMD's `OU=Engineering`
//! (or another OU chosen by an [`AmdCertProfile`], as the simulated TEE's
//! `OU=`[`crate::SIMULATED_ORG_UNIT`]).

use crate::der;
use crate::keys::{FakeP384Key, FakeRsaKey};
use crate::snp::SnpTcb;
use crate::x509::{
    self, issue_certificate, issue_crl, key_identifier, CertificateTemplate, CrlTemplate,
    DistinguishedName, Extension, NameAttribute, RevokedEntry, Signer,
};
use crate::{DEFAULT_NOT_AFTER, DEFAULT_NOT_BEFORE};
use sha2::{Digest, Sha512};

/// The organisational unit that marks every fake AMD name.
pub const FAKE_AMD_OU: &str = "veritee FAKE test root - never trust";

/// An AMD EPYC generation with its own ARK/ASK/ASVK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FakeProduct {
    Milan,
    Genoa,
    Turin,
}

impl FakeProduct {
    pub const ALL: [FakeProduct; 3] = [FakeProduct::Milan, FakeProduct::Genoa, FakeProduct::Turin];

    /// The product name used in certificate names ("Milan", "Genoa", "Turin").
    pub fn name(self) -> &'static str {
        match self {
            FakeProduct::Milan => "Milan",
            FakeProduct::Genoa => "Genoa",
            FakeProduct::Turin => "Turin",
        }
    }

    /// Length of the hwID (CHIP_ID) in VCEK certificates: 64, or 8 for Turin.
    pub fn hw_id_len(self) -> usize {
        match self {
            FakeProduct::Turin => 8,
            _ => 64,
        }
    }

    /// Default productName extension value of a VCEK, as AMD's KDS writes it
    /// ("Milan-B0" for Milan, bare "Genoa"/"Turin").
    pub fn default_vcek_product_name(self) -> &'static str {
        match self {
            FakeProduct::Milan => "Milan-B0",
            FakeProduct::Genoa => "Genoa",
            FakeProduct::Turin => "Turin",
        }
    }

    /// CPUID family, model and stepping reported by v3+ reports.
    pub fn cpuid_fam_mod_step(self) -> (u8, u8, u8) {
        match self {
            FakeProduct::Milan => (0x19, 0x01, 0x01),
            FakeProduct::Genoa => (0x19, 0x11, 0x01),
            FakeProduct::Turin => (0x1A, 0x02, 0x01),
        }
    }

    fn key_pem(self, role: AmdRole) -> &'static str {
        use AmdRole::*;
        use FakeProduct::*;
        match (self, role) {
            (Milan, Ark) => include_str!("../keys/fake-amd-milan-ark-rsa4096.pem"),
            (Milan, Ask) => include_str!("../keys/fake-amd-milan-ask-rsa4096.pem"),
            (Milan, Asvk) => include_str!("../keys/fake-amd-milan-asvk-rsa4096.pem"),
            (Genoa, Ark) => include_str!("../keys/fake-amd-genoa-ark-rsa4096.pem"),
            (Genoa, Ask) => include_str!("../keys/fake-amd-genoa-ask-rsa4096.pem"),
            (Genoa, Asvk) => include_str!("../keys/fake-amd-genoa-asvk-rsa4096.pem"),
            (Turin, Ark) => include_str!("../keys/fake-amd-turin-ark-rsa4096.pem"),
            (Turin, Ask) => include_str!("../keys/fake-amd-turin-ask-rsa4096.pem"),
            (Turin, Asvk) => include_str!("../keys/fake-amd-turin-asvk-rsa4096.pem"),
        }
    }
}

/// The three RSA authorities of one product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmdRole {
    /// AMD Root Key, self-signed (`ARK-<product>`).
    Ark,
    /// AMD SEV Key, signs VCEKs (`SEV-<product>`).
    Ask,
    /// AMD SEV VLEK Key, signs VLEKs (`SEV-VLEK-<product>`).
    Asvk,
}

impl AmdRole {
    fn common_name(self, product: FakeProduct) -> String {
        match self {
            AmdRole::Ark => format!("ARK-{}", product.name()),
            AmdRole::Ask => format!("SEV-{}", product.name()),
            AmdRole::Asvk => format!("SEV-VLEK-{}", product.name()),
        }
    }

    fn serial(self) -> u64 {
        match self {
            AmdRole::Ark => 0x10000,
            AmdRole::Ask => 0x10001,
            AmdRole::Asvk => 0x10101,
        }
    }
}

/// An AMD-style distinguished name with the given common name.
pub fn amd_name(common_name: &str) -> DistinguishedName {
    amd_name_with_ou(FAKE_AMD_OU, common_name)
}

/// An AMD-style distinguished name with the given organisational unit
/// (AMD writes "Engineering") and common name.
pub fn amd_name_with_ou(org_unit: &str, common_name: &str) -> DistinguishedName {
    DistinguishedName(vec![
        NameAttribute::OrganizationalUnit(org_unit.to_owned()),
        NameAttribute::Country("US".to_owned()),
        NameAttribute::Locality("Santa Clara".to_owned()),
        NameAttribute::State("CA".to_owned()),
        NameAttribute::Organization("Advanced Micro Devices".to_owned()),
        NameAttribute::CommonName(common_name.to_owned()),
    ])
}

/// The fake RSA key of one product's authority.
pub fn amd_authority_key(product: FakeProduct, role: AmdRole) -> FakeRsaKey {
    let label = format!("amd-{}-{role:?}", product.name()).to_lowercase();
    FakeRsaKey::from_pkcs1_pem(&label, product.key_pem(role))
}

/// OIDs of AMD's VCEK/VLEK extensions.
pub mod amd_oids {
    pub const STRUCT_VERSION: &str = "1.3.6.1.4.1.3704.1.1";
    pub const PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
    pub const BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
    pub const TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
    pub const SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
    pub const SPL_4: &str = "1.3.6.1.4.1.3704.1.3.4";
    pub const SPL_5: &str = "1.3.6.1.4.1.3704.1.3.5";
    pub const SPL_6: &str = "1.3.6.1.4.1.3704.1.3.6";
    pub const SPL_7: &str = "1.3.6.1.4.1.3704.1.3.7";
    pub const UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
    pub const FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
    pub const HW_ID: &str = "1.3.6.1.4.1.3704.1.4";
    pub const CSP_ID: &str = "1.3.6.1.4.1.3704.1.5";
}

/// How the authority certificates of a [`FakeAmd`] are named and dated.
/// The default is the fake test root: OU [`FAKE_AMD_OU`], valid from
/// [`DEFAULT_NOT_BEFORE`] to [`DEFAULT_NOT_AFTER`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmdCertProfile {
    /// Organisational unit of every name (subjects and issuers, leaves too).
    pub org_unit: String,
    /// notBefore of the ARK/ASK/ASVK certificates (Unix seconds).
    pub not_before: i64,
    /// notAfter of the ARK/ASK/ASVK certificates (Unix seconds).
    pub not_after: i64,
}

impl Default for AmdCertProfile {
    fn default() -> Self {
        AmdCertProfile {
            org_unit: FAKE_AMD_OU.to_owned(),
            not_before: DEFAULT_NOT_BEFORE,
            not_after: DEFAULT_NOT_AFTER,
        }
    }
}

/// The fake AMD authorities of one product: ARK (self-signed), ASK and ASVK.
#[derive(Clone)]
pub struct FakeAmd {
    product: FakeProduct,
    ark_key: FakeRsaKey,
    ask_key: FakeRsaKey,
    asvk_key: FakeRsaKey,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
    asvk_der: Vec<u8>,
    org_unit: String,
}

impl FakeAmd {
    /// Build the product's ARK, ASK and ASVK certificates, valid from
    /// [`DEFAULT_NOT_BEFORE`] to [`DEFAULT_NOT_AFTER`].
    pub fn new(product: FakeProduct) -> Self {
        FakeAmd::with_keys(
            product,
            amd_authority_key(product, AmdRole::Ark),
            amd_authority_key(product, AmdRole::Ask),
            amd_authority_key(product, AmdRole::Asvk),
        )
    }

    /// Like [`FakeAmd::new`] with explicit ARK, ASK and ASVK keys instead of
    /// the committed fixtures. Leaves and CRLs this value starts are signed
    /// by these keys (an [`AmdIssuer::Other`] signer still uses the other
    /// product's fixture key).
    pub fn with_keys(
        product: FakeProduct,
        ark_key: FakeRsaKey,
        ask_key: FakeRsaKey,
        asvk_key: FakeRsaKey,
    ) -> Self {
        FakeAmd::with_keys_and_profile(
            product,
            ark_key,
            ask_key,
            asvk_key,
            &AmdCertProfile::default(),
        )
    }

    /// Like [`FakeAmd::with_keys`], naming and dating the authority
    /// certificates by `profile`; leaves and CRLs started from this value
    /// carry the profile's organisational unit too.
    pub fn with_keys_and_profile(
        product: FakeProduct,
        ark_key: FakeRsaKey,
        ask_key: FakeRsaKey,
        asvk_key: FakeRsaKey,
        profile: &AmdCertProfile,
    ) -> Self {
        let ark_der = authority_certificate(product, AmdRole::Ark, &ark_key, &ark_key, profile);
        let ask_der = authority_certificate(product, AmdRole::Ask, &ask_key, &ark_key, profile);
        let asvk_der = authority_certificate(product, AmdRole::Asvk, &asvk_key, &ark_key, profile);
        FakeAmd {
            product,
            ark_key,
            ask_key,
            asvk_key,
            ark_der,
            ask_der,
            asvk_der,
            org_unit: profile.org_unit.clone(),
        }
    }

    pub fn product(&self) -> FakeProduct {
        self.product
    }

    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    pub fn ask_der(&self) -> &[u8] {
        &self.ask_der
    }

    pub fn asvk_der(&self) -> &[u8] {
        &self.asvk_der
    }

    /// The RSA key of one of this product's authorities.
    pub fn authority_key(&self, role: AmdRole) -> &FakeRsaKey {
        match role {
            AmdRole::Ark => &self.ark_key,
            AmdRole::Ask => &self.ask_key,
            AmdRole::Asvk => &self.asvk_key,
        }
    }

    /// The DER certificate of one of this product's authorities.
    pub fn authority_der(&self, role: AmdRole) -> &[u8] {
        match role {
            AmdRole::Ark => &self.ark_der,
            AmdRole::Ask => &self.ask_der,
            AmdRole::Asvk => &self.asvk_der,
        }
    }

    /// KDS-style `cert_chain` PEM for VCEKs: ASK first, then ARK.
    pub fn vcek_chain_pem(&self) -> String {
        x509::certificates_pem(&[&self.ask_der, &self.ark_der])
    }

    /// KDS-style `cert_chain` PEM for VLEKs: ASVK first, then ARK.
    pub fn vlek_chain_pem(&self) -> String {
        x509::certificates_pem(&[&self.asvk_der, &self.ark_der])
    }

    /// Start a VCEK leaf (signed by the ASK) with valid defaults.
    pub fn vcek(&self) -> AmdLeafBuilder {
        AmdLeafBuilder::new(self, AmdLeafKind::Vcek)
    }

    /// Start a VLEK leaf (signed by the ASVK) with valid defaults.
    pub fn vlek(&self) -> AmdLeafBuilder {
        AmdLeafBuilder::new(self, AmdLeafKind::Vlek)
    }

    /// The key that signs as `issuer`: this value's own key for
    /// [`AmdIssuer::Own`], the other product's fixture key otherwise.
    fn signer_key(&self, issuer: AmdIssuer) -> FakeRsaKey {
        match issuer {
            AmdIssuer::Own(role) => self.authority_key(role).clone(),
            AmdIssuer::Other(product, role) => amd_authority_key(product, role),
        }
    }

    /// Start an ARK-signed CRL (empty, valid around the default time).
    pub fn crl(&self) -> AmdCrlBuilder {
        AmdCrlBuilder {
            product: self.product,
            authorities: self.clone(),
            this_update: crate::DEFAULT_AT - 7 * 86_400,
            next_update: Some(crate::DEFAULT_AT + 30 * 86_400),
            revoked: Vec::new(),
            crl_number: 1,
            signer: AmdIssuer::Own(AmdRole::Ark),
            corrupt_signature: false,
        }
    }
}

impl std::fmt::Debug for FakeAmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAmd")
            .field("product", &self.product)
            .field("org_unit", &self.org_unit)
            .finish_non_exhaustive()
    }
}

fn authority_certificate(
    product: FakeProduct,
    role: AmdRole,
    subject_key: &FakeRsaKey,
    issuer_key: &FakeRsaKey,
    profile: &AmdCertProfile,
) -> Vec<u8> {
    let spki = subject_key.spki_der();
    let own_id = key_identifier(&spki);
    let issuer_id = key_identifier(&issuer_key.spki_der());
    let (key_usage, basic_constraints, crl_path) = match role {
        AmdRole::Ark => (
            Extension::key_usage(&[5, 6]),
            Extension::basic_constraints(true, None),
            "vcek",
        ),
        AmdRole::Ask => (
            Extension::key_usage(&[5]),
            Extension::basic_constraints(true, Some(0)),
            "vcek",
        ),
        AmdRole::Asvk => (
            Extension::key_usage(&[5]),
            Extension::basic_constraints(true, Some(0)),
            "vlek",
        ),
    };
    let mut extensions = vec![Extension::subject_key_identifier(&own_id)];
    if role != AmdRole::Ark {
        extensions.push(Extension::authority_key_identifier(&issuer_id));
    }
    extensions.push(basic_constraints);
    extensions.push(key_usage);
    extensions.push(Extension::crl_distribution_point(&format!(
        "https://kds.fake.veritee.invalid/{crl_path}/v1/{}/crl",
        product.name()
    )));
    let template = CertificateTemplate {
        serial: role.serial().to_be_bytes().to_vec(),
        issuer: amd_name_with_ou(&profile.org_unit, &AmdRole::Ark.common_name(product)),
        subject: amd_name_with_ou(&profile.org_unit, &role.common_name(product)),
        not_before: profile.not_before,
        not_after: profile.not_after,
        subject_spki: spki,
        extensions,
    };
    issue_certificate(&template, Signer::RsaPss(issuer_key), false)
}

/// Who signs a leaf or CRL: one of this product's authorities, or another
/// product's (a wrong-product chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdIssuer {
    /// This product's authority in the given role.
    Own(AmdRole),
    /// Another product's authority in the given role.
    Other(FakeProduct, AmdRole),
}

impl AmdIssuer {
    fn resolve(self, product: FakeProduct) -> (FakeProduct, AmdRole) {
        match self {
            AmdIssuer::Own(role) => (product, role),
            AmdIssuer::Other(other, role) => (other, role),
        }
    }
}

/// VCEK (chip-unique) or VLEK (CSP-provisioned) leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdLeafKind {
    Vcek,
    Vlek,
}

/// A signed VCEK/VLEK certificate with its P-384 private key.
#[derive(Clone)]
pub struct FakeAmdLeaf {
    pub der: Vec<u8>,
    pub key: FakeP384Key,
    pub kind: AmdLeafKind,
    pub product: FakeProduct,
    pub tcb: SnpTcb,
}

impl FakeAmdLeaf {
    pub fn pem(&self) -> String {
        x509::certificate_pem(&self.der)
    }
}

/// Builder for VCEK/VLEK certificates. Defaults: serial 0, subject
/// "SEV-VCEK"/"SEV-VLEK", the product's default TCB
/// ([`SnpTcb::default_for`]), a deterministic hwID (VCEK only), a csp_id
/// (VLEK only), validity [`DEFAULT_NOT_BEFORE`]..[`DEFAULT_NOT_AFTER`]
/// (VLEK: one year around [`crate::DEFAULT_AT`]).
#[derive(Clone, Debug)]
pub struct AmdLeafBuilder {
    product: FakeProduct,
    kind: AmdLeafKind,
    authorities: FakeAmd,
    key_label: String,
    key: Option<FakeP384Key>,
    subject_cn: String,
    issuer: AmdIssuer,
    issuer_name_override: Option<DistinguishedName>,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    tcb: SnpTcb,
    product_name: Option<String>,
    hw_id: Option<Vec<u8>>,
    csp_id: Option<String>,
    struct_version: Option<u64>,
    omit_tcb_extensions: Vec<String>,
    extra_extensions: Vec<Extension>,
    corrupt_signature: bool,
}

impl AmdLeafBuilder {
    fn new(authorities: &FakeAmd, kind: AmdLeafKind) -> Self {
        let product = authorities.product;
        let (subject_cn, issuer, not_before, not_after, hw_id, csp_id) = match kind {
            AmdLeafKind::Vcek => (
                "SEV-VCEK",
                AmdIssuer::Own(AmdRole::Ask),
                DEFAULT_NOT_BEFORE,
                DEFAULT_NOT_AFTER,
                Some(default_chip_id(product)[..product.hw_id_len()].to_vec()),
                None,
            ),
            AmdLeafKind::Vlek => (
                "SEV-VLEK",
                AmdIssuer::Own(AmdRole::Asvk),
                crate::DEFAULT_AT - 180 * 86_400,
                crate::DEFAULT_AT + 185 * 86_400,
                None,
                Some("CN=fake-csp.veritee.invalid".to_owned()),
            ),
        };
        let kind_label = match kind {
            AmdLeafKind::Vcek => "vcek",
            AmdLeafKind::Vlek => "vlek",
        };
        AmdLeafBuilder {
            product,
            kind,
            authorities: authorities.clone(),
            key_label: format!("amd-{}-{kind_label}", product.name().to_lowercase()),
            key: None,
            subject_cn: subject_cn.to_owned(),
            issuer,
            issuer_name_override: None,
            serial: vec![0],
            not_before,
            not_after,
            tcb: SnpTcb::default_for(product),
            product_name: Some(match kind {
                AmdLeafKind::Vcek => product.default_vcek_product_name().to_owned(),
                AmdLeafKind::Vlek => product.name().to_owned(),
            }),
            hw_id,
            csp_id,
            struct_version: Some(if product == FakeProduct::Turin { 1 } else { 0 }),
            omit_tcb_extensions: Vec::new(),
            extra_extensions: Vec::new(),
            corrupt_signature: false,
        }
    }

    /// Label the leaf's P-384 key is derived from (distinct labels give
    /// distinct chips).
    pub fn key_label(mut self, label: &str) -> Self {
        self.key_label = label.to_owned();
        self.key = None;
        self
    }

    /// Use this P-384 key for the leaf instead of one derived from the key
    /// label (e.g. a freshly generated random key).
    pub fn key(mut self, key: FakeP384Key) -> Self {
        self.key = Some(key);
        self
    }

    pub fn subject_cn(mut self, cn: &str) -> Self {
        self.subject_cn = cn.to_owned();
        self
    }

    /// Sign with another authority (e.g. the ARK directly, the ASVK for a
    /// VCEK, or another product's ASK). The issuer name follows the signer.
    pub fn issuer(mut self, issuer: AmdIssuer) -> Self {
        self.issuer = issuer;
        self
    }

    /// Write this issuer name instead of the signer's (name/key mismatch).
    pub fn issuer_name(mut self, name: DistinguishedName) -> Self {
        self.issuer_name_override = Some(name);
        self
    }

    /// Serial number as big-endian magnitude bytes (default `[0]`).
    pub fn serial(mut self, serial: &[u8]) -> Self {
        self.serial = serial.to_vec();
        self
    }

    pub fn validity(mut self, not_before: i64, not_after: i64) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// TCB components written to the 1.3.6.1.4.1.3704.1.3.x extensions.
    pub fn tcb(mut self, tcb: SnpTcb) -> Self {
        self.tcb = tcb;
        self
    }

    /// productName extension value (IA5String); `None` leaves it out.
    pub fn product_name(mut self, name: Option<&str>) -> Self {
        self.product_name = name.map(str::to_owned);
        self
    }

    /// hwID extension raw value (CHIP_ID); `None` leaves it out.
    pub fn hw_id(mut self, hw_id: Option<&[u8]>) -> Self {
        self.hw_id = hw_id.map(<[u8]>::to_vec);
        self
    }

    /// csp_id extension (IA5String) as VLEKs carry; `None` leaves it out.
    pub fn csp_id(mut self, csp_id: Option<&str>) -> Self {
        self.csp_id = csp_id.map(str::to_owned);
        self
    }

    /// structVersion extension; `None` leaves it out.
    pub fn struct_version(mut self, version: Option<u64>) -> Self {
        self.struct_version = version;
        self
    }

    /// Leave out one extension by OID (e.g. [`amd_oids::SNP_SPL`]).
    pub fn omit_extension(mut self, oid: &str) -> Self {
        self.omit_tcb_extensions.push(oid.to_owned());
        self
    }

    /// Append an arbitrary extension.
    pub fn extra_extension(mut self, extension: Extension) -> Self {
        self.extra_extensions.push(extension);
        self
    }

    /// Flip a bit of the certificate signature after signing.
    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// Sign the leaf certificate.
    pub fn build(&self) -> FakeAmdLeaf {
        let key = self
            .key
            .clone()
            .unwrap_or_else(|| FakeP384Key::from_label(&self.key_label));
        let (issuer_product, issuer_role) = self.issuer.resolve(self.product);
        let issuer_key = self.authorities.signer_key(self.issuer);
        let org_unit = &self.authorities.org_unit;
        let issuer_name = self.issuer_name_override.clone().unwrap_or_else(|| {
            amd_name_with_ou(org_unit, &issuer_role.common_name(issuer_product))
        });
        let int = |v: u8| der::uint(u64::from(v));
        let mut extensions = Vec::new();
        if let Some(version) = self.struct_version {
            extensions.push(Extension::new(
                amd_oids::STRUCT_VERSION,
                false,
                der::uint(version),
            ));
        }
        if let Some(name) = &self.product_name {
            extensions.push(Extension::new(
                amd_oids::PRODUCT_NAME,
                false,
                der::ia5(name),
            ));
        }
        let tcb = self.tcb;
        let tcb_extensions: Vec<(&str, Vec<u8>)> = if self.product == FakeProduct::Turin {
            vec![
                (amd_oids::FMC_SPL, int(tcb.fmc)),
                (amd_oids::BL_SPL, int(tcb.bootloader)),
                (amd_oids::TEE_SPL, int(tcb.tee)),
                (amd_oids::SNP_SPL, int(tcb.snp)),
                (amd_oids::SPL_5, int(0)),
                (amd_oids::SPL_6, int(0)),
                (amd_oids::SPL_7, int(0)),
                (amd_oids::UCODE_SPL, int(tcb.microcode)),
            ]
        } else {
            vec![
                (amd_oids::BL_SPL, int(tcb.bootloader)),
                (amd_oids::TEE_SPL, int(tcb.tee)),
                (amd_oids::SPL_4, int(0)),
                (amd_oids::SPL_5, int(0)),
                (amd_oids::SPL_6, int(0)),
                (amd_oids::SPL_7, int(0)),
                (amd_oids::SNP_SPL, int(tcb.snp)),
                (amd_oids::UCODE_SPL, int(tcb.microcode)),
            ]
        };
        for (oid, value) in tcb_extensions {
            extensions.push(Extension::new(oid, false, value));
        }
        if let Some(hw_id) = &self.hw_id {
            extensions.push(Extension::new(amd_oids::HW_ID, false, hw_id.clone()));
        }
        if let Some(csp_id) = &self.csp_id {
            extensions.push(Extension::new(amd_oids::CSP_ID, false, der::ia5(csp_id)));
        }
        extensions.retain(|e| !self.omit_tcb_extensions.contains(&e.oid));
        extensions.extend(self.extra_extensions.iter().cloned());
        let template = CertificateTemplate {
            serial: self.serial.clone(),
            issuer: issuer_name,
            subject: amd_name_with_ou(org_unit, &self.subject_cn),
            not_before: self.not_before,
            not_after: self.not_after,
            subject_spki: key.spki_der(),
            extensions,
        };
        let der = issue_certificate(
            &template,
            Signer::RsaPss(&issuer_key),
            self.corrupt_signature,
        );
        FakeAmdLeaf {
            der,
            key,
            kind: self.kind,
            product: self.product,
            tcb,
        }
    }
}

/// The deterministic 64-byte CHIP_ID of the default fake chip of a product
/// (Turin uses the first 8 bytes, zero-padded in the report).
pub fn default_chip_id(product: FakeProduct) -> [u8; 64] {
    let digest = Sha512::digest(format!("veritee-fake/chip-id/{}", product.name()));
    let mut out = [0u8; 64];
    out.copy_from_slice(&digest);
    if product == FakeProduct::Turin {
        out[8..].fill(0);
    }
    out
}

/// Builder for an AMD CRL. Defaults: signed by the product's ARK, no
/// revoked serials, thisUpdate 7 days before and nextUpdate 30 days after
/// [`crate::DEFAULT_AT`], CRL number 1.
#[derive(Clone, Debug)]
pub struct AmdCrlBuilder {
    product: FakeProduct,
    authorities: FakeAmd,
    this_update: i64,
    next_update: Option<i64>,
    revoked: Vec<RevokedEntry>,
    crl_number: u64,
    signer: AmdIssuer,
    corrupt_signature: bool,
}

impl AmdCrlBuilder {
    /// Revoke a serial (big-endian magnitude) as of `revocation_date`.
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

    /// Sign with another authority (the issuer name follows the signer).
    pub fn signer(mut self, signer: AmdIssuer) -> Self {
        self.signer = signer;
        self
    }

    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// The DER CRL.
    pub fn build(&self) -> Vec<u8> {
        let (product, role) = self.signer.resolve(self.product);
        let key = self.authorities.signer_key(self.signer);
        let template = CrlTemplate {
            issuer: amd_name_with_ou(&self.authorities.org_unit, &role.common_name(product)),
            this_update: self.this_update,
            next_update: self.next_update,
            revoked: self.revoked.clone(),
            crl_number: self.crl_number,
            authority_key_id: Some(key_identifier(&key.spki_der()).to_vec()),
        };
        issue_crl(&template, Signer::RsaPss(&key), self.corrupt_signature)
    }
}
