//! Our SquashFS reader against images it must read and images it must
//! refuse: long symlink targets (which unsquashfs and the kernel read),
//! absurd superblock counts and offsets, directory loops and inodes reached
//! more often than their link count allows. Refusals exit 3 naming the
//! field, table or directory, stay within a 512 MiB address space, and
//! leave nothing behind.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{output_in_512_mib, repropack, run_ok, stderr, stdout};
use crate::support::exit;
use crate::support::rawtar::patch_unique;
use crate::support::sqfs_check::squash_patchable;
use crate::support::tool::have_tool;

/// Superblock field offsets (squashfs-tools-ng `doc/format.adoc`, §3),
/// written down here so the tests do not take them from the code under test.
const INODE_COUNT: usize = 4;
const BLOCK_SIZE: usize = 12;
const FRAGMENT_COUNT: usize = 16;
const COMPRESSOR: usize = 20;
const ID_COUNT: usize = 26;
const ROOT_INODE: usize = 32;
const BYTES_USED: usize = 40;
const ID_TABLE: usize = 48;
const INODE_TABLE: usize = 64;
const DIRECTORY_TABLE: usize = 72;

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// mksquashfs of `src` with uncompressed metadata (so the tests can find
/// and patch records), fixed times and owners.
fn squash(src: &Path, out: &Path) -> Vec<u8> {
    squash_patchable(src, out, &[])
}

/// `digest` and `extract` of `image` both exit 3 within 512 MiB with a
/// message holding every word of `want`; extract leaves its parent as it was.
fn assert_malformed(image: &[u8], name: &str, want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join(format!("{name}.sqfs"));
    fs::write(&img, image).unwrap();
    let parent = dir.path().join("parent");
    fs::create_dir(&parent).unwrap();
    let digest = output_in_512_mib(repropack().arg("digest").arg(&img));
    let extract = output_in_512_mib(repropack().arg("extract").arg(&img).arg(parent.join("out")));
    for (cmd, out) in [("digest", &digest), ("extract", &extract)] {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(exit::INPUT), "{name}: {cmd}: {err}");
        for w in want {
            assert!(err.contains(w), "{name}: {cmd}: {err:?} lacks {w:?}");
        }
    }
    let left: Vec<_> = fs::read_dir(&parent).unwrap().collect();
    assert!(left.is_empty(), "{name}: extract left {left:?}");
}

#[test]
fn long_symlink_targets_read_back_as_unsquashfs_sees_them() {
    if !have_tool("unsquashfs") || !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let t300 = "d/".repeat(150);
    let t4095 = format!("{}x", "e/".repeat(2047));
    assert_eq!((t300.len(), t4095.len()), (300, 4095));
    symlink(&t300, src.join("l300")).unwrap();
    symlink(&t4095, src.join("l4095")).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let ours = dir.path().join("ours.sqfs");
    run_ok(repropack().arg("pack").arg(&src).arg("-o").arg(&ours));
    let theirs = dir.path().join("theirs.sqfs");
    squash(&src, &theirs);
    let want_digest = stdout(&run_ok(repropack().arg("digest").arg(&src)));
    for img in [&ours, &theirs] {
        // unsquashfs is the independent judge of what the image holds.
        let un = dir.path().join("un");
        let _ = fs::remove_dir_all(&un);
        run_ok(
            Command::new("unsquashfs")
                .arg("-q")
                .arg("-n")
                .arg("-d")
                .arg(&un)
                .arg(img),
        );
        let out = dir.path().join("out");
        let _ = fs::remove_dir_all(&out);
        run_ok(repropack().arg("extract").arg(img).arg(&out));
        for (name, target) in [("l300", &t300), ("l4095", &t4095)] {
            assert_eq!(
                fs::read_link(un.join(name)).unwrap().to_str(),
                Some(target.as_str())
            );
            assert_eq!(
                fs::read_link(out.join(name)).unwrap().to_str(),
                Some(target.as_str())
            );
        }
        if img == &ours {
            let got = stdout(&run_ok(repropack().arg("digest").arg(img)));
            assert_eq!(got, want_digest);
        }
    }
}

