//! The content-addressed cache.
//!
//! # Layout
//!
//! Keyed by the hash only (its algorithm and digest), so the same bytes
//! fetched from two URLs are stored once per algorithm they are asked for
//! by:
//!
//! ```text
//! <root>/<alg>/<first two hex digits>/<hex>          the artifact, mode 0444
//! <root>/<alg>/<first two hex digits>/<hex>.record   store-time record (JSON)
//! <root>/<alg>/<first two hex digits>/<hex>.lock     per-hash lock (flock)
//! <root>/<alg>/<first two hex digits>/.<hex>.*.tmp   download in progress
//! ```
//!
//! `<alg>` is the algorithm's [`name`](crate::digest::DigestAlgorithm::name):
//! `sha256` (the layout entries have always had), `sha384`, `sha512`,
//! `sha3-224`, `sha3-256`, `sha3-384`, `sha3-512`.
//!
//! # Invariants
//!
//! - An entry appears at its final path only by `rename` of a temp file in
//!   the same directory whose bytes were hashed while written and matched,
//!   after `fsync` of the file (and of the directory after the rename).
//! - Every operation on one hash runs under [`CacheLock`]: an exclusive
//!   `flock` (`std::fs::File::lock`) on the `.lock` file. The kernel drops it
//!   when the holder dies, so a crash never leaves the hash locked; the
//!   empty `.lock` file itself may remain and is harmless. Temp files of the
//!   hash found while holding the lock belong to a dead process and are
//!   removed.
//! - A hit is answered without re-hashing when the entry's size, inode,
//!   mtime and ctime equal the record written right after the rename (a
//!   write, truncate, chmod or replacement of the entry changes ctime).
//!   Otherwise (or with `verify`) the entry is re-hashed; a mismatch removes
//!   it and the caller fetches again. A corrupted entry is never served.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::digest::{ContentDigest, DigestHasher, hash_file_with};
use crate::output::AtomicFile;

/// A cache operation failed; names the path and what was being done.
#[derive(Debug, thiserror::Error)]
#[error("cache {}: {op}: {source}", path.display())]
pub struct CacheError {
    /// The cache file or directory concerned.
    pub path: PathBuf,
    /// What was being done, in words (`lock`, `stat entry`, `write download`, ...).
    pub op: &'static str,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl CacheError {
    /// True if the disk or quota is full.
    pub fn is_storage_full(&self) -> bool {
        matches!(
            self.source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
        )
    }
}

fn err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> CacheError + use<> {
    let path = path.to_path_buf();
    move |source| CacheError { path, op, source }
}

/// A cache rooted at a directory. Cheap to create; touches the disk only
/// when used.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Proof that the caller holds the exclusive lock of one hash. Dropping it
/// releases the lock.
#[derive(Debug)]
pub struct CacheLock {
    digest: ContentDigest,
    _file: File,
}

