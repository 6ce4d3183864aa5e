//! `pack --manifest`: round trip, determinism, the entry list checked
//! against Python's tarfile and GNU tar + sha256sum, and source revisions.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use repropack::verify::manifest::{Bytes, Manifest};

use crate::support::bin::{json, ok, repropack_out};
use crate::support::fixtures::{manifest_sample_tree, write_mode};
use crate::support::tool::{git, have_tool};

fn pack_with_manifest(src: &Path, out: &Path, manifest: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ];
    args.extend(extra.iter().map(|s| OsStr::new(*s)));
    ok(&repropack_out(args)).trim().to_string()
}

#[test]
fn manifest_round_trips_and_is_byte_stable() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let out = dir.path().join("a.tar.gz");
    let m1 = dir.path().join("m1.json");
    let m2 = dir.path().join("m2.json");
    let r = pack_with_manifest(&src, &out, &m1, &["--source-revision", "v1.2.3"]);
    pack_with_manifest(&src, &out, &m2, &["--source-revision", "v1.2.3"]);
    let bytes = std::fs::read(&m1).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&m2).unwrap(),
        "manifest bytes changed between runs"
    );

    let m = Manifest::read(&m1).unwrap();
    assert_eq!(m.to_json(), bytes, "read + write is not the identity");
    assert_eq!(m.schema, "repropack.manifest/1");
    assert_eq!(m.artifact.reference, r);
    assert_eq!(m.artifact.format, "tar.gz");
    assert_eq!(m.artifact.compression.as_deref(), Some("gzip"));
    assert_eq!(m.artifact.level, Some(6));
    assert_eq!(m.artifact.size, std::fs::metadata(&out).unwrap().len());
    assert_eq!(m.tool.format_version, repropack::FORMAT_VERSION);
    assert_eq!(m.source.as_ref().unwrap().revision, "v1.2.3");
    assert_eq!(m.tree(&m1).unwrap().digest().to_hex(), m.tree_digest);
    // No temp file left next to the manifest.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn non_utf8_paths_are_written_as_hex_objects() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let m = dir.path().join("m.json");
    pack_with_manifest(&src, &dir.path().join("a.tar"), &m, &[]);
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.contains(r#""path": {"#), "{text}");
    assert!(
        text.contains(r#""hex": "636166e9206e616d652e747874""#),
        "{text}"
    );
    let parsed = Manifest::read(&m).unwrap();
    assert!(
        parsed
            .entries
            .iter()
            .any(|e| e.path == Bytes(b"caf\xe9 name.txt".to_vec()))
    );
}

/// Python's tarfile listing of `tar` (every field of every entry, in
/// archive order).
fn python_entries(tar: &Path) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tarlist.py");
    let py = Command::new("python3")
        .arg(&script)
        .arg("entries")
        .arg(tar)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    serde_json::from_slice(&py.stdout).unwrap()
}

fn assert_same_entries(listed: &[serde_json::Value], m: &Manifest) {
    assert_eq!(listed.len(), m.entries.len());
    let hex = |b: &Bytes| b.0.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (py, ours) in listed.iter().zip(&m.entries) {
        let what = ours.path.display();
        assert_eq!(py["path"].as_str().unwrap(), hex(&ours.path), "{what}");
        assert_eq!(py["kind"].as_str().unwrap(), ours.kind, "{what}");
        assert_eq!(
            format!("{:04o}", py["mode"].as_u64().unwrap()),
            ours.mode,
            "{what}"
        );
        assert_eq!(py["size"].as_u64().unwrap(), ours.size, "{what}");
        assert_eq!(py["uid"].as_u64().unwrap(), u64::from(ours.uid), "{what}");
        assert_eq!(py["mtime"].as_i64().unwrap(), ours.mtime, "{what}");
        assert_eq!(py["sha256"].as_str(), ours.sha256.as_deref(), "{what}");
        assert_eq!(
            py["symlink"].as_str().map(str::to_string),
            ours.symlink.as_ref().map(hex),
            "{what}"
        );
        assert_eq!(
            py["hardlink"].as_str().map(str::to_string),
            ours.hardlink.as_ref().map(hex),
            "{what}"
        );
    }
    assert!(
        m.entries.iter().any(|e| e.hardlink.is_some()),
        "sample has a hard link"
    );
}

