//! Staging: turns source trees into a [`Plan`], the ordered list of entries
//! every format writer consumes.
//!
//! Staging walks the filesystem and normalizes metadata; it knows nothing of
//! archive formats. Writers never walk the filesystem: they read content only
//! through [`Content::reader`], which also checks that the file did not change
//! since it was staged.
//!
//! Order: depth-first, each directory's children sorted by raw name bytes,
//! parents before children (like GNU tar `--sort=name`). The order the OS
//! lists files in never matters because children are kept in a sorted map.
//!
//! ```no_run
//! use repropack::stage::{stage, Source, StageOptions};
//! let plan = stage(&[Source::parse("fixtures/demo")], &StageOptions::default())?;
//! for entry in plan.entries() {
//!     println!("{}", String::from_utf8_lossy(entry.path()));
//! }
//! # Ok::<(), repropack::stage::StageError>(())
//! ```

use std::collections::{BTreeMap, HashMap, btree_map};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

pub mod from_tar;
pub use from_tar::stage_tar;

/// Longest archive path staged, in bytes. Longer paths cannot be named in
/// one system call on extraction, and a tar stream could otherwise ask for
/// a tree whose paths add up quadratically (a 120 KiB tar with a path of
/// 60 000 components would stage 3.6 GB of paths).
pub const MAX_ARCHIVE_PATH: usize = 4095;

/// Timestamp used for every entry when neither `--mtime` nor
/// `SOURCE_DATE_EPOCH` is given: 1980-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: u64 = 315_532_800;

/// Errors raised while staging. Each names the source path or archive path
/// it is about.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("source {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("source {0} does not exist")]
    Missing(PathBuf),
    #[error("{path}: {kind} refused (pass --specials to include fifos and device nodes)")]
    Special { path: PathBuf, kind: &'static str },
    #[error("archive path {archive:?} comes from both {first} and {second}")]
    Collision {
        archive: String,
        first: String,
        second: String,
    },
    #[error("archive path {archive:?} is needed as a directory but {source_path} is not one")]
    NotADirectory {
        archive: String,
        source_path: String,
    },
    #[error("invalid exclude pattern {pattern:?}: {message}")]
    Glob { pattern: String, message: String },
    #[error("invalid destination {dest:?}: {reason}")]
    Dest { dest: String, reason: &'static str },
    #[error("invalid {field} {value:?}: expected {expected}")]
    Option {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: input not stable, {what} changed while packing")]
    Unstable { path: PathBuf, what: &'static str },
    #[error("archive path {archive:?} is {len} bytes; at most {max} (PATH_MAX - 1) are allowed")]
    PathTooLong {
        archive: String,
        len: usize,
        max: usize,
    },
    #[error("{count} entries staged; a plan holds at most 2^32 - 1")]
    TooManyEntries { count: usize },
    #[error("tar {input}: entry {entry:?}: {reason}")]
    Tar {
        input: String,
        entry: String,
        reason: String,
    },
}

/// What an entry is. Fifos and devices appear only when the user asked for
/// them (`--specials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
}

impl EntryKind {
    /// A short lowercase name, as used in manifests and messages.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::File => "file",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice => "char",
            EntryKind::BlockDevice => "block",
        }
    }
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// A file on disk, `dir/name`, with the size and mtime seen when it
    /// was staged. The directory's path is shared by all its files: a plan
    /// holds each source directory path once, not once per file.
    Path {
        dir: Arc<Path>,
        name: Box<OsStr>,
        size: u64,
        mtime_ns: MtimeNs,
    },
    /// A byte range of an already-open spool file (e.g. a tar stream copied
    /// to a temp file).
    Spool {
        file: Arc<File>,
        offset: u64,
        size: u64,
    },
}

impl Content {
    /// Number of bytes the reader yields.
    pub fn size(&self) -> u64 {
        match self {
            Content::Path { size, .. } | Content::Spool { size, .. } => *size,
        }
    }

    /// A name for messages: the source path, or `<spool>`.
    pub fn describe(&self) -> PathBuf {
        match self {
            Content::Path { dir, name, .. } => dir.join(&**name),
            Content::Spool { .. } => PathBuf::from("<spool>"),
        }
    }

