//! `fetch --manifest`: executors fetch what a signed manifest names, from a
//! real HTTP server on 127.0.0.1. The manifest's signature is judged before
//! anything else, so an unsigned, tampered or foreign manifest (or no trust
//! at all) exits 9 with no request seen by the server and nothing in the
//! cache; then `artifact.urls` are tried in order, each download checked
//! against the manifest's sha256 (cache entries checked with coreutils
//! `sha256sum`). A manifest signed by Debian's `minisign -S` is accepted.
//! Promotion: `verify --expect-revision` with a trusted key refuses a
//! manifest recording no revision or another one, and an unsigned one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::bin::{code, json, ok, repropack, stderr, stdout};
use crate::support::exit;
use crate::support::fixtures::manifest_sample_tree;
use crate::support::hash::sha256sum;
use crate::support::http_server::{Reply, Server};
use crate::support::tool::have_tool;

/// A packed, signed artifact and its manifest in a temp dir.
struct Signed {
    dir: tempfile::TempDir,
    art: PathBuf,
    manifest: PathBuf,
    public: PathBuf,
    hex: String,
}

impl Signed {
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A repropack key pair `NAME.sec` / `NAME.pub` in `dir`.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (sec, public) = (
        dir.join(format!("{name}.sec")),
        dir.join(format!("{name}.pub")),
    );
    ok(&repropack()
        .args(["keygen", "-s", p(&sec), "-p", p(&public)])
        .output()
        .unwrap());
    (sec, public)
}

/// `pack src -o art.tar --manifest m.json [--sign k.sec] --url …` with the
/// given extra flags; returns the printed ref.
fn pack(dir: &Path, sign: bool, extra: &[&str]) -> (PathBuf, PathBuf, String) {
    let src = dir.join("src");
    if !src.exists() {
        manifest_sample_tree(&src);
    }
    let (art, manifest) = (dir.join("art.tar"), dir.join("m.json"));
    let mut cmd = repropack();
    cmd.args(["pack", p(&src), "-o", p(&art), "--manifest", p(&manifest)]);
    if sign {
        cmd.args(["--sign", p(&dir.join("k.sec"))]);
    }
    let printed = ok(&cmd.args(extra).output().unwrap()).trim().to_string();
    (art, manifest, printed)
}

fn signed(urls: &[String], extra: &[&str]) -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = keygen(dir.path(), "k");
    let mut args: Vec<&str> = extra.to_vec();
    for u in urls {
        args.extend(["--url", u.as_str()]);
    }
    let (art, manifest, printed) = pack(dir.path(), true, &args);
    let hex = sha256sum(&art);
    if let Some(first) = urls.first() {
        assert_eq!(printed, format!("{first}#sha256={hex}"));
    }
    Signed {
        dir,
        art,
        manifest,
        public,
        hex,
    }
}

fn fetch_manifest(s: &Signed, trusted: Option<&Path>, extra: &[&str]) -> Output {
    let mut cmd = repropack();
    cmd.args(["fetch", "--manifest", p(&s.manifest), "--cache"])
        .arg(s.cache())
        .args(["--timeout", "2"]);
    if let Some(key) = trusted {
        cmd.arg("--trusted-key").arg(key);
    }
    cmd.args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run repropack")
}

/// Every file under `dir`, recursively (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// Exit 9 naming the manifest and `reason`, no request to the server,
/// nothing printed, nothing in the cache.
fn assert_refused(out: &Output, s: &Signed, server: &Server, route: &str, reason: &str) {
    let err = stderr(out);
    assert_eq!(code(out), exit::SIGNATURE, "{err}");
    assert!(err.contains("m.json") && err.contains(reason), "{err}");
    assert!(stdout(out).is_empty(), "{}", stdout(out));
    assert_eq!(server.count(route), 0, "a request was made: {err}");
    assert_eq!(files(&s.cache()), Vec::<PathBuf>::new(), "{err}");
}

