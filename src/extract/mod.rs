//! Safe extraction of an artifact into a directory.
//!
//! The model: extraction is all or nothing. Entries are read in archive
//! order (see [`crate::format`]) and written into a fresh private staging
//! directory created next to `DIR` (same filesystem); only when every entry
//! passed every rule and was written is the staging directory renamed to
//! `DIR`. On any error it is removed, so `DIR` is untouched (absent, or the
//! empty directory it was) and no temp litter stays behind.
//!
//! Safety is by construction, not by checking paths after the fact:
//! - every path is normalized with [`normalize_path`]: absolute paths, `..`
//!   components and NUL bytes are refused, never rewritten;
//! - every parent component must be a directory this extraction created (or
//!   creates implicitly for a missing parent); an entry whose parent is a
//!   symlink, file or device created earlier is refused. On top of that
//!   bookkeeping, every file-system call is made relative to a directory file
//!   descriptor opened component by component from the staging root with
//!   `O_NOFOLLOW | O_DIRECTORY`, and files are created with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`, so the kernel itself never follows a
//!   symlink while extracting;
//! - symlinks are created verbatim and never followed. By default any target
//!   is allowed, including absolute ones (a root filesystem needs
//!   `/usr/bin/python -> /usr/bin/python3.11`); they are inert data until
//!   someone follows them. [`SymlinkPolicy::RejectEscaping`] refuses targets
//!   that are absolute or resolve (through other symlinks of the archive)
//!   outside `DIR`;
//! - hard links must name an earlier, non-directory entry of the same
//!   archive (after normalization) and are made with `linkat` without
//!   following symlinks;
//! - fifos and device nodes are refused unless [`ExtractOptions::specials`];
//!   sockets are skipped with a warning;
//! - setuid, setgid and sticky bits are dropped unless
//!   [`ExtractOptions::keep_special_bits`]; owners are not applied unless
//!   [`ExtractOptions::same_owner`], extended attributes not unless
//!   [`ExtractOptions::xattrs`]; both are set without following a symlink
//!   (`fchown`/`fsetxattr` on the file just created, `lchown`/`lsetxattr`
//!   on a symlink or special file), after the content is written and the
//!   owner set (both clear `security.capability`) and before the mode;
//!   failing to set one fails the extraction naming the entry and the
//!   owner or attribute, unless [`ExtractOptions::best_effort`];
//! - limits on the total content size, the entry count and the path length
//!   stop archive bombs before the bytes are written.
//!
//! Modes and modification times are applied as stored (after dropping the
//! special bits); directories get theirs last, deepest first, so a read-only
//! directory does not block its own extraction. A missing parent directory is
//! created with mode 0755.
//!
//! ```no_run
//! use repropack::extract::{extract, ExtractOptions};
//! let report = extract("rootfs.squashfs".as_ref(), "rootfs".as_ref(), &ExtractOptions::default())?;
//! println!("{} entries, {} bytes", report.entries, report.bytes);
//! # Ok::<(), repropack::extract::ExtractError>(())
//! ```

mod cache;
mod symlinks;
mod writer;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Sha256Digest;
use crate::format::{self, ArchiveError, PathProblem, ReadOptions, normalize_path};

pub use cache::{CachedTree, cache_dir_for, extract_to_cache};

/// Default [`ExtractOptions::max_size`]: 16 GiB of file content.
pub use crate::format::DEFAULT_MAX_SIZE;
/// Default [`ExtractOptions::max_entries`].
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;
/// Default [`ExtractOptions::max_path_len`] (Linux `PATH_MAX`).
pub const DEFAULT_MAX_PATH_LEN: usize = 4096;
/// Longest single path component (Linux `NAME_MAX`); always enforced.
pub const NAME_MAX: usize = 255;

/// What to do with symlink targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SymlinkPolicy {
    /// Create every symlink verbatim, absolute targets included; never
    /// follow one while extracting.
    #[default]
    Keep,
    /// Also refuse absolute targets and targets that resolve outside `DIR`
    /// (resolving through the archive's other symlinks, after all entries
    /// are in place).
    RejectEscaping,
}