    /// Opens the content for reading. The reader yields exactly
    /// [`Content::size`] bytes; if the file shrank, grew, or its mtime changed
    /// since staging, reading fails with [`StageError::Unstable`] (wrapped in an
    /// `io::Error` of kind `InvalidData`).
    pub fn reader(&self) -> Result<ContentReader, StageError> {
        match self {
            Content::Path {
                dir,
                name,
                size,
                mtime_ns,
            } => {
                let path = &dir.join(&**name);
                let file = File::open(path).map_err(|source| StageError::Io {
                    path: path.clone(),
                    source,
                })?;
                let meta = file.metadata().map_err(|source| StageError::Io {
                    path: path.clone(),
                    source,
                })?;
                if meta.len() != *size {
                    return Err(StageError::Unstable {
                        path: path.clone(),
                        what: "size",
                    });
                }
                if mtime_ns_of(&meta) != *mtime_ns {
                    return Err(StageError::Unstable {
                        path: path.clone(),
                        what: "mtime",
                    });
                }
                Ok(ContentReader {
                    inner: ReaderInner::File(file),
                    path: path.clone(),
                    remaining: *size,
                    offset: 0,
                    mtime_ns: Some(*mtime_ns),
                })
            }
            Content::Spool { file, offset, size } => Ok(ContentReader {
                inner: ReaderInner::Spool(file.clone()),
                path: PathBuf::from("<spool>"),
                remaining: *size,
                offset: *offset,
                mtime_ns: None,
            }),
        }
    }
}

enum ReaderInner {
    File(File),
    Spool(Arc<File>),
}

/// Reader returned by [`Content::reader`].
pub struct ContentReader {
    inner: ReaderInner,
    path: PathBuf,
    remaining: u64,
    offset: u64,
    mtime_ns: Option<MtimeNs>,
}

impl ContentReader {
    fn unstable(&self, what: &'static str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            StageError::Unstable {
                path: self.path.clone(),
                what,
            },
        )
    }

    /// Called once all expected bytes were read: the file must be at EOF and
    /// unchanged.
    fn check_end(&mut self) -> io::Result<()> {
        let ReaderInner::File(file) = &mut self.inner else {
            return Ok(());
        };
        let mut probe = [0u8; 1];
        let grew = file.read(&mut probe)? != 0;
        let mtime = mtime_ns_of(&file.metadata()?);
        if grew {
            Err(self.unstable("size"))
        } else if Some(mtime) != self.mtime_ns {
            Err(self.unstable("mtime"))
        } else {
            Ok(())
        }
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            if self.remaining == 0 && self.mtime_ns.is_some() {
                self.check_end()?;
                self.mtime_ns = None;
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = match &mut self.inner {
            ReaderInner::File(f) => f.read(&mut buf[..want])?,
            ReaderInner::Spool(f) => f.read_at(&mut buf[..want], self.offset)?,
        };
        if n == 0 {
            return Err(self.unstable("size"));
        }
        self.remaining -= n as u64;
        self.offset += n as u64;
        Ok(n)
    }
}

/// A source file's mtime as (seconds, nanoseconds): exact, and 16 bytes
/// with 8-byte alignment where an i128 would pad every plan entry.
type MtimeNs = (i64, u32);

fn mtime_ns_of(meta: &fs::Metadata) -> MtimeNs {
    // st_mtime_nsec is always 0..1e9.
    (meta.mtime(), meta.mtime_nsec() as u32)
}

/// One entry of the plan.
#[derive(Debug, Clone)]
pub struct Entry {
    // Boxed slices, not Vecs: a plan holds one entry per staged object,
    // and the capacity word is never used after staging.
    path: Box<[u8]>,
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    content: Option<Content>,
    symlink_target: Box<[u8]>,
    /// Index of the group's first member; u32 keeps the entry small
    /// (`finish_plan` refuses plans of 2^32 entries or more).
    hardlink_of: Option<u32>,
    links: u32,
    rdev: (u32, u32),
}

