//! Signed reproducibility markers and "build now, verify later": `check
//! --sign` signs the marker it writes and Debian's `minisign -V` accepts the
//! signature; `gate --trusted-key` counts only a marker signed by a trusted
//! key (ours or one `minisign -S` made) that names the artifact's sha256,
//! and warns (or, required, refuses) for an edited, foreign, unsigned or
//! stale one; `check --against ART` rebuilds the sources and judges an
//! artifact packed earlier. No refusal leaves a file behind.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::bin::{code, ok, repropack_env, repropack_out, stderr, stdout};
use crate::support::exit;
use crate::support::fixtures::{manifest_sample_tree, write_mode};
use crate::support::hash::sha256sum;
use crate::support::tool::have_tool;

fn minisign(args: &[&str], dir: &Path) -> Output {
    Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `minisign -V -p PUB -m FILE` succeeds.
fn minisign_accepts(dir: &Path, public: &str, file: &str) {
    let out = minisign(&["-V", "-p", public, "-m", file], dir);
    assert!(out.status.success(), "minisign -V {file}: {}", stderr(&out));
}

/// A repropack key pair `NAME.sec` / `NAME.pub` in `dir`; returns the key id.
fn keygen(dir: &Path, name: &str) -> String {
    let out = repropack_out([
        "keygen".as_ref(),
        "-s".as_ref(),
        dir.join(format!("{name}.sec")).as_os_str(),
        "-p".as_ref(),
        dir.join(format!("{name}.pub")).as_os_str(),
    ]);
    ok(&out).trim().to_string()
}

fn args(words: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    words.iter().map(|w| w.as_ref().to_os_string()).collect()
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    s.into()
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn gate(art: &Path, flags: &[&str], env: &[(&str, &str)]) -> Output {
    let mut a = vec![OsString::from("gate"), art.as_os_str().to_os_string()];
    a.extend(flags.iter().map(OsString::from));
    repropack_env(a, env)
}

/// The gate warns (exit 0, stderr naming the marker and `reason`, JSON
/// status `status`), and refuses with exit 8 under `--require-verified`
/// and under `REPROPACK_REQUIRE_VERIFIED=1`, writing nothing either way.
fn assert_not_verified(art: &Path, trust: &Path, marker: &str, reason: &str, status: &str) {
    let dir = art.parent().unwrap();
    let before = names(dir);
    let key = trust.to_str().unwrap();
    let warned = gate(art, &["--trusted-key", key], &[]);
    let err = stderr(&warned);
    assert_eq!(code(&warned), exit::OK, "{err}");
    assert!(
        err.contains("warning") && err.contains(marker) && err.contains(reason),
        "{err}"
    );
    let refused = gate(art, &["--trusted-key", key, "--require-verified"], &[]);
    let err = stderr(&refused);
    assert_eq!(code(&refused), exit::UNVERIFIED, "{err}");
    assert!(err.contains(marker) && err.contains(reason), "{err}");
    let env = [
        ("REPROPACK_TRUSTED_KEYS", key),
        ("REPROPACK_REQUIRE_VERIFIED", "1"),
    ];
    let refused = gate(art, &["--json"], &env);
    assert_eq!(code(&refused), exit::UNVERIFIED, "{}", stderr(&refused));
    let v: serde_json::Value = serde_json::from_str(&stdout(&refused)).unwrap();
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["signed_by"], serde_json::Value::Null, "{v}");
    assert!(v["reason"].as_str().unwrap().contains(reason), "{v}");
    assert_eq!(names(dir), before, "gate wrote something");
}

#[test]
fn check_sign_signs_each_marker_it_writes_and_minisign_verifies_them() {
    if !have_tool("minisign") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key_id = keygen(d, "k");
    let src = d.join("src");
    manifest_sample_tree(&src);
    let art = d.join("app.tar.gz");
    let out = repropack_out(args(&[
        &"check",
        &src,
        &"-o",
        &art,
        &"--sign",
        &d.join("k.sec"),
    ]));
    ok(&out);
    assert!(
        stderr(&out).contains("app.tar.gz.verified.minisig"),
        "{}",
        stderr(&out)
    );
    minisign_accepts(d, "k.pub", "app.tar.gz.verified");
    let said = minisign(&["-V", "-p", "k.pub", "-m", "app.tar.gz.verified"], d);
    assert!(
        String::from_utf8_lossy(&said.stdout)
            .contains("repropack file:app.tar.gz.verified sha256:"),
        "{}",
        String::from_utf8_lossy(&said.stdout)
    );

    // Trusted by flag or by REPROPACK_TRUSTED_KEYS: verified, silently.
    let public = d.join("k.pub");
    let g = gate(
        &art,
        &[
            "--require-verified",
            "--trusted-key",
            public.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&g), exit::OK, "{}", stderr(&g));
    assert!(g.stderr.is_empty() && g.stdout.is_empty());
    let g = gate(
        &art,
        &["--json"],
        &[("REPROPACK_TRUSTED_KEYS", public.to_str().unwrap())],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&g)).unwrap();
    assert_eq!(v["status"], "verified");
    assert_eq!(v["signed_by"], key_id.as_str());

    // An unverified verdict is signed too, and the verified marker goes
    // with its signature: no signature is left without its marker.
    let target = src.join("pkg/sub/data.toml");
    let key =
        repropack::verify::signature::minisign::SigningKey::load(&d.join("k.sec"), None).unwrap();
    let outcome = repropack::Check::new(repropack::Pack::new([&src]).output(&art))
        .sign(key)
        .between_builds(move || {
            use std::io::Write;
            fs::OpenOptions::new()
                .append(true)
                .open(&target)?
                .write_all(b"changed between builds\n")
        })
        .run()
        .unwrap();
    assert!(!outcome.verified);
    assert_eq!(
        outcome.signature.as_deref(),
        Some(with_suffix(&art, ".unverified.minisig").as_path())
    );
    minisign_accepts(d, "k.pub", "app.tar.gz.unverified");
    assert!(!with_suffix(&art, ".verified").exists());
    assert!(!with_suffix(&art, ".verified.minisig").exists());
    let g = gate(
        &art,
        &[
            "--require-verified",
            "--trusted-key",
            public.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&g), exit::UNVERIFIED, "{}", stderr(&g));
    assert!(stderr(&g).contains("UNVERIFIED"), "{}", stderr(&g));

    // An unsigned check afterwards leaves no stale signature behind.
    ok(&repropack_out(args(&[&"check", &src, &"-o", &art])));
    let left = names(d);
    assert!(
        !left
            .iter()
            .any(|n| n.starts_with("app.tar.gz.") && n.ends_with(".minisig")),
        "{left:?}"
    );
}

