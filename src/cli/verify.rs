//! `repropack verify`: is this artifact the one we expect?

use std::path::{Path, PathBuf};

use crate::cli::exit;
use clap::{ArgGroup, Args};
use repropack::digest::{Sha256Digest, hash_file};
use repropack::remote::refs::ArtifactRef;
use repropack::verify::diff::{Wording, compare};
use repropack::verify::manifest::{Manifest, find_in_dir, read_bytes};
use repropack::verify::side::{Layout, Side};
use repropack::verify::signature::{Signed, Trust};
use repropack::verify::tree_digest::Tree;

use super::Failure;
use super::flags::{ReadFlags, TrustFlags};
use super::side::artifact_side;

#[derive(Args)]
#[command(group(ArgGroup::new("trust").args(["trusted_key", "allowed_signers"]).multiple(true)))]
#[command(mut_arg("trusted_key", |a| a.help(
    "Also require a minisign signature of the artifact (`ARTIFACT.minisig`, \
     or --signature) by one of these public keys (repeatable); with \
     --manifest, the manifest's own signature (`MANIFEST.minisig`) is \
     checked first and a bad one stops everything. A file here that is an \
     OpenSSH allowed_signers file (told apart by content) counts as \
     --allowed-signers. Default: the `:`-separated files in \
     REPROPACK_TRUSTED_KEYS, if set"
)))]
pub struct VerifyArgs {
    /// The artifact file.
    artifact: PathBuf,
    /// Expected ref `URI#sha256=HEX` (only the sha256 is checked; a
    /// `#sha384=` or `#sha512=` ref is refused).
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
    /// Also require an SSH signature (`ARTIFACT.sig`, as `ssh-keygen -Y
    /// sign -n repropack` makes) by a key this OpenSSH allowed_signers file
    /// lists for the namespace `repropack` (repeatable); with --manifest,
    /// `MANIFEST.sig` is checked first. With minisign keys trusted too, a
    /// file passes with either kind of signature (`FILE.sig` is checked
    /// where it exists).
    #[arg(long, value_name = "FILE")]
    allowed_signers: Vec<PathBuf>,
    /// With SSH signatures: the signing key must be listed for this
    /// principal (as `ssh-keygen -Y verify -I ID`).
    #[arg(long, value_name = "ID", requires = "trust")]
    identity: Option<String>,
    /// The artifact's signature file, instead of `ARTIFACT.minisig` or
    /// `ARTIFACT.sig` (its format is told by its content).
    #[arg(long, value_name = "PATH", requires = "trust")]
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
    let trust = Trust::new(
        &args.trust.trusted_key,
        &args.allowed_signers,
        args.identity.clone(),
    )
    .map_err(super::signature_failure)?;
    if args.identity.is_some() && !trust.has_ssh() {
        return Err(Failure::new(
            exit::USAGE,
            "--identity needs an allowed_signers file (--allowed-signers)",
        ));
    }
    let signed = !trust.is_empty();
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
    if signed {
        if let Some((m, bytes)) = &manifest_file {
            let v = trust
                .verify_bytes(m, bytes, None)
                .map_err(super::signature_failure)?;
            let (by, json) = described(m, &v);
            eprintln!("repropack: manifest {} signed by {by}", m.display());
            signatures.push(json);
        }
        let v = trust
            .verify(&args.artifact, args.signature.as_deref())
            .map_err(super::signature_failure)?;
        let (by, json) = described(&args.artifact, &v);
        eprintln!("repropack: {} signed by {by}", args.artifact.display());
        signatures.push(json);
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
        let parsed: ArtifactRef = r.parse().map_err(|e| Failure::new(exit::INPUT, e))?;
        let sha256 = parsed.sha256().ok_or_else(|| {
            Failure::new(
                exit::INPUT,
                format!("--ref {r:?}: verify compares sha256; give a `#sha256=` ref"),
            )
        })?;
        expected.push(("--ref".to_string(), sha256));
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
            "nothing to verify against: pass --ref, --sha256, --manifest, --trusted-key or --allowed-signers",
        ));
    }
    // With a manifest, reading the entries hashes the file too; the
    // manifest's own tree is built and hashed meanwhile.
    let (side, want_tree) = std::thread::scope(|s| {
        let want_tree = match (&manifest, manifest_path) {
            (Some(m), Some(p)) => Some(s.spawn(move || {
                m.tree(p).map(|t| {
                    let digest = t.digest();
                    (t, digest)
                })
            })),
            _ => None,
        };
        let side = manifest
            .is_some()
            .then(|| artifact_side(&args.artifact, &args.read));
        let want_tree =
            want_tree.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (side, want_tree)
    });
    let actual = match (artifact_sha256, &side) {
        (Some(d), _) => d,
        (
            None,
            Some(Ok(Side {
                sha256: Some(d), ..
            })),
        ) => *d,
        _ => hash_artifact()?,
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
    if let (Some(m), Some(mpath), Some(want_tree)) = (&manifest, manifest_path, want_tree) {
        let (want_tree, want_digest) = want_tree.map_err(|e| Failure::new(exit::INPUT, e))?;
        if want_digest.to_hex() != m.tree_digest {
            problems.push(format!(
                "manifest tree_digest {} does not match its own entries ({want_digest})",
                m.tree_digest,
            ));
        }
        match side.unwrap_or_else(|| artifact_side(&args.artifact, &args.read)) {
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

/// Who signed `file`, for the stderr line, and the JSON object of
/// `--json`'s `signatures`.
fn described(file: &Path, signed: &Signed) -> (String, serde_json::Value) {
    match signed {
        Signed::Minisign(v) => (
            format!("key {} ({})", v.key_id, v.trusted_comment),
            serde_json::json!({
                "file": file.display().to_string(),
                "key_id": v.key_id,
                "trusted_comment": v.trusted_comment,
            }),
        ),
        Signed::Ssh(v) => (
            format!(
                "SSH key {} ({}, allowed by {}:{})",
                v.fingerprint,
                v.principals,
                v.allowed_by.0.display(),
                v.allowed_by.1
            ),
            serde_json::json!({
                "file": file.display().to_string(),
                "ssh_fingerprint": v.fingerprint,
                "principals": v.principals,
            }),
        ),
    }
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
