//! A checker for SquashFS images that trusts no reader of ours.
//!
//! [`expected_tree`] computes the [`Tree`] a correct image holds from the
//! source directory with its own walk (not repropack's staging) and the
//! default normalization. Each `read_*` function asks one independent reader
//! (unsquashfs, rdsquashfs, sqfs2tar + the tar crate, the kernel, backhand)
//! and returns its view; a reader fills only the fields it can see, and
//! [`compare`] returns every mismatch as a line naming the reader, the path
//! and the field. [`check_image`] runs the chosen readers over one image.
//!
//! Missing tools fail the check when `CI` is set and skip it (with a
//! message) otherwise; see [`all_tools_available`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::bin::{repropack, run_ok};
use super::hash::sha256_file;
use super::tool::tool;
use super::tree::{
    Kind, Node, Tree, compare, fingerprint, link_groups, normalized_perm, walk_disk,
};

#[derive(Debug, Clone)]
pub struct Expect {
    /// Compressor name as `unsquashfs -s` prints it (`gzip`, `zstd`, `xz`, `lz4`).
    pub compressor: String,
    pub block_size: u32,
    /// mkfs time and every inode's mtime.
    pub epoch: u64,
}

/// A temp dir for trees and extractions: on `/dev/shm` when it is there
/// with at least 8 GiB free (many-file trees and extractions are much
/// faster on tmpfs, and rdsquashfs fsyncs every file it unpacks), else in
/// the default temp dir.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    let ok = unsafe { libc::statvfs(c"/dev/shm".as_ptr(), &mut st) } == 0;
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    if ok
        && free >= 8 << 30
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("temp dir")
}

/// All tools [`check_image`] runs.
pub const TOOLS: &[&str] = &["unsquashfs", "rdsquashfs", "sqfs2tar"];

/// True if every tool in [`TOOLS`] is there (see [`tool`]).
pub fn all_tools_available() -> bool {
    TOOLS.iter().all(|t| tool(t).is_some())
}

/// What a correct image of `src` packed with default policies and `epoch`
/// contains: the source walked independently, modes normalized as
/// [`normalized_perm`] says, owners 0:0, every mtime = epoch, link counts =
/// hard-link group sizes.
pub fn expected_tree(src: &Path, epoch: u64) -> Tree {
    let mut tree = walk_disk(src).expect("walk source tree");
    let links = tree.links.clone().unwrap_or_default();
    let mut group_size: HashMap<Vec<u8>, u64> = HashMap::new();
    for g in &links {
        for p in g {
            group_size.insert(p.clone(), g.len() as u64);
        }
    }
    for (path, node) in tree.nodes.iter_mut() {
        node.perm = Some(normalized_perm(node.kind, node.perm.unwrap_or(0)));
        node.uid = Some(0);
        node.gid = Some(0);
        node.mtime = Some(epoch as i64);
        node.minute = Some(minute_stamp(epoch as i64));
        if node.kind == Kind::File {
            node.nlink = Some(group_size.get(path).copied().unwrap_or(1));
        }
    }
    tree
}

fn run(cmd: &mut Command) -> Vec<u8> {
    run_ok(cmd).stdout
}