#[test]
fn gate_accepts_a_marker_signed_by_minisign_itself() {
    if !have_tool("minisign") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    manifest_sample_tree(&src);
    let art = d.join("app.tar");
    ok(&repropack_out(args(&[&"check", &src, &"-o", &art])));
    let made = minisign(&["-G", "-W", "-p", "m.pub", "-s", "m.sec"], d);
    assert!(made.status.success(), "{}", stderr(&made));
    let signed = minisign(&["-S", "-s", "m.sec", "-m", "app.tar.verified"], d);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let trust = d.join("m.pub");
    let g = gate(
        &art,
        &[
            "--require-verified",
            "--trusted-key",
            trust.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&g), exit::OK, "{}", stderr(&g));
    assert!(g.stderr.is_empty(), "{}", stderr(&g));
}

#[test]
fn gate_refuses_edited_foreign_unsigned_and_stale_markers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k");
    keygen(d, "other");
    let trust = d.join("k.pub");
    let src = d.join("src");
    manifest_sample_tree(&src);
    let check = |art: &Path, key: Option<&str>| {
        let mut a = args(&[&"check", &src, &"-o", &art]);
        if let Some(k) = key {
            a.extend(args(&[&"--sign", &d.join(k)]));
        }
        ok(&repropack_out(a));
    };

    // Edited after signing: still valid JSON naming the right sha256.
    let art = d.join("edited.tar");
    check(&art, Some("k.sec"));
    let marker = with_suffix(&art, ".verified");
    let text = fs::read_to_string(&marker).unwrap();
    let edited = text.replace("reverse name order", "no perturbation at all");
    assert_ne!(edited, text);
    fs::write(&marker, edited).unwrap();
    assert_not_verified(
        &art,
        &trust,
        "edited.tar.verified",
        "bad signature",
        "unverified",
    );

    // Signed by a key that is not trusted.
    let art = d.join("foreign.tar");
    check(&art, Some("other.sec"));
    assert_not_verified(
        &art,
        &trust,
        "foreign.tar.verified",
        "not a trusted key",
        "unverified",
    );

    // Not signed at all (it passes without trust, as before).
    let art = d.join("unsigned.tar");
    check(&art, None);
    assert_eq!(code(&gate(&art, &["--require-verified"], &[])), exit::OK);
    assert_not_verified(
        &art,
        &trust,
        "unsigned.tar.verified",
        "no signature",
        "unverified",
    );

    // Well signed by the trusted key, but for other bytes: copied next to
    // an artifact packed from a changed tree.
    let good = d.join("good.tar");
    check(&good, Some("k.sec"));
    let art = d.join("stale.tar");
    write_mode(&src, "README.txt", b"changed\n", 0o644);
    ok(&repropack_out(args(&[&"pack", &src, &"-o", &art])));
    for suffix in [".verified", ".verified.minisig"] {
        fs::copy(with_suffix(&good, suffix), with_suffix(&art, suffix)).unwrap();
    }
    minisign_or_skip(d, "k.pub", "stale.tar.verified");
    assert_not_verified(
        &art,
        &trust,
        "stale.tar.verified",
        "other bytes",
        "no-marker",
    );

    // A trusted key that cannot be read is an error of its own.
    let g = gate(
        &art,
        &["--trusted-key", d.join("missing.pub").to_str().unwrap()],
        &[],
    );
    assert_eq!(code(&g), exit::SIGNATURE, "{}", stderr(&g));
    assert!(stderr(&g).contains("missing.pub"), "{}", stderr(&g));
}

