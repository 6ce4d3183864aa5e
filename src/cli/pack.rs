//! `repropack pack`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use repropack::exit;
use repropack::pack::{Format, PackOptions, Packed, default_jobs, pack_to_path};
use repropack::refs::ArtifactRef;
use repropack::stage::{Owner, Source, StageOptions, epoch_from_env, stage};

use super::Failure;

#[derive(Args)]
pub struct PackArgs {
    /// Sources: `SRC` (a directory's contents go to the root, a file goes to
    /// the root under its name) or `SRC:DEST` (DEST = path in the archive).
    #[arg(required = true, value_name = "SRC[:DEST]")]
    sources: Vec<OsString>,
    /// Output file. Written atomically.
    #[arg(short, long)]
    output: PathBuf,
    /// tar or tar.gz; default: from the output's extension.
    #[arg(long)]
    format: Option<String>,
    /// Exclude archive paths matching GLOB (repeatable). A pattern without `/`
    /// matches a name at any depth; `*` does not cross `/`, `**` does.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Timestamp for every entry (seconds since 1970). Default:
    /// SOURCE_DATE_EPOCH, else 315532800 (1980-01-01).
    #[arg(long, value_name = "EPOCH")]
    mtime: Option<String>,
    /// Keep a source's mtime when it is older than the epoch.
    #[arg(long)]
    clamp_mtime: bool,
    /// Owner of every entry.
    #[arg(long, value_name = "UID:GID", default_value = "0:0")]
    owner: String,
    /// Keep permission bits as on disk (still no setuid/setgid/sticky).
    #[arg(long)]
    keep_modes: bool,
    /// Keep setuid/setgid/sticky bits.
    #[arg(long)]
    keep_special_bits: bool,
    /// Store what symlinks point to instead of the links.
    #[arg(long)]
    follow_symlinks: bool,
    /// Include fifos and device nodes instead of refusing them.
    #[arg(long)]
    specials: bool,
    /// Compression level (gzip: 0-9, default 6).
    #[arg(long)]
    level: Option<u32>,
    /// Worker threads (default: all CPUs this process may use). Never
    /// changes the output.
    #[arg(long)]
    jobs: Option<usize>,
    /// Print the ref under this base URI (`BASE/<output file name>`) instead
    /// of the output's absolute path.
    #[arg(long, value_name = "URI")]
    ref_base: Option<String>,
    /// Print a JSON object instead of the bare ref.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PackArgs) -> Result<(), Failure> {
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
    let stage_opts = StageOptions {
        epoch: epoch_from_env(args.mtime.as_deref())?,
        clamp_mtime: args.clamp_mtime,
        owner: Owner::parse(&args.owner)?,
        keep_modes: args.keep_modes,
        keep_special_bits: args.keep_special_bits,
        follow_symlinks: args.follow_symlinks,
        specials: args.specials,
        excludes: args.exclude.clone(),
    };
    let sources: Vec<Source> = args.sources.iter().map(Source::parse).collect();
    let plan = stage(&sources, &stage_opts)?;
    for w in plan.warnings() {
        eprintln!("repropack: warning: {w}");
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Failure::new(exit::USAGE, "--jobs must be at least 1"));
    }
    let pack_opts = PackOptions {
        format,
        level: args.level,
        jobs,
    };
    let packed = pack_to_path(&plan, &pack_opts, &args.output)?;
    let uri = match &args.ref_base {
        Some(base) => {
            let name = args
                .output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{}/{}", base.trim_end_matches('/'), name)
        }
        None => absolute_uri(&args.output)?,
    };
    let r = ArtifactRef::new(uri, packed.sha256);
    if args.json {
        println!("{}", pack_json(&r, &packed, &stage_opts));
    } else {
        println!("{r}");
    }
    Ok(())
}

fn pack_json(r: &ArtifactRef, packed: &Packed, opts: &StageOptions) -> String {
    let value = serde_json::json!({
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
