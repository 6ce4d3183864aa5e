//! `repropack check` as a library call: pack, rebuild from a perturbed copy
//! of the sources, compare, and leave a marker for the use-time gate.
//!
//! The second build sees the same logical tree through everything the
//! contract says must not matter (see [`perturb`](super::perturb)) and runs
//! on another number of threads. If its bytes equal the first build's, the
//! artifact is *verified* and `OUT.verified` is written; otherwise
//! `OUT.unverified`, listing what [`diff`](super::diff) found. The artifact
//! itself is kept and usable either way.
//!
//! [`Check::against`] is "build now, verify later": the artifact was packed
//! earlier, maybe on another machine, and takes the place of the first
//! build; only the perturbed rebuild runs here, and the verdict is written
//! as that artifact's marker. [`Check::sign`] signs the marker written
//! (see [`marker`](super::marker)).

use std::io;
use std::path::{Path, PathBuf};

use super::diff::compare;
use super::marker::{Marker, MarkerError, SCHEMA};
use super::perturb::{CopyError, perturbed_copy};
use super::side::read_side;
use super::signature::minisign::SigningKey;
use crate::digest::hash_file;
use crate::format::{DEFAULT_MAX_SIZE, ReadOptions};
use crate::pack::{Input, Pack, PackError, PackReport};
use crate::remote::ArtifactRef;

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
    against: bool,
    key: Option<SigningKey>,
    between_builds: Option<Hook>,
}

/// What [`Check::run`] found.
#[derive(Debug)]
pub struct CheckOutcome {
    /// The first build (the artifact at the output path); `None` with
    /// [`Check::against`], where the artifact was built before.
    pub first: Option<PackReport>,
    /// The artifact's ref: the first build's, or that of the artifact
    /// checked against (named as the first build's would be).
    pub reference: ArtifactRef,
    /// What staging skipped with a warning (sockets), in the first build
    /// or, with [`Check::against`], in the rebuild.
    pub warnings: Vec<String>,
    /// True when the perturbed rebuild gave the same bytes.
    pub verified: bool,
    /// The marker written.
    pub marker: Marker,
    /// Where it was written (`OUT.verified` or `OUT.unverified`).
    pub marker_path: PathBuf,
    /// The marker's signature (`MARKER.minisig`), with [`Check::sign`].
    pub signature: Option<PathBuf>,
}

/// Why a check could not run to a verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The first build failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// The artifact checked against could not be read.
    #[error("{}: {source}", path.display())]
    Artifact {
        /// The artifact.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
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
            against: false,
            key: None,
            between_builds: None,
        }
    }

    /// Checks `artifact`, packed earlier (maybe elsewhere), instead of
    /// packing one: the sources are rebuilt once, perturbed exactly as the
    /// second build of [`run`](Check::run) is, with the pack's options, and
    /// compared with `artifact` byte for byte; the marker is `artifact`'s.
    /// The pack's output becomes `artifact` (its name gives the format
    /// unless the pack sets one), and its `jobs` stands for the thread
    /// count `artifact` was built with: the rebuild uses another. Nothing
    /// is written but the marker.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::create_dir(dir.path().join("t"))?;
    /// # std::fs::write(dir.path().join("t/a.txt"), "a")?;
    /// let art = dir.path().join("t.tar");
    /// repropack::Pack::new([dir.path().join("t")]).output(&art).run()?;
    /// let later = repropack::Check::new(repropack::Pack::new([dir.path().join("t")]));
    /// let outcome = later.against(&art).run()?;
    /// assert!(outcome.verified && outcome.first.is_none());
    /// assert!(outcome.marker_path.ends_with("t.tar.verified"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn against(self, artifact: impl Into<PathBuf>) -> Check {
        Check {
            pack: self.pack.output(artifact),
            against: true,
            ..self
        }
    }

    /// Signs the marker with `key` (`MARKER.minisig`, written after the
    /// marker). Load the key before the check, so that a bad key or
    /// password fails before anything is built.
    pub fn sign(mut self, key: SigningKey) -> Check {
        self.key = Some(key);
        self
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
        let output = self.pack.output_path().to_path_buf();
        let (first, reference, sha256, stage, jobs) = if self.against {
            let (sha256, _) = hash_file(&output).map_err(|source| CheckError::Artifact {
                path: output.clone(),
                source,
            })?;
            let reference = ArtifactRef::new(self.pack.output_uri()?, sha256);
            let (stage, options) = self.pack.resolve()?;
            (None, reference, sha256, stage, options.jobs)
        } else {
            let first = self.pack.run()?;
            let (reference, stage) = (first.reference.clone(), first.stage.clone());
            let (sha256, jobs) = (first.packed.sha256, first.options.jobs);
            (Some(first), reference, sha256, stage, jobs)
        };
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
        let perturbed = perturbed_copy(&sources, &stage, &copy_root)?;
        let jobs2 = if jobs == 1 { 2 } else { 1 };
        let mut perturbations = perturbed.perturbations.clone();
        perturbations.push(format!("--jobs {jobs2} instead of {jobs}"));
        let second_path = out_dir.join(output.file_name().unwrap_or_else(|| "out".as_ref()));
        let second = self
            .pack
            .rebuild(Input::Sources(perturbed.sources), &second_path, jobs2)
            .run();
        let (rebuilt_sha256, differences) = match &second {
            Ok(b) if b.packed.sha256 == sha256 => (b.packed.sha256.to_hex(), Vec::new()),
            Ok(b) => (
                b.packed.sha256.to_hex(),
                differences(&output, &second_path, self.against),
            ),
            Err(e) => (String::new(), vec![format!("second build failed: {e}")]),
        };
        let warnings = match (&first, &second) {
            (Some(f), _) => f.warnings.clone(),
            (None, Ok(b)) => b.warnings.clone(),
            (None, Err(_)) => Vec::new(),
        };
        let verified = differences.is_empty();
        let marker = Marker {
            schema: SCHEMA.to_string(),
            status: if verified { "verified" } else { "unverified" }.to_string(),
            reference: reference.to_string(),
            sha256: sha256.to_hex(),
            rebuilt_sha256,
            perturbations,
            differences,
        };
        let written = marker.write(&output, self.key.as_ref())?;
        Ok(CheckOutcome {
            first,
            reference,
            warnings,
            verified,
            marker,
            marker_path: written.path,
            signature: written.signature,
        })
    }
}

/// What `diff` reports between the two builds, or between the artifact
/// checked against and the rebuild.
fn differences(a: &Path, b: &Path, against: bool) -> Vec<String> {
    // Two builds of this run: no limit beyond their own bytes. An artifact
    // from elsewhere gets `diff`'s default limit on the content it declares.
    let limits = if against {
        ReadOptions {
            max_size: DEFAULT_MAX_SIZE,
            ..ReadOptions::default()
        }
    } else {
        ReadOptions::default()
    };
    let read = |p: &Path| read_side(p, &p.display().to_string(), &limits);
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
