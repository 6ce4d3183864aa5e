//! The SquashFS writer: plan in, image out (see the module map in
//! [`super`]).

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use super::compress::{Algorithm, CompressError, Compression};
use super::xattr::XattrTable;
use super::{data, fs_tree, metadata, table};

use super::superblock::{NO_TABLE, SUPERBLOCK_SIZE, Superblock, flags};
use crate::digest::{Hasher, Sha256Digest};
use crate::plan::{ContentError, Plan};
use crate::progress::Counters;

/// Default data block size: 128 KiB.
pub const DEFAULT_BLOCK_SIZE: u32 = 128 * 1024;
/// Smallest block size the format allows: 4 KiB.
pub const MIN_BLOCK_SIZE: u32 = 4 * 1024;
/// Largest block size the format allows: 1 MiB.
pub const MAX_BLOCK_SIZE: u32 = 1024 * 1024;
/// The image is padded to a multiple of this.
const DEVICE_BLOCK: u64 = 4096;

/// Options of the SquashFS container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashfsOptions {
    /// Compressor and level; default gzip level 6.
    pub compression: Compression,
    /// Data block size: a power of two, 4 KiB to 1 MiB; default 128 KiB.
    pub block_size: u32,
    /// Store files with identical content once (the first in plan order is
    /// kept); default on.
    pub dedup: bool,
}

impl Default for SquashfsOptions {
    fn default() -> Self {
        SquashfsOptions {
            compression: Compression::default(),
            block_size: DEFAULT_BLOCK_SIZE,
            dedup: true,
        }
    }
}

/// Parses a block size: bytes (`131072`) or with a `K`/`M` suffix (`128K`,
/// `1M`, also `128KiB`). Must be a power of two from 4 KiB to 1 MiB.
///
/// ```
/// use repropack::format::squashfs::parse_block_size;
/// assert_eq!(parse_block_size("128K"), Ok(131072));
/// assert_eq!(parse_block_size("1M"), Ok(1 << 20));
/// assert_eq!(parse_block_size("4096"), Ok(4096));
/// assert!(parse_block_size("100K").is_err());
/// ```
pub fn parse_block_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let stripped = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, mult) = if let Some(d) = stripped.strip_suffix('k') {
        (d, 1024u64)
    } else if let Some(d) = stripped.strip_suffix('m') {
        (d, 1024 * 1024)
    } else {
        (stripped, 1)
    };
    let bad =
        || format!("block size {s:?} must be a power of two from 4K to 1M (e.g. 131072, 128K, 1M)");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if !v.is_power_of_two() || v < u64::from(MIN_BLOCK_SIZE) || v > u64::from(MAX_BLOCK_SIZE) {
        return Err(bad());
    }
    Ok(v as u32)
}

/// A failed SquashFS write. Names the entry, limit or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    /// Reading an entry's content failed or the source changed.
    #[error("{entry}: {source}")]
    Input {
        /// The entry's path in the plan (lossy UTF-8).
        entry: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A plan entry's source could not be opened or changed while packing.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Writing or re-reading the image failed.
    #[error("writing the image: {0}")]
    Output(#[source] io::Error),
    /// A compressor could not be set up.
    #[error(transparent)]
    Compress(#[from] CompressError),
    /// The plan does not fit a SquashFS limit (name length, timestamps,
    /// number of ids, table sizes).
    #[error("{0}")]
    Limit(String),
    /// An option is out of range (block size, or an epoch past SquashFS's
    /// 32-bit timestamps).
    #[error("invalid option: {0}")]
    Option(String),
    /// A bug: a worker thread panicked or an invariant broke.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The data writer stopped; its own error is reported instead.
    #[error("data writer stopped")]
    WriterGone,
}

impl SquashfsError {
    /// True if the error comes from reading the sources (exit code
    /// "input") rather than from writing or from options.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            SquashfsError::Input { .. } | SquashfsError::Content(_) | SquashfsError::Limit(_)
        )
    }
}

