//! `repropack diff`: what differs between two artifacts or directories.
//! Exit 0 identical, 1 different, 2 error (like diff(1)).

use std::ffi::OsString;

use clap::Args;
use repropack::Diff;
use repropack::pack::default_jobs;

use super::Failure;
use super::flags::{ReadFlags, StageFlags};
use crate::cli::exit;

#[derive(Args)]
pub struct DiffArgs {
    /// First artifact or directory.
    a: OsString,
    /// Second artifact or directory.
    b: OsString,
    /// Print a JSON object instead of lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stage: StageFlags,
    #[command(flatten)]
    read: ReadFlags,
    /// Threads hashing files of a directory (default: all CPUs).
    #[arg(long, value_name = "N", env = "REPROPACK_JOBS", value_parser = super::flags::jobs)]
    jobs: Option<usize>,
}

pub fn run(args: DiffArgs) -> Result<(), Failure> {
    // Errors exit 2 whatever their usual code, as diff(1) does.
    let as_error = |f: Failure| Failure::new(exit::USAGE, f.message);
    let mut opts = args.stage.options().map_err(as_error)?;
    opts.jobs = args.jobs.unwrap_or_else(default_jobs);
    let outcome = Diff::new(args.a, args.b)
        .stage_options(opts)
        .read_options(args.read.options().map_err(as_error)?)
        .run()
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    if let repropack::verify::diff::DiffOutcome::Compared { warnings, .. } = &outcome {
        super::warn(warnings);
    }
    if args.json {
        println!("{}", outcome.to_json());
    } else {
        for line in outcome.lines() {
            println!("{line}");
        }
    }
    if outcome.identical() {
        Ok(())
    } else {
        // The findings are on stdout already; exit 1 quietly like diff(1).
        Err(Failure::new(exit::DIFFERENT, ""))
    }
}
