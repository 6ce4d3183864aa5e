//! tar reading: one 512-byte header block at a time; names and link
//! targets through the `tar` crate's [`Header`], numeric fields by
//! `header::number` (octal, full-width octal and GNU base-256, negative
//! mtimes included, as GNU tar reads them), extension headers and sparse
//! files handled here.
//!
//! Why not `tar::Archive::entries`: it reads pax (`x`) and GNU long-name
//! (`L`/`K`) headers into memory whatever their declared size, so a small
//! tar.gz could declare an 8 GiB pax header and exhaust memory. Here every
//! extension header is capped at [`MAX_EXTENSION_HEADER`] bytes.
//!
//! Layout followed (POSIX.1-2001 `pax` utility, "ustar Interchange Format"
//! and "pax Interchange Format"; GNU tar manual, "Basic Tar Format"):
//! a header block, then the content padded to 512 bytes, repeated; the end
//! is the first all-zero block (or end of file at a block boundary). For
//! tar.gz the rest of the gzip stream is then read (at most
//! [`MAX_TRAILING`] bytes) so that every member's CRC is verified.
//! - `x`: pax records for the next entry (`path`, `linkpath`, `size`, `uid`,
//!   `gid`, `mtime` are applied; `SCHILY.xattr.*` and `LIBARCHIVE.xattr.*`
//!   become [`ArchiveEntry::xattrs`]; others ignored).
//! - `g`: pax global records, ignored (git archive stores its commit there).
//! - `L` / `K`: GNU long name / long link target for the next entry.
//! - `V`: GNU volume label, skipped.
//! - `M` (multi-volume), `N` (old GNU long names) and other letters are
//!   refused as unsupported.
//! - Sparse files (GNU tar manual, "Sparse Formats"): old GNU `S` headers
//!   (map in the header and its extension blocks) and pax `GNU.sparse.*`
//!   0.0, 0.1 and 1.0 (map in the data) are yielded as a regular file with
//!   the real name and size whose content has zeros in the holes. The map
//!   is checked (ordered, no overlap, within the real size, adding up to
//!   the data stored) and held to [`MAX_SPARSE_REGIONS`] regions.
//! - `0`, NUL, `7`: regular file (a pre-POSIX header whose name ends in `/`
//!   is a directory); `1` hard link; `2` symlink; `3`/`4` character/block
//!   device; `5` directory (GNU `D` dump directory too); `6` fifo.

use std::io::{self, BufRead, Read};
use std::path::Path;

use tar::Header;

use super::header::{
    BLOCK, DEVMAJOR, DEVMINOR, GID, MODE, MTIME, PaxFields, SIZE, SparseRegion, UID, checksum_ok,
    has_magic, oldgnu_sparse, oldgnu_sparse_extension, padding, parse_pax, pax_path, signed,
    typeflag, unsigned,
};
use crate::format::{ArchiveEntry, ArchiveError, Format};
use crate::plan::{EntryKind, XattrSet};

/// Largest pax or GNU long-name extension header accepted, in bytes.
pub const MAX_EXTENSION_HEADER: u64 = 1 << 20;

/// Most regions accepted in one sparse file's map. Every map encoding takes
/// at least 4 bytes a region (`0,0,` in a pax `GNU.sparse.map`, `0\n0\n` in
/// a sparse 1.0 map), and a map is held to [`MAX_EXTENSION_HEADER`] bytes
/// like any extension header, so this is what fits there: 4 MiB of regions
/// in memory at most.
pub const MAX_SPARSE_REGIONS: u64 = MAX_EXTENSION_HEADER / 4;

/// Most decompressed bytes accepted after the end-of-archive blocks of a
/// tar.gz (record padding; GNU tar's largest blocking factor is far below).
pub const MAX_TRAILING: u64 = 16 << 20;

/// Extension data waiting for the entry it describes.
#[derive(Default)]
struct Pending {
    pax: Option<Vec<u8>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl Pending {
    fn any(&self) -> bool {
        self.pax.is_some() || self.long_name.is_some() || self.long_link.is_some()
    }
}

struct Ctx<'a> {
    path: &'a Path,
    format: Format,
}

impl Ctx<'_> {
    fn malformed(&self, offset: u64, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Malformed {
            path: self.path.to_path_buf(),
            format: self.format.name(),
            location: format!("header at byte {offset} of the tar stream"),
            reason: reason.into(),
        }
    }

    /// A read failure: truncation and decompression errors are malformed
    /// input, anything else is an I/O error on the archive file.
    fn read_error(&self, offset: u64, e: io::Error) -> ArchiveError {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => self.malformed(offset, "truncated archive"),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                self.malformed(offset, format!("{} stream: {e}", self.format.name()))
            }
            _ => ArchiveError::Io {
                path: self.path.to_path_buf(),
                source: e,
            },
        }
    }
}

