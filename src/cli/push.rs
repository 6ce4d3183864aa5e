//! `repropack push`.

use std::path::PathBuf;

use crate::cli::exit;
use clap::Args;
use repropack::remote::push::{Dest, PushError, PushOptions, push};

use super::Failure;
use super::flags::NetFlags;

#[derive(Args)]
pub struct PushArgs {
    /// The artifact to push.
    file: PathBuf,
    /// A directory (path or file:///dir) or s3://bucket[/prefix]. The file
    /// is stored as DEST/sha256/<hex><original extension>.
    dest: String,
    #[command(flatten)]
    net: NetFlags,
    /// Print a JSON object (ref, sha256, size, uploaded).
    #[arg(long)]
    json: bool,
}

pub fn run(args: PushArgs) -> Result<(), Failure> {
    let dest = Dest::parse(&args.dest).map_err(failure)?;
    let opts = PushOptions {
        net: args.net.options()?,
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
