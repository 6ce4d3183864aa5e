//! `repropack fetch`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cli::exit;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use repropack::digest::{ContentDigest, Sha256Digest, hash_file};
use repropack::extract::extract_to_cache;
use repropack::remote::refs::{ArtifactRef, RefError};
use repropack::remote::{FetchError, FetchOptions, Progress, default_cache_dir, fetch};
use repropack::verify::manifest::{self, Manifest};
use repropack::verify::signature::{Signed, Trust};

use super::Failure;
use super::flags::{ExtractFlags, NetFlags, TrustFlags};

#[derive(Args)]
#[command(mut_arg("trusted_key", |a| a.help(
    "With --manifest: the minisign public keys the manifest must be signed \
     by (repeatable; required, there is no unsigned --manifest fetch). \
     Default: the `:`-separated key files in REPROPACK_TRUSTED_KEYS"
)))]
pub struct FetchArgs {
    /// The ref `URI#sha256=HEX` (or `#sha384=HEX`, `#sha512=HEX`) to
    /// fetch; with --digest or --integrity, a plain URI without `#`.
    #[arg(value_name = "REF", required_unless_present = "manifest")]
    reference: Option<String>,
    /// Pin REF, a plain URI, to this digest instead of a `#` fragment:
    /// `sha256:HEX`, `sha384:HEX`, `sha512:HEX`, or `sha3:HEX` (SHA3-224,
    /// -256, -384 or -512, told apart by the length of HEX). Lowercase hex.
    #[arg(long, value_name = "ALG:HEX", conflicts_with_all = ["integrity", "manifest"])]
    digest: Option<ContentDigest>,
    /// Pin REF, a plain URI, to this Subresource Integrity hash as Bazel
    /// and npm write it: `sha256-`, `sha384-` or `sha512-` followed by the
    /// digest in standard base64.
    #[arg(
        long,
        value_name = "SRI",
        value_parser = ContentDigest::from_sri,
        conflicts_with = "manifest"
    )]
    integrity: Option<ContentDigest>,
    /// Another URI with the same bytes, tried (and verified against the same
    /// hash) when the previous source fails. Repeatable; tried in order.
    #[arg(long, value_name = "URI")]
    mirror: Vec<String>,
    /// Fetch the artifact a signed manifest (`pack --manifest --sign
    /// --url`) describes, instead of REF: MANIFEST.minisig is checked first
    /// (against --trusted-key) and nothing is fetched unless it is good;
    /// then the manifest's `artifact.urls` are tried in order, each download
    /// verified against the manifest's sha256.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["reference", "mirror"])]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustFlags,
    /// With --manifest: OpenSSH allowed_signers files; the manifest may be
    /// signed as `ssh-keygen -Y sign -n repropack` does (`MANIFEST.sig`) by
    /// a key one of them lists for the namespace `repropack` (repeatable).
    #[arg(long, value_name = "FILE", requires = "manifest")]
    allowed_signers: Vec<PathBuf>,
    /// With --allowed-signers: the manifest's SSH signer must be listed for
    /// this principal (as `ssh-keygen -Y verify -I ID`).
    #[arg(long, value_name = "ID", requires = "allowed_signers")]
    identity: Option<String>,
    /// Cache directory. Default: $XDG_CACHE_HOME/repropack, else
    /// ~/.cache/repropack.
    #[arg(long, value_name = "DIR", env = "REPROPACK_CACHE")]
    cache: Option<PathBuf>,
    /// Re-hash the cached entry instead of trusting its store-time record.
    #[arg(long)]
    verify_cache: bool,
    #[command(flatten)]
    net: NetFlags,
    /// Print a JSON object (path, sha256, size, source = the URI that
    /// served it, cache_hit; with --manifest also manifest and key_id, an
    /// SSH signer's SHA256 fingerprint for an SSH signature; with
    /// --extract also extracted and extract_reused).
    #[arg(long)]
    json: bool,
    /// Also extract the verified artifact into the cache
    /// (`<cache>/extracted/sha256/..`, published atomically as a whole
    /// directory, reused on the next call) and print that directory.
    #[arg(long)]
    extract: bool,
    /// With --extract: how to extract, as for `repropack extract`.
    #[command(flatten)]
    extract_flags: ExtractFlags,
}

