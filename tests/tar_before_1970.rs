//! Tar archives made by GNU tar that hold entries dated before 1970
//! (negative mtimes: base-256 numbers in `--format=gnu`, a negative pax
//! `mtime` record in `--format=pax`) digest, diff and verify like any
//! other. The tree digest equals that of the tree GNU tar extracts from
//! them, and the mtimes `verify` and `diff` see are the ones GNU tar
//! restores, read back with std::fs from its extraction.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::bin::{code, ok, repropack_out, run_ok, stdout};
use crate::support::exit;
use crate::support::hash::sha256_file;
use crate::support::tool::have_tool;

/// `touch -d WHEN` (UTC) of `path`, not following a symlink.
fn touch(path: &Path, when: &str) {
    run_ok(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-h", "-d", when])
            .arg(path),
    );
}

/// `src/d/` (1960), `d/old` (1960-01-01 00:00:00.5: a fractional negative
/// time), `d/edge` (one second before 1970), `d/link` (a symlink dated
/// 1950), and `new` (dated now). Modes as pack normalizes them, so the
/// staged directory has the archive's tree digest too.
fn old_tree(src: &Path) {
    let d = src.join("d");
    fs::create_dir_all(&d).unwrap();
    for (name, body) in [("old", "from 1960\n"), ("edge", "-1\n")] {
        fs::write(d.join(name), body).unwrap();
        fs::set_permissions(d.join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::write(src.join("new"), "now\n").unwrap();
    fs::set_permissions(src.join("new"), fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink("old", d.join("link")).unwrap();
    touch(&d.join("old"), "1960-01-01 00:00:00.5");
    touch(&d.join("edge"), "1969-12-31 23:59:59");
    touch(&d.join("link"), "1950-06-01");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    touch(&d, "1960-01-01");
}

/// GNU tar `--format=FORMAT` of `d` and `new` in `src`, owned by 0:0,
/// sorted by name.
fn gnu_tar(format: &str, src: &Path, archive: &Path) {
    run_ok(
        Command::new("tar")
            .arg(format!("--format={format}"))
            .args(["--sort=name", "--numeric-owner", "--owner=0", "--group=0"])
            .arg("-C")
            .arg(src)
            .arg("-cf")
            .arg(archive)
            .args(["d", "new"]),
    );
}

/// GNU tar's extraction of `archive` into a new `dir`.
fn gnu_extract(archive: &Path, dir: &Path) {
    fs::create_dir(dir).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(dir)
            .arg("-xf")
            .arg(archive),
    );
}

fn digest(input: &Path) -> String {
    stdout(&repropack_out(["digest".as_ref(), input.as_os_str()]))
}

/// The member names of `archive` as GNU tar lists them, in archive order,
/// without a trailing `/`.
fn members(archive: &Path) -> Vec<String> {
    let out = run_ok(Command::new("tar").arg("-tf").arg(archive));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// A `repropack.manifest/1` for `archive`, every entry described from
/// GNU tar's extraction `by_gnu` with std::fs and sha2 (mtimes as the
/// kernel reports them: whole seconds, rounded down).
fn manifest_from_disk(archive: &Path, by_gnu: &Path, tree_digest: &str) -> Value {
    let entries: Vec<Value> = members(archive)
        .iter()
        .map(|p| {
            let path = by_gnu.join(p);
            let m = fs::symlink_metadata(&path).unwrap();
            let mut e = json!({
                "path": p,
                "mode": format!("{:04o}", m.mode() & 0o7777),
                "uid": m.uid(),
                "gid": m.gid(),
                "mtime": m.mtime(),
            });
            if m.is_dir() {
                e["kind"] = json!("dir");
                e["size"] = json!(0);
            } else if m.file_type().is_symlink() {
                e["kind"] = json!("symlink");
                e["size"] = json!(0);
                e["symlink"] = json!(fs::read_link(&path).unwrap().to_str().unwrap());
            } else {
                e["kind"] = json!("file");
                e["size"] = json!(m.len());
                e["sha256"] = json!(sha256_file(&path));
            }
            e
        })
        .collect();
    let sha256 = sha256_file(archive);
    json!({
        "schema": "repropack.manifest/1",
        "tool": {"name": "repropack", "version": "0.1.0", "format_version": 3},
        "artifact": {
            "ref": format!("{}#sha256={sha256}", archive.display()),
            "sha256": sha256,
            "size": fs::metadata(archive).unwrap().len(),
            "format": "tar",
        },
        "tree_digest": tree_digest,
        "options": {
            "epoch": 315532800, "clamp_mtime": false, "owner": {"uid": 0, "gid": 0},
            "mode_policy": {"permissions": "normalized", "keep_special_bits": false},
            "follow_symlinks": false, "specials": false, "excludes": [],
        },
        "entries": entries,
    })
}

fn verify(archive: &Path, manifest: &Path) -> std::process::Output {
    repropack_out([
        "verify".as_ref(),
        archive.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ])
}

struct Archives {
    _work: tempfile::TempDir,
    src: PathBuf,
    gnu: PathBuf,
    pax: PathBuf,
}

fn archives() -> Option<Archives> {
    if !have_tool("tar") {
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    old_tree(&src);
    let gnu = work.path().join("gnu.tar");
    let pax = work.path().join("pax.tar");
    gnu_tar("gnu", &src, &gnu);
    gnu_tar("pax", &src, &pax);
    // What makes these archives the case: base-256 mtimes (high bit set)
    // in the gnu one, negative pax records in the other.
    let bytes = fs::read(&gnu).unwrap();
    assert_eq!(bytes[136], 0xff, "d/: a negative base-256 mtime");
    let pax_text = String::from_utf8_lossy(&fs::read(&pax).unwrap()).into_owned();
    assert!(
        pax_text.contains("mtime=-315619199.5"),
        "GNU tar's pax record"
    );
    Some(Archives {
        _work: work,
        src,
        gnu,
        pax,
    })
}

#[test]
fn gnu_tar_archives_dated_before_1970_digest_like_the_tree_they_hold() {
    let Some(a) = archives() else { return };
    let by_gnu = a.src.with_file_name("by-gnu");
    gnu_extract(&a.gnu, &by_gnu);
    let want = digest(&by_gnu);
    assert_eq!(want.len(), 64, "digest of GNU tar's extraction: {want}");
    assert_eq!(digest(&a.src), want);
    for archive in [&a.gnu, &a.pax] {
        let out = repropack_out(["digest".as_ref(), archive.as_os_str()]);
        assert_eq!(ok(&out).trim(), want, "{}", archive.display());
    }
}

#[test]
fn diff_of_gnu_and_pax_archives_dated_before_1970_finds_equal_entries() {
    let Some(a) = archives() else { return };
    let out = repropack_out([
        "diff".as_ref(),
        "--json".as_ref(),
        a.gnu.as_os_str(),
        a.pax.as_os_str(),
    ]);
    assert_eq!(code(&out), exit::DIFFERENT, "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Base-256 -315619200 and pax -315619199.5 are one mtime (GNU tar
    // restores both as -315619200 s + 0.5 s): no metadata difference.
    assert_eq!(v["metadata"], json!([]), "{v}");
    assert_eq!(v["content"], json!([]), "{v}");
    assert_eq!(v["entries_equal"], json!(true), "{v}");
    assert_eq!(v["tree_digest_a"], v["tree_digest_b"], "{v}");
}

#[test]
fn verify_checks_mtimes_before_1970_against_what_gnu_tar_restores() {
    let Some(a) = archives() else { return };
    for archive in [&a.gnu, &a.pax] {
        let by_gnu = archive.with_extension("by-gnu");
        gnu_extract(archive, &by_gnu);
        assert_eq!(
            fs::symlink_metadata(by_gnu.join("d/old")).unwrap().mtime(),
            -315_619_200,
            "GNU tar restores 1960-01-01 00:00:00.5 as -315619200 s"
        );
        let tree_digest = digest(&by_gnu);
        let mut manifest = manifest_from_disk(archive, &by_gnu, &tree_digest);
        let path = archive.with_extension("manifest.json");
        fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let out = verify(archive, &path);
        assert_eq!(
            code(&out),
            exit::OK,
            "{}: {}{}",
            archive.display(),
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );

        // One second off on the 1960 file: named, with both values.
        let old = manifest["entries"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["path"] == "d/old")
            .unwrap();
        old["mtime"] = json!(-315_619_199);
        fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let out = verify(archive, &path);
        assert_eq!(code(&out), exit::DIFFERENT, "{}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.contains("\"d/old\"")
                && text.contains("mtime")
                && text.contains("-315619199")
                && text.contains("-315619200"),
            "{text}"
        );
    }
}
