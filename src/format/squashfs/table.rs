//! Fragment, export and id tables: the three lookup tables.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §7 "Fragment Table", §8 "Export Table", §9 "ID Table"; all three are
//! stored as §2.3 lookup tables (see [`super::metadata::lookup_table`]).

use super::data::FragmentEntry;

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

/// §8: the inode reference of inode number n + 1 at index n.
pub(crate) fn export_entries(refs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(refs.len() * 8);
    for r in refs {
        out.extend_from_slice(&r.to_le_bytes());
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
