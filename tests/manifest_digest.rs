//! The tree digest: shared by every format of one tree, equal to an
//! independent Python implementation (`support/tarlist.py`) of its spec,
//! and moved by one byte of content or one mode.

use std::path::Path;
use std::process::Command;

use crate::support::bin::{code, ok, repropack_out};
use crate::support::fixtures::{manifest_sample_tree, write_mode};
use crate::support::tool::have_tool;

fn digest_of(input: &Path, flags: &[&str]) -> String {
    let mut args = vec!["digest".to_string(), input.display().to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    ok(&repropack_out(args)).trim().to_string()
}

fn pack(src: &Path, out: &Path, flags: &[&str]) {
    let mut args = vec![
        "pack".to_string(),
        src.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    ok(&repropack_out(args));
}

fn python_digest(archive: &Path) -> Option<String> {
    if !have_tool("python3") {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tarlist.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("digest")
        .arg(archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn tree_digest_is_shared_by_tar_targz_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let tar = dir.path().join("a.tar");
    let tgz = dir.path().join("a.tar.gz");
    let tgz9 = dir.path().join("b.tar.gz");
    pack(&src, &tar, &[]);
    pack(&src, &tgz, &[]);
    pack(&src, &tgz9, &["--level", "1"]);
    let d = digest_of(&src, &[]);
    assert_eq!(d.len(), 64);
    assert_eq!(digest_of(&tar, &[]), d);
    assert_eq!(digest_of(&tgz, &[]), d);
    assert_eq!(digest_of(&tgz9, &[]), d);
    if let Some(py) = python_digest(&tar) {
        assert_eq!(py, d, "Python implementation of the spec disagrees");
        assert_eq!(python_digest(&tgz).unwrap(), d);
    }
}

#[test]
fn squashfs_shares_the_tree_digest_checked_through_sqfs2tar() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let d = digest_of(&src, &[]);
    for (name, flags) in [
        ("gzip.squashfs", &[][..]),
        (
            "zstd4k.squashfs",
            &["--comp", "zstd", "--block-size", "4K"][..],
        ),
        ("none.sqfs", &["--comp", "none", "--no-dedup"][..]),
    ] {
        let img = dir.path().join(name);
        pack(&src, &img, flags);
        assert_eq!(digest_of(&img, &[]), d, "{name}");
        // Independent: squashfs-tools-ng turns the image into a tar, Python
        // computes the digest from the spec.
        if have_tool("sqfs2tar") && have_tool("python3") {
            let tar = dir.path().join(format!("{name}.tar"));
            let out = Command::new("sqfs2tar").arg(&img).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&tar, &out.stdout).unwrap();
            assert_eq!(python_digest(&tar).unwrap(), d, "{name} via sqfs2tar");
        }
    }
}

#[test]
fn tree_digest_ignores_epoch_and_owner_but_not_excludes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let d = digest_of(&src, &[]);
    assert_eq!(digest_of(&src, &["--mtime", "1"]), d);
    assert_eq!(digest_of(&src, &["--owner", "1000:1000"]), d);
    let excluded = digest_of(&src, &["--exclude", "*.toml"]);
    assert_ne!(excluded, d);
    let tar = dir.path().join("x.tar");
    pack(&src, &tar, &["--exclude", "*.toml", "--mtime", "7"]);
    assert_eq!(
        digest_of(&tar, &[]),
        excluded,
        "digest SRC takes the same flags as pack"
    );
}

#[test]
fn one_byte_or_one_mode_moves_the_tree_digest() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let base = digest_of(&src, &[]);
    let tar = dir.path().join("a.tar");

    write_mode(&src, "pkg/sub/data.toml", b"x = 2\n", 0o600);
    let byte = digest_of(&src, &[]);
    assert_ne!(byte, base);
    pack(&src, &tar, &[]);
    assert_eq!(digest_of(&tar, &[]), byte);
    if let Some(py) = python_digest(&tar) {
        assert_eq!(py, byte);
    }

    write_mode(&src, "pkg/sub/data.toml", b"x = 1\n", 0o700);
    let mode = digest_of(&src, &[]);
    assert_ne!(mode, base);
    assert_ne!(mode, byte);
    pack(&src, &tar, &[]);
    assert_eq!(digest_of(&tar, &[]), mode);
    let img = dir.path().join("a.squashfs");
    pack(&src, &img, &[]);
    assert_eq!(digest_of(&img, &[]), mode);

    write_mode(&src, "pkg/sub/data.toml", b"x = 1\n", 0o600);
    assert_eq!(
        digest_of(&src, &[]),
        base,
        "restoring the tree restores the digest"
    );
}

#[test]
fn canonical_text_is_what_the_digest_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let text = repropack_out(["digest".as_ref(), src.as_os_str(), "--canonical".as_ref()]);
    let text = ok(&text);
    assert!(text.starts_with("repropack.tree/1\n"));
    assert!(
        text.contains("path=caf%E9%20name.txt kind=file mode=0644 size=13 "),
        "{text}"
    );
    assert!(
        text.contains("path=links/b kind=file mode=0644 size=15 sha256="),
        "{text}"
    );
    assert!(text.contains(" hardlink=links/a\n"), "{text}");
    assert!(
        text.contains("path=bin/readme kind=symlink mode=0777 symlink=../README.txt\n"),
        "{text}"
    );
    if have_tool("sha256sum") {
        let f = dir.path().join("canon");
        std::fs::write(&f, &text).unwrap();
        let out = Command::new("sha256sum").arg(&f).output().unwrap();
        let sum = String::from_utf8_lossy(&out.stdout);
        assert_eq!(sum.split_whitespace().next().unwrap(), digest_of(&src, &[]));
    }
}

#[test]
fn digest_of_a_non_archive_file_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_mode(
        dir.path(),
        "plain.txt",
        b"not an archive at all, just text",
        0o644,
    );
    let out = repropack_out(["digest".as_ref(), f.as_os_str()]);
    assert_eq!(
        code(&out),
        crate::support::exit::INPUT,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain.txt"));
}
