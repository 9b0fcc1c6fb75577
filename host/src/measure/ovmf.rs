//! OVMF firmware metadata: the footer GUID table and the structures it points to.
//!
//! An OVMF image (and a Coconut-SVSM image, which uses the same table) ends with 32 bytes
//! of reset vector. Just before them sits the *footer entry*: a little-endian `u16` length
//! followed by [`TABLE_FOOTER_GUID`]. The length covers the whole table, footer entry
//! included. Going backwards from the footer, each entry is `data ‖ u16 length ‖ GUID`,
//! with the length counting the data and the 18-byte header. Entries are looked up by GUID,
//! never by position.
//!
//! Some entries hold an offset *from the end of the image* to a larger structure: the SEV
//! metadata (`ASEV`, [`Ovmf::sev_metadata`]) and the TDX metadata (`TDVF`,
//! [`Ovmf::tdvf_metadata`]). Those are parsed on demand, so a firmware suffix that carries a
//! valid SEV table but whose TDVF sections point outside it still serves SNP measurement.
//!
//! Every length and offset is checked against the image before it is used; malformed
//! firmware gives an [`OvmfError`] naming the structure and the offset.

use std::fmt;

use thiserror::Error;

/// The guest-physical address just past the firmware: OVMF is mapped to end at 4 GiB.
pub const FOUR_GIB: u64 = 1 << 32;

/// An EFI GUID, kept in the byte order it has in firmware (first three fields
/// little-endian); [`fmt::Display`] gives the canonical lower-case string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

impl Guid {
    /// The GUID `d1-d2-d3-d4[0..2]-d4[2..8]` of the canonical string form.
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// A GUID from its 16 bytes as stored in firmware.
    pub const fn from_bytes_le(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    /// The 16 bytes as stored in firmware.
    pub const fn bytes_le(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The GUID of the footer entry that closes the table.
pub const TABLE_FOOTER_GUID: Guid = Guid::new(
    0x96b582de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);
/// SEV-ES reset block: `u32` reset EIP of the application processors.
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::new(
    0x00f771de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);
/// SEV secret block: `u32` base and `u32` size of the launch-secret area.
pub const SEV_SECRET_BLOCK_GUID: Guid = Guid::new(
    0x4c2eb361,
    0x7d9b,
    0x4cc3,
    [0x80, 0x81, 0x12, 0x7c, 0x90, 0xd3, 0xd2, 0x94],
);
/// SEV hashes table: `u32` GPA and `u32` size of the area that receives the
/// kernel / initrd / command-line hashes table (GPA 0: not supported by this build).
pub const SEV_HASH_TABLE_GUID: Guid = Guid::new(
    0x7255371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);
/// SEV metadata: `u32` offset from the image end to the `ASEV` header.
pub const SEV_METADATA_GUID: Guid = Guid::new(
    0xdc886566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);
/// TDX metadata: `u32` offset from the image end to the `TDVF` descriptor.
pub const TDX_METADATA_GUID: Guid = Guid::new(
    0xe47a6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);
/// Coconut-SVSM information: `u32` offset of the SVSM entry point inside its image.
pub const SVSM_INFO_GUID: Guid = Guid::new(
    0xa789a612,
    0x0597,
    0x4c4b,
    [0xa4, 0x9f, 0xcb, 0xb1, 0xfe, 0x9d, 0x1d, 0xdd],
);

/// What a GUID in the table is, for error messages and listings.
pub fn guid_name(guid: &Guid) -> Option<&'static str> {
    Some(match *guid {
        TABLE_FOOTER_GUID => "table footer",
        SEV_ES_RESET_BLOCK_GUID => "SEV-ES reset block",
        SEV_SECRET_BLOCK_GUID => "SEV secret block",
        SEV_HASH_TABLE_GUID => "SEV hashes table",
        SEV_METADATA_GUID => "SEV metadata",
        TDX_METADATA_GUID => "TDX metadata",
        SVSM_INFO_GUID => "SVSM info",
        _ => return None,
    })
}

/// The reset-vector bytes after the footer entry, at the very end of the image.
const BYTES_AFTER_FOOTER: usize = 32;
/// `u16` length + GUID.
const ENTRY_HEADER_LEN: usize = 18;
const SEV_METADATA_HEADER_LEN: usize = 16;
const SEV_SECTION_LEN: usize = 12;
const TDVF_HEADER_LEN: usize = 16;
const TDVF_SECTION_LEN: usize = 32;

/// Which metadata structure an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    /// SEV metadata, signature `ASEV`.
    Sev,
    /// TDX metadata, signature `TDVF`.
    Tdvf,
}

impl MetadataKind {
    fn signature(self) -> [u8; 4] {
        match self {
            MetadataKind::Sev => *b"ASEV",
            MetadataKind::Tdvf => *b"TDVF",
        }
    }
}

impl fmt::Display for MetadataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetadataKind::Sev => "SEV metadata (ASEV)",
            MetadataKind::Tdvf => "TDX metadata (TDVF)",
        })
    }
}

