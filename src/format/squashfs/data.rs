//! Data and fragment blocks: the parallel part of the writer.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §4 "Data and Fragment Blocks". A file's full blocks are stored back to
//! back, each compressed on its own (bit 24 of its size marks a block stored
//! uncompressed, size 0 an all-zero "sparse" block that takes no space);
//! its tail end (the last `size % block_size` bytes, or the whole file if
//! smaller than a block) is packed into a shared fragment block.
//!
//! # Execution model
//!
//! Three roles run at once:
//! - the **planner** (the calling thread) walks the plan in order and makes
//!   every decision that affects bytes: which files are duplicates of an
//!   earlier file (same size and SHA-256; the first in plan order is kept),
//!   which blocks are all zeros, which fragment block each tail goes to and
//!   at which offset, and the order of all blocks. It reads content, hands
//!   each block to the workers and, in the same order, a handle to the
//!   block's future result to the writer;
//! - `jobs` **workers** compress blocks in whatever order they get them;
//!   a block's bytes depend only on its input (see `compress`). With
//!   `jobs == 1` there are no workers: the planner compresses each block
//!   itself, so `--jobs 1` keeps to one CPU;
//! - the **writer** takes handles in planner order, waits for each result
//!   and appends it to the output, so placement never depends on which
//!   worker finished first.
//!
//! The planner→writer queue is bounded, so at most about `4 × jobs + 8`
//! blocks are in memory at any time, whatever the input size. Buffers are
//! recycled through a small pool.
//!
//! # Reading back
//!
//! [`DataReader`] streams one file's content: its block sizes are read from
//! the inode table as it goes (a declared size costs nothing up front), runs
//! of blocks are read with one `pread` and decompressed on the rayon pool,
//! and the tail comes from a cached fragment block. The fragment blocks
//! after the one a tail needs are decompressed on the pool in the
//! background ([`FragmentPrefetch`]), so the walk rarely waits for one. Every block must lie
//! inside the image and decompress to exactly the bytes its position in the
//! file calls for.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, SyncSender};

use sha2::{Digest, Sha256};

use super::SquashfsError;
use super::compress::{CompressError, Compression, Decompressor};
use super::dedup::Seen;
use super::image::{BlockCache, Fault, Image};
use super::metadata::{Cursor, MetadataReader};
use super::table::{FragmentEntry, FragmentTable};
use crate::plan::{ContentError, ContentReader, EntryKind, Plan};
use crate::progress::Counters;

/// Blocks in flight per job, beyond 8 shared: enough read-ahead that a
/// worker rarely waits for the planner while the writer waits for a slow
/// block, yet memory stays a few blocks per job.
const QUEUE_PER_JOB: usize = 4;

/// Bit 24 of a block size: the block is stored uncompressed.
pub(crate) const BLOCK_UNCOMPRESSED: u32 = 1 << 24;

/// Where a regular file's data went, as its inode records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileLayout<'a> {
    pub blocks_start: u64,
    /// On-disk size of each full block (0 = sparse).
    pub block_sizes: &'a [u32],
    /// (fragment index, offset in the uncompressed fragment block).
    pub fragment: Option<(u32, u32)>,
    /// Bytes of the file held by sparse blocks.
    pub sparse: u64,
}

/// Where one plan entry's tail went: 8 bytes per entry, since a plan may
/// hold millions of small files. Its fragment block index and offset in
/// the uncompressed block, `index << 20 | offset` (blocks are at most
/// 1 MiB, so offsets fit 20 bits), or [`Placed::NOTHING`]. What a file
/// with full blocks also needs (start, block sizes, sparse bytes) lives in
/// a [`Slot`], found through [`DataLayout::with_blocks`]. An entry without
/// data, and an empty file, have neither slot nor fragment; their inodes
/// are the same.
#[derive(Debug, Clone, Copy)]
struct Placed(u64);

impl Placed {
    const NOTHING: Placed = Placed(u64::MAX);

    fn new(fragment: Option<(u32, u32)>) -> Placed {
        match fragment {
            None => Placed::NOTHING,
            Some((index, offset)) => {
                debug_assert!(offset < 1 << 20);
                Placed((u64::from(index) << 20) | u64::from(offset))
            }
        }
    }

    fn fragment(self) -> Option<(u32, u32)> {
        (self.0 != u64::MAX).then_some(((self.0 >> 20) as u32, (self.0 & 0xF_FFFF) as u32))
    }
}

/// A file with full blocks: where they start, their on-disk sizes, and
/// the bytes held by sparse blocks (only full blocks can be sparse).
#[derive(Debug, Default)]
struct Slot {
    start: u64,
    block_sizes: Vec<u32>,
    sparse: u64,
}

/// Result of the data phase.
pub(crate) struct DataLayout {
    /// Per plan entry (for hard-link members, look at the group's first
    /// member); read with [`DataLayout::file`].
    placed: Vec<Placed>,
    /// (plan entry, index into `slots`) of each entry whose file has full
    /// blocks (a duplicate with those of the file it repeats), by entry.
    with_blocks: Vec<(u32, u32)>,
    /// Per file with full blocks, in writer order.
    slots: Vec<Slot>,
    pub fragments: Vec<FragmentEntry>,
    /// Offset just past the last data or fragment block.
    pub end: u64,
    /// Whether any file was stored as a duplicate of another.
    pub deduplicated: bool,
}

