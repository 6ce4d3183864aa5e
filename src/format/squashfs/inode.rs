//! Inodes.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §5 "Inode Table": §5.1 common header, §5.2 directory inodes, §5.3 file
//! inodes, §5.4 symbolic links, §5.5 device special files, §5.6 IPC inodes.
//!
//! The basic form of each inode is used whenever it can hold the values;
//! the extended form only when it must:
//! - a directory whose listing (+3) exceeds 65535 bytes or that carries a
//!   directory index;
//! - a file of 4 GiB or more, whose first block lies beyond 4 GiB, with
//!   more than one link, or with sparse blocks (so the kernel's sparse
//!   accounting is right);
//! - any inode with extended attributes (only extended inodes carry an
//!   xattr index).
//!
//! [`decode`] reads all fourteen inode types, basic and extended, from the
//! inode table.

/// Basic inode type numbers (§5.1); the extended type is basic + 7.
pub(crate) mod kind {
    pub const DIR: u16 = 1;
    pub const FILE: u16 = 2;
    pub const SYMLINK: u16 = 3;
    pub const BLOCK_DEV: u16 = 4;
    pub const CHAR_DEV: u16 = 5;
    pub const FIFO: u16 = 6;
    pub const SOCKET: u16 = 7;
    /// Added to a basic type for its extended form (a socket's 7 + 7 = 14).
    pub const EXTENDED: u16 = 7;
}

use super::image::{Fault, Image};
use super::metadata::{Cursor, MetadataReader};

/// Longest symlink target the reader accepts: Linux's PATH_MAX - 1.
pub(crate) const MAX_SYMLINK_TARGET: u32 = 4095;

/// No xattrs: the xattr index of extended inodes.
pub(crate) const NO_XATTR: u32 = 0xFFFF_FFFF;
/// "No fragment" marker of file inodes.
pub(crate) const NO_FRAGMENT: u32 = 0xFFFF_FFFF;

/// §5.1 common inode header, minus the type (derived from the body).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InodeHeader {
    pub permissions: u16,
    pub uid_idx: u16,
    pub gid_idx: u16,
    pub mtime: u32,
    pub inode_number: u32,
    /// Index into the xattr id table (§10), or [`NO_XATTR`].
    pub xattr: u32,
}

/// One directory-index record (§6.2), stored after an extended directory
/// inode.
#[derive(Debug, Clone)]
pub(crate) struct DirIndex {
    /// Byte offset of the header from the start of the listing.
    pub index: u32,
    /// Directory-table-relative start of the metadata block holding the
    /// header.
    pub start: u32,
    /// Name of the first entry after the header.
    pub name: Vec<u8>,
}

/// The type-specific part of an inode.
pub(crate) enum InodeBody<'a> {
    Dir {
        block_index: u32,
        link_count: u32,
        /// Listing size + 3 (§5.2).
        file_size: u32,
        block_offset: u16,
        parent_inode: u32,
        index: &'a [DirIndex],
    },
    File {
        blocks_start: u64,
        file_size: u64,
        sparse: u64,
        link_count: u32,
        frag_index: u32,
        frag_offset: u32,
        block_sizes: &'a [u32],
    },
    Symlink {
        link_count: u32,
        target: &'a [u8],
    },
    Device {
        block: bool,
        link_count: u32,
        /// Linux `new_encode_dev` form (§5.5).
        device: u32,
    },
    /// An IPC inode (§5.6): a fifo, or a socket when `socket`.
    Ipc {
        socket: bool,
        link_count: u32,
    },
}

/// Encodes `(major, minor)` as §5.5 describes.
pub(crate) fn encode_device(major: u32, minor: u32) -> u32 {
    (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & !0xFF) << 12)
}

