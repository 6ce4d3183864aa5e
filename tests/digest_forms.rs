//! `repropack fetch` pinned by digests other than `#sha256=`: `#sha384=`
//! and `#sha512=` refs, `--integrity` (Subresource Integrity) and
//! `--digest ALG:HEX`, against a real HTTP server on 127.0.0.1. Expected
//! digests come from coreutils (`sha384sum`, `sha512sum`) and OpenSSL
//! (`openssl dgst`), never from repropack; the cache is inspected as plain
//! files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::bin::{json, repropack, stderr};
use crate::support::cache::cache_content;
use crate::support::exit;
use crate::support::fixtures::artifact;
use crate::support::hash::coreutils_sum;
use crate::support::http_server::{Reply, Server};

fn fetch(cache: &Path, args: &[&str]) -> Output {
    repropack()
        .arg("fetch")
        .args(args)
        .arg("--cache")
        .arg(cache)
        .args(["--timeout", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("run repropack")
}

/// `body` written to a file in `dir`, for the external tools to hash.
fn on_disk(dir: &Path, body: &[u8]) -> PathBuf {
    let p = dir.join("artifact.bin");
    fs::write(&p, body).unwrap();
    p
}

/// What `openssl dgst -ALG` prints for `file`, after `= `.
fn openssl_hex(alg: &str, file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["dgst", alg])
        .arg(file)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl dgst {alg}");
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim_end()
        .rsplit_once("= ")
        .expect("openssl dgst output")
        .1
        .to_string()
}

/// `openssl dgst -ALG -binary FILE | base64`: an SRI hash's base64 part.
fn openssl_base64(alg: &str, file: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl dgst {alg} -binary \"$1\" | base64 -w0"))
        .arg("sh")
        .arg(file)
        .output()
        .expect("run openssl | base64");
    assert!(out.status.success(), "openssl dgst {alg} -binary | base64");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `<alg>/<2 hex>/<hex>` under `cache`.
fn entry(cache: &Path, alg: &str, hex: &str) -> PathBuf {
    cache.join(alg).join(&hex[..2]).join(hex)
}

/// The cache holds exactly the entry of `hex` under `alg` and its record,
/// with `body` in it.
fn assert_stored_only(cache: &Path, alg: &str, hex: &str, body: &[u8]) -> PathBuf {
    let e = entry(cache, alg, hex);
    assert_eq!(fs::read(&e).unwrap(), body);
    let rel = e.strip_prefix(cache).unwrap().to_path_buf();
    let mut record = rel.clone();
    record.set_file_name(format!("{hex}.record"));
    assert_eq!(cache_content(cache), vec![rel, record]);
    e
}

fn assert_nothing_stored(cache: &Path) {
    let left = cache_content(cache);
    assert!(left.is_empty(), "cache should hold nothing, holds {left:?}");
}

#[test]
fn sha384_and_sha512_refs_are_verified_and_stored_under_their_algorithm() {
    let server = Server::start();
    let body = artifact(11, 200_000);
    server.route("/a.tar", vec![Reply::Ok(body.clone())]);
    let tmp = tempfile::tempdir().unwrap();
    let file = on_disk(tmp.path(), &body);
    for (alg, tool) in [("sha384", "sha384sum"), ("sha512", "sha512sum")] {
        let hex = coreutils_sum(tool, &file);
        let cache = tempfile::tempdir().unwrap();
        let r = format!("{}#{alg}={hex}", server.url("/a.tar"));
        let before = server.count("/a.tar");

        let first = fetch(cache.path(), &[&r, "--json"]);
        assert!(first.status.success(), "{}", stderr(&first));
        let v = json(&first);
        let e = assert_stored_only(cache.path(), alg, &hex, &body);
        assert_eq!(coreutils_sum(tool, &e), hex);
        assert_eq!(v["path"], e.to_str().unwrap());
        assert_eq!(v[alg], hex);
        assert_eq!(v["cache_hit"], false);

        let second = fetch(cache.path(), &[&r, "--json"]);
        assert!(second.status.success(), "{}", stderr(&second));
        let v = json(&second);
        assert_eq!(v["cache_hit"], true);
        assert_eq!(v["path"], e.to_str().unwrap());
        assert_eq!(
            server.count("/a.tar"),
            before + 1,
            "a cache hit must not download"
        );
    }
}