/// `unsquashfs -s` (compressor, block size) and `unsquashfs -mkfs-time`.
pub fn check_superblock(img: &Path, want: &Expect) -> Vec<String> {
    let mut errs = Vec::new();
    let stats =
        String::from_utf8_lossy(&run(Command::new("unsquashfs").arg("-s").arg(img))).into_owned();
    let line = |prefix: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(prefix).map(str::trim).map(str::to_string))
    };
    if line("Compression ").as_deref() != Some(want.compressor.as_str()) {
        errs.push(format!(
            "unsquashfs -s: compression {:?}, expected {:?}",
            line("Compression "),
            want.compressor
        ));
    }
    if line("Block size ") != Some(want.block_size.to_string()) {
        errs.push(format!(
            "unsquashfs -s: block size {:?}, expected {}",
            line("Block size "),
            want.block_size
        ));
    }
    let t = String::from_utf8_lossy(&run(Command::new("unsquashfs").arg("-mkfs-time").arg(img)))
        .trim()
        .to_string();
    if t != want.epoch.to_string() {
        errs.push(format!(
            "unsquashfs -mkfs-time: {t}, expected {}",
            want.epoch
        ));
    }
    errs
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD HH:MM` in UTC, as `unsquashfs -lln -UTC` prints times.
pub fn minute_stamp(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", s / 3600, s % 3600 / 60)
}

fn perm_from_ls(s: &[u8]) -> u32 {
    // "drwxr-sr-t": owner/group/other triplets, s/S/t/T for the special bits.
    let mut perm = 0;
    for (i, (&c, special)) in s[1..10]
        .iter()
        .zip([0, 0, 0o4000, 0, 0, 0o2000, 0, 0, 0o1000])
        .enumerate()
    {
        let bit = 1 << (8 - i);
        match c {
            b'r' | b'w' | b'x' => perm |= bit,
            b's' | b't' => perm |= bit | special,
            b'S' | b'T' => perm |= special,
            _ => {}
        }
    }
    perm
}

/// `unsquashfs -lln -UTC`: names, kinds, permission bits, owners, sizes,
/// mtimes at minute resolution, symlink targets. Names must not contain
/// `\n` or ` -> `.
pub fn read_unsquashfs_listing(img: &Path) -> (Tree, Vec<String>) {
    const ROOT: &[u8] = b"/R";
    let out = run(Command::new("unsquashfs")
        .args(["-lln", "-UTC", "-d", "/R"])
        .arg(img));
    let mut tree = Tree::default();
    let mut errs = Vec::new();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        // perms owner size date time path[ -> target]; the path is whatever
        // follows the fifth field's single separating space.
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..5 {
            let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
            rest = &rest[start..];
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[(end + 1).min(rest.len())..];
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let kind = match fields[0].first() {
            Some(b'd') => Kind::Dir,
            Some(b'-') => Kind::File,
            Some(b'l') => Kind::Symlink,
            _ => {
                errs.push(format!("unsquashfs -lln: unexpected line {:?}", text(line)));
                continue;
            }
        };
        let (path, target) = if kind == Kind::Symlink {
            let at = rest
                .windows(4)
                .position(|w| w == b" -> ")
                .expect("symlink line has ' -> '");
            (&rest[..at], Some(rest[at + 4..].to_vec()))
        } else {
            (rest, None)
        };
        let Some(path) = path.strip_prefix(ROOT) else {
            errs.push(format!(
                "unsquashfs -lln: path outside root: {:?}",
                text(line)
            ));
            continue;
        };
        let path = path.strip_prefix(b"/").unwrap_or(path).to_vec();
        let mut node = Node::bare(kind);
        node.perm = Some(perm_from_ls(fields[0]));
        let owner = text(fields[1]);
        let (u, g) = owner.split_once('/').expect("uid/gid");
        node.uid = u.parse().ok();
        node.gid = g.parse().ok();
        if kind == Kind::File {
            node.size = text(fields[2]).parse().ok();
        }
        node.minute = Some(format!("{} {}", text(fields[3]), text(fields[4])));
        node.target = target;
        tree.nodes.insert(path, node);
    }
    (tree, errs)
}

/// `unsquashfs -d DIR` extraction (as root it restores owners, modes, times
/// and hard links), then the extracted tree walked from disk.
pub fn read_unsquashfs_extract(img: &Path, scratch: &Path) -> Tree {
    let dir = scratch.join("unsquashfs");
    run(Command::new("unsquashfs")
        .args(["-no-progress", "-quiet", "-d"])
        .arg(&dir)
        .arg(img));
    let tree = walk_disk(&dir).expect("walk unsquashfs extraction");
    fs::remove_dir_all(&dir).expect("remove extraction");
    tree
}

/// `rdsquashfs -u / -C -O -T` extraction walked from disk. rdsquashfs does
/// not recreate hard links (each path becomes its own file), so link groups
/// and counts are not compared; the unpack root's own metadata is not set.
pub fn read_rdsquashfs_extract(img: &Path, scratch: &Path) -> Tree {
    let dir = scratch.join("rdsquashfs");
    fs::create_dir(&dir).expect("mkdir");
    run(Command::new("rdsquashfs")
        .args(["-q", "-C", "-O", "-T", "-u", "/", "-p"])
        .arg(&dir)
        .arg(img));
    let mut tree = walk_disk(&dir).expect("walk rdsquashfs extraction");
    fs::remove_dir_all(&dir).expect("remove extraction");
    tree.links = None;
    for n in tree.nodes.values_mut() {
        n.nlink = None;
    }
    tree
}

/// `sqfs2tar IMG` (squashfs-tools-ng's tar writer) read as a stream by the
/// `tar` crate: names, kinds, permission bits, owners, mtimes, content,
/// symlink targets, and hard links (sqfs2tar writes an inode's second and
/// later paths as tar hard-link entries). Nothing is written to disk, so a
/// 5 GiB file costs only a pipe's worth of reading. The root is not in a
/// tar stream.
pub fn read_sqfs2tar(img: &Path) -> (Tree, Vec<String>) {
    let mut errs = Vec::new();
    let mut child = Command::new("sqfs2tar")
        .arg(img)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sqfs2tar");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut tree = Tree::default();
    tree.nodes.insert(Vec::new(), Node::bare(Kind::Dir));
    let mut groups: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, stdout));
    let clean = |p: &[u8]| {
        let p = p.strip_prefix(b"./").unwrap_or(p);
        let p = p.strip_prefix(b"/").unwrap_or(p);
        p.strip_suffix(b"/").unwrap_or(p).to_vec()
    };
    let result = (|| -> io::Result<()> {
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = clean(&entry.path_bytes());
            let h = entry.header();
            let (perm, uid, gid, mtime) = (h.mode()? & 0o7777, h.uid()?, h.gid()?, h.mtime()?);
            let ty = h.entry_type();
            let mut node = match ty {
                tar::EntryType::Directory => Node::bare(Kind::Dir),
                tar::EntryType::Symlink => {
                    let mut n = Node::bare(Kind::Symlink);
                    n.target = entry.link_name_bytes().map(|t| t.into_owned());
                    n
                }
                tar::EntryType::Link => {
                    let target = clean(&entry.link_name_bytes().unwrap_or_default());
                    let Some(first) = tree.nodes.get(&target).cloned() else {
                        errs.push(format!(
                            "sqfs2tar: /{} links to /{} which came not before it",
                            String::from_utf8_lossy(&path),
                            String::from_utf8_lossy(&target)
                        ));
                        continue;
                    };
                    groups
                        .entry(target.clone())
                        .or_insert_with(|| vec![target])
                        .push(path.clone());
                    first
                }
                tar::EntryType::Regular => {
                    let mut n = Node::bare(Kind::File);
                    let (len, fp) = fingerprint(&mut entry)?;
                    n.size = Some(len);
                    n.content = Some(fp);
                    n
                }
                tar::EntryType::Fifo => Node::bare(Kind::Fifo),
                ty @ (tar::EntryType::Char | tar::EntryType::Block) => {
                    let kind = if ty == tar::EntryType::Char {
                        Kind::CharDevice
                    } else {
                        Kind::BlockDevice
                    };
                    let mut n = Node::bare(kind);
                    let (major, minor) = (h.device_major()?, h.device_minor()?);
                    // As st_rdev, the form the disk walk records.
                    n.rdev = Some(libc::makedev(major.unwrap_or(0), minor.unwrap_or(0)));
                    n
                }
                other => {
                    errs.push(format!(
                        "sqfs2tar: /{}: unexpected entry type {other:?}",
                        String::from_utf8_lossy(&path)
                    ));
                    continue;
                }
            };
            node.perm = Some(perm);
            node.uid = Some(uid as u32);
            node.gid = Some(gid as u32);
            node.mtime = Some(mtime as i64);
            tree.nodes.insert(path, node);
        }
        Ok(())
    })();
    if let Err(e) = result {
        errs.push(format!("sqfs2tar: reading its tar stream failed: {e}"));
    }
    let out = child.wait_with_output().expect("wait sqfs2tar");
    if !out.status.success() {
        errs.push(format!(
            "sqfs2tar failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for n in tree.nodes.values_mut() {
        if n.kind == Kind::File {
            n.nlink = Some(1);
        }
    }
    for members in groups.values() {
        for m in members {
            if let Some(n) = tree.nodes.get_mut(m) {
                n.nlink = Some(members.len() as u64);
            }
        }
    }
    tree.links = Some(link_groups(groups.into_values()));
    (tree, errs)
}

/// `rdsquashfs -s PATH` for each path of each expected hard-link group: all
/// members must report one inode number and the group's size as link count.
pub fn check_rdsquashfs_links(img: &Path, expected: &Tree) -> Vec<String> {
    let mut errs = Vec::new();
    for group in expected.links.iter().flatten() {
        let mut inodes = BTreeSet::new();
        for p in group {
            let out = run(Command::new("rdsquashfs")
                .arg("-s")
                .arg(OsStr::from_bytes(&[b"/".as_slice(), p].concat()))
                .arg(img));
            let text = String::from_utf8_lossy(&out);
            let get = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            inodes.insert(get("Inode number:"));
            let want = group.len().to_string();
            if get("Hard link count:").as_deref() != Some(want.as_str()) {
                errs.push(format!(
                    "rdsquashfs -s /{}: hard link count {:?}, expected {want}",
                    String::from_utf8_lossy(p),
                    get("Hard link count:")
                ));
            }
        }
        if inodes.len() != 1 {
            errs.push(format!(
                "rdsquashfs -s: hard-link group {:?} has inode numbers {inodes:?}",
                group
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
            ));
        }
    }
    errs
}

/// backhand's `FilesystemReader`: names, kinds, permission bits, owners,
/// mtimes, content, symlink targets, and the superblock's compressor, block
/// size and mkfs time. backhand does not expose inode numbers, so hard links
/// are checked by the other readers.
pub fn read_backhand(img: &Path, want: &Expect) -> (Tree, Vec<String>) {
    let mut errs = Vec::new();
    let file = BufReader::new(File::open(img).expect("open image"));
    let fs = match backhand::FilesystemReader::from_reader(file) {
        Ok(fs) => fs,
        Err(e) => {
            return (
                Tree::default(),
                vec![format!("backhand: cannot read image: {e}")],
            );
        }
    };
    let comp = match &fs.compressor {
        Some(c) => format!("{c:?}").to_lowercase(),
        None => "none recorded".to_string(),
    };
    if comp != want.compressor {
        errs.push(format!(
            "backhand: compressor {comp}, expected {}",
            want.compressor
        ));
    }
    if fs.block_size != want.block_size {
        errs.push(format!(
            "backhand: block size {}, expected {}",
            fs.block_size, want.block_size
        ));
    }
    if u64::from(fs.mod_time) != want.epoch {
        errs.push(format!(
            "backhand: mod time {}, expected {}",
            fs.mod_time, want.epoch
        ));
    }
    let mut tree = Tree::default();
    for node in fs.files() {
        let full = node.fullpath.as_os_str().as_bytes();
        let path = full.strip_prefix(b"/").unwrap_or(full).to_vec();
        let mut n = match &node.inner {
            backhand::InnerNode::Dir(_) => Node::bare(Kind::Dir),
            backhand::InnerNode::File(f) => {
                let mut n = Node::bare(Kind::File);
                match fingerprint(fs.file(f).reader()) {
                    Ok((len, fp)) => {
                        n.size = Some(len);
                        n.content = Some(fp);
                        if len != f.file_len() as u64 {
                            errs.push(format!(
                                "backhand: {}: read {len} bytes, inode says {}",
                                node.fullpath.display(),
                                f.file_len()
                            ));
                        }
                    }
                    Err(e) => errs.push(format!(
                        "backhand: {}: read failed: {e}",
                        node.fullpath.display()
                    )),
                }
                n
            }
            backhand::InnerNode::Symlink(s) => {
                let mut n = Node::bare(Kind::Symlink);
                n.target = Some(s.link.as_os_str().as_bytes().to_vec());
                n
            }
            other => {
                errs.push(format!(
                    "backhand: {}: unexpected node {other:?}",
                    node.fullpath.display()
                ));
                continue;
            }
        };
        n.perm = Some(u32::from(node.header.permissions) & 0o7777);
        n.uid = Some(node.header.uid);
        n.gid = Some(node.header.gid);
        n.mtime = Some(i64::from(node.header.mtime));
        tree.nodes.insert(path, n);
    }
    (tree, errs)
}

/// `rdsquashfs -d`: squashfs-tools-ng's own listing (gensquashfs syntax):
/// names, kinds, permission bits, owners, symlink targets.
pub fn read_rdsquashfs_describe(img: &Path) -> (Tree, Vec<String>) {
    let out = run(Command::new("rdsquashfs").arg("-d").arg(img));
    let mut tree = Tree::default();
    // The listing has no line for the root.
    tree.nodes.insert(Vec::new(), Node::bare(Kind::Dir));
    let mut errs = Vec::new();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (kind_word, rest) = split_word(line);
        let kind = match kind_word {
            b"dir" => Kind::Dir,
            b"file" => Kind::File,
            b"slink" => Kind::Symlink,
            _ => {
                errs.push(format!(
                    "rdsquashfs -d: unexpected line {:?}",
                    String::from_utf8_lossy(line)
                ));
                continue;
            }
        };
        let (path, rest) = describe_name(rest);
        let (mode, rest) = split_word(rest);
        let (uid, rest) = split_word(rest);
        let (gid, rest) = split_word(rest);
        let num = |b: &[u8], radix| u32::from_str_radix(&String::from_utf8_lossy(b), radix).ok();
        let mut node = Node::bare(kind);
        node.perm = num(mode, 8);
        node.uid = num(uid, 10);
        node.gid = num(gid, 10);
        if kind == Kind::Symlink {
            node.target = Some(rest.to_vec());
        }
        let path = path.strip_prefix(b"/").unwrap_or(&path).to_vec();
        tree.nodes.insert(path, node);
    }
    (tree, errs)
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    (&s[..end], &s[(end + 1).min(s.len())..])
}

/// A name in `rdsquashfs -d` output: bare, or in double quotes with `\"` and
/// `\\` escapes when it contains spaces or quotes.
fn describe_name(s: &[u8]) -> (Vec<u8>, &[u8]) {
    if s.first() != Some(&b'"') {
        let (w, rest) = split_word(s);
        return (w.to_vec(), rest);
    }
    let mut name = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' if i + 1 < s.len() => {
                name.push(s[i + 1]);
                i += 2;
            }
            b'"' => return (name, &s[(i + 2).min(s.len())..]),
            c => {
                name.push(c);
                i += 1;
            }
        }
    }
    (name, &s[s.len()..])
}

