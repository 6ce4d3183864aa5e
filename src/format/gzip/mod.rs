//! gzip (RFC 1952): [`write::ParallelGzip`] compresses a tar stream on all
//! CPUs into bytes that never depend on the thread count; `header` holds
//! the member-header fields the readers report.

pub(crate) mod header;
pub mod write;

pub use header::GzipInfo;
pub use write::{CHUNK, ParallelGzip};