#[test]
fn fetch_manifest_tries_urls_in_order_and_json_names_the_one_that_served() {
    let server = Server::start();
    let urls = [server.url("/gone/art.tar"), server.url("/ok/art.tar")];
    let s = signed(&urls, &[]);
    let bytes = fs::read(&s.art).unwrap();
    server.route("/gone/art.tar", vec![Reply::Status(404)]);
    server.route("/ok/art.tar", vec![Reply::Ok(bytes.clone())]);

    let recorded: serde_json::Value =
        serde_json::from_slice(&fs::read(&s.manifest).unwrap()).unwrap();
    assert_eq!(recorded["artifact"]["urls"], serde_json::json!(urls));

    let out = fetch_manifest(&s, Some(&s.public), &["--json"]);
    let v = json(&out);
    assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    assert_eq!(v["source"], urls[1].as_str());
    assert_eq!(v["sha256"], s.hex.as_str());
    assert_eq!(v["manifest"], p(&s.manifest));
    let path = PathBuf::from(v["path"].as_str().unwrap());
    assert!(path.starts_with(s.cache()));
    assert_eq!(sha256sum(&path), s.hex);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(server.count("/gone/art.tar"), 1);
    assert_eq!(server.count("/ok/art.tar"), 1);

    // Plain output is the path, as for `fetch REF`.
    let again = fetch_manifest(&s, Some(&s.public), &[]);
    assert_eq!(ok(&again).trim(), p(&path));
}

#[test]
fn fetch_manifest_extract_extracts_the_verified_artifact() {
    let server = Server::start();
    let s = signed(&[server.url("/a/art.tar")], &[]);
    server.route("/a/art.tar", vec![Reply::Ok(fs::read(&s.art).unwrap())]);
    let out = fetch_manifest(&s, Some(&s.public), &["--extract"]);
    let dir = PathBuf::from(ok(&out).trim());
    assert_eq!(fs::read(dir.join("README.txt")).unwrap(), b"hello\n");
    assert_eq!(
        fs::read(dir.join("bin/run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
}

#[test]
fn unsigned_tampered_untrusted_or_untrusting_fetches_make_no_request() {
    let server = Server::start();
    let route = "/a/art.tar";
    let s = signed(&[server.url(route)], &[]);
    server.route(route, vec![Reply::Ok(fs::read(&s.art).unwrap())]);
    let sig = PathBuf::from(format!("{}.minisig", p(&s.manifest)));
    let original = fs::read(&s.manifest).unwrap();

    // No trust configured at all.
    assert_refused(
        &fetch_manifest(&s, None, &[]),
        &s,
        &server,
        route,
        "no trusted key",
    );

    // A key that is not the signer's.
    let (_, stranger) = keygen(s.dir.path(), "stranger");
    assert_refused(
        &fetch_manifest(&s, Some(&stranger), &[]),
        &s,
        &server,
        route,
        "not a trusted key",
    );

    // The manifest edited after signing: another URL slipped in first.
    let text = String::from_utf8(original.clone()).unwrap();
    let evil = text.replace(
        "\"urls\": [",
        "\"urls\": [\n      \"http://127.0.0.1:9/evil.tar\",",
    );
    assert_ne!(evil, text);
    fs::write(&s.manifest, evil).unwrap();
    assert_refused(
        &fetch_manifest(&s, Some(&s.public), &[]),
        &s,
        &server,
        route,
        "bad signature",
    );
    fs::write(&s.manifest, &original).unwrap();

    // No signature.
    fs::remove_file(&sig).unwrap();
    assert_refused(
        &fetch_manifest(&s, Some(&s.public), &[]),
        &s,
        &server,
        route,
        "no signature",
    );

    // The same refusals through REPROPACK_TRUSTED_KEYS.
    let out = repropack()
        .args(["fetch", "--manifest", p(&s.manifest), "--cache"])
        .arg(s.cache())
        .env("REPROPACK_TRUSTED_KEYS", &s.public)
        .output()
        .unwrap();
    assert_refused(&out, &s, &server, route, "no signature");
}

#[test]
fn manifest_signed_by_minisign_itself_is_accepted() {
    if !have_tool("minisign") {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (art, manifest, _) = pack(dir.path(), false, &["--url", &server.url("/a/art.tar")]);
    server.route("/a/art.tar", vec![Reply::Ok(fs::read(&art).unwrap())]);
    let minisign = |args: &[&str]| {
        let out = Command::new("minisign")
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "minisign {args:?}: {}", stderr(&out));
    };
    minisign(&["-G", "-W", "-p", "ms.pub", "-s", "ms.sec"]);
    minisign(&["-S", "-s", "ms.sec", "-m", "m.json"]);
    let cache = dir.path().join("cache");
    let out = repropack()
        .args([
            "fetch",
            "--manifest",
            p(&manifest),
            "--json",
            "--cache",
            p(&cache),
        ])
        .args(["--trusted-key", p(&dir.path().join("ms.pub"))])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    assert_eq!(
        sha256sum(Path::new(v["path"].as_str().unwrap())),
        sha256sum(&art)
    );
}

#[test]
fn other_bytes_on_the_server_are_refused_and_nothing_is_cached() {
    let server = Server::start();
    let s = signed(&[server.url("/a/art.tar"), server.url("/b/art.tar")], &[]);
    let mut other = fs::read(&s.art).unwrap();
    other[600] ^= 1;
    server.route("/a/art.tar", vec![Reply::Ok(other.clone())]);
    server.route("/b/art.tar", vec![Reply::Status(404)]);
    let out = fetch_manifest(&s, Some(&s.public), &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), exit::HASH_MISMATCH, "{err}");
    assert!(
        err.contains("sha256 mismatch") && err.contains(&s.hex),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let left: Vec<PathBuf> = files(&s.cache())
        .into_iter()
        .filter(|f| f.extension().is_none_or(|e| e != "lock"))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());

    // Every URL merely failing is the usual fetch failure.
    server.route("/a/art.tar", vec![Reply::Status(404)]);
    let out = fetch_manifest(&s, Some(&s.public), &[]);
    assert_eq!(code(&out), exit::FETCH, "{}", stderr(&out));
}

#[test]
fn a_manifest_without_urls_is_a_clear_error_and_keeps_its_old_bytes() {
    let s = signed(&[], &[]);
    let text = fs::read_to_string(&s.manifest).unwrap();
    assert!(!text.contains("\"urls\""), "{text}");
    let out = fetch_manifest(&s, Some(&s.public), &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), exit::INPUT, "{err}");
    assert!(
        err.contains("m.json") && err.contains("no artifact.urls"),
        "{err}"
    );
    assert_eq!(files(&s.cache()), Vec::<PathBuf>::new());
}

#[test]
fn pack_refuses_a_bad_url_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    for bad in [
        "ftp://host/a.tar",
        "https://host/a.tar#x",
        "s3://",
        "http://[::1",
    ] {
        let out = repropack()
            .args(["pack", p(&src), "-o", p(&dir.path().join("a.tar"))])
            .args(["--manifest", p(&dir.path().join("m.json")), "--url", bad])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(code(&out), exit::USAGE, "{bad}: {err}");
        assert!(err.contains(bad), "{err}");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{bad}: something was written"
        );
    }
}

