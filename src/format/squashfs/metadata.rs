//! Metadata blocks and lookup tables.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §2.2 "Packing Metadata" and §2.3 "Storing Lookup Tables".
//!
//! A metadata stream (the inode table, the directory table, a lookup table)
//! is cut into 8 KiB pieces; each piece is compressed on its own and stored
//! behind a u16 header holding its on-disk size, with bit 15 set when the
//! piece is stored uncompressed. A reference to a record in the stream is
//! `(start of its block relative to the table start) << 16 | offset in the
//! uncompressed block`. Blocks are compressed as soon as they fill, so the
//! position of the next record is always known exactly.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::SquashfsError;
use super::compress::{CompressError, Compressor};
use super::image::{BlockCache, Fault, Image};

/// Uncompressed size of a metadata block.
pub(crate) const METADATA_SIZE: usize = 8192;
/// Bit 15 of the block header: stored uncompressed.
const UNCOMPRESSED: u16 = 0x8000;

/// Builds one metadata stream in memory, or, with
/// [`MetadataWriter::spill`], straight into the output file.
pub(crate) struct MetadataWriter<'c> {
    compressor: &'c mut Compressor,
    /// Finished blocks not spilled yet.
    out: Vec<u8>,
    cur: Vec<u8>,
    scratch: Vec<u8>,
    /// Start (relative to the table) of every block flushed so far.
    block_starts: Vec<u64>,
    /// Bytes of finished blocks already written to the file.
    spilled: u64,
}

/// Where a record starts: its block's start relative to the table and the
/// offset inside the uncompressed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetaPos {
    pub block: u64,
    pub offset: u16,
}

impl MetaPos {
    /// The 64-bit reference used by the superblock, the export table and
    /// the directory table.
    pub(crate) fn reference(self) -> u64 {
        (self.block << 16) | u64::from(self.offset)
    }
}

