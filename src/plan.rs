//! The plan: what every format writer consumes.
//!
//! A [`Plan`] is the ordered list of [`Entry`]s staging produced (depth-first,
//! each directory's children sorted by raw name bytes, parents before
//! children) plus the root directory's [`RootMeta`]. Writers read content only
//! through [`Content::reader`], which also checks that the file did not change
//! since it was staged. [`EntryKind`] is shared with the archive readers.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;

use crate::digest::Sha256Digest;

mod holes;

/// What an entry is: one set of kinds for plans, trees and archive readers.
///
/// A [`Plan`] never holds [`HardLink`](EntryKind::HardLink) (hard links are
/// groups of `File` entries, see [`Entry::hardlink_of`]); fifos and devices
/// appear in a plan only when the user asked for them (`--specials`, or a
/// pack file's lines), and [`Socket`](EntryKind::Socket) only from a pack
/// file's `sock` or `glob` lines (staging skips the sockets of a source
/// tree). Archive readers yield every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Another name for an earlier entry of an archive (a tar `1` member, a
    /// SquashFS inode reached again); its link target is that entry's path
    /// as stored.
    HardLink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A socket (only SquashFS can hold one; tar output refuses a plan
    /// with one).
    Socket,
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
            EntryKind::HardLink => "hardlink",
            EntryKind::Socket => "socket",
        }
    }

    /// Inverse of [`EntryKind::name`].
    pub fn from_name(name: &str) -> Option<EntryKind> {
        [
            EntryKind::Dir,
            EntryKind::File,
            EntryKind::Symlink,
            EntryKind::HardLink,
            EntryKind::Fifo,
            EntryKind::CharDevice,
            EntryKind::BlockDevice,
            EntryKind::Socket,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// True for the kinds a [`Plan`] (and so a logical tree) can hold.
    pub fn in_plan(self) -> bool {
        self != EntryKind::HardLink
    }
}

/// Why a plan entry's content could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The source file could not be opened or read.
    #[error("source {path}: {source}")]
    Io {
        /// The source file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The source file changed between staging and reading.
    #[error("{path}: input not stable, {what} changed while packing")]
    Unstable {
        /// The source file.
        path: PathBuf,
        /// `size` or `mtime`.
        what: &'static str,
    },
}

/// A source directory's path, shared by the files staged from it. An
/// `Arc` of a `PathBuf`, not of a `Path`: a thin pointer, 8 bytes in every
/// plan entry rather than 16.
pub type SourceDir = Arc<PathBuf>;

/// Where a regular file's bytes come from.
///
/// 32 bytes: a plan holds one per regular file, and a tree may hold
/// millions.
#[derive(Debug, Clone)]
pub enum Content {
    /// A file found in a directory, `dir/NAME`, where NAME is the name of
    /// the entry holding this content (the last component of its archive
    /// path), as for every file found by walking a directory: a plan holds
    /// the name once, in the entry's path, and each source directory's
    /// path once, shared by all its files. Size and mtime are as seen when
    /// it was staged.
    Path {
        /// The directory holding the file.
        dir: SourceDir,
        /// Size in bytes when staged; reading fails if it differs.
        size: u64,
        /// Modification time when staged, seconds since 1970; reading
        /// fails if it (or `mtime_nanos`) differs at the end.
        mtime_secs: i64,
        /// The nanoseconds of the modification time (0 to 999,999,999).
        mtime_nanos: u32,
    },
    /// A file whose name is not its entry's (a pack file's source, a file
    /// packed under another name), by its whole path; otherwise as
    /// [`Content::Path`].
    File {
        /// The file.
        path: SourceDir,
        /// Size in bytes when staged; reading fails if it differs.
        size: u64,
        /// Modification time when staged, seconds since 1970.
        mtime_secs: i64,
        /// The nanoseconds of the modification time.
        mtime_nanos: u32,
    },
    /// A byte range of an already-open spool file (e.g. a tar stream copied
    /// to a temp file).
    Spool {
        /// The open spool file, shared by all entries it holds.
        file: Arc<File>,
        /// Byte offset of the content in `file`.
        offset: u64,
        /// Length of the content in bytes.
        size: u64,
    },
}

impl Content {
    /// A [`Content::File`]: the file at `path`, whose size and mtime are
    /// those of `meta`.
    pub(crate) fn on_disk(path: SourceDir, meta: &fs::Metadata) -> Content {
        let (mtime_secs, mtime_nanos) = mtime_ns_of(meta);
        Content::File {
            path,
            size: meta.len(),
            mtime_secs,
            mtime_nanos,
        }
    }

    /// A [`Content::Path`]: a file of directory `dir` named as its entry,
    /// whose size and mtime are those of `meta`.
    pub(crate) fn in_dir(dir: SourceDir, meta: &fs::Metadata) -> Content {
        let (mtime_secs, mtime_nanos) = mtime_ns_of(meta);
        Content::Path {
            dir,
            size: meta.len(),
            mtime_secs,
            mtime_nanos,
        }
    }

    /// Number of bytes the reader yields.
    pub fn size(&self) -> u64 {
        match self {
            Content::Path { size, .. }
            | Content::File { size, .. }
            | Content::Spool { size, .. } => *size,
        }
    }

    /// A name for messages: the source path, or `<spool>`. `entry_name`
    /// is the name of the entry holding the content ([`Entry::name`]),
    /// the file's name for a [`Content::Path`].
    pub fn describe(&self, entry_name: &[u8]) -> PathBuf {
        match self {
            Content::Path { dir, .. } => dir.join(OsStr::from_bytes(entry_name)),
            Content::File { path, .. } => path.to_path_buf(),
            Content::Spool { .. } => PathBuf::from("<spool>"),
        }
    }

    /// The same content, naming its file explicitly where it relied on
    /// `entry_name` (for a copy held by an entry of another name).
    pub(crate) fn named(&self, entry_name: &[u8]) -> Content {
        match self {
            Content::Path {
                dir,
                size,
                mtime_secs,
                mtime_nanos,
            } => Content::File {
                path: Arc::new(dir.join(OsStr::from_bytes(entry_name))),
                size: *size,
                mtime_secs: *mtime_secs,
                mtime_nanos: *mtime_nanos,
            },
            other => other.clone(),
        }
    }

    /// Opens the content for reading; `entry_name` as for
    /// [`Content::describe`]. The reader yields exactly
    /// [`Content::size`] bytes; if the file shrank, grew, or its mtime changed
    /// since staging, reading fails with [`ContentError::Unstable`] (wrapped in an
    /// `io::Error` of kind `InvalidData`).
    pub fn reader(&self, entry_name: &[u8]) -> Result<ContentReader, ContentError> {
        let (size, mtime_ns) = match self {
            Content::Path {
                size,
                mtime_secs,
                mtime_nanos,
                ..
            }
            | Content::File {
                size,
                mtime_secs,
                mtime_nanos,
                ..
            } => (*size, (*mtime_secs, *mtime_nanos)),
            Content::Spool { file, offset, size } => {
                // The spool is sparse where the tar stream held zero blocks.
                let holes = *size >= holes::MIN_SPARSE_LEN
                    && file
                        .metadata()
                        .is_ok_and(|m| holes::worth_looking(m.len(), m.blocks()));
                return Ok(ContentReader::new(
                    ReaderInner::Spool(file.clone()),
                    PathBuf::from("<spool>"),
                    *offset,
                    *size,
                    None,
                    holes,
                ));
            }
        };
        let path = &self.describe(entry_name);
        let file = File::open(path).map_err(|source| ContentError::Io {
            path: path.clone(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| ContentError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.len() != size {
            return Err(ContentError::Unstable {
                path: path.clone(),
                what: "size",
            });
        }
        if mtime_ns_of(&meta) != mtime_ns {
            return Err(ContentError::Unstable {
                path: path.clone(),
                what: "mtime",
            });
        }
        let holes = holes::worth_looking(size, meta.blocks());
        Ok(ContentReader::new(
            ReaderInner::File(file),
            path.clone(),
            0,
            size,
            Some(mtime_ns),
            holes,
        ))
    }
}

enum ReaderInner {
    File(File),
    Spool(Arc<File>),
}

impl ReaderInner {
    fn file(&self) -> &File {
        match self {
            ReaderInner::File(f) => f,
            ReaderInner::Spool(f) => f,
        }
    }
}

/// Reader returned by [`Content::reader`].
///
/// Reads are positional (`pread`), so readers of one spool never disturb
/// each other. In a file that uses less disk than its length, the holes
/// (found with `SEEK_DATA`/`SEEK_HOLE`) are never read: their zeros come
/// from memory, and `skip_hole` steps over them without
/// even those.
pub struct ContentReader {
    inner: ReaderInner,
    path: PathBuf,
    /// File offset of the next byte to yield.
    offset: u64,
    /// File offset just past the last byte to yield.
    end: u64,
    /// The data extent at or after `offset` (clamped to `end`), once
    /// looked up; bytes before its start are hole. `None` when holes are
    /// not looked for: every byte is read.
    data: Option<Range<u64>>,
    /// Whether holes are looked for at all.
    holes: bool,
    mtime_ns: Option<MtimeNs>,
}

impl ContentReader {
    fn new(
        inner: ReaderInner,
        path: PathBuf,
        offset: u64,
        size: u64,
        mtime_ns: Option<MtimeNs>,
        holes: bool,
    ) -> ContentReader {
        ContentReader {
            inner,
            path,
            offset,
            end: offset + size,
            data: None,
            holes,
            mtime_ns,
        }
    }

    fn unstable(&self, what: &'static str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            ContentError::Unstable {
                path: self.path.clone(),
                what,
            },
        )
    }

    /// Called once all expected bytes were read: the file must be at EOF and
    /// unchanged.
    fn check_end(&mut self) -> io::Result<()> {
        let ReaderInner::File(file) = &self.inner else {
            return Ok(());
        };
        let mut probe = [0u8; 1];
        let grew = file.read_at(&mut probe, self.offset)? != 0;
        let mtime = mtime_ns_of(&file.metadata()?);
        if grew {
            Err(self.unstable("size"))
        } else if Some(mtime) != self.mtime_ns {
            Err(self.unstable("mtime"))
        } else {
            Ok(())
        }
    }

    /// The data extent at or after `offset`, looked up again once `offset`
    /// has passed the last one; `None` when holes are not looked for (or
    /// the file system cannot tell).
    fn data_extent(&mut self) -> io::Result<Option<Range<u64>>> {
        if !self.holes {
            return Ok(None);
        }
        if let Some(data) = &self.data
            && self.offset < data.end
        {
            return Ok(Some(data.clone()));
        }
        let data = match holes::next_data(self.inner.file(), self.offset)? {
            holes::Next::Data(r) => r.start.min(self.end)..r.end.min(self.end),
            holes::Next::HoleToEnd => self.end..self.end,
            holes::Next::Unsupported => {
                self.holes = false;
                return Ok(None);
            }
        };
        // Past `end` (or a file that changed under us): read the rest.
        let data = if data.end <= self.offset {
            self.offset..self.end
        } else {
            data
        };
        self.data = Some(data.clone());
        Ok(Some(data))
    }

    /// If the next `len` bytes (at most what is left) are all hole, steps
    /// over them and returns true; otherwise returns false and reads on
    /// from where it was. Lets a writer that stores zero runs specially
    /// skip them without reading or scanning them.
    pub(crate) fn skip_hole(&mut self, len: u64) -> io::Result<bool> {
        if len == 0 || len > self.end - self.offset {
            return Ok(false);
        }
        match self.data_extent()? {
            Some(data) if self.offset + len <= data.start => {
                self.offset += len;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.offset;
        if left == 0 || buf.is_empty() {
            if left == 0 && self.mtime_ns.is_some() {
                self.check_end()?;
                self.mtime_ns = None;
            }
            return Ok(0);
        }
        let mut want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if let Some(data) = self.data_extent()? {
            if self.offset < data.start {
                let n = want.min(usize::try_from(data.start - self.offset).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                self.offset += n as u64;
                return Ok(n);
            }
            want = want.min(usize::try_from(data.end - self.offset).unwrap_or(usize::MAX));
        }
        let n = self.inner.file().read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(self.unstable("size"));
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A source file's mtime as (seconds, nanoseconds): exact, and 16 bytes
/// with 8-byte alignment where an i128 would pad every plan entry.
pub(crate) type MtimeNs = (i64, u32);

pub(crate) fn mtime_ns_of(meta: &fs::Metadata) -> MtimeNs {
    // st_mtime_nsec is always 0..1e9.
    (meta.mtime(), meta.mtime_nsec() as u32)
}

/// One entry of the plan.
///
/// A plan holds one per staged object, millions for a large tree, so an
/// entry is kept to 80 bytes with nothing of its own on the heap in the
/// common case: its path lies in the plan's path arena, and a symlink's
/// target and a device's numbers, which few entries have, in a box.
#[derive(Debug, Clone)]
pub struct Entry {
    pub(crate) path: PathRef,
    pub(crate) kind: EntryKind,
    /// At most `0o7777`, so 16 bits (which keeps the entry at 80 bytes).
    pub(crate) mode: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: u64,
    pub(crate) payload: Payload,
    /// Index of the group's first member, or [`NOT_A_LINK`]; u32 keeps the
    /// entry small (`finish_plan` refuses plans of 2^32 - 1 entries or more).
    pub(crate) hardlink_of: u32,
    pub(crate) links: u32,
    /// Index into [`Plan::xattr_sets`], or [`NO_XATTRS`]: a u32, not the
    /// set itself, keeps the entry small and stores each distinct set once.
    pub(crate) xattrs: u32,
}

/// A symlink's target and a device's (major, minor).
pub(crate) type Special = (Box<[u8]>, (u32, u32));

/// What an entry holds besides its metadata. One field, not two: no entry
/// has both a content and a symlink target or device numbers, and 32
/// bytes, the size of a [`Content`], in every entry of a plan of millions.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// A directory's, a fifo's, a socket's; or a symlink with an empty
    /// target, or a device numbered (0, 0).
    Nothing,
    /// A regular file's content (also held by hard-link members).
    Content(Content),
    /// A symlink's target or a device's numbers, not both empty.
    Special(Box<Special>),
}

impl Payload {
    fn special(&self) -> Option<&Special> {
        match self {
            Payload::Special(s) => Some(s),
            _ => None,
        }
    }
}

/// [`Entry`]'s `hardlink_of` when it is not a later member of a hard-link
/// group.
pub(crate) const NOT_A_LINK: u32 = u32::MAX;

/// An entry's archive path: a range of one of the plan's path arenas,
/// which hold the paths of consecutive entries back to back. 16 bytes and
/// no allocation of its own, where a boxed path would take 16 bytes plus a
/// heap chunk of 32 or more.
#[derive(Clone)]
pub(crate) struct PathRef {
    arena: Arc<Box<[u8]>>,
    start: u32,
    len: u32,
}

impl PathRef {
    /// The range `start..start + len` of an arena not made yet: `placeholder`
    /// stands for it until [`PathRef::place`] is called.
    pub(crate) fn placed_later(placeholder: &Arc<Box<[u8]>>, start: u32, len: u32) -> PathRef {
        PathRef {
            arena: placeholder.clone(),
            start,
            len,
        }
    }
    /// Points the range at `arena`, which must hold it.
    pub(crate) fn place(&mut self, arena: &Arc<Box<[u8]>>) {
        assert!(
            self.start as usize + self.len as usize <= arena.len(),
            "path range outside its arena"
        );
        self.arena = arena.clone();
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.arena[self.start as usize..][..self.len as usize]
    }
}

impl std::fmt::Debug for PathRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.bytes()))
    }
}

/// [`Entry`]'s xattr index when it has no extended attributes.
pub(crate) const NO_XATTRS: u32 = u32::MAX;

impl Entry {
    /// Path inside the archive: raw bytes, no leading or trailing `/`,
    /// components joined by `/`.
    pub fn path(&self) -> &[u8] {
        self.path.bytes()
    }
    /// The last component of [`Entry::path`].
    pub fn name(&self) -> &[u8] {
        let path = self.path();
        match path.iter().rposition(|&b| b == b'/') {
            Some(i) => &path[i + 1..],
            None => path,
        }
    }
    /// Depth of the entry: 1 for a child of the root.
    pub fn depth(&self) -> usize {
        self.path().iter().filter(|&&b| b == b'/').count() + 1
    }
    /// What the entry is.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }
    /// Normalized permission bits (`0o7777` at most), no file-type bits.
    pub fn mode(&self) -> u32 {
        u32::from(self.mode)
    }
    /// Owner user id (from the owner policy, not the source).
    pub fn uid(&self) -> u32 {
        self.uid
    }
    /// Owner group id (from the owner policy, not the source).
    pub fn gid(&self) -> u32 {
        self.gid
    }
    /// Modification time in seconds since the Unix epoch.
    pub fn mtime(&self) -> u64 {
        self.mtime
    }
    /// Size of a regular file's content; 0 for everything else.
    pub fn size(&self) -> u64 {
        self.content().map_or(0, Content::size)
    }
    /// Content of a regular file (also present on hard-link members).
    pub fn content(&self) -> Option<&Content> {
        match &self.payload {
            Payload::Content(c) => Some(c),
            _ => None,
        }
    }
    /// Target of a symlink, raw bytes; empty for other kinds.
    pub fn symlink_target(&self) -> &[u8] {
        self.payload.special().map_or(&[], |s| &s.0)
    }
    /// For the second and later members of a hard-link group: the index in
    /// [`Plan::entries`] of the group's first member (its target).
    pub fn hardlink_of(&self) -> Option<usize> {
        (self.hardlink_of != NOT_A_LINK).then_some(self.hardlink_of as usize)
    }
    /// Number of archive paths sharing this entry's content through hard
    /// links (1 for an ordinary file; same value on every group member).
    pub fn links(&self) -> u32 {
        self.links
    }
    /// (major, minor) of a device node; (0, 0) otherwise.
    pub fn rdev(&self) -> (u32, u32) {
        self.payload.special().map_or((0, 0), |s| s.1)
    }
    /// Path as text for messages (lossy for non-UTF-8 bytes).
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(self.path()).into_owned()
    }
    /// Index of the entry's extended attributes in [`Plan::xattr_sets`];
    /// `None` when it has none (always, unless staging kept xattrs). Use
    /// [`Plan::xattrs`] for the set itself.
    pub fn xattr_index(&self) -> Option<u32> {
        (self.xattrs != NO_XATTRS).then_some(self.xattrs)
    }
}

/// A set of extended attributes: names and values as raw bytes, in one
/// canonical order (by name bytes), names unique. The order attributes
/// were set in, or listed by the OS, never shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XattrSet {
    // A Vec (not a boxed slice) so that the empty set can be a constant;
    // a plan stores each distinct set once, so the capacity word is cheap.
    attrs: Vec<Xattr>,
}

