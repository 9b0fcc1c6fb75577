//! NVIDIA GPU evidence as the driver hands it out: an SPDM 1.1 GET_MEASUREMENTS request
//! immediately followed by the MEASUREMENTS response (DMTF DSP0274 1.1, sections
//! "GET_MEASUREMENTS request" and "MEASUREMENTS response"), with NVIDIA's opaque data.
//!
//! Parsing is strict and bounds-checked: every length field is checked against the bytes
//! that remain, every rejection names the offset (from the start of the evidence) where it
//! failed. The received bytes are kept so that the signature is checked over them, never
//! over a re-encoding.
//!
//! Layout (little-endian integers):
//!
//! ```text
//! request   0  SPDMVersion (0x11)  1  0xE0  2  Param1 (bit 0: signature requested)
//!           3  Param2 (0xFF: all blocks)  4..36  requester nonce  36  SlotIDParam
//! response  0  SPDMVersion  1  0x60  2  Param1  3  Param2 (slot id)  4  NumberOfBlocks
//!           5..8  MeasurementRecordLength (u24)  8..  MeasurementRecord
//!           then responder nonce (32), OpaqueDataLength (u16), OpaqueData, Signature (96)
//! ```
//!
//! The signature (ECDSA P-384, r || s big-endian) covers request || response up to the
//! signature. Real evidence may carry zero padding after the signature (one trustee vector
//! from a CoCo CI run has one 0x00 byte): zero bytes there are accepted, counted
//! ([`SpdmEvidence::trailing_padding`]) and covered by nothing; any non-zero byte after the
//! signature is [`Reason::TrailingData`].

use super::opaque::OpaqueData;
use crate::reason::{reject, Reason, Rejection};

/// SPDM version 1.1, the only one NVIDIA Hopper GPUs answer with.
pub const SPDM_VERSION_1_1: u8 = 0x11;
const GET_MEASUREMENTS: u8 = 0xE0;
const MEASUREMENTS: u8 = 0x60;
/// Param2 of GET_MEASUREMENTS: every measurement block.
const ALL_MEASUREMENTS: u8 = 0xFF;
/// The request's length with signature requested (SPDM 1.1 adds SlotIDParam).
pub const REQUEST_LEN: usize = 37;
/// Size of the requester and responder nonces.
pub const NONCE_LEN: usize = 32;
/// An ECDSA P-384 signature, r || s.
pub const SIGNATURE_LEN: usize = 96;
/// MeasurementSpecification bit 0: the DMTF measurement specification.
const DMTF_MEASUREMENT_SPEC: u8 = 0x01;
/// Zero bytes after the signature accepted as padding; more is not evidence.
pub const MAX_TRAILING_PADDING: usize = 64;

/// A bounds-checked reader over the evidence that reports absolute offsets.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Rejection> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => reject(
                Reason::Truncated,
                format!(
                    "GPU evidence: {what} needs {n} bytes at offset {}, {} remain",
                    self.pos,
                    self.bytes.len() - self.pos
                ),
            ),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, Rejection> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Rejection> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u24(&mut self, what: &str) -> Result<u32, Rejection> {
        let b = self.take(3, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Rejection> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

fn invalid<T>(what: String) -> Result<T, Rejection> {
    reject(Reason::InvalidField, format!("GPU evidence: {what}"))
}

/// The SPDM 1.1 GET_MEASUREMENTS request (signature requested, all blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMeasurementsRequest {
    pub version: u8,
    pub param1: u8,
    pub param2: u8,
    /// The requester's nonce: the freshness the caller chose (the runtime binding derives
    /// it); the signature covers it.
    pub nonce: [u8; NONCE_LEN],
    /// The certificate slot whose key signs the response (0..=7).
    pub slot_id: u8,
}

/// One measurement block of the MEASUREMENTS response, DMTF format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementBlock {
    /// SPDM measurement index (1-based on NVIDIA GPUs).
    pub index: u8,
    /// DMTFSpecMeasurementValueType: bit 7 raw bit stream (else digest), bits 6:0 the kind
    /// (0 immutable ROM, 1 mutable firmware, 2 hardware configuration, ...).
    pub value_type: u8,
    /// DMTFSpecMeasurementValue: the digest (48 bytes of SHA-384 on Hopper) or raw value.
    pub value: Vec<u8>,
}

