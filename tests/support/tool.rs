//! The probe for external programs (GNU tar, squashfs-tools, python3, …)
//! that tests check our output with.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of the executable `name` on `PATH`. When it is missing the
/// caller skips, except under CI: there a missing tool must not turn a
/// check into a silent pass, so this panics when `CI` is set.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is required when CI is set but is not installed"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

/// [`tool`] for callers that run the program by name.
pub fn have_tool(name: &str) -> bool {
    tool(name).is_some()
}

/// Runs `git -C dir ARGS` with a fixed author and committer, asserting
/// success; returns its trimmed standard output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
