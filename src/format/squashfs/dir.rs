//! Directory listings and directory indexes.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §6 "Directory Table" and §6.2 "Directory Index".
//!
//! A listing is a run of headers, each followed by 1-256 entries. An entry
//! stores its inode as an offset inside one inode-table metadata block and
//! an i16 difference to the header's inode number, so a new header starts
//! whenever
//! - 256 entries follow the current one,
//! - the next entry's inode lies in another inode-table block,
//! - its inode number is not within i16 of the header's, or
//! - the listing has crossed into a new directory-table metadata block
//!   (§6.2: then every header starts in the block an index record points
//!   to, so a lookup reads one block).
//!
//! Every header that starts in a later metadata block than the header
//! before it gets a directory-index record; a directory with any index
//! record uses the extended inode.
//!
//! [`ListingReader`] reads a listing back one entry at a time, checking
//! each header and name as it goes.

use super::compress::CompressError;
use super::image::{Fault, Image};
use super::inode::DirIndex;
use super::metadata::{Cursor, METADATA_SIZE, MetaPos, MetadataReader, MetadataWriter};

/// At most this many entries follow one header.
const MAX_ENTRIES_PER_HEADER: usize = 256;
const HEADER_SIZE: u64 = 12;
const ENTRY_FIXED_SIZE: u64 = 8;

/// One child as the listing needs it.
pub(crate) struct DirEntry<'a> {
    pub name: &'a [u8],
    pub inode_number: u32,
    pub inode: MetaPos,
    /// Basic inode type (§6: extended types are stored as basic).
    pub basic_type: u16,
}

/// Where a listing went.
pub(crate) struct Listing {
    pub start: MetaPos,
    /// Bytes of headers and entries (the inode stores this + 3).
    pub size: u64,
    pub index: Vec<DirIndex>,
}

/// Why a listing cannot be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirError {
    #[error(transparent)]
    Compress(#[from] CompressError),
    #[error("inode table grew beyond 4 GiB")]
    InodeTableTooLarge,
    #[error("directory table grew beyond 4 GiB")]
    DirTableTooLarge,
}

/// Writes the listing of `entries` (sorted by name) to `w`.
pub(crate) fn write_listing(
    w: &mut MetadataWriter<'_>,
    entries: &[DirEntry<'_>],
) -> Result<Listing, DirError> {
    let start = w.pos();
    let first_byte = w.uncompressed_len();
    let mut index = Vec::new();
    let mut prev_header_block: Option<u64> = None;
    let mut i = 0;
    while i < entries.len() {
        let header_at = w.uncompressed_len();
        let header_block = header_at / METADATA_SIZE as u64;
        let first = &entries[i];
        // Choose the run that follows this header.
        let mut end = i + 1;
        let mut next_at = header_at + HEADER_SIZE + entry_size(first);
        while end < entries.len()
            && end - i < MAX_ENTRIES_PER_HEADER
            && entries[end].inode.block == first.inode.block
            && i16::try_from(i64::from(entries[end].inode_number) - i64::from(first.inode_number))
                .is_ok()
            && next_at / METADATA_SIZE as u64 == header_block
        {
            next_at += entry_size(&entries[end]);
            end += 1;
        }
        if let Some(prev) = prev_header_block
            && prev != header_block
        {
            let pos = w.pos();
            index.push(DirIndex {
                index: u32::try_from(header_at - first_byte)
                    .map_err(|_| DirError::DirTableTooLarge)?,
                start: u32::try_from(pos.block).map_err(|_| DirError::DirTableTooLarge)?,
                name: first.name.to_vec(),
            });
        }
        prev_header_block = Some(header_block);
        // Header: u32 count - 1, u32 inode block start, u32 inode number.
        let mut buf = Vec::with_capacity(((next_at - header_at) as usize).min(1 << 16));
        buf.extend_from_slice(&((end - i - 1) as u32).to_le_bytes());
        let block = u32::try_from(first.inode.block).map_err(|_| DirError::InodeTableTooLarge)?;
        buf.extend_from_slice(&block.to_le_bytes());
        buf.extend_from_slice(&first.inode_number.to_le_bytes());
        for e in &entries[i..end] {
            // Entry: u16 offset, s16 inode delta, u16 type, u16 name size - 1.
            let delta = (i64::from(e.inode_number) - i64::from(first.inode_number)) as i16;
            buf.extend_from_slice(&e.inode.offset.to_le_bytes());
            buf.extend_from_slice(&delta.to_le_bytes());
            buf.extend_from_slice(&e.basic_type.to_le_bytes());
            // Names are 1..=256 bytes (checked when the tree is built).
            buf.extend_from_slice(&((e.name.len() - 1) as u16).to_le_bytes());
            buf.extend_from_slice(e.name);
        }
        w.write(&buf)?;
        i = end;
    }
    Ok(Listing {
        start,
        size: w.uncompressed_len() - first_byte,
        index,
    })
}

fn entry_size(e: &DirEntry<'_>) -> u64 {
    ENTRY_FIXED_SIZE + e.name.len() as u64
}

/// One entry of a listing as read back.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub inode_number: u32,
    /// Reference of the entry's inode in the inode table (§2.2 form).
    pub inode_ref: u64,
    /// Basic inode type (1-7).
    pub basic_type: u16,
}

