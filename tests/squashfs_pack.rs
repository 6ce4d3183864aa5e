//! What `repropack pack --format squashfs` writes: bytes that do not depend
//! on --jobs or creation order, the same image from a tar as from the
//! directory, duplicates stored once, zero blocks as holes, every
//! compressor, and option errors. Images are read back by unsquashfs and,
//! where the behaviour is about the image as a whole, by every reader of
//! the independent checker.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{pack, repropack, run_ok};
use crate::support::fixtures::{feature_tree, hostile_corpus, spread_tree, write};
use crate::support::rng::Rng;
use crate::support::sqfs_check::{
    PackSpec, Readers, all_tools_available, assert_clean, assert_unsquashfs_gives, check_image,
    expected_tree, scratch,
};
use crate::support::tool::tool;

const EPOCH: u64 = 1_234_567_890;
const BLOCK: usize = 128 * 1024;

/// Many small files (fragments), some multi-block ones, in several dirs;
/// creation order and mtimes depend on `order_seed`, content does not.
fn ordered_tree(root: &Path, order_seed: u64) {
    let mut names: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..400u64 {
        let mut rng = Rng::new(i);
        let len = (rng.below(256) as usize) * 37 + (i as usize % 5) * 40_000;
        names.push((format!("d{}/f{i:03}", i % 7), rng.text(len)));
    }
    let perm = Rng::new(order_seed).bytes(names.len() * 2);
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

/// Every reader but rdsquashfs's extraction (it fsyncs every file, and its
/// listing and stat still check the image).
const MOST_READERS: Readers = Readers {
    rdsquashfs_extract: false,
    ..Readers::ALL
};

#[test]
fn jobs_do_not_change_the_bytes() {
    let src = scratch();
    let src = src.path();
    ordered_tree(src, 1);
    feature_tree(&src.join("features"), 4096);
    spread_tree(&src.join("spread"), 11);
    let out = scratch();
    let epoch = EPOCH.to_string();
    for (comp, block) in [
        ("gzip", None),
        ("gzip", Some(16 * 1024)),
        ("zstd:3", Some(16 * 1024)),
    ] {
        let mut spec = PackSpec::new(EPOCH);
        spec.comp = comp.to_string();
        spec.block_size = block;
        let block_arg = block.map_or("default".to_string(), |b| b.to_string());
        let img = |jobs: &str| out.path().join(format!("{comp}-{block_arg}-j{jobs}.sqfs"));
        let hashes: Vec<String> = ["1", "2", "8"]
            .iter()
            .map(|jobs| {
                let mut args = vec![src.to_str().unwrap(), "--comp", comp, "--mtime", &epoch];
                args.extend(["--jobs", jobs]);
                if block.is_some() {
                    args.extend(["--block-size", &block_arg]);
                }
                pack(&img(jobs), &args)
            })
            .collect();
        assert_eq!(hashes[0], hashes[1], "{comp} {block_arg}: jobs 1 vs 2");
        assert_eq!(hashes[0], hashes[2], "{comp} {block_arg}: jobs 1 vs 8");
        // The bytes are a readable image of the tree (not, say, empty).
        if all_tools_available() {
            assert_clean(
                &format!("{comp} {block_arg} --jobs 1 image"),
                check_image(
                    &img("1"),
                    &expected_tree(src, EPOCH),
                    &spec.expect(),
                    MOST_READERS,
                ),
            );
        }
    }
}

#[test]
fn reordered_creation_and_mtimes_give_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    ordered_tree(&a, 11);
    ordered_tree(&b, 12345);
    let ha = pack(&dir.path().join("a.sqfs"), &[a.to_str().unwrap()]);
    let hb = pack(&dir.path().join("b.sqfs"), &[b.to_str().unwrap()]);
    assert_eq!(ha, hb);
}

#[test]
fn every_compressor_round_trips_through_unsquashfs() {
    if tool("unsquashfs").is_none() {
        return;
    }
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
        assert_unsquashfs_gives(&img, &out, &src);
    }
}