/// What is recorded about an entry right after it is stored.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Record {
    size: u64,
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Record {
    fn of(meta: &fs::Metadata) -> Record {
        Record {
            size: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// A download in progress: a temp file in the entry's directory plus the
/// running digest (of the locked hash's algorithm) of what was written to
/// it. Dropping it deletes the file.
pub struct Download {
    tmp: tempfile::NamedTempFile,
    hasher: DigestHasher,
}

impl Download {
    /// Appends bytes and hashes them.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tmp.as_file_mut().write_all(bytes)?;
        self.hasher.update(bytes);
        Ok(())
    }
    /// Bytes written since the last reset.
    pub fn written(&self) -> u64 {
        self.hasher.size()
    }
    /// Discards what was written (before a retry).
    pub fn reset(&mut self) -> io::Result<()> {
        let f = self.tmp.as_file_mut();
        f.set_len(0)?;
        f.rewind()?;
        self.hasher = DigestHasher::new(self.hasher.algorithm());
        Ok(())
    }
    /// The digest and size of what was written.
    pub fn digest(&self) -> (ContentDigest, u64) {
        self.hasher.clone().finish()
    }
    /// The temp file's path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
}

impl Cache {
    /// A cache rooted at `root` (created on first use).
    pub fn new(root: PathBuf) -> Cache {
        Cache { root }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<alg>/<2 hex>`: the directory of one hash (`<root>/sha256/..`
    /// for a [`Sha256Digest`](crate::digest::Sha256Digest)).
    pub fn shard_dir(&self, digest: impl Into<ContentDigest>) -> PathBuf {
        let digest = digest.into();
        let hex = digest.to_hex();
        self.root.join(digest.algorithm().name()).join(&hex[..2])
    }

    /// Where the verified bytes of `digest` live.
    pub fn entry_path(&self, digest: impl Into<ContentDigest>) -> PathBuf {
        let digest = digest.into();
        self.shard_dir(digest).join(digest.to_hex())
    }

    fn sibling(&self, digest: ContentDigest, suffix: &str) -> PathBuf {
        self.shard_dir(digest)
            .join(format!("{}.{suffix}", digest.to_hex()))
    }

    fn record_path(&self, digest: ContentDigest) -> PathBuf {
        self.sibling(digest, "record")
    }

    /// Takes the exclusive lock of `digest`, blocking until other holders
    /// (in this or other processes) release it, then removes temp files
    /// left by holders that died.
    pub fn lock(&self, digest: impl Into<ContentDigest>) -> Result<CacheLock, CacheError> {
        let sha256 = digest.into();
        let dir = self.shard_dir(sha256);
        fs::create_dir_all(&dir).map_err(err(&dir, "create directory"))?;
        let path = self.sibling(sha256, "lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err(&path, "open lock file"))?;
        file.lock().map_err(err(&path, "lock"))?;
        let lock = CacheLock {
            digest: sha256,
            _file: file,
        };
        self.remove_stale_temps(&lock)?;
        Ok(lock)
    }

    fn remove_stale_temps(&self, lock: &CacheLock) -> Result<(), CacheError> {
        let dir = self.shard_dir(lock.digest);
        let prefix = format!(".{}.", lock.digest.to_hex());
        for entry in fs::read_dir(&dir).map_err(err(&dir, "list directory"))? {
            let entry = entry.map_err(err(&dir, "list directory"))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let p = entry.path();
                remove_if_present(&p).map_err(err(&p, "remove stale temp file"))?;
            }
        }
        Ok(())
    }

    /// Answers from the cache: `Some((path, size))` if the entry is present
    /// and valid. With `verify` (or when the store-time record does not match
    /// the file) the entry is re-hashed; an entry with other bytes is removed
    /// and `None` returned.
    pub fn lookup(
        &self,
        lock: &CacheLock,
        verify: bool,
    ) -> Result<Option<(PathBuf, u64)>, CacheError> {
        let sha256 = lock.digest;
        let path = self.entry_path(sha256);
        let record_path = self.record_path(sha256);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                remove_if_present(&record_path).map_err(err(&record_path, "remove record"))?;
                return Ok(None);
            }
            Err(e) => return Err(err(&path, "stat entry")(e)),
        };
        if !meta.is_file() {
            return Err(err(&path, "check entry")(io::Error::new(
                io::ErrorKind::InvalidData,
                "cache entry is not a regular file; remove it",
            )));
        }
        if !verify && self.read_record(sha256).as_ref() == Some(&Record::of(&meta)) {
            return Ok(Some((path, meta.len())));
        }
        let (actual, size) =
            hash_file_with(sha256.algorithm(), &path).map_err(err(&path, "re-hash entry"))?;
        if actual != sha256 {
            remove_if_present(&record_path).map_err(err(&record_path, "remove record"))?;
            remove_if_present(&path).map_err(err(&path, "remove corrupted entry"))?;
            return Ok(None);
        }
        self.write_record(sha256, &path)?;
        Ok(Some((path, size)))
    }

    fn read_record(&self, sha256: ContentDigest) -> Option<Record> {
        let bytes = fs::read(self.record_path(sha256)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_record(&self, sha256: ContentDigest, entry: &Path) -> Result<(), CacheError> {
        let meta = fs::metadata(entry).map_err(err(entry, "stat entry"))?;
        let path = self.record_path(sha256);
        let json = serde_json::to_vec(&Record::of(&meta))
            .map_err(|e| err(&path, "encode record")(io::Error::other(e)))?;
        let mut out =
            AtomicFile::create(&path).map_err(|e| err(&path, "write record")(e.source))?;
        out.file_mut()
            .write_all(&json)
            .map_err(err(&path, "write record"))?;
        out.commit()
            .map_err(|e| err(&path, "write record")(e.source))
    }

    /// Starts a download of the locked hash into a temp file next to the
    /// entry.
    pub fn begin(&self, lock: &CacheLock) -> Result<Download, CacheError> {
        let dir = self.shard_dir(lock.digest);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", lock.digest.to_hex()))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(err(&dir, "create temp file"))?;
        Ok(Download {
            tmp,
            hasher: DigestHasher::new(lock.digest.algorithm()),
        })
    }

    /// Names the temp file in an error raised while writing a download.
    pub fn download_error(&self, download: &Download, source: io::Error) -> CacheError {
        err(download.path(), "write download")(source)
    }

    /// Publishes a download whose digest the caller checked equals the
    /// locked hash: fsync, mode 0444, rename, fsync the directory, write the
    /// record. Returns the entry's path.
    pub fn commit(&self, lock: &CacheLock, download: Download) -> Result<PathBuf, CacheError> {
        let sha256 = lock.digest;
        let (actual, _) = download.digest();
        let path = self.entry_path(sha256);
        if actual != sha256 {
            return Err(err(&path, "commit")(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "download hashes to {}, not {}",
                    actual.to_hex(),
                    sha256.to_hex()
                ),
            )));
        }
        let tmp_path = download.path().to_path_buf();
        let file = download.tmp.as_file();
        file.sync_all().map_err(err(&tmp_path, "fsync"))?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(err(&tmp_path, "chmod"))?;
        download
            .tmp
            .persist(&path)
            .map_err(|e| err(&path, "rename into place")(e.error))?;
        let dir = self.shard_dir(sha256);
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err(&dir, "fsync directory"))?;
        self.write_record(sha256, &path)?;
        Ok(path)
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{DigestAlgorithm, Sha256Digest};

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// An empty cache in a temp dir, and the digest of `bytes`.
    fn cache_wanting(bytes: &[u8]) -> (tempfile::TempDir, Cache, Sha256Digest) {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().to_path_buf());
        (root, cache, Sha256Digest::of(bytes))
    }

    /// Locks `want` and starts a download of it.
    fn begin(cache: &Cache, want: Sha256Digest) -> (CacheLock, Download) {
        let lock = cache.lock(want).unwrap();
        let d = cache.begin(&lock).unwrap();
        (lock, d)
    }

    #[test]
    fn commit_refuses_a_download_of_other_bytes() {
        let (_root, cache, want) = cache_wanting(b"abc");
        let (lock, mut d) = begin(&cache, want);
        d.write(b"abd").unwrap();
        assert!(cache.commit(&lock, d).is_err());
        let hex = want.to_hex();
        assert_eq!(names(&cache.shard_dir(want)), vec![format!("{hex}.lock")]);
    }

    #[test]
    fn entry_without_record_is_rehashed_then_recorded() {
        let (_root, cache, want) = cache_wanting(b"abc");
        let (lock, mut d) = begin(&cache, want);
        d.write(b"ab").unwrap();
        d.reset().unwrap();
        d.write(b"abc").unwrap();
        let path = cache.commit(&lock, d).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        fs::remove_file(cache.record_path(want.into())).unwrap();
        assert_eq!(cache.lookup(&lock, false).unwrap(), Some((path.clone(), 3)));
        assert!(cache.record_path(want.into()).exists());
        assert_eq!(cache.lookup(&lock, false).unwrap(), Some((path, 3)));
    }

    #[test]
    fn lock_removes_temp_files_of_dead_holders_of_the_same_hash_only() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().to_path_buf());
        let a = Sha256Digest::of(b"a");
        let b = Sha256Digest::of(b"b");
        fs::create_dir_all(cache.shard_dir(a)).unwrap();
        fs::create_dir_all(cache.shard_dir(b)).unwrap();
        let stale_a = cache.shard_dir(a).join(format!(".{}.XYZ.tmp", a.to_hex()));
        let other_b = cache.shard_dir(b).join(format!(".{}.XYZ.tmp", b.to_hex()));
        fs::write(&stale_a, b"partial").unwrap();
        fs::write(&other_b, b"in progress").unwrap();
        let _lock = cache.lock(a).unwrap();
        assert!(!stale_a.exists());
        assert!(other_b.exists());
    }

    #[test]
    fn entries_of_other_algorithms_live_beside_sha256_ones() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().to_path_buf());
        let sha256 = Sha256Digest::of(b"abc");
        let sha512 = ContentDigest::of(DigestAlgorithm::Sha512, b"abc");
        let hex = sha256.to_hex();
        assert_eq!(
            cache.entry_path(sha256),
            root.path().join("sha256").join(&hex[..2]).join(&hex)
        );
        let hex = sha512.to_hex();
        assert_eq!(
            cache.entry_path(sha512),
            root.path().join("sha512").join(&hex[..2]).join(&hex)
        );
        let lock = cache.lock(sha512).unwrap();
        let mut d = cache.begin(&lock).unwrap();
        d.write(b"abc").unwrap();
        let path = cache.commit(&lock, d).unwrap();
        assert_eq!(cache.lookup(&lock, true).unwrap(), Some((path, 3)));
    }
}
