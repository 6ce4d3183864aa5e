//! The inode table and the directory table, written together.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §5 "Inode Table" and §6 "Directory Table"; the records themselves are
//! encoded in [`super::inode`] and [`super::dir`].
//!
//! A directory's listing refers to its children's inodes and the directory
//! inode refers to its listing, so inodes are written in post-order: for
//! each directory, first the subtrees of its subdirectories (in name
//! order), then the inodes of its other children (in name order), then its
//! listing, then its own inode. The root comes last. Inode numbers follow
//! the same order (1, 2, …; the root gets the highest), and are computed in
//! a pass of their own because a directory inode names its parent's number
//! before the parent is written. The members of a hard-link group share the
//! inode written for the first member met in this order, with the metadata
//! and link count of the group's first member in plan order.
//!
//! Everything here depends only on the plan and on the data layout, never
//! on threads: this part runs on one thread.

use super::SquashfsError;
use super::compress::Compressor;
use super::data::DataLayout;
use super::dir::{DirEntry, write_listing};
use super::inode::{self, InodeBody, InodeHeader, NO_FRAGMENT, NO_XATTR};
use super::metadata::{MetaPos, MetadataWriter};
use crate::plan::{Entry, EntryKind, Plan};

/// SquashFS names are at most 256 bytes (§6, the kernel's limit).
pub(crate) const MAX_NAME: usize = 256;

/// The finished inode and directory tables.
pub(crate) struct MetaTables {
    pub inode_table: Vec<u8>,
    pub dir_table: Vec<u8>,
    pub root_ref: u64,
    /// Inode reference per inode number - 1 (the export table's content).
    pub export: Vec<u64>,
}

/// uid/gid → index into the id table (sorted ascending).
pub(crate) struct Ids {
    ids: Vec<u32>,
}

impl Ids {
    /// Collects every owner id of the plan, sorted.
    pub(crate) fn collect(plan: &Plan) -> Result<Ids, SquashfsError> {
        let root = plan.root();
        let mut ids = vec![root.uid, root.gid];
        for e in plan.entries() {
            ids.push(e.uid());
            ids.push(e.gid());
        }
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > usize::from(u16::MAX) {
            return Err(SquashfsError::Limit(format!(
                "{} distinct uids/gids; SquashFS stores at most 65535",
                ids.len()
            )));
        }
        Ok(Ids { ids })
    }
    pub(crate) fn index(&self, id: u32) -> u16 {
        // Every id was collected, and there are at most 65535.
        self.ids.binary_search(&id).unwrap_or(0) as u16
    }
    pub(crate) fn ids(&self) -> &[u32] {
        &self.ids
    }
}

/// "No node" in the sibling links.
const NONE: u32 = u32::MAX;

/// Node 0 is the root; node i + 1 is plan entry i. Children are kept as
/// sibling links (in plan order, which is name order), 12 bytes per node.
struct Tree {
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
    parent: Vec<u32>,
}

impl Tree {
    fn children(&self, dir: usize) -> impl Iterator<Item = usize> + '_ {
        let mut next = self.first_child[dir];
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let n = next as usize;
                next = self.next_sibling[n];
                n
            })
        })
    }
}

fn build_tree(plan: &Plan) -> Result<Tree, SquashfsError> {
    let entries = plan.entries();
    let nodes = u32::try_from(entries.len() + 1)
        .ok()
        .filter(|&n| n != NONE)
        .ok_or_else(|| SquashfsError::Limit("more than 2^32 - 2 entries".into()))?;
    let nodes = nodes as usize;
    let mut first_child = vec![NONE; nodes];
    let mut last_child = vec![NONE; nodes];
    let mut next_sibling = vec![NONE; nodes];
    let mut parent = vec![0u32; nodes];
    let mut open = vec![0usize];
    for (i, e) in entries.iter().enumerate() {
        let name = e.name();
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(SquashfsError::Limit(format!(
                "{}: name is {} bytes; SquashFS names are 1-{MAX_NAME} bytes",
                e.display_path(),
                name.len()
            )));
        }
        let depth = e.depth();
        if depth > open.len() {
            return Err(SquashfsError::Internal("plan entry before its parent"));
        }
        open.truncate(depth);
        let p = open[depth - 1];
        // Node ids fit u32: checked above.
        let node = (i + 1) as u32;
        match last_child[p] {
            NONE => first_child[p] = node,
            last => next_sibling[last as usize] = node,
        }
        last_child[p] = node;
        parent[i + 1] = p as u32;
        if e.kind() == EntryKind::Dir {
            open.push(i + 1);
        }
    }
    Ok(Tree {
        first_child,
        next_sibling,
        parent,
    })
}

