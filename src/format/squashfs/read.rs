//! SquashFS 4.0 reading, on the same structure modules the writer uses
//! (squashfs-tools-ng `doc/format.adoc`; each module decodes what it
//! encodes).
//!
//! # Execution model
//!
//! Opening (`format::open`) reads the superblock (96 bytes), checks every
//! table offset against `bytes_used` and the file, reads the id table (at
//! most 256 KiB) and the root inode; nothing else. The walk (`Archive::for_each_entry`)
//! then walks the tree depth first: the root (path `.`) first, then each
//! directory's entries in stored order, a directory's contents right after
//! it. Metadata blocks are decompressed as the walk reaches them, into
//! caches of fixed size (see `metadata` and `data`); a file's content is
//! streamed block by block while the caller reads it. The walk runs on a
//! thread of its own and never waits for a data block: it reads each run
//! of blocks with one `pread`, starts their decompression on the rayon
//! pool and sends the caller a handle per block, so that walking,
//! decompressing and the caller's writing all overlap. Fragment blocks
//! after the one in use are decompressed ahead on the pool as well.
//!
//! # Bounds
//!
//! No count or size an image declares is used to size memory before it is
//! checked against the image. What reading holds, whatever the image says:
//! - three metadata caches (inode, directory and fragment tables) of 256
//!   blocks × 8 KiB, and 8 MiB of decompressed fragment blocks;
//! - fragment blocks decompressed ahead of the walk: at most 4 per rayon
//!   thread and half the fragment cache (× 2: stored and decompressed);
//! - content on its way to the caller (see `QUEUE`): at most 8 MiB plus
//!   one block per batch, decompressed or being decompressed, and the
//!   stored bytes of the runs of blocks it comes from (as much again at
//!   most); a run is at most 16 MiB or 4 blocks per rayon thread;
//! - 4 MiB of spare block buffers, reused for the next blocks;
//! - one bit per inode the superblock declares; the declared count is
//!   checked first against the inode table's size (an inode takes at least
//!   20 bytes, a metadata block at most 8 KiB for 3 bytes on disk);
//! - the path of each directory being walked, and the first path of each
//!   inode whose link count is above 1 (to name it on its hard links).
//!
//! Time is in proportion to the bytes decompressed: every metadata block
//! is read once per cache miss, each directory once (a directory inode met
//! twice is a loop and refused), each file's content once.
//!
//! # What is refused
//!
//! Malformed input is an [`ArchiveError::Malformed`] naming the table, the
//! directory or the file, and the byte offset: a bad superblock field, a
//! table or block outside the image, a block that decompresses to more
//! than a block (or to other than its due length), a fragment index past
//! the table, an id index past the id table, an inode number other than its
//! directory entry says, an entry type other than its inode's, a directory
//! met twice, an inode with link count 1 met twice, a symlink target over
//! 4,095 bytes, and entry names that are empty, over 256 bytes, contain `/`
//! or NUL, or are `.`/`..`. lzo and lzma images are refused as unsupported.
//!
//! Not read: xattrs (the xattr table is located, not decoded), the export
//! table (only needed for NFS), directory indexes (a walk reads whole
//! listings).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

use super::compress::compressor_name;
use super::data::{
    DataReader, DataTables, FRAGMENT_CACHE_BYTES, FileData, FragmentPrefetch, Piece, recycle_block,
};
use super::dir::ListingReader;
use super::image::{BlockCache, Fault, Image};
use super::inode::{self, Decoded, Inode, NO_XATTR};
use super::metadata::{METADATA_SIZE, MetadataReader};
use super::superblock::{NO_TABLE, SUPERBLOCK_SIZE, Superblock, flags};
use super::table::{FragmentTable, read_ids};
use super::xattr::XattrReader;
use crate::format::{ArchiveEntry, ArchiveError, ReadOptions};
use crate::plan::{EntryKind, XattrSet};

