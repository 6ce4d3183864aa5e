//! Pack files: the layout of an archive written down, in gensquashfs's
//! format (`gensquashfs(1)`, "PACK FILE FORMAT"), so that device nodes,
//! setuid files and owners need neither root nor such files on disk.
//!
//! [`parse`] turns the text into typed [`Line`]s; [`read`] does so for a
//! file in bounded memory ([`MAX_PACK_FILE`], [`MAX_LINE`]). Staging then
//! applies the lines, in order, to the tree its `SRC` arguments made:
//!
//! - a line adds its entry, creating missing parents as directories
//!   (0755, the `--owner`, the epoch), as gensquashfs does;
//! - a line on a path a `SRC` staged with the same kind overrides that
//!   entry's mode and owner (and, where the line names one, its content,
//!   target or device number); a `file` line without a location keeps the
//!   staged content. A different kind is an error naming both;
//! - a path given by two lines is an error (except a `dir` line on a
//!   directory so far only created as a parent), as in gensquashfs;
//! - `link` targets are resolved once every line is read, so a link may
//!   come before its target; only regular files can be hard-linked;
//! - modes and owners are taken as written, special bits included: the
//!   pack file is the user's explicit intent. A `glob` that keeps source
//!   modes (`*`) but replaces the owner drops setuid (setgid) where the
//!   uid (gid) of a regular file changed, with a warning, as staging does,
//!   so that it never grants root;
//! - entries get the epoch as mtime (`glob -keeptime`: the source's,
//!   clamped to the epoch). `--exclude`, `--keep-modes` and `--owner` do
//!   not touch pack-file entries.
//!
//! Entries end up in the plan's order (sorted by name), so lines that
//! describe the same tree in another order give the same archive.

mod fnmatch;
mod parse;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use parse::is_space;
pub use parse::{
    Directive, Glob, KIND_ALL, KIND_BLOCK, KIND_CHAR, KIND_DIR, KIND_FIFO, KIND_FILE, KIND_SOCKET,
    KIND_SYMLINK, Kinds, Line, MAX_LINE, MAX_PACK_FILE, Meta, ParseError, parse,
};

use super::normalize::{join, last_component, lossy};
use super::tree::{Children, Name, Node, Origin, Staged, special};
use super::{MAX_ARCHIVE_PATH, StageError, StageOptions};
use crate::digest::Sha256Digest;
use crate::plan::{Content, EntryKind, Payload, RootMeta, SourceDir};

/// A pack file to apply: `--pack-file FILE [--pack-dir DIR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFileSource {
    /// The pack file.
    pub file: PathBuf,
    /// Where relative source locations are found; `None` means the pack
    /// file's own directory.
    pub dir: Option<PathBuf>,
}

impl PackFileSource {
    /// The directory relative locations are read from.
    pub fn base_dir(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.clone(),
            None => match self.file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }
}

