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
//! Content is copied into an anonymous temp file (the spool) while the
//! stream is read, and entries refer to byte ranges of it
//! ([`Content::Spool`]); the stream itself may be a pipe. A gzip-compressed
//! stream is recognized by its magic bytes and decompressed.
//!
//! ```no_run
//! use repropack::stage::{stage_tar, StageOptions};
//! let tar = std::fs::File::open("rootfs.tar")?;
//! let plan = stage_tar(tar, "rootfs.tar", &StageOptions::default())?;
//! println!("{} entries", plan.entries().len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::sync::Arc;

use super::{
    Content, EntryKind, Excludes, MAX_ARCHIVE_PATH, Node, Plan, StageError, StageOptions, Staged,
    abbreviated, finish_plan, normalize_mode, normalize_mtime, place,
};

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
    let mut spool_out = BufWriter::with_capacity(1 << 20, &*spool);
    let mut spool_len = 0u64;

    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let is_gzip = buffered
        .fill_buf()
        .map_err(io_err)?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if is_gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);

    let mut root = Node {
        staged: None,
        children: BTreeMap::new(),
    };
    let mut files: HashMap<Vec<u8>, SeenFile> = HashMap::new();
    let mut symlinks: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut index = 0u64;
    for member in archive.entries().map_err(io_err)? {
        let mut member = member.map_err(io_err)?;
        index += 1;
        let raw_path = member.path_bytes().into_owned();
        let bad = |reason: String| StageError::Tar {
            input: name.to_string(),
            entry: abbreviated(&raw_path),
            reason,
        };
        let path = normalize_path(&raw_path).map_err(|r| bad(r.to_string()))?;
        if path.len() > MAX_ARCHIVE_PATH {
            return Err(bad(format!(
                "path is {} bytes; at most {MAX_ARCHIVE_PATH} (PATH_MAX - 1) are allowed",
                path.len()
            )));
        }
        let typ = member.header().entry_type();
        if typ.is_pax_global_extensions() {
            continue;
        }
        let header = member.header();
        let raw_mode = header.mode().map_err(|e| bad(e.to_string()))?;
        let src_mtime = header.mtime().map_err(|e| bad(e.to_string()))?;
        let mtime = normalize_mtime(opts, i64::try_from(src_mtime).unwrap_or(i64::MAX));
        // As on disk, excluding a directory excludes everything below it.
        let excluded = path.is_empty()
            || path
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'/')
                .any(|(i, _)| excludes.is_excluded(&path[..i]))
            || excludes.is_excluded(&path);
        let source = format!("{name}:{}", String::from_utf8_lossy(&raw_path));
        let staged = if typ.is_file() || typ.is_contiguous() || typ.is_gnu_sparse() {
            // Spool even excluded files: a later hard link may name them.
            let offset = spool_len;
            let size = io::copy(&mut member, &mut spool_out).map_err(io_err)?;
            spool_len += size;
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
                kind: EntryKind::File,
                mode,
                mtime,
                content: Some(content),
                symlink_target: Vec::new(),
                rdev: (0, 0),
                inode: Some(key),
                origin: source.into_boxed_str(),
            }
        } else if typ.is_hard_link() {
            let raw_target = member
                .link_name_bytes()
                .ok_or_else(|| bad("hard link without a target".into()))?;
            let target = normalize_path(&raw_target).map_err(|r| bad(r.to_string()))?;
            if let Some(f) = files.get(&target) {
                Staged {
                    kind: EntryKind::File,
                    mode: f.mode,
                    mtime: f.mtime,
                    content: Some(f.content.clone()),
                    symlink_target: Vec::new(),
                    rdev: (0, 0),
                    inode: Some(f.key),
                    origin: source.into_boxed_str(),
                }
            } else if let Some(t) = symlinks.get(&target) {
                // A hard link to a symlink is stored as another symlink.
                Staged {
                    kind: EntryKind::Symlink,
                    mode: normalize_mode(opts, EntryKind::Symlink, 0o777),
                    mtime,
                    content: None,
                    symlink_target: t.clone(),
                    rdev: (0, 0),
                    inode: None,
                    origin: source.into_boxed_str(),
                }
            } else {
                return Err(bad(format!(
                    "hard link to {:?}, which is not an earlier regular file or symlink",
                    String::from_utf8_lossy(&target)
                )));
            }
        } else if typ.is_symlink() {
            let target = member
                .link_name_bytes()
                .ok_or_else(|| bad("symlink without a target".into()))?
                .into_owned();
            symlinks.insert(path.clone(), target.clone());
            Staged {
                kind: EntryKind::Symlink,
                mode: normalize_mode(opts, EntryKind::Symlink, raw_mode),
                mtime,
                content: None,
                symlink_target: target,
                rdev: (0, 0),
                inode: None,
                origin: source.into_boxed_str(),
            }
        } else if typ.is_dir() {
            Staged {
                kind: EntryKind::Dir,
                mode: normalize_mode(opts, EntryKind::Dir, raw_mode),
                mtime,
                content: None,
                symlink_target: Vec::new(),
                rdev: (0, 0),
                inode: None,
                origin: source.into_boxed_str(),
            }
        } else if typ.is_fifo() || typ.is_character_special() || typ.is_block_special() {
            let (kind, what) = if typ.is_fifo() {
                (EntryKind::Fifo, "fifo")
            } else if typ.is_character_special() {
                (EntryKind::CharDevice, "character device")
            } else {
                (EntryKind::BlockDevice, "block device")
            };
            if excluded {
                continue;
            }
            if !opts.specials {
                return Err(StageError::Special {
                    path: source.into(),
                    kind: what,
                });
            }
            let rdev = if kind == EntryKind::Fifo {
                (0, 0)
            } else {
                let major = header.device_major().map_err(|e| bad(e.to_string()))?;
                let minor = header.device_minor().map_err(|e| bad(e.to_string()))?;
                (major.unwrap_or(0), minor.unwrap_or(0))
            };
            Staged {
                kind,
                mode: normalize_mode(opts, kind, raw_mode),
                mtime,
                content: None,
                symlink_target: Vec::new(),
                rdev,
                inode: None,
                origin: source.into_boxed_str(),
            }
        } else {
            return Err(bad(format!(
                "unsupported tar entry type {:?}",
                char::from(typ.as_byte())
            )));
        };
        if excluded {
            continue;
        }
        place(&mut root, &path, staged)?;
    }
    spool_out.flush().map_err(io_err)?;
    drop(spool_out);
    finish_plan(root, opts, Vec::new())
}

/// Archive path of a tar member: components joined by `/`, without empty
/// and `.` components; `..` is refused. The root (`./`) gives an empty path.
fn normalize_path(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => return Err("`..` is not allowed in an archive path"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_paths_are_normalized() {
        assert_eq!(normalize_path(b"./a//b/").unwrap(), b"a/b");
        assert_eq!(normalize_path(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(normalize_path(b"./").unwrap(), b"");
        assert!(normalize_path(b"a/../b").is_err());
    }
}
