//! Atomic output files (docs/CONTRACT.md §6): bytes never appear at the
//! final path until [`AtomicFile::commit`], and a process killed at any
//! moment leaves no name behind.
//!
//! How: the bytes go to an unnamed file (`O_TMPFILE`) in the destination
//! directory. On commit it is fsynced, linked under a temp name
//! (`.NAME.repropack-XXXXXXXXXXXX`) and renamed over the final path, and the
//! directory is fsynced. Dropping an uncommitted `AtomicFile`, or a kill
//! before the link, leaves nothing: the kernel frees an unnamed file with
//! its last descriptor.
//!
//! Where the filesystem has no `O_TMPFILE` (or `/proc` is not mounted, so
//! the file cannot be linked), the temp name exists from the start. Either
//! way the file holds an exclusive `flock` for as long as its writer lives,
//! so a temp name that a killed process left (after the link, or in the
//! fallback) is known to be dead, not busy: [`AtomicFile::create`] removes
//! every such name in the directory whose lock it can take. A lock, never a
//! guess from pids or ages.
//!
//! ```
//! use std::io::Write;
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("out.bin");
//! let mut out = repropack::output::AtomicFile::create(&path)?;
//! out.file_mut().write_all(b"data")?;
//! assert!(!path.exists());
//! out.commit()?;
//! assert_eq!(std::fs::read(&path)?, b"data");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

/// Marks the temp names this module makes: `.NAME` + this + 12 hex digits.
const TEMP_MARK: &[u8] = b".repropack-";
/// Hex digits after [`TEMP_MARK`].
const TEMP_RANDOM: usize = 12;