pub fn run(args: FetchArgs) -> Result<(), Failure> {
    // The manifest's signature is judged before anything else is looked at,
    // so a bad one leaves no request and no cache behind.
    let (reference, mirrors, signed) = match &args.manifest {
        Some(m) => {
            let trust = (
                &args.trust.trusted_key[..],
                &args.allowed_signers[..],
                args.identity.clone(),
            );
            let s = signed_source(m, trust)?;
            (s.reference, s.mirrors, Some((m, s.key_id)))
        }
        None => (
            pinned_ref(
                args.reference.as_deref().unwrap_or_default(),
                args.digest.or(args.integrity),
            )?,
            args.mirror.clone(),
            None,
        ),
    };
    let opts = options(&args)?;
    let extract_opts = args
        .extract
        .then(|| args.extract_flags.options())
        .transpose()?;
    let fetched = fetch(&reference, &mirrors, &opts).map_err(failure)?;
    // The digest goes under its fragment name (`sha256`, `sha512`,
    // `sha3_256`, …), as `hash --json` writes it.
    let mut value = serde_json::json!({
        "path": fetched.path.to_string_lossy(),
        fetched.digest.algorithm().fragment(): fetched.digest.to_hex(),
        "size": fetched.size,
        "source": fetched.source,
        "cache_hit": fetched.cache_hit,
    });
    if let (Some((m, key_id)), Some(map)) = (&signed, value.as_object_mut()) {
        map.insert("manifest".into(), m.display().to_string().into());
        map.insert("key_id".into(), key_id.clone().into());
    }
    let Some(extract_opts) = extract_opts else {
        if args.json {
            println!("{value}");
        } else {
            println!("{}", fetched.path.display());
        }
        return Ok(());
    };
    // Extracted trees are keyed by sha256 whatever the fetch was pinned
    // to; the bytes hashed here are the verified cache entry.
    let sha256 = match fetched.digest.sha256() {
        Some(d) => d,
        None => {
            hash_file(&fetched.path)
                .map_err(|e| {
                    Failure::new(exit::OUTPUT, format!("{}: {e}", fetched.path.display()))
                })?
                .0
        }
    };
    let tree = extract_to_cache(&fetched.path, &sha256, &opts.cache_dir, &extract_opts)?;
    if let Some(report) = &tree.report {
        super::warn(&report.warnings);
    }
    if args.json {
        if let Some(map) = value.as_object_mut() {
            map.insert("extracted".into(), tree.path.to_string_lossy().into());
            map.insert("extract_reused".into(), tree.reused.into());
        }
        println!("{value}");
    } else {
        println!("{}", tree.path.display());
    }
    Ok(())
}

pub(crate) fn options(args: &FetchArgs) -> Result<FetchOptions, Failure> {
    let cache = match &args.cache {
        Some(c) => c.clone(),
        None => default_cache_dir().ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                "no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache",
            )
        })?,
    };
    // Printed paths are absolute even for a relative --cache.
    let cache = std::path::absolute(&cache)
        .map_err(|e| Failure::new(exit::USAGE, format!("--cache {}: {e}", cache.display())))?;
    let mut opts = FetchOptions::new(cache);
    opts.verify_cache = args.verify_cache;
    opts.net = args.net.options()?;
    if std::io::stderr().is_terminal() {
        opts.progress = Some(Arc::new(Bar::default()));
    }
    Ok(opts)
}

/// The ref to fetch: REF itself, or with `--digest`/`--integrity` the plain
/// URI REF pinned to that digest.
fn pinned_ref(text: &str, digest: Option<ContentDigest>) -> Result<ArtifactRef, Failure> {
    let Some(digest) = digest else {
        return parse_ref(text);
    };
    if text.contains('#') {
        return Err(Failure::new(
            exit::USAGE,
            format!("{text:?} has a `#` fragment; with --digest or --integrity give the URI alone"),
        ));
    }
    ArtifactRef::check_uri(text)
        .map_err(|reason| Failure::new(exit::INPUT, format!("{text:?}: {reason}")))?;
    Ok(ArtifactRef::new(text, digest))
}