impl Entry {
    /// Path inside the archive: raw bytes, no leading or trailing `/`,
    /// components joined by `/`.
    pub fn path(&self) -> &[u8] {
        &self.path
    }
    /// The last component of [`Entry::path`].
    pub fn name(&self) -> &[u8] {
        match self.path.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.path[i + 1..],
            None => &self.path,
        }
    }
    /// Depth of the entry: 1 for a child of the root.
    pub fn depth(&self) -> usize {
        self.path.iter().filter(|&&b| b == b'/').count() + 1
    }
    pub fn kind(&self) -> EntryKind {
        self.kind
    }
    /// Normalized permission bits (`0o7777` at most), no file-type bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }
    pub fn uid(&self) -> u32 {
        self.uid
    }
    pub fn gid(&self) -> u32 {
        self.gid
    }
    /// Modification time in seconds since the Unix epoch.
    pub fn mtime(&self) -> u64 {
        self.mtime
    }
    /// Size of a regular file's content; 0 for everything else.
    pub fn size(&self) -> u64 {
        self.content.as_ref().map_or(0, Content::size)
    }
    /// Content of a regular file (also present on hard-link members).
    pub fn content(&self) -> Option<&Content> {
        self.content.as_ref()
    }
    /// Target of a symlink, raw bytes; empty for other kinds.
    pub fn symlink_target(&self) -> &[u8] {
        &self.symlink_target
    }
    /// For the second and later members of a hard-link group: the index in
    /// [`Plan::entries`] of the group's first member (its target).
    pub fn hardlink_of(&self) -> Option<usize> {
        self.hardlink_of.map(|i| i as usize)
    }
    /// Number of archive paths sharing this entry's content through hard
    /// links (1 for an ordinary file; same value on every group member).
    pub fn links(&self) -> u32 {
        self.links
    }
    /// (major, minor) of a device node; (0, 0) otherwise.
    pub fn rdev(&self) -> (u32, u32) {
        self.rdev
    }
    /// Path as text for messages (lossy for non-UTF-8 bytes).
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Metadata of the archive root directory.
#[derive(Debug, Clone, Copy)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

/// The staged plan: entries in archive order plus the root's metadata.
#[derive(Debug, Clone)]
pub struct Plan {
    root: RootMeta,
    entries: Vec<Entry>,
    warnings: Vec<String>,
    epoch: u64,
}

impl Plan {
    pub fn root(&self) -> RootMeta {
        self.root
    }
    /// Entries in archive order (the root itself is not an entry).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// Things skipped with a warning (sockets).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The epoch used for timestamps.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// How owners are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Parses `UID:GID` (numbers only).
    pub fn parse(s: &str) -> Result<Owner, StageError> {
        let bad = || StageError::Option {
            field: "--owner",
            value: s.to_string(),
            expected: "UID:GID, two decimal numbers",
        };
        let (u, g) = s.split_once(':').ok_or_else(bad)?;
        Ok(Owner {
            uid: u.parse().map_err(|_| bad())?,
            gid: g.parse().map_err(|_| bad())?,
        })
    }
}

/// Options that shape the plan. `Default` gives the contract's defaults with
/// the epoch fixed at [`DEFAULT_EPOCH`]; use [`epoch_from_env`] to honour
/// `SOURCE_DATE_EPOCH`.
#[derive(Debug, Clone)]
pub struct StageOptions {
    pub epoch: u64,
    pub clamp_mtime: bool,
    pub owner: Owner,
    pub keep_modes: bool,
    pub keep_special_bits: bool,
    pub follow_symlinks: bool,
    pub specials: bool,
    pub excludes: Vec<String>,
    /// Threads that read directories and metadata (at least 1). Never
    /// changes the plan.
    pub jobs: usize,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions {
            epoch: DEFAULT_EPOCH,
            clamp_mtime: false,
            owner: Owner::default(),
            keep_modes: false,
            keep_special_bits: false,
            follow_symlinks: false,
            specials: false,
            excludes: Vec::new(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The epoch to use: `explicit` (from `--mtime`) if given, else
/// `SOURCE_DATE_EPOCH` if set, else [`DEFAULT_EPOCH`].
pub fn epoch_from_env(explicit: Option<&str>) -> Result<u64, StageError> {
    let (field, value) = match explicit {
        Some(v) => ("--mtime", v.to_string()),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => ("SOURCE_DATE_EPOCH", v),
            Err(_) => return Ok(DEFAULT_EPOCH),
        },
    };
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StageError::Option {
            field,
            value,
            expected: "a non-negative integer number of seconds since 1970",
        });
    }
    trimmed.parse().map_err(|_| StageError::Option {
        field,
        value: value.clone(),
        expected: "a number of seconds that fits in 64 bits",
    })
}

/// One source argument: `SRC` or `SRC:DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// Archive path the source maps to; empty means "the root" for a
    /// directory and "its own name under the root" for anything else.
    pub dest: Vec<u8>,
}

impl Source {
    /// Parses a command-line source. If the whole argument names an existing
    /// path it is `SRC`; otherwise it is split at the last `:` into
    /// `SRC:DEST`.
    pub fn parse(arg: impl AsRef<OsStr>) -> Source {
        let arg = arg.as_ref();
        let bytes = arg.as_bytes();
        if Path::new(arg).symlink_metadata().is_err()
            && let Some(i) = bytes.iter().rposition(|&b| b == b':')
        {
            return Source {
                path: PathBuf::from(OsStr::from_bytes(&bytes[..i])),
                dest: bytes[i + 1..].to_vec(),
            };
        }
        Source {
            path: PathBuf::from(arg),
            dest: Vec::new(),
        }
    }
}