/// Ends the temp names of repropack before temps held a lock:
/// `.NAME.` + [`LEGACY_RANDOM`] ASCII alphanumerics + this (`tempfile`'s).
const LEGACY_SUFFIX: &[u8] = b".tmp";
/// Random characters in a legacy temp name.
const LEGACY_RANDOM: usize = 6;
/// A legacy temp is removed only if its mtime is at least this old. Its
/// writer held no lock; an open descriptor shows it alive (see
/// `open_files`), and this covers writers no `/proc` here can show (another
/// PID namespace sharing the directory).
pub const LEGACY_TEMP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Failure to create, write or publish an output file.
#[derive(Debug, thiserror::Error)]
#[error("output {path}: {source}")]
pub struct OutputError {
    /// The output file (its final path, not the temp file's).
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl From<OutputError> for io::Error {
    fn from(e: OutputError) -> io::Error {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// A file that becomes `path` on commit.
pub struct AtomicFile {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    /// The temp name in `dir`, when the file has one before commit (the
    /// fallback without `O_TMPFILE`).
    named: Option<PathBuf>,
}

impl AtomicFile {
    /// Creates the file that will become `path`, in `path`'s directory
    /// (mode 0666 minus the umask, as any file a tool creates), after
    /// removing temp files that dead writers left there. Fails if the
    /// directory does not exist or `path` is a directory.
    pub fn create(path: &Path) -> Result<AtomicFile, OutputError> {
        let err = |source| OutputError {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Err(err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        let name = path.file_name().ok_or_else(|| {
            err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "output path has no file name",
            ))
        })?;
        let dir = parent_dir(path);
        if !dir.is_dir() {
            return Err(err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("directory {} does not exist", dir.display()),
            )));
        }
        sweep_dead_temps(dir);
        sweep_legacy_temps(dir, name, std::time::SystemTime::now());
        let (file, named) = match unnamed_file(dir) {
            Some(file) => (file, None),
            None => {
                let (file, tmp) = named_file(dir, name).map_err(err)?;
                (file, Some(tmp))
            }
        };
        Ok(AtomicFile {
            file,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            named,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file to write to (it may be read back too).
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Turns an I/O error into an [`OutputError`] naming the final path.
    pub fn error(&self, source: io::Error) -> OutputError {
        OutputError {
            path: self.path.clone(),
            source,
        }
    }

    /// Fsyncs the file, gives it its final name (replacing what was there)
    /// and fsyncs the directory.
    pub fn commit(self) -> Result<(), OutputError> {
        self.publish(|tmp, path| {
            fs::rename(tmp, path).inspect_err(|_| {
                let _ = fs::remove_file(tmp);
            })
        })
    }

    /// Like [`commit`](AtomicFile::commit), but fails with
    /// `AlreadyExists` instead of replacing a file already at the final
    /// path (a link, unlike a rename, never replaces).
    pub fn commit_new(self) -> Result<(), OutputError> {
        self.publish(|tmp, path| {
            let linked = fs::hard_link(tmp, path);
            let _ = fs::remove_file(tmp);
            linked
        })
    }

    /// Fsyncs the file, gives it a temp name if it has none, moves that
    /// name to the final path with `place`, and fsyncs the directory.
    fn publish(
        mut self,
        place: impl FnOnce(&Path, &Path) -> io::Result<()>,
    ) -> Result<(), OutputError> {
        let err = |source| OutputError {
            path: self.path.clone(),
            source,
        };
        self.file.sync_all().map_err(err)?;
        let tmp = match self.named.take() {
            Some(tmp) => tmp,
            None => {
                let name = self.path.file_name().unwrap_or_default().to_owned();
                link_unnamed(&self.file, &self.dir, &name).map_err(err)?
            }
        };
        place(&tmp, &self.path).map_err(err)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Uncommitted: only the fallback has a name to remove.
        if let Some(tmp) = self.named.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// An unnamed, locked file in `dir`, if the filesystem and `/proc` allow
/// linking one later.
fn unnamed_file(dir: &Path) -> Option<File> {
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    let fd = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .ok()?;
    let file = File::from(fd);
    file.lock().ok()?;
    Some(file)
}

/// Links the unnamed `file` into `dir` under a fresh temp name for `name`.
fn link_unnamed(file: &File, dir: &Path, name: &OsStr) -> io::Result<PathBuf> {
    let fd_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
    loop {
        let tmp = dir.join(temp_name(name));
        match rustix::fs::linkat(
            rustix::fs::CWD,
            fd_path.as_str(),
            rustix::fs::CWD,
            &tmp,
            AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => return Ok(tmp),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A new temp file with a name for `name` in `dir`, holding its lock. A
/// sweeper may take the name away between creating and locking it; then
/// the name no longer leads to this file and another one is made.
fn named_file(dir: &Path, name: &OsStr) -> io::Result<(File, PathBuf)> {
    loop {
        let tmp = dir.join(temp_name(name));
        let fd = match rustix::fs::open(
            &tmp,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        };
        let file = File::from(fd);
        file.lock()?;
        let ours = file.metadata()?;
        match fs::symlink_metadata(&tmp) {
            Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => return Ok((file, tmp)),
            _ => continue,
        }
    }
}

/// `.NAME.repropack-XXXXXXXXXXXX` with 12 random hex digits.
fn temp_name(name: &OsStr) -> OsString {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let random = h.finish() & ((1 << (4 * TEMP_RANDOM)) - 1);
    let mut out = OsString::from(".");
    out.push(name);
    out.push(OsStr::from_bytes(TEMP_MARK));
    out.push(format!("{random:0width$x}", width = TEMP_RANDOM));
    out
}

/// True for a name [`temp_name`] makes.
fn is_temp_name(name: &[u8]) -> bool {
    if !name.starts_with(b".") || name.len() < TEMP_MARK.len() + TEMP_RANDOM + 2 {
        return false;
    }
    let (head, random) = name.split_at(name.len() - TEMP_RANDOM);
    head.ends_with(TEMP_MARK) && random.iter().all(|b| b.is_ascii_hexdigit())
}

/// Removes the temp files in `dir` whose writers are gone: those whose
/// exclusive lock can be taken right now. Best effort: a directory that
/// cannot be read is left alone.
fn sweep_dead_temps(dir: &Path) {
    sweep_locked(dir, is_temp_name, |p| {
        let _ = fs::remove_file(p);
    });
}

/// True for `.NAME.XXXXXX.tmp`, the legacy temp name for `name`.
fn is_legacy_temp_name(file: &[u8], name: &[u8]) -> bool {
    let random = file
        .strip_prefix(b".")
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix(b"."))
        .and_then(|r| r.strip_suffix(LEGACY_SUFFIX));
    random.is_some_and(|r| r.len() == LEGACY_RANDOM && r.iter().all(u8::is_ascii_alphanumeric))
}

/// Removes the legacy temps of `name` in `dir` (`.NAME.XXXXXX.tmp`, left by
/// killed runs of repropack versions whose temps held no lock) that are
/// surely dead: a regular file with one link, owned by this user (so its
/// writer, if alive, is this user's or root's and visible in `/proc`),
/// unmodified for [`LEGACY_TEMP_MIN_AGE`], open in no process, and not
/// locked. Nothing is removed when `/proc` cannot be read. Best effort.
fn sweep_legacy_temps(dir: &Path, name: &OsStr, now: std::time::SystemTime) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let candidates: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| is_legacy_temp_name(e.file_name().as_bytes(), name.as_bytes()))
        .map(|e| e.path())
        .collect();
    if candidates.is_empty() {
        return;
    }
    let Some(open) = open_files() else {
        return;
    };
    let uid = rustix::process::geteuid().as_raw();
    for path in candidates {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= LEGACY_TEMP_MIN_AGE);
        if !meta.file_type().is_file()
            || meta.nlink() != 1
            || meta.uid() != uid
            || !old
            || open.contains(&(meta.dev(), meta.ino()))
        {
            continue;
        }
        let Ok(fd) = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) else {
            continue;
        };
        let held = File::from(fd);
        // The name must still lead to the file judged above.
        let same = held
            .metadata()
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if same && held.try_lock().is_ok() {
            let _ = fs::remove_file(&path);
        }
    }
}

/// (device, inode) of every file some process has open, as far as
/// `/proc/PID/fd` shows (all processes of this user; all of them for
/// root); `None` if `/proc` cannot be listed.
fn open_files() -> Option<std::collections::HashSet<(u64, u64)>> {
    let mut open = std::collections::HashSet::new();
    for proc_entry in fs::read_dir("/proc").ok()?.flatten() {
        let pid = proc_entry.file_name();
        if pid.is_empty() || !pid.as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Ok(fds) = fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            // Following the fd's link stats the open file itself.
            if let Ok(m) = fs::metadata(fd.path()) {
                open.insert((m.dev(), m.ino()));
            }
        }
    }
    Some(open)
}

/// For each entry of `dir` whose name `matches` and whose lock no live
/// process holds, calls `remove` while holding that lock. Shared with the
/// extractor's staging directories.
pub(crate) fn sweep_locked(dir: &Path, matches: impl Fn(&[u8]) -> bool, remove: impl Fn(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !matches(e.file_name().as_bytes()) {
            continue;
        }
        let path = e.path();
        let Ok(fd) = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) else {
            continue;
        };
        let held = File::from(fd);
        match held.try_lock() {
            Ok(()) => remove(&path),
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => {}
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn temp_names_are_recognized_and_nothing_else() {
        let n = temp_name(OsStr::new("a.tar"));
        assert!(is_temp_name(n.as_bytes()), "{n:?}");
        assert!(!is_temp_name(b".a.tar.abc123.tmp"));
        assert!(!is_temp_name(b"a.tar.repropack-0123456789ab"));
        assert!(!is_temp_name(b".a.tar.repropack-0123456789zz"));
    }

    #[test]
    fn the_fallback_name_is_removed_on_drop_and_replaced_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, tmp) = named_file(dir.path(), OsStr::new("x")).unwrap();
        f.write_all(b"1").unwrap();
        let out = AtomicFile {
            file: f,
            path: dir.path().join("x"),
            dir: dir.path().to_path_buf(),
            named: Some(tmp),
        };
        drop(out);
        assert_eq!(entries(dir.path()), 0);
        let (mut f, tmp) = named_file(dir.path(), OsStr::new("x")).unwrap();
        f.write_all(b"2").unwrap();
        AtomicFile {
            file: f,
            path: dir.path().join("x"),
            dir: dir.path().to_path_buf(),
            named: Some(tmp),
        }
        .commit()
        .unwrap();
        assert_eq!(entries(dir.path()), 1);
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"2");
    }

    #[test]
    fn legacy_temp_names_are_recognized_for_their_output_only() {
        assert!(is_legacy_temp_name(b".a.tar.Ab3xY9.tmp", b"a.tar"));
        for other in [
            &b".b.tar.Ab3xY9.tmp"[..],
            b".a.tar.Ab3xY.tmp",
            b".a.tar.Ab3xY9z.tmp",
            b".a.tar.Ab-xY9.tmp",
            b".a.tar.Ab3xY9.tmpx",
            b"a.tar.Ab3xY9.tmp",
            b".a.tar.repropack-0123456789ab",
        ] {
            assert!(
                !is_legacy_temp_name(other, b"a.tar"),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn a_legacy_temp_is_removed_only_when_old_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".a.Ab3xY9.tmp");
        let open = dir.path().join(".a.Zz9q8W.tmp");
        let fresh = dir.path().join(".a.Qw1Er2.tmp");
        for p in [&dead, &open, &fresh] {
            fs::write(p, b"partial").unwrap();
        }
        let writer = File::options().append(true).open(&open).unwrap();
        let written = std::time::SystemTime::now();
        let later = written + LEGACY_TEMP_MIN_AGE;
        let set = |p: &Path, t| {
            filetime::set_file_mtime(p, filetime::FileTime::from_system_time(t)).unwrap();
        };
        set(&dead, written);
        set(&open, written);
        set(&fresh, later);
        // Still young a second before the age is reached.
        sweep_legacy_temps(
            dir.path(),
            OsStr::new("a"),
            later - std::time::Duration::from_secs(1),
        );
        assert!(dead.exists());
        sweep_legacy_temps(dir.path(), OsStr::new("a"), later);
        assert!(!dead.exists());
        assert!(open.exists(), "a temp open in a live process is kept");
        assert!(fresh.exists(), "a recently modified temp is kept");
        drop(writer);
        sweep_legacy_temps(dir.path(), OsStr::new("a"), later);
        assert!(!open.exists(), "closed and old: removed");
        assert!(fresh.exists());
    }

    #[test]
    fn a_live_writers_temp_survives_the_sweep_and_a_dead_ones_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (_live, live_tmp) = named_file(dir.path(), OsStr::new("a")).unwrap();
        // A dead writer's temp: the name exists, nobody holds its lock.
        let dead = dir.path().join(temp_name(OsStr::new("b")));
        fs::write(&dead, b"partial").unwrap();
        // Someone else's file with a similar name is never touched.
        fs::write(dir.path().join(".b.tmp"), b"theirs").unwrap();
        sweep_dead_temps(dir.path());
        assert!(live_tmp.exists());
        assert!(!dead.exists());
        assert!(dir.path().join(".b.tmp").exists());
    }
}
