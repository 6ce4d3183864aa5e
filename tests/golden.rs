//! docs/CONTRACT.md §5: golden fixtures. `fixtures/golden.tsv` holds the sha256
//! each format produces from a fixture tree with given options. A moved hash
//! is a format change: bump FORMAT_VERSION on purpose, never "update the
//! goldens" to make this pass.
//!
//! The expected tar bytes are checked independently: for the same tree GNU
//! tar (`--format=posix --sort=name`, deterministic options) writes the very
//! same bytes, and gzip -d of our tar.gz gives our tar.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::bin::repropack;
use crate::support::hash::sha256_file;
use crate::support::tool::have_tool;
use crate::support::tree::{Tree, assert_same};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Copies a fixture tree (as checked out by git) into `dst` with normalized
/// permissions, then adds what git cannot hold: an empty directory, a hard
/// link and a non-UTF-8 name.
fn materialize(tree: &str, dst: &Path) {
    let src = fixtures().join("trees").join(tree);
    for e in walkdir::WalkDir::new(&src).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let to = dst.join(e.path().strip_prefix(&src).unwrap());
        let ft = e.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        } else if ft.is_symlink() {
            symlink(fs::read_link(e.path()).unwrap(), &to).unwrap();
        } else {
            fs::copy(e.path(), &to).unwrap();
            let exec = e.metadata().unwrap().permissions().mode() & 0o111 != 0;
            let mode = if exec { 0o755 } else { 0o644 };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    if tree == "basic" {
        fs::create_dir(dst.join("empty-dir")).unwrap();
        fs::set_permissions(dst.join("empty-dir"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::hard_link(dst.join("tool.sh"), dst.join("nested/hard-tool.sh")).unwrap();
        fs::write(
            dst.join(OsStr::from_bytes(b"caf\xe9.txt")),
            b"latin-1 name\n",
        )
        .unwrap();
    }
}

struct Golden {
    tree: String,
    options: Vec<String>,
    sha256: String,
}

fn goldens() -> Vec<Golden> {
    let text = fs::read_to_string(fixtures().join("golden.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "bad golden line {l:?}");
            Golden {
                tree: cols[0].to_string(),
                options: cols[1].split_whitespace().map(str::to_string).collect(),
                sha256: cols[2].to_string(),
            }
        })
        .collect()
}

#[test]
fn golden_hashes_match() {
    let all = goldens();
    assert!(all.len() >= 4);
    let mut failures = Vec::new();
    for g in &all {
        let src = tempfile::tempdir().unwrap();
        materialize(&g.tree, src.path());
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("golden.out");
        let mut args: Vec<OsString> = vec![
            "pack".into(),
            src.path().into(),
            "-o".into(),
            file.clone().into(),
        ];
        args.extend(g.options.iter().map(OsString::from));
        let res = repropack().args(&args).output().unwrap();
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let got = sha256_file(&file);
        if got != g.sha256 {
            failures.push(format!(
                "{} {:?}: expected {} got {}",
                g.tree, g.options, g.sha256, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden hashes moved (a format change?):\n{}",
        failures.join("\n")
    );
}

/// Our tar of the basic tree (long, non-ASCII and non-UTF-8 names, long and
/// non-ASCII link targets, a hard link, an empty dir) equals GNU tar's byte
/// for byte.
#[test]
fn tar_output_matches_gnu_tar_byte_for_byte() {
    if !have_tool("tar") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    materialize("basic", src.path());
    let out = tempfile::tempdir().unwrap();
    let ours = out.path().join("ours.tar");
    let gnu = out.path().join("gnu.tar");
    let res = repropack()
        .arg("pack")
        .arg(src.path())
        .arg("-o")
        .arg(&ours)
        .output()
        .unwrap();
    assert!(res.status.success());
    let mut names: Vec<OsString> = fs::read_dir(src.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let st = Command::new("tar")
        .env("LC_ALL", "C")
        .current_dir(src.path())
        .args([
            "--format=posix",
            "--pax-option=exthdr.name=././@PaxHeader,delete=atime,delete=ctime",
            "--sort=name",
            "--mtime=@315532800",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&gnu)
        .args(&names)
        .status()
        .unwrap();
    assert!(st.success());
    let (a, b) = (fs::read(&ours).unwrap(), fs::read(&gnu).unwrap());
    let first_diff = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a == b,
        "differ: len {} vs {}, first differing byte {:?}",
        a.len(),
        b.len(),
        first_diff
    );
}

/// The tar.gz goldens decompress (with gzip, not our code) to the tar golden.
#[test]
fn tar_gz_decompresses_to_the_tar_golden() {
    if !have_tool("gzip") {
        return;
    }
    let all = goldens();
    let tar = all
        .iter()
        .find(|g| g.tree == "basic" && g.options == ["--format", "tar"])
        .unwrap();
    for g in all.iter().filter(|g| {
        g.tree == "basic"
            && g.options.starts_with(&["--format".into(), "tar.gz".into()])
            && !g.options.iter().any(|o| o == "--mtime")
    }) {
        let src = tempfile::tempdir().unwrap();
        materialize("basic", src.path());
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("x.tar.gz");
        let st = repropack()
            .arg("pack")
            .arg(src.path())
            .arg("-o")
            .arg(&file)
            .args(&g.options)
            .status()
            .unwrap();
        assert!(st.success());
        let plain = Command::new("gzip").arg("-dc").arg(&file).output().unwrap();
        assert!(plain.status.success());
        assert_eq!(
            repropack::digest::Sha256Digest::of(&plain.stdout).to_hex(),
            tar.sha256,
            "{:?}",
            g.options
        );
    }
}

/// Kind, mode and content (or link target) of every path under `root`
/// but the root itself, read from disk.
fn snapshot(root: &Path) -> Tree {
    Tree::of(root)
        .without_root()
        .without_owners()
        .without_times()
        .without_links()
}

/// The squashfs goldens are checked by readers that are not ours:
/// `unsquashfs -s` reports the compressor and block size, `unsquashfs -d`
/// extracts exactly the fixture tree, and `unsquashfs -lln` shows owners 0/0
/// and the epoch.
#[test]
fn squashfs_goldens_are_the_fixture_tree_for_unsquashfs() {
    if !have_tool("unsquashfs") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    materialize("basic", src.path());
    let want = snapshot(src.path());
    for g in goldens()
        .iter()
        .filter(|g| g.tree == "basic" && g.options.iter().any(|o| o == "squashfs"))
    {
        let out = tempfile::tempdir().unwrap();
        let img = out.path().join("g.sqfs");
        let st = repropack()
            .arg("pack")
            .arg(src.path())
            .arg("-o")
            .arg(&img)
            .args(&g.options)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(sha256_file(&img), g.sha256, "{:?}", g.options);
        let comp = if g.options.iter().any(|o| o.starts_with("zstd")) {
            "zstd"
        } else {
            "gzip"
        };
        let block = if g.options.iter().any(|o| o == "4K") {
            4096
        } else {
            131_072
        };
        let info = Command::new("unsquashfs")
            .arg("-s")
            .arg(&img)
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains(&format!("Compression {comp}")), "{info}");
        assert!(info.contains(&format!("Block size {block}")), "{info}");
        let dest = out.path().join("x");
        let st = Command::new("unsquashfs")
            .arg("-q")
            .arg("-n")
            .arg("-d")
            .arg(&dest)
            .arg(&img)
            .status()
            .unwrap();
        assert!(st.success());
        assert_same(&format!("{:?}", g.options), &want, &snapshot(&dest));
        let ll = Command::new("unsquashfs")
            .args(["-lln", "-UTC"])
            .arg(&img)
            .output()
            .unwrap();
        let ll = String::from_utf8_lossy(&ll.stdout);
        let rows: Vec<&str> = ll.lines().filter(|l| l.contains("squashfs-root")).collect();
        assert_eq!(rows.len(), want.nodes.len() + 1, "{ll}");
        for row in rows {
            assert!(
                row.contains(" 0/0 ") && row.contains("1980-01-01 00:00"),
                "{row}"
            );
        }
    }
}

/// sha256 of `pack --from-tar fixtures/rootfs-xattrs.tar --rootfs --format
/// tar`: owners kept (numeric, empty uname/gname) and xattrs as pax
/// `SCHILY.xattr.*` records. A moved hash is a format change.
const ROOTFS_XATTRS_TAR: &str = "98c8d43b0d9774d969abfbd39817573ffdfee6b0ad3cf63605f7308cc933404b";

/// The golden tar with kept owners and xattrs, checked by Python's tarfile
/// (every member's owner, mode and pax records, against the values the
/// fixture was written with) and, as root, by GNU tar restoring it (stat,
/// getfattr).
#[test]
fn golden_tar_with_kept_owners_and_xattrs() {
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("rootfs.tar");
    let res = repropack()
        .args(["pack", "--rootfs", "--format", "tar", "--from-tar"])
        .arg(fixtures().join("rootfs-xattrs.tar"))
        .arg("-o")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        sha256_file(&tar),
        ROOTFS_XATTRS_TAR,
        "golden moved (a format change?)"
    );

    if !have_tool("python3") {
        return;
    }
    let script = r#"
import sys, tarfile
for m in tarfile.open(sys.argv[1]):
    recs = " ".join(k + "=" + v.encode("utf-8", "surrogateescape").hex()
                    for k, v in m.pax_headers.items())
    print(m.name, "%d:%d" % (m.uid, m.gid), "%o" % m.mode, repr(m.uname), repr(m.gname), recs)
"#;
    let py = Command::new("python3")
        .args(["-c", script])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let listing = String::from_utf8(py.stdout).unwrap();
    let cap = "0100000200200000000000000000000000000000";
    let want = format!(
        "etc 0:0 755 '' '' SCHILY.xattr.user.dir=64\n\
         etc/shadow 0:42 640 '' '' \n\
         usr 0:0 755 '' '' \n\
         usr/bin 0:0 755 '' '' \n\
         usr/bin/ping 1234:5678 755 '' '' SCHILY.xattr.security.capability={cap} \
         SCHILY.xattr.user.bin=00010a3d SCHILY.xattr.user.plain=68656c6c6f\n\
         usr/bin/ping6 7:8 777 '' '' \n\
         usr/bin/su 0:0 4755 '' '' \n"
    );
    assert_eq!(listing, want);

    let root = unsafe { libc::geteuid() } == 0;
    if !root || !have_tool("tar") || !have_tool("getfattr") {
        eprintln!("not root or no GNU tar/getfattr: the restore by GNU tar is not checked");
        return;
    }
    let dest = out.path().join("gnu");
    fs::create_dir(&dest).unwrap();
    let st = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(&tar)
        .arg("-C")
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    let dump = Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "-e", "hex", "usr/bin/ping", "etc"])
        .current_dir(&dest)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    for line in [
        format!("security.capability=0x{cap}"),
        "user.bin=0x00010a3d".to_string(),
        "user.plain=0x68656c6c6f".to_string(),
        "user.dir=0x64".to_string(),
    ] {
        assert!(dump.contains(&line), "{line} not in {dump}");
    }
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(dest.join("usr/bin/ping6")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
    let m = fs::metadata(dest.join("etc/shadow")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 42, 0o640));
    let m = fs::metadata(dest.join("usr/bin/su")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
}

/// sha256 of `pack --format tar.gz` (default level 6) of [`multi_chunk_tree`]:
/// three 1 MiB gzip chunks, so the chunk ends (the final bit cleared, an empty
/// stored block) are part of the pinned bytes, which the basic tree (one
/// chunk) never reaches.
const MULTI_CHUNK_TAR_GZ: &str = "fda1c8e12e2a957bcdc15826ffe33d9fba33c313416dc8de778e53c6b0156edf";

/// One 3 000 000-byte file of pseudo-random, text-like bytes (a fixed LCG), so
/// it compresses to several chunks of output; mode 0644, mtime 0.
fn multi_chunk_tree(dst: &Path) -> Vec<u8> {
    let mut x: u32 = 2_463_534_242;
    let words = [
        &b"import "[..],
        b"self",
        b" = ",
        b"def ",
        b"return ",
        b"\n    ",
        b"None",
        b"(x)",
    ];
    let mut data = Vec::new();
    while data.len() < 3_000_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        if x >> 29 == 0 {
            data.push(b'a' + (x >> 8) as u8 % 26);
        } else {
            data.extend_from_slice(words[(x >> 16) as usize % words.len()]);
        }
    }
    data.truncate(3_000_000);
    let file = dst.join("data.txt");
    fs::write(&file, &data).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    filetime::set_file_mtime(&file, filetime::FileTime::from_unix_time(0, 0)).unwrap();
    data
}

/// The multi-chunk tar.gz golden, read by others: gzip -t passes, gzip -dc
/// gives our plain tar, GNU tar, bsdtar and Python's tarfile all read the
/// file back, Python's also as a stream (`r|gz`), which reads one gzip member
/// only.
#[test]
fn multi_chunk_tar_gz_golden_is_read_by_others() {
    let src = tempfile::tempdir().unwrap();
    let data = multi_chunk_tree(src.path());
    let out = tempfile::tempdir().unwrap();
    let gz = out.path().join("m.tar.gz");
    let tar = out.path().join("m.tar");
    for (file, format) in [(&gz, "tar.gz"), (&tar, "tar")] {
        let st = repropack()
            .arg("pack")
            .arg(src.path())
            .arg("-o")
            .arg(file)
            .args(["--format", format, "--mtime", "0"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    assert_eq!(sha256_file(&gz), MULTI_CHUNK_TAR_GZ);
    if have_tool("gzip") {
        assert!(
            Command::new("gzip")
                .arg("-t")
                .arg(&gz)
                .status()
                .unwrap()
                .success()
        );
        let plain = Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
        assert!(plain.status.success());
        assert!(
            plain.stdout == fs::read(&tar).unwrap(),
            "gzip -dc is not our tar"
        );
    }
    for tool in ["tar", "bsdtar"] {
        if !have_tool(tool) {
            continue;
        }
        let got = Command::new(tool)
            .arg("-xOzf")
            .arg(&gz)
            .arg("data.txt")
            .output()
            .unwrap();
        assert!(got.status.success(), "{tool}");
        assert!(got.stdout == data, "{tool} read other bytes");
    }
    if have_tool("python3") {
        for mode in ["r:gz", "r|gz"] {
            let script = "import sys,tarfile,hashlib\n\
                t=tarfile.open(fileobj=open(sys.argv[1],'rb'),mode=sys.argv[2])\n\
                m=t.next()\n\
                print(m.name, hashlib.sha256(t.extractfile(m).read()).hexdigest())";
            let got = Command::new("python3")
                .args(["-c", script])
                .arg(&gz)
                .arg(mode)
                .output()
                .unwrap();
            assert!(got.status.success(), "{mode}: {got:?}");
            assert_eq!(
                String::from_utf8_lossy(&got.stdout).trim(),
                format!(
                    "data.txt {}",
                    repropack::digest::Sha256Digest::of(&data).to_hex()
                ),
                "{mode}"
            );
        }
    }
}
