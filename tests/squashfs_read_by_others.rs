//! SquashFS images made by `repropack pack` read back identically by readers
//! that are not ours: unsquashfs (listing, superblock, extraction),
//! rdsquashfs (listing, stat, extraction), the Linux kernel (loop mount),
//! sqfs2tar (its tar stream read by the tar crate, and by GNU tar) and
//! backhand. The expected view is computed from the source by an
//! independent walk with the default normalization (see `sqfs_check`); the
//! checker itself is shown to accept an mksquashfs image and to report
//! every kind of difference.
//!
//! Tests that need squashfs-tools / squashfs-tools-ng fail when `CI` is set
//! and the tools are missing, and skip with a message otherwise.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::bin::{pack as pack_args, repropack, run_ok};
use crate::support::fixtures::{chmod, feature_tree, hostile_corpus, spread_tree, write};
use crate::support::rng::Rng;
use crate::support::sqfs_check::{
    PackSpec, Producer, Readers, all_tools_available, assert_clean, assert_same_tree,
    assert_unsquashfs_gives, check_image, expected_tree, normalize_source_modes, pack, scratch,
};
use crate::support::tool::tool;
use crate::support::tree::{Kind, Tree, fingerprint};

/// The producer under test.
const PRODUCER: Producer = Producer::Repropack;

const EPOCH: u64 = 1_234_567_890;

/// Packs `src` with `producer`, then checks it with the given readers.
fn pack_and_check(producer: Producer, src: &Path, spec: &PackSpec, readers: Readers) {
    let out = scratch();
    let img = out.path().join("img.squashfs");
    if producer == Producer::Mksquashfs {
        normalize_source_modes(src);
    }
    pack(producer, src, &img, spec);
    let expected = expected_tree(src, spec.epoch);
    assert_clean(
        &format!("{producer:?} {spec:?}"),
        check_image(&img, &expected, &spec.expect(), readers),
    );
}

#[test]
fn hostile_corpus_reads_back_identically_with_every_reader() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    hostile_corpus(src.path());
    pack_and_check(PRODUCER, src.path(), &PackSpec::new(EPOCH), Readers::ALL);
}

#[test]
fn checker_accepts_mksquashfs_reference_image() {
    // The checker itself is right: an image from an independent producer
    // (mksquashfs with normalizing flags) passes every reader.
    if !all_tools_available() || tool("mksquashfs").is_none() {
        return;
    }
    let src = scratch();
    hostile_corpus(src.path());
    pack_and_check(
        Producer::Mksquashfs,
        src.path(),
        &PackSpec::new(EPOCH),
        Readers::ALL,
    );
}

