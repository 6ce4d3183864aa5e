//! SLSA provenance of a pack: an in-toto Statement v1 whose predicate is
//! SLSA Provenance v1 (`repropack pack --provenance FILE`).
//!
//! The statement names the artifact by its file name and its sha256 and
//! sha512 (both computed in one read of the file), and records how it was
//! built:
//!
//! - `buildDefinition.buildType` is [`BUILD_TYPE`]. Its `v1` is the version
//!   of this layout of the parameters, not of the artifact's bytes: those
//!   follow [`FORMAT_VERSION`](crate::FORMAT_VERSION), recorded in
//!   `internalParameters.format_version` and `runDetails.builder.version`.
//! - `externalParameters` are the pack's inputs as given: the sources (or
//!   the `--from-tar` stream), the pack and xattr files, the container
//!   options, the staging options exactly as a manifest records them
//!   ([`ManifestOptions`]), and a `--source-revision` when one was given.
//! - `internalParameters` is the [`Tool`] (name, version, format version).
//! - `resolvedDependencies` holds the source's git commit (and the
//!   repository's `origin` URL, without any credentials in it) when one is
//!   known; see [`revision`](crate::verify::revision).
//! - `runDetails.builder` is [`BUILDER_ID`] with the tool's version.
//!
//! Architecture Invariant: the statement carries no wall-clock time (SLSA's
//! optional `runDetails.metadata` with `startedOn`/`finishedOn` is
//! deliberately absent), no host name and no absolute path that was not
//! given, so two packs of the same tree with the same options give the
//! same bytes. Keys are written in struct field order.
//!
//! ```
//! use repropack::verify::provenance::{ArtifactDigests, Statement, BUILD_TYPE};
//! use repropack::verify::manifest::ArtifactInfo;
//! use repropack::stage::{Source, StageOptions};
//! # let dir = tempfile::tempdir()?;
//! # let art = dir.path().join("demo.tar");
//! # std::fs::write(&art, b"bytes")?;
//! let digests = ArtifactDigests::of_file(&art)?;
//! let info = ArtifactInfo {
//!     reference: String::new(),
//!     sha256: digests.sha256.clone(),
//!     size: 5,
//!     format: "tar".into(),
//!     compression: None,
//!     level: None,
//!     block_size: None,
//!     urls: Vec::new(),
//! };
//! let sources = [Source::parse("tree")];
//! let statement = Statement::for_pack(
//!     "demo.tar",
//!     digests,
//!     &info,
//!     &StageOptions::default(),
//!     &sources,
//!     None,
//!     None,
//! );
//! let json: serde_json::Value = serde_json::from_slice(&statement.to_json())?;
//! assert_eq!(json["predicate"]["buildDefinition"]["buildType"], BUILD_TYPE);
//! assert_eq!(json["subject"][0]["name"], "demo.tar");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};

use crate::digest::{for_each_chunk, to_hex};
use crate::output::{AtomicFile, OutputError};
use crate::plan::InputFiles;
use crate::stage::{Source, StageOptions};
use crate::verify::manifest::{ArtifactInfo, Bytes, ManifestOptions, Tool};
use crate::verify::revision::{GitSource, SourceRevision};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA Provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `buildDefinition.buildType` of a repropack pack (this layout of the
/// parameters, version 1).
pub const BUILD_TYPE: &str = "https://repropack.dev/buildtypes/pack/v1";
/// `runDetails.builder.id`: repropack itself, run by whoever packs.
pub const BUILDER_ID: &str = "https://repropack.dev/builder";

/// An in-toto Statement v1 about one artifact. Field order is the key order
/// in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The artifact (exactly one).
    pub subject: Vec<Subject>,
    /// Always [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// How the artifact was built.
    pub predicate: Provenance,
}

/// The artifact a statement is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// The artifact's file name (no directory).
    pub name: String,
    /// Its digests.
    pub digest: ArtifactDigests,
}

/// The sha256 and sha512 of an artifact, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactDigests {
    /// sha256 (64 hex digits).
    pub sha256: String,
    /// sha512 (128 hex digits).
    pub sha512: String,
}

/// The SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built from what.
    pub build_definition: BuildDefinition,
    /// Who built it.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// Always [`BUILD_TYPE`].
    pub build_type: String,
    /// The pack's inputs as given.
    pub external_parameters: ExternalParameters,
    /// The tool that packed.
    pub internal_parameters: Tool,
    /// The source revision, when known; absent when none is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// The pack's inputs, as the user gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    /// `SRC[:DEST]` sources in command-line order (none with `--from-tar`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceParameter>,
    /// The `--from-tar` stream (`-` for standard input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_tar: Option<Bytes>,
    /// The `--pack-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack_file: Option<Bytes>,
    /// The `--xattr-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xattr_file: Option<Bytes>,
    /// `tar`, `tar.gz` or `squashfs`.
    pub format: String,
    /// Compressor name; absent for plain tar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Compression level; absent when the format has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// SquashFS data block size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// The staging options, as a manifest records them (owners, xattrs,
    /// hard links, and the pack and xattr files' digests included).
    pub options: ManifestOptions,
    /// `--source-revision`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
}