impl MeasurementBlock {
    /// Whether the value is a raw bit stream rather than a digest (type bit 7).
    pub fn is_raw(&self) -> bool {
        self.value_type & 0x80 != 0
    }
}

/// The MEASUREMENTS response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementsResponse {
    pub version: u8,
    pub param1: u8,
    /// Bits 3:0: the slot id of the signing key.
    pub param2: u8,
    /// The measurement blocks, in the order received (indices unique).
    pub blocks: Vec<MeasurementBlock>,
    /// The responder's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// NVIDIA's opaque data (type-length-value fields).
    pub opaque: OpaqueData,
    /// ECDSA P-384 signature, r || s big-endian.
    pub signature: [u8; SIGNATURE_LEN],
}

/// GPU evidence: the request, the response and the exact bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdmEvidence {
    pub request: GetMeasurementsRequest,
    pub response: MeasurementsResponse,
    /// The received bytes.
    raw: Vec<u8>,
    /// Where the signature starts in `raw`.
    signature_offset: usize,
}

impl SpdmEvidence {
    /// Parse the binary evidence: request (37 bytes) || response.
    pub fn parse(bytes: &[u8]) -> Result<SpdmEvidence, Rejection> {
        let mut r = Reader { bytes, pos: 0 };
        let request = parse_request(&mut r)?;
        let resp_start = r.pos;
        let version = r.u8("response SPDMVersion")?;
        if version != request.version {
            return reject(
                Reason::UnsupportedVersion,
                format!(
                    "GPU evidence: response SPDM version {version:#04x} at offset {resp_start} \
                     is not the request's {:#04x}",
                    request.version
                ),
            );
        }
        let code = r.u8("response code")?;
        if code != MEASUREMENTS {
            return invalid(format!(
                "response code {code:#04x} at offset {} is not MEASUREMENTS (0x60)",
                resp_start + 1
            ));
        }
        let param1 = r.u8("response Param1")?;
        // Param1 counts the measurement indices only when Param2 asked for that (0); for
        // "all blocks" it is reserved.
        if param1 != 0 {
            return reject(
                Reason::ReservedNotZero,
                format!(
                    "GPU evidence: response Param1 {param1:#04x} at offset {} is reserved",
                    resp_start + 2
                ),
            );
        }
        let param2 = r.u8("response Param2")?;
        if param2 & 0xF0 != 0 {
            return reject(
                Reason::ReservedNotZero,
                format!(
                    "GPU evidence: reserved bits 7:4 of response Param2 {param2:#04x} (offset {})",
                    resp_start + 3
                ),
            );
        }
        if param2 & 0x0F != request.slot_id {
            return invalid(format!(
                "response slot id {} (offset {}) is not the requested slot {}",
                param2 & 0x0F,
                resp_start + 3,
                request.slot_id
            ));
        }
        let count = r.u8("NumberOfBlocks")?;
        let record_len = r.u24("MeasurementRecordLength")? as usize;
        let record_start = r.pos;
        let record = r.take(record_len, "MeasurementRecord")?;
        let blocks = parse_record(record, record_start, count)?;
        let nonce = r.array::<NONCE_LEN>("responder nonce")?;
        let opaque_len = r.u16("OpaqueDataLength")? as usize;
        let opaque_start = r.pos;
        let opaque = OpaqueData::parse(r.take(opaque_len, "OpaqueData")?, opaque_start)?;
        let signature_offset = r.pos;
        let signature = r.array::<SIGNATURE_LEN>("signature")?;
        let rest = &bytes[r.pos..];
        if let Some(i) = rest.iter().position(|&b| b != 0) {
            return reject(
                Reason::TrailingData,
                format!(
                    "GPU evidence: non-zero byte {:#04x} at offset {} after the signature",
                    rest[i],
                    r.pos + i
                ),
            );
        }
        if rest.len() > MAX_TRAILING_PADDING {
            return reject(
                Reason::TrailingData,
                format!(
                    "GPU evidence: {} bytes after the signature at offset {} (at most \
                     {MAX_TRAILING_PADDING} zero bytes of padding are accepted)",
                    rest.len(),
                    r.pos
                ),
            );
        }
        Ok(SpdmEvidence {
            request,
            response: MeasurementsResponse {
                version,
                param1,
                param2,
                blocks,
                nonce,
                opaque,
                signature,
            },
            raw: bytes.to_vec(),
            signature_offset,
        })
    }

