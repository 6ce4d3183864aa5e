//! Assembling the staged tree: placing objects at archive paths, merging
//! sources, flattening into the plan's order and grouping hard links.

use std::collections::{BTreeMap, HashMap, btree_map};
use std::sync::Arc;

use super::normalize::{join, last_component, lossy};
use super::{StageError, StageOptions};
use crate::plan::{
    Content, Entry, EntryKind, NO_XATTRS, NOT_A_LINK, PathRef, Payload, Plan, RootMeta, SourceDir,
    XattrSet,
};

/// Node of the in-memory tree being assembled.
#[derive(Debug)]
pub(super) struct Node {
    /// None for a directory synthesized as a parent of a DEST or the root.
    pub(super) staged: Option<Staged>,
    pub(super) children: Children,
}

/// A node's children by name. The map is boxed, and absent until the
/// first child comes: most nodes are files, and an empty map still takes
/// 24 bytes in each. The nodes are boxed too: a B-tree leaf holds 11
/// values inline, and most directories have few children, so inline nodes
/// would waste most of each leaf.
#[derive(Debug, Default)]
// The box is the point: 8 bytes in a file's node where the map takes 24.
#[allow(clippy::box_collection)]
pub(super) struct Children(Option<Box<BTreeMap<Name, Box<Node>>>>);

impl Children {
    pub(super) fn new() -> Children {
        Children(None)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    pub(super) fn get(&self, name: &[u8]) -> Option<&Node> {
        self.0.as_ref()?.get(name).map(|b| &**b)
    }

    pub(super) fn get_mut(&mut self, name: &[u8]) -> Option<&mut Node> {
        self.0.as_mut()?.get_mut(name).map(|b| &mut **b)
    }

    /// The map, made if there was none: for adding a child.
    pub(super) fn map(&mut self) -> &mut BTreeMap<Name, Box<Node>> {
        self.0.get_or_insert_default()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Name, &Node)> {
        self.0.iter().flat_map(|m| m.iter().map(|(k, v)| (k, &**v)))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Node> {
        self.0.iter().flat_map(|m| m.values().map(|v| &**v))
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.0
            .iter_mut()
            .flat_map(|m| m.values_mut().map(|v| &mut **v))
    }
}

impl IntoIterator for Children {
    type Item = (Name, Box<Node>);
    type IntoIter = std::iter::Flatten<std::option::IntoIter<BTreeMap<Name, Box<Node>>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|m| *m).into_iter().flatten()
    }
}

impl FromIterator<(Name, Box<Node>)> for Children {
    /// Bulk-built from names in order, the map's leaves come out full.
    fn from_iter<I: IntoIterator<Item = (Name, Box<Node>)>>(iter: I) -> Children {
        let map = BTreeMap::from_iter(iter);
        Children((!map.is_empty()).then(|| Box::new(map)))
    }
}

/// A name in a directory of the staging tree: up to [`INLINE_NAME`] bytes
/// in place, a heap copy beyond. The tree holds one per entry, and most
/// names are short: in place, a name takes no heap chunk (32 bytes or
/// more) and 24 bytes of its B-tree leaf, 8 more than a boxed slice.
#[derive(Clone)]
pub(super) enum Name {
    /// `bytes[..len]`.
    Inline {
        len: u8,
        bytes: [u8; INLINE_NAME],
    },
    Heap(Box<[u8]>),
}

/// Longest name [`Name`] holds in place (the most that keeps it 24 bytes).
const INLINE_NAME: usize = 22;

impl From<&[u8]> for Name {
    fn from(name: &[u8]) -> Name {
        if name.len() <= INLINE_NAME {
            let mut bytes = [0; INLINE_NAME];
            bytes[..name.len()].copy_from_slice(name);
            Name::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(name.into())
        }
    }
}

impl std::ops::Deref for Name {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Name::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self
    }
}

// Compared as the bytes they hold, as `Borrow<[u8]>` requires.
impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        **self == **other
    }
}
impl Eq for Name {}
impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[derive(Debug)]
pub(super) struct Staged {
    pub(super) kind: EntryKind,
    pub(super) mode: u32,
    /// Owner as staged: from the owner policy, or the source's with
    /// `keep_owners`.
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: u64,
    /// Kept extended attributes, `None` when there are none (boxed: most
    /// nodes have none, and the staging tree holds one node per entry).
    pub(super) xattrs: Option<Box<XattrSet>>,
    /// A regular file's content, or a symlink's target and a device's
    /// numbers ([`special`]): one field, 32 bytes in every node.
    pub(super) payload: Payload,
    /// (dev, ino) of a regular file with more than one link, for grouping
    /// (boxed: few files have one).
    pub(super) inode: Option<Box<(u64, u64)>>,
    /// Where the entry came from, for messages. `None` when `content` is
    /// a [`Content::Path`]: that path says it, and is not stored twice.
    pub(super) origin: Origin,
}

