//! Owners and extended attributes in tar, checked by GNU tar, bsdtar and
//! Python's tarfile: our tar with kept owners and xattrs as they restore or
//! read it; archives GNU tar `--xattrs` and bsdtar write (pax
//! `SCHILY.xattr.*`, and bsdtar's `LIBARCHIVE.xattr.*` beside them) read by
//! `extract --same-owner --xattrs`, `digest` and `diff`, compared with what
//! GNU tar restores (through stat and getfattr).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::bin::{code, repropack, run_ok, stderr, stdout};
use crate::support::exit;
use crate::support::hash::hex;
use crate::support::rawtar::RawTar;
use crate::support::rootfs::{
    am_root, getfattr_dump, have_all, owner_xattr_dump, rootfs_tree, setfattr,
};

const TOOLS: &[&str] = &["tar", "bsdtar", "getfattr", "setfattr", "setcap", "mknod"];

/// Root, and every tool of `tools` installed.
fn root_with(tools: &[&str]) -> bool {
    am_root() && have_all(tools)
}

/// The shared root filesystem plus attributes that test tar's records: a
/// name with `=` and `%` (escaped in the pax key) and a binary value with a
/// newline in it.
fn tree(root: &Path) {
    rootfs_tree(root, false);
    setfattr(&root.join("bin/ping"), "user.a=b%c", b"odd name");
    setfattr(&root.join("bin/ping"), "user.bin", b"\0\x01\x02\xff\n=");
}

fn extract(artifact: &Path, dir: &Path, flags: &[&str]) -> Output {
    repropack()
        .arg("extract")
        .args(flags)
        .arg(artifact)
        .arg(dir)
        .output()
        .unwrap()
}

/// GNU tar `--xattrs` of `src` (pax, numeric owners).
fn gnu_tar(src: &Path, out: &Path) {
    run_ok(
        Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "--format=posix"])
            .args(["--numeric-owner", "-cf"])
            .arg(out)
            .arg("-C")
            .arg(src)
            .arg("."),
    );
}

/// bsdtar `--xattrs` of `src` (pax: both record families).
fn bsdtar(src: &Path, out: &Path) {
    run_ok(
        Command::new("bsdtar")
            .args(["--xattrs", "--format=pax", "--numeric-owner", "-cf"])
            .arg(out)
            .arg("-C")
            .arg(src)
            .arg("."),
    );
}

