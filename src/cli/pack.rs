//! `repropack pack`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use repropack::exit;
use repropack::pack::{Format, PackOptions, Packed, default_jobs, pack_to_path};
use repropack::refs::ArtifactRef;
use repropack::squashfs::{Compression, SquashfsOptions, parse_block_size};
use repropack::stage::{Owner, Source, StageOptions, epoch_from_env, stage, stage_tar};

use super::Failure;

#[derive(Args)]
pub struct PackArgs {
    /// Sources: `SRC` (a directory's contents go to the root, a file goes to
    /// the root under its name) or `SRC:DEST` (DEST = path in the archive).
    #[arg(
        required_unless_present = "from_tar",
        conflicts_with = "from_tar",
        value_name = "SRC[:DEST]"
    )]
    sources: Vec<OsString>,
    /// Pack the members of a tar stream (`-` = stdin; may be gzipped)
    /// instead of SRC paths, through the same staging rules.
    #[arg(long, value_name = "FILE|-")]
    from_tar: Option<PathBuf>,
    /// Output file. Written atomically.
    #[arg(short, long)]
    output: PathBuf,
    /// tar, tar.gz or squashfs; default: from the output's extension
    /// (.tar, .tar.gz/.tgz, .squashfs/.sqfs/.sfs).
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
    /// Compression level (tar.gz: 0-9, default 6; squashfs: as for --comp).
    #[arg(long)]
    level: Option<u32>,
    /// squashfs compressor: gzip (default, level 1-9, default 6), zstd
    /// (1-22, default 15), xz (0-9, default 6), lz4 or none.
    #[arg(long, value_name = "NAME[:LEVEL]")]
    comp: Option<String>,
    /// squashfs data block size: a power of two from 4K to 1M, as bytes or
    /// with a K/M suffix (default 128K).
    #[arg(long, value_name = "SIZE")]
    block_size: Option<String>,
    /// squashfs: store files with identical content separately instead of
    /// once.
    #[arg(long)]
    no_dedup: bool,
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
    let squashfs = squashfs_options(&args, format)?;
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
    let plan = match &args.from_tar {
        Some(tar) if tar.as_os_str() == "-" => {
            stage_tar(std::io::stdin().lock(), "-", &stage_opts)?
        }
        Some(tar) => {
            let file = std::fs::File::open(tar)
                .map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", tar.display())))?;
            stage_tar(file, &tar.display().to_string(), &stage_opts)?
        }
        None => {
            let sources: Vec<Source> = args.sources.iter().map(Source::parse).collect();
            stage(&sources, &stage_opts)?
        }
    };
    for w in plan.warnings() {
        eprintln!("repropack: warning: {w}");
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Failure::new(exit::USAGE, "--jobs must be at least 1"));
    }
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
        let sq = (format == Format::Squashfs).then_some(&pack_opts.squashfs);
        println!("{}", pack_json(&r, &packed, &stage_opts, sq));
    } else {
        println!("{r}");
    }
    Ok(())
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