/// Reads one directory's listing (§6) from the directory table.
pub(crate) struct ListingReader {
    cur: Cursor,
    /// Listing bytes not read yet.
    left: u64,
    /// Listing bytes read so far, for messages.
    at: u64,
    /// Entries the current header still announces.
    in_header: u32,
    header_block: u32,
    header_inode: u32,
}

impl ListingReader {
    /// The listing of a directory inode with these fields (§5.2); `file_size`
    /// is the listing size + 3.
    pub(crate) fn new(
        tables: &MetadataReader,
        block_index: u32,
        block_offset: u16,
        file_size: u32,
    ) -> Result<ListingReader, String> {
        if file_size < 3 {
            return Err(format!("listing size {file_size} is below 3"));
        }
        Ok(ListingReader {
            cur: tables.cursor_at(u64::from(block_index), usize::from(block_offset)),
            left: u64::from(file_size - 3),
            at: 0,
            in_header: 0,
            header_block: 0,
            header_inode: 0,
        })
    }

    fn take(
        &mut self,
        image: &mut Image,
        r: &mut MetadataReader,
        out: &mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), Fault> {
        if (out.len() as u64) > self.left {
            return Err(Fault::malformed(
                what(),
                format!(
                    "listing ends inside a header or entry (byte {} of {})",
                    self.at,
                    self.at + self.left
                ),
            ));
        }
        r.read(image, &mut self.cur, out)?;
        self.left -= out.len() as u64;
        self.at += out.len() as u64;
        Ok(())
    }

    /// The next entry, or `None` after the last. `what` names the
    /// directory for messages. Names are checked as rdsquashfs checks them:
    /// 1 to 256 bytes, without `/` or NUL, neither `.` nor `..`.
    pub(crate) fn next(
        &mut self,
        image: &mut Image,
        r: &mut MetadataReader,
        what: &dyn Fn() -> String,
    ) -> Result<Option<RawEntry>, Fault> {
        if self.in_header == 0 {
            if self.left == 0 {
                return Ok(None);
            }
            let mut h = [0u8; HEADER_SIZE as usize];
            self.take(image, r, &mut h, what)?;
            // Stored as count - 1: widen before adding so that 0xFFFFFFFF
            // is an error, not an overflow.
            let count = u64::from(u32::from_le_bytes([h[0], h[1], h[2], h[3]])) + 1;
            if count > MAX_ENTRIES_PER_HEADER as u64 {
                return Err(Fault::malformed(
                    what(),
                    format!(
                        "header at byte {} of the listing announces {count} entries (1 to 256 allowed)",
                        self.at - HEADER_SIZE,
                    ),
                ));
            }
            let count = count as u32;
            self.in_header = count;
            self.header_block = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            self.header_inode = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        }
        let mut e = [0u8; ENTRY_FIXED_SIZE as usize];
        self.take(image, r, &mut e, what)?;
        let offset = u16::from_le_bytes([e[0], e[1]]);
        let delta = i16::from_le_bytes([e[2], e[3]]);
        let basic_type = u16::from_le_bytes([e[4], e[5]]);
        let name_len = usize::from(u16::from_le_bytes([e[6], e[7]])) + 1;
        let name_at = self.at;
        if name_len > 256 {
            return Err(Fault::malformed(
                what(),
                format!(
                    "entry name at byte {name_at} of the listing is {name_len} bytes long (at most 256)"
                ),
            ));
        }
        let mut name = vec![0u8; name_len];
        self.take(image, r, &mut name, what)?;
        if let Some(why) = bad_name(&name) {
            return Err(Fault::malformed(
                what(),
                format!(
                    "entry name {:?} at byte {name_at} of the listing {why}",
                    String::from_utf8_lossy(&name)
                ),
            ));
        }
        if !(1..=7).contains(&basic_type) {
            return Err(Fault::malformed(
                what(),
                format!("entry at byte {name_at} of the listing has unknown type {basic_type}"),
            ));
        }
        let number = i64::from(self.header_inode) + i64::from(delta);
        let inode_number = u32::try_from(number).map_err(|_| {
            Fault::malformed(
                what(),
                format!("entry at byte {name_at} of the listing has inode number {number}"),
            )
        })?;
        self.in_header -= 1;
        Ok(Some(RawEntry {
            name,
            inode_number,
            inode_ref: (u64::from(self.header_block) << 16) | u64::from(offset),
            basic_type,
        }))
    }
}

