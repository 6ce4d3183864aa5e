//! `repropack push` to a directory and to a real S3-speaking server on
//! 127.0.0.1 (`s3s-fs`, run in-process: an S3 implementation from
//! crates.io, with SigV4 authentication, storing objects as plain files),
//! then `repropack fetch` of the printed ref. Objects are checked on the
//! server's disk with coreutils `sha256sum`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::bin::{bin, json, stderr, stdout};
use crate::support::fixtures::artifact;
use crate::support::hash::{sha256_hex, sha256sum};
use crate::support::s3_server::{S3, SECRET};

#[test]
fn push_to_s3_then_fetch_round_trips() {
    let s3 = S3::start(&["artifacts"]);
    let src = tempfile::tempdir().unwrap();
    let body = artifact(1, 700_000);
    let file = src.path().join("app.squashfs");
    fs::write(&file, &body).unwrap();
    let hex = sha256_hex(&body);

    let out = s3
        .cmd(SECRET)
        .args(["push", "--json"])
        .arg(&file)
        .arg("s3://artifacts/team/x/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let expected_ref = format!("s3://artifacts/team/x/sha256/{hex}.squashfs#sha256={hex}");
    assert_eq!(v["ref"], expected_ref);
    assert_eq!(v["uploaded"], true);
    assert_eq!(v["size"], body.len());
    let stored = s3.object_file("artifacts", &format!("team/x/sha256/{hex}.squashfs"));
    assert_eq!(sha256sum(&stored), hex);

    // Same bytes again: the object exists with the right size, no upload.
    let out = s3
        .cmd(SECRET)
        .args(["push", "--json"])
        .arg(&file)
        .arg("s3://artifacts/team/x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["uploaded"], false);
    assert_eq!(json(&out)["ref"], expected_ref);

    let cache = tempfile::tempdir().unwrap();
    let out = s3
        .cmd(SECRET)
        .args(["fetch", "--json", &expected_ref, "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["cache_hit"], false);
    assert_eq!(
        v["source"],
        format!("s3://artifacts/team/x/sha256/{hex}.squashfs")
    );
    let path = PathBuf::from(v["path"].as_str().unwrap());
    assert_eq!(path, cache.path().join("sha256").join(&hex[..2]).join(&hex));
    assert_eq!(sha256sum(&path), hex);
    assert_eq!(fs::read(&path).unwrap(), body);
}

#[test]
fn large_push_uses_multipart_and_round_trips() {
    let s3 = S3::start(&["big"]);
    let src = tempfile::tempdir().unwrap();
    // Above object_store's 10 MiB BufWriter capacity: a multipart upload.
    let body = artifact(2, 13 * 1024 * 1024);
    let file = src.path().join("rootfs.tar.gz");
    fs::write(&file, &body).unwrap();
    let hex = sha256_hex(&body);
    let out = s3
        .cmd(SECRET)
        .arg("push")
        .arg(&file)
        .arg("s3://big")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = stdout(&out);
    assert_eq!(r, format!("s3://big/sha256/{hex}.tar.gz#sha256={hex}"));
    assert_eq!(
        sha256sum(&s3.object_file("big", &format!("sha256/{hex}.tar.gz"))),
        hex
    );
    let cache = tempfile::tempdir().unwrap();
    let out = s3
        .cmd(SECRET)
        .args(["fetch", &r, "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sha256sum(Path::new(&stdout(&out))), hex);
}

#[test]
fn s3_missing_object_wrong_hash_and_bad_credentials_fail_cleanly() {
    let s3 = S3::start(&["bkt"]);
    let src = tempfile::tempdir().unwrap();
    let body = artifact(3, 10_000);
    let file = src.path().join("a.tar");
    fs::write(&file, &body).unwrap();
    let hex = sha256_hex(&body);
    let cache = tempfile::tempdir().unwrap();

    let missing = format!("s3://bkt/sha256/{hex}.tar#sha256={hex}");
    let out = s3
        .cmd(SECRET)
        .args(["fetch", &missing, "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    eprintln!("s3 missing: {}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    let out = s3
        .cmd("wrong-secret")
        .arg("push")
        .arg(&file)
        .arg("s3://bkt")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    eprintln!("s3 push, bad credentials: {}", stderr(&out));
    assert!(!s3.object_file("bkt", &format!("sha256/{hex}.tar")).exists());

    let out = s3
        .cmd(SECRET)
        .arg("push")
        .arg(&file)
        .arg("s3://bkt")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let wrong = format!("s3://bkt/sha256/{hex}.tar#sha256={}", sha256_hex(b"other"));
    let out = s3
        .cmd(SECRET)
        .args(["fetch", &wrong, "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains(&hex), "{}", stderr(&out));

    let out = s3
        .cmd("wrong-secret")
        .args(["fetch", &missing, "--retries", "0", "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );

    let left: Vec<_> = walkdir::WalkDir::new(cache.path())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.path().extension().is_none_or(|x| x != "lock"))
        .map(|e| e.path().to_path_buf())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn push_to_a_directory_stores_by_content_and_fetch_reads_it_back() {
    let dest = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let body = artifact(4, 50_000);
    let file = src.path().join("img.squashfs");
    fs::write(&file, &body).unwrap();
    let hex = sha256_hex(&body);

    let out = Command::new(bin())
        .args(["push", "--json"])
        .arg(&file)
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let target = fs::canonicalize(dest.path())
        .unwrap()
        .join(format!("sha256/{hex}.squashfs"));
    assert_eq!(
        v["ref"],
        format!("{}#sha256={hex}", target.to_str().unwrap())
    );
    assert_eq!(v["uploaded"], true);
    assert_eq!(sha256sum(&target), hex);
    let names: Vec<_> = fs::read_dir(dest.path().join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{hex}.squashfs")], "no temp litter");

    let uri = format!("file://{}", dest.path().display());
    let out = Command::new(bin())
        .args(["push", "--json"])
        .arg(&file)
        .arg(&uri)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["uploaded"], false);
    let r = v["ref"].as_str().unwrap().to_string();
    assert!(r.starts_with("file:///"), "{r}");

    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["fetch", &r, "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sha256sum(Path::new(&stdout(&out))), hex);
}

#[test]
fn push_of_missing_file_is_input_error() {
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["push", "/nonexistent/a.tar"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/a.tar"));
    assert_eq!(fs::read_dir(dest.path()).unwrap().count(), 0);
}

#[test]
fn push_to_a_directory_replaces_a_damaged_object_of_the_right_size() {
    let dest = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let body = artifact(5, 4096);
    let file = src.path().join("x.tar");
    fs::write(&file, &body).unwrap();
    let hex = sha256_hex(&body);
    let target = dest.path().join(format!("sha256/{hex}.tar"));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::write(&target, artifact(6, 4096)).unwrap();
    let out = Command::new(bin())
        .args(["push", "--json"])
        .arg(&file)
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["uploaded"], true);
    assert_eq!(sha256sum(&target), hex);
}
