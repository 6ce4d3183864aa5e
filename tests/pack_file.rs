//! `pack --pack-file`: gensquashfs's pack-file format, checked against
//! gensquashfs itself given the same pack file (the listing `unsquashfs
//! -lln` prints, and names, kinds, modes, owners, device numbers, symlink
//! targets, hard links and contents as sqfs2tar streams them), plus the
//! rules for combining a pack file with SRC arguments and every class of
//! malformed line.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{code, pack, repropack, repropack_out, run_ok, stderr};
use crate::support::exit;
use crate::support::hash::sha256sum;
use crate::support::rng::Rng;
use crate::support::sqfs_check::{check_rdsquashfs_links, read_sqfs2tar};
use crate::support::tool::have_tool;
use crate::support::tree::assert_same;

const EPOCH: &str = "1000000000";

/// `unsquashfs -lln IMG` with the image's own name cut from each path.
fn listing(img: &Path) -> String {
    let out = run_ok(Command::new("unsquashfs").arg("-lln").arg(img));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Packs `pack_file` with gensquashfs (`-F FILE [-D DIR]`) and with
/// repropack (`--pack-file FILE [--pack-dir DIR]`), and asserts that the
/// two images hold the same tree.
fn same_as_gensquashfs(dir: &Path, pack_file: &Path, pack_dir: Option<&Path>) {
    let theirs = dir.join("gensquashfs.sqfs");
    let ours = dir.join("repropack.squashfs");
    let mut theirs_cmd = Command::new("gensquashfs");
    theirs_cmd
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .arg("-q")
        .arg("-F")
        .arg(pack_file);
    if let Some(d) = pack_dir {
        theirs_cmd.arg("-D").arg(d);
    }
    run_ok(theirs_cmd.arg(&theirs));
    let mut args = vec!["--mtime", EPOCH, "--pack-file", pack_file.to_str().unwrap()];
    if let Some(d) = pack_dir {
        args.extend(["--pack-dir", d.to_str().unwrap()]);
    }
    pack(&ours, &args);
    assert_eq!(listing(&theirs), listing(&ours), "unsquashfs -lln");
    let (want, errs) = read_sqfs2tar(&theirs);
    assert!(errs.is_empty(), "{errs:?}");
    let (got, errs) = read_sqfs2tar(&ours);
    assert!(errs.is_empty(), "{errs:?}");
    assert_same("sqfs2tar of gensquashfs vs ours", &want, &got);
    let errs = check_rdsquashfs_links(&ours, &want);
    assert!(errs.is_empty(), "{errs:?}");
}

fn tools() -> bool {
    ["gensquashfs", "unsquashfs", "sqfs2tar", "rdsquashfs"]
        .iter()
        .all(|t| have_tool(t))
}

/// The pack file of the man page's example, every kind but sockets, with
/// setuid and setgid bits, owners, quoting and escapes, hard links (one
/// listed before its target, one through another link) and comments.
const EVERY_KIND: &str = r#"# a root filesystem written down
dir /dev 0755 0 0
nod /dev/console 0600 0 5 c 5 1
nod /dev/sda 0660 0 6 b 8 0
nod /dev/big 0600 0 0 c 4095 1048575
  dir /root 0700 0 0
dir / 0750 0 0
file /sbin/init 0755 0 0 ../data/init
file /bin/su 4755 0 0 data/su
file /usr/bin/chage 2755 0 42 data/su
dir /tmp 1777 0 0
link /bin/su2 0 0 0 /bin/su
link /bin/su3 0 0 0 bin/su2
file "/opt/my app/\"special\" \\ name" 0600 7 8 data/su
file /etc/motd 0644 0 0
slink /bin/sh 0777 0 0 busybox with spaces
pipe /run/initctl 0600 0 0
dir "/home/user" 0700 1000 1000
file /home/user/.profile 0644 1000 1000 ../data/init
"#;

/// A socket line: SquashFS stores it, tar cannot.
const SOCKET: &str = "sock /run/ctl.sock 0660 0 20\n";

#[test]
fn every_kind_matches_gensquashfs() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("pack/data")).unwrap();
    fs::create_dir_all(d.join("pack/etc")).unwrap();
    fs::create_dir_all(d.join("data")).unwrap();
    fs::write(d.join("data/init"), "#!/bin/sh\nexec /bin/sh\n").unwrap();
    fs::write(d.join("pack/data/su"), vec![7u8; 200_000]).unwrap();
    fs::write(d.join("pack/etc/motd"), "welcome\n").unwrap();
    let pf = d.join("pack/files.txt");
    fs::write(&pf, format!("{EVERY_KIND}{SOCKET}")).unwrap();
    same_as_gensquashfs(d, &pf, None);
    let l = listing(&d.join("repropack.squashfs"));
    for want in [
        "srw-rw---- 0/20",
        "crw------- 0/5                   5,  1",
        "-rwsr-xr-x 0/0",
        "-rwxr-sr-x 0/42",
        "drwxrwxrwt 0/0",
        "drwxr-x--- 0/0",
        "squashfs-root/opt/my app/\"special\" \\ name",
        "squashfs-root/bin/sh -> busybox with spaces",
    ] {
        assert!(l.contains(want), "{want:?} missing from\n{l}");
    }
}