/// Appends the inode to `out` and returns its basic type (what directory
/// entries store).
pub(crate) fn encode(header: &InodeHeader, body: &InodeBody<'_>, out: &mut Vec<u8>) -> u16 {
    let put_header = |out: &mut Vec<u8>, t: u16| {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&header.permissions.to_le_bytes());
        out.extend_from_slice(&header.uid_idx.to_le_bytes());
        out.extend_from_slice(&header.gid_idx.to_le_bytes());
        out.extend_from_slice(&header.mtime.to_le_bytes());
        out.extend_from_slice(&header.inode_number.to_le_bytes());
    };
    match *body {
        InodeBody::Dir {
            block_index,
            link_count,
            file_size,
            block_offset,
            parent_inode,
            index,
        } => {
            if file_size <= u32::from(u16::MAX) && index.is_empty() && header.xattr == NO_XATTR {
                put_header(out, kind::DIR);
                out.extend_from_slice(&block_index.to_le_bytes());
                out.extend_from_slice(&link_count.to_le_bytes());
                out.extend_from_slice(&(file_size as u16).to_le_bytes());
                out.extend_from_slice(&block_offset.to_le_bytes());
                out.extend_from_slice(&parent_inode.to_le_bytes());
            } else {
                put_header(out, kind::DIR + kind::EXTENDED);
                out.extend_from_slice(&link_count.to_le_bytes());
                out.extend_from_slice(&file_size.to_le_bytes());
                out.extend_from_slice(&block_index.to_le_bytes());
                out.extend_from_slice(&parent_inode.to_le_bytes());
                // Caller guarantees the count fits (checked when built).
                out.extend_from_slice(&(index.len() as u16).to_le_bytes());
                out.extend_from_slice(&block_offset.to_le_bytes());
                out.extend_from_slice(&header.xattr.to_le_bytes());
                for i in index {
                    out.extend_from_slice(&i.index.to_le_bytes());
                    out.extend_from_slice(&i.start.to_le_bytes());
                    out.extend_from_slice(&(i.name.len() as u32 - 1).to_le_bytes());
                    out.extend_from_slice(&i.name);
                }
            }
            kind::DIR
        }
        InodeBody::File {
            blocks_start,
            file_size,
            sparse,
            link_count,
            frag_index,
            frag_offset,
            block_sizes,
        } => {
            let basic = blocks_start <= u64::from(u32::MAX)
                && file_size <= u64::from(u32::MAX)
                && sparse == 0
                && link_count == 1
                && header.xattr == NO_XATTR;
            if basic {
                put_header(out, kind::FILE);
                out.extend_from_slice(&(blocks_start as u32).to_le_bytes());
                out.extend_from_slice(&frag_index.to_le_bytes());
                out.extend_from_slice(&frag_offset.to_le_bytes());
                out.extend_from_slice(&(file_size as u32).to_le_bytes());
            } else {
                put_header(out, kind::FILE + kind::EXTENDED);
                out.extend_from_slice(&blocks_start.to_le_bytes());
                out.extend_from_slice(&file_size.to_le_bytes());
                out.extend_from_slice(&sparse.to_le_bytes());
                out.extend_from_slice(&link_count.to_le_bytes());
                out.extend_from_slice(&frag_index.to_le_bytes());
                out.extend_from_slice(&frag_offset.to_le_bytes());
                out.extend_from_slice(&header.xattr.to_le_bytes());
            }
            for s in block_sizes {
                out.extend_from_slice(&s.to_le_bytes());
            }
            kind::FILE
        }
        InodeBody::Symlink { link_count, target } => {
            let extended = header.xattr != NO_XATTR;
            put_header(
                out,
                kind::SYMLINK + if extended { kind::EXTENDED } else { 0 },
            );
            out.extend_from_slice(&link_count.to_le_bytes());
            out.extend_from_slice(&(target.len() as u32).to_le_bytes());
            out.extend_from_slice(target);
            if extended {
                out.extend_from_slice(&header.xattr.to_le_bytes());
            }
            kind::SYMLINK
        }
        InodeBody::Device {
            block,
            link_count,
            device,
        } => {
            let t = if block {
                kind::BLOCK_DEV
            } else {
                kind::CHAR_DEV
            };
            let extended = header.xattr != NO_XATTR;
            put_header(out, t + if extended { kind::EXTENDED } else { 0 });
            out.extend_from_slice(&link_count.to_le_bytes());
            out.extend_from_slice(&device.to_le_bytes());
            if extended {
                out.extend_from_slice(&header.xattr.to_le_bytes());
            }
            t
        }
        InodeBody::Ipc { socket, link_count } => {
            let t = if socket { kind::SOCKET } else { kind::FIFO };
            let extended = header.xattr != NO_XATTR;
            put_header(out, t + if extended { kind::EXTENDED } else { 0 });
            out.extend_from_slice(&link_count.to_le_bytes());
            if extended {
                out.extend_from_slice(&header.xattr.to_le_bytes());
            }
            t
        }
    }
}

