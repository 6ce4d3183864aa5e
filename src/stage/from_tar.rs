//! Staging from a tar stream (`pack --from-tar FILE|-`), e.g. the output of
//! `docker export`.
//!
//! The tar members go through the same rules as files on disk: paths are
//! normalized (leading `/` and `./` dropped, `..` refused), excludes apply
//! to each member and prune everything below an excluded directory, modes
//! and mtimes are normalized by the same functions, owners come from the
//! owner policy (each member's numeric uid and gid with `keep_owners`; user
//! and group names are never kept), extended attributes from the member's
//! records when the xattr policy keeps them, fifos and
//! devices are refused unless `specials` is set, and the result is the same
//! sorted tree as [`stage`](super::stage) builds. Hard-link members
//! (`typeflag '1'`) join the group of the regular file they name, so every
//! writer sees the same `hardlink_of`/`links` as for a directory with hard
//! links. Directories that only appear as parents of other members are
//! created with the default directory metadata.
//!
//! The stream is read by the same bounded reader as `extract`, `digest` and
//! `verify` ([`crate::format::tar::read`]): extension headers are capped,
//! unsupported member types are refused, and for a gzip stream every
//! member's CRC is checked. Content is copied into an anonymous temp file
//! (the spool) while the stream is read, and entries refer to byte ranges of
//! it ([`Content::Spool`]); the stream itself may be a pipe. The spool is a
//! sparse file: zero blocks (a sparse member's holes) take no disk. A
//! gzip-compressed stream is recognized by its magic bytes and decompressed.
//!
//! ```no_run
//! use repropack::stage::{stage_tar, StageOptions};
//! let tar = std::fs::File::open("rootfs.tar")?;
//! let plan = stage_tar(tar, "rootfs.tar", &StageOptions::default())?;
//! println!("{} entries", plan.entries().len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::normalize::{Excludes, XattrFilter, abbreviated, normalize_mtime, owner_and_mode};
use super::tree::{Children, Node, Staged, finish_plan, place, special};
use super::{MAX_ARCHIVE_PATH, StageError, StageOptions};
use crate::format::tar::read::visit;
use crate::format::{ArchiveEntry, ArchiveError, Format, PathProblem, normalize_path};
use crate::plan::{Content, EntryKind, Payload, Plan, XattrSet};

/// Device number used in the hard-link grouping keys of tar members (no
/// real `st_dev` is ever all ones).
const TAR_DEV: u64 = u64::MAX;

/// A regular file seen in the stream, kept so later hard links can join it.
struct SeenFile {
    key: (u64, u64),
    content: Content,
    /// The stored uid, gid and mode.
    meta: (u32, u32, u32),
    mtime: u64,
    xattrs: Option<Box<XattrSet>>,
}

/// Why staging a tar stream stopped: the reader refused the stream, or a
/// member broke a staging rule.
enum Stop {
    Read(ArchiveError),
    Stage(StageError),
}

impl From<ArchiveError> for Stop {
    fn from(e: ArchiveError) -> Stop {
        Stop::Read(e)
    }
}

impl From<StageError> for Stop {
    fn from(e: StageError) -> Stop {
        Stop::Stage(e)
    }
}

