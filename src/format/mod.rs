//! Bytes on disk: each container format's reader and writer side by side,
//! sharing the modules that know its on-disk structures.
//!
//! Writers consume a [`Plan`](crate::plan::Plan) and never look at the
//! filesystem except through [`Content::reader`](crate::plan::Content::reader);
//! readers take bytes from elsewhere (untrusted) and yield
//! [`ArchiveEntry`]s through [`open`] and [`Archive::for_each_entry`], in
//! bounded memory. `detect` decides the format from the first bytes.
//!
//! | format | structures | writer | reader |
//! |---|---|---|---|
//! | tar | `tar::header` | [`tar::write`] | [`tar::read`] |
//! | gzip | `gzip::header` | [`gzip::write`] | (through `flate2`, in [`read`]) |
//! | SquashFS 4.0 | [`squashfs`] (one module per table) | [`squashfs::write`] | [`squashfs::read`] |

mod detect;
pub mod gzip;
pub mod read;
pub mod squashfs;
pub mod tar;

use std::path::Path;

pub use read::{
    Archive, ArchiveEntry, ArchiveError, ContainerInfo, DEFAULT_MAX_SIZE, PathProblem, ReadOptions,
    normalize_path, open, open_with,
};

/// A container format: what `pack` writes and what the readers detect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A POSIX tar stream (ustar, with pax headers where ustar cannot hold
    /// an entry). Detected by the ustar magic at offset 257, or a first
    /// header with a valid checksum.
    Tar,
    /// gzip (magic `1f 8b`) around a tar stream.
    TarGz,
    /// SquashFS 4.0, little endian (magic `hsqs` at offset 0).
    Squashfs,
}

impl Format {
    /// `tar`, `tar.gz` or `squashfs`: the name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::Squashfs => "squashfs",
        }
    }

    /// Parses a `--format` value.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "tar" => Some(Format::Tar),
            "tar.gz" | "tgz" => Some(Format::TarGz),
            "squashfs" | "sqfs" => Some(Format::Squashfs),
            _ => None,
        }
    }

    /// Infers the format from an output file name (`.tar`, `.tar.gz`/`.tgz`,
    /// `.squashfs`/`.sqfs`/`.sfs`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else if name.ends_with(".tar") {
            Some(Format::Tar)
        } else if name.ends_with(".squashfs") || name.ends_with(".sqfs") || name.ends_with(".sfs") {
            Some(Format::Squashfs)
        } else {
            None
        }
    }
}
