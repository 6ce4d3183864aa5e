//! Extraction gives back the tree: our own tar and tar.gz, images made by
//! mksquashfs, compared with the source and with what GNU tar and
//! unsquashfs extract from the same bytes. Also: metadata as stored,
//! special bits, specials, verbatim symlinks, holes, and the cache.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use repropack::digest::{Sha256Digest, hash_file};
use repropack::extract::{ErrorClass, ExtractOptions, extract, extract_to_cache};

use crate::support::bin::{repropack, run_ok};
use crate::support::fixtures::archive_sample_tree;
use crate::support::rawtar::{RawTar, T_CHAR, T_FIFO, raw_header, set_checksum};
use crate::support::tool::have_tool;
use crate::support::tree::{Tree, assert_same};

fn cli_extract(artifact: &Path, dir: &Path, flags: &[&str]) {
    let out = repropack()
        .arg("extract")
        .args(flags)
        .arg(artifact)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "extract {}: {}",
        artifact.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.display().to_string()
    );
}

/// A tree as the comparisons here see it: every path but the root, and no
/// owners (the extracting user owns what it extracts).
fn view(root: &Path) -> Tree {
    Tree::of(root).without_root().without_owners()
}

#[test]
fn our_tar_and_tar_gz_extract_to_the_normalized_source_like_gnu_tar() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    archive_sample_tree(&src);
    let want = view(&src).normalized().with_mtime(1_700_000_000);
    assert_eq!(
        want.links.as_ref().map(|l| l.len()),
        Some(1),
        "the sample has one hard-link pair"
    );
    for name in ["demo.tar", "demo.tar.gz"] {
        let artifact = work.path().join(name);
        run_ok(
            repropack()
                .arg("pack")
                .arg(&src)
                .arg("-o")
                .arg(&artifact)
                .args(["--mtime", "1700000000"]),
        );
        let out = work.path().join(format!("out-{name}"));
        cli_extract(&artifact, &out, &[]);
        // Modes, contents, targets, the hard-link pair as one inode, and
        // every mtime the stored one.
        let got = view(&out);
        assert_same(name, &want, &got);
        if have_tool("tar") {
            let gnu = work.path().join(format!("gnu-{name}"));
            fs::create_dir(&gnu).unwrap();
            run_ok(
                Command::new("tar")
                    .arg("-xf")
                    .arg(&artifact)
                    .arg("-C")
                    .arg(&gnu),
            );
            assert_same(
                &format!("{name} vs GNU tar"),
                &got.clone().without_times(),
                &view(&gnu).without_times(),
            );
        }
    }
}

#[test]
fn mksquashfs_image_extracts_to_the_source_like_unsquashfs() {
    if !have_tool("mksquashfs") || !have_tool("unsquashfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    archive_sample_tree(&src);
    let img = work.path().join("img.sqfs");
    run_ok(Command::new("mksquashfs").arg(&src).arg(&img).args([
        "-noappend",
        "-no-xattrs",
        "-quiet",
        "-no-progress",
        "-comp",
        "zstd",
    ]));
    let out = work.path().join("out");
    cli_extract(&img, &out, &[]);
    let got = view(&out);
    // Modes kept but for the special bits, contents, targets, hard links
    // and mtimes as in the source.
    let source = view(&src).map_perm(|_, perm| perm & 0o777);
    assert_same("extracted", &source, &got);
    let uns = work.path().join("uns");
    run_ok(
        Command::new("unsquashfs")
            .arg("-q")
            .arg("-n")
            .arg("-d")
            .arg(&uns)
            .arg(&img),
    );
    assert_same(
        "vs unsquashfs",
        &view(&uns).map_perm(|_, perm| perm & 0o777).without_times(),
        &got.without_times(),
    );
    // With --keep-special-bits the setuid bit survives.
    let kept = work.path().join("kept");
    cli_extract(&img, &kept, &["--keep-special-bits"]);
    let mode = fs::metadata(kept.join("suid"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o4755);
}

#[test]
fn special_bits_are_dropped_unless_kept_and_counted() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("bits.tar");
    fs::write(
        &artifact,
        RawTar::new()
            .file_mode("suid", 0o4755, b"x")
            .file_mode("sgid", 0o2711, b"y")
            .entry(b"tmp", b'5', 0o1777, b"", b"")
            .finish(),
    )
    .unwrap();
    let out = work.path().join("out");
    let report = extract(&artifact, &out, &ExtractOptions::default()).unwrap();
    assert_eq!(report.dropped_special_bits, 3);
    let mode =
        |p: &str, root: &Path| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("suid", &out), 0o755);
    assert_eq!(mode("sgid", &out), 0o711);
    assert_eq!(mode("tmp", &out), 0o777);
    let kept = work.path().join("kept");
    let opts = ExtractOptions {
        keep_special_bits: true,
        ..ExtractOptions::default()
    };
    extract(&artifact, &kept, &opts).unwrap();
    assert_eq!(mode("suid", &kept), 0o4755);
    assert_eq!(mode("sgid", &kept), 0o2711);
    assert_eq!(mode("tmp", &kept), 0o1777);
}