impl<'c> MetadataWriter<'c> {
    pub(crate) fn new(compressor: &'c mut Compressor) -> MetadataWriter<'c> {
        MetadataWriter {
            compressor,
            out: Vec::new(),
            cur: Vec::with_capacity(METADATA_SIZE),
            scratch: Vec::new(),
            block_starts: Vec::new(),
            spilled: 0,
        }
    }

    /// Position the next byte written will have.
    pub(crate) fn pos(&self) -> MetaPos {
        MetaPos {
            block: self.spilled + self.out.len() as u64,
            // cur.len() < METADATA_SIZE: full blocks are flushed at once.
            offset: self.cur.len() as u16,
        }
    }

    /// Bytes written so far, as if the stream were not cut into blocks.
    pub(crate) fn uncompressed_len(&self) -> u64 {
        (self.block_starts.len() * METADATA_SIZE + self.cur.len()) as u64
    }

    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> Result<(), CompressError> {
        while !bytes.is_empty() {
            let n = bytes.len().min(METADATA_SIZE - self.cur.len());
            self.cur.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.cur.len() == METADATA_SIZE {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), CompressError> {
        self.block_starts.push(self.spilled + self.out.len() as u64);
        let compressed = self.compressor.compress(&self.cur, &mut self.scratch)?;
        // Both sizes are at most 8192, so they fit the 15 bits.
        let (header, body) = if compressed {
            (self.scratch.len() as u16, &self.scratch[..])
        } else {
            (self.cur.len() as u16 | UNCOMPRESSED, &self.cur[..])
        };
        self.out.extend_from_slice(&header.to_le_bytes());
        self.out.extend_from_slice(body);
        self.cur.clear();
        Ok(())
    }

    /// Flushes the last, partial block and returns the on-disk bytes and
    /// the start of each block relative to the table. For a stream that
    /// was never spilled.
    pub(crate) fn finish(mut self) -> Result<(Vec<u8>, Vec<u64>), CompressError> {
        debug_assert_eq!(self.spilled, 0, "finish after spill");
        if !self.cur.is_empty() {
            self.flush_block()?;
        }
        Ok((self.out, self.block_starts))
    }

    /// Once at least `SPILL_BYTES` of finished blocks are held, writes them
    /// to `file` at `table_start` plus their place in the table and lets
    /// them go: a table of millions of records is never held whole. The
    /// table must then end with [`MetadataWriter::finish_spilled`].
    pub(crate) fn spill(&mut self, file: &File, table_start: u64) -> Result<(), SquashfsError> {
        if self.out.len() >= SPILL_BYTES {
            self.spill_now(file, table_start)?;
        }
        Ok(())
    }

    fn spill_now(&mut self, file: &File, table_start: u64) -> Result<(), SquashfsError> {
        file.write_all_at(&self.out, table_start + self.spilled)
            .map_err(SquashfsError::Output)?;
        self.spilled += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }

    /// Flushes the last, partial block, writes what is still held to
    /// `file` as [`MetadataWriter::spill`] does, and returns the absolute
    /// offset just past the table.
    pub(crate) fn finish_spilled(
        mut self,
        file: &File,
        table_start: u64,
    ) -> Result<u64, SquashfsError> {
        if !self.cur.is_empty() {
            self.flush_block()?;
        }
        self.spill_now(file, table_start)?;
        Ok(table_start + self.spilled)
    }
}

/// Finished metadata held before [`MetadataWriter::spill`] writes it out.
const SPILL_BYTES: usize = 1 << 20;

/// Lays out a lookup table (§2.3) whose metadata blocks start at absolute
/// offset `table_start`: returns the blocks, followed by the uncompressed
/// list of their absolute u64 locations, and the absolute offset of that
/// list (what the superblock points to).
pub(crate) fn lookup_table(
    compressor: &mut Compressor,
    entries: &[u8],
    table_start: u64,
) -> Result<(Vec<u8>, u64), CompressError> {
    let mut w = MetadataWriter::new(compressor);
    w.write(entries)?;
    finish_lookup_table(w, table_start)
}

/// [`lookup_table`] for a table whose entries were written to `w` (not
/// spilled) as they were found.
pub(crate) fn finish_lookup_table(
    w: MetadataWriter<'_>,
    table_start: u64,
) -> Result<(Vec<u8>, u64), CompressError> {
    let (mut bytes, starts) = w.finish()?;
    let list_at = table_start + bytes.len() as u64;
    for s in starts {
        bytes.extend_from_slice(&(table_start + s).to_le_bytes());
    }
    Ok((bytes, list_at))
}

/// Where the reader stands in a metadata stream: the absolute offset of a
/// block's header and an offset in that block's uncompressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub block: u64,
    pub offset: usize,
}

struct Block {
    data: Vec<u8>,
    /// Absolute offset of the next block's header.
    next: u64,
}

/// Decompressed blocks each table reader keeps: 256 × 8 KiB = 2 MiB.
const CACHED_BLOCKS: usize = 256;

/// Reads one metadata stream whose blocks lie in `[start, end)`.
pub(crate) struct MetadataReader {
    start: u64,
    end: u64,
    table: &'static str,
    cache: BlockCache<Block>,
}

impl MetadataReader {
    /// A reader for the table named `table` (for messages) occupying
    /// `[start, end)` of the image.
    pub(crate) fn new(table: &'static str, start: u64, end: u64) -> MetadataReader {
        MetadataReader {
            start,
            end,
            table,
            cache: BlockCache::new(CACHED_BLOCKS),
        }
    }

    /// The cursor for a reference `block << 16 | offset` relative to the
    /// table start (§2.2).
    pub(crate) fn cursor(&self, reference: u64) -> Cursor {
        Cursor {
            block: self.start.saturating_add(reference >> 16),
            offset: (reference & 0xFFFF) as usize,
        }
    }

    /// The cursor for a block start relative to the table and an offset.
    pub(crate) fn cursor_at(&self, block: u64, offset: usize) -> Cursor {
        Cursor {
            block: self.start.saturating_add(block),
            offset,
        }
    }

    fn block(&mut self, image: &mut Image, at: u64) -> Result<&Block, Fault> {
        let (table, start, end) = (self.table, self.start, self.end);
        self.cache
            .get_or_load(at, || load_block(image, table, start, end, at))
    }

    /// Fills `out` from `cur`, moving on to the following blocks as needed,
    /// and advances `cur`.
    pub(crate) fn read(
        &mut self,
        image: &mut Image,
        cur: &mut Cursor,
        out: &mut [u8],
    ) -> Result<(), Fault> {
        let mut done = 0;
        while done < out.len() {
            let table = self.table;
            let block = self.block(image, cur.block)?;
            let len = block.data.len();
            if cur.offset > len {
                return Err(Fault::malformed(
                    format!("{table} metadata block at byte {}", cur.block),
                    format!("offset {} is past its {len} bytes", cur.offset),
                ));
            }
            if cur.offset == len {
                // A block holds 8 KiB unless it is the last: only a full
                // block can be continued.
                if len != METADATA_SIZE {
                    return Err(Fault::malformed(
                        format!("{table} metadata block at byte {}", cur.block),
                        format!(
                            "a record continues past its {len} bytes, but only a full block is followed by more"
                        ),
                    ));
                }
                *cur = Cursor {
                    block: block.next,
                    offset: 0,
                };
                continue;
            }
            let n = (len - cur.offset).min(out.len() - done);
            out[done..done + n].copy_from_slice(&block.data[cur.offset..cur.offset + n]);
            cur.offset += n;
            done += n;
        }
        Ok(())
    }

    /// Reads a little-endian u16, u32 or u64 at `cur`.
    pub(crate) fn u16(&mut self, image: &mut Image, cur: &mut Cursor) -> Result<u16, Fault> {
        let mut b = [0u8; 2];
        self.read(image, cur, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub(crate) fn u32(&mut self, image: &mut Image, cur: &mut Cursor) -> Result<u32, Fault> {
        let mut b = [0u8; 4];
        self.read(image, cur, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self, image: &mut Image, cur: &mut Cursor) -> Result<u64, Fault> {
        let mut b = [0u8; 8];
        self.read(image, cur, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Reads and decompresses the metadata block whose header is at `at`,
/// which must lie in `[start, end)`.
fn load_block(
    image: &mut Image,
    table: &str,
    start: u64,
    end: u64,
    at: u64,
) -> Result<Block, Fault> {
    let what = || format!("{table} metadata block at byte {at}");
    if at < start || at >= end {
        return Err(Fault::malformed(
            what(),
            format!("lies outside the table (bytes {start} to {end})"),
        ));
    }
    let mut h = [0u8; 2];
    image.read_at(at, &mut h, &what)?;
    let header = u16::from_le_bytes(h);
    let size = usize::from(header & !UNCOMPRESSED);
    if size == 0 || size > METADATA_SIZE {
        return Err(Fault::malformed(
            what(),
            format!("stored size {size} is not 1 to {METADATA_SIZE}"),
        ));
    }
    let body_at = at + 2;
    if body_at + size as u64 > end {
        return Err(Fault::malformed(
            what(),
            format!("its {size} bytes run past the end of the table (byte {end})"),
        ));
    }
    let mut raw = vec![0u8; size];
    image.read_at(body_at, &mut raw, &what)?;
    let data = if header & UNCOMPRESSED != 0 {
        raw
    } else {
        let mut out = Vec::new();
        image.decompress(&raw, METADATA_SIZE, &mut out, &what)?;
        out
    };
    if data.is_empty() {
        return Err(Fault::malformed(what(), "decompresses to nothing"));
    }
    Ok(Block {
        data,
        next: body_at + size as u64,
    })
}

/// Reads entry `index` (of `entry_size` bytes) of the lookup table (§2.3)
/// whose list of block locations starts at `list_at` and holds `count`
/// entries in all. The block location is read from the list on demand, so
/// a declared count costs nothing until an entry is asked for.
pub(crate) fn lookup_entry(
    image: &mut Image,
    reader: &mut MetadataReader,
    list_at: u64,
    count: u64,
    index: u64,
    out: &mut [u8],
) -> Result<(), Fault> {
    let table = reader.table;
    if index >= count {
        return Err(Fault::malformed(
            format!("{table} table"),
            format!("entry {index} asked for, but the table has {count}"),
        ));
    }
    let per_block = (METADATA_SIZE / out.len()) as u64;
    let slot = list_at + 8 * (index / per_block);
    let mut loc = [0u8; 8];
    image.read_at(slot, &mut loc, &|| {
        format!("{table} table block list at byte {slot}")
    })?;
    let mut cur = Cursor {
        block: u64::from_le_bytes(loc),
        offset: (index % per_block) as usize * out.len(),
    };
    reader.read(image, &mut cur, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::squashfs::Compression;

    #[test]
    fn positions_follow_compressed_block_sizes() {
        let mut c = Compression::default().compressor(131072).unwrap();
        let mut w = MetadataWriter::new(&mut c);
        assert_eq!(
            w.pos(),
            MetaPos {
                block: 0,
                offset: 0
            }
        );
        w.write(&vec![7u8; METADATA_SIZE + 10]).unwrap();
        let p = w.pos();
        assert_eq!(p.offset, 10);
        // First block: 2-byte header plus compressed bytes (8 KiB of 7s
        // compresses well).
        assert!(p.block > 2 && p.block < 200);
        let (bytes, starts) = w.finish().unwrap();
        assert_eq!(starts, vec![0, p.block]);
        let h = u16::from_le_bytes([bytes[p.block as usize], bytes[p.block as usize + 1]]);
        // 10 bytes of 7s do not shrink: stored raw.
        assert_eq!(h, 0x8000 | 10);
    }

    /// A table spilled to the file as it grows is the table kept in
    /// memory, byte for byte and position for position, wherever in the
    /// file it starts.
    #[test]
    fn a_spilled_table_is_the_table_held_in_memory() {
        // Several MiB of records that compress only somewhat, so that
        // blocks have varied sizes and the writer spills several times.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let records: Vec<Vec<u8>> = (0..150_000)
            .map(|_| {
                let len = 20 + (next() % 60) as usize;
                // Every other byte random, the rest zero: about 2:1.
                (0..len)
                    .map(|j| if j % 2 == 0 { next() as u8 } else { 0 })
                    .collect()
            })
            .collect();
        let mut c1 = Compression::default().compressor(131072).unwrap();
        let mut c2 = Compression::default().compressor(131072).unwrap();
        let mut held = MetadataWriter::new(&mut c1);
        let mut spilled = MetadataWriter::new(&mut c2);
        let file = tempfile::tempfile().unwrap();
        let start = 4099;
        for r in &records {
            assert_eq!(held.pos(), spilled.pos());
            held.write(r).unwrap();
            spilled.write(r).unwrap();
            spilled.spill(&file, start).unwrap();
        }
        assert!(
            spilled.spilled > 2 * SPILL_BYTES as u64,
            "spilled {}",
            spilled.spilled
        );
        let (bytes, _) = held.finish().unwrap();
        let end = spilled.finish_spilled(&file, start).unwrap();
        assert_eq!(end, start + bytes.len() as u64);
        let mut on_disk = vec![0u8; bytes.len()];
        file.read_exact_at(&mut on_disk, start).unwrap();
        assert!(on_disk == bytes, "spilled table differs");
    }
}