    /// Parse the hex text form NVIDIA's tools and trustee use (whitespace around and inside
    /// is ignored; upper or lower case).
    pub fn parse_hex(text: &[u8]) -> Result<SpdmEvidence, Rejection> {
        SpdmEvidence::parse(&decode_hex_text(text)?)
    }

    /// The exact bytes received (including any zero padding after the signature).
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes the signature covers: request || response up to the signature.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..self.signature_offset]
    }

    /// The evidence without trailing padding: request || response including the signature.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.raw[..self.signature_offset + SIGNATURE_LEN]
    }

    /// How many zero bytes followed the signature (covered by no signature).
    pub fn trailing_padding(&self) -> usize {
        self.raw.len() - self.signature_offset - SIGNATURE_LEN
    }

    /// The measurement block with SPDM index `index`.
    pub fn block(&self, index: u8) -> Option<&MeasurementBlock> {
        self.response.blocks.iter().find(|b| b.index == index)
    }
}

/// Decode hex text: ASCII hex digits, whitespace ignored, an even number of digits.
pub fn decode_hex_text(text: &[u8]) -> Result<Vec<u8>, Rejection> {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return reject(
            Reason::Truncated,
            format!(
                "GPU evidence hex text has an odd number of digits ({})",
                digits.len()
            ),
        );
    }
    hex::decode(&digits).map_err(|e| {
        Rejection::new(
            Reason::UnknownInput,
            format!("GPU evidence hex text is not hex: {e}"),
        )
    })
}

/// Whether `bytes` look like GPU evidence, binary or hex text (the request header
/// `11 e0`, signature requested): for telling inputs apart, not a verification.
pub fn looks_like_gpu_evidence(bytes: &[u8]) -> bool {
    let binary =
        |b: &[u8]| b.len() > REQUEST_LEN && b[0] == SPDM_VERSION_1_1 && b[1] == GET_MEASUREMENTS;
    if binary(bytes) {
        return true;
    }
    let start: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .take(8)
        .collect();
    start.len() == 8
        && start.iter().all(u8::is_ascii_hexdigit)
        && start[..4].eq_ignore_ascii_case(b"11e0")
}

fn parse_request(r: &mut Reader<'_>) -> Result<GetMeasurementsRequest, Rejection> {
    let version = r.u8("request SPDMVersion")?;
    if version != SPDM_VERSION_1_1 {
        return reject(
            Reason::UnsupportedVersion,
            format!("GPU evidence: SPDM version {version:#04x} at offset 0 (supported: 0x11)"),
        );
    }
    let code = r.u8("request code")?;
    if code != GET_MEASUREMENTS {
        return invalid(format!(
            "request code {code:#04x} at offset 1 is not GET_MEASUREMENTS (0xe0)"
        ));
    }
    let param1 = r.u8("request Param1")?;
    if param1 & 0x01 == 0 {
        return invalid(format!(
            "request Param1 {param1:#04x} at offset 2 does not ask for a signature: unsigned \
             measurements are not evidence"
        ));
    }
    if param1 & !0x01 != 0 {
        return reject(
            Reason::ReservedNotZero,
            format!("GPU evidence: reserved bits of request Param1 {param1:#04x} (offset 2)"),
        );
    }
    let param2 = r.u8("request Param2")?;
    if param2 != ALL_MEASUREMENTS {
        return invalid(format!(
            "request Param2 {param2:#04x} at offset 3 does not ask for all measurement \
             blocks (0xff)"
        ));
    }
    let nonce = r.array::<NONCE_LEN>("requester nonce")?;
    let slot = r.u8("request SlotIDParam")?;
    if slot > 7 {
        return invalid(format!("request slot id {slot} at offset 36 (0..=7)"));
    }
    Ok(GetMeasurementsRequest {
        version,
        param1,
        param2,
        nonce,
        slot_id: slot,
    })
}

