//! A directory tree as a reader sees it, and comparing two such views.
//!
//! A [`Tree`] maps every path (raw bytes, relative to the root, the root
//! itself being `b""`) to its kind, permission bits, owner, mtime, size,
//! content fingerprint, symlink target and link count, plus the groups of
//! paths that are hard links of one inode. [`walk_disk`] fills every field
//! from a directory; other readers (see `sqfs_check`) fill what they can
//! see, and [`compare`] compares only the fields both sides have.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// One path as some reader sees it. `None` means "this reader cannot see it".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mtime: Option<i64>,
    /// Size of a regular file.
    pub size: Option<u64>,
    /// [`fingerprint`] of a regular file's content.
    pub content: Option<[u8; 32]>,
    pub target: Option<Vec<u8>>,
    /// Link count of a regular file.
    pub nlink: Option<u64>,
    /// mtime at minute resolution as `YYYY-MM-DD HH:MM` UTC (what
    /// `unsquashfs -lln -UTC` shows).
    pub minute: Option<String>,
    /// Device number of a device node.
    pub rdev: Option<u64>,
}

impl Node {
    pub fn bare(kind: Kind) -> Node {
        Node {
            kind,
            perm: None,
            uid: None,
            gid: None,
            mtime: None,
            size: None,
            content: None,
            target: None,
            nlink: None,
            minute: None,
            rdev: None,
        }
    }
}

/// A whole tree as one reader sees it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<Vec<u8>, Node>,
    /// Sets of ≥ 2 paths sharing one inode; `None` if the reader cannot tell.
    pub links: Option<BTreeSet<Vec<Vec<u8>>>>,
}

const CHUNK: usize = 1 << 20;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// A collision-resistant fingerprint of a byte stream that is cheap for long
/// runs of zeros: the stream is cut into 1 MiB chunks at fixed offsets, each
/// chunk contributes either "zero chunk of n bytes" or its sha256, and the
/// fingerprint is the sha256 of those records. Equal streams give equal
/// fingerprints; different streams give different ones. Used so a 5 GiB
/// sparse file is compared without 5 GiB of hashing per reader.
pub fn fingerprint(mut r: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut outer = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < CHUNK {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        total += n as u64;
        // Slice equality on u8 is a memcmp even in unoptimized test builds.
        if buf[..n] == ZEROS[..n] {
            outer.update(b"Z");
            outer.update((n as u64).to_le_bytes());
        } else {
            outer.update(b"D");
            outer.update(Sha256::digest(&buf[..n]));
        }
        if n < CHUNK {
            break;
        }
    }
    outer.update(total.to_le_bytes());
    Ok((total, outer.finalize().into()))
}

fn rel(root: &Path, p: &Path) -> Vec<u8> {
    p.strip_prefix(root)
        .expect("walked path is under its root")
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// Reads a directory tree from disk (a source or an extraction), with every
/// field filled in. Hard-link groups come from (dev, ino) of regular files.
pub fn walk_disk(root: &Path) -> io::Result<Tree> {
    let mut tree = Tree::default();
    let mut by_inode: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p)?;
        let key = rel(root, &p);
        let ft = md.file_type();
        let mut node = if ft.is_dir() {
            for e in fs::read_dir(&p)? {
                stack.push(e?.path());
            }
            Node::bare(Kind::Dir)
        } else if ft.is_symlink() {
            let mut n = Node::bare(Kind::Symlink);
            n.target = Some(fs::read_link(&p)?.into_os_string().into_vec());
            n
        } else if ft.is_file() {
            let mut n = Node::bare(Kind::File);
            let (len, fp) = fingerprint(File::open(&p)?)?;
            assert_eq!(
                len,
                md.len(),
                "{}: read length differs from stat size",
                p.display()
            );
            n.size = Some(len);
            n.content = Some(fp);
            n.nlink = Some(md.nlink());
            by_inode
                .entry((md.dev(), md.ino()))
                .or_default()
                .push(key.clone());
            n
        } else {
            let mut n = Node::bare(if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_socket() {
                Kind::Socket
            } else if ft.is_char_device() {
                Kind::CharDevice
            } else {
                Kind::BlockDevice
            });
            if ft.is_char_device() || ft.is_block_device() {
                n.rdev = Some(md.rdev());
            }
            n
        };
        node.perm = Some(md.mode() & 0o7777);
        node.uid = Some(md.uid());
        node.gid = Some(md.gid());
        node.mtime = Some(md.mtime());
        tree.nodes.insert(key, node);
    }
    tree.links = Some(link_groups(by_inode.into_values()));
    Ok(tree)
}

pub fn link_groups(groups: impl Iterator<Item = Vec<Vec<u8>>>) -> BTreeSet<Vec<Vec<u8>>> {
    groups
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort();
            g
        })
        .collect()
}