/// An inode as read back: the common header and what its type adds.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    /// Basic type 1-7 (an extended inode's type minus 7), the type its
    /// directory entries store.
    pub basic_type: u16,
    pub permissions: u16,
    pub uid_idx: u16,
    pub gid_idx: u16,
    pub mtime: u32,
    pub inode_number: u32,
    pub link_count: u32,
    /// Index into the xattr id table, or [`NO_XATTR`] (always for a basic
    /// inode).
    pub xattr: u32,
    pub body: Decoded,
}

/// The type-specific fields of a read inode.
#[derive(Debug, Clone)]
pub(crate) enum Decoded {
    Dir {
        block_index: u32,
        block_offset: u16,
        /// Listing size + 3 (§5.2).
        file_size: u32,
    },
    File {
        blocks_start: u64,
        file_size: u64,
        frag_index: u32,
        frag_offset: u32,
        /// Where the u32 block sizes follow the inode.
        sizes_at: Cursor,
    },
    Symlink {
        target: Vec<u8>,
    },
    Device {
        block: bool,
        device: u32,
    },
    Fifo,
    Socket,
}

/// Reads the inode at `cur` (§5); `what` names it for messages.
pub(crate) fn decode(
    image: &mut Image,
    r: &mut MetadataReader,
    mut cur: Cursor,
    what: &dyn Fn() -> String,
) -> Result<Inode, Fault> {
    let c = &mut cur;
    let inode_type = r.u16(image, c)?;
    let permissions = r.u16(image, c)?;
    let uid_idx = r.u16(image, c)?;
    let gid_idx = r.u16(image, c)?;
    let mtime = r.u32(image, c)?;
    let inode_number = r.u32(image, c)?;
    let (basic_type, extended) = match inode_type {
        1..=7 => (inode_type, false),
        8..=14 => (inode_type - kind::EXTENDED, true),
        t => return Err(Fault::malformed(what(), format!("unknown inode type {t}"))),
    };
    let mut link_count = 1;
    let mut xattr = NO_XATTR;
    let body = match basic_type {
        kind::DIR if !extended => {
            let block_index = r.u32(image, c)?;
            link_count = r.u32(image, c)?;
            let file_size = u32::from(r.u16(image, c)?);
            let block_offset = r.u16(image, c)?;
            let _parent = r.u32(image, c)?;
            Decoded::Dir {
                block_index,
                block_offset,
                file_size,
            }
        }
        kind::DIR => {
            link_count = r.u32(image, c)?;
            let file_size = r.u32(image, c)?;
            let block_index = r.u32(image, c)?;
            let _parent = r.u32(image, c)?;
            // The directory index (§6.2) speeds up lookups by name; a walk
            // reads the whole listing and does not need it.
            let _index_count = r.u16(image, c)?;
            let block_offset = r.u16(image, c)?;
            xattr = r.u32(image, c)?;
            Decoded::Dir {
                block_index,
                block_offset,
                file_size,
            }
        }
        kind::FILE if !extended => {
            let blocks_start = u64::from(r.u32(image, c)?);
            let frag_index = r.u32(image, c)?;
            let frag_offset = r.u32(image, c)?;
            let file_size = u64::from(r.u32(image, c)?);
            Decoded::File {
                blocks_start,
                file_size,
                frag_index,
                frag_offset,
                sizes_at: *c,
            }
        }
        kind::FILE => {
            let blocks_start = r.u64(image, c)?;
            let file_size = r.u64(image, c)?;
            let _sparse = r.u64(image, c)?;
            link_count = r.u32(image, c)?;
            let frag_index = r.u32(image, c)?;
            let frag_offset = r.u32(image, c)?;
            xattr = r.u32(image, c)?;
            Decoded::File {
                blocks_start,
                file_size,
                frag_index,
                frag_offset,
                sizes_at: *c,
            }
        }
        kind::SYMLINK => {
            link_count = r.u32(image, c)?;
            let size = r.u32(image, c)?;
            if size == 0 || size > MAX_SYMLINK_TARGET {
                return Err(Fault::malformed(
                    what(),
                    format!("symlink target of {size} bytes (1 to {MAX_SYMLINK_TARGET} allowed)"),
                ));
            }
            let mut target = vec![0u8; size as usize];
            r.read(image, c, &mut target)?;
            if target.contains(&0) {
                return Err(Fault::malformed(
                    what(),
                    "symlink target contains a NUL byte",
                ));
            }
            if extended {
                xattr = r.u32(image, c)?;
            }
            Decoded::Symlink { target }
        }
        kind::BLOCK_DEV | kind::CHAR_DEV => {
            link_count = r.u32(image, c)?;
            let device = r.u32(image, c)?;
            if extended {
                xattr = r.u32(image, c)?;
            }
            Decoded::Device {
                block: basic_type == kind::BLOCK_DEV,
                device,
            }
        }
        kind::FIFO => {
            link_count = r.u32(image, c)?;
            if extended {
                xattr = r.u32(image, c)?;
            }
            Decoded::Fifo
        }
        // The one type left: a socket.
        _ => {
            debug_assert_eq!(basic_type, kind::SOCKET);
            link_count = r.u32(image, c)?;
            if extended {
                xattr = r.u32(image, c)?;
            }
            Decoded::Socket
        }
    };
    Ok(Inode {
        basic_type,
        permissions,
        uid_idx,
        gid_idx,
        mtime,
        inode_number,
        link_count,
        xattr,
        body,
    })
}

