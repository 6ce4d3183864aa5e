//! `repropack digest`: the tree digest of a directory or an artifact.

use std::ffi::OsString;
use std::io::Write;

use crate::cli::exit;
use clap::Args;

use super::Failure;
use super::flags::{ReadFlags, StageFlags};
use super::side::any_side;

#[derive(Args)]
pub struct DigestArgs {
    /// An artifact (tar, tar.gz, SquashFS; format read from the bytes), or
    /// sources as for `pack` (`SRC` or `SRC:DEST`), staged with the same
    /// flags `pack` takes.
    #[arg(required = true, value_name = "SRC|ARTIFACT")]
    inputs: Vec<OsString>,
    #[command(flatten)]
    stage: StageFlags,
    #[command(flatten)]
    read: ReadFlags,
    /// Threads hashing files of a directory (default: all CPUs).
    #[arg(long, value_name = "N", env = "REPROPACK_JOBS", value_parser = super::flags::jobs)]
    jobs: Option<usize>,
    /// Print the canonical serialization that is hashed instead of the digest.
    #[arg(long)]
    canonical: bool,
    /// Print a JSON object (tree_digest, entries, format).
    #[arg(long)]
    json: bool,
}

pub fn run(args: DigestArgs) -> Result<(), Failure> {
    let side = any_side(&args.inputs, &args.stage, &args.read, args.jobs)?;
    if args.canonical {
        std::io::stdout()
            .write_all(&side.tree.canonical_text())
            .map_err(|e| Failure::new(exit::OUTPUT, format!("stdout: {e}")))?;
        return Ok(());
    }
    let digest = side.tree.digest();
    if args.json {
        let format = side
            .facts
            .iter()
            .find(|(k, _)| k == "format")
            .map(|(_, v)| v.clone());
        let value = serde_json::json!({
            "tree_digest": digest.to_hex(),
            "entries": side.tree.entries().len(),
            "format": format,
            "sha256": side.sha256.map(|d| d.to_hex()),
        });
        println!("{value}");
    } else {
        println!("{digest}");
    }
    Ok(())
}
