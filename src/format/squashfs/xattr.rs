//! The extended attribute table, both ways.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §10 "Extended Attribute Table". Three parts, in file order after the id
//! table:
//! - the key/value stream: metadata blocks holding each attribute set as
//!   consecutive pairs, a key (u16 prefix id, `0x0100` set when the value is
//!   out of line; u16 name size; the name without its prefix) followed by a
//!   value (u32 size; the bytes, or for an out-of-line value the u64
//!   reference of another value record);
//! - the xattr id table: one 16-byte record per set (u64 reference of its
//!   first pair, u32 pair count, u32 size), stored as §2.3 lookup-table
//!   blocks;
//! - the header the superblock points to: u64 start of the key/value
//!   stream, u32 number of sets, u32 unused (0), then the u64 locations of
//!   the id table's blocks.
//!
//! What the writer chooses, as mksquashfs 4.x does: sets are the plan's
//! distinct sets, in the plan's order, each written once and shared by
//! every inode that has it; within a set, pairs in name order. A value over
//! 128 bytes is stored out of line (before its set's pairs), and when a
//! set's pairs would exceed 64 KiB the threshold is halved down to 8 bytes.
//! A value of 8 bytes or more that was already written (in line or out of
//! line, in any earlier set or earlier in the same set) is not written
//! again: the pair refers to it out of line. The size field is what
//! mksquashfs stores and the kernel adds to the inode's block count: the
//! sum over the pairs of the full name's length + 1 + the value's length.
//!
//! Only the `user.`, `trusted.` and `security.` namespaces have a prefix
//! id; an attribute of any other namespace (e.g. `system.posix_acl_access`)
//! cannot be stored and is refused by name (mksquashfs skips them with an
//! error message; the kernel's SquashFS driver has no handler for them).

use std::collections::HashMap;

use super::SquashfsError;
use super::compress::Compressor;
use super::image::{Fault, Image};
use super::inode::NO_XATTR;
use super::metadata::{Cursor, MetadataReader, MetadataWriter, lookup_entry, lookup_table};
use crate::plan::{Plan, XattrSet};

/// Prefixes by id (§10, the key's type field).
const PREFIXES: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];
/// Key type flag: the value that follows is a reference (§10).
const VALUE_OOL: u16 = 0x0100;
/// Size of an out-of-line value: a u64 reference.
const OOL_SIZE: usize = 8;
/// Values longer than this are stored out of line (mksquashfs's
/// XATTR_INLINE_MAX).
const INLINE_MAX: usize = 128;
/// A set's pairs should stay within this (mksquashfs's XATTR_TARGET_MAX).
const TARGET_MAX: usize = 65536;
/// Size of an xattr id record (§10).
const ID_RECORD: usize = 16;

/// Splits a full attribute name into its prefix id and the rest.
fn split_prefix(name: &[u8]) -> Option<(u16, &[u8])> {
    PREFIXES
        .iter()
        .position(|p| name.starts_with(p))
        .map(|i| (i as u16, &name[PREFIXES[i].len()..]))
}

/// The laid-out table: the key/value stream and the id records, before
/// they are placed in the image.
pub(crate) struct XattrTable {
    kv: Vec<u8>,
    ids: Vec<u8>,
    count: u32,
}

