//! Generic X.509 certificate and CRL assembly for the fake AMD and Intel
//! authorities: names, extensions, TBS encoding and signing.

use crate::der;
use crate::keys::{oids, FakeP256Key, FakeP384Key, FakeRsaKey};
use sha2::{Digest, Sha256};

/// Which key signs a certificate or CRL, and so which algorithm it uses.
#[derive(Clone, Copy)]
pub enum Signer<'a> {
    /// ECDSA P-256 with SHA-256 (Intel's PKI).
    P256(&'a FakeP256Key),
    /// ECDSA P-384 with SHA-384.
    P384(&'a FakeP384Key),
    /// RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 (AMD's PKI).
    RsaPss(&'a FakeRsaKey),
}

impl Signer<'_> {
    /// The AlgorithmIdentifier DER for this signer.
    pub fn algorithm_identifier(&self) -> Vec<u8> {
        match self {
            Signer::P256(_) => der::seq(&[&der::oid(oids::ECDSA_WITH_SHA256)]),
            Signer::P384(_) => der::seq(&[&der::oid(oids::ECDSA_WITH_SHA384)]),
            Signer::RsaPss(_) => rsa_pss_sha384_algorithm(),
        }
    }

    /// The signature value (DER Ecdsa-Sig-Value for ECDSA, raw for RSA).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Signer::P256(key) => key.sign_der(message),
            Signer::P384(key) => key.sign_der(message),
            Signer::RsaPss(key) => key.sign_pss_sha384(message),
        }
    }

    /// The signer's SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        match self {
            Signer::P256(key) => key.spki_der(),
            Signer::P384(key) => key.spki_der(),
            Signer::RsaPss(key) => key.spki_der(),
        }
    }
}

/// RSASSA-PSS parameters as AMD writes them (trailer field left at its default).
pub fn rsa_pss_sha384_algorithm() -> Vec<u8> {
    let sha384 = der::seq(&[&der::oid(oids::SHA384), &der::null()]);
    let mgf1 = der::seq(&[&der::oid(oids::MGF1), &sha384]);
    der::seq(&[
        &der::oid(oids::RSASSA_PSS),
        &der::seq(&[
            &der::explicit(0, &sha384),
            &der::explicit(1, &mgf1),
            &der::explicit(2, &der::uint(48)),
        ]),
    ])
}

/// One attribute of a distinguished name; each becomes its own RDN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameAttribute {
    CommonName(String),
    Organization(String),
    OrganizationalUnit(String),
    Locality(String),
    State(String),
    Country(String),
}

/// A distinguished name, encoded attribute by attribute in the given order
/// (UTF8String values, PrintableString for the country, like AMD and Intel).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DistinguishedName(pub Vec<NameAttribute>);

impl DistinguishedName {
    pub fn to_der(&self) -> Vec<u8> {
        let rdns: Vec<Vec<u8>> = self
            .0
            .iter()
            .map(|attribute| {
                let (oid, value) = match attribute {
                    NameAttribute::CommonName(v) => ("2.5.4.3", der::utf8(v)),
                    NameAttribute::Organization(v) => ("2.5.4.10", der::utf8(v)),
                    NameAttribute::OrganizationalUnit(v) => ("2.5.4.11", der::utf8(v)),
                    NameAttribute::Locality(v) => ("2.5.4.7", der::utf8(v)),
                    NameAttribute::State(v) => ("2.5.4.8", der::utf8(v)),
                    NameAttribute::Country(v) => ("2.5.4.6", der::printable(v)),
                };
                der::set(&[&der::seq(&[&der::oid(oid), &value])])
            })
            .collect();
        let refs: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
        der::seq(&refs)
    }

