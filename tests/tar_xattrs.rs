//! Owners and extended attributes in tar: archives GNU tar `--xattrs` and
//! bsdtar write (pax `SCHILY.xattr.*`, and bsdtar's `LIBARCHIVE.xattr.*`
//! beside them) are read by `extract --same-owner --xattrs`, `digest` and
//! `diff`; what we restore is compared with what GNU tar restores, through
//! stat and getfattr.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{code, repropack, stderr, stdout};
use crate::support::exit;
use crate::support::rawtar::RawTar;
use crate::support::xattrs::{owner_xattr_dump, root_with, rootfs_tree, setfattr, sh};

const TOOLS: &[&str] = &["tar", "bsdtar", "getfattr", "setfattr", "setcap"];

fn extract(artifact: &Path, dir: &Path, flags: &[&str]) -> std::process::Output {
    repropack()
        .arg("extract")
        .args(flags)
        .arg(artifact)
        .arg(dir)
        .output()
        .unwrap()
}

fn gnu_tar(src: &Path, out: &Path) {
    let args: Vec<&OsStr> = vec![
        "--xattrs".as_ref(),
        "--xattrs-include=*".as_ref(),
        "--format=posix".as_ref(),
        "--numeric-owner".as_ref(),
        "-cf".as_ref(),
        out.as_os_str(),
        "-C".as_ref(),
        src.as_os_str(),
        ".".as_ref(),
    ];
    sh("tar", &args);
}

fn bsdtar(src: &Path, out: &Path) {
    let args: Vec<&OsStr> = vec![
        "--xattrs".as_ref(),
        "--format=pax".as_ref(),
        "--numeric-owner".as_ref(),
        "-cf".as_ref(),
        out.as_os_str(),
        "-C".as_ref(),
        src.as_os_str(),
        ".".as_ref(),
    ];
    sh("bsdtar", &args);
}

