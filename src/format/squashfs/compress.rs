//! Block compressors and the compressor-options record.
//!
//! Format: SquashFS 4.0 description (squashfs-tools-ng `doc/format.adoc`),
//! §2.4 "Supported Compressors" and §3.1 "Compression Options". One
//! compressor id in the superblock covers data and metadata blocks. Each
//! block is compressed on its own, with no state carried between blocks,
//! so the bytes of a block depend only on its input and the settings, never
//! on which thread compressed it or what that thread did before.
//!
//! What each algorithm emits, as readers expect it:
//! - `gzip`: a zlib stream (RFC 1950 header + deflate + Adler-32), not gzip,
//!   made by libdeflate (vendored C, pinned by Cargo.lock). Whole-buffer
//!   compression suits independent blocks; at level 6 it is ~1.7 % smaller
//!   and ~1.4x faster than zlib-rs (the zlib-ng algorithms) on a Python
//!   stdlib, and smaller than classic zlib, so images are no larger than
//!   mksquashfs's. Its CPU-specific code (checksums, table setup) computes
//!   the same values on every CPU; `tests/cpu_features.rs` checks that.
//! - `xz`: a complete `.xz` stream with a CRC32 check (the kernel accepts no
//!   other check), LZMA2 with a dictionary of one block.
//! - `zstd`: one zstd frame.
//! - `lz4`: a raw LZ4 block (no frame), the "legacy" version 1 of the
//!   options record.
//! - `none`: every block stored uncompressed; the superblock names gzip and
//!   sets the "uncompressed" flags, as `mksquashfs -noI -noD -noF` does.

use std::fmt;

/// Compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// zlib streams (compressor id 1), made by libdeflate.
    Gzip,
    /// zstd frames (compressor id 6).
    Zstd,
    /// xz streams with a CRC32 check (compressor id 4).
    Xz,
    /// raw LZ4 blocks (compressor id 5).
    Lz4,
    /// Every block stored uncompressed; the superblock names gzip and sets
    /// the "uncompressed" flags.
    None,
}

impl Algorithm {
    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
            Algorithm::Xz => "xz",
            Algorithm::Lz4 => "lz4",
            Algorithm::None => "none",
        }
    }

    /// Compressor id in the superblock (§3 "The Superblock").
    pub(crate) fn id(self) -> u16 {
        match self {
            Algorithm::Gzip | Algorithm::None => 1,
            Algorithm::Xz => 4,
            Algorithm::Lz4 => 5,
            Algorithm::Zstd => 6,
        }
    }

    /// Default level, and the accepted range (None: no levels).
    fn levels(self) -> Option<(u32, u32, u32)> {
        match self {
            Algorithm::Gzip => Some((6, 1, 9)),
            // squashfs-tools and squashfs-tools-ng both default to 15.
            Algorithm::Zstd => Some((15, 1, 22)),
            Algorithm::Xz => Some((6, 0, 9)),
            Algorithm::Lz4 | Algorithm::None => None,
        }
    }
}

/// Algorithm plus level: what `--comp NAME[:LEVEL]` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    algorithm: Algorithm,
    level: u32,
}

impl Default for Compression {
    /// gzip level 6.
    fn default() -> Self {
        Compression {
            algorithm: Algorithm::Gzip,
            level: 6,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm.levels() {
            Some(_) => write!(f, "{}:{}", self.algorithm.name(), self.level),
            None => f.write_str(self.algorithm.name()),
        }
    }
}

impl Compression {
    /// `algorithm` at `level` (None: its default). Errors name the accepted
    /// range.
    pub fn new(algorithm: Algorithm, level: Option<u32>) -> Result<Compression, String> {
        match (algorithm.levels(), level) {
            (None, None) => Ok(Compression {
                algorithm,
                level: 0,
            }),
            (None, Some(l)) => Err(format!(
                "{} has no compression levels (got {l})",
                algorithm.name()
            )),
            (Some((default, _, _)), None) => Ok(Compression {
                algorithm,
                level: default,
            }),
            (Some((_, lo, hi)), Some(l)) if (lo..=hi).contains(&l) => Ok(Compression {
                algorithm,
                level: l,
            }),
            (Some((_, lo, hi)), Some(l)) => Err(format!(
                "{} level {l} is out of range {lo}-{hi}",
                algorithm.name()
            )),
        }
    }

