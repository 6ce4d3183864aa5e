//! Independent readers (GNU tar, Python's tarfile, gzip) accept our tar and
//! tar.gz and see exactly the source tree with normalized metadata.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{repropack, run_ok};
use crate::support::fixtures::{Build, Item, sample_items, sample_tree};
use crate::support::hash::hex;
use crate::support::tool::have_tool;
use crate::support::tree::{Kind, Tree, assert_same};

/// Expected archive order, computed from the item list alone: depth-first,
/// each directory's children sorted by raw bytes.
fn expected_order(items: &[Item]) -> Vec<(Vec<u8>, char, u32)> {
    type Slot = (Option<(char, u32)>, Node);
    #[derive(Default)]
    struct Node(BTreeMap<Vec<u8>, Slot>);
    let mut root = Node::default();
    let mut seen_files: Vec<Vec<u8>> = Vec::new();
    for item in items {
        let (path, kind, mode) = match item {
            Item::Dir(p) => (p, 'd', 0o755),
            Item::File(p, _, exec) => (p, '-', if *exec { 0o755 } else { 0o644 }),
            Item::Symlink(p, _) => (p, 'l', 0o777),
            Item::HardLink(p, _) => (p, 'h', 0o644),
        };
        seen_files.push(path.clone());
        let mut node = &mut root;
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        for (i, c) in comps.iter().enumerate() {
            let slot = node.0.entry(c.to_vec()).or_insert((None, Node::default()));
            if i + 1 == comps.len() {
                slot.0 = Some((kind, mode));
            }
            node = &mut slot.1;
        }
    }
    fn walk(n: &Node, prefix: &[u8], out: &mut Vec<(Vec<u8>, char, u32)>) {
        for (name, (km, child)) in &n.0 {
            let mut p = prefix.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            let (k, m) = km.unwrap_or(('d', 0o755));
            out.push((p.clone(), k, m));
            walk(child, &p, out);
        }
    }
    let mut out = Vec::new();
    walk(&root, b"", &mut out);
    // The hard link's target is whichever of the pair sorts first.
    out
}

fn pack_sample(ext: &str) -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
    let src = sample_tree(Build::default());
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join(format!("sample.{ext}"));
    run_ok(repropack().arg("pack").arg(src.path()).arg("-o").arg(&file));
    (src, out, file)
}

fn gnu_tar_lists_sorted_normalized(ext: &str) {
    if !have_tool("tar") {
        return;
    }
    let (_src, _out, file) = pack_sample(ext);
    let out = run_ok(
        Command::new("tar")
            .args(["--utc", "--quoting-style=escape", "-tvf"])
            .arg(&file)
            .env("LC_ALL", "C"),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = expected_order(&sample_items());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    for (line, (path, kind, mode)) in lines.iter().zip(&expected) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let perm = fields[0];
        assert_eq!(fields[1], "0/0", "{line}");
        assert_eq!((fields[3], fields[4]), ("1980-01-01", "00:00"), "{line}");
        let want_perm = match (kind, mode) {
            ('d', _) => "drwxr-xr-x",
            ('l', _) => "lrwxrwxrwx",
            ('-', 0o755) => "-rwxr-xr-x",
            ('-' | 'h', _) => {
                if perm.starts_with('h') {
                    "hrw-r--r--"
                } else {
                    "-rw-r--r--"
                }
            }
            _ => unreachable!(),
        };
        assert_eq!(perm, want_perm, "{line}");
        // GNU tar escapes non-printable bytes as \ooo with this quoting style.
        let mut shown = String::new();
        for &b in path {
            if b.is_ascii_graphic() || b == b' ' {
                shown.push(b as char);
            } else {
                shown.push_str(&format!("\\{b:03o}"));
            }
        }
        if *kind == 'd' {
            shown.push('/');
        }
        assert!(
            line[line.find("00:00 ").unwrap() + 6..].starts_with(&shown),
            "{line} vs {shown}"
        );
    }
    assert!(text.contains("link-to-a -> a.txt"));
    assert!(
        text.contains("deep/hard-a link to a.txt") || text.contains("a.txt link to deep/hard-a")
    );
}

