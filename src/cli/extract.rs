//! `repropack extract ARTIFACT DIR`.

use std::path::PathBuf;

use crate::cli::exit;
use clap::Args;
use repropack::extract::{ErrorClass, ExtractError, extract};

use super::Failure;
use super::flags::ExtractFlags;

#[derive(Args)]
pub struct ExtractArgs {
    /// tar, tar.gz or SquashFS file (the format is read from its bytes).
    artifact: PathBuf,
    /// Destination directory: must not exist (its parent must) or be empty.
    /// Published atomically: on any error it is left as it was.
    dir: PathBuf,
    #[command(flatten)]
    extract: ExtractFlags,
    /// Print a JSON report instead of the directory.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExtractArgs) -> Result<(), Failure> {
    let opts = args.extract.options()?;
    let report = extract(&args.artifact, &args.dir, &opts)?;
    super::warn(&report.warnings);
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
