//! The SEV-SNP certificate table: configfs-tsm's `auxblob` for provider `sev_guest`, and the
//! certificate buffer of `SNP_GET_EXT_REPORT`.
//!
//! Format (GHCB specification 56421, MSG_REPORT_REQ / extended guest request): a table of
//! 24-byte entries `{ guid: [u8; 16], offset: u32 LE, length: u32 LE }` ended by an all-zero
//! entry, followed by the certificates. Offsets count from the start of the table. The GUID
//! bytes are the GUID text's hex digits in order (as AMD's tools, the sev crate and
//! go-sev-guest write them).
//!
//! The parser never panics and never trusts an offset or length: every entry must lie
//! inside the blob, after the table, and apart from every other entry.

use super::error::{PlatformError, PlatformErrorKind};

const ENTRY_LEN: usize = 24;

/// The certificates AMD defines a GUID for, with the name we give the extracted file.
const KNOWN: [([u8; 16], &str); 5] = [
    // 63da758d-e664-4564-adc5-f4b93be8accd
    (
        guid(0x63da758d, 0xe664, 0x4564, 0xadc5, 0xf4b93be8accd),
        "vcek.der",
    ),
    // a8074bc2-a25a-483e-aae6-39c045a0b8a1
    (
        guid(0xa8074bc2, 0xa25a, 0x483e, 0xaae6, 0x39c045a0b8a1),
        "vlek.der",
    ),
    // 4ab7b379-bbac-4fe4-a02f-05aef327c782
    (
        guid(0x4ab7b379, 0xbbac, 0x4fe4, 0xa02f, 0x05aef327c782),
        "ask.der",
    ),
    // c0b406a4-a803-4952-9743-3fb6014cd0ae
    (
        guid(0xc0b406a4, 0xa803, 0x4952, 0x9743, 0x3fb6014cd0ae),
        "ark.der",
    ),
    // 92f81bc3-5811-4d3d-97ff-d19f88dc67ea (the ARK's CRL, as the sev crate names it)
    (
        guid(0x92f81bc3, 0x5811, 0x4d3d, 0x97ff, 0xd19f88dc67ea),
        "crl.der",
    ),
];

/// The 16 table bytes of a GUID written `a-b-c-d-e`.
const fn guid(a: u32, b: u16, c: u16, d: u16, e: u64) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    let d = d.to_be_bytes();
    let e = e.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], e[2], e[3], e[4], e[5], e[6],
        e[7],
    ]
}