#[test]
fn integrity_and_digest_flags_pin_a_plain_uri() {
    let server = Server::start();
    let body = artifact(12, 150_000);
    server.route("/b.sqfs", vec![Reply::Ok(body.clone())]);
    let url = server.url("/b.sqfs");
    let tmp = tempfile::tempdir().unwrap();
    let file = on_disk(tmp.path(), &body);

    let sri = format!("sha384-{}", openssl_base64("-sha384", &file));
    let hex384 = openssl_hex("-sha384", &file);
    let cache = tempfile::tempdir().unwrap();
    let out = fetch(cache.path(), &[&url, "--integrity", &sri, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["sha384"], hex384);
    let e = assert_stored_only(cache.path(), "sha384", &hex384, &body);
    assert_eq!(coreutils_sum("sha384sum", &e), hex384);
    let again = fetch(cache.path(), &[&url, "--integrity", &sri, "--json"]);
    assert_eq!(json(&again)["cache_hit"], true);

    let sha3 = openssl_hex("-sha3-256", &file);
    let cache = tempfile::tempdir().unwrap();
    let arg = format!("sha3:{sha3}");
    let out = fetch(cache.path(), &[&url, "--digest", &arg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["sha3_256"], sha3);
    let e = assert_stored_only(cache.path(), "sha3-256", &sha3, &body);
    assert_eq!(openssl_hex("-sha3-256", &e), sha3);

    let sha512 = coreutils_sum("sha512sum", &file);
    let cache = tempfile::tempdir().unwrap();
    let arg = format!("sha512:{sha512}");
    let out = fetch(cache.path(), &[&url, "--digest", &arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stored_only(cache.path(), "sha512", &sha512, &body);
}

#[test]
fn a_mismatch_under_any_digest_form_exits_5_and_stores_nothing() {
    let server = Server::start();
    let good = artifact(13, 50_000);
    let evil = artifact(14, 50_000);
    server.route("/c.tar", vec![Reply::Ok(evil.clone())]);
    let url = server.url("/c.tar");
    let tmp = tempfile::tempdir().unwrap();
    let good_file = on_disk(tmp.path(), &good);
    let sha512 = coreutils_sum("sha512sum", &good_file);
    let sha384 = coreutils_sum("sha384sum", &good_file);
    let sha3 = openssl_hex("-sha3-256", &good_file);
    let sri = format!("sha384-{}", openssl_base64("-sha384", &good_file));
    let ref512 = format!("{url}#sha512={sha512}");
    let ref384 = format!("{url}#sha384={sha384}");
    let digest = format!("sha3:{sha3}");
    let cases: [(&[&str], &str, &str); 4] = [
        (&[&ref512], "sha512", &sha512),
        (&[&ref384], "sha384", &sha384),
        (&[&url, "--integrity", &sri], "sha384", &sha384),
        (&[&url, "--digest", &digest], "sha3-256", &sha3),
    ];
    for (args, alg, expected) in cases {
        let cache = tempfile::tempdir().unwrap();
        let out = fetch(cache.path(), args);
        assert_eq!(
            out.status.code(),
            Some(exit::HASH_MISMATCH),
            "{}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains(&format!("{alg} mismatch")), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(err.contains(&url), "{err}");
        assert!(out.stdout.is_empty());
        assert_nothing_stored(cache.path());
    }
}

#[test]
fn malformed_digest_forms_are_refused_before_any_request() {
    let server = Server::start();
    server.route("/d.tar", vec![Reply::Ok(b"x".to_vec())]);
    let url = server.url("/d.tar");
    let hex64 = "ab".repeat(32);
    let with_fragment = format!("{url}#sha256={hex64}");
    let usage: [(&[&str], &str); 8] = [
        (&[&url, "--digest", &format!("md5:{hex64}")], "--digest"),
        (
            &[&url, "--digest", &format!("sha3:{}", &hex64[..62])],
            "--digest",
        ),
        (
            &[
                &url,
                "--digest",
                &format!("sha256:{}", hex64.to_uppercase()),
            ],
            "--digest",
        ),
        (&[&url, "--digest", &hex64], "--digest"),
        (&[&url, "--integrity", "sha384-not base64!"], "--integrity"),
        (
            &[
                &url,
                "--integrity",
                &format!("sha1-{}", "A".repeat(27) + "="),
            ],
            "--integrity",
        ),
        (&[&url, "--integrity", "sha512-q83vEjRWeJA="], "--integrity"),
        (
            &[&with_fragment, "--digest", &format!("sha256:{hex64}")],
            "fragment",
        ),
    ];
    for (args, names) in usage {
        let cache = tempfile::tempdir().unwrap();
        let out = fetch(cache.path(), args);
        assert_eq!(
            out.status.code(),
            Some(exit::USAGE),
            "{args:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains(names), "{args:?}: {err}");
        assert_nothing_stored(cache.path());
    }
    for bad in [
        format!("{url}#sha512={hex64}"),
        format!("{url}#sha384={}", "AB".repeat(48)),
        format!("{url}#sha384={}#sha256={hex64}", "ab".repeat(48)),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let out = fetch(cache.path(), &[&bad]);
        assert_eq!(
            out.status.code(),
            Some(exit::INPUT),
            "{bad}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("ref"), "{}", stderr(&out));
        assert_nothing_stored(cache.path());
    }
    assert_eq!(server.count("/d.tar"), 0, "nothing may be requested");
}

#[test]
fn a_sha512_fetch_extracts_into_the_tree_keyed_by_the_bytes_sha256() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("hello.txt"), b"hello from a sha512 ref\n").unwrap();
    let tar = tmp.path().join("a.tar");
    let made = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("hello.txt")
        .status()
        .expect("run tar");
    assert!(made.success());
    let body = fs::read(&tar).unwrap();
    server.route("/a.tar", vec![Reply::Ok(body)]);
    let sha512 = coreutils_sum("sha512sum", &tar);
    let sha256 = coreutils_sum("sha256sum", &tar);
    let cache = tempfile::tempdir().unwrap();
    let r = format!("{}#sha512={sha512}", server.url("/a.tar"));
    let out = fetch(cache.path(), &[&r, "--extract", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let dir = PathBuf::from(v["extracted"].as_str().unwrap());
    assert!(
        dir.starts_with(
            cache
                .path()
                .join("extracted")
                .join("sha256")
                .join(&sha256[..2])
        ),
        "{}",
        dir.display()
    );
    assert_eq!(
        fs::read(dir.join("hello.txt")).unwrap(),
        b"hello from a sha512 ref\n"
    );
    assert_eq!(v["sha512"], sha512);
}

#[test]
fn digests_other_than_sha256_are_refused_where_only_sha256_is_known() {
    let tmp = tempfile::tempdir().unwrap();
    let file = on_disk(tmp.path(), &artifact(15, 1000));
    let sha512 = coreutils_sum("sha512sum", &file);

    // verify compares sha256 only: a #sha512= ref is named and refused.
    let r = format!("{}#sha512={sha512}", file.display());
    let out = repropack()
        .arg("verify")
        .arg(&file)
        .args(["--ref", &r])
        .output()
        .expect("run repropack");
    assert_eq!(out.status.code(), Some(exit::INPUT), "{}", stderr(&out));
    assert!(stderr(&out).contains("#sha256="), "{}", stderr(&out));

    // An OCI registry serves blobs by sha256: nothing is requested.
    let server = Server::start();
    let blob = format!("/v2/team/app/blobs/sha512:{sha512}");
    server.route("/v2/", vec![Reply::Status(200)]);
    server.route(&blob, vec![Reply::Ok(fs::read(&file).unwrap())]);
    let cache = tempfile::tempdir().unwrap();
    let r = format!("oci://{}/team/app#sha512={sha512}", server.authority());
    let out = fetch(cache.path(), &[&r]);
    assert_eq!(out.status.code(), Some(exit::FETCH), "{}", stderr(&out));
    assert!(stderr(&out).contains("by its sha256"), "{}", stderr(&out));
    assert_nothing_stored(cache.path());
    assert_eq!(
        server.count("/v2/") + server.count(&blob),
        0,
        "nothing may be requested"
    );
}
