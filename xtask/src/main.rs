//! `cargo xtask` — project chores that are not part of the product.
//!
//! `cargo xtask bench [--corpus DIR] [--runs N] [--jobs N] [--entries N1,N2,…] [--gen-dir DIR] [--progress-runs N] [--no-docs] [--tar] [--extract | --extract-only] [--keep] [--baseline BIN]`
//!
//! Builds repropack in release, copies a real tree (default: the Python
//! standard library of `python3`) into `target/bench/corpus`, then packs it
//! with repropack, mksquashfs and gensquashfs at `--jobs 1` and at all CPUs,
//! each `--runs` times, measuring wall time, peak RSS of the child
//! (`ru_maxrss` from `wait4`) and image size. Prints a markdown table of
//! medians with ratios against the faster peer at the same job count.
//! A peer that is not installed is skipped, and the output says so.
//! `--baseline BIN` adds another repropack binary (an earlier build) as a
//! row of its own, so a change is measured before and after in one run.
//! `--extract` adds reading back: repropack's image of the corpus extracted
//! by `repropack extract` and `unsquashfs -d` (all CPUs and `-p 1`) to the
//! disk and to tmpfs (`/dev/shm`), and read whole by `repropack digest`.
//! `--entries N1,N2,…` adds the entry-count series (`series.rs`): a
//! generated tree per count packed by the three SquashFS writers at all
//! CPUs, with the peak RSS per entry between the counts. Each run also
//! measures what drawing the progress bar costs (`progress_cost.rs`),
//! prints the goals and whether they hold (`report.rs`), and, unless
//! `--no-docs`, writes `docs/bench.svg` (`plot.rs`) and the report into
//! `docs/BENCHMARKS.md` and `README.md` between their markers.
//! Nothing here asserts a time: this is a measurement, not a test.
//!
//! `cargo xtask gen-tree --entries N --out DIR [--seed S]` writes a
//! synthetic tree of N entries (small files in a few thousand directories,
//! see `gen_tree.rs`) for measuring memory against entry count:
//! `cargo xtask bench --corpus DIR`.
//!
//! `cargo xtask man` writes the man pages (`repropack.1` and one
//! `repropack-COMMAND.1` per command) into `docs/man/`, from the binary's
//! own `repropack man --out-dir`; a test checks that the committed pages
//! are what the current flags give.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod gen_tree;
mod plot;
mod progress_cost;
mod report;
mod series;