#[test]
fn gnu_tar_lists_tar_sorted_with_normalized_metadata() {
    gnu_tar_lists_sorted_normalized("tar");
}

#[test]
fn gnu_tar_lists_tar_gz_sorted_with_normalized_metadata() {
    gnu_tar_lists_sorted_normalized("tar.gz");
}

/// Compares two trees: same paths, kinds, execute bits, contents, symlink
/// targets and hard-link groups, and the hard-linked pair still shares an
/// inode.
fn assert_same_tree(a: &Path, b: &Path) {
    let view = |root: &Path| {
        Tree::of(root)
            .without_root()
            .without_owners()
            .without_times()
            .map_perm(|kind, perm| match kind {
                Kind::File => u32::from(perm & 0o111 != 0),
                _ => 0,
            })
    };
    let (la, lb) = (view(a), view(b));
    assert_same("extracted", &la, &lb);
    let pair = vec![b"a.txt".to_vec(), b"deep/hard-a".to_vec()];
    assert!(
        lb.links.as_ref().is_some_and(|l| l.contains(&pair)),
        "hard link lost: {:?}",
        lb.links
    );
}

#[test]
fn gnu_tar_extracts_the_source_tree() {
    if !have_tool("tar") {
        return;
    }
    for ext in ["tar", "tar.gz"] {
        let (src, _out, file) = pack_sample(ext);
        let dest = tempfile::tempdir().unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(dest.path())
            .status()
            .unwrap();
        assert!(st.success());
        assert_same_tree(src.path(), dest.path());
    }
}

const PY_LIST: &str = r#"
import sys, tarfile, hashlib, json
out = []
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        data = t.extractfile(m).read() if m.isfile() else b""
        out.append({
            "name": m.name.encode("utf-8", "surrogateescape").hex(),
            "type": m.type.decode(), "mode": m.mode, "uid": m.uid, "gid": m.gid,
            "uname": m.uname, "gname": m.gname, "mtime": m.mtime, "size": m.size,
            "link": m.linkname.encode("utf-8", "surrogateescape").hex(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "pax": sorted(m.pax_headers.keys()),
        })
print(json.dumps(out))
"#;

#[test]
fn python_tarfile_reads_every_entry_with_normalized_metadata() {
    if !have_tool("python3") {
        return;
    }
    let items = sample_items();
    for ext in ["tar", "tar.gz"] {
        let (_src, _out, file) = pack_sample(ext);
        let out = run_ok(Command::new("python3").arg("-c").arg(PY_LIST).arg(&file));
        let members: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let expected = expected_order(&items);
        assert_eq!(members.len(), expected.len());
        for (m, (path, kind, mode)) in members.iter().zip(&expected) {
            let name = m["name"].as_str().unwrap();
            assert_eq!(name, hex(path), "order/name");
            assert_eq!(m["uid"], 0);
            assert_eq!(m["gid"], 0);
            assert_eq!(m["uname"], "");
            assert_eq!(m["gname"], "");
            assert_eq!(m["mtime"], 315_532_800);
            let pax: Vec<&str> = m["pax"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                !pax.iter()
                    .any(|k| *k == "atime" || *k == "ctime" || *k == "mtime"),
                "{pax:?}"
            );
            let t = m["type"].as_str().unwrap();
            match kind {
                'd' => assert_eq!((t, m["mode"].as_u64().unwrap()), ("5", 0o755)),
                'l' => assert_eq!((t, m["mode"].as_u64().unwrap()), ("2", 0o777)),
                _ => {
                    assert!(t == "0" || t == "1", "{m}");
                    assert_eq!(m["mode"].as_u64().unwrap(), u64::from(*mode));
                }
            }
            if let Some(Item::File(_, data, _)) = items
                .iter()
                .find(|i| matches!(i, Item::File(p, ..) if p == path))
                && t == "0"
            {
                assert_eq!(
                    m["sha256"],
                    repropack::digest::Sha256Digest::of(data).to_hex()
                );
                assert_eq!(m["size"].as_u64().unwrap(), data.len() as u64);
            }
        }
        // The 200-byte and the non-UTF-8 names needed pax headers.
        let long = members
            .iter()
            .find(|m| m["name"].as_str().unwrap().len() > 300)
            .unwrap();
        assert!(long["pax"].as_array().unwrap().iter().any(|k| k == "path"));
    }
}

#[test]
fn gzip_accepts_every_tar_gz() {
    if !have_tool("gzip") {
        return;
    }
    for jobs in ["1", "2", "5"] {
        let src = sample_tree(Build::default());
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("x.tar.gz");
        for level in ["0", "1", "6", "9"] {
            run_ok(
                repropack()
                    .arg("pack")
                    .arg(src.path())
                    .arg("-o")
                    .arg(&file)
                    .args(["--jobs", jobs, "--level", level]),
            );
            let st = Command::new("gzip").arg("-t").arg(&file).status().unwrap();
            assert!(st.success(), "gzip -t failed at level {level}");
            let header = fs::read(&file).unwrap();
            assert_eq!(
                &header[3..8],
                &[0, 0, 0, 0, 0],
                "FLG and MTIME must be zero"
            );
        }
    }
}

/// Writes to a file, seeking over all-zero writes so the archive of a sparse
/// input stays sparse on disk (the test's own plumbing, not repropack's).
struct SparseFile(fs::File, u64);

impl std::io::Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::Seek;
        const ZEROS: [u8; 4096] = [0; 4096];
        if buf.chunks(4096).all(|c| c == &ZEROS[..c.len()]) {
            self.0.seek(std::io::SeekFrom::Current(buf.len() as i64))?;
        } else {
            self.0.write_all(buf)?;
        }
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.set_len(self.1)
    }
}

