//! Packing: a [`Plan`] plus [`PackOptions`] → an artifact at a final path,
//! written atomically and hashed while written.
//!
//! This is the only module that knows both the plan and the format writers;
//! it picks the writer and wires it to [`AtomicFile`] and [`HashingWriter`].
//!
//! ```no_run
//! use repropack::pack::{pack_to_path, Format, PackOptions};
//! use repropack::stage::{stage, Source, StageOptions};
//! let plan = stage(&[Source::parse("fixtures/demo")], &StageOptions::default())?;
//! let done = pack_to_path(&plan, &PackOptions::new(Format::TarGz), "demo.tar.gz".as_ref())?;
//! println!("{}", done.sha256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::digest::{HashingWriter, Sha256Digest};
use crate::gzip::ParallelGzip;
use crate::output::{AtomicFile, OutputError};
use crate::squashfs::{Compression, SquashfsError, SquashfsOptions, write_squashfs};
use crate::stage::Plan;
use crate::tar::{TarError, write_tar};

/// Output container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    /// SquashFS 4.0 (see [`crate::squashfs`]).
    Squashfs,
}

impl Format {
    /// The name used on the command line and in JSON.
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

    /// Infers the format from an output file name.
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

/// Options of the container (not of the tree: those are in
/// [`StageOptions`](crate::stage::StageOptions)).
#[derive(Debug, Clone)]
pub struct PackOptions {
    pub format: Format,
    /// Compression level; `None` means the format's default (gzip: 6).
    pub level: Option<u32>,
    /// Worker threads; output never depends on it.
    pub jobs: usize,
    /// SquashFS settings (compressor, block size, dedup); only used by
    /// [`Format::Squashfs`]. A `level` above overrides the compressor's.
    pub squashfs: SquashfsOptions,
}

impl PackOptions {
    /// Defaults for `format`: default level, all CPUs this process may use.
    pub fn new(format: Format) -> PackOptions {
        PackOptions {
            format,
            level: None,
            jobs: default_jobs(),
            squashfs: SquashfsOptions::default(),
        }
    }
}

/// CPUs this process may use (respects affinity masks and cgroup quotas).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Default gzip level.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

/// What was written.
#[derive(Debug, Clone)]
pub struct Packed {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub entries: usize,
    pub format: Format,
    pub level: Option<u32>,
}

/// A failed pack. The final path is untouched either way.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error(transparent)]
    Squashfs(#[from] SquashfsError),
    #[error("invalid option: {0}")]
    Option(String),
}

/// Writes `plan` to `path` in the chosen format.
pub fn pack_to_path(plan: &Plan, opts: &PackOptions, path: &Path) -> Result<Packed, PackError> {
    if opts.format == Format::Squashfs {
        return pack_squashfs(plan, opts, path);
    }
    if opts.squashfs != SquashfsOptions::default() {
        return Err(PackError::Option(format!(
            "compressor, block size and dedup settings only apply to squashfs, not {}",
            opts.format.name()
        )));
    }
    let level = match opts.format {
        Format::Tar => {
            if opts.level.is_some() {
                return Err(PackError::Option(
                    "--level has no effect on plain tar".into(),
                ));
            }
            None
        }
        Format::TarGz => Some(opts.level.unwrap_or(DEFAULT_GZIP_LEVEL)),
        Format::Squashfs => None,
    };
    if let Some(l) = level
        && l > 9
    {
        return Err(PackError::Option(format!(
            "gzip level {l} is out of range 0-9"
        )));
    }
    let mut out = AtomicFile::create(path)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, out.file_mut()));
    let result: Result<_, PackError> = (|| {
        let hashing = match opts.format {
            Format::Tar => write_tar(plan, hashing)?,
            // pack_to_path hands squashfs to pack_squashfs before this.
            Format::Squashfs => {
                return Err(PackError::Option("squashfs needs pack_squashfs".into()));
            }
            Format::TarGz => {
                let gz = ParallelGzip::new(hashing, level.unwrap_or(DEFAULT_GZIP_LEVEL), opts.jobs)
                    .map_err(|e| gzip_error(path, e))?;
                write_tar(plan, gz)?
                    .finish()
                    .map_err(|e| gzip_error(path, e))?
            }
        };
        let (mut buf, sha256, size) = hashing.finish();
        buf.flush().map_err(|e| gzip_error(path, e))?;
        Ok((sha256, size))
    })();
    let (sha256, size) = result?;
    out.commit()?;
    Ok(Packed {
        sha256,
        size,
        entries: plan.entries().len(),
        format: opts.format,
        level,
    })
}

/// SquashFS needs a seekable file (its superblock is written last), so it
/// writes straight into the temp file and hashes it afterwards.
fn pack_squashfs(plan: &Plan, opts: &PackOptions, path: &Path) -> Result<Packed, PackError> {
    let mut sq = opts.squashfs.clone();
    if let Some(level) = opts.level {
        sq.compression =
            Compression::new(sq.compression.algorithm(), Some(level)).map_err(PackError::Option)?;
    }
    let mut out = AtomicFile::create(path)?;
    let (sha256, size) = write_squashfs(plan, &sq, opts.jobs, out.file_mut())?;
    out.commit()?;
    Ok(Packed {
        sha256,
        size,
        entries: plan.entries().len(),
        format: Format::Squashfs,
        level: sq.compression.level(),
    })
}

fn gzip_error(path: &Path, source: io::Error) -> PackError {
    PackError::Output(OutputError {
        path: path.to_path_buf(),
        source,
    })
}
