//! Writes entries into the staging directory without ever following a
//! symlink (see the module docs of [`crate::extract`]).
//!
//! Two layers: the bookkeeping in [`Writer::made`] (what this extraction
//! created at each normalized path) decides and names every refusal; and all
//! file-system calls go through directory file descriptors opened from the
//! staging root one component at a time with `O_NOFOLLOW | O_DIRECTORY`,
//! with files created `O_EXCL | O_NOFOLLOW`, so even a bookkeeping mistake
//! could not make the kernel follow a symlink.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufRead, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};

use super::symlinks::escape_reason;
use super::{ExtractError, ExtractOptions, ExtractReport, Rule, SymlinkPolicy, checked_path};
use crate::format::{ArchiveEntry, ArchiveError, normalize_path};
use crate::plan::{EntryKind, XattrSet};

/// Mode of a directory implied by a deeper entry but not stored itself.
const IMPLICIT_DIR_MODE: u32 = 0o755;
/// Mode of the extracted root when the archive has no `.` entry.
const DEFAULT_ROOT_MODE: u32 = 0o755;
/// Runs of zeros this long (and aligned to it in the file) become holes.
const HOLE_CHUNK: usize = 4096;

/// The private staging directory. Removed on drop unless
/// [`Staging::disarm`]ed after it was renamed into place. It holds an
/// exclusive `flock` on itself while its extraction lives, so a staging
/// directory whose lock can be taken was left by a killed process (see
/// [`remove_stale_staging`]).
pub(crate) struct Staging {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    _lock: fs::File,
}

impl Staging {
    fn create(parent: &Path, final_name: &OsStr) -> io::Result<Staging> {
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(final_name);
        prefix.push(STAGING_MARK);
        remove_stale_staging(parent);
        loop {
            let dir = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(parent)?;
            let path = dir.path().to_path_buf();
            let lock = fs::File::open(&path);
            // A sweeper may have taken the directory away before the lock:
            // then the path leads elsewhere (or nowhere) and we start over.
            let Ok(lock) = lock else { continue };
            lock.lock()?;
            let ours = lock.metadata()?;
            match fs::symlink_metadata(&path) {
                Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => {
                    return Ok(Staging {
                        dir: Some(dir),
                        path,
                        _lock: lock,
                    });
                }
                _ => {
                    let _ = dir.keep();
                }
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the removal on drop (the directory was renamed away).
    pub(crate) fn disarm(mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take()
            && d.close().is_err()
        {
            // A directory already given a read-only mode: make the tree
            // writable again and retry.
            make_writable(&self.path);
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Marks staging directories: `.NAME` + this + random characters.
const STAGING_MARK: &str = ".extract-";

/// Removes the staging directories in `parent` that killed extractions
/// left (names `.NAME.extract-*` whose lock no live process holds).
pub(crate) fn remove_stale_staging(parent: &Path) {
    let is_staging = |name: &[u8]| {
        name.starts_with(b".")
            && name
                .windows(STAGING_MARK.len())
                .any(|w| w == STAGING_MARK.as_bytes())
    };
    crate::output::sweep_locked(parent, is_staging, |p| {
        if fs::remove_dir_all(p).is_err() {
            make_writable(p);
            let _ = fs::remove_dir_all(p);
        }
    });
}

fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&e.path());
            }
        }
    }
}

/// What this extraction created at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Dir,
    File,
    Symlink,
    Special,
}

impl Made {
    fn name(self) -> &'static str {
        match self {
            Made::Dir => "directory",
            Made::File => "file",
            Made::Symlink => "symlink",
            Made::Special => "special file",
        }
    }
}

struct DirMeta {
    path: Vec<u8>,
    mode: u32,
    mtime: Option<i64>,
    owner: Option<(u64, u64)>,
    xattrs: XattrSet,
    /// The entry's path as stored, for messages.
    raw: Vec<u8>,
}

