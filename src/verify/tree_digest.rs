//! The logical tree of an artifact or a staged plan, and its tree digest.
//!
//! A [`Tree`] is the list of entries a container holds, in container order,
//! with every regular file's content reduced to its size and SHA-256. It is
//! built either from a staged [`Plan`] ([`Tree::from_plan`], which reads each
//! file once through [`Content::reader`](crate::plan::Content::reader)) or
//! from an artifact ([`crate::verify::side`]). Manifests, `verify`, `diff` and
//! `check` all compare trees; none of them knows how a container is laid out.
//!
//! The **tree digest** ([`Tree::digest`]) is one SHA-256 over a canonical text
//! serialization of the *logical tree* of docs/CONTRACT.md §1: path, kind,
//! normalized mode, content (size + sha256), symlink target, hard-link
//! grouping and device numbers. It deliberately leaves out what the contract
//! calls options or container details — uid/gid (owner policy), mtime
//! (epoch), entry order inside the container, the root directory's metadata,
//! compression and block size — so tar, tar.gz and SquashFS of the same tree
//! share it. The serialization is produced by [`Tree::canonical_text`]:
//!
//! ```text
//! repropack.tree/1\n
//! path=<esc> kind=<kind> mode=<4 octal digits>[ size=<dec> sha256=<hex>][ symlink=<esc>][ hardlink=<esc>][ rdev=<major>,<minor>]\n
//! ```
//!
//! one line per entry, entries in canonical order (paths compared component
//! by component, each component as raw bytes), where `<esc>` writes every byte
//! outside `0x21..=0x7e` and every `%` as `%XX` (uppercase hex).
//!
//! ```
//! use repropack::verify::tree_digest::escape;
//! assert_eq!(escape(b"a b%\xff"), "a%20b%25%FF");
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::{Sha256Digest, hash_reader};
use crate::plan::{ContentError, EntryKind, Plan, XattrSet};
use crate::stage::StageOptions;

/// First line of the canonical serialization; names its version.
pub const TREE_DIGEST_HEADER: &str = "repropack.tree/1\n";

/// One entry of a logical tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Path inside the archive: raw bytes, components joined by `/`, no
    /// leading `./` or `/`, no trailing `/`.
    pub path: Vec<u8>,
    /// What the entry is; every member of a hard-link group is a
    /// [`EntryKind::File`] (see [`TreeEntry::hardlink_target`]).
    pub kind: EntryKind,
    /// Permission bits (`0o7777` at most), no file-type bits.
    pub mode: u32,
    /// Owner user id (not part of the tree digest).
    pub uid: u32,
    /// Owner group id (not part of the tree digest).
    pub gid: u32,
    /// Seconds since 1970; negative before 1970 (tar stores such mtimes in
    /// base-256 or as a negative pax `mtime`). Not part of the tree digest.
    pub mtime: i64,
    /// Content size of a regular file (hard-link members too); 0 otherwise.
    pub size: u64,
    /// SHA-256 of a regular file's content (hard-link members too).
    pub sha256: Option<Sha256Digest>,
    /// Target of a symlink (raw bytes); empty otherwise.
    pub symlink_target: Vec<u8>,
    /// For a hard-link member other than the group's first (in canonical
    /// order): the first member's path.
    pub hardlink_target: Option<Vec<u8>>,
    /// (major, minor) of a device node; (0, 0) otherwise.
    pub rdev: (u32, u32),
    /// Extended attributes (part of the tree digest only when the tree
    /// keeps them, see [`Kept`]).
    pub xattrs: XattrSet,
}

/// What a tree digest covers beyond the logical tree: owners and extended
/// attributes count only when they are kept (`--keep-owners`, `--xattrs`
/// on `pack`, `digest`, `verify` and `diff`). With neither, the canonical
/// text is exactly `repropack.tree/1` as it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Kept {
    /// uid and gid are part of the digest (`owner=UID:GID` on every line).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owners: bool,
    /// Extended attributes are part of the digest (`xattr=NAME=VALUE`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xattrs: bool,
}

impl Kept {
    /// What staging with `opts` keeps: owners with `keep_owners`,
    /// attributes with an xattr policy other than off.
    pub fn of(opts: &StageOptions) -> Kept {
        Kept {
            owners: opts.keep_owners,
            xattrs: opts.xattrs.enabled(),
        }
    }
    /// Nothing beyond the logical tree.
    pub fn none(self) -> bool {
        !self.owners && !self.xattrs
    }
    /// [`Kept::none`] for serde's `skip_serializing_if`.
    pub fn none_ref(&self) -> bool {
        self.none()
    }
}