#[test]
fn specials_flag_creates_fifos_and_devices() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("dev.tar");
    let mut t = RawTar::new();
    t.entry(b"pipe", T_FIFO, 0o640, b"", b"");
    let is_root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if is_root {
        // devmajor/devminor of /dev/null: 1, 3 (set after the header is built).
        let mut h = raw_header(b"null", T_CHAR, 0o666, 0, b"");
        h[329..337].copy_from_slice(b"0000001\0");
        h[337..345].copy_from_slice(b"0000003\0");
        set_checksum(&mut h);
        t.raw(h, b"");
    }
    fs::write(&artifact, t.finish()).unwrap();
    let out = work.path().join("out");
    cli_extract(&artifact, &out, &["--specials"]);
    let m = fs::symlink_metadata(out.join("pipe")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o640);
    if is_root {
        let m = fs::symlink_metadata(out.join("null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    } else {
        eprintln!("not root: device node creation not checked");
    }
}

#[test]
fn absolute_symlinks_are_kept_verbatim_and_never_followed() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), b"original").unwrap();
    let outside_bytes = outside.as_os_str().as_encoded_bytes().to_vec();
    let mut victim = outside_bytes.clone();
    victim.extend_from_slice(b"/victim");
    let artifact = work.path().join("rootfs.tar");
    fs::write(
        &artifact,
        RawTar::new()
            .dir("usr/bin")
            .file("usr/bin/python3.11", b"#!")
            .symlink("usr/bin/python", b"/usr/bin/python3.11")
            .symlink("lib", b"usr/lib")
            .symlink("to-outside", &outside_bytes)
            .symlink("to-victim", &victim)
            // A hard link to a symlink links the symlink, not what it names.
            .hardlink("victim-link", b"to-victim")
            .finish(),
    )
    .unwrap();
    let before = Tree::of(&outside);
    let out = work.path().join("out");
    cli_extract(&artifact, &out, &[]);
    assert_eq!(
        fs::read_link(out.join("usr/bin/python")).unwrap(),
        Path::new("/usr/bin/python3.11")
    );
    assert_eq!(
        fs::read_link(out.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    let vl = fs::symlink_metadata(out.join("victim-link")).unwrap();
    assert!(vl.file_type().is_symlink());
    assert_eq!(Tree::of(&outside), before);
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"original");
    // The strict policy accepts the inside links and refuses the rest.
    let strict = work.path().join("strict");
    let out = repropack()
        .args(["extract", "--reject-escaping-symlinks"])
        .arg(&artifact)
        .arg(&strict)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(crate::support::exit::UNSAFE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symlink-escapes"));
    assert!(!strict.exists());
}

#[test]
fn implied_parents_repeated_dirs_and_read_only_dirs_end_with_stored_metadata() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("order.tar");
    let mut t = RawTar::new();
    t.file("a/b/f", b"deep");
    let mut h = raw_header(b"a/", b'5', 0o700, 0, b"");
    h[136..148].copy_from_slice(b"00000001750\0"); // mtime 1000
    set_checksum(&mut h);
    t.raw(h, b"");
    t.entry(b"ro/", b'5', 0o555, b"", b"");
    t.file("ro/inside", b"x");
    t.entry(b"ro/", b'5', 0o500, b"", b""); // stored again: last wins
    fs::write(&artifact, t.finish()).unwrap();
    let out = work.path().join("out");
    extract(&artifact, &out, &ExtractOptions::default()).unwrap();
    let m = fs::metadata(out.join("a")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o700);
    assert_eq!(m.mtime(), 1000);
    assert_eq!(
        fs::metadata(out.join("a/b")).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        fs::metadata(out.join("ro")).unwrap().permissions().mode() & 0o7777,
        0o500
    );
    assert_eq!(fs::read(out.join("a/b/f")).unwrap(), b"deep");
    assert_eq!(fs::read(out.join("ro/inside")).unwrap(), b"x");
}

#[test]
fn zero_runs_become_holes() {
    if !have_tool("mksquashfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    let f = fs::File::create(src.join("sparse")).unwrap();
    f.set_len(256 << 20).unwrap();
    drop(f);
    fs::write(src.join("tail"), b"not sparse").unwrap();
    let img = work.path().join("s.sqfs");
    run_ok(Command::new("mksquashfs").arg(&src).arg(&img).args([
        "-noappend",
        "-no-xattrs",
        "-quiet",
        "-no-progress",
    ]));
    let out = work.path().join("out");
    let report = extract(&img, &out, &ExtractOptions::default()).unwrap();
    assert_eq!(report.bytes, (256 << 20) + 10);
    let m = fs::metadata(out.join("sparse")).unwrap();
    assert_eq!(m.len(), 256 << 20);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "{} blocks allocated",
        m.blocks()
    );
    let (h, _) = hash_file(&out.join("sparse")).unwrap();
    let (want, _) = hash_file(&src.join("sparse")).unwrap();
    assert_eq!(h, want);
}

