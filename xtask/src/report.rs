//! The parts of the benchmark report that are not tables of rows: the
//! machine it ran on, the goals and whether they hold, and writing the
//! report into the documents between their markers.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Row;
use crate::progress_cost::ProgressCost;
use crate::series::{self, TreeRows};

/// The line that starts the generated part of a document.
pub const BEGIN: &str = "<!-- cargo xtask bench: begin -->";
/// The line that ends it.
pub const END: &str = "<!-- cargo xtask bench: end -->";

/// CPUs, CPU model, memory and kernel, from `/proc`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("? GiB".to_string(), |kib| {
            format!("{:.1} GiB", kib / (1u64 << 20) as f64)
        });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("?".to_string(), |s| s.trim().to_string());
    format!("{cpus} CPUs (`nproc`), {model}, {ram} RAM, Linux {kernel}")
}

/// Today's date and time in UTC, from `date -u`.
pub fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("?".to_string(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
}

/// One goal, what was measured for it, and the verdict.
struct Goal {
    goal: String,
    measured: String,
    /// `Some(true)` holds, `Some(false)` fails, `None` cannot be judged.
    verdict: Option<bool>,
    /// Why there is no verdict, where there is none.
    why_not: &'static str,
}

fn ratio_goal(
    goal: String,
    ours: Option<&Row>,
    peer: Option<&Row>,
    limit: f64,
    wall: bool,
) -> Goal {
    let (Some(a), Some(b)) = (ours, peer) else {
        return Goal {
            goal,
            measured: "–".to_string(),
            verdict: None,
            why_not: "not measured",
        };
    };
    let (x, y, text) = if wall {
        let (x, y) = (a.wall.as_secs_f64(), b.wall.as_secs_f64());
        (x, y, format!("{x:.2} s / {y:.2} s"))
    } else {
        let (x, y) = (a.rss_kib as f64 / 1024.0, b.rss_kib as f64 / 1024.0);
        (x, y, format!("{x:.1} MiB / {y:.1} MiB"))
    };
    let r = x / y;
    Goal {
        goal,
        measured: format!("{r:.2}× ({text})"),
        verdict: Some(r <= limit),
        why_not: "",
    }
}

/// The goals section: each goal, its measured value and whether it holds.
/// The memory goals are judged at every count of the series, the wall goal
/// on generated trees at the first count given (the 400 000 in
/// `--entries 400000,1000000`), the corpus goal at all CPUs.
pub fn goals(
    corpus_rows: &[Row],
    all: usize,
    trees: &[TreeRows],
    first_count: Option<u64>,
    progress: Option<&ProgressCost>,
    tar_rows: &[Row],
) -> String {
    let mut goals = Vec::new();
    let find = |tool: &str, jobs: usize| {
        corpus_rows
            .iter()
            .find(|r| r.tool == tool && r.jobs == jobs)
    };
    for t in trees {
        goals.push(ratio_goal(
            format!(
                "peak RSS ≤ 0.8× gensquashfs's, generated tree of {} entries",
                t.entries
            ),
            series::row(trees, "repropack", t.entries),
            series::row(trees, series::REFERENCE, t.entries),
            0.8,
            false,
        ));
    }
    if !trees.is_empty() {
        let (goal, measured, verdict) =
            match (series::span(trees), series::slope_kib(trees, "repropack")) {
                (Some((lo, hi)), Some(k)) => (
                    format!("peak RSS per entry ≤ 0.15 KiB, {lo} → {hi} entries"),
                    format!("{k:.3} KiB"),
                    Some(k <= 0.15),
                ),
                _ => (
                    "peak RSS per entry ≤ 0.15 KiB".to_string(),
                    "–".to_string(),
                    None,
                ),
            };
        goals.push(Goal {
            goal,
            measured,
            verdict,
            why_not: "needs two entry counts",
        });
    }
    if let Some(n) = first_count {
        goals.push(ratio_goal(
            format!("wall ≤ 0.5× gensquashfs's, generated tree of {n} entries"),
            series::row(trees, "repropack", n),
            series::row(trees, series::REFERENCE, n),
            0.5,
            true,
        ));
    }
    goals.push(ratio_goal(
        format!("wall ≤ 0.4× mksquashfs's on the corpus, {all} jobs"),
        find("repropack", all),
        find("mksquashfs", all),
        0.4,
        true,
    ));
    if !tar_rows.is_empty() {
        let find_tar = |tool: &str| tar_rows.iter().find(|r| r.tool == tool && r.jobs == all);
        let (ours, pigz) = (find_tar("repropack"), find_tar("tar+pigz"));
        goals.push(match (ours, pigz) {
            (Some(a), Some(b)) => {
                let r = a.size as f64 / b.size as f64;
                Goal {
                    goal: format!("tar.gz size ≤ tar+pigz -6's, {all} jobs"),
                    measured: format!("{r:.4}× ({} B / {} B)", a.size, b.size),
                    verdict: Some(a.size <= b.size),
                    why_not: "",
                }
            }
            _ => Goal {
                goal: format!("tar.gz size ≤ tar+pigz -6's, {all} jobs"),
                measured: "–".to_string(),
                verdict: None,
                why_not: "not measured (no pigz)",
            },
        });
        goals.push(ratio_goal(
            format!("tar.gz wall ≤ 0.6× tar+pigz -6's, {all} jobs"),
            ours,
            pigz,
            0.6,
            true,
        ));
    }
    match progress {
        Some(p) => {
            let (m, (q1, q3)) = (p.median(), p.quartiles());
            let n = p.drawn.len();
            // About two standard errors of the median: σ ≈ IQR / 1.35 for
            // normal noise, and the median's standard error ≈ 1.25 σ / √n.
            // A verdict needs the limit outside median ± this.
            let u = 2.0 * 1.25 * (q3 - q1) / 1.35 / (n as f64).sqrt();
            goals.push(Goal {
                goal: "progress bar costs < 1 % wall".to_string(),
                measured: format!(
                    "{:+.2} % ± {:.2} % (median of {n} pairs ± 2 standard errors; \
                     interquartile {:+.2} … {:+.2} %)",
                    m * 100.0,
                    u * 100.0,
                    q1 * 100.0,
                    q3 * 100.0
                ),
                verdict: if m + u < 0.01 {
                    Some(true)
                } else if m - u > 0.01 {
                    Some(false)
                } else {
                    None
                },
                why_not: "within noise: more `--progress-runs` narrow it",
            });
        }
        None => goals.push(Goal {
            goal: "progress bar costs < 1 % wall".to_string(),
            measured: "–".to_string(),
            verdict: None,
            why_not: "not measured (no `script`)",
        }),
    }
    let mut s = String::from("| goal | measured | verdict |\n|---|---|---|\n");
    for g in goals {
        let verdict = match g.verdict {
            Some(true) => "holds",
            Some(false) => "**fails**",
            None => g.why_not,
        };
        s.push_str(&format!("| {} | {} | {verdict} |\n", g.goal, g.measured));
    }
    s
}

/// The byte offset of the first line of `text` that is exactly `line`:
/// the docs may name the markers in their prose.
fn line_start(text: &str, line: &str) -> Option<usize> {
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        if l.trim_end_matches('\n') == line {
            return Some(at);
        }
        at += l.len();
    }
    None
}