#[test]
fn gnu_tar_and_bsdtar_xattr_archives_extract_as_gnu_tar_restores_them() {
    if !root_with(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    rootfs_tree(&src);
    let (g, b) = (work.path().join("g.tar"), work.path().join("b.tar"));
    gnu_tar(&src, &g);
    bsdtar(&src, &b);

    // The reference: GNU tar restoring its own archive as root.
    let reference = work.path().join("ref");
    fs::create_dir(&reference).unwrap();
    let args: Vec<&OsStr> = vec![
        "--xattrs".as_ref(),
        "--xattrs-include=*".as_ref(),
        "--numeric-owner".as_ref(),
        "-xpf".as_ref(),
        g.as_os_str(),
        "-C".as_ref(),
        reference.as_os_str(),
    ];
    sh("tar", &args);
    let want = owner_xattr_dump(&reference);
    // The dump holds what the tree was built with, so an extraction that
    // dropped owners or attributes cannot match by accident.
    for needle in [
        "./ping 1234:5678 755",
        "./etc/shadow 0:42 640",
        "./ping6 7:8 777",
        "./su 0:0 4755",
        "security.capability=0x",
        "user.bin=0x000102ff0a3d",
        "user.dir=0x64",
    ] {
        assert!(
            want.contains(needle),
            "{needle:?} not in GNU tar's tree:\n{want}"
        );
    }

    for archive in [&g, &b] {
        let out = work.path().join(format!(
            "ours-{}",
            archive.file_stem().unwrap().to_string_lossy()
        ));
        let res = extract(
            archive,
            &out,
            &["--same-owner", "--xattrs", "--keep-special-bits"],
        );
        assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
        assert_eq!(owner_xattr_dump(&out), want, "{}", archive.display());
        let caps = Command::new("getcap")
            .arg(out.join("ping"))
            .output()
            .unwrap();
        assert!(
            stdout(&caps).contains("cap_net_raw=ep"),
            "{}",
            stdout(&caps)
        );
    }

    // Without the flags nothing of it is applied: the caller owns the
    // files and no attribute is set.
    let plain = work.path().join("plain");
    let res = extract(&g, &plain, &[]);
    assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
    let dump = owner_xattr_dump(&plain);
    assert!(
        !dump.contains("user.") && !dump.contains("security."),
        "{dump}"
    );
    assert!(dump.contains("./ping 0:0 755"), "{dump}");
}

#[test]
fn diff_names_each_differing_attribute_whichever_tar_wrote_it() {
    if !root_with(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    rootfs_tree(&src);
    let (g, b) = (work.path().join("g.tar"), work.path().join("b.tar"));
    gnu_tar(&src, &g);
    bsdtar(&src, &b);
    // The same tree through two writers and two record families: no entry
    // differs, only the bytes.
    let res = repropack().arg("diff").arg(&g).arg(&b).output().unwrap();
    let text = stdout(&res);
    assert!(!text.contains("xattr") && !text.contains("uid"), "{text}");
    assert!(text.contains("same tree digest"), "{text}");

    setfattr(&src.join("ping"), "user.plain", "\"bye\"");
    sh(
        "setfattr",
        &[
            "-x".as_ref(),
            "user.bin".as_ref(),
            src.join("ping").as_os_str(),
        ],
    );
    setfattr(&src.join("etc"), "user.new", "0x01");
    let g2 = work.path().join("g2.tar");
    gnu_tar(&src, &g2);
    let res = repropack().arg("diff").arg(&b).arg(&g2).output().unwrap();
    assert_eq!(code(&res), exit::DIFFERENT, "{}", stderr(&res));
    let text = stdout(&res);
    for line in [
        "xattr user.plain \"ping\": \"hello\" -> \"bye\"",
        "xattr user.bin \"ping\": 0x000102ff0a3d -> (absent)",
        "xattr user.new \"etc\": (absent) -> 0x01",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(
        !text.contains("Some(") && !text.contains("b\""),
        "no Debug output: {text}"
    );
}

fn expect_malformed(records: &[(&str, &[u8])], needles: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("bad.tar");
    let mut t = RawTar::new();
    t.file("ok", b"1").pax(records).file("etc/bad", b"2");
    fs::write(&tar, t.finish()).unwrap();
    for cmd in ["digest", "extract"] {
        let mut c = repropack();
        c.arg(cmd).arg(&tar);
        if cmd == "extract" {
            c.arg(work.path().join("out")).arg("--xattrs");
        }
        let res = c.output().unwrap();
        assert_eq!(code(&res), exit::INPUT, "{cmd}: {}", stderr(&res));
        let err = stderr(&res);
        for n in needles.iter().chain(&["etc/bad"]) {
            assert!(err.contains(n), "{cmd}: {n:?} not in {err}");
        }
        assert!(!work.path().join("out").exists());
    }
}

#[test]
fn duplicate_and_malformed_xattr_records_exit_3_naming_entry_and_record() {
    expect_malformed(
        &[("SCHILY.xattr.user.a", b"1"), ("SCHILY.xattr.user.a", b"1")],
        &["SCHILY.xattr.user.a", "twice"],
    );
    expect_malformed(
        &[
            ("SCHILY.xattr.user.a", b"1"),
            ("LIBARCHIVE.xattr.user.a", b"Mg"),
        ],
        &["LIBARCHIVE.xattr.user.a", "differ"],
    );
    expect_malformed(
        &[("LIBARCHIVE.xattr.user.a", b"*not base64*")],
        &["not base64"],
    );
    expect_malformed(&[("SCHILY.xattr.", b"1")], &["SCHILY.xattr."]);
}

#[test]
fn an_attribute_that_cannot_be_set_fails_extract_unless_best_effort() {
    if !root_with(&["getfattr"]) {
        return;
    }
    // Linux refuses user.* attributes on symlinks: a failure any root sees.
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("t.tar");
    let mut t = RawTar::new();
    t.pax(&[("SCHILY.xattr.user.ok", b"yes")])
        .file("f", b"data")
        .pax(&[("SCHILY.xattr.user.x", b"1")])
        .symlink("l", b"f");
    fs::write(&tar, t.finish()).unwrap();
    let out = work.path().join("out");
    let res = extract(&tar, &out, &["--xattrs"]);
    assert_eq!(code(&res), exit::OUTPUT, "{}", stderr(&res));
    let err = stderr(&res);
    for n in ["\"l\"", "xattr user.x", "--best-effort"] {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    assert!(!out.exists(), "nothing is published on failure");

    let res = extract(&tar, &out, &["--xattrs", "--best-effort"]);
    assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
    assert!(stderr(&res).contains("xattr user.x"), "{}", stderr(&res));
    let dump = owner_xattr_dump(&out);
    assert!(dump.contains("user.ok=0x796573"), "{dump}");
}

/// `tar.pax_headers` of every member as Python's tarfile reads them: one
/// line `NAME uname=… gname=… KEY=HEX …` per member, keys in record order,
/// values as hex of their bytes.
fn python_pax_headers(tar: &Path) -> String {
    let script = r#"
import sys, tarfile
for m in tarfile.open(sys.argv[1]):
    recs = " ".join(k + "=" + v.encode("utf-8", "surrogateescape").hex()
                    for k, v in m.pax_headers.items())
    print(m.name, "uname=" + m.uname, "gname=" + m.gname, recs)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(tar)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn digest(flags: &[&str], input: &Path) -> String {
    let res = repropack()
        .arg("digest")
        .args(flags)
        .arg(input)
        .output()
        .unwrap();
    assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
    stdout(&res).trim().to_string()
}

#[test]
fn our_tar_keeps_owners_and_xattrs_as_gnu_tar_bsdtar_and_python_read_them() {
    if !root_with(&["tar", "bsdtar", "getfattr", "setfattr", "setcap", "python3"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    rootfs_tree(&src);
    let ours = work.path().join("ours.tar");
    let res = repropack()
        .args(["pack", "--rootfs"])
        .arg(&src)
        .arg("-o")
        .arg(&ours)
        .output()
        .unwrap();
    assert_eq!(code(&res), exit::OK, "{}", stderr(&res));

    // Python: numeric owners only, xattr records in name order (`%` and
    // `=` in a name escaped as GNU tar does), values byte for byte, and no
    // pax header where there is nothing to say.
    let pax = python_pax_headers(&ours);
    let want = [
        "etc uname= gname= SCHILY.xattr.user.dir=64",
        "etc/shadow uname= gname= \n",
        "ping uname= gname= SCHILY.xattr.security.capability=0100000200200000000000000000000000000000 \
         SCHILY.xattr.user.a%3Db%25c=6f6464206e616d65 SCHILY.xattr.user.bin=000102ff0a3d \
         SCHILY.xattr.user.plain=68656c6c6f",
        "ping6 uname= gname= \n",
        "su uname= gname= \n",
    ];
    for w in want {
        assert!(pax.contains(w), "{w:?} not in:\n{pax}");
    }

    // GNU tar and bsdtar restore the tree it was packed from.
    let want = owner_xattr_dump(&src);
    let gnu = work.path().join("gnu");
    fs::create_dir(&gnu).unwrap();
    let args: Vec<&OsStr> = vec![
        "--xattrs".as_ref(),
        "--xattrs-include=*".as_ref(),
        "--numeric-owner".as_ref(),
        "-xpf".as_ref(),
        ours.as_os_str(),
        "-C".as_ref(),
        gnu.as_os_str(),
    ];
    sh("tar", &args);
    assert_eq!(owner_xattr_dump(&gnu), want, "GNU tar");
    let bsd = work.path().join("bsd");
    fs::create_dir(&bsd).unwrap();
    let args: Vec<&OsStr> = vec![
        "--numeric-owner".as_ref(),
        "-xpf".as_ref(),
        ours.as_os_str(),
        "-C".as_ref(),
        bsd.as_os_str(),
    ];
    sh("bsdtar", &args);
    // libarchive does not undo GNU tar's `%3D`/`%25` in SCHILY.xattr
    // names (it reads them from its own LIBARCHIVE.xattr records, which
    // GNU tar does not write either): that one name comes back escaped,
    // as it does from GNU tar's own archives.
    let bsd_dump = owner_xattr_dump(&bsd).replace("user.a%3Db%25c=", "user.a\\075b%c=");
    assert_eq!(bsd_dump, want, "bsdtar");

    // One digest for the tree, our tar and GNU tar's archive of the tree
    // when owners and xattrs are kept; without the flags, today's digest.
    let gnu_tar_of_src = work.path().join("gnu-of-src.tar");
    gnu_tar(&src, &gnu_tar_of_src);
    let kept = digest(&["--rootfs"], &src);
    assert_eq!(digest(&["--rootfs"], &ours), kept);
    assert_eq!(digest(&["--rootfs"], &gnu_tar_of_src), kept);
    let modes = ["--keep-modes", "--keep-special-bits"];
    let plain = digest(&modes, &ours);
    assert_ne!(plain, kept);
    assert_eq!(digest(&modes, &gnu_tar_of_src), plain);
}

#[test]
fn tar_bytes_do_not_depend_on_the_order_attributes_were_set_in() {
    if !root_with(&["setfattr"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (i, order) in [
        ["user.a", "user.b", "user.c"],
        ["user.c", "user.a", "user.b"],
    ]
    .iter()
    .enumerate()
    {
        let src = work.path().join(format!("src{i}"));
        fs::create_dir(&src).unwrap();
        fs::write(src.join("f"), b"x").unwrap();
        for name in order {
            setfattr(&src.join("f"), name, &format!("\"{name}\""));
        }
        let out = work.path().join(format!("{i}.tar"));
        let res = repropack()
            .args(["pack", "--xattrs"])
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
        outputs.push(fs::read(&out).unwrap());
    }
    assert!(outputs[0] == outputs[1], "xattr order changed the bytes");
    let text = String::from_utf8_lossy(&outputs[0]);
    let at = |n: &str| text.find(n).unwrap();
    assert!(at("SCHILY.xattr.user.a") < at("SCHILY.xattr.user.b"));
    assert!(at("SCHILY.xattr.user.b") < at("SCHILY.xattr.user.c"));
}
