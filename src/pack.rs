//! The pack job: sources → [`stage`](crate::stage) → a format writer →
//! [`AtomicFile`] → a ref, plus the manifest on request.
//!
//! [`Pack`] is the whole job, exactly as `repropack pack` runs it (the CLI
//! only parses flags into it and prints the [`PackReport`]).
//! [`pack_to_path`] is the lower step: a staged [`Plan`] plus
//! [`PackOptions`] → an artifact at a final path. This is the only module
//! that knows both the plan and the format writers; it picks the writer and
//! wires it to [`AtomicFile`] and [`HashingWriter`].
//!
//! ```
//! use repropack::pack::{pack_to_path, PackOptions};
//! use repropack::stage::{stage, Source, StageOptions};
//! use repropack::Format;
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("a.txt"), "a")?;
//! # let (src, out) = (dir.path().join("a.txt"), dir.path().join("demo.tar.gz"));
//! let plan = stage(&[Source::parse(&src)], &StageOptions::default())?;
//! let done = pack_to_path(&plan, &PackOptions::new(Format::TarGz), &out)?;
//! assert_eq!(done.entries, 1);
//! println!("{}", done.sha256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsStr;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::{HashingWriter, Sha256Digest};
use crate::format::Format;
use crate::format::gzip::ParallelGzip;
use crate::format::squashfs::{
    Compression, SquashfsError, SquashfsOptions, write_squashfs_with_progress,
};
use crate::format::tar::{TarError, write_tar_with_progress};
use crate::output::{AtomicFile, OutputError};
use crate::plan::{EntryKind, InputFiles, Plan};
use crate::progress::Counters;
use crate::remote::ArtifactRef;
use crate::stage::{Source, StageError, StageOptions, stage, stage_tar};
use crate::verify::manifest::{
    ArtifactInfo, Manifest, ManifestError, ManifestOptions, random_name,
};
use crate::verify::provenance::{ArtifactDigests, ProvenanceError, Revision, Statement};
use crate::verify::revision::{GitSource, SourceRevision, detect_git_source};
use crate::verify::tree_digest::{Kept, Tree, TreeError};

/// Options of the container (not of the tree: those are in
/// [`StageOptions`]).
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The container format.
    pub format: Format,
    /// Compression level; `None` means the format's default (gzip: 6).
    pub level: Option<u32>,
    /// Worker threads; output never depends on it.
    pub jobs: usize,
    /// SquashFS settings (compressor, block size, dedup); only used by
    /// [`Format::Squashfs`]. A `level` above overrides the compressor's.
    pub squashfs: SquashfsOptions,
    /// Counts entries and bytes written, for a progress display; never
    /// changes the output.
    pub progress: Option<Arc<Counters>>,
}

impl PackOptions {
    /// Defaults for `format`: default level, all CPUs this process may use.
    pub fn new(format: Format) -> PackOptions {
        PackOptions {
            format,
            level: None,
            jobs: default_jobs(),
            squashfs: SquashfsOptions::default(),
            progress: None,
        }
    }
}

/// CPUs this process may use (respects affinity masks and cgroup quotas).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Default gzip level.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

/// What was written.
#[derive(Debug, Clone)]
pub struct Packed {
    /// SHA-256 of the artifact's bytes.
    pub sha256: Sha256Digest,
    /// Size of the artifact in bytes.
    pub size: u64,
    /// Entries packed (the root directory is not one).
    pub entries: usize,
    /// The container format.
    pub format: Format,
    /// The compression level used, if the format has one.
    pub level: Option<u32>,
}