/// The byte offsets of the [`BEGIN`] and [`END`] lines in `text`, or an
/// error naming `path`.
fn markers(path: &Path, text: &str) -> Result<(usize, usize)> {
    let (Some(b), Some(e)) = (line_start(text, BEGIN), line_start(text, END)) else {
        bail!("{} has no `{BEGIN}` … `{END}` lines", path.display());
    };
    if e < b {
        bail!("{}: `{END}` comes before `{BEGIN}`", path.display());
    }
    Ok((b, e))
}

/// Checks that `path` has the markers [`fill`] needs, before a long run.
pub fn check(path: &Path) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    markers(path, &text).map(drop)
}

/// Replaces what lies between the [`BEGIN`] and [`END`] lines of `path`
/// with `body`.
pub fn fill(path: &Path, body: &str) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let (b, e) = markers(path, &text)?;
    let new = format!(
        "{}{BEGIN}\n\n{}\n\n{}",
        &text[..b],
        body.trim_end(),
        &text[e..]
    );
    let tmp = path.with_extension("md.tmp");
    fs::write(&tmp, new).with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_only_what_lies_between_the_markers() {
        let dir = std::env::temp_dir().join(format!("xtask-fill-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let doc = dir.join("doc.md");
        // Markers named in the prose are not the markers.
        let prose = format!("between `{BEGIN}` and `{END}`.\n");
        fs::write(&doc, format!("{prose}before\n{BEGIN}\nold\n{END}\nafter\n")).unwrap();
        fill(&doc, "new table\n").unwrap();
        assert_eq!(
            fs::read_to_string(&doc).unwrap(),
            format!("{prose}before\n{BEGIN}\n\nnew table\n\n{END}\nafter\n")
        );
        fs::write(&doc, format!("before\n{BEGIN}\nold\n{END}\nafter\n")).unwrap();
        // A second run gives the same text: the markers stay, nothing piles up.
        fill(&doc, "new table\n").unwrap();
        assert_eq!(
            fs::read_to_string(&doc).unwrap(),
            format!("before\n{BEGIN}\n\nnew table\n\n{END}\nafter\n")
        );
        fs::write(&doc, "no markers\n").unwrap();
        let e = fill(&doc, "x").unwrap_err().to_string();
        assert!(e.contains("doc.md has no"), "{e}");
        assert_eq!(fs::read_to_string(&doc).unwrap(), "no markers\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
