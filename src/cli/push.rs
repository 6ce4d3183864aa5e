//! `repropack push`.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::exit;
use clap::Args;
use repropack::remote::NetOptions;
use repropack::remote::push::{Dest, PushError, PushOptions, push};

use super::Failure;

#[derive(Args)]
pub struct PushArgs {
    /// The artifact to push.
    file: PathBuf,
    /// A directory (path or file:///dir) or s3://bucket[/prefix]. The file
    /// is stored as DEST/sha256/<hex><original extension>.
    dest: String,
    /// Connect timeout and longest wait for any read, in seconds (S3).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// Retries per S3 request for transient failures.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Print a JSON object (ref, sha256, size, uploaded).
    #[arg(long)]
    json: bool,
}

pub fn run(args: PushArgs) -> Result<(), Failure> {
    let dest = Dest::parse(&args.dest).map_err(failure)?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Failure::new(exit::USAGE, "--timeout must be a positive number"))?;
    let opts = PushOptions {
        net: NetOptions {
            timeout,
            retries: args.retries,
            ..NetOptions::default()
        },
    };
    let pushed = push(&args.file, &dest, &opts).map_err(failure)?;
    if args.json {
        let v = serde_json::json!({
            "ref": pushed.artifact.to_string(),
            "sha256": pushed.artifact.sha256().to_hex(),
            "size": pushed.size,
            "uploaded": pushed.uploaded,
        });
        println!("{v}");
    } else {
        println!("{}", pushed.artifact);
    }
    Ok(())
}

fn failure(e: PushError) -> Failure {
    let code = match &e {
        PushError::BadDest { .. } => exit::USAGE,
        PushError::Input { .. } | PushError::Changed { .. } => exit::INPUT,
        PushError::Output { .. } | PushError::Remote { .. } | PushError::Verify { .. } => {
            exit::OUTPUT
        }
    };
    Failure::new(code, e)
}
