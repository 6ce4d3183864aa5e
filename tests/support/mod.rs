//! The one support kit of the integration tests. Each helper exists once:
//! external tool probe, RNG, hashing, tree snapshots, running the binary,
//! fixture trees, raw tar streams, the independent SquashFS checker, the
//! HTTP test server, the S3 test server and the OCI registry (with the ORAS
//! SDK).

pub mod bin;
pub mod cache;
pub mod exit;
pub mod fixtures;
pub mod hash;
pub mod http_server;
pub mod rawtar;
pub mod registry;
pub mod rng;
pub mod rootfs;
pub mod s3_server;
pub mod sqfs_check;
pub mod tool;
pub mod tree;
