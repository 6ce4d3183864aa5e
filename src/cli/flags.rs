//! Flag groups shared by commands, each turned into library options in one
//! place. Staging flags are shared by `pack`, `check`, `digest` and `diff`:
//! every command that stages a directory accepts exactly the flags `pack`
//! does, so a digest or diff of a directory sees the tree `pack` would
//! write. Extraction flags are shared by `extract` and `fetch --extract`,
//! network flags by `fetch` and `push`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use repropack::Format;
use repropack::extract::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PATH_LEN, ExtractOptions, SymlinkPolicy, parse_size,
};
use repropack::format::ReadOptions;
use repropack::format::squashfs::{
    Compression, DEFAULT_BLOCK_SIZE, SquashfsOptions, parse_block_size,
};
use repropack::pack::{Pack, default_jobs};
use repropack::remote::NetOptions;
use repropack::stage::{Owner, PackFileSource, StageOptions, XattrPolicy, epoch_from_env};

use super::Failure;
use crate::cli::exit;

#[derive(Args, Clone, Debug)]
pub struct StageFlags {
    /// Exclude archive paths matching GLOB (repeatable). A pattern without `/`
    /// matches a name at any depth; `*` does not cross `/`, `**` does.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Timestamp for every entry (seconds since 1970). Default:
    /// SOURCE_DATE_EPOCH, else 315532800 (1980-01-01).
    #[arg(long, value_name = "EPOCH")]
    pub mtime: Option<String>,
    /// Keep a source's mtime when it is older than the epoch.
    #[arg(long)]
    pub clamp_mtime: bool,
    /// Owner of every entry.
    #[arg(long, value_name = "UID:GID", default_value = "0:0")]
    pub owner: String,
    /// Keep permission bits as on disk (still no setuid/setgid/sticky).
    #[arg(long)]
    pub keep_modes: bool,
    /// Keep setuid/setgid/sticky bits.
    #[arg(long)]
    pub keep_special_bits: bool,
    /// Store what symlinks point to instead of the links.
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Include fifos and device nodes instead of refusing them.
    #[arg(long)]
    pub specials: bool,
    /// Store each source's numeric uid/gid (each member's, with --from-tar)
    /// instead of --owner; --owner still applies to the root and to
    /// directories that only appear as parents.
    #[arg(long)]
    pub keep_owners: bool,
    /// Keep extended attributes (user., security. such as capabilities and
    /// SELinux labels, trusted., system.posix_acl_*).
    #[arg(long)]
    pub xattrs: bool,
    /// Keep only extended attributes whose name matches GLOB (repeatable;
    /// implies --xattrs).
    #[arg(long, value_name = "GLOB")]
    pub xattr_include: Vec<String>,
    /// Drop extended attributes whose name matches GLOB (repeatable;
    /// implies --xattrs).
    #[arg(long, value_name = "GLOB")]
    pub xattr_exclude: Vec<String>,
    /// Store hard-linked files as separate files.
    #[arg(long)]
    pub no_hardlinks: bool,
    /// Keep what a root filesystem needs: --keep-owners --keep-modes
    /// --keep-special-bits --xattrs --specials.
    #[arg(long)]
    pub rootfs: bool,
}

impl StageFlags {
    /// The staging options these flags ask for.
    pub fn options(&self) -> Result<StageOptions, Failure> {
        let xattrs = if self.xattrs
            || self.rootfs
            || !self.xattr_include.is_empty()
            || !self.xattr_exclude.is_empty()
        {
            XattrPolicy::Keep {
                include: self.xattr_include.clone(),
                exclude: self.xattr_exclude.clone(),
            }
        } else {
            XattrPolicy::Off
        };
        Ok(StageOptions {
            epoch: epoch_from_env(self.mtime.as_deref())?,
            clamp_mtime: self.clamp_mtime,
            owner: Owner::parse(&self.owner)?,
            keep_modes: self.keep_modes || self.rootfs,
            keep_special_bits: self.keep_special_bits || self.rootfs,
            follow_symlinks: self.follow_symlinks,
            specials: self.specials || self.rootfs,
            keep_owners: self.keep_owners || self.rootfs,
            xattrs,
            no_hardlinks: self.no_hardlinks,
            excludes: self.exclude.clone(),
            ..StageOptions::default()
        })
    }
}