/// Normalizes an archive destination: strips leading/trailing `/` and `./`,
/// rejects `..` and empty components in between.
fn normalize_dest(dest: &[u8]) -> Result<Vec<Vec<u8>>, StageError> {
    let mut parts = Vec::new();
    for comp in dest.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => {
                return Err(StageError::Dest {
                    dest: String::from_utf8_lossy(dest).into_owned(),
                    reason: "`..` is not allowed in an archive path",
                });
            }
            c => parts.push(c.to_vec()),
        }
    }
    Ok(parts)
}

/// Node of the in-memory tree being assembled.
#[derive(Debug)]
struct Node {
    /// None for a directory synthesized as a parent of a DEST or the root.
    staged: Option<Staged>,
    /// Boxed: a B-tree leaf holds 11 values inline, and most directories
    /// have few children, so inline nodes would waste most of each leaf.
    children: BTreeMap<Box<[u8]>, Box<Node>>,
}

#[derive(Debug)]
struct Staged {
    kind: EntryKind,
    mode: u32,
    mtime: u64,
    content: Option<Content>,
    symlink_target: Vec<u8>,
    rdev: (u32, u32),
    /// (dev, ino) of a regular file with more than one link, for grouping.
    inode: Option<(u64, u64)>,
    /// Where the entry came from, for messages. Empty when `content` is a
    /// [`Content::Path`]: that path says it, and is not stored twice.
    origin: Box<str>,
}

impl Staged {
    fn source(&self) -> String {
        match &self.content {
            Some(content @ Content::Path { .. }) if self.origin.is_empty() => {
                content.describe().display().to_string()
            }
            _ => self.origin.to_string(),
        }
    }
}

/// Walks sources. Shared by the staging threads (`&self` only): what one
/// directory scan finds is returned, never written to shared state.
struct Stager<'a> {
    opts: &'a StageOptions,
    excludes: Excludes,
}

/// What staging one filesystem object found.
enum Found {
    Staged(Staged),
    /// Skipped, with the warning to print.
    Skipped(String),
}

/// A staged object with everything below it, and the warnings raised there
/// in name order.
struct Scanned {
    node: Option<Node>,
    warnings: Vec<String>,
}

/// Exclude patterns, matched against the archive path. A pattern without
/// `/` matches any single component name at any depth (like GNU tar's
/// `--exclude`); one with `/` matches the whole archive path. `*` never
/// crosses `/`; `**` does.
struct Excludes {
    by_name: GlobSet,
    by_path: GlobSet,
}

impl Excludes {
    fn new(patterns: &[String]) -> Result<Excludes, StageError> {
        let mut by_name = GlobSetBuilder::new();
        let mut by_path = GlobSetBuilder::new();
        for pattern in patterns {
            let trimmed = pattern.trim_start_matches('/').trim_end_matches('/');
            let glob = GlobBuilder::new(trimmed)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| StageError::Glob {
                    pattern: pattern.clone(),
                    message: e.kind().to_string(),
                })?;
            if trimmed.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| StageError::Glob {
                pattern: patterns.join(" "),
                message: e.to_string(),
            })
        };
        Ok(Excludes {
            by_name: build(by_name)?,
            by_path: build(by_path)?,
        })
    }

    fn is_excluded(&self, archive_path: &[u8]) -> bool {
        let name = match archive_path.iter().rposition(|&b| b == b'/') {
            Some(i) => &archive_path[i + 1..],
            None => archive_path,
        };
        self.by_name.is_match(Path::new(OsStr::from_bytes(name)))
            || self
                .by_path
                .is_match(Path::new(OsStr::from_bytes(archive_path)))
    }
}

/// Normalized permission bits for an entry of `kind` whose source had
/// `raw_mode` (st_mode or a tar header's mode; type bits are ignored).
fn normalize_mode(opts: &StageOptions, kind: EntryKind, raw_mode: u32) -> u32 {
    let perm = raw_mode & 0o777;
    let special = raw_mode & 0o7000;
    let base = if kind == EntryKind::Symlink {
        0o777
    } else if opts.keep_modes {
        perm
    } else {
        match kind {
            EntryKind::Dir => 0o755,
            EntryKind::File if perm & 0o111 != 0 => 0o755,
            _ => 0o644,
        }
    };
    if opts.keep_special_bits && kind != EntryKind::Symlink {
        base | special
    } else {
        base
    }
}

