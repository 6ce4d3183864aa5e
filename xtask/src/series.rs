//! The entry-count series of `cargo xtask bench --entries N1,N2,…`: one
//! generated tree (`gen_tree.rs`, seed 1) per count, packed by repropack,
//! gensquashfs and mksquashfs at all CPUs, to show how wall time and peak
//! RSS grow with the number of entries.
//!
//! Each tree is read once before the measured runs, so that every tool
//! finds it in the page cache, as they find the freshly copied corpus.
//! Trees are written once into `--gen-dir DIR` as `entries-N` and reused
//! by later runs: a tree is written under `entries-N.partial` and renamed
//! when complete, so an interrupted run never leaves a short tree under the
//! final name.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{Case, Row, gen_tree, gensquashfs_case, installed, mksquashfs_case, repropack_case};

/// The rows measured on one generated tree.
pub struct TreeRows {
    pub entries: u64,
    pub rows: Vec<Row>,
}

/// The peer every series row is compared with.
pub const REFERENCE: &str = "gensquashfs";

/// Reads every file under `dir` once, so that the page cache holds the
/// tree before the first measured run: a reused tree may have been
/// evicted since, and the first tool would pay for reading it from the
/// disk (several times its wall time on small files).
fn warm(dir: &Path) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let mut f = fs::File::open(e.path())
                    .with_context(|| format!("open {}", e.path().display()))?;
                std::io::copy(&mut f, &mut std::io::sink())
                    .with_context(|| format!("read {}", e.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The tree of `entries` entries in `gen_dir`, written if it is not there.
fn tree(gen_dir: &Path, entries: u64) -> Result<PathBuf> {
    let dir = gen_dir.join(format!("entries-{entries}"));
    if dir.is_dir() {
        eprintln!("reusing {}", dir.display());
        return Ok(dir);
    }
    let partial = gen_dir.join(format!("entries-{entries}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("remove the leftover {}", partial.display()))?;
    }
    eprintln!("generating {entries} entries into {}…", dir.display());
    gen_tree::write_tree(&partial, entries, 1)?;
    fs::rename(&partial, &dir)
        .with_context(|| format!("rename {} to {}", partial.display(), dir.display()))?;
    Ok(dir)
}

/// Generates (or reuses) each tree and measures the three packers on it
/// at `jobs` jobs, `runs` times each. Returns the rows and the notes
/// (peers that are not installed).
pub fn run(
    repropack: &Path,
    gen_dir: &Path,
    out_dir: &Path,
    counts: &[u64],
    jobs: usize,
    runs: usize,
) -> Result<(Vec<TreeRows>, Vec<String>)> {
    fs::create_dir_all(gen_dir).with_context(|| format!("create {}", gen_dir.display()))?;
    let mut notes = Vec::new();
    let (mks, gens) = (installed("mksquashfs"), installed("gensquashfs"));
    if !mks {
        notes.push("mksquashfs is not installed: skipped in the series".to_string());
    }
    if !gens {
        notes.push("gensquashfs is not installed: skipped in the series".to_string());
    }
    let mut out = Vec::new();
    for &entries in counts {
        let dir = tree(gen_dir, entries)?;
        warm(&dir)?;
        let mut cases: Vec<Case> = vec![repropack_case(
            repropack,
            &dir,
            jobs,
            &["--format", "squashfs", "--comp", "gzip:6"],
        )];
        if gens {
            cases.push(gensquashfs_case(&dir, jobs));
        }
        if mks {
            cases.push(mksquashfs_case(&dir, jobs));
        }
        eprintln!("generated tree, {entries} entries:");
        out.push(TreeRows {
            entries,
            rows: crate::run_cases(&cases, runs, out_dir)?,
        });
    }
    Ok((out, notes))
}

/// The tools of the series, in the order of their first row.
pub fn tools(series: &[TreeRows]) -> Vec<&'static str> {
    let mut tools = Vec::new();
    for r in series.iter().flat_map(|t| &t.rows) {
        if !tools.contains(&r.tool) {
            tools.push(r.tool);
        }
    }
    tools
}

/// `tool`'s row on the tree of `entries` entries.
pub fn row<'a>(series: &'a [TreeRows], tool: &str, entries: u64) -> Option<&'a Row> {
    series
        .iter()
        .find(|t| t.entries == entries)?
        .rows
        .iter()
        .find(|r| r.tool == tool)
}