    /// Parses `NAME[:LEVEL]`: gzip, zstd, xz, lz4 or none.
    ///
    /// ```
    /// use repropack::format::squashfs::Compression;
    /// assert_eq!(Compression::parse("zstd:3").unwrap().to_string(), "zstd:3");
    /// assert_eq!(Compression::parse("gzip").unwrap().level(), Some(6));
    /// assert!(Compression::parse("gzip:10").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Compression, String> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => {
                let level = l
                    .parse::<u32>()
                    .map_err(|_| format!("compression level {l:?} is not a number"))?;
                (n, Some(level))
            }
            None => (s, None),
        };
        let algorithm = match name {
            "gzip" | "zlib" => Algorithm::Gzip,
            "zstd" => Algorithm::Zstd,
            "xz" => Algorithm::Xz,
            "lz4" => Algorithm::Lz4,
            "none" => Algorithm::None,
            _ => {
                return Err(format!(
                    "unknown compressor {name:?} (gzip, zstd, xz, lz4, none)"
                ));
            }
        };
        Compression::new(algorithm, level)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The level, for algorithms that have one.
    pub fn level(&self) -> Option<u32> {
        self.algorithm.levels().map(|_| self.level)
    }

    /// The compressor-options payload (§3.1), if this configuration needs
    /// one: written only when it differs from what a reader assumes when the
    /// record is absent (gzip 9/15/default strategy, xz dictionary = block
    /// size and no filters, zstd 15), and always for lz4, where the record
    /// is mandatory.
    pub(crate) fn options_payload(&self) -> Option<Vec<u8>> {
        match self.algorithm {
            Algorithm::Gzip if self.level != 9 => {
                // u32 compression level, u16 window size, u16 strategies.
                let mut p = Vec::with_capacity(8);
                p.extend_from_slice(&self.level.to_le_bytes());
                p.extend_from_slice(&15u16.to_le_bytes());
                p.extend_from_slice(&0u16.to_le_bytes());
                Some(p)
            }
            Algorithm::Zstd if self.level != 15 => Some(self.level.to_le_bytes().to_vec()),
            Algorithm::Lz4 => {
                // u32 version (1 = legacy block format), u32 flags (no HC).
                let mut p = Vec::with_capacity(8);
                p.extend_from_slice(&1u32.to_le_bytes());
                p.extend_from_slice(&0u32.to_le_bytes());
                Some(p)
            }
            _ => None,
        }
    }

    /// Creates a compressor for blocks of at most `block_size` bytes.
    pub(crate) fn compressor(&self, block_size: u32) -> Result<Compressor, CompressError> {
        let state = match self.algorithm {
            Algorithm::Gzip => {
                // Level range 1-9 was checked in `new`, so the cast is exact.
                let level = libdeflater::CompressionLvl::new(self.level as i32)
                    .map_err(|e| CompressError(format!("gzip level {}: {e:?}", self.level)))?;
                State::Zlib(Box::new(libdeflater::Compressor::new(level)))
            }
            Algorithm::Zstd => {
                // Level range was checked in `new`, so the cast is exact.
                let c = zstd::bulk::Compressor::new(self.level as i32)
                    .map_err(|e| CompressError(format!("zstd: {e}")))?;
                State::Zstd(Box::new(c))
            }
            Algorithm::Xz => {
                let mut opts = liblzma::stream::LzmaOptions::new_preset(self.level)
                    .map_err(|e| CompressError(format!("xz preset {}: {e}", self.level)))?;
                opts.dict_size(block_size);
                State::Xz(Box::new(opts))
            }
            Algorithm::Lz4 => State::Lz4,
            Algorithm::None => State::None,
        };
        Ok(Compressor {
            state,
            scratch: Vec::new(),
        })
    }
}

/// A compressor failed (only on resource exhaustion or a library bug).
#[derive(Debug, Clone, thiserror::Error)]
#[error("compressor: {0}")]
pub struct CompressError(String);