/// Where a staged object came from, for messages ([`Staged::origin`]):
/// a thin pointer, 8 bytes in every node rather than a `Box<str>`'s 16.
pub(super) type Origin = Option<Box<String>>;

/// The payload of a symlink or device: `symlink_target` and `rdev`, boxed
/// (few objects have either), or nothing when both are empty.
pub(super) fn special(symlink_target: Vec<u8>, rdev: (u32, u32)) -> Payload {
    if symlink_target.is_empty() && rdev == (0, 0) {
        Payload::Nothing
    } else {
        Payload::Special(Box::new((symlink_target.into_boxed_slice(), rdev)))
    }
}

impl Staged {
    /// Where the entry at archive path `archive` came from, for messages.
    pub(super) fn source(&self, archive: &[u8]) -> String {
        match &self.payload {
            Payload::Content(content @ (Content::Path { .. } | Content::File { .. }))
                if self.origin.is_none() =>
            {
                content
                    .describe(last_component(archive))
                    .display()
                    .to_string()
            }
            _ => self.origin.as_deref().cloned().unwrap_or_default(),
        }
    }
}

/// Places `staged` at `archive` in the tree, creating implicit parents.
pub(super) fn place(root: &mut Node, archive: &[u8], staged: Staged) -> Result<(), StageError> {
    let node = Node {
        staged: Some(staged),
        children: Children::new(),
    };
    place_node(root, archive, node)
}

/// Places `node` (with its subtree) at `archive` in the tree, creating
/// implicit parents and merging with what earlier sources put there.
pub(super) fn place_node(root: &mut Node, archive: &[u8], node: Node) -> Result<(), StageError> {
    let mut at = root;
    let comps: Vec<&[u8]> = archive.split(|&b| b == b'/').collect();
    let (last, parents) = comps.split_last().expect("split yields at least one item");
    let mut walked: Vec<u8> = Vec::new();
    for comp in parents {
        walked = join(&walked, comp);
        at = at
            .children
            .map()
            .entry(Name::from(*comp))
            .or_insert_with(|| {
                Box::new(Node {
                    staged: None,
                    children: Children::new(),
                })
            });
        if let Some(s) = &at.staged
            && s.kind != EntryKind::Dir
        {
            return Err(StageError::NotADirectory {
                archive: lossy(&walked),
                source_path: s.source(&walked),
            });
        }
    }
    match at.children.map().entry(Name::from(*last)) {
        btree_map::Entry::Vacant(v) => {
            v.insert(Box::new(node));
            Ok(())
        }
        btree_map::Entry::Occupied(mut o) => merge(o.get_mut(), archive, node),
    }
}

/// Merges `new` into `slot`, the node already at `archive`: an object may
/// land on an implicit directory (one only created as a parent), never on
/// another object, and only directories have children.
pub(super) fn merge(slot: &mut Node, archive: &[u8], new: Node) -> Result<(), StageError> {
    let Node { staged, children } = new;
    if let Some(s) = staged {
        if let Some(existing) = &slot.staged {
            return Err(StageError::Collision {
                archive: lossy(archive),
                first: existing.source(archive),
                second: s.source(archive),
            });
        }
        if s.kind != EntryKind::Dir && !slot.children.is_empty() {
            return Err(StageError::NotADirectory {
                archive: lossy(archive),
                source_path: s.source(archive),
            });
        }
        slot.staged = Some(s);
    }
    if children.is_empty() {
        return Ok(());
    }
    if let Some(s) = &slot.staged
        && s.kind != EntryKind::Dir
    {
        return Err(StageError::NotADirectory {
            archive: lossy(archive),
            source_path: s.source(archive),
        });
    }
    for (name, child) in children {
        match slot.children.map().entry(name) {
            btree_map::Entry::Vacant(v) => {
                v.insert(child);
            }
            btree_map::Entry::Occupied(mut o) => {
                let child_archive = join(archive, o.key());
                merge(o.get_mut(), &child_archive, *child)?;
            }
        }
    }
    Ok(())
}

/// Turns the assembled tree into the ordered plan (shared by [`stage`] and
/// [`stage_tar`]).
/// The tree is consumed as it is flattened, so its nodes and the entries
/// are not both in memory at the peak.
pub(super) fn finish_plan(
    root: Node,
    opts: &StageOptions,
    warnings: Vec<String>,
) -> Result<Plan, StageError> {
    finish_plan_in(root, opts, warnings, ARENA_MAX)
}

