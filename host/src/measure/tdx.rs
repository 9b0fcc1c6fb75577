//! TDX measurements: `MRTD` from the firmware's TDVF metadata, RTMR replay of a CC event
//! log, and the measurement fields of a TD quote.
//!
//! `MRTD` is one running SHA-384 (not a chain of digests) over what the TDX module
//! absorbs while the VMM builds the TD (Intel TDX module spec, `TDH.MEM.PAGE.ADD` and
//! `TDH.MR.EXTEND`):
//!
//! * per page added: a 128-byte block, `"MEM.PAGE.ADD"` zero-padded to 16 bytes, the
//!   page's GPA (`u64` LE), zeros;
//! * per 256-byte chunk extended: a 128-byte block, `"MR.EXTEND"` zero-padded to 16 bytes,
//!   the chunk's GPA, zeros; then the chunk's 256 bytes.
//!
//! The VMM goes through the TDVF sections in metadata order; every page of a section
//! without `PAGE_AUG` is added, and the pages of `MR_EXTEND` sections are extended in 16
//! chunks each. Where the section's raw data is shorter than its memory, the rest is zero.
//! VMMs differ in the order ([`PageAddOrder`]).

use sha2::{Digest as _, Sha384};
use thiserror::Error;

use super::ovmf::{Ovmf, OvmfError, TdvfSection, TDX_METADATA_GUID};
use super::{sha384, Sha384Digest, PAGE_SIZE};

const MR_EXTEND_CHUNK: usize = 256;

/// The most pages `MRTD` covers here (4 GiB); real TDVF sections are a few MiB.
pub const MAX_MRTD_PAGES: u64 = 1 << 20;

/// The order in which the VMM adds and extends a section's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageAddOrder {
    /// Per page: add it, then extend it (QEMU 9 and later with upstream KVM).
    SinglePass,
    /// Per section: add all its pages, then extend all of them (older QEMU 8.x TDX trees).
    TwoPass,
}

/// Why a TDX measurement cannot be computed or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TdxError {
    /// The firmware itself is malformed.
    #[error(transparent)]
    Ovmf(#[from] OvmfError),
    /// The firmware cannot boot a TD.
    #[error("firmware has no TDX metadata entry ({TDX_METADATA_GUID}) in its footer table")]
    NoTdvfMetadata,
    /// The sections add more pages than [`MAX_MRTD_PAGES`].
    #[error("TDVF sections add {pages} pages; at most {MAX_MRTD_PAGES} are supported")]
    TooManyPages { pages: u64 },
    /// An event for a measurement register other than RTMR0..3.
    #[error("event {index} extends RTMR{imr}; only RTMR0..3 exist")]
    RtmrIndex { index: usize, imr: u32 },
    /// The quote is too short for its header and TD report body.
    #[error("quote is {len} bytes; its header and TD report body need {need}")]
    QuoteTooShort { len: usize, need: usize },
    /// A quote version other than 4 or 5.
    #[error("quote version {version}; only versions 4 and 5 are read")]
    QuoteVersion { version: u16 },
    /// Not a TDX quote.
    #[error("quote TEE type {tee_type:#x}; TDX is 0x81")]
    QuoteTeeType { tee_type: u32 },
    /// A version 5 quote whose body is not a TD report.
    #[error(
        "quote v5 body type {body_type}; only TD report bodies (2: TDX 1.0, 3: TDX 1.5) are read"
    )]
    QuoteBodyType { body_type: u16 },
}

/// The content of page `page` (from the section start) as the TD sees it at launch.
fn section_page(fw: &[u8], s: &TdvfSection, page: u64) -> [u8; PAGE_SIZE] {
    let mut out = [0u8; PAGE_SIZE];
    let raw = s.raw_size as usize;
    let start = page as usize * PAGE_SIZE;
    if start < raw {
        let n = (raw - start).min(PAGE_SIZE);
        let at = s.data_offset as usize + start;
        out[..n].copy_from_slice(&fw[at..at + n]);
    }
    out
}

fn page_add(h: &mut Sha384, gpa: u64) {
    let mut block = [0u8; 128];
    block[..12].copy_from_slice(b"MEM.PAGE.ADD");
    block[16..24].copy_from_slice(&gpa.to_le_bytes());
    h.update(block);
}

fn mr_extend(h: &mut Sha384, gpa: u64, page: &[u8; PAGE_SIZE]) {
    for (i, chunk) in page.chunks_exact(MR_EXTEND_CHUNK).enumerate() {
        let mut block = [0u8; 128];
        block[..9].copy_from_slice(b"MR.EXTEND");
        block[16..24].copy_from_slice(&(gpa + (i * MR_EXTEND_CHUNK) as u64).to_le_bytes());
        h.update(block);
        h.update(chunk);
    }
}

