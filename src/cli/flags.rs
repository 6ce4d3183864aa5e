//! Flag groups shared by commands, each turned into library options in one
//! place. Staging flags are shared by `pack`, `check`, `digest` and `diff`:
//! every command that stages a directory accepts exactly the flags `pack`
//! does, so a digest or diff of a directory sees the tree `pack` would
//! write. Extraction flags are shared by `extract` and `fetch --extract`,
//! network flags by `fetch` and `push`.

use std::time::Duration;

use clap::Args;
use repropack::extract::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PATH_LEN, ExtractOptions, SymlinkPolicy, parse_size,
};
use repropack::remote::NetOptions;
use repropack::stage::{Owner, StageOptions, epoch_from_env};

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
}

impl StageFlags {
    /// The staging options these flags ask for.
    pub fn options(&self) -> Result<StageOptions, Failure> {
        Ok(StageOptions {
            epoch: epoch_from_env(self.mtime.as_deref())?,
            clamp_mtime: self.clamp_mtime,
            owner: Owner::parse(&self.owner)?,
            keep_modes: self.keep_modes,
            keep_special_bits: self.keep_special_bits,
            follow_symlinks: self.follow_symlinks,
            specials: self.specials,
            excludes: self.exclude.clone(),
            ..StageOptions::default()
        })
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
}

impl ExtractFlags {
    /// The extraction options these flags ask for.
    pub fn options(&self) -> Result<ExtractOptions, Failure> {
        let max_size = parse_size(&self.max_size).ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!(
                    "invalid --max-size {:?} (a number with an optional K/M/G/T suffix, or unlimited)",
                    self.max_size
                ),
            )
        })?;
        Ok(ExtractOptions {
            specials: self.specials,
            keep_special_bits: self.keep_special_bits,
            same_owner: self.same_owner,
            symlinks: if self.reject_escaping_symlinks {
                SymlinkPolicy::RejectEscaping
            } else {
                SymlinkPolicy::Keep
            },
            max_size,
            max_entries: self.max_entries,
            max_path_len: self.max_path_len,
            sync: !self.no_sync,
        })
    }
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