/// The measurement record: `count` blocks filling exactly `record`.
fn parse_record(record: &[u8], base: usize, count: u8) -> Result<Vec<MeasurementBlock>, Rejection> {
    let mut r = Reader {
        bytes: record,
        pos: 0,
    };
    let mut blocks: Vec<MeasurementBlock> = Vec::with_capacity(usize::from(count));
    for n in 0..count {
        let at = base + r.pos;
        let index = r
            .u8("measurement block index")
            .map_err(|e| offset_by(e, base))?;
        let spec = r
            .u8("MeasurementSpecification")
            .map_err(|e| offset_by(e, base))?;
        let size = r.u16("MeasurementSize").map_err(|e| offset_by(e, base))? as usize;
        let m = r
            .take(size, "measurement")
            .map_err(|e| offset_by(e, base))?;
        if spec != DMTF_MEASUREMENT_SPEC {
            return invalid(format!(
                "measurement block #{n} (index {index}, offset {at}) has specification \
                 {spec:#04x}, not DMTF (0x01)"
            ));
        }
        if m.len() < 3 {
            return reject(
                Reason::Truncated,
                format!(
                    "GPU evidence: measurement block #{n} (index {index}, offset {at}) is \
                     {} bytes, shorter than the DMTF header",
                    m.len()
                ),
            );
        }
        let value_type = m[0];
        let value_len = usize::from(u16::from_le_bytes([m[1], m[2]]));
        if value_len + 3 != m.len() {
            return invalid(format!(
                "measurement block #{n} (index {index}, offset {at}): value size {value_len} \
                 does not fill MeasurementSize {}",
                m.len()
            ));
        }
        if blocks.iter().any(|b| b.index == index) {
            return invalid(format!(
                "measurement index {index} appears twice (block #{n}, offset {at})"
            ));
        }
        blocks.push(MeasurementBlock {
            index,
            value_type,
            value: m[3..].to_vec(),
        });
    }
    if r.pos != record.len() {
        return reject(
            Reason::TrailingData,
            format!(
                "GPU evidence: {} bytes after the {count} measurement blocks at offset {} \
                 (inside MeasurementRecordLength)",
                record.len() - r.pos,
                base + r.pos
            ),
        );
    }
    Ok(blocks)
}

