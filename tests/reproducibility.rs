//! docs/CONTRACT.md §2: output bytes never depend on creation order, source
//! timestamps, umask, absolute path, jobs, time zone or locale.

use std::path::Path;
use std::process::Command;

use crate::support::bin::{bin, repropack};
use crate::support::fixtures::{Build, build_tree, sample_items, sample_tree};
use crate::support::hash::sha256_file;

/// Packs `src` to `out` through `sh` so the packer runs under `umask`,
/// with extra environment.
fn pack(src: &Path, out: &Path, jobs: usize, umask: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask}; exec \"$@\""))
        .arg("sh")
        .arg(bin())
        .arg("pack")
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg("--jobs")
        .arg(jobs.to_string())
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let res = cmd.output().unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8(res.stdout).unwrap();
    let hex = stdout.trim().rsplit_once("#sha256=").unwrap().1.to_string();
    assert_eq!(hex, sha256_file(out), "printed ref must match the file");
    hex
}

fn all_variants_identical(ext: &str) {
    let base = sample_tree(Build::default());
    let shuffled = sample_tree(Build {
        shuffle: Some(99),
        random_times: Some(5),
        umask: 0o077,
    });
    // A different absolute path, several levels deeper.
    let deeper = tempfile::tempdir().unwrap();
    let nested = deeper.path().join("x/y/z");
    std::fs::create_dir_all(&nested).unwrap();
    build_tree(
        &nested,
        &sample_items(),
        Build {
            shuffle: Some(3),
            random_times: Some(11),
            umask: 0o022,
        },
    );
    let out = tempfile::tempdir().unwrap();
    let o = |n: &str| out.path().join(format!("{n}.{ext}"));
    let reference = pack(base.path(), &o("ref"), 1, "022", &[]);
    let variants = [
        pack(base.path(), &o("jobs8"), 8, "022", &[]),
        pack(shuffled.path(), &o("shuffled"), 2, "077", &[]),
        pack(
            &nested,
            &o("nested"),
            3,
            "022",
            &[("TZ", "Asia/Kathmandu"), ("LC_ALL", "C.UTF-8")],
        ),
        pack(
            shuffled.path(),
            &o("tz"),
            8,
            "077",
            &[("TZ", "America/St_Johns"), ("LC_ALL", "POSIX")],
        ),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_eq!(&reference, v, "variant {i} of {ext} differs");
    }
}

#[test]
fn reordered_retimed_umasked_relocated_tar_gives_same_bytes() {
    all_variants_identical("tar");
}

#[test]
fn reordered_retimed_umasked_relocated_tar_gz_gives_same_bytes() {
    all_variants_identical("tar.gz");
}

#[test]
fn source_date_epoch_sets_every_timestamp_and_mtime_flag_wins() {
    let src = sample_tree(Build::default());
    let out = tempfile::tempdir().unwrap();
    let a = out.path().join("a.tar");
    let b = out.path().join("b.tar");
    let c = out.path().join("c.tar");
    let run = |o: &Path, env: Option<&str>, flag: Option<&str>| {
        let mut cmd = repropack();
        cmd.arg("pack").arg(src.path()).arg("-o").arg(o);
        if let Some(e) = env {
            cmd.env("SOURCE_DATE_EPOCH", e);
        }
        if let Some(f) = flag {
            cmd.args(["--mtime", f]);
        }
        assert!(cmd.status().unwrap().success());
        sha256_file(o)
    };
    let with_env = run(&a, Some("1700000000"), None);
    let with_flag = run(&b, Some("5"), Some("1700000000"));
    let default = run(&c, None, None);
    assert_eq!(with_env, with_flag);
    assert_ne!(with_env, default);
    let listing = Command::new("tar")
        .arg("--utc")
        .arg("-tvf")
        .arg(&a)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.lines().count() > 10);
    for line in text.lines() {
        assert!(line.contains("2023-11-14 22:13"), "{line}");
    }
}

#[test]
fn a_changed_byte_changes_the_hash() {
    // Guards the tests above against comparing things that never differ.
    let a = sample_tree(Build::default());
    let b = sample_tree(Build::default());
    std::fs::write(b.path().join("a.txt"), b"alphA\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let ha = pack(a.path(), &out.path().join("a.tar.gz"), 2, "022", &[]);
    let hb = pack(b.path(), &out.path().join("b.tar.gz"), 2, "022", &[]);
    assert_ne!(ha, hb);
}
