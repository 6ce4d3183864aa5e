//! The Linux kernel as an independent reader: loop-mount images and read
//! them through the VFS. Needs root and loop devices; when mounting is not
//! permitted (containers, non-root) the test says so and returns.

mod squashfs_util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use squashfs_util::*;

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount(img: &Path, at: &Path) -> Option<Mounted> {
    fs::create_dir_all(at).unwrap();
    let o = Command::new("mount")
        .args(["-t", "squashfs", "-o", "loop,ro"])
        .arg(img)
        .arg(at)
        .output()
        .ok()?;
    if o.status.success() {
        Some(Mounted(at.to_path_buf()))
    } else {
        // Under CI a failed mount is a failure, unless .ci/run found that
        // this machine cannot loop-mount at all.
        assert!(
            std::env::var_os("CI").is_none()
                || std::env::var_os("REPROPACK_SKIP_KERNEL_MOUNT").is_some_and(|v| v == "1"),
            "mount failed under CI: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
        eprintln!(
            "skipping kernel check: mount failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
        None
    }
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
    assert_same_tree(&src, &m.0);
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
        let o = run(Command::new(&unsquashfs).arg("-lln").arg(&img));
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
        let meta = fs::metadata(m.0.join("many").join(name(i)))
            .unwrap_or_else(|e| panic!("{}: {e}", name(i)));
        assert_eq!(meta.len(), i.to_string().len() as u64);
    }
}