/// Parses `--jobs` (or `REPROPACK_JOBS`, which every `--jobs` reads when
/// the flag is absent): 1 to 1024 threads.
pub fn jobs(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a number of threads from 1 to 1024"
        )),
    }
}

/// Extraction flags shared by `extract` and `fetch --extract`.
#[derive(Args, Clone, Debug)]
pub struct ExtractFlags {
    /// Create fifos and device nodes instead of refusing the archive.
    #[arg(long)]
    pub specials: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default).
    #[arg(long)]
    pub keep_special_bits: bool,
    /// Apply the stored uid/gid (needs privileges; default: files belong to
    /// the user running repropack).
    #[arg(long)]
    pub same_owner: bool,
    /// Apply the stored extended attributes (`user.*` always,
    /// `security.*` and `trusted.*` when running as root).
    #[arg(long)]
    pub xattrs: bool,
    /// An owner or attribute that cannot be set is a warning, not an error.
    #[arg(long)]
    pub best_effort: bool,
    /// Refuse symlinks whose target is absolute or resolves outside the
    /// directory (default: keep every symlink verbatim, never follow one).
    #[arg(long)]
    pub reject_escaping_symlinks: bool,
    /// Most bytes of file content, e.g. 512M, 16G or `unlimited`.
    #[arg(long, value_name = "SIZE", default_value = "16G")]
    pub max_size: String,
    /// Most entries.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES)]
    pub max_entries: u64,
    /// Longest path inside the archive, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_PATH_LEN)]
    pub max_path_len: usize,
    /// Skip the syncfs before publishing (faster; a crash may then leave a
    /// published tree with missing content).
    #[arg(long)]
    pub no_sync: bool,
    /// Threads that decompress SquashFS data blocks (default: all CPUs).
    /// The tree and its bytes never depend on it.
    #[arg(long, value_name = "N", env = "REPROPACK_JOBS", value_parser = jobs)]
    pub jobs: Option<usize>,
}

impl ExtractFlags {
    /// The extraction options these flags ask for; sizes the process's
    /// decompression pool to `--jobs` when given.
    pub fn options(&self) -> Result<ExtractOptions, Failure> {
        if let Some(jobs) = self.jobs {
            // Fails only if the pool already exists, which no command that
            // extracts has made before this point.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(jobs)
                .build_global();
        }
        let max_size = size_flag(&self.max_size)?;
        Ok(ExtractOptions {
            specials: self.specials,
            keep_special_bits: self.keep_special_bits,
            same_owner: self.same_owner,
            xattrs: self.xattrs,
            best_effort: self.best_effort,
            symlinks: if self.reject_escaping_symlinks {
                SymlinkPolicy::RejectEscaping
            } else {
                SymlinkPolicy::Keep
            },
            max_size,
            max_entries: self.max_entries,
            max_path_len: self.max_path_len,
            sync: !self.no_sync,
            progress: None,
        })
    }
}

/// Limits for reading an artifact from elsewhere, shared by `digest`,
/// `verify` and `diff` (`extract` has its own in [`ExtractFlags`]).
#[derive(Args, Clone, Debug)]
pub struct ReadFlags {
    /// Most bytes of file content to read from an artifact, e.g. 512M, 16G
    /// or `unlimited` (a tiny sparse tar can declare terabytes of zeros).
    #[arg(long, value_name = "SIZE", default_value = "16G")]
    pub max_size: String,
}

impl ReadFlags {
    /// The read limits these flags ask for.
    pub fn options(&self) -> Result<ReadOptions, Failure> {
        Ok(ReadOptions {
            max_size: size_flag(&self.max_size)?,
            ..ReadOptions::default()
        })
    }
}

/// Parses a `--max-size` value.
fn size_flag(value: &str) -> Result<u64, Failure> {
    parse_size(value).ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            format!(
                "invalid --max-size {value:?} (a number with an optional K/M/G/T suffix, or unlimited)"
            ),
        )
    })
}

/// The trusted signers of `verify`, `gate` and `fetch --manifest`: one
/// flag, one environment variable. Each command says in its own help what
/// the keys must have signed (`mut_arg("trusted_key", …)`).
#[derive(Args, Clone, Debug)]
pub struct TrustFlags {
    /// Minisign public key files a signature must come from (repeatable).
    /// Default: the `:`-separated key files in REPROPACK_TRUSTED_KEYS.
    #[arg(
        long,
        value_name = "PUBLIC",
        env = "REPROPACK_TRUSTED_KEYS",
        value_delimiter = ':'
    )]
    pub trusted_key: Vec<PathBuf>,
}

