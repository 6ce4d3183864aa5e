//! Staging flags shared by `pack`, `check`, `digest` and `diff`: every
//! command that stages a directory accepts exactly the flags `pack` does, so
//! a digest or diff of a directory sees the tree `pack` would write.

use clap::Args;
use repropack::stage::{Owner, StageOptions, epoch_from_env};

use super::Failure;

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
