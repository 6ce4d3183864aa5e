//! Helpers shared by the manifest/verify/diff/check tests: building source
//! trees in temp dirs, running the `repropack` binary, and finding the
//! independent tools (python3, GNU tar, sha256sum) the tests check against.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `repropack ARGS` with a clean environment for the variables that
/// change its behaviour.
pub fn repropack<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    repropack_env(args, &[])
}

/// Like [`repropack`] with extra environment variables.
pub fn repropack_env<I, S>(args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repropack"));
    cmd.args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("REPROPACK_REQUIRE_VERIFIED")
        .env_remove("REPROPACK_TEST_MUTATE_BETWEEN_BUILDS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run repropack")
}

/// stdout of a successful run; panics with stderr otherwise.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "repropack failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Whether `tool` can run. Under CI a missing tool fails the test; outside
/// CI the caller skips with a message.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (see notes/CI-manifest.md)"
        );
        eprintln!("skipping: {tool} not installed");
    }
    found
}

/// Writes `content` at `root/rel` with permission bits `mode`, creating
/// parents.
pub fn write(root: &Path, rel: &str, content: &[u8], mode: u32) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// A small tree with a nested dir, an executable, a symlink, a hard-link
/// pair, an empty file and a file whose name is not UTF-8.
pub fn sample_tree(root: &Path) {
    write(root, "README.txt", b"hello\n", 0o644);
    write(root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "pkg/sub/data.toml", b"x = 1\n", 0o600);
    write(root, "pkg/empty", b"", 0o644);
    let a = write(root, "links/a", b"shared content\n", 0o644);
    fs::hard_link(&a, root.join("links/b")).unwrap();
    std::os::unix::fs::symlink("../README.txt", root.join("bin/readme")).unwrap();
    let weird = root.join(OsStr::from_bytes(b"caf\xe9 name.txt"));
    fs::write(weird, b"latin-1 name\n").unwrap();
}

/// Parses JSON stdout.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}
