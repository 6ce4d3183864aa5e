//! Comparing two artifacts or trees: what `diff`, `verify` and `check`
//! report.
//!
//! A [`Side`] is what one input looks like once read: its [`Tree`](crate::verify::tree_digest::Tree), the
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
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::hash_file;
use crate::format::{DEFAULT_MAX_SIZE, ReadOptions};
use crate::stage::StageOptions;
use crate::verify::manifest::Bytes;
use crate::verify::side::{ArtifactError, Side, SideError, any_side, tar_block};
use crate::verify::tree_digest::TreeEntry;
use flate2::bufread::MultiGzDecoder;

/// A header/superblock fact that differs (absent on one side = `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactChange {
    /// The fact's name (`format`, `gzip.mtime`, `squashfs.block_size`, …).
    pub name: String,
    /// Its value on side A.
    pub a: Option<String>,
    /// Its value on side B.
    pub b: Option<String>,
}

/// One field of one entry that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryChange {
    /// The entry's path.
    pub path: Bytes,
    /// `kind`, `size`, `sha256`, `mode`, `uid`, `gid`, `mtime`, `symlink`,
    /// `hardlink`, `rdev`, or `xattr NAME` for one extended attribute
    /// (value `(absent)` on the side without it).
    pub field: String,
    /// The value on side A.
    pub a: String,
    /// The value on side B.
    pub b: String,
}

/// The first position where the common entries are in a different order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderChange {
    /// Index among the entries both sides have.
    pub index: usize,
    /// Side A's entry at that index.
    pub a: Bytes,
    /// Side B's entry at that index.
    pub b: Bytes,
}

/// First byte at which two files differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByteDifference {
    /// Byte offset of the first difference.
    pub offset: u64,
    /// The region of side A holding `offset` (or `end of A`/`end of B` when
    /// one file is a prefix of the other).
    pub region: String,
}

/// Whose words [`Report::entry_lines`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// `diff`: side A against side B (`removed`, `added`, `A -> B`).
    Diff,
    /// `verify`: a manifest (side A) against the artifact (side B):
    /// `missing`, `extra`, `(manifest) -> (artifact)`.
    AgainstManifest,
}

