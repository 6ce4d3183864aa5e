//! Source revisions recorded in manifests.
//!
//! A revision is either given by the user (`--source-revision REV`) or found
//! with the `git` command line: the first source (in command-line order) that
//! lies inside a git worktree gives `git rev-parse HEAD`, and is marked dirty
//! when `git status --porcelain -- <source>` prints anything (modified,
//! staged, deleted or untracked files *under that source*; files git ignores
//! are not considered). When `git` is not installed or no source is in a
//! worktree, there is no revision.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Where a revision came from and whether the tree matched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRevision {
    /// The revision: as given with `--source-revision`, or the commit id
    /// `git rev-parse HEAD` printed.
    pub revision: String,
    /// `flag` (`--source-revision`) or `git`.
    pub origin: String,
    /// For `git`: whether the source had uncommitted changes. Absent for
    /// `flag` (unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
}

impl SourceRevision {
    /// A revision named on the command line.
    pub fn from_flag(rev: &str) -> SourceRevision {
        SourceRevision {
            revision: rev.to_string(),
            origin: "flag".to_string(),
            dirty: None,
        }
    }

    /// Whether this revision is exactly `expected` and known clean-or-given:
    /// a dirty git revision never matches (the tree was not that commit).
    pub fn matches(&self, expected: &str) -> bool {
        self.revision == expected && self.dirty != Some(true)
    }
}

/// The git revision of the first of `sources` inside a git worktree.
pub fn detect_git(sources: &[&Path]) -> Option<SourceRevision> {
    for src in sources {
        let (dir, pathspec) = if src.is_dir() {
            (src.to_path_buf(), ".".to_string())
        } else {
            let parent = match src.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => Path::new(".").to_path_buf(),
            };
            let Some(name) = src.file_name() else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            (parent, name)
        };
        let Some(head) = git(&dir, &["rev-parse", "--verify", "HEAD"]) else {
            continue;
        };
        let head = head.trim().to_string();
        if head.is_empty() {
            continue;
        }
        let Some(status) = git(&dir, &["status", "--porcelain", "--", &pathspec]) else {
            continue;
        };
        return Some(SourceRevision {
            revision: head,
            origin: "git".to_string(),
            dirty: Some(!status.trim().is_empty()),
        });
    }
    None
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}