/// Superblock facts (squashfs-tools-ng `doc/format.adoc`, §3 "The
/// Superblock").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashfsInfo {
    /// `gzip`, `lzma`, `lzo`, `xz`, `lz4` or `zstd` (an image with every
    /// block stored uncompressed names gzip and sets the uncompressed flags).
    pub compressor: &'static str,
    /// The compressor options record (§3.1) in words, as `name=value`
    /// pairs (`level=6,window=15,strategies=0`).
    pub compression_options: Option<String>,
    /// `block_size`: the size of a data block in bytes (a power of two,
    /// 4 KiB to 1 MiB).
    pub block_size: u32,
    /// `modification_time` of the superblock (mksquashfs `-mkfs-time`).
    pub mkfs_time: u32,
    /// The raw flag bits; see [`SquashfsInfo::flag_names`].
    pub flags: u16,
    /// `inode_count`: the number of inodes in the inode table.
    pub inode_count: u32,
    /// `fragment_entry_count`: the number of entries in the fragment table.
    pub fragment_count: u32,
    /// `id_count`: the number of entries in the uid/gid lookup table.
    pub id_count: u16,
    /// `bytes_used`: bytes the image occupies; the file may be longer, padded
    /// to a device block size.
    pub bytes_used: u64,
    /// `version_major`: 4 for SquashFS 4.0.
    pub version_major: u16,
    /// `version_minor`: 0 for SquashFS 4.0.
    pub version_minor: u16,
    /// Whether `export_table_start` is set (an NFS export table is present).
    pub has_export_table: bool,
    /// Whether `xattr_id_table_start` is set (an xattr table is present).
    pub has_xattr_table: bool,
    /// Where each part of the image starts, in file order: the superblock,
    /// the data blocks, each table present; `bytes_used` last.
    pub layout: Vec<(u64, &'static str)>,
}

const FLAG_NAMES: [(u16, &str); 11] = [
    (0x0001, "inodes-uncompressed"),
    (0x0002, "data-uncompressed"),
    (0x0004, "check"),
    (0x0008, "fragments-uncompressed"),
    (0x0010, "no-fragments"),
    (0x0020, "always-fragments"),
    (0x0040, "duplicates"),
    (0x0080, "exportable"),
    (0x0100, "xattrs-uncompressed"),
    (0x0200, "no-xattrs"),
    (0x0400, "compressor-options"),
];