/// Everything [`compare`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The two files have the same bytes.
    pub byte_identical: bool,
    /// Tree digest of side A.
    pub tree_digest_a: String,
    /// Tree digest of side B.
    pub tree_digest_b: String,
    /// Container facts that differ.
    pub facts: Vec<FactChange>,
    /// Paths only side B has.
    pub added: Vec<Bytes>,
    /// Paths only side A has.
    pub removed: Vec<Bytes>,
    /// Kind, size or content changes of common entries.
    pub content: Vec<EntryChange>,
    /// Mode, owner, mtime, link target or device changes of common entries.
    pub metadata: Vec<EntryChange>,
    /// The first order difference among the common entries.
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

    /// One line per entry only one side has, per differing field and for
    /// the first order change, worded as `wording` says.
    pub fn entry_lines(&self, wording: Wording) -> Vec<String> {
        let (removed, added) = match wording {
            Wording::Diff => ("removed", "added"),
            Wording::AgainstManifest => ("missing", "extra"),
        };
        let mut out: Vec<String> = (self.removed.iter().map(|p| (removed, p)))
            .chain(self.added.iter().map(|p| (added, p)))
            .map(|(word, p)| format!("{word} {:?}", p.display()))
            .collect();
        for c in self.content.iter().chain(&self.metadata) {
            let (path, field, a, b) = (c.path.display(), &c.field, &c.a, &c.b);
            out.push(match wording {
                Wording::Diff => format!("{field} {path:?}: {a} -> {b}"),
                Wording::AgainstManifest => {
                    format!("changed {path:?}: {field} {a} (manifest) -> {b} (artifact)")
                }
            });
        }
        if let Some(o) = &self.order {
            let (i, a, b) = (o.index, o.a.display(), o.b.display());
            out.push(match wording {
                Wording::Diff => format!("order changed at common entry #{i}: {a:?} vs {b:?}"),
                Wording::AgainstManifest => {
                    format!("order: at entry #{i} manifest has {a:?}, artifact has {b:?}")
                }
            });
        }
        out
    }

    /// Human-readable lines, one finding each, in report order: what
    /// `repropack diff` prints.
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
        out.extend(self.entry_lines(Wording::Diff));
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
    let (index_a, index_b) = (by_path(a), by_path(b));
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
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// A side's entries by path.
fn by_path(s: &Side) -> HashMap<&[u8], &TreeEntry> {
    s.tree
        .entries()
        .iter()
        .map(|e| (e.path.as_slice(), e))
        .collect()
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
    let push = |out: &mut Vec<EntryChange>, field: &str, x: String, y: String| {
        if x != y {
            out.push(EntryChange {
                path: path(),
                field: field.to_string(),
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
    // Attribute by attribute, in name order: a differing, added or
    // removed one is named.
    let mut names: Vec<&[u8]> = a
        .xattrs
        .iter()
        .chain(b.xattrs.iter())
        .map(|(n, _)| n)
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let value = |e: &TreeEntry| {
            e.xattrs
                .get(name)
                .map_or("(absent)".to_string(), xattr_value)
        };
        let field = format!("xattr {}", String::from_utf8_lossy(name));
        push(metadata, &field, value(a), value(b));
    }
}

/// An attribute value for messages: quoted when it is printable text,
/// `0x` and lowercase hex otherwise (a capability, an ACL).
fn xattr_value(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(t) if !t.chars().any(char::is_control) => format!("\"{t}\""),
        _ => {
            let mut s = String::from("0x");
            for b in v {
                s.push_str(&format!("{b:02x}"));
            }
            s
        }
    }
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
    first_difference_readers(&mut ra, &mut rb).map_err(|(which, source)| ArtifactError::Io {
        path: if which == 0 { a } else { b }.to_path_buf(),
        source,
    })
}

/// `repropack diff` as a library call: compares two inputs, each an
/// artifact file or a directory (staged exactly as `pack` would with the
/// given [`StageOptions`]).
///
/// Two files with the same bytes are identical without being read as
/// archives. For two tar.gz files whose bytes differ, the report also says
/// where their decompressed tar streams first differ.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # std::fs::create_dir(dir.path().join("t"))?;
/// # std::fs::write(dir.path().join("t/a.txt"), "a")?;
/// let out = dir.path().join("t.tar");
/// repropack::Pack::new([dir.path().join("t")]).output(&out).run()?;
/// let d = repropack::Diff::new(out.as_os_str(), dir.path().join("t").as_os_str()).run()?;
/// assert!(d.identical());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Diff {
    a: OsString,
    b: OsString,
    stage: StageOptions,
    limits: ReadOptions,
}

/// What [`Diff::run`] found.
#[derive(Debug)]
pub enum DiffOutcome {
    /// Both inputs are files with the same bytes.
    ByteIdentical,
    /// The inputs were read and compared.
    Compared {
        /// The comparison (boxed: it is large, and `ByteIdentical` is not).
        report: Box<Report>,
        /// The first input's label.
        a: String,
        /// The second input's label.
        b: String,
        /// For two tar.gz whose bytes differ: the first differing offset of
        /// the decompressed tar streams (`None`: the streams are the same)
        /// and a line saying so.
        tar_stream: Option<(Option<u64>, String)>,
        /// Staging warnings (skipped sockets).
        warnings: Vec<String>,
    },
}

/// Why [`Diff::run`] could not compare.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// An input could not be read or staged.
    #[error(transparent)]
    Side(#[from] SideError),
    /// An input file could not be hashed.
    #[error("{}: {source}", path.display())]
    Hash {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The comparison itself failed (reading bytes).
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// The decompressed tar streams could not be compared.
    #[error(transparent)]
    Stream(#[from] ArtifactError),
}

impl Diff {
    /// Compares `a` with `b` with default staging options.
    pub fn new(a: impl Into<OsString>, b: impl Into<OsString>) -> Diff {
        Diff {
            a: a.into(),
            b: b.into(),
            stage: StageOptions::default(),
            limits: ReadOptions {
                max_size: DEFAULT_MAX_SIZE,
                ..ReadOptions::default()
            },
        }
    }

    /// How directories are staged (and `jobs`, the threads that hash).
    pub fn stage_options(mut self, opts: StageOptions) -> Diff {
        self.stage = opts;
        self
    }

    /// Limits for reading an artifact (default: at most
    /// [`DEFAULT_MAX_SIZE`] bytes of content).
    pub fn read_options(mut self, limits: ReadOptions) -> Diff {
        self.limits = limits;
        self
    }

    /// Runs the comparison.
    pub fn run(&self) -> Result<DiffOutcome, DiffError> {
        let (pa, pb) = (Path::new(&self.a), Path::new(&self.b));
        if pa.is_file() && pb.is_file() {
            let h = |p: &Path| {
                hash_file(p).map_err(|source| DiffError::Hash {
                    path: p.to_path_buf(),
                    source,
                })
            };
            if h(pa)?.0 == h(pb)?.0 {
                return Ok(DiffOutcome::ByteIdentical);
            }
        }
        let (a, mut warnings) = any_side(std::slice::from_ref(&self.a), &self.stage, &self.limits)?;
        let (b, more) = any_side(std::slice::from_ref(&self.b), &self.stage, &self.limits)?;
        warnings.extend(more);
        let report = compare(&a, &b)?;
        let tar_stream = tar_stream_note(&a, &b, &report)?;
        Ok(DiffOutcome::Compared {
            report: Box::new(report),
            a: a.label,
            b: b.label,
            tar_stream,
            warnings,
        })
    }
}

impl DiffOutcome {
    /// True when nothing differs (bytes, or every entry and fact).
    pub fn identical(&self) -> bool {
        match self {
            DiffOutcome::ByteIdentical => true,
            DiffOutcome::Compared { report, .. } => report.identical(),
        }
    }

    /// The lines `repropack diff` prints.
    pub fn lines(&self) -> Vec<String> {
        match self {
            DiffOutcome::ByteIdentical => vec!["byte-identical".to_string()],
            DiffOutcome::Compared {
                report, tar_stream, ..
            } => {
                let mut lines = report.lines();
                if let Some((_, line)) = tar_stream {
                    lines.push(line.clone());
                }
                lines
            }
        }
    }

    /// The JSON object `repropack diff --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DiffOutcome::ByteIdentical => {
                serde_json::json!({"identical": true, "byte_identical": true})
            }
            DiffOutcome::Compared {
                report,
                a,
                b,
                tar_stream,
                ..
            } => {
                let mut value = serde_json::to_value(report).unwrap_or_default();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("identical".into(), report.identical().into());
                    obj.insert("a".into(), a.clone().into());
                    obj.insert("b".into(), b.clone().into());
                    if let Some((offset, _)) = tar_stream {
                        obj.insert("tar_stream_first_difference".into(), (*offset).into());
                    }
                }
                value
            }
        }
    }
}

/// For two tar.gz whose bytes differ: where their decompressed tar streams
/// differ.
fn tar_stream_note(
    a: &Side,
    b: &Side,
    report: &Report,
) -> Result<Option<(Option<u64>, String)>, ArtifactError> {
    let gz = |s: &Side| s.facts.iter().any(|(k, v)| k == "format" && v == "tar.gz");
    let (Some(fa), Some(fb)) = (&a.file, &b.file) else {
        return Ok(None);
    };
    if report.byte_identical || !gz(a) || !gz(b) {
        return Ok(None);
    }
    Ok(Some(match first_tar_stream_difference(fa, fb)? {
        None => (
            None,
            "decompressed tar streams are identical: only the gzip layer differs".to_string(),
        ),
        Some(off) => (
            Some(off),
            format!(
                "decompressed tar streams first differ at offset {off} ({})",
                tar_block(off)
            ),
        ),
    }))
}
