//! Assembling the staged tree: placing objects at archive paths, merging
//! sources, flattening into the plan's order and grouping hard links.

use std::collections::{BTreeMap, HashMap, btree_map};
use std::path::Path;
use std::sync::Arc;

use super::normalize::{join, last_component, lossy};
use super::{StageError, StageOptions};
use crate::plan::{Content, Entry, EntryKind, NO_XATTRS, Plan, RootMeta, XattrSet};

/// Node of the in-memory tree being assembled.
#[derive(Debug)]
pub(super) struct Node {
    /// None for a directory synthesized as a parent of a DEST or the root.
    pub(super) staged: Option<Staged>,
    /// Boxed: a B-tree leaf holds 11 values inline, and most directories
    /// have few children, so inline nodes would waste most of each leaf.
    pub(super) children: BTreeMap<Box<[u8]>, Box<Node>>,
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
    pub(super) content: Option<Content>,
    /// A symlink's target and a device's numbers ([`special`]).
    pub(super) special: Special,
    /// (dev, ino) of a regular file with more than one link, for grouping.
    pub(super) inode: Option<(u64, u64)>,
    /// Where the entry came from, for messages. Empty when `content` is a
    /// [`Content::Path`]: that path says it, and is not stored twice.
    pub(super) origin: Box<str>,
}

/// A symlink's target and a device's (major, minor), `None` when both are
/// empty: boxed, since few objects have either, and the staging tree holds
/// one node per entry (this keeps a node at 176 bytes of heap, not 208).
pub(super) type Special = Option<Box<(Vec<u8>, (u32, u32))>>;

/// The [`Special`] holding `symlink_target` and `rdev`.
pub(super) fn special(symlink_target: Vec<u8>, rdev: (u32, u32)) -> Special {
    (!symlink_target.is_empty() || rdev != (0, 0)).then(|| Box::new((symlink_target, rdev)))
}

impl Staged {
    /// Where the entry at archive path `archive` came from, for messages.
    pub(super) fn source(&self, archive: &[u8]) -> String {
        match &self.content {
            Some(content @ Content::Path { .. }) if self.origin.is_empty() => content
                .describe(last_component(archive))
                .display()
                .to_string(),
            _ => self.origin.to_string(),
        }
    }
}

