//! `repropack fetch`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::cli::exit;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use repropack::extract::extract_to_cache;
use repropack::remote::refs::{ArtifactRef, RefError};
use repropack::remote::{FetchError, FetchOptions, Fetched, Progress, default_cache_dir, fetch};

use super::Failure;
use super::flags::{ExtractFlags, NetFlags};

#[derive(Args)]
pub struct FetchArgs {
    /// The ref `URI#sha256=HEX` to fetch.
    #[arg(value_name = "REF")]
    reference: String,
    /// Another URI with the same bytes, tried (and verified against the same
    /// hash) when the previous source fails. Repeatable; tried in order.
    #[arg(long, value_name = "URI")]
    mirror: Vec<String>,
    /// Cache directory. Default: $XDG_CACHE_HOME/repropack, else
    /// ~/.cache/repropack.
    #[arg(long, value_name = "DIR", env = "REPROPACK_CACHE")]
    cache: Option<PathBuf>,
    /// Re-hash the cached entry instead of trusting its store-time record.
    #[arg(long)]
    verify_cache: bool,
    #[command(flatten)]
    net: NetFlags,
    /// Print a JSON object (path, sha256, size, source, cache_hit; with
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
    let reference: ArtifactRef = args.reference.parse().map_err(|e| match e {
        // A tag can move; only a digest pins the bytes.
        RefError::NoFragment(_) if args.reference.starts_with("oci://") => Failure::new(
            exit::INPUT,
            format!(
                "{e}; a registry tag is not trusted: pin it with `repropack resolve {}`",
                args.reference
            ),
        ),
        e => Failure::new(exit::INPUT, e),
    })?;
    let opts = options(&args)?;
    let extract_opts = args
        .extract
        .then(|| args.extract_flags.options())
        .transpose()?;
    let fetched = fetch(&reference, &args.mirror, &opts).map_err(failure)?;
    let Some(extract_opts) = extract_opts else {
        print(&fetched, args.json);
        return Ok(());
    };
    let tree = extract_to_cache(
        &fetched.path,
        &fetched.sha256,
        &opts.cache_dir,
        &extract_opts,
    )?;
    if let Some(report) = &tree.report {
        super::warn(&report.warnings);
    }
    if args.json {
        let v = serde_json::json!({
            "path": fetched.path.to_string_lossy(),
            "sha256": fetched.sha256.to_hex(),
            "size": fetched.size,
            "source": fetched.source,
            "cache_hit": fetched.cache_hit,
            "extracted": tree.path.to_string_lossy(),
            "extract_reused": tree.reused,
        });
        println!("{v}");
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

fn print(f: &Fetched, json: bool) {
    if json {
        let v = serde_json::json!({
            "path": f.path.to_string_lossy(),
            "sha256": f.sha256.to_hex(),
            "size": f.size,
            "source": f.source,
            "cache_hit": f.cache_hit,
        });
        println!("{v}");
    } else {
        println!("{}", f.path.display());
    }
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