impl DataLayout {
    /// The layout of plan entry `index`; `None` when it has no data (not
    /// a file, empty, or a hard-link member other than the first).
    pub(crate) fn file(&self, index: usize) -> Option<FileLayout<'_>> {
        let fragment = self.placed.get(index)?.fragment();
        let slot = u32::try_from(index)
            .ok()
            .and_then(|i| slot_of(&self.with_blocks, i))
            .and_then(|s| self.slots.get(s as usize));
        if slot.is_none() && fragment.is_none() {
            return None;
        }
        Some(FileLayout {
            blocks_start: slot.map_or(0, |s| s.start),
            block_sizes: slot.map_or(&[][..], |s| &s.block_sizes),
            fragment,
            sparse: slot.map_or(0, |s| s.sparse),
        })
    }
}

/// A compressed (or kept) block on its way to the writer.
struct Done {
    data: Vec<u8>,
    compressed: bool,
}

struct Job {
    input: Vec<u8>,
    reply: SyncSender<Result<Done, CompressError>>,
}

enum Item {
    /// The next blocks belong to a new file; remember the position.
    FileStart,
    Block(Receiver<Result<Done, CompressError>>),
    Sparse,
    Fragment(Receiver<Result<Done, CompressError>>),
}

/// Recycled block buffers.
struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
}

impl Pool {
    fn get(&self) -> Vec<u8> {
        let recycled = self.free.lock().ok().and_then(|mut f| f.pop());
        recycled.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }
    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        if let Ok(mut f) = self.free.lock()
            && f.len() < 64
        {
            f.push(buf);
        }
    }
}

/// Settings of the data phase.
pub(crate) struct DataOptions<'a> {
    pub compression: Compression,
    pub block_size: u32,
    pub dedup: bool,
    pub jobs: usize,
    /// Counts each entry as the planner passes it.
    pub progress: Option<&'a Counters>,
}

