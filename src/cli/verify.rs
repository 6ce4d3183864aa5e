//! `repropack verify`: is this artifact the one we expect?

use std::path::{Path, PathBuf};

use crate::cli::exit;
use clap::Args;
use repropack::digest::{Sha256Digest, hash_file};
use repropack::remote::refs::ArtifactRef;
use repropack::verify::diff::{Wording, compare};
use repropack::verify::manifest::{Manifest, find_in_dir, read_bytes};
use repropack::verify::side::{Layout, Side};
use repropack::verify::signature::TrustedKeys;
use repropack::verify::tree_digest::Tree;

use super::Failure;
use super::flags::{ReadFlags, TrustFlags};
use super::side::artifact_side;

#[derive(Args)]
#[command(mut_arg("trusted_key", |a| a.help(
    "Also require a minisign signature of the artifact (`ARTIFACT.minisig`, \
     or --signature) by one of these public keys (repeatable); with \
     --manifest, the manifest's own signature (`MANIFEST.minisig`) is \
     checked first and a bad one stops everything. Default: the \
     `:`-separated key files in REPROPACK_TRUSTED_KEYS, if set"
)))]
pub struct VerifyArgs {
    /// The artifact file.
    artifact: PathBuf,
    /// Expected ref `URI#sha256=HEX` (only the sha256 is checked).
    #[arg(long = "ref", value_name = "REF", conflicts_with = "sha256")]
    reference: Option<String>,
    /// Expected sha256 (64 lowercase hex digits).
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// Manifest written by `pack --manifest`: its sha256 is expected too, and
    /// every entry of the artifact is checked against it.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Use the manifest in DIR (`manifest_*.json`, as `pack --manifest-dir`
    /// writes them) whose artifact sha256 is ARTIFACT's, as --manifest.
    #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
    manifest_dir: Option<PathBuf>,
    /// Fail unless the manifest records exactly this source revision (and
    /// the source was not dirty). Needs --manifest or --manifest-dir; with
    /// --trusted-key the manifest must be signed by a trusted key.
    #[arg(long, value_name = "REV")]
    expect_revision: Option<String>,
    #[command(flatten)]
    trust: TrustFlags,
    /// The artifact's signature file, instead of `ARTIFACT.minisig`.
    #[arg(long, value_name = "PATH", requires = "trusted_key")]
    signature: Option<PathBuf>,
    #[command(flatten)]
    read: ReadFlags,
    /// Print one JSON object (artifact, sha256, ok, problems, signatures)
    /// on stdout instead of lines; the exit code is the same.
    #[arg(long)]
    json: bool,
}