#[test]
fn checker_reports_differences_between_image_and_source() {
    // The checker can fail: change the source after packing and every kind
    // of change is reported by name.
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    let root = src.path();
    write(root, b"same_size", b"aaaa");
    write(root, b"exec", b"#!");
    write(root, b"h1", b"linked");
    fs::hard_link(root.join("h1"), root.join("h2")).expect("link");
    write(root, b"h3", b"separate");
    write(root, b"h4", b"separate");
    symlink("old", root.join("sym")).expect("symlink");
    let out = scratch();
    let img = out.path().join("img.squashfs");
    let spec = PackSpec::new(EPOCH);
    pack(PRODUCER, root, &img, &spec);

    write(root, b"same_size", b"aaab");
    chmod(root, b"exec", 0o755);
    fs::remove_file(root.join("h2")).expect("unlink");
    fs::write(root.join("h2"), b"linked").expect("write");
    fs::remove_file(root.join("h4")).expect("unlink");
    fs::hard_link(root.join("h3"), root.join("h4")).expect("link");
    fs::remove_file(root.join("sym")).expect("unlink");
    symlink("new", root.join("sym")).expect("symlink");
    write(root, b"added", b"");
    let mut wrong = spec.expect();
    wrong.epoch += 60;
    wrong.block_size *= 2;

    let errs = check_image(&img, &expected_tree(root, spec.epoch), &wrong, Readers::ALL);
    let text = errs.join("\n");
    for needle in [
        "unsquashfs -d: /same_size: content",
        "backhand: /same_size: content",
        "rdsquashfs -u: /same_size: content",
        "sqfs2tar: /same_size: content",
        "unsquashfs -lln: /exec: perm",
        "rdsquashfs -d: /exec: perm",
        "unsquashfs -d: /exec: perm",
        "backhand: /exec: perm",
        "kernel: /exec: perm",
        "kernel: /same_size: content",
        "kernel: hard-link groups",
        "unsquashfs -d: hard-link groups",
        "sqfs2tar: hard-link groups",
        "unsquashfs -d: /h1: nlink",
        "rdsquashfs -s /h3: hard link count",
        "rdsquashfs -s: hard-link group",
        "unsquashfs -d: /h3: nlink",
        "unsquashfs -lln: /sym: symlink target",
        "backhand: /sym: symlink target",
        "unsquashfs -lln: /added is missing",
        "rdsquashfs -d: /added is missing",
        "unsquashfs -mkfs-time",
        "unsquashfs -s: block size",
        "backhand: mod time",
        "backhand: block size",
    ] {
        assert!(
            text.contains(needle),
            "checker did not report {needle:?}; it reported:\n{text}"
        );
    }
    // The image's own mtimes are checked against the expected epoch too.
    let errs = check_image(
        &img,
        &expected_tree(root, spec.epoch + 3600),
        &spec.expect(),
        Readers::ALL,
    );
    let text = errs.join("\n");
    for needle in [
        "unsquashfs -lln: /exec: minute",
        "backhand: /exec: mtime",
        "unsquashfs -d: /exec: mtime",
    ] {
        assert!(
            text.contains(needle),
            "checker did not report {needle:?}; it reported:\n{text}"
        );
    }
}

#[test]
fn hundred_thousand_files_in_one_directory_read_back() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    let big = src.path().join("big");
    fs::create_dir(&big).expect("mkdir");
    for i in 0..100_000u32 {
        // Varying name lengths so directory headers and indexes split at
        // irregular places; content = the name, so every file differs.
        let name = format!("{i:06}{}", "x".repeat((i % 23) as usize));
        fs::write(big.join(&name), name.as_bytes()).expect("write");
    }
    write(src.path(), b"after", b"entry after the big directory");
    // rdsquashfs fsyncs every unpacked file (minutes for 100 000 files on a
    // disk); its listing still checks every name here.
    pack_and_check(
        PRODUCER,
        src.path(),
        &PackSpec::new(EPOCH),
        Readers {
            rdsquashfs_extract: false,
            ..Readers::ALL
        },
    );
}

#[test]
fn five_gib_sparse_file_reads_back() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    let mut f = File::create(src.path().join("sparse")).expect("create");
    let size = 5u64 << 30;
    f.set_len(size).expect("set_len");
    // A few non-zero bytes past 4 GiB and at the very end, so offsets beyond
    // 32 bits and the file's tail carry data.
    f.seek(SeekFrom::Start((4u64 << 30) + 12345)).expect("seek");
    f.write_all(b"past four GiB").expect("write");
    f.seek(SeekFrom::Start(size - 3)).expect("seek");
    f.write_all(b"end").expect("write");
    drop(f);
    write(src.path(), b"small", b"next to a big sparse file");
    pack_and_check(PRODUCER, src.path(), &PackSpec::new(EPOCH), Readers::ALL);
}