/// Writes all data and fragment blocks of `plan` to `file`, starting at
/// its current position, which must be `start`.
pub(crate) fn write_data(
    plan: &Plan,
    opts: &DataOptions,
    file: &File,
    start: u64,
) -> Result<DataLayout, SquashfsError> {
    let jobs = opts.jobs.max(1);
    let pool = Pool {
        free: Mutex::new(Vec::new()),
        capacity: opts.block_size as usize,
    };
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (item_tx, item_rx) = mpsc::sync_channel::<Item>(QUEUE_PER_JOB * jobs + 8);

    std::thread::scope(|s| {
        // With one job the planner compresses inline: `--jobs 1` uses one
        // CPU for reading and compressing.
        let workers = if jobs == 1 { 0 } else { jobs };
        for _ in 0..workers {
            s.spawn(|| worker(&job_rx, &pool, opts));
        }
        let inline = if workers == 0 {
            Some(opts.compression.compressor(opts.block_size))
        } else {
            None
        };
        let writer = s.spawn(|| write_items(file, start, item_rx, &pool));
        let mut planner = Planner {
            plan,
            opts,
            pool: &pool,
            job_tx,
            item_tx,
            frag: Vec::new(),
            frag_count: 0,
            inline,
        };
        let planned = planner.run();
        // Closing both queues lets the workers and the writer finish.
        drop(planner);
        let written = writer
            .join()
            .unwrap_or(Err(SquashfsError::Internal("data writer thread panicked")));
        match (planned, written) {
            (Ok(planned), Ok(written)) => Ok(merge(planned, written)),
            // The writer failing makes the planner fail too (its queue
            // closes): report the writer's cause.
            (Err(SquashfsError::WriterGone), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// The slot of plan entry `entry` in `with_blocks` ([`DataLayout`]'s).
fn slot_of(with_blocks: &[(u32, u32)], entry: u32) -> Option<u32> {
    with_blocks
        .binary_search_by_key(&entry, |&(e, _)| e)
        .ok()
        .map(|i| with_blocks[i].1)
}

/// What the planner decided: per entry, its slot and fragment (a
/// duplicate gets those of the file it repeats); per slot, its sparse
/// bytes.
struct Planned {
    placed: Vec<Placed>,
    with_blocks: Vec<(u32, u32)>,
    sparse: Vec<u64>,
    deduplicated: bool,
}

/// What the writer saw: per slot, start and block sizes (sparse bytes
/// still 0); fragments.
struct Written {
    slots: Vec<Slot>,
    fragments: Vec<FragmentEntry>,
    end: u64,
}

fn merge(planned: Planned, mut written: Written) -> DataLayout {
    for (slot, sparse) in written.slots.iter_mut().zip(planned.sparse) {
        slot.sparse = sparse;
    }
    DataLayout {
        placed: planned.placed,
        with_blocks: planned.with_blocks,
        slots: written.slots,
        fragments: written.fragments,
        end: written.end,
        deduplicated: planned.deduplicated,
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, pool: &Pool, opts: &DataOptions) {
    let mut compressor = opts.compression.compressor(opts.block_size);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = match &mut compressor {
            Err(e) => Err(e.clone()),
            Ok(c) => compress_block(c, pool, job.input),
        };
        // The writer may have stopped after an error; nothing to do then.
        let _ = job.reply.send(result);
    }
}

/// Compresses one block, keeping it uncompressed if that is not smaller.
fn compress_block(
    c: &mut super::compress::Compressor,
    pool: &Pool,
    input: Vec<u8>,
) -> Result<Done, CompressError> {
    let mut out = pool.get();
    if c.compress(&input, &mut out)? {
        pool.put(input);
        Ok(Done {
            data: out,
            compressed: true,
        })
    } else {
        pool.put(out);
        Ok(Done {
            data: input,
            compressed: false,
        })
    }
}

fn write_items(
    file: &File,
    start: u64,
    items: Receiver<Item>,
    pool: &Pool,
) -> Result<Written, SquashfsError> {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut pos = start;
    let mut slots: Vec<Slot> = Vec::new();
    let mut fragments = Vec::new();
    let receive = |rx: Receiver<Result<Done, CompressError>>| -> Result<Done, SquashfsError> {
        match rx.recv() {
            Ok(r) => Ok(r?),
            Err(_) => Err(SquashfsError::Internal("compression worker stopped")),
        }
    };
    for item in items {
        match item {
            Item::FileStart => slots.push(Slot {
                start: pos,
                ..Slot::default()
            }),
            Item::Sparse => {
                let slot = slots
                    .last_mut()
                    .ok_or(SquashfsError::Internal("block before file"))?;
                slot.block_sizes.push(0);
            }
            Item::Block(rx) => {
                let done = receive(rx)?;
                let size = write_block(&mut out, &done)?;
                let slot = slots
                    .last_mut()
                    .ok_or(SquashfsError::Internal("block before file"))?;
                slot.block_sizes.push(size);
                pos += done.data.len() as u64;
                pool.put(done.data);
            }
            Item::Fragment(rx) => {
                let done = receive(rx)?;
                let size = write_block(&mut out, &done)?;
                fragments.push(FragmentEntry { start: pos, size });
                pos += done.data.len() as u64;
                pool.put(done.data);
            }
        }
    }
    out.flush().map_err(SquashfsError::Output)?;
    Ok(Written {
        slots,
        fragments,
        end: pos,
    })
}

fn write_block(out: &mut impl Write, done: &Done) -> Result<u32, SquashfsError> {
    out.write_all(&done.data).map_err(SquashfsError::Output)?;
    // Blocks are at most 1 MiB, so the size fits below bit 24.
    let len = done.data.len() as u32;
    Ok(if done.compressed {
        len
    } else {
        len | BLOCK_UNCOMPRESSED
    })
}

struct Planner<'a> {
    plan: &'a Plan,
    opts: &'a DataOptions<'a>,
    pool: &'a Pool,
    job_tx: mpsc::Sender<Job>,
    item_tx: SyncSender<Item>,
    /// The fragment block being filled.
    frag: Vec<u8>,
    /// Fragment blocks sealed so far (= index of `frag`).
    frag_count: u32,
    /// Compressor used on this thread when there are no workers.
    inline: Option<Result<super::compress::Compressor, CompressError>>,
}

impl Planner<'_> {
    fn run(&mut self) -> Result<Planned, SquashfsError> {
        let entries = self.plan.entries();
        let bs = u64::from(self.opts.block_size);
        // Only files whose size occurs more than once can be duplicates:
        // the distinct sizes that do, sorted (few, even for millions of
        // small files; all sizes are held only while they are counted).
        let mut shared: Vec<u64> = Vec::new();
        // Files of those sizes: at most this many contents are looked up.
        let mut candidates = 0;
        if self.opts.dedup {
            let mut sizes: Vec<u64> = entries
                .iter()
                .filter(|e| owns_data(e))
                .map(|e| e.size())
                .collect();
            sizes.sort_unstable();
            candidates = sizes
                .chunk_by(|a, b| a == b)
                .filter(|run| run.len() > 1)
                .map(<[u64]>::len)
                .sum();
            shared = sizes
                .windows(2)
                .filter(|w| w[0] == w[1])
                .map(|w| w[0])
                .collect();
            shared.dedup();
            // 8 bytes per file, not to be held through the data phase.
            drop(sizes);
        }
        let shared_size = |size: u64| shared.binary_search(&size).is_ok();
        // First 128 bits of the SHA-256 -> first entry with that content.
        let mut seen = Seen::with_capacity(candidates);
        let mut placed: Vec<Placed> = Vec::with_capacity(entries.len());
        let mut with_blocks: Vec<(u32, u32)> = Vec::new();
        let mut sparse_of_slot: Vec<u64> = Vec::new();
        let mut deduplicated = false;
        for (idx, e) in entries.iter().enumerate() {
            if !owns_data(e) {
                if let Some(p) = self.opts.progress {
                    p.wrote(1, 0);
                }
                placed.push(Placed::NOTHING);
                continue;
            }
            let size = e.size();
            if let Some(p) = self.opts.progress {
                p.wrote(1, size);
            }
            let idx32 = u32::try_from(idx)
                .map_err(|_| SquashfsError::Limit("more than 2^32 entries".into()))?;
            let content = e
                .content()
                .ok_or(SquashfsError::Internal("regular file without content"))?;
            let in_err = |source: io::Error| SquashfsError::Input {
                entry: e.display_path(),
                source,
            };
            // Duplicate detection: hash candidates before writing anything.
            let mut expect_hash = None;
            let mut small: Option<Vec<u8>> = None;
            if shared_size(size) {
                let mut reader = content.reader(e.name()).map_err(SquashfsError::Content)?;
                let digest = if size <= bs {
                    let mut buf = Vec::with_capacity(size as usize);
                    read_to_end_exact(&mut reader, &mut buf, size).map_err(in_err)?;
                    let d: [u8; 32] = Sha256::digest(&buf).into();
                    small = Some(buf);
                    d
                } else {
                    hash_reader(&mut reader, self.pool).map_err(in_err)?
                };
                let mut key = [0u8; 16];
                key.copy_from_slice(&digest[..16]);
                if let Some(orig) = seen.get_or_insert(key, idx32) {
                    // The file it repeats is earlier, so already placed.
                    placed.push(placed[orig as usize]);
                    if let Some(s) = slot_of(&with_blocks, orig) {
                        with_blocks.push((idx32, s));
                    }
                    deduplicated = true;
                    continue;
                }
                expect_hash = Some(digest);
            }
            let full_blocks = size / bs;
            let slot =
                if full_blocks > 0 {
                    Some(u32::try_from(sparse_of_slot.len()).map_err(|_| {
                        SquashfsError::Limit("more than 2^32 files with blocks".into())
                    })?)
                } else {
                    None
                };
            let (fragment, sparse) = match small {
                Some(buf) => self.emit_blocks(&mut &buf[..], size, None, e)?,
                None => {
                    let mut reader = content.reader(e.name()).map_err(SquashfsError::Content)?;
                    let mut hasher = expect_hash.map(|_| Sha256::new());
                    let r = self.emit_blocks(&mut reader, size, hasher.as_mut(), e)?;
                    if let (Some(h), Some(want)) = (hasher, expect_hash) {
                        let got: [u8; 32] = h.finalize().into();
                        if got != want {
                            return Err(SquashfsError::Content(ContentError::Unstable {
                                path: content.describe(e.name()),
                                what: "content",
                            }));
                        }
                    }
                    r
                }
            };
            if let Some(slot) = slot {
                sparse_of_slot.push(sparse);
                with_blocks.push((idx32, slot));
            }
            placed.push(Placed::new(fragment));
        }
        if !self.frag.is_empty() {
            self.seal_fragment()?;
        }
        Ok(Planned {
            placed,
            with_blocks,
            sparse: sparse_of_slot,
            deduplicated,
        })
    }

    /// Emits the full blocks and the tail of a file read from `reader`;
    /// returns its fragment position and sparse byte count.
    fn emit_blocks(
        &mut self,
        reader: &mut dyn BlockSource,
        size: u64,
        mut hasher: Option<&mut Sha256>,
        entry: &crate::plan::Entry,
    ) -> Result<(Option<(u32, u32)>, u64), SquashfsError> {
        let in_err = |source: io::Error| SquashfsError::Input {
            entry: entry.display_path(),
            source,
        };
        let bs = self.opts.block_size as usize;
        let full_blocks = size / bs as u64;
        let mut sparse = 0u64;
        if full_blocks > 0 {
            self.send(Item::FileStart)?;
        }
        for _ in 0..full_blocks {
            // A hole is a zero block, stored as sparse like any other, but
            // neither read nor scanned.
            if reader.skip_hole(bs as u64).map_err(in_err)? {
                if let Some(h) = hasher.as_deref_mut() {
                    hash_zeros(h, bs);
                }
                sparse += bs as u64;
                self.send(Item::Sparse)?;
                continue;
            }
            let mut buf = self.pool.get();
            buf.resize(bs, 0);
            read_exact(reader, &mut buf).map_err(in_err)?;
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&buf);
            }
            if is_zero(&buf) {
                self.pool.put(buf);
                sparse += bs as u64;
                self.send(Item::Sparse)?;
            } else {
                let rx = self.compress(buf)?;
                self.send(Item::Block(rx))?;
            }
        }
        let tail = (size % bs as u64) as usize;
        let mut fragment = None;
        if tail > 0 {
            let mut buf = self.pool.get();
            buf.resize(tail, 0);
            read_exact(reader, &mut buf).map_err(in_err)?;
            if let Some(h) = hasher {
                h.update(&buf);
            }
            fragment = Some(self.add_fragment(&buf)?);
            self.pool.put(buf);
        }
        // One more read: must hit EOF, which also re-checks the source.
        let mut probe = [0u8; 1];
        match reader.read(&mut probe) {
            Ok(0) => {}
            Ok(_) => {
                return Err(in_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "file grew while packing",
                )));
            }
            Err(e) => return Err(in_err(e)),
        }
        Ok((fragment, sparse))
    }

    fn add_fragment(&mut self, tail: &[u8]) -> Result<(u32, u32), SquashfsError> {
        if self.frag.len() + tail.len() > self.opts.block_size as usize {
            self.seal_fragment()?;
        }
        if self.frag.capacity() == 0 {
            self.frag = self.pool.get();
        }
        let offset = self.frag.len() as u32;
        self.frag.extend_from_slice(tail);
        Ok((self.frag_count, offset))
    }

    fn seal_fragment(&mut self) -> Result<(), SquashfsError> {
        let block = std::mem::take(&mut self.frag);
        let rx = self.compress(block)?;
        self.send(Item::Fragment(rx))?;
        self.frag_count = self.frag_count.checked_add(1).ok_or(SquashfsError::Limit(
            "more than 2^32 fragment blocks".into(),
        ))?;
        Ok(())
    }

    fn compress(
        &mut self,
        input: Vec<u8>,
    ) -> Result<Receiver<Result<Done, CompressError>>, SquashfsError> {
        let (reply, rx) = mpsc::sync_channel(1);
        if let Some(compressor) = &mut self.inline {
            let result = match compressor {
                Ok(c) => compress_block(c, self.pool, input),
                Err(e) => Err(e.clone()),
            };
            // The channel has room for this one result.
            let _ = reply.send(result);
            return Ok(rx);
        }
        self.job_tx
            .send(Job { input, reply })
            .map_err(|_| SquashfsError::Internal("compression workers stopped"))?;
        Ok(rx)
    }

    fn send(&mut self, item: Item) -> Result<(), SquashfsError> {
        self.item_tx
            .send(item)
            .map_err(|_| SquashfsError::WriterGone)
    }
}