/// The entry mtime for a source mtime of `src` seconds: the epoch, or with
/// `clamp_mtime` the older of the two.
fn normalize_mtime(opts: &StageOptions, src: i64) -> u64 {
    if opts.clamp_mtime {
        u64::try_from(src).unwrap_or(0).min(opts.epoch)
    } else {
        opts.epoch
    }
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
        p.extend_from_slice(prefix);
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `b` for a message: whole if short, else its first and last 60 bytes.
pub(crate) fn abbreviated(b: &[u8]) -> String {
    if b.len() <= 160 {
        lossy(b)
    } else {
        format!("{}…{}", lossy(&b[..60]), lossy(&b[b.len() - 60..]))
    }
}

/// Refuses an archive path longer than [`MAX_ARCHIVE_PATH`].
pub(crate) fn check_path_len(archive: &[u8]) -> Result<(), StageError> {
    if archive.len() > MAX_ARCHIVE_PATH {
        return Err(StageError::PathTooLong {
            archive: abbreviated(archive),
            len: archive.len(),
            max: MAX_ARCHIVE_PATH,
        });
    }
    Ok(())
}

impl Stager<'_> {
    fn io(path: &Path, source: io::Error) -> StageError {
        StageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Normalized permission bits for an entry of `kind` whose source had
    /// `raw_mode` (st_mode, with type bits).
    fn mode_for(&self, kind: EntryKind, raw_mode: u32) -> u32 {
        normalize_mode(self.opts, kind, raw_mode)
    }

    fn mtime_for(&self, meta: &fs::Metadata) -> u64 {
        normalize_mtime(self.opts, meta.mtime())
    }

    /// Stages one filesystem object (not recursing).
    /// `path` is `dir/name`.
    fn stage_one(
        &self,
        path: &Path,
        (dir, name): (&Arc<Path>, &OsStr),
        meta: &fs::Metadata,
    ) -> Result<Found, StageError> {
        let ft = meta.file_type();
        let (kind, content, target, rdev) = if ft.is_dir() {
            (EntryKind::Dir, None, Vec::new(), (0, 0))
        } else if ft.is_file() {
            let content = Content::Path {
                dir: dir.clone(),
                name: name.into(),
                size: meta.len(),
                mtime_ns: mtime_ns_of(meta),
            };
            (EntryKind::File, Some(content), Vec::new(), (0, 0))
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|e| Self::io(path, e))?;
            (
                EntryKind::Symlink,
                None,
                target.as_os_str().as_bytes().to_vec(),
                (0, 0),
            )
        } else if ft.is_socket() {
            return Ok(Found::Skipped(format!(
                "{}: socket skipped",
                path.display()
            )));
        } else {
            let kind = if ft.is_fifo() {
                EntryKind::Fifo
            } else if ft.is_char_device() {
                EntryKind::CharDevice
            } else {
                EntryKind::BlockDevice
            };
            if !self.opts.specials {
                return Err(StageError::Special {
                    path: path.to_path_buf(),
                    kind: match kind {
                        EntryKind::Fifo => "fifo",
                        EntryKind::CharDevice => "character device",
                        _ => "block device",
                    },
                });
            }
            let rdev = meta.rdev();
            let dev = if kind == EntryKind::Fifo {
                (0, 0)
            } else {
                (libc::major(rdev), libc::minor(rdev))
            };
            (kind, None, Vec::new(), dev)
        };
        let inode = (kind == EntryKind::File && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
        let origin = if content.is_some() {
            Box::default()
        } else {
            path.display().to_string().into_boxed_str()
        };
        Ok(Found::Staged(Staged {
            kind,
            mode: self.mode_for(kind, meta.mode()),
            mtime: self.mtime_for(meta),
            content,
            symlink_target: target,
            rdev,
            inode,
            origin,
        }))
    }

    fn metadata(&self, path: &Path, top: bool) -> Result<fs::Metadata, StageError> {
        let res = if top || self.opts.follow_symlinks {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        res.map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                if fs::symlink_metadata(path).is_ok() {
                    StageError::Io {
                        path: path.to_path_buf(),
                        source: io::Error::new(io::ErrorKind::NotFound, "dangling symlink"),
                    }
                } else {
                    StageError::Missing(path.to_path_buf())
                }
            } else {
                Self::io(path, e)
            }
        })
    }

    /// Metadata of a directory entry found at `path`. Without
    /// `--follow-symlinks` this is an `fstatat` relative to the open
    /// directory, which spares the kernel a walk of the whole path (about
    /// a tenth of staging time on the Python stdlib).
    fn child_metadata(
        &self,
        dirent: &fs::DirEntry,
        path: &Path,
    ) -> Result<fs::Metadata, StageError> {
        if self.opts.follow_symlinks {
            return self.metadata(path, false);
        }
        dirent.metadata().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StageError::Missing(path.to_path_buf())
            } else {
                Self::io(path, e)
            }
        })
    }

    /// Stages `path` = `dir/name` (archive path `archive`, metadata `meta`)
    /// and, for a directory, everything below it. `ancestors` holds the
    /// (dev, ino) of the directories above, to catch loops through followed
    /// symlinks.
    fn scan(
        &self,
        path: &Path,
        dir_name: (&Arc<Path>, &OsStr),
        archive: &[u8],
        meta: &fs::Metadata,
        ancestors: &[(u64, u64)],
    ) -> Result<Scanned, StageError> {
        let staged = match self.stage_one(path, dir_name, meta)? {
            Found::Staged(s) => s,
            Found::Skipped(warning) => {
                return Ok(Scanned {
                    node: None,
                    warnings: vec![warning],
                });
            }
        };
        if staged.kind != EntryKind::Dir {
            return Ok(Scanned {
                node: Some(Node {
                    staged: Some(staged),
                    children: BTreeMap::new(),
                }),
                warnings: Vec::new(),
            });
        }
        let key = (meta.dev(), meta.ino());
        if ancestors.contains(&key) {
            return Err(StageError::Io {
                path: path.to_path_buf(),
                source: io::Error::other("directory loop through a followed symlink"),
            });
        }
        let mut chain = ancestors.to_vec();
        chain.push(key);
        let (children, warnings) = self.scan_dir(path, archive, &chain)?;
        Ok(Scanned {
            node: Some(Node {
                staged: Some(staged),
                children,
            }),
            warnings,
        })
    }

    /// Stages the contents of directory `path` (archive path `archive`).
    /// Children are scanned in parallel on the current rayon pool; results
    /// are combined in name order, so the tree, the warnings and which of
    /// several errors is reported never depend on thread timing or on the
    /// order the OS lists names in.
    #[allow(clippy::type_complexity)]
    fn scan_dir(
        &self,
        path: &Path,
        archive: &[u8],
        ancestors: &[(u64, u64)],
    ) -> Result<(BTreeMap<Box<[u8]>, Box<Node>>, Vec<String>), StageError> {
        let mut items = Vec::new();
        let rd = fs::read_dir(path).map_err(|e| Self::io(path, e))?;
        for dirent in rd {
            let dirent = dirent.map_err(|e| Self::io(path, e))?;
            let name = dirent.file_name().into_vec().into_boxed_slice();
            let child_archive = join(archive, &name);
            if self.excludes.is_excluded(&child_archive) {
                continue;
            }
            let child = dirent.path();
            let meta =
                check_path_len(&child_archive).and_then(|()| self.child_metadata(&dirent, &child));
            items.push((name, child, child_archive, meta));
        }
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let dir: Arc<Path> = Arc::from(path);
        let results: Vec<Result<Scanned, StageError>> = items
            .par_iter()
            .map(|(name, child, child_archive, meta)| match meta {
                Ok(meta) => {
                    let dir_name = (&dir, OsStr::from_bytes(name));
                    self.scan(child, dir_name, child_archive, meta, ancestors)
                }
                Err(_) => Ok(Scanned {
                    node: None,
                    warnings: Vec::new(),
                }),
            })
            .collect();
        let mut children = BTreeMap::new();
        let mut warnings = Vec::new();
        for ((name, _, _, meta), result) in items.into_iter().zip(results) {
            meta?;
            let scanned = result?;
            warnings.extend(scanned.warnings);
            if let Some(node) = scanned.node {
                children.insert(name, Box::new(node));
            }
        }
        Ok((children, warnings))
    }
}