impl XattrTable {
    /// Lays out the plan's sets; `None` when the plan has none. Refuses an
    /// attribute SquashFS cannot store, naming an entry that has it.
    pub(crate) fn build(
        plan: &Plan,
        compressor: &mut Compressor,
    ) -> Result<Option<XattrTable>, SquashfsError> {
        let sets = plan.xattr_sets();
        if sets.is_empty() {
            return Ok(None);
        }
        let count = u32::try_from(sets.len())
            .ok()
            .filter(|&n| n != NO_XATTR)
            .ok_or_else(|| SquashfsError::Limit("more than 2^32 - 2 xattr sets".into()))?;
        let mut kv = MetadataWriter::new(compressor);
        // Reference of every value of 8 bytes or more written so far.
        let mut written: HashMap<&[u8], u64> = HashMap::new();
        let mut ids = Vec::with_capacity(sets.len() * ID_RECORD);
        for (index, set) in sets.iter().enumerate() {
            let refuse = |name: &[u8], reason: &str| {
                let entry = plan
                    .entries()
                    .iter()
                    .find(|e| e.xattr_index() == Some(index as u32))
                    .map_or_else(|| "<root>".to_string(), |e| e.display_path());
                SquashfsError::Limit(format!(
                    "{entry}: extended attribute {:?}: {reason}",
                    String::from_utf8_lossy(name)
                ))
            };
            let mut pairs = Vec::with_capacity(set.len());
            for (name, value) in set.iter() {
                let (prefix, rest) = split_prefix(name).ok_or_else(|| {
                    refuse(
                        name,
                        "SquashFS stores only user., trusted. and security. attributes \
                         (leave others out with --xattr-exclude, e.g. 'system.*')",
                    )
                })?;
                if rest.len() > usize::from(u16::MAX) || u32::try_from(value.len()).is_err() {
                    return Err(refuse(name, "too large for SquashFS"));
                }
                pairs.push((prefix, rest, value, name.len()));
            }
            let ool = out_of_line(&pairs);
            // Values stored out of line first, so the pairs refer back.
            for ((_, _, value, _), &out) in pairs.iter().zip(&ool) {
                if out && !written.contains_key(value) {
                    let at = kv.pos().reference();
                    write_value(&mut kv, value)?;
                    written.insert(value, at);
                }
            }
            let start = kv.pos().reference();
            let mut size = 0u64;
            for (prefix, rest, value, full_len) in &pairs {
                let known = (value.len() >= OOL_SIZE)
                    .then(|| written.get(value).copied())
                    .flatten();
                let flag = if known.is_some() { VALUE_OOL } else { 0 };
                kv.write(&(prefix | flag).to_le_bytes())?;
                kv.write(&(rest.len() as u16).to_le_bytes())?;
                kv.write(rest)?;
                match known {
                    Some(reference) => {
                        kv.write(&(OOL_SIZE as u32).to_le_bytes())?;
                        kv.write(&reference.to_le_bytes())?;
                    }
                    None => {
                        let at = kv.pos().reference();
                        write_value(&mut kv, value)?;
                        if value.len() >= OOL_SIZE {
                            written.insert(value, at);
                        }
                    }
                }
                size += (*full_len + 1 + value.len()) as u64;
            }
            let size = u32::try_from(size)
                .map_err(|_| refuse(b"", "the attributes are too large for SquashFS"))?;
            ids.extend_from_slice(&start.to_le_bytes());
            ids.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            ids.extend_from_slice(&size.to_le_bytes());
        }
        let (kv, _) = kv.finish()?;
        Ok(Some(XattrTable { kv, ids, count }))
    }

    /// The table's bytes when its key/value stream starts at absolute
    /// offset `at`, and the offset of the header (the superblock's
    /// `xattr_id_table_start`).
    pub(crate) fn place(
        &self,
        compressor: &mut Compressor,
        at: u64,
    ) -> Result<(Vec<u8>, u64), SquashfsError> {
        let mut bytes = self.kv.clone();
        let ids_at = at + bytes.len() as u64;
        let (id_blocks, list_at) = lookup_table(compressor, &self.ids, ids_at)?;
        // `lookup_table` puts the block locations right after the blocks;
        // §10 puts the header between them.
        let blocks_len = (list_at - ids_at) as usize;
        bytes.extend_from_slice(&id_blocks[..blocks_len]);
        let header_at = at + bytes.len() as u64;
        bytes.extend_from_slice(&at.to_le_bytes());
        bytes.extend_from_slice(&self.count.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&id_blocks[blocks_len..]);
        Ok((bytes, header_at))
    }
}

/// Which values of a set go out of line because of their size: over
/// [`INLINE_MAX`], halving the threshold (not below 8) while the pairs
/// would exceed [`TARGET_MAX`].
fn out_of_line(pairs: &[(u16, &[u8], &[u8], usize)]) -> Vec<bool> {
    let mut max = INLINE_MAX;
    loop {
        let ool: Vec<bool> = pairs.iter().map(|p| p.2.len() > max).collect();
        let total: usize = pairs
            .iter()
            .zip(&ool)
            .map(|(p, &o)| 8 + p.1.len() + if o { OOL_SIZE } else { p.2.len() })
            .sum();
        if total <= TARGET_MAX || max == OOL_SIZE {
            return ool;
        }
        max = (max / 2).max(OOL_SIZE);
    }
}

fn write_value(kv: &mut MetadataWriter<'_>, value: &[u8]) -> Result<(), SquashfsError> {
    // Sizes were checked to fit u32 by the caller.
    kv.write(&(value.len() as u32).to_le_bytes())?;
    kv.write(value)?;
    Ok(())
}

/// Most pairs in one set the reader accepts: more than a Linux file can
/// have (its names share 64 KiB, each at least `user.x` and a NUL).
const MAX_PAIRS: u32 = 65536 / 7;
/// Largest value the reader accepts: Linux's XATTR_SIZE_MAX.
const MAX_VALUE: u32 = 65536;
/// Most bytes of names and values one decoded set may hold: out-of-line
/// references let a small set name a large value many times, so this
/// bounds what one index can cost.
const MAX_SET_BYTES: usize = 4 << 20;
/// Decoded sets kept for inodes that share them.
const CACHED_SETS: usize = 64;