#[test]
fn cache_extracts_once_reuses_and_refuses_wrong_bytes() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("a.tar");
    fs::write(
        &artifact,
        RawTar::new().dir("d").file("d/f", b"cached").finish(),
    )
    .unwrap();
    let (sha, _) = hash_file(&artifact).unwrap();
    let cache = work.path().join("cache");
    let opts = ExtractOptions::default();

    // Wrong hash: error, and no tree for either hash.
    let wrong = Sha256Digest::of(b"something else");
    let err = extract_to_cache(&artifact, &wrong, &cache, &opts).unwrap_err();
    assert_eq!(err.class(), ErrorClass::HashMismatch);
    assert!(!repropack::extract::cache_dir_for(&cache, &wrong, &opts).exists());

    // A staging dir left by a killed extraction is cleaned up by the next.
    let final_dir = repropack::extract::cache_dir_for(&cache, &sha, &opts);
    let stale = final_dir
        .parent()
        .unwrap()
        .join(format!(".{}.extract-dead01", sha.to_hex()));
    fs::create_dir_all(stale.join("half/written")).unwrap();

    // 8 concurrent callers: one extraction, one tree, same path for all.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| extract_to_cache(&artifact, &sha, &cache, &opts).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| !r.reused).count(), 1);
    let path = &results[0].path;
    assert!(results.iter().all(|r| &r.path == path));
    assert_eq!(fs::read(path.join("d/f")).unwrap(), b"cached");
    // Only the tree and its lock file sit in the shard directory.
    let shard = path.parent().unwrap();
    let mut names: Vec<String> = fs::read_dir(shard)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec![sha.to_hex(), format!("{}.lock", sha.to_hex())]);
    assert!(!stale.exists());

    // Reuse does not read the artifact: it may even be gone.
    fs::remove_file(&artifact).unwrap();
    let again = extract_to_cache(&artifact, &sha, &cache, &opts).unwrap();
    assert!(again.reused);
    assert_eq!(&again.path, path);

    // Other options that change the tree get their own directory.
    let strict = ExtractOptions {
        keep_special_bits: true,
        ..ExtractOptions::default()
    };
    assert_ne!(
        repropack::extract::cache_dir_for(&cache, &sha, &strict),
        *path
    );
}

#[test]
fn json_report_counts_what_was_made() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("j.tar");
    fs::write(
        &artifact,
        RawTar::new()
            .dir("d")
            .file("d/f", b"12345")
            .symlink("s", b"d/f")
            .hardlink("h", b"d/f")
            .finish(),
    )
    .unwrap();
    let out_dir = work.path().join("out");
    let out = run_ok(
        repropack()
            .args(["extract", "--json"])
            .arg(&artifact)
            .arg(&out_dir),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["report"];
    assert_eq!(r["format"], "tar");
    assert_eq!(r["entries"], 4);
    assert_eq!(r["dirs"], 1);
    assert_eq!(r["files"], 1);
    assert_eq!(r["symlinks"], 1);
    assert_eq!(r["hardlinks"], 1);
    assert_eq!(r["bytes"], 5);
    assert_eq!(v["options"]["max_size"], 16u64 << 30);
    let a = fs::metadata(out_dir.join("d/f")).unwrap();
    let b = fs::metadata(out_dir.join("h")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn sockets_and_their_hard_links_are_skipped_with_warnings() {
    if !have_tool("mksquashfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    fs::hard_link(src.join("sock"), src.join("sock2")).unwrap();
    fs::write(src.join("file"), b"kept").unwrap();
    let img = work.path().join("s.sqfs");
    run_ok(Command::new("mksquashfs").arg(&src).arg(&img).args([
        "-noappend",
        "-no-xattrs",
        "-quiet",
        "-no-progress",
    ]));
    let out = work.path().join("out");
    let report = extract(&img, &out, &ExtractOptions::default()).unwrap();
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("skipped socket"));
    assert!(report.warnings[1].contains("skipped hard link"));
    let names: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("file")]);
}

#[test]
fn mixed_zero_and_data_runs_round_trip_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut p = vec![7u8; 100];
    p.extend(vec![0u8; 10_000]);
    p.extend((0..5000u32).map(|i| (i % 251) as u8 + 1));
    p.extend(vec![0u8; 8192]);
    patterns.push(p);
    patterns.push(vec![0u8; 4096 * 3]); // all hole
    patterns.push(vec![0u8; 4095]); // shorter than a chunk: written
    let mut q = vec![0u8; 300_000];
    q[150_000] = 1;
    patterns.push(q);
    let mut t = RawTar::new();
    for (i, p) in patterns.iter().enumerate() {
        t.file(&format!("f{i}"), p);
    }
    let artifact = work.path().join("m.tar");
    fs::write(&artifact, t.finish()).unwrap();
    let out = work.path().join("out");
    extract(&artifact, &out, &ExtractOptions::default()).unwrap();
    for (i, p) in patterns.iter().enumerate() {
        assert_eq!(&fs::read(out.join(format!("f{i}"))).unwrap(), p, "f{i}");
    }
}
