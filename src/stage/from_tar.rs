//! Staging from a tar stream (`pack --from-tar FILE|-`), e.g. the output of
//! `docker export`.
//!
//! The tar members go through the same rules as files on disk: paths are
//! normalized (leading `/` and `./` dropped, `..` refused), excludes apply
//! to each member and prune everything below an excluded directory, modes
//! and mtimes are normalized by the same functions, owners come from the
//! owner policy (tar uids, gids and user names are ignored), fifos and
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
//! (the spool) while the stream is read, runs of zero bytes left as holes
//! so that a sparse member costs the disk only its data, and entries refer
//! to byte ranges of it ([`Content::Spool`]); the stream itself may be a
//! pipe. A
//! gzip-compressed stream is recognized by its magic bytes and decompressed.
//!
//! ```no_run
//! use repropack::stage::{stage_tar, StageOptions};
//! let tar = std::fs::File::open("rootfs.tar")?;
//! let plan = stage_tar(tar, "rootfs.tar", &StageOptions::default())?;
//! println!("{} entries", plan.entries().len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use super::normalize::{Excludes, abbreviated, normalize_mode, normalize_mtime};
use super::tree::{Node, Staged, finish_plan, place};
use super::{MAX_ARCHIVE_PATH, StageError, StageOptions};
use crate::format::tar::read::visit;
use crate::format::{ArchiveEntry, ArchiveError, Format, PathProblem, normalize_path};
use crate::plan::{Content, EntryKind, Plan};

/// Device number used in the hard-link grouping keys of tar members (no
/// real `st_dev` is ever all ones).
const TAR_DEV: u64 = u64::MAX;

/// A regular file seen in the stream, kept so later hard links can join it.
struct SeenFile {
    key: (u64, u64),
    content: Content,
    mode: u32,
    mtime: u64,
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
    let spool = Arc::new(tempfile::tempfile().map_err(|e| StageError::Io {
        path: std::env::temp_dir(),
        source: e,
    })?);
    let mut spool_out = Spool::new(&spool);

    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let is_gzip = buffered
        .fill_buf()
        .map_err(io_err)?
        .starts_with(&[0x1f, 0x8b]);
    let (reader, format): (Box<dyn Read>, Format) = if is_gzip {
        (
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Format::TarGz,
        )
    } else {
        (Box::new(buffered), Format::Tar)
    };

    let mut root = Node {
        staged: None,
        children: BTreeMap::new(),
    };
    let mut files: HashMap<Vec<u8>, SeenFile> = HashMap::new();
    let mut symlinks: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut index = 0u64;
    let result = visit(
        Path::new(name),
        format,
        reader,
        u64::MAX,
        |member: &ArchiveEntry, content: &mut dyn Read| -> Result<(), Stop> {
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
            let simple = |kind: EntryKind, mode: u32, symlink_target: Vec<u8>, rdev| Staged {
                kind,
                mode,
                mtime,
                content: None,
                symlink_target,
                rdev,
                inode: None,
                origin: source.clone().into_boxed_str(),
            };
            let staged = match member.kind() {
                EntryKind::File => {
                    // Spool even excluded files: a later hard link may name them.
                    let offset = spool_out.len;
                    let size = spool_out.append(content).map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof
                            || e.kind() == io::ErrorKind::InvalidData
                        {
                            Stop::Read(ArchiveError::content(member, e))
                        } else {
                            Stop::Stage(io_err(e))
                        }
                    })?;
                    let key = (TAR_DEV, index);
                    let content = Content::Spool {
                        file: spool.clone(),
                        offset,
                        size,
                    };
                    let mode = normalize_mode(opts, EntryKind::File, raw_mode);
                    files.insert(
                        path.clone(),
                        SeenFile {
                            key,
                            content: content.clone(),
                            mode,
                            mtime,
                        },
                    );
                    Staged {
                        content: Some(content),
                        inode: Some(key),
                        ..simple(EntryKind::File, mode, Vec::new(), (0, 0))
                    }
                }
                EntryKind::HardLink => {
                    let raw_target = member.link_target().unwrap_or_default();
                    let target = archive_path(raw_target).map_err(|r| bad(r.to_string()))?;
                    if let Some(f) = files.get(&target) {
                        Staged {
                            kind: EntryKind::File,
                            mode: f.mode,
                            mtime: f.mtime,
                            content: Some(f.content.clone()),
                            inode: Some(f.key),
                            ..simple(EntryKind::File, 0, Vec::new(), (0, 0))
                        }
                    } else if let Some(t) = symlinks.get(&target) {
                        // A hard link to a symlink is stored as another symlink.
                        let mode = normalize_mode(opts, EntryKind::Symlink, 0o777);
                        simple(EntryKind::Symlink, mode, t.clone(), (0, 0))
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
                    let mode = normalize_mode(opts, EntryKind::Symlink, raw_mode);
                    simple(EntryKind::Symlink, mode, target, (0, 0))
                }
                EntryKind::Dir => simple(
                    EntryKind::Dir,
                    normalize_mode(opts, EntryKind::Dir, raw_mode),
                    Vec::new(),
                    (0, 0),
                ),
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
                    simple(kind, normalize_mode(opts, kind, raw_mode), Vec::new(), rdev)
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
    finish_plan(root, opts, Vec::new())
}

/// The spool: the content of every regular file of the stream, back to
/// back. Zero bytes are left as holes (a seek past them instead of a
/// write), so a sparse member takes the disk space of its data, not of the
/// real size it declares: a few bytes of tar may declare terabytes.
struct Spool<'a> {
    out: BufWriter<&'a File>,
    /// Logical length: where the next content starts.
    len: u64,
    buf: Vec<u8>,
}

impl<'a> Spool<'a> {
    fn new(file: &'a File) -> Spool<'a> {
        Spool {
            out: BufWriter::with_capacity(1 << 20, file),
            len: 0,
            buf: vec![0; 1 << 16],
        }
    }

    /// Appends everything `content` yields; returns how many bytes.
    fn append(&mut self, content: &mut dyn Read) -> io::Result<u64> {
        let start = self.len;
        // Whether the file offset is at `self.len` (no hole pending).
        let mut at_end = true;
        loop {
            let n = match content.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &self.buf[..n];
            if chunk.iter().all(|&b| b == 0) {
                at_end = false;
            } else {
                if !at_end {
                    self.out.seek(SeekFrom::Start(self.len))?;
                    at_end = true;
                }
                self.out.write_all(chunk)?;
            }
            self.len += n as u64;
        }
        if !at_end {
            self.out.seek(SeekFrom::Start(self.len))?;
        }
        Ok(self.len - start)
    }

    /// Writes out what is buffered and gives the file its full length, so
    /// a hole at the end reads as zeros too.
    fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().set_len(self.len)
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
