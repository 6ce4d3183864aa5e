//! Parallel gzip whose bytes do not depend on the number of threads.
//!
//! The stream is one standard gzip member (RFC 1952): header with MTIME 0, no
//! file name, XFL from the level, OS byte 255 ("unknown", so the host never
//! shows), then a raw deflate stream, then CRC-32 and ISIZE.
//!
//! The deflate stream is built the way pigz builds it: the input is cut into
//! fixed 128 KiB chunks; each chunk is compressed independently with the 32 KiB
//! that precede it as preset dictionary, and every chunk but the last ends with
//! a sync flush (an empty stored block, so it ends on a byte boundary). The
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

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

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

/// Raw-deflates one chunk with `dict` as preset dictionary; ends with a sync
/// flush, or with the final block if `last`.
fn deflate_chunk(chunk: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&chunk[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == chunk.len();
        match status {
            Status::StreamEnd => break,
            _ if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
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
