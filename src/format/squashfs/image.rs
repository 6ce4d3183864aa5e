//! The image file as the table readers see it: positional reads that never
//! leave the image, and block decompression with a bound on the output.
//!
//! Every offset an image declares (a table start, a metadata block, a data
//! block) is checked here against `bytes_used` before a byte is read or a
//! buffer sized from it, so a hostile offset or length costs an error, not
//! memory. The format (squashfs-tools-ng `doc/format.adoc`, §2 "Overview")
//! puts every structure inside `[0, bytes_used)`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::compress::Decompressor;
use super::superblock::Superblock;

/// Why the image cannot be read: the file failed, or its bytes are wrong at
/// a place named in words.
#[derive(Debug)]
pub(crate) enum Fault {
    Io(io::Error),
    Malformed { location: String, reason: String },
}

impl Fault {
    pub(crate) fn malformed(location: impl Into<String>, reason: impl Into<String>) -> Fault {
        Fault::Malformed {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// The fault as an I/O error, for content readers (`io::Read`).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Fault::Io(e) => e,
            Fault::Malformed { location, reason } => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed squashfs at {location}: {reason}"),
            ),
        }
    }
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

/// An opened image: the file, its checked superblock and a decompressor.
pub(crate) struct Image {
    file: File,
    pub(crate) sb: Superblock,
    decompressor: Decompressor,
}

impl Image {
    /// Wraps `file`, whose superblock `sb` has been decoded and whose
    /// `bytes_used` has been checked against the file's length.
    pub(crate) fn new(file: File, sb: Superblock) -> Result<Image, Fault> {
        let decompressor = Decompressor::for_id(sb.compression_id)
            .map_err(|reason| Fault::malformed("superblock", reason))?;
        Ok(Image {
            file,
            sb,
            decompressor,
        })
    }

    /// Fills `buf` from offset `at`, which with `buf.len()` must lie inside
    /// `[0, bytes_used)`; `what` names the structure for the message.
    pub(crate) fn read_at(
        &self,
        at: u64,
        buf: &mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), Fault> {
        self.check_range(at, buf.len() as u64, what)?;
        self.file.read_exact_at(buf, at).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Fault::malformed(
                    what(),
                    format!("the file ends before byte {}", at + buf.len() as u64),
                )
            } else {
                Fault::Io(e)
            }
        })
    }

    /// Checks that `[at, at + len)` lies inside the image.
    pub(crate) fn check_range(
        &self,
        at: u64,
        len: u64,
        what: &dyn Fn() -> String,
    ) -> Result<(), Fault> {
        match at.checked_add(len) {
            Some(end) if end <= self.sb.bytes_used => Ok(()),
            _ => Err(Fault::malformed(
                what(),
                format!(
                    "{len} bytes at byte {at} run past bytes_used ({})",
                    self.sb.bytes_used
                ),
            )),
        }
    }

    /// Decompresses one block of at most `limit` bytes into `out`.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
        what: &dyn Fn() -> String,
    ) -> Result<(), Fault> {
        self.decompressor
            .decompress(input, limit, out)
            .map_err(|reason| Fault::malformed(what(), reason))
    }

    pub(crate) fn block_size(&self) -> u32 {
        self.sb.block_size
    }
}

/// A small least-recently-used cache of decompressed blocks, keyed by their
/// offset in the image. Eviction scans all entries: caches here hold at
/// most a few hundred blocks, and a miss costs a decompression anyway.
pub(crate) struct BlockCache<V> {
    map: std::collections::HashMap<u64, (V, u64)>,
    clock: u64,
    capacity: usize,
}

impl<V> BlockCache<V> {
    pub(crate) fn new(capacity: usize) -> BlockCache<V> {
        BlockCache {
            map: std::collections::HashMap::new(),
            clock: 0,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// Adds `value` at `key` as the most recently used block.
    pub(crate) fn insert(&mut self, key: u64, value: V) {
        self.evict_for(key);
        self.clock += 1;
        self.map.insert(key, (value, self.clock));
    }

    /// Makes room for `key` when the cache is full.
    fn evict_for(&mut self, key: u64) {
        if self.map.len() >= self.capacity
            && !self.map.contains_key(&key)
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            self.map.remove(&oldest);
        }
    }

    /// The block at `key`, loaded by `load` on a miss (evicting the least
    /// recently used block when full).
    pub(crate) fn get_or_load<E>(
        &mut self,
        key: u64,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<&V, E> {
        self.clock += 1;
        let clock = self.clock;
        self.evict_for(key);
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let slot = o.into_mut();
                slot.1 = clock;
                Ok(&slot.0)
            }
            std::collections::hash_map::Entry::Vacant(v) => Ok(&v.insert((load()?, clock)).0),
        }
    }
}