/// Reads the table of an image lazily: the header when the first inode
/// with xattrs is met, each set when an inode names it.
pub(crate) struct XattrReader {
    header_at: u64,
    kv_start: u64,
    count: u32,
    ids: MetadataReader,
    kv: MetadataReader,
    cache: HashMap<u32, XattrSet>,
    /// Indexes in `cache`, oldest first.
    order: std::collections::VecDeque<u32>,
}

impl XattrReader {
    /// Opens the table whose header is at `header_at` (the superblock's
    /// `xattr_id_table_start`); checks the header lies in the image and
    /// that the key/value stream starts before it.
    pub(crate) fn open(image: &mut Image, header_at: u64) -> Result<XattrReader, Fault> {
        let what = || format!("xattr table header at byte {header_at}");
        let mut h = [0u8; 16];
        image.read_at(header_at, &mut h, &what)?;
        let kv_start = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        let count = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if kv_start >= header_at {
            return Err(Fault::malformed(
                what(),
                format!("key/value start {kv_start} is not before the header"),
            ));
        }
        let list_at = header_at + 16;
        let blocks = (u64::from(count) * ID_RECORD as u64).div_ceil(8192);
        image.check_range(list_at, blocks * 8, &|| {
            format!("xattr id table block list at byte {list_at}")
        })?;
        Ok(XattrReader {
            header_at,
            kv_start,
            count,
            ids: MetadataReader::new("xattr id", kv_start, header_at),
            kv: MetadataReader::new("xattr", kv_start, header_at),
            cache: HashMap::new(),
            order: std::collections::VecDeque::new(),
        })
    }

    /// The set of xattr index `index`.
    pub(crate) fn get(&mut self, image: &mut Image, index: u32) -> Result<XattrSet, Fault> {
        if let Some(set) = self.cache.get(&index) {
            return Ok(set.clone());
        }
        let set = self.decode(image, index)?;
        if self.order.len() == CACHED_SETS
            && let Some(old) = self.order.pop_front()
        {
            self.cache.remove(&old);
        }
        self.order.push_back(index);
        self.cache.insert(index, set.clone());
        Ok(set)
    }

    fn decode(&mut self, image: &mut Image, index: u32) -> Result<XattrSet, Fault> {
        let mut rec = [0u8; ID_RECORD];
        lookup_entry(
            image,
            &mut self.ids,
            self.header_at + 16,
            u64::from(self.count),
            u64::from(index),
            &mut rec,
        )?;
        let start = u64::from_le_bytes([
            rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7],
        ]);
        let pairs = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]);
        let kv_start = self.kv_start;
        let at = || {
            format!("xattr set {index} (key/value reference {start:#x}, stream at byte {kv_start})")
        };
        if pairs == 0 || pairs > MAX_PAIRS {
            return Err(Fault::malformed(
                at(),
                format!("{pairs} attributes (1 to {MAX_PAIRS} allowed)"),
            ));
        }
        let mut cur = self.kv.cursor(start);
        let mut out = Vec::with_capacity(pairs as usize);
        let mut total = 0usize;
        for _ in 0..pairs {
            let mut key = [0u8; 4];
            self.kv.read(image, &mut cur, &mut key)?;
            let kind = u16::from_le_bytes([key[0], key[1]]);
            let name_len = u16::from_le_bytes([key[2], key[3]]);
            let prefix = PREFIXES
                .get(usize::from(kind & !VALUE_OOL))
                .filter(|_| kind & !(VALUE_OOL | 0xFF) == 0)
                .ok_or_else(|| Fault::malformed(at(), format!("unknown key type {kind:#x}")))?;
            let mut name = prefix.to_vec();
            let mut rest = vec![0u8; usize::from(name_len)];
            self.kv.read(image, &mut cur, &mut rest)?;
            name.extend_from_slice(&rest);
            if name.contains(&0) {
                return Err(Fault::malformed(
                    at(),
                    format!(
                        "attribute name {:?} has a NUL byte",
                        String::from_utf8_lossy(&name)
                    ),
                ));
            }
            let value = if kind & VALUE_OOL != 0 {
                let mut v = [0u8; 12];
                self.kv.read(image, &mut cur, &mut v)?;
                let size = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                if size as usize != OOL_SIZE {
                    return Err(Fault::malformed(
                        at(),
                        format!("out-of-line value reference of {size} bytes (8 expected)"),
                    ));
                }
                let reference =
                    u64::from_le_bytes([v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]]);
                let mut vcur = self.kv.cursor(reference);
                read_value(&mut self.kv, image, &mut vcur, &at)?
            } else {
                read_value(&mut self.kv, image, &mut cur, &at)?
            };
            total += name.len() + value.len();
            if total > MAX_SET_BYTES {
                return Err(Fault::malformed(
                    at(),
                    format!("the attributes hold more than {MAX_SET_BYTES} bytes"),
                ));
            }
            out.push((name, value));
        }
        XattrSet::new(out).map_err(|name| {
            Fault::malformed(
                at(),
                format!(
                    "attribute {:?} appears twice",
                    String::from_utf8_lossy(&name)
                ),
            )
        })
    }
}

