//! SquashFS images made by `repropack pack` read back identically by readers
//! that are not ours: unsquashfs (listing, superblock, extraction),
//! rdsquashfs (listing, stat, extraction), the Linux kernel (loop mount),
//! sqfs2tar (its tar stream read by the tar crate), and
//! backhand. Each test builds a hostile-but-valid tree in a temp dir; the
//! expected view is computed from the source by an independent walk with the
//! contract's normalization (see `sqfs_check`).
//!
//! Tests that need squashfs-tools / squashfs-tools-ng fail when `CI` is set
//! and the tools are missing, and skip with a message otherwise.

mod sqfs_check;

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use sqfs_check::{
    PackSpec, Producer, Readers, Rng, all_tools_available, check_image, expected_tree,
    normalize_source_modes, pack, path_of, scratch, tool_available,
};

/// The producer under test.
const PRODUCER: Producer = Producer::Repropack;

const EPOCH: u64 = 1_234_567_890;
const BLOCK: usize = 128 * 1024;

fn write(root: &Path, rel: &[u8], data: &[u8]) {
    let p = path_of(root, rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(&p, data).expect("write file");
}

fn chmod(root: &Path, rel: &[u8], mode: u32) {
    fs::set_permissions(path_of(root, rel), fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every awkward-but-valid shape from issue 3 except the two big ones
/// (they have their own tests): empty dir and file, one block, block+1,
/// all zeros, 255-byte and non-UTF-8 names, deep nesting, dangling and long
/// symlinks, hard links across directories, duplicate files (block-sized and
/// fragment-sized), source modes that need normalizing, and a spread of sizes.
fn hostile_corpus(root: &Path) {
    let mut rng = Rng::new(7);
    fs::create_dir_all(root.join("empty_dir")).expect("mkdir");
    write(root, b"empty_file", b"");
    write(root, b"sizes/one_block", &rng.text(BLOCK));
    write(root, b"sizes/block_plus_one", &rng.text(BLOCK + 1));
    write(root, b"sizes/block_minus_one", &rng.text(BLOCK - 1));
    write(root, b"sizes/one_byte", b"x");
    write(root, b"sizes/zeros", &vec![0u8; 3 * BLOCK + 100]);
    write(root, b"sizes/zero_block_then_data", &{
        let mut v = vec![0u8; BLOCK];
        v.extend(rng.text(BLOCK + 17));
        v
    });
    let mut incompressible = vec![0u8; 2 * BLOCK + 5];
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

    write(root, b"hard/a/first", &rng.text(BLOCK + 5000));
    fs::create_dir_all(root.join("hard/b/c")).expect("mkdir");
    fs::hard_link(root.join("hard/a/first"), root.join("hard/b/second")).expect("link");
    fs::hard_link(root.join("hard/a/first"), root.join("hard/b/c/third")).expect("link");
    write(root, b"hard/small", b"small hard-linked file");
    fs::hard_link(root.join("hard/small"), root.join("hard/a/small_too")).expect("link");

    let dup_big = rng.text(2 * BLOCK + 777);
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
            2 => rng.below(BLOCK as u64) as usize,
            3 => BLOCK + rng.below(3 * BLOCK as u64) as usize,
            _ => rng.below(40_000) as usize,
        };
        write(
            root,
            format!("mixed/{}/f{i:03}", i % 7).as_bytes(),
            &rng.text(size),
        );
    }
}

fn assert_clean(what: &str, errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{what}: {} difference(s) between the image and its source:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

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
    if !all_tools_available() || !tool_available("mksquashfs") {
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
    ] {
        let mut spec = PackSpec::new(EPOCH);
        spec.comp = comp.to_string();
        spec.block_size = block;
        pack_and_check(PRODUCER, src.path(), &spec, Readers::ALL);
    }
}

fn mixed_tree(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    for i in 0..400 {
        let size = match i % 4 {
            0 => rng.below(2000),
            1 => rng.below(60_000),
            2 => rng.below(3 * BLOCK as u64),
            _ => 0,
        } as usize;
        write(
            root,
            format!("t{}/u{}/f{i}", i % 5, i % 3).as_bytes(),
            &rng.text(size),
        );
    }
}

#[test]
fn jobs_count_does_not_change_bytes() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    mixed_tree(src.path(), 11);
    let out = scratch();
    let mut hashes = Vec::new();
    for jobs in [1, 2, 8] {
        let mut spec = PackSpec::new(EPOCH);
        spec.jobs = Some(jobs);
        let img = out.path().join(format!("j{jobs}.squashfs"));
        hashes.push((jobs, pack(PRODUCER, src.path(), &img, &spec)));
    }
    assert!(
        hashes.iter().all(|(_, h)| *h == hashes[0].1),
        "image bytes depend on --jobs: {hashes:?}"
    );
    // The bytes are a readable image of the tree (not, say, empty).
    let spec = PackSpec::new(EPOCH);
    let errs = check_image(
        &out.path().join("j1.squashfs"),
        &expected_tree(src.path(), EPOCH),
        &spec.expect(),
        Readers {
            kernel: true,
            listings: true,
            unsquashfs_extract: true,
            rdsquashfs_extract: false,
            sqfs2tar: false,
            backhand: true,
        },
    );
    assert_clean("--jobs 1 image", errs);
}