/// Reads one block; `Ok(false)` at a clean end of file.
fn read_block<R: Read>(r: &mut R, block: &mut [u8; BLOCK as usize]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < block.len() {
        match r.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

pub(crate) fn visit<R, E, F>(
    path: &Path,
    format: Format,
    mut reader: R,
    max_entries: u64,
    mut f: F,
) -> Result<(), E>
where
    R: BufRead,
    E: From<ArchiveError>,
    F: FnMut(&ArchiveEntry, &mut dyn BufRead) -> Result<(), E>,
{
    let ctx = Ctx { path, format };
    let mut pos: u64 = 0;
    let mut pending = Pending::default();
    let mut index: u64 = 0;
    loop {
        let header_pos = pos;
        let mut block = [0u8; BLOCK as usize];
        let more =
            read_block(&mut reader, &mut block).map_err(|e| ctx.read_error(header_pos, e))?;
        if !more || block.iter().all(|&b| b == 0) {
            if pending.any() {
                return Err(ctx
                    .malformed(
                        header_pos,
                        "extension header without the entry it describes",
                    )
                    .into());
            }
            if format == Format::TarGz {
                // Read to the end of the gzip stream so that every member's
                // CRC-32 and size trailer (RFC 1952 §2.3.1) is checked; the
                // padding after the end-of-archive blocks is bounded.
                let rest = io::copy(&mut (&mut reader).take(MAX_TRAILING + 1), &mut io::sink())
                    .map_err(|e| ctx.read_error(header_pos, e))?;
                if rest > MAX_TRAILING {
                    return Err(ctx
                        .malformed(
                            header_pos,
                            format!("more than {MAX_TRAILING} bytes after the end of the archive"),
                        )
                        .into());
                }
            }
            return Ok(());
        }
        pos += BLOCK;
        if !checksum_ok(&block) {
            return Err(ctx.malformed(header_pos, "header checksum mismatch").into());
        }
        let header = Header::from_byte_slice(&block);
        let header_size = unsigned(&block, SIZE)
            .map_err(|e| ctx.malformed(header_pos, format!("size field: {e}")))?;
        let typeflag = typeflag(&block);

        if matches!(typeflag, b'x' | b'g' | b'L' | b'K' | b'V') {
            if header_size > MAX_EXTENSION_HEADER {
                return Err(ctx
                    .malformed(
                        header_pos,
                        format!(
                            "extension header '{}' of {header_size} bytes (limit {MAX_EXTENSION_HEADER})",
                            typeflag as char
                        ),
                    )
                    .into());
            }
            let mut data = Vec::with_capacity(header_size as usize);
            let n = (&mut reader)
                .take(header_size)
                .read_to_end(&mut data)
                .map_err(|e| ctx.read_error(header_pos, e))?;
            if (n as u64) < header_size {
                return Err(ctx.malformed(header_pos, "truncated archive").into());
            }
            skip(&mut reader, padding(header_size)).map_err(|e| ctx.read_error(header_pos, e))?;
            pos += header_size + padding(header_size);
            let slot = match typeflag {
                b'x' => &mut pending.pax,
                b'L' => &mut pending.long_name,
                b'K' => &mut pending.long_link,
                _ => continue, // 'g' and 'V': nothing to apply
            };
            if slot.is_some() {
                return Err(ctx
                    .malformed(
                        header_pos,
                        format!("two '{}' extension headers for one entry", typeflag as char),
                    )
                    .into());
            }
            if typeflag != b'x' {
                while data.last() == Some(&0) {
                    data.pop();
                }
            }
            *slot = Some(data);
            continue;
        }

        let long_name = pending.long_name.take();
        let pax = match pending.pax.take() {
            Some(data) => parse_pax(&data).map_err(|r| {
                // Name the entry the records belong to, as far as it is known.
                let named = pax_path(&data)
                    .or_else(|| long_name.clone())
                    .unwrap_or_else(|| header.path_bytes().into_owned());
                ctx.malformed(
                    header_pos,
                    format!("entry {:?}: {r}", String::from_utf8_lossy(&named)),
                )
            })?,
            None => PaxFields::default(),
        };
        let long_link = pending.long_link.take();

        let sparse_name = pax.sparse.name.clone();
        let entry_path = match (sparse_name, pax.path, long_name) {
            (Some(p), _, _) | (None, Some(p), _) | (None, None, Some(p)) => p,
            (None, None, None) => header.path_bytes().into_owned(),
        };
        let link = match (pax.linkpath, long_link) {
            (Some(l), _) => Some(l),
            (None, Some(l)) => Some(l),
            (None, None) => header.link_name_bytes().map(|l| l.into_owned()),
        };
        // Bytes stored after the header (and any sparse extension blocks).
        let stored = pax.size.unwrap_or(header_size);
        let kind = match typeflag {
            b'0' | 0 | b'7' | b'S' if entry_path.ends_with(b"/") => EntryKind::Dir,
            b'0' | 0 | b'7' | b'S' => EntryKind::File,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' | b'D' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            other => {
                return Err(ctx
                    .malformed(
                        header_pos,
                        format!("unsupported entry type {:?}", other as char),
                    )
                    .into());
            }
        };
        let sparse_err = |reason: String| {
            ctx.malformed(
                header_pos,
                format!(
                    "sparse file {:?}: {reason}",
                    String::from_utf8_lossy(&entry_path)
                ),
            )
        };
        if (typeflag == b'S' || pax.sparse.any()) && kind != EntryKind::File {
            return Err(
                sparse_err("sparse records on an entry that is not a regular file".into()).into(),
            );
        }
        if index >= max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_path_buf(),
                limit: max_entries,
            }
            .into());
        }
        let bad = |field: &str, e: String| ctx.malformed(header_pos, format!("{field}: {e}"));
        let mode = (unsigned(&block, MODE).map_err(|e| bad("mode", e))? & 0o7777) as u32;
        let uid = match pax.uid {
            Some(u) => u,
            None => unsigned(&block, UID).map_err(|e| bad("uid", e))?,
        };
        let gid = match pax.gid {
            Some(g) => g,
            None => unsigned(&block, GID).map_err(|e| bad("gid", e))?,
        };
        let mtime = match pax.mtime {
            Some(m) => m,
            None => signed(&block, MTIME).map_err(|e| bad("mtime", e))?,
        };
        let device = match kind {
            EntryKind::CharDevice | EntryKind::BlockDevice if has_magic(&block) => {
                let number = |field, what| {
                    unsigned(&block, field)
                        .and_then(|n| u32::try_from(n).map_err(|_| format!("{n} is out of range")))
                        .map_err(|e| bad(what, e))
                };
                Some((number(DEVMAJOR, "devmajor")?, number(DEVMINOR, "devminor")?))
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => Some((0, 0)),
            _ => None,
        };
        let link_target = match kind {
            EntryKind::HardLink | EntryKind::Symlink => Some(link.unwrap_or_default()),
            _ => None,
        };

        // The old GNU sparse map: in the header and in the extension blocks
        // that follow it, before the data.
        let oldgnu = if typeflag == b'S' {
            if pax.sparse.any() {
                return Err(sparse_err(
                    "both an old GNU sparse header and pax sparse records".into(),
                )
                .into());
            }
            let mut map = Vec::new();
            let (mut extended, realsize) = oldgnu_sparse(&block, &mut map).map_err(&sparse_err)?;
            let mut ext = [0u8; BLOCK as usize];
            while extended {
                if pos - header_pos > MAX_EXTENSION_HEADER {
                    return Err(sparse_err(format!(
                        "sparse extension blocks over {MAX_EXTENSION_HEADER} bytes"
                    ))
                    .into());
                }
                let at = pos;
                let more = read_block(&mut reader, &mut ext).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => sparse_err(format!(
                        "truncated archive in the sparse extension block at byte {at}"
                    )),
                    _ => ctx.read_error(at, e),
                })?;
                if !more {
                    return Err(sparse_err(format!(
                        "truncated archive before the sparse extension block at byte {at}"
                    ))
                    .into());
                }
                pos += BLOCK;
                extended = oldgnu_sparse_extension(&ext, &mut map).map_err(&sparse_err)?;
            }
            Some((map, realsize))
        } else {
            None
        };
        let mut data = ExactReader {
            inner: (&mut reader).take(stored),
        };
        // The sparse map, the real size and the data bytes stored, when the
        // entry is a sparse file.
        let sparse = if let Some((map, realsize)) = oldgnu {
            Some((map, realsize, stored))
        } else if pax.sparse.any() {
            let s = pax.sparse;
            match (s.major, s.minor) {
                (None | Some(0), _) => {
                    let map = s.map.unwrap_or_default();
                    if let Some(n) = s.numblocks
                        && n != map.len() as u64
                    {
                        return Err(sparse_err(format!(
                            "GNU.sparse.numblocks is {n}, the map has {} regions",
                            map.len()
                        ))
                        .into());
                    }
                    let realsize = s
                        .realsize
                        .ok_or_else(|| sparse_err("no GNU.sparse.size".into()))?;
                    Some((map, realsize, stored))
                }
                (Some(1), None | Some(0)) => {
                    if s.map.is_some() {
                        return Err(
                            sparse_err("sparse 1.0 with a map in its pax header".into()).into()
                        );
                    }
                    let realsize = s
                        .realsize
                        .ok_or_else(|| sparse_err("no GNU.sparse.realsize".into()))?;
                    let (map, map_bytes) = read_map_v1(&mut data, stored).map_err(|e| match e {
                        MapError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            sparse_err("truncated archive in the sparse map".into())
                        }
                        MapError::Io(e) => ctx.read_error(header_pos, e),
                        MapError::Bad(r) => sparse_err(r),
                    })?;
                    Some((map, realsize, stored - map_bytes))
                }
                (major, minor) => {
                    return Err(sparse_err(format!(
                        "GNU sparse format {}.{} is not supported",
                        major.unwrap_or(0),
                        minor.unwrap_or(0)
                    ))
                    .into());
                }
            }
        } else {
            None
        };
        if let Some((map, realsize, data_bytes)) = &sparse {
            check_sparse_map(map, *realsize, *data_bytes).map_err(&sparse_err)?;
        }
        let size = match &sparse {
            Some((_, realsize, _)) => *realsize,
            None => stored,
        };
        // Names are unique and sorted already (parse_pax).
        let xattrs = XattrSet::new(pax.xattrs).map_err(|name| {
            ctx.malformed(
                header_pos,
                format!(
                    "entry {:?}: attribute {:?} given twice",
                    String::from_utf8_lossy(&entry_path),
                    String::from_utf8_lossy(&name)
                ),
            )
        })?;
        let entry = ArchiveEntry {
            index,
            path: entry_path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: if kind == EntryKind::File { size } else { 0 },
            link_target,
            device,
            inode: None,
            xattrs,
        };

        if kind != EntryKind::File {
            f(&entry, &mut io::empty())?;
        } else if let Some((map, realsize, _)) = sparse {
            let mut content = SparseReader {
                data: &mut data,
                map: map.into_iter(),
                current: None,
                pos: 0,
                size: realsize,
            };
            f(&entry, &mut content)?;
        } else {
            f(&entry, &mut data)?;
        }
        io::copy(&mut data, &mut io::sink()).map_err(|e| ctx.read_error(header_pos, e))?;
        skip(&mut reader, padding(stored)).map_err(|e| ctx.read_error(header_pos, e))?;
        pos += stored + padding(stored);
        index += 1;
    }
}

