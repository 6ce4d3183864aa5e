//! Reading artifacts: tar, tar.gz and SquashFS 4.0, behind one entry model.
//!
//! The model: [`open`] looks at the first bytes of a file (never at its name)
//! to decide the [`Format`], reads what the container says about itself
//! ([`ContainerInfo`]: gzip header, first tar header, SquashFS superblock), and
//! returns an [`Archive`]. [`Archive::for_each_entry`] then drives a single
//! pass over the entries **in archive order** and pushes each one to the
//! caller's closure as an [`ArchiveEntry`] (metadata) plus a [`BufRead`] over the
//! entry's content. The caller reads as much content as it wants; whatever it
//! leaves unread is skipped before the next entry. The closure's error stops
//! the pass and is returned as is.
//!
//! - **tar / tar.gz** (POSIX ustar and pax, GNU long names): read with the
//!   `tar` crate's header type, one 512-byte block at a time, see
//!   [`tar`]. Pax `path`, `linkpath`, `size`, `uid`, `gid` and
//!   `mtime` records and GNU `L`/`K` long names override the header fields.
//!   gzip may have several members (as `pigz` or `cat a.gz b.gz` produce).
//! - **SquashFS 4.0** (little endian): read by [`squashfs::read`] on the
//!   writer's structure modules, lazily and in bounded memory (the bounds
//!   are listed there); multi-block files are decompressed on the rayon
//!   pool. The root directory comes first with the path `.`; then a
//!   depth-first walk in directory-table order (sorted by name, as the format
//!   requires). **Hard links**: a non-directory inode reached through several
//!   directory entries is yielded with its own kind the first time and as
//!   [`EntryKind::HardLink`] to that first path every later time, exactly like
//!   a tar hard link; [`ArchiveEntry::inode`] carries the inode number on every
//!   occurrence, so callers can also group by it.
//!
//! Paths are raw bytes **as stored** (a tar may say `./a/b/` for a directory);
//! [`normalize_path`] turns them into the canonical relative form used to
//! compare archives and to extract.
//!
//! ```no_run
//! use std::io::Read;
//! let archive = repropack::format::open("demo.tar.gz".as_ref())?;
//! println!("format: {}", archive.format().name());
//! archive.for_each_entry(|entry, content| {
//!     let mut bytes = Vec::new();
//!     content.read_to_end(&mut bytes).map_err(|e| repropack::format::ArchiveError::content(entry, e))?;
//!     println!("{} {} {}", entry.kind().name(), entry.display_path(), bytes.len());
//!     Ok::<(), repropack::format::ArchiveError>(())
//! })?;
//! # Ok::<(), repropack::format::ArchiveError>(())
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::detect::{self, Undetected};
use super::gzip::GzipInfo;
use super::squashfs::SquashfsInfo;
use super::tar::TarInfo;
use super::{Format, squashfs, tar};
use crate::plan::{EntryKind, XattrSet};

/// What the container says about itself, for `diff` and `--json` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerInfo {
    /// A plain tar stream: what its first header says.
    Tar(TarInfo),
    /// gzip around a tar stream.
    TarGz {
        /// The first gzip member's header (RFC 1952).
        gzip: GzipInfo,
        /// What the first tar header inside says.
        tar: TarInfo,
    },
    /// A SquashFS 4.0 image: what its superblock says.
    SquashFs(SquashfsInfo),
}

/// One entry's metadata, as stored in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub(crate) index: u64,
    pub(crate) path: Vec<u8>,
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: i64,
    pub(crate) size: u64,
    pub(crate) link_target: Option<Vec<u8>>,
    pub(crate) device: Option<(u32, u32)>,
    pub(crate) inode: Option<u32>,
    pub(crate) xattrs: XattrSet,
}

impl ArchiveEntry {
    /// Position in archive order, from 0 (extension headers do not count).
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The path as stored: raw bytes, not normalized (see [`normalize_path`]).
    pub fn path(&self) -> &[u8] {
        &self.path
    }
    /// The path for messages (lossy UTF-8).
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
    /// What the entry is. A SquashFS inode met again is a
    /// [`EntryKind::HardLink`] to its first path.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub fn mode(&self) -> u32 {
        self.mode
    }
    /// Owner user id as stored (tar header or pax `uid`; SquashFS id table).
    pub fn uid(&self) -> u64 {
        self.uid
    }
    /// Owner group id as stored (tar header or pax `gid`; SquashFS id table).
    pub fn gid(&self) -> u64 {
        self.gid
    }
    /// Modification time in seconds since 1970 (fractions dropped).
    pub fn mtime(&self) -> i64 {
        self.mtime
    }
    /// Content length in bytes; 0 for everything but regular files.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Symlink target, or the stored path of a hard link's target.
    pub fn link_target(&self) -> Option<&[u8]> {
        self.link_target.as_deref()
    }
    /// `(major, minor)` of a character or block device.
    pub fn device(&self) -> Option<(u32, u32)> {
        self.device
    }
    /// SquashFS inode number (the same on every hard link of one inode);
    /// `None` for tar.
    pub fn inode(&self) -> Option<u32> {
        self.inode
    }
    /// Extended attributes as stored (tar pax `SCHILY.xattr.*` records,
    /// SquashFS xattr table), sorted by name; empty when none are stored.
    /// A hard link repeats its target's set.
    pub fn xattrs(&self) -> &XattrSet {
        &self.xattrs
    }
}

