//! The SEV hashes table: what QEMU writes into guest memory for a direct (`-kernel`) boot
//! with `kernel-hashes=on`, so that the launch measurement covers kernel, initrd and
//! command line, and OVMF can check the files it loads against it.
//!
//! Layout (QEMU `target/i386/sev.c`, all little-endian, packed): a header GUID and `u16`
//! length, then three entries of GUID, `u16` length (50) and SHA-256, in the order command
//! line, initrd, kernel; 168 bytes, zero-padded to a multiple of 16 (176).

use super::ovmf::Guid;
use super::{sha256, Sha256Digest, PAGE_SIZE};

const TABLE_GUID: Guid = Guid::new(
    0x9438d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
const KERNEL_GUID: Guid = Guid::new(
    0x4de79437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);
const INITRD_GUID: Guid = Guid::new(
    0x44baf731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
const CMDLINE_GUID: Guid = Guid::new(
    0x97d02dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);

const ENTRY_LEN: usize = 16 + 2 + 32;
/// The table's own length field: header plus three entries.
const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// The bytes QEMU writes: the table padded to 16 bytes.
pub const PADDED_TABLE_LEN: usize = (TABLE_LEN + 15) & !15;

/// The three SHA-256 digests of a direct boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the kernel file as given to `-kernel`.
    pub kernel: Sha256Digest,
    /// SHA-256 of the initrd file (of the empty string without `-initrd`).
    pub initrd: Sha256Digest,
    /// SHA-256 of the command line with one terminating NUL ([`cmdline_hash`]).
    pub cmdline: Sha256Digest,
}

/// The hash QEMU records for `-append`: SHA-256 of the UTF-8 bytes and one NUL (just the
/// NUL without `-append`). Callers that trim the command line (dstack does) trim first.
pub fn cmdline_hash(append: Option<&str>) -> Sha256Digest {
    let mut bytes = append.unwrap_or("").as_bytes().to_vec();
    bytes.push(0);
    sha256(&bytes)
}

impl KernelHashes {
    /// The digests of the files as QEMU reads them.
    pub fn from_contents(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> Self {
        KernelHashes {
            kernel: sha256(kernel),
            initrd: sha256(initrd.unwrap_or(&[])),
            cmdline: cmdline_hash(append),
        }
    }

    /// The padded table, as placed in guest memory.
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        t[..16].copy_from_slice(TABLE_GUID.bytes_le());
        t[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        let entries = [
            (CMDLINE_GUID, &self.cmdline),
            (INITRD_GUID, &self.initrd),
            (KERNEL_GUID, &self.kernel),
        ];
        for (i, (guid, hash)) in entries.into_iter().enumerate() {
            let at = 18 + i * ENTRY_LEN;
            t[at..at + 16].copy_from_slice(guid.bytes_le());
            t[at + 16..at + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            t[at + 18..at + ENTRY_LEN].copy_from_slice(hash);
        }
        t
    }

    /// A zero page with the padded table at `offset`; `None` when it would not fit.
    pub fn page(&self, offset: usize) -> Option<Box<[u8; PAGE_SIZE]>> {
        let end = offset
            .checked_add(PADDED_TABLE_LEN)
            .filter(|&e| e <= PAGE_SIZE)?;
        let mut page = Box::new([0u8; PAGE_SIZE]);
        page[offset..end].copy_from_slice(&self.table());
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout() {
        assert_eq!(TABLE_LEN, 168);
        assert_eq!(PADDED_TABLE_LEN, 176);
        let h = KernelHashes::from_contents(b"", None, None);
        let t = h.table();
        assert_eq!(&t[..4], &[0x06, 0xd6, 0x38, 0x94]);
        assert_eq!(&t[16..18], &[168, 0]);
        assert_eq!(&t[18 + 18..18 + 50], &cmdline_hash(None));
        assert_eq!(&t[18 + 50 + 18..18 + 100], &sha256(b""));
        assert_eq!(&t[168..], &[0; 8]);
        assert_eq!(cmdline_hash(None), sha256(b"\0"));
        assert_eq!(cmdline_hash(Some("a b")), sha256(b"a b\0"));
        assert!(h.page(PAGE_SIZE - 176).is_some());
        assert!(h.page(PAGE_SIZE - 175).is_none());
        assert!(h.page(usize::MAX).is_none());
    }
}