/// A read-only loop mount of an image, unmounted on drop (so a failing
/// assertion leaves no mount behind).
pub struct Mount {
    pub dir: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// The Linux kernel's squashfs driver: `mount -t squashfs -o loop,ro`, then
/// the mounted tree walked from disk (every field, hard links by st_ino).
/// Walking stats every path by name, so lookups go through the kernel's use
/// of directory indexes in large directories. Returns `None` (after saying
/// why) when this machine cannot mount and that is allowed: outside CI, or
/// in CI with `REPROPACK_SKIP_KERNEL_MOUNT=1`.
pub fn read_kernel_mount(img: &Path, scratch: &Path) -> Result<Option<Tree>, String> {
    let Some(mount) = mount(img, &scratch.join("mnt"))? else {
        return Ok(None);
    };
    let tree = walk_disk(&mount.dir).map_err(|e| format!("kernel: walking the mount failed: {e}"));
    drop(mount);
    tree.map(Some)
}

/// `mount -t squashfs -o loop,ro IMG DIR` (DIR is created). `Ok(None)`
/// after saying why when mounting fails and that is allowed: outside CI, or
/// in CI with `REPROPACK_SKIP_KERNEL_MOUNT=1` (machines that cannot
/// loop-mount at all); `Err` otherwise.
pub fn mount(img: &Path, dir: &Path) -> Result<Option<Mount>, String> {
    fs::create_dir_all(dir).expect("mkdir");
    let out = Command::new("mount")
        .args(["-t", "squashfs", "-o", "loop,ro"])
        .arg(img)
        .arg(dir)
        .output();
    let failure = match &out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Some(e.to_string()),
    };
    let Some(why) = failure else {
        return Ok(Some(Mount {
            dir: dir.to_path_buf(),
        }));
    };
    let allowed = std::env::var_os("CI").is_none()
        || std::env::var_os("REPROPACK_SKIP_KERNEL_MOUNT").is_some_and(|v| v == "1");
    if allowed {
        eprintln!("skipping kernel mount check: {why}");
        return Ok(None);
    }
    Err(format!(
        "kernel: mount -t squashfs -o loop,ro failed: {why} \
         (set REPROPACK_SKIP_KERNEL_MOUNT=1 where loop mounts are impossible)"
    ))
}

