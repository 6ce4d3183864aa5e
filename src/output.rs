//! Atomic output files (CONTRACT.md §6): bytes go to a temp file in the
//! destination directory, which is fsynced and renamed into place only on
//! [`AtomicFile::commit`]. Dropping an uncommitted `AtomicFile` removes the
//! temp file, so a failed pack leaves neither a partial file nor litter.
//!
//! ```no_run
//! use std::io::Write;
//! let mut out = repropack::output::AtomicFile::create("out.bin".as_ref())?;
//! out.file_mut().write_all(b"data")?;
//! out.commit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

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

/// A temp file that becomes `path` on commit.
pub struct AtomicFile {
    tmp: NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temp file next to `path`. Fails if the directory does not
    /// exist or `path` is a directory.
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
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        // 0666 filtered by the umask, like any file a tool creates (tempfile
        // defaults to 0600, which would publish private artifacts).
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(err)?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temp file to write to.
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Turns an I/O error into an [`OutputError`] naming the final path.
    pub fn error(&self, source: io::Error) -> OutputError {
        OutputError {
            path: self.path.clone(),
            source,
        }
    }

    /// Fsyncs the temp file, renames it to the final path and fsyncs the
    /// directory.
    pub fn commit(self) -> Result<(), OutputError> {
        let path = self.path;
        let err = |source| OutputError {
            path: path.clone(),
            source,
        };
        self.tmp.as_file().sync_all().map_err(err)?;
        self.tmp.persist(&path).map_err(|e| err(e.error))?;
        File::open(parent_dir(&path))
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
