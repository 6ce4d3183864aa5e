//! `pack --provenance`: an in-toto Statement v1 with an SLSA Provenance v1
//! predicate, read by Python's `json` module and checked against coreutils'
//! digests of the artifact and git's own commit id; byte-identical across
//! packs; refused before anything is packed when it cannot be written;
//! signed like any file, as Debian's `minisign` confirms.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::bin::{code, ok, repropack_out, stderr};
use crate::support::exit;
use crate::support::fixtures::write_mode;
use crate::support::hash::coreutils_sum;
use crate::support::tool::{git, have_tool};

fn pack(src: &Path, out: &Path, provenance: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--provenance".as_ref(),
        provenance.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    repropack_out(args)
}

fn small_tree(root: &Path) {
    write_mode(root, "bin/run", b"#!/bin/sh\necho hi\n", 0o755);
    write_mode(root, "etc/app.conf", b"answer = 42\n", 0o644);
}

/// What Python's `json` module reads in the statement, one `key=value`
/// per line: the fields a consumer checks, every key anywhere in the
/// document (`key:NAME`), and every string value that looks like a date
/// (`date:VALUE`).
const READ_STATEMENT: &str = r#"
import json, re, sys
s = json.load(open(sys.argv[1]))
p = s["predicate"]
b = p["buildDefinition"]
print("_type=" + s["_type"])
print("predicateType=" + s["predicateType"])
print("subjects=%d" % len(s["subject"]))
print("name=" + s["subject"][0]["name"])
print("sha256=" + s["subject"][0]["digest"]["sha256"])
print("sha512=" + s["subject"][0]["digest"]["sha512"])
print("buildType=" + b["buildType"])
print("builder=" + p["runDetails"]["builder"]["id"])
print("builderVersion=" + p["runDetails"]["builder"]["version"]["repropack"])
print("format=" + b["externalParameters"]["format"])
print("source=" + b["externalParameters"]["sources"][0]["path"])
for d in b.get("resolvedDependencies", []):
    print("commit=" + d["digest"]["gitCommit"])
    print("uri=" + d.get("uri", ""))
    print("dirty=%s" % d["annotations"]["dirty"])
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            print("key:" + k)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
    elif isinstance(v, str) and re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", v):
        print("date:" + v)
walk(s)
"#;

fn read_statement(path: &Path) -> Vec<(String, String)> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(READ_STATEMENT)
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(['=', ':']).unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn field<'a>(facts: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    facts
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn statement_names_the_artifact_by_the_digests_coreutils_computes() {
    if !have_tool("python3") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    small_tree(&src);
    for name in ["app.tar.gz", "app.squashfs"] {
        let (art, prov) = (
            d.path().join(name),
            d.path().join(format!("{name}.intoto.json")),
        );
        ok(&pack(&src, &art, &prov, &[]));
        let facts = read_statement(&prov);
        let one = |k: &str| {
            field(&facts, k)
                .first()
                .copied()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(one("_type"), "https://in-toto.io/Statement/v1");
        assert_eq!(one("predicateType"), "https://slsa.dev/provenance/v1");
        assert_eq!(one("subjects"), "1");
        assert_eq!(one("name"), name);
        assert_eq!(one("sha256"), coreutils_sum("sha256sum", &art));
        assert_eq!(one("sha512"), coreutils_sum("sha512sum", &art));
        assert_eq!(one("buildType"), "https://repropack.dev/buildtypes/pack/v1");
        assert_eq!(one("builder"), "https://repropack.dev/builder");
        assert_eq!(one("builderVersion"), env!("CARGO_PKG_VERSION"));
        assert_eq!(one("source"), src.to_str().unwrap());
        assert_eq!(
            one("format"),
            if name.ends_with("gz") {
                "tar.gz"
            } else {
                "squashfs"
            }
        );
        // Nothing of the wall clock: no SLSA metadata, no time-stamp key,
        // no date-like value.
        let keys = field(&facts, "key");
        for banned in ["metadata", "startedOn", "finishedOn", "invocationId"] {
            assert!(!keys.contains(&banned), "{banned} in {keys:?}");
        }
        for k in &keys {
            let k = k.to_ascii_lowercase();
            assert!(
                !["timestamp", "date", "started", "finished", "created"]
                    .iter()
                    .any(|t| k.contains(t)),
                "time-like key {k}"
            );
        }
        assert!(field(&facts, "date").is_empty(), "{facts:?}");
        // A tree outside git resolves nothing.
        assert!(field(&facts, "commit").is_empty(), "{facts:?}");
    }
}

#[test]
fn two_packs_of_the_same_tree_write_the_same_statement() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    small_tree(&src);
    let mut written = Vec::new();
    for (run, jobs) in [("one", "1"), ("two", "3")] {
        let dir = d.path().join(run);
        fs::create_dir(&dir).unwrap();
        let prov = dir.join("app.intoto.json");
        ok(&pack(
            &src,
            &dir.join("app.tar.gz"),
            &prov,
            &["--jobs", jobs],
        ));
        written.push(fs::read(&prov).unwrap());
        // The clock moves on and the sources' mtimes change.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write_mode(&src, "etc/app.conf", b"answer = 42\n", 0o644);
    }
    assert_eq!(
        String::from_utf8_lossy(&written[0]),
        String::from_utf8_lossy(&written[1])
    );
}