/// How to extract. `Default` gives the documented defaults.
#[derive(Debug, Clone, Serialize)]
pub struct ExtractOptions {
    /// Create fifos and device nodes instead of refusing the archive.
    pub specials: bool,
    /// Keep setuid, setgid and sticky bits.
    pub keep_special_bits: bool,
    /// Apply the stored uid/gid (needs privileges).
    pub same_owner: bool,
    /// Apply the stored extended attributes: `user.*` and every other
    /// namespace always, `security.*` and `trusted.*` only when running as
    /// root (otherwise they are skipped and counted in
    /// [`ExtractReport::skipped_xattrs`]).
    pub xattrs: bool,
    /// A stored owner or attribute that cannot be set is a warning instead
    /// of an error.
    pub best_effort: bool,
    /// Which symlink targets are allowed.
    pub symlinks: SymlinkPolicy,
    /// Most bytes of file content (sum of regular file sizes).
    pub max_size: u64,
    /// Most entries (every header or directory entry counts).
    pub max_entries: u64,
    /// Longest normalized path in bytes.
    pub max_path_len: usize,
    /// `syncfs` the staging directory before publishing it, so a crash
    /// never leaves a published tree with missing content.
    pub sync: bool,
    /// Counts entries and bytes extracted, for a progress display.
    #[serde(skip)]
    pub progress: Option<std::sync::Arc<crate::progress::Counters>>,
}

impl Default for ExtractOptions {
    fn default() -> ExtractOptions {
        ExtractOptions {
            specials: false,
            keep_special_bits: false,
            same_owner: false,
            xattrs: false,
            best_effort: false,
            symlinks: SymlinkPolicy::Keep,
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_path_len: DEFAULT_MAX_PATH_LEN,
            sync: true,
            progress: None,
        }
    }
}

/// What an extraction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtractReport {
    /// `tar`, `tar.gz` or `squashfs`.
    pub format: &'static str,
    /// Entries read from the archive, the root (`.`) and skipped sockets
    /// included.
    pub entries: u64,
    /// Directories created below the root, implied parents included.
    pub dirs: u64,
    /// Regular files written.
    pub files: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Fifos and device nodes created (only with `specials`).
    pub specials: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries whose setuid/setgid/sticky bits were dropped.
    pub dropped_special_bits: u64,
    /// `security.*`/`trusted.*` attributes not applied because the process
    /// is not root (only with `xattrs`).
    pub skipped_xattrs: u64,
    /// Owners and attributes that could not be set (only with
    /// `best_effort`; each has a warning).
    pub unapplied: u64,
    /// Warnings (skipped sockets, unapplied owners and attributes), one
    /// line each.
    pub warnings: Vec<String>,
}

/// A safety rule an entry broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The entry path is absolute.
    AbsolutePath,
    /// The entry path has a `..` component.
    DotDot,
    /// The entry path has a NUL byte.
    NulByte,
    /// The normalized path is longer than [`ExtractOptions::max_path_len`].
    PathTooLong,
    /// A path component is longer than [`NAME_MAX`] bytes.
    NameTooLong,
    /// A parent component is a symlink created by an earlier entry.
    ThroughSymlink,
    /// A parent component is a file or special file created earlier.
    ThroughNonDirectory,
    /// The path was already extracted (only directories may repeat).
    Duplicate,
    /// The root (`.`) entry is not a directory.
    RootNotDirectory,
    /// A hard link's target is absolute or has `..`.
    HardLinkOutside,
    /// A hard link's target is not an earlier entry of the archive.
    HardLinkMissing,
    /// A hard link's target is a directory.
    HardLinkToDirectory,
    /// A symlink target is absolute or resolves outside DIR (only with
    /// [`SymlinkPolicy::RejectEscaping`]).
    SymlinkEscapes,
    /// A symlink with an empty target or a NUL byte in it.
    BadSymlinkTarget,
    /// A fifo or device node without `specials`.
    SpecialFile,
    /// The file content would exceed [`ExtractOptions::max_size`].
    TotalSize,
    /// The archive has more than [`ExtractOptions::max_entries`] entries.
    EntryCount,
}

