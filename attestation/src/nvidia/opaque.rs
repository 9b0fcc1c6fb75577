//! NVIDIA's opaque data in the MEASUREMENTS response: type-length-value fields
//! (u16 type, u16 length, value; little-endian), which the signature covers.
//!
//! Every field is kept as received ([`OpaqueField`]); the ones the vectors carry and
//! policies need are decoded on demand (driver and VBIOS versions, project/SKU/chip SKU,
//! board id, FWID, measurement counts, ...). Types this crate does not know stay raw and are
//! reported by number. A field type appearing twice is rejected: two values for one field
//! would let different verifiers read different things.

use crate::reason::{reject, Reason, Rejection};

/// Opaque field types (NVIDIA's `OPAQUE_FIELD_ID_*` numbering).
pub mod field {
    pub const CERT_ISSUER_NAME: u16 = 1;
    pub const CERT_AUTHORITY_KEY_IDENTIFIER: u16 = 2;
    /// NUL-terminated ASCII, e.g. "550.90.07".
    pub const DRIVER_VERSION: u16 = 3;
    /// 8 bytes, reported as hex.
    pub const GPU_INFO: u16 = 4;
    pub const SKU: u16 = 5;
    /// 8 bytes: u32 LE major part, then a byte; printed "96.00.9f.00.01".
    pub const VBIOS_VERSION: u16 = 6;
    pub const MANUFACTURER_ID: u16 = 7;
    pub const TAMPER_DETECTION: u16 = 8;
    pub const SMC: u16 = 9;
    pub const VPR: u16 = 10;
    /// One ASCII status character.
    pub const NVDEC0_STATUS: u16 = 11;
    /// u32 LE per measurement block: how many times each was extended.
    pub const MSRSCNT: u16 = 12;
    pub const CPRINFO: u16 = 13;
    pub const BOARD_ID: u16 = 14;
    pub const CHIP_SKU: u16 = 15;
    pub const CHIP_SKU_MOD: u16 = 16;
    pub const PROJECT: u16 = 17;
    pub const PROJECT_SKU: u16 = 18;
    pub const PROJECT_SKU_MOD: u16 = 19;
    /// 48 bytes: the firmware id, also in the leaf certificate's TcbInfo extension.
    pub const FWID: u16 = 20;
    /// One ASCII status character.
    pub const PROTECTED_PCIE_STATUS: u16 = 21;
    /// u16 LE.
    pub const OPAQUE_DATA_VERSION: u16 = 34;
    /// u16 LE: the GPU's confidential-computing mode, 0 SPT (single GPU passthrough),
    /// 1 MPT (multi-GPU passthrough), 2 PPCIE (protected PCIe: the GPU's own CC mode
    /// off). Present from opaque data version 1 (NVIDIA's verifier reads it from then on).
    pub const FEATURE_FLAG: u16 = 36;
}

/// The GPU mode an opaque FEATURE_FLAG (type 36) states, in NVIDIA's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FeatureFlag {
    /// Single-GPU passthrough, CC mode on.
    #[serde(rename = "SPT")]
    Spt,
    /// Multi-GPU passthrough, CC mode on.
    #[serde(rename = "MPT")]
    Mpt,
    /// Protected PCIe: the GPU's own CC mode is off; the system's NVSwitch fabric is
    /// attested separately (not by this crate).
    #[serde(rename = "PPCIE")]
    Ppcie,
}

impl FeatureFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureFlag::Spt => "SPT",
            FeatureFlag::Mpt => "MPT",
            FeatureFlag::Ppcie => "PPCIE",
        }
    }

    /// Whether the GPU itself is in confidential-computing mode (SPT or MPT).
    pub fn gpu_cc_on(self) -> bool {
        matches!(self, FeatureFlag::Spt | FeatureFlag::Mpt)
    }
}

