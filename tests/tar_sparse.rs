//! Sparse files and GNU numeric forms in tar archives written by other
//! tools: the reader expands every sparse form GNU tar and bsdtar write (old
//! GNU `S`, pax `GNU.sparse.*` 0.0, 0.1 and 1.0) to the file GNU tar
//! restores, reads base-256 numbers (negative mtimes, large ids), and
//! refuses a malformed sparse map by name with nothing left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::bin::{code, ok, repropack, repropack_out, run_ok, stderr};
use crate::support::exit;
use crate::support::hash::sha256_file;
use crate::support::rawtar::{
    RawTar, gnu_sparse_extension, gnu_sparse_header, raw_header, sparse_v1_data,
};
use crate::support::tool::have_tool;
use crate::support::tree::{Tree, assert_same};

const MIB: u64 = 1 << 20;

/// Writes `bytes` at `offset` of `file` with dd, keeping its size.
fn dd_at(file: &Path, offset: u64, bytes: &[u8]) {
    let tmp = file.with_extension("chunk");
    fs::write(&tmp, bytes).unwrap();
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", tmp.display()))
            .arg(format!("of={}", file.display()))
            .args(["bs=1", "conv=notrunc", "status=none"])
            .arg(format!("seek={offset}")),
    );
    fs::remove_file(tmp).unwrap();
}

/// A source tree with real holes: `big` (3 MiB, data at the start, in the
/// middle and in its last bytes), `sub/holey` (3 MiB, ends in a hole),
/// `sub/plain.txt` (not sparse).
fn sparse_tree(root: &Path) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    let big = src.join("big");
    let holey = src.join("sub/holey");
    for f in [&big, &holey] {
        run_ok(Command::new("truncate").arg("-s").arg("3M").arg(f));
    }
    dd_at(&big, 0, &[b'a'; 5000]);
    dd_at(&big, MIB + 5, b"hello");
    dd_at(&big, 3 * MIB - 3, b"end");
    dd_at(&holey, 2 * MIB, &[b'z'; 10_000]);
    fs::write(src.join("sub/plain.txt"), b"plain\n").unwrap();
    for dir in [&src, &src.join("sub")] {
        run_ok(Command::new("touch").args(["-d", "2020-01-01"]).arg(dir));
    }
    src
}

/// The file sizes and sha256 of a tree, by the `sha2` crate on the files.
fn file_hashes(root: &Path) -> Vec<(String, u64, String)> {
    ["big", "sub/holey", "sub/plain.txt"]
        .iter()
        .map(|p| {
            let f = root.join(p);
            let len = fs::metadata(&f).unwrap().len();
            (p.to_string(), len, sha256_file(&f))
        })
        .collect()
}

/// (name, size) of each member as GNU tar lists it.
fn gnu_listing(archive: &Path) -> Vec<(String, u64)> {
    let out = run_ok(
        Command::new("tar")
            .args(["--list", "--verbose", "--numeric-owner", "-f"])
            .arg(archive),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5..].join(" "), f[2].parse().unwrap())
        })
        .collect()
}

fn digest(input: &Path) -> String {
    ok(&repropack_out(["digest".as_ref(), input.as_os_str()]))
        .trim()
        .to_string()
}

