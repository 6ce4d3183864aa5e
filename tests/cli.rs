//! The command line: refs printed by `pack` and `hash`, `--ref-base`,
//! `--json`, `--version`.

use std::process::Command;

use crate::support::bin::{bin, repropack};
use crate::support::fixtures::{Build, sample_tree};
use crate::support::hash::sha256_file;

#[test]
fn pack_prints_an_absolute_ref_that_sha256sum_agrees_with() {
    let src = sample_tree(Build::default());
    let out = tempfile::tempdir().unwrap();
    let res = repropack()
        .current_dir(out.path())
        .arg("pack")
        .arg(src.path())
        .args(["-o", "rel.tar.gz"])
        .output()
        .unwrap();
    assert!(res.status.success());
    let line = String::from_utf8(res.stdout).unwrap();
    let (uri, hex) = line.trim().split_once("#sha256=").unwrap();
    let abs = out.path().canonicalize().unwrap().join("rel.tar.gz");
    assert_eq!(uri, abs.to_str().unwrap());
    let sum = Command::new("sha256sum").arg(&abs).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sum.stdout)
            .split_whitespace()
            .next()
            .unwrap(),
        hex
    );

    // `hash` prints the same ref for the existing file.
    let res = repropack().arg("hash").arg(&abs).output().unwrap();
    assert_eq!(String::from_utf8(res.stdout).unwrap(), line);
}

#[test]
fn ref_base_and_json_describe_the_artifact() {
    let src = sample_tree(Build::default());
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("app.tar");
    let res = repropack()
        .arg("pack")
        .arg(src.path())
        .arg("-o")
        .arg(&o)
        .args([
            "--ref-base",
            "s3://bucket/builds/",
            "--json",
            "--exclude",
            "big.bin",
        ])
        .output()
        .unwrap();
    assert!(res.status.success());
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let hex = sha256_file(&o);
    assert_eq!(v["ref"], format!("s3://bucket/builds/app.tar#sha256={hex}"));
    assert_eq!(v["sha256"], hex);
    assert_eq!(v["size"], std::fs::metadata(&o).unwrap().len());
    assert_eq!(v["format"], "tar");
    assert_eq!(v["options"]["excludes"][0], "big.bin");
    assert_eq!(v["options"]["epoch"], 315_532_800);
    let listed = Command::new("tar").arg("-tf").arg(&o).output().unwrap();
    assert_eq!(
        v["entries"],
        String::from_utf8_lossy(&listed.stdout).lines().count()
    );
}

#[test]
fn version_names_the_format_version() {
    let res = repropack().arg("--version").output().unwrap();
    let text = String::from_utf8(res.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!(
            "repropack {} (format {})",
            env!("CARGO_PKG_VERSION"),
            repropack::FORMAT_VERSION
        )
    );
}

#[test]
fn hash_of_a_missing_file_is_an_input_error() {
    let res = repropack()
        .args(["hash", "/nonexistent/file"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(crate::support::exit::INPUT));
    assert!(String::from_utf8_lossy(&res.stderr).contains("/nonexistent/file"));
}

/// Published artifacts get 0666 minus the umask, like any file a tool
/// creates (not the 0600 of a private temp file).
#[test]
fn output_mode_follows_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let src = sample_tree(Build::default());
    let out = tempfile::tempdir().unwrap();
    for (umask, ext, want) in [
        ("022", "tar", 0o644),
        ("027", "tar.gz", 0o640),
        ("002", "squashfs", 0o664),
    ] {
        let o = out.path().join(format!("o.{ext}"));
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$@\""))
            .arg("sh")
            .arg(bin())
            .arg("pack")
            .arg(src.path())
            .arg("-o")
            .arg(&o)
            .status()
            .unwrap();
        assert!(st.success());
        let mode = std::fs::metadata(&o).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want, "umask {umask} {ext}: {mode:o}");
    }
}