pub fn run(args: VerifyArgs) -> Result<(), Failure> {
    if args.expect_revision.is_some() && args.manifest.is_none() && args.manifest_dir.is_none() {
        return Err(Failure::new(
            exit::USAGE,
            "--expect-revision needs --manifest or --manifest-dir",
        ));
    }
    let trusted = &args.trust.trusted_key;
    let keys = if trusted.is_empty() {
        None
    } else {
        Some(TrustedKeys::load(trusted).map_err(super::signature_failure)?)
    };
    let signed = keys.is_some();
    let mut signatures = Vec::new();
    // The manifest is read once: the bytes whose signature is checked are
    // the bytes that are parsed and judged.
    let hash_artifact = || {
        hash_file(&args.artifact)
            .map(|(sha256, _)| sha256)
            .map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", args.artifact.display())))
    };
    // --manifest-dir needs the artifact's sha256 first; it is kept for later.
    let mut artifact_sha256 = None;
    let manifest_file = match (&args.manifest, &args.manifest_dir) {
        (Some(p), _) => {
            let bytes = read_bytes(p).map_err(|e| Failure::new(exit::INPUT, e))?;
            Some((p.clone(), bytes))
        }
        (None, Some(dir)) => {
            let sha256 = *artifact_sha256.insert(hash_artifact()?);
            let found = find_in_dir(dir, &sha256).map_err(|e| Failure::new(exit::INPUT, e))?;
            super::warn(&found.skipped);
            eprintln!("repropack: manifest {}", found.path.display());
            Some((found.path, found.bytes))
        }
        (None, None) => None,
    };
    if let (Some(keys), Some((m, bytes))) = (&keys, &manifest_file) {
        let v = keys
            .verify_bytes(m, bytes, None)
            .map_err(super::signature_failure)?;
        eprintln!(
            "repropack: manifest {} signed by key {}",
            m.display(),
            v.key_id
        );
        signatures.push(serde_json::json!({
            "file": m.display().to_string(),
            "key_id": v.key_id.clone(),
            "trusted_comment": v.trusted_comment,
        }));
    }
    if let Some(keys) = &keys {
        let v = keys
            .verify(&args.artifact, args.signature.as_deref())
            .map_err(super::signature_failure)?;
        eprintln!(
            "repropack: {} signed by key {} ({})",
            args.artifact.display(),
            v.key_id,
            v.trusted_comment
        );
        signatures.push(serde_json::json!({
            "file": args.artifact.display().to_string(),
            "key_id": v.key_id.clone(),
            "trusted_comment": v.trusted_comment,
        }));
    }
    let report = |sha256: Option<&Sha256Digest>, problems: &[&String]| {
        serde_json::json!({
            "artifact": args.artifact.display().to_string(),
            "sha256": sha256.map(|d| d.to_hex()),
            "ok": problems.is_empty(),
            "problems": problems,
            "signatures": signatures,
        })
    };
    let mut expected: Vec<(String, Sha256Digest)> = Vec::new();
    if let Some(r) = &args.reference {
        let r: ArtifactRef = r.parse().map_err(|e| Failure::new(exit::INPUT, e))?;
        expected.push(("--ref".to_string(), r.sha256()));
    }
    if let Some(h) = &args.sha256 {
        let d = Sha256Digest::from_hex(h)
            .map_err(|e| Failure::new(exit::INPUT, format!("--sha256 {h:?}: {e}")))?;
        expected.push(("--sha256".to_string(), d));
    }
    let manifest = match &manifest_file {
        Some((p, bytes)) => {
            Some(Manifest::parse(p, bytes).map_err(|e| Failure::new(exit::INPUT, e))?)
        }
        None => None,
    };
    let manifest_path = manifest_file.as_ref().map(|(p, _)| p);
    if let (Some(m), Some(p)) = (&manifest, manifest_path) {
        let d = Sha256Digest::from_hex(&m.artifact.sha256).map_err(|e| {
            Failure::new(
                exit::INPUT,
                format!("manifest {}: artifact.sha256: {e}", p.display()),
            )
        })?;
        expected.push((format!("manifest {}", p.display()), d));
    }
    if expected.is_empty() {
        if signed {
            if args.json {
                println!("{}", report(None, &[]));
            } else {
                println!("OK {} signature", args.artifact.display());
            }
            return Ok(());
        }
        return Err(Failure::new(
            exit::USAGE,
            "nothing to verify against: pass --ref, --sha256, --manifest or --trusted-key",
        ));
    }
    let actual = match artifact_sha256 {
        Some(d) => d,
        None => hash_artifact()?,
    };
    let mut hash_problems = Vec::new();
    for (what, want) in &expected {
        if *want != actual {
            hash_problems.push(format!(
                "sha256 mismatch: {what} expects {want}, artifact has {actual}"
            ));
        }
    }
    let mut problems = Vec::new();
    if let (Some(m), Some(mpath)) = (&manifest, manifest_path) {
        let want_tree = m.tree(mpath).map_err(|e| Failure::new(exit::INPUT, e))?;
        if want_tree.digest().to_hex() != m.tree_digest {
            problems.push(format!(
                "manifest tree_digest {} does not match its own entries ({})",
                m.tree_digest,
                want_tree.digest()
            ));
        }
        match artifact_side(&args.artifact, &args.read) {
            Ok(got) => entry_problems(m, mpath, want_tree, got, &mut problems)?,
            // Bytes that do not even parse: still report the hash mismatch.
            Err(f) if !hash_problems.is_empty() => {
                problems.push(format!("cannot read the entries: {}", f.message));
            }
            Err(f) => return Err(f),
        }
        if let Some(rev) = &args.expect_revision {
            match &m.source {
                None => problems.push(format!(
                    "revision: manifest records no source revision, expected {rev}"
                )),
                Some(s) if s.matches(rev) => {}
                Some(s) if s.revision == *rev => problems.push(format!(
                    "revision: manifest records {rev} but the source was dirty (uncommitted changes)"
                )),
                Some(s) => problems.push(format!(
                    "revision: manifest records {}, expected {rev}",
                    s.revision
                )),
            }
        }
    }
    let all: Vec<&String> = hash_problems.iter().chain(&problems).collect();
    if args.json {
        println!("{}", report(Some(&actual), &all));
    } else {
        for p in &all {
            println!("{p}");
        }
    }
    let name = args.artifact.display();
    if !hash_problems.is_empty() {
        return Err(Failure::new(
            exit::HASH_MISMATCH,
            format!("{name}: sha256 mismatch"),
        ));
    }
    if !problems.is_empty() {
        return Err(Failure::new(
            exit::DIFFERENT,
            format!("{name}: {} problem(s) against the manifest", problems.len()),
        ));
    }
    if !args.json {
        println!("OK {name} sha256={actual}");
    }
    Ok(())
}

/// Compares the artifact's entries (`got`) with the manifest's.
fn entry_problems(
    m: &Manifest,
    mpath: &Path,
    want_tree: Tree,
    got: Side,
    problems: &mut Vec<String>,
) -> Result<(), Failure> {
    let format = got
        .facts
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str());
    if format != Some(m.artifact.format.as_str()) {
        problems.push(format!(
            "format: manifest says {}, artifact is {}",
            m.artifact.format,
            format.unwrap_or("unknown")
        ));
    }
    let want = Side {
        label: mpath.display().to_string(),
        tree: want_tree,
        facts: Vec::new(),
        file: None,
        sha256: None,
        layout: Layout::Unknown,
    };
    // The artifact's digest covers what the manifest's does.
    let got = Side {
        facts: Vec::new(),
        file: None,
        sha256: None,
        tree: got.tree.keeping(want.tree.kept()),
        ..got
    };
    let report = compare(&want, &got).map_err(|e| Failure::new(exit::INPUT, e))?;
    problems.extend(report.entry_lines(Wording::AgainstManifest));
    Ok(())
}