/// A file's bytes as `Planner::emit_blocks` takes them: a reader that
/// may also step over a block-long hole without reading it.
trait BlockSource: Read {
    /// Steps over the next `len` bytes if they are all hole and returns
    /// true; false leaves the source where it was.
    fn skip_hole(&mut self, _len: u64) -> io::Result<bool> {
        Ok(false)
    }
}

impl BlockSource for &[u8] {}

impl BlockSource for ContentReader {
    fn skip_hole(&mut self, len: u64) -> io::Result<bool> {
        ContentReader::skip_hole(self, len)
    }
}

/// Feeds `len` zero bytes to `hasher`.
fn hash_zeros(hasher: &mut Sha256, len: usize) {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(ZEROS.len());
        hasher.update(&ZEROS[..n]);
        left -= n;
    }
}

fn owns_data(e: &crate::plan::Entry) -> bool {
    e.kind() == EntryKind::File && e.hardlink_of().is_none() && e.size() > 0
}

fn read_exact(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<()> {
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(io::ErrorKind::InvalidData, "file shrank while packing")
        } else {
            e
        }
    })
}

fn read_to_end_exact(reader: &mut dyn Read, buf: &mut Vec<u8>, size: u64) -> io::Result<()> {
    buf.resize(size as usize, 0);
    read_exact(reader, buf)?;
    let mut probe = [0u8; 1];
    if reader.read(&mut probe)? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file grew while packing",
        ));
    }
    Ok(())
}

