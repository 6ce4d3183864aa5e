//! Perturbed copies of sources, for `repropack check`.
//!
//! [`perturbed_copy`] recreates each source in a fresh temp directory so a
//! second build sees the same logical tree (docs/CONTRACT.md §1) through
//! everything the contract says must not matter (§2): another absolute path
//! and temp dir, files created in reverse name order (so directory listing
//! order and inode numbers differ), another umask while creating, other
//! owners (the copy belongs to the current user), and shifted mtimes.
//!
//! What is kept: content, symlink targets, hard-link grouping, fifos and
//! device nodes, and permission bits (set explicitly with `chmod`, so the
//! umask only affects the moment of creation). Mtimes are shifted by
//! [`MTIME_SHIFT`] seconds — except under `--clamp-mtime`, where a source
//! mtime older than the epoch is part of the input: those are kept exactly
//! and only mtimes at or after the epoch (which clamp to the epoch anyway)
//! are shifted further forward.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use crate::stage::{Source, StageOptions};

/// Seconds added to (or, without `--clamp-mtime`, subtracted from) mtimes.
pub const MTIME_SHIFT: i64 = 1_000_003;

/// A failed copy; names the path.
#[derive(Debug, thiserror::Error)]
#[error("copying {path} for the perturbed build: {source}")]
pub struct CopyError {
    /// The source or copy path being handled.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// The copy: new sources pointing into `root`, and what was perturbed.
#[derive(Debug, Clone)]
pub struct PerturbedSources {
    /// The sources to stage instead, in the same order, with the same
    /// destinations.
    pub sources: Vec<Source>,
    /// What was perturbed, one phrase each (for the marker and messages).
    pub perturbations: Vec<String>,
}

/// Copies `sources` under `root` (which must exist and be empty) with the
/// perturbations of the module docs. Restores the umask before returning.
pub fn perturbed_copy(
    sources: &[Source],
    opts: &StageOptions,
    root: &Path,
) -> Result<PerturbedSources, CopyError> {
    let old = unsafe { libc::umask(0o077) };
    let new_umask = if old == 0o077 { 0o002 } else { 0o077 };
    unsafe { libc::umask(new_umask) };
    let result = copy_all(sources, opts, root);
    unsafe { libc::umask(old) };
    let sources = result?;
    let shift = if opts.clamp_mtime {
        format!(
            "mtimes at or after the epoch shifted by +{MTIME_SHIFT}s (older ones kept: --clamp-mtime)"
        )
    } else {
        format!("mtimes shifted by -{MTIME_SHIFT}s")
    };
    Ok(PerturbedSources {
        sources,
        perturbations: vec![
            "source copied to another temp dir".to_string(),
            "files created in reverse name order".to_string(),
            format!("umask {new_umask:04o} instead of {old:04o} while creating"),
            "owned by the current user".to_string(),
            shift,
        ],
    })
}

struct Copier<'a> {
    opts: &'a StageOptions,
    links: HashMap<(u64, u64), PathBuf>,
    /// (path, mtime) to set once everything exists.
    times: Vec<(PathBuf, FileTime)>,
    /// Directories whose mode is set at the end (they may be read-only).
    dir_modes: Vec<(PathBuf, u32)>,
}

fn copy_all(
    sources: &[Source],
    opts: &StageOptions,
    root: &Path,
) -> Result<Vec<Source>, CopyError> {
    let mut c = Copier {
        opts,
        links: HashMap::new(),
        times: Vec::new(),
        dir_modes: Vec::new(),
    };
    let mut out = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let holder = root.join(format!("src{i}"));
        fs::create_dir(&holder).map_err(|e| err(&holder, e))?;
        let name = src
            .path
            .file_name()
            .map_or_else(|| "root".into(), |n| n.to_os_string());
        let target = holder.join(name);
        let meta = fs::metadata(&src.path).map_err(|e| err(&src.path, e))?;
        c.copy(&src.path, &meta, &target)?;
        out.push(Source {
            path: target,
            dest: src.dest.clone(),
        });
    }
    for (path, mode) in c.dir_modes.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(*mode)).map_err(|e| err(path, e))?;
    }
    for (path, t) in c.times.iter().rev() {
        // Path-based (utimensat, no follow): never opens a fifo or device.
        filetime::set_symlink_file_times(path, *t, *t).map_err(|e| err(path, e))?;
    }
    Ok(out)
}

fn err(path: &Path, source: io::Error) -> CopyError {
    CopyError {
        path: path.to_path_buf(),
        source,
    }
}

impl Copier<'_> {
    fn shifted(&self, meta: &fs::Metadata) -> FileTime {
        let m = meta.mtime();
        let epoch = i64::try_from(self.opts.epoch).unwrap_or(i64::MAX);
        let s = if !self.opts.clamp_mtime {
            m - MTIME_SHIFT
        } else if m >= epoch {
            m.saturating_add(MTIME_SHIFT)
        } else {
            m
        };
        let nanos = if self.opts.clamp_mtime && m < epoch {
            meta.mtime_nsec() as u32
        } else {
            0
        };
        FileTime::from_unix_time(s, nanos)
    }

    fn copy(&mut self, from: &Path, meta: &fs::Metadata, to: &Path) -> Result<(), CopyError> {
        let ft = meta.file_type();
        let mode = meta.mode() & 0o7777;
        if ft.is_dir() {
            fs::create_dir(to).map_err(|e| err(to, e))?;
            self.dir_modes.push((to.to_path_buf(), mode));
            // Make sure we can fill it whatever its mode.
            fs::set_permissions(to, fs::Permissions::from_mode(0o700)).map_err(|e| err(to, e))?;
            let mut children: Vec<_> = fs::read_dir(from)
                .map_err(|e| err(from, e))?
                .map(|d| d.map(|d| d.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| err(from, e))?;
            children.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
            for name in children {
                let child = from.join(&name);
                let child_meta = if self.opts.follow_symlinks {
                    fs::metadata(&child)
                } else {
                    fs::symlink_metadata(&child)
                }
                .map_err(|e| err(&child, e))?;
                self.copy(&child, &child_meta, &to.join(&name))?;
            }
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    fs::hard_link(first, to).map_err(|e| err(to, e))?;
                    return Ok(());
                }
                self.links.insert(key, to.to_path_buf());
            }
            fs::copy(from, to).map_err(|e| err(from, e))?;
            fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(|e| err(to, e))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(from).map_err(|e| err(from, e))?;
            std::os::unix::fs::symlink(&target, to).map_err(|e| err(to, e))?;
            self.times.push((to.to_path_buf(), self.shifted(meta)));
            return Ok(());
        } else if ft.is_socket() {
            // Staging skips sockets; nothing to copy.
            return Ok(());
        } else {
            // A fifo or a device: recreate it with the same type bits.
            let kind = meta.mode() & libc::S_IFMT;
            let c = CString::new(to.as_os_str().as_bytes())
                .map_err(|e| err(to, io::Error::new(io::ErrorKind::InvalidInput, e)))?;
            // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
            let rc = unsafe { libc::mknod(c.as_ptr(), kind | mode, meta.rdev() as libc::dev_t) };
            if rc != 0 {
                return Err(err(to, io::Error::last_os_error()));
            }
            fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(|e| err(to, e))?;
        }
        self.times.push((to.to_path_buf(), self.shifted(meta)));
        Ok(())
    }
}
