//! tar: POSIX ustar/pax streams. [`write`](mod@write) turns a plan into a stream
//! byte-identical to GNU tar's `--format=posix`; [`read`] reads any
//! ustar/pax/GNU stream, sparse files included, one header block at a time
//! in bounded memory;
//! both share `header`.

pub(crate) mod header;
pub mod read;
pub mod write;

pub use header::{HeaderFlavor, TarInfo};
pub use read::{MAX_EXTENSION_HEADER, MAX_SPARSE_REGIONS, MAX_TRAILING};
pub use write::{TarError, write_tar, write_tar_with_progress};
