//! Parallel gzip whose bytes do not depend on the number of threads.
//!
//! The stream is one standard gzip member (RFC 1952): header with MTIME 0, no
//! file name, XFL from the level, OS byte 255 ("unknown", so the host never
//! shows), then a raw deflate stream, then CRC-32 and ISIZE.
//!
//! The deflate stream is cut into fixed 1 MiB chunks of input, each
//! compressed on its own by libdeflate (no preset dictionary: libdeflate
//! has none, and at this size the cost is a few bytes per chunk). A
//! libdeflate stream ends with a final block, so every chunk but the last
//! is made to continue the stream instead (see `continue_stream`): the
//! final bit of its last block is cleared and an empty stored block (a sync
//! flush) reaches the byte boundary the next chunk starts on. The chunk
//! boundaries depend only on the input, so the bytes are the same for any
//! `jobs`: threads only decide *when* a chunk is compressed, never *how*.
//!
//! ```
//! use std::io::Write;
//! use repropack::format::gzip::ParallelGzip;
//! let mut gz = ParallelGzip::new(Vec::new(), 6, 2).unwrap();
//! gz.write_all(b"hello hello hello").unwrap();
//! let bytes = gz.finish().unwrap();
//! assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
//! ```

use std::io::{self, Write};

use libdeflater::{CompressionLvl, Compressor};
use rayon::prelude::*;
use zlib_rs::c_api::z_stream;
use zlib_rs::inflate::{self, InflateConfig, InflateStream};
use zlib_rs::{InflateFlush, ReturnCode};

/// Input chunk size; each chunk is compressed on its own.
pub const CHUNK: usize = 1024 * 1024;

/// A `Write` adaptor producing gzip with compression spread over `jobs`
/// threads. Call [`ParallelGzip::finish`] to write the trailer.
pub struct ParallelGzip<W: Write> {
    out: W,
    pool: rayon::ThreadPool,
    level: CompressionLvl,
    batch: usize,
    pending: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
}