/// The node whose inode entry `node` uses (its hard-link group's first
/// member).
fn owner(entries: &[Entry], node: usize) -> usize {
    if node == 0 {
        return 0;
    }
    entries[node - 1].hardlink_of().map_or(node, |t| t + 1)
}

/// The xattr index an entry's inode stores: the plan's set index, which is
/// also the set's place in the xattr id table.
fn xattr_of(e: &Entry) -> u32 {
    e.xattr_index().unwrap_or(NO_XATTR)
}

fn is_dir(entries: &[Entry], node: usize) -> bool {
    node == 0 || entries[node - 1].kind() == EntryKind::Dir
}

/// Inode owners in write order (see module docs).
fn write_order(entries: &[Entry], tree: &Tree) -> Vec<u32> {
    let mut order = Vec::with_capacity(entries.len() + 1);
    let mut placed = vec![false; entries.len() + 1];
    // (directory node, next child to look at for subdirectories)
    let mut stack: Vec<(usize, u32)> = vec![(0, tree.first_child[0])];
    while let Some(top) = stack.last_mut() {
        let d = top.0;
        let mut next = top.1;
        while next != NONE && !is_dir(entries, next as usize) {
            next = tree.next_sibling[next as usize];
        }
        if next != NONE {
            let sub = next as usize;
            top.1 = tree.next_sibling[sub];
            stack.push((sub, tree.first_child[sub]));
            continue;
        }
        for c in tree.children(d) {
            if is_dir(entries, c) {
                continue;
            }
            let o = owner(entries, c);
            if !placed[o] {
                placed[o] = true;
                order.push(o as u32);
            }
        }
        order.push(d as u32);
        stack.pop();
    }
    order
}