/// `MRTD` of a TD built from `ovmf` with the VMM's page order.
pub fn mrtd(ovmf: &Ovmf, order: PageAddOrder) -> Result<Sha384Digest, TdxError> {
    let sections = ovmf.tdvf_metadata()?.ok_or(TdxError::NoTdvfMetadata)?;
    let fw = ovmf.data();
    let page_size = PAGE_SIZE as u64;
    let pages: u64 = sections.iter().map(|s| s.memory_size / page_size).sum();
    if pages > MAX_MRTD_PAGES {
        return Err(TdxError::TooManyPages { pages });
    }
    let mut h = Sha384::new();
    // Sections were checked when parsed: aligned, raw data inside the image and its memory.
    for s in &sections {
        let count = s.memory_size / page_size;
        let gpa = |page: u64| s.memory_address + page * page_size;
        let add = |h: &mut Sha384, page| {
            if !s.page_aug() {
                page_add(h, gpa(page));
            }
        };
        let extend = |h: &mut Sha384, page| {
            if s.mr_extend() {
                mr_extend(h, gpa(page), &section_page(fw, s, page));
            }
        };
        match order {
            PageAddOrder::SinglePass => {
                for page in 0..count {
                    add(&mut h, page);
                    extend(&mut h, page);
                }
            }
            PageAddOrder::TwoPass => {
                for page in 0..count {
                    add(&mut h, page);
                }
                for page in 0..count {
                    extend(&mut h, page);
                }
            }
        }
    }
    Ok(h.finalize().into())
}

/// One event of a CC event log, reduced to what replay needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtmrEvent {
    /// The RTMR index, 0..=3 (dstack's `imr`; in a TCG CCEL the MR index is this plus 1).
    pub rtmr: u32,
    /// The SHA-384 digest extended into it.
    pub digest: Sha384Digest,
}

/// `RTMR := SHA-384(RTMR || digest)` (`TDG.MR.RTMR.EXTEND`).
pub fn rtmr_extend(rtmr: &Sha384Digest, digest: &Sha384Digest) -> Sha384Digest {
    let mut buf = [0u8; 96];
    buf[..48].copy_from_slice(rtmr);
    buf[48..].copy_from_slice(digest);
    sha384(&buf)
}

/// RTMR0..3 after replaying `events` in order from all-zero registers.
pub fn replay_rtmrs<'a>(
    events: impl IntoIterator<Item = &'a RtmrEvent>,
) -> Result<[Sha384Digest; 4], TdxError> {
    let mut rtmrs = [[0u8; 48]; 4];
    for (index, e) in events.into_iter().enumerate() {
        let r = rtmrs
            .get_mut(e.rtmr as usize)
            .ok_or(TdxError::RtmrIndex { index, imr: e.rtmr })?;
        *r = rtmr_extend(r, &e.digest);
    }
    Ok(rtmrs)
}

/// The digest dstack extends into RTMR3 for a runtime event (its log carries no digest
/// for these): `SHA-384(le32(event_type) || ":" || name || ":" || payload)`.
pub fn dstack_event_digest(event_type: u32, name: &str, payload: &[u8]) -> Sha384Digest {
    let mut buf = Vec::with_capacity(4 + 2 + name.len() + payload.len());
    buf.extend_from_slice(&event_type.to_le_bytes());
    buf.push(b':');
    buf.extend_from_slice(name.as_bytes());
    buf.push(b':');
    buf.extend_from_slice(payload);
    sha384(&buf)
}

/// The measurement fields of a TD report body, as a quote carries them. Read only: a quote
/// is verified by `veritee-attestation`, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdMeasurements {
    /// `MRTD`: the initial contents of the TD.
    pub mrtd: Sha384Digest,
    /// `MRCONFIGID`.
    pub mr_config_id: Sha384Digest,
    /// `MROWNER`.
    pub mr_owner: Sha384Digest,
    /// `MROWNERCONFIG`.
    pub mr_owner_config: Sha384Digest,
    /// `RTMR0..3`.
    pub rtmrs: [Sha384Digest; 4],
    /// `REPORTDATA`.
    pub report_data: [u8; 64],
}

/// Quote header length (versions 4 and 5).
const QUOTE_HEADER_LEN: usize = 48;
/// TD report body (TDX 1.0) length; TDX 1.5 appends fields after it.
const TD_REPORT_BODY_LEN: usize = 584;