pub(crate) struct Writer<'a> {
    opts: &'a ExtractOptions,
    dest: PathBuf,
    staging: Staging,
    root: OwnedFd,
    made: HashMap<Vec<u8>, Made>,
    /// Directories in creation order (parents before children).
    dirs: Vec<DirMeta>,
    dir_index: HashMap<Vec<u8>, usize>,
    links: HashMap<Vec<u8>, Vec<u8>>,
    /// Sockets skipped (a hard link to one is skipped too).
    skipped: std::collections::HashSet<Vec<u8>>,
    link_order: Vec<Vec<u8>>,
    root_meta: Option<DirMeta>,
    /// The last parent directory opened, reused by the next entry.
    parent: Option<(Vec<u8>, OwnedFd)>,
    report: ExtractReport,
    /// Whether `security.*` and `trusted.*` attributes can be set.
    root_user: bool,
}

/// What an owner or attribute is set on, without following a symlink: an
/// open file or directory, or `name` in an open directory.
#[derive(Clone, Copy)]
enum Target<'f> {
    Fd(&'f OwnedFd),
    At(&'f OwnedFd, &'f [u8]),
}

fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl<'a> Writer<'a> {
    pub(crate) fn new(
        parent: &Path,
        dest: &Path,
        opts: &'a ExtractOptions,
    ) -> Result<Writer<'a>, ExtractError> {
        let out = |source| ExtractError::Output {
            path: dest.to_path_buf(),
            source,
        };
        let name = dest.file_name().unwrap_or(OsStr::new("extract"));
        let staging = Staging::create(parent, name).map_err(out)?;
        let root = rustix::fs::open(
            staging.path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| out(e.into()))?;
        Ok(Writer {
            opts,
            dest: dest.to_path_buf(),
            staging,
            root,
            made: HashMap::new(),
            dirs: Vec::new(),
            dir_index: HashMap::new(),
            links: HashMap::new(),
            skipped: Default::default(),
            link_order: Vec::new(),
            root_meta: None,
            parent: None,
            report: ExtractReport::default(),
            root_user: rustix::process::geteuid().is_root(),
        })
    }

    fn out_err(&self, rel: &[u8], source: io::Error) -> ExtractError {
        ExtractError::Output {
            path: self.dest.join(os(rel)),
            source,
        }
    }

    /// Mode to apply: stored bits, minus setuid/setgid/sticky unless kept.
    fn mode_of(&mut self, e: &ArchiveEntry) -> u32 {
        let m = e.mode() & 0o7777;
        if !self.opts.keep_special_bits && m & 0o7000 != 0 {
            self.report.dropped_special_bits += 1;
            m & 0o777
        } else {
            m
        }
    }

    fn owner_of(&self, e: &ArchiveEntry) -> Option<(u64, u64)> {
        self.opts.same_owner.then(|| (e.uid(), e.gid()))
    }

    /// The attributes to apply to `e`: none without `--xattrs`.
    fn xattrs_of(&self, e: &ArchiveEntry) -> XattrSet {
        if self.opts.xattrs {
            e.xattrs().clone()
        } else {
            XattrSet::default()
        }
    }

    /// A stored owner or attribute could not be set: an error naming the
    /// entry and what, or with `best_effort` a warning.
    fn unapplied(
        &mut self,
        raw: &[u8],
        rel: &[u8],
        what: String,
        source: io::Error,
    ) -> Result<(), ExtractError> {
        let path = self.dest.join(os(rel));
        if self.opts.best_effort {
            self.report.unapplied += 1;
            self.report.warnings.push(format!(
                "entry {:?}: cannot set {what} on {}: {source}",
                String::from_utf8_lossy(raw),
                path.display()
            ));
            return Ok(());
        }
        Err(ExtractError::Metadata {
            entry: String::from_utf8_lossy(raw).into_owned(),
            what,
            path,
            source,
        })
    }

    /// Sets the owner, then the attributes (after the owner: `chown`
    /// clears `security.capability`), never following a symlink.
    fn set_owner_and_xattrs(
        &mut self,
        raw: &[u8],
        rel: &[u8],
        target: Target<'_>,
        owner: Option<(u64, u64)>,
        xattrs: &XattrSet,
    ) -> Result<(), ExtractError> {
        if let Some((uid, gid)) = owner {
            let set = owner_ids(uid, gid).and_then(|(u, g)| {
                match target {
                    Target::Fd(fd) => rustix::fs::fchown(fd, Some(u), Some(g)),
                    Target::At(dir, name) => rustix::fs::chownat(
                        dir,
                        os(name),
                        Some(u),
                        Some(g),
                        AtFlags::SYMLINK_NOFOLLOW,
                    ),
                }
                .map_err(io::Error::from)
            });
            if let Err(err) = set {
                self.unapplied(raw, rel, format!("owner {uid}:{gid}"), err)?;
            }
        }
        for (name, value) in xattrs.iter() {
            if !self.root_user && (name.starts_with(b"security.") || name.starts_with(b"trusted."))
            {
                self.report.skipped_xattrs += 1;
                continue;
            }
            let flags = rustix::fs::XattrFlags::empty();
            let set = match target {
                Target::Fd(fd) => rustix::fs::fsetxattr(fd, os(name), value, flags),
                // No `setxattrat` before Linux 6.13: name the directory by
                // its descriptor; `lsetxattr` does not follow the last
                // component.
                Target::At(dir, file) => {
                    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                    p.extend_from_slice(file);
                    rustix::fs::lsetxattr(os(&p), os(name), value, flags)
                }
            };
            if let Err(err) = set {
                let what = format!("xattr {}", String::from_utf8_lossy(name));
                self.unapplied(raw, rel, what, err.into())?;
            }
        }
        Ok(())
    }

    /// Extracts one entry (the closure body of the archive visitor).
    pub(crate) fn entry(
        &mut self,
        e: &ArchiveEntry,
        content: &mut dyn BufRead,
    ) -> Result<(), ExtractError> {
        self.report.entries += 1;
        if let Some(p) = &self.opts.progress {
            let bytes = if e.kind() == EntryKind::File {
                e.size()
            } else {
                0
            };
            p.wrote(1, bytes);
        }
        let path = checked_path(e.path(), self.opts)?;
        if path.is_empty() {
            if e.kind() != EntryKind::Dir {
                return Err(ExtractError::unsafe_entry(
                    e.path(),
                    Rule::RootNotDirectory,
                    format!("the root is stored as a {}", e.kind().name()),
                ));
            }
            let mode = self.mode_of(e);
            self.root_meta = Some(DirMeta {
                path: Vec::new(),
                mode,
                mtime: Some(e.mtime()),
                owner: self.owner_of(e),
                xattrs: self.xattrs_of(e),
                raw: e.path().to_vec(),
            });
            return Ok(());
        }
        let (parent, name) = split_last(&path);
        self.ensure_parents(e.path(), parent)?;
        if let Some(prev) = self.made.get(&path).copied() {
            if prev == Made::Dir && e.kind() == EntryKind::Dir {
                // A directory stored again (or after an implied one): the
                // last metadata wins, as with GNU tar.
                let mode = self.mode_of(e);
                let owner = self.owner_of(e);
                let xattrs = self.xattrs_of(e);
                if let Some(&i) = self.dir_index.get(&path) {
                    self.dirs[i].mode = mode;
                    self.dirs[i].mtime = Some(e.mtime());
                    self.dirs[i].owner = owner;
                    self.dirs[i].xattrs = xattrs;
                    self.dirs[i].raw = e.path().to_vec();
                }
                return Ok(());
            }
            return Err(ExtractError::unsafe_entry(
                e.path(),
                Rule::Duplicate,
                format!("already extracted as a {}", prev.name()),
            ));
        }
        let at = At {
            path: &path,
            parent,
            name,
        };
        match e.kind() {
            EntryKind::Dir => {
                let mode = self.mode_of(e);
                let meta = DirMeta {
                    path: path.clone(),
                    mode,
                    mtime: Some(e.mtime()),
                    owner: self.owner_of(e),
                    xattrs: self.xattrs_of(e),
                    raw: e.path().to_vec(),
                };
                self.mkdir(parent, name, &path, meta)
            }
            EntryKind::File => self.file(e, at, content),
            EntryKind::Symlink => self.symlink(e, at),
            EntryKind::HardLink => self.hardlink(e, at),
            EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice => self.special(e, at),
            EntryKind::Socket => {
                self.report.warnings.push(format!(
                    "skipped socket {:?} (sockets cannot be extracted)",
                    e.display_path()
                ));
                self.skipped.insert(path);
                Ok(())
            }
        }
    }

    /// Checks that every component of `parent` is a directory created by
    /// this extraction, creating missing ones (mode 0755).
    fn ensure_parents(&mut self, raw: &[u8], parent: &[u8]) -> Result<(), ExtractError> {
        if parent.is_empty() || self.made.get(parent) == Some(&Made::Dir) {
            return Ok(());
        }
        let ends = parent
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .chain([parent.len()]);
        for end in ends {
            let prefix = &parent[..end];
            match self.made.get(prefix) {
                Some(Made::Dir) => {}
                Some(Made::Symlink) => {
                    return Err(ExtractError::unsafe_entry(
                        raw,
                        Rule::ThroughSymlink,
                        format!(
                            "{:?} is a symlink created by an earlier entry",
                            String::from_utf8_lossy(prefix)
                        ),
                    ));
                }
                Some(other) => {
                    return Err(ExtractError::unsafe_entry(
                        raw,
                        Rule::ThroughNonDirectory,
                        format!(
                            "{:?} is a {} created by an earlier entry",
                            String::from_utf8_lossy(prefix),
                            other.name()
                        ),
                    ));
                }
                None => {
                    let (pp, name) = split_last(prefix);
                    let meta = DirMeta {
                        path: prefix.to_vec(),
                        mode: IMPLICIT_DIR_MODE,
                        mtime: None,
                        owner: None,
                        xattrs: XattrSet::default(),
                        raw: prefix.to_vec(),
                    };
                    self.mkdir(pp, name, prefix, meta)?;
                }
            }
        }
        Ok(())
    }

    /// Opens directory `rel` (relative to the staging root) one component
    /// at a time, refusing to follow any symlink.
    fn open_dir(&self, rel: &[u8]) -> Result<OwnedFd, ExtractError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = rustix::fs::openat(&self.root, ".", flags, Mode::empty())
            .map_err(|e| self.out_err(rel, e.into()))?;
        if rel.is_empty() {
            return Ok(fd);
        }
        for comp in rel.split(|&b| b == b'/') {
            fd = rustix::fs::openat(&fd, os(comp), flags, Mode::empty())
                .map_err(|e| self.out_err(rel, e.into()))?;
        }
        Ok(fd)
    }

    fn take_parent(&mut self, parent: &[u8]) -> Result<OwnedFd, ExtractError> {
        if let Some((p, fd)) = self.parent.take()
            && p == parent
        {
            return Ok(fd);
        }
        self.open_dir(parent)
    }

    fn put_parent(&mut self, parent: &[u8], fd: OwnedFd) {
        self.parent = Some((parent.to_vec(), fd));
    }

    fn mkdir(
        &mut self,
        parent: &[u8],
        name: &[u8],
        path: &[u8],
        meta: DirMeta,
    ) -> Result<(), ExtractError> {
        let fd = self.take_parent(parent)?;
        let made = rustix::fs::mkdirat(&fd, os(name), Mode::from_raw_mode(0o700));
        self.put_parent(parent, fd);
        made.map_err(|e| self.out_err(path, e.into()))?;
        self.made.insert(path.to_vec(), Made::Dir);
        self.dir_index.insert(path.to_vec(), self.dirs.len());
        self.dirs.push(meta);
        self.report.dirs += 1;
        Ok(())
    }

    fn file(
        &mut self,
        e: &ArchiveEntry,
        at: At<'_>,
        content: &mut dyn BufRead,
    ) -> Result<(), ExtractError> {
        let At { path, parent, name } = at;
        // The reader has checked the total against `max_size` already.
        let size = e.size();
        let mode = self.mode_of(e);
        let fd = self.take_parent(parent)?;
        let created = rustix::fs::openat(
            &fd,
            os(name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        );
        self.put_parent(parent, fd);
        let mut file = File::from(created.map_err(|err| self.out_err(path, err.into()))?);
        let (written, ends_in_hole) = self.copy_sparse(e, path, content, &mut file)?;
        if written != size {
            return Err(ArchiveError::content(
                e,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("content has {written} bytes, the header says {size}"),
                ),
            )
            .into());
        }
        if ends_in_hole {
            file.set_len(size).map_err(|err| self.out_err(path, err))?;
        }
        let fd = OwnedFd::from(file);
        let (owner, xattrs) = (self.owner_of(e), self.xattrs_of(e));
        self.set_owner_and_xattrs(e.path(), path, Target::Fd(&fd), owner, &xattrs)?;
        let finish = || -> io::Result<()> {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            rustix::fs::futimens(&fd, &times(e.mtime()))?;
            Ok(())
        };
        finish().map_err(|err| self.out_err(path, err))?;
        self.made.insert(path.to_vec(), Made::File);
        self.report.files += 1;
        self.report.bytes += size;
        Ok(())
    }

    /// Copies content straight from the reader's buffers, turning all-zero
    /// 4 KiB chunks (aligned in the file, wherever the reader's pieces end)
    /// into holes (seeking over them) and writing each run of other chunks
    /// with one call. Returns the bytes
    /// read and whether the file ends in a hole (then its length must still
    /// be set). Read errors are the archive's, write errors the
    /// destination's.
    fn copy_sparse(
        &mut self,
        e: &ArchiveEntry,
        path: &[u8],
        content: &mut dyn BufRead,
        file: &mut File,
    ) -> Result<(u64, bool), ExtractError> {
        let mut written: u64 = 0;
        let mut hole: u64 = 0;
        // The start of a chunk that a piece ended in, not yet written: the
        // next piece tells whether the chunk is all zeros.
        let mut carry: Vec<u8> = Vec::with_capacity(HOLE_CHUNK);
        let dest = &self.dest;
        let out = |err| ExtractError::Output {
            path: dest.join(os(path)),
            source: err,
        };
        loop {
            let data = match content.fill_buf() {
                Ok([]) => break,
                Ok(data) => data,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(ArchiveError::content(e, err).into()),
            };
            let n = data.len();
            written += n as u64;
            if written > e.size() {
                break;
            }
            let mut pos = 0;
            if !carry.is_empty() {
                pos = (HOLE_CHUNK - carry.len()).min(n);
                carry.extend_from_slice(&data[..pos]);
                if carry.len() == HOLE_CHUNK {
                    if carry.iter().all(|&b| b == 0) {
                        hole += HOLE_CHUNK as u64;
                    } else {
                        write_run(file, &mut hole, &carry).map_err(out)?;
                    }
                    carry.clear();
                }
            }
            // From here on `pos` is at a chunk boundary of the file, or `n`.
            let mut run_start = pos;
            while pos < n {
                let end = (pos + HOLE_CHUNK).min(n);
                if end - pos < HOLE_CHUNK {
                    // The piece ends inside this chunk: keep its start.
                    carry.extend_from_slice(&data[pos..end]);
                    break;
                }
                if data[pos..end].iter().all(|&b| b == 0) {
                    if run_start < pos {
                        write_run(file, &mut hole, &data[run_start..pos]).map_err(out)?;
                    }
                    hole += HOLE_CHUNK as u64;
                    run_start = end;
                }
                pos = end;
            }
            if run_start < pos {
                write_run(file, &mut hole, &data[run_start..pos]).map_err(out)?;
            }
            content.consume(n);
        }
        // A last partial chunk is data, zeros or not.
        if !carry.is_empty() {
            write_run(file, &mut hole, &carry).map_err(out)?;
        }
        Ok((written, hole > 0))
    }

    fn symlink(&mut self, e: &ArchiveEntry, at: At<'_>) -> Result<(), ExtractError> {
        let At { path, name, .. } = at;
        let target = e.link_target().unwrap_or_default().to_vec();
        if target.is_empty() || target.contains(&0) {
            return Err(ExtractError::unsafe_entry(
                e.path(),
                Rule::BadSymlinkTarget,
                "empty target or NUL byte in target",
            ));
        }
        self.make_at(e, at, Made::Symlink, None, |fd| {
            rustix::fs::symlinkat(os(&target), fd, os(name))
        })?;
        self.note_symlink(path, target);
        self.report.symlinks += 1;
        Ok(())
    }

    /// Remembers a symlink made at `path`, for the escape check at the end.
    fn note_symlink(&mut self, path: &[u8], target: Vec<u8>) {
        self.links.insert(path.to_vec(), target);
        self.link_order.push(path.to_vec());
    }

    fn hardlink(&mut self, e: &ArchiveEntry, at: At<'_>) -> Result<(), ExtractError> {
        let At { path, parent, name } = at;
        let raw_target = e.link_target().unwrap_or_default();
        let shown = String::from_utf8_lossy(raw_target).into_owned();
        let target = normalize_path(raw_target).map_err(|p| {
            ExtractError::unsafe_entry(
                e.path(),
                Rule::HardLinkOutside,
                format!("target {shown:?}: {p}"),
            )
        })?;
        if self.skipped.contains(&target) {
            self.report.warnings.push(format!(
                "skipped hard link {:?} to skipped socket {shown:?}",
                e.display_path()
            ));
            self.skipped.insert(path.to_vec());
            return Ok(());
        }
        let kind = match self.made.get(&target) {
            _ if target.is_empty() => Made::Dir,
            Some(k) => *k,
            None => {
                return Err(ExtractError::unsafe_entry(
                    e.path(),
                    Rule::HardLinkMissing,
                    format!("target {shown:?} is not an earlier entry of this archive"),
                ));
            }
        };
        if kind == Made::Dir {
            return Err(ExtractError::unsafe_entry(
                e.path(),
                Rule::HardLinkToDirectory,
                format!("target {shown:?} is a directory"),
            ));
        }
        let (tparent, tname) = split_last(&target);
        let tfd = self.open_dir(tparent)?;
        let fd = self.take_parent(parent)?;
        let linked = rustix::fs::linkat(&tfd, os(tname), &fd, os(name), AtFlags::empty());
        self.put_parent(parent, fd);
        linked.map_err(|err| self.out_err(path, err.into()))?;
        self.made.insert(path.to_vec(), kind);
        if kind == Made::Symlink
            && let Some(t) = self.links.get(&target).cloned()
        {
            self.note_symlink(path, t);
        }
        self.report.hardlinks += 1;
        Ok(())
    }

    fn special(&mut self, e: &ArchiveEntry, at: At<'_>) -> Result<(), ExtractError> {
        let name = at.name;
        if !self.opts.specials {
            return Err(ExtractError::unsafe_entry(
                e.path(),
                Rule::SpecialFile,
                format!(
                    "{} refused (pass --specials to create fifos and device nodes)",
                    e.kind().name()
                ),
            ));
        }
        let (major, minor) = e.device().unwrap_or((0, 0));
        let (file_type, dev) = match e.kind() {
            EntryKind::CharDevice => (FileType::CharacterDevice, rustix::fs::makedev(major, minor)),
            EntryKind::BlockDevice => (FileType::BlockDevice, rustix::fs::makedev(major, minor)),
            _ => (FileType::Fifo, 0),
        };
        let mode = self.mode_of(e);
        self.make_at(e, at, Made::Special, Some(mode), |fd| {
            rustix::fs::mknodat(fd, os(name), file_type, Mode::from_raw_mode(0o600), dev)
        })?;
        self.report.specials += 1;
        Ok(())
    }

    /// Creates `name` in the directory `parent` with `create`, then sets the
    /// entry's owner, `mode` (symlinks have none) and mtime on it without
    /// following it, and records `path` as `made`.
    fn make_at(
        &mut self,
        e: &ArchiveEntry,
        at: At<'_>,
        made: Made,
        mode: Option<u32>,
        create: impl FnOnce(&OwnedFd) -> rustix::io::Result<()>,
    ) -> Result<(), ExtractError> {
        let At { path, parent, name } = at;
        let (owner, xattrs) = (self.owner_of(e), self.xattrs_of(e));
        let fd = self.take_parent(parent)?;
        if let Err(err) = create(&fd) {
            self.put_parent(parent, fd);
            return Err(self.out_err(path, err.into()));
        }
        let set = self.set_owner_and_xattrs(e.path(), path, Target::At(&fd, name), owner, &xattrs);
        if let Err(err) = set {
            self.put_parent(parent, fd);
            return Err(err);
        }
        let result = (|| -> io::Result<()> {
            if let Some(mode) = mode {
                rustix::fs::chmodat(&fd, os(name), Mode::from_raw_mode(mode), AtFlags::empty())?;
            }
            rustix::fs::utimensat(&fd, os(name), &times(e.mtime()), AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(())
        })();
        self.put_parent(parent, fd);
        result.map_err(|err| self.out_err(path, err))?;
        self.made.insert(path.to_vec(), made);
        Ok(())
    }

    /// Checks symlink targets (with [`SymlinkPolicy::RejectEscaping`]),
    /// applies directory modes and times deepest first, syncs, and hands
    /// back the staging directory ready to be renamed.
    pub(crate) fn finish(mut self) -> Result<(ExtractReport, Staging), ExtractError> {
        if self.opts.symlinks == SymlinkPolicy::RejectEscaping {
            for link in &self.link_order {
                if let Some(reason) = escape_reason(&self.links, link) {
                    return Err(ExtractError::unsafe_entry(
                        link,
                        Rule::SymlinkEscapes,
                        reason,
                    ));
                }
            }
        }
        self.parent = None;
        let root_meta = self.root_meta.take().unwrap_or(DirMeta {
            path: Vec::new(),
            mode: DEFAULT_ROOT_MODE,
            mtime: None,
            owner: None,
            xattrs: XattrSet::default(),
            raw: b".".to_vec(),
        });
        let dirs = std::mem::take(&mut self.dirs);
        for d in dirs.iter().rev().chain([&root_meta]) {
            let fd = self.open_dir(&d.path)?;
            self.set_owner_and_xattrs(&d.raw, &d.path, Target::Fd(&fd), d.owner, &d.xattrs)?;
            let apply = || -> io::Result<()> {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(d.mode))?;
                if let Some(t) = d.mtime {
                    rustix::fs::futimens(&fd, &times(t))?;
                }
                Ok(())
            };
            apply().map_err(|err| self.out_err(&d.path, err))?;
        }
        if self.report.skipped_xattrs > 0 {
            self.report.warnings.push(format!(
                "skipped {} security.*/trusted.* attribute(s): only root can set them",
                self.report.skipped_xattrs
            ));
        }
        if self.opts.sync {
            rustix::fs::syncfs(&self.root).map_err(|e| self.out_err(b"", e.into()))?;
        }
        Ok((self.report, self.staging))
    }
}