#[test]
fn superblock_and_readers_agree_for_each_compressor_and_block_size() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    let mut rng = Rng::new(3);
    for i in 0..40 {
        let size = rng.below(3 * 1024 * 1024 / 40) as usize * (i % 3);
        write(
            src.path(),
            format!("d{}/f{i}", i % 4).as_bytes(),
            &rng.text(size),
        );
    }
    write(src.path(), b"zeros", &vec![0u8; 300_000]);
    write(src.path(), b"empty", b"");
    for (comp, block) in [
        ("gzip", None),
        ("gzip:9", Some(4096)),
        ("gzip:1", Some(1 << 20)),
        ("zstd", Some(64 * 1024)),
        ("xz", None),
        ("lz4", Some(8192)),
        ("none", None),
    ] {
        let mut spec = PackSpec::new(EPOCH);
        spec.comp = comp.to_string();
        spec.block_size = block;
        pack_and_check(PRODUCER, src.path(), &spec, Readers::ALL);
    }
}

/// Builds the logical tree of [`spread_tree`] plus links, creating entries in
/// an order shuffled by `seed`, with random mtimes/atimes and modes that
/// normalize to the same value.
fn shuffled_tree(root: &Path, seed: u64) {
    let staging = scratch();
    spread_tree(staging.path(), 11);
    let mut files: Vec<_> = walkdir::WalkDir::new(staging.path())
        .into_iter()
        .map(|e| e.expect("walk").into_path())
        .filter(|p| p.is_file())
        .collect();
    let mut rng = Rng::new(seed);
    for i in (1..files.len()).rev() {
        files.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for p in &files {
        let rel = p.strip_prefix(staging.path()).expect("under staging");
        let dest = root.join(rel);
        fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        fs::copy(p, &dest).expect("copy");
        let mode = [0o644, 0o664, 0o600, 0o640][rng.below(4) as usize];
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).expect("chmod");
    }
    write(root, b"bin/tool", b"#!/bin/sh\n");
    chmod(
        root,
        b"bin/tool",
        [0o755, 0o700, 0o711][rng.below(3) as usize],
    );
    if rng.below(2) == 0 {
        fs::hard_link(root.join("bin/tool"), root.join("t0/tool_link")).expect("link");
        symlink("../bin/tool", root.join("t1/tool_sym")).expect("symlink");
    } else {
        symlink("../bin/tool", root.join("t1/tool_sym")).expect("symlink");
        fs::hard_link(root.join("bin/tool"), root.join("t0/tool_link")).expect("link");
    }
    for e in walkdir::WalkDir::new(root).contents_first(true) {
        let e = e.expect("walk");
        let t = |rng: &mut Rng| {
            filetime::FileTime::from_unix_time(1_000_000_000 + rng.below(600_000_000) as i64, 0)
        };
        let (a, m) = (t(&mut rng), t(&mut rng));
        filetime::set_symlink_file_times(e.path(), a, m).expect("set times");
    }
}

#[test]
fn creation_order_times_and_equivalent_modes_do_not_change_bytes() {
    if !all_tools_available() {
        return;
    }
    let out = scratch();
    let mut hashes = Vec::new();
    let mut first_src = None;
    for seed in [1, 2, 3] {
        let src = scratch();
        shuffled_tree(src.path(), seed);
        let img = out.path().join(format!("s{seed}.squashfs"));
        hashes.push(pack(PRODUCER, src.path(), &img, &PackSpec::new(EPOCH)));
        first_src.get_or_insert(src);
    }
    assert!(
        hashes.iter().all(|h| *h == hashes[0]),
        "image bytes depend on creation order, times or un-normalized modes: {hashes:?}"
    );
    let src = first_src.expect("one tree");
    let errs = check_image(
        &out.path().join("s1.squashfs"),
        &expected_tree(src.path(), EPOCH),
        &PackSpec::new(EPOCH).expect(),
        Readers {
            kernel: true,
            listings: true,
            unsquashfs_extract: true,
            rdsquashfs_extract: false,
            sqfs2tar: false,
            backhand: true,
        },
    );
    assert_clean("shuffled tree image", errs);
}

