//! Reproducibility markers written by `repropack check` and read by
//! `repropack gate`.
//!
//! After two builds of the same sources under perturbation, `check` writes
//! next to the artifact `OUT` either `OUT.verified` (both builds gave the
//! same bytes) or `OUT.unverified` (they did not, with the differences), and
//! removes the other marker. A marker is a small JSON object
//! (`"schema": "repropack.check/1"`) naming the artifact's sha256; it only
//! speaks for an artifact whose current bytes still have that sha256, so a
//! rebuilt or modified artifact is never "verified" by a stale marker.
//! Markers are written atomically and hold no wall-clock time.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Sha256Digest, hash_file};
use crate::output::{AtomicFile, OutputError};

/// Value of the `schema` key.
pub const SCHEMA: &str = "repropack.check/1";

/// The content of a marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `verified` or `unverified`.
    pub status: String,
    /// Ref of the artifact as `check` printed it.
    #[serde(rename = "ref")]
    pub reference: String,
    /// sha256 of the artifact the marker speaks for (64 lowercase hex).
    pub sha256: String,
    /// sha256 of the second, perturbed build.
    pub rebuilt_sha256: String,
    /// What differed between the two builds.
    pub perturbations: Vec<String>,
    /// For `unverified`: the differences `diff` found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
}

/// `OUT.verified` for `verified = true`, else `OUT.unverified`.
pub fn marker_path(artifact: &Path, verified: bool) -> PathBuf {
    let mut name = artifact.as_os_str().to_os_string();
    name.push(if verified { ".verified" } else { ".unverified" });
    PathBuf::from(name)
}

/// A marker that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    /// Writing the marker failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Hashing the artifact or removing the opposite marker failed.
    #[error("{path}: {source}")]
    Io {
        /// The artifact or marker file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Marker {
    /// Writes the marker next to `artifact` (atomically) and removes the
    /// opposite one if present.
    pub fn write(&self, artifact: &Path) -> Result<PathBuf, MarkerError> {
        let verified = self.status == "verified";
        let path = marker_path(artifact, verified);
        let mut out = AtomicFile::create(&path)?;
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        out.file_mut()
            .write_all(&bytes)
            .map_err(|e| MarkerError::Output(out.error(e)))?;
        out.commit()?;
        let other = marker_path(artifact, !verified);
        match std::fs::remove_file(&other) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(MarkerError::Io {
                    path: other,
                    source,
                });
            }
        }
        Ok(path)
    }
}

/// What `gate` concluded about an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateStatus {
    /// `OUT.verified` exists, parses, and names the artifact's sha256.
    Verified,
    /// `OUT.unverified` names the artifact's sha256; carries its differences.
    Unverified(Vec<String>),
    /// No usable marker; says why (missing, stale, unreadable).
    NoMarker(String),
}

/// Looks at the markers next to `artifact` and hashes the artifact.
pub fn gate_status(artifact: &Path) -> Result<GateStatus, MarkerError> {
    let (sha, _) = hash_file(artifact).map_err(|source| MarkerError::Io {
        path: artifact.to_path_buf(),
        source,
    })?;
    let verified = read_marker(&marker_path(artifact, true));
    let unverified = read_marker(&marker_path(artifact, false));
    let names = |m: &Marker| Sha256Digest::from_hex(&m.sha256).ok() == Some(sha);
    match (verified, unverified) {
        (Ok(Some(m)), _) if m.status == "verified" && names(&m) => Ok(GateStatus::Verified),
        (_, Ok(Some(m))) if m.status == "unverified" && names(&m) => {
            Ok(GateStatus::Unverified(m.differences))
        }
        (Ok(Some(_)), _) | (_, Ok(Some(_))) => Ok(GateStatus::NoMarker(format!(
            "the marker next to {} is for other bytes (artifact sha256 is {sha}); run `repropack check` again",
            artifact.display()
        ))),
        (Err(e), _) | (_, Err(e)) => Ok(GateStatus::NoMarker(e)),
        (Ok(None), Ok(None)) => Ok(GateStatus::NoMarker(format!(
            "no {} marker; run `repropack check`",
            marker_path(artifact, true).display()
        ))),
    }
}

fn read_marker(path: &Path) -> Result<Option<Marker>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let m: Marker = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a repropack marker: {e}", path.display()))?;
    if m.schema != SCHEMA {
        return Err(format!(
            "{}: schema {:?} is not {SCHEMA:?}",
            path.display(),
            m.schema
        ));
    }
    Ok(Some(m))
}
