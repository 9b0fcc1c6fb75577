//! Deterministic FAKE signing keys: P-256 and P-384 keys derived from a
//! label, RSA-4096 keys loaded from the committed fixtures in `sim/keys/`.
//!
//! ECDSA signatures use RFC 6979 nonces and RSA-PSS salts are derived from
//! the key label and the message digest, so the same inputs always give the
//! same bytes.

use crate::der;
use num_bigint::BigUint;
use p256::ecdsa::signature::Signer as _;
use sha2::{Digest, Sha256, Sha384};

const LABEL_PREFIX: &str = "veritee-fake/";

/// A P-256 key derived from a label (SHA-256 of `"veritee-fake/<label>"`).
#[derive(Clone)]
pub struct FakeP256Key {
    label: String,
    signing: p256::ecdsa::SigningKey,
}

impl FakeP256Key {
    /// Derive the key for `label`; the same label always gives the same key.
    pub fn from_label(label: &str) -> Self {
        for counter in 0u32.. {
            let mut hasher = Sha256::new();
            hasher.update(LABEL_PREFIX.as_bytes());
            hasher.update(label.as_bytes());
            if counter > 0 {
                hasher.update(counter.to_be_bytes());
            }
            let digest = hasher.finalize();
            if let Ok(signing) = p256::ecdsa::SigningKey::from_slice(&digest) {
                return FakeP256Key {
                    label: label.to_owned(),
                    signing,
                };
            }
        }
        unreachable!("a valid scalar is found within a few tries")
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Uncompressed SEC1 point without the 0x04 prefix: x || y (64 bytes).
    pub fn public_xy(&self) -> [u8; 64] {
        let point = self.signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let mut out = [0u8; 64];
        out.copy_from_slice(&bytes[1..65]);
        out
    }

    /// SubjectPublicKeyInfo DER (id-ecPublicKey, prime256v1).
    pub fn spki_der(&self) -> Vec<u8> {
        let mut point = vec![0x04];
        point.extend_from_slice(&self.public_xy());
        ec_spki(oids::PRIME256V1, &point)
    }

    /// ECDSA P-256 / SHA-256 signature as raw r || s (64 bytes).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        let signature: p256::ecdsa::Signature = self.signing.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(&signature.to_bytes());
        out
    }

    /// ECDSA P-256 / SHA-256 signature as DER Ecdsa-Sig-Value.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let raw = self.sign_raw(message);
        ecdsa_sig_value(&raw[..32], &raw[32..])
    }
}

/// A P-384 key derived from a label (SHA-384 of `"veritee-fake/<label>"`).
#[derive(Clone)]
pub struct FakeP384Key {
    label: String,
    signing: p384::ecdsa::SigningKey,
}

impl FakeP384Key {
    /// Derive the key for `label`; the same label always gives the same key.
    pub fn from_label(label: &str) -> Self {
        for counter in 0u32.. {
            let mut hasher = Sha384::new();
            hasher.update(LABEL_PREFIX.as_bytes());
            hasher.update(label.as_bytes());
            if counter > 0 {
                hasher.update(counter.to_be_bytes());
            }
            let digest = hasher.finalize();
            if let Ok(signing) = p384::ecdsa::SigningKey::from_slice(&digest) {
                return FakeP384Key {
                    label: label.to_owned(),
                    signing,
                };
            }
        }
        unreachable!("a valid scalar is found within a few tries")
    }

    /// A key from a big-endian secret scalar (48 bytes, in 1..n-1), for
    /// example freshly drawn random bytes.
    pub fn from_secret_bytes(label: &str, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() != 48 {
            return Err(KeyError::new(format!(
                "P-384 secret scalar has {} bytes (want 48)",
                secret.len()
            )));
        }
        let signing = p384::ecdsa::SigningKey::from_slice(secret).map_err(|_| {
            KeyError::new("P-384 secret scalar is zero or not below the group order")
        })?;
        Ok(FakeP384Key {
            label: label.to_owned(),
            signing,
        })
    }

