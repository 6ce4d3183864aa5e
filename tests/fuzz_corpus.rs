//! Replays the committed fuzz corpora through the fuzz targets' own entry
//! functions (`fuzz/entry.rs`) on the stable toolchain, without libFuzzer:
//! every input that once found new coverage, and every former crash kept
//! under `fuzz/regressions/`, must still run without a panic.
//!
//! The corpora are part of the test: a target whose corpus directory is
//! missing or empty fails, so losing a corpus cannot pass silently.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/entry.rs"]
mod entry;

/// A fuzz target's body: takes the raw input, returns nothing, never panics.
type Entry = fn(&[u8]);

/// Every fuzz target and its entry function, by the target's name (which
/// is also its file in `fuzz/fuzz_targets/` and its corpus directory).
const TARGETS: &[(&str, Entry)] = &[
    ("squashfs_read", entry::squashfs_read),
    ("tar_read", entry::tar_read),
    ("targz_read", entry::targz_read),
    ("detect", entry::detect),
    ("ref_parse", entry::ref_parse),
    ("manifest_parse", entry::manifest_parse),
    ("from_tar_stage", entry::from_tar_stage),
    ("signature_parse", entry::signature_parse),
    ("pack_file_parse", entry::pack_file_parse),
    ("xattr_file_parse", entry::xattr_file_parse),
    ("oci_parse", entry::oci_parse),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir`, sorted so failures list the same way each
/// run; `None` when `dir` does not exist.
fn files_in(dir: &Path) -> Option<Vec<PathBuf>> {
    let read = fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = read
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// Runs `f` on each file and returns the ones that panicked, with the
/// panic message.
fn replay(f: Entry, files: &[PathBuf]) -> Vec<String> {
    let mut failed = Vec::new();
    for file in files {
        let data = fs::read(file).unwrap();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {message}", file.display()));
        }
    }
    failed
}

fn replay_target(name: &str) {
    let (_, f) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    let corpus = fuzz_dir().join("corpus").join(name);
    let files = files_in(&corpus).unwrap_or_default();
    assert!(
        !files.is_empty(),
        "{} is missing or empty: the corpus is committed with the target (fuzz/README.md)",
        corpus.display()
    );
    let mut failed = replay(*f, &files);
    if let Some(regressions) = files_in(&fuzz_dir().join("regressions").join(name)) {
        failed.extend(replay(*f, &regressions));
    }
    assert!(failed.is_empty(), "panicked on:\n{}", failed.join("\n"));
}

#[test]
fn squashfs_read_corpus_replays() {
    replay_target("squashfs_read");
}

#[test]
fn tar_read_corpus_replays() {
    replay_target("tar_read");
}

#[test]
fn targz_read_corpus_replays() {
    replay_target("targz_read");
}

#[test]
fn detect_corpus_replays() {
    replay_target("detect");
}

#[test]
fn ref_parse_corpus_replays() {
    replay_target("ref_parse");
}

#[test]
fn manifest_parse_corpus_replays() {
    replay_target("manifest_parse");
}

#[test]
fn from_tar_stage_corpus_replays() {
    replay_target("from_tar_stage");
}

#[test]
fn oci_parse_corpus_replays() {
    replay_target("oci_parse");
}

#[test]
fn signature_parse_corpus_replays() {
    replay_target("signature_parse");
}

/// Every target in `fuzz/fuzz_targets/` is replayed here, and every corpus
/// or regression directory belongs to a target, so a new target cannot be
/// added without its replay and a renamed one cannot leave a dead corpus.
#[test]
fn every_fuzz_target_is_replayed() {
    let known: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let stems = |dir: &Path, files: bool| -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| if files { p.is_file() } else { p.is_dir() })
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    };
    let targets = stems(&fuzz_dir().join("fuzz_targets"), true);
    let mut expected: Vec<String> = known.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(targets, expected, "fuzz/fuzz_targets/ vs TARGETS");
    for sub in ["corpus", "regressions"] {
        for dir in stems(&fuzz_dir().join(sub), false) {
            assert!(
                known.contains(&dir.as_str()),
                "fuzz/{sub}/{dir} belongs to no fuzz target"
            );
        }
    }
}