impl Rule {
    /// A stable kebab-case name, as in messages and `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::AbsolutePath => "absolute-path",
            Rule::DotDot => "dot-dot",
            Rule::NulByte => "nul-byte",
            Rule::PathTooLong => "path-too-long",
            Rule::NameTooLong => "name-too-long",
            Rule::ThroughSymlink => "through-symlink",
            Rule::ThroughNonDirectory => "through-non-directory",
            Rule::Duplicate => "duplicate",
            Rule::RootNotDirectory => "root-not-directory",
            Rule::HardLinkOutside => "hardlink-outside",
            Rule::HardLinkMissing => "hardlink-missing",
            Rule::HardLinkToDirectory => "hardlink-to-directory",
            Rule::SymlinkEscapes => "symlink-escapes",
            Rule::BadSymlinkTarget => "bad-symlink-target",
            Rule::SpecialFile => "special-file",
            Rule::TotalSize => "total-size",
            Rule::EntryCount => "entry-count",
        }
    }

    fn from_path_problem(p: PathProblem) -> Rule {
        match p {
            PathProblem::Absolute => Rule::AbsolutePath,
            PathProblem::DotDot => Rule::DotDot,
            PathProblem::Nul => Rule::NulByte,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an [`ExtractError`] is classified for exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The archive broke a safety rule or limit (`exit::UNSAFE`).
    Unsafe,
    /// The archive is malformed or unreadable (`exit::INPUT`).
    Input,
    /// DIR or the cache could not be written (`exit::OUTPUT`).
    Output,
    /// The artifact's bytes do not have the expected sha256
    /// (`exit::HASH_MISMATCH`).
    HashMismatch,
}

/// A failed extraction; DIR is untouched.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry broke a safety rule or limit.
    #[error("refused entry {entry:?}: {rule}: {detail}")]
    Unsafe {
        /// The entry's path as stored in the archive (lossy UTF-8).
        entry: String,
        /// The rule it broke.
        rule: Rule,
        /// What exactly was wrong, for the message.
        detail: String,
    },
    /// The artifact could not be read or is malformed.
    #[error(transparent)]
    Archive(ArchiveError),
    /// DIR cannot be extracted to: its parent is missing, it is not an
    /// empty directory, or it appeared or was filled while extracting.
    #[error("destination {path}: {reason}")]
    Destination {
        /// DIR as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// Writing into the staging directory or publishing it failed.
    #[error("writing {path}: {source}")]
    Output {
        /// The path being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A stored owner or extended attribute could not be set (and
    /// [`ExtractOptions::best_effort`] was not given).
    #[error(
        "entry {entry:?}: cannot set {what} on {path}: {source} (--best-effort makes this a warning)"
    )]
    Metadata {
        /// The entry's path as stored in the archive (lossy UTF-8).
        entry: String,
        /// What could not be set: `owner UID:GID` or `xattr NAME`.
        what: String,
        /// The path being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The artifact's bytes do not have the sha256 its ref names.
    #[error("{artifact}: sha256 is {actual}, expected {expected}")]
    HashMismatch {
        /// The artifact file.
        artifact: PathBuf,
        /// The sha256 the ref names.
        expected: Sha256Digest,
        /// The sha256 of the bytes on disk.
        actual: Sha256Digest,
    },
}

impl ExtractError {
    /// Which exit code this maps to.
    pub fn class(&self) -> ErrorClass {
        match self {
            ExtractError::Unsafe { .. } => ErrorClass::Unsafe,
            ExtractError::Archive(_) => ErrorClass::Input,
            ExtractError::Destination { .. }
            | ExtractError::Output { .. }
            | ExtractError::Metadata { .. } => ErrorClass::Output,
            ExtractError::HashMismatch { .. } => ErrorClass::HashMismatch,
        }
    }

    /// The rule broken, for [`ExtractError::Unsafe`].
    pub fn rule(&self) -> Option<Rule> {
        match self {
            ExtractError::Unsafe { rule, .. } => Some(*rule),
            _ => None,
        }
    }

    pub(crate) fn unsafe_entry(
        entry: &[u8],
        rule: Rule,
        detail: impl Into<String>,
    ) -> ExtractError {
        ExtractError::Unsafe {
            entry: String::from_utf8_lossy(entry).into_owned(),
            rule,
            detail: detail.into(),
        }
    }
}

impl From<ArchiveError> for ExtractError {
    fn from(e: ArchiveError) -> ExtractError {
        match e {
            ArchiveError::TooManyEntries { limit, path } => ExtractError::Unsafe {
                entry: path.display().to_string(),
                rule: Rule::EntryCount,
                detail: format!("more than {limit} entries (--max-entries)"),
            },
            ArchiveError::TooLarge {
                entry,
                size,
                total,
                limit,
                ..
            } => ExtractError::Unsafe {
                entry,
                rule: Rule::TotalSize,
                detail: format!(
                    "{size} bytes would bring the total to {total}, limit {limit} (--max-size)"
                ),
            },
            other => ExtractError::Archive(other),
        }
    }
}

/// Extracts `artifact` into `dir`, which must not exist or be an empty
/// directory, and whose parent must exist. See the module docs for the
/// rules. On error `dir` is as it was and nothing else is left behind.
pub fn extract(
    artifact: &Path,
    dir: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractReport, ExtractError> {
    let dest = Destination::check(dir)?;
    let archive = format::open_with(
        artifact,
        &ReadOptions {
            max_entries: opts.max_entries,
            max_size: opts.max_size,
        },
    )?;
    let format = archive.format().name();
    let mut writer = writer::Writer::new(&dest.parent, dir, opts)?;
    archive.for_each_entry(|entry, content| writer.entry(entry, content))?;
    let (mut report, staging) = writer.finish()?;
    report.format = format;
    dest.publish(staging)?;
    Ok(report)
}

/// The checked destination: where the staging directory goes and how the
/// final rename must be made.
struct Destination {
    path: PathBuf,
    parent: PathBuf,
    existed_empty: bool,
}

impl Destination {
    fn check(dir: &Path) -> Result<Destination, ExtractError> {
        let bad = |reason: &str| ExtractError::Destination {
            path: dir.to_path_buf(),
            reason: reason.to_string(),
        };
        if dir.file_name().is_none() {
            return Err(bad("has no final name component"));
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&parent) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(bad("parent is not a directory")),
            Err(_) => return Err(bad("parent directory does not exist")),
        }
        let existed_empty = match fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {
                let mut it = fs::read_dir(dir).map_err(|source| ExtractError::Output {
                    path: dir.to_path_buf(),
                    source,
                })?;
                if it.next().is_some() {
                    return Err(bad("exists and is not empty"));
                }
                true
            }
            Ok(_) => return Err(bad("exists and is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(ExtractError::Output {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Destination {
            path: dir.to_path_buf(),
            parent,
            existed_empty,
        })
    }

    /// Renames the staging directory to the destination: over the empty
    /// directory that was there, or with `RENAME_NOREPLACE` when there was
    /// none, so something that appeared meanwhile is never replaced.
    fn publish(self, staging: writer::Staging) -> Result<(), ExtractError> {
        let out = |source| ExtractError::Output {
            path: self.path.clone(),
            source,
        };
        let result = if self.existed_empty {
            fs::rename(staging.path(), &self.path)
        } else {
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                staging.path(),
                rustix::fs::CWD,
                &self.path,
                rustix::fs::RenameFlags::NOREPLACE,
            )
            .map_err(io::Error::from)
        };
        match result {
            Ok(()) => {
                staging.disarm();
                fs::File::open(&self.parent)
                    .and_then(|d| d.sync_all())
                    .map_err(out)?;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Err(ExtractError::Destination {
                    path: self.path.clone(),
                    reason: "appeared or was filled while extracting".to_string(),
                })
            }
            Err(e) => Err(out(e)),
        }
    }
}