/// The name of a known field type, for messages and claims.
pub fn field_name(field_type: u16) -> Option<&'static str> {
    use field::*;
    Some(match field_type {
        CERT_ISSUER_NAME => "cert_issuer_name",
        CERT_AUTHORITY_KEY_IDENTIFIER => "cert_authority_key_identifier",
        DRIVER_VERSION => "driver_version",
        GPU_INFO => "gpu_info",
        SKU => "sku",
        VBIOS_VERSION => "vbios_version",
        MANUFACTURER_ID => "manufacturer_id",
        TAMPER_DETECTION => "tamper_detection",
        SMC => "smc",
        VPR => "vpr",
        NVDEC0_STATUS => "nvdec0_status",
        MSRSCNT => "measurement_count",
        CPRINFO => "cpr_info",
        BOARD_ID => "board_id",
        CHIP_SKU => "chip_sku",
        CHIP_SKU_MOD => "chip_sku_mod",
        PROJECT => "project",
        PROJECT_SKU => "project_sku",
        PROJECT_SKU_MOD => "project_sku_mod",
        FWID => "fwid",
        PROTECTED_PCIE_STATUS => "protected_pcie_status",
        OPAQUE_DATA_VERSION => "opaque_data_version",
        FEATURE_FLAG => "feature_flag",
        _ => return None,
    })
}

/// One opaque field as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueField {
    pub field_type: u16,
    pub value: Vec<u8>,
}

/// The opaque data of a MEASUREMENTS response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaqueData {
    fields: Vec<OpaqueField>,
}