/// Which readers [`check_image`] asks.
#[derive(Debug, Clone, Copy)]
pub struct Readers {
    pub kernel: bool,
    pub listings: bool,
    pub unsquashfs_extract: bool,
    pub rdsquashfs_extract: bool,
    pub sqfs2tar: bool,
    pub backhand: bool,
}

impl Readers {
    pub const ALL: Readers = Readers {
        kernel: true,
        listings: true,
        unsquashfs_extract: true,
        rdsquashfs_extract: true,
        sqfs2tar: true,
        backhand: true,
    };
}

/// Runs the chosen readers over `img` and compares each with `expected`.
/// Returns every difference (empty = all readers agree with the source).
pub fn check_image(img: &Path, expected: &Tree, want: &Expect, readers: Readers) -> Vec<String> {
    let scratch = scratch();
    let mut errs = check_superblock(img, want);
    if readers.listings {
        let (t, e) = read_unsquashfs_listing(img);
        errs.extend(e);
        errs.extend(compare("unsquashfs -lln", expected, &t, false));
        let (t, e) = read_rdsquashfs_describe(img);
        errs.extend(e);
        errs.extend(compare("rdsquashfs -d", expected, &t, false));
        errs.extend(check_rdsquashfs_links(img, expected));
    }
    if readers.kernel {
        match read_kernel_mount(img, scratch.path()) {
            Ok(Some(t)) => errs.extend(compare("kernel", expected, &t, false)),
            Ok(None) => {}
            Err(e) => errs.push(e),
        }
    }
    if readers.unsquashfs_extract {
        let t = read_unsquashfs_extract(img, scratch.path());
        errs.extend(compare("unsquashfs -d", expected, &t, false));
    }
    if readers.rdsquashfs_extract {
        let t = read_rdsquashfs_extract(img, scratch.path());
        errs.extend(compare("rdsquashfs -u", expected, &t, true));
    }
    if readers.sqfs2tar {
        let (t, e) = read_sqfs2tar(img);
        errs.extend(e);
        errs.extend(compare("sqfs2tar", expected, &t, true));
    }
    if readers.backhand {
        let (t, e) = read_backhand(img, want);
        errs.extend(e);
        errs.extend(compare("backhand", expected, &t, false));
    }
    errs
}

