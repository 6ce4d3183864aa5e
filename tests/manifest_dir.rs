//! `pack --manifest-dir DIR` names each manifest `manifest_<32 lowercase
//! hex>.json` (16 random bytes: unguessable, different on every run),
//! prints the path and signs it with `--sign` (Debian's `minisign -V`
//! accepts the signature); `verify ART --manifest-dir DIR` picks the
//! manifest describing ART's sha256 among several, warns about a corrupt one
//! and names it, and refuses with DIR and the sha256 when none fits.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::bin::{code, json, ok, repropack, stderr, stdout};
use crate::support::exit;
use crate::support::fixtures::write_mode;
use crate::support::hash::sha256sum;
use crate::support::tool::have_tool;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `manifest_` + 32 lowercase hex digits + `.json`, checked byte by byte.
fn is_unguessable_name(name: &str) -> bool {
    let Some(hex) = name
        .strip_prefix("manifest_")
        .and_then(|r| r.strip_suffix(".json"))
    else {
        return false;
    };
    hex.len() == 32
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Packs a one-file tree holding `content` into `dir/NAME.tar` with
/// `--manifest-dir dir/manifests --sign k.sec --json`; returns the
/// artifact and the manifest path printed.
fn pack(dir: &Path, name: &str, content: &[u8], rev: &str) -> (PathBuf, PathBuf) {
    let src = dir.join(format!("src-{name}"));
    write_mode(&src, "data.txt", content, 0o644);
    let art = dir.join(format!("{name}.tar"));
    let mdir = dir.join("manifests");
    fs::create_dir_all(&mdir).unwrap();
    let out = repropack()
        .args(["pack", p(&src), "-o", p(&art), "--manifest-dir", p(&mdir)])
        .args(["--sign", p(&dir.join("k.sec")), "--json"])
        .args(["--source-revision", rev])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    let manifest = PathBuf::from(v["manifest"].as_str().unwrap());
    assert!(
        stderr(&out).contains(&format!("manifest {}", manifest.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(manifest.parent(), Some(mdir.as_path()));
    (art, manifest)
}

fn keygen(dir: &Path) -> PathBuf {
    let public = dir.join("k.pub");
    ok(&repropack()
        .args(["keygen", "-s", p(&dir.join("k.sec")), "-p", p(&public)])
        .output()
        .unwrap());
    public
}

fn verify(art: &Path, mdir: &Path, extra: &[&str]) -> Output {
    repropack()
        .args(["verify", p(art), "--manifest-dir", p(mdir)])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn manifest_dir_names_are_unguessable_signed_and_printed() {
    let d = tempfile::tempdir().unwrap();
    keygen(d.path());
    let (_, m1) = pack(d.path(), "a", b"one\n", "rev-1");
    let (_, m2) = pack(d.path(), "a", b"one\n", "rev-1");
    let name = |m: &Path| m.file_name().unwrap().to_str().unwrap().to_string();
    assert!(is_unguessable_name(&name(&m1)), "{}", name(&m1));
    assert!(is_unguessable_name(&name(&m2)), "{}", name(&m2));
    // The same job twice: same manifest bytes, two fresh names.
    assert_ne!(m1, m2);
    assert_eq!(fs::read(&m1).unwrap(), fs::read(&m2).unwrap());
    let expected: BTreeSet<String> = [&m1, &m2]
        .iter()
        .flat_map(|m| [name(m), format!("{}.minisig", name(m))])
        .collect();
    assert_eq!(names(m1.parent().unwrap()), expected);
    if have_tool("minisign") {
        let out = Command::new("minisign")
            .args(["-V", "-p", p(&d.path().join("k.pub")), "-m", p(&m1)])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Not tied to the helper's shape check: a sibling name is rejected.
    assert!(!is_unguessable_name(
        "manifest_0123456789ABCDEF0123456789abcdef.json"
    ));
    assert!(!is_unguessable_name("manifest_0123456789abcdef.json"));
}

#[test]
fn verify_picks_the_manifest_of_the_artifact_and_names_a_corrupt_one() {
    let d = tempfile::tempdir().unwrap();
    let public = keygen(d.path());
    let (a, _) = pack(d.path(), "a", b"one\n", "rev-a");
    let (b, mb) = pack(d.path(), "b", b"two\n", "rev-b");
    let mdir = d.path().join("manifests");
    let trust = ["--trusted-key", p(&public)];

    // Each artifact gets its own manifest: the revision proves which.
    for (art, rev) in [(&a, "rev-a"), (&b, "rev-b")] {
        let mut args = trust.to_vec();
        args.extend(["--expect-revision", rev]);
        let out = verify(art, &mdir, &args);
        assert_eq!(code(&out), exit::OK, "{}{}", stdout(&out), stderr(&out));
    }
    let wrong = verify(
        &a,
        &mdir,
        &[trust[0], trust[1], "--expect-revision", "rev-b"],
    );
    assert_eq!(code(&wrong), exit::DIFFERENT, "{}", stderr(&wrong));
    let out = verify(&b, &mdir, &[]);
    assert!(stderr(&out).contains(p(&mb)), "{}", stderr(&out));

    // A corrupt manifest is named: a warning when another one fits ...
    let corrupt = mdir.join("manifest_00112233445566778899aabbccddeeff.json");
    fs::write(&corrupt, b"{\"schema\": \"repropack.manifest/1\", trunc").unwrap();
    // A fifo under a manifest's name is skipped, not read (it would block).
    let fifo = mdir.join("manifest_ffeeddccbbaa99887766554433221100.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = verify(&a, &mdir, &trust);
    assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    for named in [&corrupt, &fifo] {
        assert!(
            stderr(&out).contains("warning") && stderr(&out).contains(p(named)),
            "{}",
            stderr(&out)
        );
    }

    // ... part of the error when none does.
    let c_src = d.path().join("src-c");
    write_mode(&c_src, "data.txt", b"three\n", 0o644);
    let c = d.path().join("c.tar");
    ok(&repropack()
        .args(["pack", p(&c_src), "-o", p(&c)])
        .output()
        .unwrap());
    let before = names(&mdir);
    let out = verify(&c, &mdir, &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), exit::INPUT, "{err}");
    assert!(
        err.contains(p(&mdir)) && err.contains(&sha256sum(&c)),
        "{err}"
    );
    assert!(err.contains(p(&corrupt)), "{err}");
    assert!(!stdout(&out).contains("OK"));
    assert_eq!(names(&mdir), before);
}
