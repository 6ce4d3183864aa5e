//! The manifest CI recipe end to end on a local directory store:
//! check -> gate -> push -> fetch -> verify -> gate.

use crate::support::exit;

use crate::support::bin::{code, ok, repropack_out};
use crate::support::fixtures::manifest_sample_tree;

#[test]
fn check_push_fetch_verify_gate_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    manifest_sample_tree(&src);
    let out = dir.path().join("app.squashfs");
    let manifest = dir.path().join("app.manifest.json");
    let store = dir.path().join("store");
    let cache = dir.path().join("cache");
    std::fs::create_dir(&store).unwrap();
    let p = |x: &std::path::Path| x.display().to_string();

    let checked = ok(&repropack_out([
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
        code(&repropack_out(["gate", &p(&out), "--require-verified"])),
        0
    );

    let reference = ok(&repropack_out(["push", &p(&out), &p(&store)]))
        .trim()
        .to_string();
    let fetched = ok(&repropack_out(["fetch", &reference, "--cache", &p(&cache)]))
        .trim()
        .to_string();
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&out).unwrap()
    );

    let v = repropack_out([
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
    let wrong = repropack_out([
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
    let g = repropack_out(["gate", &fetched]);
    assert_eq!(code(&g), 0);
    assert!(String::from_utf8_lossy(&g.stderr).contains("not verified"));
    assert_eq!(
        code(&repropack_out(["gate", &fetched, "--require-verified"])),
        exit::UNVERIFIED
    );
}
