//! `check` rebuilds under perturbation and leaves a marker; `gate` honours
//! it. The non-deterministic input is a file rewritten between the two
//! builds through the library's `Check::between_builds`.

use std::path::Path;

use crate::support::exit;

use crate::support::bin::{code, ok, repropack_env, repropack_out};
use crate::support::fixtures::{manifest_sample_tree, write_mode};

fn check(src: &Path, out: &Path, flags: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec![
        "check".to_string(),
        src.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    repropack_env(args, env)
}

fn gate(artifact: &Path, flags: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec!["gate".to_string(), artifact.display().to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    repropack_env(args, env)
}

fn marker(out: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = out.as_os_str().to_os_string();
    s.push(suffix);
    s.into()
}

#[test]
fn deterministic_build_is_verified_and_passes_the_gate_silently() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    for (name, flags) in [
        ("a.tar.gz", &[][..]),
        (
            "b.tar",
            &["--keep-modes", "--clamp-mtime", "--jobs", "1"][..],
        ),
    ] {
        let out = dir.path().join(name);
        let run = check(&src, &out, flags, &[]);
        let printed = ok(&run);
        let v = marker(&out, ".verified");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&v).unwrap()).unwrap();
        assert_eq!(m["status"], "verified");
        assert_eq!(format!("{}\n", m["ref"].as_str().unwrap()), printed);
        assert_eq!(m["sha256"], m["rebuilt_sha256"]);
        let perturbed = m["perturbations"].to_string();
        assert!(
            perturbed.contains("reverse")
                && perturbed.contains("umask")
                && perturbed.contains("--jobs"),
            "{perturbed}"
        );
        assert!(!marker(&out, ".unverified").exists());
        // Same bytes as a plain pack.
        let plain = dir.path().join(format!("plain-{name}"));
        let mut args = vec![
            "pack".to_string(),
            src.display().to_string(),
            "-o".into(),
            plain.display().to_string(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        ok(&repropack_out(args));
        assert_eq!(std::fs::read(&plain).unwrap(), std::fs::read(&out).unwrap());

        let g = gate(&out, &["--require-verified"], &[]);
        assert_eq!(code(&g), exit::OK);
        assert!(
            g.stderr.is_empty() && g.stdout.is_empty(),
            "gate must be silent when verified"
        );
    }
}

#[test]
fn old_mtimes_under_clamp_and_fifos_survive_the_perturbed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let old = write_mode(&src, "old.txt", b"from 1970\n", 0o644);
    filetime::set_file_mtime(&old, filetime::FileTime::from_unix_time(1000, 0)).unwrap();
    let fifo = std::ffi::CString::new(src.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let out = dir.path().join("c.tar");
    let run = check(&src, &out, &["--clamp-mtime", "--specials"], &[]);
    ok(&run);
    assert!(marker(&out, ".verified").exists());
    // The old mtime really is in the artifact (so the copy had to keep it).
    let m = dir.path().join("m.json");
    ok(&repropack_out([
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        dir.path().join("d.tar").as_os_str(),
        "--clamp-mtime".as_ref(),
        "--specials".as_ref(),
        "--manifest".as_ref(),
        m.as_os_str(),
    ]));
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.contains("\"mtime\": 1000,"), "{text}");
    assert!(text.contains("\"kind\": \"fifo\""), "{text}");
}

#[test]
fn file_rewritten_between_builds_is_unverified_and_out_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let out = dir.path().join("a.tar.gz");
    // A previous verified run must not survive an unverified one.
    ok(&check(&src, &out, &[], &[]));
    assert!(marker(&out, ".verified").exists());
    let before = std::fs::read(&out).unwrap();

    // The library's between-builds hook stands in for a generated file
    // that changes on every build.
    let target = src.join("pkg/sub/data.toml");
    let pack = repropack::Pack::new([&src]).output(&out);
    let outcome = repropack::Check::new(pack)
        .between_builds(move || {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&target)?
                .write_all(b"mutated between builds\n")
        })
        .run()
        .unwrap();
    assert!(!outcome.verified);
    assert!(outcome.marker_path.ends_with("a.tar.gz.unverified"));
    // OUT is the first build, intact.
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(!marker(&out, ".verified").exists());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(marker(&out, ".unverified")).unwrap()).unwrap();
    assert_eq!(m["status"], "unverified");
    let diffs = m["differences"].to_string();
    assert!(diffs.contains("pkg/sub/data.toml"), "{diffs}");
    assert_ne!(m["sha256"], m["rebuilt_sha256"]);

    // Default: warn and go on. Required (flag or env): refuse.
    let g = gate(&out, &[], &[]);
    assert_eq!(code(&g), exit::OK);
    assert!(String::from_utf8_lossy(&g.stderr).contains("warning"));
    assert_eq!(
        code(&gate(&out, &["--require-verified"], &[])),
        exit::UNVERIFIED
    );
    assert_eq!(
        code(&gate(&out, &[], &[("REPROPACK_REQUIRE_VERIFIED", "1")])),
        exit::UNVERIFIED
    );
    assert_eq!(
        code(&gate(&out, &[], &[("REPROPACK_REQUIRE_VERIFIED", "0")])),
        0
    );
}

#[test]
fn gate_does_not_trust_a_marker_for_other_bytes_or_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let out = dir.path().join("a.tar");
    ok(&check(&src, &out, &[], &[]));
    assert_eq!(code(&gate(&out, &["--require-verified"], &[])), exit::OK);
    // Rebuild different bytes at the same path: the marker is stale.
    write_mode(&src, "README.txt", b"changed\n", 0o644);
    ok(&repropack_out([
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]));
    let g = gate(&out, &["--require-verified"], &[]);
    assert_eq!(code(&g), exit::UNVERIFIED);
    assert!(String::from_utf8_lossy(&g.stderr).contains("other bytes"));

    let plain = dir.path().join("b.tar");
    ok(&repropack_out([
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        plain.as_os_str(),
    ]));
    let g = gate(&plain, &[], &[]);
    assert_eq!(code(&g), exit::OK);
    assert!(String::from_utf8_lossy(&g.stderr).contains("not verified"));
    assert_eq!(
        code(&gate(&plain, &["--require-verified"], &[])),
        exit::UNVERIFIED
    );
}
