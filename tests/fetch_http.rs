//! `repropack fetch` against a real HTTP server on 127.0.0.1 that injects
//! faults: the real binary, a fresh cache per test; cache entries are
//! checked with coreutils `sha256sum` and against the bytes the server was
//! given, and the server's request counts prove retries and cache hits.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::bin::{repropack, stderr, stdout};
use crate::support::cache::cache_content;
use crate::support::fixtures::artifact;
use crate::support::hash::{sha256_hex, sha256sum};
use crate::support::http_server::{Reply, Server};

/// The ref `URL#sha256=HEX` of `path` on `server`, pinned to `body`'s hash.
fn pinned(server: &Server, path: &str, body: &[u8]) -> String {
    format!("{}#sha256={}", server.url(path), sha256_hex(body))
}

fn fetch(cache: &Path, reference: &str, extra: &[&str]) -> Output {
    repropack()
        .arg("fetch")
        .arg(reference)
        .arg("--cache")
        .arg(cache)
        .args(["--timeout", "2"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run repropack")
}

/// Every file under `dir` (recursively), relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.exists() {
        for e in walkdir::WalkDir::new(dir) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn entry_path(cache: &Path, hex: &str) -> PathBuf {
    cache.join("sha256").join(&hex[..2]).join(hex)
}

fn assert_nothing_stored(cache: &Path) {
    let left = cache_content(cache);
    assert!(left.is_empty(), "cache should hold nothing, holds {left:?}");
}

fn assert_stored_only(cache: &Path, body: &[u8]) -> PathBuf {
    let hex = sha256_hex(body);
    let entry = entry_path(cache, &hex);
    assert_eq!(sha256sum(&entry), hex);
    assert_eq!(fs::read(&entry).unwrap(), body);
    let rel = entry.strip_prefix(cache).unwrap().to_path_buf();
    let mut record = rel.clone();
    record.set_file_name(format!("{hex}.record"));
    assert_eq!(cache_content(cache), vec![rel, record]);
    entry
}

#[test]
fn fetch_stores_verified_bytes_and_second_fetch_is_a_cache_hit() {
    let server = Server::start();
    let body = artifact(1, 300_000);
    server.route("/a.tar", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/a.tar", &body);

    let first = fetch(cache.path(), &r, &["--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let v: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    let entry = assert_stored_only(cache.path(), &body);
    assert_eq!(v["path"], entry.to_str().unwrap());
    assert_eq!(v["sha256"], sha256_hex(&body));
    assert_eq!(v["size"], body.len());
    assert_eq!(v["source"], server.url("/a.tar"));
    assert_eq!(v["cache_hit"], false);

    let second = fetch(cache.path(), &r, &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second), entry.to_str().unwrap());
    assert_eq!(server.count("/a.tar"), 1, "a cache hit must not download");
    let third = fetch(cache.path(), &r, &["--json", "--verify-cache"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&third)).unwrap();
    assert_eq!(v["cache_hit"], true);
    assert_eq!(server.count("/a.tar"), 1);
}

#[test]
fn hash_mismatch_exits_5_names_both_hashes_and_source_and_stores_nothing() {
    let server = Server::start();
    let good = artifact(2, 10_000);
    let evil = artifact(3, 10_000);
    server.route("/a.sqfs", vec![Reply::Ok(evil.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/a.sqfs", &good);
    let out = fetch(cache.path(), &r, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&sha256_hex(&good)), "{err}");
    assert!(err.contains(&sha256_hex(&evil)), "{err}");
    assert!(err.contains(&server.url("/a.sqfs")), "{err}");
    assert!(out.stdout.is_empty());
    assert_nothing_stored(cache.path());
    assert_eq!(server.count("/a.sqfs"), 1, "a mismatch is not retried");
}

#[test]
fn not_found_is_not_retried_and_exits_6() {
    let server = Server::start();
    server.route("/gone", vec![Reply::Status(404)]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/gone", b"x");
    let out = fetch(cache.path(), &r, &["--retries", "3"]);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert_eq!(server.count("/gone"), 1);
    assert_nothing_stored(cache.path());
}

#[test]
fn server_error_then_success_is_retried_with_backoff() {
    let server = Server::start();
    let body = artifact(4, 50_000);
    server.route(
        "/flaky",
        vec![
            Reply::Status(500),
            Reply::Status(503),
            Reply::Ok(body.clone()),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/flaky", &body);
    let out = fetch(cache.path(), &r, &["--retries", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.count("/flaky"), 3);
    assert_stored_only(cache.path(), &body);
}

#[test]
fn server_errors_beyond_the_retry_budget_fail_with_exit_6() {
    let server = Server::start();
    server.route("/down", vec![Reply::Status(500)]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/down", b"x");
    let out = fetch(cache.path(), &r, &["--retries", "1"]);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("500"), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 attempts"), "{}", stderr(&out));
    assert_eq!(server.count("/down"), 2);
    assert_nothing_stored(cache.path());
}

#[test]
fn connection_reset_mid_body_is_retried_and_succeeds() {
    let server = Server::start();
    let body = artifact(5, 200_000);
    server.route(
        "/r",
        vec![
            Reply::Reset {
                body: body.clone(),
                send: 70_000,
            },
            Reply::Ok(body.clone()),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/r", &body);
    let out = fetch(cache.path(), &r, &["--retries", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.count("/r"), 2);
    assert_stored_only(cache.path(), &body);
}

#[test]
fn connection_reset_every_time_fails_cleanly() {
    let server = Server::start();
    let body = artifact(6, 200_000);
    server.route(
        "/r",
        vec![Reply::Reset {
            body: body.clone(),
            send: 70_000,
        }],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/r", &body);
    let out = fetch(cache.path(), &r, &["--retries", "1"]);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    eprintln!("reset: {}", stderr(&out));
    assert_eq!(server.count("/r"), 2);
    assert_nothing_stored(cache.path());
}

#[test]
fn body_shorter_than_content_length_is_retried_then_fails_cleanly() {
    let server = Server::start();
    let body = artifact(7, 100_000);
    server.route(
        "/short",
        vec![Reply::Short {
            body: body.clone(),
            send: 60_000,
        }],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/short", &body);
    let out = fetch(cache.path(), &r, &["--retries", "2"]);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    eprintln!("short: {}", stderr(&out));
    assert_eq!(server.count("/short"), 3);
    assert_nothing_stored(cache.path());

    // A short body followed by a good one succeeds.
    server.route(
        "/short",
        vec![
            Reply::Short {
                body: body.clone(),
                send: 10,
            },
            Reply::Ok(body.clone()),
        ],
    );
    let out = fetch(cache.path(), &r, &["--retries", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stored_only(cache.path(), &body);
}

#[test]
fn bytes_beyond_content_length_never_reach_the_cache() {
    let server = Server::start();
    let body = artifact(8, 40_000);
    // The artifact, then junk the Content-Length does not cover: the client
    // reads exactly Content-Length bytes, which verify.
    server.route(
        "/long",
        vec![Reply::Long {
            body: body.clone(),
            extra: b"TRAILING JUNK".repeat(100),
            declared: body.len(),
        }],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/long", &body);
    let out = fetch(cache.path(), &r, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stored_only(cache.path(), &body);

    // Content-Length smaller than the artifact: the truncated bytes do not
    // verify, so nothing is stored.
    let cache = tempfile::tempdir().unwrap();
    server.route(
        "/long",
        vec![Reply::Long {
            body: body.clone(),
            extra: Vec::new(),
            declared: body.len() - 100,
        }],
    );
    let out = fetch(cache.path(), &r, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    eprintln!("long: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("({} bytes)", body.len() - 100)));
    assert_nothing_stored(cache.path());
}

#[test]
fn stalled_server_times_out_and_is_retried() {
    let server = Server::start();
    let body = artifact(9, 100_000);
    server.route(
        "/stall",
        vec![Reply::Stall {
            body: body.clone(),
            send: 1000,
        }],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/stall", &body);
    let out = repropack()
        .args(["fetch", &r, "--timeout", "0.5", "--retries", "1", "--cache"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    eprintln!("stall: {}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert_eq!(server.count("/stall"), 2);
    assert_nothing_stored(cache.path());
}

#[test]
fn redirects_are_followed_within_the_limit() {
    let server = Server::start();
    let body = artifact(10, 5000);
    server.route("/real", vec![Reply::Ok(body.clone())]);
    server.route("/hop", vec![Reply::Redirect(server.url("/real"))]);
    server.route("/loop", vec![Reply::Redirect(server.url("/loop"))]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/hop", &body);
    let out = fetch(cache.path(), &r, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stored_only(cache.path(), &body);

    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/loop", &body);
    let out = fetch(cache.path(), &r, &["--retries", "3"]);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("redirect"), "{}", stderr(&out));
    // The limit is 10 redirects: 11 requests, and not retried.
    assert_eq!(server.count("/loop"), 11);
    assert_nothing_stored(cache.path());
}

#[test]
fn mirrors_are_tried_in_order_and_each_is_verified() {
    let server = Server::start();
    let body = artifact(11, 20_000);
    let other = artifact(12, 20_000);
    server.route("/primary", vec![Reply::Status(404)]);
    server.route("/m1", vec![Reply::Ok(other.clone())]);
    server.route("/m2", vec![Reply::Ok(body.clone())]);
    server.route("/m3", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/primary", &body);
    let out = fetch(
        cache.path(),
        &r,
        &[
            "--json",
            "--mirror",
            &server.url("/m1"),
            "--mirror",
            &server.url("/m2"),
            "--mirror",
            &server.url("/m3"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["source"], server.url("/m2"));
    assert_eq!(
        [
            server.count("/primary"),
            server.count("/m1"),
            server.count("/m2"),
            server.count("/m3")
        ],
        [1, 1, 1, 0]
    );
    assert_stored_only(cache.path(), &body);
}

#[test]
fn a_mirror_with_other_bytes_is_never_served() {
    let server = Server::start();
    let body = artifact(13, 20_000);
    let sibling = artifact(14, 25_000);
    server.route("/a.squashfs", vec![Reply::Status(500)]);
    server.route("/a.tar.gz", vec![Reply::Ok(sibling.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/a.squashfs", &body);
    let out = fetch(
        cache.path(),
        &r,
        &["--retries", "0", "--mirror", &server.url("/a.tar.gz")],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&server.url("/a.squashfs")) && err.contains("500"),
        "{err}"
    );
    assert!(err.contains(&sha256_hex(&sibling)), "{err}");
    assert!(out.stdout.is_empty());
    assert_nothing_stored(cache.path());
}

#[test]
fn corrupted_cache_entry_is_removed_and_fetched_again() {
    let server = Server::start();
    let body = artifact(15, 30_000);
    server.route("/c", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/c", &body);
    assert!(fetch(cache.path(), &r, &[]).status.success());
    let entry = entry_path(cache.path(), &sha256_hex(&body));

    // Same size, other bytes: the store-time record no longer matches.
    let mut perms = fs::metadata(&entry).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&entry, perms).unwrap();
    fs::write(&entry, artifact(16, 30_000)).unwrap();
    let out = fetch(cache.path(), &r, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["cache_hit"], false);
    assert_eq!(server.count("/c"), 2);
    assert_stored_only(cache.path(), &body);
}

#[test]
fn verify_cache_catches_corruption_the_record_cannot_see() {
    let server = Server::start();
    let body = artifact(17, 30_000);
    server.route("/v", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/v", &body);
    assert!(fetch(cache.path(), &r, &[]).status.success());
    let hex = sha256_hex(&body);
    let entry = entry_path(cache.path(), &hex);
    let record = entry.with_file_name(format!("{hex}.record"));

    // Simulate bit rot below the file system: change the bytes, then make
    // the record describe the changed file again (as if nothing happened).
    let mut perms = fs::metadata(&entry).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&entry, perms).unwrap();
    fs::write(&entry, artifact(18, 30_000)).unwrap();
    let meta = fs::metadata(&entry).unwrap();
    use std::os::unix::fs::MetadataExt;
    let forged = serde_json::json!({
        "size": meta.len(), "dev": meta.dev(), "ino": meta.ino(),
        "mtime_ns": i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        "ctime_ns": i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    });
    fs::write(&record, forged.to_string()).unwrap();

    let out = fetch(cache.path(), &r, &["--verify-cache", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["cache_hit"], false);
    assert_eq!(server.count("/v"), 2);
    assert_stored_only(cache.path(), &body);
}

#[test]
fn sixteen_concurrent_processes_download_once() {
    let server = Server::start();
    let body = artifact(19, 2 * 1024 * 1024);
    server.route(
        "/race",
        vec![Reply::Slow {
            body: body.clone(),
            chunk: 64 * 1024,
            pause: Duration::from_millis(5),
        }],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/race", &body);
    let children: Vec<_> = (0..16)
        .map(|_| {
            repropack()
                .args(["fetch", &r, "--json", "--cache"])
                .arg(cache.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let entry = assert_stored_only(cache.path(), &body);
    let mut downloaded = 0;
    for o in &outs {
        assert!(o.status.success(), "{}", stderr(o));
        let v: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
        assert_eq!(v["path"], entry.to_str().unwrap());
        if v["cache_hit"] == false {
            downloaded += 1;
        }
    }
    eprintln!(
        "race: {} successes of 16, server requests {}, downloads reported {downloaded}, cache files {:?}",
        outs.iter().filter(|o| o.status.success()).count(),
        server.count("/race"),
        cache_content(cache.path())
    );
    assert_eq!(server.count("/race"), 1);
    assert_eq!(downloaded, 1);
}

#[test]
fn local_paths_and_file_uris_are_copied_into_the_cache_and_verified() {
    let src = tempfile::tempdir().unwrap();
    let body = artifact(20, 12_345);
    let file = src.path().join("a b.tar");
    fs::write(&file, &body).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let plain = format!("{}#sha256={}", file.display(), sha256_hex(&body));
    let out = fetch(cache.path(), &plain, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stored_only(cache.path(), &body);

    let cache = tempfile::tempdir().unwrap();
    let uri = format!(
        "file://{}#sha256={}",
        file.display().to_string().replace(' ', "%20"),
        sha256_hex(&body)
    );
    let out = fetch(cache.path(), &uri, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stored_only(cache.path(), &body);

    let cache = tempfile::tempdir().unwrap();
    let wrong = format!("{}#sha256={}", file.display(), sha256_hex(b"other"));
    let out = fetch(cache.path(), &wrong, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_nothing_stored(cache.path());

    let missing = format!("{}/nope#sha256={}", src.path().display(), sha256_hex(&body));
    let out = fetch(cache.path(), &missing, &[]);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{}",
        stderr(&out)
    );
    assert_nothing_stored(cache.path());
}

#[test]
fn malformed_ref_or_mirror_is_input_error() {
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), "http://127.0.0.1:9/a#sha256=abc", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = format!("http://127.0.0.1:9/a#sha256={}", sha256_hex(b"x"));
    let out = fetch(cache.path(), &r, &["--mirror", "ftp://h/a"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_nothing_stored(cache.path());
}

/// A 1 MiB tmpfs mounted for the test (needs root and mount permission),
/// unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount() -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(stderr(&out));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn full_disk_fails_cleanly_without_litter() {
    let server = Server::start();
    let body = artifact(21, 3 * 1024 * 1024);
    server.route("/big", vec![Reply::Ok(body.clone())]);
    let r = pinned(&server, "/big", &body);
    match Tmpfs::mount() {
        Ok(fs_) => {
            let cache = fs_.0.path().join("cache");
            let out = fetch(&cache, &r, &["--retries", "2"]);
            eprintln!("full disk (tmpfs 1 MiB): {}", stderr(&out));
            assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
            assert!(stderr(&out).contains("No space left"), "{}", stderr(&out));
            assert_eq!(server.count("/big"), 1, "a full disk is not retried");
            assert_nothing_stored(&cache);
        }
        Err(why) => {
            // No tmpfs (no mount permission): a file size limit makes the
            // temp file's writes fail the same way (EFBIG instead of ENOSPC).
            eprintln!("tmpfs unavailable ({why}); using RLIMIT_FSIZE");
            let cache = tempfile::tempdir().unwrap();
            let mut cmd = repropack();
            cmd.args(["fetch", &r, "--retries", "2", "--cache"])
                .arg(cache.path());
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe libc calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let lim = libc::rlimit {
                        rlim_cur: 1024 * 1024,
                        rlim_max: 1024 * 1024,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let out = cmd.output().unwrap();
            eprintln!("full disk (RLIMIT_FSIZE 1 MiB): {}", stderr(&out));
            assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
            assert_eq!(server.count("/big"), 1);
            assert_nothing_stored(cache.path());
        }
    }
}

fn gnu_tar_present() -> bool {
    let ok = Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GNU"));
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but GNU tar is missing"
        );
        eprintln!("skipping: GNU tar not installed");
    }
    ok
}

#[test]
fn fetch_extract_publishes_the_tree_once_and_reuses_it() {
    if !gnu_tar_present() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("tree/bin")).unwrap();
    fs::write(src.path().join("tree/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::write(src.path().join("tree/data.txt"), artifact(22, 9000)).unwrap();
    let tarball = src.path().join("t.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(src.path().join("tree"))
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    let body = fs::read(&tarball).unwrap();
    let server = Server::start();
    server.route("/t.tar", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/t.tar", &body);

    let out = fetch(cache.path(), &r, &["--extract", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["extract_reused"], false);
    let dir = PathBuf::from(v["extracted"].as_str().unwrap());
    assert!(dir.starts_with(cache.path().join("extracted/sha256")));
    assert_eq!(fs::read(dir.join("data.txt")).unwrap(), artifact(22, 9000));
    assert_eq!(
        fs::read(dir.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );

    let out = fetch(cache.path(), &r, &["--extract"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), dir.to_str().unwrap());
    assert_eq!(server.count("/t.tar"), 1);

    // Wrong bytes: nothing fetched, nothing extracted.
    let cache = tempfile::tempdir().unwrap();
    let wrong = pinned(&server, "/t.tar", b"other");
    let out = fetch(cache.path(), &wrong, &["--extract"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(!cache.path().join("extracted").exists());
    assert_nothing_stored(cache.path());
}

#[test]
fn fetch_extract_refuses_an_unsafe_archive_with_exit_7() {
    if !gnu_tar_present() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("evil"), b"x").unwrap();
    let tarball = src.path().join("evil.tar");
    // A member named ../evil: GNU tar keeps it with --absolute-names.
    let made = Command::new("tar")
        .arg("-C")
        .arg(src.path())
        .args([
            "--absolute-names",
            "--transform",
            "s,^evil$,../evil,",
            "-cf",
        ])
        .arg(&tarball)
        .arg("evil")
        .status()
        .unwrap();
    assert!(made.success());
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), "../evil");
    let body = fs::read(&tarball).unwrap();
    let server = Server::start();
    server.route("/evil.tar", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/evil.tar", &body);
    let out = fetch(cache.path(), &r, &["--extract"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let extracted: Vec<_> = files(&cache.path().join("extracted"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .collect();
    assert!(extracted.is_empty(), "{extracted:?}");
    assert!(!cache.path().join("evil").exists());
}

#[test]
fn a_killed_fetch_leaves_no_lock_held_and_its_temp_file_is_cleaned_up() {
    let server = Server::start();
    let body = artifact(23, 100_000);
    server.route(
        "/k",
        vec![
            Reply::Stall {
                body: body.clone(),
                send: 50_000,
            },
            Reply::Ok(body.clone()),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/k", &body);
    let mut child = repropack()
        .args(["fetch", &r, "--timeout", "60", "--cache"])
        .arg(cache.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the download is under way: a temp file holding bytes.
    let temp = loop {
        let tmp = files(cache.path())
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "tmp"));
        if let Some(t) = tmp
            && fs::metadata(cache.path().join(&t)).is_ok_and(|m| m.len() > 0)
        {
            break t;
        }
        assert!(child.try_wait().unwrap().is_none(), "fetch ended early");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        cache.path().join(&temp).exists(),
        "SIGKILL leaves the temp file"
    );

    let out = fetch(cache.path(), &r, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.count("/k"), 2);
    assert_stored_only(cache.path(), &body);
}

#[test]
fn chunked_body_cut_before_its_last_chunk_is_retried() {
    let server = Server::start();
    let body = artifact(24, 30_000);
    server.route(
        "/chunked",
        vec![
            Reply::Chunked {
                body: body.clone(),
                complete: false,
            },
            Reply::Chunked {
                body: body.clone(),
                complete: true,
            },
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/chunked", &body);
    let out = fetch(cache.path(), &r, &["--retries", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.count("/chunked"), 2);
    assert_stored_only(cache.path(), &body);
}

#[test]
fn concurrent_fetch_extract_processes_extract_once() {
    if !gnu_tar_present() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("tree/d")).unwrap();
    for i in 0..50 {
        fs::write(src.path().join(format!("tree/d/f{i}")), artifact(i, 5000)).unwrap();
    }
    let tarball = src.path().join("t.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(src.path().join("tree"))
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    let body = fs::read(&tarball).unwrap();
    let server = Server::start();
    server.route("/t.tar", vec![Reply::Ok(body.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let r = pinned(&server, "/t.tar", &body);
    let children: Vec<_> = (0..8)
        .map(|_| {
            repropack()
                .args(["fetch", &r, "--extract", "--json", "--cache"])
                .arg(cache.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut extracted = 0;
    let mut dirs = std::collections::BTreeSet::new();
    for o in &outs {
        assert!(o.status.success(), "{}", stderr(o));
        let v: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
        if v["extract_reused"] == false {
            extracted += 1;
        }
        dirs.insert(v["extracted"].as_str().unwrap().to_string());
    }
    assert_eq!(server.count("/t.tar"), 1);
    assert_eq!(extracted, 1);
    assert_eq!(dirs.len(), 1);
    let dir = PathBuf::from(dirs.into_iter().next().unwrap());
    for i in 0..50 {
        assert_eq!(
            fs::read(dir.join(format!("d/f{i}"))).unwrap(),
            artifact(i, 5000)
        );
    }
}