/// The tree digest by tests/support/tarlist.py (Python's tarfile, which
/// reads GNU sparse members itself), when python3 is installed.
fn python_digest(archive: &Path) -> Option<String> {
    if !have_tool("python3") {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tarlist.py");
    let out = run_ok(
        Command::new("python3")
            .arg(script)
            .arg("digest")
            .arg(archive),
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Everything the reader must agree with GNU tar on for `archive`, an
/// archive of [`sparse_tree`]'s `src` (members `big`, `sub/…`).
fn agrees_with_gnu_tar(work: &Path, src: &Path, archive: &Path, sparse: bool) {
    let what = archive.file_name().unwrap().to_string_lossy().into_owned();
    if sparse {
        // The producer really stored holes as holes (else this proves nothing).
        let len = fs::metadata(archive).unwrap().len();
        assert!(len < MIB, "{what}: {len} bytes, not sparse");
    }
    let by_gnu = work.join(format!("{what}.gnu"));
    fs::create_dir(&by_gnu).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&by_gnu)
            .arg("-xf")
            .arg(archive),
    );
    assert_eq!(file_hashes(&by_gnu), file_hashes(src), "{what}: GNU tar");

    // extract: the tree GNU tar restores (names, sizes, bytes, modes, mtimes).
    let ours = work.join(format!("{what}.ours"));
    let o = repropack_out(["extract".as_ref(), archive.as_os_str(), ours.as_os_str()]);
    ok(&o);
    assert_eq!(
        file_hashes(&ours),
        file_hashes(src),
        "{what}: repropack extract"
    );
    assert_same(
        &what,
        &Tree::of(&by_gnu).without_root().without_owners(),
        &Tree::of(&ours).without_root().without_owners(),
    );

    // pack --from-tar: GNU tar lists the real names and sizes.
    let packed = work.join(format!("{what}.packed.tar"));
    ok(&repropack_out([
        "pack".as_ref(),
        "--from-tar".as_ref(),
        archive.as_os_str(),
        "-o".as_ref(),
        packed.as_os_str(),
    ]));
    let mut files: Vec<(String, u64)> = gnu_listing(&packed)
        .into_iter()
        .filter(|(name, _)| !name.ends_with('/'))
        .collect();
    files.sort();
    let want: Vec<(String, u64)> = file_hashes(src)
        .into_iter()
        .map(|(p, len, _)| (p, len))
        .collect();
    assert_eq!(files, want, "{what}: GNU tar's listing of pack --from-tar");

    // digest: the archive, GNU tar's extraction and Python's tarfile agree.
    let d = digest(archive);
    assert_eq!(d, digest(&by_gnu), "{what}: digest of GNU tar's extraction");
    if let Some(py) = python_digest(archive) {
        assert_eq!(d, py, "{what}: Python tarfile's digest");
    }
}

/// GNU tar with `flags` archives `big` and `sub` of `src` into `archive`.
fn gnu_tar_create(flags: &[&str], src: &Path, archive: &Path) {
    run_ok(
        Command::new("tar")
            .args(flags)
            .arg("-C")
            .arg(src)
            .arg("-cf")
            .arg(archive)
            .args(["big", "sub"]),
    );
}

fn gnu_tar_case(flags: &[&str], name: &str) {
    if !have_tool("tar") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = sparse_tree(work.path());
    let archive = work.path().join(name);
    gnu_tar_create(flags, &src, &archive);
    agrees_with_gnu_tar(work.path(), &src, &archive, true);
}

#[test]
fn tar_sparse_old_gnu_is_expanded() {
    gnu_tar_case(&["--format=gnu", "--sparse"], "gnu.tar");
}

#[test]
fn tar_sparse_pax_0_0_is_expanded() {
    gnu_tar_case(
        &["--format=pax", "--sparse", "--sparse-version=0.0"],
        "pax00.tar",
    );
}

#[test]
fn tar_sparse_pax_0_1_is_expanded() {
    gnu_tar_case(
        &["--format=pax", "--sparse", "--sparse-version=0.1"],
        "pax01.tar",
    );
}

#[test]
fn tar_sparse_pax_1_0_is_expanded() {
    gnu_tar_case(
        &["--format=pax", "--sparse", "--sparse-version=1.0"],
        "pax10.tar",
    );
}

#[test]
fn tar_sparse_pax_1_0_in_gzip_is_expanded() {
    gnu_tar_case(&["--format=pax", "--sparse", "-z"], "pax10.tar.gz");
}

#[test]
fn tar_sparse_many_regions_need_gnu_extension_blocks() {
    // 40 data regions: more than the 4 pairs of an old GNU header, so GNU
    // tar writes extension blocks; pax 0.1 carries them in one record.
    if !have_tool("tar") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = sparse_tree(work.path());
    for i in 0..40u64 {
        dd_at(
            &src.join("big"),
            64 * 1024 * i + 7,
            format!("r{i}").as_bytes(),
        );
    }
    for (flags, name) in [
        (&["--format=gnu", "--sparse"][..], "gnu-ext.tar"),
        (
            &["--format=pax", "--sparse", "--sparse-version=0.1"][..],
            "pax01-many.tar",
        ),
    ] {
        let archive = work.path().join(name);
        gnu_tar_create(flags, &src, &archive);
        agrees_with_gnu_tar(work.path(), &src, &archive, true);
    }
}

#[test]
fn tar_sparse_bsdtar_archives_are_expanded() {
    if !have_tool("tar") || !have_tool("bsdtar") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = sparse_tree(work.path());
    // bsdtar writes pax sparse 1.0; its gnutar format stores the file whole.
    for (format, name, sparse) in [
        ("--format=pax", "bsd-pax.tar", true),
        ("--format=gnutar", "bsd-gnu.tar", false),
    ] {
        let archive = work.path().join(name);
        run_ok(
            Command::new("bsdtar")
                .arg(format)
                .arg("-C")
                .arg(&src)
                .arg("-cf")
                .arg(&archive)
                .args(["big", "sub"]),
        );
        agrees_with_gnu_tar(work.path(), &src, &archive, sparse);
    }
}

/// The first member of `archive`, read through the library.
fn first_entry(archive: &Path) -> repropack::format::ArchiveEntry {
    let a = repropack::format::open(archive).unwrap_or_else(|e| panic!("{e}"));
    let mut first = None;
    a.for_each_entry(|e, _| {
        first.get_or_insert_with(|| e.clone());
        Ok::<(), repropack::format::ArchiveError>(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    first.expect("one entry")
}

#[test]
fn tar_sparse_gnu_base256_mtime_before_1970_and_large_ids() {
    if !have_tool("tar") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("old"), b"from 1960\n").unwrap();
    run_ok(
        Command::new("touch")
            .env("TZ", "UTC")
            .args(["-d", "1960-01-01"])
            .arg(src.join("old")),
    );
    let archive = work.path().join("old.tar");
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "--numeric-owner", "--owner=:3000000"])
            .arg("--group=:3000001")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&archive)
            .arg("old"),
    );
    // GNU tar used base-256 (high bit set) for the mtime and the ids.
    let bytes = fs::read(&archive).unwrap();
    assert_eq!((bytes[108], bytes[116], bytes[136]), (0x80, 0x80, 0xff));

    let e = first_entry(&archive);
    assert_eq!(
        (e.mtime(), e.uid(), e.gid()),
        (-315_619_200, 3_000_000, 3_000_001)
    );

    let by_gnu = work.path().join("gnu");
    fs::create_dir(&by_gnu).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&by_gnu)
            .arg("-xf")
            .arg(&archive),
    );
    let ours = work.path().join("ours");
    ok(&repropack_out([
        "extract".as_ref(),
        archive.as_os_str(),
        ours.as_os_str(),
    ]));
    let want = Tree::of(&by_gnu).without_root().without_owners();
    assert_eq!(want.nodes[&b"old".to_vec()].mtime, Some(-315_619_200));
    assert_same(
        "pre-1970 mtime",
        &want,
        &Tree::of(&ours).without_root().without_owners(),
    );

    let packed = work.path().join("packed.tar");
    ok(&repropack_out([
        "pack".as_ref(),
        "--from-tar".as_ref(),
        archive.as_os_str(),
        "-o".as_ref(),
        packed.as_os_str(),
    ]));
    assert_eq!(gnu_listing(&packed), vec![("old".to_string(), 10)]);
}