/// Stages the tar stream `input` (named `name` in messages; `-` for stdin)
/// into a plan.
pub fn stage_tar(input: impl Read, name: &str, opts: &StageOptions) -> Result<Plan, StageError> {
    let io_err = |source: io::Error| StageError::Io {
        path: name.into(),
        source,
    };
    let excludes = Excludes::new(&opts.excludes)?;
    let xattr_filter = XattrFilter::new(&opts.xattrs)?;
    let mut warnings = Vec::new();
    let spool = Arc::new(tempfile::tempfile().map_err(|e| StageError::Io {
        path: std::env::temp_dir(),
        source: e,
    })?);
    let mut spool_out = SparseSpool::new(&spool);

    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let is_gzip = buffered
        .fill_buf()
        .map_err(io_err)?
        .starts_with(&[0x1f, 0x8b]);
    let (reader, format): (Box<dyn BufRead>, Format) = if is_gzip {
        (
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::bufread::MultiGzDecoder::new(buffered),
            )),
            Format::TarGz,
        )
    } else {
        (Box::new(buffered), Format::Tar)
    };

    let mut root = Node {
        staged: None,
        children: Children::new(),
    };
    let mut files: HashMap<Vec<u8>, SeenFile> = HashMap::new();
    let mut symlinks: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut index = 0u64;
    let result = visit(
        Path::new(name),
        format,
        reader,
        u64::MAX,
        |member: &ArchiveEntry, content: &mut dyn BufRead| -> Result<(), Stop> {
            index += 1;
            let raw_path = member.path();
            let bad = |reason: String| StageError::Tar {
                input: name.to_string(),
                entry: abbreviated(raw_path),
                reason,
            };
            let path = archive_path(raw_path).map_err(|r| bad(r.to_string()))?;
            if path.len() > MAX_ARCHIVE_PATH {
                return Err(bad(format!(
                    "path is {} bytes; at most {MAX_ARCHIVE_PATH} (PATH_MAX - 1) are allowed",
                    path.len()
                ))
                .into());
            }
            let raw_mode = member.mode();
            let mtime = normalize_mtime(opts, member.mtime());
            // As on disk, excluding a directory excludes everything below it.
            let excluded = path.is_empty()
                || path
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| b == b'/')
                    .any(|(i, _)| excludes.is_excluded(&path[..i]))
                || excludes.is_excluded(&path);
            let source = format!("{name}:{}", String::from_utf8_lossy(raw_path));
            // An id past 32 bits is refused only where it would be stored;
            // otherwise it only has to differ from --owner's.
            let id = |v: u64, what: &str| match u32::try_from(v) {
                Ok(id) => Ok(id),
                Err(_) if opts.keep_owners => Err(bad(format!("{what} {v} does not fit 32 bits"))),
                Err(_) => Ok(u32::MAX),
            };
            let src_owner = (id(member.uid(), "uid")?, id(member.gid(), "gid")?);
            let xattrs = match &xattr_filter {
                Some(filter) => filter.set_of(
                    &source,
                    member
                        .xattrs()
                        .iter()
                        .map(|(n, v)| (n.to_vec(), v.to_vec()))
                        .collect(),
                )?,
                None => None,
            };
            // The owner and mode of a member of `kind`, warning when a
            // special bit is dropped because its owner was replaced.
            let mut owned = |kind: EntryKind| {
                let (uid, gid, mode, warning) =
                    owner_and_mode(opts, kind, raw_mode, src_owner, &|| source.clone());
                if !excluded {
                    warnings.extend(warning);
                }
                (uid, gid, mode)
            };
            let simple = |kind: EntryKind,
                          (uid, gid, mode): (u32, u32, u32),
                          symlink_target: Vec<u8>,
                          rdev| Staged {
                kind,
                mode,
                uid,
                gid,
                mtime,
                xattrs: xattrs.clone(),
                payload: special(symlink_target, rdev),
                inode: None,
                origin: Some(Box::new(source.clone())),
            };
            let staged = match member.kind() {
                EntryKind::File => {
                    // Spool even excluded files: a later hard link may name them.
                    let offset = spool_out.len();
                    let size = spool_out.append(content).map_err(|e| match e {
                        Copy::Read(e)
                            if e.kind() == io::ErrorKind::UnexpectedEof
                                || e.kind() == io::ErrorKind::InvalidData =>
                        {
                            Stop::Read(ArchiveError::content(member, e))
                        }
                        Copy::Read(e) | Copy::Write(e) => Stop::Stage(io_err(e)),
                    })?;
                    let key = (TAR_DEV, index);
                    let content = Content::Spool {
                        file: spool.clone(),
                        offset,
                        size,
                    };
                    let meta = owned(EntryKind::File);
                    files.insert(
                        path.clone(),
                        SeenFile {
                            key,
                            content: content.clone(),
                            meta,
                            mtime,
                            xattrs: xattrs.clone(),
                        },
                    );
                    Staged {
                        payload: Payload::Content(content),
                        inode: Some(Box::new(key)),
                        ..simple(EntryKind::File, meta, Vec::new(), (0, 0))
                    }
                }
                EntryKind::HardLink => {
                    let raw_target = member.link_target().unwrap_or_default();
                    let target = archive_path(raw_target).map_err(|r| bad(r.to_string()))?;
                    if let Some(f) = files.get(&target) {
                        // One inode: the link has its target's owner, mode
                        // and attributes, whatever its own header says.
                        Staged {
                            mtime: f.mtime,
                            payload: Payload::Content(f.content.clone()),
                            inode: Some(Box::new(f.key)),
                            xattrs: f.xattrs.clone(),
                            ..simple(EntryKind::File, f.meta, Vec::new(), (0, 0))
                        }
                    } else if let Some(t) = symlinks.get(&target) {
                        // A hard link to a symlink is stored as another symlink.
                        let meta = owned(EntryKind::Symlink);
                        simple(EntryKind::Symlink, meta, t.clone(), (0, 0))
                    } else {
                        return Err(bad(format!(
                            "hard link to {:?}, which is not an earlier regular file or symlink",
                            String::from_utf8_lossy(&target)
                        ))
                        .into());
                    }
                }
                EntryKind::Symlink => {
                    let target = member.link_target().unwrap_or_default().to_vec();
                    symlinks.insert(path.clone(), target.clone());
                    let meta = owned(EntryKind::Symlink);
                    simple(EntryKind::Symlink, meta, target, (0, 0))
                }
                EntryKind::Dir => simple(EntryKind::Dir, owned(EntryKind::Dir), Vec::new(), (0, 0)),
                kind @ (EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice) => {
                    if excluded {
                        return Ok(());
                    }
                    if !opts.specials {
                        let what = match kind {
                            EntryKind::Fifo => "fifo",
                            EntryKind::CharDevice => "character device",
                            _ => "block device",
                        };
                        return Err(StageError::Special {
                            path: source.into(),
                            kind: what,
                        }
                        .into());
                    }
                    let rdev = member.device().unwrap_or((0, 0));
                    simple(kind, owned(kind), Vec::new(), rdev)
                }
                EntryKind::Socket => {
                    return Err(bad("sockets cannot be staged".into()).into());
                }
            };
            if excluded {
                return Ok(());
            }
            place(&mut root, &path, staged)?;
            Ok(())
        },
    );
    match result {
        Ok(()) => {}
        Err(Stop::Stage(e)) => return Err(e),
        Err(Stop::Read(e)) => return Err(StageError::TarStream(e)),
    }
    spool_out.finish().map_err(io_err)?;
    let xattr_file = super::apply_xattr_file(&mut root, opts)?;
    let mut plan = finish_plan(root, opts, warnings)?;
    plan.input_files.xattr_file = xattr_file;
    Ok(plan)
}

