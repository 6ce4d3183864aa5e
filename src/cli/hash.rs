//! `repropack hash`.

use std::path::PathBuf;

use crate::cli::exit;
use repropack::digest::hash_file;
use repropack::remote::refs::ArtifactRef;

use super::Failure;
use repropack::pack::absolute_uri;

pub fn run(files: &[PathBuf], json: bool) -> Result<(), Failure> {
    for f in files {
        let (digest, size) =
            hash_file(f).map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", f.display())))?;
        let r = ArtifactRef::new(absolute_uri(f)?, digest);
        if json {
            let value = serde_json::json!({
                "file": f.display().to_string(),
                "ref": r.to_string(),
                "sha256": digest.to_hex(),
                "size": size,
            });
            println!("{value}");
        } else {
            println!("{r}");
        }
    }
    Ok(())
}
