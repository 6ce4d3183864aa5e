//! Source revisions recorded in manifests.
//!
//! A revision is either given by the user (`--source-revision REV`) or found
//! with the `git` command line: the first source (in command-line order) that
//! lies inside a git worktree gives `git rev-parse HEAD`, and is marked dirty
//! when `git status --porcelain -- <source>` prints anything (modified,
//! staged, deleted or untracked files *under that source*; files git ignores
//! are not considered). When `git` is not installed or no source is in a
//! worktree, there is no revision.
//!
//! For provenance, [`detect_git_source`] also reads that worktree's
//! `remote.origin.url`, with any user name and password removed from it.

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

/// A revision git found, with the repository it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The commit and whether the source was dirty.
    pub revision: SourceRevision,
    /// `remote.origin.url` of the worktree, without credentials; `None`
    /// when there is no `origin`.
    pub repository: Option<String>,
}

/// The git revision of the first of `sources` inside a git worktree.
pub fn detect_git(sources: &[&Path]) -> Option<SourceRevision> {
    detect_git_source(sources).map(|g| g.revision)
}

/// [`detect_git`], with the worktree's `origin` URL.
pub fn detect_git_source(sources: &[&Path]) -> Option<GitSource> {
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
        let repository = git(&dir, &["config", "--get", "remote.origin.url"])
            .map(|u| without_credentials(u.trim()))
            .filter(|u| !u.is_empty());
        return Some(GitSource {
            revision: SourceRevision {
                revision: head,
                origin: "git".to_string(),
                dirty: Some(!status.trim().is_empty()),
            },
            repository,
        });
    }
    None
}

/// `url` without credentials: a token in an `https://` remote (as user name
/// or password) must not end up in a published statement. An `ssh://` user
/// name (`git@`) is an account, not a secret, and stays; so does anything
/// that is not a URL (`git@host:path`, a local path).
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            if u.scheme() != "ssh" {
                let _ = u.set_username("");
            }
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn remote_urls_lose_their_credentials() {
        assert_eq!(
            without_credentials("https://bob:t0ken@git.example/r.git"),
            "https://git.example/r.git"
        );
        assert_eq!(
            without_credentials("https://ghp_t0ken@git.example/r.git"),
            "https://git.example/r.git"
        );
        assert_eq!(
            without_credentials("ssh://git:pw@git.example/r.git"),
            "ssh://git@git.example/r.git"
        );
        assert_eq!(
            without_credentials("git@git.example:r.git"),
            "git@git.example:r.git"
        );
        assert_eq!(without_credentials("/srv/r.git"), "/srv/r.git");
    }
}