/// A rejection from a sub-reader, with its offsets made absolute.
fn offset_by(e: Rejection, base: usize) -> Rejection {
    Rejection::new(
        e.reason,
        format!("{} (record starts at offset {base})", e.detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal well-formed evidence: two blocks, one opaque field, zero signature.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = vec![0x11, 0xE0, 0x01, 0xFF];
        b.extend([0xAA; 32]);
        b.push(0);
        b.extend([0x11, 0x60, 0x00, 0x00, 2]);
        let mut record = Vec::new();
        for index in [1u8, 2] {
            record.extend([index, 0x01, 51, 0, 0x01, 48, 0]);
            record.extend([index; 48]);
        }
        b.extend(&(record.len() as u32).to_le_bytes()[..3]);
        b.extend(&record);
        b.extend([0xBB; 32]);
        let opaque = [3u8, 0, 4, 0, b'1', b'.', b'2', 0];
        b.extend((opaque.len() as u16).to_le_bytes());
        b.extend(opaque);
        b.extend([0x5A; 96]);
        b
    }

    #[test]
    fn parses_a_minimal_evidence() {
        let e = SpdmEvidence::parse(&sample()).unwrap();
        assert_eq!(e.request.nonce, [0xAA; 32]);
        assert_eq!(e.response.nonce, [0xBB; 32]);
        assert_eq!(e.response.blocks.len(), 2);
        assert_eq!(e.block(2).unwrap().value, vec![2; 48]);
        assert_eq!(e.response.signature, [0x5A; 96]);
        assert_eq!(e.signed_bytes().len(), sample().len() - 96);
        assert_eq!(e.trailing_padding(), 0);
        assert_eq!(
            e.response.opaque.driver_version().unwrap(),
            Some("1.2".into())
        );
    }

    #[test]
    fn every_truncation_is_a_typed_rejection() {
        let s = sample();
        for len in 0..s.len() {
            let err = SpdmEvidence::parse(&s[..len]).unwrap_err();
            assert_eq!(err.reason, Reason::Truncated, "prefix {len}: {err}");
        }
    }

    #[test]
    fn zero_padding_is_counted_and_other_trailing_bytes_rejected() {
        let mut s = sample();
        s.push(0);
        let e = SpdmEvidence::parse(&s).unwrap();
        assert_eq!(e.trailing_padding(), 1);
        assert_eq!(e.canonical_bytes(), &sample()[..]);
        s.push(1);
        let err = SpdmEvidence::parse(&s).unwrap_err();
        assert_eq!(err.reason, Reason::TrailingData);
        assert!(
            err.detail
                .contains(&format!("offset {}", sample().len() + 1)),
            "{err}"
        );
        let mut long = sample();
        long.extend([0u8; MAX_TRAILING_PADDING + 1]);
        assert_eq!(
            SpdmEvidence::parse(&long).unwrap_err().reason,
            Reason::TrailingData
        );
    }

    #[test]
    fn header_fields_are_checked() {
        let cases: [(usize, u8, Reason); 7] = [
            (0, 0x10, Reason::UnsupportedVersion),
            (1, 0xE1, Reason::InvalidField),
            (2, 0x00, Reason::InvalidField),
            (2, 0x03, Reason::ReservedNotZero),
            (3, 0x01, Reason::InvalidField),
            (36, 8, Reason::InvalidField),
            (37, 0x12, Reason::UnsupportedVersion),
        ];
        for (off, value, reason) in cases {
            let mut s = sample();
            s[off] = value;
            assert_eq!(
                SpdmEvidence::parse(&s).unwrap_err().reason,
                reason,
                "offset {off} = {value:#x}"
            );
        }
        // Response code, slot id, block count, duplicate index, DMTF spec, value size.
        for (off, value, reason) in [
            (38, 0x61, Reason::InvalidField),
            (39, 0x01, Reason::ReservedNotZero),
            (40, 0x10, Reason::ReservedNotZero),
            (40, 0x01, Reason::InvalidField),
            (41, 3, Reason::Truncated),
            (41, 1, Reason::TrailingData),
            (45 + 55, 1, Reason::InvalidField),
            (46, 0x02, Reason::InvalidField),
            (50, 47, Reason::InvalidField),
        ] {
            let mut s = sample();
            s[off] = value;
            assert_eq!(
                SpdmEvidence::parse(&s).unwrap_err().reason,
                reason,
                "offset {off} = {value:#x}"
            );
        }
    }

    #[test]
    fn hex_text_is_decoded() {
        let text = format!(" {}\n", hex::encode_upper(sample()));
        assert_eq!(
            SpdmEvidence::parse_hex(text.as_bytes()).unwrap(),
            SpdmEvidence::parse(&sample()).unwrap()
        );
        assert!(looks_like_gpu_evidence(text.as_bytes()));
        assert!(looks_like_gpu_evidence(&sample()));
        assert!(!looks_like_gpu_evidence(b"-----BEGIN CERTIFICATE-----"));
        assert_eq!(
            SpdmEvidence::parse_hex(b"11e").unwrap_err().reason,
            Reason::Truncated
        );
        assert_eq!(
            SpdmEvidence::parse_hex(b"11zz").unwrap_err().reason,
            Reason::UnknownInput
        );
    }
}