#[test]
fn absurd_superblock_counts_and_offsets_are_malformed_in_bounded_memory() {
    if !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..20 {
        fs::write(src.join(format!("f{i}")), vec![i as u8; 1000 + i]).unwrap();
    }
    let good = squash(&src, &dir.path().join("good.sqfs"));
    let used = u64_at(&good, BYTES_USED);
    let patched = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "inode-count",
            patched(INODE_COUNT, &u32::MAX.to_le_bytes()),
            vec!["inode_count"],
        ),
        (
            "fragment-count",
            patched(FRAGMENT_COUNT, &u32::MAX.to_le_bytes()),
            vec!["fragment table block list", "bytes_used"],
        ),
        (
            "no-fragments-declared",
            patched(FRAGMENT_COUNT, &0u32.to_le_bytes()),
            vec!["fragment table", "has 0"],
        ),
        (
            "id-count",
            patched(ID_COUNT, &u16::MAX.to_le_bytes()),
            vec!["id table"],
        ),
        (
            "id-table-at-end",
            patched(ID_TABLE, &(used - 4).to_le_bytes()),
            vec!["id table", "bytes_used"],
        ),
        (
            "directory-table-far",
            patched(DIRECTORY_TABLE, &(1u64 << 40).to_le_bytes()),
            vec!["directory_table_start"],
        ),
        (
            "inode-table-at-0",
            patched(INODE_TABLE, &0u64.to_le_bytes()),
            vec!["inode_table_start"],
        ),
        (
            "root-inode-far",
            patched(ROOT_INODE, &((1u64 << 40) << 16).to_le_bytes()),
            vec!["inode metadata block", "outside the table"],
        ),
        (
            "block-size-1g",
            patched(BLOCK_SIZE, &(1u32 << 30).to_le_bytes()),
            vec!["block size"],
        ),
        (
            "bytes-used-past-end",
            patched(BYTES_USED, &(1u64 << 40).to_le_bytes()),
            vec!["bytes_used"],
        ),
        (
            "lzo",
            patched(COMPRESSOR, &3u16.to_le_bytes()),
            vec!["unsupported compressor lzo"],
        ),
        (
            "truncated-to-superblock",
            good[..96].to_vec(),
            vec!["squashfs"],
        ),
    ];
    for (name, image, want) in &cases {
        assert_malformed(image, name, want);
    }
}

/// The image of a root holding directory `QQ` (with a file) and the
/// position of `QQ`'s name, with the root inode's reference and number.
fn image_with_dir() -> (tempfile::TempDir, Vec<u8>, usize, u64, u32) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("QQ")).unwrap();
    fs::write(src.join("QQ/inner"), b"x").unwrap();
    let image = squash(&src, &dir.path().join("d.sqfs"));
    let name_at = image.windows(2).position(|w| w == b"QQ").unwrap();
    let root_ref = u64_at(&image, ROOT_INODE);
    // With -noI the inode table's blocks are stored raw behind their 2-byte
    // headers; the root is in the first block of this small image.
    assert_eq!(root_ref >> 16, 0);
    let root_at = u64_at(&image, INODE_TABLE) as usize + 2 + (root_ref & 0xFFFF) as usize;
    let root_number = u32_at(&image, root_at + 12);
    assert_eq!(root_number, u32_at(&image, INODE_COUNT));
    (dir, image, name_at, root_ref, root_number)
}

#[test]
fn a_directory_entry_leading_back_to_the_root_is_a_loop() {
    if !have_tool("mksquashfs") {
        return;
    }
    let (_dir, mut image, name_at, root_ref, root_number) = image_with_dir();
    // QQ is the root's only entry: its header (12 bytes) and entry (8)
    // precede the name (§6). Point the entry at the root inode.
    let entry = name_at - 8;
    let header = entry - 12;
    image[header + 4..header + 8].copy_from_slice(&0u32.to_le_bytes());
    image[header + 8..header + 12].copy_from_slice(&root_number.to_le_bytes());
    image[entry..entry + 2].copy_from_slice(&((root_ref & 0xFFFF) as u16).to_le_bytes());
    image[entry + 2..entry + 4].copy_from_slice(&0i16.to_le_bytes());
    assert_malformed(&image, "loop", &["\"QQ\"", "reached twice (a loop)"]);
}

#[test]
fn an_inode_with_one_link_reached_twice_is_malformed() {
    if !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("AA"), b"first").unwrap();
    fs::write(src.join("BB"), b"second").unwrap();
    let mut image = squash(&src, &dir.path().join("l.sqfs"));
    // Both entries follow one header; give BB the inode offset and number
    // delta of AA.
    let a = image.windows(2).position(|w| w == b"AA").unwrap() - 8;
    let b = image.windows(2).position(|w| w == b"BB").unwrap() - 8;
    let a_fields: Vec<u8> = image[a..a + 4].to_vec();
    image[b..b + 4].copy_from_slice(&a_fields);
    patch_unique(&mut image, b"BB", b"BC");
    assert_malformed(
        &image,
        "twice",
        &["\"BC\"", "one link but is reached twice"],
    );
}

/// Found by fuzzing: a listing header announcing 0xFFFFFFFF + 1 entries
/// (the count is stored minus one) overflowed instead of being refused.
#[test]
fn a_listing_header_announcing_four_billion_entries_is_malformed() {
    if !have_tool("mksquashfs") {
        return;
    }
    let (_dir, mut image, name_at, _, _) = image_with_dir();
    let header = name_at - 8 - 12;
    image[header..header + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_malformed(&image, "count", &["directory \".\"", "4294967296 entries"]);
}