/// Reads and parses the pack file at `path`, at most [`MAX_PACK_FILE`]
/// bytes.
pub fn read(path: &Path) -> Result<(Vec<Line>, Sha256Digest), StageError> {
    let fail = |line: Option<usize>, message: String| StageError::PackFile {
        file: path.to_path_buf(),
        line,
        message,
    };
    let file = fs::File::open(path).map_err(|e| fail(None, format!("cannot open: {e}")))?;
    let mut text = Vec::new();
    file.take(MAX_PACK_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| fail(None, format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_PACK_FILE {
        return Err(fail(
            None,
            format!("larger than {MAX_PACK_FILE} bytes, the most read"),
        ));
    }
    let lines = parse(&text).map_err(|e| fail(Some(e.line), e.message))?;
    Ok((lines, Sha256Digest::of(&text)))
}

/// Applies a pack file's lines to the staging tree `root`. Returns the
/// root's metadata when a `dir /` line sets it.
pub(super) fn apply(
    root: &mut Node,
    source: &PackFileSource,
    lines: &[Line],
    opts: &StageOptions,
    warnings: &mut Vec<String>,
) -> Result<Option<RootMeta>, StageError> {
    let mut applier = Applier {
        file: &source.file,
        base: source.base_dir(),
        opts,
        defined: HashMap::new(),
        links: Vec::new(),
        groups: HashMap::new(),
        root_meta: None,
        warnings,
    };
    for line in lines {
        applier.line(root, line)?;
    }
    applier.update_groups(root);
    applier.resolve_links(root)?;
    Ok(applier.root_meta)
}

struct Applier<'a> {
    file: &'a Path,
    base: PathBuf,
    opts: &'a StageOptions,
    /// Archive paths set by a line so far, with that line's number.
    defined: HashMap<Vec<u8>, usize>,
    /// `link` lines: (line, archive path, target path).
    links: Vec<(usize, Vec<u8>, Vec<u8>)>,
    /// New (mode, uid, gid) of staged hard-link groups (by inode key) a
    /// line overrode, with that line: every member gets them, since the
    /// members share one inode.
    groups: HashMap<(u64, u64), (usize, Meta)>,
    root_meta: Option<RootMeta>,
    warnings: &'a mut Vec<String>,
}

/// A directory found by a glob: the node to fill and where it is on disk.
struct GlobDir<'n> {
    node: &'n mut Node,
    archive: Vec<u8>,
    disk: PathBuf,
}

