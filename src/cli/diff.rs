//! `repropack diff`: what differs between two artifacts or directories.
//! Exit 0 identical, 1 different, 2 error (like diff(1)).

use std::ffi::OsString;
use std::path::Path;

use clap::Args;
use repropack::artifact::first_tar_stream_difference;
use repropack::digest::hash_file;
use repropack::exit;
use repropack::treediff::{Report, Side, compare, tar_block};

use super::Failure;
use super::flags::StageFlags;
use super::side::any_side;

#[derive(Args)]
pub struct DiffArgs {
    /// First artifact or directory.
    a: OsString,
    /// Second artifact or directory.
    b: OsString,
    /// Print a JSON object instead of lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stage: StageFlags,
    /// Threads hashing files of a directory (default: all CPUs).
    #[arg(long)]
    jobs: Option<usize>,
}

pub fn run(args: DiffArgs) -> Result<(), Failure> {
    // Errors exit 2 whatever their usual code, as diff(1) does.
    let as_error = |f: Failure| Failure::new(exit::USAGE, f.message);
    let (pa, pb) = (Path::new(&args.a), Path::new(&args.b));
    if pa.is_file() && pb.is_file() {
        let h = |p: &Path| {
            hash_file(p).map_err(|e| Failure::new(exit::USAGE, format!("{}: {e}", p.display())))
        };
        if h(pa)?.0 == h(pb)?.0 {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"identical": true, "byte_identical": true})
                );
            } else {
                println!("byte-identical");
            }
            return Ok(());
        }
    }
    let a = any_side(std::slice::from_ref(&args.a), &args.stage, args.jobs).map_err(as_error)?;
    let b = any_side(std::slice::from_ref(&args.b), &args.stage, args.jobs).map_err(as_error)?;
    let report = compare(&a, &b).map_err(|e| Failure::new(exit::USAGE, e))?;
    let stream = tar_stream_note(&a, &b, &report).map_err(as_error)?;
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("identical".into(), report.identical().into());
            obj.insert("a".into(), a.label.clone().into());
            obj.insert("b".into(), b.label.clone().into());
            if let Some((offset, _)) = &stream {
                obj.insert("tar_stream_first_difference".into(), (*offset).into());
            }
        }
        println!("{value}");
    } else {
        for line in report.lines() {
            println!("{line}");
        }
        if let Some((_, line)) = &stream {
            println!("{line}");
        }
    }
    if report.identical() {
        Ok(())
    } else {
        // The findings are on stdout already; exit 1 quietly like diff(1).
        Err(Failure::new(exit::DIFFERENT, ""))
    }
}

/// For two tar.gz whose bytes differ: where their decompressed tar streams
/// differ (`None` offset in JSON when they are the same).
fn tar_stream_note(
    a: &Side,
    b: &Side,
    report: &Report,
) -> Result<Option<(Option<u64>, String)>, Failure> {
    let gz = |s: &Side| s.facts.iter().any(|(k, v)| k == "format" && v == "tar.gz");
    let (Some(fa), Some(fb)) = (&a.file, &b.file) else {
        return Ok(None);
    };
    if report.byte_identical || !gz(a) || !gz(b) {
        return Ok(None);
    }
    let d = first_tar_stream_difference(fa, fb).map_err(|e| Failure::new(exit::USAGE, e))?;
    Ok(Some(match d {
        None => (
            None,
            "decompressed tar streams are identical: only the gzip layer differs".to_string(),
        ),
        Some(off) => (
            Some(off),
            format!(
                "decompressed tar streams first differ at offset {off} ({})",
                tar_block(off)
            ),
        ),
    }))
}
