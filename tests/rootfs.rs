//! Root filesystems in SquashFS: kept owners, special bits, file
//! capabilities and extended attributes, checked by unsquashfs, getfattr,
//! getcap, rdsquashfs, the kernel and against mksquashfs and tar2sqfs on
//! the same tree; the safety rule for special bits under replaced owners;
//! `--no-hardlinks`; byte identity; our reader on mksquashfs's xattrs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{code, pack, repropack, run_ok, stderr};
use crate::support::exit;
use crate::support::hash::hex;
use crate::support::rootfs::{am_root, getcap, getfattr_dump, have_all, listing, rootfs_tree};
use crate::support::sqfs_check::mount;

/// A rootfs tree at `dir/src` (root directory 0755 root:root, as a real
/// root filesystem's and as mksquashfs copies it to the image's root).
fn source(dir: &Path, reverse: bool) -> std::path::PathBuf {
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    rootfs_tree(&src, reverse);
    src
}

fn mksquashfs(src: &Path, img: &Path) {
    // Owners and xattrs are kept by default.
    run_ok(Command::new("mksquashfs").arg(src).arg(img).args([
        "-noappend",
        "-quiet",
        "-no-progress",
    ]));
}

fn unsquashfs_x(img: &Path, dest: &Path) {
    run_ok(
        Command::new("unsquashfs")
            .args(["-xattrs", "-no-progress", "-d"])
            .arg(dest)
            .arg(img),
    );
}