impl OpaqueData {
    /// Parse TLVs filling exactly `bytes`; `base` is their offset in the evidence.
    pub fn parse(bytes: &[u8], base: usize) -> Result<OpaqueData, Rejection> {
        let mut fields: Vec<OpaqueField> = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let at = base + pos;
            let Some(header) = bytes.get(pos..pos + 4) else {
                return reject(
                    Reason::Truncated,
                    format!(
                        "GPU evidence: opaque field header at offset {at} needs 4 bytes, {} remain",
                        bytes.len() - pos
                    ),
                );
            };
            let field_type = u16::from_le_bytes([header[0], header[1]]);
            let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
            let Some(value) = bytes.get(pos + 4..pos + 4 + len) else {
                return reject(
                    Reason::Truncated,
                    format!(
                        "GPU evidence: opaque field type {field_type} at offset {at} is {len} \
                         bytes long, {} remain in OpaqueData",
                        bytes.len() - pos - 4
                    ),
                );
            };
            if fields.iter().any(|f| f.field_type == field_type) {
                return reject(
                    Reason::InvalidField,
                    format!(
                        "GPU evidence: opaque field type {field_type} appears twice (offset {at})"
                    ),
                );
            }
            fields.push(OpaqueField {
                field_type,
                value: value.to_vec(),
            });
            pos += 4 + len;
        }
        Ok(OpaqueData { fields })
    }

    /// Every field, in the order received.
    pub fn fields(&self) -> &[OpaqueField] {
        &self.fields
    }

    /// The value of one field type.
    pub fn get(&self, field_type: u16) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.field_type == field_type)
            .map(|f| &f.value[..])
    }

    /// The fields whose type this crate does not decode, by number.
    pub fn unknown(&self) -> impl Iterator<Item = &OpaqueField> {
        self.fields
            .iter()
            .filter(|f| field_name(f.field_type).is_none())
    }

    /// A NUL-terminated ASCII field (driver version, SKUs, project): the text before the
    /// first NUL; only NULs may follow it.
    pub fn text(&self, field_type: u16) -> Result<Option<String>, Rejection> {
        let Some(value) = self.get(field_type) else {
            return Ok(None);
        };
        let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        let (text, rest) = value.split_at(end);
        if rest.iter().any(|&b| b != 0) || !text.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
        {
            return reject(
                Reason::InvalidField,
                format!(
                    "GPU evidence: opaque field {} is not NUL-terminated ASCII: {}",
                    field_label(field_type),
                    hex::encode(value)
                ),
            );
        }
        Ok(Some(String::from_utf8_lossy(text).into_owned()))
    }

    /// A field of exactly `N` bytes.
    pub fn fixed<const N: usize>(&self, field_type: u16) -> Result<Option<[u8; N]>, Rejection> {
        match self.get(field_type) {
            None => Ok(None),
            Some(v) => v.try_into().map(Some).map_err(|_| {
                Rejection::new(
                    Reason::InvalidField,
                    format!(
                        "GPU evidence: opaque field {} is {} bytes, expected {N}",
                        field_label(field_type),
                        v.len()
                    ),
                )
            }),
        }
    }

    /// The driver version, e.g. "550.90.07".
    pub fn driver_version(&self) -> Result<Option<String>, Rejection> {
        self.text(field::DRIVER_VERSION)
    }

    /// The VBIOS version as NVIDIA prints it, lowercase: "96.00.9f.00.01" (the u32 LE of
    /// bytes 0..4 as four bytes, then byte 4); bytes 5..8 must be zero.
    pub fn vbios_version(&self) -> Result<Option<String>, Rejection> {
        let Some(v) = self.fixed::<8>(field::VBIOS_VERSION)? else {
            return Ok(None);
        };
        if v[5..].iter().any(|&b| b != 0) {
            return reject(
                Reason::InvalidField,
                format!(
                    "GPU evidence: VBIOS version {} has non-zero bytes 5..8",
                    hex::encode(v)
                ),
            );
        }
        Ok(Some(format!(
            "{:02x}.{:02x}.{:02x}.{:02x}.{:02x}",
            v[3], v[2], v[1], v[0], v[4]
        )))
    }

    /// The firmware id (48 bytes).
    pub fn fwid(&self) -> Result<Option<[u8; 48]>, Rejection> {
        self.fixed::<48>(field::FWID)
    }

    /// A one-character status field (NVDEC0, protected PCIe): the ASCII character.
    pub fn status_char(&self, field_type: u16) -> Result<Option<char>, Rejection> {
        match self.fixed::<1>(field_type)? {
            None => Ok(None),
            Some([c]) if c.is_ascii_graphic() => Ok(Some(char::from(c))),
            Some([c]) => reject(
                Reason::InvalidField,
                format!(
                    "GPU evidence: opaque field {} is {c:#04x}, not an ASCII status letter",
                    field_label(field_type)
                ),
            ),
        }
    }

    /// Per measurement block (1-based index), how often it was extended: the MSRSCNT
    /// field, u32 LE each.
    pub fn measurement_counts(&self) -> Result<Option<Vec<u32>>, Rejection> {
        let Some(v) = self.get(field::MSRSCNT) else {
            return Ok(None);
        };
        if !v.len().is_multiple_of(4) {
            return reject(
                Reason::InvalidField,
                format!(
                    "GPU evidence: measurement count field is {} bytes, not a multiple of 4",
                    v.len()
                ),
            );
        }
        Ok(Some(
            v.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// The opaque data format version (absent in older drivers' evidence).
    pub fn opaque_data_version(&self) -> Result<Option<u16>, Rejection> {
        Ok(self
            .fixed::<2>(field::OPAQUE_DATA_VERSION)?
            .map(u16::from_le_bytes))
    }

    /// The feature flag (type 36; absent before opaque data version 1). A value NVIDIA
    /// does not define is `invalid_field`.
    pub fn feature_flag(&self) -> Result<Option<FeatureFlag>, Rejection> {
        let Some(v) = self.fixed::<2>(field::FEATURE_FLAG)? else {
            return Ok(None);
        };
        match u16::from_le_bytes(v) {
            0 => Ok(Some(FeatureFlag::Spt)),
            1 => Ok(Some(FeatureFlag::Mpt)),
            2 => Ok(Some(FeatureFlag::Ppcie)),
            other => reject(
                Reason::InvalidField,
                format!(
                    "GPU evidence: {} is {other}, not 0 (SPT), 1 (MPT) or 2 (PPCIE)",
                    field_label(field::FEATURE_FLAG)
                ),
            ),
        }
    }

    /// A field's value as lowercase hex (board id, GPU info, CPR info).
    pub fn hex(&self, field_type: u16) -> Option<String> {
        self.get(field_type).map(hex::encode)
    }
}

fn field_label(field_type: u16) -> String {
    match field_name(field_type) {
        Some(name) => format!("{name} (type {field_type})"),
        None => format!("type {field_type}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(t: u16, v: &[u8]) -> Vec<u8> {
        let mut out = t.to_le_bytes().to_vec();
        out.extend((v.len() as u16).to_le_bytes());
        out.extend(v);
        out
    }

    #[test]
    fn decodes_known_fields_and_keeps_unknown_ones() {
        let mut b = tlv(
            field::VBIOS_VERSION,
            &[0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0],
        );
        b.extend(tlv(field::DRIVER_VERSION, b"550.90.07\0"));
        b.extend(tlv(field::MSRSCNT, &[1, 0, 0, 0, 130, 0, 0, 0]));
        b.extend(tlv(field::NVDEC0_STATUS, b"U"));
        b.extend(tlv(36, &[0, 0]));
        b.extend(tlv(35, b"GH100\0"));
        let o = OpaqueData::parse(&b, 0).unwrap();
        assert_eq!(o.vbios_version().unwrap().unwrap(), "96.00.9f.00.01");
        assert_eq!(o.driver_version().unwrap().unwrap(), "550.90.07");
        assert_eq!(o.measurement_counts().unwrap().unwrap(), vec![1, 130]);
        assert_eq!(o.status_char(field::NVDEC0_STATUS).unwrap(), Some('U'));
        assert_eq!(
            o.unknown().map(|f| f.field_type).collect::<Vec<_>>(),
            vec![35]
        );
        assert_eq!(o.feature_flag().unwrap(), Some(FeatureFlag::Spt));
        assert_eq!(o.fwid().unwrap(), None);
    }

    #[test]
    fn malformed_fields_are_rejected() {
        let dup = [tlv(3, b"1\0"), tlv(3, b"2\0")].concat();
        assert_eq!(
            OpaqueData::parse(&dup, 0).unwrap_err().reason,
            Reason::InvalidField
        );
        let short = tlv(3, b"12345");
        for len in 1..short.len() {
            let err = OpaqueData::parse(&short[..len], 100).unwrap_err();
            assert_eq!(err.reason, Reason::Truncated, "{len}");
            assert!(err.detail.contains("offset 100"), "{err}");
        }
        let o = OpaqueData::parse(&tlv(3, b"55\x000"), 0).unwrap();
        assert_eq!(o.driver_version().unwrap_err().reason, Reason::InvalidField);
        let o = OpaqueData::parse(&tlv(field::FWID, &[0; 47]), 0).unwrap();
        assert_eq!(o.fwid().unwrap_err().reason, Reason::InvalidField);
        let o =
            OpaqueData::parse(&tlv(field::VBIOS_VERSION, &[0, 0, 0, 0, 0, 0, 0, 1]), 0).unwrap();
        assert_eq!(o.vbios_version().unwrap_err().reason, Reason::InvalidField);
        for bad in [&[3u8, 0][..], &[0, 1], &[0], &[0, 0, 0]] {
            let o = OpaqueData::parse(&tlv(field::FEATURE_FLAG, bad), 0).unwrap();
            assert_eq!(
                o.feature_flag().unwrap_err().reason,
                Reason::InvalidField,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_feature_flag_names_the_gpu_mode() {
        let flag = |v: &[u8]| {
            OpaqueData::parse(&tlv(field::FEATURE_FLAG, v), 0)
                .unwrap()
                .feature_flag()
                .unwrap()
        };
        assert_eq!(flag(&[0, 0]), Some(FeatureFlag::Spt));
        assert_eq!(flag(&[1, 0]), Some(FeatureFlag::Mpt));
        assert_eq!(flag(&[2, 0]), Some(FeatureFlag::Ppcie));
        assert!(FeatureFlag::Spt.gpu_cc_on() && FeatureFlag::Mpt.gpu_cc_on());
        assert!(!FeatureFlag::Ppcie.gpu_cc_on());
        assert_eq!(OpaqueData::default().feature_flag().unwrap(), None);
    }
}
