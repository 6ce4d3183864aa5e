//! `repropack hash`.

use std::path::PathBuf;

use crate::cli::exit;
use repropack::digest::hash_file;
use repropack::remote::refs::ArtifactRef;

use super::Failure;
use repropack::pack::absolute_uri;

pub fn run(files: &[PathBuf]) -> Result<(), Failure> {
    for f in files {
        let (digest, _) =
            hash_file(f).map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", f.display())))?;
        println!("{}", ArtifactRef::new(absolute_uri(f)?, digest));
    }
    Ok(())
}