#[test]
fn tar_sparse_python_gnu_base256_numbers() {
    // Python's tarfile writes GNU-format numbers that do not fit octal in
    // base-256 too: a negative mtime, a uid past 2^21.
    if !have_tool("python3") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("py.tar");
    let script = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    for name, mtime, uid in [("neg", -1, 7), ("bigid", 1, 2**31 + 5)]:
        i = tarfile.TarInfo(name)
        i.size, i.mtime, i.uid, i.gid, i.mode = 3, mtime, uid, 9, 0o644
        t.addfile(i, io.BytesIO(b"abc"))
"#;
    run_ok(Command::new("python3").arg("-c").arg(script).arg(&archive));
    let a = repropack::format::open(&archive).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    a.for_each_entry(|e, content| {
        let mut data = Vec::new();
        content.read_to_end(&mut data).unwrap();
        seen.push((e.display_path(), e.mtime(), e.uid(), data));
        Ok::<(), repropack::format::ArchiveError>(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen,
        vec![
            ("neg".to_string(), -1, 7, b"abc".to_vec()),
            ("bigid".to_string(), 1, 2_147_483_653, b"abc".to_vec()),
        ]
    );
}

#[test]
fn tar_sparse_full_width_octal_size_is_read() {
    // 12 octal digits with no terminator (as some writers fill the field).
    let mut h = raw_header(b"f", b'0', 0o644, 5, b"");
    h[124..136].copy_from_slice(b"000000000005");
    crate::support::rawtar::set_checksum(&mut h);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("w.tar");
    fs::write(&archive, RawTar::new().raw(h, b"hello").finish()).unwrap();
    let out = work.path().join("out");
    ok(&repropack_out([
        "extract".as_ref(),
        archive.as_os_str(),
        out.as_os_str(),
    ]));
    assert_eq!(fs::read(out.join("f")).unwrap(), b"hello");
}

/// `extract` and `pack --from-tar` refuse `tar` as bad input naming the
/// entry and `needle`, and leave nothing behind.
fn refused(tar: &[u8], entry: &str, needle: &str) {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("bad.tar");
    fs::write(&archive, tar).unwrap();
    let out = work.path().join("out");
    let packed = work.path().join("packed.tar");
    for args in [
        vec!["extract".as_ref(), archive.as_os_str(), out.as_os_str()],
        vec![
            "pack".as_ref(),
            "--from-tar".as_ref(),
            archive.as_os_str(),
            "-o".as_ref(),
            packed.as_os_str(),
        ],
        vec!["digest".as_ref(), archive.as_os_str()],
    ] {
        let o = repropack_out(&args);
        let err = stderr(&o);
        assert_eq!(code(&o), exit::INPUT, "{args:?}: {err}");
        assert!(
            err.contains(&format!("{entry:?}")) && err.contains(needle),
            "{args:?}: {err:?} should name {entry:?} and say {needle:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}");
        let left: Vec<_> = fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec!["bad.tar"], "{args:?}: left behind");
    }
}

#[test]
fn tar_sparse_old_gnu_overlapping_regions_are_refused() {
    let h = gnu_sparse_header(b"f", &[(0, 10), (5, 10)], 100, 20, false);
    refused(&RawTar::new().raw(h, &[b'x'; 20]).finish(), "f", "overlaps");
}

#[test]
fn tar_sparse_old_gnu_region_past_the_end_is_refused() {
    let h = gnu_sparse_header(b"f", &[(90, 20)], 100, 20, false);
    refused(
        &RawTar::new().raw(h, &[b'x'; 20]).finish(),
        "f",
        "past the real size",
    );
}

#[test]
fn tar_sparse_old_gnu_extension_regions_are_checked() {
    // Ordered in the header, out of order in the extension block.
    let map = [(0, 1), (10, 1), (20, 1), (30, 1)];
    let h = gnu_sparse_header(b"f", &map, 100, 5, true);
    let ext = gnu_sparse_extension(&[(25, 1)], false);
    let tar = RawTar::new().raw(h, &[]).raw(ext, &[b'x'; 5]).finish();
    refused(&tar, "f", "overlaps or precedes");
    // The extension block the header announces is missing.
    let mut cut = RawTar::new().raw(h, &[]).finish();
    cut.truncate(512);
    refused(&cut, "f", "truncated");
}

#[test]
fn tar_sparse_data_shorter_than_the_map_is_refused() {
    // The size field stores fewer bytes than the map's regions add up to.
    let h = gnu_sparse_header(b"f", &[(0, 600), (1000, 600)], 2000, 600, false);
    refused(
        &RawTar::new().raw(h, &[b'x'; 600]).finish(),
        "f",
        "the map describes 1200 bytes",
    );
    // The archive ends inside the data.
    let h = gnu_sparse_header(b"f", &[(0, 600), (1000, 600)], 2000, 1200, false);
    let mut tar = RawTar::new().raw(h, &[b'x'; 1200]).finish();
    tar.truncate(512 + 700);
    refused(&tar, "f", "archive ends 500 bytes before the end");
}

/// A pax sparse 1.0 member `GNUSparseFile.0/f` whose real name is `f`.
fn pax_v1(map_and_data: &[u8], realsize: &str) -> RawTar {
    let mut t = RawTar::new();
    t.pax(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"f"),
        ("GNU.sparse.realsize", realsize.as_bytes()),
    ]);
    let h = raw_header(
        b"GNUSparseFile.0/f",
        b'0',
        0o644,
        map_and_data.len() as u64,
        b"",
    );
    t.raw(h, map_and_data);
    t
}

