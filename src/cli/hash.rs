//! `repropack hash`.

use std::path::PathBuf;

use repropack::digest::hash_file;
use repropack::exit;
use repropack::refs::ArtifactRef;

use super::Failure;
use super::pack::absolute_uri;

pub fn run(files: &[PathBuf]) -> Result<(), Failure> {
    for f in files {
        let (digest, _) =
            hash_file(f).map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", f.display())))?;
        println!("{}", ArtifactRef::new(absolute_uri(f)?, digest));
    }
    Ok(())
}
