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
//!
//! A marker can be signed ([`Marker::write`] with a [`SigningKey`]):
//! `OUT.verified.minisig` (or `OUT.unverified.minisig`) in minisign's
//! format, published after the marker, so a signature never stands next to
//! a marker it was not made for. With trusted keys, [`gate_status`] counts
//! only a `.verified` marker whose signature one of them made and that
//! still names the artifact's sha256: a marker edited after signing, signed
//! by another key or not signed at all says nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::signature::minisign::{SigningKey, TrustedKeys, signature_path};
use super::signature::{SignatureError, Trust};
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
    /// Signing the marker failed, or a trusted key could not be read.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Where [`Marker::write`] put the marker and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenMarker {
    /// `OUT.verified` or `OUT.unverified`.
    pub path: PathBuf,
    /// `MARKER.minisig`, when a key signed it.
    pub signature: Option<PathBuf>,
}

impl Marker {
    /// Writes the marker next to `artifact` (atomically), signs it with
    /// `key` when given (`MARKER.minisig`, published after the marker), and
    /// removes the opposite marker if present. A signature of an earlier
    /// marker at the same path is removed before the new marker appears,
    /// and the opposite marker's signature before that marker, so no
    /// signature is ever left without the marker it was made for.
    pub fn write(
        &self,
        artifact: &Path,
        key: Option<&SigningKey>,
    ) -> Result<WrittenMarker, MarkerError> {
        let verified = self.status == "verified";
        let path = marker_path(artifact, verified);
        let mut out = AtomicFile::create(&path)?;
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        out.file_mut()
            .write_all(&bytes)
            .map_err(|e| MarkerError::Output(out.error(e)))?;
        remove_if_present(&signature_path(&path))?;
        out.commit()?;
        let signature = key.map(|k| k.sign(&path)).transpose()?;
        let other = marker_path(artifact, !verified);
        remove_if_present(&signature_path(&other))?;
        remove_if_present(&other)?;
        Ok(WrittenMarker { path, signature })
    }
}

fn remove_if_present(path: &Path) -> Result<(), MarkerError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MarkerError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What `gate` concluded about an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateStatus {
    /// `OUT.verified` exists, parses, names the artifact's sha256 and, when
    /// keys are trusted, is signed by one of them (whose key id this holds).
    Verified(Option<String>),
    /// `OUT.unverified` names the artifact's sha256; carries its differences.
    Unverified(Vec<String>),
    /// Keys are trusted and `OUT.verified` is not signed by one of them
    /// (unsigned, signed by another key, or changed after signing); says
    /// why, naming the marker.
    Untrusted(String),
    /// No usable marker; says why (missing, stale, unreadable).
    NoMarker(String),
}

/// Why one marker does not count.
enum Refused {
    Untrusted(String),
    Unusable(String),
}

/// Looks at the markers next to `artifact` and hashes the artifact. With
/// `trusted` keys (minisign public key files), `OUT.verified` counts only
/// when one of them signed it; a key file that cannot be read is an error.
pub fn gate_status(artifact: &Path, trusted: &[PathBuf]) -> Result<GateStatus, MarkerError> {
    // The trust may name `allowed_signers` files too (they are checked,
    // then left out): markers are signed with minisign only, so with SSH
    // signers alone no marker counts as signed.
    let keys = match trusted {
        [] => None,
        paths => {
            let trust = Trust::new(paths, &[], None)?;
            Some(TrustedKeys::load(trust.minisign_keys())?)
        }
    };
    let (sha, _) = hash_file(artifact).map_err(|source| MarkerError::Io {
        path: artifact.to_path_buf(),
        source,
    })?;
    let verified = judge(&marker_path(artifact, true), "verified", sha, keys.as_ref());
    let unverified = judge(&marker_path(artifact, false), "unverified", sha, None);
    Ok(match (verified, unverified) {
        (Ok(Some((_, key_id))), _) => GateStatus::Verified(key_id),
        (_, Ok(Some((m, _)))) => GateStatus::Unverified(m.differences),
        (Err(Refused::Untrusted(why)), _) => GateStatus::Untrusted(why),
        (Err(Refused::Unusable(why)), _) | (_, Err(Refused::Unusable(why))) => {
            GateStatus::NoMarker(why)
        }
        (Ok(None), Ok(None) | Err(Refused::Untrusted(_))) => GateStatus::NoMarker(format!(
            "no {} marker; run `repropack check`",
            marker_path(artifact, true).display()
        )),
    })
}

/// The marker at `path` if it exists, is signed by one of `keys` (when
/// given; with the signer's key id), says `status` and names `sha`. The
/// signature is checked first, over the bytes then parsed, so any edit
/// after signing is refused as such.
fn judge(
    path: &Path,
    status: &str,
    sha: Sha256Digest,
    keys: Option<&TrustedKeys>,
) -> Result<Option<(Marker, Option<String>)>, Refused> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Refused::Unusable(format!("{}: {e}", path.display()))),
    };
    let key_id = match keys {
        Some(keys) => Some(
            keys.verify_bytes(path, &bytes, None)
                .map_err(|e| Refused::Untrusted(e.to_string()))?
                .key_id,
        ),
        None => None,
    };
    let unusable = |why: String| Refused::Unusable(format!("{}: {why}", path.display()));
    let m: Marker = serde_json::from_slice(&bytes)
        .map_err(|e| unusable(format!("not a repropack marker: {e}")))?;
    if m.schema != SCHEMA {
        return Err(unusable(format!("schema {:?} is not {SCHEMA:?}", m.schema)));
    }
    if m.status != status {
        return Err(unusable(format!(
            "status is {:?}, not {status:?}",
            m.status
        )));
    }
    if Sha256Digest::from_hex(&m.sha256).ok() != Some(sha) {
        return Err(unusable(format!(
            "speaks for other bytes (sha256 {}, the artifact's is {sha}); run `repropack check` again",
            m.sha256
        )));
    }
    Ok(Some((m, key_id)))
}
