//! `repropack resolve`.

use clap::Args;
use repropack::remote::oci::{OciRef, ResolveError, resolve};

use super::Failure;
use super::flags::NetFlags;
use crate::cli::exit;

#[derive(Args)]
pub struct ResolveArgs {
    /// oci://HOST[:PORT]/REPO[:TAG] (TAG defaults to `latest`).
    #[arg(value_name = "OCI_URI")]
    uri: String,
    #[command(flatten)]
    net: NetFlags,
    /// Print a JSON object (ref, sha256).
    #[arg(long)]
    json: bool,
}

pub fn run(args: ResolveArgs) -> Result<(), Failure> {
    let oci: OciRef = args
        .uri
        .parse()
        .map_err(|e| Failure::new(exit::USAGE, format!("{:?}: {e}", args.uri)))?;
    let pinned = resolve(&oci, &args.net.options()?).map_err(|e| {
        let code = match &e {
            ResolveError::Registry(_) | ResolveError::NotFound { .. } => exit::FETCH,
            ResolveError::Manifest { .. } => exit::INPUT,
        };
        Failure::new(code, e)
    })?;
    if args.json {
        let v = serde_json::json!({
            "ref": pinned.to_string(),
            "sha256": pinned.sha256().map(|d| d.to_hex()),
        });
        println!("{v}");
    } else {
        println!("{pinned}");
    }
    Ok(())
}
