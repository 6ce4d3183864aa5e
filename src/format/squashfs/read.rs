//! SquashFS 4.0 reading on top of `backhand`.
//!
//! backhand reads the superblock, the inode, fragment, export and id tables
//! and decompresses the directory table and file data. The directory table
//! is walked here instead of through `FilesystemReader::files()` because that
//! view drops inode numbers (so hard links cannot be told from deduplicated
//! copies) and refuses hostile names before a caller can see and name them.
//!
//! Directory table layout (squashfs-tools-ng `doc/format.adoc`, "Directory
//! Table"): a directory inode points at `block_index` (start of a metadata
//! block, relative to the table start) + `block_offset` (in the uncompressed
//! block) and has `file_size` = listing bytes + 3. The listing is a run of
//! headers `{count-1: u32, start: u32, inode_number: u32}`, each followed by
//! at most 256 entries `{offset: u16, inode_offset: i16, type: u16,
//! name_size-1: u16, name}`, all little endian. An entry's inode number is the
//! header's plus `inode_offset`; its type is always the basic type (an
//! extended inode's type minus 7).
//!
//! Walk order: root (path `.`) first, then depth first, each directory's
//! entries in stored order. A non-directory inode met again is yielded as a
//! [`EntryKind::HardLink`] to the first path; a directory inode met again is
//! a loop and refused.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use backhand::kind::{Kind, LE_V4_0};
use backhand::v4::inode::{BasicDeviceSpecialFile, ExtendedDeviceSpecialFile, Inode, InodeInner};
use backhand::{FilesystemReader, Squashfs, SquashfsFileReader};

use crate::format::{ArchiveEntry, ArchiveError, ReadOptions};
use crate::plan::EntryKind;

/// Superblock facts (squashfs-tools-ng `doc/format.adoc`, "The Superblock").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashfsInfo {
    /// `gzip`, `lzma`, `lzo`, `xz`, `lz4`, `zstd` or `none`.
    pub compressor: &'static str,
    /// Compressor options stored after the superblock, as backhand shows them.
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

const NOT_SET: u64 = u64::MAX;

pub(crate) struct SquashfsArchive {
    path: PathBuf,
    info: SquashfsInfo,
    fs: FilesystemReader<'static>,
    entries: Vec<ArchiveEntry>,
    /// For each entry, the file inode to read content from.
    files: Vec<Option<SquashfsFileReader>>,
    fragment_cache_limit: u64,
}

/// backhand keeps every fragment block it decompresses for the life of its
/// reader. To bound memory (a small image can reference a million
/// fragment blocks of 1 MiB), the content reader is rebuilt from the image
/// once the distinct fragment blocks read since the last rebuild could hold
/// more than this many bytes.
pub(crate) const FRAGMENT_CACHE_LIMIT: u64 = 64 << 20;

const NO_FRAGMENT: usize = 0xffff_ffff;

/// Turns a parsed image into a reader used only for file content: the
/// root handed to backhand has an empty listing so that it does not walk
/// (and judge) the tree itself.
fn content_reader(
    path: &Path,
    mut sq: Squashfs<'static>,
) -> Result<FilesystemReader<'static>, ArchiveError> {
    let malformed = |location: &str, reason: String| ArchiveError::Malformed {
        path: path.to_path_buf(),
        format: "squashfs",
        location: location.to_string(),
        reason,
    };
    sq.inodes.clear();
    sq.dir_blocks.1.clear();
    match &mut sq.root_inode.inner {
        InodeInner::BasicDirectory(d) => d.file_size = 3,
        InodeInner::ExtendedDirectory(d) => d.file_size = 3,
        _ => {
            return Err(malformed(
                "root inode",
                "root is not a directory".to_string(),
            ));
        }
    }
    sq.into_filesystem_reader()
        .map_err(|e| malformed("tables", e.to_string()))
}

/// Parses the image again for a fresh content reader (see
/// [`FRAGMENT_CACHE_LIMIT`]).
fn reopen_content_reader(path: &Path) -> Result<FilesystemReader<'static>, ArchiveError> {
    let file = File::open(path).map_err(|source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sq = Squashfs::from_reader_with_offset(BufReader::with_capacity(1 << 16, file), 0)
        .map_err(|e| ArchiveError::Malformed {
            path: path.to_path_buf(),
            format: "squashfs",
            location: "tables".to_string(),
            reason: e.to_string(),
        })?;
    content_reader(path, sq)
}

struct RawDirEntry {
    name: Vec<u8>,
    inode_number: u32,
    base_type: u16,
}