/// Network flags shared by `fetch` and `push`.
#[derive(Args, Clone, Debug)]
pub struct NetFlags {
    /// Connect timeout and longest wait for any read, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Retries per source or request for transient failures (5xx, resets,
    /// short bodies, timeouts), with exponential backoff from 0.5 s.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

impl NetFlags {
    /// The network options these flags ask for.
    pub fn options(&self) -> Result<NetOptions, Failure> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Failure::new(exit::USAGE, "--timeout must be a positive number"))?;
        Ok(NetOptions {
            timeout,
            retries: self.retries,
            ..NetOptions::default()
        })
    }
}

/// Everything `pack` takes, and so `check` too.
#[derive(Args, Clone)]
pub struct PackFlags {
    /// Sources: `SRC` (a directory's contents go to the root, a file goes to
    /// the root under its name) or `SRC:DEST` (DEST = path in the archive).
    #[arg(
        required_unless_present_any = ["from_tar", "pack_file"],
        conflicts_with = "from_tar",
        value_name = "SRC[:DEST]"
    )]
    pub sources: Vec<OsString>,
    /// Add the entries a pack file (gensquashfs's format) lists, after the
    /// sources: new entries, or new owners and modes for staged ones.
    #[arg(long, value_name = "FILE", conflicts_with = "from_tar")]
    pub pack_file: Option<PathBuf>,
    /// Where the pack file's source locations are found (default: the
    /// pack file's directory).
    #[arg(long, value_name = "DIR", requires = "pack_file")]
    pub pack_dir: Option<PathBuf>,
    /// Add extended attributes per archive path from FILE, in the format
    /// `getfattr --dump` writes.
    #[arg(long, value_name = "FILE")]
    pub xattr_file: Option<PathBuf>,
    /// Pack the members of a tar stream (`-` = stdin; may be gzipped)
    /// instead of SRC paths, through the same staging rules.
    #[arg(long, value_name = "FILE|-")]
    pub from_tar: Option<PathBuf>,
    /// Output file. Written atomically.
    #[arg(short, long, required = true)]
    pub output: Option<PathBuf>,
    /// tar, tar.gz or squashfs; default: from the output's extension
    /// (.tar, .tar.gz/.tgz, .squashfs/.sqfs/.sfs).
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub stage: StageFlags,
    /// Compression level (tar.gz: 0-9, default 6; squashfs: as for --comp).
    #[arg(long)]
    pub level: Option<u32>,
    /// squashfs compressor: gzip (default, level 1-9, default 6), zstd
    /// (1-22, default 15), xz (0-9, default 6), lz4 or none.
    #[arg(long, value_name = "NAME[:LEVEL]")]
    pub comp: Option<String>,
    /// squashfs data block size: a power of two from 4K to 1M, as bytes or
    /// with a K/M suffix (default 128K).
    #[arg(long, value_name = "SIZE")]
    pub block_size: Option<String>,
    /// squashfs: store files with identical content separately instead of
    /// once.
    #[arg(long)]
    pub no_dedup: bool,
    /// Worker threads (default: all CPUs this process may use). Never
    /// changes the output.
    #[arg(long, value_name = "N", env = "REPROPACK_JOBS", value_parser = jobs)]
    pub jobs: Option<usize>,
    /// Print the ref under this base URI (`BASE/<output file name>`) instead
    /// of the output's absolute path.
    #[arg(long, value_name = "URI")]
    pub ref_base: Option<String>,
    /// Where the artifact will be published (path, file://, http(s)://,
    /// s3://). Repeatable: recorded in the manifest as `artifact.urls` in
    /// this order, which `fetch --manifest` tries; the printed ref names the
    /// first URL instead of the output's local path.
    #[arg(long, value_name = "URI", conflicts_with = "ref_base")]
    pub url: Vec<String>,
    /// Print a JSON object instead of the bare ref.
    #[arg(long)]
    pub json: bool,
    /// No progress bar (it is drawn on stderr only when that is a terminal).
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write a JSON manifest (artifact, options, source revision, tree
    /// digest, every entry with its sha256) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Write the manifest into DIR as `manifest_<32 random hex>.json` (an
    /// unguessable name, from the OS random number generator) and print its
    /// path on stderr (and as `manifest` with --json).
    #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
    pub manifest_dir: Option<PathBuf>,
    /// Also write an in-toto Statement (SLSA Provenance v1) about the
    /// artifact to FILE, atomically: its name, sha256 and sha512, the pack's
    /// options and sources, the source commit when known. No time is
    /// recorded: the same pack gives the same bytes.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// Source revision to record in the manifest. Default: the git commit of
    /// the first source inside a git worktree (marked dirty when `git status
    /// --porcelain` lists changes under that source).
    #[arg(long, value_name = "REV")]
    pub source_revision: Option<String>,
}

