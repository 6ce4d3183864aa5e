//! Staging: turns source trees into a [`Plan`], the ordered list of entries
//! every format writer consumes.
//!
//! Staging walks the filesystem and normalizes metadata; it knows nothing of
//! archive formats. Writers never walk the filesystem: they read content only
//! through [`Content::reader`](crate::plan::Content::reader), which also checks that the file did not change
//! since it was staged.
//!
//! Order: depth-first, each directory's children sorted by raw name bytes,
//! parents before children (like GNU tar `--sort=name`). The order the OS
//! lists files in never matters because children are kept in a sorted map.
//!
//! ```no_run
//! use repropack::stage::{stage, Source, StageOptions};
//! let plan = stage(&[Source::parse("fixtures/demo")], &StageOptions::default())?;
//! for entry in plan.entries() {
//!     println!("{}", String::from_utf8_lossy(entry.path()));
//! }
//! # Ok::<(), repropack::stage::StageError>(())
//! ```

mod from_tar;
mod normalize;
pub mod pack_file;
mod tree;
mod walk;
pub mod xattr_file;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use from_tar::stage_tar;
pub use pack_file::PackFileSource;

use crate::digest::Sha256Digest;
use crate::plan::{InputFiles, Plan, SourceDir};
use crate::progress::Counters;
use normalize::{Excludes, XattrFilter, check_path_len, normalize_dest};
pub use normalize::{MAX_XATTR_NAME, MAX_XATTR_VALUE};
use tree::{Children, Node, finish_plan, merge, place_node};
use walk::Stager;

/// Longest archive path staged, in bytes. Longer paths cannot be named in
/// one system call on extraction, and a tar stream could otherwise ask for
/// a tree whose paths add up quadratically (a 120 KiB tar with a path of
/// 60 000 components would stage 3.6 GB of paths).
pub const MAX_ARCHIVE_PATH: usize = 4095;

/// Timestamp used for every entry when neither `--mtime` nor
/// `SOURCE_DATE_EPOCH` is given: 1980-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: u64 = 315_532_800;

