//! The Linux kernel as an independent reader: loop-mount images and read
//! them through the VFS. Needs root and loop devices; when mounting is not
//! permitted (containers, non-root) the test says so and returns, except
//! under CI without `REPROPACK_SKIP_KERNEL_MOUNT=1`, where it fails.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{pack, run_ok};
use crate::support::fixtures::feature_tree;
use crate::support::sqfs_check::{Mount, assert_same_tree};
use crate::support::tool::tool;

/// The image mounted at `at`, or None when this machine cannot mount and
/// that is allowed (see `sqfs_check::mount`).
fn mount(img: &Path, at: &Path) -> Option<Mount> {
    crate::support::sqfs_check::mount(img, at).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn kernel_reads_the_source_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    feature_tree(&src, 4096);
    let img = dir.path().join("img.sqfs");
    pack(&img, &[src.to_str().unwrap(), "--block-size", "4K"]);
    let Some(m) = mount(&img, &dir.path().join("mnt")) else {
        return;
    };
    assert_same_tree(&src, &m.dir, true);
}

#[test]
fn kernel_finds_every_name_in_a_large_indexed_directory() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let many = src.join("many");
    fs::create_dir_all(&many).unwrap();
    let name = |i: usize| format!("entry_{i:05}_{}", "y".repeat(i % 40));
    for i in 0..20_000 {
        fs::write(many.join(name(i)), i.to_string()).unwrap();
    }
    let img = dir.path().join("img.sqfs");
    pack(&img, &[src.to_str().unwrap()]);
    if let Some(unsquashfs) = tool("unsquashfs") {
        // The listing spans many metadata blocks: extended inode + index.
        let o = run_ok(Command::new(&unsquashfs).arg("-lln").arg(&img));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("/many/"))
                .count(),
            20_000
        );
    }
    let Some(m) = mount(&img, &dir.path().join("mnt")) else {
        return;
    };
    // Each stat is a kernel lookup, which starts at the directory-index
    // record for the name; a wrong index makes names vanish.
    for i in (0..20_000).rev() {
        let meta = fs::metadata(m.dir.join("many").join(name(i)))
            .unwrap_or_else(|e| panic!("{}: {e}", name(i)));
        assert_eq!(meta.len(), i.to_string().len() as u64);
    }
}