impl PackFlags {
    /// `-o OUT`; clap requires it wherever these flags are taken whole
    /// (`check --against` names the artifact instead and sets it).
    pub fn output(&self) -> &std::path::Path {
        self.output.as_deref().unwrap_or(std::path::Path::new(""))
    }

    /// The pack job these flags ask for.
    pub fn job(&self) -> Result<Pack, Failure> {
        let args = self;
        let mut pack = match &args.from_tar {
            Some(tar) => Pack::from_tar(tar),
            None => Pack::new(&args.sources),
        }
        .output(args.output())
        .stage_options(StageOptions {
            pack_file: args.pack_file.as_ref().map(|file| PackFileSource {
                file: file.clone(),
                dir: args.pack_dir.clone(),
            }),
            xattr_file: args.xattr_file.clone(),
            ..args.stage.options()?
        })
        .jobs(args.jobs.unwrap_or_else(default_jobs));
        let format = match &args.format {
            Some(name) => Format::parse(name).ok_or_else(|| {
                Failure::new(
                    exit::USAGE,
                    format!("unknown --format {name:?} (tar, tar.gz, squashfs)"),
                )
            })?,
            None => pack.resolve()?.1.format,
        };
        let squashfs = squashfs_options(args, format)?;
        // For SquashFS the level is folded into the compressor.
        pack = pack
            .format(format)
            .level(if format == Format::Squashfs {
                None
            } else {
                args.level
            })
            .squashfs(squashfs);
        if let Some(base) = &args.ref_base {
            pack = pack.ref_base(base);
        }
        if let Some(m) = &args.manifest {
            pack = pack.manifest(m);
        }
        if let Some(dir) = &args.manifest_dir {
            pack = pack.manifest_dir(dir);
        }
        pack = pack.urls(args.url.iter().cloned());
        if let Some(p) = &args.provenance {
            pack = pack.provenance(p);
        }
        if let Some(rev) = &args.source_revision {
            pack = pack.source_revision(rev);
        }
        Ok(pack)
    }
}

/// Resolves `--comp`, `--level`, `--block-size` and `--no-dedup`; the
/// squashfs-only ones are a usage error for tar formats.
fn squashfs_options(args: &PackFlags, format: Format) -> Result<SquashfsOptions, Failure> {
    let usage = |m: String| Failure::new(exit::USAGE, m);
    if format != Format::Squashfs {
        let given: Vec<&str> = [
            (args.comp.is_some(), "--comp"),
            (args.block_size.is_some(), "--block-size"),
            (args.no_dedup, "--no-dedup"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
        if !given.is_empty() {
            return Err(usage(format!(
                "{} only apply to --format squashfs, not {}",
                given.join(", "),
                format.name()
            )));
        }
        return Ok(SquashfsOptions::default());
    }
    let mut compression = match &args.comp {
        Some(c) => Compression::parse(c).map_err(|e| usage(format!("--comp: {e}")))?,
        None => Compression::default(),
    };
    if let Some(level) = args.level {
        let explicit = args.comp.as_deref().is_some_and(|c| c.contains(':'));
        if explicit && compression.level() != Some(level) {
            return Err(usage(format!(
                "--level {level} contradicts --comp {}",
                args.comp.as_deref().unwrap_or_default()
            )));
        }
        compression = Compression::new(compression.algorithm(), Some(level))
            .map_err(|e| usage(format!("--level: {e}")))?;
    }
    let block_size = match &args.block_size {
        Some(b) => parse_block_size(b).map_err(|e| usage(format!("--block-size: {e}")))?,
        None => DEFAULT_BLOCK_SIZE,
    };
    Ok(SquashfsOptions {
        compression,
        block_size,
        dedup: !args.no_dedup,
    })
}