#[test]
fn glob_options_match_gensquashfs() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // gensquashfs 1.2 and 1.3 read globbed files from their archive path
    // (fixed after 1.3.1), so the globs here scan the directory of that
    // name, where both readings agree.
    let lib = d.join("usr/lib");
    fs::create_dir_all(lib.join("sub/deeper")).unwrap();
    fs::create_dir_all(lib.join(".hidden")).unwrap();
    fs::write(lib.join("libc.so.6"), "c").unwrap();
    fs::write(lib.join("libm.so.6"), "m").unwrap();
    fs::write(lib.join("notes.txt"), "n").unwrap();
    fs::write(lib.join("sub/libz.so.1"), "z").unwrap();
    fs::write(lib.join("sub/deeper/libq.so.2"), "q").unwrap();
    fs::write(lib.join(".hidden/libh.so.0"), "h").unwrap();
    std::os::unix::fs::symlink("libc.so.6", lib.join("libc.so")).unwrap();
    std::os::unix::fs::symlink("libm.so.6", lib.join("libm so.link")).unwrap();
    let sh = d.join("usr/share");
    fs::create_dir_all(sh.join("doc/a")).unwrap();
    fs::write(sh.join("doc/a/README"), "r").unwrap();
    fs::write(sh.join("doc/a/x.so.1"), "x").unwrap();
    fs::write(sh.join("doc/notes"), "old notes").unwrap();
    fs::create_dir_all(d.join("etc/skel")).unwrap();
    fs::write(d.join("etc/skel/.bashrc"), "b").unwrap();
    fs::write(d.join("etc/issue"), "i").unwrap();
    // A real socket on disk, globbed like any other kind.
    fs::create_dir_all(d.join("run")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(d.join("run/ctl")).unwrap();
    let pf = d.join("files.txt");
    fs::write(
        &pf,
        r#"glob /usr/lib 0755 0 0 -type d ./usr/lib
glob /usr/lib 0644 1 2 -type f -name "*.so.*" ./usr/lib
glob /usr/lib 0777 0 0 -type l -name '*.so*' -- ./usr/lib
glob /usr/share 0700 3 4 -path "usr/share/d*" -nonrecursive usr/share
glob /usr/share 0600 5 6 -type f -keeptime -xdev -path usr/share/*/* usr/share
glob /etc * * * -type d -type f -mount etc
glob /run 0660 0 20 -type s run
"#,
    )
    .unwrap();
    for p in [d.join("usr/share/doc/notes"), d.join("etc/issue")] {
        let f = fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(500_000_000))
            .unwrap();
    }
    fs::set_permissions(d.join("etc/issue"), fs::Permissions::from_mode(0o640)).unwrap();
    same_as_gensquashfs(d, &pf, Some(d));
    let l = listing(&d.join("repropack.squashfs"));
    assert!(l.contains("squashfs-root/usr/lib/.hidden/libh.so.0"), "{l}");
    assert!(!l.contains("notes.txt"), "{l}");
    assert!(l.contains("lrwxrwxrwx 0/0                       9"), "{l}");
    assert!(l.contains("-rw------- 5/6                       9 1985-11-05 00:53 squashfs-root/usr/share/doc/notes"), "{l}");
    assert!(!l.contains("doc/a"), "{l}");
    assert!(l.contains("srw-rw---- 0/20"), "{l}");
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn line_order_never_changes_the_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("pack/data")).unwrap();
    fs::create_dir_all(d.join("data")).unwrap();
    fs::create_dir_all(d.join("pack/etc")).unwrap();
    fs::write(d.join("data/init"), "init").unwrap();
    fs::write(d.join("pack/data/su"), "su").unwrap();
    fs::write(d.join("pack/etc/motd"), "motd").unwrap();
    let lines: Vec<&str> = EVERY_KIND
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let mut rng = Rng::new(12);
    let mut hashes = std::collections::BTreeSet::new();
    for round in 0..4 {
        let mut order = lines.clone();
        if round > 0 {
            rng.shuffle(&mut order);
        }
        let pf = d.join(format!("pack/files{round}.txt"));
        fs::write(&pf, order.join("\n")).unwrap();
        for fmt in ["squashfs", "tar"] {
            let out = d.join(format!("out{round}.{fmt}"));
            let h = pack(&out, &["--pack-file", pf.to_str().unwrap()]);
            hashes.insert((fmt, h));
        }
    }
    assert_eq!(hashes.len(), 2, "{hashes:?}");
}

#[test]
fn pack_file_overrides_staged_paths_and_adds_new_ones() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let src = d.join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("bin/su"), "su from the tree").unwrap();
    fs::write(src.join("etc/shadow"), "root:*:").unwrap();
    fs::write(d.join("other"), "other content").unwrap();
    let pf = d.join("layout.txt");
    fs::write(
        &pf,
        "file /bin/su 4755 0 0\nfile /etc/shadow 0640 0 42\ndir /etc 0750 0 0\n\
         nod /dev/null 0666 0 0 c 1 3\nfile /etc/replaced 0600 0 0 other\nlink /bin/su-again 0 0 0 /bin/su\n",
    )
    .unwrap();
    fs::write(src.join("etc/replaced"), "staged").unwrap();
    let img = d.join("out.squashfs");
    pack(
        &img,
        &[src.to_str().unwrap(), "--pack-file", pf.to_str().unwrap()],
    );
    let l = listing(&img);
    for want in [
        "-rwsr-xr-x 0/0                      16 2001-09-09 01:46 squashfs-root/bin/su",
        "-rwsr-xr-x 0/0                      16 2001-09-09 01:46 squashfs-root/bin/su-again",
        "-rw-r----- 0/42                      7 2001-09-09 01:46 squashfs-root/etc/shadow",
        "drwxr-x--- 0/0",
        "crw-rw-rw- 0/0                   1,  3",
        "-rw------- 0/0                      13 2001-09-09 01:46 squashfs-root/etc/replaced",
    ] {
        let want = want.replace("2001-09-09 01:46", "1980-01-01 00:00");
        assert!(l.contains(want.as_str()), "{want:?} missing from\n{l}");
    }
    let cat = run_ok(
        Command::new("unsquashfs")
            .arg("-cat")
            .arg(&img)
            .arg("etc/replaced"),
    );
    assert_eq!(cat.stdout, b"other content");
}

#[test]
fn pack_file_conflicts_with_staged_entries_name_both() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let src = d.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("etc"), "a file").unwrap();
    let pf = d.join("layout.txt");
    fs::write(&pf, "dir /etc 0755 0 0\n").unwrap();
    let out = d.join("out.squashfs");
    let o = repropack_out([
        "pack".as_ref(),
        src.as_os_str(),
        "--pack-file".as_ref(),
        pf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code(&o), exit::USAGE, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("{}:1:", pf.display())), "{e}");
    assert!(e.contains(&src.join("etc").display().to_string()), "{e}");
    assert!(!out.exists());
}

#[test]
fn malformed_pack_file_lines_exit_2_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::write(d.join("present"), "x").unwrap();
    let cases: &[(&str, &str)] = &[
        ("bogus /a 0755 0 0", "unknown entry type"),
        ("dir /a 0758 0 0", "octal"),
        ("dir /a 17777 0 0", "octal"),
        ("dir /a 0755 -1 0", "uid"),
        ("dir /a 0755 0 99999999999", "gid"),
        ("dir /a 0755 0 0junk", "gid"),
        ("dir \"/a 0755 0 0", "closing"),
        ("dir \"/a\"0755 0 0", "followed by a blank"),
        ("dir /a", "followed by the mode"),
        ("dir /a 0755", "followed by a blank"),
        ("pipe / 0644 0 0", "cannot use /"),
        ("dir /a/../../b 0755 0 0", "`..`"),
        ("slink /a 0777 0 0", "needs a target"),
        ("link /a 0 0 0", "needs a target"),
        ("nod /a 0600 0 0 q 1 2", "device type"),
        ("nod /a 0600 0 0 c x 2", "MAJOR MINOR"),
        ("nod /a 0600 0 0 b 1 1048576", "cannot be stored"),
        ("glob /a 0755 0 0 -type x here", "unknown glob option"),
        ("file /a 0644 0 0 missing-source", "does not exist"),
        ("file /a 0644 0 0 .", "not a regular file"),
        (
            "file /a 0644 0 0 present\nfile /a 0600 0 0 present",
            "already set at line 3",
        ),
        ("link /a 0 0 0 /nowhere", "does not exist"),
        ("dir /d 0755 0 0\nlink /a 0 0 0 /d", "only regular files"),
        ("link /a 0 0 0 /b\nlink /b 0 0 0 /a", "loop"),
        (
            "file /f 0644 0 0 present\ndir /f/sub 0755 0 0",
            "needed as a directory",
        ),
        ("glob /g 0755 0 0 missing-dir", "does not exist"),
        ("sock /s 0644 0", "TYPE PATH MODE UID GID"),
    ];
    for (i, (body, what)) in cases.iter().enumerate() {
        // Two lines of comment and blank first: the bad line is line 3.
        let pf = d.join(format!("case{i}.txt"));
        fs::write(&pf, format!("# case\n\n{body}\n")).unwrap();
        let out = d.join(format!("case{i}.squashfs"));
        let o = repropack_out([
            "pack".as_ref(),
            "--pack-file".as_ref(),
            pf.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let e = stderr(&o);
        assert_eq!(code(&o), exit::USAGE, "{body:?}: {e}");
        let at = e.contains(&format!("{}:3:", pf.display()))
            || e.contains(&format!("{}:4:", pf.display()));
        assert!(at, "{body:?}: {e}");
        assert!(e.contains(what), "{body:?}: {e}");
        assert!(!out.exists(), "{body:?}");
    }
    let left: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".txt") && n != "present")
        .collect();
    assert!(left.is_empty(), "litter: {left:?}");
}

#[test]
fn missing_or_oversized_pack_file_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("out.squashfs");
    let missing = d.join("no-such-pack-file");
    let o = repropack_out([
        "pack".as_ref(),
        "--pack-file".as_ref(),
        missing.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code(&o), exit::USAGE, "{}", stderr(&o));
    assert!(stderr(&o).contains(&missing.display().to_string()));
    let long = d.join("long.txt");
    fs::write(&long, format!("dir /{} 0755 0 0\n", "a".repeat(70_000))).unwrap();
    let o = repropack_out([
        "pack".as_ref(),
        "--pack-file".as_ref(),
        long.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code(&o), exit::USAGE, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}:1:", long.display())),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

/// Extended attributes as `getfattr --dump` writes them, in each of its
/// encodings, reach the plan with the bytes `setfattr` set.
#[test]
fn xattr_file_reads_what_getfattr_dumps() {
    if !have_tool("getfattr") || !have_tool("setfattr") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir_all(tree.join("a b")).unwrap();
    fs::write(tree.join("a b/f\\g"), "x").unwrap();
    fs::write(tree.join("plain"), "y").unwrap();
    let set = |name: &str, value: &str, file: &str| {
        let o = Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(tree.join(file))
            .output()
            .unwrap();
        o.status.success()
    };
    if !set("user.text", "hello world", "a b/f\\g") {
        eprintln!("skipping: this filesystem refuses user.* attributes");
        return;
    }
    assert!(set("user.bin", "0x00ff0a22", "plain"));
    assert!(set("user.q", "\"quoted\" \\ back", "plain"));
    let want: &[(&[u8], &[u8], &[u8])] = &[
        (b"a b/f\\g", b"user.text", b"hello world"),
        (b"plain", b"user.bin", b"\x00\xff\x0a\x22"),
        (b"plain", b"user.q", b"\"quoted\" \\ back"),
    ];
    for encoding in ["text", "hex", "base64"] {
        let dump = run_ok(
            Command::new("getfattr")
                .current_dir(&tree)
                .args(["-R", "--dump", "-m", "-", "-e", encoding, "."]),
        );
        let xf = tmp.path().join(format!("xattrs-{encoding}.txt"));
        fs::write(&xf, &dump.stdout).unwrap();
        let opts = repropack::stage::StageOptions {
            xattr_file: Some(xf),
            jobs: 1,
            ..Default::default()
        };
        let plan =
            repropack::stage::stage(&[repropack::stage::Source::parse(&tree)], &opts).unwrap();
        for (path, name, value) in want {
            let e = plan.entries().iter().find(|e| e.path() == *path).unwrap();
            assert_eq!(
                plan.xattrs(e).get(name),
                Some(*value),
                "{encoding}: {path:?} {name:?}"
            );
        }
        let dir = plan.entries().iter().find(|e| e.path() == b"a b").unwrap();
        assert!(plan.xattrs(dir).is_empty());
    }
    // And in a SquashFS image, as unsquashfs restores them.
    if !have_tool("unsquashfs") {
        return;
    }
    let img = tmp.path().join("out.squashfs");
    let xf = tmp.path().join("xattrs-base64.txt");
    pack(
        &img,
        &[tree.to_str().unwrap(), "--xattr-file", xf.to_str().unwrap()],
    );
    let x = tmp.path().join("x");
    run_ok(
        Command::new("unsquashfs")
            .arg("-xattrs")
            .arg("-d")
            .arg(&x)
            .arg(&img),
    );
    let dump = run_ok(
        Command::new("getfattr")
            .current_dir(&x)
            .args(["-R", "--dump", "-m", "user.", "-e", "hex", "."]),
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    for want in [
        "# file: a b/f\\134g\nuser.text=0x68656c6c6f20776f726c64",
        "user.bin=0x00ff0a22",
        "user.q=0x2271756f74656422205c206261636b",
    ] {
        assert!(dump.contains(want), "{want:?} missing from\n{dump}");
    }
}

#[test]
fn xattr_file_paths_not_in_the_archive_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("tree")).unwrap();
    fs::write(d.join("tree/present"), "x").unwrap();
    let out = d.join("out.tar");
    for (body, line, what) in [
        ("# file: absent\nuser.a=1\n", 1, "not in the archive"),
        (
            "# file: present\nuser.a=1\nuser.a=2\n",
            3,
            "already given at line 2",
        ),
        ("# file: present\nuser.a=0xabc\n", 2, "even number"),
        ("user.a=1\n", 1, "before any"),
    ] {
        let xf = d.join("x.txt");
        fs::write(&xf, body).unwrap();
        let o = repropack_out([
            "pack".as_ref(),
            d.join("tree").as_os_str(),
            "--xattr-file".as_ref(),
            xf.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let e = stderr(&o);
        assert_eq!(code(&o), exit::USAGE, "{body:?}: {e}");
        assert!(
            e.contains(&format!("{}:{line}:", xf.display())),
            "{body:?}: {e}"
        );
        assert!(e.contains(what), "{body:?}: {e}");
        assert!(!out.exists());
    }
}

/// The same pack file written as tar: GNU tar lists the devices, special
/// bits, owners and hard links the pack file asks for.
#[test]
fn pack_file_to_tar_is_read_by_gnu_tar() {
    if !have_tool("tar") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("pack/data")).unwrap();
    fs::create_dir_all(d.join("pack/etc")).unwrap();
    fs::create_dir_all(d.join("data")).unwrap();
    fs::write(d.join("data/init"), "init").unwrap();
    fs::write(d.join("pack/data/su"), "su").unwrap();
    fs::write(d.join("pack/etc/motd"), "motd").unwrap();
    let pf = d.join("pack/files.txt");
    fs::write(&pf, EVERY_KIND).unwrap();
    let out = d.join("out.tar");
    pack(&out, &["--pack-file", pf.to_str().unwrap()]);
    let o = run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&out),
    );
    let l = String::from_utf8_lossy(&o.stdout);
    for want in [
        "crw------- 0/5",
        "brw-rw---- 0/6",
        "-rwsr-xr-x 0/0",
        "-rwxr-sr-x 0/42",
        "drwxrwxrwt 0/0",
        "prw------- 0/0",
        "drwx------ 1000/1000",
        "bin/su2 link to bin/su",
        "bin/sh -> busybox with spaces",
    ] {
        assert!(l.contains(want), "{want:?} missing from\n{l}");
    }
}

/// Tar has no socket type: a pack file with a `sock` line packed as tar
/// or tar.gz exits 2 naming the entry, and writes nothing.
#[test]
fn socket_line_to_tar_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pf = d.join("files.txt");
    fs::write(&pf, format!("dir /run 0755 0 0\n{SOCKET}")).unwrap();
    for format in ["tar", "tar.gz"] {
        let out = d.join(format!("out.{format}"));
        let o = repropack_out([
            "pack".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            "--pack-file".as_ref(),
            pf.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("run/ctl.sock") && err.contains("socket"),
            "{err}"
        );
        assert!(!out.exists());
    }
    assert_eq!(
        fs::read_dir(d).unwrap().count(),
        1,
        "litter next to the output"
    );
}

/// A line that overrides one member of a hard-linked pair on disk gives
/// the whole group the new mode and owner (they share one inode).
#[test]
fn pack_file_override_reaches_every_hard_link_member() {
    if !have_tool("tar") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let src = d.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), "shared").unwrap();
    fs::hard_link(src.join("a"), src.join("b")).unwrap();
    let pf = d.join("layout.txt");
    fs::write(&pf, "file /b 4750 0 7\n").unwrap();
    let out = d.join("out.tar");
    pack(
        &out,
        &[src.to_str().unwrap(), "--pack-file", pf.to_str().unwrap()],
    );
    let o = run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&out),
    );
    let l = String::from_utf8_lossy(&o.stdout);
    let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(l.contains("-rwsr-x--- 0/7 6 1980-01-01 00:00 a "), "{l}");
    assert!(
        l.contains("hrwsr-x--- 0/7 0 1980-01-01 00:00 b link to a"),
        "{l}"
    );
}

/// The pack file and the xattr file are recorded where the options are:
/// in the manifest, in the provenance statement's `options` and in `pack
/// --json`, each as its file name and the sha256 `sha256sum` gives of its
/// bytes, with the kept-owners and xattr policy beside them; the record
/// does not depend on the directory the files lie in.
#[test]
fn pack_and_xattr_files_are_recorded_with_their_sha256() {
    if !have_tool("sha256sum") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::write(d.join("motd"), "welcome\n").unwrap();
    let pf = d.join("layout.txt");
    fs::write(&pf, "dir /etc 0755 0 0\nfile /etc/motd 0644 0 0 motd\n").unwrap();
    let xf = d.join("attrs.dump");
    fs::write(&xf, "# file: etc/motd\nuser.label=\"x\"\n").unwrap();
    let (pf_sha, xf_sha) = (sha256sum(&pf), sha256sum(&xf));
    let record = |d: &Path, out: &str| {
        let art = d.join(out);
        let manifest = d.join(format!("{out}.manifest.json"));
        let prov = d.join(format!("{out}.prov.json"));
        let o = run_ok(
            repropack()
                .args(["pack", "--json", "--keep-owners", "--xattrs", "--pack-file"])
                .arg(d.join("layout.txt"))
                .arg("--xattr-file")
                .arg(d.join("attrs.dump"))
                .arg("--manifest")
                .arg(&manifest)
                .arg("--provenance")
                .arg(&prov)
                .arg("-o")
                .arg(&art),
        );
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let read = |p: &Path| -> serde_json::Value {
            serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
        };
        let m = read(&manifest)["options"].clone();
        let p =
            read(&prov)["predicate"]["buildDefinition"]["externalParameters"]["options"].clone();
        (json["options"].clone(), m, p)
    };
    let (json, manifest, prov) = record(d, "a.squashfs");
    for options in [&json, &manifest, &prov] {
        assert_eq!(options["pack_file"]["name"], "layout.txt", "{options}");
        assert_eq!(options["pack_file"]["sha256"], pf_sha.as_str(), "{options}");
        assert_eq!(options["xattr_file"]["name"], "attrs.dump", "{options}");
        assert_eq!(
            options["xattr_file"]["sha256"],
            xf_sha.as_str(),
            "{options}"
        );
        assert_eq!(options["keep_owners"], true, "{options}");
        assert_eq!(
            options["xattrs"]["include"],
            serde_json::json!([]),
            "{options}"
        );
    }
    // The same files in another directory: the same record.
    let other = d.join("elsewhere");
    fs::create_dir_all(&other).unwrap();
    for f in ["layout.txt", "attrs.dump", "motd"] {
        fs::copy(d.join(f), other.join(f)).unwrap();
    }
    let (_, again, _) = record(&other, "b.squashfs");
    assert_eq!(manifest, again);
}

/// A `link` line naming a file found by walking a source, at a path that
/// sorts before it: the link becomes the group's first member, so its
/// content is read through the link's own entry. The plan stores a walked
/// file's name once (in the entry's path), so the link's copy has to name
/// the target's file; unsquashfs and GNU tar read the target's bytes
/// through both paths.
#[test]
fn link_line_sorting_before_its_walked_target_reads_the_target() {
    if !have_tool("unsquashfs") || !have_tool("tar") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::create_dir_all(d.join("src/d")).unwrap();
    fs::write(d.join("src/d/zz"), "target bytes\n").unwrap();
    let pf = d.join("pf");
    fs::write(&pf, "link /d/aa 0 0 0 /d/zz\n").unwrap();
    let src = d.join("src");
    for (out, read) in [(d.join("o.sqfs"), "unsquashfs"), (d.join("o.tar"), "tar")] {
        run_ok(
            repropack()
                .arg("pack")
                .arg(&src)
                .arg("--pack-file")
                .arg(&pf)
                .arg("-o")
                .arg(&out)
                .arg("-q"),
        );
        let x = d.join(format!("x-{read}"));
        if read == "unsquashfs" {
            run_ok(Command::new("unsquashfs").arg("-d").arg(&x).arg(&out));
        } else {
            fs::create_dir(&x).unwrap();
            run_ok(Command::new("tar").arg("-xf").arg(&out).arg("-C").arg(&x));
        }
        for member in ["d/aa", "d/zz"] {
            let got = fs::read(x.join(member)).unwrap();
            assert_eq!(got, b"target bytes\n", "{read} {member}");
        }
    }
}