/// The content limit the command line applies to artifacts from elsewhere
/// (`extract`, `digest`, `verify`, `diff` `--max-size`): 16 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 16 << 30;

/// Limits applied while reading (the extractor passes its own).
///
/// Both are checked before any content is read, so a few bytes that
/// declare a huge file (a sparse tar member, a SquashFS inode of sparse
/// blocks) cost no time: reading is bounded by the archive's bytes and
/// these limits, never by what the archive declares.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Stop with [`ArchiveError::TooManyEntries`] past this many entries.
    /// For SquashFS the superblock's inode count is checked before any table
    /// is read.
    pub max_entries: u64,
    /// Stop with [`ArchiveError::TooLarge`] at the first regular file that
    /// brings the total content (hard links counted once) past this many
    /// bytes.
    pub max_size: u64,
}

impl Default for ReadOptions {
    /// No limit: the caller decides what its input deserves.
    fn default() -> ReadOptions {
        ReadOptions {
            max_entries: u64::MAX,
            max_size: u64::MAX,
        }
    }
}

/// A failure to read an archive. Each variant names the archive file and,
/// where known, the entry or offset.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The archive file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The first bytes match no format repropack reads.
    #[error("{path}: not an archive repropack can read: {what}")]
    UnknownFormat {
        /// The archive file.
        path: PathBuf,
        /// What was found instead, for the message.
        what: String,
    },
    /// The container's structures are invalid or truncated.
    #[error("{path}: malformed {format} at {location}: {reason}")]
    Malformed {
        /// The archive file.
        path: PathBuf,
        /// The layer at fault: `tar`, `tar.gz`, `gzip` or `squashfs`.
        format: &'static str,
        /// Where in the archive, in words (a byte offset, a table, an entry).
        location: String,
        /// What is wrong there.
        reason: String,
    },
    /// The archive has more entries than [`ReadOptions::max_entries`].
    #[error("{path}: more than {limit} entries")]
    TooManyEntries {
        /// The archive file.
        path: PathBuf,
        /// The limit that was passed.
        limit: u64,
    },
    /// A regular file would bring the total content past
    /// [`ReadOptions::max_size`]; nothing of it was read.
    #[error(
        "{path}: entry {entry:?}: its {size} bytes would bring the content to {total} bytes, more than the limit of {limit} (--max-size)"
    )]
    TooLarge {
        /// The archive file.
        path: PathBuf,
        /// The entry's path as stored (lossy UTF-8).
        entry: String,
        /// The entry's declared size.
        size: u64,
        /// The total content with this entry.
        total: u64,
        /// The limit that was passed.
        limit: u64,
    },
    /// Reading or decompressing an entry's content failed.
    #[error("entry {entry:?}: reading content: {source}")]
    Content {
        /// The entry's path as stored (lossy UTF-8).
        entry: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// Wraps an error met while reading `entry`'s content.
    pub fn content(entry: &ArchiveEntry, source: io::Error) -> ArchiveError {
        ArchiveError::Content {
            entry: entry.display_path(),
            source,
        }
    }
}

/// An opened artifact, ready for one pass over its entries.
pub struct Archive {
    path: PathBuf,
    format: Format,
    info: ContainerInfo,
    options: ReadOptions,
    inner: Inner,
}

enum Inner {
    Tar(BufReader<File>),
    TarGz(Box<BufReader<MultiGzDecoder<BufReader<File>>>>),
    SquashFs(Box<squashfs::read::SquashfsArchive>),
}

/// Opens `path` with default [`ReadOptions`]; see [`open_with`].
pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
    open_with(path, &ReadOptions::default())
}