/// [`finish_plan`], with path arenas of at most `arena_max` bytes (beyond
/// one path).
fn finish_plan_in(
    root: Node,
    opts: &StageOptions,
    warnings: Vec<String>,
    arena_max: usize,
) -> Result<Plan, StageError> {
    // Sized up front: a vector grown by doubling would, at its last
    // doubling, hold old and new buffers while the tree is still there.
    // The same goes for the path arenas.
    let (count, path_bytes) = tally(&root, 0);
    if u32::try_from(count).map_or(true, |c| c == u32::MAX) {
        return Err(StageError::TooManyEntries { count });
    }
    // The source directories' paths, which staging threads made among the
    // nodes, are copied first, while the whole tree is alive: they then
    // lie together in fresh memory. Each would otherwise keep a page of the
    // dead tree from going back to the OS.
    let mut dirs = HashMap::new();
    collect_dirs(&root, &mut dirs);
    let mut flat = Flat {
        entries: Vec::with_capacity(count),
        paths: Paths::new(path_bytes, arena_max),
        inodes: Vec::new(),
        xattr_sets: Vec::new(),
        xattr_index: HashMap::new(),
        dirs,
    };
    flatten(root, &mut Vec::new(), opts, &mut flat);
    let Flat {
        mut entries,
        paths,
        inodes,
        xattr_sets,
        xattr_index,
        dirs,
    } = flat;
    drop((xattr_index, dirs));
    paths.finish(&mut entries);
    if !opts.no_hardlinks {
        group_hardlinks(&mut entries, &inodes);
    }
    release_freed_memory();
    Ok(Plan {
        root: RootMeta {
            mode: 0o755,
            uid: opts.owner.uid,
            gid: opts.owner.gid,
            mtime: opts.epoch,
        },
        entries,
        warnings,
        epoch: opts.epoch,
        xattr_sets,
        input_files: Default::default(),
    })
}

/// Hands memory freed by the staging tree back to the OS. The tree was
/// built on the staging threads, so its chunks sit in their malloc arenas,
/// where the threads that write the archive would never reuse them: without
/// this, peak RSS carries the dead tree (about 10 % of it on a large tree).
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own heaps to
    // the kernel; it touches no memory that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Entries flattened between two hand-backs of the freed tree. The tree
/// is consumed in plan order, which is close to the order it was built in,
/// so its freed nodes fill whole pages: returning them as the entries are
/// made keeps the peak near the larger of the tree and the entries, not
/// their sum. A trim walks the free lists only; 16Ki entries apart, it
/// costs a few milliseconds per million entries.
const TRIM_EVERY: usize = 1 << 14;

/// Largest path arena, in bytes: a [`PathRef`] addresses one with u32s.
const ARENA_MAX: usize = 1 << 31;

/// Nodes below `node`, i.e. the entries it flattens to, and the bytes of
/// their archive paths; `prefix` is the length of `node`'s own path.
fn tally(node: &Node, prefix: usize) -> (usize, u64) {
    node.children
        .iter()
        .fold((0, 0), |(count, bytes), (name, child)| {
            let len = child_path_len(prefix, name);
            let (c, b) = tally(child, len);
            (count + 1 + c, bytes + len as u64 + b)
        })
}

/// Length of the path of child `name` of a node whose path is `prefix`
/// bytes long.
fn child_path_len(prefix: usize, name: &[u8]) -> usize {
    prefix + usize::from(prefix > 0) + name.len()
}

/// The flattened tree: entries in plan order, the arenas their paths are
/// being placed in, and the (dev, ino) key of each regular file with more
/// than one link, by entry index, until hard links are grouped. Kept apart
/// because few entries have one. Also the distinct xattr sets in order of
/// first use, and where each one is.
pub(super) struct Flat {
    pub(super) entries: Vec<Entry>,
    paths: Paths,
    pub(super) inodes: Vec<(usize, (u64, u64))>,
    pub(super) xattr_sets: Vec<XattrSet>,
    pub(super) xattr_index: HashMap<XattrSet, u32>,
    pub(super) dirs: Dirs,
}