    /// The big-endian secret scalar (48 bytes).
    pub fn secret_bytes(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out.copy_from_slice(&self.signing.to_bytes());
        out
    }

    /// PKCS#8 v1 `PrivateKeyInfo` DER (id-ecPublicKey, secp384r1) holding
    /// an RFC 5915 `ECPrivateKey` with the public key.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        let mut point = vec![0x04];
        point.extend_from_slice(&self.public_xy());
        let ec_private_key = der::seq(&[
            &der::uint(1),
            &der::octet_string(&self.secret_bytes()),
            &der::explicit(1, &der::bit_string(&point)),
        ]);
        der::seq(&[
            &der::uint(0),
            &der::seq(&[&der::oid(oids::EC_PUBLIC_KEY), &der::oid(oids::SECP384R1)]),
            &der::octet_string(&ec_private_key),
        ])
    }

    /// Parse a PKCS#8 `PrivateKeyInfo` holding a P-384 `ECPrivateKey` (as
    /// written by [`FakeP384Key::to_pkcs8_der`] or OpenSSL). A public key in
    /// it must match the secret.
    pub fn from_pkcs8_der(label: &str, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = |what: &str| KeyError::new(format!("not a PKCS#8 P-384 private key: {what}"));
        let inner = pkcs8_private_key(pkcs8, oids::EC_PUBLIC_KEY, Some(oids::SECP384R1))
            .map_err(|e| bad(&e))?;
        let mut outer = der::Reader::new(inner);
        let body = outer
            .expect(der::tag::SEQUENCE)
            .ok_or_else(|| bad("ECPrivateKey is not a SEQUENCE"))?;
        if outer.read().is_some() {
            return Err(bad("trailing bytes after ECPrivateKey"));
        }
        let mut fields = der::Reader::new(body);
        if fields.expect(der::tag::INTEGER) != Some(&[1][..]) {
            return Err(bad("ECPrivateKey version is not 1"));
        }
        let secret = fields
            .expect(der::tag::OCTET_STRING)
            .ok_or_else(|| bad("missing privateKey OCTET STRING"))?;
        let key = FakeP384Key::from_secret_bytes(label, secret)?;
        while let Some((tag, value)) = fields.read() {
            match tag {
                // [0] parameters: must name secp384r1 if present.
                0xA0 => {
                    if value != der::oid(oids::SECP384R1) {
                        return Err(bad("ECPrivateKey parameters are not secp384r1"));
                    }
                }
                // [1] publicKey: must be the secret's point.
                0xA1 => {
                    let mut point = vec![0x00, 0x04];
                    point.extend_from_slice(&key.public_xy());
                    if value != der::tlv(der::tag::BIT_STRING, &point) {
                        return Err(bad("public key does not match the private key"));
                    }
                }
                _ => return Err(bad("unexpected field in ECPrivateKey")),
            }
        }
        Ok(key)
    }

    /// Uncompressed SEC1 point without the 0x04 prefix: x || y (96 bytes).
    pub fn public_xy(&self) -> [u8; 96] {
        let point = self.signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let mut out = [0u8; 96];
        out.copy_from_slice(&bytes[1..97]);
        out
    }

    /// SubjectPublicKeyInfo DER (id-ecPublicKey, secp384r1).
    pub fn spki_der(&self) -> Vec<u8> {
        let mut point = vec![0x04];
        point.extend_from_slice(&self.public_xy());
        ec_spki(oids::SECP384R1, &point)
    }

    /// ECDSA P-384 / SHA-384 signature as raw big-endian r || s (96 bytes).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 96] {
        let signature: p384::ecdsa::Signature = self.signing.sign(message);
        let mut out = [0u8; 96];
        out.copy_from_slice(&signature.to_bytes());
        out
    }

    /// ECDSA P-384 / SHA-384 signature as DER Ecdsa-Sig-Value.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let raw = self.sign_raw(message);
        ecdsa_sig_value(&raw[..48], &raw[48..])
    }
}

