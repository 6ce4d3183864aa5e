//! Turning a command-line input (a directory or an artifact) into a
//! [`Side`] for `digest`, `diff` and `verify`.

use std::ffi::OsString;
use std::path::Path;

use repropack::pack::default_jobs;
use repropack::verify::side::{self, Side, SideError, read_side};

use super::Failure;
use super::flags::{ReadFlags, StageFlags};
use crate::cli::exit;

/// Reads an artifact file; one that cannot be read (missing, unreadable,
/// malformed, not an archive) is bad input.
pub fn artifact_side(path: &Path, read: &ReadFlags) -> Result<Side, Failure> {
    read_side(path, &path.display().to_string(), &read.options()?)
        .map_err(|e| Failure::new(exit::INPUT, e))
}

/// A single regular file is read as an artifact; anything else is staged
/// with `flags` (exactly as `pack` would) and every file hashed.
pub fn any_side(
    inputs: &[OsString],
    flags: &StageFlags,
    read: &ReadFlags,
    jobs: Option<usize>,
) -> Result<Side, Failure> {
    let mut opts = flags.options()?;
    opts.jobs = jobs.unwrap_or_else(default_jobs);
    let (side, warnings) = side::any_side(inputs, &opts, &read.options()?).map_err(side_failure)?;
    super::warn(warnings);
    Ok(side)
}

/// The exit code of a side that could not be made.
pub fn side_failure(e: SideError) -> Failure {
    match e {
        SideError::Stage(s) => s.into(),
        other => Failure::new(exit::INPUT, other),
    }
}