/// The plan's path arenas while they are filled, in plan order. Each is
/// sized once from the tally (filled pages are touched as the tree is
/// freed, so the paths never sit on top of the whole tree), and entries
/// point at a placeholder until [`Paths::finish`] hands them their arena.
struct Paths {
    /// Sealed arenas, each with the index of the entry of its first path.
    sealed: Vec<(Arc<Box<[u8]>>, usize)>,
    current: Vec<u8>,
    /// Entry index of `current`'s first path.
    first: usize,
    /// Bytes of the paths not placed yet.
    left: u64,
    max: usize,
    placeholder: Arc<Box<[u8]>>,
}

impl Paths {
    fn new(bytes: u64, max: usize) -> Paths {
        Paths {
            sealed: Vec::new(),
            current: Vec::with_capacity(Self::capacity(bytes, max)),
            first: 0,
            left: bytes,
            max,
            placeholder: Arc::new(Box::default()),
        }
    }

    fn capacity(bytes: u64, max: usize) -> usize {
        usize::try_from(bytes).map_or(max, |b| b.min(max))
    }

    /// Places the path of entry `index`, the next one in plan order.
    fn push(&mut self, path: &[u8], index: usize) -> PathRef {
        if !self.current.is_empty() && self.current.len() + path.len() > self.max {
            let capacity = Self::capacity(self.left, self.max);
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(capacity));
            self.sealed
                .push((Arc::new(full.into_boxed_slice()), self.first));
            self.first = index;
        }
        // An arena holds at most `max` bytes plus one path (of at most
        // PATH_MAX bytes): u32 offsets and lengths.
        let start = self.current.len() as u32;
        self.current.extend_from_slice(path);
        self.left = self.left.saturating_sub(path.len() as u64);
        PathRef::placed_later(&self.placeholder, start, path.len() as u32)
    }

    /// Points every entry's path at its arena.
    fn finish(mut self, entries: &mut [Entry]) {
        let last = Arc::new(std::mem::take(&mut self.current).into_boxed_slice());
        self.sealed.push((last, self.first));
        let bounds: Vec<usize> = self.sealed.iter().skip(1).map(|(_, f)| *f).collect();
        let ends = bounds.into_iter().chain([entries.len()]);
        for ((arena, first), end) in self.sealed.iter().zip(ends) {
            for e in &mut entries[*first..end] {
                e.path.place(arena);
            }
        }
    }
}

impl Flat {
    /// `content` with the copy of its directory path [`collect_dirs`] made.
    fn rehome(&self, content: Payload) -> Payload {
        let Payload::Content(Content::Path {
            dir,
            size,
            mtime_secs,
            mtime_nanos,
        }) = content
        else {
            return content;
        };
        let dir = self
            .dirs
            .get(&dir_key(&dir))
            .map_or(dir, |(_, copy)| copy.clone());
        Payload::Content(Content::Path {
            dir,
            size,
            mtime_secs,
            mtime_nanos,
        })
    }

    /// The plan's index of `set`, adding it at the end when new. Sets are
    /// met in plan order, so the table's order depends on the plan only.
    fn intern(&mut self, set: Option<Box<XattrSet>>) -> u32 {
        let Some(set) = set.filter(|s| !s.is_empty()) else {
            return NO_XATTRS;
        };
        if let Some(&i) = self.xattr_index.get(&*set) {
            return i;
        }
        // Fewer sets than entries, and a plan has fewer than 2^32 - 1
        // entries (checked before flattening).
        let i = self.xattr_sets.len() as u32;
        self.xattr_sets.push((*set).clone());
        self.xattr_index.insert(*set, i);
        i
    }
}

/// A copy of each source directory path below `node`, by the address of
/// the tree's ([`Dirs`]).
fn collect_dirs(node: &Node, dirs: &mut Dirs) {
    for child in node.children.values() {
        if let Some(Staged {
            payload: Payload::Content(Content::Path { dir, .. }),
            ..
        }) = &child.staged
        {
            dirs.entry(dir_key(dir))
                .or_insert_with(|| (dir.clone(), Arc::new((**dir).clone())));
        }
        collect_dirs(child, dirs);
    }
}

/// Source directory paths copied by [`collect_dirs`]: by the address of
/// the tree's copy, that copy (kept, so the address is not reused until
/// the tree is gone) and the new one.
pub(super) type Dirs = HashMap<usize, (SourceDir, SourceDir)>;

fn dir_key(dir: &SourceDir) -> usize {
    Arc::as_ptr(dir).cast::<u8>() as usize
}

