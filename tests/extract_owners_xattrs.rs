//! `extract --same-owner --xattrs` of a SquashFS image mksquashfs made
//! (which keeps owners and xattrs by default) gives the tree `unsquashfs
//! -xattrs` restores, as stat and getfattr see both.

use std::fs;
use std::process::Command;

use crate::support::bin::{code, repropack, run_ok, stderr, stdout};
use crate::support::exit;
use crate::support::rootfs::{am_root, have_all, owner_xattr_dump, rootfs_tree};

#[test]
fn extract_of_a_mksquashfs_image_restores_what_unsquashfs_restores() {
    if !am_root() || !have_all(&["mksquashfs", "unsquashfs", "getfattr", "setcap", "mknod"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    rootfs_tree(&src, false);
    let img = work.path().join("m.sqfs");
    run_ok(
        Command::new("mksquashfs")
            .arg(&src)
            .arg(&img)
            .args(["-quiet", "-noappend", "-xattrs"]),
    );
    let reference = work.path().join("unsquashfs");
    run_ok(
        Command::new("unsquashfs")
            .args(["-q", "-n", "-xattrs", "-d"])
            .arg(&reference)
            .arg(&img),
    );
    let want = owner_xattr_dump(&reference);
    for needle in [
        "./home/alice 1000:1000 700 directory",
        "./etc/shadow 0:42 640 regular file",
        "./bin/su 0:0 4755 regular file",
        "security.capability=0x",
        "trusted.overlay.opaque=0x79",
    ] {
        assert!(
            want.contains(needle),
            "{needle:?} not in unsquashfs' tree:\n{want}"
        );
    }
    let ours = work.path().join("ours");
    let res = repropack()
        .args([
            "extract",
            "--same-owner",
            "--xattrs",
            "--keep-special-bits",
            "--specials",
        ])
        .arg(&img)
        .arg(&ours)
        .output()
        .unwrap();
    assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
    assert_eq!(owner_xattr_dump(&ours), want);

    // The image's tree digest with owners and xattrs kept is the source's.
    let digest = |input: &std::path::Path| {
        let o = repropack()
            .args(["digest", "--rootfs"])
            .arg(input)
            .output()
            .unwrap();
        assert_eq!(code(&o), exit::OK, "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(digest(&img), digest(&src));
}