/// Why a tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A plan entry's source could not be opened or changed since staging.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Reading a plan entry's content failed midway.
    #[error("reading content of {path:?} from {source_path}: {source}")]
    Read {
        /// The entry's archive path (lossy UTF-8).
        path: String,
        /// Where its bytes come from (see [`Content::describe`](crate::plan::Content::describe)).
        source_path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A hard link names no regular file of the tree.
    #[error("hard link {path:?} points to {target:?}, which is not a regular file in the tree")]
    DanglingHardlink {
        /// The hard link's path (lossy UTF-8).
        path: String,
        /// The path it names (lossy UTF-8; empty if none is known).
        target: String,
    },
    /// Two entries have the same path.
    #[error("entry {path:?} appears twice")]
    Duplicate {
        /// The repeated path (lossy UTF-8).
        path: String,
    },
    /// A plan entry's mtime (the epoch) is past what any tar reader's
    /// signed 64-bit time holds.
    #[error("entry {path:?}: mtime {mtime} is past 2^63 - 1 seconds")]
    Mtime {
        /// The entry's archive path (lossy UTF-8).
        path: String,
        /// The mtime.
        mtime: u64,
    },
    /// The hashing thread pool could not be started; carries its error.
    #[error("worker pool: {0}")]
    Pool(String),
}

/// Entries in container order, and what the digest covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    entries: Vec<TreeEntry>,
    kept: Kept,
}

impl Tree {
    /// Builds a tree from entries in container order. Hard-link targets are
    /// normalized: each group (a first member plus the entries naming it as
    /// `hardlink_target`) gets its canonically first member as the target of
    /// all others, and every member gets the group's size and sha256.
    pub fn new(entries: Vec<TreeEntry>) -> Result<Tree, TreeError> {
        let mut tree = Tree {
            entries,
            kept: Kept::default(),
        };
        tree.normalize_hardlinks()?;
        Ok(tree)
    }

    /// The same tree whose digest covers what `kept` says.
    pub fn keeping(mut self, kept: Kept) -> Tree {
        self.kept = kept;
        self
    }

    /// What the digest covers beyond the logical tree.
    pub fn kept(&self) -> Kept {
        self.kept
    }

