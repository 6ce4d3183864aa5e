//! Artifacts as [`Side`]s: reads a tar, tar.gz or SquashFS file through
//! [`crate::format`] (format detected from the bytes) into a [`Tree`], the
//! container facts and a byte layout, so `digest`, `verify`, `diff` and
//! `check` can treat artifacts and directories alike.
//!
//! Every regular file's content is hashed while the archive is read once, in
//! archive order. Stored paths are normalized with
//! [`format::normalize_path`]; the root directory (SquashFS `.`) is not an
//! entry — its mode, owner and mtime become facts (`root.mode`, …).
//! Hard links (tar `1` entries, SquashFS inodes reached twice) become
//! [`TreeEntry::hardlink_target`]s, normalized by [`Tree::new`].
//!
//! ```no_run
//! use repropack::format::ReadOptions;
//! let limits = ReadOptions { max_size: repropack::format::DEFAULT_MAX_SIZE, ..ReadOptions::default() };
//! let side = repropack::verify::side::read_side("demo.tar.gz".as_ref(), "demo.tar.gz", &limits)?;
//! println!("{}", side.tree.digest());
//! # Ok::<(), repropack::verify::side::ArtifactError>(())
//! ```

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::{Sha256Digest, hash_buffered, hash_file};
use crate::format::{self, ArchiveError, ContainerInfo, ReadOptions};
use crate::plan::EntryKind;
use crate::stage::{Source, StageError, StageOptions, stage};
use crate::verify::tree_digest::{Kept, Tree, TreeEntry, TreeError};
use serde::Serialize;

