//! The command line: refs printed by `pack` and `hash` (in every
//! `--algorithm`, checked by coreutils and OpenSSL), `--ref-base`, `--json`,
//! `--version`.

use std::process::Command;

use crate::support::bin::{bin, repropack};
use crate::support::fixtures::{Build, sample_tree};
use crate::support::hash::{coreutils_sum, sha256_file};
use crate::support::tool::have_tool;

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

/// SHA3-256 of `path` as `openssl dgst -sha3-256 -r` prints it.
fn openssl_sha3_256(path: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["dgst", "-sha3-256", "-r"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

#[test]
fn hash_prints_refs_in_the_algorithm_asked_for_as_coreutils_and_openssl_compute_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.whl");
    // Over one read buffer, so that chunking is exercised.
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let abs = file.canonicalize().unwrap();
    let mut expected = vec![
        ("sha256", "sha256", coreutils_sum("sha256sum", &abs)),
        ("sha384", "sha384", coreutils_sum("sha384sum", &abs)),
        ("sha512", "sha512", coreutils_sum("sha512sum", &abs)),
    ];
    if have_tool("openssl") {
        expected.push(("sha3-256", "sha3_256", openssl_sha3_256(&abs)));
    }
    for (algorithm, fragment, hex) in expected {
        let res = repropack()
            .args(["hash", "--algorithm", algorithm])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        assert_eq!(
            String::from_utf8(res.stdout).unwrap(),
            format!("{}#{fragment}={hex}\n", abs.display())
        );
        let res = repropack()
            .args(["hash", "--json", "--algorithm", algorithm])
            .arg(&file)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(v[fragment], hex.as_str());
        assert_eq!(v["size"], bytes.len());
        assert_eq!(v["ref"], format!("{}#{fragment}={hex}", abs.display()));
    }
}

#[test]
fn hash_refuses_an_unknown_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a");
    std::fs::write(&file, b"x").unwrap();
    let res = repropack()
        .args(["hash", "--algorithm", "md5"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(
        res.status.code(),
        Some(crate::support::exit::USAGE),
        "{err}"
    );
    assert!(err.contains("md5") && err.contains("sha3-256"), "{err}");
    assert!(res.stdout.is_empty());
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