    /// Reads every regular file of `plan` once (through
    /// [`Content::reader`](crate::plan::Content::reader), which refuses
    /// files that changed since staging) on `jobs` threads and returns the
    /// tree in plan order.
    pub fn from_plan(plan: &Plan, jobs: usize) -> Result<Tree, TreeError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
            .map_err(|e| TreeError::Pool(e.to_string()))?;
        let entries = plan.entries();
        let hashes: Vec<Option<(Sha256Digest, u64)>> = pool.install(|| {
            entries
                .par_iter()
                .map(|e| match (e.content(), e.hardlink_of()) {
                    (Some(content), None) => {
                        let read_err = |source| TreeError::Read {
                            path: e.display_path(),
                            source_path: content.describe(e.name()),
                            source,
                        };
                        let reader = content.reader(e.name())?;
                        let (digest, size) = hash_reader(reader).map_err(read_err)?;
                        Ok(Some((digest, size)))
                    }
                    _ => Ok(None),
                })
                .collect::<Result<_, TreeError>>()
        })?;
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let (sha256, size) = match (hashes[i], e.hardlink_of()) {
                (Some((d, n)), _) => (Some(d), n),
                (None, Some(t)) => match hashes.get(t).copied().flatten() {
                    Some((d, n)) => (Some(d), n),
                    None => {
                        return Err(TreeError::DanglingHardlink {
                            path: e.display_path(),
                            target: entries.get(t).map(|t| t.display_path()).unwrap_or_default(),
                        });
                    }
                },
                (None, None) => (None, 0),
            };
            out.push(TreeEntry {
                path: e.path().to_vec(),
                kind: e.kind(),
                mode: e.mode(),
                uid: e.uid(),
                gid: e.gid(),
                mtime: i64::try_from(e.mtime()).map_err(|_| TreeError::Mtime {
                    path: e.display_path(),
                    mtime: e.mtime(),
                })?,
                size,
                sha256,
                symlink_target: e.symlink_target().to_vec(),
                hardlink_target: e
                    .hardlink_of()
                    .and_then(|t| entries.get(t))
                    .map(|t| t.path().to_vec()),
                rdev: e.rdev(),
                xattrs: plan.xattrs(e).clone(),
            });
        }
        Tree::new(out)
    }

    /// Entries in container order.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// Entries in canonical order (see [`canonical_cmp`]).
    pub fn canonical_entries(&self) -> Vec<&TreeEntry> {
        let mut v: Vec<&TreeEntry> = self.entries.iter().collect();
        v.sort_by(|a, b| canonical_cmp(&a.path, &b.path));
        v
    }

    /// The canonical serialization the tree digest hashes (module docs).
    pub fn canonical_text(&self) -> Vec<u8> {
        let mut out = String::from(TREE_DIGEST_HEADER);
        if !self.kept.none() {
            // `repropack.tree/1 owners xattrs`: the header names what is
            // kept, so a digest with owners never equals one without.
            out.pop();
            if self.kept.owners {
                out.push_str(" owners");
            }
            if self.kept.xattrs {
                out.push_str(" xattrs");
            }
            out.push('\n');
        }
        for e in self.canonical_entries() {
            canonical_line(e, self.kept, &mut out);
        }
        out.into_bytes()
    }

    /// SHA-256 of [`Tree::canonical_text`].
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest::of(&self.canonical_text())
    }

    fn normalize_hardlinks(&mut self) -> Result<(), TreeError> {
        let mut index: HashMap<Vec<u8>, usize> = HashMap::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            if index.insert(e.path.clone(), i).is_some() {
                return Err(TreeError::Duplicate {
                    path: String::from_utf8_lossy(&e.path).into_owned(),
                });
            }
        }
        // Group members by the root of their link chain.
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            let Some(target) = &e.hardlink_target else {
                continue;
            };
            let mut root = i;
            let mut next = Some(target.clone());
            let mut steps = 0;
            while let Some(t) = next {
                let dangling = || TreeError::DanglingHardlink {
                    path: String::from_utf8_lossy(&e.path).into_owned(),
                    target: String::from_utf8_lossy(&t).into_owned(),
                };
                let &j = index.get(&t).ok_or_else(dangling)?;
                if self.entries[j].kind != EntryKind::File || steps > self.entries.len() {
                    return Err(dangling());
                }
                root = j;
                next = self.entries[j].hardlink_target.clone();
                steps += 1;
            }
            groups.entry(root).or_insert_with(|| vec![root]).push(i);
        }
        for (root, members) in groups {
            let (sha256, size) = (self.entries[root].sha256, self.entries[root].size);
            // Attributes belong to the inode: a tar hard link carries
            // none, a SquashFS one repeats them; both get the target's.
            let xattrs = self.entries[root].xattrs.clone();
            let first = members
                .iter()
                .copied()
                .min_by(|&a, &b| canonical_cmp(&self.entries[a].path, &self.entries[b].path))
                .unwrap_or(root);
            let first_path = self.entries[first].path.clone();
            for m in members {
                let e = &mut self.entries[m];
                e.kind = EntryKind::File;
                e.sha256 = sha256;
                e.size = size;
                e.xattrs = xattrs.clone();
                e.hardlink_target = (m != first).then(|| first_path.clone());
            }
        }
        Ok(())
    }
}

/// Canonical order of archive paths: component by component, each component
/// compared as raw bytes; a path sorts before its descendants. This is the
/// order repropack writes (parents first, siblings sorted by name).
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// Escapes raw bytes for the canonical serialization: bytes outside
/// `0x21..=0x7e` and `%` become `%XX` (uppercase hex).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