fn hash_reader(reader: &mut dyn Read, pool: &Pool) -> io::Result<[u8; 32]> {
    let mut buf = pool.get();
    buf.resize(buf.capacity().max(64 * 1024), 0);
    let result = crate::digest::hash_reader_with(reader, &mut buf);
    pool.put(buf);
    Ok(*result?.0.as_bytes())
}

/// True if every byte is zero (checked 64 bytes at a time so non-zero data
/// exits early).
fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    for c in &mut chunks {
        if c.iter().fold(0u8, |a, &b| a | b) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

/// Blocks of one file decompressed together on the rayon pool: as many as
/// there are threads, within this many bytes.
const READ_AHEAD_BYTES: usize = 16 << 20;

/// Blocks decompressed together per pool thread (a file's data blocks, or
/// fragment blocks when a tail needs one that is not cached): several per
/// thread, so that the threads end their shares at about the same time and
/// the walk waits less often.
const PREFETCH_PER_THREAD: usize = 4;

/// Fragment blocks the reader keeps decompressed, in bytes (at least two
/// blocks): files are laid out in order, so their tails come from the same
/// few fragment blocks in a row.
pub(crate) const FRAGMENT_CACHE_BYTES: usize = 8 << 20;

/// Bits of a block size word other than the size and the uncompressed flag:
/// always zero.
const SIZE_WORD_RESERVED: u32 = !(BLOCK_UNCOMPRESSED | 0x00FF_FFFF);

/// The tables a [`DataReader`] needs besides the image.
pub(crate) struct DataTables<'a> {
    pub image: &'a mut Image,
    /// The inode table, where block sizes follow each file inode.
    pub inodes: &'a mut MetadataReader,
    pub fragments: &'a mut FragmentTable,
    pub fragment_cache: &'a mut BlockCache<Vec<u8>>,
    pub prefetch: &'a mut FragmentPrefetch,
}

/// Fragment blocks being decompressed on the rayon pool ahead of the walk:
/// files are laid out in order, so their tails come from the blocks after
/// the one in use. At most [`PREFETCH_PER_THREAD`] per pool thread (and
/// half the fragment cache) are in flight, each as its stored and its
/// decompressed bytes.
#[derive(Default)]
pub(crate) struct FragmentPrefetch {
    /// In index order; a result of `None` is a block that failed, left for
    /// the walk to decompress itself and report.
    pending: VecDeque<(u32, Receiver<Option<Vec<u8>>>)>,
    /// The block the last top-up started after.
    after: Option<u32>,
}

impl FragmentPrefetch {
    /// Block `index`, if it is in flight (waits for it). Blocks before it
    /// still in flight are dropped: the walk has passed them.
    fn take(&mut self, index: u32) -> Option<Vec<u8>> {
        while let Some((i, _)) = self.pending.front() {
            if *i > index {
                return None;
            }
            let (i, rx) = self.pending.pop_front()?;
            if i == index {
                return rx.recv().ok().flatten();
            }
        }
        None
    }

    fn contains(&self, index: u32) -> bool {
        self.pending.iter().any(|(i, _)| *i == index)
    }
}

/// Where a file's content lies, from its inode (§5.3).
pub(crate) struct FileData {
    pub blocks_start: u64,
    pub file_size: u64,
    pub frag_index: u32,
    pub frag_offset: u32,
    /// Where the u32 block sizes follow the inode.
    pub sizes: Cursor,
}

