//! tar reading: one 512-byte header block at a time, parsed with the `tar`
//! crate's [`Header`], extension headers handled here.
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
//!   `gid`, `mtime` are applied; others ignored).
//! - `g`: pax global records, ignored (git archive stores its commit there).
//! - `L` / `K`: GNU long name / long link target for the next entry.
//! - `V`: GNU volume label, skipped.
//! - `S` (GNU sparse), `M` (multi-volume), `N` (old GNU long names) and
//!   other letters are refused as unsupported.
//! - `0`, NUL, `7`: regular file (a pre-POSIX header whose name ends in `/`
//!   is a directory); `1` hard link; `2` symlink; `3`/`4` character/block
//!   device; `5` directory (GNU `D` dump directory too); `6` fifo.

use std::io::{self, Read};
use std::path::Path;

use tar::Header;

use super::header::{
    BLOCK, GID, MTIME, PaxFields, UID, checksum_ok, is_blank, padding, parse_pax, typeflag,
};
use crate::format::{ArchiveEntry, ArchiveError, Format};
use crate::plan::EntryKind;

/// Largest pax or GNU long-name extension header accepted, in bytes.
pub const MAX_EXTENSION_HEADER: u64 = 1 << 20;

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
    R: Read,
    E: From<ArchiveError>,
    F: FnMut(&ArchiveEntry, &mut dyn Read) -> Result<(), E>,
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
        let header_size = header
            .entry_size()
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

        let pax = match pending.pax.take() {
            Some(data) => parse_pax(&data).map_err(|r| ctx.malformed(header_pos, r))?,
            None => PaxFields::default(),
        };
        let long_name = pending.long_name.take();
        let long_link = pending.long_link.take();

        let entry_path = match (pax.path, long_name) {
            (Some(p), _) => p,
            (None, Some(p)) => p,
            (None, None) => header.path_bytes().into_owned(),
        };
        let link = match (pax.linkpath, long_link) {
            (Some(l), _) => Some(l),
            (None, Some(l)) => Some(l),
            (None, None) => header.link_name_bytes().map(|l| l.into_owned()),
        };
        let size = pax.size.unwrap_or(header_size);
        let kind = match typeflag {
            b'0' | 0 | b'7' if entry_path.ends_with(b"/") => EntryKind::Dir,
            b'0' | 0 | b'7' => EntryKind::File,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' | b'D' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            b'S' => {
                return Err(ctx
                    .malformed(header_pos, "GNU sparse entries are not supported")
                    .into());
            }
            other => {
                return Err(ctx
                    .malformed(
                        header_pos,
                        format!("unsupported entry type {:?}", other as char),
                    )
                    .into());
            }
        };
        if index >= max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_path_buf(),
                limit: max_entries,
            }
            .into());
        }
        let bad = |field: &str, e: io::Error| ctx.malformed(header_pos, format!("{field}: {e}"));
        let mode = header.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let uid = match pax.uid {
            Some(u) => u,
            None if is_blank(&block, UID) => 0,
            None => header.uid().map_err(|e| bad("uid", e))?,
        };
        let gid = match pax.gid {
            Some(g) => g,
            None if is_blank(&block, GID) => 0,
            None => header.gid().map_err(|e| bad("gid", e))?,
        };
        let mtime = match pax.mtime {
            Some(m) => m,
            None if is_blank(&block, MTIME) => 0,
            None => i64::try_from(header.mtime().map_err(|e| bad("mtime", e))?)
                .map_err(|_| ctx.malformed(header_pos, "mtime out of range"))?,
        };
        let device = match kind {
            EntryKind::CharDevice | EntryKind::BlockDevice => Some((
                header
                    .device_major()
                    .map_err(|e| bad("devmajor", e))?
                    .unwrap_or(0),
                header
                    .device_minor()
                    .map_err(|e| bad("devminor", e))?
                    .unwrap_or(0),
            )),
            _ => None,
        };
        let link_target = match kind {
            EntryKind::HardLink | EntryKind::Symlink => Some(link.unwrap_or_default()),
            _ => None,
        };
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
        };

        let mut content = ExactReader {
            inner: (&mut reader).take(size),
        };
        if kind == EntryKind::File {
            f(&entry, &mut content)?;
        } else {
            f(&entry, &mut io::empty())?;
        }
        io::copy(&mut content, &mut io::sink()).map_err(|e| ctx.read_error(header_pos, e))?;
        skip(&mut reader, padding(size)).map_err(|e| ctx.read_error(header_pos, e))?;
        pos += size + padding(size);
        index += 1;
    }
}

/// Yields exactly the declared number of bytes, or fails with
/// `UnexpectedEof` when the stream ends first.
struct ExactReader<R> {
    inner: io::Take<R>,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.inner.limit() == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "archive ends {} bytes before the end of this entry",
                    self.inner.limit()
                ),
            ));
        }
        Ok(n)
    }
}