/// A failed pack. The final path is untouched either way.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The sources could not be staged.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// The `--from-tar` input could not be opened.
    #[error("{}: {source}", path.display())]
    Input {
        /// The tar file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The output (or the manifest) could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The tar writer failed on an entry.
    #[error(transparent)]
    Tar(#[from] TarError),
    /// The SquashFS writer failed.
    #[error(transparent)]
    Squashfs(#[from] SquashfsError),
    /// A file's content could not be hashed for the manifest.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The provenance statement could not be made or written.
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
    /// The ref cannot name the output (its absolute path is not UTF-8, or
    /// it cannot be resolved).
    #[error("{}: {reason}", path.display())]
    Ref {
        /// The output path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Options that contradict each other or are out of range.
    #[error("invalid option: {0}")]
    Option(String),
    /// The plan holds an entry the format cannot store (a socket in tar).
    #[error("{path}: {reason}")]
    Unsupported {
        /// The entry's archive path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Writes `plan` to `path` in the chosen format.
pub fn pack_to_path(plan: &Plan, opts: &PackOptions, path: &Path) -> Result<Packed, PackError> {
    let progress = opts.progress.as_deref();
    if let Some(p) = progress {
        let bytes = plan
            .entries()
            .iter()
            .filter(|e| e.hardlink_of().is_none())
            .map(|e| e.size())
            .sum();
        p.start_writing(plan.entries().len() as u64, bytes);
    }
    if opts.format == Format::Squashfs {
        return pack_squashfs(plan, opts, path);
    }
    if opts.squashfs != SquashfsOptions::default() {
        return Err(PackError::Option(format!(
            "compressor, block size and dedup settings only apply to squashfs, not {}",
            opts.format.name()
        )));
    }
    if let Some(e) = plan
        .entries()
        .iter()
        .find(|e| e.kind() == EntryKind::Socket)
    {
        return Err(PackError::Unsupported {
            path: String::from_utf8_lossy(e.path()).into_owned(),
            reason: format!(
                "a socket cannot be stored in {} (tar has no socket type; squashfs can hold one)",
                opts.format.name()
            ),
        });
    }
    let level = match opts.format {
        Format::Tar => {
            if opts.level.is_some() {
                return Err(PackError::Option(
                    "--level has no effect on plain tar".into(),
                ));
            }
            None
        }
        Format::TarGz => Some(opts.level.unwrap_or(DEFAULT_GZIP_LEVEL)),
        Format::Squashfs => None,
    };
    if let Some(l) = level
        && l > 9
    {
        return Err(PackError::Option(format!(
            "gzip level {l} is out of range 0-9"
        )));
    }
    let mut out = AtomicFile::create(path)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, out.file_mut()));
    let result: Result<_, PackError> = (|| {
        let hashing = match opts.format {
            Format::Tar => write_tar_with_progress(plan, hashing, progress)?,
            // pack_to_path hands squashfs to pack_squashfs before this.
            Format::Squashfs => {
                return Err(PackError::Option("squashfs needs pack_squashfs".into()));
            }
            Format::TarGz => {
                let gz = ParallelGzip::new(hashing, level.unwrap_or(DEFAULT_GZIP_LEVEL), opts.jobs)
                    .map_err(|e| gzip_error(path, e))?;
                write_tar_with_progress(plan, gz, progress)?
                    .finish()
                    .map_err(|e| gzip_error(path, e))?
            }
        };
        let (mut buf, sha256, size) = hashing.finish();
        buf.flush().map_err(|e| gzip_error(path, e))?;
        Ok((sha256, size))
    })();
    let (sha256, size) = result?;
    out.commit()?;
    Ok(Packed {
        sha256,
        size,
        entries: plan.entries().len(),
        format: opts.format,
        level,
    })
}

/// SquashFS needs a seekable file (its superblock is written last), so it
/// writes straight into the temp file and hashes it afterwards.
fn pack_squashfs(plan: &Plan, opts: &PackOptions, path: &Path) -> Result<Packed, PackError> {
    let mut sq = opts.squashfs.clone();
    if let Some(level) = opts.level {
        sq.compression =
            Compression::new(sq.compression.algorithm(), Some(level)).map_err(PackError::Option)?;
    }
    let mut out = AtomicFile::create(path)?;
    let (sha256, size) = write_squashfs_with_progress(
        plan,
        &sq,
        opts.jobs,
        out.file_mut(),
        opts.progress.as_deref(),
    )?;
    out.commit()?;
    Ok(Packed {
        sha256,
        size,
        entries: plan.entries().len(),
        format: Format::Squashfs,
        level: sq.compression.level(),
    })
}

fn gzip_error(path: &Path, source: io::Error) -> PackError {
    PackError::Output(OutputError {
        path: path.to_path_buf(),
        source,
    })
}

/// What to stage: source paths or a tar stream.
#[derive(Debug, Clone)]
pub enum Input {
    /// `SRC[:DEST]` paths, staged from the filesystem.
    Sources(Vec<Source>),
    /// The members of a tar (or tar.gz) stream; `-` is standard input.
    Tar(PathBuf),
}

impl Input {
    /// The source paths (none for a tar stream).
    pub fn sources(&self) -> &[Source] {
        match self {
            Input::Sources(s) => s,
            Input::Tar(_) => &[],
        }
    }
}

/// The pack job as `repropack pack` runs it: stage, write atomically, make
/// the ref, and (with [`manifest`](Pack::manifest) or
/// [`record`](Pack::record)) the manifest.
///
/// The format comes from [`format`](Pack::format) or, when not set, from the
/// output's file name (`.tar`, `.tar.gz`/`.tgz`, `.squashfs`/`.sqfs`/`.sfs`).
/// The ref's URI is the output's absolute path, or
/// `BASE/<output file name>` with [`ref_base`](Pack::ref_base).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # std::fs::create_dir(dir.path().join("tree"))?;
/// # std::fs::write(dir.path().join("tree/a.txt"), "a")?;
/// let report = repropack::Pack::new([dir.path().join("tree")])
///     .output(dir.path().join("tree.squashfs"))
///     .jobs(2)
///     .ref_base("https://artifacts.example/builds")
///     .record(true)
///     .run()?;
/// assert_eq!(report.reference.uri(), "https://artifacts.example/builds/tree.squashfs");
/// assert!(report.manifest.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pack {
    input: Input,
    output: PathBuf,
    format: Option<Format>,
    stage: StageOptions,
    level: Option<u32>,
    squashfs: SquashfsOptions,
    jobs: usize,
    ref_base: Option<String>,
    urls: Vec<String>,
    manifest: Option<PathBuf>,
    manifest_dir: Option<PathBuf>,
    provenance: Option<PathBuf>,
    source_revision: Option<String>,
    record: bool,
    progress: Option<Arc<Counters>>,
}

/// What [`Pack::run`] did: the facts `repropack pack --json` prints.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// `URI#sha256=HEX` of the artifact.
    pub reference: ArtifactRef,
    /// What was written.
    pub packed: Packed,
    /// The staging options used.
    pub stage: StageOptions,
    /// The container options used.
    pub options: PackOptions,
    /// Things staging skipped with a warning (sockets).
    pub warnings: Vec<String>,
    /// The digests of the pack file and xattr file staging read.
    pub input_files: InputFiles,
    /// The manifest, when one was asked for (written or only recorded).
    pub manifest: Option<Manifest>,
    /// Where the manifest was written, if it was.
    pub manifest_path: Option<PathBuf>,
    /// Where the provenance statement was written, if it was.
    pub provenance_path: Option<PathBuf>,
}

impl Pack {
    /// Packs `sources` (each `SRC` or `SRC:DEST`, see [`Source::parse`]) with
    /// the contract's defaults; set the output with [`output`](Pack::output).
    pub fn new<S: AsRef<OsStr>>(sources: impl IntoIterator<Item = S>) -> Pack {
        Pack::from_input(Input::Sources(
            sources.into_iter().map(Source::parse).collect(),
        ))
    }

    /// Packs the members of the tar stream at `path` (`-` = stdin).
    pub fn from_tar(path: impl Into<PathBuf>) -> Pack {
        Pack::from_input(Input::Tar(path.into()))
    }

    /// Packs `input`.
    pub fn from_input(input: Input) -> Pack {
        let stage = StageOptions::default();
        Pack {
            input,
            output: PathBuf::new(),
            format: None,
            jobs: stage.jobs,
            stage,
            level: None,
            squashfs: SquashfsOptions::default(),
            ref_base: None,
            urls: Vec::new(),
            manifest: None,
            manifest_dir: None,
            provenance: None,
            source_revision: None,
            record: false,
            progress: None,
        }
    }

    /// Counters to update while staging and writing (for a progress
    /// display); the output never depends on them.
    pub fn progress(mut self, progress: Arc<Counters>) -> Pack {
        self.progress = Some(progress);
        self
    }

    /// The output file (written atomically).
    pub fn output(mut self, path: impl Into<PathBuf>) -> Pack {
        self.output = path.into();
        self
    }

    /// The container format (default: from the output's name).
    pub fn format(mut self, format: Format) -> Pack {
        self.format = Some(format);
        self
    }

    /// How the tree is staged (epoch, owners, modes, excludes, …). Its
    /// `jobs` is replaced by [`jobs`](Pack::jobs).
    pub fn stage_options(mut self, opts: StageOptions) -> Pack {
        self.stage = opts;
        self
    }

    /// Compression level (tar.gz 0-9; SquashFS: the compressor's range).
    pub fn level(mut self, level: Option<u32>) -> Pack {
        self.level = level;
        self
    }

    /// SquashFS compressor, block size and dedup.
    pub fn squashfs(mut self, opts: SquashfsOptions) -> Pack {
        self.squashfs = opts;
        self
    }

    /// Worker threads for staging and writing; never changes the output.
    pub fn jobs(mut self, jobs: usize) -> Pack {
        self.jobs = jobs;
        self
    }

    /// Name the artifact `BASE/<output file name>` in the ref.
    pub fn ref_base(mut self, base: impl Into<String>) -> Pack {
        self.ref_base = Some(base.into());
        self
    }

    /// Also write the manifest to `path`, atomically.
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Pack {
        self.manifest = Some(path.into());
        self
    }

    /// Also write the manifest into `dir` under a fresh unguessable name
    /// ([`random_name`]); [`PackReport::manifest_path`] says which. Replaces
    /// [`manifest`](Pack::manifest).
    pub fn manifest_dir(mut self, dir: impl Into<PathBuf>) -> Pack {
        self.manifest_dir = Some(dir.into());
        self.manifest = None;
        self
    }

    /// Where the artifact will be published, in the order a fetch should
    /// try them: recorded in the manifest (`artifact.urls`), and the first
    /// one names the artifact in the ref instead of the output's path.
    /// Each must be a URI a ref can carry (checked when the job runs).
    pub fn urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Pack {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Also write an in-toto / SLSA provenance statement about the artifact
    /// to `path`, atomically (see [`provenance`](crate::verify::provenance)).
    /// A `path` that cannot be created fails the job before anything is
    /// packed.
    pub fn provenance(mut self, path: impl Into<PathBuf>) -> Pack {
        self.provenance = Some(path.into());
        self
    }

    /// The source revision to record (default: from git, see
    /// [`detect_git`](crate::verify::revision::detect_git)).
    pub fn source_revision(mut self, rev: impl Into<String>) -> Pack {
        self.source_revision = Some(rev.into());
        self
    }

    /// Build the manifest even when none is written (for `--json`).
    pub fn record(mut self, record: bool) -> Pack {
        self.record = record;
        self
    }

    /// What is staged.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// The output file.
    pub fn output_path(&self) -> &Path {
        &self.output
    }

    /// The staging and container options this job runs with.
    pub fn resolve(&self) -> Result<(StageOptions, PackOptions), PackError> {
        let format = match self.format {
            Some(f) => f,
            None => Format::from_path(&self.output).ok_or_else(|| {
                PackError::Option(format!(
                    "cannot tell the format from {}; name it *.tar, *.tar.gz or *.squashfs, or pass --format",
                    self.output.display()
                ))
            })?,
        };
        if self.jobs == 0 {
            return Err(PackError::Option("--jobs must be at least 1".into()));
        }
        for url in &self.urls {
            ArtifactRef::check_uri(url)
                .map_err(|reason| PackError::Option(format!("--url {url:?}: {reason}")))?;
        }
        let mut stage = self.stage.clone();
        stage.jobs = self.jobs;
        stage.progress.clone_from(&self.progress);
        let options = PackOptions {
            format,
            level: self.level,
            jobs: self.jobs,
            squashfs: self.squashfs.clone(),
            progress: self.progress.clone(),
        };
        Ok((stage, options))
    }

    /// Runs the job. On failure the output path is untouched.
    pub fn run(&self) -> Result<PackReport, PackError> {
        let (stage_opts, options) = self.resolve()?;
        if self.provenance.as_deref() == Some(self.output.as_path()) {
            return Err(PackError::Option(format!(
                "--provenance {} would replace the artifact",
                self.output.display()
            )));
        }
        // Opened first: a provenance path that cannot be written fails the
        // job before the artifact exists.
        let provenance_file = self
            .provenance
            .as_deref()
            .map(AtomicFile::create)
            .transpose()?;
        let plan = self.stage_plan(&stage_opts)?;
        let packed = pack_to_path(&plan, &options, &self.output)?;
        let uri = self.output_uri()?;
        let reference = ArtifactRef::new(uri, packed.sha256);
        let manifest_path = match &self.manifest_dir {
            Some(dir) => Some(dir.join(random_name(dir)?)),
            None => self.manifest.clone(),
        };
        let mut info = artifact_info(&reference, &packed, &options);
        info.urls.clone_from(&self.urls);
        let wants_revision = self.record || manifest_path.is_some() || provenance_file.is_some();
        let (flag, git) = match (&self.source_revision, wants_revision) {
            (_, false) => (None, None),
            (Some(rev), true) => (Some(SourceRevision::from_flag(rev)), None),
            (None, true) => (None, self.detect_git()),
        };
        let source = flag
            .clone()
            .or_else(|| git.as_ref().map(|g| g.revision.clone()));
        let manifest = if self.record || manifest_path.is_some() {
            let tree = Tree::from_plan(&plan, options.jobs)?.keeping(Kept::of(&stage_opts));
            let options = ManifestOptions::from_stage(&stage_opts, plan.input_files());
            let manifest = Manifest::new(info.clone(), options, &tree, source);
            if let Some(path) = &manifest_path {
                manifest.write(path)?;
            }
            Some(manifest)
        } else {
            None
        };
        if let Some(file) = provenance_file {
            let name = self
                .output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let digests = ArtifactDigests::of_written(&self.output, &info.sha256)?;
            let revision = match (&flag, &git) {
                (Some(rev), _) => Some(Revision::Flag(rev)),
                (None, Some(g)) => Some(Revision::Git(g)),
                (None, None) => None,
            };
            let from_tar = match &self.input {
                Input::Tar(tar) => Some(tar.as_path()),
                Input::Sources(_) => None,
            };
            Statement::for_pack(
                &name,
                digests,
                &info,
                &stage_opts,
                self.input.sources(),
                from_tar,
                revision,
            )
            .with_input_files(&stage_opts, plan.input_files())
            .write(file)?;
        }
        Ok(PackReport {
            reference,
            packed,
            stage: stage_opts,
            options,
            warnings: plan.warnings().to_vec(),
            input_files: plan.input_files(),
            manifest,
            manifest_path,
            provenance_path: self.provenance.clone(),
        })
    }

    fn detect_git(&self) -> Option<GitSource> {
        let paths: Vec<&Path> = self
            .input
            .sources()
            .iter()
            .map(|s| s.path.as_path())
            .collect();
        detect_git_source(&paths)
    }

    /// The URI the ref names the output by: the first of
    /// [`urls`](Pack::urls), else `BASE/<output file name>` with
    /// [`ref_base`](Pack::ref_base), else the output's absolute path.
    pub(crate) fn output_uri(&self) -> Result<String, PackError> {
        if let Some(first) = self.urls.first() {
            return Ok(first.clone());
        }
        match &self.ref_base {
            Some(base) => {
                let name = self
                    .output
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(format!("{}/{}", base.trim_end_matches('/'), name))
            }
            None => absolute_uri(&self.output),
        }
    }

    /// The same job on other input, output and thread count, recording
    /// nothing: the second build of [`Check`](crate::Check).
    pub(crate) fn rebuild(&self, input: Input, output: &Path, jobs: usize) -> Pack {
        Pack {
            input,
            output: output.to_path_buf(),
            jobs,
            ref_base: None,
            urls: Vec::new(),
            manifest: None,
            manifest_dir: None,
            provenance: None,
            record: false,
            progress: None,
            ..self.clone()
        }
    }

    fn stage_plan(&self, opts: &StageOptions) -> Result<Plan, PackError> {
        Ok(match &self.input {
            Input::Tar(tar) if tar.as_os_str() == "-" => stage_tar(io::stdin().lock(), "-", opts)?,
            Input::Tar(tar) => {
                let file = std::fs::File::open(tar).map_err(|source| PackError::Input {
                    path: tar.clone(),
                    source,
                })?;
                stage_tar(file, &tar.display().to_string(), opts)?
            }
            Input::Sources(sources) => stage(sources, opts)?,
        })
    }
}

impl PackReport {
    /// The JSON object `repropack pack --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        let (packed, opts) = (&self.packed, &self.stage);
        let mut value = serde_json::json!({
            "ref": self.reference.to_string(),
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
        // Only when asked for, so today's options print today's object.
        if let Some(options) = value["options"].as_object_mut() {
            if opts.keep_owners {
                options.insert("keep_owners".into(), true.into());
            }
            if let crate::stage::XattrPolicy::Keep { include, exclude } = &opts.xattrs {
                options.insert(
                    "xattrs".into(),
                    serde_json::json!({"include": include, "exclude": exclude}),
                );
            }
            if opts.no_hardlinks {
                options.insert("no_hardlinks".into(), true.into());
            }
            // The files as a manifest records them: name and sha256.
            let recorded = ManifestOptions::from_stage(opts, self.input_files);
            for (key, file) in [
                ("pack_file", recorded.pack_file),
                ("xattr_file", recorded.xattr_file),
            ] {
                if let Some(file) = file {
                    options.insert(
                        key.into(),
                        serde_json::to_value(file).unwrap_or(serde_json::Value::Null),
                    );
                }
            }
        }
        if packed.format == Format::Squashfs
            && let Some(options) = value["options"].as_object_mut()
        {
            let sq = &self.options.squashfs;
            options.insert(
                "compression".into(),
                sq.compression.algorithm().name().into(),
            );
            options.insert("block_size".into(), sq.block_size.into());
            options.insert("dedup".into(), sq.dedup.into());
        }
        if let (Some(p), Some(obj)) = (&self.provenance_path, value.as_object_mut()) {
            obj.insert("provenance".into(), p.display().to_string().into());
        }
        if let (Some(m), Some(obj)) = (&self.manifest, value.as_object_mut()) {
            obj.insert("tree_digest".into(), m.tree_digest.clone().into());
            obj.insert("format_version".into(), m.tool.format_version.into());
            obj.insert(
                "source".into(),
                serde_json::to_value(&m.source).unwrap_or(serde_json::Value::Null),
            );
            obj.insert(
                "manifest".into(),
                self.manifest_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .into(),
            );
        }
        value
    }
}

/// What a manifest records of the artifact [`pack_to_path`] wrote with
/// `opts`.
pub fn artifact_info(reference: &ArtifactRef, packed: &Packed, opts: &PackOptions) -> ArtifactInfo {
    let (compression, block_size) = match packed.format {
        Format::Tar => (None, None),
        Format::TarGz => (Some("gzip".to_string()), None),
        Format::Squashfs => (
            Some(opts.squashfs.compression.algorithm().name().to_string()),
            Some(opts.squashfs.block_size),
        ),
    };
    ArtifactInfo {
        reference: reference.to_string(),
        sha256: packed.sha256.to_hex(),
        size: packed.size,
        format: packed.format.name().to_string(),
        compression,
        level: packed.level,
        block_size,
        urls: Vec::new(),
    }
}

/// The absolute path of `path` as a ref URI.
pub fn absolute_uri(path: &Path) -> Result<String, PackError> {
    let abs = std::fs::canonicalize(path).map_err(|e| PackError::Ref {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| PackError::Ref {
            path: abs.clone(),
            reason: "path is not UTF-8; pass --ref-base".into(),
        })
}