impl SquashfsInfo {
    /// Names of the set flag bits, in bit order.
    pub fn flag_names(&self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// Smallest on-disk inode (a fifo or socket: 16-byte header + link count).
const MIN_INODE_SIZE: u64 = 20;

pub(crate) struct SquashfsArchive {
    path: PathBuf,
    info: SquashfsInfo,
    image: Image,
    ids: Vec<u32>,
    root: Inode,
    inodes: MetadataReader,
    dirs: MetadataReader,
    fragments: FragmentTable,
    fragment_cache_blocks: usize,
    max_entries: u64,
}

impl SquashfsArchive {
    pub(crate) fn open(
        path: &Path,
        file: File,
        options: &ReadOptions,
    ) -> Result<SquashfsArchive, ArchiveError> {
        let fault = |f: Fault| archive_error(path, f);
        let len = file
            .metadata()
            .map_err(|source| ArchiveError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut raw = [0u8; SUPERBLOCK_SIZE as usize];
        if len < SUPERBLOCK_SIZE {
            return Err(fault(Fault::malformed(
                "superblock",
                format!("the file is {len} bytes, shorter than a superblock"),
            )));
        }
        {
            use std::os::unix::fs::FileExt;
            file.read_exact_at(&mut raw, 0)
                .map_err(|source| ArchiveError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let sb = Superblock::decode(&raw).map_err(|r| fault(Fault::malformed("superblock", r)))?;
        let ends = check_tables(&sb, len).map_err(|r| fault(Fault::malformed("superblock", r)))?;
        if u64::from(sb.inode_count) > options.max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_path_buf(),
                limit: options.max_entries,
            });
        }
        let mut image = Image::new(file, sb.clone()).map_err(fault)?;
        let compression_options = if sb.flags & flags::COMPRESSOR_OPTIONS != 0 {
            Some(read_options(&mut image, sb.inode_table_start).map_err(fault)?)
        } else {
            None
        };
        let ids = read_ids(&mut image, sb.id_table_start, sb.id_count).map_err(fault)?;
        let mut inodes =
            MetadataReader::new("inode", sb.inode_table_start, sb.directory_table_start);
        let dirs = MetadataReader::new("directory", sb.directory_table_start, ends.directory_end);
        let frag_list = if sb.fragment_entry_count == 0 {
            sb.bytes_used
        } else {
            sb.fragment_table_start
        };
        let fragments =
            FragmentTable::new(&image, frag_list, sb.fragment_entry_count).map_err(fault)?;
        let root_at = inodes.cursor(sb.root_inode_ref);
        let root = inode::decode(&mut image, &mut inodes, root_at, &|| {
            "root inode".to_string()
        })
        .map_err(fault)?;
        if !matches!(root.body, Decoded::Dir { .. }) {
            return Err(fault(Fault::malformed(
                "root inode",
                format!("type {} is not a directory", root.basic_type),
            )));
        }
        let info = SquashfsInfo {
            compressor: compressor_name(sb.compression_id),
            compression_options,
            block_size: sb.block_size,
            mkfs_time: sb.modification_time,
            flags: sb.flags,
            inode_count: sb.inode_count,
            fragment_count: sb.fragment_entry_count,
            id_count: sb.id_count,
            bytes_used: sb.bytes_used,
            version_major: 4,
            version_minor: 0,
            has_export_table: sb.export_table_start != NO_TABLE,
            has_xattr_table: sb.xattr_id_table_start != NO_TABLE,
            layout: ends.layout,
        };
        Ok(SquashfsArchive {
            path: path.to_path_buf(),
            info,
            image,
            ids,
            root,
            inodes,
            dirs,
            fragments,
            fragment_cache_blocks: (FRAGMENT_CACHE_BYTES / sb.block_size as usize).max(2),
            max_entries: options.max_entries,
        })
    }

    pub(crate) fn info(&self) -> &SquashfsInfo {
        &self.info
    }

    /// Walks the tree (see the module docs) and calls `f` with each entry
    /// and a reader over its content. The walk and the decompression run on
    /// a thread of their own, a bounded queue ahead of `f` (see [`Message`]),
    /// so that reading the image and what `f` does with it overlap.
    pub(crate) fn visit<E, F>(self, f: F) -> Result<(), E>
    where
        E: From<ArchiveError>,
        F: FnMut(&ArchiveEntry, &mut dyn BufRead) -> Result<(), E>,
    {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut out = Outbox {
                    tx,
                    batch: Vec::new(),
                    bytes: 0,
                };
                if let Err(Halt::Failed(e)) = self.walk(&mut out) {
                    // After the entries before it, as an unbatched walk
                    // would have delivered them.
                    let _ = out.send(Message::Failed(e));
                }
                let _ = out.flush();
            });
            // `rx` is dropped when `consume` returns, early or not, so a
            // walk blocked on a full queue ends before the scope joins it.
            consume(
                Inbox {
                    rx,
                    pending: VecDeque::new(),
                },
                f,
            )
        })
    }

    /// The walk itself, sending every entry and its content to `out`.
    fn walk(self, out: &mut Outbox) -> Result<(), Halt> {
        let SquashfsArchive {
            path,
            info,
            mut image,
            ids,
            root,
            mut inodes,
            mut dirs,
            mut fragments,
            fragment_cache_blocks,
            max_entries,
        } = self;
        let fault = |fault: Fault| Halt::Failed(archive_error(&path, fault));
        let mut fragment_cache = BlockCache::new(fragment_cache_blocks);
        let mut prefetch = FragmentPrefetch::default();
        let mut walk = Walk {
            ids: &ids,
            seen: vec![0u64; (info.inode_count as usize).div_ceil(64) + 1],
            inode_count: info.inode_count,
            first_paths: std::collections::HashMap::new(),
        };
        walk.mark(root.inode_number, true, &|| "root inode".to_string())
            .map_err(fault)?;
        let mut xattrs = Xattrs {
            table_at: image.sb.xattr_id_table_start,
            reader: None,
        };
        let mut root_entry = walk
            .entry(b".".to_vec(), &root, 0, &|| "root inode".to_string())
            .map_err(fault)?;
        root_entry.xattrs = xattrs
            .of(&mut image, &root, &|| "root inode".to_string())
            .map_err(fault)?;
        out.send(Message::Entry(root_entry, Content::Whole(Vec::new())))?;

        let mut stack = vec![Frame::new(&dirs, Vec::new(), &root).map_err(fault)?];
        let mut index = 1u64;
        while let Some(top) = stack.last_mut() {
            let shown_dir = top.shown();
            let Some(raw) = top
                .listing
                .next(&mut image, &mut dirs, &|| {
                    format!("directory {shown_dir:?}")
                })
                .map_err(fault)?
            else {
                stack.pop();
                continue;
            };
            let mut entry_path = top.path.clone();
            if !entry_path.is_empty() {
                entry_path.push(b'/');
            }
            entry_path.extend_from_slice(&raw.name);
            let shown = String::from_utf8_lossy(&entry_path).into_owned();
            let what = || format!("inode of {shown:?}");
            if index >= max_entries {
                return Err(Halt::Failed(ArchiveError::TooManyEntries {
                    path: path.clone(),
                    limit: max_entries,
                }));
            }
            let at = inodes.cursor(raw.inode_ref);
            let inode = inode::decode(&mut image, &mut inodes, at, &what).map_err(fault)?;
            if inode.inode_number != raw.inode_number || inode.basic_type != raw.basic_type {
                return Err(fault(Fault::malformed(
                    format!("directory entry {shown:?}"),
                    format!(
                        "says inode {} of type {}, but its inode is number {} of type {}",
                        raw.inode_number, raw.basic_type, inode.inode_number, inode.basic_type
                    ),
                )));
            }
            let is_dir = matches!(inode.body, Decoded::Dir { .. });
            let first_time = walk
                .mark(inode.inode_number, is_dir, &what)
                .map_err(fault)?;
            let mut entry = walk
                .entry(entry_path.clone(), &inode, index, &what)
                .map_err(fault)?;
            entry.xattrs = xattrs.of(&mut image, &inode, &what).map_err(fault)?;
            index += 1;
            if !first_time {
                // A hard link: `mark` has checked that the inode allows it.
                let first = walk.first_paths.get(&inode.inode_number).cloned();
                entry.kind = EntryKind::HardLink;
                entry.size = 0;
                entry.device = None;
                entry.link_target = first;
                out.send(Message::Entry(entry, Content::Whole(Vec::new())))?;
                continue;
            }
            if inode.link_count > 1 && !is_dir {
                walk.first_paths
                    .insert(inode.inode_number, entry_path.clone());
            }
            match &inode.body {
                Decoded::Dir { .. } => {
                    out.send(Message::Entry(entry, Content::Whole(Vec::new())))?;
                    stack.push(Frame::new(&dirs, entry_path, &inode).map_err(fault)?);
                }
                Decoded::File {
                    blocks_start,
                    file_size,
                    frag_index,
                    frag_offset,
                    sizes_at,
                } => {
                    let data = FileData {
                        blocks_start: *blocks_start,
                        file_size: *file_size,
                        frag_index: *frag_index,
                        frag_offset: *frag_offset,
                        sizes: *sizes_at,
                    };
                    let tables = DataTables {
                        image: &mut image,
                        inodes: &mut inodes,
                        fragments: &mut fragments,
                        fragment_cache: &mut fragment_cache,
                        prefetch: &mut prefetch,
                    };
                    let mut reader = DataReader::new(tables, shown, &data);
                    send_content(out, entry, &mut reader, *file_size)?;
                }
                _ => out.send(Message::Entry(entry, Content::Whole(Vec::new())))?,
            }
        }
        Ok(())
    }
}