/// Sets every source entry's permission bits to their normalized value, so a
/// producer that keeps modes (mksquashfs) can be checked with the same model.
pub fn normalize_source_modes(root: &Path) {
    let tree = walk_disk(root).expect("walk");
    for (path, node) in &tree.nodes {
        if node.kind == Kind::Symlink {
            continue;
        }
        let p = root.join(OsStr::from_bytes(path));
        let perm = normalized_perm(node.kind, node.perm.unwrap_or(0));
        fs::set_permissions(&p, fs::Permissions::from_mode(perm)).expect("chmod");
    }
}

/// Produces SquashFS images from source trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// `repropack pack` (the thing under test).
    Repropack,
    /// `mksquashfs` with normalizing flags: the reference that proves the
    /// checker itself right.
    Mksquashfs,
}

/// Options for one image.
#[derive(Debug, Clone)]
pub struct PackSpec {
    /// `--comp` value: `gzip`, `gzip:9`, `zstd:3`, `xz`, `lz4`.
    pub comp: String,
    pub block_size: Option<u32>,
    pub jobs: Option<usize>,
    pub no_dedup: bool,
    pub epoch: u64,
}

impl PackSpec {
    pub fn new(epoch: u64) -> PackSpec {
        PackSpec {
            comp: "gzip".into(),
            block_size: None,
            jobs: None,
            no_dedup: false,
            epoch,
        }
    }

