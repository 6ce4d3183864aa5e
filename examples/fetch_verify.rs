//! What an executor does with a ref: fetch it into the content-addressed
//! cache (the bytes are verified against the ref's sha256 while they
//! arrive; nothing unverified is ever used), then extract it safely.
//!
//! ```sh
//! REF=$(repropack pack fixtures/demo -o /tmp/demo.tar.gz)
//! cargo run --example fetch_verify -- "$REF" /tmp/demo-tree
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use repropack::extract::{ExtractOptions, extract};
use repropack::remote::{ArtifactRef, FetchOptions, default_cache_dir, fetch};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [reference, dir] = args.as_slice() else {
        eprintln!("usage: fetch_verify URI#sha256=HEX DIR");
        return ExitCode::from(2);
    };
    match run(reference, PathBuf::from(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fetch_verify: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(reference: &str, dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let reference: ArtifactRef = reference.parse()?;
    let cache = default_cache_dir().ok_or("no cache directory (set HOME)")?;
    let fetched = fetch(&reference, &[], &FetchOptions::new(cache))?;
    eprintln!(
        "{} ({} bytes, cache hit: {})",
        fetched.path.display(),
        fetched.size,
        fetched.cache_hit
    );
    let report = extract(&fetched.path, &dir, &ExtractOptions::default())?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", dir.display());
    Ok(())
}
