//! Fragment, export and id tables: the three lookup tables.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §7 "Fragment Table", §8 "Export Table", §9 "ID Table"; all three are
//! stored as §2.3 lookup tables (see [`super::metadata::lookup_table`]).
//! The reading side: [`read_ids`] and [`FragmentTable`].

use super::image::{Fault, Image};
use super::metadata::{MetadataReader, lookup_entry};
use super::superblock::SUPERBLOCK_SIZE;

/// One fragment-table record (§7).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FragmentEntry {
    pub start: u64,
    /// On-disk size, bit 24 set if uncompressed.
    pub size: u32,
}

/// §7: per fragment block u64 start, u32 on-disk size (bit 24 =
/// uncompressed), u32 unused (0).
pub(crate) fn fragment_entries(fragments: &[FragmentEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fragments.len() * 16);
    for f in fragments {
        out.extend_from_slice(&f.start.to_le_bytes());
        out.extend_from_slice(&f.size.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

/// §9: u32 ids; inodes store an index into this list.
pub(crate) fn id_entries(ids: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 4);
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

/// §9 read back: all `id_count` ids (at most 65,535 × 4 bytes, so read
/// whole), from the table whose block list starts at `list_at`.
pub(crate) fn read_ids(image: &mut Image, list_at: u64, id_count: u16) -> Result<Vec<u32>, Fault> {
    let mut r = MetadataReader::new("id", SUPERBLOCK_SIZE, list_at);
    let mut ids = Vec::with_capacity(usize::from(id_count));
    let mut b = [0u8; 4];
    for i in 0..u64::from(id_count) {
        lookup_entry(image, &mut r, list_at, u64::from(id_count), i, &mut b)?;
        ids.push(u32::from_le_bytes(b));
    }
    Ok(ids)
}

/// §7 read back, one entry at a time as files ask for them.
pub(crate) struct FragmentTable {
    list_at: u64,
    count: u32,
    reader: MetadataReader,
}

impl FragmentTable {
    /// The table of `count` entries whose block list starts at `list_at`.
    /// The list itself (8 bytes per 512 entries) must lie inside the image.
    pub(crate) fn new(image: &Image, list_at: u64, count: u32) -> Result<FragmentTable, Fault> {
        let blocks = u64::from(count).div_ceil(512);
        image.check_range(list_at, blocks * 8, &|| {
            "fragment table block list".to_string()
        })?;
        Ok(FragmentTable {
            list_at,
            count,
            reader: MetadataReader::new("fragment", SUPERBLOCK_SIZE, list_at),
        })
    }

    /// How many entries the table has.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Entry `index`: where its block starts and its on-disk size word.
    pub(crate) fn get(&mut self, image: &mut Image, index: u32) -> Result<FragmentEntry, Fault> {
        let mut b = [0u8; 16];
        lookup_entry(
            image,
            &mut self.reader,
            self.list_at,
            u64::from(self.count),
            u64::from(index),
            &mut b,
        )?;
        let mut start = [0u8; 8];
        start.copy_from_slice(&b[..8]);
        Ok(FragmentEntry {
            start: u64::from_le_bytes(start),
            size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}