/// Content of at most this many bytes that lies all in a fragment block
/// travels whole from the walking thread to the caller (a copy out of the
/// block). Other content travels as [`Piece`]s: each full block as the pool
/// decompresses it (moved, never copied; the caller waits for it, the walk
/// does not), the tail copied out of its fragment block.
const CHUNK: usize = 256 << 10;
/// Messages travel in batches of at most this many, or of at most
/// [`BATCH_BYTES`] of content, so that the two threads wake each other once
/// per batch rather than once per entry.
const BATCH: usize = 64;
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight between the walking thread and the caller: at most
/// 8 MiB of content (plus one piece per batch).
const QUEUE: usize = 8;

/// What the walking thread sends the caller.
enum Message {
    Entry(ArchiveEntry, Content),
    /// The next piece of a [`Content::Chunked`] entry's content.
    Chunk(Piece),
    /// The end of a chunked entry's content.
    End,
    /// The content could not be read: the caller's reader returns this.
    ContentFailed(io::Error),
    /// The walk stopped on a malformed or unreadable image.
    Failed(ArchiveError),
}

enum Content {
    Whole(Vec<u8>),
    /// `Chunk`s follow, then `End` or `ContentFailed`.
    Chunked,
    /// Reading failed before a byte was sent.
    Failed(io::Error),
}

