//! SquashFS 4.0 writer: turns a [`Plan`](crate::plan::Plan) into an image
//! whose bytes are a pure function of the plan and the [`SquashfsOptions`].
//!
//! Layout (SquashFS 4.0 description, squashfs-tools-ng `doc/format.adoc`,
//! §2 "Overview"), in file order:
//!
//! | part | module | spec |
//! |---|---|---|
//! | superblock (96 bytes) | `superblock` | §3 |
//! | compressor options (optional) | `compress` | §3.1 |
//! | data and fragment blocks | `data` | §4 |
//! | inode table | `inode`, `fs_tree` | §5 |
//! | directory table | `dir`, `fs_tree` | §6 |
//! | fragment table | `table` | §7 |
//! | export table | `table` | §8 |
//! | id table | `table` | §9 |
//! | xattr table (only when entries have xattrs) | `xattr` | §10 |
//!
//! Without xattrs no xattr table is written (its superblock field is all
//! ones and the no-xattrs flag is set). The image
//! is padded with zeros to a multiple of 4 KiB, as the kernel needs for
//! loop devices; the superblock's `bytes_used` excludes the padding.
//!
//! How it runs: data blocks are compressed in parallel and placed by one
//! ordered writer (see `data`); the metadata tables are then built on one
//! thread; finally the superblock, whose fields are known only now, is
//! written at offset 0. SHA-256 runs over bytes in file order, and the
//! first bytes are the last ones known, so the digest is computed by
//! re-reading the finished image (from the page cache; with SHA-NI this
//! costs a few percent of the packing time).
//!
//! ```no_run
//! use repropack::format::squashfs::{write_squashfs, SquashfsOptions};
//! use repropack::stage::{stage, Source, StageOptions};
//! let plan = stage(&[Source::parse("fixtures/demo")], &StageOptions::default())?;
//! let mut file = std::fs::File::create("demo.squashfs")?;
//! let (sha256, size) = write_squashfs(&plan, &SquashfsOptions::default(), 2, &mut file)?;
//! println!("{sha256} {size}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod compress;
pub(crate) mod data;
mod dedup;
pub(crate) mod dir;
pub(crate) mod fs_tree;
pub(crate) mod image;
pub(crate) mod inode;
pub(crate) mod metadata;
pub mod read;
pub(crate) mod superblock;
pub(crate) mod table;
pub mod write;
pub(crate) mod xattr;

pub use compress::{Algorithm, CompressError, Compression};
pub use read::SquashfsInfo;
pub use write::{
    DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, SquashfsError, SquashfsOptions,
    parse_block_size, write_squashfs, write_squashfs_with_progress,
};