/// Parses a size such as `16G`, `512M`, `1000000`, `64KiB` (binary units)
/// or `unlimited`.
///
/// ```
/// use repropack::extract::parse_size;
/// assert_eq!(parse_size("16G"), Some(16 << 30));
/// assert_eq!(parse_size("512MiB"), Some(512 << 20));
/// assert_eq!(parse_size("unlimited"), Some(u64::MAX));
/// assert_eq!(parse_size("12Q"), None);
/// ```
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("unlimited") {
        return Some(u64::MAX);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// Normalizes an entry path for extraction: the rules of
/// [`normalize_path`] plus the length limits.
pub(crate) fn checked_path(raw: &[u8], opts: &ExtractOptions) -> Result<Vec<u8>, ExtractError> {
    let path = normalize_path(raw)
        .map_err(|p| ExtractError::unsafe_entry(raw, Rule::from_path_problem(p), p.to_string()))?;
    if path.len() > opts.max_path_len {
        return Err(ExtractError::unsafe_entry(
            raw,
            Rule::PathTooLong,
            format!(
                "{} bytes, limit {} (--max-path-len)",
                path.len(),
                opts.max_path_len
            ),
        ));
    }
    if let Some(c) = path.split(|&b| b == b'/').find(|c| c.len() > NAME_MAX) {
        return Err(ExtractError::unsafe_entry(
            raw,
            Rule::NameTooLong,
            format!("a component of {} bytes, limit {NAME_MAX}", c.len()),
        ));
    }
    Ok(path)
}
