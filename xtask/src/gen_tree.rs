//! `cargo xtask gen-tree --entries N --out DIR [--seed S]`: a synthetic
//! tree for the memory benchmarks, shaped like a large package tree: many
//! small files (0–3,000 bytes) in a few thousand directories.
//!
//! Layout: `gGG/dDDDD/fFFF`, 100 files per directory and 64 directories per
//! group, so N entries make about N / 101 directories. Content is
//! word-like text from a seeded xorshift generator, so it compresses about
//! as source code does, and the same `--entries` and `--seed` always write
//! the same tree (names, sizes and bytes).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const FILES_PER_DIR: u64 = 100;
const DIRS_PER_GROUP: u64 = 64;
const MAX_FILE: u64 = 3_000;

pub struct GenTreeArgs {
    entries: u64,
    out: PathBuf,
    seed: u64,
}

impl GenTreeArgs {
    pub fn parse(mut args: impl Iterator<Item = OsString>) -> Result<GenTreeArgs> {
        let (mut entries, mut out, mut seed) = (None, None, 1);
        while let Some(a) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match a.to_str() {
                Some("--entries") => {
                    entries = Some(
                        value("--entries")?
                            .to_str()
                            .and_then(|s| s.parse().ok())
                            .filter(|&n| n > 0)
                            .context("--entries wants a positive number")?,
                    )
                }
                Some("--out") => out = Some(PathBuf::from(value("--out")?)),
                Some("--seed") => {
                    seed = value("--seed")?
                        .to_str()
                        .and_then(|s| s.parse().ok())
                        .context("--seed wants a number")?
                }
                _ => bail!("unknown argument {a:?}"),
            }
        }
        Ok(GenTreeArgs {
            entries: entries.context("--entries N is required")?,
            out: out.context("--out DIR is required")?,
            // xorshift must not start at 0.
            seed: seed.max(1),
        })
    }
}

/// xorshift64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

const WORDS: &[&str] = &[
    "def", "return", "self", "import", "from", "class", "None", "if", "else", "for", "in", "value",
    "name", "path", "data", "result", "args", "len", "str", "int", "True", "False", "raise",
    "with", "open", "try", "except", "lambda", "yield", "print", "=", "(", ")", ":",
];

fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        out.push(match (r >> 32) % 12 {
            0 => b'\n',
            1 => b'_',
            _ => b' ',
        });
        if (r >> 40).is_multiple_of(50) {
            // A token that repeats rarely, as identifiers do.
            out.extend_from_slice(format!("x{:x}", r >> 48).as_bytes());
        }
    }
    out.truncate(len);
    out
}

pub fn gen_tree(args: GenTreeArgs) -> Result<()> {
    if args.out.exists() {
        bail!(
            "{} exists; gen-tree writes a new directory",
            args.out.display()
        );
    }
    let t = write_tree(&args.out, args.entries, args.seed)?;
    println!(
        "{}: {} entries ({} directories, {} files, {:.1} MiB)",
        args.out.display(),
        t.entries,
        t.dirs,
        t.files,
        t.bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// What [`write_tree`] wrote.
pub struct TreeSummary {
    pub entries: u64,
    pub dirs: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Writes the tree of `entries` entries from `seed` into `out`, which must
/// not exist yet.
pub fn write_tree(out: &Path, entries: u64, seed: u64) -> Result<TreeSummary> {
    let mut rng = Rng(seed.max(1));
    fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let (mut written, mut files, mut bytes, mut dir_no) = (0u64, 0u64, 0u64, 0u64);
    while written < entries {
        let group = out.join(format!("g{:02}", dir_no / DIRS_PER_GROUP));
        if dir_no.is_multiple_of(DIRS_PER_GROUP) {
            fs::create_dir_all(&group).with_context(|| format!("create {}", group.display()))?;
            written += 1;
        }
        let dir = group.join(format!("d{dir_no:04}"));
        fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        written += 1;
        dir_no += 1;
        for f in 0..FILES_PER_DIR {
            if written >= entries {
                break;
            }
            let len = (rng.next() % (MAX_FILE + 1)) as usize;
            let path = dir.join(format!("f{f:03}"));
            fs::write(&path, content(&mut rng, len))
                .with_context(|| format!("write {}", path.display()))?;
            written += 1;
            files += 1;
            bytes += len as u64;
        }
    }
    Ok(TreeSummary {
        entries: written,
        dirs: dir_no,
        files,
        bytes,
    })
}
