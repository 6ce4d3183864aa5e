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
//! the same order (1, 2, …; the root gets the highest), and directories'
//! numbers are computed in a pass of their own because a directory inode
//! names its parent's number before the parent is written. The members of a
//! hard-link group share the inode written for the first member met in this
//! order, with the metadata and link count of the group's first member in
//! plan order.
//!
//! Both passes read the plan front to back, holding only the directories
//! open on the way down (each with its children's inode numbers and
//! references until its listing is written) and 4 bytes per directory: no
//! array per entry. The inode table goes to the file as it fills, and the
//! export table (the inode references in number order, which is write
//! order) is compressed as it grows.
//!
//! Everything here depends only on the plan and on the data layout, never
//! on threads: this part runs on one thread.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;

use super::SquashfsError;
use super::compress::Compressor;
use super::data::DataLayout;
use super::dir::{DirEntry, write_listing};
use super::inode::{self, InodeBody, InodeHeader, NO_FRAGMENT, NO_XATTR};
use super::metadata::{MetaPos, MetadataWriter};
use crate::plan::{Entry, EntryKind, Plan};

/// SquashFS names are at most 256 bytes (§6, the kernel's limit).
pub(crate) const MAX_NAME: usize = 256;

/// The inode table, written; the directory table and the export table's
/// metadata blocks, still to be placed.
pub(crate) struct MetaTables<'c> {
    /// Absolute offset just past the inode table.
    pub inode_table_end: u64,
    pub dir_table: Vec<u8>,
    pub root_ref: u64,
    /// Inode reference per inode number - 1 (the export table's content),
    /// in metadata blocks.
    pub export: MetadataWriter<'c>,
    /// Number of inodes.
    pub inode_count: u32,
}

/// uid/gid → index into the id table (sorted ascending).
pub(crate) struct Ids {
    ids: Vec<u32>,
}

