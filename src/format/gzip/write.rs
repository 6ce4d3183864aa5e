//! Parallel gzip whose bytes do not depend on the number of threads.
//!
//! The stream is one standard gzip member (RFC 1952): header with MTIME 0, no
//! file name, XFL from the level, OS byte 255 ("unknown", so the host never
//! shows), then a raw deflate stream, then CRC-32 and ISIZE.
//!
//! The deflate stream is built the way pigz builds it: the input is cut into
//! fixed 128 KiB chunks; each chunk is compressed independently with the 32 KiB
//! that precede it as preset dictionary, and every chunk but the last ends on
//! a byte boundary the way pigz ends it (see `deflate_chunk`). The
//! chunk boundaries depend only on the input, so the bytes are the same for
//! any `jobs`: threads only decide *when* a chunk is compressed, never *how*.
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

use rayon::prelude::*;
use zlib_rs::c_api::z_stream;
use zlib_rs::deflate::{self, DeflateStream};
use zlib_rs::{DeflateConfig, DeflateFlush, ReturnCode};

/// Input chunk size; each chunk is compressed on its own.
pub const CHUNK: usize = 128 * 1024;
/// Preset dictionary size (the deflate window).
const DICT: usize = 32 * 1024;

/// A `Write` adaptor producing gzip with compression spread over `jobs`
/// threads. Call [`ParallelGzip::finish`] to write the trailer.
pub struct ParallelGzip<W: Write> {
    out: W,
    pool: rayon::ThreadPool,
    level: u32,
    batch: usize,
    pending: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
}

impl<W: Write> ParallelGzip<W> {
    /// Writes the gzip header to `out`. `level` is 0–9, `jobs` ≥ 1.
    pub fn new(mut out: W, level: u32, jobs: usize) -> io::Result<ParallelGzip<W>> {
        if level > 9 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gzip level {level} is out of range 0-9"),
            ));
        }
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
            level,
            batch: jobs * 2,
            pending: Vec::new(),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
        })
    }

    /// Compresses the first `n` chunks of `pending` (the last of them with
    /// `Finish` if `last`) and writes them out in order.
    fn compress_chunks(&mut self, n_bytes: usize, last: bool) -> io::Result<()> {
        let data = &self.pending[..n_bytes];
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(CHUNK).collect()
        };
        let count = chunks.len();
        let level = self.level;
        let dict = &self.dict;
        let outputs: Vec<io::Result<Vec<u8>>> = self.pool.install(|| {
            chunks
                .par_iter()
                .enumerate()
                .map(|(i, chunk)| {
                    let preset: &[u8] = if i == 0 {
                        dict
                    } else {
                        let prev = chunks[i - 1];
                        &prev[prev.len().saturating_sub(DICT)..]
                    };
                    deflate_chunk(chunk, preset, level, last && i + 1 == count)
                })
                .collect()
        });
        for out in outputs {
            self.out.write_all(&out?)?;
        }
        let keep_from = n_bytes.saturating_sub(DICT);
        let mut dict = std::mem::take(&mut self.dict);
        if n_bytes >= DICT {
            dict.clear();
        } else {
            let excess = (dict.len() + n_bytes).saturating_sub(DICT);
            dict.drain(..excess);
        }
        dict.extend_from_slice(&self.pending[keep_from..n_bytes]);
        self.dict = dict;
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
        // (and `Finish`ed) in `finish`.
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

/// The match-finder settings (good, lazy, nice, chain) for our levels 6 and
/// 7, on zlib-rs's lazy `deflate_slow` (its levels 7–9). zlib-rs's own level 6
/// is the weaker `deflate_medium`; with these settings level 6 is smaller
/// than `pigz -6` (C zlib) on a Python standard library at about its speed.
/// Other levels keep zlib-rs's table.
fn tuning(level: u32) -> Option<(usize, usize, usize, usize)> {
    match level {
        6 => Some((8, 32, 128, 384)),
        7 => Some((8, 32, 258, 1024)),
        _ => None,
    }
}

/// The zlib-rs level whose algorithm [`tuning`] adjusts.
fn engine_level(level: u32) -> i32 {
    match level {
        6 | 7 => 7,
        other => other as i32,
    }
}

fn zlib_error(what: &str, code: ReturnCode) -> io::Error {
    io::Error::other(format!("deflate {what} failed: {code:?}"))
}