/// One attribute of an [`XattrSet`]: (name, value).
type Xattr = (Box<[u8]>, Box<[u8]>);

impl XattrSet {
    /// The set with no attribute.
    pub const EMPTY: XattrSet = XattrSet { attrs: Vec::new() };
}

impl XattrSet {
    /// Builds the set from `(name, value)` pairs in any order. A name given
    /// twice is refused: the error is that name.
    pub fn new(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<XattrSet, Vec<u8>> {
        let mut attrs: Vec<Xattr> = pairs
            .into_iter()
            .map(|(n, v)| (n.into_boxed_slice(), v.into_boxed_slice()))
            .collect();
        attrs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = attrs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(w[0].0.to_vec());
        }
        Ok(XattrSet { attrs })
    }
    /// The attributes as `(name, value)`, sorted by name bytes.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.attrs.iter().map(|(n, v)| (&**n, &**v))
    }
    /// The value of attribute `name`, if present.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.attrs
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| &*self.attrs[i].1)
    }
    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }
    /// True when the set holds no attribute.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

/// Metadata of the archive root directory.
#[derive(Debug, Clone, Copy)]
pub struct RootMeta {
    /// Permission bits, no file-type bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time in seconds since the Unix epoch.
    pub mtime: u64,
}

/// The sha256 of the pack file and of the xattr file a plan was staged
/// with, over the bytes staging read (`None` where there was none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputFiles {
    /// The `--pack-file`'s bytes.
    pub pack_file: Option<Sha256Digest>,
    /// The `--xattr-file`'s bytes.
    pub xattr_file: Option<Sha256Digest>,
}