impl Ids {
    /// Collects every owner id of the plan, sorted.
    pub(crate) fn collect(plan: &Plan) -> Result<Ids, SquashfsError> {
        // A set of the few distinct ids, not a list of two per entry: this
        // is alive through the data phase, at the peak of memory.
        let root = plan.root();
        let mut set = BTreeSet::from([root.uid, root.gid]);
        for e in plan.entries() {
            set.insert(e.uid());
            set.insert(e.gid());
        }
        let ids: Vec<u32> = set.into_iter().collect();
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

/// A directory open on the way down the plan. Node 0 is the root; node
/// i + 1 is plan entry i.
struct Open<T> {
    node: usize,
    /// Directories opened before this one (the root is 0).
    ordinal: u32,
    /// Children in name order: (node, what closing it gave) for a
    /// subdirectory, (node, None) for anything else.
    children: Vec<(u32, Option<T>)>,
}

/// Reads the plan front to back and calls `close(dir, parent ordinal)` for
/// each directory once its subtree has been read, so subdirectories are
/// closed before their parent and in name order; what `close` returns is
/// handed to the parent's children. Returns what closing the root gave.
fn close_in_write_order<T>(
    entries: &[Entry],
    mut close: impl FnMut(Open<T>, Option<u32>) -> Result<T, SquashfsError>,
) -> Result<T, SquashfsError> {
    if u32::try_from(entries.len() + 1).map_or(true, |n| n == u32::MAX) {
        return Err(SquashfsError::Limit("more than 2^32 - 2 entries".into()));
    }
    let mut opened = 0u32;
    let mut open = vec![Open {
        node: 0,
        ordinal: 0,
        children: Vec::new(),
    }];
    let mut close_top = |open: &mut Vec<Open<T>>| -> Result<(), SquashfsError> {
        // The root is closed by the caller below, never here.
        let dir = open
            .pop()
            .ok_or(SquashfsError::Internal("no open directory"))?;
        let parent = open
            .last_mut()
            .ok_or(SquashfsError::Internal("no open directory"))?;
        let node = dir.node as u32;
        let done = close(dir, Some(parent.ordinal))?;
        if let Some(last) = parent.children.last_mut()
            && last.0 == node
        {
            last.1 = Some(done);
        }
        Ok(())
    };
    for (i, e) in entries.iter().enumerate() {
        let depth = e.depth();
        if depth > open.len() {
            return Err(SquashfsError::Internal("plan entry before its parent"));
        }
        while open.len() > depth {
            close_top(&mut open)?;
        }
        let node = i + 1;
        // Node ids fit u32: checked above.
        open[depth - 1].children.push((node as u32, None));
        if e.kind() == EntryKind::Dir {
            opened += 1;
            open.push(Open {
                node,
                ordinal: opened,
                children: Vec::new(),
            });
        }
    }
    while open.len() > 1 {
        close_top(&mut open)?;
    }
    let root = open.pop().ok_or(SquashfsError::Internal("no root"))?;
    close(root, None)
}

/// The first members of hard-link groups: the nodes whose inode other
/// nodes use.
fn link_targets(entries: &[Entry]) -> HashSet<usize> {
    entries
        .iter()
        .filter_map(|e| e.hardlink_of().map(|t| t + 1))
        .collect()
}

/// Each directory's inode number, by [`Open::ordinal`]: the pass that
/// numbers inodes in write order without writing them.
fn directory_numbers(
    entries: &[Entry],
    targets: &HashSet<usize>,
) -> Result<Vec<u32>, SquashfsError> {
    for e in entries {
        let name = e.name();
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(SquashfsError::Limit(format!(
                "{}: name is {} bytes; SquashFS names are 1-{MAX_NAME} bytes",
                e.display_path(),
                name.len()
            )));
        }
    }
    let mut numbers = Vec::new();
    let mut next = 1u32;
    let mut placed = HashSet::new();
    close_in_write_order(entries, |dir: Open<()>, _| {
        for &(c, _) in &dir.children {
            let c = c as usize;
            if is_dir(entries, c) {
                continue;
            }
            let o = owner(entries, c);
            if !targets.contains(&o) || placed.insert(o) {
                next += 1;
            }
        }
        let at = dir.ordinal as usize;
        if numbers.len() <= at {
            numbers.resize(at + 1, 0);
        }
        numbers[at] = next;
        next += 1;
        Ok(())
    })?;
    Ok(numbers)
}

/// A written inode, as a directory listing refers to it.
#[derive(Clone, Copy)]
struct Written {
    number: u32,
    reference: u64,
    basic_type: u16,
}

/// Writes the inode table to `file` from `inode_table_start` on, and lays
/// out the directory table and the export table.
pub(crate) fn write_tables<'c>(
    plan: &Plan,
    data: &DataLayout,
    ids: &Ids,
    comps: [&mut Compressor; 2],
    export_comp: &'c mut Compressor,
    file: &File,
    inode_table_start: u64,
) -> Result<MetaTables<'c>, SquashfsError> {
    let entries = plan.entries();
    let targets = link_targets(entries);
    let dir_numbers = directory_numbers(entries, &targets)?;
    let [inode_comp, dir_comp] = comps;
    let mut inodes = MetadataWriter::new(inode_comp);
    let mut dirs = MetadataWriter::new(dir_comp);
    let mut export = MetadataWriter::new(export_comp);
    // The inodes of hard-link group first members, once written.
    let mut linked: HashMap<usize, Written> = HashMap::new();
    let mut next = 1u32;
    let mut buf = Vec::new();
    let time = |t: u64, what: &str| {
        u32::try_from(t).map_err(|_| {
            SquashfsError::Limit(format!(
                "{what}: time {t} does not fit SquashFS's 32-bit timestamps"
            ))
        })
    };
    let root = close_in_write_order(entries, |dir: Open<Written>, parent| {
        // The inodes of the children that are not directories, then the
        // listing (which needs every child's number and reference).
        let mut children = Vec::with_capacity(dir.children.len());
        for (c, closed) in dir.children {
            let c = c as usize;
            let w = match closed {
                Some(w) => w,
                None if is_dir(entries, c) => {
                    return Err(SquashfsError::Internal("child inode not yet written"));
                }
                None => {
                    let o = owner(entries, c);
                    match linked.get(&o) {
                        Some(&w) => w,
                        None => {
                            let e = &entries[o - 1];
                            buf.clear();
                            let pos = inodes.pos();
                            let basic_type =
                                encode_other(e, o - 1, next, data, ids, &time, &mut buf)?;
                            let w = Written {
                                number: next,
                                reference: pos.reference(),
                                basic_type,
                            };
                            inodes.write(&buf)?;
                            inodes.spill(file, inode_table_start)?;
                            export.write(&w.reference.to_le_bytes())?;
                            next += 1;
                            if targets.contains(&o) {
                                linked.insert(o, w);
                            }
                            w
                        }
                    }
                }
            };
            children.push((c, w));
        }
        let listing_entries: Vec<DirEntry> = children
            .iter()
            .map(|&(c, w)| DirEntry {
                name: entries[c - 1].name(),
                inode_number: w.number,
                inode: MetaPos {
                    block: w.reference >> 16,
                    offset: w.reference as u16,
                },
                basic_type: w.basic_type,
            })
            .collect();
        let subdirs = children
            .iter()
            .filter(|&&(c, _)| is_dir(entries, c))
            .count();
        drop(children);
        let listing = write_listing(&mut dirs, &listing_entries)
            .map_err(|e| SquashfsError::Limit(format!("directory listing: {e}")))?;
        drop(listing_entries);
        let node = dir.node;
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
        let number = dir_numbers
            .get(dir.ordinal as usize)
            .copied()
            .filter(|&n| n == next)
            .ok_or(SquashfsError::Internal("directory numbered out of order"))?;
        let header = InodeHeader {
            permissions: (mode & 0o7777) as u16,
            uid_idx: ids.index(uid),
            gid_idx: ids.index(gid),
            mtime: time(mtime, &what)?,
            inode_number: number,
            xattr: if node == 0 {
                NO_XATTR
            } else {
                xattr_of(&entries[node - 1])
            },
        };
        let too_big = || SquashfsError::Limit(format!("{what}: directory listing is too large"));
        let body = InodeBody::Dir {
            block_index: u32::try_from(listing.start.block).map_err(|_| too_big())?,
            link_count: u32::try_from(subdirs + 2).map_err(|_| too_big())?,
            file_size: u32::try_from(listing.size + 3).map_err(|_| too_big())?,
            block_offset: listing.start.offset,
            parent_inode: match parent {
                None => 0,
                Some(p) => dir_numbers
                    .get(p as usize)
                    .copied()
                    .ok_or(SquashfsError::Internal("parent directory not numbered"))?,
            },
            index: &listing.index,
        };
        buf.clear();
        let pos = inodes.pos();
        let basic_type = inode::encode(&header, &body, &mut buf);
        inodes.write(&buf)?;
        inodes.spill(file, inode_table_start)?;
        export.write(&pos.reference().to_le_bytes())?;
        next += 1;
        Ok(Written {
            number,
            reference: pos.reference(),
            basic_type,
        })
    })?;
    let inode_table_end = inodes.finish_spilled(file, inode_table_start)?;
    let (dir_table, _) = dirs.finish()?;
    Ok(MetaTables {
        inode_table_end,
        dir_table,
        root_ref: root.reference,
        export,
        inode_count: next - 1,
    })
}

/// Encodes the inode of plan entry `index` (`e`, not a directory) with
/// number `number` into `buf`; returns its basic type.
fn encode_other(
    e: &Entry,
    index: usize,
    number: u32,
    data: &DataLayout,
    ids: &Ids,
    time: &impl Fn(u64, &str) -> Result<u32, SquashfsError>,
    buf: &mut Vec<u8>,
) -> Result<u16, SquashfsError> {
    let what = e.display_path();
    let header = InodeHeader {
        permissions: (e.mode() & 0o7777) as u16,
        uid_idx: ids.index(e.uid()),
        gid_idx: ids.index(e.gid()),
        mtime: time(e.mtime(), &what)?,
        inode_number: number,
        xattr: xattr_of(e),
    };
    let body = match e.kind() {
        EntryKind::File => {
            let layout = data.file(index);
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
    Ok(inode::encode(&header, &body, buf))
}