/// One `SRC[:DEST]` source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceParameter {
    /// The path as given (relative stays relative).
    pub path: Bytes,
    /// The archive path it maps to; absent for the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<Bytes>,
}

/// An SLSA ResourceDescriptor: here, the source's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDescriptor {
    /// `git+URL` of the repository, when its `origin` is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `{"gitCommit": HEX}`.
    pub digest: BTreeMap<String, String>,
    /// For a commit git found: `{"dirty": bool}`, whether the source had
    /// uncommitted changes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, bool>,
}

/// `runDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunDetails {
    /// The builder.
    pub builder: Builder,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Builder {
    /// Always [`BUILDER_ID`].
    pub id: String,
    /// `repropack` → crate version, `format_version` → its
    /// [`FORMAT_VERSION`](crate::FORMAT_VERSION).
    pub version: BTreeMap<String, String>,
}

/// A provenance statement that could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// The artifact could not be read back to hash it.
    #[error("provenance: reading {path}: {source}")]
    Read {
        /// The artifact.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The artifact's bytes are not those just written.
    #[error(
        "provenance: {path} changed after it was written (sha256 {found}, expected {expected})"
    )]
    Changed {
        /// The artifact.
        path: PathBuf,
        /// The sha256 the writer computed.
        expected: String,
        /// The sha256 read back.
        found: String,
    },
    /// The statement could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl ArtifactDigests {
    /// Reads `path` once, feeding both hashes.
    pub fn of_file(path: &Path) -> io::Result<ArtifactDigests> {
        let file = std::fs::File::open(path)?;
        let (mut sha256, mut sha512) = (Sha256::new(), Sha512::new());
        for_each_chunk(file, &mut vec![0u8; 1 << 20], |chunk| {
            sha256.update(chunk);
            sha512.update(chunk);
            Ok(())
        })?;
        Ok(ArtifactDigests {
            sha256: to_hex(&sha256.finalize()),
            sha512: to_hex(&sha512.finalize()),
        })
    }

    /// [`of_file`](ArtifactDigests::of_file), checked against the sha256
    /// the writer computed while writing `path`.
    pub fn of_written(path: &Path, sha256: &str) -> Result<ArtifactDigests, ProvenanceError> {
        let digests = ArtifactDigests::of_file(path).map_err(|source| ProvenanceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if digests.sha256 != sha256 {
            return Err(ProvenanceError::Changed {
                path: path.to_path_buf(),
                expected: sha256.to_string(),
                found: digests.sha256,
            });
        }
        Ok(digests)
    }
}

fn path_bytes(path: &Path) -> Bytes {
    Bytes(path.as_os_str().as_bytes().to_vec())
}