#[test]
fn tar_sparse_pax_1_0_bad_maps_are_refused() {
    // Well formed, as a control.
    let good = pax_v1(&sparse_v1_data(&[(3, 2), (10, 1)], b"abc"), "12").finish();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("good.tar");
    fs::write(&archive, &good).unwrap();
    let out = work.path().join("out");
    ok(&repropack_out([
        "extract".as_ref(),
        archive.as_os_str(),
        out.as_os_str(),
    ]));
    assert_eq!(fs::read(out.join("f")).unwrap(), b"\0\0\0ab\0\0\0\0\0c\0");

    let overlap = sparse_v1_data(&[(0, 4), (2, 4)], b"abcdefgh");
    refused(&pax_v1(&overlap, "100").finish(), "f", "overlaps");
    let past = sparse_v1_data(&[(0, 4), (98, 4)], b"abcdefgh");
    refused(&pax_v1(&past, "100").finish(), "f", "past the real size");
    let short = sparse_v1_data(&[(0, 4), (8, 4)], b"abcd");
    refused(
        &pax_v1(&short, "100").finish(),
        "f",
        "the map describes 8 bytes",
    );
    // A declared count past the bound is refused before anything is read.
    let mut huge = b"1000000000\n".to_vec();
    huge.resize(512, 0);
    refused(&pax_v1(&huge, "100").finish(), "f", "limit");
    // The map ends before its declared count.
    let mut early = b"2\n0\n4\n".to_vec();
    early.resize(1024, 0);
    refused(
        &pax_v1(&early, "100").finish(),
        "f",
        "where a number was expected",
    );
}