const USAGE: &str = "usage: cargo xtask bench [--corpus DIR] [--runs N] [--jobs N] [--entries N1,N2,…] [--gen-dir DIR] [--progress-runs N] [--no-docs] [--tar] [--extract | --extract-only] [--keep] [--baseline BIN]
       cargo xtask gen-tree --entries N --out DIR [--seed S]
       cargo xtask man";

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    match args.next().and_then(|a| a.into_string().ok()).as_deref() {
        Some("bench") => bench(BenchArgs::parse(args)?),
        Some("man") => man(),
        Some("gen-tree") => gen_tree::gen_tree(gen_tree::GenTreeArgs::parse(args)?),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

struct BenchArgs {
    corpus: Option<PathBuf>,
    runs: usize,
    jobs_all: usize,
    tar: bool,
    extract: bool,
    /// Only the reading-back rows (`--extract-only`).
    extract_only: bool,
    keep: bool,
    /// Another repropack binary (an earlier build) measured in the same run.
    baseline: Option<PathBuf>,
    /// The entry counts of the series, in the order given.
    entries: Vec<u64>,
    /// Where the series' trees are kept between runs; `None`: in the work
    /// directory, removed with it.
    gen_dir: Option<PathBuf>,
    /// Pairs (drawn, `--quiet`) of the progress-cost measurement.
    progress_runs: usize,
    /// Print only: leave `docs/bench.svg` and the documents alone.
    no_docs: bool,
    /// The command line, for the report.
    command: String,
}

/// A positive number, or an error naming `flag`.
fn positive(v: OsString, flag: &str) -> Result<u64> {
    v.to_str()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .with_context(|| format!("{flag} wants a positive number, not {v:?}"))
}

impl BenchArgs {
    fn parse(args: impl Iterator<Item = OsString>) -> Result<BenchArgs> {
        let args: Vec<OsString> = args.collect();
        // Where the trees and the baseline binary lie says nothing about
        // the results and is often a private path: the report shows
        // placeholders.
        let mut command = String::from("cargo xtask bench");
        let mut placeholder = None;
        for a in &args {
            command.push(' ');
            match placeholder.take() {
                Some(p) => command.push_str(p),
                None => command.push_str(&a.to_string_lossy()),
            }
            placeholder = match a.to_str() {
                Some("--gen-dir") => Some("DIR"),
                Some("--baseline") => Some("BIN"),
                _ => None,
            };
        }
        let mut args = args.into_iter();
        let mut b = BenchArgs {
            corpus: None,
            runs: 3,
            jobs_all: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tar: false,
            extract: false,
            extract_only: false,
            keep: false,
            baseline: None,
            entries: Vec::new(),
            gen_dir: None,
            progress_runs: 7,
            no_docs: false,
            command,
        };
        while let Some(a) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match a.to_str() {
                Some("--corpus") => b.corpus = Some(PathBuf::from(value("--corpus")?)),
                Some("--runs") => b.runs = positive(value("--runs")?, "--runs")? as usize,
                Some("--jobs") => b.jobs_all = positive(value("--jobs")?, "--jobs")? as usize,
                Some("--entries") => {
                    let v = value("--entries")?;
                    b.entries = v
                        .to_str()
                        .with_context(|| format!("--entries wants N1,N2,…, not {v:?}"))?
                        .split(',')
                        .map(|n| positive(n.into(), "--entries"))
                        .collect::<Result<_>>()?;
                }
                Some("--gen-dir") => b.gen_dir = Some(PathBuf::from(value("--gen-dir")?)),
                Some("--progress-runs") => {
                    b.progress_runs =
                        positive(value("--progress-runs")?, "--progress-runs")? as usize
                }
                Some("--no-docs") => b.no_docs = true,
                Some("--tar") => b.tar = true,
                Some("--extract") => b.extract = true,
                Some("--extract-only") => {
                    b.extract = true;
                    b.extract_only = true;
                }
                Some("--keep") => b.keep = true,
                Some("--baseline") => b.baseline = Some(PathBuf::from(value("--baseline")?)),
                _ => bail!("unknown argument {a:?}"),
            }
        }
        Ok(b)
    }
}

/// `a / b` as a ratio with `digits` decimals (`1.23×`), or `–` without a
/// positive `b`.
fn ratio_text(a: f64, b: Option<f64>, digits: usize) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.digits$}×", a / b),
        _ => "–".to_string(),
    }
}

/// One measured run of a child process.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    /// Peak resident set size in KiB (`ru_maxrss` on Linux).
    max_rss_kib: u64,
}

/// Runs `cmd` to completion and measures it. The child is reaped with
/// `wait4`, whose rusage covers the child and the descendants it waited for
/// (so for a `sh -c` pipeline, the largest process of it).
fn measure(cmd: &mut Command) -> Result<Sample> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if r != pid {
        bail!("wait4 on {cmd:?}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{cmd:?} failed (status {status:#x}): {err}");
    }
    Ok(Sample {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

fn root_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn default_corpus() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .context("run python3 to find its standard library (or pass --corpus DIR)")?;
    if !out.status.success() {
        bail!("python3 failed to print its stdlib path; pass --corpus DIR");
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Files and bytes of regular files under `dir`.
fn tree_size(dir: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                files += 1;
                bytes += e.metadata()?.len();
            }
        }
    }
    Ok((files, bytes))
}

/// One tool at one job count.
struct Case {
    tool: &'static str,
    jobs: usize,
    /// Builds the command writing to the given output path.
    make: Box<dyn Fn(&Path) -> Command>,
    /// True for the product; false for the peers it is compared against.
    ours: bool,
}

struct Row {
    tool: &'static str,
    jobs: usize,
    ours: bool,
    wall: Duration,
    rss_kib: u64,
    size: u64,
    runs: Vec<Duration>,
}