enum State {
    Zlib(Box<libdeflater::Compressor>),
    Zstd(Box<zstd::bulk::Compressor<'static>>),
    Xz(Box<liblzma::stream::LzmaOptions>),
    Lz4,
    None,
}

/// Compresses single blocks; one per worker thread. Reusing it never
/// changes the output: every call starts from a reset state.
pub(crate) struct Compressor {
    state: State,
    scratch: Vec<u8>,
}

impl Compressor {
    /// Compresses `input` into `out` (cleared first). Returns `true` if
    /// `out` holds a compressed block strictly smaller than `input`, `false`
    /// if the block must be stored uncompressed (then `out` is unspecified).
    pub(crate) fn compress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, CompressError> {
        out.clear();
        if input.is_empty() {
            return Ok(false);
        }
        // Output larger than input - 1 is useless: stop there.
        let limit = input.len() - 1;
        match &mut self.state {
            State::None => Ok(false),
            State::Zlib(c) => {
                // libdeflate compresses a whole buffer in one call and
                // reports "no room" when the result would not fit in
                // `limit` bytes: exactly the store-uncompressed case.
                out.resize(limit, 0);
                match c.zlib_compress(input, out) {
                    Ok(n) => {
                        out.truncate(n);
                        Ok(true)
                    }
                    Err(libdeflater::CompressionError::InsufficientSpace) => Ok(false),
                }
            }
            State::Zstd(c) => {
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                let n = c
                    .compress_to_buffer(input, out)
                    .map_err(|e| CompressError(format!("zstd: {e}")))?;
                Ok(n <= limit)
            }
            State::Xz(opts) => {
                let mut filters = liblzma::stream::Filters::new();
                filters.lzma2(opts);
                let mut s = liblzma::stream::Stream::new_stream_encoder(
                    &filters,
                    liblzma::stream::Check::Crc32,
                )
                .map_err(|e| CompressError(format!("xz: {e}")))?;
                out.reserve(limit);
                let status = s
                    .process_vec(input, out, liblzma::stream::Action::Finish)
                    .map_err(|e| CompressError(format!("xz: {e}")))?;
                Ok(status == liblzma::stream::Status::StreamEnd && out.len() <= limit)
            }
            State::Lz4 => {
                let scratch = &mut self.scratch;
                scratch.resize(lz4_flex::block::get_maximum_output_size(input.len()), 0);
                let n = lz4_flex::block::compress_into(input, scratch)
                    .map_err(|e| CompressError(format!("lz4: {e}")))?;
                if n > limit {
                    return Ok(false);
                }
                out.extend_from_slice(&scratch[..n]);
                Ok(true)
            }
        }
    }
}

/// Name of a superblock compressor id (§2.4).
pub(crate) fn compressor_name(id: u16) -> &'static str {
    match id {
        1 => "gzip",
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        _ => "unknown",
    }
}

/// Memory the xz decoder may use. A SquashFS xz stream's dictionary is at
/// most one block (1 MiB); a stream that asks for more is refused rather
/// than given the memory.
const XZ_MEMORY_LIMIT: u64 = 16 << 20;

/// Decompresses single blocks (§2.4), the counterpart of [`Compressor`]: one
/// per thread, each call independent of the previous ones, and never more
/// output than the caller allows (a block that would decompress to more is
/// malformed, so a bomb costs at most the limit).
pub(crate) struct Decompressor {
    state: Decoder,
}

enum Decoder {
    Zlib(Box<libdeflater::Decompressor>),
    Zstd(Box<zstd::bulk::Decompressor<'static>>),
    Xz,
    Lz4,
}

impl Decompressor {
    /// A decompressor for superblock compressor id `id`; lzma and lzo images
    /// are refused by name.
    pub(crate) fn for_id(id: u16) -> Result<Decompressor, String> {
        let state = match id {
            1 => Decoder::Zlib(Box::new(libdeflater::Decompressor::new())),
            4 => Decoder::Xz,
            5 => Decoder::Lz4,
            6 => Decoder::Zstd(Box::new(
                zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?,
            )),
            2 | 3 => {
                return Err(format!(
                    "unsupported compressor {} (gzip, xz, lz4 and zstd are read)",
                    compressor_name(id)
                ));
            }
            _ => return Err(format!("unknown compressor id {id}")),
        };
        Ok(Decompressor { state })
    }