    /// The common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.0.iter().find_map(|a| match a {
            NameAttribute::CommonName(cn) => Some(cn.as_str()),
            _ => None,
        })
    }

    /// Replace (or add) the common name.
    pub fn with_common_name(mut self, cn: &str) -> Self {
        match self
            .0
            .iter_mut()
            .find(|a| matches!(a, NameAttribute::CommonName(_)))
        {
            Some(slot) => *slot = NameAttribute::CommonName(cn.to_owned()),
            None => self.0.push(NameAttribute::CommonName(cn.to_owned())),
        }
        self
    }
}

/// One certificate extension: OID, criticality and the raw extnValue octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    pub oid: String,
    pub critical: bool,
    pub value: Vec<u8>,
}

impl Extension {
    pub fn new(oid: &str, critical: bool, value: Vec<u8>) -> Self {
        Extension {
            oid: oid.to_owned(),
            critical,
            value,
        }
    }

    pub fn to_der(&self) -> Vec<u8> {
        let oid = der::oid(&self.oid);
        let value = der::octet_string(&self.value);
        if self.critical {
            der::seq(&[&oid, &der::boolean(true), &value])
        } else {
            der::seq(&[&oid, &value])
        }
    }

    /// basicConstraints (critical).
    pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Self {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if ca {
            parts.push(der::boolean(true));
        }
        if let Some(len) = path_len {
            parts.push(der::uint(u64::from(len)));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Extension::new("2.5.29.19", true, der::seq(&refs))
    }

    /// keyUsage (critical) from named bit numbers (0 digitalSignature,
    /// 1 nonRepudiation, 5 keyCertSign, 6 cRLSign).
    pub fn key_usage(bits: &[u8]) -> Self {
        Extension::new("2.5.29.15", true, der::named_bits(bits))
    }

    /// subjectKeyIdentifier.
    pub fn subject_key_identifier(key_id: &[u8]) -> Self {
        Extension::new("2.5.29.14", false, der::octet_string(key_id))
    }

    /// authorityKeyIdentifier with keyIdentifier only.
    pub fn authority_key_identifier(key_id: &[u8]) -> Self {
        Extension::new(
            "2.5.29.35",
            false,
            der::seq(&[&der::implicit_primitive(0, key_id)]),
        )
    }

    /// cRLDistributionPoints with one full-name URI.
    pub fn crl_distribution_point(uri: &str) -> Self {
        let general_name = der::implicit_primitive(6, uri.as_bytes());
        let full_name = der::tlv(0xA0, &general_name);
        let dp_name = der::tlv(0xA0, &full_name);
        Extension::new("2.5.29.31", false, der::seq(&[&der::seq(&[&dp_name])]))
    }
}

/// Key identifier of a SubjectPublicKeyInfo: the first 20 bytes of SHA-256
/// over the subjectPublicKey bits (RFC 7093 method 1).
pub fn key_identifier(spki_der: &[u8]) -> [u8; 20] {
    let mut outer = der::Reader::new(spki_der);
    let body = outer.expect(der::tag::SEQUENCE).unwrap_or_default();
    let mut fields = der::Reader::new(body);
    let _algorithm = fields.read();
    let bits = fields
        .expect(der::tag::BIT_STRING)
        .map(|b| &b[1..])
        .unwrap_or(spki_der);
    let digest = Sha256::digest(bits);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest[..20]);
    out
}

/// Everything that goes into a certificate's TBS part.
#[derive(Clone, Debug)]
pub struct CertificateTemplate {
    /// Serial number magnitude (big-endian, unsigned; `[0]` gives serial 0).
    pub serial: Vec<u8>,
    pub issuer: DistinguishedName,
    pub subject: DistinguishedName,
    pub not_before: i64,
    pub not_after: i64,
    pub subject_spki: Vec<u8>,
    pub extensions: Vec<Extension>,
}

