//! Fetch-and-verify: turn an [`ArtifactRef`] into a local path whose bytes
//! are known to have the ref's digest (docs/CONTRACT.md §4, §6): a sha256,
//! or any other [`ContentDigest`] (`#sha512=` refs, `fetch --digest`,
//! `fetch --integrity`), checked the same way.
//!
//! # Model
//!
//! The caller hands over a ref and an ordered list of mirrors. [`fetch`]
//! takes the per-hash lock of the [`Cache`], and answers from the cache if
//! the entry is there and unchanged since it was stored. Otherwise it tries
//! the ref's own URI and then each mirror in order; for each source the bytes
//! stream into a temp file in the cache while they are hashed, transient
//! failures (5xx, resets, short bodies, timeouts) are retried with
//! exponential backoff, and the first source whose bytes hash to the ref's
//! digest is fsynced and renamed into place. A source that delivers other
//! bytes is a failure like any other: its temp file is deleted, nothing is
//! stored, and the next mirror is tried against the same hash. There is no
//! other fallback.
//!
//! The transports ([`source`]) only move bytes into a [`Download`](super::cache::Download);
//! they never decide whether bytes are good. The cache never talks to the
//! network. Fetch knows nothing about packing or formats.
//!
//! An async runtime (tokio, current-thread) is created inside [`fetch`] only
//! when an `http(s)://` or `s3://` source is actually tried; the rest of the
//! library stays synchronous.
//!
//! ```no_run
//! use repropack::remote::{fetch, FetchOptions};
//! let r = "https://example.com/a.tar#sha256=\
//!     ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".parse()?;
//! let got = fetch(&r, &[], &FetchOptions::new("/tmp/cache".into()))?;
//! println!("{} (cache hit: {})", got.path.display(), got.cache_hit);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::cache::{Cache, CacheError};
use super::net::NetOptions;
use super::refs::ArtifactRef;
use super::source::{self, Origin, Progress, SourceFailure};
use crate::digest::ContentDigest;

/// Options of [`fetch`].
#[derive(Clone)]
pub struct FetchOptions {
    /// Root of the content-addressed cache.
    pub cache_dir: PathBuf,
    /// Re-hash a cached entry before answering from it.
    pub verify_cache: bool,
    /// Timeouts, retries and backoff of the network transports.
    pub net: NetOptions,
    /// Where to report download progress; `None` reports nothing.
    pub progress: Option<Arc<dyn Progress>>,
}

impl FetchOptions {
    /// Options with the cache at `cache_dir`, no cache re-hashing, default
    /// network options and no progress reporting.
    pub fn new(cache_dir: PathBuf) -> FetchOptions {
        FetchOptions {
            cache_dir,
            verify_cache: false,
            net: NetOptions::default(),
            progress: None,
        }
    }
}