impl SquashfsArchive {
    pub(crate) fn open(
        path: &Path,
        mut file: File,
        options: &ReadOptions,
    ) -> Result<SquashfsArchive, ArchiveError> {
        let malformed = |location: &str, reason: String| ArchiveError::Malformed {
            path: path.to_path_buf(),
            format: "squashfs",
            location: location.to_string(),
            reason,
        };
        let io_err = |source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        };
        let kind = Kind::from_const(LE_V4_0).map_err(|e| malformed("superblock", e))?;
        let mut reader = BufReader::new(file.try_clone().map_err(io_err)?);
        let (sb, _) = Squashfs::superblock_and_compression_options(&mut reader, &kind)
            .map_err(|e| malformed("superblock", e.to_string()))?;
        if u64::from(sb.inode_count) > options.max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_path_buf(),
                limit: options.max_entries,
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut sq = Squashfs::from_reader_with_offset(BufReader::with_capacity(1 << 16, file), 0)
            .map_err(|e| malformed("tables", e.to_string()))?;
        let info = SquashfsInfo {
            compressor: compressor_name(sb.compressor as u16),
            compression_options: sq.compression_options.map(|o| format!("{o:?}")),
            block_size: sb.block_size,
            mkfs_time: sb.mod_time,
            flags: sb.flags,
            inode_count: sb.inode_count,
            fragment_count: sb.frag_count,
            id_count: sb.id_count,
            bytes_used: sb.bytes_used,
            version_major: sb.version_major,
            version_minor: sb.version_minor,
            has_export_table: sb.export_table != NOT_SET,
            has_xattr_table: sb.xattr_table != NOT_SET,
        };

        // Take the tables this module walks, and hand backhand a root with an
        // empty listing so that building its reader does not walk (and
        // judge) the tree itself: it is kept only to read file content.
        let inodes: HashMap<u32, Inode> = std::mem::take(&mut sq.inodes).into_iter().collect();
        let (offsets, dir_data) = std::mem::take(&mut sq.dir_blocks);
        let dir_offsets: HashMap<u64, u64> = offsets.into_iter().collect();
        let root = sq.root_inode.clone();
        let fs = content_reader(path, sq)?;

        let walker = Walker {
            path,
            inodes: &inodes,
            dir_offsets: &dir_offsets,
            dir_data: &dir_data,
            ids: fs.id_table.iter().map(|id| id.num).collect(),
            max_entries: options.max_entries,
        };
        let (entries, files) = walker.walk(&root)?;
        Ok(SquashfsArchive {
            path: path.to_path_buf(),
            info,
            fs,
            entries,
            files,
            fragment_cache_limit: FRAGMENT_CACHE_LIMIT,
        })
    }

    pub(crate) fn info(&self) -> &SquashfsInfo {
        &self.info
    }

    pub(crate) fn visit<E, F>(self, mut f: F) -> Result<(), E>
    where
        E: From<ArchiveError>,
        F: FnMut(&ArchiveEntry, &mut dyn Read) -> Result<(), E>,
    {
        let mut fs = self.fs;
        let mut fragments_read: HashSet<usize> = HashSet::new();
        let block_size = u64::from(self.info.block_size);
        for (entry, file) in self.entries.iter().zip(&self.files) {
            match file {
                Some(inode) => {
                    let frag = inode.frag_index();
                    if frag != NO_FRAGMENT
                        && fragments_read.insert(frag)
                        && fragments_read.len() as u64 * block_size > self.fragment_cache_limit
                    {
                        fs = reopen_content_reader(&self.path)?;
                        fragments_read.clear();
                        fragments_read.insert(frag);
                    }
                    let mut reader =
                        fs.file(inode)
                            .reader_checked()
                            .map_err(|e| ArchiveError::Malformed {
                                path: self.path.clone(),
                                format: "squashfs",
                                location: format!("inode of {:?}", entry.display_path()),
                                reason: e.to_string(),
                            })?;
                    f(entry, &mut reader)?;
                }
                None => f(entry, &mut io::empty())?,
            }
        }
        Ok(())
    }
}

struct Walker<'a> {
    path: &'a Path,
    inodes: &'a HashMap<u32, Inode>,
    dir_offsets: &'a HashMap<u64, u64>,
    dir_data: &'a [u8],
    ids: Vec<u32>,
    max_entries: u64,
}