/// Errors raised while staging. Each names the source path or archive path
/// it is about.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A source could not be read (stat, open, read a directory or a
    /// symlink), or is a dangling symlink.
    #[error("source {path}: {source}")]
    Io {
        /// The source path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A source path does not exist (or vanished while staging).
    #[error("source {0} does not exist")]
    Missing(PathBuf),
    /// A fifo or device node was found without [`StageOptions::specials`].
    #[error("{path}: {kind} refused (pass --specials to include fifos and device nodes)")]
    Special {
        /// The source path (for a tar input, `INPUT:MEMBER`).
        path: PathBuf,
        /// `fifo`, `character device` or `block device`.
        kind: &'static str,
    },
    /// Two sources map to the same archive path.
    #[error("archive path {archive:?} comes from both {first} and {second}")]
    Collision {
        /// The archive path (lossy UTF-8).
        archive: String,
        /// The source staged there first.
        first: String,
        /// The source that collided with it.
        second: String,
    },
    /// An archive path must be a directory (another source goes below it)
    /// but its source is not one.
    #[error("archive path {archive:?} is needed as a directory but {source_path} is not one")]
    NotADirectory {
        /// The archive path (lossy UTF-8).
        archive: String,
        /// The source staged at that path.
        source_path: String,
    },
    /// An exclude pattern is not a valid glob.
    #[error("invalid exclude pattern {pattern:?}: {message}")]
    Glob {
        /// The pattern as given (all patterns, space-separated, when the set
        /// as a whole failed to build).
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A `SRC:DEST` destination is not a valid archive path, or a source
    /// without a file name has none.
    #[error("invalid destination {dest:?}: {reason}")]
    Dest {
        /// The destination as given (or the source, when DEST is missing).
        dest: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An option value could not be parsed.
    #[error("invalid {field} {value:?}: expected {expected}")]
    Option {
        /// The option or variable: `--owner`, `--mtime`, `SOURCE_DATE_EPOCH`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A source file changed while it was being packed.
    #[error("{path}: input not stable, {what} changed while packing")]
    Unstable {
        /// The source file.
        path: PathBuf,
        /// `size` or `mtime`.
        what: &'static str,
    },
    /// An archive path is longer than [`MAX_ARCHIVE_PATH`].
    #[error("archive path {archive:?} is {len} bytes; at most {max} (PATH_MAX - 1) are allowed")]
    PathTooLong {
        /// The archive path, abbreviated when long (lossy UTF-8).
        archive: String,
        /// Its length in bytes.
        len: usize,
        /// The limit, [`MAX_ARCHIVE_PATH`].
        max: usize,
    },
    /// The plan would have 2^32 entries or more.
    #[error("{count} entries staged; a plan holds at most 2^32 - 1")]
    TooManyEntries {
        /// The number of entries staged.
        count: usize,
    },
    /// A pack file cannot be read, or one of its lines is malformed or
    /// cannot be applied (its source is missing, it conflicts with a
    /// staged entry).
    #[error("{}", pack_file_message(file, *line, message))]
    PackFile {
        /// The pack file.
        file: PathBuf,
        /// The 1-based line, when the problem is one line's.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// An xattr file cannot be read, or one of its lines is malformed or
    /// names a path that is not staged.
    #[error("{}", xattr_file_message(file, *line, message))]
    XattrFile {
        /// The xattr file.
        file: PathBuf,
        /// The 1-based line, when the problem is one line's.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// An extended attribute could not be read, or is refused (a name or
    /// value over the limits, a name given twice).
    #[error("{source_path}: extended attribute {name:?}: {reason}")]
    Xattr {
        /// The source path (for a tar input, `INPUT:MEMBER`).
        source_path: String,
        /// The attribute's name (lossy UTF-8; empty when listing failed).
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The tar stream itself is malformed or refused by the reader
    /// (truncated, bad checksum, oversized extension header, unsupported
    /// member type).
    #[error(transparent)]
    TarStream(crate::format::ArchiveError),
    /// A member of a tar input cannot be staged (a bad or overlong path, a
    /// hard link to no earlier file or symlink, a socket).
    #[error("tar {input}: entry {entry:?}: {reason}")]
    Tar {
        /// The tar input, as named in messages.
        input: String,
        /// The member's path as stored, abbreviated when long.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
}

fn pack_file_message(file: &Path, line: Option<usize>, message: &str) -> String {
    match line {
        Some(n) => format!("{}:{n}: {message}", file.display()),
        None => format!("pack file {}: {message}", file.display()),
    }
}

fn xattr_file_message(file: &Path, line: Option<usize>, message: &str) -> String {
    match line {
        Some(n) => format!("{}:{n}: {message}", file.display()),
        None => format!("xattr file {}: {message}", file.display()),
    }
}

/// How owners are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    /// The uid every entry gets (default 0).
    pub uid: u32,
    /// The gid every entry gets (default 0).
    pub gid: u32,
}

impl Owner {
    /// Parses `UID:GID` (numbers only).
    pub fn parse(s: &str) -> Result<Owner, StageError> {
        let bad = || StageError::Option {
            field: "--owner",
            value: s.to_string(),
            expected: "UID:GID, two decimal numbers",
        };
        let (u, g) = s.split_once(':').ok_or_else(bad)?;
        Ok(Owner {
            uid: u.parse().map_err(|_| bad())?,
            gid: g.parse().map_err(|_| bad())?,
        })
    }
}

/// Which extended attributes staging keeps.
///
/// Names are matched whole against glob patterns (`*` matches any run of
/// bytes, dots included; `?`, `[...]` and `{a,b}` as in shell globs), as
/// mksquashfs 4.6 matches its `-xattrs-include`/`-xattrs-exclude`
/// expressions against whole names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum XattrPolicy {
    /// Drop every extended attribute (the default).
    #[default]
    Off,
    /// Keep extended attributes: those matching one of `include` (all of
    /// them when `include` is empty), minus those matching one of
    /// `exclude`.
    Keep {
        /// Keep only names matching one of these (empty: every name).
        include: Vec<String>,
        /// Drop names matching one of these, even when included.
        exclude: Vec<String>,
    },
}

impl XattrPolicy {
    /// True unless the policy is [`XattrPolicy::Off`].
    pub fn enabled(&self) -> bool {
        !matches!(self, XattrPolicy::Off)
    }
}

/// Options that shape the plan. `Default` gives the contract's defaults with
/// the epoch fixed at [`DEFAULT_EPOCH`]; use [`epoch_from_env`] to honour
/// `SOURCE_DATE_EPOCH`.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Seconds since 1970: the mtime of every entry (see `clamp_mtime`) and
    /// of the root.
    pub epoch: u64,
    /// Keep a source mtime older than `epoch` instead of replacing it;
    /// newer ones are still clamped to `epoch`.
    pub clamp_mtime: bool,
    /// The uid and gid every entry gets; source owners are ignored.
    pub owner: Owner,
    /// Keep the source permission bits (`mode & 0o777`) instead of
    /// normalizing to 0755 (directories, executable files) or 0644.
    pub keep_modes: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default).
    pub keep_special_bits: bool,
    /// Stage what symlinks below a source point to instead of the symlinks
    /// themselves (a source named on the command line is always followed).
    pub follow_symlinks: bool,
    /// Stage fifos and device nodes instead of failing with
    /// [`StageError::Special`].
    pub specials: bool,
    /// Store each source's numeric uid and gid (each member's, for a tar
    /// input) instead of [`StageOptions::owner`]; user and group names are
    /// never stored. Directories that only appear as parents still get
    /// `owner`.
    pub keep_owners: bool,
    /// Which extended attributes are kept (none by default).
    pub xattrs: XattrPolicy,
    /// Store hard-linked files as separate files, so the output does not
    /// depend on whether the tree was hard-linked.
    pub no_hardlinks: bool,
    /// Glob patterns matched against archive paths: one without `/` matches
    /// a name at any depth, one with `/` the whole path; `*` never crosses
    /// `/`, `**` does. An excluded directory excludes everything below it.
    pub excludes: Vec<String>,
    /// Threads that read directories and metadata (at least 1). Never
    /// changes the plan.
    pub jobs: usize,
    /// A pack file applied after the sources (see [`pack_file`]).
    pub pack_file: Option<PackFileSource>,
    /// An xattr file applied last (see [`xattr_file`]).
    pub xattr_file: Option<PathBuf>,
    /// Counts the entries found, for a progress display; never changes the
    /// plan.
    pub progress: Option<Arc<Counters>>,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions {
            epoch: DEFAULT_EPOCH,
            clamp_mtime: false,
            owner: Owner::default(),
            keep_modes: false,
            keep_special_bits: false,
            follow_symlinks: false,
            specials: false,
            keep_owners: false,
            xattrs: XattrPolicy::Off,
            no_hardlinks: false,
            excludes: Vec::new(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pack_file: None,
            xattr_file: None,
            progress: None,
        }
    }
}

/// The epoch to use: `explicit` (from `--mtime`) if given, else
/// `SOURCE_DATE_EPOCH` if set, else [`DEFAULT_EPOCH`].
pub fn epoch_from_env(explicit: Option<&str>) -> Result<u64, StageError> {
    let (field, value) = match explicit {
        Some(v) => ("--mtime", v.to_string()),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => ("SOURCE_DATE_EPOCH", v),
            Err(_) => return Ok(DEFAULT_EPOCH),
        },
    };
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StageError::Option {
            field,
            value,
            expected: "a non-negative integer number of seconds since 1970",
        });
    }
    // Tar readers (GNU tar, ours) hold times in a signed 64-bit number: a
    // larger epoch would make an archive none of them can read.
    trimmed
        .parse::<i64>()
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| StageError::Option {
            field,
            value: value.clone(),
            expected: "a number of seconds up to 9223372036854775807 (2^63 - 1, the most tar readers hold)",
        })
}