/// A `repropack pack CORPUS -o OUT <format args> --mtime 0 --jobs N` case.
fn repropack_case(bin: &Path, corpus: &Path, jobs: usize, format: &[&'static str]) -> Case {
    named_case("repropack", bin, corpus, jobs, format)
}

/// [`repropack_case`] for the binary `bin`, shown as `tool`.
fn named_case(
    tool: &'static str,
    bin: &Path,
    corpus: &Path,
    jobs: usize,
    format: &[&'static str],
) -> Case {
    let (bin, corpus, format) = (bin.to_path_buf(), corpus.to_path_buf(), format.to_vec());
    Case {
        tool,
        jobs,
        ours: true,
        make: Box::new(move |out| {
            let mut cmd = Command::new(&bin);
            cmd.arg("pack")
                .arg(&corpus)
                .arg("-o")
                .arg(out)
                .args(&format)
                .args(["--mtime", "0", "--jobs", &jobs.to_string()]);
            cmd
        }),
    }
}

/// `mksquashfs` on `corpus` at `jobs` processors, gzip level 6.
fn mksquashfs_case(corpus: &Path, jobs: usize) -> Case {
    let c = corpus.to_path_buf();
    Case {
        tool: "mksquashfs",
        jobs,
        ours: false,
        make: Box::new(move |out| {
            let mut cmd = Command::new("mksquashfs");
            cmd.arg(&c).arg(out).args([
                "-comp",
                "gzip",
                "-Xcompression-level",
                "6",
                "-processors",
                &jobs.to_string(),
                "-all-root",
                "-no-xattrs",
                "-mkfs-time",
                "0",
                "-all-time",
                "0",
                "-noappend",
                "-quiet",
                "-no-progress",
            ]);
            cmd
        }),
    }
}

/// `gensquashfs` on `corpus` at `jobs` jobs, gzip level 6.
fn gensquashfs_case(corpus: &Path, jobs: usize) -> Case {
    let c = corpus.to_path_buf();
    Case {
        tool: "gensquashfs",
        jobs,
        ours: false,
        make: Box::new(move |out| {
            let mut cmd = Command::new("gensquashfs");
            cmd.args(["-c", "gzip", "-X", "level=6", "-j", &jobs.to_string()])
                .args(["--all-root", "-q", "-f", "-D"])
                .arg(&c)
                .arg(out);
            cmd
        }),
    }
}

/// Removes what a case wrote at `out`: a file or a directory tree.
fn remove(out: &Path) {
    if out.is_dir() {
        let _ = fs::remove_dir_all(out);
    } else {
        let _ = fs::remove_file(out);
    }
}

fn median<T: Copy + Ord>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn run_cases(cases: &[Case], runs: usize, out_dir: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for case in cases {
        let out = out_dir.join(format!(
            "{}-j{}.img",
            case.tool.replace(' ', "_"),
            case.jobs
        ));
        let mut samples = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            remove(&out);
            samples.push(measure(&mut (case.make)(&out))?);
            size = fs::metadata(&out)
                .with_context(|| format!("{} wrote no {}", case.tool, out.display()))?
                .len();
        }
        let walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
        let rss: Vec<u64> = samples.iter().map(|s| s.max_rss_kib).collect();
        let row = Row {
            tool: case.tool,
            jobs: case.jobs,
            ours: case.ours,
            wall: median(&walls),
            rss_kib: median(&rss),
            size,
            runs: walls,
        };
        eprintln!(
            "  {:<12} jobs {:>2}: {:>7.2} s (runs {}), {:>6.1} MiB RSS, {:>8.2} MiB",
            row.tool,
            row.jobs,
            row.wall.as_secs_f64(),
            row.runs
                .iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join("/"),
            row.rss_kib as f64 / 1024.0,
            row.size as f64 / (1 << 20) as f64
        );
        remove(&out);
        rows.push(row);
    }
    Ok(rows)
}

/// Markdown table; each row's wall time is compared with the fastest peer
/// (a tool that is not ours) at the same job count, its size with the
/// reference peer's (`size_ref`) at the same job count.
fn table(rows: &[Row], size_ref: &str) -> String {
    let mut s = String::from(
        "| tool | jobs | wall s (median) | peak RSS MiB | output MiB | wall / fastest peer | size / ",
    );
    s.push_str(size_ref);
    s.push_str(" |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let peer = rows
            .iter()
            .filter(|p| !p.ours && p.jobs == r.jobs)
            .map(|p| p.wall)
            .min();
        let size_peer = rows.iter().find(|p| p.tool == size_ref && p.jobs == r.jobs);
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.1} | {:.2} | {} | {} |\n",
            r.tool,
            r.jobs,
            r.wall.as_secs_f64(),
            r.rss_kib as f64 / 1024.0,
            r.size as f64 / (1 << 20) as f64,
            ratio_text(r.wall.as_secs_f64(), peer.map(|d| d.as_secs_f64()), 2),
            ratio_text(r.size as f64, size_peer.map(|p| p.size as f64), 3),
        ));
    }
    s
}