impl Statement {
    /// The statement about the artifact `name` with `digests`, packed as
    /// `artifact` records (its ref, sha256 and size are not repeated: the
    /// subject names the bytes) from `sources` or the `from_tar` stream with
    /// `stage`. `flag` is a `--source-revision`; `git` what git said of the
    /// sources. The pack and xattr files' digests are recorded by
    /// [`with_input_files`](Statement::with_input_files).
    pub fn for_pack(
        name: &str,
        digests: ArtifactDigests,
        artifact: &ArtifactInfo,
        stage: &StageOptions,
        sources: &[Source],
        from_tar: Option<&Path>,
        revision: Option<Revision<'_>>,
    ) -> Statement {
        let external_parameters = ExternalParameters {
            sources: sources
                .iter()
                .map(|s| SourceParameter {
                    path: path_bytes(&s.path),
                    dest: (!s.dest.is_empty()).then(|| Bytes(s.dest.clone())),
                })
                .collect(),
            from_tar: from_tar.map(path_bytes),
            pack_file: stage.pack_file.as_ref().map(|p| path_bytes(&p.file)),
            xattr_file: stage.xattr_file.as_deref().map(path_bytes),
            format: artifact.format.clone(),
            compression: artifact.compression.clone(),
            level: artifact.level,
            block_size: artifact.block_size,
            options: ManifestOptions::from_stage(stage, InputFiles::default()),
            source_revision: match &revision {
                Some(Revision::Flag(rev)) => Some(rev.revision.clone()),
                _ => None,
            },
        };
        let tool = Tool::current();
        let version = BTreeMap::from([
            ("repropack".to_string(), tool.version.clone()),
            (
                "format_version".to_string(),
                tool.format_version.to_string(),
            ),
        ]);
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject: vec![Subject {
                name: name.to_string(),
                digest: digests,
            }],
            predicate_type: PREDICATE_TYPE.to_string(),
            predicate: Provenance {
                build_definition: BuildDefinition {
                    build_type: BUILD_TYPE.to_string(),
                    external_parameters,
                    internal_parameters: tool,
                    resolved_dependencies: revision
                        .and_then(Revision::dependency)
                        .into_iter()
                        .collect(),
                },
                run_details: RunDetails {
                    builder: Builder {
                        id: BUILDER_ID.to_string(),
                        version,
                    },
                },
            },
        }
    }

    /// Records the digests of the pack file and the xattr file the plan
    /// was staged from (see [`Plan::input_files`](crate::plan::Plan::input_files))
    /// under `options`, as a manifest records them.
    pub fn with_input_files(mut self, stage: &StageOptions, files: InputFiles) -> Statement {
        self.predicate.build_definition.external_parameters.options =
            ManifestOptions::from_stage(stage, files);
        self
    }

    /// Pretty JSON with a trailing newline; the same statement always gives
    /// the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs and string-keyed maps: serialization cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Writes the statement into `file` and commits it. Create `file`
    /// before packing, so that an unwritable destination fails before the
    /// artifact exists.
    pub fn write(&self, mut file: AtomicFile) -> Result<(), ProvenanceError> {
        let bytes = self.to_json();
        file.file_mut()
            .write_all(&bytes)
            .map_err(|e| ProvenanceError::Output(file.error(e)))?;
        file.commit()?;
        Ok(())
    }
}

/// Where the source revision came from.
#[derive(Debug, Clone, Copy)]
pub enum Revision<'a> {
    /// `--source-revision`: an external parameter, and a resolved commit
    /// when it is a 40- or 64-digit commit id.
    Flag(&'a SourceRevision),
    /// What git said of the first source inside a worktree.
    Git(&'a GitSource),
}

impl Revision<'_> {
    fn dependency(self) -> Option<ResourceDescriptor> {
        match self {
            Revision::Flag(rev) => {
                let r = &rev.revision;
                let is_commit = matches!(r.len(), 40 | 64)
                    && r.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                is_commit.then(|| ResourceDescriptor {
                    uri: None,
                    digest: BTreeMap::from([("gitCommit".to_string(), r.clone())]),
                    annotations: BTreeMap::new(),
                })
            }
            Revision::Git(git) => Some(ResourceDescriptor {
                uri: git.repository.as_ref().map(|u| format!("git+{u}")),
                digest: BTreeMap::from([("gitCommit".to_string(), git.revision.revision.clone())]),
                annotations: BTreeMap::from([(
                    "dirty".to_string(),
                    git.revision.dirty.unwrap_or(false),
                )]),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ArtifactInfo {
        ArtifactInfo {
            reference: "/x/a.tar#sha256=00".into(),
            sha256: "00".into(),
            size: 1,
            format: "tar".into(),
            compression: None,
            level: None,
            block_size: None,
            urls: Vec::new(),
        }
    }

    fn digests() -> ArtifactDigests {
        ArtifactDigests {
            sha256: "ab".into(),
            sha512: "cd".into(),
        }
    }

    #[test]
    fn keys_come_in_struct_order_and_the_bytes_repeat() {
        let sources = [Source::parse("tree")];
        let make = || {
            Statement::for_pack(
                "a.tar",
                digests(),
                &info(),
                &StageOptions::default(),
                &sources,
                None,
                None,
            )
            .to_json()
        };
        let text = String::from_utf8(make()).unwrap();
        assert_eq!(make(), text.as_bytes());
        let order: Vec<usize> = [
            "\"_type\"",
            "\"subject\"",
            "\"predicateType\"",
            "\"predicate\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains("resolvedDependencies"), "{text}");
        assert!(!text.contains("sourceRevision"), "{text}");
    }

    #[test]
    fn a_flag_revision_resolves_only_when_it_is_a_commit_id() {
        let sources = [Source::parse("tree")];
        let make = |rev: &str| {
            let rev = SourceRevision::from_flag(rev);
            let s = Statement::for_pack(
                "a.tar",
                digests(),
                &info(),
                &StageOptions::default(),
                &sources,
                None,
                Some(Revision::Flag(&rev)),
            );
            assert_eq!(
                s.predicate
                    .build_definition
                    .external_parameters
                    .source_revision
                    .as_deref(),
                Some(rev.revision.as_str())
            );
            s.predicate.build_definition.resolved_dependencies
        };
        assert!(make("v1.2").is_empty());
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(make(commit)[0].digest["gitCommit"], commit);
    }
}
