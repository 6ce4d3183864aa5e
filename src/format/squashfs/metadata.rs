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

use super::compress::{CompressError, Compressor};

/// Uncompressed size of a metadata block.
pub(crate) const METADATA_SIZE: usize = 8192;
/// Bit 15 of the block header: stored uncompressed.
const UNCOMPRESSED: u16 = 0x8000;

/// Builds one metadata stream in memory.
pub(crate) struct MetadataWriter<'c> {
    compressor: &'c mut Compressor,
    out: Vec<u8>,
    cur: Vec<u8>,
    scratch: Vec<u8>,
    /// Start (relative to the table) of every block flushed so far.
    block_starts: Vec<u64>,
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
        }
    }

    /// Position the next byte written will have.
    pub(crate) fn pos(&self) -> MetaPos {
        MetaPos {
            block: self.out.len() as u64,
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
        self.block_starts.push(self.out.len() as u64);
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
    /// the start of each block relative to the table.
    pub(crate) fn finish(mut self) -> Result<(Vec<u8>, Vec<u64>), CompressError> {
        if !self.cur.is_empty() {
            self.flush_block()?;
        }
        Ok((self.out, self.block_starts))
    }
}

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
    let (mut bytes, starts) = w.finish()?;
    let list_at = table_start + bytes.len() as u64;
    for s in starts {
        bytes.extend_from_slice(&(table_start + s).to_le_bytes());
    }
    Ok((bytes, list_at))
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
}