/// GNU tar restoring `tar` into a new directory `dest`, as root.
fn gnu_untar(tar: &Path, dest: &Path) {
    fs::create_dir(dest).unwrap();
    run_ok(
        Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(tar)
            .arg("-C")
            .arg(dest),
    );
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
fn gnu_tar_and_bsdtar_xattr_archives_extract_as_gnu_tar_restores_them() {
    if !root_with(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    tree(&src);
    let (g, b) = (work.path().join("g.tar"), work.path().join("b.tar"));
    gnu_tar(&src, &g);
    bsdtar(&src, &b);

    // The reference: GNU tar restoring its own archive as root.
    let reference = work.path().join("ref");
    gnu_untar(&g, &reference);
    let want = owner_xattr_dump(&reference);
    // The dump holds what the tree was built with, so an extraction that
    // dropped owners or attributes cannot match by accident.
    for needle in [
        "./bin/su 0:0 4755 regular file",
        "./etc/shadow 0:42 640 regular file",
        "./home/alice 1000:1000 700 directory",
        "./sbin/unix_chkpwd 0:42 2755 regular file",
        "./dev/null 0:0 666 character special file",
        "security.capability=0x",
        "security.selinux=0x",
        "trusted.overlay.opaque=0x79",
        "user.bin=0x000102ff0a3d",
        "user.quota=0x313047",
    ] {
        assert!(
            want.contains(needle),
            "{needle:?} not in GNU tar's tree:\n{want}"
        );
    }

    let flags = [
        "--same-owner",
        "--xattrs",
        "--keep-special-bits",
        "--specials",
    ];
    for archive in [&g, &b] {
        let name = archive.file_stem().unwrap().to_string_lossy();
        let out = work.path().join(format!("ours-{name}"));
        let res = extract(archive, &out, &flags);
        assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
        assert_eq!(owner_xattr_dump(&out), want, "{}", archive.display());
        let caps = run_ok(Command::new("getcap").arg(out.join("bin/ping")));
        assert!(
            stdout(&caps).contains("cap_net_raw=ep"),
            "{}",
            stdout(&caps)
        );
    }

    // Without the flags nothing of it is applied: the caller owns the
    // files and no attribute is set.
    let plain = work.path().join("plain");
    let res = extract(&g, &plain, &["--specials"]);
    assert_eq!(code(&res), exit::OK, "{}", stderr(&res));
    let dump = owner_xattr_dump(&plain);
    assert!(
        !dump.contains("user.") && !dump.contains("security."),
        "{dump}"
    );
    assert!(dump.contains("./etc/shadow 0:0 640 regular file"), "{dump}");
}

#[test]
fn diff_names_each_differing_attribute_whichever_tar_wrote_it() {
    if !root_with(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    tree(&src);
    let (g, b) = (work.path().join("g.tar"), work.path().join("b.tar"));
    gnu_tar(&src, &g);
    bsdtar(&src, &b);
    // The same tree through two writers and two record families: no entry
    // differs, only the bytes.
    let res = repropack().arg("diff").arg(&g).arg(&b).output().unwrap();
    let text = stdout(&res);
    assert!(!text.contains("xattr") && !text.contains("uid"), "{text}");
    assert!(text.contains("same tree digest"), "{text}");

    setfattr(
        &src.join("home/alice/notes"),
        "user.mime_type",
        b"text/x-rust",
    );
    let ping = src.join("bin/ping");
    run_ok(Command::new("setfattr").args(["-x", "user.bin"]).arg(&ping));
    setfattr(&src.join("etc"), "user.new", b"\x01");
    let g2 = work.path().join("g2.tar");
    gnu_tar(&src, &g2);
    let res = repropack().arg("diff").arg(&b).arg(&g2).output().unwrap();
    assert_eq!(code(&res), exit::DIFFERENT, "{}", stderr(&res));
    let text = stdout(&res);
    for line in [
        "xattr user.mime_type \"home/alice/notes\": \"text/plain\" -> \"text/x-rust\"",
        "xattr user.bin \"bin/ping\": 0x000102ff0a3d -> (absent)",
        "xattr user.new \"etc\": (absent) -> 0x01",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(
        !text.contains("Some(") && !text.contains("b\""),
        "Debug output: {text}"
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
    assert!(getfattr_dump(&out).contains("user.ok=0x796573"));
}

/// Every member as Python's tarfile reads it: `NAME UID:GID uname=…
/// gname=… KEY=HEX …`, pax keys in record order, values as hex.
fn python_members(tar: &Path) -> String {
    let script = r#"
import sys, tarfile
for m in tarfile.open(sys.argv[1]):
    recs = " ".join(k + "=" + v.encode("utf-8", "surrogateescape").hex()
                    for k, v in m.pax_headers.items())
    print(m.name, "%d:%d" % (m.uid, m.gid), "uname=" + m.uname, "gname=" + m.gname, recs)
"#;
    stdout(&run_ok(
        Command::new("python3").args(["-c", script]).arg(tar),
    ))
}

#[test]
fn our_tar_keeps_owners_and_xattrs_as_gnu_tar_bsdtar_and_python_read_them() {
    if !root_with(&[
        "tar", "bsdtar", "getfattr", "setfattr", "setcap", "mknod", "python3",
    ]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    tree(&src);
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
    // `=` in a name escaped as GNU tar does), values byte for byte, empty
    // values kept, and no pax header where there is nothing to say.
    let members = python_members(&ours);
    let selinux = hex(b"system_u:object_r:ping_exec_t:s0\0");
    let medium = hex(&crate::support::rootfs::value(2, 300));
    let want = [
        format!(
            "bin/ping 0:0 uname= gname= \
             SCHILY.xattr.security.capability=0100000200200000000000000000000000000000 \
             SCHILY.xattr.security.selinux={selinux} \
             SCHILY.xattr.user.a%3Db%25c=6f6464206e616d65 SCHILY.xattr.user.bin=000102ff0a3d\n"
        ),
        "bin/chage 0:42 uname= gname= \n".to_string(),
        format!(
            "etc/hostname 0:0 uname= gname= SCHILY.xattr.user.empty= \
             SCHILY.xattr.user.medium_again={medium}\n"
        ),
        "home/alice 1000:1000 uname= gname= SCHILY.xattr.user.quota=313047\n".to_string(),
    ];
    for w in &want {
        assert!(members.contains(w.as_str()), "{w:?} not in:\n{members}");
    }

    // GNU tar and bsdtar restore the tree it was packed from.
    let want = owner_xattr_dump(&src);
    let gnu = work.path().join("gnu");
    gnu_untar(&ours, &gnu);
    assert_eq!(owner_xattr_dump(&gnu), want, "GNU tar");
    let bsd = work.path().join("bsd");
    fs::create_dir(&bsd).unwrap();
    run_ok(
        Command::new("bsdtar")
            .args(["--numeric-owner", "-xpf"])
            .arg(&ours)
            .arg("-C")
            .arg(&bsd),
    );
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
    let modes = ["--keep-modes", "--keep-special-bits", "--specials"];
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
            setfattr(&src.join("f"), name, name.as_bytes());
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