/// The staged plan: entries in archive order plus the root's metadata.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) root: RootMeta,
    pub(crate) entries: Vec<Entry>,
    pub(crate) warnings: Vec<String>,
    pub(crate) epoch: u64,
    /// Distinct non-empty xattr sets, in the order of their first use in
    /// plan order (so the table never depends on how staging ran).
    pub(crate) xattr_sets: Vec<XattrSet>,
    pub(crate) input_files: InputFiles,
}

impl Plan {
    /// The digests of the pack file and xattr file staging read.
    pub fn input_files(&self) -> InputFiles {
        self.input_files
    }
    /// Metadata of the root directory (`.`), which is not an entry.
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
    /// The distinct extended-attribute sets the entries use, each once,
    /// in the order of first use in [`Plan::entries`]; an entry names its
    /// set by [`Entry::xattr_index`]. Empty unless staging kept xattrs.
    pub fn xattr_sets(&self) -> &[XattrSet] {
        &self.xattr_sets
    }
    /// The extended attributes of `entry` (empty when it has none).
    pub fn xattrs(&self, entry: &Entry) -> &XattrSet {
        static EMPTY: XattrSet = XattrSet::EMPTY;
        entry
            .xattr_index()
            .and_then(|i| self.xattr_sets.get(i as usize))
            .unwrap_or(&EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan holds one entry per staged object and the staging tree one
    /// content per file: what these sizes cost is multiplied by millions
    /// (docs/BENCHMARKS.md measures it). A new field that grows them must
    /// be a decision, not an accident.
    #[test]
    fn entries_and_contents_stay_small() {
        assert_eq!(size_of::<Option<Content>>(), 32);
        assert_eq!(size_of::<Payload>(), 32);
        assert_eq!(size_of::<Entry>(), 80);
    }
}
