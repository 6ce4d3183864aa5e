//! The CI recipe of notes/README-manifest.md, end to end on a local
//! directory store: check -> gate -> push -> fetch -> verify -> gate.

mod manifest_common;

use manifest_common::*;
use repropack::exit;

#[test]
fn check_push_fetch_verify_gate_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sample_tree(&src);
    let out = dir.path().join("app.squashfs");
    let manifest = dir.path().join("app.manifest.json");
    let store = dir.path().join("store");
    let cache = dir.path().join("cache");
    std::fs::create_dir(&store).unwrap();
    let p = |x: &std::path::Path| x.display().to_string();

    let checked = ok(&repropack([
        "check",
        &p(&src),
        "-o",
        &p(&out),
        "--manifest",
        &p(&manifest),
        "--source-revision",
        "rev-42",
    ]));
    assert!(checked.trim().ends_with(&format!(
        "#sha256={}",
        repropack::digest::hash_file(&out).unwrap().0
    )));
    assert_eq!(
        code(&repropack(["gate", &p(&out), "--require-verified"])),
        0
    );

    let reference = ok(&repropack(["push", &p(&out), &p(&store)]))
        .trim()
        .to_string();
    let fetched = ok(&repropack(["fetch", &reference, "--cache", &p(&cache)]))
        .trim()
        .to_string();
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&out).unwrap()
    );

    let v = repropack([
        "verify",
        &fetched,
        "--ref",
        &reference,
        "--manifest",
        &p(&manifest),
        "--expect-revision",
        "rev-42",
    ]);
    assert_eq!(code(&v), 0, "{}", String::from_utf8_lossy(&v.stdout));
    let wrong = repropack([
        "verify",
        &fetched,
        "--ref",
        &reference,
        "--manifest",
        &p(&manifest),
        "--expect-revision",
        "rev-43",
    ]);
    assert_eq!(code(&wrong), exit::DIFFERENT);

    // Markers do not travel with push: the fetched copy is not verified.
    let g = repropack(["gate", &fetched]);
    assert_eq!(code(&g), 0);
    assert!(String::from_utf8_lossy(&g.stderr).contains("not verified"));
    assert_eq!(
        code(&repropack(["gate", &fetched, "--require-verified"])),
        exit::UNVERIFIED
    );
}