#[test]
fn symlink_targets_longer_than_255_bytes_read_back() {
    // backhand 0.25 cannot read these (its own limit), so only the
    // squashfs-tools and squashfs-tools-ng readers check them.
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    symlink("x".repeat(256), src.path().join("t256")).expect("symlink");
    symlink("y/".repeat(1000), src.path().join("t2000")).expect("symlink");
    symlink("z".repeat(4000), src.path().join("t4000")).expect("symlink");
    pack_and_check(
        PRODUCER,
        src.path(),
        &PackSpec::new(EPOCH),
        Readers {
            backhand: false,
            ..Readers::ALL
        },
    );
}

fn packed_feature_tree(dir: &Path, bs: usize, extra: &[&str]) -> (PathBuf, PathBuf) {
    let src = dir.join("src");
    feature_tree(&src, bs);
    let img = dir.join("img.squashfs");
    let bs_arg = bs.to_string();
    let mut args = vec![src.to_str().unwrap(), "--block-size", &bs_arg];
    args.extend_from_slice(extra);
    pack_args(&img, &args);
    (src, img)
}

#[test]
fn unsquashfs_extracts_the_source_tree() {
    if tool("unsquashfs").is_none() {
        return;
    }
    for bs in [4096usize, 131072] {
        let dir = tempfile::tempdir().unwrap();
        let (src, img) = packed_feature_tree(dir.path(), bs, &[]);
        let out = dir.path().join("x");
        assert_unsquashfs_gives(&img, &out, &src);
    }
}

#[test]
fn unsquashfs_listing_shows_normalized_metadata() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    feature_tree(&src, 4096);
    let img = dir.path().join("img.sqfs");
    run_ok(
        repropack()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["pack", src.to_str().unwrap(), "-o"])
            .arg(&img),
    );
    let o = run_ok(Command::new(&unsquashfs).args(["-lln", "-UTC"]).arg(&img));
    let listing = String::from_utf8_lossy(&o.stdout);
    let mut lines = 0;
    for line in listing.lines().filter(|l| l.contains("squashfs-root")) {
        lines += 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[1], "0/0", "{line}");
        assert_eq!(f[3], "2023-11-14", "{line}");
        assert_eq!(f[4], "22:13", "{line}");
        let mode = f[0];
        match &mode[..1] {
            "d" => assert_eq!(mode, "drwxr-xr-x", "{line}"),
            "l" => assert_eq!(mode, "lrwxrwxrwx", "{line}"),
            "-" if line.contains("tool.sh") => assert_eq!(mode, "-rwxr-xr-x", "{line}"),
            "-" => assert_eq!(mode, "-rw-r--r--", "{line}"),
            other => panic!("unexpected kind {other} in {line}"),
        }
    }
    // Root + every entry of the source.
    assert_eq!(lines, Tree::of(&src).nodes.len());
    let hl = listing
        .lines()
        .find(|l| l.ends_with("other/deeper/hl"))
        .unwrap();
    assert!(hl.contains(" 12 "), "hard link keeps its size: {hl}");
}

#[test]
fn unsquashfs_reports_compressor_block_size_and_mkfs_time() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    feature_tree(&src, 4096);
    for (comp, bs, name) in [
        ("gzip", "128K", "gzip"),
        ("zstd:3", "1M", "zstd"),
        ("xz", "64K", "xz"),
        ("lz4", "4096", "lz4"),
    ] {
        let img = dir.path().join(format!("{name}.sqfs"));
        run_ok(
            repropack()
                .args([
                    "pack",
                    src.to_str().unwrap(),
                    "--mtime",
                    "1234567890",
                    "--comp",
                    comp,
                    "--block-size",
                    bs,
                    "-o",
                ])
                .arg(&img),
        );
        let o = run_ok(Command::new(&unsquashfs).args(["-s", "-UTC"]).arg(&img));
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(&format!("Compression {name}")), "{s}");
        let bytes = repropack::format::squashfs::parse_block_size(bs).unwrap();
        assert!(s.contains(&format!("Block size {bytes}")), "{s}");
        assert!(s.contains("Fri Feb 13 23:31:30 2009"), "{s}");
        assert!(s.contains("Filesystem is exportable via NFS"), "{s}");
    }
}

