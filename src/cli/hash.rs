//! `repropack hash`.

use std::path::PathBuf;

use crate::cli::exit;
use repropack::digest::{DigestAlgorithm, hash_file};
use repropack::remote::refs::ArtifactRef;

use super::Failure;
use repropack::pack::absolute_uri;

pub fn run(files: &[PathBuf], json: bool, algorithm: &str) -> Result<(), Failure> {
    let algorithm = DigestAlgorithm::parse(algorithm)
        .ok_or_else(|| Failure::new(exit::USAGE, format!("unknown --algorithm {algorithm:?}")))?;
    for f in files {
        let input = |e: std::io::Error| Failure::new(exit::INPUT, format!("{}: {e}", f.display()));
        let (reference, hex, size) = if algorithm == DigestAlgorithm::Sha256 {
            let (digest, size) = hash_file(f).map_err(input)?;
            let r = ArtifactRef::new(absolute_uri(f)?, digest);
            (r.to_string(), digest.to_hex(), size)
        } else {
            let (hex, size) = algorithm.hash_file(f).map_err(input)?;
            let r = format!("{}#{}={hex}", absolute_uri(f)?, algorithm.fragment());
            (r, hex, size)
        };
        if json {
            let mut value = serde_json::Map::new();
            value.insert("file".into(), f.display().to_string().into());
            value.insert("ref".into(), reference.into());
            value.insert(algorithm.fragment().into(), hex.into());
            value.insert("size".into(), size.into());
            println!("{}", serde_json::Value::Object(value));
        } else {
            println!("{reference}");
        }
    }
    Ok(())
}