/// One source argument: `SRC` or `SRC:DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source file or directory on disk.
    pub path: PathBuf,
    /// Archive path the source maps to; empty means "the root" for a
    /// directory and "its own name under the root" for anything else.
    pub dest: Vec<u8>,
}

impl Source {
    /// Parses a command-line source. If the whole argument names an existing
    /// path it is `SRC`; otherwise it is split at the last `:` into
    /// `SRC:DEST`.
    pub fn parse(arg: impl AsRef<OsStr>) -> Source {
        let arg = arg.as_ref();
        let bytes = arg.as_bytes();
        if Path::new(arg).symlink_metadata().is_err()
            && let Some(i) = bytes.iter().rposition(|&b| b == b':')
        {
            return Source {
                path: PathBuf::from(OsStr::from_bytes(&bytes[..i])),
                dest: bytes[i + 1..].to_vec(),
            };
        }
        Source {
            path: PathBuf::from(arg),
            dest: Vec::new(),
        }
    }
}

/// Adds the attributes of `opts.xattr_file`, if any, to the tree.
/// Applies `--xattr-file`; returns the sha256 of the bytes it read.
fn apply_xattr_file(
    root: &mut Node,
    opts: &StageOptions,
) -> Result<Option<Sha256Digest>, StageError> {
    let Some(file) = &opts.xattr_file else {
        return Ok(None);
    };
    let (blocks, digest) = xattr_file::read(file)?;
    xattr_file::apply(root, file, &blocks, opts)?;
    Ok(Some(digest))
}

