//! `repropack extract ARTIFACT DIR`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::exit;
use clap::Args;
use repropack::extract::{ErrorClass, ExtractError, extract};
use repropack::progress::Counters;

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
    /// No progress bar (it is drawn on stderr only when that is a terminal).
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: ExtractArgs) -> Result<(), Failure> {
    let mut opts = args.extract.options()?;
    let progress = Arc::new(Counters::default());
    opts.progress = Some(Arc::clone(&progress));
    let display = super::progress::start("extract", &progress, args.quiet);
    let result = extract(&args.artifact, &args.dir, &opts);
    if let Some(d) = display {
        d.finish();
    }
    let report = result?;
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