#[test]
fn tar_sparse_pax_0_x_bad_maps_are_refused() {
    let mut t = RawTar::new();
    t.pax(&[("GNU.sparse.size", b"100"), ("GNU.sparse.map", b"50,5,0,5")]);
    t.file("f", b"abcdefghij");
    refused(&t.finish(), "f", "overlaps or precedes");

    let mut t = RawTar::new();
    t.pax(&[
        ("GNU.sparse.size", b"100"),
        ("GNU.sparse.numblocks", b"3"),
        ("GNU.sparse.offset", b"0"),
        ("GNU.sparse.numbytes", b"10"),
    ]);
    t.file("f", b"abcdefghij");
    refused(&t.finish(), "f", "numblocks is 3");

    let mut t = RawTar::new();
    t.pax(&[("GNU.sparse.major", b"2"), ("GNU.sparse.minor", b"0")]);
    t.file("f", b"abcdefghij");
    refused(&t.finish(), "f", "GNU sparse format 2.0 is not supported");
}

#[test]
fn pack_from_tar_spools_a_sparse_member_without_its_holes() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    if !have_tool("tar") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    // 1 GiB with two small data regions; the rest is hole.
    let big = src.join("big");
    let f = fs::File::create(&big).unwrap();
    f.set_len(1 << 30).unwrap();
    f.write_all_at(&[b'a'; 5000], 100 * MIB + 7).unwrap();
    f.write_all_at(b"second region", 700 * MIB).unwrap();
    drop(f);
    let archive = work.path().join("sparse.tar");
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "--sparse", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&archive)
            .arg("big"),
    );
    assert!(fs::metadata(&archive).unwrap().len() < MIB);

    // The spool holds the data regions, not 1 GiB of zeros.
    let plan = repropack::stage::stage_tar(
        fs::File::open(&archive).unwrap(),
        "sparse.tar",
        &repropack::stage::StageOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let entry = plan.entries().iter().find(|e| e.path() == b"big").unwrap();
    let Some(repropack::plan::Content::Spool { file, size, .. }) = entry.content() else {
        panic!("big is not spooled");
    };
    assert_eq!(*size, 1 << 30);
    let on_disk = file.metadata().unwrap().blocks() * 512;
    assert!(
        on_disk < 64 * MIB,
        "the spool takes {on_disk} bytes of disk for 5 KiB of data"
    );
    drop(plan);

    // What is packed from it is the original file, as unsquashfs and GNU
    // tar restore it.
    let want = sha256_file(&big);
    let image = work.path().join("big.squashfs");
    ok(&repropack_out([
        "pack".as_ref(),
        "--from-tar".as_ref(),
        archive.as_os_str(),
        "-o".as_ref(),
        image.as_os_str(),
    ]));
    if have_tool("unsquashfs") {
        let x = work.path().join("x");
        run_ok(
            Command::new("unsquashfs")
                .args(["-no-progress", "-d"])
                .arg(&x)
                .arg(&image),
        );
        assert_eq!(sha256_file(&x.join("big")), want, "unsquashfs");
        fs::remove_dir_all(&x).unwrap();
    }
    let tar = work.path().join("big.tar.gz");
    ok(&repropack_out([
        "pack".as_ref(),
        "--from-tar".as_ref(),
        archive.as_os_str(),
        "-o".as_ref(),
        tar.as_os_str(),
    ]));
    // Streamed to sha256sum: a 1 GiB non-sparse copy on disk is not needed.
    let out = run_ok(
        Command::new("sh")
            .args(["-c", "tar -xzOf \"$0\" big | sha256sum"])
            .arg(&tar),
    );
    assert_eq!(&String::from_utf8_lossy(&out.stdout)[..64], want, "GNU tar");
}