/// `verify ART --manifest M --trusted-key PUB --expect-revision REV`.
fn promote(s: &Signed, rev: &str) -> Output {
    repropack()
        .args(["verify", p(&s.art), "--manifest", p(&s.manifest)])
        .args(["--trusted-key", p(&s.public), "--expect-revision", rev])
        .output()
        .unwrap()
}

#[test]
fn promotion_refuses_no_revision_another_revision_and_an_unsigned_manifest() {
    let s = signed(&[], &["--source-revision", "rev-1"]);
    ok(&promote(&s, "rev-1"));

    let other = promote(&s, "rev-2");
    assert_eq!(code(&other), exit::DIFFERENT, "{}", stderr(&other));
    assert!(stdout(&other).contains("manifest records rev-1, expected rev-2"));

    // The revision edited after signing.
    let original = fs::read_to_string(&s.manifest).unwrap();
    fs::write(&s.manifest, original.replace("rev-1", "rev-2")).unwrap();
    let edited = promote(&s, "rev-2");
    assert_eq!(code(&edited), exit::SIGNATURE, "{}", stderr(&edited));
    assert!(stderr(&edited).contains("m.json: bad signature"));
    fs::write(&s.manifest, &original).unwrap();

    // Unsigned.
    fs::remove_file(format!("{}.minisig", p(&s.manifest))).unwrap();
    let unsigned = promote(&s, "rev-1");
    assert_eq!(code(&unsigned), exit::SIGNATURE, "{}", stderr(&unsigned));
    assert!(stderr(&unsigned).contains("m.json: no signature"));
    assert!(!stdout(&unsigned).contains("OK"));

    // Temp dirs are outside any git worktree: no revision is recorded.
    let none = signed(&[], &[]);
    assert!(
        !fs::read_to_string(&none.manifest)
            .unwrap()
            .contains("\"source\"")
    );
    let out = promote(&none, "rev-1");
    assert_eq!(code(&out), exit::DIFFERENT, "{}", stderr(&out));
    assert!(stdout(&out).contains("manifest records no source revision"));

    // And --expect-revision alone is not a verification.
    let alone = repropack()
        .args(["verify", p(&s.art), "--expect-revision", "rev-1"])
        .output()
        .unwrap();
    assert_eq!(code(&alone), exit::USAGE, "{}", stderr(&alone));
}