/// Checks a sparse map against the real size and the data stored: regions
/// in increasing order, none overlapping the one before, none ending past
/// the real size, their lengths adding up to exactly the data stored (GNU
/// tar writes them so; anything else would yield a file other than the one
/// archived).
fn check_sparse_map(map: &[SparseRegion], realsize: u64, data_bytes: u64) -> Result<(), String> {
    if map.len() as u64 > MAX_SPARSE_REGIONS {
        return Err(format!(
            "{} map regions (limit {MAX_SPARSE_REGIONS})",
            map.len()
        ));
    }
    let mut end = 0u64;
    let mut total = 0u64;
    for r in map {
        if r.offset < end {
            return Err(format!(
                "map region at offset {} overlaps or precedes the region ending at {end}",
                r.offset
            ));
        }
        end = r
            .offset
            .checked_add(r.numbytes)
            .filter(|&e| e <= realsize)
            .ok_or_else(|| {
                format!(
                    "map region of {} bytes at offset {} ends past the real size {realsize}",
                    r.numbytes, r.offset
                )
            })?;
        total = total.saturating_add(r.numbytes);
    }
    if total != data_bytes {
        return Err(format!(
            "the map describes {total} bytes of data, the archive holds {data_bytes}"
        ));
    }
    Ok(())
}