    /// Decompresses `input` into `out` (replacing its contents): at most
    /// `limit` bytes, or an error saying why not.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match &mut self.state {
            Decoder::Zlib(d) => {
                // Bytes already in `out` (a recycled buffer) are overwritten,
                // so only new room is zeroed.
                out.truncate(limit);
                out.resize(limit, 0);
                match d.zlib_decompress(input, out) {
                    Ok(n) => out.truncate(n),
                    Err(libdeflater::DecompressionError::InsufficientSpace) => {
                        return Err(format!(
                            "gzip block decompresses to more than {limit} bytes"
                        ));
                    }
                    Err(libdeflater::DecompressionError::BadData) => {
                        return Err("gzip block is not a valid zlib stream".to_string());
                    }
                }
            }
            Decoder::Zstd(d) => {
                out.clear();
                out.reserve_exact(limit);
                d.decompress_to_buffer(input, out)
                    .map_err(|e| format!("zstd block: {e}"))?;
                if out.len() > limit {
                    return Err(format!(
                        "zstd block decompresses to more than {limit} bytes"
                    ));
                }
            }
            Decoder::Xz => {
                let mut s = liblzma::stream::Stream::new_stream_decoder(XZ_MEMORY_LIMIT, 0)
                    .map_err(|e| format!("xz: {e}"))?;
                // One spare byte tells a block that is too large from one
                // that fills the limit exactly. With the whole input and
                // room for limit + 1 bytes, one call either ends the
                // stream, fills the room, or runs out of input.
                out.clear();
                out.reserve_exact(limit + 1);
                let status = s
                    .process_vec(input, out, liblzma::stream::Action::Finish)
                    .map_err(|e| format!("xz block: {e}"))?;
                if out.len() > limit {
                    return Err(format!("xz block decompresses to more than {limit} bytes"));
                }
                if status != liblzma::stream::Status::StreamEnd {
                    return Err("xz block ends before its stream does".to_string());
                }
            }
            Decoder::Lz4 => {
                out.truncate(limit);
                out.resize(limit, 0);
                let n = lz4_flex::block::decompress_into(input, out)
                    .map_err(|e| format!("lz4 block: {e}"))?;
                out.truncate(n);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"squashfs block "[i % 15]).collect()
    }

    #[test]
    fn gzip_blocks_are_zlib_streams_and_shrink() {
        let c = Compression::default();
        let mut comp = c.compressor(131072).unwrap();
        let input = sample(100_000);
        let mut out = Vec::new();
        assert!(comp.compress(&input, &mut out).unwrap());
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn incompressible_block_is_reported_as_such() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let input: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for name in ["gzip", "zstd", "xz", "lz4", "none"] {
            let c = Compression::parse(name).unwrap();
            let mut comp = c.compressor(131072).unwrap();
            let mut out = Vec::new();
            assert!(!comp.compress(&input, &mut out).unwrap(), "{name}");
        }
    }

    #[test]
    fn reused_compressor_gives_same_bytes_as_fresh() {
        for name in ["gzip:6", "zstd:15", "xz:6", "lz4"] {
            let c = Compression::parse(name).unwrap();
            let a = sample(70_000);
            let b = sample(5_000);
            let mut fresh = Vec::new();
            c.compressor(131072)
                .unwrap()
                .compress(&b, &mut fresh)
                .unwrap();
            let mut reused = c.compressor(131072).unwrap();
            let mut out = Vec::new();
            reused.compress(&a, &mut out).unwrap();
            reused.compress(&b, &mut out).unwrap();
            assert_eq!(out, fresh, "{name}");
        }
    }

    #[test]
    fn every_compressor_round_trips_and_bombs_stop_at_the_limit() {
        for name in ["gzip:6", "zstd:15", "xz:6", "lz4"] {
            let c = Compression::parse(name).unwrap();
            let input = sample(100_000);
            let mut packed = Vec::new();
            assert!(
                c.compressor(131072)
                    .unwrap()
                    .compress(&input, &mut packed)
                    .unwrap()
            );
            let mut d = Decompressor::for_id(c.algorithm().id()).unwrap();
            let mut out = Vec::new();
            d.decompress(&packed, 131072, &mut out).unwrap();
            assert_eq!(out, input, "{name}");
            let err = d.decompress(&packed, 99_999, &mut out).unwrap_err();
            assert!(
                err.contains("more than 99999") || err.contains("lz4"),
                "{name}: {err}"
            );
        }
        assert!(
            Decompressor::for_id(3)
                .err()
                .unwrap()
                .contains("unsupported compressor lzo")
        );
    }

    #[test]
    fn levels_are_checked() {
        assert!(Compression::parse("gzip:0").is_err());
        assert!(Compression::parse("zstd:23").is_err());
        assert!(Compression::parse("lz4:1").is_err());
        assert!(Compression::parse("brotli").is_err());
        assert_eq!(Compression::parse("xz:0").unwrap().level(), Some(0));
    }
}
