//! repropack: deterministic SquashFS/tar packer with content-addressed refs.
//!
//! The pipeline runs one way (see ARCHITECTURE.md):
//! sources → [`stage`] (a [`stage::Plan`]) → a format writer ([`tar`],
//! [`gzip`]) → [`digest`]/[`refs`] → output.
//!
//! ```no_run
//! use repropack::{pack, stage};
//! let plan = stage::stage(&[stage::Source::parse("fixtures/demo")], &stage::StageOptions::default())?;
//! let packed = pack::pack_to_path(&plan, &pack::PackOptions::new(pack::Format::Tar), "demo.tar".as_ref())?;
//! println!("demo.tar#sha256={}", packed.sha256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod archive;
pub mod artifact;
pub mod digest;
pub mod exit;
pub mod extract;
pub mod fetch;
pub mod gzip;
pub mod manifest;
pub mod marker;
pub mod output;
pub mod pack;
pub mod perturb;
pub mod push;
pub mod refs;
pub mod revision;
pub mod squashfs;
pub mod stage;
pub mod tar;
pub mod tree;
pub mod treediff;

/// Version of the byte format repropack produces. Any change that moves a
/// golden fixture hash bumps it (CONTRACT.md §5).
pub const FORMAT_VERSION: u32 = 3;