/// Malformed or unsupported firmware. Offsets are from the start of the image.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OvmfError {
    /// The image cannot even hold the footer entry.
    #[error("firmware image is {len} bytes; the OVMF footer table needs at least {need}")]
    TooSmall { len: usize, need: usize },
    /// The footer GUID is not where the table ends.
    #[error(
        "no OVMF footer table: the GUID at offset {offset:#x} is {found}, not {TABLE_FOOTER_GUID}"
    )]
    NoFooterTable { offset: usize, found: Guid },
    /// The table's declared length is too small or runs past the image start.
    #[error(
        "OVMF footer table at offset {offset:#x} declares {len} bytes; it must be {ENTRY_HEADER_LEN}..={available}"
    )]
    TableLength {
        offset: usize,
        len: u16,
        available: usize,
    },
    /// An entry's declared length is too small or runs past the table start.
    #[error(
        "OVMF footer table entry {guid} (header at offset {offset:#x}) declares {len} bytes; it must be {ENTRY_HEADER_LEN}..={available}"
    )]
    EntryLength {
        offset: usize,
        guid: Guid,
        len: u16,
        available: usize,
    },
    /// Bytes left at the start of the table that cannot hold an entry header.
    #[error("OVMF footer table has {len} stray bytes at offset {offset:#x}, too few for an entry")]
    TableRemainder { offset: usize, len: usize },
    /// The same GUID twice: which one a VMM uses would be ambiguous.
    #[error(
        "OVMF footer table has GUID {guid} twice (data at offsets {first:#x} and {second:#x})"
    )]
    DuplicateEntry {
        guid: Guid,
        first: usize,
        second: usize,
    },
    /// An entry's data is shorter than its fields.
    #[error("OVMF footer table entry {guid} ({what}) at offset {offset:#x} has {len} data bytes; {need} needed")]
    EntryTooShort {
        guid: Guid,
        what: &'static str,
        offset: usize,
        len: usize,
        need: usize,
    },
    /// A metadata offset (counted back from the image end) points outside the image.
    #[error("{kind} offset {offset_from_end:#x} from the image end falls outside the {image_len}-byte image")]
    MetadataOffset {
        kind: MetadataKind,
        offset_from_end: u32,
        image_len: usize,
    },
    /// The metadata header does not carry its signature.
    #[error("{kind} at offset {offset:#x}: signature {found:02x?}, expected {:?}", String::from_utf8_lossy(&kind.signature()))]
    MetadataSignature {
        kind: MetadataKind,
        offset: usize,
        found: [u8; 4],
    },
    /// A metadata version other than 1.
    #[error("{kind} at offset {offset:#x}: version {version}; only version 1 is known")]
    MetadataVersion {
        kind: MetadataKind,
        offset: usize,
        version: u32,
    },
    /// The declared length cannot hold the declared number of sections, or runs past the image end.
    #[error(
        "{kind} at offset {offset:#x}: declared length {declared} for {count} sections does not fit ({available} bytes to the image end, {need} needed)"
    )]
    MetadataLength {
        kind: MetadataKind,
        offset: usize,
        declared: u32,
        count: u32,
        available: usize,
        need: u64,
    },
    /// A TDVF section that cannot be loaded as described.
    #[error("TDVF section {index} ({section:?}): {problem}")]
    TdvfSection {
        index: usize,
        section: TdvfSection,
        problem: &'static str,
    },
}

/// One entry of the footer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterEntry {
    /// The entry's GUID.
    pub guid: Guid,
    /// Offset of the entry's data in the image.
    pub offset: usize,
    /// Length of the entry's data (without the 18-byte header).
    pub len: usize,
}

/// A guest-physical area named by a footer entry (`u32` base, `u32` size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpaArea {
    /// Guest-physical base address.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
}