    pub fn expect(&self) -> Expect {
        Expect {
            // `none` stores every block uncompressed under a gzip superblock.
            compressor: match self.comp.split(':').next() {
                Some("none") | None => "gzip".to_string(),
                Some(name) => name.to_string(),
            },
            block_size: self.block_size.unwrap_or(128 * 1024),
            epoch: self.epoch,
        }
    }
}

/// Makes `out` from `src` with `producer`; returns the image's sha256 (hex).
pub fn pack(producer: Producer, src: &Path, out: &Path, spec: &PackSpec) -> String {
    let mut cmd;
    match producer {
        Producer::Repropack => {
            cmd = repropack();
            cmd.arg("pack")
                .arg(src)
                .arg("-o")
                .arg(out)
                .args(["--format", "squashfs", "--comp", &spec.comp])
                .args(["--mtime", &spec.epoch.to_string()]);
            if let Some(b) = spec.block_size {
                cmd.args(["--block-size", &b.to_string()]);
            }
            if let Some(j) = spec.jobs {
                cmd.args(["--jobs", &j.to_string()]);
            }
            if spec.no_dedup {
                cmd.arg("--no-dedup");
            }
        }
        Producer::Mksquashfs => {
            let (name, level) = match spec.comp.split_once(':') {
                Some((n, l)) => (n, Some(l)),
                None => (spec.comp.as_str(), None),
            };
            cmd = Command::new("mksquashfs");
            cmd.arg(src).arg(out).args([
                "-noappend",
                "-quiet",
                "-no-progress",
                "-all-root",
                "-no-xattrs",
                "-comp",
                name,
            ]);
            let e = spec.epoch.to_string();
            cmd.args(["-mkfs-time", &e, "-all-time", &e]);
            if let Some(l) = level {
                cmd.args(["-Xcompression-level", l]);
            }
            if let Some(b) = spec.block_size {
                cmd.args(["-b", &b.to_string()]);
            }
            if let Some(j) = spec.jobs {
                cmd.args(["-processors", &j.to_string()]);
            }
            if spec.no_dedup {
                cmd.arg("-no-duplicates");
            }
        }
    }
    let out_text = run(cmd.stdout(Stdio::piped()));
    if producer == Producer::Repropack {
        let line = String::from_utf8_lossy(&out_text).trim().to_string();
        assert!(
            line.contains("#sha256="),
            "repropack pack printed {line:?}, expected a ref"
        );
    }
    sha256_file(out)
}