/// A verified artifact in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The cache entry; its bytes hash to `digest`.
    pub path: PathBuf,
    /// The artifact's digest (the ref's, of the ref's algorithm).
    pub digest: ContentDigest,
    /// The artifact's size in bytes.
    pub size: u64,
    /// The URI the bytes came from; `None` on a cache hit.
    pub source: Option<String>,
    /// Whether the answer came from the cache without a download.
    pub cache_hit: bool,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceFailure::Mismatch {
                expected,
                actual,
                size,
            } => write!(
                f,
                "{} mismatch: expected {}, got {} ({size} bytes); nothing stored",
                expected.algorithm().name(),
                expected.to_hex(),
                actual.to_hex()
            ),
            SourceFailure::NotFound(m) => write!(f, "not found: {m}"),
            SourceFailure::Transport { message, attempts } => {
                write!(f, "{message} (after {attempts} attempt")?;
                if *attempts != 1 {
                    f.write_str("s")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// One source and why it failed.
#[derive(Debug)]
pub struct Attempt {
    /// The source URI tried (the ref's own, or a mirror's).
    pub uri: String,
    /// Why it failed.
    pub failure: SourceFailure,
}

/// Why [`fetch`] produced no path.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The ref's URI or a mirror is not something we can fetch from.
    #[error("source {uri:?}: {reason}")]
    BadSource {
        /// The URI as given.
        uri: String,
        /// Why it cannot be fetched from.
        reason: String,
    },
    /// The cache could not be read or written (includes a full disk while
    /// downloading). Nothing was published.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Every source failed; each is listed in order.
    #[error("{}", all_failed_message(.digest, .attempts))]
    AllFailed {
        /// The digest that was asked for.
        digest: ContentDigest,
        /// Every source tried, in order, with its failure.
        attempts: Vec<Attempt>,
    },
}

fn all_failed_message(digest: &ContentDigest, attempts: &[Attempt]) -> String {
    let mut s = format!(
        "no source delivered {} {}:",
        digest.algorithm().name(),
        digest.to_hex()
    );
    for a in attempts {
        s.push_str(&format!("\n  {}: {}", a.uri, a.failure));
    }
    s
}

impl FetchError {
    /// True if some source delivered bytes with the wrong hash.
    pub fn has_mismatch(&self) -> bool {
        match self {
            FetchError::AllFailed { attempts, .. } => attempts
                .iter()
                .any(|a| matches!(a.failure, SourceFailure::Mismatch { .. })),
            _ => false,
        }
    }
}

/// Fetches `r` into the cache, trying `r`'s URI and then each of `mirrors`
/// in order, and returns the verified entry.
///
/// Every source is checked against `r.digest()`. The per-hash cache lock is
/// held for the whole call, so concurrent fetches of the same hash (threads
/// or processes) download it once.
pub fn fetch(
    r: &ArtifactRef,
    mirrors: &[String],
    opts: &FetchOptions,
) -> Result<Fetched, FetchError> {
    let mut sources = vec![
        Origin::parse(r.uri()).map_err(|reason| FetchError::BadSource {
            uri: r.uri().to_string(),
            reason,
        })?,
    ];
    for m in mirrors {
        sources.push(Origin::parse(m).map_err(|reason| FetchError::BadSource {
            uri: m.clone(),
            reason,
        })?);
    }
    let digest = r.digest();
    let cache = Cache::new(opts.cache_dir.clone());
    let lock = cache.lock(digest)?;
    if let Some((path, size)) = cache.lookup(&lock, opts.verify_cache)? {
        return Ok(Fetched {
            path,
            digest,
            size,
            source: None,
            cache_hit: true,
        });
    }
    let mut runtime = source::Runtime::default();
    let mut attempts = Vec::new();
    for src in &sources {
        let mut download = cache.begin(&lock)?;
        match src.fetch_into(
            digest,
            &mut download,
            &opts.net,
            opts.progress.as_deref(),
            &mut runtime,
        ) {
            Ok(()) => {}
            Err(source::Error::Sink(e)) => return Err(cache.download_error(&download, e).into()),
            Err(source::Error::Failed(failure)) => {
                attempts.push(Attempt {
                    uri: src.uri().to_string(),
                    failure: *failure,
                });
                continue;
            }
        }
        let (actual, size) = download.digest();
        if actual != digest {
            drop(download);
            attempts.push(Attempt {
                uri: src.uri().to_string(),
                failure: SourceFailure::Mismatch {
                    expected: digest,
                    actual,
                    size,
                },
            });
            continue;
        }
        let path = cache.commit(&lock, download)?;
        return Ok(Fetched {
            path,
            digest,
            size,
            source: Some(src.uri().to_string()),
            cache_hit: false,
        });
    }
    Err(FetchError::AllFailed { digest, attempts })
}

/// The default cache root: `$XDG_CACHE_HOME/repropack` if that variable is
/// an absolute path, else `$HOME/.cache/repropack`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        let p = PathBuf::from(x);
        if p.is_absolute() {
            return Some(p.join("repropack"));
        }
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    home.is_absolute()
        .then(|| home.join(".cache").join("repropack"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;

    #[test]
    fn threads_fetching_one_ref_store_it_once() {
        let src = tempfile::tempdir().unwrap();
        let file = src.path().join("a.bin");
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&file, &body).unwrap();
        let r = ArtifactRef::new(file.to_str().unwrap(), Sha256Digest::of(&body));
        let cache = tempfile::tempdir().unwrap();
        let opts = FetchOptions::new(cache.path().to_path_buf());
        let results: Vec<Fetched> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| fetch(&r, &[], &opts))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(results.iter().filter(|f| !f.cache_hit).count(), 1);
        for f in &results {
            assert_eq!(std::fs::read(&f.path).unwrap(), body);
        }
    }

    #[test]
    fn unknown_mirror_scheme_is_refused_before_anything_is_fetched() {
        let cache = tempfile::tempdir().unwrap();
        let r = ArtifactRef::new("/nonexistent", Sha256Digest::of(b""));
        let e = fetch(
            &r,
            &["gopher://x/y".to_string()],
            &FetchOptions::new(cache.path().to_path_buf()),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::BadSource { .. }), "{e}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }
}
