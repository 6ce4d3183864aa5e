//! `repropack pack`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use repropack::exit;
use repropack::pack::{Format, PackOptions, Packed, default_jobs, pack_to_path};
use repropack::refs::ArtifactRef;
use repropack::stage::{Plan, Source, StageOptions, stage};

use super::Failure;
use super::flags::StageFlags;
use super::record::{self, RecordFlags};

#[derive(Args, Clone)]
pub struct PackArgs {
    /// Sources: `SRC` (a directory's contents go to the root, a file goes to
    /// the root under its name) or `SRC:DEST` (DEST = path in the archive).
    #[arg(required = true, value_name = "SRC[:DEST]")]
    pub sources: Vec<OsString>,
    /// Output file. Written atomically.
    #[arg(short, long)]
    pub output: PathBuf,
    /// tar or tar.gz; default: from the output's extension.
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub stage: StageFlags,
    /// Compression level (gzip: 0-9, default 6).
    #[arg(long)]
    pub level: Option<u32>,
    /// Worker threads (default: all CPUs this process may use). Never
    /// changes the output.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the ref under this base URI (`BASE/<output file name>`) instead
    /// of the output's absolute path.
    #[arg(long, value_name = "URI")]
    pub ref_base: Option<String>,
    /// Print a JSON object instead of the bare ref.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub record: RecordFlags,
}

pub fn run(args: PackArgs) -> Result<(), Failure> {
    let (stage_opts, pack_opts) = resolve(&args)?;
    let sources: Vec<Source> = args.sources.iter().map(Source::parse).collect();
    let built = build(
        &sources,
        &stage_opts,
        &pack_opts,
        &args.output,
        args.ref_base.as_deref(),
    )?;
    let record = record::record(&args.record, &sources, &built, args.json)?;
    if args.json {
        println!(
            "{}",
            pack_json(
                &built.reference,
                &built.packed,
                &stage_opts,
                record.as_ref()
            )
        );
    } else {
        println!("{}", built.reference);
    }
    Ok(())
}

/// The staging and packing options `args` ask for.
pub fn resolve(args: &PackArgs) -> Result<(StageOptions, PackOptions), Failure> {
    let format = match &args.format {
        Some(name) => Format::parse(name).ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!("unknown --format {name:?} (tar, tar.gz)"),
            )
        })?,
        None => Format::from_path(&args.output).ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!(
                    "cannot tell the format from {}; name it *.tar or *.tar.gz, or pass --format",
                    args.output.display()
                ),
            )
        })?,
    };
    let stage_opts = args.stage.options()?;
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Failure::new(exit::USAGE, "--jobs must be at least 1"));
    }
    let pack_opts = PackOptions {
        format,
        level: args.level,
        jobs,
    };
    Ok((stage_opts, pack_opts))
}

/// A packed artifact and the plan it was made from.
pub struct Built {
    pub plan: Plan,
    pub stage_opts: StageOptions,
    pub jobs: usize,
    pub packed: Packed,
    pub reference: ArtifactRef,
}

/// Stages `sources` and packs them to `output`; warnings go to stderr.
pub fn build(
    sources: &[Source],
    stage_opts: &StageOptions,
    pack_opts: &PackOptions,
    output: &Path,
    ref_base: Option<&str>,
) -> Result<Built, Failure> {
    let plan = stage(sources, stage_opts)?;
    for w in plan.warnings() {
        eprintln!("repropack: warning: {w}");
    }
    let packed = pack_to_path(&plan, pack_opts, output)?;
    let uri = match ref_base {
        Some(base) => {
            let name = output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{}/{}", base.trim_end_matches('/'), name)
        }
        None => absolute_uri(output)?,
    };
    let reference = ArtifactRef::new(uri, packed.sha256);
    Ok(Built {
        plan,
        stage_opts: stage_opts.clone(),
        jobs: pack_opts.jobs,
        packed,
        reference,
    })
}

fn pack_json(
    r: &ArtifactRef,
    packed: &Packed,
    opts: &StageOptions,
    record: Option<&record::Recorded>,
) -> String {
    let mut value = serde_json::json!({
        "ref": r.to_string(),
        "sha256": packed.sha256.to_hex(),
        "size": packed.size,
        "format": packed.format.name(),
        "entries": packed.entries,
        "options": {
            "level": packed.level,
            "epoch": opts.epoch,
            "clamp_mtime": opts.clamp_mtime,
            "owner": format!("{}:{}", opts.owner.uid, opts.owner.gid),
            "keep_modes": opts.keep_modes,
            "keep_special_bits": opts.keep_special_bits,
            "follow_symlinks": opts.follow_symlinks,
            "specials": opts.specials,
            "excludes": opts.excludes,
        },
    });
    if let (Some(rec), Some(obj)) = (record, value.as_object_mut()) {
        rec.add_to_json(obj);
    }
    value.to_string()
}

pub fn absolute_uri(path: &Path) -> Result<String, Failure> {
    let abs = std::fs::canonicalize(path)
        .map_err(|e| Failure::new(exit::OUTPUT, format!("{}: {e}", path.display())))?;
    abs.to_str().map(str::to_string).ok_or_else(|| {
        Failure::new(
            exit::OUTPUT,
            format!("{}: path is not UTF-8; pass --ref-base", abs.display()),
        )
    })
}
