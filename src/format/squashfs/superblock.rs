//! The superblock.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §3 "The Superblock": 96 bytes at offset 0, little-endian. Its fields are
//! only known once every table is written, so the writer reserves the space
//! and fills it in last.

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
}
