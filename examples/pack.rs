//! Packs a directory the way `repropack pack` does and prints its ref.
//!
//! ```sh
//! cargo run --example pack -- fixtures/demo /tmp/demo.squashfs
//! ```
//!
//! The output format comes from the file name (`.tar`, `.tar.gz`,
//! `.squashfs`); the manifest is written next to it as `OUT.manifest.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use repropack::Pack;
use repropack::stage::{StageOptions, epoch_from_env};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, out] = args.as_slice() else {
        eprintln!("usage: pack SRC_DIR OUTPUT");
        return ExitCode::from(2);
    };
    match run(src, PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pack: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(src: &str, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    // SOURCE_DATE_EPOCH is honoured exactly as the command line does.
    let stage = StageOptions {
        epoch: epoch_from_env(None)?,
        ..StageOptions::default()
    };
    let mut manifest = out.clone().into_os_string();
    manifest.push(".manifest.json");
    let report = Pack::new([src])
        .output(&out)
        .stage_options(stage)
        .manifest(PathBuf::from(manifest))
        .run()?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", report.reference);
    if let Some(m) = &report.manifest {
        eprintln!("tree digest {}", m.tree_digest);
    }
    Ok(())
}