/// Moves the nodes below `node` into `out.entries` in plan order, freeing
/// the tree as it goes; `prefix` is `node`'s archive path (a buffer reused
/// all the way down).
fn flatten(node: Node, prefix: &mut Vec<u8>, opts: &StageOptions, out: &mut Flat) {
    for (name, child) in node.children {
        let len = prefix.len();
        if len > 0 {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(&name);
        drop(name);
        let path = out.paths.push(prefix, out.entries.len());
        let Node { staged, children } = *child;
        let entry = match staged {
            Some(s) => {
                if let Some(key) = s.inode {
                    out.inodes.push((out.entries.len(), *key));
                }
                let xattrs = out.intern(s.xattrs);
                Entry {
                    path,
                    kind: s.kind,
                    // Staging keeps permission bits only (0o7777 at most).
                    mode: (s.mode & 0o7777) as u16,
                    uid: s.uid,
                    gid: s.gid,
                    mtime: s.mtime,
                    payload: out.rehome(s.payload),
                    hardlink_of: NOT_A_LINK,
                    links: 1,
                    xattrs,
                }
            }
            None => Entry {
                path,
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: opts.owner.uid,
                gid: opts.owner.gid,
                mtime: opts.epoch,
                payload: Payload::Nothing,
                hardlink_of: NOT_A_LINK,
                links: 1,
                xattrs: NO_XATTRS,
            },
        };
        out.entries.push(entry);
        if out.entries.len().is_multiple_of(TRIM_EVERY) {
            release_freed_memory();
        }
        let child = Node {
            staged: None,
            children,
        };
        flatten(child, prefix, opts, out);
        prefix.truncate(len);
    }
}

/// Links the members of each hard-link group: `inodes` lists (entry index,
/// inode key) in plan order; `entries` has fewer than 2^32 entries (checked
/// by the caller), so indexes fit in u32.
pub(super) fn group_hardlinks(entries: &mut [Entry], inodes: &[(usize, (u64, u64))]) {
    let mut first: HashMap<(u64, u64), u32> = HashMap::new();
    let mut counts: HashMap<(u64, u64), u32> = HashMap::new();
    for (_, k) in inodes {
        *counts.entry(*k).or_default() += 1;
    }
    for &(i, k) in inodes {
        let e = &mut entries[i];
        e.links = counts[&k];
        match first.get(&k) {
            Some(&t) => e.hardlink_of = t,
            None => {
                first.insert(k, i as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Staged {
        Staged {
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: None,
            payload: Payload::Nothing,
            inode: None,
            origin: None,
        }
    }

    const LONG: &str = "a-name-longer-than-twenty-two-bytes";

    fn tree() -> Node {
        let mut root = Node {
            staged: None,
            children: Children::new(),
        };
        // Placed out of order, and with an implicit parent (`d`).
        for p in ["zz", "a", "d/e", "a/bb/ccc", "a/bb"] {
            place(&mut root, p.as_bytes(), dir()).unwrap();
        }
        place(&mut root, format!("a/bb/ccc/{LONG}").as_bytes(), dir()).unwrap();
        root
    }

    fn paths(plan: &Plan) -> Vec<String> {
        let entries = plan.entries().iter();
        entries.map(|e| e.display_path()).collect()
    }

    #[test]
    fn paths_come_out_in_plan_order_over_any_arena_size() {
        let opts = StageOptions::default();
        let want = [
            "a".to_string(),
            "a/bb".into(),
            "a/bb/ccc".into(),
            format!("a/bb/ccc/{LONG}"),
            "d".into(),
            "d/e".into(),
            "zz".into(),
        ];
        assert_eq!(paths(&finish_plan(tree(), &opts, vec![]).unwrap()), want);
        // 1 byte: every path starts an arena of its own; 12: some share.
        for max in [1, 5, 12, 40] {
            let plan = finish_plan_in(tree(), &opts, vec![], max).unwrap();
            assert_eq!(paths(&plan), want, "arenas of {max} bytes");
            let names: Vec<&[u8]> = plan.entries().iter().map(|e| e.name()).collect();
            assert_eq!(names[3], LONG.as_bytes());
        }
    }

    #[test]
    fn names_in_place_and_on_the_heap_order_as_their_bytes() {
        let raw: Vec<Vec<u8>> = vec![
            LONG.into(),
            b"b".to_vec(),
            b"b\0".to_vec(),
            vec![0xff; 22],
            vec![0xff; 23],
            b"".to_vec(),
            b"a-name-longer-than-twenty-two-bytes-too".to_vec(),
        ];
        let mut names: Vec<Name> = raw.iter().map(|r| Name::from(&r[..])).collect();
        assert!(matches!(names[3], Name::Inline { .. }));
        assert!(matches!(names[4], Name::Heap(_)));
        names.sort();
        let mut sorted = raw.clone();
        sorted.sort();
        let back: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
        assert_eq!(back, sorted);
    }
}