/// Writes the inode and directory tables.
pub(crate) fn write_tables(
    plan: &Plan,
    data: &DataLayout,
    ids: &Ids,
    inode_comp: &mut Compressor,
    dir_comp: &mut Compressor,
) -> Result<MetaTables, SquashfsError> {
    let entries = plan.entries();
    let tree = build_tree(plan)?;
    let order = write_order(entries, &tree);
    let mut number = vec![0u32; entries.len() + 1];
    for (i, &node) in order.iter().enumerate() {
        // At most 2^32 - 1 nodes (checked by build_tree).
        number[node as usize] = i as u32 + 1;
    }
    // Inode reference (block << 16 | offset) per inode number - 1, which
    // is the export table itself (an owner node's reference is found
    // through its number), and basic type per owner node; type 0 = not
    // written yet.
    let mut export = vec![0u64; order.len()];
    let mut types = vec![0u8; entries.len() + 1];
    let reference = |export: &[u64], node: usize| export[number[node] as usize - 1];
    let mut inodes = MetadataWriter::new(inode_comp);
    let mut dirs = MetadataWriter::new(dir_comp);
    let mut buf = Vec::new();
    let time = |t: u64, what: &str| {
        u32::try_from(t).map_err(|_| {
            SquashfsError::Limit(format!(
                "{what}: time {t} does not fit SquashFS's 32-bit timestamps"
            ))
        })
    };
    for &node in &order {
        let node = node as usize;
        buf.clear();
        let pos = inodes.pos();
        let basic_type = if is_dir(entries, node) {
            let mut listing_entries = Vec::new();
            let mut subdirs = 0usize;
            for c in tree.children(node) {
                let o = owner(entries, c);
                if types[o] == 0 {
                    return Err(SquashfsError::Internal("child inode not yet written"));
                }
                let r = reference(&export, o);
                subdirs += usize::from(is_dir(entries, c));
                listing_entries.push(DirEntry {
                    name: entries[c - 1].name(),
                    inode_number: number[o],
                    inode: MetaPos {
                        block: r >> 16,
                        offset: r as u16,
                    },
                    basic_type: u16::from(types[o]),
                });
            }
            let listing = write_listing(&mut dirs, &listing_entries)
                .map_err(|e| SquashfsError::Limit(format!("directory listing: {e}")))?;
            let (mode, uid, gid, mtime, what) = if node == 0 {
                let r = plan.root();
                (r.mode, r.uid, r.gid, r.mtime, "<root>".to_string())
            } else {
                let e = &entries[node - 1];
                (e.mode(), e.uid(), e.gid(), e.mtime(), e.display_path())
            };
            if listing.index.len() > usize::from(u16::MAX) {
                return Err(SquashfsError::Limit(format!(
                    "{what}: directory listing is too large"
                )));
            }
            let header = InodeHeader {
                permissions: (mode & 0o7777) as u16,
                uid_idx: ids.index(uid),
                gid_idx: ids.index(gid),
                mtime: time(mtime, &what)?,
                inode_number: number[node],
                xattr: if node == 0 {
                    NO_XATTR
                } else {
                    xattr_of(&entries[node - 1])
                },
            };
            let too_big =
                || SquashfsError::Limit(format!("{what}: directory listing is too large"));
            let body = InodeBody::Dir {
                block_index: u32::try_from(listing.start.block).map_err(|_| too_big())?,
                link_count: u32::try_from(subdirs + 2).map_err(|_| too_big())?,
                file_size: u32::try_from(listing.size + 3).map_err(|_| too_big())?,
                block_offset: listing.start.offset,
                parent_inode: if node == 0 {
                    0
                } else {
                    number[tree.parent[node] as usize]
                },
                index: &listing.index,
            };
            inode::encode(&header, &body, &mut buf)
        } else {
            let e = &entries[node - 1];
            let what = e.display_path();
            let header = InodeHeader {
                permissions: (e.mode() & 0o7777) as u16,
                uid_idx: ids.index(e.uid()),
                gid_idx: ids.index(e.gid()),
                mtime: time(e.mtime(), &what)?,
                inode_number: number[node],
                xattr: xattr_of(e),
            };
            let body = match e.kind() {
                EntryKind::File => {
                    let layout = data.file(node - 1);
                    let (frag_index, frag_offset) =
                        layout.and_then(|l| l.fragment).unwrap_or((NO_FRAGMENT, 0));
                    InodeBody::File {
                        blocks_start: layout.map_or(0, |l| l.blocks_start),
                        file_size: e.size(),
                        sparse: layout.map_or(0, |l| l.sparse),
                        link_count: e.links(),
                        frag_index,
                        frag_offset,
                        block_sizes: layout.map_or(&[][..], |l| l.block_sizes),
                    }
                }
                EntryKind::Symlink => InodeBody::Symlink {
                    link_count: 1,
                    target: e.symlink_target(),
                },
                EntryKind::Fifo | EntryKind::Socket => InodeBody::Ipc {
                    socket: e.kind() == EntryKind::Socket,
                    link_count: 1,
                },
                EntryKind::CharDevice | EntryKind::BlockDevice => {
                    let (major, minor) = e.rdev();
                    InodeBody::Device {
                        block: e.kind() == EntryKind::BlockDevice,
                        link_count: 1,
                        device: inode::encode_device(major, minor),
                    }
                }
                EntryKind::Dir => return Err(SquashfsError::Internal("directory as file")),
                EntryKind::HardLink => {
                    return Err(SquashfsError::Internal("a plan holds no hard-link kind"));
                }
            };
            inode::encode(&header, &body, &mut buf)
        };
        inodes.write(&buf)?;
        export[number[node] as usize - 1] = pos.reference();
        // Basic types are 1-7.
        types[node] = basic_type as u8;
    }
    if types[0] == 0 {
        return Err(SquashfsError::Internal("root inode not written"));
    }
    let root_ref = reference(&export, 0);
    let (inode_table, _) = inodes.finish()?;
    let (dir_table, _) = dirs.finish()?;
    Ok(MetaTables {
        inode_table,
        dir_table,
        root_ref,
        export,
    })
}
