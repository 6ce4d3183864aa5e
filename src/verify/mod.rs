//! Judging artifacts: tree digests, manifests, comparisons, the perturbed
//! rebuild of `check`, `.verified` markers, source revisions and
//! provenance.
//!
//! - [`tree_digest`]: the logical tree of a plan or an artifact, and its
//!   digest.
//! - [`side`]: an artifact or a directory as one side of a comparison.
//! - [`diff`]: what differs between two sides.
//! - [`manifest`]: the JSON record of a pack, and `verify` against it.
//! - [`perturb`]: perturbed copies of sources.
//! - [`check`]: pack, rebuild under perturbation, compare, mark
//!   ([`Check`](check::Check)).
//! - [`marker`]: `OUT.verified` / `OUT.unverified` and the use-time gate.
//! - [`revision`]: the source revision a manifest records.
//! - [`provenance`]: the in-toto / SLSA provenance statement of a pack.
//! - [`signature`]: minisign and OpenSSH signatures and their checks.

pub mod check;
pub mod diff;
pub mod manifest;
pub mod marker;
pub mod perturb;
pub mod provenance;
pub mod revision;
pub mod side;
pub mod signature;
pub mod tree_digest;