/// Seeks over a pending hole, then writes `data`.
fn write_run(file: &mut File, hole: &mut u64, data: &[u8]) -> io::Result<()> {
    if *hole > 0 {
        file.seek(SeekFrom::Current(*hole as i64))?;
        *hole = 0;
    }
    file.write_all(data)
}

fn owner_ids(uid: u64, gid: u64) -> io::Result<(Uid, Gid)> {
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "uid or gid does not fit 32 bits",
        )
    };
    let uid = u32::try_from(uid).map_err(|_| too_big())?;
    let gid = u32::try_from(gid).map_err(|_| too_big())?;
    Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
}

/// Where an entry goes: its normalized path, and that path split into
/// the parent directory and the name in it.
#[derive(Clone, Copy)]
struct At<'a> {
    path: &'a [u8],
    parent: &'a [u8],
    name: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ArchiveEntry;
    use crate::plan::EntryKind;

    fn file_entry(path: &[u8]) -> ArchiveEntry {
        ArchiveEntry {
            index: 0,
            path: path.to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            size: 4,
            link_target: None,
            device: None,
            inode: None,
            xattrs: Default::default(),
        }
    }

    /// Even if the bookkeeping believed a symlink were a directory, the
    /// kernel refuses to walk through it (`O_NOFOLLOW | O_DIRECTORY`).
    #[test]
    fn kernel_refuses_a_symlink_the_bookkeeping_missed() {
        let work = tempfile::tempdir().unwrap();
        let outside = work.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let opts = ExtractOptions::default();
        let dest = work.path().join("out");
        let mut w = Writer::new(work.path(), &dest, &opts).unwrap();
        std::os::unix::fs::symlink(&outside, w.staging.path().join("a")).unwrap();
        w.made.insert(b"a".to_vec(), Made::Dir); // the simulated mistake
        let err = w
            .entry(&file_entry(b"a/evil"), &mut &b"evil"[..])
            .unwrap_err();
        assert!(matches!(err, ExtractError::Output { .. }), "{err:?}");
        // A file planted at the final name is not written through either.
        std::os::unix::fs::symlink(outside.join("victim"), w.staging.path().join("f")).unwrap();
        let err = w.entry(&file_entry(b"f"), &mut &b"evil"[..]).unwrap_err();
        assert!(matches!(err, ExtractError::Output { .. }), "{err:?}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        let staging = w.staging.path().to_path_buf();
        drop(w);
        assert!(!staging.exists(), "staging dir removed on drop");
    }
}