/// Why the walk stopped early.
enum Halt {
    Failed(ArchiveError),
    /// The caller stopped listening (its closure returned an error).
    Gone,
}

/// The walking thread's end of the queue.
struct Outbox {
    tx: SyncSender<Vec<Message>>,
    batch: Vec<Message>,
    bytes: usize,
}

impl Outbox {
    fn send(&mut self, m: Message) -> Result<(), Halt> {
        self.bytes += match &m {
            Message::Entry(_, Content::Whole(b)) => b.len(),
            Message::Chunk(p) => p.len(),
            _ => 0,
        };
        self.batch.push(m);
        if self.batch.len() >= BATCH || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Halt> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        self.tx.send(batch).map_err(|_| Halt::Gone)
    }
}

/// The caller's end of the queue.
struct Inbox {
    rx: Receiver<Vec<Message>>,
    pending: VecDeque<Message>,
}

impl Inbox {
    /// The next message; `None` once the walk has ended.
    fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Some(m);
            }
            self.pending = self.rx.recv().ok()?.into();
        }
    }
}

/// Sends `entry` with the content `reader` yields (`size` bytes).
fn send_content(
    send: &mut Outbox,
    entry: ArchiveEntry,
    reader: &mut DataReader,
    size: u64,
) -> Result<(), Halt> {
    if size <= CHUNK as u64 && !reader.has_blocks() {
        // `size` is at most CHUNK, so it fits a usize.
        let mut whole = Vec::with_capacity(size as usize);
        let content = match reader.append_to(&mut whole, size as usize) {
            Ok(_) => Content::Whole(whole),
            Err(e) => Content::Failed(e),
        };
        return send.send(Message::Entry(entry, content));
    }
    send.send(Message::Entry(entry, Content::Chunked))?;
    loop {
        match reader.next_piece() {
            Ok(None) => return send.send(Message::End),
            Ok(Some(piece)) => send.send(Message::Chunk(piece))?,
            Err(e) => return send.send(Message::ContentFailed(e)),
        }
    }
}

/// The caller's side: hands each entry to `f` with a reader over its
/// content, until the walk ends or `f` fails.
fn consume<E, F>(mut inbox: Inbox, mut f: F) -> Result<(), E>
where
    E: From<ArchiveError>,
    F: FnMut(&ArchiveEntry, &mut dyn BufRead) -> Result<(), E>,
{
    while let Some(message) = inbox.recv() {
        match message {
            Message::Entry(entry, Content::Whole(bytes)) => f(&entry, &mut &bytes[..])?,
            Message::Entry(entry, Content::Failed(e)) => {
                f(&entry, &mut Failing(Some(e)))?;
            }
            Message::Entry(entry, Content::Chunked) => {
                let mut reader = Chunks {
                    inbox: &mut inbox,
                    current: Vec::new(),
                    pos: 0,
                    done: false,
                };
                f(&entry, &mut reader)?;
                recycle_block(std::mem::take(&mut reader.current));
                // Skip what `f` left unread.
                while !reader.done {
                    match reader.inbox.recv() {
                        Some(Message::Chunk(_)) => {}
                        Some(Message::Failed(e)) => return Err(e.into()),
                        Some(_) | None => reader.done = true,
                    }
                }
            }
            Message::Failed(e) => return Err(e.into()),
            // Pieces of content nobody asked for: already skipped above.
            Message::Chunk(_) | Message::End | Message::ContentFailed(_) => {}
        }
    }
    Ok(())
}

/// A reader that fails with the error the walking thread met.
struct Failing(Option<io::Error>);

impl Failing {
    fn error(&mut self) -> io::Error {
        self.0
            .take()
            .unwrap_or_else(|| io::Error::other("content unreadable"))
    }
}

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self.error())
    }
}