/// The copied marker is still a good signature of its own bytes (checked
/// by minisign when installed), so only its sha256 makes it stale.
fn minisign_or_skip(dir: &Path, public: &str, file: &str) {
    if have_tool("minisign") {
        minisign_accepts(dir, public, file);
    }
}

#[test]
fn check_against_a_matching_artifact_marks_it_verified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k");
    let src = d.join("src");
    manifest_sample_tree(&src);
    let opts = ["--level", "9", "--mtime", "1700000000", "--jobs", "2"];
    let art = d.join("app.tar.gz");
    let mut a = args(&[&"pack", &src, &"-o", &art]);
    a.extend(opts.iter().map(OsString::from));
    ok(&repropack_out(a));
    let bytes = fs::read(&art).unwrap();
    let before = names(d);

    // Later (the tree copied elsewhere): rebuild and judge.
    let later = d.join("later");
    fs::create_dir(&later).unwrap();
    let copy = later.join("src");
    manifest_sample_tree(&copy);
    let mut a = args(&[
        &"check",
        &"--against",
        &art,
        &copy,
        &"--sign",
        &d.join("k.sec"),
    ]);
    a.extend(opts.iter().map(OsString::from));
    let out = repropack_out(a);
    let printed = ok(&out);
    assert!(
        printed
            .trim()
            .ends_with(&format!("#sha256={}", sha256sum(&art))),
        "{printed}"
    );
    assert_eq!(fs::read(&art).unwrap(), bytes, "ART is never written");
    let mut expected = before.clone();
    expected.insert("app.tar.gz.verified".into());
    expected.insert("app.tar.gz.verified.minisig".into());
    expected.insert("later".into());
    assert_eq!(names(d), expected);
    assert!(names(&later).len() == 1, "{:?}", names(&later));
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(with_suffix(&art, ".verified")).unwrap()).unwrap();
    assert_eq!(m["status"], "verified");
    assert_eq!(m["sha256"], sha256sum(&art));
    assert_eq!(m["rebuilt_sha256"], m["sha256"]);
    if have_tool("minisign") {
        minisign_accepts(d, "k.pub", "app.tar.gz.verified");
    }
    let trust = d.join("k.pub");
    let g = gate(
        &art,
        &[
            "--require-verified",
            "--trusted-key",
            trust.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&g), exit::OK, "{}", stderr(&g));

    // A name that does not tell the format (a cache entry): the bytes do.
    let blob = d.join("blob");
    fs::copy(&art, &blob).unwrap();
    let mut a = args(&[&"check", &"--against", &blob, &copy]);
    a.extend(opts.iter().map(OsString::from));
    ok(&repropack_out(a));
    assert!(d.join("blob.verified").is_file());
}

