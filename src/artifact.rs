//! Artifacts as [`Side`]s: reads a tar, tar.gz or SquashFS file through
//! [`crate::archive`] (format detected from the bytes) into a [`Tree`], the
//! container facts and a byte layout, so `digest`, `verify`, `diff` and
//! `check` can treat artifacts and directories alike.
//!
//! Every regular file's content is hashed while the archive is read once, in
//! archive order. Stored paths are normalized with
//! [`archive::normalize_path`]; the root directory (SquashFS `.`) is not an
//! entry — its mode, owner and mtime become facts (`root.mode`, …).
//! Hard links (tar `1` entries, SquashFS inodes reached twice) become
//! [`TreeEntry::hardlink_target`]s, normalized by [`Tree::new`].
//!
//! ```no_run
//! let side = repropack::artifact::read_side("demo.tar.gz".as_ref(), "demo.tar.gz")?;
//! println!("{}", side.tree.digest());
//! # Ok::<(), repropack::artifact::ArtifactError>(())
//! ```

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::archive::{self, ArchiveError, ContainerInfo, EntryKind as ArchiveKind};
use crate::digest::{hash_file, hash_reader};
use crate::stage::EntryKind;
use crate::tree::{Tree, TreeEntry, TreeError};
use crate::treediff::{Layout, Region, Side};

/// An artifact that could not be read as a tree.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{path}: entry {entry:?}: {reason}")]
    Entry {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Tree {
        path: PathBuf,
        #[source]
        source: TreeError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads `path` into a [`Side`] labelled `label`.
pub fn read_side(path: &Path, label: &str) -> Result<Side, ArtifactError> {
    let io_err = |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (sha256, size) = hash_file(path).map_err(io_err)?;
    let archive = archive::open(path)?;
    let format = archive.format();
    let mut facts = vec![
        ("format".to_string(), format.name().to_string()),
        ("size".to_string(), size.to_string()),
    ];
    let layout = match archive.info() {
        ContainerInfo::Tar(t) => {
            facts.push(("tar.first_header".into(), format!("{:?}", t.first_header)));
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
            facts.push(("tar.first_header".into(), format!("{:?}", tar.first_header)));
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
            Layout::Regions(squashfs_regions(path, size))
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
        let rel = archive::normalize_path(entry.path()).map_err(|p| bad(p.to_string()))?;
        let uid =
            u32::try_from(entry.uid()).map_err(|_| bad(format!("uid {} > 2^32", entry.uid())))?;
        let gid =
            u32::try_from(entry.gid()).map_err(|_| bad(format!("gid {} > 2^32", entry.gid())))?;
        let mtime = u64::try_from(entry.mtime())
            .map_err(|_| bad(format!("negative mtime {}", entry.mtime())))?;
        let mode = entry.mode() & 0o7777;
        if rel.is_empty() {
            root_facts.push(("root.mode".to_string(), format!("{mode:04o}")));
            root_facts.push(("root.owner".to_string(), format!("{uid}:{gid}")));
            root_facts.push(("root.mtime".to_string(), mtime.to_string()));
            return Ok(());
        }
        let link = || entry.link_target().unwrap_or_default().to_vec();
        let (kind, hardlink_target) = match entry.kind() {
            ArchiveKind::Dir => (EntryKind::Dir, None),
            ArchiveKind::File => (EntryKind::File, None),
            ArchiveKind::Symlink => (EntryKind::Symlink, None),
            ArchiveKind::HardLink => {
                let target = archive::normalize_path(&link())
                    .map_err(|p| bad(format!("hard-link target: {p}")))?;
                (EntryKind::File, Some(target))
            }
            ArchiveKind::Fifo => (EntryKind::Fifo, None),
            ArchiveKind::CharDevice => (EntryKind::CharDevice, None),
            ArchiveKind::BlockDevice => (EntryKind::BlockDevice, None),
            ArchiveKind::Socket => {
                return Err(bad("sockets are not part of a repropack tree".into()));
            }
        };
        let (sha256, size) = if kind == EntryKind::File && hardlink_target.is_none() {
            let (d, n) = hash_reader(content).map_err(|e| ArchiveError::content(entry, e))?;
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
        sha256: Some(sha256),
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

/// SquashFS layout from the superblock's table offsets, read by backhand
/// (squashfs-tools-ng `docs/format.adoc`, "Overview"): superblock, data and
/// fragment blocks, inode table, directory table, fragment table, export
/// table, id table, xattr table, then padding up to the file size.
fn squashfs_regions(path: &Path, size: u64) -> Vec<Region> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(sq) = backhand::Squashfs::from_reader(BufReader::new(file)) else {
        return Vec::new();
    };
    let sb = &sq.superblock;
    let mut starts: Vec<(u64, &str)> = vec![
        (0, "superblock"),
        (96, "compressor options, data and fragment blocks"),
        (sb.inode_table, "inode table"),
        (sb.dir_table, "directory table"),
        (sb.frag_table, "fragment table"),
        (sb.export_table, "export table"),
        (sb.id_table, "id table"),
        (sb.xattr_table, "xattr table"),
        (sb.bytes_used, "padding after bytes_used"),
    ];
    starts.retain(|(s, _)| *s != u64::MAX && *s <= size);
    starts.sort_by_key(|(s, _)| *s);
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

/// For two tar.gz files: the first offset where their decompressed tar
/// streams differ, or `None` when those streams are identical (then only the
/// compression differs).
pub fn first_tar_stream_difference(a: &Path, b: &Path) -> Result<Option<u64>, ArtifactError> {
    let open = |p: &Path| -> Result<Box<dyn Read>, ArtifactError> {
        let f = File::open(p).map_err(|source| ArtifactError::Io {
            path: p.to_path_buf(),
            source,
        })?;
        Ok(Box::new(MultiGzDecoder::new(BufReader::new(f))))
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    crate::treediff::first_difference_readers(&mut ra, &mut rb).map_err(|(which, source)| {
        ArtifactError::Io {
            path: if which == 0 { a } else { b }.to_path_buf(),
            source,
        }
    })
}
