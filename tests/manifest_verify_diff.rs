//! `verify` catches tampering and wrong provenance; `diff` on pairs built to
//! differ in exactly one way reports exactly that difference.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::exit;
use serde_json::Value;

use crate::support::bin::{code, ok, repropack_out};
use crate::support::fixtures::{manifest_sample_tree, write_mode};
use crate::support::tool::have_tool;

struct Fixture {
    dir: tempfile::TempDir,
    src: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        manifest_sample_tree(&src);
        write_mode(&src, "data/unique.bin", b"UNIQUE-CONTENT-0123456789", 0o644);
        Fixture { dir, src }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Packs `src` to `name` with `flags`; returns the printed ref.
    fn pack(&self, src: &Path, name: &str, flags: &[&str]) -> String {
        let mut args = vec!["pack".to_string(), src.display().to_string(), "-o".into()];
        args.push(self.path(name).display().to_string());
        args.extend(flags.iter().map(|s| s.to_string()));
        ok(&repropack_out(args)).trim().to_string()
    }
    fn verify(&self, artifact: &str, flags: &[&str]) -> std::process::Output {
        let mut args = vec![
            "verify".to_string(),
            self.path(artifact).display().to_string(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        repropack_out(args)
    }
    fn diff_json(&self, a: &Path, b: &Path) -> (i32, Value) {
        let out = repropack_out([
            "diff".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "--json".as_ref(),
        ]);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (code(&out), v)
    }
    /// A copy of the source tree to modify.
    fn variant(&self, name: &str) -> PathBuf {
        let dst = self.path(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&self.src)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success());
        dst
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn verify_accepts_the_artifact_its_manifest_describes() {
    let f = Fixture::new();
    let m = f.path("m.json").display().to_string();
    let r = f.pack(
        &f.src,
        "a.tar",
        &["--manifest", &m, "--source-revision", "rev-1"],
    );
    let out = f.verify(
        "a.tar",
        &["--manifest", &m, "--ref", &r, "--expect-revision", "rev-1"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let sha = r.rsplit('=').next().unwrap();
    assert_eq!(code(&f.verify("a.tar", &["--sha256", sha])), 0);
}

#[test]
fn verify_catches_a_flipped_content_byte() {
    let f = Fixture::new();
    let m = f.path("m.json").display().to_string();
    f.pack(&f.src, "a.tar", &["--manifest", &m]);
    let mut bytes = std::fs::read(f.path("a.tar")).unwrap();
    let at = bytes
        .windows(14)
        .position(|w| w == b"UNIQUE-CONTENT")
        .unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(f.path("a.tar"), &bytes).unwrap();
    let out = f.verify("a.tar", &["--manifest", &m]);
    assert_eq!(code(&out), exit::HASH_MISMATCH, "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("changed \"data/unique.bin\": sha256"), "{t}");
    assert_eq!(t.matches("changed ").count(), 1, "{t}");
}

#[test]
fn verify_catches_a_changed_mode_and_a_missing_entry() {
    let f = Fixture::new();
    let m = f.path("m.json").display().to_string();
    f.pack(&f.src, "a.tar.gz", &["--manifest", &m]);

    let v = f.variant("v-mode");
    write_mode(&v, "pkg/empty", b"", 0o755);
    f.pack(&v, "a.tar.gz", &[]);
    let out = f.verify("a.tar.gz", &["--manifest", &m]);
    assert_eq!(code(&out), exit::HASH_MISMATCH);
    let t = text(&out);
    assert!(
        t.contains("changed \"pkg/empty\": mode 0644 (manifest) -> 0755 (artifact)"),
        "{t}"
    );
    assert_eq!(t.matches("changed ").count(), 1, "{t}");

    f.pack(&f.src, "a.tar.gz", &["--exclude", "README.txt"]);
    let out = f.verify("a.tar.gz", &["--manifest", &m]);
    assert_eq!(code(&out), exit::HASH_MISMATCH);
    let t = text(&out);
    assert!(t.contains("missing \"README.txt\""), "{t}");
    assert!(!t.contains("changed "), "{t}");

    // The same bytes under a manifest whose own sha256 agrees but entries do
    // not: entries are still checked.
    f.pack(&f.src, "a.tar.gz", &[]);
    assert_eq!(code(&f.verify("a.tar.gz", &["--manifest", &m])), 0);
}

#[test]
fn verify_fails_closed_on_revision() {
    let f = Fixture::new();
    let with = f.path("with.json").display().to_string();
    let without = f.path("without.json").display().to_string();
    f.pack(
        &f.src,
        "a.tar",
        &["--manifest", &with, "--source-revision", "abc"],
    );
    f.pack(&f.src, "a.tar", &["--manifest", &without]);
    let out = f.verify("a.tar", &["--manifest", &with, "--expect-revision", "abd"]);
    assert_eq!(code(&out), exit::DIFFERENT, "{}", text(&out));
    assert!(text(&out).contains("manifest records abc, expected abd"));
    let out = f.verify(
        "a.tar",
        &["--manifest", &without, "--expect-revision", "abc"],
    );
    assert_eq!(code(&out), exit::DIFFERENT);
    assert!(text(&out).contains("records no source revision"));
    assert_eq!(
        code(&f.verify("a.tar", &["--manifest", &with, "--expect-revision", "abc"])),
        0
    );
    // --expect-revision without a manifest is a usage error.
    assert_eq!(
        code(&f.verify(
            "a.tar",
            &["--sha256", &"0".repeat(64), "--expect-revision", "abc"]
        )),
        exit::USAGE
    );
}

#[test]
fn verify_with_a_wrong_hash_and_nothing_to_check_against() {
    let f = Fixture::new();
    f.pack(&f.src, "a.tar", &[]);
    let out = f.verify("a.tar", &["--sha256", &"0".repeat(64)]);
    assert_eq!(code(&out), exit::HASH_MISMATCH);
    assert_eq!(code(&f.verify("a.tar", &[])), exit::USAGE);
    assert_eq!(code(&f.verify("a.tar", &["--ref", "nohash"])), exit::INPUT);
}

fn entries_changed(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in ["content", "metadata"] {
        for c in v[key].as_array().unwrap() {
            out.push((
                c["field"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap_or("?").to_string(),
            ));
        }
    }
    out
}

fn only_entry_changes(v: &Value) {
    assert_eq!(v["added"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["removed"].as_array().unwrap().len(), 0, "{v}");
    assert!(v["order"].is_null(), "{v}");
}

#[test]
fn diff_reports_byte_identical_and_errors() {
    let f = Fixture::new();
    f.pack(&f.src, "a.tar", &[]);
    f.pack(&f.src, "b.tar", &["--jobs", "1"]);
    let out = repropack_out([
        "diff".as_ref(),
        f.path("a.tar").as_os_str(),
        f.path("b.tar").as_os_str(),
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "byte-identical"
    );
    let out = repropack_out([
        "diff".as_ref(),
        f.path("a.tar").as_os_str(),
        f.path("nope.tar").as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    // A directory against the artifact packed from it: same entries.
    let out = repropack_out([
        "diff".as_ref(),
        f.src.as_os_str(),
        f.path("a.tar").as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn diff_reports_exactly_one_content_byte() {
    let f = Fixture::new();
    let v = f.variant("v");
    write_mode(&v, "data/unique.bin", b"UNIQUE-CONTENT-0123456788", 0o644);
    f.pack(&f.src, "a.tar", &[]);
    f.pack(&v, "b.tar", &[]);
    let (c, j) = f.diff_json(&f.path("a.tar"), &f.path("b.tar"));
    assert_eq!(c, 1);
    only_entry_changes(&j);
    assert_eq!(
        entries_changed(&j),
        vec![("sha256".into(), "data/unique.bin".into())]
    );
    assert_eq!(j["facts"].as_array().unwrap().len(), 0, "{j}");
}

#[test]
fn diff_reports_exactly_one_mode() {
    let f = Fixture::new();
    let v = f.variant("v");
    write_mode(&v, "README.txt", b"hello\n", 0o755);
    f.pack(&f.src, "a.tar.gz", &[]);
    f.pack(&v, "b.tar.gz", &[]);
    let (c, j) = f.diff_json(&f.path("a.tar.gz"), &f.path("b.tar.gz"));
    assert_eq!(c, 1);
    only_entry_changes(&j);
    assert_eq!(
        entries_changed(&j),
        vec![("mode".into(), "README.txt".into())]
    );
}

#[test]
fn diff_reports_mtime_and_owner_changes_and_nothing_else() {
    let f = Fixture::new();
    f.pack(&f.src, "a.tar", &[]);
    f.pack(&f.src, "m.tar", &["--mtime", "1000000000"]);
    f.pack(&f.src, "o.tar", &["--owner", "1000:0"]);
    let (c, j) = f.diff_json(&f.path("a.tar"), &f.path("m.tar"));
    assert_eq!(c, 1);
    only_entry_changes(&j);
    let changes = entries_changed(&j);
    let n = j["tree_digest_a"].clone();
    assert_eq!(
        n, j["tree_digest_b"],
        "mtime is not part of the logical tree"
    );
    assert!(
        !changes.is_empty() && changes.iter().all(|(field, _)| field == "mtime"),
        "{changes:?}"
    );
    let (c, j) = f.diff_json(&f.path("a.tar"), &f.path("o.tar"));
    assert_eq!(c, 1);
    only_entry_changes(&j);
    let changes = entries_changed(&j);
    assert!(
        !changes.is_empty() && changes.iter().all(|(field, _)| field == "uid"),
        "{changes:?}"
    );
}

#[test]
fn diff_reports_an_added_file_and_a_symlink_target() {
    let f = Fixture::new();
    let v = f.variant("v-add");
    write_mode(&v, "pkg/new.txt", b"new\n", 0o644);
    f.pack(&f.src, "a.tar", &[]);
    f.pack(&v, "b.tar", &[]);
    let (c, j) = f.diff_json(&f.path("a.tar"), &f.path("b.tar"));
    assert_eq!(c, 1);
    assert_eq!(j["added"], serde_json::json!(["pkg/new.txt"]));
    assert_eq!(j["removed"].as_array().unwrap().len(), 0);
    assert!(entries_changed(&j).is_empty(), "{j}");
    let (_, back) = f.diff_json(&f.path("b.tar"), &f.path("a.tar"));
    assert_eq!(back["removed"], serde_json::json!(["pkg/new.txt"]));

    let v = f.variant("v-link");
    std::fs::remove_file(v.join("bin/readme")).unwrap();
    std::os::unix::fs::symlink("../pkg/empty", v.join("bin/readme")).unwrap();
    f.pack(&v, "c.tar", &[]);
    let (c, j) = f.diff_json(&f.path("a.tar"), &f.path("c.tar"));
    assert_eq!(c, 1);
    only_entry_changes(&j);
    assert_eq!(
        entries_changed(&j),
        vec![("symlink".into(), "bin/readme".into())]
    );
}

#[test]
fn diff_of_gzip_levels_points_at_the_gzip_layer() {
    let f = Fixture::new();
    f.pack(&f.src, "a.tar.gz", &["--level", "6"]);
    f.pack(&f.src, "b.tar.gz", &["--level", "9"]);
    let (c, j) = f.diff_json(&f.path("a.tar.gz"), &f.path("b.tar.gz"));
    assert_eq!(c, 1);
    assert_eq!(j["entries_equal"], true, "{j}");
    assert_eq!(j["byte_identical"], false);
    let facts: Vec<&str> = j["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(facts.contains(&"gzip.xfl"), "{facts:?}");
    assert!(
        facts.iter().all(|n| *n == "gzip.xfl" || *n == "size"),
        "{facts:?}"
    );
    assert!(
        j["first_byte_difference"]["offset"].as_u64().is_some(),
        "{j}"
    );
    assert!(
        j.get("tar_stream_first_difference")
            .is_some_and(Value::is_null),
        "{j}"
    );

    let out = repropack_out([
        "diff".as_ref(),
        f.path("a.tar.gz").as_os_str(),
        f.path("b.tar.gz").as_os_str(),
    ]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("logical trees and entry metadata are equal but the bytes differ"),
        "{t}"
    );
    assert!(t.contains("only the gzip layer differs"), "{t}");

    // tar against tar.gz: the compressor is a header difference.
    f.pack(&f.src, "c.tar", &[]);
    let (_, j) = f.diff_json(&f.path("c.tar"), &f.path("a.tar.gz"));
    assert_eq!(j["entries_equal"], true);
    let format = j["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "format")
        .unwrap()
        .clone();
    assert_eq!(
        (format["a"].as_str(), format["b"].as_str()),
        (Some("tar"), Some("tar.gz"))
    );
}

#[test]
fn diff_reports_an_order_change_in_a_foreign_tar() {
    if !have_tool("python3") {
        return;
    }
    let f = Fixture::new();
    let a = f.path("a.tar");
    f.pack(&f.src, "a.tar", &[]);
    // Python rewrites the same members in reverse order.
    let b = f.path("b.tar");
    let script = "import tarfile,sys\n\
        src=tarfile.open(sys.argv[1], encoding='utf-8', errors='surrogateescape')\n\
        ms=src.getmembers()\n\
        dst=tarfile.open(sys.argv[2],'w',format=tarfile.PAX_FORMAT, encoding='utf-8', errors='surrogateescape')\n\
        for m in reversed(ms):\n\
        \x20   if m.islnk(): continue\n\
        \x20   dst.addfile(m, src.extractfile(m) if m.isreg() else None)\n\
        dst.close()\n";
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(st.success());
    let (c, j) = f.diff_json(&a, &b);
    assert_eq!(c, 1);
    assert!(!j["order"].is_null(), "{j}");
}

#[test]
fn verify_catches_a_flipped_byte_inside_a_squashfs_image() {
    let f = Fixture::new();
    let m = f.path("m.json").display().to_string();
    // Uncompressed data blocks so the byte is findable and the image stays
    // readable.
    f.pack(&f.src, "a.squashfs", &["--manifest", &m, "--comp", "none"]);
    assert_eq!(code(&f.verify("a.squashfs", &["--manifest", &m])), 0);
    let mut bytes = std::fs::read(f.path("a.squashfs")).unwrap();
    let at = bytes
        .windows(14)
        .position(|w| w == b"UNIQUE-CONTENT")
        .unwrap();
    bytes[at + 3] ^= 0x20;
    std::fs::write(f.path("a.squashfs"), &bytes).unwrap();
    let out = f.verify("a.squashfs", &["--manifest", &m]);
    assert_eq!(code(&out), exit::HASH_MISMATCH, "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("changed \"data/unique.bin\": sha256"), "{t}");
    assert_eq!(t.matches("changed ").count(), 1, "{t}");
}

#[test]
fn diff_of_squashfs_compressor_and_block_size_reports_superblock_fields() {
    let f = Fixture::new();
    f.pack(&f.src, "a.squashfs", &[]);
    f.pack(&f.src, "z.squashfs", &["--comp", "zstd"]);
    f.pack(&f.src, "b.squashfs", &["--block-size", "4K"]);
    let (c, j) = f.diff_json(&f.path("a.squashfs"), &f.path("z.squashfs"));
    assert_eq!(c, 1);
    assert_eq!(j["entries_equal"], true, "{j}");
    let facts: Vec<&str> = j["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(facts.contains(&"squashfs.compressor"), "{facts:?}");
    assert!(!facts.contains(&"squashfs.block_size"), "{facts:?}");
    let region = j["first_byte_difference"]["region"].as_str().unwrap();
    assert!(region.starts_with("superblock"), "{region}");

    let (c, j) = f.diff_json(&f.path("a.squashfs"), &f.path("b.squashfs"));
    assert_eq!(c, 1);
    assert_eq!(j["entries_equal"], true);
    let facts: Vec<&str> = j["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(
        facts.contains(&"squashfs.block_size") && !facts.contains(&"squashfs.compressor"),
        "{facts:?}"
    );

    // A content byte in squashfs is a content change, nothing else.
    let v = f.variant("v");
    write_mode(&v, "data/unique.bin", b"UNIQUE-CONTENT-0123456788", 0o644);
    f.pack(&v, "c.squashfs", &[]);
    let (c, j) = f.diff_json(&f.path("a.squashfs"), &f.path("c.squashfs"));
    assert_eq!(c, 1);
    only_entry_changes(&j);
    assert_eq!(
        entries_changed(&j),
        vec![("sha256".into(), "data/unique.bin".into())]
    );
}

#[test]
fn verify_reports_a_hash_mismatch_even_when_the_corrupt_artifact_does_not_parse() {
    let f = Fixture::new();
    let m = f.path("m.json").display().to_string();
    f.pack(&f.src, "a.tar.gz", &["--manifest", &m]);
    let mut bytes = std::fs::read(f.path("a.tar.gz")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(f.path("a.tar.gz"), &bytes).unwrap();
    let out = f.verify("a.tar.gz", &["--manifest", &m]);
    assert_eq!(code(&out), exit::HASH_MISMATCH, "{}", text(&out));
    assert!(text(&out).contains("sha256 mismatch"));
}
