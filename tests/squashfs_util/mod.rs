//! Helpers shared by the tests/squashfs_*.rs files: run the binary, find
//! external readers (failing under CI when one is missing), and compare an
//! extracted tree with its source after the packing policy.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repropack binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_repropack"))
}

/// Path of an external tool, or None (test skipped) outside CI. Under CI a
/// missing tool fails the test.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!("{name} is required under CI (install squashfs-tools / squashfs-tools-ng)")
        }
        None => {
            eprintln!("skipping: {name} not installed");
            None
        }
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Packs `args` (sources and options) into `out`; returns the sha256 hex
/// from the printed ref, checked against the file.
pub fn pack(out: &Path, args: &[&str]) -> String {
    let o = run(bin().arg("pack").args(args).arg("-o").arg(out));
    let line = String::from_utf8(o.stdout).unwrap();
    let hex = line
        .trim()
        .rsplit_once("#sha256=")
        .expect("ref")
        .1
        .to_string();
    assert_eq!(hex, sha256_file(out), "printed ref must match the file");
    hex
}

pub fn sha256_file(p: &Path) -> String {
    let o = run(Command::new("sha256sum").arg(p));
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Compressible text-like bytes.
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"alpha ", b"beta ", b"gamma\n", b"delta ", b"eps ", b"zeta ", b"eta\n", b"theta ",
    ];
    let n = noise(len / 4 + 8, seed);
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(words[(n[i % n.len()] % 8) as usize]);
        i += 1;
    }
    out.truncate(len);
    out
}

/// Builds the feature tree used by several tests under `root`: sizes around
/// the block size `bs`, duplicates, sparse data, hard links across
/// directories, symlinks (one dangling), empty file and directory, an
/// executable, a non-UTF-8 name and a 255-byte name.
pub fn feature_tree(root: &Path, bs: usize) {
    use std::os::unix::ffi::OsStrExt;
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    };
    fs::create_dir_all(root).unwrap();
    w("empty.txt", b"");
    w("one.txt", b"1");
    w("sizes/block_minus_1", &text(bs - 1, 1));
    w("sizes/block", &text(bs, 2));
    w("sizes/block_plus_1", &text(bs + 1, 3));
    w("sizes/three_and_a_bit", &text(3 * bs + 77, 4));
    w("sizes/random", &noise(2 * bs + 5, 5));
    w("dups/a", &text(2 * bs + 10, 6));
    w("dups/b", &text(2 * bs + 10, 6));
    w("dups/small1", b"same small content\n");
    w("dups/small2", b"same small content\n");
    w("zeros/all_zero", &vec![0u8; 4 * bs]);
    let mut holey = text(bs, 7);
    holey.extend_from_slice(&vec![0u8; 2 * bs]);
    holey.extend_from_slice(&text(bs / 2, 8));
    w("zeros/holey", &holey);
    w("links/target", b"hard linked\n");
    fs::create_dir_all(root.join("other/deeper")).unwrap();
    fs::hard_link(root.join("links/target"), root.join("other/deeper/hl")).unwrap();
    fs::hard_link(root.join("links/target"), root.join("links/hl2")).unwrap();
    std::os::unix::fs::symlink("../one.txt", root.join("links/sym")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", root.join("links/dangling")).unwrap();
    fs::create_dir_all(root.join("emptydir")).unwrap();
    w("bin/tool.sh", b"#!/bin/sh\necho hi\n");
    fs::set_permissions(root.join("bin/tool.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"names/caf\xe9-latin1");
    fs::create_dir_all(root.join("names")).unwrap();
    fs::write(root.join(odd), b"latin-1 name\n").unwrap();
    let long = "n".repeat(255);
    w(&format!("names/{long}"), b"long name\n");
    let mut deep = String::from("deep");
    for i in 0..40 {
        deep.push_str(&format!("/d{i}"));
    }
    w(&format!("{deep}/leaf"), b"leaf\n");
}

/// One entry as the comparison sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(Vec<u8>),
}

/// Path → node, and the groups of paths sharing an inode.
pub type Snapshot = (HashMap<Vec<u8>, Node>, Vec<Vec<Vec<u8>>>);

/// Walks `root` into path → node (paths relative, raw bytes), plus groups
/// of paths sharing an inode.
pub fn snapshot(root: &Path) -> Snapshot {
    use std::os::unix::ffi::OsStrExt;
    let mut map = HashMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let m = e.path().symlink_metadata().unwrap();
        let node = if m.file_type().is_symlink() {
            Node::Symlink(
                fs::read_link(e.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if m.is_dir() {
            Node::Dir(m.mode() & 0o7777)
        } else {
            if m.nlink() > 1 {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .push(rel.clone());
            }
            Node::File(m.mode() & 0o7777, fs::read(e.path()).unwrap())
        };
        map.insert(rel, node);
    }
    let mut groups: Vec<Vec<Vec<u8>>> = inodes
        .into_values()
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    groups.sort();
    (map, groups)
}

/// The source snapshot after the default policy: dirs 0755, files 0644 or
/// 0755 if any execute bit.
pub fn normalized(root: &Path) -> Snapshot {
    let (map, groups) = snapshot(root);
    let map = map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Node::Dir(_) => Node::Dir(0o755),
                Node::File(m, c) => Node::File(if m & 0o111 != 0 { 0o755 } else { 0o644 }, c),
                s => s,
            };
            (k, v)
        })
        .collect();
    (map, groups)
}

/// Extracts `img` into `out` with `unsquashfs -d` and asserts the result is
/// the normalized `source` tree (see [`assert_same_tree`]).
pub fn assert_unsquashfs_gives(unsquashfs: &Path, img: &Path, out: &Path, source: &Path) {
    run(Command::new(unsquashfs)
        .arg("-no-progress")
        .arg("-d")
        .arg(out)
        .arg(img));
    assert_same_tree(source, out);
}

/// Asserts the extracted tree equals the normalized source: same paths,
/// kinds, modes, contents, symlink targets and hard-link groups.
pub fn assert_same_tree(source: &Path, extracted: &Path) {
    assert_same_tree_links(source, extracted, true);
}

/// As [`assert_same_tree`]; `links: false` for extractors that unpack hard
/// links as copies (rdsquashfs).
pub fn assert_same_tree_links(source: &Path, extracted: &Path, links: bool) {
    let (want, want_groups) = normalized(source);
    let (got, got_groups) = snapshot(extracted);
    let mut want_keys: Vec<_> = want.keys().collect();
    let mut got_keys: Vec<_> = got.keys().collect();
    want_keys.sort();
    got_keys.sort();
    assert_eq!(
        got_keys
            .iter()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>(),
        want_keys
            .iter()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!(got[k] == *v, "{} differs", String::from_utf8_lossy(k));
    }
    if links {
        assert_eq!(got_groups, want_groups, "hard-link groups");
    }
}
