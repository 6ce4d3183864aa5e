//! Byte identity, compressors, dedup, sparse files, --from-tar and option
//! errors of `repropack pack --format squashfs`, checked with unsquashfs.

mod squashfs_util;

use std::fs;
use std::path::Path;
use std::process::Command;

use squashfs_util::*;

/// Many small files (fragments), some multi-block ones, in several dirs.
fn mixed_tree(root: &Path, order_seed: u64) {
    let mut names: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..400u64 {
        let len = (noise(2, i)[0] as usize) * 37 + (i as usize % 5) * 40_000;
        names.push((format!("d{}/f{i:03}", i % 7), text(len, i)));
    }
    // Creation order depends on the seed; content does not.
    let perm = noise(names.len() * 2, order_seed);
    for k in (1..names.len()).rev() {
        let j = (usize::from(perm[2 * k]) << 8 | usize::from(perm[2 * k + 1])) % (k + 1);
        names.swap(k, j);
    }
    for (i, (name, data)) in names.iter().enumerate() {
        let p = root.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        let t = filetime::FileTime::from_unix_time(
            1_000_000 + (perm[i % perm.len()] as i64) * 7919 + order_seed as i64,
            0,
        );
        filetime::set_file_mtime(&p, t).unwrap();
    }
}

#[test]
fn jobs_do_not_change_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    mixed_tree(&src, 1);
    feature_tree(&src.join("features"), 4096);
    for comp in ["gzip", "zstd:3"] {
        let hashes: Vec<String> = ["1", "2", "8"]
            .iter()
            .map(|jobs| {
                let img = dir.path().join(format!("j{jobs}.sqfs"));
                pack(
                    &img,
                    &[
                        src.to_str().unwrap(),
                        "--comp",
                        comp,
                        "--block-size",
                        "16K",
                        "--jobs",
                        jobs,
                    ],
                )
            })
            .collect();
        assert_eq!(hashes[0], hashes[1], "{comp}: jobs 1 vs 2");
        assert_eq!(hashes[0], hashes[2], "{comp}: jobs 1 vs 8");
    }
}

#[test]
fn reordered_creation_and_mtimes_give_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    mixed_tree(&a, 11);
    mixed_tree(&b, 12345);
    let ha = pack(&dir.path().join("a.sqfs"), &[a.to_str().unwrap()]);
    let hb = pack(&dir.path().join("b.sqfs"), &[b.to_str().unwrap()]);
    assert_eq!(ha, hb);
}

#[test]
fn every_compressor_round_trips_through_unsquashfs() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    feature_tree(&src, 8192);
    for comp in [
        "gzip", "gzip:1", "gzip:9", "zstd", "zstd:1", "zstd:19", "xz", "xz:0", "lz4", "none",
    ] {
        let img = dir.path().join("img.sqfs");
        pack(
            &img,
            &[src.to_str().unwrap(), "--comp", comp, "--block-size", "8K"],
        );
        let out = dir.path().join(format!("x-{comp}"));
        assert_unsquashfs_gives(&unsquashfs, &img, &out, &src);
    }
}

#[test]
fn duplicate_files_are_stored_once_unless_no_dedup() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let blob = noise(1 << 20, 3);
    for name in ["a", "b", "c"] {
        fs::write(src.join(name), &blob).unwrap();
    }
    let with = dir.path().join("dedup.sqfs");
    let without = dir.path().join("nodedup.sqfs");
    pack(&with, &[src.to_str().unwrap()]);
    pack(&without, &[src.to_str().unwrap(), "--no-dedup"]);
    let (sw, so) = (
        fs::metadata(&with).unwrap().len(),
        fs::metadata(&without).unwrap().len(),
    );
    assert!(sw < (1 << 20) + 64 * 1024, "dedup image {sw}");
    assert!(so > 3 << 20, "no-dedup image {so}");
    for img in [&with, &without] {
        let out = dir
            .path()
            .join(format!("x{}", img.file_name().unwrap().to_string_lossy()));
        assert_unsquashfs_gives(&unsquashfs, img, &out, &src);
    }
    let s = run(Command::new(&unsquashfs).arg("-s").arg(&with));
    assert!(String::from_utf8_lossy(&s.stdout).contains("Duplicates are removed"));
}