/// Builds the logical tree of [`mixed_tree`] plus links, creating entries in
/// an order shuffled by `seed`, with random mtimes/atimes and modes that
/// normalize to the same value.
fn shuffled_tree(root: &Path, seed: u64) {
    let staging = scratch();
    mixed_tree(staging.path(), 11);
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

/// Where backhand says each file's data lives: (blocks_start, block sizes,
/// fragment index, offset in the fragment).
fn data_locations(img: &Path) -> std::collections::BTreeMap<Vec<u8>, (u64, String, u32, u32)> {
    let f = std::io::BufReader::new(File::open(img).expect("open image"));
    let fs = backhand::FilesystemReader::from_reader(f).expect("backhand reads the image");
    let mut out = std::collections::BTreeMap::new();
    for node in fs.files() {
        if let backhand::InnerNode::File(file) = &node.inner {
            out.insert(
                node.fullpath.as_os_str().as_bytes().to_vec(),
                (
                    file.blocks_start(),
                    format!("{:?}", file.block_sizes()),
                    file.frag_index() as u32,
                    file.block_offset(),
                ),
            );
        }
    }
    out
}

#[test]
fn duplicate_files_share_data_unless_no_dedup() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    let mut rng = Rng::new(5);
    let big = rng.text(3 * BLOCK + 999);
    let small = rng.text(700);
    for p in [&b"a/big"[..], b"b/big_copy", b"c/d/big_again"] {
        write(src.path(), p, &big);
    }
    for p in [&b"a/small"[..], b"b/small_copy"] {
        write(src.path(), p, &small);
    }
    write(src.path(), b"other", &rng.text(2 * BLOCK));
    let out = scratch();
    let mut sizes = Vec::new();
    for no_dedup in [false, true] {
        let mut spec = PackSpec::new(EPOCH);
        spec.no_dedup = no_dedup;
        let img = out.path().join(format!("dedup-{no_dedup}.squashfs"));
        pack(PRODUCER, src.path(), &img, &spec);
        assert_clean(
            &format!("no_dedup={no_dedup}"),
            check_image(
                &img,
                &expected_tree(src.path(), EPOCH),
                &spec.expect(),
                Readers {
                    rdsquashfs_extract: false,
                    ..Readers::ALL
                },
            ),
        );
        let loc = data_locations(&img);
        let at = |p: &str| loc[p.as_bytes()].clone();
        let big_shared = at("/a/big") == at("/b/big_copy") && at("/a/big") == at("/c/d/big_again");
        let small_shared = at("/a/small") == at("/b/small_copy");
        assert_eq!(
            (big_shared, small_shared),
            (!no_dedup, !no_dedup),
            "no_dedup={no_dedup}: duplicates share data (big, small)? locations: {loc:?}"
        );
        sizes.push(fs::metadata(&img).expect("stat").len());
    }
    assert!(
        sizes[0] < sizes[1],
        "deduplicated image ({}) is not smaller than the --no-dedup one ({})",
        sizes[0],
        sizes[1]
    );
}