/// Sign a certificate template; `corrupt_signature` flips a bit of the
/// signature value after signing.
pub fn issue_certificate(
    template: &CertificateTemplate,
    signer: Signer<'_>,
    corrupt_signature: bool,
) -> Vec<u8> {
    let algorithm = signer.algorithm_identifier();
    let extension_ders: Vec<Vec<u8>> = template.extensions.iter().map(Extension::to_der).collect();
    let extension_refs: Vec<&[u8]> = extension_ders.iter().map(Vec::as_slice).collect();
    let mut tbs_parts: Vec<Vec<u8>> = vec![
        der::explicit(0, &der::uint(2)),
        der::uint_be(&template.serial),
        algorithm.clone(),
        template.issuer.to_der(),
        der::seq(&[
            &der::x509_time(template.not_before),
            &der::x509_time(template.not_after),
        ]),
        template.subject.to_der(),
        template.subject_spki.clone(),
    ];
    if !extension_refs.is_empty() {
        tbs_parts.push(der::explicit(3, &der::seq(&extension_refs)));
    }
    let tbs_refs: Vec<&[u8]> = tbs_parts.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&tbs_refs);
    let mut signature = signer.sign(&tbs);
    if corrupt_signature {
        corrupt(&mut signature);
    }
    der::seq(&[&tbs, &algorithm, &der::bit_string(&signature)])
}

/// One revoked certificate entry of a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number magnitude (big-endian).
    pub serial: Vec<u8>,
    pub revocation_date: i64,
    /// CRL reason code (e.g. 1 = keyCompromise), if any.
    pub reason: Option<u8>,
}

/// Everything that goes into a CRL's TBS part.
#[derive(Clone, Debug)]
pub struct CrlTemplate {
    pub issuer: DistinguishedName,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub revoked: Vec<RevokedEntry>,
    pub crl_number: u64,
    pub authority_key_id: Option<Vec<u8>>,
}

/// Sign a v2 CRL.
pub fn issue_crl(template: &CrlTemplate, signer: Signer<'_>, corrupt_signature: bool) -> Vec<u8> {
    let algorithm = signer.algorithm_identifier();
    let mut parts: Vec<Vec<u8>> = vec![
        der::uint(1),
        algorithm.clone(),
        template.issuer.to_der(),
        der::x509_time(template.this_update),
    ];
    if let Some(next) = template.next_update {
        parts.push(der::x509_time(next));
    }
    if !template.revoked.is_empty() {
        let entries: Vec<Vec<u8>> = template
            .revoked
            .iter()
            .map(|entry| {
                let serial = der::uint_be(&entry.serial);
                let date = der::x509_time(entry.revocation_date);
                match entry.reason {
                    Some(reason) => {
                        let reason_ext =
                            Extension::new("2.5.29.21", false, der::enumerated(u64::from(reason)));
                        der::seq(&[&serial, &date, &der::seq(&[&reason_ext.to_der()])])
                    }
                    None => der::seq(&[&serial, &date]),
                }
            })
            .collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        parts.push(der::seq(&refs));
    }
    let mut extensions =
        vec![Extension::new("2.5.29.20", false, der::uint(template.crl_number)).to_der()];
    if let Some(aki) = &template.authority_key_id {
        extensions.push(Extension::authority_key_identifier(aki).to_der());
    }
    let ext_refs: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    parts.push(der::explicit(0, &der::seq(&ext_refs)));
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&refs);
    let mut signature = signer.sign(&tbs);
    if corrupt_signature {
        corrupt(&mut signature);
    }
    der::seq(&[&tbs, &algorithm, &der::bit_string(&signature)])
}

/// Flip one bit of a signature value. Byte 6 of a DER ECDSA value lies
/// inside r (after `30 LL 02 LL` and a possible zero pad), so the encoding
/// stays well-formed and only the value is wrong.
pub(crate) fn corrupt(signature: &mut [u8]) {
    signature[6] ^= 0x01;
}

/// PEM text (LF line endings) of a DER certificate.
pub fn certificate_pem(der_bytes: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der_bytes.to_vec()), config)
}

/// Concatenated PEM text of several DER certificates, in order.
pub fn certificates_pem(ders: &[&[u8]]) -> String {
    ders.iter().map(|der| certificate_pem(der)).collect()
}