/// A raw deflate stream on zlib-rs's internal API (pinned to one zlib-rs
/// version in Cargo.toml): the stable API has no `Z_BLOCK`, `deflatePrime`,
/// `deflatePending` or `deflateTune`, which the chunk ends and levels need.
struct RawDeflate {
    strm: z_stream,
}

impl RawDeflate {
    fn new(level: u32) -> io::Result<RawDeflate> {
        let mut strm = z_stream::default();
        let config = DeflateConfig {
            level: engine_level(level),
            window_bits: -15,
            ..DeflateConfig::default()
        };
        match deflate::init(&mut strm, config) {
            ReturnCode::Ok => {}
            code => return Err(zlib_error("init", code)),
        }
        let mut raw = RawDeflate { strm };
        if let Some((good, lazy, nice, chain)) = tuning(level) {
            deflate::tune(raw.stream(), good, lazy, nice, chain);
        }
        Ok(raw)
    }

    fn stream(&mut self) -> &mut DeflateStream<'static> {
        // SAFETY: `strm` was initialised by `deflate::init` (checked in
        // `new`) and is only ended in `Drop`.
        unsafe { DeflateStream::from_stream_mut(&mut self.strm) }
            .expect("deflate stream initialised in RawDeflate::new")
    }
}

impl Drop for RawDeflate {
    fn drop(&mut self) {
        let _ = deflate::end(self.stream());
    }
}

/// Raw-deflates one chunk with `dict` as preset dictionary. The last chunk
/// finishes the stream; any other ends the way pigz ends its chunks: the
/// block is closed (`Z_BLOCK`) and, to reach a byte boundary, followed by
/// empty static blocks (10 bits each) when the bits pending are even, or
/// by a sync flush (an empty stored block) when they are odd.
fn deflate_chunk(chunk: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut raw = RawDeflate::new(level)?;
    if !dict.is_empty() {
        match deflate::set_dictionary(raw.stream(), dict) {
            ReturnCode::Ok => {}
            code => return Err(zlib_error("set_dictionary", code)),
        }
    }
    // Room for the worst case: the bound, the chunk end's empty blocks and
    // the final block.
    let mut out = vec![0u8; deflate::bound(None, chunk.len()) + 64];
    let out_len = out.len();
    raw.strm.next_in = chunk.as_ptr().cast_mut();
    raw.strm.avail_in = chunk.len() as u32;
    raw.strm.next_out = out.as_mut_ptr();
    raw.strm.avail_out = out_len as u32;
    let run =
        |raw: &mut RawDeflate, flush: DeflateFlush| match deflate::deflate(raw.stream(), flush) {
            // BufError: nothing left to do; `done` below checks the result.
            ReturnCode::Ok | ReturnCode::StreamEnd | ReturnCode::BufError => Ok(()),
            code => Err(zlib_error("deflate", code)),
        };
    if last {
        run(&mut raw, DeflateFlush::Finish)?;
    } else {
        run(&mut raw, DeflateFlush::Block)?;
        let bits = raw.stream().pending().1;
        if bits & 1 == 1 {
            run(&mut raw, DeflateFlush::SyncFlush)?;
        } else if bits & 7 != 0 {
            // An empty static block: BFINAL 0, BTYPE 01, then end-of-block
            // (seven 0 bits): the value 2 in 10 bits.
            while raw.stream().pending().1 & 7 != 0 {
                match deflate::prime(raw.stream(), 10, 2) {
                    ReturnCode::Ok => {}
                    code => return Err(zlib_error("prime", code)),
                }
            }
            run(&mut raw, DeflateFlush::Block)?;
        }
    }
    let written = out_len - raw.strm.avail_out as usize;
    let done = raw.strm.avail_in == 0 && raw.stream().pending() == (0, 0);
    raw.strm.next_in = std::ptr::null_mut();
    raw.strm.next_out = std::ptr::null_mut();
    if !done {
        return Err(io::Error::other("deflate left input or output pending"));
    }
    out.truncate(written);
    Ok(out)
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

    #[test]
    fn output_does_not_depend_on_jobs_and_decodes() {
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            5 * CHUNK + 17,
            40 * CHUNK,
        ] {
            let data = sample(len);
            let one = gz(&data, 1, 6);
            for jobs in [2, 3, 8] {
                assert_eq!(one, gz(&data, jobs, 6), "len {len} jobs {jobs}");
            }
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len}");
        }
    }

    #[test]
    fn levels_zero_and_nine_decode() {
        let data = sample(3 * CHUNK + 5);
        for level in [0, 1, 9] {
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz(&data, 2, level)[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }
}