/// Offsets inside the TD report body (`TEE_TCB_SVN` 16, `MRSEAM` 48, `MRSIGNERSEAM` 48,
/// `SEAMATTRIBUTES` 8, `TDATTRIBUTES` 8, `XFAM` 8, then the fields below).
mod body {
    pub const MRTD: usize = 136;
    pub const MR_CONFIG_ID: usize = 184;
    pub const MR_OWNER: usize = 232;
    pub const MR_OWNER_CONFIG: usize = 280;
    pub const RTMR0: usize = 328;
    pub const REPORT_DATA: usize = 520;
}

/// The measurement fields of a version 4 or 5 TDX quote.
pub fn quote_measurements(quote: &[u8]) -> Result<TdMeasurements, TdxError> {
    let short = |need| TdxError::QuoteTooShort {
        len: quote.len(),
        need,
    };
    if quote.len() < QUOTE_HEADER_LEN {
        return Err(short(QUOTE_HEADER_LEN));
    }
    let version = u16::from_le_bytes([quote[0], quote[1]]);
    let tee_type = u32::from_le_bytes(quote[4..8].try_into().expect("4 bytes"));
    let start = match version {
        4 => QUOTE_HEADER_LEN,
        5 => {
            // v5: u16 body type and u32 body size precede the body.
            if quote.len() < QUOTE_HEADER_LEN + 6 {
                return Err(short(QUOTE_HEADER_LEN + 6));
            }
            let body_type = u16::from_le_bytes([quote[48], quote[49]]);
            if !matches!(body_type, 2 | 3) {
                return Err(TdxError::QuoteBodyType { body_type });
            }
            QUOTE_HEADER_LEN + 6
        }
        _ => return Err(TdxError::QuoteVersion { version }),
    };
    if tee_type != 0x81 {
        return Err(TdxError::QuoteTeeType { tee_type });
    }
    let b = quote
        .get(start..start + TD_REPORT_BODY_LEN)
        .ok_or(short(start + TD_REPORT_BODY_LEN))?;
    let mr = |at: usize| -> Sha384Digest { b[at..at + 48].try_into().expect("48 bytes") };
    Ok(TdMeasurements {
        mrtd: mr(body::MRTD),
        mr_config_id: mr(body::MR_CONFIG_ID),
        mr_owner: mr(body::MR_OWNER),
        mr_owner_config: mr(body::MR_OWNER_CONFIG),
        rtmrs: [0, 1, 2, 3].map(|i| mr(body::RTMR0 + 48 * i)),
        report_data: b[body::REPORT_DATA..body::REPORT_DATA + 64]
            .try_into()
            .expect("64 bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_rejects_a_fifth_register() {
        let events = [
            RtmrEvent {
                rtmr: 3,
                digest: [1; 48],
            },
            RtmrEvent {
                rtmr: 4,
                digest: [1; 48],
            },
        ];
        assert_eq!(
            replay_rtmrs(&events),
            Err(TdxError::RtmrIndex { index: 1, imr: 4 })
        );
        let r = replay_rtmrs(&events[..1]).unwrap();
        assert_eq!(r[3], rtmr_extend(&[0; 48], &[1; 48]));
        assert_eq!(r[0], [0; 48]);
    }

    #[test]
    fn quote_header_checks() {
        let mut q = vec![0u8; 48 + 584];
        q[0] = 4;
        q[4] = 0x81;
        q[48 + body::MRTD] = 0xaa;
        q[48 + body::RTMR0 + 48 * 3] = 0xbb;
        let m = quote_measurements(&q).unwrap();
        assert_eq!(m.mrtd[0], 0xaa);
        assert_eq!(m.rtmrs[3][0], 0xbb);
        assert_eq!(
            quote_measurements(&q[..600]),
            Err(TdxError::QuoteTooShort {
                len: 600,
                need: 632
            })
        );
        assert_eq!(
            quote_measurements(&q[..10]),
            Err(TdxError::QuoteTooShort { len: 10, need: 48 })
        );
        q[4] = 0;
        assert_eq!(
            quote_measurements(&q),
            Err(TdxError::QuoteTeeType { tee_type: 0 })
        );
        q[0] = 3;
        assert_eq!(
            quote_measurements(&q),
            Err(TdxError::QuoteVersion { version: 3 })
        );
        let mut v5 = vec![0u8; 54 + 648];
        v5[0] = 5;
        v5[4] = 0x81;
        v5[48] = 3;
        v5[54 + body::MRTD] = 0xcc;
        assert_eq!(quote_measurements(&v5).unwrap().mrtd[0], 0xcc);
        v5[48] = 1;
        assert_eq!(
            quote_measurements(&v5),
            Err(TdxError::QuoteBodyType { body_type: 1 })
        );
    }
}