/// Where backhand says each file's data lives: (blocks_start, block sizes,
/// fragment index, offset in the fragment).
fn data_locations(img: &Path) -> std::collections::BTreeMap<Vec<u8>, (u64, String, u32, u32)> {
    use std::os::unix::ffi::OsStrExt;
    let f = std::io::BufReader::new(fs::File::open(img).expect("open image"));
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
fn duplicate_files_are_stored_once_unless_no_dedup() {
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
    // Incompressible copies: image sizes show how many are stored.
    let noise = Rng::new(3).bytes(1 << 20);
    for p in [&b"noise/a"[..], b"noise/b", b"noise/c"] {
        write(src.path(), p, &noise);
    }
    let out = scratch();
    let mut sizes = Vec::new();
    for no_dedup in [false, true] {
        let mut spec = PackSpec::new(EPOCH);
        spec.no_dedup = no_dedup;
        let img = out.path().join(format!("dedup-{no_dedup}.squashfs"));
        let mut args = vec![src.path().to_str().unwrap(), "--mtime", "1234567890"];
        if no_dedup {
            args.push("--no-dedup");
        }
        pack(&img, &args);
        assert_clean(
            &format!("no_dedup={no_dedup}"),
            check_image(
                &img,
                &expected_tree(src.path(), EPOCH),
                &spec.expect(),
                MOST_READERS,
            ),
        );
        let loc = data_locations(&img);
        let at = |p: &str| loc[p.as_bytes()].clone();
        let big_shared = at("/a/big") == at("/b/big_copy") && at("/a/big") == at("/c/d/big_again");
        let small_shared = at("/a/small") == at("/b/small_copy");
        let noise_shared = at("/noise/a") == at("/noise/b") && at("/noise/a") == at("/noise/c");
        let noise_apart = at("/noise/a") != at("/noise/b")
            && at("/noise/a") != at("/noise/c")
            && at("/noise/b") != at("/noise/c");
        assert_eq!(
            (big_shared, small_shared, noise_shared, noise_apart),
            (!no_dedup, !no_dedup, !no_dedup, no_dedup),
            "no_dedup={no_dedup}: duplicates share data (big, small, noise, noise apart)? \
             locations: {loc:?}"
        );
        sizes.push(fs::metadata(&img).expect("stat").len());
        let s = run_ok(Command::new("unsquashfs").arg("-s").arg(&img));
        let s = String::from_utf8_lossy(&s.stdout);
        let said = if no_dedup {
            "Duplicates are not removed"
        } else {
            "Duplicates are removed"
        };
        assert!(s.contains(said), "{s}");
    }
    // The two extra 1 MiB noise copies alone make the --no-dedup image
    // at least 2 MiB larger.
    assert!(
        sizes[1] > sizes[0] + (2 << 20),
        "deduplicated image ({}) is not 2 MiB smaller than the --no-dedup one ({})",
        sizes[0],
        sizes[1]
    );
}

#[test]
fn all_zero_blocks_take_no_space() {
    if tool("unsquashfs").is_none() {
        return;
    }
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
    assert_unsquashfs_gives(&img, &out, &src);
}

#[test]
fn from_tar_gives_the_same_image_as_the_directory() {
    let Some(gnutar) = tool("tar") else { return };
    // Long and non-UTF-8 names, deep paths, hard links, long symlink
    // targets, modes that need normalizing, many small files.
    let src = scratch();
    let src = src.path();
    hostile_corpus(src);
    feature_tree(&src.join("features"), 4096);
    ordered_tree(&src.join("ordered"), 5);
    let out = scratch();
    let out = out.path();
    let epoch = EPOCH.to_string();
    let s = src.to_str().unwrap();
    for tar_format in ["gnu", "pax"] {
        let tarball = out.join(format!("{tar_format}.tar"));
        // GNU tar's member order, ./ prefixes, hard links as link members.
        run_ok(
            Command::new(&gnutar)
                .arg(format!("--format={tar_format}"))
                .arg("-cf")
                .arg(&tarball)
                .arg("-C")
                .arg(src)
                .arg("."),
        );
        let t = tarball.to_str().unwrap();
        for (fmt, ext) in [("squashfs", "sqfs"), ("tar", "tar"), ("tar.gz", "tgz")] {
            let from_dir = pack(
                &out.join(format!("dir.{ext}")),
                &[s, "--format", fmt, "--mtime", &epoch],
            );
            let img = out.join(format!("{tar_format}.{ext}"));
            let from_tar = pack(&img, &["--from-tar", t, "--format", fmt, "--mtime", &epoch]);
            assert_eq!(from_dir, from_tar, "{tar_format} tar to {fmt}");
            // Whatever the bytes, the image must hold the tree.
            if fmt == "squashfs" && tar_format == "pax" && all_tools_available() {
                assert_clean(
                    "--from-tar image",
                    check_image(
                        &img,
                        &expected_tree(src, EPOCH),
                        &PackSpec::new(EPOCH).expect(),
                        MOST_READERS,
                    ),
                );
            }
        }
        // Excludes prune subtrees the same way.
        let excludes = ["--exclude", "ordered", "--exclude", "*.sh"];
        let a = pack(&out.join("ex1.sqfs"), &[&[s][..], &excludes].concat());
        let b = pack(
            &out.join("ex2.sqfs"),
            &[&["--from-tar", t][..], &excludes].concat(),
        );
        assert_eq!(a, b, "{tar_format} tar with excludes");
    }
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
    let mut child = repropack()
        .args(["pack", "--from-tar", "-", "-o"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(crate::support::exit::INPUT));
    assert!(String::from_utf8_lossy(&o.stderr).contains("dev/pipe"));
    assert!(!out.exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temp litter"
    );
    // With --specials it is packed.
    let mut child = repropack()
        .args(["pack", "--specials", "--from-tar", "-", "-o"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    if let Some(unsquashfs) = tool("unsquashfs") {
        let o = run_ok(Command::new(&unsquashfs).arg("-lln").arg(&out));
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
        let o = run_ok(
            Command::new(&rdsquashfs)
                .args(["-s", "/dev/tty9"])
                .arg(&out),
        );
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
        let o = repropack()
            .arg("pack")
            .arg(&src)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(crate::support::exit::USAGE),
            "{args:?}"
        );
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
    let o = run_ok(
        repropack()
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
            .arg(dir.path().join("j.sqfs")),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "squashfs");
    assert_eq!(v["options"]["compression"], "xz");
    assert_eq!(v["options"]["level"], 6);
    assert_eq!(v["options"]["block_size"], 1 << 20);
    assert_eq!(v["options"]["dedup"], false);
    if let Some(unsquashfs) = tool("unsquashfs") {
        let s = run_ok(Command::new(&unsquashfs).arg("-s").arg(&img));
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
        let mut child = repropack()
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
    assert_eq!(o.status.code(), Some(crate::support::exit::INPUT), "{err}");
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
    assert_eq!(o.status.code(), Some(crate::support::exit::INPUT));
    assert!(String::from_utf8_lossy(&o.stderr).contains("4096 bytes"));
    assert!(!out.exists());
    let o = pack_tar(&tar_with(&at_limit), &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if let Some(unsquashfs) = tool("unsquashfs") {
        let o = run_ok(Command::new(&unsquashfs).arg("-lln").arg(&out));
        let listing = String::from_utf8_lossy(&o.stdout);
        assert!(
            listing.contains(&format!("squashfs-root/{at_limit}")),
            "{listing}"
        );
    }
}

/// A hard-link group whose first member in plan order (`a`, at the root)
/// comes after other members in write order (the directories `b` and
/// `b/d` are written before the root's own files): its one inode is
/// written where the write order first meets the group, with the first
/// member's metadata, and every path's listing points at it. Besides, a
/// group met first through its first member (`m/x`, `m/y`, `n/z`).
#[test]
fn hard_links_met_before_their_first_member_share_one_inode() {
    if !all_tools_available() {
        return;
    }
    let src = scratch();
    let src = src.path();
    write(src, b"a", b"linked from below\n");
    fs::create_dir_all(src.join("b/d")).unwrap();
    write(src, b"b/before", b"1\n");
    fs::hard_link(src.join("a"), src.join("b/c")).unwrap();
    fs::hard_link(src.join("a"), src.join("b/d/e")).unwrap();
    fs::hard_link(src.join("a"), src.join("z")).unwrap();
    write(src, b"m/x", b"linked from the side\n");
    fs::hard_link(src.join("m/x"), src.join("m/y")).unwrap();
    fs::create_dir_all(src.join("n")).unwrap();
    fs::hard_link(src.join("m/x"), src.join("n/z")).unwrap();
    let out = scratch();
    let img = out.path().join("links.squashfs");
    pack(&img, &[src.to_str().unwrap(), "--mtime", "1234567890"]);
    assert_clean(
        "hard links met out of plan order",
        check_image(
            &img,
            &expected_tree(src, EPOCH),
            &PackSpec::new(EPOCH).expect(),
            MOST_READERS,
        ),
    );
}