/// The type of an SEV metadata section: how `SNP_LAUNCH_UPDATE` treats its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SevSectionType {
    /// 1: memory pre-validated by the VMM, measured as zero pages.
    SnpSecMem,
    /// 2: the SNP secrets page.
    SnpSecrets,
    /// 3: the CPUID page.
    Cpuid,
    /// 4: the SVSM calling-area page, measured as a zero page.
    SvsmCaa,
    /// 0x10: the page that holds the kernel / initrd / command-line hashes table.
    SnpKernelHashes,
    /// A type this crate does not know; measuring it is an error.
    Unknown(u32),
}

impl SevSectionType {
    /// The type from its metadata value.
    pub fn from_raw(value: u32) -> Self {
        match value {
            1 => SevSectionType::SnpSecMem,
            2 => SevSectionType::SnpSecrets,
            3 => SevSectionType::Cpuid,
            4 => SevSectionType::SvsmCaa,
            0x10 => SevSectionType::SnpKernelHashes,
            other => SevSectionType::Unknown(other),
        }
    }

    /// The metadata value.
    pub fn raw(self) -> u32 {
        match self {
            SevSectionType::SnpSecMem => 1,
            SevSectionType::SnpSecrets => 2,
            SevSectionType::Cpuid => 3,
            SevSectionType::SvsmCaa => 4,
            SevSectionType::SnpKernelHashes => 0x10,
            SevSectionType::Unknown(other) => other,
        }
    }
}

/// One SEV metadata section (`OvmfSevMetadata.asm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevSection {
    /// Guest-physical base address.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
    /// What the VMM does with it.
    pub section_type: SevSectionType,
}

impl SevSection {
    /// A section from its three metadata values (as in hash-only launch inputs).
    pub fn new(gpa: u32, size: u32, section_type: u32) -> Self {
        SevSection {
            gpa,
            size,
            section_type: SevSectionType::from_raw(section_type),
        }
    }
}

/// TDVF section attribute: the section's content is measured with `TDH.MR.EXTEND`.
pub const TDVF_ATTR_MR_EXTEND: u32 = 1;
/// TDVF section attribute: the section's pages are added later with `TDH.MEM.PAGE.AUG`
/// (not part of `MRTD`).
pub const TDVF_ATTR_PAGE_AUG: u32 = 2;

/// The type of a TDVF section (TDVF design guide, table "TDVF_SECTION.Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TdvfSectionType {
    /// 0: boot firmware volume (code).
    Bfv,
    /// 1: configuration firmware volume (variables).
    Cfv,
    /// 2: the TD hand-off block.
    TdHob,
    /// 3: temporary memory.
    TempMem,
    /// 4: permanent memory.
    PermMem,
    /// 5: payload.
    Payload,
    /// 6: payload parameters.
    PayloadParam,
    /// Any other value (kept; the section is measured by its attributes alone).
    Other(u32),
}

impl TdvfSectionType {
    /// The type from its metadata value.
    pub fn from_raw(value: u32) -> Self {
        match value {
            0 => TdvfSectionType::Bfv,
            1 => TdvfSectionType::Cfv,
            2 => TdvfSectionType::TdHob,
            3 => TdvfSectionType::TempMem,
            4 => TdvfSectionType::PermMem,
            5 => TdvfSectionType::Payload,
            6 => TdvfSectionType::PayloadParam,
            other => TdvfSectionType::Other(other),
        }
    }

    /// The metadata value.
    pub fn raw(self) -> u32 {
        match self {
            TdvfSectionType::Bfv => 0,
            TdvfSectionType::Cfv => 1,
            TdvfSectionType::TdHob => 2,
            TdvfSectionType::TempMem => 3,
            TdvfSectionType::PermMem => 4,
            TdvfSectionType::Payload => 5,
            TdvfSectionType::PayloadParam => 6,
            TdvfSectionType::Other(other) => other,
        }
    }
}

/// One TDVF section (`TDVF_SECTION`): where its bytes are in the image and where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdvfSection {
    /// Offset of the section's bytes in the image.
    pub data_offset: u32,
    /// Number of bytes in the image (the rest of `memory_size` is zero).
    pub raw_size: u32,
    /// Guest-physical base address (4 KiB aligned).
    pub memory_address: u64,
    /// Size in guest memory (a multiple of 4 KiB, at least `raw_size`).
    pub memory_size: u64,
    /// The section type.
    pub section_type: TdvfSectionType,
    /// [`TDVF_ATTR_MR_EXTEND`], [`TDVF_ATTR_PAGE_AUG`].
    pub attributes: u32,
}

impl TdvfSection {
    /// Whether `TDH.MR.EXTEND` measures the content.
    pub fn mr_extend(&self) -> bool {
        self.attributes & TDVF_ATTR_MR_EXTEND != 0
    }