/// A file of 8 GiB or more does not fit ustar's size field: a pax `size`
/// record carries it, and GNU tar and Python's tarfile read it back (the
/// source is sparse and so is the archive on disk, so this stays cheap).
#[test]
fn files_of_8_gib_and_more_get_a_pax_size_readers_accept() {
    use std::io::Write;
    if !have_tool("tar") || !have_tool("python3") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let size: u64 = (8 << 30) + 3;
    let f = fs::File::create(src.path().join("huge.img")).unwrap();
    f.set_len(size).unwrap();
    fs::write(src.path().join("tail.txt"), b"after the big one\n").unwrap();
    let plan = repropack::stage::stage(
        &[repropack::stage::Source::parse(src.path())],
        &repropack::stage::StageOptions::default(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("huge.tar");
    let sink = SparseFile(fs::File::create(&archive).unwrap(), 0);
    let mut w =
        repropack::format::tar::write_tar(&plan, std::io::BufWriter::with_capacity(1 << 20, sink))
            .unwrap();
    w.flush().unwrap();
    drop(w);
    let res = Command::new("tar")
        .args(["--utc", "-tvf"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(res.status.success());
    let text = String::from_utf8_lossy(&res.stdout);
    assert!(
        text.contains(&format!(" {size} 1980-01-01 00:00 huge.img")),
        "{text}"
    );
    assert!(text.contains("tail.txt"), "{text}");
    let py = "import tarfile,sys\nt=tarfile.open(sys.argv[1])\nm=t.getmember('huge.img')\nprint(m.size, m.pax_headers.get('size'))\nprint(t.extractfile('tail.txt').read().decode(), end='')";
    let res = run_ok(Command::new("python3").arg("-c").arg(py).arg(&archive));
    assert_eq!(
        String::from_utf8_lossy(&res.stdout),
        format!("{size} {size}\nafter the big one\n")
    );
}
