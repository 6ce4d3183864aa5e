//! Walking the filesystem: one directory scan per task on the staging
//! threads, children sorted by raw name bytes.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::normalize::{
    Excludes, XattrFilter, XattrPairs, check_path_len, join, last_component, normalize_mtime,
    owner_and_mode,
};
use super::tree::{Children, Name, Node, Staged, special};
use super::{StageError, StageOptions};
use crate::plan::{Content, EntryKind, Payload, SourceDir};

/// Walks sources. Shared by the staging threads (`&self` only): what one
/// directory scan finds is returned, never written to shared state.
pub(super) struct Stager<'a> {
    pub(super) opts: &'a StageOptions,
    pub(super) excludes: Excludes,
    /// `None` unless extended attributes are kept.
    pub(super) xattrs: Option<XattrFilter>,
}

/// What staging one filesystem object found.
pub(super) enum Found {
    /// The object, and a warning about it (a special bit dropped).
    Staged(Staged, Option<String>),
    /// Skipped, with the warning to print.
    Skipped(String),
}

/// A staged object with everything below it, and the warnings raised there
/// in name order.
pub(super) struct Scanned {
    pub(super) node: Option<Node>,
    pub(super) warnings: Vec<String>,
}

impl Stager<'_> {
    fn io(path: &Path, source: io::Error) -> StageError {
        StageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn mtime_for(&self, meta: &fs::Metadata) -> u64 {
        normalize_mtime(self.opts, meta.mtime())
    }

    /// Stages one filesystem object (not recursing).
    /// `path` is `dir/name`; `follow` says whether `meta` and the xattrs
    /// are those of a symlink's target.
    /// `archive_name` is the entry's name in the archive: the content
    /// names its file only where that differs.
    fn stage_one(
        &self,
        path: &Path,
        (dir, name): (&SourceDir, &OsStr),
        archive_name: &[u8],
        meta: &fs::Metadata,
        follow: bool,
    ) -> Result<Found, StageError> {
        let ft = meta.file_type();
        let (kind, content, target, rdev) = if ft.is_dir() {
            (EntryKind::Dir, None, Vec::new(), (0, 0))
        } else if ft.is_file() {
            let content = if name.as_bytes() == archive_name {
                Content::in_dir(dir.clone(), meta)
            } else {
                Content::on_disk(Arc::new(dir.join(name)), meta)
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
        let inode = (kind == EntryKind::File && meta.nlink() > 1)
            .then(|| Box::new((meta.dev(), meta.ino())));
        let origin = content
            .is_none()
            .then(|| Box::new(path.display().to_string()));
        let (uid, gid, mode, warning) = owner_and_mode(
            self.opts,
            kind,
            meta.mode(),
            (meta.uid(), meta.gid()),
            &|| path.display().to_string(),
        );
        let xattrs = match &self.xattrs {
            Some(filter) => {
                filter.set_of(&path.display().to_string(), read_xattrs(path, follow)?)?
            }
            None => None,
        };
        let staged = Staged {
            kind,
            mode,
            uid,
            gid,
            mtime: self.mtime_for(meta),
            xattrs,
            payload: match content {
                Some(c) => Payload::Content(c),
                None => special(target, rdev),
            },
            inode,
            origin,
        };
        Ok(Found::Staged(staged, warning))
    }

    pub(super) fn metadata(&self, path: &Path, top: bool) -> Result<fs::Metadata, StageError> {
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
    pub(super) fn scan(
        &self,
        path: &Path,
        dir_name: (&SourceDir, &OsStr),
        archive: &[u8],
        meta: &fs::Metadata,
        ancestors: &[(u64, u64)],
    ) -> Result<Scanned, StageError> {
        // A source named on the command line is followed (see `metadata`).
        let follow = self.opts.follow_symlinks || ancestors.is_empty();
        let (staged, warning) =
            match self.stage_one(path, dir_name, last_component(archive), meta, follow)? {
                Found::Staged(s, w) => (s, w),
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
                    children: Children::new(),
                }),
                warnings: warning.into_iter().collect(),
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
        let (children, below) = self.scan_dir(path, archive, &chain)?;
        let mut warnings: Vec<String> = warning.into_iter().collect();
        warnings.extend(below);
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
    pub(super) fn scan_dir(
        &self,
        path: &Path,
        archive: &[u8],
        ancestors: &[(u64, u64)],
    ) -> Result<(Children, Vec<String>), StageError> {
        let mut items = Vec::new();
        let rd = fs::read_dir(path).map_err(|e| Self::io(path, e))?;
        for dirent in rd {
            let dirent = dirent.map_err(|e| Self::io(path, e))?;
            let name = Name::from(dirent.file_name().as_bytes());
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
        if let Some(p) = &self.opts.progress {
            p.found(items.len() as u64);
        }
        let dir: SourceDir = Arc::new(path.to_path_buf());
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
        let mut children = Vec::with_capacity(items.len());
        let mut warnings = Vec::new();
        for ((name, _, _, meta), result) in items.into_iter().zip(results) {
            meta?;
            let scanned = result?;
            warnings.extend(scanned.warnings);
            if let Some(node) = scanned.node {
                children.push((name, Box::new(node)));
            }
        }
        // Built at once from the sorted list, a B-tree's leaves are full;
        // inserted one by one in order, each would be left about half
        // empty, some 20 bytes per entry on a large tree.
        Ok((Children::from_iter(children), warnings))
    }
}

/// The extended attributes of `path` as (name, value) pairs, in the order
/// the OS lists them; with `follow`, those of a symlink's target. A file
/// system without xattr support has none.
fn read_xattrs(path: &Path, follow: bool) -> Result<XattrPairs, StageError> {
    use rustix::fs::{
        getxattr, getxattr_query, lgetxattr, lgetxattr_query, listxattr, listxattr_query,
        llistxattr, llistxattr_query,
    };
    use rustix::io::Errno;
    let fail = |name: &[u8], e: Errno| StageError::Xattr {
        source_path: path.display().to_string(),
        name: String::from_utf8_lossy(name).into_owned(),
        reason: io::Error::from(e).to_string(),
    };
    let list = read_sized(
        &|| {
            if follow {
                listxattr_query(path)
            } else {
                llistxattr_query(path)
            }
        },
        &|buf| {
            if follow {
                listxattr(path, buf)
            } else {
                llistxattr(path, buf)
            }
        },
    );
    let list = match list {
        Ok(list) => list,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(fail(b"", e)),
    };
    let mut pairs = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        // `split` at NUL leaves none inside a name.
        let cname = std::ffi::CString::new(name).map_err(|_| fail(name, Errno::INVAL))?;
        let value = read_sized(
            &|| {
                if follow {
                    getxattr_query(path, cname.as_c_str())
                } else {
                    lgetxattr_query(path, cname.as_c_str())
                }
            },
            &|buf| {
                if follow {
                    getxattr(path, cname.as_c_str(), buf)
                } else {
                    lgetxattr(path, cname.as_c_str(), buf)
                }
            },
        )
        .map_err(|e| fail(name, e))?;
        pairs.push((name.to_vec(), value));
    }
    Ok(pairs)
}

/// Asks `query` for the size, then calls `get` with a buffer of that size;
/// asks again when the list or value grew in between (ERANGE). An empty
/// list or value needs no second call.
fn read_sized(
    query: &dyn Fn() -> rustix::io::Result<usize>,
    get: &dyn Fn(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    loop {
        let size = query()?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match get(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}
