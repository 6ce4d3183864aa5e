//! `repropack pack`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use repropack::exit;
use repropack::pack::{Format, PackOptions, Packed, default_jobs, pack_to_path};
use repropack::refs::ArtifactRef;
use repropack::squashfs::{Compression, SquashfsOptions, parse_block_size};
use repropack::stage::{Plan, Source, StageOptions, stage, stage_tar};

use super::Failure;
use super::flags::StageFlags;
use super::record::{self, RecordFlags};

#[derive(Args, Clone)]
pub struct PackArgs {
    /// Sources: `SRC` (a directory's contents go to the root, a file goes to
    /// the root under its name) or `SRC:DEST` (DEST = path in the archive).
    #[arg(
        required_unless_present = "from_tar",
        conflicts_with = "from_tar",
        value_name = "SRC[:DEST]"
    )]
    pub sources: Vec<OsString>,
    /// Pack the members of a tar stream (`-` = stdin; may be gzipped)
    /// instead of SRC paths, through the same staging rules.
    #[arg(long, value_name = "FILE|-")]
    pub from_tar: Option<PathBuf>,
    /// Output file. Written atomically.
    #[arg(short, long)]
    pub output: PathBuf,
    /// tar, tar.gz or squashfs; default: from the output's extension
    /// (.tar, .tar.gz/.tgz, .squashfs/.sqfs/.sfs).
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub stage: StageFlags,
    /// Compression level (tar.gz: 0-9, default 6; squashfs: as for --comp).
    #[arg(long)]
    pub level: Option<u32>,
    /// squashfs compressor: gzip (default, level 1-9, default 6), zstd
    /// (1-22, default 15), xz (0-9, default 6), lz4 or none.
    #[arg(long, value_name = "NAME[:LEVEL]")]
    pub comp: Option<String>,
    /// squashfs data block size: a power of two from 4K to 1M, as bytes or
    /// with a K/M suffix (default 128K).
    #[arg(long, value_name = "SIZE")]
    pub block_size: Option<String>,
    /// squashfs: store files with identical content separately instead of
    /// once.
    #[arg(long)]
    pub no_dedup: bool,
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
    let input = Input::of(&args);
    let built = build(
        &input,
        &stage_opts,
        &pack_opts,
        &args.output,
        args.ref_base.as_deref(),
    )?;
    let record = record::record(&args.record, input.sources(), &built, args.json)?;
    if args.json {
        println!(
            "{}",
            pack_json(
                &built.reference,
                &built.packed,
                &stage_opts,
                (built.packed.format == Format::Squashfs).then_some(&pack_opts.squashfs),
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
                format!("unknown --format {name:?} (tar, tar.gz, squashfs)"),
            )
        })?,
        None => Format::from_path(&args.output).ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!(
                    "cannot tell the format from {}; name it *.tar, *.tar.gz or *.squashfs, or pass --format",
                    args.output.display()
                ),
            )
        })?,
    };
    let squashfs = squashfs_options(args, format)?;
    let mut stage_opts = args.stage.options()?;
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Failure::new(exit::USAGE, "--jobs must be at least 1"));
    }
    stage_opts.jobs = jobs;
    let pack_opts = PackOptions {
        format,
        level: if format == Format::Squashfs {
            None
        } else {
            args.level
        },
        jobs,
        squashfs,
    };
    Ok((stage_opts, pack_opts))
}

/// What to stage: SRC paths or a tar stream.
pub enum Input {
    Sources(Vec<Source>),
    /// `--from-tar FILE` (`-` = stdin).
    Tar(PathBuf),
}

impl Input {
    pub fn of(args: &PackArgs) -> Input {
        match &args.from_tar {
            Some(t) => Input::Tar(t.clone()),
            None => Input::Sources(args.sources.iter().map(Source::parse).collect()),
        }
    }

    /// The SRC paths (none for a tar stream).
    pub fn sources(&self) -> &[Source] {
        match self {
            Input::Sources(s) => s,
            Input::Tar(_) => &[],
        }
    }
}

/// A packed artifact and the plan it was made from.
pub struct Built {
    pub plan: Plan,
    pub stage_opts: StageOptions,
    pub pack_opts: PackOptions,
    pub packed: Packed,
    pub reference: ArtifactRef,
}

/// Stages `input` and packs it to `output`; warnings go to stderr.
pub fn build(
    input: &Input,
    stage_opts: &StageOptions,
    pack_opts: &PackOptions,
    output: &Path,
    ref_base: Option<&str>,
) -> Result<Built, Failure> {
    let plan = match input {
        Input::Tar(tar) if tar.as_os_str() == "-" => {
            stage_tar(std::io::stdin().lock(), "-", stage_opts)?
        }
        Input::Tar(tar) => {
            let file = std::fs::File::open(tar)
                .map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", tar.display())))?;
            stage_tar(file, &tar.display().to_string(), stage_opts)?
        }
        Input::Sources(sources) => stage(sources, stage_opts)?,
    };
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
        pack_opts: pack_opts.clone(),
        packed,
        reference,
    })
}

/// Resolves `--comp`, `--level`, `--block-size` and `--no-dedup`; the
/// squashfs-only ones are a usage error for tar formats.
fn squashfs_options(args: &PackArgs, format: Format) -> Result<SquashfsOptions, Failure> {
    let usage = |m: String| Failure::new(exit::USAGE, m);
    if format != Format::Squashfs {
        let given: Vec<&str> = [
            (args.comp.is_some(), "--comp"),
            (args.block_size.is_some(), "--block-size"),
            (args.no_dedup, "--no-dedup"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
        if !given.is_empty() {
            return Err(usage(format!(
                "{} only apply to --format squashfs, not {}",
                given.join(", "),
                format.name()
            )));
        }
        return Ok(SquashfsOptions::default());
    }
    let mut compression = match &args.comp {
        Some(c) => Compression::parse(c).map_err(|e| usage(format!("--comp: {e}")))?,
        None => Compression::default(),
    };
    if let Some(level) = args.level {
        let explicit = args.comp.as_deref().is_some_and(|c| c.contains(':'));
        if explicit && compression.level() != Some(level) {
            return Err(usage(format!(
                "--level {level} contradicts --comp {}",
                args.comp.as_deref().unwrap_or_default()
            )));
        }
        compression = Compression::new(compression.algorithm(), Some(level))
            .map_err(|e| usage(format!("--level: {e}")))?;
    }
    let block_size = match &args.block_size {
        Some(b) => parse_block_size(b).map_err(|e| usage(format!("--block-size: {e}")))?,
        None => repropack::squashfs::DEFAULT_BLOCK_SIZE,
    };
    Ok(SquashfsOptions {
        compression,
        block_size,
        dedup: !args.no_dedup,
    })
}

fn pack_json(
    r: &ArtifactRef,
    packed: &Packed,
    opts: &StageOptions,
    squashfs: Option<&SquashfsOptions>,
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
    if let (Some(sq), Some(options)) = (squashfs, value["options"].as_object_mut()) {
        options.insert(
            "compression".into(),
            sq.compression.algorithm().name().into(),
        );
        options.insert("block_size".into(), sq.block_size.into());
        options.insert("dedup".into(), sq.dedup.into());
    }
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