/// An RSA private key from a committed PKCS#1 PEM fixture; signs with
/// RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48) like AMD's ARK/ASK.
#[derive(Clone)]
pub struct FakeRsaKey {
    label: String,
    n: BigUint,
    e: BigUint,
    p: BigUint,
    q: BigUint,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
}

impl FakeRsaKey {
    /// Parse a PKCS#1 `RSA PRIVATE KEY` PEM. Panics on a malformed fixture.
    pub fn from_pkcs1_pem(label: &str, pem_text: &str) -> Self {
        let parsed = pem::parse(pem_text).expect("fixture is PEM");
        assert_eq!(parsed.tag(), "RSA PRIVATE KEY", "fixture is PKCS#1");
        Self::parse_pkcs1(label, parsed.contents()).expect("fixture is an RSAPrivateKey")
    }

    /// Parse a PKCS#1 `RSAPrivateKey` DER and check that its parts are
    /// consistent (n = p·q and the CRT private operation inverts the public
    /// one), so a corrupted key is refused rather than signing garbage.
    pub fn from_pkcs1_der(label: &str, pkcs1: &[u8]) -> Result<Self, KeyError> {
        let key = Self::parse_pkcs1(label, pkcs1)?;
        key.check_consistent()?;
        Ok(key)
    }

    /// Parse a PKCS#8 `PrivateKeyInfo` DER holding an rsaEncryption key
    /// (what `openssl genpkey` and aws-lc-rs write), checked like
    /// [`FakeRsaKey::from_pkcs1_der`].
    pub fn from_pkcs8_der(label: &str, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let inner = pkcs8_private_key(pkcs8, oids::RSA_ENCRYPTION, None)
            .map_err(|e| KeyError::new(format!("not a PKCS#8 RSA private key: {e}")))?;
        Self::from_pkcs1_der(label, inner)
    }

    fn parse_pkcs1(label: &str, pkcs1: &[u8]) -> Result<Self, KeyError> {
        let bad = |what: &str| KeyError::new(format!("not a PKCS#1 RSAPrivateKey: {what}"));
        let mut outer = der::Reader::new(pkcs1);
        let body = outer
            .expect(der::tag::SEQUENCE)
            .ok_or_else(|| bad("no RSAPrivateKey SEQUENCE"))?;
        if outer.read().is_some() {
            return Err(bad("trailing bytes after RSAPrivateKey"));
        }
        let mut fields = der::Reader::new(body);
        let mut ints = Vec::with_capacity(9);
        for _ in 0..9 {
            let value = fields
                .expect(der::tag::INTEGER)
                .ok_or_else(|| bad("missing or malformed INTEGER"))?;
            ints.push(BigUint::from_bytes_be(value));
        }
        if ints[0] != BigUint::from(0u32) {
            return Err(bad("version is not 0 (multi-prime keys are not supported)"));
        }
        let mut ints = ints.into_iter().skip(1);
        let mut next = || ints.next().expect("nine integers were read");
        let (n, e, _d, p, q, dp, dq, qinv) = (
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
        );
        Ok(FakeRsaKey {
            label: label.to_owned(),
            n,
            e,
            p,
            q,
            dp,
            dq,
            qinv,
        })
    }

