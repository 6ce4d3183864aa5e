//! Extracted trees in a content-addressed cache (`fetch --extract`).
//!
//! Layout: `<cache_root>/extracted/sha256/<hex[0..2]>/<hex>[+<tag>]/` is the
//! tree of the artifact whose sha256 is `<hex>`. `<tag>` names the options
//! that change what is extracted (`s` specials, `k` special bits kept, `o`
//! owners applied, `x` escaping symlinks rejected) and is absent with the
//! defaults; the size/count limits only decide whether extraction succeeds,
//! so they are not part of the key.
//!
//! Publication is atomic for the whole directory: the tree is extracted
//! into a staging directory beside it and renamed into place by
//! [`extract`](super::extract), after a `syncfs`. So a tree present at its
//! final path is complete, and is reused as is. Concurrent callers serialize
//! on an exclusive `flock` of `<final>.lock` (released by the kernel if the
//! holder dies; the empty lock file stays). Before extracting, the
//! artifact's sha256 is recomputed and must equal the key: a consumer never
//! uses bytes whose hash it has not checked.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{ExtractError, ExtractOptions, ExtractReport, SymlinkPolicy, extract};
use crate::digest::{Sha256Digest, hash_file};

/// A tree in the cache.
#[derive(Debug, Clone)]
pub struct CachedTree {
    /// The extracted directory.
    pub path: PathBuf,
    /// True when the tree was already there (nothing was read or written).
    pub reused: bool,
    /// What this call extracted (`None` when reused).
    pub report: Option<ExtractReport>,
}

/// The directory a tree with this hash and these options lives in.
///
/// ```
/// use repropack::digest::Sha256Digest;
/// use repropack::extract::{cache_dir_for, ExtractOptions};
/// let h = Sha256Digest::of(b"x");
/// let dir = cache_dir_for("/cache".as_ref(), &h, &ExtractOptions::default());
/// assert!(dir.starts_with("/cache/extracted/sha256"));
/// assert!(dir.ends_with(h.to_hex()));
/// ```
pub fn cache_dir_for(cache_root: &Path, sha256: &Sha256Digest, opts: &ExtractOptions) -> PathBuf {
    let hex = sha256.to_hex();
    let mut tag = String::new();
    if opts.specials {
        tag.push('s');
    }
    if opts.keep_special_bits {
        tag.push('k');
    }
    if opts.same_owner {
        tag.push('o');
    }
    if opts.xattrs {
        tag.push('a');
    }
    if opts.best_effort {
        tag.push('b');
    }
    if opts.symlinks == SymlinkPolicy::RejectEscaping {
        tag.push('x');
    }
    let name = if tag.is_empty() {
        hex.clone()
    } else {
        format!("{hex}+{tag}")
    };
    cache_root
        .join("extracted")
        .join("sha256")
        .join(&hex[..2])
        .join(name)
}

/// Returns the extracted tree of `artifact` (whose sha256 must be
/// `sha256`) under `cache_root`, extracting it first if it is not there.
///
/// ```no_run
/// use repropack::digest::Sha256Digest;
/// use repropack::extract::{extract_to_cache, ExtractOptions};
/// let sha = Sha256Digest::from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
/// let tree = extract_to_cache("a.squashfs".as_ref(), &sha, "/var/cache/repropack".as_ref(), &ExtractOptions::default())?;
/// println!("{}", tree.path.display());
/// # Ok::<(), repropack::extract::ExtractError>(())
/// ```
pub fn extract_to_cache(
    artifact: &Path,
    sha256: &Sha256Digest,
    cache_root: &Path,
    opts: &ExtractOptions,
) -> Result<CachedTree, ExtractError> {
    let dir = cache_dir_for(cache_root, sha256, opts);
    if is_dir(&dir) {
        return Ok(CachedTree {
            path: dir,
            reused: true,
            report: None,
        });
    }
    let out = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExtractError::Output { path, source }
    };
    let parent = dir.parent().unwrap_or(cache_root).to_path_buf();
    fs::create_dir_all(&parent).map_err(out(&parent))?;
    let mut lock_name = dir.file_name().unwrap_or_default().to_os_string();
    lock_name.push(".lock");
    let lock_path = parent.join(lock_name);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(out(&lock_path))?;
    lock.lock().map_err(out(&lock_path))?;
    let result = extract_locked(artifact, sha256, &dir, opts);
    drop(lock_unlocked(lock));
    result
}

fn extract_locked(
    artifact: &Path,
    sha256: &Sha256Digest,
    dir: &Path,
    opts: &ExtractOptions,
) -> Result<CachedTree, ExtractError> {
    // Another process may have published it while we waited for the lock.
    if is_dir(dir) {
        return Ok(CachedTree {
            path: dir.to_path_buf(),
            reused: true,
            report: None,
        });
    }
    let (actual, _) = hash_file(artifact).map_err(|source| {
        ExtractError::Archive(crate::format::ArchiveError::Io {
            path: artifact.to_path_buf(),
            source,
        })
    })?;
    if actual != *sha256 {
        return Err(ExtractError::HashMismatch {
            artifact: artifact.to_path_buf(),
            expected: *sha256,
            actual,
        });
    }
    let report = extract(artifact, dir, opts)?;
    Ok(CachedTree {
        path: dir.to_path_buf(),
        reused: false,
        report: Some(report),
    })
}

fn lock_unlocked(lock: File) -> io::Result<()> {
    lock.unlock()
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}