/// Asserts that `extracted` is the `source` tree as packed by default:
/// same paths, kinds, normalized modes, contents, symlink targets and, if
/// `links`, hard-link groups (rdsquashfs unpacks hard links as copies).
/// Owners and times are not compared: callers pack without `--mtime`, and
/// not every extractor restores them.
pub fn assert_same_tree(source: &Path, extracted: &Path, links: bool) {
    let view = |t: Tree| {
        let t = t.without_root().without_owners().without_times();
        if links { t } else { t.without_links() }
    };
    super::tree::assert_same(
        &format!("{} vs its source", extracted.display()),
        &view(Tree::of(source).normalized()),
        &view(Tree::of(extracted)),
    );
}

/// Extracts `img` into `out` with `unsquashfs -d` and asserts the result is
/// the normalized `source` tree (see [`assert_same_tree`]).
pub fn assert_unsquashfs_gives(img: &Path, out: &Path, source: &Path) {
    run_ok(
        Command::new("unsquashfs")
            .arg("-no-progress")
            .arg("-d")
            .arg(out)
            .arg(img),
    );
    assert_same_tree(source, out, true);
}

/// Panics listing every difference a check found.
pub fn assert_clean(what: &str, errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{what}: {} difference(s) between the image and its source:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// Builds a SquashFS image of `src` with uncompressed metadata (so names
/// can be patched) plus extra mksquashfs arguments.
pub fn squash_patchable(src: &Path, out: &Path, extra: &[&str]) -> Vec<u8> {
    crate::support::bin::run_ok(
        std::process::Command::new("mksquashfs")
            .arg(src)
            .arg(out)
            .args([
                "-noappend",
                "-no-xattrs",
                "-quiet",
                "-no-progress",
                "-noI",
                "-all-root",
                // Fixed times: the same bytes every run, so a short marker
                // cannot turn up in a timestamp by chance.
                "-mkfs-time",
                "0",
                "-all-time",
                "0",
            ])
            .args(extra),
    );
    fs::read(out).unwrap()
}