fn guid_text(g: &[u8; 16]) -> String {
    let h: Vec<String> = g.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// The file name for a certificate with this GUID: `vcek.der`, `ask.der`, ... or
/// `cert-<guid>.bin` for a GUID AMD does not define.
pub fn certificate_name(g: &[u8; 16]) -> String {
    KNOWN
        .iter()
        .find(|(known, _)| known == g)
        .map(|(_, name)| (*name).to_owned())
        .unwrap_or_else(|| format!("cert-{}.bin", guid_text(g)))
}

/// Split a certificate table into `(name, bytes)` in table order. An empty blob, or one
/// whose first entry is the terminator, holds no certificates; entries of length zero are
/// skipped (hosts use them for slots they did not fill). `source` names the blob in errors.
pub fn parse_cert_table(
    blob: &[u8],
    source: &str,
) -> Result<Vec<(String, Vec<u8>)>, PlatformError> {
    if blob.is_empty() {
        return Ok(Vec::new());
    }
    let err = |kind, detail: String| PlatformError::new(kind, format!("{source}: {detail}"));

    // Read entries up to the terminator.
    let mut entries: Vec<([u8; 16], usize, usize)> = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(raw) = blob.get(pos..pos + ENTRY_LEN) else {
            return Err(err(
                PlatformErrorKind::CertTableTruncated,
                format!(
                    "{} bytes end inside entry {} (no all-zero terminator)",
                    blob.len(),
                    entries.len()
                ),
            ));
        };
        if raw.iter().all(|b| *b == 0) {
            break;
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(&raw[..16]);
        let offset = u32::from_le_bytes([raw[16], raw[17], raw[18], raw[19]]) as usize;
        let length = u32::from_le_bytes([raw[20], raw[21], raw[22], raw[23]]) as usize;
        entries.push((g, offset, length));
        pos += ENTRY_LEN;
    }
    let table_end = pos + ENTRY_LEN;

    let mut out = Vec::with_capacity(entries.len());
    let mut taken: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, entry index)
    for (i, (g, offset, length)) in entries.iter().enumerate() {
        let name = certificate_name(g);
        if entries[..i].iter().any(|(other, _, _)| other == g) {
            return Err(err(
                PlatformErrorKind::CertTableDuplicate,
                format!("entry {i} repeats GUID {} ({name})", guid_text(g)),
            ));
        }
        if *length == 0 {
            continue;
        }
        // u32 + u32 cannot overflow usize on 64-bit, but stay exact on 32-bit too.
        let end = offset.checked_add(*length);
        let in_range = matches!(end, Some(end) if *offset >= table_end && end <= blob.len());
        let Some(end) = end.filter(|_| in_range) else {
            return Err(err(
                PlatformErrorKind::CertTableOutOfRange,
                format!(
                    "entry {i} ({name}) at offset {offset} length {length} is outside the \
                     certificate area {table_end}..{}",
                    blob.len()
                ),
            ));
        };
        if let Some((_, _, j)) = taken.iter().find(|(s, e, _)| *offset < *e && *s < end) {
            return Err(err(
                PlatformErrorKind::CertTableOverlap,
                format!("entry {i} ({name}) overlaps entry {j}"),
            ));
        }
        taken.push((*offset, end, i));
        out.push((name, blob[*offset..end].to_vec()));
    }
    Ok(out)
}

/// Build a certificate table (for tests and fakes): entries in the order given, then the
/// terminator, then the certificates.
#[cfg(test)]
pub(crate) fn build_cert_table(certs: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let mut offset = (certs.len() + 1) * ENTRY_LEN;
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (g, bytes) in certs {
        table.extend_from_slice(g);
        table.extend_from_slice(&(offset as u32).to_le_bytes());
        table.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        data.extend_from_slice(bytes);
        offset += bytes.len();
    }
    table.extend_from_slice(&[0; ENTRY_LEN]);
    table.extend_from_slice(&data);
    table
}