impl BufRead for Failing {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Err(self.error())
    }

    fn consume(&mut self, _: usize) {}
}

/// A chunked entry's content as it arrives.
struct Chunks<'a> {
    inbox: &'a mut Inbox,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl BufRead for Chunks<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() && !self.done {
            match self.inbox.recv() {
                Some(Message::Chunk(piece)) => match piece.wait() {
                    Ok(bytes) => {
                        recycle_block(std::mem::replace(&mut self.current, bytes));
                        self.pos = 0;
                    }
                    Err(e) => {
                        self.done = true;
                        return Err(e);
                    }
                },
                Some(Message::ContentFailed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // `End`, or the walk is gone (it reports why on its own).
                _ => self.done = true,
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.current.len());
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// A directory being walked.
struct Frame {
    /// Its path (empty for the root).
    path: Vec<u8>,
    listing: ListingReader,
}

impl Frame {
    fn new(dirs: &MetadataReader, path: Vec<u8>, inode: &Inode) -> Result<Frame, Fault> {
        let shown = if path.is_empty() {
            ".".to_string()
        } else {
            String::from_utf8_lossy(&path).into_owned()
        };
        let Decoded::Dir {
            block_index,
            block_offset,
            file_size,
        } = inode.body
        else {
            return Err(Fault::malformed(
                format!("directory {shown:?}"),
                "not a directory inode",
            ));
        };
        let listing = ListingReader::new(dirs, block_index, block_offset, file_size)
            .map_err(|reason| Fault::malformed(format!("directory {shown:?}"), reason))?;
        Ok(Frame { path, listing })
    }

    fn shown(&self) -> String {
        if self.path.is_empty() {
            ".".to_string()
        } else {
            String::from_utf8_lossy(&self.path).into_owned()
        }
    }
}

/// The xattr table, opened when the first inode with an xattr index is met.
struct Xattrs {
    table_at: u64,
    reader: Option<XattrReader>,
}

impl Xattrs {
    /// The attributes of `inode` (empty when its index is "none").
    fn of(
        &mut self,
        image: &mut Image,
        inode: &Inode,
        what: &dyn Fn() -> String,
    ) -> Result<XattrSet, Fault> {
        if inode.xattr == NO_XATTR {
            return Ok(XattrSet::default());
        }
        if self.table_at == NO_TABLE {
            return Err(Fault::malformed(
                what(),
                format!(
                    "xattr index {} but the image has no xattr table",
                    inode.xattr
                ),
            ));
        }
        let reader = match &mut self.reader {
            Some(r) => r,
            None => self.reader.insert(XattrReader::open(image, self.table_at)?),
        };
        reader.get(image, inode.xattr)
    }
}

/// What the walk remembers across directories.
struct Walk<'a> {
    ids: &'a [u32],
    /// One bit per inode number met.
    seen: Vec<u64>,
    inode_count: u32,
    /// First path of each inode with more than one link.
    first_paths: std::collections::HashMap<u32, Vec<u8>>,
}