fn canonical_line(e: &TreeEntry, kept: Kept, out: &mut String) {
    let _ = write!(
        out,
        "path={} kind={} mode={:04o}",
        escape(&e.path),
        e.kind.name(),
        e.mode
    );
    if kept.owners {
        let _ = write!(out, " owner={}:{}", e.uid, e.gid);
    }
    if e.kind == EntryKind::File {
        let sha = e.sha256.map(|d| d.to_hex()).unwrap_or_default();
        let _ = write!(out, " size={} sha256={sha}", e.size);
    }
    if e.kind == EntryKind::Symlink {
        let _ = write!(out, " symlink={}", escape(&e.symlink_target));
    }
    if let Some(t) = &e.hardlink_target {
        let _ = write!(out, " hardlink={}", escape(t));
    }
    if matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        let _ = write!(out, " rdev={},{}", e.rdev.0, e.rdev.1);
    }
    if kept.xattrs {
        // Names escape `=` too, so the first `=` after `xattr=` ends it.
        for (name, value) in e.xattrs.iter() {
            let name = escape(name).replace('=', "%3D");
            let _ = write!(out, " xattr={name}={}", escape(value));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> TreeEntry {
        TreeEntry {
            path: path.as_bytes().to_vec(),
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            size: content.len() as u64,
            sha256: Some(Sha256Digest::of(content)),
            symlink_target: Vec::new(),
            hardlink_target: None,
            rdev: (0, 0),
            xattrs: XattrSet::default(),
        }
    }

    #[test]
    fn canonical_order_puts_children_right_after_their_parent() {
        let mut v = vec![b"a-c".as_slice(), b"a/b", b"a"];
        v.sort_by(|a, b| canonical_cmp(a, b));
        assert_eq!(v, vec![b"a".as_slice(), b"a/b", b"a-c"]);
    }

    #[test]
    fn canonical_line_matches_the_spec() {
        let mut link = file("dir/lnk", b"");
        link.path = b"dir/l\xffnk".to_vec();
        link.hardlink_target = Some(b"a b".to_vec());
        let tree = Tree::new(vec![file("a b", b"abc"), link]).unwrap();
        let text = String::from_utf8(tree.canonical_text()).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            text,
            format!(
                "repropack.tree/1\npath=a%20b kind=file mode=0644 size=3 sha256={abc}\n\
                 path=dir/l%FFnk kind=file mode=0644 size=3 sha256={abc} hardlink=a%20b\n"
            )
        );
    }

    #[test]
    fn digest_ignores_owner_mtime_and_container_order() {
        let a = Tree::new(vec![file("x", b"1"), file("y", b"2")]).unwrap();
        let mut y = file("y", b"2");
        y.uid = 7;
        y.mtime = 99;
        let b = Tree::new(vec![y, file("x", b"1")]).unwrap();
        assert_eq!(a.digest(), b.digest());
        let c = Tree::new(vec![file("x", b"1"), file("y", b"3")]).unwrap();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn kept_owners_and_xattrs_extend_lines_and_header_only_when_kept() {
        let mut f = file("a", b"abc");
        f.uid = 1000;
        f.gid = 42;
        f.xattrs = XattrSet::new(vec![
            (b"user.z=1".to_vec(), b"v w".to_vec()),
            (b"security.capability".to_vec(), vec![1, 0, 0, 2]),
        ])
        .unwrap();
        let plain = Tree::new(vec![f.clone(), file("b", b"")]).unwrap();
        let mut bare = f.clone();
        bare.uid = 0;
        bare.xattrs = XattrSet::default();
        let without = Tree::new(vec![bare, file("b", b"")]).unwrap();
        // Not kept: exactly today's text, whatever the owners and xattrs.
        assert_eq!(plain.canonical_text(), without.canonical_text());
        let kept = plain.keeping(Kept {
            owners: true,
            xattrs: true,
        });
        let text = String::from_utf8(kept.canonical_text()).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            text,
            format!(
                "repropack.tree/1 owners xattrs\n\
                 path=a kind=file mode=0644 owner=1000:42 size=3 sha256={abc} \
                 xattr=security.capability=%01%00%00%02 xattr=user.z%3D1=v%20w\n\
                 path=b kind=file mode=0644 owner=0:0 size=0 sha256={empty}\n"
            )
        );
        let owners_only = without.keeping(Kept {
            owners: true,
            xattrs: false,
        });
        assert!(
            owners_only
                .canonical_text()
                .starts_with(b"repropack.tree/1 owners\n")
        );
    }

    #[test]
    fn hardlink_groups_get_their_canonically_first_member_as_target() {
        // A container that named the later path as the target.
        let mut first = file("b", b"");
        first.hardlink_target = Some(b"c".to_vec());
        let tree = Tree::new(vec![file("c", b"data"), first]).unwrap();
        let b = &tree.entries()[1];
        assert_eq!(b.hardlink_target, None);
        assert_eq!(b.sha256, Some(Sha256Digest::of(b"data")));
        assert_eq!(tree.entries()[0].hardlink_target, Some(b"b".to_vec()));
    }
}