/// Places `staged` at `archive` in the tree, creating implicit parents.
fn place(root: &mut Node, archive: &[u8], staged: Staged) -> Result<(), StageError> {
    let node = Node {
        staged: Some(staged),
        children: BTreeMap::new(),
    };
    place_node(root, archive, node)
}

/// Places `node` (with its subtree) at `archive` in the tree, creating
/// implicit parents and merging with what earlier sources put there.
fn place_node(root: &mut Node, archive: &[u8], node: Node) -> Result<(), StageError> {
    let mut at = root;
    let comps: Vec<&[u8]> = archive.split(|&b| b == b'/').collect();
    let (last, parents) = comps.split_last().expect("split yields at least one item");
    let mut walked: Vec<u8> = Vec::new();
    for comp in parents {
        walked = join(&walked, comp);
        at = at.children.entry(Box::from(*comp)).or_insert_with(|| {
            Box::new(Node {
                staged: None,
                children: BTreeMap::new(),
            })
        });
        if let Some(s) = &at.staged
            && s.kind != EntryKind::Dir
        {
            return Err(StageError::NotADirectory {
                archive: lossy(&walked),
                source_path: s.source(),
            });
        }
    }
    match at.children.entry(Box::from(*last)) {
        btree_map::Entry::Vacant(v) => {
            v.insert(Box::new(node));
            Ok(())
        }
        btree_map::Entry::Occupied(mut o) => merge(o.get_mut(), archive, node),
    }
}

