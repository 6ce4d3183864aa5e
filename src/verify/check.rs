//! `repropack check` as a library call: pack, rebuild from a perturbed copy
//! of the sources, compare, and leave a marker for the use-time gate.
//!
//! The second build sees the same logical tree through everything the
//! contract says must not matter (see [`perturb`](super::perturb)) and runs
//! on another number of threads. If its bytes equal the first build's, the
//! artifact is *verified* and `OUT.verified` is written; otherwise
//! `OUT.unverified`, listing what [`diff`](super::diff) found. The artifact
//! itself is kept and usable either way.

use std::io;
use std::path::PathBuf;

use super::diff::compare;
use super::marker::{Marker, MarkerError, SCHEMA};
use super::perturb::{CopyError, perturbed_copy};
use super::side::read_side;
use crate::pack::{Input, Pack, PackError, PackReport};

/// Something to run between the two builds (see [`Check::between_builds`]).
type Hook = Box<dyn FnMut() -> io::Result<()>>;

/// The check job; see the module docs.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # std::fs::create_dir(dir.path().join("t"))?;
/// # std::fs::write(dir.path().join("t/a.txt"), "a")?;
/// let pack = repropack::Pack::new([dir.path().join("t")]).output(dir.path().join("t.tar"));
/// let outcome = repropack::Check::new(pack).run()?;
/// assert!(outcome.verified);
/// assert!(outcome.marker_path.ends_with("t.tar.verified"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Check {
    pack: Pack,
    between_builds: Option<Hook>,
}

/// What [`Check::run`] found.
#[derive(Debug)]
pub struct CheckOutcome {
    /// The first build (the artifact at the output path).
    pub first: PackReport,
    /// True when the perturbed rebuild gave the same bytes.
    pub verified: bool,
    /// The marker written.
    pub marker: Marker,
    /// Where it was written (`OUT.verified` or `OUT.unverified`).
    pub marker_path: PathBuf,
}

/// Why a check could not run to a verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The first build failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A tar stream cannot be copied and rebuilt.
    #[error("check needs SRC paths to copy and rebuild; --from-tar is not supported")]
    FromTar,
    /// The work directory for the second build could not be made.
    #[error("temp dir: {0}")]
    TempDir(#[source] io::Error),
    /// The sources could not be copied.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// The hook between the builds failed.
    #[error("between builds: {0}")]
    Hook(#[source] io::Error),
    /// The marker could not be written.
    #[error(transparent)]
    Marker(#[from] MarkerError),
}

impl Check {
    /// Checks the build `pack` describes (it must stage SRC paths).
    pub fn new(pack: Pack) -> Check {
        Check {
            pack,
            between_builds: None,
        }
    }

    /// Runs `f` after the first build and before the copy for the second:
    /// a way to model an input that changes from one build to the next (a
    /// generated file), which must come out unverified.
    pub fn between_builds(mut self, f: impl FnMut() -> io::Result<()> + 'static) -> Check {
        self.between_builds = Some(Box::new(f));
        self
    }

    /// Runs the check. `Ok` with `verified == false` is a verdict, not an
    /// error.
    pub fn run(mut self) -> Result<CheckOutcome, CheckError> {
        let Input::Sources(sources) = self.pack.input().clone() else {
            return Err(CheckError::FromTar);
        };
        let first = self.pack.run()?;
        if let Some(hook) = &mut self.between_builds {
            hook().map_err(CheckError::Hook)?;
        }
        let tmp = tempfile::Builder::new()
            .prefix("repropack-check.")
            .tempdir()
            .map_err(CheckError::TempDir)?;
        let copy_root = tmp.path().join("copy");
        let out_dir = tmp.path().join("out");
        for d in [&copy_root, &out_dir] {
            std::fs::create_dir(d).map_err(CheckError::TempDir)?;
        }
        let perturbed = perturbed_copy(&sources, &first.stage, &copy_root)?;
        let jobs = first.options.jobs;
        let jobs2 = if jobs == 1 { 2 } else { 1 };
        let mut perturbations = perturbed.perturbations.clone();
        perturbations.push(format!("--jobs {jobs2} instead of {jobs}"));
        let output = self.pack.output_path().to_path_buf();
        let second_path = out_dir.join(output.file_name().unwrap_or_else(|| "out".as_ref()));
        let second = self
            .pack
            .rebuild(Input::Sources(perturbed.sources), &second_path, jobs2)
            .run();
        let (rebuilt_sha256, differences) = match &second {
            Ok(b) if b.packed.sha256 == first.packed.sha256 => {
                (b.packed.sha256.to_hex(), Vec::new())
            }
            Ok(b) => (b.packed.sha256.to_hex(), differences(&output, &second_path)),
            Err(e) => (String::new(), vec![format!("second build failed: {e}")]),
        };
        let verified = differences.is_empty();
        let marker = Marker {
            schema: SCHEMA.to_string(),
            status: if verified { "verified" } else { "unverified" }.to_string(),
            reference: first.reference.to_string(),
            sha256: first.packed.sha256.to_hex(),
            rebuilt_sha256,
            perturbations,
            differences,
        };
        let marker_path = marker.write(&output)?;
        Ok(CheckOutcome {
            first,
            verified,
            marker,
            marker_path,
        })
    }
}

/// What `diff` reports between the two builds.
fn differences(a: &std::path::Path, b: &std::path::Path) -> Vec<String> {
    // Both are this run's own builds: no limit beyond their own bytes.
    let read = |p: &std::path::Path| {
        read_side(
            p,
            &p.display().to_string(),
            &crate::format::ReadOptions::default(),
        )
    };
    match read(a).and_then(|x| read(b).map(|y| (x, y))) {
        Ok((x, y)) => match compare(&x, &y) {
            Ok(r) => {
                let mut lines = r.lines();
                if lines.is_empty() {
                    lines.push("bytes differ".to_string());
                }
                lines
            }
            Err(e) => vec![format!("bytes differ; comparing failed: {e}")],
        },
        Err(e) => vec![format!("bytes differ; reading failed: {e}")],
    }
}