/// `tool`'s growth of peak RSS per entry, in KiB, between the smallest and
/// the largest tree: (RSS₂ − RSS₁) / (N₂ − N₁). `None` with fewer than two
/// counts.
pub fn slope_kib(series: &[TreeRows], tool: &str) -> Option<f64> {
    let (lo, hi) = span(series)?;
    let (a, b) = (row(series, tool, lo)?, row(series, tool, hi)?);
    Some((b.rss_kib as f64 - a.rss_kib as f64) / (hi - lo) as f64)
}

/// The smallest and largest entry counts, when they differ.
pub fn span(series: &[TreeRows]) -> Option<(u64, u64)> {
    let lo = series.iter().map(|t| t.entries).min()?;
    let hi = series.iter().map(|t| t.entries).max()?;
    (hi > lo).then_some((lo, hi))
}

/// The series as markdown: one row per tree and tool, then the slopes.
pub fn table(series: &[TreeRows]) -> String {
    let mut s = format!(
        "| tool | entries | wall s (median) | peak RSS MiB | output MiB | wall / {REFERENCE} | RSS / {REFERENCE} |\n\
         |---|---:|---:|---:|---:|---:|---:|\n"
    );
    for t in series {
        let reference = t.rows.iter().find(|r| r.tool == REFERENCE);
        for r in &t.rows {
            let ratio = |a: f64, b: Option<f64>| crate::ratio_text(a, b, 2);
            s.push_str(&format!(
                "| {} | {} | {:.2} | {:.1} | {:.2} | {} | {} |\n",
                r.tool,
                t.entries,
                r.wall.as_secs_f64(),
                r.rss_kib as f64 / 1024.0,
                r.size as f64 / (1 << 20) as f64,
                ratio(
                    r.wall.as_secs_f64(),
                    reference.map(|p| p.wall.as_secs_f64())
                ),
                ratio(r.rss_kib as f64, reference.map(|p| p.rss_kib as f64)),
            ));
        }
    }
    if let Some((lo, hi)) = span(series) {
        s.push_str(&format!(
            "\nPeak RSS per entry, (RSS at {hi} − RSS at {lo}) / ({hi} − {lo}):\n\n"
        ));
        for tool in tools(series) {
            if let Some(k) = slope_kib(series, tool) {
                s.push_str(&format!("- {tool}: {k:.3} KiB per entry\n"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(tool: &'static str, rss_kib: u64) -> Row {
        Row {
            tool,
            jobs: 2,
            ours: tool == "repropack",
            wall: Duration::from_secs(1),
            rss_kib,
            size: 0,
            runs: vec![Duration::from_secs(1)],
        }
    }

    #[test]
    fn slope_is_the_rss_growth_per_entry_between_the_extreme_counts() {
        let series = [
            TreeRows {
                entries: 400_000,
                rows: vec![row("repropack", 100_000), row(REFERENCE, 200_000)],
            },
            TreeRows {
                entries: 1_000_000,
                rows: vec![row("repropack", 160_000), row(REFERENCE, 500_000)],
            },
        ];
        assert_eq!(slope_kib(&series, "repropack"), Some(0.1));
        assert_eq!(slope_kib(&series, REFERENCE), Some(0.5));
        assert_eq!(slope_kib(&series[..1], "repropack"), None);
        assert!(
            table(&series).contains("| repropack | 400000 | 1.00 | 97.7 | 0.00 | 1.00× | 0.50× |")
        );
    }
}