enum MapError {
    Io(io::Error),
    Bad(String),
}

/// Reads the sparse 1.0 map at the start of the data (GNU tar manual,
/// "Sparse Formats", "PAX Format, Version 1.0"): decimal numbers, each ended
/// by a newline: the region count, then offset and numbytes of each region;
/// the map is padded with zeros to a block boundary. Returns the map and the
/// bytes it took. Held to [`MAX_SPARSE_REGIONS`] regions and
/// [`MAX_EXTENSION_HEADER`] bytes, checked before anything is stored.
fn read_map_v1<R: Read>(data: &mut R, stored: u64) -> Result<(Vec<SparseRegion>, u64), MapError> {
    let bad = |r: String| MapError::Bad(r);
    let mut block = [0u8; BLOCK as usize];
    let mut used = 0u64;
    let mut numbers: Vec<u64> = Vec::new();
    let mut want: Option<u64> = None;
    let mut current: Option<u64> = None;
    let mut digits = 0;
    loop {
        if used + BLOCK > stored {
            return Err(bad(format!(
                "the sparse map runs past the {stored} bytes of the member"
            )));
        }
        if used + BLOCK > MAX_EXTENSION_HEADER {
            return Err(bad(format!("sparse map over {MAX_EXTENSION_HEADER} bytes")));
        }
        data.read_exact(&mut block).map_err(MapError::Io)?;
        used += BLOCK;
        for &b in &block {
            match b {
                b'0'..=b'9' => {
                    digits += 1;
                    let v = current
                        .unwrap_or(0)
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .ok_or_else(|| bad("sparse map number out of range".into()))?;
                    current = Some(v);
                }
                b'\n' if digits > 0 => {
                    let v = current.take().unwrap_or(0);
                    digits = 0;
                    match want {
                        None => {
                            if v > MAX_SPARSE_REGIONS {
                                return Err(bad(format!(
                                    "sparse map of {v} regions (limit {MAX_SPARSE_REGIONS})"
                                )));
                            }
                            want = Some(2 * v);
                        }
                        Some(_) => numbers.push(v),
                    }
                    if want == Some(numbers.len() as u64) {
                        let map = numbers
                            .chunks_exact(2)
                            .map(|p| SparseRegion {
                                offset: p[0],
                                numbytes: p[1],
                            })
                            .collect();
                        return Ok((map, used));
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "sparse map has byte {b:#04x} where a number was expected"
                    )));
                }
            }
        }
    }
}

