//! tar writer: turns a [`Plan`] into a POSIX tar stream.
//!
//! Format (POSIX.1-2001 `pax`, see the ustar and pax sections of the POSIX
//! `pax` utility spec): every entry gets one 512-byte ustar header with all
//! fields set from the plan (mode, uid/gid, mtime, empty uname/gname). A pax
//! extended header (`typeflag 'x'`, named `././@PaxHeader`) precedes an
//! entry only when ustar cannot hold it: a path or link target longer than
//! 100 bytes, a path that is not all ASCII (raw bytes, as GNU tar writes it;
//! no `hdrcharset` record), a size of 8 GiB or more, or extended
//! attributes: one `SCHILY.xattr.NAME=VALUE` record each (GNU tar's
//! `--xattrs` records, which bsdtar reads too; the value raw, since pax
//! records are length-prefixed), in name order, after `path`, `linkpath`
//! and `size`; a hard link's attributes are its target's and are written
//! once, with the target. Owners are numbers only. No atime/ctime
//! records are ever written. The archive ends with two zero blocks and is
//! padded to a multiple of 10240 bytes, as GNU tar does with its default
//! blocking factor of 20. The result is byte-identical to GNU tar 1.34's
//! `--format=posix` output for the same normalized tree (tested).
//!
//! The writer never touches the filesystem except through
//! [`Content::reader`](crate::plan::Content::reader).

use std::io::{self, Write};

use tar::{EntryType, Header};

use super::header::{BLOCK, pax_records, schily_xattr_key, set_checksum};
use crate::digest::for_each_chunk;
use crate::plan::{Entry, EntryKind, Plan};
use crate::progress::Counters;

const RECORD: u64 = 10240;

/// A failure while writing one entry.
#[derive(Debug, thiserror::Error)]
#[error("tar entry {entry:?}: {source}")]
pub struct TarError {
    /// The entry's archive path.
    pub entry: String,
    /// What failed (reading the content, or writing the stream).
    #[source]
    pub source: io::Error,
}

/// Writes `plan` as a tar stream to `out` and returns `out`.
///
/// ```no_run
/// # use repropack::stage::{stage, Source, StageOptions};
/// let plan = stage(&[Source::parse("fixtures/demo")], &StageOptions::default()).unwrap();
/// let bytes = repropack::format::tar::write_tar(&plan, Vec::new()).unwrap();
/// assert_eq!(bytes.len() % 10240, 0);
/// ```
pub fn write_tar<W: Write>(plan: &Plan, out: W) -> Result<W, TarError> {
    write_tar_with_progress(plan, out, None)
}