#[test]
fn rdsquashfs_and_sqfs2tar_see_the_source_tree() {
    let Some(rdsquashfs) = tool("rdsquashfs") else {
        return;
    };
    let Some(sqfs2tar) = tool("sqfs2tar") else {
        return;
    };
    let Some(gnutar) = tool("tar") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (src, img) = packed_feature_tree(dir.path(), 4096, &["--comp", "zstd"]);
    let out = dir.path().join("rd");
    std::fs::create_dir(&out).unwrap();
    run_ok(
        Command::new(&rdsquashfs)
            .args(["-q", "-C", "-u", "/", "-p"])
            .arg(&out)
            .arg(&img),
    );
    // rdsquashfs unpacks hard links as copies; check the inodes instead.
    assert_same_tree(&src, &out, false);
    let mut numbers = Vec::new();
    for member in ["/links/target", "/links/hl2", "/other/deeper/hl"] {
        let o = run_ok(Command::new(&rdsquashfs).args(["-s", member]).arg(&img));
        let stat = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(stat.contains("Hard link count: 3"), "{stat}");
        let number = stat
            .lines()
            .find(|l| l.starts_with("Inode number:"))
            .unwrap()
            .to_string();
        numbers.push(number);
    }
    assert!(numbers.windows(2).all(|w| w[0] == w[1]), "{numbers:?}");

    let tarball = dir.path().join("img.tar");
    let o = run_ok(Command::new(&sqfs2tar).arg(&img));
    std::fs::write(&tarball, o.stdout).unwrap();
    let out2 = dir.path().join("tarx");
    std::fs::create_dir(&out2).unwrap();
    run_ok(
        Command::new(&gnutar)
            .arg("-xpf")
            .arg(&tarball)
            .arg("-C")
            .arg(&out2),
    );
    assert_same_tree(&src, &out2, true);
}

#[test]
fn backhand_reads_the_source_tree() {
    use backhand::{FilesystemReader, InnerNode};
    let dir = tempfile::tempdir().unwrap();
    let (src, img) = packed_feature_tree(dir.path(), 4096, &[]);
    let reader = std::io::BufReader::new(std::fs::File::open(&img).unwrap());
    let fs = FilesystemReader::from_reader(reader).unwrap();
    let want = Tree::of(&src).without_root().normalized();
    let mut seen = 0;
    for node in fs.files() {
        let rel = node.fullpath.strip_prefix("/").unwrap();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let key = rel.as_os_str().as_bytes().to_vec();
        let expected = want
            .nodes
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected {rel:?}"));
        seen += 1;
        let mode = u32::from(node.header.permissions);
        match (&node.inner, expected.kind) {
            (InnerNode::Dir(_), Kind::Dir) => assert_eq!(Some(mode), expected.perm),
            (InnerNode::File(f), Kind::File) => {
                assert_eq!(Some(mode), expected.perm, "{rel:?}");
                let (len, fp) = fingerprint(fs.file(f).reader()).unwrap();
                assert_eq!(
                    (Some(len), Some(fp)),
                    (expected.size, expected.content),
                    "{rel:?} content"
                );
            }
            (InnerNode::Symlink(s), Kind::Symlink) => {
                assert_eq!(
                    Some(s.link.as_os_str().as_bytes()),
                    expected.target.as_deref()
                );
            }
            (n, _) => panic!("{rel:?}: got {n:?}, want {expected:?}"),
        }
        assert_eq!((node.header.uid, node.header.gid), (0, 0));
    }
    assert_eq!(seen, want.nodes.len());
}