/// How one block of a run is stored.
struct Stored {
    /// Offset in the run's raw bytes.
    offset: usize,
    size: usize,
    uncompressed: bool,
    /// Bytes it must decompress to.
    expect: usize,
}

/// Reads fragment entry `index` (§7) and its block's stored bytes,
/// checking the size word.
fn read_fragment(
    image: &mut Image,
    fragments: &mut FragmentTable,
    index: u32,
    block_size: u64,
) -> Result<(FragmentEntry, Vec<u8>), Fault> {
    let entry = fragments.get(image, index)?;
    let size = entry.size & !BLOCK_UNCOMPRESSED;
    let what = || format!("fragment block {index} at byte {}", entry.start);
    if entry.size & SIZE_WORD_RESERVED != 0 || u64::from(size) > block_size || size == 0 {
        return Err(Fault::malformed(
            what(),
            format!(
                "size word {:#x} (the block size is {block_size})",
                entry.size
            ),
        ));
    }
    let mut raw = vec![0u8; size as usize];
    image.read_at(entry.start, &mut raw, &what)?;
    Ok((entry, raw))
}

/// Streams one regular file's content (§4) in pieces ([`DataReader::next_piece`],
/// [`DataReader::append_to`]). Errors are
/// `InvalidData` naming the file and the block.
pub(crate) struct DataReader<'a> {
    t: DataTables<'a>,
    what: String,
    block_size: u64,
    /// Where the next full block's bytes start.
    next_at: u64,
    /// Where the next block size word is, in the inode table.
    sizes: Cursor,
    blocks_left: u64,
    /// Bytes the blocks still to read cover.
    block_bytes_left: u64,
    /// Fragment index and offset of the tail, and the tail's length.
    tail: Option<(u32, u32, usize)>,
    /// Blocks of the run read last, still being decompressed, in order.
    inflight: VecDeque<Piece>,
    /// Decompressed bytes not yet handed out, in order.
    ready: VecDeque<Vec<u8>>,
    pos: usize,
}

/// A piece of a file's content: bytes, or a block the rayon pool is
/// decompressing, which the receiver waits for. The walk hands out
/// `Later` pieces without waiting, so it goes on while the pool works.
pub(crate) enum Piece {
    Ready(Vec<u8>),
    Later {
        /// The bytes it will have.
        len: usize,
        rx: Receiver<io::Result<Vec<u8>>>,
    },
}

impl Piece {
    /// The bytes it has or will have.
    pub(crate) fn len(&self) -> usize {
        match self {
            Piece::Ready(b) => b.len(),
            Piece::Later { len, .. } => *len,
        }
    }

    /// Its bytes, waiting for them if needed.
    pub(crate) fn wait(self) -> io::Result<Vec<u8>> {
        match self {
            Piece::Ready(b) => Ok(b),
            Piece::Later { rx, .. } => rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("block decompression stopped"))),
        }
    }
}

thread_local! {
    /// Each pool thread's decompressor, kept for the next block.
    static DECOMPRESSOR: std::cell::RefCell<Option<(u16, Result<Decompressor, String>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Buffers of decompressed blocks the caller is done with, for the next
/// blocks: a recycled buffer is overwritten, not zeroed first, and costs no
/// allocation.
static SPARE_BLOCKS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Bytes of buffers kept in [`SPARE_BLOCKS`], at most.
const SPARE_BYTES: usize = 4 << 20;

/// Gives a block's buffer back for reuse (dropped when enough are kept).
pub(crate) fn recycle_block(buf: Vec<u8>) {
    if buf.capacity() == 0 {
        return;
    }
    if let Ok(mut spare) = SPARE_BLOCKS.lock()
        && (spare.len() + 1) * buf.capacity() <= SPARE_BYTES
    {
        spare.push(buf);
    }
}

fn spare_block() -> Vec<u8> {
    SPARE_BLOCKS
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_default()
}

/// Decompresses `input` (at most `limit` bytes out) with this thread's
/// decompressor for compressor `id`.
fn decompress_here(id: u16, input: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(have, _)| *have != id) {
            *cell = Some((id, Decompressor::for_id(id)));
        }
        let Some((_, d)) = cell.as_mut() else {
            unreachable!("set just above")
        };
        let d = d.as_mut().map_err(|e| e.clone())?;
        let mut out = spare_block();
        d.decompress(input, limit, &mut out)?;
        Ok(out)
    })
}

