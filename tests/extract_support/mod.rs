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

/// A tar stream built header by header from raw bytes, so tests can store
/// what no well-behaved writer would (`../x`, `/etc/passwd`, links out).
/// Layout: POSIX ustar headers (name ≤ 100 bytes, octal fields, checksum
/// over the header with the checksum field as spaces).
#[derive(Default)]
pub struct RawTar {
    buf: Vec<u8>,
}

pub const T_FILE: u8 = b'0';
pub const T_HARD: u8 = b'1';
pub const T_SYM: u8 = b'2';
pub const T_CHAR: u8 = b'3';
pub const T_BLOCK: u8 = b'4';
pub const T_DIR: u8 = b'5';
pub const T_FIFO: u8 = b'6';

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    assert!(
        s.len() <= digits,
        "{value} does not fit {digits} octal digits"
    );
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// One raw ustar header block.
pub fn raw_header(name: &[u8], typeflag: u8, mode: u32, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_600_000_000);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    set_checksum(&mut h);
    h
}

pub fn set_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    pub fn raw(&mut self, header: [u8; 512], data: &[u8]) -> &mut RawTar {
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn entry(
        &mut self,
        name: &[u8],
        typeflag: u8,
        mode: u32,
        data: &[u8],
        link: &[u8],
    ) -> &mut RawTar {
        let h = raw_header(name, typeflag, mode, data.len() as u64, link);
        self.raw(h, data)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_FILE, 0o644, data, b"")
    }

    pub fn file_mode(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_FILE, mode, data, b"")
    }

    pub fn dir(&mut self, name: &str) -> &mut RawTar {
        self.entry(name.as_bytes(), T_DIR, 0o755, b"", b"")
    }

    pub fn symlink(&mut self, name: &str, target: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_SYM, 0o777, b"", target)
    }

    pub fn hardlink(&mut self, name: &str, target: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_HARD, 0o644, b"", target)
    }

    /// A pax extended header (`x`) for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut RawTar {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(len.to_string().as_bytes());
            body.push(b' ');
            body.extend_from_slice(key.as_bytes());
            body.push(b'=');
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let h = raw_header(b"././@PaxHeader", b'x', 0o644, body.len() as u64, b"");
        self.raw(h, &body)
    }

    /// The stream with its two zero end blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// gzip of `data` (one member, level 1).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Replaces the single occurrence of `marker` in `image` with `with`
/// (same length). Used on SquashFS images made with `-noI` so that the
/// directory table holds names uncompressed.
pub fn patch_unique(image: &mut [u8], marker: &[u8], with: &[u8]) {
    assert_eq!(marker.len(), with.len());
    let hits: Vec<usize> = (0..=image.len() - marker.len())
        .filter(|&i| &image[i..i + marker.len()] == marker)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "marker {:?} found {} times",
        String::from_utf8_lossy(marker),
        hits.len()
    );
    image[hits[0]..hits[0] + marker.len()].copy_from_slice(with);
}

/// Every path under `root` with its kind, size and mode: a snapshot to
/// show that nothing changed.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (String, u64, u32)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        out.insert(
            e.path().to_path_buf(),
            (format!("{:?}", m.file_type()), m.len(), m.mode()),
        );
    }
    out
}
