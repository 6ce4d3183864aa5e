//! Moving bytes: refs, the content-addressed cache, fetch-and-verify from
//! paths, `file://`, `http(s)://`, `s3://` and `oci://` registries, and
//! push.
//!
//! Nothing here knows about formats, staging or verification of trees: a
//! ref's sha256 is the only judgement made, and it is made on every byte
//! before the bytes are used.
//!
//! - [`uri`]: the one URI classifier.
//! - [`refs`]: artifact refs, `URI#sha256=HEX`.
//! - [`cache`]: the content-addressed cache and its per-hash locks.
//! - [`source`]: the transports (local, HTTP; S3 in `s3`; OCI registries in
//!   [`oci`]), which only move bytes into a cache download.
//! - [`fetch`](mod@fetch): ref → verified local path, trying mirrors in order.
//! - [`push`](mod@push): file → stored under its content address → ref.
//! - [`net`]: timeouts and retries shared by the network transports.

pub mod cache;
pub mod fetch;
pub mod net;
pub mod oci;
pub mod push;
pub mod refs;
mod s3;
pub mod source;
pub mod uri;

pub use cache::{Cache, CacheError};
pub use fetch::{FetchError, FetchOptions, Fetched, default_cache_dir, fetch};
pub use net::NetOptions;
pub use push::{Dest, PushError, PushOptions, Pushed, push};
pub use refs::{ArtifactRef, RefError};
pub use source::{Progress, SourceFailure};
pub use uri::Scheme;