#[test]
fn manifest_entries_match_python_tarfile_and_gnu_tar() {
    if !have_tool("python3") || !have_tool("tar") || !have_tool("sha256sum") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let tar = dir.path().join("a.tar.gz");
    let mpath = dir.path().join("m.json");
    pack_with_manifest(&src, &tar, &mpath, &[]);
    let m = Manifest::read(&mpath).unwrap();
    assert_same_entries(&python_entries(&tar), &m);

    // GNU tar extracts, sha256sum hashes every regular file.
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tar)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    for e in m.entries.iter().filter(|e| e.kind == "file") {
        let p = x.join(OsStr::from_bytes(&e.path.0));
        let out = Command::new("sha256sum").arg(&p).output().unwrap();
        assert!(out.status.success());
        let sum = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            sum.split_whitespace().next(),
            e.sha256.as_deref(),
            "{}",
            e.path.display()
        );
    }
}

#[test]
fn squashfs_manifest_entries_match_sqfs2tar_and_python() {
    if !have_tool("python3") || !have_tool("sqfs2tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let img = dir.path().join("a.squashfs");
    let mpath = dir.path().join("m.json");
    pack_with_manifest(
        &src,
        &img,
        &mpath,
        &["--comp", "zstd", "--block-size", "64K"],
    );
    let m = Manifest::read(&mpath).unwrap();
    assert_eq!(m.artifact.format, "squashfs");
    assert_eq!(m.artifact.compression.as_deref(), Some("zstd"));
    assert_eq!(m.artifact.block_size, Some(65536));
    let out = Command::new("sqfs2tar").arg(&img).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tar = dir.path().join("from-sqfs.tar");
    std::fs::write(&tar, &out.stdout).unwrap();
    assert_same_entries(&python_entries(&tar), &m);
}

#[test]
fn git_worktree_revision_is_recorded_and_marked_dirty() {
    if !have_tool("git") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    write_mode(&repo, "app/main.py", b"print(1)\n", 0o644);
    write_mode(&repo, "other/notes.txt", b"n\n", 0o644);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let m = dir.path().join("m.json");
    let out = dir.path().join("a.tar");
    pack_with_manifest(&repo.join("app"), &out, &m, &[]);
    let s = Manifest::read(&m).unwrap().source.unwrap();
    assert_eq!(
        (s.revision.as_str(), s.origin.as_str(), s.dirty),
        (head.as_str(), "git", Some(false))
    );

    // A change outside the packed source does not make it dirty...
    write_mode(&repo, "other/notes.txt", b"changed\n", 0o644);
    pack_with_manifest(&repo.join("app"), &out, &m, &[]);
    assert_eq!(
        Manifest::read(&m).unwrap().source.unwrap().dirty,
        Some(false)
    );
    // ...an untracked file inside it does.
    write_mode(&repo, "app/new.py", b"x\n", 0o644);
    pack_with_manifest(&repo.join("app"), &out, &m, &[]);
    assert_eq!(
        Manifest::read(&m).unwrap().source.unwrap().dirty,
        Some(true)
    );
    // --source-revision wins.
    pack_with_manifest(&repo.join("app"), &out, &m, &["--source-revision", "abc"]);
    let s = Manifest::read(&m).unwrap().source.unwrap();
    assert_eq!(
        (s.revision.as_str(), s.origin.as_str(), s.dirty),
        ("abc", "flag", None)
    );
}

#[test]
fn no_revision_outside_a_worktree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_mode(&src, "f", b"1", 0o644);
    let m = dir.path().join("m.json");
    pack_with_manifest(&src, &dir.path().join("a.tar"), &m, &[]);
    assert_eq!(Manifest::read(&m).unwrap().source, None);
    assert!(!std::fs::read_to_string(&m).unwrap().contains("\"source\""));
}

#[test]
fn pack_json_carries_the_tree_digest_that_digest_prints() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let out = dir.path().join("a.tar");
    let v = json(&repropack_out([
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ]));
    let d = ok(&repropack_out(["digest".as_ref(), out.as_os_str()]));
    assert_eq!(v["tree_digest"].as_str().unwrap(), d.trim());
    assert_eq!(
        v["format_version"].as_u64().unwrap(),
        u64::from(repropack::FORMAT_VERSION)
    );
}
