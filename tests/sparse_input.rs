//! Sparse source files: their holes are never read (the kernel would only
//! hand out zeros), yet every output is what the same tree with the zeros
//! written out gives, byte for byte, and independent readers restore the
//! source.

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use crate::support::bin::{bin, ok, pack, repropack_out, run_ok};
use crate::support::tool::{have_tool, tool};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// A file of `len` bytes holding `data` at the given offsets, zeros
/// elsewhere.
struct Layout {
    name: &'static str,
    len: u64,
    data: Vec<(u64, Vec<u8>)>,
}

/// Bytes that differ from block to block, so that nothing compresses or
/// deduplicates by accident.
fn noise(seed: u8, len: u64) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Holes at the start, in the middle and at the end, a length that is no
/// multiple of the 128 KiB block, one byte of data after 48 MiB of hole,
/// and two equal files beside a third of the same length (the
/// deduplication candidates hash their holes).
fn layouts() -> Vec<Layout> {
    vec![
        Layout {
            name: "hole-first",
            len: 2 * MIB,
            data: vec![(MIB + 5, noise(1, 300 * KIB))],
        },
        Layout {
            name: "hole-middle",
            len: 3 * MIB,
            data: vec![(0, noise(2, 200 * KIB)), (2 * MIB, noise(3, MIB))],
        },
        Layout {
            name: "hole-last",
            len: 4 * MIB,
            data: vec![(0, noise(4, 700 * KIB))],
        },
        Layout {
            name: "odd-length",
            len: 5 * MIB + 12_345,
            data: vec![(640 * KIB, noise(5, 64 * KIB)), (5 * MIB, noise(6, 100))],
        },
        Layout {
            name: "one-byte",
            len: 48 * MIB + 1,
            data: vec![(48 * MIB, b"!".to_vec())],
        },
        Layout {
            name: "dup/a",
            len: 2 * MIB,
            data: vec![(MIB, noise(7, 4 * KIB))],
        },
        Layout {
            name: "dup/b",
            len: 2 * MIB,
            data: vec![(MIB, noise(7, 4 * KIB))],
        },
        Layout {
            name: "dup/c",
            len: 2 * MIB,
            data: vec![(MIB, noise(8, 4 * KIB))],
        },
    ]
}

/// Writes the layouts under `root`: with holes (`sparse`), or with every
/// zero written out. Times are fixed so that both trees differ only in
/// how their zeros are stored.
fn write_tree(root: &Path, sparse: bool) {
    fs::create_dir_all(root.join("dup")).unwrap();
    for l in layouts() {
        let path = root.join(l.name);
        if sparse {
            let f = File::create(&path).unwrap();
            f.set_len(l.len).unwrap();
            for (at, bytes) in &l.data {
                f.write_all_at(bytes, *at).unwrap();
            }
            let m = f.metadata().unwrap();
            assert!(
                m.blocks() * 512 < l.len / 2,
                "{}: {} blocks, not sparse (this file system keeps no holes?)",
                l.name,
                m.blocks()
            );
        } else {
            let mut all = vec![0u8; l.len as usize];
            for (at, bytes) in &l.data {
                all[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
            }
            fs::write(&path, &all).unwrap();
        }
    }
    run_ok(Command::new("find").arg(root).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        "2021-02-03 04:05:06",
        "{}",
        "+",
    ]));
}

fn digest(dir: &Path) -> String {
    ok(&repropack_out(["digest".as_ref(), dir.as_os_str()]))
        .trim()
        .to_string()
}

/// `cmp` (not our code) agrees that every file of `got` has the bytes of
/// the same file in `want`.
fn same_files(what: &str, want: &Path, got: &Path) {
    for l in layouts() {
        let status = Command::new("cmp")
            .arg(want.join(l.name))
            .arg(got.join(l.name))
            .status()
            .unwrap();
        assert!(status.success(), "{what}: {} differs", l.name);
    }
}