/// The content of a sparse file: the stored data regions at their offsets,
/// zero bytes in the holes, up to the real size. The map was checked
/// against the real size and the data before this is made.
struct SparseReader<'a, R> {
    data: &'a mut R,
    map: std::vec::IntoIter<SparseRegion>,
    /// The region being read: where it ends in the real file.
    current: Option<u64>,
    pos: u64,
    size: u64,
}

impl<R: BufRead> SparseReader<'_, R> {
    /// Moves to the region or hole `pos` is in; `false` at the real size.
    fn settle(&mut self) -> bool {
        loop {
            if self.pos >= self.size {
                return false;
            }
            if let Some(end) = self.current {
                if self.pos < end {
                    return true;
                }
                self.current = None;
            }
            let next = self.map.as_slice().first().copied();
            if self.pos < next.map_or(self.size, |r| r.offset) {
                return true;
            }
            match self.map.next() {
                Some(r) => self.current = Some(r.offset + r.numbytes),
                None => return false,
            }
        }
    }
}

/// Zeros handed out for the holes of a sparse file.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

impl<R: BufRead> BufRead for SparseReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.settle() {
            return Ok(&[]);
        }
        if let Some(end) = self.current {
            let left = usize::try_from(end - self.pos).unwrap_or(usize::MAX);
            let buf = self.data.fill_buf()?;
            if buf.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = buf.len().min(left);
            return Ok(&buf[..n]);
        }
        // In a hole: zeros up to the next region, or to the real size.
        let hole_end = self.map.as_slice().first().map_or(self.size, |r| r.offset);
        let n = ZEROS
            .len()
            .min(usize::try_from(hole_end - self.pos).unwrap_or(usize::MAX));
        Ok(&ZEROS[..n])
    }

    fn consume(&mut self, n: usize) {
        if self.current.is_some() {
            self.data.consume(n);
        }
        self.pos += n as u64;
    }
}

impl<R: BufRead> Read for SparseReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Yields exactly the declared number of bytes, or fails with
/// `UnexpectedEof` when the stream ends first.
struct ExactReader<R> {
    inner: io::Take<R>,
}

impl<R: BufRead> ExactReader<R> {
    fn ended_early(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "archive ends {} bytes before the end of this entry",
                self.inner.limit()
            ),
        )
    }
}

impl<R: BufRead> BufRead for ExactReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.inner.limit() == 0 {
            return Ok(&[]);
        }
        if self.inner.fill_buf()?.is_empty() {
            return Err(self.ended_early());
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
    }
}

impl<R: BufRead> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.inner.limit() == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(self.ended_early());
        }
        Ok(n)
    }
}