    /// Whether the pages are added with `TDH.MEM.PAGE.AUG` (not part of `MRTD`).
    pub fn page_aug(&self) -> bool {
        self.attributes & TDVF_ATTR_PAGE_AUG != 0
    }
}

/// A parsed firmware image: the bytes and the footer table's entries.
#[derive(Debug, Clone)]
pub struct Ovmf<'a> {
    data: &'a [u8],
    entries: Vec<FooterEntry>,
}

fn le_u16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

fn guid_at(data: &[u8], at: usize) -> Guid {
    Guid(data[at..at + 16].try_into().expect("16 bytes"))
}

impl<'a> Ovmf<'a> {
    /// Parses the footer table of `data` (an OVMF or SVSM image). Fails when the table is
    /// missing or any length in it is inconsistent; the structures entries point to are
    /// parsed by their accessors.
    pub fn parse(data: &'a [u8]) -> Result<Self, OvmfError> {
        let need = BYTES_AFTER_FOOTER + ENTRY_HEADER_LEN;
        if data.len() < need {
            return Err(OvmfError::TooSmall {
                len: data.len(),
                need,
            });
        }
        // The footer entry's header ends where the reset vector begins.
        let footer_end = data.len() - BYTES_AFTER_FOOTER;
        let footer_guid = guid_at(data, footer_end - 16);
        if footer_guid != TABLE_FOOTER_GUID {
            return Err(OvmfError::NoFooterTable {
                offset: footer_end - 16,
                found: footer_guid,
            });
        }
        let table_len = le_u16(data, footer_end - ENTRY_HEADER_LEN);
        if usize::from(table_len) < ENTRY_HEADER_LEN || usize::from(table_len) > footer_end {
            return Err(OvmfError::TableLength {
                offset: footer_end - ENTRY_HEADER_LEN,
                len: table_len,
                available: footer_end,
            });
        }
        let table_start = footer_end - usize::from(table_len);
        let mut end = footer_end - ENTRY_HEADER_LEN;
        let mut entries: Vec<FooterEntry> = Vec::new();
        while end - table_start >= ENTRY_HEADER_LEN {
            let header = end - ENTRY_HEADER_LEN;
            let guid = guid_at(data, end - 16);
            let len = le_u16(data, header);
            let available = end - table_start;
            if usize::from(len) < ENTRY_HEADER_LEN || usize::from(len) > available {
                return Err(OvmfError::EntryLength {
                    offset: header,
                    guid,
                    len,
                    available,
                });
            }
            let offset = end - usize::from(len);
            if let Some(first) = entries.iter().find(|e| e.guid == guid) {
                return Err(OvmfError::DuplicateEntry {
                    guid,
                    first: first.offset,
                    second: offset,
                });
            }
            entries.push(FooterEntry {
                guid,
                offset,
                len: usize::from(len) - ENTRY_HEADER_LEN,
            });
            end = offset;
        }
        if end != table_start {
            return Err(OvmfError::TableRemainder {
                offset: table_start,
                len: end - table_start,
            });
        }
        Ok(Ovmf { data, entries })
    }

    /// The whole image.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The image's guest-physical address when it ends at `end` (4 GiB for OVMF).
    pub fn gpa_ending_at(&self, end: u64) -> Option<u64> {
        end.checked_sub(self.data.len() as u64)
    }

    /// The footer table's entries, from the footer backwards (the table's own order).
    pub fn entries(&self) -> &[FooterEntry] {
        &self.entries
    }