/// Linux `new_decode_dev`, the inverse of [`encode_device`] (§5.5).
pub(crate) fn decode_device(dev: u32) -> (u32, u32) {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_encode_like_linux_new_encode_dev() {
        assert_eq!(encode_device(8, 1), 0x0801);
        // minor 0x12345 -> low 8 bits in place, the rest shifted by 12.
        assert_eq!(encode_device(1, 0x12345), 0x45 | (1 << 8) | (0x12300 << 12));
        for (major, minor) in [(8, 1), (1, 0x12345), (0xfff, 0xfffff), (0, 0)] {
            assert_eq!(decode_device(encode_device(major, minor)), (major, minor));
        }
    }

    #[test]
    fn files_needing_it_get_the_extended_inode() {
        let h = InodeHeader {
            permissions: 0o644,
            uid_idx: 0,
            gid_idx: 0,
            mtime: 1,
            inode_number: 1,
            xattr: NO_XATTR,
        };
        let file = |size: u64, sparse: u64, links: u32| {
            let mut out = Vec::new();
            encode(
                &h,
                &InodeBody::File {
                    blocks_start: 96,
                    file_size: size,
                    sparse,
                    link_count: links,
                    frag_index: NO_FRAGMENT,
                    frag_offset: 0,
                    block_sizes: &[],
                },
                &mut out,
            );
            u16::from_le_bytes([out[0], out[1]])
        };
        assert_eq!(file(10, 0, 1), 2);
        assert_eq!(file(1 << 32, 0, 1), 9);
        assert_eq!(file(10, 4096, 1), 9);
        assert_eq!(file(10, 0, 2), 9);
    }
}