impl Walk<'_> {
    /// Records that inode `number` was reached; `false` if it was reached
    /// before, which only a non-directory with several links may be.
    fn mark(
        &mut self,
        number: u32,
        is_dir: bool,
        what: &dyn Fn() -> String,
    ) -> Result<bool, Fault> {
        if number == 0 || number > self.inode_count {
            return Err(Fault::malformed(
                what(),
                format!(
                    "inode number {number} is outside 1 to {} (the superblock's inode count)",
                    self.inode_count
                ),
            ));
        }
        let (word, bit) = ((number / 64) as usize, number % 64);
        let first = self.seen[word] & (1 << bit) == 0;
        self.seen[word] |= 1 << bit;
        if !first && is_dir {
            return Err(Fault::malformed(
                what(),
                format!("directory inode {number} is reached twice (a loop)"),
            ));
        }
        if !first && !self.first_paths.contains_key(&number) {
            return Err(Fault::malformed(
                what(),
                format!("inode {number} has one link but is reached twice"),
            ));
        }
        Ok(first)
    }

    /// The entry for `inode` reached at `path`.
    fn entry(
        &self,
        path: Vec<u8>,
        inode: &Inode,
        index: u64,
        what: &dyn Fn() -> String,
    ) -> Result<ArchiveEntry, Fault> {
        let id = |i: u16, field: &str| {
            self.ids.get(usize::from(i)).copied().ok_or_else(|| {
                Fault::malformed(
                    what(),
                    format!(
                        "{field} index {i} is not in the id table ({} ids)",
                        self.ids.len()
                    ),
                )
            })
        };
        let mut entry = ArchiveEntry {
            index,
            path,
            kind: EntryKind::Dir,
            mode: u32::from(inode.permissions) & 0o7777,
            uid: u64::from(id(inode.uid_idx, "uid")?),
            gid: u64::from(id(inode.gid_idx, "gid")?),
            mtime: i64::from(inode.mtime),
            size: 0,
            link_target: None,
            device: None,
            inode: Some(inode.inode_number),
            xattrs: XattrSet::default(),
        };
        match &inode.body {
            Decoded::Dir { .. } => {}
            Decoded::File { file_size, .. } => {
                entry.kind = EntryKind::File;
                entry.size = *file_size;
            }
            Decoded::Symlink { target } => {
                entry.kind = EntryKind::Symlink;
                entry.link_target = Some(target.clone());
            }
            Decoded::Device { block, device } => {
                entry.kind = if *block {
                    EntryKind::BlockDevice
                } else {
                    EntryKind::CharDevice
                };
                entry.device = Some(inode::decode_device(*device));
            }
            Decoded::Fifo => entry.kind = EntryKind::Fifo,
            Decoded::Socket => entry.kind = EntryKind::Socket,
        }
        Ok(entry)
    }
}

fn archive_error(path: &Path, fault: Fault) -> ArchiveError {
    match fault {
        Fault::Io(source) => ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        },
        Fault::Malformed { location, reason } => ArchiveError::Malformed {
            path: path.to_path_buf(),
            format: "squashfs",
            location,
            reason,
        },
    }
}

