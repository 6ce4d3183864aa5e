//! Shared helpers of the archive reader and extract tests: a sample source
//! tree, its model read back from the filesystem, external tools.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when `tool` can be run. Under `CI` a missing tool fails the test;
/// elsewhere the caller skips with a message.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required under CI but is not installed");
        }
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// Runs a command and panics with its stderr unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

pub fn p(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// Builds the sample tree under `root`: nested and empty dirs, empty, exec,
/// multi-block and setuid files, relative and absolute symlinks, a hard
/// link, a 150-byte name and a non-UTF-8 name.
pub fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty_dir")).unwrap();
    fs::write(root.join("a/hello.txt"), b"hello\n").unwrap();
    fs::write(root.join("a/run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("a/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("a/b/big.bin"), &big).unwrap();
    fs::write(root.join("a/b/c/deep.txt"), b"deep\n").unwrap();
    symlink("hello.txt", root.join("a/link")).unwrap();
    symlink("/usr/bin/python3", root.join("abs_link")).unwrap();
    fs::hard_link(root.join("a/hello.txt"), root.join("a/hard")).unwrap();
    let long = "n".repeat(150);
    fs::write(root.join("a").join(&long), b"long name\n").unwrap();
    fs::write(root.join(p(b"caf\xe9")), b"latin1\n").unwrap();
    fs::write(root.join("suid"), b"suid\n").unwrap();
    fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(root.join("a/hello.txt"), fs::Permissions::from_mode(0o640)).unwrap();
}

/// One node of a tree as read from the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        content: Vec<u8>,
        ino: (u64, u64),
    },
    Symlink {
        target: Vec<u8>,
    },
    Other {
        kind: &'static str,
    },
}

/// Every path under `root` (relative, raw bytes) with what it is.
pub fn read_tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let meta = fs::symlink_metadata(e.path()).unwrap();
        let ft = meta.file_type();
        let node = if ft.is_dir() {
            Node::Dir {
                mode: meta.mode() & 0o7777,
            }
        } else if ft.is_file() {
            Node::File {
                mode: meta.mode() & 0o7777,
                content: fs::read(e.path()).unwrap(),
                ino: (meta.dev(), meta.ino()),
            }
        } else if ft.is_symlink() {
            Node::Symlink {
                target: fs::read_link(e.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            }
        } else {
            Node::Other { kind: "special" }
        };
        out.insert(rel, node);
    }
    out
}

/// Groups of paths that share an inode (hard links), each sorted.
pub fn link_groups(tree: &BTreeMap<Vec<u8>, Node>) -> Vec<Vec<Vec<u8>>> {
    let mut by_ino: BTreeMap<(u64, u64), Vec<Vec<u8>>> = BTreeMap::new();
    for (path, node) in tree {
        if let Node::File { ino, .. } = node {
            by_ino.entry(*ino).or_default().push(path.clone());
        }
    }
    by_ino.into_values().filter(|g| g.len() > 1).collect()
}

/// A tree with inode identity erased, for comparing two trees.
pub fn without_inodes(tree: &BTreeMap<Vec<u8>, Node>) -> BTreeMap<Vec<u8>, Node> {
    tree.iter()
        .map(|(k, v)| {
            let v = match v {
                Node::File { mode, content, .. } => Node::File {
                    mode: *mode,
                    content: content.clone(),
                    ino: (0, 0),
                },
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}