#[test]
fn rootfs_image_matches_mksquashfs_for_unsquashfs_getfattr_and_getcap() {
    if !am_root() || !have_all(&["mksquashfs", "unsquashfs", "getfattr", "getcap"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let ours = dir.path().join("ours.sqfs");
    let theirs = dir.path().join("mksquashfs.sqfs");
    pack(&ours, &[src.to_str().unwrap(), "--rootfs"]);
    mksquashfs(&src, &theirs);
    let ours_listing = listing(&ours);
    assert_eq!(ours_listing, listing(&theirs));
    for line in [
        "-rwsr-xr-x 0/0 9 squashfs-root/bin/su",
        "-rwxr-sr-x 0/42 6 squashfs-root/sbin/unix_chkpwd",
        "-rw-r----- 0/42 15 squashfs-root/etc/shadow",
        "-rw-rw-r-- 0/43 0 squashfs-root/var/log/wtmp",
        "drwx------ 1000/1000 - squashfs-root/home/alice",
        "crw-rw-rw- 0/0 1,3 squashfs-root/dev/null",
    ] {
        assert!(ours_listing.contains(line), "{line} not in\n{ours_listing}");
    }
    let want = getfattr_dump(&src);
    assert!(want.contains("security.capability="), "{want}");
    unsquashfs_x(&ours, &dir.path().join("ours"));
    unsquashfs_x(&theirs, &dir.path().join("theirs"));
    assert_eq!(getfattr_dump(&dir.path().join("ours")), want);
    assert_eq!(getfattr_dump(&dir.path().join("theirs")), want);
    assert_eq!(getcap(&dir.path().join("ours/bin/ping")), "cap_net_raw=ep");
}

#[test]
fn rdsquashfs_lists_each_paths_attributes() {
    if !am_root() || !have_all(&["rdsquashfs", "getfattr"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let img = dir.path().join("img.sqfs");
    pack(&img, &[src.to_str().unwrap(), "--rootfs"]);
    for path in [
        "home/alice/notes",
        "etc/hostname",
        "lib/lib07.so",
        "home/alice",
    ] {
        let o = run_ok(
            Command::new("rdsquashfs")
                .arg("-x")
                .arg(format!("/{path}"))
                .arg(&img),
        );
        let mut got: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        got.sort();
        // getfattr's text form of the same (all values here are text).
        let o = run_ok(
            Command::new("getfattr")
                .args(["-h", "-d", "-m", "-", "--absolute-names"])
                .arg(src.join(path)),
        );
        let mut want: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once('=').unwrap_or((l, "\"\""));
                format!("{name}={}", value.trim_matches('"').replace("\\000", ""))
            })
            .collect();
        want.sort();
        let got: Vec<String> = got.iter().map(|l| l.replace('\0', "")).collect();
        assert_eq!(got, want, "{path}");
    }
}

#[test]
fn kernel_mount_shows_owners_modes_capabilities_and_xattrs() {
    if !am_root() || !have_all(&["getfattr", "getcap"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let img = dir.path().join("img.sqfs");
    pack(&img, &[src.to_str().unwrap(), "--rootfs"]);
    let Some(m) = mount(&img, &dir.path().join("mnt")).unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    assert_eq!(getfattr_dump(&m.dir), getfattr_dump(&src));
    assert_eq!(getcap(&m.dir.join("bin/ping")), "cap_net_raw=ep");
    for (path, mode, uid, gid) in [
        ("bin/su", 0o4755, 0, 0),
        ("sbin/unix_chkpwd", 0o2755, 0, 42),
        ("etc/shadow", 0o640, 0, 42),
        ("home/alice/notes", 0o600, 1000, 1000),
    ] {
        let meta = fs::symlink_metadata(m.dir.join(path)).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (mode, uid, gid),
            "{path}"
        );
    }
}

/// Every attribute our reader yields, in `getfattr -R -d -m - -e hex`'s
/// form, sorted as [`getfattr_dump`] sorts.
fn dump_by_our_reader(img: &Path) -> String {
    let archive = repropack::format::open(img).unwrap();
    let mut blocks = Vec::new();
    archive
        .for_each_entry(|entry, _| {
            let path = repropack::format::normalize_path(entry.path()).unwrap_or_default();
            if !entry.xattrs().is_empty() && !path.is_empty() {
                let mut lines = vec![format!("# file: {}", String::from_utf8_lossy(&path))];
                let mut attrs: Vec<String> = entry
                    .xattrs()
                    .iter()
                    .map(|(n, v)| format!("{}=0x{}", String::from_utf8_lossy(n), hex(v)))
                    .collect();
                attrs.sort_unstable();
                lines.extend(attrs);
                blocks.push(lines.join("\n"));
            }
            Ok::<(), repropack::format::ArchiveError>(())
        })
        .unwrap();
    blocks.sort_unstable();
    blocks.join("\n\n")
}

#[test]
fn our_reader_reads_mksquashfs_xattrs_and_digest_and_extract_work() {
    if !am_root() || !have_all(&["mksquashfs", "getfattr"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    // Values of 1 byte to 60 KiB (mksquashfs stores the large ones out of
    // line, and repeats by reference), 300 files sharing one set.
    let big = dir.path().join("big");
    fs::create_dir(&big).unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let many = shm.as_ref().map_or(big.as_path(), |d| d.path());
    for i in 0..300 {
        let f = many.join(format!("f{i:03}"));
        fs::write(&f, i.to_string()).unwrap();
        crate::support::rootfs::setfattr(
            &f,
            "user.shared",
            &crate::support::rootfs::value(5, 1000),
        );
        crate::support::rootfs::setfattr(&f, "security.selinux", b"lib_t");
    }
    if shm.is_some() {
        // tmpfs holds values up to 64 KiB; ext4 only a block's worth.
        let f = many.join("f000");
        crate::support::rootfs::setfattr(&f, "user.huge", &crate::support::rootfs::value(6, 60000));
        crate::support::rootfs::setfattr(
            &f,
            "trusted.huge",
            &crate::support::rootfs::value(6, 60000),
        );
    }
    for (tree, name) in [(&src, "rootfs"), (&many.to_path_buf(), "many")] {
        let img = dir.path().join(format!("{name}.sqfs"));
        mksquashfs(tree, &img);
        assert_eq!(dump_by_our_reader(&img), getfattr_dump(tree), "{name}");
        let o = repropack().arg("digest").arg(&img).output().unwrap();
        assert_eq!(code(&o), exit::OK, "{}", stderr(&o));
        let out = dir.path().join(format!("{name}.x"));
        let o = repropack()
            .arg("extract")
            .arg("--specials")
            .arg(&img)
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(code(&o), exit::OK, "{}", stderr(&o));
    }
}

#[test]
fn rootfs_bytes_do_not_depend_on_jobs_creation_order_or_xattr_order() {
    if !am_root() || !have_all(&["getfattr"]) {
        return;
    }
    let mut hashes = BTreeMap::new();
    for reverse in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), reverse);
        for jobs in ["1", "2", "8"] {
            let img = dir.path().join(format!("{jobs}.sqfs"));
            let h = pack(&img, &[src.to_str().unwrap(), "--rootfs", "--jobs", jobs]);
            hashes.insert((reverse, jobs), h);
        }
    }
    let first = hashes.values().next().unwrap().clone();
    assert!(hashes.values().all(|h| *h == first), "{hashes:?}");
}

/// The hash of `pack --rootfs` of [`rootfs_tree`] (its capability given
/// by an xattr file), checked below against unsquashfs and getfattr. A
/// change here is a format change.
const ROOTFS_GOLDEN: &str = "586ffd5d9c103276f30412c5f7a04a64a7245b35c8bb17c55a4bf069bf8e7ebd";

#[test]
fn rootfs_golden_image_keeps_owners_and_xattrs() {
    if !am_root() || !have_all(&["unsquashfs", "getfattr"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let img = dir.path().join("golden.sqfs");
    // The capability comes from an xattr file, in version-2 form: setcap
    // writes version 3 (with a root uid) inside a user namespace, which
    // would move the hash with where the test runs.
    let caps = dir.path().join("caps.dump");
    fs::write(
        &caps,
        "# file: bin/ping\nsecurity.capability=0x0100000200200000000000000000000000000000\n",
    )
    .unwrap();
    let h = pack(
        &img,
        &[
            src.to_str().unwrap(),
            "--rootfs",
            "--mtime",
            "1700000000",
            "--xattr-file",
            caps.to_str().unwrap(),
        ],
    );
    unsquashfs_x(&img, &dir.path().join("x"));
    assert_eq!(getfattr_dump(&dir.path().join("x")), getfattr_dump(&src));
    let l = listing(&img);
    assert!(
        l.contains("-rwxr-sr-x 0/42 5 squashfs-root/bin/chage"),
        "{l}"
    );
    assert_eq!(h, ROOTFS_GOLDEN);
}

#[test]
fn no_hardlinks_gives_the_bytes_of_two_independent_copies() {
    let dir = tempfile::tempdir().unwrap();
    let linked = dir.path().join("linked");
    let copies = dir.path().join("copies");
    for d in [&linked, &copies] {
        fs::create_dir_all(d.join("a")).unwrap();
        fs::create_dir_all(d.join("b")).unwrap();
        fs::write(d.join("a/one"), b"same bytes").unwrap();
    }
    fs::hard_link(linked.join("a/one"), linked.join("b/two")).unwrap();
    fs::write(copies.join("b/two"), b"same bytes").unwrap();
    for ext in ["tar", "sqfs"] {
        let out = |name: &str| dir.path().join(format!("{name}.{ext}"));
        let a = pack(
            &out("linked-nh"),
            &[linked.to_str().unwrap(), "--no-hardlinks"],
        );
        let b = pack(&out("copies"), &[copies.to_str().unwrap()]);
        let c = pack(
            &out("copies-nh"),
            &[copies.to_str().unwrap(), "--no-hardlinks"],
        );
        let d = pack(&out("linked"), &[linked.to_str().unwrap()]);
        assert_eq!(a, b, "{ext}");
        assert_eq!(b, c, "{ext}");
        assert_ne!(
            a, d,
            "{ext}: the hard link is stored without --no-hardlinks"
        );
    }
}

#[test]
fn special_bits_are_dropped_where_the_owner_was_replaced() {
    if !am_root() || !have_all(&["unsquashfs", "tar", "tar2sqfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let tar = dir.path().join("rootfs.tar");
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    let from_dir = ["--keep-modes", "--keep-special-bits", "--specials"];
    for (name, input) in [
        ("dir", vec![src.to_str().unwrap()]),
        ("tar", vec!["--from-tar", tar.to_str().unwrap()]),
    ] {
        let img = dir.path().join(format!("{name}.sqfs"));
        let o = run_ok(
            repropack()
                .arg("pack")
                .args(&input)
                .args(from_dir)
                .arg("-o")
                .arg(&img),
        );
        let warnings = stderr(&o);
        for path in ["sbin/unix_chkpwd", "bin/chage"] {
            assert!(
                warnings
                    .lines()
                    .any(|l| l.contains(path) && l.contains("setgid")),
                "{name}: no warning for {path}: {warnings}"
            );
        }
        assert!(
            !warnings.contains("bin/su:"),
            "{name}: su keeps setuid (owner 0 = --owner 0)"
        );
        let l = listing(&img);
        assert!(
            l.contains("-rwxr-xr-x 0/0 6 squashfs-root/sbin/unix_chkpwd"),
            "{name}\n{l}"
        );
        assert!(
            l.contains("-rwsr-xr-x 0/0 9 squashfs-root/bin/su"),
            "{name}\n{l}"
        );
    }
    // With the owners kept, a tar goes in exactly as tar2sqfs stores it:
    // no entry with another owner or mode.
    let ours = dir.path().join("rootfs.sqfs");
    pack(&ours, &["--from-tar", tar.to_str().unwrap(), "--rootfs"]);
    let theirs = dir.path().join("tar2sqfs.sqfs");
    run_ok(
        Command::new("tar2sqfs")
            .args(["--quiet", "--no-skip", "--force"])
            .arg(&theirs)
            .stdin(fs::File::open(&tar).unwrap()),
    );
    assert_eq!(listing(&ours), listing(&theirs));
}

#[test]
fn xattr_include_and_exclude_choose_attributes_by_name() {
    if !am_root() || !have_all(&["unsquashfs", "getfattr"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let img = dir.path().join("img.sqfs");
    pack(
        &img,
        &[
            src.to_str().unwrap(),
            "--xattr-include",
            "user.*",
            "--xattr-include",
            "security.capability",
            "--xattr-exclude",
            "user.m*",
            "--specials",
        ],
    );
    unsquashfs_x(&img, &dir.path().join("x"));
    let got = getfattr_dump(&dir.path().join("x"));
    assert!(got.contains("security.capability="), "{got}");
    assert!(got.contains("user.big="), "{got}");
    for absent in [
        "security.selinux",
        "trusted.",
        "user.medium",
        "user.mime_type",
    ] {
        assert!(!got.contains(absent), "{absent} kept:\n{got}");
    }
}

#[test]
fn an_attribute_squashfs_cannot_store_is_refused_by_name() {
    if !am_root() || !have_all(&["setfattr"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let f = src.join("f");
    fs::write(&f, b"x").unwrap();
    // An access ACL with a named user (a minimal one folds into the mode).
    let acl: Vec<u8> = [
        "02000000", "0100", "0600", "ffffffff", "0200", "0400", "e8030000", "0400", "0400",
        "ffffffff", "1000", "0400", "ffffffff", "2000", "0400", "ffffffff",
    ]
    .concat()
    .as_bytes()
    .chunks(2)
    .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
    .collect();
    crate::support::rootfs::setfattr(&f, "system.posix_acl_access", &acl);
    let img = dir.path().join("img.sqfs");
    let o = repropack()
        .arg("pack")
        .arg(&src)
        .arg("--xattrs")
        .arg("-o")
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(code(&o), exit::INPUT, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("system.posix_acl_access"),
        "{}",
        stderr(&o)
    );
    assert!(!img.exists());
    pack(
        &img,
        &[
            src.to_str().unwrap(),
            "--xattrs",
            "--xattr-exclude",
            "system.*",
        ],
    );
}

#[test]
fn a_malformed_xattr_table_is_refused_naming_its_offset() {
    if !am_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), false);
    let img = dir.path().join("img.sqfs");
    pack(&img, &[src.to_str().unwrap(), "--rootfs"]);
    let bytes = fs::read(&img).unwrap();
    // §3: xattr_id_table_start is the u64 at byte 56.
    let header_at = u64::from_le_bytes(bytes[56..64].try_into().unwrap()) as usize;
    // The set count says none, so every inode's index is out of range; then
    // the key/value start is moved past the header.
    let mut no_sets = bytes.clone();
    no_sets[header_at + 8..header_at + 12].copy_from_slice(&0u32.to_le_bytes());
    let mut bad_start = bytes.clone();
    bad_start[header_at..header_at + 8].copy_from_slice(&(header_at as u64 + 1).to_le_bytes());
    for (name, image, needle) in [
        ("no-sets", no_sets, "xattr id table".to_string()),
        (
            "bad-start",
            bad_start,
            format!("xattr table header at byte {header_at}"),
        ),
    ] {
        let p = dir.path().join(format!("{name}.sqfs"));
        fs::write(&p, image).unwrap();
        let o = repropack().arg("digest").arg(&p).output().unwrap();
        assert_eq!(code(&o), exit::INPUT, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(&needle), "{name}: {}", stderr(&o));
    }
}

/// A real Debian root filesystem, made by `mmdebstrap --variant=minbase`
/// from the Debian archive: `pack --from-tar --rootfs` stores the listing
/// (kinds, modes with setuid/setgid, numeric owners, sizes, device numbers)
/// that tar2sqfs stores for the same tarball, and that GNU tar extracts and
/// mksquashfs packs from disk. This is the tree the safety rule was written
/// for: `/etc/shadow` and the setgid-shadow binaries keep group 42, the
/// login records group utmp. Skipped, saying so, where mmdebstrap cannot
/// reach the archive.
#[test]
fn debian_minbase_rootfs_matches_tar2sqfs_and_mksquashfs() {
    if !am_root() || !have_all(&["mmdebstrap", "tar2sqfs", "mksquashfs", "unsquashfs", "tar"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    let made = Command::new("mmdebstrap")
        .args(["--quiet", "--variant=minbase", "--mode=root", "bookworm"])
        .arg(&tar)
        .arg("http://deb.debian.org/debian")
        .output()
        .unwrap();
    if !made.status.success() {
        eprintln!(
            "skipping: mmdebstrap could not make a root filesystem: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        return;
    }
    let ours = dir.path().join("ours.sqfs");
    let o = repropack()
        .args(["pack", "--rootfs", "--from-tar"])
        .arg(&tar)
        .arg("-o")
        .arg(&ours)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let theirs = dir.path().join("tar2sqfs.sqfs");
    run_ok(
        Command::new("tar2sqfs")
            .args(["-q", "-f", "-c", "gzip"])
            .arg(&theirs)
            .stdin(fs::File::open(&tar).unwrap()),
    );
    let l = listing(&ours);
    assert_eq!(l, listing(&theirs), "ours vs tar2sqfs");
    assert!(l.lines().count() > 5000, "{l}");
    for want in [
        "-rw-r----- 0/42 ",
        "-rwxr-sr-x 0/42 ",
        "-rwsr-xr-x 0/0 ",
        "-rw-rw-r-- 0/43 0 squashfs-root/var/log/wtmp",
    ] {
        assert!(l.contains(want), "{want:?} missing");
    }
    for path in [
        "etc/shadow",
        "usr/bin/chage",
        "usr/sbin/unix_chkpwd",
        "usr/bin/su",
    ] {
        assert!(
            l.contains(&format!("squashfs-root/{path}\n")),
            "{path} missing"
        );
    }
    // The same tree on disk, restored by GNU tar: ours from the directory
    // equals mksquashfs's from it.
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
            .arg(&tar)
            .arg("-C")
            .arg(&tree),
    );
    let from_dir = dir.path().join("dir.sqfs");
    pack(&from_dir, &[tree.to_str().unwrap(), "--rootfs"]);
    let mk = dir.path().join("mksquashfs.sqfs");
    mksquashfs(&tree, &mk);
    assert_eq!(listing(&from_dir), listing(&mk), "ours vs mksquashfs");
    assert_eq!(listing(&from_dir), l, "from the directory vs from the tar");
}