/// Where the tables end, as far as the superblock tells.
struct TableEnds {
    directory_end: u64,
    layout: Vec<(u64, &'static str)>,
}

/// Checks every table offset of `sb` against the image (`bytes_used`, itself
/// within the file of `len` bytes) and the declared counts against the
/// tables' sizes (§3).
fn check_tables(sb: &Superblock, len: u64) -> Result<TableEnds, String> {
    let used = sb.bytes_used;
    if used < SUPERBLOCK_SIZE || used > len {
        return Err(format!(
            "bytes_used {used} is not between the superblock's size and the file's {len} bytes"
        ));
    }
    let inside = |name: &str, at: u64| {
        if (SUPERBLOCK_SIZE..used).contains(&at) {
            Ok(())
        } else {
            Err(format!(
                "{name} {at} is not inside the image (bytes {SUPERBLOCK_SIZE} to {used})"
            ))
        }
    };
    inside("inode_table_start", sb.inode_table_start)?;
    inside("directory_table_start", sb.directory_table_start)?;
    inside("id_table_start", sb.id_table_start)?;
    if sb.inode_table_start >= sb.directory_table_start {
        return Err(format!(
            "inode_table_start {} is not before directory_table_start {}",
            sb.inode_table_start, sb.directory_table_start
        ));
    }
    if sb.fragment_entry_count > 0 {
        inside("fragment_table_start", sb.fragment_table_start)?;
    }
    for (name, at) in [
        ("export_table_start", sb.export_table_start),
        ("xattr_id_table_start", sb.xattr_id_table_start),
    ] {
        if at != NO_TABLE {
            inside(name, at)?;
        }
    }
    if sb.id_count == 0 {
        return Err("id_count is 0 (every inode names an owner in the id table)".to_string());
    }
    let id_blocks = (u64::from(sb.id_count) * 4).div_ceil(METADATA_SIZE as u64);
    if sb.id_table_start + 8 * id_blocks > used {
        return Err(format!(
            "the id table's block list ({id_blocks} entries at byte {}) runs past bytes_used",
            sb.id_table_start
        ));
    }
    let inode_table = sb.directory_table_start - sb.inode_table_start;
    let most_inodes = inode_table.div_ceil(3).saturating_mul(METADATA_SIZE as u64) / MIN_INODE_SIZE;
    if sb.inode_count == 0 || u64::from(sb.inode_count) > most_inodes {
        return Err(format!(
            "inode_count {} does not fit an inode table of {inode_table} bytes",
            sb.inode_count
        ));
    }
    let mut layout: Vec<(u64, &'static str)> = vec![
        (0, "superblock"),
        (
            SUPERBLOCK_SIZE,
            "compressor options, data and fragment blocks",
        ),
        (sb.inode_table_start, "inode table"),
        (sb.directory_table_start, "directory table"),
        (sb.id_table_start, "id table"),
    ];
    if sb.fragment_entry_count > 0 {
        layout.push((sb.fragment_table_start, "fragment table"));
    }
    if sb.export_table_start != NO_TABLE {
        layout.push((sb.export_table_start, "export table"));
    }
    if sb.xattr_id_table_start != NO_TABLE {
        layout.push((sb.xattr_id_table_start, "xattr table"));
    }
    layout.sort_by_key(|(at, _)| *at);
    // The directory table ends where the next part starts (lookup tables
    // keep their blocks before the location lists the superblock points
    // to, so this bound may include a table's blocks; it never leaves the
    // image).
    let directory_end = layout
        .iter()
        .map(|(at, _)| *at)
        .find(|at| *at > sb.directory_table_start)
        .unwrap_or(used);
    layout.push((used, "padding after bytes_used"));
    Ok(TableEnds {
        directory_end,
        layout,
    })
}

/// The compressor options record (§3.1), a metadata block right after the
/// superblock, in words.
fn read_options(image: &mut Image, inode_table_start: u64) -> Result<String, Fault> {
    let mut r = MetadataReader::new("compressor options", SUPERBLOCK_SIZE, inode_table_start);
    let mut cur = r.cursor(0);
    let id = image.sb.compression_id;
    let text = match id {
        // gzip: level, window size, strategies.
        1 => {
            let level = r.u32(image, &mut cur)?;
            let window = r.u16(image, &mut cur)?;
            let strategies = r.u16(image, &mut cur)?;
            format!("level={level},window={window},strategies={strategies}")
        }
        // xz: dictionary size, filters.
        4 => {
            let dict = r.u32(image, &mut cur)?;
            let filters = r.u32(image, &mut cur)?;
            format!("dict_size={dict},filters={filters:#x}")
        }
        // lz4: version, flags.
        5 => {
            let version = r.u32(image, &mut cur)?;
            let flags = r.u32(image, &mut cur)?;
            format!("version={version},flags={flags:#x}")
        }
        // zstd: level.
        6 => format!("level={}", r.u32(image, &mut cur)?),
        _ => format!("{} options", compressor_name(id)),
    };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With room for one fragment block, the cache evicts before almost
    /// every file, and every file still reads back intact.
    #[test]
    fn content_survives_fragment_cache_evictions() {
        let found = std::process::Command::new("mksquashfs")
            .arg("-version")
            .output()
            .is_ok();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "mksquashfs is required under CI"
            );
            eprintln!("skipping: mksquashfs is not installed");
            return;
        }
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let content =
            |i: u32| -> Vec<u8> { (0..3000u32).map(|j| ((i * 7 + j) % 253) as u8).collect() };
        for i in 0..20 {
            std::fs::write(src.join(format!("f{i:02}")), content(i)).unwrap();
        }
        let img = work.path().join("i.sqfs");
        let st = std::process::Command::new("mksquashfs")
            .arg(&src)
            .arg(&img)
            .args([
                "-noappend",
                "-no-xattrs",
                "-quiet",
                "-no-progress",
                "-b",
                "4096",
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let file = File::open(&img).unwrap();
        let mut sq = SquashfsArchive::open(&img, file, &ReadOptions::default()).unwrap();
        assert!(sq.info.fragment_count >= 10, "{:?}", sq.info);
        sq.fragment_cache_blocks = 1;
        let mut seen = 0;
        sq.visit(|e, r| {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            if e.kind() == EntryKind::File {
                let i: u32 = e.display_path()[1..].parse().unwrap();
                assert_eq!(got, content(i), "{}", e.display_path());
                seen += 1;
            }
            Ok::<(), ArchiveError>(())
        })
        .unwrap();
        assert_eq!(seen, 20);
    }
}