/// Opens `path`, detects its format from the first bytes and reads the
/// container facts (for SquashFS: the superblock, the id table and the root
/// inode; the other tables are read as [`Archive::for_each_entry`] walks).
pub fn open_with(path: &Path, options: &ReadOptions) -> Result<Archive, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let detected = detect::detect(&mut file).map_err(|e| match e {
        Undetected::Io(source) => ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        },
        Undetected::Unknown(what) => ArchiveError::UnknownFormat {
            path: path.to_path_buf(),
            what,
        },
        Undetected::Gzip(reason) => ArchiveError::Malformed {
            path: path.to_path_buf(),
            format: "gzip",
            location: "start of stream".to_string(),
            reason,
        },
    })?;
    let (format, info, inner) = match detected {
        detect::Detected::Tar(tar) => {
            let reader = BufReader::with_capacity(1 << 16, file);
            (Format::Tar, ContainerInfo::Tar(tar), Inner::Tar(reader))
        }
        detect::Detected::TarGz(gzip, tar) => {
            let decoder = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file));
            let reader = BufReader::with_capacity(1 << 16, decoder);
            (
                Format::TarGz,
                ContainerInfo::TarGz { gzip, tar },
                Inner::TarGz(Box::new(reader)),
            )
        }
        detect::Detected::SquashFs => {
            let sq = squashfs::read::SquashfsArchive::open(path, file, options)?;
            let info = ContainerInfo::SquashFs(sq.info().clone());
            (Format::Squashfs, info, Inner::SquashFs(Box::new(sq)))
        }
    };
    Ok(Archive {
        path: path.to_path_buf(),
        format,
        info,
        options: options.clone(),
        inner,
    })
}

impl Archive {
    /// The format detected from the bytes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Container facts (gzip header, first tar header, SquashFS superblock).
    pub fn info(&self) -> &ContainerInfo {
        &self.info
    }

    /// The archive file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f` once per entry, in archive order, with the entry and a
    /// reader over its content (empty for anything but a regular file).
    /// The reader is buffered: `fill_buf`/`consume` hand out the reader's
    /// own buffers (a SquashFS block as decompressed, a run of a tar's
    /// bytes) without copying them into the caller's first.
    ///
    /// Returns `Ok(())` after the last entry, the first error `f` returns, or
    /// an [`ArchiveError`] (converted with `From`) when the archive is
    /// malformed or unreadable. Errors while `f` reads content come out of
    /// the reader as `io::Error`s; wrap them with [`ArchiveError::content`].
    pub fn for_each_entry<E, F>(self, mut f: F) -> Result<(), E>
    where
        E: From<ArchiveError>,
        F: FnMut(&ArchiveEntry, &mut dyn BufRead) -> Result<(), E>,
    {
        let max = self.options.max_entries;
        let limit = self.options.max_size;
        let path = self.path.clone();
        let mut total: u64 = 0;
        // Checked here, before `f` sees the entry, so no reader ever spends
        // time on content past the limit, whatever the format.
        let f = move |e: &ArchiveEntry, content: &mut dyn BufRead| {
            if e.kind() == EntryKind::File {
                total = total.saturating_add(e.size());
                if total > limit {
                    return Err(E::from(ArchiveError::TooLarge {
                        path: path.clone(),
                        entry: e.display_path(),
                        size: e.size(),
                        total,
                        limit,
                    }));
                }
            }
            f(e, content)
        };
        match self.inner {
            Inner::Tar(reader) => tar::read::visit(&self.path, Format::Tar, reader, max, f),
            Inner::TarGz(reader) => tar::read::visit(&self.path, Format::TarGz, reader, max, f),
            Inner::SquashFs(sq) => sq.visit(f),
        }
    }

    /// Reads every entry's metadata (content is skipped).
    pub fn list(self) -> Result<Vec<ArchiveEntry>, ArchiveError> {
        let mut out = Vec::new();
        self.for_each_entry(|e, _| {
            out.push(e.clone());
            Ok::<(), ArchiveError>(())
        })?;
        Ok(out)
    }
}

/// Why a stored path cannot be used as a relative path inside a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// Starts with `/`.
    Absolute,
    /// Has a `..` component.
    DotDot,
    /// Contains a NUL byte.
    Nul,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::Absolute => "absolute path",
            PathProblem::DotDot => "`..` component",
            PathProblem::Nul => "NUL byte in path",
        })
    }
}

/// The canonical relative form of a stored path: components joined by a
/// single `/`, with empty and `.` components dropped (so `./a//b/` becomes
/// `a/b`, and `.` or `./` becomes the empty path, the root). Absolute paths,
/// `..` components and NUL bytes are refused, never rewritten.
///
/// ```
/// use repropack::format::{normalize_path, PathProblem};
/// assert_eq!(normalize_path(b"./usr//bin/").unwrap(), b"usr/bin");
/// assert_eq!(normalize_path(b".").unwrap(), b"");
/// assert_eq!(normalize_path(b"/etc/passwd"), Err(PathProblem::Absolute));
/// assert_eq!(normalize_path(b"a/../../x"), Err(PathProblem::DotDot));
/// ```
pub fn normalize_path(raw: &[u8]) -> Result<Vec<u8>, PathProblem> {
    if raw.first() == Some(&b'/') {
        return Err(PathProblem::Absolute);
    }
    if raw.contains(&0) {
        return Err(PathProblem::Nul);
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(PathProblem::DotDot),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}
