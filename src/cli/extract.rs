//! `repropack extract ARTIFACT DIR`.

use std::path::PathBuf;

use crate::cli::exit;
use clap::Args;
use repropack::extract::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PATH_LEN, ErrorClass, ExtractError, ExtractOptions,
    SymlinkPolicy, extract, parse_size,
};

use super::Failure;

#[derive(Args)]
pub struct ExtractArgs {
    /// tar, tar.gz or SquashFS file (the format is read from its bytes).
    artifact: PathBuf,
    /// Destination directory: must not exist (its parent must) or be empty.
    /// Published atomically: on any error it is left as it was.
    dir: PathBuf,
    /// Create fifos and device nodes instead of refusing the archive.
    #[arg(long)]
    specials: bool,
    /// Keep setuid, setgid and sticky bits (dropped by default).
    #[arg(long)]
    keep_special_bits: bool,
    /// Apply the stored uid/gid (needs privileges; default: files belong to
    /// the user running extract).
    #[arg(long)]
    same_owner: bool,
    /// Refuse symlinks whose target is absolute or resolves outside DIR
    /// (default: keep every symlink verbatim, never follow one).
    #[arg(long)]
    reject_escaping_symlinks: bool,
    /// Most bytes of file content, e.g. 512M, 16G or `unlimited`.
    #[arg(long, value_name = "SIZE", default_value = "16G")]
    max_size: String,
    /// Most entries.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES)]
    max_entries: u64,
    /// Longest path inside the archive, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_PATH_LEN)]
    max_path_len: usize,
    /// Skip the syncfs before publishing (faster; a crash may then leave a
    /// published tree with missing content).
    #[arg(long)]
    no_sync: bool,
    /// Print a JSON report instead of the directory.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExtractArgs) -> Result<(), Failure> {
    let max_size = parse_size(&args.max_size).ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            format!(
                "invalid --max-size {:?} (a number with an optional K/M/G/T suffix, or unlimited)",
                args.max_size
            ),
        )
    })?;
    let opts = ExtractOptions {
        specials: args.specials,
        keep_special_bits: args.keep_special_bits,
        same_owner: args.same_owner,
        symlinks: if args.reject_escaping_symlinks {
            SymlinkPolicy::RejectEscaping
        } else {
            SymlinkPolicy::Keep
        },
        max_size,
        max_entries: args.max_entries,
        max_path_len: args.max_path_len,
        sync: !args.no_sync,
    };
    let report = extract(&args.artifact, &args.dir, &opts)?;
    for w in &report.warnings {
        eprintln!("repropack: warning: {w}");
    }
    if args.json {
        let value = serde_json::json!({
            "artifact": args.artifact.to_string_lossy(),
            "dir": args.dir.to_string_lossy(),
            "report": report,
            "options": opts,
        });
        println!("{value}");
    } else {
        println!("{}", args.dir.display());
    }
    Ok(())
}

impl From<ExtractError> for Failure {
    fn from(e: ExtractError) -> Failure {
        let code = match e.class() {
            ErrorClass::Unsafe => exit::UNSAFE,
            ErrorClass::Input => exit::INPUT,
            ErrorClass::Output => exit::OUTPUT,
            ErrorClass::HashMismatch => exit::HASH_MISMATCH,
        };
        Failure::new(code, e)
    }
}