/// An artifact that could not be read as a tree.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The artifact could not be opened, or is malformed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An entry cannot be part of a tree (a bad path or hard-link target,
    /// a uid or gid past 32 bits, a socket).
    #[error("{path}: entry {entry:?}: {reason}")]
    Entry {
        /// The artifact file.
        path: PathBuf,
        /// The entry's path as stored (lossy UTF-8).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The entries do not form a tree (duplicate paths, dangling hard
    /// links).
    #[error("{path}: {source}")]
    Tree {
        /// The artifact file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: TreeError,
    },
    /// The artifact file could not be read or hashed.
    #[error("{path}: {source}")]
    Io {
        /// The artifact file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Reads `path` into a [`Side`] labelled `label`, within `limits` (an
/// artifact from elsewhere deserves [`format::DEFAULT_MAX_SIZE`] or the
/// user's `--max-size`).
///
/// The file's sha256 is computed on a thread of its own while the entries
/// are read.
pub fn read_side(path: &Path, label: &str, limits: &ReadOptions) -> Result<Side, ArtifactError> {
    let io_err = |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io_err)?.len();
    let (hashed, side) = std::thread::scope(|s| {
        let hashing = s.spawn(|| hash_file(path));
        let side = read_entries(path, label, limits, size);
        let hashed = hashing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (hashed, side)
    });
    let (sha256, hashed_size) = hashed.map_err(io_err)?;
    let mut side = side?;
    if hashed_size != size {
        return Err(io_err(io::Error::other(format!(
            "changed while read: {size} bytes, then {hashed_size}"
        ))));
    }
    side.sha256 = Some(sha256);
    Ok(side)
}

/// [`read_side`] but for the file's sha256 (left `None`); `size` is the
/// file's length.
fn read_entries(
    path: &Path,
    label: &str,
    limits: &ReadOptions,
    size: u64,
) -> Result<Side, ArtifactError> {
    let archive = format::open_with(path, limits)?;
    let format = archive.format();
    let mut facts = vec![
        ("format".to_string(), format.name().to_string()),
        ("size".to_string(), size.to_string()),
    ];
    let layout = match archive.info() {
        ContainerInfo::Tar(t) => {
            facts.push(("tar.first_header".into(), t.first_header.name().to_string()));
            Layout::TarBlocks
        }
        ContainerInfo::TarGz { gzip, tar } => {
            facts.push(("gzip.mtime".into(), gzip.mtime.to_string()));
            facts.push(("gzip.flags".into(), format!("{:#04x}", gzip.flags)));
            facts.push(("gzip.xfl".into(), gzip.xfl.to_string()));
            facts.push(("gzip.os".into(), gzip.os.to_string()));
            if let Some(n) = &gzip.name {
                facts.push(("gzip.name".into(), String::from_utf8_lossy(n).into_owned()));
            }
            if let Some(c) = &gzip.comment {
                facts.push((
                    "gzip.comment".into(),
                    String::from_utf8_lossy(c).into_owned(),
                ));
            }
            facts.push((
                "tar.first_header".into(),
                tar.first_header.name().to_string(),
            ));
            Layout::Regions(gzip_regions(size))
        }
        ContainerInfo::SquashFs(s) => {
            facts.push(("squashfs.compressor".into(), s.compressor.to_string()));
            if let Some(o) = &s.compression_options {
                facts.push(("squashfs.compression_options".into(), o.clone()));
            }
            facts.push(("squashfs.block_size".into(), s.block_size.to_string()));
            facts.push(("squashfs.mkfs_time".into(), s.mkfs_time.to_string()));
            facts.push(("squashfs.flags".into(), s.flag_names().join(",")));
            facts.push((
                "squashfs.version".into(),
                format!("{}.{}", s.version_major, s.version_minor),
            ));
            facts.push(("squashfs.inode_count".into(), s.inode_count.to_string()));
            facts.push((
                "squashfs.fragment_count".into(),
                s.fragment_count.to_string(),
            ));
            facts.push(("squashfs.id_count".into(), s.id_count.to_string()));
            facts.push(("squashfs.bytes_used".into(), s.bytes_used.to_string()));
            Layout::Regions(squashfs_regions(&s.layout, size))
        }
    };
    let mut entries = Vec::new();
    let mut root_facts = Vec::new();
    archive.for_each_entry(|entry, content| -> Result<(), ArtifactError> {
        let bad = |reason: String| ArtifactError::Entry {
            path: path.to_path_buf(),
            entry: entry.display_path(),
            reason,
        };
        let rel = format::normalize_path(entry.path()).map_err(|p| bad(p.to_string()))?;
        let uid =
            u32::try_from(entry.uid()).map_err(|_| bad(format!("uid {} > 2^32", entry.uid())))?;
        let gid =
            u32::try_from(entry.gid()).map_err(|_| bad(format!("gid {} > 2^32", entry.gid())))?;
        let mtime = entry.mtime();
        let mode = entry.mode() & 0o7777;
        if rel.is_empty() {
            root_facts.push(("root.mode".to_string(), format!("{mode:04o}")));
            root_facts.push(("root.owner".to_string(), format!("{uid}:{gid}")));
            root_facts.push(("root.mtime".to_string(), mtime.to_string()));
            return Ok(());
        }
        let link = || entry.link_target().unwrap_or_default().to_vec();
        let (kind, hardlink_target) = match entry.kind() {
            EntryKind::Dir => (EntryKind::Dir, None),
            EntryKind::File => (EntryKind::File, None),
            EntryKind::Symlink => (EntryKind::Symlink, None),
            EntryKind::HardLink => {
                let target = format::normalize_path(&link())
                    .map_err(|p| bad(format!("hard-link target: {p}")))?;
                (EntryKind::File, Some(target))
            }
            EntryKind::Fifo => (EntryKind::Fifo, None),
            EntryKind::CharDevice => (EntryKind::CharDevice, None),
            EntryKind::BlockDevice => (EntryKind::BlockDevice, None),
            EntryKind::Socket => (EntryKind::Socket, None),
        };
        let (sha256, size) = if kind == EntryKind::File && hardlink_target.is_none() {
            let (d, n) = hash_buffered(content).map_err(|e| ArchiveError::content(entry, e))?;
            (Some(d), n)
        } else {
            (None, 0)
        };
        entries.push(TreeEntry {
            path: rel,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            sha256,
            symlink_target: if kind == EntryKind::Symlink {
                link()
            } else {
                Vec::new()
            },
            hardlink_target,
            rdev: entry.device().unwrap_or((0, 0)),
            xattrs: entry.xattrs().clone(),
        });
        Ok(())
    })?;
    facts.extend(root_facts);
    let tree = Tree::new(entries).map_err(|source| ArtifactError::Tree {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Side {
        label: label.to_string(),
        tree,
        facts,
        file: Some(path.to_path_buf()),
        sha256: None,
        layout,
    })
}

/// RFC 1952: a 10-byte member header, the deflate stream, an 8-byte trailer
/// (CRC32, ISIZE). Header extras (FNAME, …) count as deflate data here.
fn gzip_regions(size: u64) -> Vec<Region> {
    let header_end = size.min(10);
    let trailer_start = size.saturating_sub(8).max(header_end);
    vec![
        Region {
            start: 0,
            end: header_end,
            name: "gzip header".into(),
        },
        Region {
            start: header_end,
            end: trailer_start,
            name: "deflate stream".into(),
        },
        Region {
            start: trailer_start,
            end: size,
            name: "gzip trailer (CRC32, ISIZE)".into(),
        },
    ]
}

/// SquashFS regions from the superblock's table offsets
/// ([`format::squashfs::SquashfsInfo::layout`]): superblock, data and
/// fragment blocks, each table, then padding up to the file size.
fn squashfs_regions(layout: &[(u64, &'static str)], size: u64) -> Vec<Region> {
    let starts: Vec<(u64, &str)> = layout.iter().copied().filter(|(s, _)| *s <= size).collect();
    let mut out = Vec::new();
    for (i, (start, name)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(size, |(s, _)| *s);
        if end > *start {
            out.push(Region {
                start: *start,
                end,
                name: (*name).to_string(),
            });
        }
    }
    out
}

/// A named byte range `[start, end)` of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset just past the last byte.
    pub end: u64,
    /// What the range holds (`gzip header`, a SquashFS table, ...).
    pub name: String,
}

/// One input to [`compare`](crate::verify::diff::compare).
#[derive(Debug, Clone)]
pub struct Side {
    /// What to call it in messages (the path given on the command line).
    pub label: String,
    /// The logical tree.
    pub tree: Tree,
    /// Header/superblock facts as (name, value), in the reader's order.
    pub facts: Vec<(String, String)>,
    /// The artifact file, when the side is one (not a directory).
    pub file: Option<PathBuf>,
    /// sha256 of the artifact file; `None` for a directory.
    pub sha256: Option<Sha256Digest>,
    /// How to name a byte offset of the file.
    pub layout: Layout,
}

/// How the bytes of a container are laid out, for naming an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Not a file, or nothing known.
    Unknown,
    /// A plain tar stream: 512-byte blocks.
    TarBlocks,
    /// Named byte ranges, sorted by start.
    Regions(Vec<Region>),
}

impl Layout {
    /// Names the region holding `offset`.
    pub fn describe(&self, offset: u64) -> String {
        match self {
            Layout::Unknown => "no layout known".to_string(),
            Layout::TarBlocks => tar_block(offset),
            Layout::Regions(regions) => regions
                .iter()
                .find(|r| r.start <= offset && offset < r.end)
                .map_or_else(
                    || "past the end of the file".to_string(),
                    |r| format!("{} [{}..{})", r.name, r.start, r.end),
                ),
        }
    }
}

/// `tar block #k [start..end)` for an offset in a tar stream.
pub fn tar_block(offset: u64) -> String {
    let k = offset / 512;
    format!("tar block #{k} [{}..{})", k * 512, k * 512 + 512)
}

/// Why an input could not be turned into a [`Side`].
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    /// A directory could not be staged.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// A staged file could not be hashed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// An artifact could not be read.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// Stages `sources` with `opts` (exactly as `pack` would) and hashes every
/// file on `opts.jobs` threads. Staging warnings are returned with the side.
pub fn staged_side(
    sources: &[OsString],
    opts: &StageOptions,
) -> Result<(Side, Vec<String>), SideError> {
    let parsed: Vec<Source> = sources.iter().map(Source::parse).collect();
    let plan = stage(&parsed, opts)?;
    let tree = Tree::from_plan(&plan, opts.jobs)?;
    let label = sources
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let side = Side {
        label,
        tree,
        facts: vec![("format".to_string(), "directory".to_string())],
        file: None,
        sha256: None,
        layout: Layout::Unknown,
    };
    Ok((side, plan.warnings().to_vec()))
}

/// A single regular file is read as an artifact within `limits`; anything
/// else (a directory, `SRC:DEST`, several sources) is staged with `opts`.
pub fn any_side(
    inputs: &[OsString],
    opts: &StageOptions,
    limits: &ReadOptions,
) -> Result<(Side, Vec<String>), SideError> {
    // Owners and attributes count in the digest when the staging flags
    // keep them, for an artifact exactly as for a directory.
    let kept = Kept::of(opts);
    if let [one] = inputs {
        let p = Path::new(one);
        if p.is_file() {
            let mut side = read_side(p, &p.display().to_string(), limits)?;
            side.tree = side.tree.keeping(kept);
            return Ok((side, Vec::new()));
        }
    }
    let (mut side, warnings) = staged_side(inputs, opts)?;
    side.tree = side.tree.keeping(kept);
    Ok((side, warnings))
}
