//! A tiny DER writer (and a reader just big enough for PKCS#1 keys).
//!
//! Hand-written on purpose: the fake signers need byte-level control over
//! odd encodings (serial number 0, raw hwID extension values, wrong
//! algorithm identifiers) that certificate builders refuse to produce.

/// ASN.1 universal and context tags used by the generator.
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const ENUMERATED: u8 = 0x0A;
    pub const UTF8_STRING: u8 = 0x0C;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

/// Encode one TLV with a definite length.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// SEQUENCE of already-encoded elements.
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// SET of already-encoded elements (callers keep DER order themselves).
pub fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SET, &parts.concat())
}

/// Context-specific constructed tag `[n]` (EXPLICIT wrapping).
pub fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xA0 | n, inner)
}

/// Context-specific primitive tag `[n]` (IMPLICIT primitive).
pub fn implicit_primitive(n: u8, value: &[u8]) -> Vec<u8> {
    tlv(0x80 | n, value)
}

/// INTEGER from unsigned big-endian magnitude bytes (minimal encoding).
pub fn uint_be(magnitude: &[u8]) -> Vec<u8> {
    tlv(tag::INTEGER, &minimal_unsigned(magnitude))
}

/// INTEGER from a u64.
pub fn uint(value: u64) -> Vec<u8> {
    uint_be(&value.to_be_bytes())
}

/// ENUMERATED from a small unsigned value.
pub fn enumerated(value: u64) -> Vec<u8> {
    tlv(tag::ENUMERATED, &minimal_unsigned(&value.to_be_bytes()))
}

/// Strip leading zeros and add one back when the top bit is set.
pub fn minimal_unsigned(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let trimmed = &magnitude[skip..];
    let mut out = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.is_empty() || trimmed[0] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

pub fn boolean(value: bool) -> Vec<u8> {
    tlv(tag::BOOLEAN, &[if value { 0xFF } else { 0x00 }])
}

pub fn null() -> Vec<u8> {
    vec![tag::NULL, 0]
}

pub fn octet_string(value: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, value)
}

/// BIT STRING with zero unused bits.
pub fn bit_string(value: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(value.len() + 1);
    content.push(0);
    content.extend_from_slice(value);
    tlv(tag::BIT_STRING, &content)
}

/// BIT STRING holding named bits (bit 0 = most significant bit of the first
/// byte), trailing zero bits trimmed as DER requires.
pub fn named_bits(bits: &[u8]) -> Vec<u8> {
    let Some(&highest) = bits.iter().max() else {
        return tlv(tag::BIT_STRING, &[0]);
    };
    let byte_len = highest as usize / 8 + 1;
    let mut bytes = vec![0u8; byte_len];
    for bit in bits {
        bytes[*bit as usize / 8] |= 0x80 >> (bit % 8);
    }
    let last = bytes[byte_len - 1];
    let unused = last.trailing_zeros() as u8;
    let mut content = vec![unused];
    content.extend_from_slice(&bytes);
    tlv(tag::BIT_STRING, &content)
}

pub fn utf8(text: &str) -> Vec<u8> {
    tlv(tag::UTF8_STRING, text.as_bytes())
}

pub fn printable(text: &str) -> Vec<u8> {
    tlv(tag::PRINTABLE_STRING, text.as_bytes())
}

pub fn ia5(text: &str) -> Vec<u8> {
    tlv(tag::IA5_STRING, text.as_bytes())
}

/// OBJECT IDENTIFIER from dotted text such as "1.2.840.10045.4.3.2".
///
/// Panics on malformed text: OIDs here are compile-time constants.
pub fn oid(dotted: &str) -> Vec<u8> {
    tlv(tag::OID, &oid_content(dotted))
}

/// The content octets of an OID (no tag or length).
pub fn oid_content(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|arc| arc.parse().expect("OID arcs are decimal numbers"))
        .collect();
    assert!(arcs.len() >= 2, "an OID has at least two arcs");
    let mut out = Vec::new();
    push_base128(&mut out, arcs[0] * 40 + arcs[1]);
    for arc in &arcs[2..] {
        push_base128(&mut out, *arc);
    }
    out
}