#[test]
fn all_zero_blocks_take_no_space() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    // 64 MiB hole plus a little data at the end; 2 MiB of zeros written out.
    let f = fs::File::create(src.join("sparse")).unwrap();
    f.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"tail data", 64 << 20).unwrap();
    fs::write(src.join("zeros"), vec![0u8; 2 << 20]).unwrap();
    let img = dir.path().join("img.sqfs");
    pack(&img, &[src.to_str().unwrap(), "--comp", "none"]);
    // Uncompressed, so anything but sparse blocks would take megabytes.
    assert!(fs::metadata(&img).unwrap().len() < 64 * 1024);
    let out = dir.path().join("x");
    assert_unsquashfs_gives(&unsquashfs, &img, &out, &src);
}

#[test]
fn from_tar_gives_the_same_image_as_the_directory() {
    let Some(gnutar) = tool("tar") else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    feature_tree(&src, 4096);
    mixed_tree(&src.join("mixed"), 5);
    let tarball = dir.path().join("in.tar");
    // Shuffled-looking member order, ./ prefixes, hard links as link members.
    run(Command::new(&gnutar)
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("."));
    for (fmt, ext) in [("squashfs", "sqfs"), ("tar", "tar"), ("tar.gz", "tgz")] {
        let from_dir = pack(
            &dir.path().join(format!("dir.{ext}")),
            &[src.to_str().unwrap(), "--format", fmt],
        );
        let from_tar = pack(
            &dir.path().join(format!("tar.{ext}")),
            &["--from-tar", tarball.to_str().unwrap(), "--format", fmt],
        );
        assert_eq!(from_dir, from_tar, "{fmt}");
    }
    // Excludes prune subtrees the same way.
    let a = pack(
        &dir.path().join("ex1.sqfs"),
        &[
            src.to_str().unwrap(),
            "--exclude",
            "mixed",
            "--exclude",
            "*.sh",
        ],
    );
    let b = pack(
        &dir.path().join("ex2.sqfs"),
        &[
            "--from-tar",
            tarball.to_str().unwrap(),
            "--exclude",
            "mixed",
            "--exclude",
            "*.sh",
        ],
    );
    assert_eq!(a, b);
}