/// Reads a value record (u32 size, the bytes) at `cur`.
fn read_value(
    kv: &mut MetadataReader,
    image: &mut Image,
    cur: &mut Cursor,
    at: &dyn Fn() -> String,
) -> Result<Vec<u8>, Fault> {
    let mut size = [0u8; 4];
    kv.read(image, cur, &mut size)?;
    let size = u32::from_le_bytes(size);
    if size > MAX_VALUE {
        return Err(Fault::malformed(
            at(),
            format!("value of {size} bytes (at most {MAX_VALUE} allowed)"),
        ));
    }
    let mut value = vec![0u8; size as usize];
    kv.read(image, cur, &mut value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::squashfs::Compression;
    use crate::plan::RootMeta;

    fn plan(sets: &[&[(&str, &[u8])]]) -> Plan {
        Plan {
            root: RootMeta {
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
            },
            entries: Vec::new(),
            warnings: Vec::new(),
            epoch: 0,
            xattr_sets: sets
                .iter()
                .map(|s| {
                    XattrSet::new(
                        s.iter()
                            .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec()))
                            .collect(),
                    )
                    .unwrap()
                })
                .collect(),
            input_files: Default::default(),
        }
    }

    /// The key/value stream of an uncompressed table, without the block
    /// header (everything here fits one block).
    fn kv_of(plan: &Plan) -> (Vec<u8>, Vec<u8>) {
        let mut c = Compression::parse("none")
            .unwrap()
            .compressor(4096)
            .unwrap();
        let t = XattrTable::build(plan, &mut c).unwrap().unwrap();
        (t.kv[2..].to_vec(), t.ids)
    }

    fn pair(kind: u16, name: &str, value: &[u8]) -> Vec<u8> {
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&(value.len() as u32).to_le_bytes());
        b.extend_from_slice(value);
        b
    }

    #[test]
    fn large_values_go_out_of_line_and_repeated_values_are_referenced() {
        let big = [7u8; 200];
        let p = plan(&[
            &[("user.a", &big), ("user.b", b"short")],
            &[("security.x", &big)],
            &[("trusted.y", b"12345678")],
            &[("user.z", b"12345678"), ("user.zz", b"1234567")],
        ]);
        let (kv, ids) = kv_of(&p);
        let mut want = Vec::new();
        // Set 0: the 200-byte value first, out of line, then the pairs.
        let big_at = 0u64;
        want.extend_from_slice(&200u32.to_le_bytes());
        want.extend_from_slice(&big);
        let set0 = want.len() as u64;
        want.extend(pair(VALUE_OOL, "a", &big_at.to_le_bytes()));
        want.extend(pair(0, "b", b"short"));
        // Set 1: refers to the value already written.
        let set1 = want.len() as u64;
        want.extend(pair(2 | VALUE_OOL, "x", &big_at.to_le_bytes()));
        // Set 2: an 8-byte value, in line; set 3 refers to it, while a
        // 7-byte value is always in line.
        let set2 = want.len() as u64;
        want.extend(pair(1, "y", b"12345678"));
        let y_value_at = set2 + 4 + 1;
        let set3 = want.len() as u64;
        want.extend(pair(VALUE_OOL, "z", &y_value_at.to_le_bytes()));
        want.extend(pair(0, "zz", b"1234567"));
        assert_eq!(kv, want);
        let record = |start: u64, count: u32, size: u32| {
            let mut r = start.to_le_bytes().to_vec();
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&size.to_le_bytes());
            r
        };
        let mut want_ids = record(set0, 2, (6 + 1 + 200) + (6 + 1 + 5));
        want_ids.extend(record(set1, 1, 10 + 1 + 200));
        want_ids.extend(record(set2, 1, 9 + 1 + 8));
        want_ids.extend(record(set3, 2, (6 + 1 + 8) + (7 + 1 + 7)));
        assert_eq!(ids, want_ids);
    }

    #[test]
    fn other_namespaces_are_refused_by_name() {
        let p = plan(&[&[("system.posix_acl_access", b"\x02\0\0\0")]]);
        let mut c = Compression::default().compressor(4096).unwrap();
        let Err(e) = XattrTable::build(&p, &mut c) else {
            panic!("system.* stored");
        };
        assert!(e.to_string().contains("system.posix_acl_access"), "{e}");
    }

    #[test]
    fn no_sets_no_table() {
        let mut c = Compression::default().compressor(4096).unwrap();
        assert!(XattrTable::build(&plan(&[]), &mut c).unwrap().is_none());
    }
}