/// Writes `plan` as a SquashFS image into `file` (which must be empty and
/// open for reading and writing), compressing on `jobs` threads. Returns
/// the SHA-256 and size of the file. The bytes never depend on `jobs`.
pub fn write_squashfs(
    plan: &Plan,
    opts: &SquashfsOptions,
    jobs: usize,
    file: &mut File,
) -> Result<(Sha256Digest, u64), SquashfsError> {
    write_squashfs_with_progress(plan, opts, jobs, file, None)
}

/// [`write_squashfs`], counting each entry into `progress` as its data is
/// read.
pub fn write_squashfs_with_progress(
    plan: &Plan,
    opts: &SquashfsOptions,
    jobs: usize,
    file: &mut File,
    progress: Option<&Counters>,
) -> Result<(Sha256Digest, u64), SquashfsError> {
    let bs = opts.block_size;
    if !bs.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) {
        return Err(SquashfsError::Option(format!(
            "block size {bs} must be a power of two from 4096 to 1048576"
        )));
    }
    let mkfs_time = u32::try_from(plan.epoch()).map_err(|_| {
        SquashfsError::Option(format!(
            "epoch {} does not fit SquashFS's 32-bit timestamps (after 2106-02-07)",
            plan.epoch()
        ))
    })?;
    let ids = fs_tree::Ids::collect(plan)?;
    let comp = opts.compression;
    // Laid out before any data is written: an attribute SquashFS cannot
    // store fails the pack at once.
    let xattrs = XattrTable::build(plan, &mut comp.compressor(bs)?)?;
    let options_block = comp.options_payload().map(|p| {
        // §3.1: one metadata block, always uncompressed.
        let mut b = Vec::with_capacity(p.len() + 2);
        b.extend_from_slice(&(0x8000u16 | p.len() as u16).to_le_bytes());
        b.extend_from_slice(&p);
        b
    });
    let data_start = SUPERBLOCK_SIZE + options_block.as_ref().map_or(0, |b| b.len() as u64);
    file.seek(SeekFrom::Start(data_start))
        .map_err(SquashfsError::Output)?;

    let data = data::write_data(
        plan,
        &data::DataOptions {
            compression: comp,
            block_size: bs,
            dedup: opts.dedup,
            jobs,
            progress,
        },
        file,
        data_start,
    )?;

    let mut c1 = comp.compressor(bs)?;
    let mut c2 = comp.compressor(bs)?;
    let mut c3 = comp.compressor(bs)?;
    // The inode table is written as it is laid out, from the end of the
    // data on.
    let inode_table_start = data.end;
    let meta = fs_tree::write_tables(
        plan,
        &data,
        &ids,
        [&mut c1, &mut c2],
        &mut c3,
        file,
        inode_table_start,
    )?;

    // The other tables, in the order the kernel checks them (§2), each
    // written at its offset as soon as it is laid out.
    let put = |bytes: &[u8], at: u64| -> Result<u64, SquashfsError> {
        file.write_all_at(bytes, at)
            .map_err(SquashfsError::Output)?;
        Ok(at + bytes.len() as u64)
    };
    let directory_table_start = meta.inode_table_end;
    let frag_blocks_at = put(&meta.dir_table, directory_table_start)?;
    drop(meta.dir_table);
    // The fragment, export and id tables (§7-§9), each a lookup table
    // whose blocks start where the previous table ended.
    let mut lookup_table = |entries: &[u8], at: u64| -> Result<(u64, u64), SquashfsError> {
        let (bytes, table_start) = metadata::lookup_table(&mut c1, entries, at)?;
        Ok((table_start, put(&bytes, at)?))
    };
    let (fragment_table_start, export_blocks_at) =
        lookup_table(&table::fragment_entries(&data.fragments), frag_blocks_at)?;
    let (export_bytes, export_table_start) =
        metadata::finish_lookup_table(meta.export, export_blocks_at)?;
    let id_blocks_at = put(&export_bytes, export_blocks_at)?;
    drop(export_bytes);
    let (id_table_start, id_end) = lookup_table(&table::id_entries(ids.ids()), id_blocks_at)?;
    // The xattr table (§10) last, as mksquashfs places it.
    let (xattr_id_table_start, bytes_used) = match &xattrs {
        Some(table) => {
            let (bytes, header_at) = table.place(&mut c1, id_end)?;
            (header_at, put(&bytes, id_end)?)
        }
        None => (NO_TABLE, id_end),
    };
    let padded = bytes_used.div_ceil(DEVICE_BLOCK) * DEVICE_BLOCK;
    let padding = vec![0u8; (padded - bytes_used) as usize];
    put(&padding, bytes_used)?;

    let mut sb_flags = flags::EXPORTABLE | flags::ALWAYS_FRAGMENTS;
    if xattrs.is_none() {
        sb_flags |= flags::NO_XATTRS;
    }
    if data.deduplicated {
        sb_flags |= flags::DUPLICATES;
    }
    if options_block.is_some() {
        sb_flags |= flags::COMPRESSOR_OPTIONS;
    }
    if comp.algorithm() == Algorithm::None {
        sb_flags |= flags::UNCOMPRESSED_INODES
            | flags::UNCOMPRESSED_DATA
            | flags::UNCOMPRESSED_FRAGMENTS
            | flags::UNCOMPRESSED_IDS;
    }
    let sb = Superblock {
        inode_count: meta.inode_count,
        modification_time: mkfs_time,
        block_size: bs,
        fragment_entry_count: u32::try_from(data.fragments.len())
            .map_err(|_| SquashfsError::Limit("more than 2^32 fragment blocks".into()))?,
        compression_id: comp.algorithm().id(),
        flags: sb_flags,
        // Ids::collect checked the count fits u16.
        id_count: ids.ids().len() as u16,
        root_inode_ref: meta.root_ref,
        bytes_used,
        id_table_start,
        xattr_id_table_start,
        inode_table_start,
        directory_table_start,
        fragment_table_start,
        export_table_start,
    };
    let mut head = sb.to_bytes().to_vec();
    if let Some(b) = &options_block {
        head.extend_from_slice(b);
    }
    file.write_all_at(&head, 0).map_err(SquashfsError::Output)?;
    file.set_len(padded).map_err(SquashfsError::Output)?;
    // The caller fsyncs the image before publishing it. Starting that
    // here, while the image is read back from the page cache and hashed,
    // overlaps the disk wait with the hashing instead of adding them.
    let (digest, synced) = std::thread::scope(|s| {
        let sync = s.spawn(|| file.sync_data());
        let digest = hash_image(file, padded);
        let synced = sync
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")));
        (digest, synced)
    });
    synced.map_err(SquashfsError::Output)?;
    let digest = digest.map_err(SquashfsError::Output)?;
    Ok((digest, padded))
}

/// SHA-256 of the first `len` bytes of `file`, read back from the start.
fn hash_image(file: &File, len: u64) -> io::Result<Sha256Digest> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    while at < len {
        let want = buf.len().min((len - at) as usize);
        file.read_exact_at(&mut buf[..want], at)?;
        hasher.update(&buf[..want]);
        at += want as u64;
    }
    Ok(hasher.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_parse_with_suffixes() {
        assert_eq!(parse_block_size("131072"), Ok(131072));
        assert_eq!(parse_block_size("128k"), Ok(131072));
        assert_eq!(parse_block_size("128KiB"), Ok(131072));
        assert_eq!(parse_block_size("4K"), Ok(4096));
        assert!(parse_block_size("2K").is_err());
        assert!(parse_block_size("2M").is_err());
        assert!(parse_block_size("96K").is_err());
        assert!(parse_block_size("x").is_err());
    }
}
