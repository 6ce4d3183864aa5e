//! What drawing the progress bar costs `pack`: the corpus packed with
//! stderr on a pseudo-terminal (so the bar is drawn, see
//! `src/cli/progress.rs`) against the same command with `--quiet`, both
//! under `script(1)` so that the terminal's own cost is in both. The two
//! alternate (ABBA order) so that a trend in the machine's load falls on
//! both equally; the cost is the median of the per-pair differences.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{measure, median, remove};

/// The measured pairs.
pub struct ProgressCost {
    pub jobs: usize,
    pub drawn: Vec<Duration>,
    pub quiet: Vec<Duration>,
}

impl ProgressCost {
    /// Per-pair relative differences, drawn / quiet − 1, sorted.
    pub fn differences(&self) -> Vec<f64> {
        let mut d: Vec<f64> = self
            .drawn
            .iter()
            .zip(&self.quiet)
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64() - 1.0)
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    /// The median per-pair difference.
    pub fn median(&self) -> f64 {
        let d = self.differences();
        d[d.len() / 2]
    }

    /// The interquartile range of the per-pair differences (lower and upper
    /// quartile, nearest rank).
    pub fn quartiles(&self) -> (f64, f64) {
        let d = self.differences();
        let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
        (at(0.25), at(0.75))
    }

    /// The markdown section.
    pub fn section(&self) -> String {
        let d = self.differences();
        let (q1, q3) = self.quartiles();
        let pct = |x: f64| format!("{:+.2} %", x * 100.0);
        let list = |v: &[Duration]| {
            v.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!(
            "`repropack pack CORPUS … --jobs {}` under `script -qfec` (stderr a pseudo-terminal), \
             {} interleaved pairs:\n\n\
             | variant | wall s (median) | runs (s) |\n|---|---:|---|\n\
             | bar drawn | {:.3} | {} |\n| `--quiet` | {:.3} | {} |\n\n\
             Drawn / quiet − 1 per pair: median {}, interquartile {} … {}, range {} … {}.\n",
            self.jobs,
            self.drawn.len(),
            median(&self.drawn).as_secs_f64(),
            list(&self.drawn),
            median(&self.quiet).as_secs_f64(),
            list(&self.quiet),
            pct(self.median()),
            pct(q1),
            pct(q3),
            pct(d[0]),
            pct(d[d.len() - 1]),
        )
    }
}

/// `sh -c` quoting: `'…'` with each `'` written as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `script -qfec "repropack pack …" /dev/null`: the command on a fresh
/// pseudo-terminal, exiting with its status.
fn scripted(repropack: &Path, corpus: &Path, out: &Path, jobs: usize, quiet: bool) -> Command {
    let path = |p: &Path| sh_quote(&p.to_string_lossy());
    let mut line = format!(
        "{} pack {} -o {} --format squashfs --comp gzip:6 --mtime 0 --jobs {jobs}",
        path(repropack),
        path(corpus),
        path(out)
    );
    if quiet {
        line.push_str(" --quiet");
    }
    // The ref goes to stdout: away with it, so that the terminal carries
    // stderr, the bar, alone.
    line.push_str(" > /dev/null");
    let mut cmd = Command::new("script");
    // No stdin: script would otherwise put a terminal it inherited in raw
    // mode and forward keystrokes.
    cmd.args(["-qfec", &line, "/dev/null"]).stdin(Stdio::null());
    cmd
}

/// Checks that the bar is drawn at all under `script` (its output holds
/// the `pack` prefix) and silent with `--quiet`, then measures `pairs`
/// pairs. `None` when `script` is not installed.
pub fn measure_pairs(
    repropack: &Path,
    corpus: &Path,
    out_dir: &Path,
    jobs: usize,
    pairs: usize,
) -> Result<Option<ProgressCost>> {
    if !crate::installed("script") {
        return Ok(None);
    }
    let out: PathBuf = out_dir.join("progress.img");
    for quiet in [false, true] {
        remove(&out);
        let o = scripted(repropack, corpus, &out, jobs, quiet)
            .output()
            .context("run script")?;
        if !o.status.success() {
            bail!(
                "script -qfec \"repropack pack …\" failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let text = String::from_utf8_lossy(&o.stdout);
        if !quiet && !text.contains("pack") {
            bail!("no progress bar was drawn on script's pseudo-terminal: {text:?}");
        }
        if quiet && !text.trim().is_empty() {
            bail!("pack --quiet wrote to the terminal: {text:?}");
        }
    }
    eprintln!("progress bar cost ({pairs} pairs):");
    let (mut drawn, mut quiet) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        for q in if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            remove(&out);
            let s = measure(&mut scripted(repropack, corpus, &out, jobs, q))?;
            if q { &mut quiet } else { &mut drawn }.push(s.wall);
        }
        eprintln!(
            "  pair {}: drawn {:.2} s, quiet {:.2} s",
            i + 1,
            drawn[i].as_secs_f64(),
            quiet[i].as_secs_f64()
        );
    }
    remove(&out);
    Ok(Some(ProgressCost { jobs, drawn, quiet }))
}