#[cfg(test)]
pub(crate) const VCEK_GUID: [u8; 16] = KNOWN[0].0;
#[cfg(test)]
pub(crate) const ASK_GUID: [u8; 16] = KNOWN[2].0;
#[cfg(test)]
pub(crate) const ARK_GUID: [u8; 16] = KNOWN[3].0;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(g: [u8; 16], offset: u32, length: u32) -> Vec<u8> {
        let mut e = g.to_vec();
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&length.to_le_bytes());
        e
    }

    #[test]
    fn guid_bytes_are_the_text_in_order() {
        // Pinned wire bytes, not just a round trip through our own helper.
        assert_eq!(
            VCEK_GUID,
            [
                0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8,
                0xac, 0xcd
            ]
        );
        assert_eq!(guid_text(&ARK_GUID), "c0b406a4-a803-4952-9743-3fb6014cd0ae");
        assert_eq!(guid_text(&ASK_GUID), "4ab7b379-bbac-4fe4-a02f-05aef327c782");
        assert_eq!(
            guid_text(&KNOWN[1].0),
            "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
        );
        assert_eq!(
            guid_text(&KNOWN[4].0),
            "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"
        );
    }

    #[test]
    fn parses_a_table_in_order_and_names_unknown_guids() {
        let other = [0x11; 16];
        let blob = build_cert_table(&[
            (VCEK_GUID, b"vcek-bytes"),
            (ASK_GUID, b"ask"),
            (ARK_GUID, b"ark!"),
            (other, b"x"),
        ]);
        let certs = parse_cert_table(&blob, "auxblob").unwrap();
        let names: Vec<&str> = certs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "vcek.der",
                "ask.der",
                "ark.der",
                "cert-11111111-1111-1111-1111-111111111111.bin"
            ]
        );
        assert_eq!(certs[0].1, b"vcek-bytes");
        assert_eq!(certs[2].1, b"ark!");
    }

    #[test]
    fn empty_and_zero_filled_blobs_hold_no_certificates() {
        assert!(parse_cert_table(&[], "x").unwrap().is_empty());
        // What SNP_GET_EXT_REPORT leaves when the host supplies nothing: zeroed pages.
        assert!(parse_cert_table(&[0; 4096], "x").unwrap().is_empty());
    }

    #[test]
    fn zero_length_entries_are_skipped() {
        let mut blob = entry(VCEK_GUID, 0, 0);
        blob.extend(entry([0; 16], 0, 0));
        assert!(parse_cert_table(&blob, "x").unwrap().is_empty());
    }

    #[test]
    fn missing_terminator_is_truncated() {
        let blob = entry(VCEK_GUID, 48, 1);
        let e = parse_cert_table(&blob, "auxblob").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableTruncated);
        assert!(e.detail().starts_with("auxblob: "), "{e}");
        let e = parse_cert_table(&[1, 2, 3], "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableTruncated);
    }

    #[test]
    fn entries_outside_the_blob_or_inside_the_table_are_out_of_range() {
        let mut blob = entry(VCEK_GUID, 48, 10);
        blob.extend(entry([0; 16], 0, 0));
        blob.extend([7; 9]); // one byte short
        let e = parse_cert_table(&blob, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableOutOfRange);

        let mut blob = entry(VCEK_GUID, 0, 10); // points at the table itself
        blob.extend(entry([0; 16], 0, 0));
        blob.extend([7; 10]);
        let e = parse_cert_table(&blob, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableOutOfRange);

        let mut blob = entry(VCEK_GUID, u32::MAX, u32::MAX);
        blob.extend(entry([0; 16], 0, 0));
        let e = parse_cert_table(&blob, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableOutOfRange);
    }

    #[test]
    fn overlapping_and_duplicate_entries_are_rejected() {
        let mut blob = entry(VCEK_GUID, 72, 10);
        blob.extend(entry(ASK_GUID, 80, 10));
        blob.extend(entry([0; 16], 0, 0));
        blob.extend([7; 20]);
        let e = parse_cert_table(&blob, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableOverlap);

        let mut blob = entry(VCEK_GUID, 72, 5);
        blob.extend(entry(VCEK_GUID, 77, 5));
        blob.extend(entry([0; 16], 0, 0));
        blob.extend([7; 10]);
        let e = parse_cert_table(&blob, "x").unwrap_err();
        assert_eq!(e.kind(), PlatformErrorKind::CertTableDuplicate);
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        // A deterministic sweep standing in for a fuzz run: random tables (xorshift), plus
        // every truncation of a valid one.
        let valid = build_cert_table(&[(VCEK_GUID, b"abc"), (ASK_GUID, b"defg")]);
        for len in 0..=valid.len() {
            let _ = parse_cert_table(&valid[..len], "x");
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = (next() % 200) as usize;
            let mut blob: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Small offsets and lengths so entries often land in range.
            for chunk in blob.chunks_mut(ENTRY_LEN) {
                if chunk.len() == ENTRY_LEN && next() % 4 == 0 {
                    chunk.fill(0); // a terminator
                } else if chunk.len() == ENTRY_LEN {
                    chunk[16] %= 200;
                    chunk[17..20].fill(0);
                    chunk[20] %= 50;
                    chunk[21..24].fill(0);
                }
            }
            let _ = parse_cert_table(&blob, "x");
        }
    }
}