/// Merges `new` into `slot`, the node already at `archive`: an object may
/// land on an implicit directory (one only created as a parent), never on
/// another object, and only directories have children.
fn merge(slot: &mut Node, archive: &[u8], new: Node) -> Result<(), StageError> {
    let Node { staged, children } = new;
    if let Some(s) = staged {
        if let Some(existing) = &slot.staged {
            return Err(StageError::Collision {
                archive: lossy(archive),
                first: existing.source(),
                second: s.source(),
            });
        }
        if s.kind != EntryKind::Dir && !slot.children.is_empty() {
            return Err(StageError::NotADirectory {
                archive: lossy(archive),
                source_path: s.source(),
            });
        }
        slot.staged = Some(s);
    }
    if children.is_empty() {
        return Ok(());
    }
    if let Some(s) = &slot.staged
        && s.kind != EntryKind::Dir
    {
        return Err(StageError::NotADirectory {
            archive: lossy(archive),
            source_path: s.source(),
        });
    }
    for (name, child) in children {
        match slot.children.entry(name) {
            btree_map::Entry::Vacant(v) => {
                v.insert(child);
            }
            btree_map::Entry::Occupied(mut o) => {
                let child_archive = join(archive, o.key());
                merge(o.get_mut(), &child_archive, *child)?;
            }
        }
    }
    Ok(())
}

/// Stack of each staging thread. 2 000 nested directories (a 4 KiB
/// PATH_MAX of one-letter names, the deepest tree `read_dir` can open)
/// overflow the default 2 MiB and fit in 8 MiB; 32 MiB leaves room.
const STAGE_STACK: usize = 32 << 20;

/// Stages `sources` into a plan. See the module docs for the rules.
/// Directories are read on `opts.jobs` threads; the plan is the same for
/// any number.
pub fn stage(sources: &[Source], opts: &StageOptions) -> Result<Plan, StageError> {
    let stager = Stager {
        opts,
        excludes: Excludes::new(&opts.excludes)?,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("repropack-stage-{i}"))
        // Scanning recurses once per directory level (with rayon's frames
        // in between): a tree as deep as PATH_MAX allows needs far more than
        // the default 2 MiB. Only touched pages cost memory.
        .stack_size(STAGE_STACK)
        .build()
        .map_err(|e| StageError::Io {
            path: PathBuf::from("."),
            source: io::Error::other(format!("cannot start staging threads: {e}")),
        })?;
    let mut root = Node {
        staged: None,
        children: BTreeMap::new(),
    };
    let mut warnings = Vec::new();
    for src in sources {
        let meta = stager.metadata(&src.path, true)?;
        let dest = normalize_dest(&src.dest)?;
        if meta.is_dir() && dest.is_empty() {
            // Directory contents go to the archive root.
            let ancestors = [(meta.dev(), meta.ino())];
            let (children, found) = pool.install(|| stager.scan_dir(&src.path, &[], &ancestors))?;
            warnings.extend(found);
            let contents = Node {
                staged: None,
                children,
            };
            merge(&mut root, &[], contents)?;
        } else {
            let archive = if dest.is_empty() {
                let name = src.path.file_name().ok_or_else(|| StageError::Dest {
                    dest: src.path.display().to_string(),
                    reason: "a source without a file name needs an explicit :DEST",
                })?;
                name.as_bytes().to_vec()
            } else {
                dest.join(&b'/')
            };
            if stager.excludes.is_excluded(&archive) {
                continue;
            }
            check_path_len(&archive)?;
            // Only a directory can lack a parent or a name ("/", "."), and
            // a directory's content is never read through `dir/name`.
            let (dir, name): (Arc<Path>, &OsStr) = match (src.path.parent(), src.path.file_name()) {
                (Some(parent), Some(name)) => (Arc::from(parent), name),
                _ => (Arc::from(src.path.as_path()), OsStr::new("")),
            };
            let scanned =
                pool.install(|| stager.scan(&src.path, (&dir, name), &archive, &meta, &[]))?;
            warnings.extend(scanned.warnings);
            if let Some(node) = scanned.node {
                place_node(&mut root, &archive, node)?;
            }
        }
    }
    finish_plan(root, opts, warnings)
}

