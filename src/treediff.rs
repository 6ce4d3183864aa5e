//! Comparing two artifacts or trees: what `diff`, `verify` and `check`
//! report.
//!
//! A [`Side`] is what one input looks like once read: its [`Tree`], the
//! container facts its reader found (header/superblock fields, in the
//! reader's order), and — for artifacts — the file whose bytes can be
//! compared plus named byte regions of the container. [`compare`] turns two
//! sides into a [`Report`] listing, in this order: fact changes, entries
//! added/removed, content changes (kind, size, sha256), metadata changes
//! (mode, owner, mtime, link targets, device numbers), the first order
//! change, and — when every entry is equal but the bytes are not — the first
//! differing byte and the region that holds it. It never reads containers
//! itself.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Sha256Digest;
use crate::manifest::Bytes;
use crate::tree::{Tree, TreeEntry};

/// A named byte range `[start, end)` of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub name: String,
}

/// One input to [`compare`].
#[derive(Debug, Clone)]
pub struct Side {
    /// What to call it in messages (the path given on the command line).
    pub label: String,
    pub tree: Tree,
    /// Header/superblock facts as (name, value), in the reader's order.
    pub facts: Vec<(String, String)>,
    /// The artifact file, when the side is one (not a directory).
    pub file: Option<PathBuf>,
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

/// A header/superblock fact that differs (absent on one side = `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactChange {
    pub name: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// One field of one entry that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryChange {
    pub path: Bytes,
    /// `kind`, `size`, `sha256`, `mode`, `uid`, `gid`, `mtime`, `symlink`,
    /// `hardlink` or `rdev`.
    pub field: &'static str,
    pub a: String,
    pub b: String,
}

/// The first position where the common entries are in a different order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderChange {
    /// Index among the entries both sides have.
    pub index: usize,
    pub a: Bytes,
    pub b: Bytes,
}

/// First byte at which two files differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByteDifference {
    pub offset: u64,
    /// The region of side A holding `offset` (or `end of A`/`end of B` when
    /// one file is a prefix of the other).
    pub region: String,
}

/// Everything [`compare`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub byte_identical: bool,
    pub tree_digest_a: String,
    pub tree_digest_b: String,
    pub facts: Vec<FactChange>,
    pub added: Vec<Bytes>,
    pub removed: Vec<Bytes>,
    pub content: Vec<EntryChange>,
    pub metadata: Vec<EntryChange>,
    pub order: Option<OrderChange>,
    /// Every entry equal (all fields), whatever the bytes.
    pub entries_equal: bool,
    /// Set when both sides are files whose bytes differ.
    pub first_byte_difference: Option<ByteDifference>,
}

impl Report {
    /// Nothing differs: bytes identical, or (for directories) all entries
    /// and facts equal.
    pub fn identical(&self) -> bool {
        self.byte_identical
            || (self.entries_equal && self.facts.is_empty() && self.first_byte_difference.is_none())
    }

    /// Human-readable lines, one finding each, in report order.
    pub fn lines(&self) -> Vec<String> {
        if self.byte_identical {
            return vec!["byte-identical".to_string()];
        }
        let mut out = Vec::new();
        for f in &self.facts {
            out.push(format!(
                "header {}: {} -> {}",
                f.name,
                f.a.as_deref().unwrap_or("(absent)"),
                f.b.as_deref().unwrap_or("(absent)")
            ));
        }
        for p in &self.removed {
            out.push(format!("removed {:?}", p.display()));
        }
        for p in &self.added {
            out.push(format!("added {:?}", p.display()));
        }
        for c in self.content.iter().chain(&self.metadata) {
            out.push(format!(
                "{} {:?}: {} -> {}",
                c.field,
                c.path.display(),
                c.a,
                c.b
            ));
        }
        if let Some(o) = &self.order {
            out.push(format!(
                "order changed at common entry #{}: {:?} vs {:?}",
                o.index,
                o.a.display(),
                o.b.display()
            ));
        }
        if self.tree_digest_a == self.tree_digest_b {
            out.push(format!("same tree digest {}", self.tree_digest_a));
        } else {
            out.push(format!(
                "tree digest {} -> {}",
                self.tree_digest_a, self.tree_digest_b
            ));
        }
        if let Some(d) = &self.first_byte_difference {
            let what = if self.entries_equal {
                "logical trees and entry metadata are equal but the bytes differ"
            } else {
                "bytes differ"
            };
            out.push(format!(
                "{what}: first differing byte at offset {} ({})",
                d.offset, d.region
            ));
        }
        if self.identical() {
            out.push("identical entries".to_string());
        }
        out
    }
}

