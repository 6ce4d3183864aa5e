//! The superblock.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §3 "The Superblock": 96 bytes at offset 0, little-endian. Its fields are
//! only known once every table is written, so the writer reserves the space
//! and fills it in last. [`Superblock::decode`] is the reader's side: it
//! checks every field that can be checked without the rest of the image.

/// Size of the superblock on disk.
pub(crate) const SUPERBLOCK_SIZE: u64 = 96;
pub(crate) const MAGIC: u32 = 0x7371_7368;
/// "Table absent" marker for the xattr, fragment and export table fields.
pub(crate) const NO_TABLE: u64 = u64::MAX;

/// Superblock flag bits (§3, flags table).
pub(crate) mod flags {
    pub const UNCOMPRESSED_INODES: u16 = 0x0001;
    pub const UNCOMPRESSED_DATA: u16 = 0x0002;
    pub const UNCOMPRESSED_FRAGMENTS: u16 = 0x0008;
    pub const ALWAYS_FRAGMENTS: u16 = 0x0020;
    pub const DUPLICATES: u16 = 0x0040;
    pub const EXPORTABLE: u16 = 0x0080;
    pub const NO_XATTRS: u16 = 0x0200;
    pub const COMPRESSOR_OPTIONS: u16 = 0x0400;
    pub const UNCOMPRESSED_IDS: u16 = 0x0800;
}

/// Smallest and largest block size the format allows (§3: 4 KiB to 1 MiB).
pub(crate) const MIN_BLOCK: u32 = 4096;
pub(crate) const MAX_BLOCK: u32 = 1 << 20;

/// Field values of the superblock, named as in the format description.
#[derive(Debug, Clone)]
pub(crate) struct Superblock {
    pub inode_count: u32,
    pub modification_time: u32,
    pub block_size: u32,
    pub fragment_entry_count: u32,
    pub compression_id: u16,
    pub flags: u16,
    pub id_count: u16,
    pub root_inode_ref: u64,
    pub bytes_used: u64,
    pub id_table_start: u64,
    pub xattr_id_table_start: u64,
    pub inode_table_start: u64,
    pub directory_table_start: u64,
    pub fragment_table_start: u64,
    pub export_table_start: u64,
}

impl Superblock {
    /// The 96 on-disk bytes.
    pub(crate) fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE as usize] {
        let mut b = Vec::with_capacity(SUPERBLOCK_SIZE as usize);
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&self.inode_count.to_le_bytes());
        b.extend_from_slice(&self.modification_time.to_le_bytes());
        b.extend_from_slice(&self.block_size.to_le_bytes());
        b.extend_from_slice(&self.fragment_entry_count.to_le_bytes());
        b.extend_from_slice(&self.compression_id.to_le_bytes());
        let block_log = self.block_size.trailing_zeros() as u16;
        b.extend_from_slice(&block_log.to_le_bytes());
        b.extend_from_slice(&self.flags.to_le_bytes());
        b.extend_from_slice(&self.id_count.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes()); // version major
        b.extend_from_slice(&0u16.to_le_bytes()); // version minor
        for v in [
            self.root_inode_ref,
            self.bytes_used,
            self.id_table_start,
            self.xattr_id_table_start,
            self.inode_table_start,
            self.directory_table_start,
            self.fragment_table_start,
            self.export_table_start,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let mut out = [0u8; SUPERBLOCK_SIZE as usize];
        out.copy_from_slice(&b);
        out
    }

    /// Reads the 96 bytes at offset 0, checking what §3 requires: the magic,
    /// version 4.0, a power-of-two block size of 4 KiB to 1 MiB whose log is
    /// `block_log`, and a root inode reference whose offset lies inside a
    /// metadata block. Offsets against the file are checked by the reader.
    pub(crate) fn decode(b: &[u8; SUPERBLOCK_SIZE as usize]) -> Result<Superblock, String> {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let magic = u32_at(0);
        if magic != MAGIC {
            return Err(format!("magic {magic:#010x} is not hsqs"));
        }
        let (major, minor) = (u16_at(28), u16_at(30));
        if (major, minor) != (4, 0) {
            return Err(format!(
                "version {major}.{minor} (only SquashFS 4.0 is read)"
            ));
        }
        let block_size = u32_at(12);
        let block_log = u16_at(22);
        if !block_size.is_power_of_two() || !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) {
            return Err(format!(
                "block size {block_size} is not a power of two from 4 KiB to 1 MiB"
            ));
        }
        if u32::from(block_log) != block_size.trailing_zeros() {
            return Err(format!(
                "block_log {block_log} does not match block size {block_size}"
            ));
        }
        let sb = Superblock {
            inode_count: u32_at(4),
            modification_time: u32_at(8),
            block_size,
            fragment_entry_count: u32_at(16),
            compression_id: u16_at(20),
            flags: u16_at(24),
            id_count: u16_at(26),
            root_inode_ref: u64_at(32),
            bytes_used: u64_at(40),
            id_table_start: u64_at(48),
            xattr_id_table_start: u64_at(56),
            inode_table_start: u64_at(64),
            directory_table_start: u64_at(72),
            fragment_table_start: u64_at(80),
            export_table_start: u64_at(88),
        };
        if sb.root_inode_ref & 0xFFFF >= super::metadata::METADATA_SIZE as u64 {
            return Err(format!(
                "root inode reference {:#x} points past the end of a metadata block",
                sb.root_inode_ref
            ));
        }
        Ok(sb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            inode_count: 3,
            modification_time: 7,
            block_size: 131072,
            fragment_entry_count: 1,
            compression_id: 1,
            flags: flags::NO_XATTRS,
            id_count: 1,
            root_inode_ref: 0x20_0040,
            bytes_used: 4000,
            id_table_start: 3990,
            xattr_id_table_start: NO_TABLE,
            inode_table_start: 500,
            directory_table_start: 900,
            fragment_table_start: 3900,
            export_table_start: NO_TABLE,
        }
    }

    #[test]
    fn decode_reads_what_encode_wrote() {
        let back = Superblock::decode(&sample().to_bytes()).unwrap();
        assert_eq!(back.to_bytes(), sample().to_bytes());
    }

    #[test]
    fn decode_refuses_each_bad_field_by_name() {
        let bad = |at: usize, bytes: &[u8], want: &str| {
            let mut b = sample().to_bytes();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            let err = Superblock::decode(&b).unwrap_err();
            assert!(err.contains(want), "{err}");
        };
        bad(0, b"hsqt", "magic");
        bad(28, &3u16.to_le_bytes(), "version 3.0");
        bad(12, &(3u32 << 16).to_le_bytes(), "block size");
        bad(12, &(2u32 << 20).to_le_bytes(), "block size");
        bad(22, &16u16.to_le_bytes(), "block_log 16");
        bad(32, &0x2000u64.to_le_bytes(), "root inode reference");
    }
}
