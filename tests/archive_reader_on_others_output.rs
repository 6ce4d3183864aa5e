//! The archive reader sees exactly the source tree in archives written by
//! other tools (GNU tar, Python's tarfile, mksquashfs, squashfs-tools-ng),
//! detects the format from the bytes whatever the file is called, and
//! reports the container facts those tools were asked to write.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use repropack::EntryKind;
use repropack::format::{self as archive, ContainerInfo, Format, normalize_path};

use crate::support::bin::run_ok;
use crate::support::fixtures::archive_sample_tree;
use crate::support::tool::have_tool;
use crate::support::tree::{Kind, Tree, fingerprint};

/// Entries read back: normalized path → (kind, mode, content or target).
/// (normalized path, entry, content) in archive order.
type ReadBack = Vec<(Vec<u8>, archive::ArchiveEntry, Vec<u8>)>;

fn read_back(path: &Path) -> (Format, ReadBack) {
    let a = archive::open(path).unwrap_or_else(|e| panic!("{e}"));
    let format = a.format();
    let mut out = Vec::new();
    a.for_each_entry(|e, content| {
        let mut bytes = Vec::new();
        content
            .read_to_end(&mut bytes)
            .map_err(|err| archive::ArchiveError::content(e, err))?;
        assert_eq!(bytes.len() as u64, e.size(), "{}", e.display_path());
        out.push((normalize_path(e.path()).unwrap(), e.clone(), bytes));
        Ok::<(), archive::ArchiveError>(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (format, out)
}

/// Checks every entry against the source tree and that every source path
/// was seen. `links`: the producer keeps hard links as links.
fn assert_matches_source(src: &Path, archive: &Path, want: Format, links: bool) {
    let tree = Tree::of(src).without_root();
    let groups = tree.links.clone().unwrap_or_default();
    let linked = |a: &[u8], b: &[u8]| {
        groups
            .iter()
            .any(|g| g.iter().any(|p| p == a) && g.iter().any(|p| p == b))
    };
    let (format, entries) = read_back(archive);
    assert_eq!(format, want, "{}", archive.display());
    let mut seen = BTreeSet::new();
    for (path, e, content) in &entries {
        if path.is_empty() {
            assert_eq!(e.kind(), EntryKind::Dir);
            continue;
        }
        let node = tree
            .nodes
            .get(path)
            .unwrap_or_else(|| panic!("{:?} is not in the source", e.display_path()));
        match (e.kind(), node.kind) {
            (EntryKind::Dir, Kind::Dir) => assert_eq!(Some(e.mode()), node.perm, "{path:?}"),
            (EntryKind::File, Kind::File) => {
                assert_eq!(Some(e.mode()), node.perm, "{:?}", e.display_path());
                let (len, fp) = fingerprint(&content[..]).unwrap();
                assert_eq!(
                    (Some(len), Some(fp)),
                    (node.size, node.content),
                    "content of {:?}",
                    e.display_path()
                );
            }
            (EntryKind::Symlink, Kind::Symlink) => {
                assert_eq!(e.link_target(), node.target.as_deref());
            }
            (EntryKind::HardLink, Kind::File) => {
                let t = normalize_path(e.link_target().unwrap()).unwrap();
                assert!(
                    tree.nodes.get(&t).is_some_and(|n| n.kind == Kind::File) && linked(path, &t),
                    "hard link {path:?} to {t:?}: {:?}",
                    tree.nodes.get(&t)
                );
            }
            (k, n) => panic!(
                "{:?}: archive says {k:?}, source has {n:?}",
                e.display_path()
            ),
        }
        assert!(seen.insert(path.clone()), "{path:?} twice");
    }
    let missing: Vec<_> = tree.nodes.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "not in archive: {missing:?}");
    if links {
        for group in &groups {
            let kinds: Vec<EntryKind> = entries
                .iter()
                .filter(|(p, _, _)| group.contains(p))
                .map(|(_, e, _)| e.kind())
                .collect();
            assert_eq!(
                kinds.iter().filter(|k| **k == EntryKind::HardLink).count(),
                group.len() - 1,
                "{group:?}: {kinds:?}"
            );
        }
    }
}

fn gnu_tar(src: &Path, out: &Path, format: &str) {
    run_ok(
        Command::new("tar")
            .arg("--format")
            .arg(format)
            .arg("-C")
            .arg(src)
            .arg("-cf")
            .arg(out)
            .arg("."),
    );
}

#[test]
fn reads_gnu_tar_gnu_and_pax_formats_as_the_source_tree() {
    if !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    archive_sample_tree(&src);
    for format in ["gnu", "pax", "posix"] {
        // A misleading name: detection must use the bytes.
        let out = dir.path().join(format!("{format}.squashfs"));
        gnu_tar(&src, &out, format);
        assert_matches_source(&src, &out, Format::Tar, true);
    }
}

#[test]
fn reads_gzip_and_multi_member_gzip_tar() {
    if !have_tool("tar") || !have_tool("gzip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    archive_sample_tree(&src);
    let tar = dir.path().join("t.tar");
    gnu_tar(&src, &tar, "gnu");
    let bytes = fs::read(&tar).unwrap();
    // One member, named like a plain tar.
    let one = dir.path().join("one.tar");
    let gz = run_ok(Command::new("gzip").arg("-c").arg(&tar)).stdout;
    fs::write(&one, &gz).unwrap();
    assert_matches_source(&src, &one, Format::TarGz, true);
    // Two members, split in the middle of a header.
    let (first, second) = bytes.split_at(1000);
    let mut multi = Vec::new();
    for part in [first, second] {
        let part_path = dir.path().join("part");
        fs::write(&part_path, part).unwrap();
        multi.extend(run_ok(Command::new("gzip").arg("-c").arg(&part_path)).stdout);
    }
    let two = dir.path().join("two.bin");
    fs::write(&two, &multi).unwrap();
    assert_matches_source(&src, &two, Format::TarGz, true);
    match archive::open(&one).unwrap().info() {
        ContainerInfo::TarGz { gzip, tar } => {
            assert_eq!(gzip.name.as_deref(), Some(&b"t.tar"[..]));
            assert_eq!(tar.first_header, archive::tar::HeaderFlavor::Gnu);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_python_tarfile_gnu_pax_and_gz() {
    if !have_tool("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    archive_sample_tree(&src);
    for (name, mode, fmt, want) in [
        ("py-gnu.tar", "w", "GNU_FORMAT", Format::Tar),
        ("py-pax.tar", "w", "PAX_FORMAT", Format::Tar),
        ("py.tgz", "w:gz", "PAX_FORMAT", Format::TarGz),
    ] {
        let out = dir.path().join(name);
        let script = format!(
            "import tarfile, os, sys\n\
             os.chdir(sys.argv[1])\n\
             with tarfile.open(sys.argv[2], '{mode}', format=tarfile.{fmt}) as t:\n\
             \x20   t.add('.')\n"
        );
        run_ok(
            Command::new("python3")
                .arg("-c")
                .arg(&script)
                .arg(&src)
                .arg(&out),
        );
        assert_matches_source(&src, &out, want, true);
    }
}

#[test]
fn python_pax_records_override_uid_gid_mtime_and_size_fields() {
    if !have_tool("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big-ids.tar");
    let script = "import tarfile, io, sys\n\
        with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:\n\
        \x20   i = tarfile.TarInfo('f')\n\
        \x20   i.size = 3; i.uid = 3000000000; i.gid = 4000000000; i.mtime = 99999999999\n\
        \x20   t.addfile(i, io.BytesIO(b'abc'))\n";
    run_ok(Command::new("python3").arg("-c").arg(script).arg(&out));
    let (_, entries) = read_back(&out);
    assert_eq!(entries.len(), 1);
    let (_, e, content) = &entries[0];
    assert_eq!(e.uid(), 3_000_000_000);
    assert_eq!(e.gid(), 4_000_000_000);
    assert_eq!(e.mtime(), 99_999_999_999);
    assert_eq!(content, b"abc");
}

fn mksquashfs(src: &Path, out: &Path, extra: &[&str]) {
    run_ok(
        Command::new("mksquashfs")
            .arg(src)
            .arg(out)
            .args(["-noappend", "-no-xattrs", "-quiet", "-no-progress"])
            .args(extra),
    );
}

#[test]
fn reads_mksquashfs_images_in_every_compressor_backhand_has() {
    if !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    archive_sample_tree(&src);
    for comp in ["gzip", "xz", "zstd", "lz4"] {
        let out = dir.path().join(format!("{comp}.tar.gz"));
        mksquashfs(
            &src,
            &out,
            &["-comp", comp, "-b", "65536", "-mkfs-time", "1234567"],
        );
        assert_matches_source(&src, &out, Format::Squashfs, true);
        match archive::open(&out).unwrap().info() {
            ContainerInfo::SquashFs(info) => {
                assert_eq!(info.compressor, comp);
                assert_eq!(info.block_size, 65536);
                assert_eq!(info.mkfs_time, 1_234_567);
                assert!(info.flag_names().contains(&"exportable"), "{info:?}");
                assert_eq!((info.version_major, info.version_minor), (4, 0));
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The sample tree plus what exercises the rest of the format: a file with
/// an all-zero block (a sparse block), files of exactly one and two blocks,
/// a 4,095-byte symlink target, and a directory of 2,000 long names (a
/// listing over many metadata blocks, with a directory index).
fn layout_tree(src: &Path) {
    archive_sample_tree(src);
    let mut sparse = vec![0u8; 3 << 16];
    sparse.extend_from_slice(b"tail after zeros");
    fs::write(src.join("sparse"), &sparse).unwrap();
    fs::write(src.join("one_block"), vec![7u8; 1 << 16]).unwrap();
    fs::write(src.join("two_blocks"), vec![8u8; 2 << 16]).unwrap();
    std::os::unix::fs::symlink(format!("{}x", "t/".repeat(2047)), src.join("long_link")).unwrap();
    fs::create_dir(src.join("wide")).unwrap();
    for i in 0..2000 {
        fs::write(src.join("wide").join(format!("{i:0>60}")), i.to_string()).unwrap();
    }
}

#[test]
fn reads_every_layout_mksquashfs_and_gensquashfs_write() {
    if !have_tool("mksquashfs") || !have_tool("gensquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    layout_tree(&src);
    let variants: [&[&str]; 8] = [
        &["-noI", "-noD", "-noF", "-noX"],
        &["-no-fragments"],
        &["-always-use-fragments"],
        &["-b", "4096"],
        &["-b", "1M", "-comp", "zstd"],
        &["-no-exports", "-comp", "lz4", "-Xhc"],
        &["-comp", "xz", "-Xbcj", "x86"],
        &["-no-duplicates", "-no-tailends"],
    ];
    for (i, v) in variants.iter().enumerate() {
        let out = dir.path().join(format!("m{i}.sqfs"));
        // 64 KiB blocks unless the variant says otherwise.
        let bs: &[&str] = if v.contains(&"-b") {
            &[]
        } else {
            &["-b", "65536"]
        };
        mksquashfs(&src, &out, &[*v, bs].concat());
        assert_matches_source(&src, &out, Format::Squashfs, true);
    }
    for comp in ["xz", "lz4", "gzip"] {
        let out = dir.path().join(format!("g-{comp}.sqfs"));
        run_ok(
            Command::new("gensquashfs")
                .arg("--pack-dir")
                .arg(&src)
                .args(["-c", comp, "-b", "65536", "-q", "-k"])
                .arg(&out),
        );
        assert_matches_source(&src, &out, Format::Squashfs, false);
    }
}

#[test]
fn lzo_images_are_refused_as_an_unsupported_compressor() {
    if !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let out = dir.path().join("lzo.sqfs");
    let made = Command::new("mksquashfs")
        .arg(&src)
        .arg(&out)
        .args(["-noappend", "-quiet", "-no-progress", "-comp", "lzo"])
        .output()
        .unwrap();
    if !made.status.success() {
        assert!(
            std::env::var_os("CI").is_none(),
            "mksquashfs lacks lzo under CI"
        );
        return;
    }
    let err = match archive::open(&out) {
        Ok(_) => panic!("an lzo image was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("unsupported compressor lzo"), "{err}");
}

#[test]
fn squashfs_hard_links_share_an_inode_number_and_point_at_the_first_path() {
    if !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("x")).unwrap();
    fs::write(src.join("x/one"), b"same").unwrap();
    fs::hard_link(src.join("x/one"), src.join("zz")).unwrap();
    fs::hard_link(src.join("x/one"), src.join("a")).unwrap();
    fs::write(src.join("dup"), b"same").unwrap(); // a duplicate, not a link
    let out = dir.path().join("l.sqfs");
    mksquashfs(&src, &out, &[]);
    let (_, entries) = read_back(&out);
    let by_path: BTreeMap<Vec<u8>, archive::ArchiveEntry> =
        entries.into_iter().map(|(p, e, _)| (p, e)).collect();
    assert_eq!(by_path[&b"a"[..]].kind(), EntryKind::File);
    for later in [&b"x/one"[..], b"zz"] {
        assert_eq!(by_path[later].kind(), EntryKind::HardLink);
        assert_eq!(by_path[later].link_target(), Some(&b"a"[..]));
        assert_eq!(by_path[later].inode(), by_path[&b"a"[..]].inode());
    }
    assert_eq!(by_path[&b"dup"[..]].kind(), EntryKind::File);
    assert_ne!(by_path[&b"dup"[..]].inode(), by_path[&b"a"[..]].inode());
}

#[test]
fn squashfs_devices_fifos_and_sockets_from_pseudo_definitions() {
    if !have_tool("mksquashfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let out = dir.path().join("dev.sqfs");
    mksquashfs(
        &src,
        &out,
        &[
            "-p",
            "null c 666 0 0 1 3",
            "-p",
            "big c 600 0 0 300 70000",
            "-p",
            "disk b 640 0 0 8 1",
            "-p",
            "pipe i 600 0 0 f",
            "-p",
            "sock I 0 600 0 0 s",
        ],
    );
    let (_, entries) = read_back(&out);
    let by_path: BTreeMap<Vec<u8>, archive::ArchiveEntry> =
        entries.into_iter().map(|(p, e, _)| (p, e)).collect();
    assert_eq!(by_path[&b"null"[..]].kind(), EntryKind::CharDevice);
    assert_eq!(by_path[&b"null"[..]].device(), Some((1, 3)));
    assert_eq!(by_path[&b"null"[..]].mode(), 0o666);
    assert_eq!(by_path[&b"big"[..]].device(), Some((300, 70000)));
    assert_eq!(by_path[&b"disk"[..]].kind(), EntryKind::BlockDevice);
    assert_eq!(by_path[&b"disk"[..]].device(), Some((8, 1)));
    assert_eq!(by_path[&b"pipe"[..]].kind(), EntryKind::Fifo);
    assert_eq!(by_path[&b"sock"[..]].kind(), EntryKind::Socket);
    assert_eq!(by_path[&b"sock"[..]].mode(), 0o600);
}

#[test]
fn reads_squashfs_tools_ng_images() {
    if !have_tool("gensquashfs") || !have_tool("tar2sqfs") || !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    archive_sample_tree(&src);
    let gen_out = dir.path().join("gen.img");
    run_ok(
        Command::new("gensquashfs")
            .arg("--pack-dir")
            .arg(&src)
            .args(["-c", "zstd", "-q", "-k"])
            .arg(&gen_out),
    );
    assert_matches_source(&src, &gen_out, Format::Squashfs, false);
    let tar = dir.path().join("t.tar");
    gnu_tar(&src, &tar, "pax");
    let t2s = dir.path().join("t2s.img");
    let tar_bytes = fs::File::open(&tar).unwrap();
    run_ok(
        Command::new("tar2sqfs")
            .args(["-q", "-c", "gzip"])
            .arg(&t2s)
            .stdin(tar_bytes),
    );
    assert_matches_source(&src, &t2s, Format::Squashfs, false);
}

#[test]
fn unknown_bytes_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        ("x.tar.gz", b"\xfd7zXZ\x00rest-of-xz", "xz"),
        ("y.squashfs", b"sqsh-big-endian-image-bytes", "big-endian"),
        (
            "z.tar",
            b"just some text, not an archive at all",
            "unrecognized",
        ),
        ("e.tar", b"", "empty"),
    ];
    for (name, bytes, hint) in cases {
        let path: PathBuf = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        match archive::open(&path) {
            Err(e @ archive::ArchiveError::UnknownFormat { .. }) => {
                assert!(e.to_string().contains(hint), "{e}")
            }
            Err(e) => panic!("{name}: {e}"),
            Ok(_) => panic!("{name}: accepted"),
        }
    }
}
