//! Turning a command-line input (a directory or an artifact) into a
//! [`Side`] for `digest`, `diff`, `verify` and `check`.

use std::ffi::OsString;
use std::path::Path;

use repropack::artifact::{ArtifactError, read_side};
use repropack::exit;
use repropack::pack::default_jobs;
use repropack::stage::{Source, stage};
use repropack::tree::Tree;
use repropack::treediff::{Layout, Side};

use super::Failure;
use super::flags::StageFlags;

/// Reads an artifact file.
pub fn artifact_side(path: &Path) -> Result<Side, Failure> {
    read_side(path, &path.display().to_string()).map_err(artifact_failure)
}

/// An artifact that cannot be read (missing, unreadable, malformed, not an
/// archive) is bad input: [`exit::INPUT`].
pub fn artifact_failure(e: ArtifactError) -> Failure {
    Failure::new(exit::INPUT, e)
}

/// Stages `sources` with `flags` (exactly as `pack` would) and hashes every
/// file.
pub fn staged_side(
    sources: &[OsString],
    flags: &StageFlags,
    jobs: Option<usize>,
) -> Result<Side, Failure> {
    let opts = flags.options()?;
    let parsed: Vec<Source> = sources.iter().map(Source::parse).collect();
    let plan = stage(&parsed, &opts)?;
    for w in plan.warnings() {
        eprintln!("repropack: warning: {w}");
    }
    let tree = Tree::from_plan(&plan, jobs.unwrap_or_else(default_jobs))
        .map_err(|e| Failure::new(exit::INPUT, e))?;
    let label = sources
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Side {
        label,
        tree,
        facts: vec![("format".to_string(), "directory".to_string())],
        file: None,
        sha256: None,
        layout: Layout::Unknown,
    })
}

/// A directory (or `SRC:DEST`, or several sources) is staged; a single
/// regular file is read as an artifact.
pub fn any_side(
    inputs: &[OsString],
    flags: &StageFlags,
    jobs: Option<usize>,
) -> Result<Side, Failure> {
    if let [one] = inputs {
        let p = Path::new(one);
        if p.is_file() {
            return artifact_side(p);
        }
    }
    staged_side(inputs, flags, jobs)
}