/// `pack --from-tar` spools a sparse member's holes as holes: a few bytes of
/// tar that declare a file of 256 MiB must not put 256 MiB (only a few
/// MiB of allocation at most) on the disk of
/// TMPDIR (a tiny hostile stream could otherwise fill it), and the spooled
/// content still reads back as the data followed by zeros.
#[test]
fn tar_sparse_holes_are_not_written_to_the_from_tar_spool() {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    use repropack::plan::Content;
    use repropack::stage::{StageOptions, stage_tar};

    let real = 256 * MIB;
    let h = gnu_sparse_header(b"big", &[(0, 3)], real, 3, false);
    let tar = RawTar::new().raw(h, b"abc").finish();
    let plan = stage_tar(&tar[..], "sparse.tar", &StageOptions::default()).unwrap();
    let entry = plan.entries().iter().find(|e| e.path() == b"big").unwrap();
    let content = entry.content().unwrap();
    assert_eq!(content.size(), real);
    let Content::Spool { file, offset, size } = content else {
        panic!("a --from-tar member is spooled");
    };
    let meta = file.metadata().unwrap();
    assert!(
        meta.len() >= offset + size,
        "the spool holds the whole file"
    );
    let on_disk = meta.blocks() * 512;
    // Allocation granularity varies by file system (1 MiB is seen on
    // ext4); 256 MiB would land without the holes.
    assert!(
        on_disk <= 4 * MIB,
        "{on_disk} bytes on disk for 3 bytes of data in a {real}-byte sparse file"
    );
    let mut head = Vec::new();
    let mut reader = content.reader(entry.name()).unwrap();
    (&mut reader).take(4).read_to_end(&mut head).unwrap();
    assert_eq!(head, b"abc\0");
}

