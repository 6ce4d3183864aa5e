//! Helpers shared by the integration tests: building real trees in temp
//! dirs, running the real binary, and finding independent readers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_repropack")
}

/// A command running the real `repropack` binary with a clean, fixed
/// environment (no SOURCE_DATE_EPOCH unless the test sets one).
pub fn repropack() -> Command {
    let mut c = Command::new(bin());
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs `repropack args…`, panicking with its stderr on failure.
pub fn run_ok(args: &[&OsStr]) -> Output {
    let out = repropack().args(args).output().expect("spawn repropack");
    assert!(
        out.status.success(),
        "repropack {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sha256_file(path: &Path) -> String {
    repropack::digest::hash_file(path).expect("hash").0.to_hex()
}

/// Independent hash of a file: `sha256sum` from coreutils.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// True if `tool` is on PATH. When it is missing: panics under CI (tests
/// must not silently skip there), else prints a note and returns false.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required under CI but not installed"
        );
        eprintln!("skipping: {tool} not installed");
    }
    found
}

/// Small deterministic PRNG (xorshift64*), so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 32) as u8).collect()
    }
}

/// One item of a sample tree.
#[derive(Clone, Debug)]
pub enum Item {
    Dir(Vec<u8>),
    File(Vec<u8>, Vec<u8>, bool),
    Symlink(Vec<u8>, Vec<u8>),
    HardLink(Vec<u8>, Vec<u8>),
}

/// The 200-byte file name used by the sample tree.
pub fn long_name() -> Vec<u8> {
    let mut n = b"long-".to_vec();
    n.resize(200, b'x');
    n
}

/// A name that is not valid UTF-8 (git cannot hold it, so tests make it).
pub fn non_utf8_name() -> Vec<u8> {
    b"caf\xe9-latin1.txt".to_vec()
}

/// The items of the sample tree: nested dirs, an empty dir, an empty file,
/// an executable, a symlink, a hard link, a 200-byte name, a non-UTF-8 name,
/// and a ~1.3 MB file spanning several gzip chunks.
pub fn sample_items() -> Vec<Item> {
    let mut rng = Rng::new(7);
    let mut big = Vec::new();
    for i in 0..20_000 {
        big.extend_from_slice(format!("line {i} of a compressible file\n").as_bytes());
    }
    big.extend_from_slice(&rng.bytes(600_000));
    let mut long_path = b"deep/".to_vec();
    long_path.extend_from_slice(&long_name());
    let mut bad = b"deep/".to_vec();
    bad.extend_from_slice(&non_utf8_name());
    vec![
        Item::Dir(b"deep".to_vec()),
        Item::Dir(b"deep/a".to_vec()),
        Item::Dir(b"deep/a/b".to_vec()),
        Item::Dir(b"deep/a/b/c".to_vec()),
        Item::File(b"deep/a/b/c/leaf.txt".to_vec(), b"leaf\n".to_vec(), false),
        Item::Dir(b"empty-dir".to_vec()),
        Item::File(b"empty-file".to_vec(), Vec::new(), false),
        Item::File(b"run.sh".to_vec(), b"#!/bin/sh\necho hi\n".to_vec(), true),
        Item::File(b"a.txt".to_vec(), b"alpha\n".to_vec(), false),
        Item::File(b"B.txt".to_vec(), b"upper\n".to_vec(), false),
        Item::File(b"big.bin".to_vec(), big, false),
        Item::Symlink(b"link-to-a".to_vec(), b"a.txt".to_vec()),
        Item::Symlink(b"dangling".to_vec(), b"does/not/exist".to_vec()),
        Item::HardLink(b"deep/hard-a".to_vec(), b"a.txt".to_vec()),
        Item::File(long_path, b"long name\n".to_vec(), false),
        Item::File(bad, b"latin1\n".to_vec(), false),
    ]
}

/// How to build a tree: creation order, timestamps, permission masking.
#[derive(Clone, Copy)]
pub struct Build {
    /// Shuffle creation order with this seed (None: listed order).
    pub shuffle: Option<u64>,
    /// Give every path random mtimes/atimes with this seed.
    pub random_times: Option<u64>,
    /// Permission bits removed as a umask would (e.g. 0o077).
    pub umask: u32,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            shuffle: None,
            random_times: None,
            umask: 0o022,
        }
    }
}

fn p(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// Creates `items` under `root` (which must exist).
pub fn build_tree(root: &Path, items: &[Item], how: Build) {
    let mut order: Vec<Item> = items.to_vec();
    if let Some(seed) = how.shuffle {
        Rng::new(seed).shuffle(&mut order);
    }
    // Parents may come later in a shuffled order: create them on demand.
    for item in &order {
        let rel = match item {
            Item::Dir(r) | Item::File(r, ..) | Item::Symlink(r, _) | Item::HardLink(r, _) => r,
        };
        let path = p(root, rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        match item {
            Item::Dir(_) => {
                let _ = fs::create_dir(&path);
            }
            Item::File(_, data, exec) => {
                fs::write(&path, data).unwrap();
                let mode = if *exec { 0o777 } else { 0o666 } & !how.umask;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            Item::Symlink(_, target) => symlink(OsStr::from_bytes(target), &path).unwrap(),
            Item::HardLink(_, target) => {
                let t = p(root, target);
                if !t.exists()
                    && let Some(Item::File(_, data, _)) = items
                        .iter()
                        .find(|i| matches!(i, Item::File(r, ..) if r == target))
                {
                    fs::write(&t, data).unwrap();
                    fs::set_permissions(&t, fs::Permissions::from_mode(0o666 & !how.umask))
                        .unwrap();
                }
                fs::hard_link(&t, &path).unwrap();
            }
        }
    }
    // Directories get the umask too (after their children exist).
    for item in items {
        if let Item::Dir(r) = item {
            fs::set_permissions(p(root, r), fs::Permissions::from_mode(0o777 & !how.umask))
                .unwrap();
        }
    }
    if let Some(seed) = how.random_times {
        let mut rng = Rng::new(seed);
        for entry in walkdir::WalkDir::new(root).contents_first(true) {
            let entry = entry.unwrap();
            let t = |r: &mut Rng| {
                filetime::FileTime::from_unix_time((r.next() % 2_000_000_000) as i64, 0)
            };
            let (a, m) = (t(&mut rng), t(&mut rng));
            filetime::set_symlink_file_times(entry.path(), a, m).unwrap();
        }
    }
}

/// A temp dir holding the sample tree built `how`.
pub fn sample_tree(how: Build) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path(), &sample_items(), how);
    dir
}