/// Places `staged` at `archive` in the tree, creating implicit parents.
pub(super) fn place(root: &mut Node, archive: &[u8], staged: Staged) -> Result<(), StageError> {
    let node = Node {
        staged: Some(staged),
        children: BTreeMap::new(),
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
        at = at.children.entry(Box::from(*comp)).or_insert_with(|| {
            Box::new(Node {
                staged: None,
                children: BTreeMap::new(),
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
    match at.children.entry(Box::from(*last)) {
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
        match slot.children.entry(name) {
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
    // Sized up front: a vector grown by doubling would, at its last
    // doubling, hold old and new buffers while the tree is still there.
    let count = count_nodes(&root);
    // Every path first, while the whole tree is alive: they then lie
    // together in fresh memory. Made while the tree is being freed, each
    // would take a chunk the tree just gave up (malloc hands a thread its
    // own last frees first), one live path in every page of the dead
    // tree, and no page of it could go back to the OS.
    // The same holds for the source directories' paths, which staging
    // threads made among the nodes: one per directory would keep a page
    // of the dead tree each.
    let mut paths = Vec::with_capacity(count);
    let mut dirs = HashMap::new();
    collect_paths(&root, &mut Vec::new(), &mut paths, &mut dirs);
    let mut flat = Flat {
        entries: Vec::with_capacity(count),
        inodes: Vec::new(),
        xattr_sets: Vec::new(),
        xattr_index: HashMap::new(),
        dirs,
    };
    flatten(root, &mut paths.into_iter(), opts, &mut flat);
    let Flat {
        mut entries,
        inodes,
        xattr_sets,
        xattr_index,
        dirs,
    } = flat;
    drop((xattr_index, dirs));
    if u32::try_from(entries.len()).is_err() {
        return Err(StageError::TooManyEntries {
            count: entries.len(),
        });
    }
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

/// Nodes below `node`, i.e. the entries it flattens to.
pub(super) fn count_nodes(node: &Node) -> usize {
    node.children.values().map(|c| 1 + count_nodes(c)).sum()
}

/// The flattened tree: entries in plan order, and the (dev, ino) key of
/// each regular file with more than one link, by entry index, until hard
/// links are grouped. Kept apart because few entries have one. Also the
/// distinct xattr sets in order of first use, and where each one is.
pub(super) struct Flat {
    pub(super) entries: Vec<Entry>,
    pub(super) inodes: Vec<(usize, (u64, u64))>,
    pub(super) xattr_sets: Vec<XattrSet>,
    pub(super) xattr_index: HashMap<XattrSet, u32>,
    pub(super) dirs: Dirs,
}

impl Flat {
    /// `content` with the copy of its directory path [`collect_paths`] made.
    fn rehome(&self, content: Option<Content>) -> Option<Content> {
        let Some(Content::Path {
            dir,
            name,
            size,
            mtime_ns,
        }) = content
        else {
            return content;
        };
        let dir = self
            .dirs
            .get(&dir_key(&dir))
            .map_or(dir, |(_, copy)| copy.clone());
        Some(Content::Path {
            dir,
            name,
            size,
            mtime_ns,
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
        // entries (checked by the caller once flattened).
        let i = self.xattr_sets.len() as u32;
        self.xattr_sets.push((*set).clone());
        self.xattr_index.insert(*set, i);
        i
    }
}

/// The archive path of every node below `node`, in plan order; `prefix`
/// is `node`'s own path (a buffer reused all the way down). Also a copy
/// of each source directory path, by the address of the tree's ([`Dirs`]).
fn collect_paths(node: &Node, prefix: &mut Vec<u8>, out: &mut Vec<Box<[u8]>>, dirs: &mut Dirs) {
    for (name, child) in &node.children {
        let len = prefix.len();
        if len > 0 {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(name);
        out.push(Box::from(&prefix[..]));
        if let Some(Staged {
            content: Some(Content::Path { dir, .. }),
            ..
        }) = &child.staged
        {
            dirs.entry(dir_key(dir))
                .or_insert_with(|| (dir.clone(), Arc::from(&**dir)));
        }
        collect_paths(child, prefix, out, dirs);
        prefix.truncate(len);
    }
}

/// Source directory paths copied by [`collect_paths`]: by the address of
/// the tree's copy, that copy (kept, so the address is not reused until
/// the tree is gone) and the new one.
pub(super) type Dirs = HashMap<usize, (Arc<Path>, Arc<Path>)>;

fn dir_key(dir: &Arc<Path>) -> usize {
    Arc::as_ptr(dir).cast::<u8>() as usize
}

/// Moves the nodes below `node` into `out.entries` in plan order, freeing
/// the tree as it goes; `paths` yields their paths in that order
/// ([`collect_paths`]).
pub(super) fn flatten(
    node: Node,
    paths: &mut impl Iterator<Item = Box<[u8]>>,
    opts: &StageOptions,
    out: &mut Flat,
) {
    for (_, child) in node.children {
        let path = paths
            .next()
            .expect("collect_paths yields one path per node, in this order");
        let Node { staged, children } = *child;
        let entry = match staged {
            Some(s) => {
                if let Some(key) = s.inode {
                    out.inodes.push((out.entries.len(), key));
                }
                let xattrs = out.intern(s.xattrs);
                let (symlink_target, rdev) = s.special.map_or_else(Default::default, |b| *b);
                Entry {
                    path,
                    kind: s.kind,
                    mode: s.mode,
                    uid: s.uid,
                    gid: s.gid,
                    mtime: s.mtime,
                    content: out.rehome(s.content),
                    symlink_target: symlink_target.into_boxed_slice(),
                    hardlink_of: None,
                    links: 1,
                    rdev,
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
                content: None,
                symlink_target: Box::default(),
                hardlink_of: None,
                links: 1,
                rdev: (0, 0),
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
        flatten(child, paths, opts, out);
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
            Some(&t) => e.hardlink_of = Some(t),
            None => {
                first.insert(k, i as u32);
            }
        }
    }
}
