//! repropack: deterministic SquashFS/tar packer with content-addressed refs.
//!
//! The same tree packed with the same options gives the same bytes,
//! wherever and whenever it is packed and whatever the thread count; every
//! pack yields a ref `URI#sha256=HEX` that executors fetch, verify and
//! extract.
//!
//! The pipeline runs one way:
//! sources → [`stage`] (a [`Plan`]) → a writer in [`format`](mod@format) → [`output`]
//! (atomic) → a [`remote::ArtifactRef`]. [`Pack`] runs all of it, as
//! `repropack pack` does. The other way, [`format::open`] reads an artifact,
//! [`extract`] applies it safely to a directory, [`remote`] moves and
//! verifies bytes, and [`verify`] judges trees ([`Check`], [`Diff`]).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("src"))?;
//! std::fs::write(dir.path().join("src/hello.txt"), "hello\n")?;
//!
//! let out = dir.path().join("demo.tar");
//! let packed = repropack::Pack::new([dir.path().join("src")]).output(&out).run()?;
//! // The bytes depend only on the tree and the options, so the hash is fixed.
//! assert_eq!(packed.reference.sha256(), Some(repropack::digest::hash_file(&out)?.0));
//! println!("{}", packed.reference);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod digest;
pub mod extract;
pub mod format;
pub mod output;
pub mod pack;
pub mod plan;
pub mod progress;
pub mod remote;
pub mod stage;
pub mod verify;

pub use format::Format;
pub use pack::{Pack, PackError, PackReport};
pub use plan::{Entry, EntryKind, Plan};
pub use verify::check::{Check, CheckOutcome};
pub use verify::diff::Diff;

/// Version of the byte format repropack produces. Any change that moves a
/// golden fixture hash bumps it (docs/CONTRACT.md §5).
pub const FORMAT_VERSION: u32 = 5;