impl<W: Write> ParallelGzip<W> {
    /// Writes the gzip header to `out`. `level` is 0–9, `jobs` ≥ 1.
    pub fn new(mut out: W, level: u32, jobs: usize) -> io::Result<ParallelGzip<W>> {
        let out_of_range = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gzip level {level} is out of range 0-9"),
            )
        };
        if level > 9 {
            return Err(out_of_range());
        }
        let engine = CompressionLvl::new(level as i32).map_err(|_| out_of_range())?;
        let jobs = jobs.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .thread_name(|i| format!("gzip-{i}"))
            .build()
            .map_err(io::Error::other)?;
        let xfl = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        // RFC 1952 §2.3: ID1 ID2 CM FLG MTIME(4) XFL OS
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        Ok(ParallelGzip {
            out,
            pool,
            level: engine,
            batch: jobs * 2,
            pending: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
        })
    }

    /// Compresses the first `n_bytes` of `pending` (its last chunk ending
    /// the stream if `last`) and writes them out in order.
    fn compress_chunks(&mut self, n_bytes: usize, last: bool) -> io::Result<()> {
        let data = &self.pending[..n_bytes];
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(CHUNK).collect()
        };
        let count = chunks.len();
        let level = self.level;
        let outputs: Vec<io::Result<Vec<u8>>> = self.pool.install(|| {
            chunks
                .par_iter()
                .enumerate()
                .map(|(i, chunk)| deflate_chunk(chunk, level, last && i + 1 == count))
                .collect()
        });
        for out in outputs {
            self.out.write_all(&out?)?;
        }
        self.pending.drain(..n_bytes);
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        let n = self.pending.len();
        self.compress_chunks(n, true)?;
        let crc = self.crc.clone().finalize();
        // RFC 1952 §2.3.1: CRC32, ISIZE (size mod 2^32), little-endian.
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.crc.update(buf);
        self.total += buf.len() as u64;
        // Keep at least one chunk pending so the final chunk is only known
        // (and ends the stream) in `finish`.
        let ready = self.batch * CHUNK;
        if self.pending.len() >= ready + CHUNK {
            self.compress_chunks(ready, false)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Raw-deflates one chunk with libdeflate (pinned to one version in
/// Cargo.toml: the bytes follow it). The chunk's output is inflated back and
/// compared with the chunk, which also finds its last block; unless the
/// chunk is the `last`, the stream is then continued past that block.
fn deflate_chunk(chunk: &[u8], level: CompressionLvl, last: bool) -> io::Result<Vec<u8>> {
    let mut compressor = Compressor::new(level);
    // Room for the bound and what `continue_stream` appends.
    let mut out = vec![0u8; compressor.deflate_compress_bound(chunk.len()) + 5];
    let written = compressor
        .deflate_compress(chunk, &mut out)
        .map_err(|e| io::Error::other(format!("deflate failed: {e}")))?;
    out.truncate(written);
    let bounds = bounds(&out, chunk)?;
    if !last {
        continue_stream(&mut out, &bounds)?;
    }
    Ok(out)
}

/// Where a raw deflate stream's last block begins and where the stream
/// ends, in bits from its start (bit `b` is bit `b % 8`, least significant
/// first, of byte `b / 8`).
#[derive(Debug, PartialEq)]
struct Bounds {
    last_block: u64,
    end: u64,
}

/// Inflates `stream` one block at a time (`Z_BLOCK`), checks that it gives
/// `expect` exactly, and returns its [`Bounds`]. After each block inflate
/// reports in `data_type` that it stopped at a block's end (128), whether
/// that block was the final one (64), and how many bits of the bytes it took
/// are still unread (the low 6 bits): the end of a block that is not final
/// is where the next block begins.
fn bounds(stream: &[u8], expect: &[u8]) -> io::Result<Bounds> {
    let mut raw = RawInflate::new()?;
    // One byte more than expected, so output beyond it shows.
    let mut out = vec![0u8; expect.len() + 1];
    raw.strm.next_in = stream.as_ptr().cast_mut();
    raw.strm.avail_in = stream.len() as u32;
    raw.strm.next_out = out.as_mut_ptr();
    raw.strm.avail_out = out.len() as u32;
    let (mut last_block, mut end) = (0, None);
    loop {
        // SAFETY: next_in/next_out point into `stream` and `out`, which
        // outlive `raw` here, with avail_in/avail_out their remaining sizes.
        let code = unsafe { inflate::inflate(raw.stream(), InflateFlush::Block) };
        let taken = (stream.len() - raw.strm.avail_in as usize) as u64;
        let at = taken * 8 - (raw.strm.data_type & 63) as u64;
        match (code, raw.strm.data_type & (128 | 64)) {
            (ReturnCode::StreamEnd, _) => break,
            (ReturnCode::Ok, 128) => last_block = at,
            (ReturnCode::Ok, 192) => end = Some(at),
            (ReturnCode::Ok, _) => {}
            (code, _) => return Err(inflate_error(code)),
        }
    }
    let produced = out.len() - raw.strm.avail_out as usize;
    raw.strm.next_in = std::ptr::null_mut();
    raw.strm.next_out = std::ptr::null_mut();
    let bits = stream.len() as u64 * 8;
    let end = end.filter(|&end| end <= bits && bits - end < 8);
    let Some(end) = end else {
        return Err(io::Error::other(
            "inflate did not report where deflate output's last block ends",
        ));
    };
    if produced != expect.len() || out[..produced] != *expect {
        return Err(io::Error::other(
            "deflate output does not inflate back to its input",
        ));
    }
    Ok(Bounds { last_block, end })
}

/// Makes the stream in `out` continue past its last block: clears that
/// block's final bit (BFINAL) and appends an empty stored block (BFINAL 0,
/// BTYPE 00, zero bits to the byte boundary, LEN 0, NLEN 0xFFFF) at the end,
/// so the next chunk starts a block on a byte boundary. The bits after the
/// end are zero (deflate pads with zeros), so when at least three are left
/// in the last byte the header is already there.
fn continue_stream(out: &mut Vec<u8>, bounds: &Bounds) -> io::Result<()> {
    let byte = (bounds.last_block / 8) as usize;
    let bit = 1u8 << (bounds.last_block % 8);
    if out.get(byte).is_none_or(|b| b & bit == 0) {
        return Err(io::Error::other("deflate output has no final block"));
    }
    out[byte] &= !bit;
    let spare = out.len() as u64 * 8 - bounds.end;
    if spare < 3 {
        out.push(0);
    }
    out.extend_from_slice(&[0, 0, 0xff, 0xff]);
    Ok(())
}

fn inflate_error(code: ReturnCode) -> io::Error {
    io::Error::other(format!("inflate of deflate output failed: {code:?}"))
}

/// A raw inflate stream on zlib-rs's internal API (pinned in Cargo.toml): the
/// stable API does not report where blocks begin.
struct RawInflate {
    strm: z_stream,
}

impl RawInflate {
    fn new() -> io::Result<RawInflate> {
        let mut strm = z_stream::default();
        match inflate::init(&mut strm, InflateConfig { window_bits: -15 }) {
            ReturnCode::Ok => Ok(RawInflate { strm }),
            code => Err(inflate_error(code)),
        }
    }

    fn stream(&mut self) -> &mut InflateStream<'static> {
        // SAFETY: `strm` was initialised by `inflate::init` (checked in
        // `new`) and is only ended in `Drop`.
        unsafe { InflateStream::from_stream_mut(&mut self.strm) }
            .expect("inflate stream initialised in RawInflate::new")
    }
}

impl Drop for RawInflate {
    fn drop(&mut self) {
        inflate::end(self.stream());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], jobs: usize, level: u32) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), level, jobs).unwrap();
        // Odd write sizes so chunking cannot follow the caller's writes.
        for piece in data.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"abcdefgh"[(x >> 28) as usize % 8]
                }
            })
            .collect()
    }

    /// `flate2`'s `GzDecoder` reads one gzip member only, so a stream that
    /// decodes to all of its input is one member whose chunks continue it.
    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn output_does_not_depend_on_jobs_and_decodes() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17, 9 * CHUNK] {
            let data = sample(len);
            let one = gz(&data, 1, 6);
            for jobs in [2, 3, 8] {
                assert_eq!(one, gz(&data, jobs, 6), "len {len} jobs {jobs}");
            }
            assert_eq!(gunzip(&one), data, "len {len}");
        }
    }

    #[test]
    fn levels_zero_one_and_nine_decode() {
        let data = sample(3 * CHUNK + 5);
        for level in [0, 1, 9] {
            assert_eq!(gunzip(&gz(&data, 2, level)), data, "level {level}");
        }
    }

    #[test]
    fn levels_out_of_range_are_refused() {
        let err = ParallelGzip::new(Vec::new(), 10, 1).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("gzip level 10"), "{err}");
    }

    /// A chunk's stream ends with 0 to 7 spare bits in its last byte; the
    /// empty stored block after it starts there when at least 3 are spare
    /// and needs a byte more otherwise. Both kinds occur among these chunks,
    /// and each continued chunk decodes in a stream of its own followed by
    /// an empty final block.
    #[test]
    fn chunk_ends_of_both_kinds_continue_the_stream() {
        let level = CompressionLvl::new(6).unwrap();
        let (mut short, mut roomy) = (0, 0);
        for len in (0..24).map(|i| 1000 + i * 4099) {
            let data = sample(len);
            let mut out = deflate_chunk(&data, level, true).unwrap();
            let bounds = bounds(&out, &data).unwrap();
            match out.len() as u64 * 8 - bounds.end {
                0..=2 => short += 1,
                _ => roomy += 1,
            }
            continue_stream(&mut out, &bounds).unwrap();
            assert_eq!(out, deflate_chunk(&data, level, false).unwrap());
            // An empty fixed-Huffman final block: BFINAL 1, BTYPE 01, EOB.
            out.extend_from_slice(&[0x03, 0x00]);
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
        }
        assert!(short > 0 && roomy > 0, "short {short} roomy {roomy}");
    }

    #[test]
    fn output_that_does_not_inflate_to_the_chunk_is_refused() {
        let level = CompressionLvl::new(6).unwrap();
        let data = sample(5000);
        let out = deflate_chunk(&data, level, true).unwrap();
        let mut other = data.clone();
        other[4000] ^= 1;
        assert!(bounds(&out, &other).is_err());
        assert!(bounds(&out, &data[..4999]).is_err());
        assert!(bounds(&out[..out.len() - 1], &data).is_err());
    }
}