/// Why a directory entry name is not one a SquashFS directory can hold: a
/// name of 1 to 256 bytes naming one entry of the directory, as rdsquashfs
/// checks. A name with `/` would silently become a deeper path, `.`/`..`
/// another directory.
fn bad_name(name: &[u8]) -> Option<&'static str> {
    if name.contains(&b'/') {
        Some("contains '/'")
    } else if name.contains(&0) {
        Some("contains a NUL byte")
    } else if name == b"." || name == b".." {
        Some("is '.' or '..'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::squashfs::Compression;

    fn names(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("file{i:06}").into_bytes()).collect()
    }

    /// Regular-file entries named `names`, numbered from 1, the i-th
    /// inode at `inode(i)`.
    fn files(names: &[Vec<u8>], inode: impl Fn(usize) -> MetaPos) -> Vec<DirEntry<'_>> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| DirEntry {
                name: n,
                inode_number: i as u32 + 1,
                inode: inode(i),
                basic_type: 2,
            })
            .collect()
    }

    #[test]
    fn headers_split_at_256_entries_and_other_inode_blocks() {
        let mut c = Compression::default().compressor(131072).unwrap();
        let mut w = MetadataWriter::new(&mut c);
        let ns = names(300);
        let entries = files(&ns, |i| MetaPos {
            block: if i < 280 { 0 } else { 500 },
            offset: (i * 10) as u16,
        });
        let l = write_listing(&mut w, &entries).unwrap();
        // 3 headers: 256, 24 (same inode block), 20 (other block).
        assert_eq!(l.size, 3 * 12 + 300 * (8 + 10));
        assert!(l.index.is_empty());
    }

    #[test]
    fn large_listing_gets_index_at_block_crossings() {
        let mut c = Compression::default().compressor(131072).unwrap();
        let mut w = MetadataWriter::new(&mut c);
        let ns: Vec<Vec<u8>> = (0..2000)
            .map(|i| format!("file{i:036}").into_bytes())
            .collect();
        let entries = files(&ns, |_| MetaPos {
            block: 0,
            offset: 0,
        });
        let l = write_listing(&mut w, &entries).unwrap();
        // 48 bytes per entry: fewer than 256 per block, so headers split
        // only at block crossings.
        assert_eq!(l.index.len() as u64, (l.size - 1) / 8192);
        assert_eq!(l.index.len(), 11);
        for (k, ix) in l.index.iter().enumerate() {
            // Each indexed header starts in the next metadata block.
            assert_eq!(u64::from(ix.index) / 8192, k as u64 + 1);
            let n: usize = std::str::from_utf8(&ix.name[4..]).unwrap().parse().unwrap();
            assert_eq!(u64::from(ix.index), 12 * (k as u64 + 1) + 48 * n as u64);
        }
    }
}