/// Why copying a member into the spool failed.
enum Copy {
    /// Reading the member (a truncated or malformed archive).
    Read(io::Error),
    /// Writing the spool (a full disk).
    Write(io::Error),
}

/// Spool block: whole blocks of zeros are left as holes.
const SPOOL_BLOCK: usize = 4096;

/// The spool, written as a sparse file: a block-aligned run of zeros (a
/// sparse member's holes, or zeros stored as data) is skipped rather than
/// written, so a 5 GiB member that is mostly hole costs its data on disk,
/// not 5 GiB, and reads back the same bytes.
struct SparseSpool<'a> {
    file: &'a std::fs::File,
    /// Bytes not yet written, starting at `buf_start`.
    buf: Vec<u8>,
    /// What each read of a member fills.
    chunk: Vec<u8>,
    buf_start: u64,
    /// Logical length: where the next member starts.
    len: u64,
}

impl<'a> SparseSpool<'a> {
    fn new(file: &'a std::fs::File) -> SparseSpool<'a> {
        SparseSpool {
            file,
            buf: Vec::with_capacity(1 << 20),
            chunk: vec![0; 1 << 20],
            buf_start: 0,
            len: 0,
        }
    }

    fn len(&self) -> u64 {
        self.len
    }

    /// Copies `content` to the end of the spool; returns its size.
    fn append(&mut self, content: &mut dyn Read) -> Result<u64, Copy> {
        let start = self.len;
        let mut chunk = std::mem::take(&mut self.chunk);
        let result = loop {
            let n = match content.read(&mut chunk) {
                Ok(0) => break Ok(self.len - start),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Copy::Read(e)),
            };
            if let Err(e) = self.write(&chunk[..n]) {
                break Err(Copy::Write(e));
            }
        };
        self.chunk = chunk;
        result
    }

    /// Appends `bytes`, in pieces that end on block boundaries of the spool.
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let into_block = (self.len % SPOOL_BLOCK as u64) as usize;
            let piece = bytes.len().min(SPOOL_BLOCK - into_block);
            let (head, rest) = bytes.split_at(piece);
            let whole_block = into_block == 0 && piece == SPOOL_BLOCK;
            // A block begun by an earlier write and ended by this one (reads
            // end anywhere), all of it still buffered.
            let ends_block =
                into_block > 0 && piece == SPOOL_BLOCK - into_block && self.buf.len() >= into_block;
            let zeros = |b: &[u8]| b.iter().all(|&b| b == 0);
            if whole_block && zeros(head) {
                self.flush()?;
            } else if ends_block && zeros(head) && zeros(&self.buf[self.buf.len() - into_block..]) {
                self.buf.truncate(self.buf.len() - into_block);
                self.flush()?;
            } else {
                if self.buf.len() + piece > self.buf.capacity() {
                    self.flush()?;
                }
                if self.buf.is_empty() {
                    self.buf_start = self.len;
                }
                self.buf.extend_from_slice(head);
            }
            self.len += piece as u64;
            bytes = rest;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            std::os::unix::fs::FileExt::write_all_at(self.file, &self.buf, self.buf_start)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and extends the file over a final hole, so
    /// every member reads back to its full size.
    fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        if self.file.metadata()?.len() < self.len {
            self.file.set_len(self.len)?;
        }
        Ok(())
    }
}

/// Archive path of a tar member: leading `/` dropped (as GNU tar does when
/// creating), then the canonical relative form of [`normalize_path`]; `..`
/// and NUL bytes are refused. The root (`./`) gives an empty path.
fn archive_path(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    let relative = &raw[raw.iter().take_while(|&&b| b == b'/').count()..];
    normalize_path(relative).map_err(|p| match p {
        PathProblem::DotDot => "`..` is not allowed in an archive path",
        PathProblem::Nul => "NUL byte in path",
        PathProblem::Absolute => "absolute path",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_paths_are_normalized() {
        assert_eq!(archive_path(b"./a//b/").unwrap(), b"a/b");
        assert_eq!(archive_path(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(archive_path(b"//etc").unwrap(), b"etc");
        assert_eq!(archive_path(b"./").unwrap(), b"");
        assert!(archive_path(b"a/../b").is_err());
        assert!(archive_path(b"a\0b").is_err());
    }
}