    /// The data of the entry with `guid`, if the table has one.
    pub fn entry(&self, guid: &Guid) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .find(|e| e.guid == *guid)
            .map(|e| &self.data[e.offset..e.offset + e.len])
    }

    /// The first `N` little-endian `u32` fields of an entry, or `None` without the entry.
    fn entry_u32s<const N: usize>(
        &self,
        guid: &Guid,
        what: &'static str,
    ) -> Result<Option<[u32; N]>, OvmfError> {
        let Some(entry) = self.entries.iter().find(|e| e.guid == *guid) else {
            return Ok(None);
        };
        if entry.len < 4 * N {
            return Err(OvmfError::EntryTooShort {
                guid: *guid,
                what,
                offset: entry.offset,
                len: entry.len,
                need: 4 * N,
            });
        }
        let mut out = [0u32; N];
        for (i, v) in out.iter_mut().enumerate() {
            *v = le_u32(self.data, entry.offset + 4 * i);
        }
        Ok(Some(out))
    }

    /// The SEV-ES reset EIP of the application processors (reset block), if present.
    pub fn sev_es_reset_eip(&self) -> Result<Option<u32>, OvmfError> {
        Ok(self
            .entry_u32s::<1>(&SEV_ES_RESET_BLOCK_GUID, "SEV-ES reset block")?
            .map(|[eip]| eip))
    }

    /// The SEV launch-secret area as the secret block states it (possibly `0, 0`).
    pub fn sev_secret_block(&self) -> Result<Option<GpaArea>, OvmfError> {
        Ok(self
            .entry_u32s::<2>(&SEV_SECRET_BLOCK_GUID, "SEV secret block")?
            .map(|[gpa, size]| GpaArea { gpa, size }))
    }

    /// The area for the kernel-hashes table, as the entry states it (possibly `0, 0`).
    pub fn sev_hashes_table_entry(&self) -> Result<Option<GpaArea>, OvmfError> {
        Ok(self
            .entry_u32s::<2>(&SEV_HASH_TABLE_GUID, "SEV hashes table")?
            .map(|[gpa, size]| GpaArea { gpa, size }))
    }

    /// The area for the kernel-hashes table when the build supports direct-boot hashes:
    /// `None` when the entry is missing or its GPA is 0 (how builds without support,
    /// such as `OvmfPkgX64`, fill it).
    pub fn sev_hashes_table(&self) -> Result<Option<GpaArea>, OvmfError> {
        Ok(self.sev_hashes_table_entry()?.filter(|a| a.gpa != 0))
    }

    /// The offset of the SVSM entry point inside an SVSM image (SVSM info entry).
    pub fn svsm_entry_offset(&self) -> Result<Option<u32>, OvmfError> {
        Ok(self
            .entry_u32s::<1>(&SVSM_INFO_GUID, "SVSM info")?
            .map(|[off]| off))
    }

    /// Where a metadata structure starts, from the `u32` offset-from-end in its entry.
    fn metadata_start(&self, kind: MetadataKind, guid: &Guid) -> Result<Option<usize>, OvmfError> {
        let what = match kind {
            MetadataKind::Sev => "SEV metadata offset",
            MetadataKind::Tdvf => "TDX metadata offset",
        };
        let Some([offset_from_end]) = self.entry_u32s::<1>(guid, what)? else {
            return Ok(None);
        };
        let image_len = self.data.len();
        match image_len.checked_sub(offset_from_end as usize) {
            Some(start) if offset_from_end != 0 => Ok(Some(start)),
            _ => Err(OvmfError::MetadataOffset {
                kind,
                offset_from_end,
                image_len,
            }),
        }
    }

    /// Checks a metadata header (signature, version, length) at `start`; gives the number
    /// of sections.
    fn metadata_header(
        &self,
        kind: MetadataKind,
        start: usize,
        header_len: usize,
        section_len: usize,
    ) -> Result<usize, OvmfError> {
        let available = self.data.len() - start;
        if available < header_len {
            return Err(OvmfError::MetadataLength {
                kind,
                offset: start,
                declared: 0,
                count: 0,
                available,
                need: header_len as u64,
            });
        }
        let found: [u8; 4] = self.data[start..start + 4].try_into().expect("4 bytes");
        if found != kind.signature() {
            return Err(OvmfError::MetadataSignature {
                kind,
                offset: start,
                found,
            });
        }
        let declared = le_u32(self.data, start + 4);
        let version = le_u32(self.data, start + 8);
        if version != 1 {
            return Err(OvmfError::MetadataVersion {
                kind,
                offset: start,
                version,
            });
        }
        let count = le_u32(self.data, start + 12);
        let need = header_len as u64 + u64::from(count) * section_len as u64;
        if u64::from(declared) < need || need > available as u64 {
            return Err(OvmfError::MetadataLength {
                kind,
                offset: start,
                declared,
                count,
                available,
                need,
            });
        }
        Ok(count as usize)
    }

    /// The SEV metadata sections in metadata order, or `None` without an SEV metadata entry.
    pub fn sev_metadata(&self) -> Result<Option<Vec<SevSection>>, OvmfError> {
        let kind = MetadataKind::Sev;
        let Some(start) = self.metadata_start(kind, &SEV_METADATA_GUID)? else {
            return Ok(None);
        };
        let count = self.metadata_header(kind, start, SEV_METADATA_HEADER_LEN, SEV_SECTION_LEN)?;
        let sections = (0..count)
            .map(|i| {
                let at = start + SEV_METADATA_HEADER_LEN + i * SEV_SECTION_LEN;
                SevSection::new(
                    le_u32(self.data, at),
                    le_u32(self.data, at + 4),
                    le_u32(self.data, at + 8),
                )
            })
            .collect();
        Ok(Some(sections))
    }

    /// The TDVF sections in metadata order, or `None` without a TDX metadata entry. Each
    /// section is checked: 4 KiB-aligned address and size, raw data within its memory size
    /// and within the image.
    pub fn tdvf_metadata(&self) -> Result<Option<Vec<TdvfSection>>, OvmfError> {
        let kind = MetadataKind::Tdvf;
        let Some(start) = self.metadata_start(kind, &TDX_METADATA_GUID)? else {
            return Ok(None);
        };
        let count = self.metadata_header(kind, start, TDVF_HEADER_LEN, TDVF_SECTION_LEN)?;
        let page = super::PAGE_SIZE as u64;
        let mut sections = Vec::with_capacity(count);
        for index in 0..count {
            let at = start + TDVF_HEADER_LEN + index * TDVF_SECTION_LEN;
            let section = TdvfSection {
                data_offset: le_u32(self.data, at),
                raw_size: le_u32(self.data, at + 4),
                memory_address: le_u64(self.data, at + 8),
                memory_size: le_u64(self.data, at + 16),
                section_type: TdvfSectionType::from_raw(le_u32(self.data, at + 24)),
                attributes: le_u32(self.data, at + 28),
            };
            let problem = if !section.memory_address.is_multiple_of(page) {
                Some("memory address is not 4 KiB aligned")
            } else if !section.memory_size.is_multiple_of(page) {
                Some("memory size is not a multiple of 4 KiB")
            } else if section
                .memory_address
                .checked_add(section.memory_size)
                .is_none()
            {
                Some("memory range overflows the address space")
            } else if u64::from(section.raw_size) > section.memory_size {
                Some("raw data is larger than its memory size")
            } else if u64::from(section.data_offset) + u64::from(section.raw_size)
                > self.data.len() as u64
            {
                Some("raw data runs past the end of the image")
            } else if section.attributes & !(TDVF_ATTR_MR_EXTEND | TDVF_ATTR_PAGE_AUG) != 0 {
                Some("unknown attribute bits")
            } else if section.mr_extend() && section.page_aug() {
                Some("MR_EXTEND together with PAGE_AUG")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(OvmfError::TdvfSection {
                    index,
                    section,
                    problem,
                });
            }
            sections.push(section);
        }
        Ok(Some(sections))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny image: `body` pages, then a footer table with `entries`, then 32 bytes.
    pub(crate) fn image(body: &[u8], entries: &[(Guid, Vec<u8>)]) -> Vec<u8> {
        let mut table = Vec::new();
        for (guid, data) in entries.iter().rev() {
            table.extend_from_slice(data);
            table.extend_from_slice(&((data.len() + ENTRY_HEADER_LEN) as u16).to_le_bytes());
            table.extend_from_slice(guid.bytes_le());
        }
        table.extend_from_slice(&((table.len() + ENTRY_HEADER_LEN) as u16).to_le_bytes());
        table.extend_from_slice(TABLE_FOOTER_GUID.bytes_le());
        let mut out = body.to_vec();
        out.extend_from_slice(&table);
        out.extend_from_slice(&[0xf4; BYTES_AFTER_FOOTER]);
        out
    }

    fn asev(sections: &[(u32, u32, u32)]) -> Vec<u8> {
        let mut m = b"ASEV".to_vec();
        m.extend_from_slice(&((16 + 12 * sections.len()) as u32).to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        for (gpa, size, ty) in sections {
            for v in [gpa, size, ty] {
                m.extend_from_slice(&v.to_le_bytes());
            }
        }
        m
    }

    /// An image whose SEV metadata sits at its start.
    fn with_asev(meta: Vec<u8>) -> Vec<u8> {
        let tail = 18 + 18 + 4 + 18 + 4 + 32; // footer + reset block + metadata entry + reset vector
        let total = meta.len() + tail;
        image(
            &meta,
            &[
                (SEV_ES_RESET_BLOCK_GUID, 0x80b004u32.to_le_bytes().to_vec()),
                (SEV_METADATA_GUID, (total as u32).to_le_bytes().to_vec()),
            ],
        )
    }

    #[test]
    fn guid_display_is_canonical() {
        assert_eq!(
            TABLE_FOOTER_GUID.to_string(),
            "96b582de-1fb2-45f7-baea-a366c55a082d"
        );
        assert_eq!(
            TDX_METADATA_GUID.to_string(),
            "e47a6535-984a-4798-865e-4685a7bf8ec2"
        );
        assert_eq!(TABLE_FOOTER_GUID.bytes_le()[..4], [0xde, 0x82, 0xb5, 0x96]);
    }

    #[test]
    fn parses_a_built_image() {
        let img = with_asev(asev(&[(0x800000, 0x9000, 1), (0x80d000, 0x1000, 2)]));
        let ovmf = Ovmf::parse(&img).unwrap();
        assert_eq!(ovmf.entries().len(), 2);
        assert_eq!(ovmf.sev_es_reset_eip().unwrap(), Some(0x80b004));
        assert_eq!(
            ovmf.sev_metadata().unwrap().unwrap(),
            vec![
                SevSection::new(0x800000, 0x9000, 1),
                SevSection::new(0x80d000, 0x1000, 2)
            ]
        );
        assert_eq!(ovmf.sev_hashes_table().unwrap(), None);
        assert_eq!(ovmf.tdvf_metadata().unwrap(), None);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_smaller_image_never_a_panic() {
        let img = with_asev(asev(&[(0x800000, 0x9000, 1)]));
        for cut in 0..img.len() {
            // Cutting from the end loses the footer; cutting from the front moves offsets.
            let tail = &img[cut..];
            let head = &img[..cut];
            for part in [tail, head] {
                if let Ok(o) = Ovmf::parse(part) {
                    let _ = o.sev_metadata();
                    let _ = o.sev_es_reset_eip();
                    let _ = o.tdvf_metadata();
                }
            }
        }
        assert!(matches!(
            Ovmf::parse(&img[..40]),
            Err(OvmfError::TooSmall { len: 40, need: 50 })
        ));
        assert!(matches!(
            Ovmf::parse(&img[..img.len() - 1]),
            Err(OvmfError::NoFooterTable { .. })
        ));
        // Metadata moved out of reach when the front is cut.
        assert!(matches!(
            Ovmf::parse(&img[8..]).unwrap().sev_metadata(),
            Err(OvmfError::MetadataOffset {
                kind: MetadataKind::Sev,
                ..
            })
        ));
    }

    #[test]
    fn garbled_footers_give_typed_errors() {
        let img = with_asev(asev(&[(0x800000, 0x9000, 1)]));
        let n = img.len();
        let footer_len_at = n - 32 - 18;

        let mut bad = img.clone();
        bad[n - 32 - 1] ^= 0xff; // last byte of the footer GUID
        assert!(matches!(
            Ovmf::parse(&bad),
            Err(OvmfError::NoFooterTable { .. })
        ));

        for len in [0u16, 17, u16::MAX] {
            let mut bad = img.clone();
            bad[footer_len_at..footer_len_at + 2].copy_from_slice(&len.to_le_bytes());
            assert!(
                matches!(Ovmf::parse(&bad), Err(OvmfError::TableLength { len: l, .. }) if l == len),
                "table length {len}"
            );
        }

        // The footer claims one byte more than the entries: a stray byte.
        let mut bad = img.clone();
        let len = le_u16(&img, footer_len_at) + 1;
        bad[footer_len_at..footer_len_at + 2].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(
            Ovmf::parse(&bad),
            Err(OvmfError::TableRemainder { len: 1, .. })
        ));

        // The entry nearest the footer (the reset block) with a length of 0, 17 and beyond
        // the table.
        let entry_len_at = footer_len_at - 18;
        for len in [0u16, 17, 500] {
            let mut bad = img.clone();
            bad[entry_len_at..entry_len_at + 2].copy_from_slice(&len.to_le_bytes());
            assert!(
                matches!(Ovmf::parse(&bad), Err(OvmfError::EntryLength { guid, len: l, .. }) if l == len && guid == SEV_ES_RESET_BLOCK_GUID),
                "entry length {len}: {:?}",
                Ovmf::parse(&bad)
            );
        }

        // Two entries with the same GUID.
        let dup = image(
            &[],
            &[
                (SEV_ES_RESET_BLOCK_GUID, vec![0; 4]),
                (SEV_ES_RESET_BLOCK_GUID, vec![0; 4]),
            ],
        );
        assert!(matches!(
            Ovmf::parse(&dup),
            Err(OvmfError::DuplicateEntry { .. })
        ));

        // An entry too short for its field.
        let short = image(&[], &[(SEV_ES_RESET_BLOCK_GUID, vec![0; 2])]);
        assert!(matches!(
            Ovmf::parse(&short).unwrap().sev_es_reset_eip(),
            Err(OvmfError::EntryTooShort {
                need: 4,
                len: 2,
                ..
            })
        ));
    }

    #[test]
    fn garbled_sev_metadata_gives_typed_errors() {
        let mut meta = asev(&[(0x800000, 0x9000, 1)]);
        meta[0] = b'X';
        let e = Ovmf::parse(&with_asev(meta))
            .unwrap()
            .sev_metadata()
            .unwrap_err();
        assert!(matches!(e, OvmfError::MetadataSignature { found, .. } if &found == b"XSEV"));
        assert!(e.to_string().contains("expected \"ASEV\""), "{e}");

        let mut meta = asev(&[(0x800000, 0x9000, 1)]);
        meta[8] = 2;
        assert!(matches!(
            Ovmf::parse(&with_asev(meta)).unwrap().sev_metadata(),
            Err(OvmfError::MetadataVersion { version: 2, .. })
        ));

        // A huge section count must not allocate or read past the end.
        let mut meta = asev(&[(0x800000, 0x9000, 1)]);
        meta[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Ovmf::parse(&with_asev(meta)).unwrap().sev_metadata(),
            Err(OvmfError::MetadataLength {
                count: u32::MAX,
                ..
            })
        ));

        // Declared length shorter than the sections.
        let mut meta = asev(&[(0x800000, 0x9000, 1)]);
        meta[4..8].copy_from_slice(&20u32.to_le_bytes());
        assert!(matches!(
            Ovmf::parse(&with_asev(meta)).unwrap().sev_metadata(),
            Err(OvmfError::MetadataLength { declared: 20, .. })
        ));

        // Offset 0 and an offset past the image start.
        for off in [0u32, u32::MAX] {
            let img = image(&[], &[(SEV_METADATA_GUID, off.to_le_bytes().to_vec())]);
            assert!(matches!(
                Ovmf::parse(&img).unwrap().sev_metadata(),
                Err(OvmfError::MetadataOffset { offset_from_end, .. }) if offset_from_end == off
            ));
        }
    }

    #[test]
    fn bad_tdvf_sections_are_rejected() {
        fn tdvf(section: [u64; 6]) -> Vec<u8> {
            let mut m = b"TDVF".to_vec();
            m.extend_from_slice(&48u32.to_le_bytes());
            m.extend_from_slice(&1u32.to_le_bytes());
            m.extend_from_slice(&1u32.to_le_bytes());
            let [off, raw, gpa, size, ty, attr] = section;
            m.extend_from_slice(&(off as u32).to_le_bytes());
            m.extend_from_slice(&(raw as u32).to_le_bytes());
            m.extend_from_slice(&gpa.to_le_bytes());
            m.extend_from_slice(&size.to_le_bytes());
            m.extend_from_slice(&(ty as u32).to_le_bytes());
            m.extend_from_slice(&(attr as u32).to_le_bytes());
            m
        }
        fn parse(section: [u64; 6]) -> Result<Option<Vec<TdvfSection>>, OvmfError> {
            let meta = tdvf(section);
            let total = meta.len() + 18 + 18 + 4 + 32;
            let img = image(
                &meta,
                &[(TDX_METADATA_GUID, (total as u32).to_le_bytes().to_vec())],
            );
            Ovmf::parse(&img).unwrap().tdvf_metadata()
        }
        let ok = parse([0, 0, 0x800000, 0x2000, 3, 0]).unwrap().unwrap();
        assert_eq!(ok[0].section_type, TdvfSectionType::TempMem);
        for (section, problem) in [
            (
                [0, 0, 0x800001, 0x2000, 3, 0],
                "memory address is not 4 KiB aligned",
            ),
            (
                [0, 0, 0x800000, 0x2001, 3, 0],
                "memory size is not a multiple of 4 KiB",
            ),
            (
                [0, 0, u64::MAX - 0xfff, 0x2000, 3, 0],
                "memory range overflows the address space",
            ),
            (
                [0, 0x3000, 0x800000, 0x2000, 0, 1],
                "raw data is larger than its memory size",
            ),
            (
                [0x10, 0x1000, 0x800000, 0x2000, 0, 1],
                "raw data runs past the end of the image",
            ),
            ([0, 0, 0x800000, 0x2000, 3, 4], "unknown attribute bits"),
        ] {
            match parse(section) {
                Err(OvmfError::TdvfSection {
                    index: 0,
                    problem: p,
                    ..
                }) => assert_eq!(p, problem),
                other => panic!("{section:x?}: {other:?}"),
            }
        }
    }
}
