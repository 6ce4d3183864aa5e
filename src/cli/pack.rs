//! `repropack pack`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use repropack::Format;
use repropack::format::squashfs::{
    Compression, DEFAULT_BLOCK_SIZE, SquashfsOptions, parse_block_size,
};
use repropack::pack::{Pack, default_jobs};

use super::Failure;
use super::flags::StageFlags;
use crate::cli::exit;

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
    /// Also write a JSON manifest (artifact, options, source revision, tree
    /// digest, every entry with its sha256) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Source revision to record in the manifest. Default: the git commit of
    /// the first source inside a git worktree (marked dirty when `git status
    /// --porcelain` lists changes under that source).
    #[arg(long, value_name = "REV")]
    pub source_revision: Option<String>,
}

pub fn run(args: PackArgs) -> Result<(), Failure> {
    let report = job(&args)?.record(args.json).run()?;
    super::warn(&report.warnings);
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.reference);
    }
    Ok(())
}

/// The pack job `args` ask for.
pub fn job(args: &PackArgs) -> Result<Pack, Failure> {
    let mut pack = match &args.from_tar {
        Some(tar) => Pack::from_tar(tar),
        None => Pack::new(&args.sources),
    }
    .output(&args.output)
    .stage_options(args.stage.options()?)
    .jobs(args.jobs.unwrap_or_else(default_jobs));
    let format = match &args.format {
        Some(name) => Format::parse(name).ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!("unknown --format {name:?} (tar, tar.gz, squashfs)"),
            )
        })?,
        None => pack.resolve()?.1.format,
    };
    let squashfs = squashfs_options(args, format)?;
    // For SquashFS the level is folded into the compressor.
    pack = pack
        .format(format)
        .level(if format == Format::Squashfs {
            None
        } else {
            args.level
        })
        .squashfs(squashfs);
    if let Some(base) = &args.ref_base {
        pack = pack.ref_base(base);
    }
    if let Some(m) = &args.manifest {
        pack = pack.manifest(m);
    }
    if let Some(rev) = &args.source_revision {
        pack = pack.source_revision(rev);
    }
    Ok(pack)
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
        None => DEFAULT_BLOCK_SIZE,
    };
    Ok(SquashfsOptions {
        compression,
        block_size,
        dedup: !args.no_dedup,
    })
}