/// Turns the assembled tree into the ordered plan (shared by [`stage`] and
/// [`stage_tar`]).
/// The tree is consumed as it is flattened, so its nodes and the entries
/// are not both in memory at the peak.
fn finish_plan(root: Node, opts: &StageOptions, warnings: Vec<String>) -> Result<Plan, StageError> {
    // Sized up front: a vector grown by doubling would, at its last
    // doubling, hold old and new buffers while the tree is still there.
    let mut flat = Flat {
        entries: Vec::with_capacity(count_nodes(&root)),
        inodes: Vec::new(),
    };
    flatten(root, &[], opts, &mut flat);
    let Flat {
        mut entries,
        inodes,
    } = flat;
    if u32::try_from(entries.len()).is_err() {
        return Err(StageError::TooManyEntries {
            count: entries.len(),
        });
    }
    group_hardlinks(&mut entries, &inodes);
    release_freed_memory();
    Ok(Plan {
        root: RootMeta {
            mode: 0o755,
            uid: opts.owner.uid,
            gid: opts.owner.gid,
            mtime: opts.epoch,
        },
        entries,
        warnings,
        epoch: opts.epoch,
    })
}

/// Hands memory freed by the staging tree back to the OS. The tree was
/// built on the staging threads, so its chunks sit in their malloc arenas,
/// where the threads that write the archive would never reuse them: without
/// this, peak RSS carries the dead tree (about 10 % of it on a large tree).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own heaps to
    // the kernel; it touches no memory that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Nodes below `node`, i.e. the entries it flattens to.
fn count_nodes(node: &Node) -> usize {
    node.children.values().map(|c| 1 + count_nodes(c)).sum()
}

/// The flattened tree: entries in plan order, and the (dev, ino) key of
/// each regular file with more than one link, by entry index, until hard
/// links are grouped. Kept apart because few entries have one.
struct Flat {
    entries: Vec<Entry>,
    inodes: Vec<(usize, (u64, u64))>,
}

fn flatten(node: Node, prefix: &[u8], opts: &StageOptions, out: &mut Flat) {
    for (name, child) in node.children {
        let path = join(prefix, &name).into_boxed_slice();
        let Node { staged, children } = *child;
        let entry = match staged {
            Some(s) => {
                if let Some(key) = s.inode {
                    out.inodes.push((out.entries.len(), key));
                }
                Entry {
                    path: path.clone(),
                    kind: s.kind,
                    mode: s.mode,
                    uid: opts.owner.uid,
                    gid: opts.owner.gid,
                    mtime: s.mtime,
                    content: s.content,
                    symlink_target: s.symlink_target.into_boxed_slice(),
                    hardlink_of: None,
                    links: 1,
                    rdev: s.rdev,
                }
            }
            None => Entry {
                path: path.clone(),
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: opts.owner.uid,
                gid: opts.owner.gid,
                mtime: opts.epoch,
                content: None,
                symlink_target: Box::default(),
                hardlink_of: None,
                links: 1,
                rdev: (0, 0),
            },
        };
        out.entries.push(entry);
        let child = Node {
            staged: None,
            children,
        };
        flatten(child, &path, opts, out);
    }
}

/// Links the members of each hard-link group: `inodes` lists (entry index,
/// inode key) in plan order; `entries` has fewer than 2^32 entries (checked
/// by the caller), so indexes fit in u32.
fn group_hardlinks(entries: &mut [Entry], inodes: &[(usize, (u64, u64))]) {
    let mut first: HashMap<(u64, u64), u32> = HashMap::new();
    let mut counts: HashMap<(u64, u64), u32> = HashMap::new();
    for (_, k) in inodes {
        *counts.entry(*k).or_default() += 1;
    }
    for &(i, k) in inodes {
        let e = &mut entries[i];
        e.links = counts[&k];
        match first.get(&k) {
            Some(&t) => e.hardlink_of = Some(t),
            None => {
                first.insert(k, i as u32);
            }
        }
    }
}