fn parse_ref(text: &str) -> Result<ArtifactRef, Failure> {
    text.parse().map_err(|e| match e {
        // A tag can move; only a digest pins the bytes.
        RefError::NoFragment(_) if text.starts_with("oci://") => Failure::new(
            exit::INPUT,
            format!("{e}; a registry tag is not trusted: pin it with `repropack resolve {text}`"),
        ),
        e => Failure::new(exit::INPUT, e),
    })
}

/// What a signed manifest says to fetch.
struct SignedSource {
    reference: ArtifactRef,
    mirrors: Vec<String>,
    key_id: String,
}

/// Checks the signature of the manifest at `path` by one of the trusted
/// keys (minisign keys or allowed_signers files, allowed_signers files,
/// the SSH identity), then reads the sources from exactly the bytes that
/// were checked.
fn signed_source(
    path: &Path,
    (trusted, allowed_signers, identity): (&[PathBuf], &[PathBuf], Option<String>),
) -> Result<SignedSource, Failure> {
    let refuse = |reason: &str| {
        Failure::new(
            exit::SIGNATURE,
            format!("manifest {}: {reason}; nothing fetched", path.display()),
        )
    };
    if trusted.is_empty() && allowed_signers.is_empty() {
        return Err(refuse(
            "no trusted key configured (pass --trusted-key or --allowed-signers, or set REPROPACK_TRUSTED_KEYS)",
        ));
    }
    // The trust may name OpenSSH allowed_signers files (then `MANIFEST.sig`
    // is checked where it exists).
    let trust =
        Trust::new(trusted, allowed_signers, identity).map_err(|e| refuse(&e.to_string()))?;
    let bytes = manifest::read_bytes(path).map_err(|e| Failure::new(exit::INPUT, e))?;
    let key_id = match trust
        .verify_bytes(path, &bytes, None)
        .map_err(|e| refuse(&format!("not trusted: {e}")))?
    {
        Signed::Minisign(v) => v.key_id,
        Signed::Ssh(v) => v.fingerprint,
    };
    let m = Manifest::parse(path, &bytes).map_err(|e| Failure::new(exit::INPUT, e))?;
    let sha256 = Sha256Digest::from_hex(&m.artifact.sha256).map_err(|e| {
        Failure::new(
            exit::INPUT,
            format!("manifest {}: artifact.sha256: {e}", path.display()),
        )
    })?;
    let Some((first, rest)) = m.artifact.urls.split_first() else {
        return Err(Failure::new(
            exit::INPUT,
            format!(
                "manifest {}: no artifact.urls to fetch from (pack it with --url URI)",
                path.display()
            ),
        ));
    };
    eprintln!(
        "repropack: manifest {} signed by key {key_id}",
        path.display(),
    );
    Ok(SignedSource {
        reference: ArtifactRef::new(first.clone(), sha256),
        mirrors: rest.to_vec(),
        key_id,
    })
}

/// Maps a fetch error to its exit code.
pub(crate) fn failure(e: FetchError) -> Failure {
    let code = match &e {
        FetchError::BadSource { .. } => exit::INPUT,
        FetchError::Cache(_) => exit::OUTPUT,
        FetchError::AllFailed { .. } if e.has_mismatch() => exit::HASH_MISMATCH,
        FetchError::AllFailed { .. } => exit::FETCH,
    };
    Failure::new(code, e)
}

/// A progress bar on stderr (only created when stderr is a terminal).
#[derive(Default)]
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, source: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(source.to_string());
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }
    fn advance(&self, bytes: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(b) = slot.as_ref()
        {
            b.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(b) = slot.take()
        {
            b.finish_and_clear();
        }
    }
}