fn speedups(rows: &[Row]) -> String {
    let mut s = String::new();
    let mut tools: Vec<&str> = Vec::new();
    for r in rows {
        if !tools.contains(&r.tool) {
            tools.push(r.tool);
        }
    }
    for t in tools {
        let at = |j: usize| rows.iter().find(|r| r.tool == t && r.jobs == j);
        let Some(one) = at(1) else { continue };
        let mut others: Vec<&Row> = rows.iter().filter(|r| r.tool == t && r.jobs > 1).collect();
        others.dedup_by_key(|r| r.jobs);
        for r in others {
            s.push_str(&format!(
                "- {t}: jobs {} vs 1 speedup {:.2}×\n",
                r.jobs,
                one.wall.as_secs_f64() / r.wall.as_secs_f64()
            ));
        }
    }
    s
}

/// Builds the release binary and returns its path and the target dir.
fn build_release(root: &Path) -> Result<(PathBuf, PathBuf)> {
    eprintln!("building repropack (release)…");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--quiet", "--bin", "repropack"])
        .current_dir(root)
        .status()
        .context("run cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok((target.join("release/repropack"), target))
}

fn man() -> Result<()> {
    let root = root_dir();
    let (repropack, _) = build_release(&root)?;
    let dir = root.join("docs/man");
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    // Pages of commands that no longer exist must not linger.
    for old in fs::read_dir(&dir)? {
        let old = old?.path();
        if old.extension().is_some_and(|e| e == "1") {
            fs::remove_file(&old).with_context(|| format!("remove {}", old.display()))?;
        }
    }
    let status = Command::new(&repropack)
        .arg("man")
        .arg("--out-dir")
        .arg(&dir)
        .status()
        .context("run repropack man")?;
    if !status.success() {
        bail!("repropack man --out-dir failed");
    }
    eprintln!("wrote {}", dir.display());
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let root = root_dir();
    let (repropack, target) = build_release(&root)?;

    let source = match &args.corpus {
        Some(c) => c.clone(),
        None => default_corpus()?,
    };
    let work = target.join("bench");
    let corpus = work.join("corpus");
    let out_dir = work.join("out");
    let gen_dir = match &args.gen_dir {
        Some(d) => {
            let d = std::path::absolute(d)?;
            if d.starts_with(&work) {
                bail!(
                    "--gen-dir {} is inside {}, which every run clears: give a directory outside it",
                    d.display(),
                    work.display()
                );
            }
            d
        }
        None => work.join("trees"),
    };
    if !args.no_docs && !args.extract_only {
        report::check(&root.join("docs/BENCHMARKS.md"))?;
        report::check(&root.join("README.md"))?;
    }
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&out_dir)?;
    eprintln!("copying {} into {}…", source.display(), corpus.display());
    let status = Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(&corpus)
        .status()
        .context("run cp -a")?;
    if !status.success() {
        bail!("cp -a {} failed", source.display());
    }
    let (files, bytes) = tree_size(&corpus)?;
    if args.extract_only {
        let mut report = format!(
            "Corpus: `{}` ({files} files, {:.1} MiB); median of {} runs; load average before: {}.\n\n",
            source.display(),
            bytes as f64 / (1 << 20) as f64,
            args.runs,
            loadavg()
        );
        report.push_str(&extract_section(
            &repropack,
            args.baseline.as_deref(),
            &corpus,
            &work,
            args.runs,
        )?);
        report.push_str(&format!("\nLoad average after: {}.\n", loadavg()));
        if !args.keep {
            let _ = fs::remove_dir_all(&work);
        }
        println!("{report}");
        return Ok(());
    }

    let n = args.jobs_all;
    let mut job_counts = vec![1, 2, n];
    job_counts.sort();
    job_counts.dedup();
    job_counts.retain(|&j| j <= n.max(1));
    let peer_jobs: Vec<usize> = if n > 1 { vec![1, n] } else { vec![1] };

    let mut notes = Vec::new();
    let mut cases = Vec::new();
    for &j in &job_counts {
        cases.push(repropack_case(
            &repropack,
            &corpus,
            j,
            &["--format", "squashfs", "--comp", "gzip:6"],
        ));
        if let Some(base) = &args.baseline {
            cases.push(named_case(
                "repropack (baseline)",
                base,
                &corpus,
                j,
                &["--format", "squashfs", "--comp", "gzip:6"],
            ));
        }
    }
    if installed("mksquashfs") {
        for &j in &peer_jobs {
            cases.push(mksquashfs_case(&corpus, j));
        }
    } else {
        notes.push("mksquashfs is not installed: skipped".to_string());
    }
    if installed("gensquashfs") {
        for &j in &peer_jobs {
            cases.push(gensquashfs_case(&corpus, j));
        }
    } else {
        notes.push("gensquashfs is not installed: skipped".to_string());
    }

    eprintln!(
        "corpus: {files} files, {:.1} MiB; {} runs each; all CPUs = {n}",
        bytes as f64 / (1 << 20) as f64,
        args.runs
    );
    let load_before = loadavg();
    let rows = run_cases(&cases, args.runs, &out_dir)?;
    let progress =
        progress_cost::measure_pairs(&repropack, &corpus, &out_dir, n, args.progress_runs)?;
    let (trees, series_notes) = if args.entries.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        series::run(&repropack, &gen_dir, &out_dir, &args.entries, n, args.runs)?
    };
    let load_after = loadavg();

    let mut head = format!(
        "{}, `{}`, on {}; release build. Load average (1/5/15 min) before: {load_before}; \
         after: {load_after}. Other processes on the machine skew wall times.\n\n",
        report::now_utc(),
        args.command,
        report::machine(),
    );
    let trial = trial_reasons(&args, &source);
    if !trial.is_empty() {
        head.push_str(&format!(
            "**Trial run** ({}): it shows that the benchmark works end to end, \
             not where the goals stand.\n\n",
            trial.join("; ")
        ));
    }
    let mut corpus_part = format!(
        "### SquashFS, gzip level 6, 128 KiB blocks\n\n\
         Corpus: `{}` ({files} files, {:.1} MiB of file data), copied into the \
         target directory; median of {} runs; all CPUs = {n}.\n\n",
        source.display(),
        bytes as f64 / (1 << 20) as f64,
        args.runs
    );
    corpus_part.push_str(&table(&rows, "mksquashfs"));
    corpus_part.push('\n');
    corpus_part.push_str(&speedups(&rows));
    for n in &notes {
        corpus_part.push_str(&format!("- {n}\n"));
    }
    let mut series_part = String::new();
    if !trees.is_empty() {
        series_part.push_str(&format!(
            "\n### Generated trees: memory against entry count\n\n\
             `cargo xtask gen-tree --entries N` trees (seed 1: small text files, 100 per \
             directory) of {} entries, packed at all CPUs ({n} jobs); median of {} runs.\n\n",
            args.entries
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            args.runs
        ));
        series_part.push_str(&series::table(&trees));
        for n in &series_notes {
            series_part.push_str(&format!("- {n}\n"));
        }
    }
    let mut progress_part = String::from("\n### Progress bar cost\n\n");
    match &progress {
        Some(p) => progress_part.push_str(&p.section()),
        None => progress_part.push_str("`script` is not installed: not measured.\n"),
    }
    let mut tar_part = String::new();
    let mut tar_rows = Vec::new();
    if args.tar {
        tar_part.push_str("\n### tar.gz, gzip level 6\n\n");
        let tar_notes;
        (tar_rows, tar_notes) = tar_bench(&repropack, &corpus, &out_dir, &peer_jobs, args.runs)?;
        tar_part.push_str(&table(&tar_rows, "tar+gzip"));
        tar_part.push('\n');
        tar_part.push_str(&speedups(&tar_rows));
        for n in tar_notes {
            tar_part.push_str(&format!("- {n}\n"));
        }
    }
    let goals_part = format!(
        "\n### Goals\n\n{}",
        report::goals(
            &rows,
            n,
            &trees,
            args.entries.first().copied(),
            progress.as_ref(),
            &tar_rows,
        )
    );
    // The README keeps to what the picture shows, and the goals.
    let summary = format!("{head}{corpus_part}{series_part}{goals_part}");
    let mut report =
        format!("{head}{corpus_part}{series_part}{progress_part}{tar_part}{goals_part}");

    if args.extract {
        report.push_str("\n### Reading repropack's image back (gzip level 6)\n\n");
        report.push_str(&extract_section(
            &repropack,
            args.baseline.as_deref(),
            &corpus,
            &work,
            args.runs,
        )?);
    }

    if !args.keep {
        let _ = fs::remove_dir_all(&work);
    }
    println!("{report}");
    if !args.no_docs {
        let name = source
            .file_name()
            .map_or("corpus".into(), |n| n.to_string_lossy());
        let svg = root.join("docs/bench.svg");
        plot::write(&svg, &format!("{name} corpus"), &rows, &trees)?;
        report::fill(&root.join("docs/BENCHMARKS.md"), &report)?;
        report::fill(
            &root.join("README.md"),
            &format!("{summary}\nThe full report: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).\n"),
        )?;
        eprintln!("wrote {}, docs/BENCHMARKS.md and README.md", svg.display());
    }
    Ok(())
}

