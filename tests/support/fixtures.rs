//! Source trees the tests pack, each built for what its suites prove, and
//! small helpers to build more.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::rng::Rng;

/// `root/rel` for a raw-bytes relative path.
pub fn path_of(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// Writes `data` at `root/rel`, creating parents.
pub fn write(root: &Path, rel: &[u8], data: &[u8]) {
    let p = path_of(root, rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(&p, data).expect("write file");
}

/// Sets the permission bits of `root/rel`.
pub fn chmod(root: &Path, rel: &[u8], mode: u32) {
    fs::set_permissions(path_of(root, rel), fs::Permissions::from_mode(mode)).expect("chmod");
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
        let path = path_of(root, rel);
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
                let t = path_of(root, target);
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
            fs::set_permissions(
                path_of(root, r),
                fs::Permissions::from_mode(0o777 & !how.umask),
            )
            .unwrap();
        }
    }
    if let Some(seed) = how.random_times {
        let mut rng = Rng::new(seed);
        for entry in walkdir::WalkDir::new(root).contents_first(true) {
            let entry = entry.unwrap();
            let t =
                |r: &mut Rng| filetime::FileTime::from_unix_time(r.below(2_000_000_000) as i64, 0);
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

/// Builds the archive sample tree under `root`: nested and empty dirs, empty, exec,
/// multi-block and setuid files, relative and absolute symlinks, a hard
/// link, a 150-byte name and a non-UTF-8 name.
pub fn archive_sample_tree(root: &Path) {
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
    fs::write(path_of(root, b"caf\xe9"), b"latin1\n").unwrap();
    fs::write(root.join("suid"), b"suid\n").unwrap();
    fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(root.join("a/hello.txt"), fs::Permissions::from_mode(0o640)).unwrap();
}

/// Writes `content` at `root/rel` with permission bits `mode`, creating
/// parents.
pub fn write_mode(root: &Path, rel: &str, content: &[u8], mode: u32) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// The manifest sample tree: a nested dir, an executable, a symlink, a hard-link
/// pair, an empty file and a file whose name is not UTF-8.
pub fn manifest_sample_tree(root: &Path) {
    write_mode(root, "README.txt", b"hello\n", 0o644);
    write_mode(root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write_mode(root, "pkg/sub/data.toml", b"x = 1\n", 0o600);
    write_mode(root, "pkg/empty", b"", 0o644);
    let a = write_mode(root, "links/a", b"shared content\n", 0o644);
    fs::hard_link(&a, root.join("links/b")).unwrap();
    symlink("../README.txt", root.join("bin/readme")).unwrap();
    let weird = root.join(OsStr::from_bytes(b"caf\xe9 name.txt"));
    fs::write(weird, b"latin-1 name\n").unwrap();
}

/// Builds the feature tree used by several tests under `root`: sizes around
/// the block size `bs`, duplicates, sparse data, hard links across
/// directories, symlinks (one dangling), empty file and directory, an
/// executable, a non-UTF-8 name and a 255-byte name.
pub fn feature_tree(root: &Path, bs: usize) {
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    };
    let txt = |len: usize, seed: u64| Rng::new(seed).text(len);
    fs::create_dir_all(root).unwrap();
    w("empty.txt", b"");
    w("one.txt", b"1");
    w("sizes/block_minus_1", &txt(bs - 1, 1));
    w("sizes/block", &txt(bs, 2));
    w("sizes/block_plus_1", &txt(bs + 1, 3));
    w("sizes/three_and_a_bit", &txt(3 * bs + 77, 4));
    w("sizes/random", &Rng::new(5).bytes(2 * bs + 5));
    w("dups/a", &txt(2 * bs + 10, 6));
    w("dups/b", &txt(2 * bs + 10, 6));
    w("dups/small1", b"same small content\n");
    w("dups/small2", b"same small content\n");
    w("zeros/all_zero", &vec![0u8; 4 * bs]);
    let mut holey = txt(bs, 7);
    holey.extend_from_slice(&vec![0u8; 2 * bs]);
    holey.extend_from_slice(&txt(bs / 2, 8));
    w("zeros/holey", &holey);
    w("links/target", b"hard linked\n");
    fs::create_dir_all(root.join("other/deeper")).unwrap();
    fs::hard_link(root.join("links/target"), root.join("other/deeper/hl")).unwrap();
    fs::hard_link(root.join("links/target"), root.join("links/hl2")).unwrap();
    symlink("../one.txt", root.join("links/sym")).unwrap();
    symlink("nowhere/at/all", root.join("links/dangling")).unwrap();
    fs::create_dir_all(root.join("emptydir")).unwrap();
    w("bin/tool.sh", b"#!/bin/sh\necho hi\n");
    fs::set_permissions(root.join("bin/tool.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    let odd = OsStr::from_bytes(b"names/caf\xe9-latin1");
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

/// `len` incompressible bytes; different seeds give different artifacts.
pub fn artifact(seed: u8, len: usize) -> Vec<u8> {
    Rng::new(u64::from(seed)).bytes(len)
}

/// The block size [`hostile_corpus`] sizes its files around.
pub const HOSTILE_BLOCK: usize = 128 * 1024;

/// The hostile-but-valid SquashFS corpus: every awkward shape but the two
/// big ones (they have their own tests): empty dir and file, one block, block+1,
/// all zeros, 255-byte and non-UTF-8 names, deep nesting, dangling and long
/// symlinks, hard links across directories, duplicate files (block-sized and
/// fragment-sized), source modes that need normalizing, and a spread of sizes.
pub fn hostile_corpus(root: &Path) {
    let mut rng = Rng::new(7);
    fs::create_dir_all(root.join("empty_dir")).expect("mkdir");
    write(root, b"empty_file", b"");
    write(root, b"sizes/one_block", &rng.text(HOSTILE_BLOCK));
    write(root, b"sizes/block_plus_one", &rng.text(HOSTILE_BLOCK + 1));
    write(root, b"sizes/block_minus_one", &rng.text(HOSTILE_BLOCK - 1));
    write(root, b"sizes/one_byte", b"x");
    write(root, b"sizes/zeros", &vec![0u8; 3 * HOSTILE_BLOCK + 100]);
    write(root, b"sizes/zero_block_then_data", &{
        let mut v = vec![0u8; HOSTILE_BLOCK];
        v.extend(rng.text(HOSTILE_BLOCK + 17));
        v
    });
    let mut incompressible = vec![0u8; 2 * HOSTILE_BLOCK + 5];
    for b in incompressible.iter_mut() {
        *b = rng.next_u64() as u8;
    }
    write(root, b"sizes/random", &incompressible);

    let long = vec![b'n'; 255];
    write(root, &long, b"long name at the root");
    let mut nested = vec![b'D'; 255];
    nested.push(b'/');
    nested.extend(vec![b'f'; 255]);
    write(root, &nested, b"long name in a long-named dir");

    write(root, b"names/bad\xff\xfe", b"not utf-8");
    write(root, b"names/latin1-caf\xe9", b"latin-1");
    write(root, b"names/with space", b"space");
    write(root, b"names/\xe2\x98\x83 snowman", b"utf-8");
    write(root, b"names/-dash", b"dash");
    write(root, b"names/.hidden", b"dot");

    let mut deep = Vec::new();
    for i in 0..120 {
        deep.extend_from_slice(format!("d{}/", i % 10).as_bytes());
    }
    deep.extend_from_slice(b"bottom");
    write(root, &deep, b"deep down");

    fs::create_dir_all(root.join("links")).expect("mkdir");
    symlink("does/not/exist", root.join("links/dangling")).expect("symlink");
    symlink("../sizes", root.join("links/to_dir")).expect("symlink");
    symlink("/etc/passwd", root.join("links/absolute")).expect("symlink");
    // backhand 0.25 refuses targets of 256 bytes or more (a limit of its
    // own, not of the format); longer ones have their own test.
    symlink("x".repeat(255), root.join("links/long_target")).expect("symlink");
    symlink(OsStr::from_bytes(b"bad\xff"), root.join("links/bad_target")).expect("symlink");

    write(root, b"hard/a/first", &rng.text(HOSTILE_BLOCK + 5000));
    fs::create_dir_all(root.join("hard/b/c")).expect("mkdir");
    fs::hard_link(root.join("hard/a/first"), root.join("hard/b/second")).expect("link");
    fs::hard_link(root.join("hard/a/first"), root.join("hard/b/c/third")).expect("link");
    write(root, b"hard/small", b"small hard-linked file");
    fs::hard_link(root.join("hard/small"), root.join("hard/a/small_too")).expect("link");

    let dup_big = rng.text(2 * HOSTILE_BLOCK + 777);
    write(root, b"dup/one", &dup_big);
    write(root, b"dup/sub/two", &dup_big);
    write(root, b"dup/three", &dup_big);
    write(root, b"dup/small_a", b"duplicate small file");
    write(root, b"dup/small_b", b"duplicate small file");

    write(root, b"modes/exec_owner_only", b"#!/bin/sh\n");
    chmod(root, b"modes/exec_owner_only", 0o700);
    write(root, b"modes/private", b"secret");
    chmod(root, b"modes/private", 0o600);
    write(root, b"modes/setuid", b"suid");
    chmod(root, b"modes/setuid", 0o4755);
    write(root, b"modes/world_writable", b"ww");
    chmod(root, b"modes/world_writable", 0o666);
    fs::create_dir_all(root.join("modes/private_dir")).expect("mkdir");
    chmod(root, b"modes/private_dir", 0o700);

    for i in 0..150 {
        let size = match i % 5 {
            0 => rng.below(100) as usize,
            1 => rng.below(8 * 1024) as usize,
            2 => rng.below(HOSTILE_BLOCK as u64) as usize,
            3 => HOSTILE_BLOCK + rng.below(3 * HOSTILE_BLOCK as u64) as usize,
            _ => rng.below(40_000) as usize,
        };
        write(
            root,
            format!("mixed/{}/f{i:03}", i % 7).as_bytes(),
            &rng.text(size),
        );
    }
}

/// 400 files over nested dirs with sizes from empty to several blocks.
pub fn spread_tree(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    for i in 0..400 {
        let size = match i % 4 {
            0 => rng.below(2000),
            1 => rng.below(60_000),
            2 => rng.below(3 * HOSTILE_BLOCK as u64),
            _ => 0,
        } as usize;
        write(
            root,
            format!("t{}/u{}/f{i}", i % 5, i % 3).as_bytes(),
            &rng.text(size),
        );
    }
}