#[test]
fn from_tar_reads_stdin_and_refuses_devices() {
    let dir = tempfile::tempdir().unwrap();
    // A tar with a fifo, built with the tar crate.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Fifo);
    h.set_path("dev/pipe").unwrap();
    h.set_mode(0o644);
    h.set_size(0);
    h.set_cksum();
    builder.append(&h, &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_path("dev/tty9").unwrap();
    h.set_mode(0o620);
    h.set_size(0);
    h.set_device_major(4).unwrap();
    h.set_device_minor(300).unwrap();
    h.set_cksum();
    builder.append(&h, &[][..]).unwrap();
    let bytes = builder.into_inner().unwrap();
    let out = dir.path().join("x.sqfs");
    let mut child = bin()
        .args(["pack", "--from-tar", "-", "-o"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(repropack::exit::INPUT));
    assert!(String::from_utf8_lossy(&o.stderr).contains("dev/pipe"));
    assert!(!out.exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temp litter"
    );
    // With --specials it is packed.
    let mut child = bin()
        .args(["pack", "--specials", "--from-tar", "-", "-o"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    if let Some(unsquashfs) = tool("unsquashfs") {
        let o = run(Command::new(&unsquashfs).arg("-lln").arg(&out));
        let listing = String::from_utf8_lossy(&o.stdout);
        assert!(listing.contains("prw-r--r-- 0/0"), "{listing}");
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("crw-r--r-- 0/0") && l.ends_with("dev/tty9"))
        );
    }
    // unsquashfs -lln prints minors above 255 the old 16-bit way; the
    // kernel and rdsquashfs decode the 32-bit form the format specifies.
    if let Some(rdsquashfs) = tool("rdsquashfs") {
        let o = run(Command::new(&rdsquashfs)
            .args(["-s", "/dev/tty9"])
            .arg(&out));
        let stat = String::from_utf8_lossy(&o.stdout);
        assert!(stat.contains("Device number: 4:300"), "{stat}");
    }
}

#[test]
fn squashfs_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let usage = |args: &[&str], needle: &str| {
        let o = bin().arg("pack").arg(&src).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(repropack::exit::USAGE), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    usage(&["-o", &out("a.tar"), "--comp", "zstd"], "--comp");
    usage(
        &["-o", &out("a.tar.gz"), "--block-size", "64K"],
        "--block-size",
    );
    usage(&["-o", &out("a.tar"), "--no-dedup"], "--no-dedup");
    usage(&["-o", &out("a.sqfs"), "--block-size", "3K"], "block size");
    usage(&["-o", &out("a.sqfs"), "--comp", "brotli"], "brotli");
    usage(
        &["-o", &out("a.sqfs"), "--comp", "gzip:7", "--level", "5"],
        "--level",
    );
    usage(&["-o", &out("a.sqfs"), "--mtime", "4294967296"], "32-bit");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written"
    );
    // --level alone applies to the squashfs compressor.
    let img = dir.path().join("l.sqfs");
    pack(
        &img,
        &[src.to_str().unwrap(), "--comp", "zstd", "--level", "7"],
    );
    let o = run(bin()
        .arg("pack")
        .arg(&src)
        .args([
            "--json",
            "--comp",
            "xz",
            "--block-size",
            "1M",
            "--no-dedup",
            "-o",
        ])
        .arg(dir.path().join("j.sqfs")));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "squashfs");
    assert_eq!(v["options"]["compression"], "xz");
    assert_eq!(v["options"]["level"], 6);
    assert_eq!(v["options"]["block_size"], 1 << 20);
    assert_eq!(v["options"]["dedup"], false);
    if let Some(unsquashfs) = tool("unsquashfs") {
        let s = run(Command::new(&unsquashfs).arg("-s").arg(&img));
        assert!(String::from_utf8_lossy(&s.stdout).contains("compression-level 7"));
    }
}

/// A tar may name a path of any length; staging one of 60 000 components
/// (120 KB) used to overflow the stack. Paths over PATH_MAX - 1 bytes are
/// refused with a short message, and one of exactly 4 095 bytes is packed.
#[test]
fn from_tar_refuses_paths_longer_than_path_max() {
    let dir = tempfile::tempdir().unwrap();
    let tar_with = |path: &str| {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        builder.append_data(&mut h, path, &b"x"[..]).unwrap();
        builder.into_inner().unwrap()
    };
    let pack_tar = |bytes: &[u8], out: &Path| {
        let mut child = bin()
            .args(["pack", "--from-tar", "-", "-o"])
            .arg(out)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = dir.path().join("x.sqfs");

    let deep = format!("{}leaf", "a/".repeat(60_000));
    let o = pack_tar(&tar_with(&deep), &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(repropack::exit::INPUT), "{err}");
    assert!(
        err.contains("120004 bytes") && err.contains("PATH_MAX"),
        "{err}"
    );
    assert!(err.len() < 600, "the message abbreviates the path: {err}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no output, no litter"
    );

    // 20 components of 200 bytes, then a name of 75 or 76 bytes.
    let prefix = format!("{}/", "d".repeat(200)).repeat(20);
    let at_limit = format!("{prefix}{}", "f".repeat(75));
    let over = format!("{prefix}{}", "f".repeat(76));
    assert_eq!(at_limit.len(), 4095);
    let o = pack_tar(&tar_with(&over), &out);
    assert_eq!(o.status.code(), Some(repropack::exit::INPUT));
    assert!(String::from_utf8_lossy(&o.stderr).contains("4096 bytes"));
    assert!(!out.exists());
    let o = pack_tar(&tar_with(&at_limit), &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if let Some(unsquashfs) = tool("unsquashfs") {
        let o = run(Command::new(&unsquashfs).arg("-lln").arg(&out));
        let listing = String::from_utf8_lossy(&o.stdout);
        assert!(
            listing.contains(&format!("squashfs-root/{at_limit}")),
            "{listing}"
        );
    }
}
