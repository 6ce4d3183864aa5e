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
    /// A directory (path or file:///dir) or s3://bucket[/prefix], where the
    /// file is stored as DEST/sha256/<hex><original extension>; or
    /// oci://HOST[:PORT]/REPO[:TAG], where it becomes the one layer of an
    /// ORAS-style artifact manifest tagged TAG (default `latest`).
    dest: String,
    /// oci:// only: also push FILE.minisig (which must exist) as a referrer
    /// of the artifact's manifest.
    #[arg(long)]
    sign: bool,
    #[command(flatten)]
    net: NetFlags,
    /// Print a JSON object (ref, sha256, size, uploaded; with --sign also
    /// signature_manifest, and referrers_tag on a registry without the
    /// referrers API).
    #[arg(long)]
    json: bool,
}

pub fn run(args: PushArgs) -> Result<(), Failure> {
    let dest = Dest::parse(&args.dest).map_err(failure)?;
    let opts = PushOptions {
        net: args.net.options()?,
        sign: args.sign,
    };
    let pushed = push(&args.file, &dest, &opts).map_err(failure)?;
    if args.json {
        let mut v = serde_json::json!({
            "ref": pushed.artifact.to_string(),
            "sha256": pushed.artifact.sha256().map(|d| d.to_hex()),
            "size": pushed.size,
            "uploaded": pushed.uploaded,
        });
        if let Some(d) = &pushed.signature_manifest {
            v["signature_manifest"] = serde_json::json!(d);
        }
        if let Some(t) = &pushed.referrers_tag {
            v["referrers_tag"] = serde_json::json!(t);
        }
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
        // As for fetch: the registry would not let us in.
        PushError::Unauthorized { .. } => exit::FETCH,
    };
    Failure::new(code, e)
}
