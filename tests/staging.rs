//! Staging rules seen through GNU tar's listing of the result: sources and
//! destinations, excludes, symlink handling, mode/owner/mtime policies.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use crate::support::bin::repropack;

/// `tar -tv` lines as (perm, owner, date time, name) with UTC times.
fn listing(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .args(["--utc", "--numeric-owner", "-tvf"])
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {} {} {}", f[0], f[1], f[3], f[4], f[5..].join(" "))
        })
        .collect()
}

fn pack(args: &[&str], src_dir: &Path) -> (tempfile::TempDir, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("o.tar");
    let res = repropack()
        .current_dir(src_dir)
        .arg("pack")
        .args(args)
        .arg("-o")
        .arg(&o)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let l = listing(&o);
    (out, l)
}

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::create_dir_all(r.join("app/lib/__pycache__")).unwrap();
    fs::write(r.join("app/lib/mod.py"), b"x = 1\n").unwrap();
    fs::write(r.join("app/lib/__pycache__/mod.cpython-311.pyc"), b"pyc").unwrap();
    fs::write(r.join("app/lib/keep.pyc"), b"pyc").unwrap();
    fs::write(r.join("app/setuid-tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(
        r.join("app/setuid-tool"),
        fs::Permissions::from_mode(0o4750),
    )
    .unwrap();
    fs::write(r.join("app/private.txt"), b"p").unwrap();
    fs::set_permissions(r.join("app/private.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(r.join("single.txt"), b"single").unwrap();
    symlink("app/lib/mod.py", r.join("link.py")).unwrap();
    filetime::set_file_mtime(
        r.join("single.txt"),
        filetime::FileTime::from_unix_time(1000, 0),
    )
    .unwrap();
    d
}

#[test]
fn sources_map_to_root_or_destination() {
    let t = tree();
    let (_o, l) = pack(
        &["app", "single.txt", "single.txt:opt/data/renamed.txt"],
        t.path(),
    );
    assert_eq!(
        l,
        [
            "drwxr-xr-x 0/0 1980-01-01 00:00 lib/",
            "drwxr-xr-x 0/0 1980-01-01 00:00 lib/__pycache__/",
            "-rw-r--r-- 0/0 1980-01-01 00:00 lib/__pycache__/mod.cpython-311.pyc",
            "-rw-r--r-- 0/0 1980-01-01 00:00 lib/keep.pyc",
            "-rw-r--r-- 0/0 1980-01-01 00:00 lib/mod.py",
            "drwxr-xr-x 0/0 1980-01-01 00:00 opt/",
            "drwxr-xr-x 0/0 1980-01-01 00:00 opt/data/",
            "-rw-r--r-- 0/0 1980-01-01 00:00 opt/data/renamed.txt",
            "-rw-r--r-- 0/0 1980-01-01 00:00 private.txt",
            "-rwxr-xr-x 0/0 1980-01-01 00:00 setuid-tool",
            "-rw-r--r-- 0/0 1980-01-01 00:00 single.txt",
        ]
    );
}

#[test]
fn excludes_match_names_at_any_depth_and_paths_from_the_root() {
    let t = tree();
    let (_o, l) = pack(
        &[
            ".",
            "--exclude",
            "__pycache__",
            "--exclude",
            "app/lib/*.pyc",
        ],
        t.path(),
    );
    let names: Vec<&str> = l.iter().map(|s| s.rsplit(' ').next().unwrap()).collect();
    assert!(!names.iter().any(|n| n.contains("pycache")), "{names:?}");
    assert!(!names.contains(&"app/lib/keep.pyc"));
    assert!(names.contains(&"app/lib/mod.py"));
    // `*` does not cross `/`: a top-level pattern does not hit nested paths.
    let (_o, l) = pack(&[".", "--exclude", "app/*.py"], t.path());
    assert!(l.iter().any(|s| s.ends_with("app/lib/mod.py")));
}

#[test]
fn symlinks_are_kept_unless_followed() {
    let t = tree();
    let (_o, l) = pack(&["."], t.path());
    assert!(
        l.contains(&"lrwxrwxrwx 0/0 1980-01-01 00:00 link.py -> app/lib/mod.py".to_string()),
        "{l:?}"
    );
    let (_o, l) = pack(&[".", "--follow-symlinks"], t.path());
    assert!(
        l.contains(&"-rw-r--r-- 0/0 1980-01-01 00:00 link.py".to_string()),
        "{l:?}"
    );
}

#[test]
fn mode_owner_and_time_policies() {
    let t = tree();
    let (_o, l) = pack(&["app", "--keep-modes", "--owner", "1000:100"], t.path());
    assert!(
        l.contains(&"-rwxr-x--- 1000/100 1980-01-01 00:00 setuid-tool".to_string()),
        "{l:?}"
    );
    assert!(
        l.contains(&"-rw------- 1000/100 1980-01-01 00:00 private.txt".to_string()),
        "{l:?}"
    );
    let (_o, l) = pack(&["app", "--keep-modes", "--keep-special-bits"], t.path());
    assert!(
        l.contains(&"-rwsr-x--- 0/0 1980-01-01 00:00 setuid-tool".to_string()),
        "{l:?}"
    );
    let (_o, l) = pack(
        &["single.txt", "app", "--clamp-mtime", "--mtime", "86400"],
        t.path(),
    );
    // single.txt is older than the epoch: kept; everything else is clamped.
    assert!(
        l.contains(&"-rw-r--r-- 0/0 1970-01-01 00:16 single.txt".to_string()),
        "{l:?}"
    );
    assert!(
        l.contains(&"-rw-r--r-- 0/0 1970-01-02 00:00 lib/mod.py".to_string()),
        "{l:?}"
    );
}

/// Staging recurses once per directory level on its worker threads; a tree
/// as deep as PATH_MAX allows (2 000 one-letter levels, a 4 000-byte path)
/// must pack, the same on any number of threads, not overflow a stack.
#[test]
fn tree_as_deep_as_path_max_allows_packs_on_any_jobs() {
    let src = tempfile::tempdir().unwrap();
    // `cd` one level at a time: the deepest paths are too long to name
    // from the top in one mkdir.
    let st = Command::new("sh")
        .current_dir(src.path())
        .args([
            "-c",
            "i=0; while [ $i -lt 2000 ]; do mkdir a && cd a || exit 1; i=$((i+1)); done; echo x > leaf",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let mut listings = Vec::new();
    for jobs in ["1", "2", "8"] {
        let (_out, l) = pack(&["--jobs", jobs, "."], src.path());
        listings.push(l);
    }
    let l = &listings[0];
    assert_eq!(l.len(), 2001, "2000 directories and the leaf");
    assert!(
        l[2000].ends_with(&format!("{}leaf", "a/".repeat(2000))),
        "{}",
        l[2000]
    );
    assert!(listings.iter().all(|x| x == l));
}

/// With --follow-symlinks a link to another directory is packed as a copy
/// of it, and a link back up the tree is a loop: refused (exit 3) naming the
/// first looping link in name order, whatever the number of threads.
#[test]
fn followed_directory_links_copy_and_loops_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir_all(r.join("a/sub")).unwrap();
    fs::write(r.join("a/sub/f"), b"hi\n").unwrap();
    symlink("a", r.join("b")).unwrap();
    let (_o, l) = pack(&[".", "--follow-symlinks"], r);
    let names: Vec<&str> = l.iter().map(|s| s.rsplit(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        ["a/", "a/sub/", "a/sub/f", "b/", "b/sub/", "b/sub/f"]
    );

    // a/sub/up -> .. makes both a/sub/up/sub/... and b/sub/up/... loop.
    symlink("..", r.join("a/sub/up")).unwrap();
    for jobs in ["1", "2", "8"] {
        let out = tempfile::tempdir().unwrap();
        let res = repropack()
            .current_dir(r)
            .args(["pack", ".", "--follow-symlinks", "--jobs", jobs, "-o"])
            .arg(out.path().join("o.tar"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(
            res.status.code(),
            Some(crate::support::exit::INPUT),
            "{err}"
        );
        assert!(
            err.contains("a/sub/up: directory loop"),
            "jobs {jobs}: {err}"
        );
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