#[test]
fn check_against_an_artifact_of_a_changed_tree_is_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k");
    let src = d.join("src");
    manifest_sample_tree(&src);
    let art = d.join("app.squashfs");
    ok(&repropack_out(args(&[&"pack", &src, &"-o", &art])));
    let check_against = || {
        repropack_out(args(&[
            &"check",
            &"--against",
            &art,
            &src,
            &"--sign",
            &d.join("k.sec"),
        ]))
    };
    ok(&check_against());
    assert!(with_suffix(&art, ".verified.minisig").is_file());

    write_mode(&src, "pkg/sub/data.toml", b"x = 2\n", 0o600);
    let out = check_against();
    assert_eq!(code(&out), exit::DIFFERENT, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("app.squashfs is UNVERIFIED"),
        "{}",
        stderr(&out)
    );
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(with_suffix(&art, ".unverified")).unwrap()).unwrap();
    assert_eq!(m["status"], "unverified");
    assert_eq!(m["sha256"], sha256sum(&art));
    assert_ne!(m["rebuilt_sha256"], m["sha256"]);
    assert!(
        m["differences"].to_string().contains("pkg/sub/data.toml"),
        "{m}"
    );
    assert!(!with_suffix(&art, ".verified").exists());
    assert!(!with_suffix(&art, ".verified.minisig").exists());
    if have_tool("minisign") {
        minisign_accepts(d, "k.pub", "app.squashfs.unverified");
    }
    let trust = d.join("k.pub");
    let trust = trust.to_str().unwrap();
    let g = gate(&art, &["--trusted-key", trust], &[]);
    assert_eq!(code(&g), exit::OK, "{}", stderr(&g));
    assert!(stderr(&g).contains("warning"), "{}", stderr(&g));
    let g = gate(&art, &["--trusted-key", trust, "--require-verified"], &[]);
    assert_eq!(code(&g), exit::UNVERIFIED, "{}", stderr(&g));
    assert!(stderr(&g).contains("pkg/sub/data.toml"), "{}", stderr(&g));
}

#[test]
fn refused_checks_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "k");
    let src = d.join("src");
    manifest_sample_tree(&src);
    fs::write(d.join("bad.sec"), b"not a minisign key\n").unwrap();
    let art = d.join("app.tar");
    ok(&repropack_out(args(&[&"pack", &src, &"-o", &art])));
    let before = names(d);
    let refused = |a: Vec<OsString>, want: i32, names_: &str| {
        let out = repropack_out(a);
        assert_eq!(code(&out), want, "{}", stderr(&out));
        assert!(stderr(&out).contains(names_), "{}", stderr(&out));
        assert_eq!(names(d), before, "{}", stderr(&out));
    };
    let out = d.join("new.tar");
    refused(
        args(&[&"check", &src, &"-o", &out, &"--sign", &d.join("bad.sec")]),
        exit::SIGNATURE,
        "bad.sec",
    );
    refused(
        args(&[
            &"check",
            &"--against",
            &art,
            &src,
            &"--sign",
            &d.join("bad.sec"),
        ]),
        exit::SIGNATURE,
        "bad.sec",
    );
    refused(
        args(&[
            &"check",
            &"--against",
            &d.join("missing.tar"),
            &src,
            &"--sign",
            &d.join("k.sec"),
        ]),
        exit::INPUT,
        "missing.tar",
    );
    refused(
        args(&[&"check", &"--against", &art, &src, &"-o", &out]),
        exit::USAGE,
        "--against",
    );
    refused(
        args(&[&"check", &"--against", &art, &d.join("no-such-src")]),
        exit::INPUT,
        "no-such-src",
    );
}
