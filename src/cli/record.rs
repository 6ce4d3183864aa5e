//! `pack --manifest FILE`, `--source-revision REV` and the tree digest in
//! `pack --json`.

use std::path::{Path, PathBuf};

use clap::Args;
use repropack::exit;
use repropack::manifest::{ArtifactInfo, Manifest};
use repropack::revision::{SourceRevision, detect_git};
use repropack::stage::Source;
use repropack::tree::Tree;

use super::Failure;
use super::pack::Built;

#[derive(Args, Clone, Debug)]
pub struct RecordFlags {
    /// Also write a JSON manifest (artifact, options, source revision, tree
    /// digest, every entry with its sha256) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Source revision to record in the manifest. Default: the git commit of
    /// the first source inside a git worktree (marked dirty when `git status
    /// --porcelain` lists changes under that source).
    #[arg(long, value_name = "REV")]
    pub source_revision: Option<String>,
}

/// What was recorded about a pack.
pub struct Recorded {
    pub manifest: Manifest,
    pub path: Option<PathBuf>,
}

impl Recorded {
    /// Adds `tree_digest`, `schema`, `format_version`, `source` and
    /// `manifest` (the file written, if any) to `pack --json` output.
    pub fn add_to_json(&self, obj: &mut serde_json::Map<String, serde_json::Value>) {
        let m = &self.manifest;
        obj.insert("tree_digest".into(), m.tree_digest.clone().into());
        obj.insert("format_version".into(), m.tool.format_version.into());
        obj.insert(
            "source".into(),
            serde_json::to_value(&m.source).unwrap_or(serde_json::Value::Null),
        );
        obj.insert(
            "manifest".into(),
            self.path.as_ref().map(|p| p.display().to_string()).into(),
        );
    }
}

/// Builds the manifest when `--manifest` or `--json` asks for it (hashing
/// every file once more; see notes/ARCH-manifest.md) and writes it.
pub fn record(
    flags: &RecordFlags,
    sources: &[Source],
    built: &Built,
    json: bool,
) -> Result<Option<Recorded>, Failure> {
    if flags.manifest.is_none() && !json {
        return Ok(None);
    }
    let manifest = manifest_for(flags, sources, built)?;
    if let Some(path) = &flags.manifest {
        manifest
            .write(path)
            .map_err(|e| Failure::new(exit::OUTPUT, e))?;
    }
    Ok(Some(Recorded {
        manifest,
        path: flags.manifest.clone(),
    }))
}

/// The manifest of a freshly packed artifact.
pub fn manifest_for(
    flags: &RecordFlags,
    sources: &[Source],
    built: &Built,
) -> Result<Manifest, Failure> {
    let tree = Tree::from_plan(&built.plan, built.pack_opts.jobs)
        .map_err(|e| Failure::new(exit::INPUT, e))?;
    let source = match &flags.source_revision {
        Some(rev) => Some(SourceRevision::from_flag(rev)),
        None => {
            let paths: Vec<&Path> = sources.iter().map(|s| s.path.as_path()).collect();
            detect_git(&paths)
        }
    };
    Ok(Manifest::new(
        ArtifactInfo::from_packed(&built.reference, &built.packed, &built.pack_opts),
        &built.stage_opts,
        &tree,
        source,
    ))
}
