//! `repropack check`: build, rebuild under perturbation, compare, and leave
//! a marker (`OUT.verified` / `OUT.unverified`) for `repropack gate`.

use std::io::Write;
use std::path::Path;

use clap::Args;
use repropack::exit;
use repropack::marker::{Marker, SCHEMA};
use repropack::pack::PackOptions;
use repropack::perturb::perturbed_copy;
use repropack::stage::Source;
use repropack::treediff::compare;

use super::Failure;
use super::pack::{Input, PackArgs, build, resolve};
use super::record;
use super::side::artifact_side;

/// Test-only hook: when set to a path, `check` appends a line to that file
/// between the two builds — an honest stand-in for a non-deterministic input
/// (a generated file that changes on every build). Documented in
/// notes/README-manifest.md; never set it in production.
pub const MUTATE_ENV: &str = "REPROPACK_TEST_MUTATE_BETWEEN_BUILDS";

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let args = args.pack;
    let (stage_opts, pack_opts) = resolve(&args)?;
    if args.from_tar.is_some() {
        return Err(Failure::new(
            exit::USAGE,
            "check needs SRC paths to copy and rebuild; --from-tar is not supported",
        ));
    }
    let sources: Vec<Source> = args.sources.iter().map(Source::parse).collect();
    let input = Input::Sources(sources.clone());
    let first = build(
        &input,
        &stage_opts,
        &pack_opts,
        &args.output,
        args.ref_base.as_deref(),
    )?;
    let recorded = record::record(&args.record, &sources, &first, false)?;
    drop(recorded);
    if let Some(path) = std::env::var_os(MUTATE_ENV) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"mutated between builds\n"))
            .map_err(|e| Failure::new(exit::INPUT, format!("{MUTATE_ENV}: {e}")))?;
    }

    let tmp = tempfile::Builder::new()
        .prefix("repropack-check.")
        .tempdir()
        .map_err(|e| Failure::new(exit::OUTPUT, format!("temp dir: {e}")))?;
    let copy_root = tmp.path().join("copy");
    let out_dir = tmp.path().join("out");
    for d in [&copy_root, &out_dir] {
        std::fs::create_dir(d)
            .map_err(|e| Failure::new(exit::OUTPUT, format!("{}: {e}", d.display())))?;
    }
    let perturbed = perturbed_copy(&sources, &stage_opts, &copy_root)
        .map_err(|e| Failure::new(exit::INPUT, e))?;
    let jobs2 = if pack_opts.jobs == 1 { 2 } else { 1 };
    let mut perturbations = perturbed.perturbations.clone();
    perturbations.push(format!("--jobs {jobs2} instead of {}", pack_opts.jobs));
    let second_path = out_dir.join(args.output.file_name().unwrap_or_else(|| "out".as_ref()));
    let pack2 = PackOptions {
        jobs: jobs2,
        ..pack_opts.clone()
    };
    let reference = first.reference.to_string();
    let sha = first.packed.sha256.to_hex();
    let second = build(
        &Input::Sources(perturbed.sources.clone()),
        &stage_opts,
        &pack2,
        &second_path,
        None,
    );
    let (rebuilt_sha256, differences) = match &second {
        Ok(b) if b.packed.sha256 == first.packed.sha256 => (b.packed.sha256.to_hex(), Vec::new()),
        Ok(b) => (
            b.packed.sha256.to_hex(),
            differences(&args.output, &second_path),
        ),
        Err(f) => (
            String::new(),
            vec![format!("second build failed: {}", f.message)],
        ),
    };
    let verified = differences.is_empty();
    let marker = Marker {
        schema: SCHEMA.to_string(),
        status: if verified { "verified" } else { "unverified" }.to_string(),
        reference: reference.clone(),
        sha256: sha,
        rebuilt_sha256,
        perturbations,
        differences: differences.clone(),
    };
    let marker_path = marker
        .write(&args.output)
        .map_err(|e| Failure::new(exit::OUTPUT, e))?;
    println!("{reference}");
    if verified {
        eprintln!(
            "repropack: verified: rebuilt identically under perturbation; wrote {}",
            marker_path.display()
        );
        Ok(())
    } else {
        for d in &differences {
            eprintln!("repropack: {d}");
        }
        Err(Failure::new(
            exit::DIFFERENT,
            format!(
                "{} is UNVERIFIED: a second build under perturbation differs; wrote {} (the artifact itself is kept and usable)",
                args.output.display(),
                marker_path.display()
            ),
        ))
    }
}

/// What `diff` reports between the two builds.
fn differences(a: &Path, b: &Path) -> Vec<String> {
    let sides = artifact_side(a).and_then(|x| artifact_side(b).map(|y| (x, y)));
    match sides {
        Ok((x, y)) => match compare(&x, &y) {
            Ok(r) => {
                let mut lines = r.lines();
                if lines.is_empty() {
                    lines.push("bytes differ".to_string());
                }
                lines
            }
            Err(e) => vec![format!("bytes differ; comparing failed: {e}")],
        },
        Err(f) => vec![format!("bytes differ; reading failed: {}", f.message)],
    }
}