fn push_base128(out: &mut Vec<u8>, value: u64) {
    let mut groups = vec![(value & 0x7F) as u8];
    let mut rest = value >> 7;
    while rest > 0 {
        groups.push(0x80 | (rest & 0x7F) as u8);
        rest >>= 7;
    }
    out.extend(groups.iter().rev());
}

/// X.509 Time: UTCTime for years 1950..2049, GeneralizedTime otherwise
/// (RFC 5280 section 4.1.2.5).
pub fn x509_time(unix_secs: i64) -> Vec<u8> {
    let (year, rest) = time_text(unix_secs);
    if (1950..2050).contains(&year) {
        tlv(
            tag::UTC_TIME,
            format!("{:02}{rest}", year.rem_euclid(100)).as_bytes(),
        )
    } else {
        generalized_time(unix_secs)
    }
}

/// GeneralizedTime (YYYYMMDDHHMMSSZ) whatever the year, as OCSP's times are.
pub fn generalized_time(unix_secs: i64) -> Vec<u8> {
    let (year, rest) = time_text(unix_secs);
    tlv(tag::GENERALIZED_TIME, format!("{year:04}{rest}").as_bytes())
}

/// The year, and "MMDDHHMMSSZ" of a Unix time.
fn time_text(unix_secs: i64) -> (i32, String) {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .expect("time within the range the time crate supports");
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    (t.year(), rest)
}

/// A forward-only DER reader, enough to read PKCS#1 RSA private keys.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Read one TLV and return (tag, value).
    pub fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, after_tag) = self.rest.split_first()?;
        let (&first_len, mut after_len) = after_tag.split_first()?;
        let len = if first_len < 0x80 {
            first_len as usize
        } else {
            let count = (first_len & 0x7F) as usize;
            if count == 0 || count > 4 || after_len.len() < count {
                return None;
            }
            let len = after_len[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            after_len = &after_len[count..];
            len
        };
        if after_len.len() < len {
            return None;
        }
        let (value, rest) = after_len.split_at(len);
        self.rest = rest;
        Some((tag, value))
    }

    /// Read a TLV that must carry `expected` as its tag.
    pub fn expect(&mut self, expected: u8) -> Option<&'a [u8]> {
        match self.read()? {
            (tag, value) if tag == expected => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_values() {
        assert_eq!(
            oid("1.2.840.10045.4.3.2"),
            hex::decode("06082a8648ce3d040302").unwrap()
        );
        assert_eq!(uint(0), vec![0x02, 0x01, 0x00]);
        assert_eq!(uint(0x80), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(0x10000), vec![0x02, 0x03, 0x01, 0x00, 0x00]);
        // keyCertSign (5) + cRLSign (6) = 03 02 01 06
        assert_eq!(named_bits(&[5, 6]), vec![0x03, 0x02, 0x01, 0x06]);
        // digitalSignature (0) + nonRepudiation (1) = 03 02 06 C0
        assert_eq!(named_bits(&[0, 1]), vec![0x03, 0x02, 0x06, 0xC0]);
        assert_eq!(tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(
            x509_time(1_780_272_000),
            tlv(tag::UTC_TIME, b"260601000000Z")
        );
        assert_eq!(
            x509_time(2_524_608_000),
            tlv(tag::GENERALIZED_TIME, b"20500101000000Z")
        );
    }

    #[test]
    fn reader_round_trips() {
        let encoded = seq(&[&uint(5), &octet_string(&[1, 2, 3])]);
        let mut outer = Reader::new(&encoded);
        let body = outer.expect(tag::SEQUENCE).unwrap();
        let mut inner = Reader::new(body);
        assert_eq!(inner.expect(tag::INTEGER).unwrap(), &[5]);
        assert_eq!(inner.expect(tag::OCTET_STRING).unwrap(), &[1, 2, 3]);
        assert!(inner.read().is_none());
    }
}