/// Why a run is not the reference run of the goals (`--runs 3` or more,
/// `--entries 400000,1000000`, `--tar`, python3's standard library, all CPUs); empty
/// when it is.
fn trial_reasons(args: &BenchArgs, source: &Path) -> Vec<String> {
    let mut why = Vec::new();
    if args.runs < 3 {
        why.push(format!("{} run(s) each, not 3", args.runs));
    }
    if args.entries != [400_000, 1_000_000] {
        why.push(if args.entries.is_empty() {
            "no entry-count series".to_string()
        } else {
            format!(
                "entry counts {}, not 400000 and 1000000",
                args.entries
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    if default_corpus().ok().as_deref() != Some(source) {
        why.push(format!(
            "corpus `{}`, not python3's standard library",
            source.display()
        ));
    }
    if !args.tar {
        why.push("no tar.gz rows (`--tar`)".to_string());
    }
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.jobs_all != all {
        why.push(format!("--jobs {}, not all {all} CPUs", args.jobs_all));
    }
    why
}

/// The reading-back tables ([`extract_bench`]) as markdown.
fn extract_section(
    repropack: &Path,
    baseline: Option<&Path>,
    corpus: &Path,
    work: &Path,
    runs: usize,
) -> Result<String> {
    let (tables, notes) = extract_bench(repropack, baseline, corpus, work, runs)?;
    let mut s = String::new();
    for (place, rows) in tables {
        s.push_str(&format!("Into a directory on {place}:\n\n"));
        s.push_str(&table(&rows, &format!("unsquashfs -d {place}")));
        s.push('\n');
    }
    for n in notes {
        s.push_str(&format!("- {n}\n"));
    }
    Ok(s)
}

/// Packs `corpus` once, then reads the image back: `repropack extract` and
/// `unsquashfs -d` into a fresh directory on the disk (next to the corpus)
/// and on tmpfs, and `repropack digest`. The "output" column means nothing
/// here (the size of a directory entry, or of the digest line).
/// A titled group of rows of the report.
type Section = (&'static str, Vec<Row>);

fn extract_bench(
    repropack: &Path,
    baseline: Option<&Path>,
    corpus: &Path,
    work: &Path,
    runs: usize,
) -> Result<(Vec<Section>, Vec<String>)> {
    let image = work.join("read-back.sqfs");
    measure(
        Command::new(repropack)
            .arg("pack")
            .arg(corpus)
            .arg("-o")
            .arg(&image)
            .args(["--comp", "gzip:6", "--mtime", "0"]),
    )?;
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut notes = Vec::new();
    let mut places = vec![("disk", work.join("read-out"))];
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        places.push((
            "tmpfs",
            shm.join(format!("repropack-bench-{}", std::process::id())),
        ));
    } else {
        notes.push("/dev/shm is not there: no tmpfs rows".to_string());
    }
    if !installed("unsquashfs") {
        notes.push("unsquashfs is not installed: skipped".to_string());
    }
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut tables = Vec::new();
    for (place, out_dir) in &places {
        fs::create_dir_all(out_dir)?;
        let mut cases = Vec::new();
        // `extract` syncs the file system before it publishes the tree,
        // which unsquashfs never does: `--no-sync` rows compare like with
        // like (on a busy disk, syncfs also waits for others' writes).
        let mut ours = vec![
            ("repropack extract", repropack.to_path_buf(), false, all),
            (
                "repropack extract --no-sync",
                repropack.to_path_buf(),
                true,
                all,
            ),
            (
                "repropack extract --no-sync",
                repropack.to_path_buf(),
                true,
                1,
            ),
        ];
        if let Some(b) = baseline {
            ours.push((
                "repropack (baseline) extract --no-sync",
                b.to_path_buf(),
                true,
                all,
            ));
        }
        for (name, bin, no_sync, jobs) in ours {
            let img = image.clone();
            // The baseline may predate `--jobs`: it uses all CPUs.
            let pass_jobs = bin == repropack;
            cases.push(Case {
                tool: leak(format!("{name} {place}")),
                jobs,
                ours: true,
                make: Box::new(move |out| {
                    let mut cmd = Command::new(&bin);
                    cmd.arg("extract").arg(&img).arg(out);
                    if no_sync {
                        cmd.arg("--no-sync");
                    }
                    if pass_jobs {
                        cmd.args(["--jobs", &jobs.to_string()]);
                    }
                    cmd
                }),
            });
        }
        if installed("unsquashfs") {
            for j in [all, 1] {
                let img = image.clone();
                cases.push(Case {
                    tool: leak(format!("unsquashfs -d {place}")),
                    jobs: j,
                    ours: false,
                    make: Box::new(move |out| {
                        let mut cmd = Command::new("unsquashfs");
                        cmd.args(["-q", "-n", "-p", &j.to_string(), "-d"])
                            .arg(out)
                            .arg(&img);
                        cmd
                    }),
                });
            }
        }
        if *place == "disk" {
            let (img, bin) = (image.clone(), repropack.to_path_buf());
            cases.push(Case {
                tool: "repropack digest",
                jobs: all,
                ours: true,
                make: Box::new(move |out| {
                    // The digest line goes to `out`, so the case writes one.
                    let mut cmd = Command::new("sh");
                    cmd.args(["-c", "\"$0\" digest \"$1\" > \"$2\""])
                        .arg(&bin)
                        .arg(&img)
                        .arg(out);
                    cmd
                }),
            });
        }
        tables.push((*place, run_cases(&cases, runs, out_dir)?));
        if *place == "tmpfs" {
            remove(out_dir);
        }
    }
    Ok((tables, notes))
}

/// `/proc/loadavg`'s first three fields, or `?` where there is none.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// repropack's tar.gz against `tar --sort=name … | gzip -6` (one job) and
/// `| pigz -6 -p N` (all CPUs, when pigz is installed).
fn tar_bench(
    repropack: &Path,
    corpus: &Path,
    out_dir: &Path,
    peer_jobs: &[usize],
    runs: usize,
) -> Result<(Vec<Row>, Vec<String>)> {
    let mut notes = Vec::new();
    let mut cases = Vec::new();
    for &j in peer_jobs {
        cases.push(repropack_case(
            repropack,
            corpus,
            j,
            &["--format", "tar.gz", "--level", "6"],
        ));
    }
    let tar = "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
               --format=pax --pax-option=delete=atime,delete=ctime -cf - -C \"$1\" .";
    let c = corpus.to_path_buf();
    cases.push(Case {
        tool: "tar+gzip",
        jobs: 1,
        ours: false,
        make: Box::new(move |out| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!("{tar} | gzip -6 -n > \"$2\""))
                .arg("sh")
                .arg(&c)
                .arg(out);
            cmd
        }),
    });
    if installed("pigz") {
        for &j in peer_jobs {
            let c = corpus.to_path_buf();
            cases.push(Case {
                tool: "tar+pigz",
                jobs: j,
                ours: false,
                make: Box::new(move |out| {
                    let mut cmd = Command::new("sh");
                    cmd.arg("-c")
                        .arg(format!("{tar} | pigz -6 -n -p {j} > \"$2\""))
                        .arg("sh")
                        .arg(&c)
                        .arg(out);
                    cmd
                }),
            });
        }
    } else {
        notes.push("pigz is not installed: parallel tar|pigz skipped".to_string());
    }
    notes.push("peak RSS of a `sh -c` pipeline is its largest process".to_string());
    Ok((run_cases(&cases, runs, out_dir)?, notes))
}