    fn check_consistent(&self) -> Result<(), KeyError> {
        let zero = BigUint::from(0u32);
        let one = BigUint::from(1u32);
        if self.n.bits() < 2048 || self.e <= one || self.p <= one || self.q <= one {
            return Err(KeyError::new("RSA key parts are out of range"));
        }
        if &self.p * &self.q != self.n || self.qinv == zero {
            return Err(KeyError::new("RSA key parts are inconsistent (n != p*q)"));
        }
        let m = BigUint::from_bytes_be(b"veritee RSA key consistency check");
        if self.private_op(&m).modpow(&self.e, &self.n) != m {
            return Err(KeyError::new(
                "RSA key parts are inconsistent (private exponents do not invert e)",
            ));
        }
        Ok(())
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Modulus length in bytes.
    pub fn modulus_len(&self) -> usize {
        (self.n.bits() as usize).div_ceil(8)
    }

    /// PKCS#1 RSAPublicKey DER (what ring's RSA verifiers take).
    pub fn rsa_public_key_der(&self) -> Vec<u8> {
        der::seq(&[
            &der::uint_be(&self.n.to_bytes_be()),
            &der::uint_be(&self.e.to_bytes_be()),
        ])
    }

    /// SubjectPublicKeyInfo DER (rsaEncryption with NULL parameters).
    pub fn spki_der(&self) -> Vec<u8> {
        der::seq(&[
            &der::seq(&[&der::oid(oids::RSA_ENCRYPTION), &der::null()]),
            &der::bit_string(&self.rsa_public_key_der()),
        ])
    }

    /// RSASSA-PSS signature (SHA-384, MGF1-SHA-384, 48-byte salt).
    ///
    /// The salt is SHA-384 over the key label and the message digest, so the
    /// signature is deterministic.
    pub fn sign_pss_sha384(&self, message: &[u8]) -> Vec<u8> {
        const H_LEN: usize = 48;
        const SALT_LEN: usize = 48;
        let m_hash = Sha384::digest(message);
        let salt = {
            let mut hasher = Sha384::new();
            hasher.update(b"veritee-fake-pss-salt/");
            hasher.update(self.label.as_bytes());
            hasher.update(m_hash);
            hasher.finalize()
        };
        let mod_bits = self.n.bits() as usize;
        let em_bits = mod_bits - 1;
        let em_len = em_bits.div_ceil(8);
        assert!(em_len >= H_LEN + SALT_LEN + 2, "modulus too small for PSS");

        let mut m_prime = vec![0u8; 8];
        m_prime.extend_from_slice(&m_hash);
        m_prime.extend_from_slice(&salt);
        let h = Sha384::digest(&m_prime);

        let db_len = em_len - H_LEN - 1;
        let mut db = vec![0u8; db_len];
        db[db_len - SALT_LEN - 1] = 0x01;
        db[db_len - SALT_LEN..].copy_from_slice(&salt);
        let mask = mgf1_sha384(&h, db_len);
        for (byte, mask_byte) in db.iter_mut().zip(mask) {
            *byte ^= mask_byte;
        }
        let excess_bits = 8 * em_len - em_bits;
        db[0] &= 0xFF >> excess_bits;

        let mut em = db;
        em.extend_from_slice(&h);
        em.push(0xBC);

        let signature = self.private_op(&BigUint::from_bytes_be(&em));
        debug_assert_eq!(
            signature.modpow(&self.e, &self.n),
            BigUint::from_bytes_be(&em)
        );
        left_pad(&signature.to_bytes_be(), self.modulus_len())
    }

    /// m^d mod n with the Chinese remainder theorem.
    fn private_op(&self, m: &BigUint) -> BigUint {
        let m1 = m.modpow(&self.dp, &self.p);
        let m2 = m.modpow(&self.dq, &self.q);
        let m2_mod_p = &m2 % &self.p;
        let diff = if m1 >= m2_mod_p {
            m1 - m2_mod_p
        } else {
            m1 + &self.p - m2_mod_p
        };
        let h = (&self.qinv * diff) % &self.p;
        let s = m2 + h * &self.q;
        debug_assert!(s < self.n);
        s
    }

    #[cfg(test)]
    pub(crate) fn private_op_inverts_public_op(&self) -> bool {
        let m = BigUint::from(0x1234_5678u32);
        self.private_op(&m).modpow(&self.e, &self.n) == m
    }
}

fn mgf1_sha384(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 48);
    let mut counter = 0u32;
    while out.len() < len {
        let mut hasher = Sha384::new();
        hasher.update(seed);
        hasher.update(counter.to_be_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn left_pad(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// Why a private key could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError(String);

impl KeyError {
    fn new(message: impl Into<String>) -> Self {
        KeyError(message.into())
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl std::fmt::Debug for FakeP384Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeP384Key")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for FakeRsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRsaKey")
            .field("label", &self.label)
            .field("bits", &self.n.bits())
            .finish_non_exhaustive()
    }
}

/// The privateKey octets of a PKCS#8 v1 `PrivateKeyInfo` whose algorithm
/// is `algorithm_oid` (with `curve_oid` as parameters, or NULL/absent
/// parameters when `None`).
fn pkcs8_private_key<'a>(
    pkcs8: &'a [u8],
    algorithm_oid: &str,
    curve_oid: Option<&str>,
) -> Result<&'a [u8], String> {
    let mut outer = der::Reader::new(pkcs8);
    let body = outer
        .expect(der::tag::SEQUENCE)
        .ok_or("no PrivateKeyInfo SEQUENCE")?;
    if outer.read().is_some() {
        return Err("trailing bytes after PrivateKeyInfo".into());
    }
    let mut fields = der::Reader::new(body);
    if fields.expect(der::tag::INTEGER) != Some(&[0][..]) {
        return Err("PrivateKeyInfo version is not 0".into());
    }
    let algorithm = fields
        .expect(der::tag::SEQUENCE)
        .ok_or("missing AlgorithmIdentifier")?;
    let mut alg = der::Reader::new(algorithm);
    if alg.expect(der::tag::OID) != Some(&der::oid_content(algorithm_oid)[..]) {
        return Err(format!("algorithm is not {algorithm_oid}"));
    }
    match (curve_oid, alg.read()) {
        (None, None) | (None, Some((der::tag::NULL, []))) => {}
        (Some(curve), Some((der::tag::OID, value))) if value == der::oid_content(curve) => {}
        _ => return Err("unexpected algorithm parameters".into()),
    }
    fields
        .expect(der::tag::OCTET_STRING)
        .ok_or_else(|| "missing privateKey OCTET STRING".into())
}

fn ec_spki(curve_oid: &str, point: &[u8]) -> Vec<u8> {
    der::seq(&[
        &der::seq(&[&der::oid(oids::EC_PUBLIC_KEY), &der::oid(curve_oid)]),
        &der::bit_string(point),
    ])
}

/// DER Ecdsa-Sig-Value from big-endian r and s.
pub fn ecdsa_sig_value(r: &[u8], s: &[u8]) -> Vec<u8> {
    der::seq(&[&der::uint_be(r), &der::uint_be(s)])
}

/// Object identifiers for keys and signature algorithms.
pub mod oids {
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const PRIME256V1: &str = "1.2.840.10045.3.1.7";
    pub const SECP384R1: &str = "1.3.132.0.34";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const MGF1: &str = "1.2.840.113549.1.1.8";
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_are_stable_and_distinct() {
        let a = FakeP256Key::from_label("a");
        assert_eq!(a.public_xy(), FakeP256Key::from_label("a").public_xy());
        assert_ne!(a.public_xy(), FakeP256Key::from_label("b").public_xy());
        assert_eq!(a.sign_raw(b"m"), a.sign_raw(b"m"));
        let c = FakeP384Key::from_label("c");
        assert_eq!(
            c.sign_raw(b"m"),
            FakeP384Key::from_label("c").sign_raw(b"m")
        );
    }

    #[test]
    fn rsa_fixture_is_consistent() {
        let key = FakeRsaKey::from_pkcs1_pem(
            "test",
            include_str!("../keys/fake-amd-milan-ark-rsa4096.pem"),
        );
        assert_eq!(key.modulus_len(), 512);
        assert!(key.private_op_inverts_public_op());
    }
}