/// Stack of each staging thread. 2 000 nested directories (a 4 KiB
/// PATH_MAX of one-letter names, the deepest tree `read_dir` can open)
/// overflow the default 2 MiB and fit in 8 MiB; 32 MiB leaves room.
const STAGE_STACK: usize = 32 << 20;

/// Stages `sources` into a plan. See the module docs for the rules.
/// Directories are read on `opts.jobs` threads; the plan is the same for
/// any number.
pub fn stage(sources: &[Source], opts: &StageOptions) -> Result<Plan, StageError> {
    let stager = Stager {
        opts,
        excludes: Excludes::new(&opts.excludes)?,
        xattrs: XattrFilter::new(&opts.xattrs)?,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("repropack-stage-{i}"))
        // Scanning recurses once per directory level (with rayon's frames
        // in between): a tree as deep as PATH_MAX allows needs far more than
        // the default 2 MiB. Only touched pages cost memory.
        .stack_size(STAGE_STACK)
        .build()
        .map_err(|e| StageError::Io {
            path: PathBuf::from("."),
            source: io::Error::other(format!("cannot start staging threads: {e}")),
        })?;
    let mut root = Node {
        staged: None,
        children: Children::new(),
    };
    let mut warnings = Vec::new();
    for src in sources {
        let meta = stager.metadata(&src.path, true)?;
        let dest = normalize_dest(&src.dest)?;
        if meta.is_dir() && dest.is_empty() {
            // Directory contents go to the archive root.
            let ancestors = [(meta.dev(), meta.ino())];
            let (children, found) = pool.install(|| stager.scan_dir(&src.path, &[], &ancestors))?;
            warnings.extend(found);
            let contents = Node {
                staged: None,
                children,
            };
            merge(&mut root, &[], contents)?;
        } else {
            let archive = if dest.is_empty() {
                let name = src.path.file_name().ok_or_else(|| StageError::Dest {
                    dest: src.path.display().to_string(),
                    reason: "a source without a file name needs an explicit :DEST",
                })?;
                name.as_bytes().to_vec()
            } else {
                dest.join(&b'/')
            };
            if stager.excludes.is_excluded(&archive) {
                continue;
            }
            check_path_len(&archive)?;
            // Only a directory can lack a parent or a name ("/", "."), and
            // a directory's content is never read through `dir/name`.
            let (dir, name): (SourceDir, &OsStr) = match (src.path.parent(), src.path.file_name()) {
                (Some(parent), Some(name)) => (Arc::new(parent.to_path_buf()), name),
                _ => (Arc::new(src.path.clone()), OsStr::new("")),
            };
            let scanned =
                pool.install(|| stager.scan(&src.path, (&dir, name), &archive, &meta, &[]))?;
            warnings.extend(scanned.warnings);
            if let Some(node) = scanned.node {
                place_node(&mut root, &archive, node)?;
            }
        }
    }
    let mut input_files = InputFiles::default();
    let root_meta = match &opts.pack_file {
        Some(source) => {
            let (lines, digest) = pack_file::read(&source.file)?;
            input_files.pack_file = Some(digest);
            pack_file::apply(&mut root, source, &lines, opts, &mut warnings)?
        }
        None => None,
    };
    input_files.xattr_file = apply_xattr_file(&mut root, opts)?;
    let mut plan = finish_plan(root, opts, warnings)?;
    if let Some(meta) = root_meta {
        plan.root = meta;
    }
    plan.input_files = input_files;
    Ok(plan)
}