trait IntoVec {
    fn into_vec(self) -> Vec<u8>;
}
impl IntoVec for std::ffi::OsString {
    fn into_vec(self) -> Vec<u8> {
        std::os::unix::ffi::OsStringExt::into_vec(self)
    }
}

impl Tree {
    /// The tree read from disk; panics if it cannot be read.
    pub fn of(root: &Path) -> Tree {
        walk_disk(root).unwrap_or_else(|e| panic!("walk {}: {e}", root.display()))
    }

    /// Without the root's own entry, for trees extracted into a directory
    /// the test made.
    pub fn without_root(mut self) -> Tree {
        self.nodes.remove(&Vec::new());
        self
    }

    /// Without owners.
    pub fn without_owners(mut self) -> Tree {
        for n in self.nodes.values_mut() {
            (n.uid, n.gid) = (None, None);
        }
        self
    }

    /// Without mtimes.
    pub fn without_times(mut self) -> Tree {
        for n in self.nodes.values_mut() {
            (n.mtime, n.minute) = (None, None);
        }
        self
    }

    /// Without hard-link groups and link counts.
    pub fn without_links(mut self) -> Tree {
        self.links = None;
        for n in self.nodes.values_mut() {
            n.nlink = None;
        }
        self
    }

    /// Every mtime set to `t`.
    pub fn with_mtime(mut self, t: i64) -> Tree {
        for n in self.nodes.values_mut() {
            n.mtime = Some(t);
        }
        self
    }

    /// Every permission replaced by `f(kind, perm)`.
    pub fn map_perm(mut self, f: impl Fn(Kind, u32) -> u32) -> Tree {
        for n in self.nodes.values_mut() {
            n.perm = n.perm.map(|p| f(n.kind, p));
        }
        self
    }

    /// Modes as `repropack pack` normalizes them by default.
    pub fn normalized(self) -> Tree {
        self.map_perm(normalized_perm)
    }
}

/// Panics listing every difference [`compare`] finds.
pub fn assert_same(what: &str, want: &Tree, got: &Tree) {
    let errs = compare(what, want, got, false);
    assert!(
        errs.is_empty(),
        "{} difference(s):\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// The mode `repropack pack` gives a source entry by default: dirs 0755,
/// files 0755 if any execute bit is set else 0644, symlinks 0777.
pub fn normalized_perm(kind: Kind, source_mode: u32) -> u32 {
    match kind {
        Kind::Dir => 0o755,
        Kind::Symlink => 0o777,
        Kind::File if source_mode & 0o111 != 0 => 0o755,
        Kind::File => 0o644,
        _ => source_mode & 0o777,
    }
}

/// Compares what `reader` saw with the expectation; returns one line per
/// difference. Fields the reader could not see (`None`) are not compared;
/// `skip_root` leaves out the root's metadata for readers that extract into
/// an existing directory.
pub fn compare(reader: &str, expected: &Tree, got: &Tree, skip_root: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let show = |p: &[u8]| format!("/{}", String::from_utf8_lossy(p));
    for (path, want) in &expected.nodes {
        let Some(have) = got.nodes.get(path) else {
            errs.push(format!("{reader}: {} is missing", show(path)));
            continue;
        };
        if have.kind != want.kind {
            errs.push(format!(
                "{reader}: {}: kind {:?}, expected {:?}",
                show(path),
                have.kind,
                want.kind
            ));
            continue;
        }
        if skip_root && path.is_empty() {
            continue;
        }
        macro_rules! field {
            ($f:ident) => {
                if let (Some(h), Some(w)) = (&have.$f, &want.$f) {
                    if h != w {
                        errs.push(format!(
                            "{reader}: {}: {} is {:?}, expected {:?}",
                            show(path),
                            stringify!($f),
                            h,
                            w
                        ));
                    }
                }
            };
        }
        field!(perm);
        field!(uid);
        field!(gid);
        field!(mtime);
        field!(size);
        field!(content);
        field!(nlink);
        field!(minute);
        field!(rdev);
        if let (Some(h), Some(w)) = (&have.target, &want.target)
            && h != w
        {
            errs.push(format!(
                "{reader}: {}: symlink target {:?}, expected {:?}",
                show(path),
                String::from_utf8_lossy(h),
                String::from_utf8_lossy(w)
            ));
        }
    }
    for path in got.nodes.keys() {
        if !expected.nodes.contains_key(path) {
            errs.push(format!("{reader}: unexpected {}", show(path)));
        }
    }
    if let (Some(h), Some(w)) = (&got.links, &expected.links)
        && h != w
    {
        errs.push(format!("{reader}: hard-link groups {h:?}, expected {w:?}"));
    }
    errs
}