impl Walker<'_> {
    fn malformed(&self, location: String, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Malformed {
            path: self.path.to_path_buf(),
            format: "squashfs",
            location,
            reason: reason.into(),
        }
    }

    fn walk(
        &self,
        root: &Inode,
    ) -> Result<(Vec<ArchiveEntry>, Vec<Option<SquashfsFileReader>>), ArchiveError> {
        let mut entries = Vec::new();
        let mut files = Vec::new();
        let mut dirs_seen = HashSet::new();
        let mut first_path: HashMap<u32, Vec<u8>> = HashMap::new();

        let (root_entry, _) = self.entry(b".".to_vec(), root, 0)?;
        entries.push(root_entry);
        files.push(None);
        dirs_seen.insert(root.header.inode_number);

        let mut stack: Vec<(Vec<u8>, std::vec::IntoIter<RawDirEntry>)> =
            vec![(Vec::new(), self.listing(root, ".")?.into_iter())];
        while let Some((prefix, iter)) = stack.last_mut() {
            let Some(raw) = iter.next() else {
                stack.pop();
                continue;
            };
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&raw.name);
            let shown = String::from_utf8_lossy(&path).into_owned();
            let inode = self.inodes.get(&raw.inode_number).ok_or_else(|| {
                self.malformed(
                    format!("directory entry {shown:?}"),
                    format!("inode {} does not exist", raw.inode_number),
                )
            })?;
            let inode_type = inode.id as u16;
            let base = if inode_type > 7 {
                inode_type - 7
            } else {
                inode_type
            };
            if base != raw.base_type {
                return Err(self.malformed(
                    format!("directory entry {shown:?}"),
                    format!(
                        "entry type {} but inode {} has type {inode_type}",
                        raw.base_type, raw.inode_number
                    ),
                ));
            }
            let index = entries.len() as u64;
            if index >= self.max_entries {
                return Err(ArchiveError::TooManyEntries {
                    path: self.path.to_path_buf(),
                    limit: self.max_entries,
                });
            }
            if base == 1 {
                if !dirs_seen.insert(raw.inode_number) {
                    return Err(self.malformed(
                        format!("directory entry {shown:?}"),
                        format!(
                            "directory inode {} is reached twice (a loop)",
                            raw.inode_number
                        ),
                    ));
                }
                let (entry, _) = self.entry(path.clone(), inode, index)?;
                entries.push(entry);
                files.push(None);
                let listing = self.listing(inode, &shown)?;
                stack.push((path, listing.into_iter()));
                continue;
            }
            if let Some(first) = first_path.get(&raw.inode_number) {
                let (mut entry, _) = self.entry(path, inode, index)?;
                entry.kind = EntryKind::HardLink;
                entry.size = 0;
                entry.device = None;
                entry.link_target = Some(first.clone());
                entries.push(entry);
                files.push(None);
                continue;
            }
            first_path.insert(raw.inode_number, path.clone());
            let (entry, file) = self.entry(path, inode, index)?;
            entries.push(entry);
            files.push(file);
        }
        Ok((entries, files))
    }

    /// The entry for `inode` reached at `path`, and its file data if any.
    fn entry(
        &self,
        path: Vec<u8>,
        inode: &Inode,
        index: u64,
    ) -> Result<(ArchiveEntry, Option<SquashfsFileReader>), ArchiveError> {
        let shown = String::from_utf8_lossy(&path).into_owned();
        let id = |i: u16, what: &str| {
            self.ids.get(usize::from(i)).copied().ok_or_else(|| {
                self.malformed(
                    format!("inode of {shown:?}"),
                    format!("{what} index {i} is not in the id table"),
                )
            })
        };
        let h = inode.header;
        let mut entry = ArchiveEntry {
            index,
            path,
            kind: EntryKind::Dir,
            mode: u32::from(h.permissions) & 0o7777,
            uid: u64::from(id(h.uid, "uid")?),
            gid: u64::from(id(h.gid, "gid")?),
            mtime: i64::from(h.mtime),
            size: 0,
            link_target: None,
            device: None,
            inode: Some(h.inode_number),
        };
        let mut file = None;
        match &inode.inner {
            InodeInner::BasicDirectory(_) | InodeInner::ExtendedDirectory(_) => {}
            InodeInner::BasicFile(f) => {
                entry.kind = EntryKind::File;
                entry.size = u64::from(f.file_size);
                file = Some(SquashfsFileReader::Basic(f.clone()));
            }
            InodeInner::ExtendedFile(f) => {
                entry.kind = EntryKind::File;
                entry.size = f.file_size;
                file = Some(SquashfsFileReader::Extended(f.clone()));
            }
            InodeInner::BasicSymlink(s) => {
                entry.kind = EntryKind::Symlink;
                entry.link_target = Some(s.target_path.clone());
            }
            InodeInner::ExtendedSymlink(s) => {
                entry.kind = EntryKind::Symlink;
                entry.link_target = Some(s.target_path.clone());
            }
            InodeInner::BasicBlockDevice(BasicDeviceSpecialFile { device_number, .. })
            | InodeInner::ExtendedBlockDevice(ExtendedDeviceSpecialFile {
                device_number, ..
            }) => {
                entry.kind = EntryKind::BlockDevice;
                entry.device = Some(decode_dev(*device_number));
            }
            InodeInner::BasicCharacterDevice(BasicDeviceSpecialFile { device_number, .. })
            | InodeInner::ExtendedCharacterDevice(ExtendedDeviceSpecialFile {
                device_number,
                ..
            }) => {
                entry.kind = EntryKind::CharDevice;
                entry.device = Some(decode_dev(*device_number));
            }
            InodeInner::BasicNamedPipe(_) | InodeInner::ExtendedNamedPipe(_) => {
                entry.kind = EntryKind::Fifo;
            }
            InodeInner::BasicSocket(_) | InodeInner::ExtendedSocket(_) => {
                entry.kind = EntryKind::Socket;
            }
        }
        Ok((entry, file))
    }

    /// Parses the listing of directory `inode` (see the module docs).
    fn listing(&self, inode: &Inode, shown: &str) -> Result<Vec<RawDirEntry>, ArchiveError> {
        let bad = |reason: String| self.malformed(format!("directory {shown:?}"), reason);
        let (block_index, file_size, block_offset) = match &inode.inner {
            InodeInner::BasicDirectory(d) => {
                (d.block_index, u32::from(d.file_size), d.block_offset)
            }
            InodeInner::ExtendedDirectory(d) => (d.block_index, d.file_size, d.block_offset),
            _ => return Err(bad("not a directory inode".to_string())),
        };
        if file_size < 3 {
            return Err(bad(format!("listing size {file_size} is below 3")));
        }
        let len = (file_size - 3) as usize;
        if len == 0 {
            return Ok(Vec::new());
        }
        let start = self
            .dir_offsets
            .get(&u64::from(block_index))
            .ok_or_else(|| bad(format!("no directory metadata block at {block_index}")))?;
        let begin = usize::try_from(*start)
            .ok()
            .and_then(|s| s.checked_add(usize::from(block_offset)))
            .ok_or_else(|| bad("listing offset overflows".to_string()))?;
        let bytes = begin
            .checked_add(len)
            .and_then(|end| self.dir_data.get(begin..end))
            .ok_or_else(|| bad("listing runs past the directory table".to_string()))?;

        let mut out = Vec::new();
        let mut rest = bytes;
        let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>, ArchiveError> {
            if rest.len() < n {
                return Err(bad("listing ends inside a header or entry".to_string()));
            }
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            Ok(head.to_vec())
        };
        while !rest.is_empty() {
            let h = take(&mut rest, 12)?;
            let count = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize + 1;
            let base_inode = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
            if count > 256 {
                return Err(bad(format!("header with {count} entries (at most 256)")));
            }
            for _ in 0..count {
                let e = take(&mut rest, 8)?;
                let inode_offset = i16::from_le_bytes([e[2], e[3]]);
                let base_type = u16::from_le_bytes([e[4], e[5]]);
                let name_len = usize::from(u16::from_le_bytes([e[6], e[7]])) + 1;
                let at = begin + (bytes.len() - rest.len());
                let name = take(&mut rest, name_len)?;
                if let Some(why) = bad_name(&name) {
                    return Err(bad(format!(
                        "entry name {:?} at byte {at} of the uncompressed directory table {why}",
                        String::from_utf8_lossy(&name)
                    )));
                }
                let number = i64::from(base_inode) + i64::from(inode_offset);
                let inode_number = u32::try_from(number)
                    .map_err(|_| bad(format!("inode number {number} out of range")))?;
                out.push(RawDirEntry {
                    name,
                    inode_number,
                    base_type,
                });
            }
        }
        Ok(out)
    }
}

/// Why a directory entry name is not one a SquashFS directory can hold
/// (squashfs-tools-ng `doc/format.adoc`, "Directory Table": a name of 1 to
/// 256 bytes naming one entry of the directory), as rdsquashfs refuses it.
/// A name with `/` would silently become a deeper path, `.`/`..` another
/// directory.
fn bad_name(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 256 {
        Some("is longer than 256 bytes")
    } else if name.contains(&b'/') {
        Some("contains '/'")
    } else if name.contains(&0) {
        Some("contains a NUL byte")
    } else if name == b"." || name == b".." {
        Some("is '.' or '..'")
    } else {
        None
    }
}

/// Linux `new_decode_dev`: minor in bits 0-7 and 20-31, major in 8-19
/// (squashfs-tools-ng `doc/format.adoc`, "Device Special Files").
fn decode_dev(dev: u32) -> (u32, u32) {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major, minor)
}

fn compressor_name(id: u16) -> &'static str {
    match id {
        0 => "none",
        1 => "gzip",
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a limit of one fragment block, the content reader is rebuilt
    /// before almost every file, and every file still reads back intact.
    #[test]
    fn content_survives_fragment_cache_rebuilds() {
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
        sq.fragment_cache_limit = 4096;
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