#[test]
fn a_git_source_resolves_to_its_commit_and_its_remote_without_credentials() {
    if !have_tool("git") || !have_tool("python3") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    small_tree(&repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://ci:s3cret@git.example/app.git",
        ],
    );
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let prov = d.path().join("p.json");
    ok(&pack(&repo, &d.path().join("a.tar"), &prov, &[]));
    let facts = read_statement(&prov);
    assert_eq!(field(&facts, "commit"), [head.as_str()]);
    assert_eq!(field(&facts, "uri"), ["git+https://git.example/app.git"]);
    assert_eq!(field(&facts, "dirty"), ["False"]);
    let text = fs::read_to_string(&prov).unwrap();
    assert!(!text.contains("s3cret") && !text.contains("ci@"), "{text}");

    // An untracked file makes it dirty; --source-revision replaces git.
    write_mode(&repo, "new.txt", b"x\n", 0o644);
    ok(&pack(&repo, &d.path().join("a.tar"), &prov, &[]));
    assert_eq!(field(&read_statement(&prov), "dirty"), ["True"]);
    ok(&pack(
        &repo,
        &d.path().join("a.tar"),
        &prov,
        &["--source-revision", "release-7"],
    ));
    assert!(field(&read_statement(&prov), "commit").is_empty());
    assert!(
        fs::read_to_string(&prov)
            .unwrap()
            .contains("\"sourceRevision\": \"release-7\"")
    );
}

#[test]
fn a_provenance_path_in_a_missing_directory_is_refused_before_packing() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    small_tree(&src);
    let out_dir = d.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let prov = d.path().join("no-such-dir/p.json");
    let res = pack(&src, &out_dir.join("a.tar.gz"), &prov, &[]);
    let err = stderr(&res);
    assert_eq!(code(&res), exit::OUTPUT, "{err}");
    assert!(
        err.contains("no-such-dir/p.json") && err.contains("does not exist"),
        "{err}"
    );
    assert!(res.stdout.is_empty(), "no ref may be printed on failure");
    let left: Vec<_> = fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!d.path().join("no-such-dir").exists());
}

#[test]
fn a_provenance_path_that_is_the_output_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    small_tree(&src);
    let out_dir = d.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let art = out_dir.join("a.tar");
    let res = pack(&src, &art, &art, &[]);
    let err = stderr(&res);
    assert_eq!(code(&res), exit::USAGE, "{err}");
    assert!(
        err.contains("a.tar") && err.contains("would replace the artifact"),
        "{err}"
    );
    assert!(res.stdout.is_empty(), "no ref may be printed on failure");
    let left: Vec<_> = fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn minisign_verifies_a_signed_statement() {
    if !have_tool("minisign") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("tree");
    small_tree(&src);
    let (sec, public) = (d.path().join("k.sec"), d.path().join("k.pub"));
    ok(&repropack_out([
        "keygen".as_ref(),
        "-s".as_ref(),
        sec.as_os_str(),
        "-p".as_ref(),
        public.as_os_str(),
    ]));
    let minisign = |file: &str| {
        Command::new("minisign")
            .args(["-V", "-m", file, "-p", "k.pub"])
            .current_dir(d.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    // `repropack sign` signs it like any file...
    let prov = d.path().join("a.intoto.json");
    ok(&pack(&src, &d.path().join("a.tar"), &prov, &[]));
    ok(&repropack_out([
        "sign".as_ref(),
        prov.as_os_str(),
        "-s".as_ref(),
        sec.as_os_str(),
    ]));
    let theirs = minisign("a.intoto.json");
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    // ...and `pack --sign` signs it with the artifact.
    let prov = d.path().join("b.intoto.json");
    let sec_arg = sec.to_str().unwrap();
    ok(&pack(
        &src,
        &d.path().join("b.tar"),
        &prov,
        &["--sign", sec_arg],
    ));
    for file in ["b.tar", "b.intoto.json"] {
        let theirs = minisign(file);
        assert!(theirs.status.success(), "{file}: {}", stderr(&theirs));
    }
    // An edited statement no longer verifies.
    let mut text = fs::read_to_string(&prov).unwrap();
    text = text.replace("\"tar\"", "\"tar.gz\"");
    fs::write(&prov, text).unwrap();
    assert!(!minisign("b.intoto.json").status.success());
}