/// A few hundred bytes of tar that declare a sparse file just past the
/// default content limit (16 GiB) are refused by `digest` and `diff` at the
/// entry, before any of its zeros are hashed: reading is
/// bounded by the archive's bytes and `--max-size`, never by what the
/// archive declares. (Without the limit `digest` would hash 16 GiB of zeros
/// and succeed.)
#[test]
fn tar_sparse_declared_size_past_max_size_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let real = ((16u64 << 30) + 1).to_string();
    let member = pax_v1(&sparse_v1_data(&[(0, 3)], b"abc"), &real).finish();
    let tar = dir.path().join("huge.tar");
    fs::write(&tar, member).unwrap();
    assert!(fs::metadata(&tar).unwrap().len() < 4096);
    let tar_arg = tar.to_str().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();

    for (args, want) in [
        (vec!["digest", tar_arg], exit::INPUT),
        (vec!["diff", tar_arg, empty.to_str().unwrap()], exit::USAGE),
    ] {
        let out = repropack_out(&args);
        assert_eq!(code(&out), want, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("\"f\"") && err.contains("--max-size"),
            "{args:?} names the entry and the flag: {err}"
        );
    }
}

/// `--max-size` applies to SquashFS content as to tar, through the same
/// check, in `digest`, `verify --manifest` and `extract`: a 2 MiB file is
/// refused at 1M and read at `unlimited`, where the digest equals the
/// source directory's.
#[test]
fn max_size_limits_digest_of_squashfs_and_unlimited_lifts_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("small"), b"x").unwrap();
    fs::write(src.join("two-mib"), vec![7u8; 2 << 20]).unwrap();
    let img = dir.path().join("t.squashfs");
    let manifest = dir.path().join("m.json");
    run_ok(repropack().args([
        "pack",
        src.to_str().unwrap(),
        "-o",
        img.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]));
    let img_arg = img.to_str().unwrap();
    let manifest_arg = manifest.to_str().unwrap();
    ok(&repropack_out([
        "verify",
        img_arg,
        "--manifest",
        manifest_arg,
    ]));
    let out = repropack_out([
        "verify",
        "--max-size",
        "1M",
        img_arg,
        "--manifest",
        manifest_arg,
    ]);
    assert_eq!(code(&out), exit::INPUT, "{}", stderr(&out));
    assert!(stderr(&out).contains("\"two-mib\""), "{}", stderr(&out));

    let out = repropack_out(["digest", "--max-size", "1M", img_arg]);
    assert_eq!(code(&out), exit::INPUT, "{}", stderr(&out));
    assert!(stderr(&out).contains("\"two-mib\""), "{}", stderr(&out));

    let dest = dir.path().join("x");
    let out = repropack_out([
        "extract",
        "--max-size",
        "1M",
        img_arg,
        dest.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), exit::UNSAFE, "{}", stderr(&out));
    assert!(!dest.exists());

    let from_image = ok(&repropack_out([
        "digest",
        "--max-size",
        "unlimited",
        img_arg,
    ]));
    let from_dir = ok(&repropack_out(["digest", src.to_str().unwrap()]));
    assert_eq!(from_image, from_dir);
}