impl Applier<'_> {
    fn err(&self, line: usize, message: String) -> StageError {
        StageError::PackFile {
            file: self.file.to_path_buf(),
            line: Some(line),
            message,
        }
    }

    fn io(&self, line: usize, e: std::io::Error, path: &Path) -> StageError {
        self.err(line, format!("source {}: {e}", path.display()))
    }

    fn origin(&self, line: usize) -> Origin {
        Some(Box::new(format!("{}:{line}", self.file.display())))
    }

    fn staged(&self, line: usize, kind: EntryKind, meta: &Meta) -> Staged {
        Staged {
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: self.opts.epoch,
            xattrs: None,
            payload: Payload::Nothing,
            inode: None,
            origin: self.origin(line),
        }
    }

    fn line(&mut self, root: &mut Node, line: &Line) -> Result<(), StageError> {
        let n = line.number;
        if let Directive::Glob(glob) = &line.directive {
            return self.glob(root, n, &line.path, glob);
        }
        if line.path.is_empty() {
            // Only `dir /` gets here (the parser refuses the root elsewhere).
            if let Directive::Dir(meta) = &line.directive {
                if let Some(&first) = self.defined.get(&line.path) {
                    return Err(self.err(n, format!("the root is already set at line {first}")));
                }
                self.defined.insert(Vec::new(), n);
                self.root_meta = Some(RootMeta {
                    mode: meta.mode,
                    uid: meta.uid,
                    gid: meta.gid,
                    mtime: self.opts.epoch,
                });
            }
            return Ok(());
        }
        if let Some(&first) = self.defined.get(&line.path) {
            return Err(self.err(
                n,
                format!("{:?} is already set at line {first}", lossy(&line.path)),
            ));
        }
        let new = match &line.directive {
            Directive::Dir(meta) => self.staged(n, EntryKind::Dir, meta),
            Directive::Fifo(meta) => self.staged(n, EntryKind::Fifo, meta),
            Directive::Socket(meta) => self.staged(n, EntryKind::Socket, meta),
            Directive::Device {
                meta,
                block,
                major,
                minor,
            } => {
                let kind = if *block {
                    EntryKind::BlockDevice
                } else {
                    EntryKind::CharDevice
                };
                Staged {
                    payload: special(Vec::new(), (*major, *minor)),
                    ..self.staged(n, kind, meta)
                }
            }
            Directive::Symlink { meta, target } => Staged {
                // gensquashfs stores every `slink` with mode 0777.
                mode: 0o777,
                payload: special(target.clone(), (0, 0)),
                ..self.staged(n, EntryKind::Symlink, meta)
            },
            Directive::File { meta, location } => {
                let keep = location.is_none()
                    && find(root, &line.path)
                        .and_then(|node| node.staged.as_ref())
                        .is_some_and(|s| s.kind == EntryKind::File);
                let payload = if keep {
                    Payload::Nothing
                } else {
                    let loc = location.as_deref().unwrap_or(&line.path);
                    Payload::Content(self.content(n, loc)?)
                };
                Staged {
                    payload,
                    ..self.staged(n, EntryKind::File, meta)
                }
            }
            Directive::HardLink { target } => {
                self.links.push((n, line.path.clone(), target.clone()));
                // A placeholder, replaced by the target's entry once every
                // line is read.
                self.staged(
                    n,
                    EntryKind::File,
                    &Meta {
                        mode: 0,
                        uid: 0,
                        gid: 0,
                    },
                )
            }
            Directive::Glob(_) => return Ok(()),
        };
        self.place(root, n, &line.path, new)?;
        self.defined.insert(line.path.clone(), n);
        Ok(())
    }

    /// Puts `new` at `path`: a new entry, a directory so far only implied,
    /// or an override of what a source staged there with the same kind.
    fn place(
        &mut self,
        root: &mut Node,
        n: usize,
        path: &[u8],
        new: Staged,
    ) -> Result<(), StageError> {
        let node = self.walk_to(root, n, path)?;
        match &mut node.staged {
            None if node.children.is_empty() || new.kind == EntryKind::Dir => {
                node.staged = Some(new);
                Ok(())
            }
            None => Err(self.err(
                n,
                format!(
                    "{:?} is a directory (other entries are below it); the pack file makes it a {}",
                    lossy(path),
                    new.kind.name()
                ),
            )),
            Some(old) if old.kind == new.kind => {
                old.mode = new.mode;
                old.uid = new.uid;
                old.gid = new.gid;
                match new.kind {
                    EntryKind::File if matches!(new.payload, Payload::Content(_)) => {
                        old.payload = new.payload;
                        old.inode = None;
                        old.origin = new.origin;
                    }
                    EntryKind::File => {
                        if let Some(&key) = old.inode.as_deref() {
                            let meta = Meta {
                                mode: new.mode,
                                uid: new.uid,
                                gid: new.gid,
                            };
                            match self.groups.get(&key) {
                                Some(&(first, m)) if m != meta => {
                                    return Err(self.err(
                                        n,
                                        format!(
                                            "{:?} is a hard link of the file line {first} sets, with another mode or owner",
                                            lossy(path)
                                        ),
                                    ));
                                }
                                _ => {
                                    self.groups.insert(key, (n, meta));
                                }
                            }
                        }
                    }
                    EntryKind::Symlink | EntryKind::CharDevice | EntryKind::BlockDevice => {
                        old.payload = new.payload
                    }
                    _ => {}
                }
                Ok(())
            }
            Some(old) => Err(self.err(
                n,
                format!(
                    "{:?} is a {} from {}; the pack file makes it a {}",
                    lossy(path),
                    old.kind.name(),
                    old.source(path),
                    new.kind.name()
                ),
            )),
        }
    }

    /// The node at `path`, creating it and missing parents (as implied
    /// directories).
    fn walk_to<'n>(
        &self,
        root: &'n mut Node,
        n: usize,
        path: &[u8],
    ) -> Result<&'n mut Node, StageError> {
        let mut at = root;
        let mut walked = Vec::new();
        for comp in path.split(|&b| b == b'/') {
            if let Some(s) = &at.staged
                && s.kind != EntryKind::Dir
            {
                return Err(self.err(
                    n,
                    format!(
                        "{:?} is needed as a directory but is a {} from {}",
                        lossy(&walked),
                        s.kind.name(),
                        s.source(&walked)
                    ),
                ));
            }
            walked = join(&walked, comp);
            at = at
                .children
                .map()
                .entry(Name::from(comp))
                .or_insert_with(|| {
                    Box::new(Node {
                        staged: None,
                        children: Children::new(),
                    })
                });
        }
        Ok(at)
    }

    /// The content of the regular file at `location` (relative to the
    /// pack directory).
    fn content(&self, n: usize, location: &[u8]) -> Result<Content, StageError> {
        let path = self.base.join(OsStr::from_bytes(location));
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.err(n, format!("source {} does not exist", path.display())));
            }
            Err(e) => return Err(self.err(n, format!("source {}: {e}", path.display()))),
        };
        if path.file_name().is_none() {
            return Err(self.err(
                n,
                format!("source {} is not a regular file", path.display()),
            ));
        }
        if !meta.is_file() {
            return Err(self.err(
                n,
                format!("source {} is not a regular file", path.display()),
            ));
        }
        Ok(Content::on_disk(Arc::new(path.to_path_buf()), &meta))
    }

    /// Gives every member of an overridden hard-link group the group's new
    /// mode and owner.
    fn update_groups(&self, node: &mut Node) {
        if self.groups.is_empty() {
            return;
        }
        for child in node.children.values_mut() {
            if let Some(s) = &mut child.staged
                && let Some(&(_, meta)) = s.inode.as_deref().and_then(|k| self.groups.get(k))
            {
                s.mode = meta.mode;
                s.uid = meta.uid;
                s.gid = meta.gid;
            }
            self.update_groups(child);
        }
    }

    /// Gives every `link` line the entry its target resolves to.
    fn resolve_links(&mut self, root: &mut Node) -> Result<(), StageError> {
        let by_path: HashMap<&[u8], (usize, &[u8])> = self
            .links
            .iter()
            .map(|(n, p, t)| (p.as_slice(), (*n, t.as_slice())))
            .collect();
        let mut next_key = 0u64;
        for (n, path, target) in &self.links {
            // Follow links to links, as gensquashfs does; a chain longer
            // than the number of links is a loop.
            let mut end: &[u8] = target;
            let mut steps = 0;
            while let Some(&(_, t)) = by_path.get(end) {
                steps += 1;
                if steps > by_path.len() {
                    return Err(
                        self.err(*n, format!("hard link {:?} is part of a loop", lossy(path)))
                    );
                }
                end = t;
            }
            let Some(node) = find_mut(root, end).filter(|node| node.staged.is_some()) else {
                return Err(self.err(
                    *n,
                    format!("hard link target {:?} does not exist", lossy(target)),
                ));
            };
            let Some(staged) = node.staged.as_mut().filter(|s| s.kind == EntryKind::File) else {
                let kind = node.staged.as_ref().map_or("directory", |s| s.kind.name());
                return Err(self.err(
                    *n,
                    format!(
                        "hard link target {:?} is a {kind}; only regular files can be hard-linked",
                        lossy(target)
                    ),
                ));
            };
            // Hard links made here share a key no (device, inode) pair
            // from disk can have.
            let key = **staged.inode.get_or_insert_with(|| {
                next_key += 1;
                Box::new((u64::MAX, next_key))
            });
            let copy = Staged {
                kind: EntryKind::File,
                mode: staged.mode,
                uid: staged.uid,
                gid: staged.gid,
                mtime: staged.mtime,
                xattrs: staged.xattrs.clone(),
                // The link has a name of its own: its copy names the file.
                payload: match &staged.payload {
                    Payload::Content(c) => Payload::Content(c.named(last_component(target))),
                    _ => Payload::Nothing,
                },
                inode: Some(Box::new(key)),
                origin: staged.origin.clone(),
            };
            if let Some(link) = find_mut(root, path) {
                link.staged = Some(copy);
            }
        }
        Ok(())
    }

    /// A `glob` line: scans its location into the directory at `path`.
    fn glob(
        &mut self,
        root: &mut Node,
        n: usize,
        path: &[u8],
        glob: &Glob,
    ) -> Result<(), StageError> {
        let disk = match &glob.location {
            Some(loc) => self.base.join(OsStr::from_bytes(loc)),
            None => self.base.clone(),
        };
        let meta = fs::metadata(&disk).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                self.err(n, format!("source {} does not exist", disk.display()))
            }
            _ => self.err(n, format!("source {}: {e}", disk.display())),
        })?;
        if !meta.is_dir() {
            return Err(self.err(n, format!("source {} is not a directory", disk.display())));
        }
        let node = if path.is_empty() {
            root
        } else {
            self.walk_to(root, n, path)?
        };
        if let Some(s) = &node.staged
            && s.kind != EntryKind::Dir
        {
            return Err(self.err(
                n,
                format!(
                    "{:?} is a {} from {}; a glob needs a directory",
                    lossy(path),
                    s.kind.name(),
                    s.source(path)
                ),
            ));
        }
        let start = GlobDir {
            node,
            archive: path.to_vec(),
            disk,
        };
        self.glob_dir(n, glob, meta.dev(), start)
    }

    fn glob_dir(
        &mut self,
        n: usize,
        glob: &Glob,
        dev: u64,
        dir: GlobDir<'_>,
    ) -> Result<(), StageError> {
        let GlobDir {
            node,
            archive,
            disk,
        } = dir;
        let mut names: Vec<_> = fs::read_dir(&disk)
            .map_err(|e| self.io(n, e, &disk))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.io(n, e, &disk))?;
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let shared: SourceDir = Arc::new(disk.clone());
        let mut descend: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        for name in names {
            let src = disk.join(&name);
            let meta = fs::symlink_metadata(&src).map_err(|e| self.io(n, e, &src))?;
            let ft = meta.file_type();
            let (kind, bit) = if ft.is_dir() {
                (EntryKind::Dir, KIND_DIR)
            } else if ft.is_file() {
                (EntryKind::File, KIND_FILE)
            } else if ft.is_symlink() {
                (EntryKind::Symlink, KIND_SYMLINK)
            } else if ft.is_fifo() {
                (EntryKind::Fifo, KIND_FIFO)
            } else if ft.is_char_device() {
                (EntryKind::CharDevice, KIND_CHAR)
            } else if ft.is_block_device() {
                (EntryKind::BlockDevice, KIND_BLOCK)
            } else {
                (EntryKind::Socket, KIND_SOCKET)
            };
            if glob.one_filesystem && meta.dev() != dev {
                continue;
            }
            let name_b = name.as_bytes();
            let child_archive = join(&archive, name_b);
            if child_archive.len() > MAX_ARCHIVE_PATH {
                return Err(self.err(
                    n,
                    format!(
                        "{}: archive path is longer than {MAX_ARCHIVE_PATH} bytes",
                        src.display()
                    ),
                ));
            }
            if glob.kinds & bit == 0 {
                // A directory of a kind not asked for is still descended
                // into where the tree already has it.
                if kind == EntryKind::Dir
                    && !glob.non_recursive
                    && node
                        .children
                        .get(name_b)
                        .is_some_and(|c| c.staged.as_ref().is_none_or(|s| s.kind == EntryKind::Dir))
                {
                    descend.push((name_b.to_vec(), src));
                }
                continue;
            }
            if let Some(pattern) = &glob.pattern {
                let subject = if glob.whole_path {
                    &child_archive
                } else {
                    name_b
                };
                if !fnmatch::fnmatch(pattern, subject, glob.whole_path) {
                    continue;
                }
            }
            let mut staged = self.glob_entry(n, glob, kind, &meta, &src)?;
            if kind == EntryKind::File {
                // The entry has the file's name.
                staged.payload = Payload::Content(Content::in_dir(shared.clone(), &meta));
                staged.origin = None;
            }
            match node.children.get_mut(name_b) {
                Some(existing) => match &existing.staged {
                    Some(s) if s.kind == EntryKind::Dir && kind == EntryKind::Dir => {}
                    None if kind == EntryKind::Dir => existing.staged = Some(staged),
                    other => {
                        let what = other.as_ref().map_or_else(
                            || "directory".to_string(),
                            |s| format!("{} from {}", s.kind.name(), s.source(&child_archive)),
                        );
                        return Err(self.err(
                            n,
                            format!(
                                "{} would be packed at {:?}, which is already a {what}",
                                src.display(),
                                lossy(&child_archive)
                            ),
                        ));
                    }
                },
                None => {
                    node.children.map().insert(
                        Name::from(name_b),
                        Box::new(Node {
                            staged: Some(staged),
                            children: Children::new(),
                        }),
                    );
                    self.defined.insert(child_archive.clone(), n);
                }
            }
            if kind == EntryKind::Dir && !glob.non_recursive {
                descend.push((name_b.to_vec(), src));
            }
        }
        for (name, src) in descend {
            let Some(child) = node.children.get_mut(name.as_slice()) else {
                continue;
            };
            let sub = GlobDir {
                archive: join(&archive, &name),
                node: child,
                disk: src,
            };
            self.glob_dir(n, glob, dev, sub)?;
        }
        Ok(())
    }

    /// The entry a glob makes of one scanned object (content aside).
    fn glob_entry(
        &mut self,
        n: usize,
        glob: &Glob,
        kind: EntryKind,
        meta: &fs::Metadata,
        src: &Path,
    ) -> Result<Staged, StageError> {
        let src_mode = if kind == EntryKind::Symlink {
            0o777
        } else {
            meta.mode() & 0o7777
        };
        let uid = glob.uid.unwrap_or(meta.uid());
        let gid = glob.gid.unwrap_or(meta.gid());
        let mode = match glob.mode {
            Some(m) => m,
            None => {
                // The staging rule: source special bits with a replaced
                // owner would make, say, a user's setuid file a setuid-root
                // one.
                let mut drop = 0;
                if kind == EntryKind::File && uid != meta.uid() {
                    drop |= 0o4000;
                }
                if kind == EntryKind::File && gid != meta.gid() {
                    drop |= 0o2000;
                }
                if src_mode & drop != 0 {
                    self.warnings.push(format!(
                        "{}: setuid/setgid dropped: the glob line replaces its owner but keeps its mode",
                        src.display()
                    ));
                }
                src_mode & !drop
            }
        };
        let mtime = if glob.keep_time {
            u64::try_from(meta.mtime())
                .unwrap_or(0)
                .min(self.opts.epoch)
        } else {
            self.opts.epoch
        };
        let (symlink_target, rdev) = match kind {
            EntryKind::Symlink => {
                let t = fs::read_link(src)
                    .map_err(|e| self.err(n, format!("source {}: {e}", src.display())))?;
                (t.as_os_str().as_bytes().to_vec(), (0, 0))
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                let r = meta.rdev();
                (Vec::new(), (libc::major(r), libc::minor(r)))
            }
            _ => (Vec::new(), (0, 0)),
        };
        Ok(Staged {
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs: None,
            payload: special(symlink_target, rdev),
            inode: None,
            origin: Some(Box::new(src.display().to_string())),
        })
    }
}

fn find<'n>(root: &'n Node, path: &[u8]) -> Option<&'n Node> {
    path.split(|&b| b == b'/')
        .try_fold(root, |at, comp| at.children.get(comp))
}

fn find_mut<'n>(root: &'n mut Node, path: &[u8]) -> Option<&'n mut Node> {
    path.split(|&b| b == b'/')
        .try_fold(root, |at, comp| at.children.get_mut(comp))
}