/// Compares two sides. Reads both files (when present) to find the first
/// differing byte; I/O errors name the file.
pub fn compare(a: &Side, b: &Side) -> Result<Report, CompareError> {
    let byte_identical = matches!((a.sha256, b.sha256), (Some(x), Some(y)) if x == y);
    // Container facts only mean something between two containers.
    let facts = if a.file.is_some() && b.file.is_some() {
        compare_facts(&a.facts, &b.facts)
    } else {
        Vec::new()
    };
    let index_b: HashMap<&[u8], &TreeEntry> = b
        .tree
        .entries()
        .iter()
        .map(|e| (e.path.as_slice(), e))
        .collect();
    let index_a: HashMap<&[u8], &TreeEntry> = a
        .tree
        .entries()
        .iter()
        .map(|e| (e.path.as_slice(), e))
        .collect();
    let mut removed = Vec::new();
    let mut content = Vec::new();
    let mut metadata = Vec::new();
    for ea in a.tree.canonical_entries() {
        match index_b.get(ea.path.as_slice()) {
            None => removed.push(Bytes(ea.path.clone())),
            Some(eb) => entry_changes(ea, eb, &mut content, &mut metadata),
        }
    }
    let added: Vec<Bytes> = b
        .tree
        .canonical_entries()
        .into_iter()
        .filter(|e| !index_a.contains_key(e.path.as_slice()))
        .map(|e| Bytes(e.path.clone()))
        .collect();
    let common_a = a
        .tree
        .entries()
        .iter()
        .filter(|e| index_b.contains_key(e.path.as_slice()));
    let common_b = b
        .tree
        .entries()
        .iter()
        .filter(|e| index_a.contains_key(e.path.as_slice()));
    let order = common_a
        .zip(common_b)
        .enumerate()
        .find(|(_, (x, y))| x.path != y.path)
        .map(|(index, (x, y))| OrderChange {
            index,
            a: Bytes(x.path.clone()),
            b: Bytes(y.path.clone()),
        });
    let entries_equal = removed.is_empty()
        && added.is_empty()
        && content.is_empty()
        && metadata.is_empty()
        && order.is_none();
    let first_byte_difference = match (&a.file, &b.file) {
        (Some(fa), Some(fb)) if !byte_identical => {
            first_difference(fa, fb)?.map(|offset| ByteDifference {
                offset,
                region: a.layout.describe(offset),
            })
        }
        _ => None,
    };
    Ok(Report {
        byte_identical,
        tree_digest_a: a.tree.digest().to_hex(),
        tree_digest_b: b.tree.digest().to_hex(),
        facts,
        added,
        removed,
        content,
        metadata,
        order,
        entries_equal,
        first_byte_difference,
    })
}

/// A file could not be read while comparing bytes.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct CompareError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn compare_facts(a: &[(String, String)], b: &[(String, String)]) -> Vec<FactChange> {
    let mut out = Vec::new();
    let get =
        |v: &[(String, String)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, x)| x.clone());
    let mut names: Vec<&String> = a.iter().map(|(n, _)| n).collect();
    for (n, _) in b {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    for name in names {
        let (x, y) = (get(a, name), get(b, name));
        if x != y {
            out.push(FactChange {
                name: name.clone(),
                a: x,
                b: y,
            });
        }
    }
    out
}

fn entry_changes(
    a: &TreeEntry,
    b: &TreeEntry,
    content: &mut Vec<EntryChange>,
    metadata: &mut Vec<EntryChange>,
) {
    let path = || Bytes(a.path.clone());
    let push = |out: &mut Vec<EntryChange>, field, x: String, y: String| {
        if x != y {
            out.push(EntryChange {
                path: path(),
                field,
                a: x,
                b: y,
            });
        }
    };
    let sha = |e: &TreeEntry| e.sha256.map_or("-".to_string(), |d| d.to_hex());
    let text = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    push(content, "kind", a.kind.name().into(), b.kind.name().into());
    push(content, "size", a.size.to_string(), b.size.to_string());
    push(content, "sha256", sha(a), sha(b));
    push(
        metadata,
        "mode",
        format!("{:04o}", a.mode),
        format!("{:04o}", b.mode),
    );
    push(metadata, "uid", a.uid.to_string(), b.uid.to_string());
    push(metadata, "gid", a.gid.to_string(), b.gid.to_string());
    push(metadata, "mtime", a.mtime.to_string(), b.mtime.to_string());
    push(
        metadata,
        "symlink",
        text(&a.symlink_target),
        text(&b.symlink_target),
    );
    let hl = |e: &TreeEntry| e.hardlink_target.as_deref().map_or("-".to_string(), text);
    push(metadata, "hardlink", hl(a), hl(b));
    let rdev = |e: &TreeEntry| format!("{},{}", e.rdev.0, e.rdev.1);
    push(metadata, "rdev", rdev(a), rdev(b));
}

/// Offset of the first byte where the files differ (a shorter file differs
/// at its length), or `None` when they are equal.
pub fn first_difference(a: &Path, b: &Path) -> Result<Option<u64>, CompareError> {
    let open = |p: &Path| {
        File::open(p)
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|source| CompareError {
                path: p.to_path_buf(),
                source,
            })
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    first_difference_readers(&mut ra, &mut rb).map_err(|(which, source)| CompareError {
        path: if which == 0 { a } else { b }.to_path_buf(),
        source,
    })
}

/// Like [`first_difference`] for two readers; the error says which reader
/// (0 or 1) failed.
pub fn first_difference_readers(
    a: &mut dyn Read,
    b: &mut dyn Read,
) -> Result<Option<u64>, (usize, io::Error)> {
    let mut ba = vec![0u8; 1 << 16];
    let mut bb = vec![0u8; 1 << 16];
    let mut offset = 0u64;
    loop {
        let na = read_full(a, &mut ba).map_err(|e| (0, e))?;
        let nb = read_full(b, &mut bb).map_err(|e| (1, e))?;
        let n = na.min(nb);
        if let Some(i) = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y) {
            return Ok(Some(offset + i as u64));
        }
        if na != nb {
            return Ok(Some(offset + n as u64));
        }
        if na == 0 {
            return Ok(None);
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