/// [`write_tar`], counting each entry written into `progress`.
pub fn write_tar_with_progress<W: Write>(
    plan: &Plan,
    out: W,
    progress: Option<&Counters>,
) -> Result<W, TarError> {
    let mut out = CountingWriter {
        inner: out,
        count: 0,
    };
    let entries = plan.entries();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in entries {
        write_entry(&mut out, plan, entry, &mut buf).map_err(|source| TarError {
            entry: entry.display_path(),
            source,
        })?;
        if let Some(p) = progress {
            let bytes = if entry.hardlink_of().is_some() {
                0
            } else {
                entry.size()
            };
            p.wrote(1, bytes);
        }
    }
    let end = |source| TarError {
        entry: "<end of archive>".to_string(),
        source,
    };
    // End of archive: two zero blocks, then pad to the record size.
    let mut total = out.count + 2 * BLOCK;
    total = total.div_ceil(RECORD) * RECORD;
    let zeros = vec![0u8; (total - out.count) as usize];
    out.write_all(&zeros).map_err(end)?;
    out.flush().map_err(end)?;
    Ok(out.inner)
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// ustar can store a size in 11 octal digits: below 8 GiB.
const USTAR_MAX_SIZE: u64 = 0o77777777777;

fn write_entry<W: Write>(
    out: &mut CountingWriter<W>,
    plan: &Plan,
    entry: &Entry,
    buf: &mut [u8],
) -> io::Result<()> {
    let all = plan.entries();
    let mut name = entry.path().to_vec();
    if entry.kind() == EntryKind::Dir {
        name.push(b'/');
    }
    let (typ, link, size) = match (entry.kind(), entry.hardlink_of()) {
        (EntryKind::File, Some(target)) => (EntryType::Link, all[target].path().to_vec(), 0),
        (EntryKind::File, None) => (EntryType::Regular, Vec::new(), entry.size()),
        (EntryKind::Dir, _) => (EntryType::Directory, Vec::new(), 0),
        (EntryKind::Symlink, _) => (EntryType::Symlink, entry.symlink_target().to_vec(), 0),
        (EntryKind::Fifo, _) => (EntryType::Fifo, Vec::new(), 0),
        (EntryKind::CharDevice, _) => (EntryType::Char, Vec::new(), 0),
        (EntryKind::BlockDevice, _) => (EntryType::Block, Vec::new(), 0),
        // A plan expresses hard links as `hardlink_of` groups; tar has no
        // socket type (`pack_to_path` refuses such a plan first).
        (EntryKind::HardLink | EntryKind::Socket, _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a plan cannot hold a {} entry", entry.kind().name()),
            ));
        }
    };

    // Which fields need a pax record follows GNU tar's `--format=posix`
    // exactly: `path` when the name is longer than 100 bytes or not all
    // ASCII, `linkpath` when the target is longer than 100 bytes. Values are
    // the raw bytes (GNU tar writes no `hdrcharset` and warns about it).
    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if name.len() > 100 || !name.is_ascii() {
        pax.push((b"path".to_vec(), name.clone()));
    }
    if link.len() > 100 {
        pax.push((b"linkpath".to_vec(), link.clone()));
    }
    if size > USTAR_MAX_SIZE {
        pax.push((b"size".to_vec(), size.to_string().into_bytes()));
    }
    if typ != EntryType::Link {
        // The set is sorted by name: the records come in name order.
        for (attr, value) in plan.xattrs(entry).iter() {
            pax.push((schily_xattr_key(attr), value.to_vec()));
        }
    }

    if !pax.is_empty() {
        let body = pax_records(&pax);
        let mut h = base_header(
            entry,
            EntryType::XHeader,
            b"././@PaxHeader",
            b"",
            body.len() as u64,
        )?;
        h.set_mode(0o644);
        // GNU tar leaves devmajor/devminor empty in extended headers.
        h.as_mut_bytes()[329..345].fill(0);
        set_checksum(&mut h);
        out.write_all(h.as_bytes())?;
        out.write_all(&body)?;
        pad(out, body.len() as u64)?;
    }

    let header = base_header(entry, typ, &name, &link, size)?;
    out.write_all(header.as_bytes())?;
    if typ == EntryType::Regular {
        let content = entry
            .content()
            .ok_or_else(|| io::Error::other("regular file without content"))?;
        let mut reader = content
            .reader(entry.name())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let copied = for_each_chunk(&mut reader, buf, |chunk| out.write_all(chunk))?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "content size changed",
            ));
        }
        pad(out, size)?;
    }
    Ok(())
}

/// Builds a ustar header; names longer than the field are truncated (the
/// pax record carries the real one).
fn base_header(
    entry: &Entry,
    typ: EntryType,
    name: &[u8],
    link: &[u8],
    size: u64,
) -> io::Result<Header> {
    let mut h = Header::new_ustar();
    {
        let ustar = h
            .as_ustar_mut()
            .ok_or_else(|| io::Error::other("ustar header expected"))?;
        let n = name.len().min(100);
        ustar.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        ustar.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_entry_type(typ);
    h.set_mode(entry.mode());
    h.set_uid(u64::from(entry.uid()));
    h.set_gid(u64::from(entry.gid()));
    h.set_mtime(entry.mtime());
    h.set_size(size.min(USTAR_MAX_SIZE));
    let (major, minor) = entry.rdev();
    h.set_device_major(major)?;
    h.set_device_minor(minor)?;
    set_checksum(&mut h);
    Ok(h)
}

fn pad<W: Write>(out: &mut W, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK as usize][..BLOCK as usize - rem])?;
    }
    Ok(())
}