#[test]
fn sparse_sources_pack_like_their_zeros_written_out() {
    let work = tempfile::tempdir().unwrap();
    let sparse = work.path().join("sparse");
    let dense = work.path().join("dense");
    write_tree(&sparse, true);
    write_tree(&dense, false);
    assert_eq!(digest(&sparse), digest(&dense), "tree digest");

    for ext in ["squashfs", "tar", "tar.gz"] {
        let from_sparse = work.path().join(format!("sparse.{ext}"));
        let from_dense = work.path().join(format!("dense.{ext}"));
        let a = pack(&from_sparse, &[sparse.to_str().unwrap()]);
        let b = pack(&from_dense, &[dense.to_str().unwrap()]);
        assert_eq!(a, b, "{ext}: sparse and dense sources give other bytes");
    }

    if have_tool("unsquashfs") {
        let out = work.path().join("unsquashfs");
        run_ok(
            Command::new("unsquashfs")
                .args(["-q", "-n", "-d"])
                .arg(&out)
                .arg(work.path().join("sparse.squashfs")),
        );
        same_files("unsquashfs", &dense, &out);
    }
    if have_tool("tar") {
        for ext in ["tar", "tar.gz"] {
            let out = work.path().join(format!("gnu-{ext}"));
            fs::create_dir(&out).unwrap();
            run_ok(
                Command::new("tar")
                    .arg("-C")
                    .arg(&out)
                    .arg("-xf")
                    .arg(work.path().join(format!("sparse.{ext}"))),
            );
            same_files(&format!("GNU tar of .{ext}"), &dense, &out);
        }

        // --from-tar: the spool holds a sparse member's holes as holes; a
        // GNU sparse archive and a plain one of the same tree pack alike.
        let gnu_sparse = work.path().join("gnu-sparse.tar");
        let gnu_dense = work.path().join("gnu-dense.tar");
        for (flags, src, out) in [
            (&["--sparse"][..], &sparse, &gnu_sparse),
            (&[][..], &dense, &gnu_dense),
        ] {
            run_ok(
                Command::new("tar")
                    .args(flags)
                    .args(["--format=pax", "--sort=name", "--numeric-owner"])
                    .arg("-C")
                    .arg(src)
                    .arg("-cf")
                    .arg(out)
                    .arg("."),
            );
        }
        for ext in ["squashfs", "tar"] {
            let a = work.path().join(format!("from-gnu-sparse.{ext}"));
            let b = work.path().join(format!("from-gnu-dense.{ext}"));
            let a = pack(&a, &["--from-tar", gnu_sparse.to_str().unwrap()]);
            let b = pack(&b, &["--from-tar", gnu_dense.to_str().unwrap()]);
            assert_eq!(a, b, "--from-tar to {ext}");
        }
    }
}

/// The bytes `read` and `pread64` returned, summed over a strace log.
fn bytes_read(log: &str) -> u64 {
    log.lines()
        .filter(|l| {
            l.contains("read(")
                || l.contains("pread64(")
                || l.contains("read resumed>")
                || l.contains("read64 resumed>")
        })
        .filter_map(|l| l.rsplit_once(") = ").or_else(|| l.rsplit_once(" = ")))
        .filter_map(|(_, ret)| ret.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn holes_of_a_sparse_source_are_never_read() {
    let Some(strace) = tool("strace") else {
        eprintln!("skipping: strace counts the bytes read; it is not installed");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    let f = File::create(src.join("big")).unwrap();
    f.set_len(1 << 30).unwrap();
    f.write_all_at(&noise(9, 4 * KIB), 300 * MIB).unwrap();
    f.write_all_at(&noise(10, 4 * KIB), (1 << 30) - 4 * KIB)
        .unwrap();
    drop(f);

    for (what, args) in [
        ("pack to SquashFS", vec!["pack", "-o", "out.squashfs"]),
        ("digest", vec!["digest"]),
    ] {
        let log = work.path().join("strace.log");
        run_ok(
            Command::new(&strace)
                .args(["-f", "-e", "trace=read,pread64", "-o"])
                .arg(&log)
                .arg(bin())
                .env_remove("SOURCE_DATE_EPOCH")
                .env_remove("REPROPACK_JOBS")
                .current_dir(work.path())
                .args(&args[..1])
                .arg(&src)
                .args(&args[1..]),
        );
        let n = bytes_read(&fs::read_to_string(&log).unwrap());
        assert!(
            n < 16 * MIB,
            "{what} of a 1 GiB file with 8 KiB of data read {n} bytes"
        );
        // The log proves something only if the data itself was read.
        assert!(n >= 8 * KIB, "{what}: read only {n} bytes");
    }
}
