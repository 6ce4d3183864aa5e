//! SquashFS images read back by readers that are not ours: unsquashfs
//! (squashfs-tools), rdsquashfs and sqfs2tar (squashfs-tools-ng) and
//! backhand, compared with the source tree after the packing policy.

mod squashfs_util;

use std::path::Path;
use std::process::Command;

use squashfs_util::*;

fn packed_feature_tree(
    dir: &Path,
    bs: usize,
    extra: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = dir.join("src");
    feature_tree(&src, bs);
    let img = dir.join("img.squashfs");
    let bs_arg = bs.to_string();
    let mut args = vec![src.to_str().unwrap(), "--block-size", &bs_arg];
    args.extend_from_slice(extra);
    pack(&img, &args);
    (src, img)
}

#[test]
fn unsquashfs_extracts_the_source_tree() {
    let Some(unsquashfs) = tool("unsquashfs") else {
        return;
    };
    for bs in [4096usize, 131072] {
        let dir = tempfile::tempdir().unwrap();
        let (src, img) = packed_feature_tree(dir.path(), bs, &[]);
        let out = dir.path().join("x");
        assert_unsquashfs_gives(&unsquashfs, &img, &out, &src);
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
    run(bin()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["pack", src.to_str().unwrap(), "-o"])
        .arg(&img));
    let o = run(Command::new(&unsquashfs).args(["-lln", "-UTC"]).arg(&img));
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
    let (entries, _) = snapshot(&src);
    assert_eq!(lines, entries.len() + 1);
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
        run(bin()
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
            .arg(&img));
        let o = run(Command::new(&unsquashfs).args(["-s", "-UTC"]).arg(&img));
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(&format!("Compression {name}")), "{s}");
        let bytes = repropack::squashfs::parse_block_size(bs).unwrap();
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
    run(Command::new(&rdsquashfs)
        .args(["-q", "-C", "-u", "/", "-p"])
        .arg(&out)
        .arg(&img));
    // rdsquashfs unpacks hard links as copies; check the inodes instead.
    assert_same_tree_links(&src, &out, false);
    let mut numbers = Vec::new();
    for member in ["/links/target", "/links/hl2", "/other/deeper/hl"] {
        let o = run(Command::new(&rdsquashfs).args(["-s", member]).arg(&img));
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
    let o = run(Command::new(&sqfs2tar).arg(&img));
    std::fs::write(&tarball, o.stdout).unwrap();
    let out2 = dir.path().join("tarx");
    std::fs::create_dir(&out2).unwrap();
    run(Command::new(&gnutar)
        .arg("-xpf")
        .arg(&tarball)
        .arg("-C")
        .arg(&out2));
    assert_same_tree(&src, &out2);
}

#[test]
fn backhand_reads_the_source_tree() {
    use backhand::{FilesystemReader, InnerNode};
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let (src, img) = packed_feature_tree(dir.path(), 4096, &[]);
    let reader = std::io::BufReader::new(std::fs::File::open(&img).unwrap());
    let fs = FilesystemReader::from_reader(reader).unwrap();
    let (want, _) = normalized(&src);
    let mut seen = 0;
    for node in fs.files() {
        let rel = node.fullpath.strip_prefix("/").unwrap();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let key = rel.as_os_str().as_bytes().to_vec();
        let expected = want
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected {rel:?}"));
        seen += 1;
        let mode = u32::from(node.header.permissions);
        match (&node.inner, expected) {
            (InnerNode::Dir(_), Node::Dir(m)) => assert_eq!(mode, *m),
            (InnerNode::File(f), Node::File(m, content)) => {
                assert_eq!(mode, *m, "{rel:?}");
                let mut got = Vec::new();
                let mut r = fs.file(f).reader();
                std::io::Read::read_to_end(&mut r, &mut got).unwrap();
                assert!(got == *content, "{rel:?} content");
            }
            (InnerNode::Symlink(s), Node::Symlink(t)) => {
                assert_eq!(s.link.as_os_str().as_bytes(), &t[..]);
            }
            (n, e) => panic!("{rel:?}: got {n:?}, want {e:?}"),
        }
        assert_eq!((node.header.uid, node.header.gid), (0, 0));
    }
    assert_eq!(seen, want.len());
}