impl<'a> DataReader<'a> {
    /// A reader over the file `data`; `what` names the file for messages.
    pub(crate) fn new(t: DataTables<'a>, what: String, data: &FileData) -> DataReader<'a> {
        let block_size = u64::from(t.image.block_size());
        let (blocks, tail) = if data.frag_index == super::inode::NO_FRAGMENT {
            (data.file_size.div_ceil(block_size), None)
        } else {
            let tail_len = data.file_size % block_size;
            // `tail_len < block_size <= 1 MiB`, so it fits a usize.
            let tail =
                (tail_len > 0).then_some((data.frag_index, data.frag_offset, tail_len as usize));
            (data.file_size / block_size, tail)
        };
        DataReader {
            t,
            what,
            block_size,
            next_at: data.blocks_start,
            sizes: data.sizes,
            blocks_left: blocks,
            block_bytes_left: data.file_size - tail.map_or(0, |(_, _, n)| n as u64),
            tail,
            inflight: VecDeque::new(),
            ready: VecDeque::new(),
            pos: 0,
        }
    }

    /// Whether any content is in full blocks (else all is in the tail).
    pub(crate) fn has_blocks(&self) -> bool {
        self.blocks_left > 0
    }

    fn malformed(&self, reason: String) -> Fault {
        Fault::malformed(format!("data of {:?}", self.what), reason)
    }

    /// Reads the next run of blocks with one `pread` and starts
    /// decompressing each on the rayon pool, as [`Piece`]s in `inflight`.
    fn start_run(&mut self) -> Result<(), Fault> {
        let threads = rayon::current_num_threads().max(1);
        let batch_max =
            (READ_AHEAD_BYTES / self.block_size as usize).clamp(1, threads * PREFETCH_PER_THREAD);
        let batch = self.blocks_left.min(batch_max as u64) as usize;
        let mut run = Vec::with_capacity(batch);
        let mut raw_len = 0usize;
        let mut covered = self.block_bytes_left;
        for _ in 0..batch {
            let word = self.t.inodes.u32(self.t.image, &mut self.sizes)?;
            let size = word & !BLOCK_UNCOMPRESSED;
            let expect = covered.min(self.block_size) as usize;
            covered -= expect as u64;
            if word & SIZE_WORD_RESERVED != 0 || u64::from(size) > self.block_size {
                return Err(self.malformed(format!(
                    "block size word {word:#x} (the block size is {})",
                    self.block_size
                )));
            }
            let uncompressed = word & BLOCK_UNCOMPRESSED != 0;
            if uncompressed && size != 0 && size as usize != expect {
                return Err(self.malformed(format!(
                    "uncompressed block of {size} bytes where {expect} are due"
                )));
            }
            run.push(Stored {
                offset: raw_len,
                size: size as usize,
                uncompressed,
                expect,
            });
            raw_len += size as usize;
        }
        let at = self.next_at;
        let what = self.what.clone();
        let mut raw = vec![0u8; raw_len];
        self.t
            .image
            .read_at(at, &mut raw, &|| format!("data of {what:?}"))?;
        self.next_at += raw_len as u64;
        self.blocks_left -= batch as u64;
        self.block_bytes_left = covered;

        let raw = std::sync::Arc::new(raw);
        let id = self.t.image.sb.compression_id;
        for b in run {
            let bytes = b.offset..b.offset + b.size;
            let piece = if b.size == 0 {
                // A sparse block: zeros, stored nowhere.
                Piece::Ready(vec![0u8; b.expect])
            } else if b.uncompressed {
                Piece::Ready(raw[bytes].to_vec())
            } else {
                let (tx, rx) = mpsc::sync_channel(1);
                let (raw, what) = (raw.clone(), self.what.clone());
                rayon::spawn(move || {
                    let block_at = at + b.offset as u64;
                    let block = decompress_here(id, &raw[bytes], b.expect).and_then(|out| {
                        if out.len() == b.expect {
                            Ok(out)
                        } else {
                            Err(format!(
                                "block at byte {block_at} decompresses to {} bytes where {} are due",
                                out.len(),
                                b.expect
                            ))
                        }
                    });
                    let block = block.map_err(|reason| {
                        Fault::malformed(format!("data of {what:?}"), reason).into_io()
                    });
                    // The caller may have stopped reading.
                    let _ = tx.send(block);
                });
                Piece::Later { len: b.expect, rx }
            };
            self.inflight.push_back(piece);
        }
        Ok(())
    }

    /// Moves the next block into `ready`, waiting for it.
    fn fill_blocks(&mut self) -> io::Result<()> {
        if self.inflight.is_empty() {
            self.start_run().map_err(Fault::into_io)?;
        }
        if let Some(piece) = self.inflight.pop_front() {
            self.ready.push_back(piece.wait()?);
        }
        Ok(())
    }

    /// Appends the tail from its fragment block to `ready`.
    fn fill_tail(&mut self, index: u32, offset: u32, len: usize) -> Result<(), Fault> {
        let bytes = self.tail_bytes(index, offset, len)?.to_vec();
        self.ready.push_back(bytes);
        Ok(())
    }

    /// The tail's bytes, in its fragment block in the cache (loaded, and
    /// the next ones prefetched, when missing).
    fn tail_bytes(&mut self, index: u32, offset: u32, len: usize) -> Result<&[u8], Fault> {
        if !self.t.fragment_cache.contains(u64::from(index))
            && let Some(block) = self.t.prefetch.take(index)
        {
            self.t.fragment_cache.insert(u64::from(index), block);
        }
        self.prefetch_fragments(index);
        let (image, fragments) = (&mut *self.t.image, &mut *self.t.fragments);
        let block_size = self.block_size as usize;
        let block = self.t.fragment_cache.get_or_load(u64::from(index), || {
            let (entry, raw) = read_fragment(image, fragments, index, block_size as u64)?;
            let what = || format!("fragment block {index} at byte {}", entry.start);
            if entry.size & BLOCK_UNCOMPRESSED != 0 {
                return Ok(raw);
            }
            let mut out = Vec::new();
            image.decompress(&raw, block_size, &mut out, &what)?;
            Ok::<Vec<u8>, Fault>(out)
        })?;
        let start = offset as usize;
        let have = block.len();
        match start.checked_add(len).and_then(|end| block.get(start..end)) {
            Some(bytes) => Ok(bytes),
            // Not `self.malformed`: `block` still borrows the cache here.
            None => Err(Fault::malformed(
                format!("data of {:?}", self.what),
                format!(
                    "tail of {len} bytes at offset {offset} of fragment block {index} runs past its {have} bytes"
                ),
            )),
        }
    }

    /// Starts decompressing fragment blocks `index + 1`, `index + 2`, …
    /// on the pool (those neither cached nor in flight, up to the limit in
    /// [`FragmentPrefetch`]) and returns at once. Failures are left for
    /// [`Self::tail_bytes`] to meet, and name, when a file needs that
    /// block.
    fn prefetch_fragments(&mut self, index: u32) {
        if self.t.prefetch.after == Some(index) {
            return;
        }
        self.t.prefetch.after = Some(index);
        let room = (self.t.fragment_cache.capacity() / 2).max(1);
        let want = (rayon::current_num_threads() * PREFETCH_PER_THREAD).clamp(1, room);
        let end = index
            .saturating_add(1)
            .saturating_add(want as u32)
            .min(self.t.fragments.count());
        let block_size = self.block_size;
        let id = self.t.image.sb.compression_id;
        for i in index.saturating_add(1)..end {
            if self.t.prefetch.pending.len() >= want {
                break;
            }
            if self.t.fragment_cache.contains(u64::from(i)) || self.t.prefetch.contains(i) {
                continue;
            }
            let Ok((entry, raw)) = read_fragment(self.t.image, self.t.fragments, i, block_size)
            else {
                break;
            };
            let (tx, rx) = mpsc::sync_channel(1);
            rayon::spawn(move || {
                let block = if entry.size & BLOCK_UNCOMPRESSED != 0 {
                    Some(raw)
                } else {
                    decompress_here(id, &raw, block_size as usize).ok()
                };
                // The walk may have gone past this block, or ended.
                let _ = tx.send(block);
            });
            self.t.prefetch.pending.push_back((i, rx));
        }
    }

    /// Moves the next piece into `ready`; `false` after the last.
    fn fill(&mut self) -> io::Result<bool> {
        if self.blocks_left > 0 || !self.inflight.is_empty() {
            self.fill_blocks()?;
            return Ok(true);
        }
        if let Some((index, offset, len)) = self.tail.take() {
            self.fill_tail(index, offset, len).map_err(Fault::into_io)?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl DataReader<'_> {
    /// Appends up to `max` bytes of content to `out`, copying each byte
    /// once and never zero-filling `out` first (as `Read` would); a tail
    /// goes straight from the fragment cache. Returns the bytes appended,
    /// fewer than `max` only at the end of the content.
    pub(crate) fn append_to(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let mut added = 0;
        while added < max {
            if let Some(front) = self.ready.front() {
                let n = (front.len() - self.pos).min(max - added);
                out.extend_from_slice(&front[self.pos..self.pos + n]);
                self.pos += n;
                added += n;
                if self.pos == front.len() {
                    self.ready.pop_front();
                    self.pos = 0;
                }
                continue;
            }
            if self.blocks_left == 0
                && self.inflight.is_empty()
                && let Some((index, offset, len)) = self.tail
                && len <= max - added
            {
                self.tail = None;
                let bytes = self
                    .tail_bytes(index, offset, len)
                    .map_err(Fault::into_io)?;
                out.extend_from_slice(bytes);
                added += len;
                continue;
            }
            if !self.fill()? {
                break;
            }
        }
        Ok(added)
    }

    /// The next piece of content: a block as the pool decompresses it
    /// (the walk does not wait for it), or the tail, copied out of its
    /// fragment block; `None` after the last.
    pub(crate) fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        loop {
            if let Some(mut front) = self.ready.pop_front() {
                front.drain(..self.pos);
                self.pos = 0;
                return Ok(Some(Piece::Ready(front)));
            }
            if let Some(piece) = self.inflight.pop_front() {
                return Ok(Some(piece));
            }
            if self.blocks_left > 0 {
                self.start_run().map_err(Fault::into_io)?;
                continue;
            }
            let Some((index, offset, len)) = self.tail.take() else {
                return Ok(None);
            };
            let bytes = self
                .tail_bytes(index, offset, len)
                .map_err(Fault::into_io)?;
            return Ok(Some(Piece::Ready(bytes.to_vec())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_keeps_fragment_index_and_offset() {
        assert_eq!(Placed::NOTHING.fragment(), None);
        assert_eq!(Placed::new(None).fragment(), None);
        // Offsets up to the largest block size (1 MiB) less one, indexes
        // up to the most fragment blocks there can be.
        for (index, offset) in [
            (0, 0),
            (1, 1),
            (0, (1 << 20) - 1),
            (u32::MAX - 1, (1 << 20) - 1),
            (u32::MAX, 0),
        ] {
            assert_eq!(
                Placed::new(Some((index, offset))).fragment(),
                Some((index, offset))
            );
        }
    }

    #[test]
    fn slots_are_found_by_entry() {
        let with_blocks = [(3, 0), (7, 1), (8, 0), (20, 2)];
        assert_eq!(slot_of(&with_blocks, 3), Some(0));
        assert_eq!(slot_of(&with_blocks, 8), Some(0));
        assert_eq!(slot_of(&with_blocks, 20), Some(2));
        assert_eq!(slot_of(&with_blocks, 4), None);
        assert_eq!(slot_of(&with_blocks, 0), None);
        assert_eq!(slot_of(&with_blocks, 21), None);
    }
}
