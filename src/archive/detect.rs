//! Format detection from the first bytes, and the gzip member header.
//!
//! Magic numbers: gzip `1f 8b` (RFC 1952 §2.3.1), SquashFS `hsqs` at offset 0
//! (squashfs-tools-ng `docs/format.adoc`, "The Superblock"), tar `ustar` at
//! offset 257 (POSIX `pax`, "ustar Interchange Format") or, for pre-POSIX
//! (v7) archives, a first header whose checksum is valid.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::ArchiveError;
use super::tar::{TarInfo, info_from_block};

pub(crate) enum Detected {
    Tar(TarInfo),
    TarGz(GzipInfo, TarInfo),
    SquashFs,
}

/// Fields of the first gzip member header (RFC 1952 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipInfo {
    /// MTIME (0 when not set, as repropack writes it).
    pub mtime: u32,
    /// FLG bits.
    pub flags: u8,
    /// XFL (extra flags: 2 = best compression, 4 = fastest).
    pub xfl: u8,
    /// OS (255 = unknown).
    pub os: u8,
    /// FNAME, without the terminating zero (`None` also when it does not
    /// end within the first 512 bytes).
    pub name: Option<Vec<u8>>,
    /// FCOMMENT, without the terminating zero.
    pub comment: Option<Vec<u8>>,
    /// Size of the compressed file in bytes.
    pub compressed_size: u64,
}

const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;

pub(crate) fn detect(path: &Path, file: &mut File) -> Result<Detected, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(512);
    file.by_ref()
        .take(512)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let unknown = |what: String| ArchiveError::UnknownFormat {
        path: path.to_path_buf(),
        what,
    };

    if head.starts_with(&[0x1f, 0x8b]) {
        let info = gzip_header(&head, len)
            .ok_or_else(|| unknown("gzip header truncated or not deflate (CM != 8)".to_string()))?;
        let mut inner = Vec::with_capacity(512);
        MultiGzDecoder::new(&mut *file)
            .take(512)
            .read_to_end(&mut inner)
            .map_err(|e| ArchiveError::Malformed {
                path: path.to_path_buf(),
                format: "gzip",
                location: "start of stream".to_string(),
                reason: e.to_string(),
            })?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        return if looks_like_tar(&inner) {
            Ok(Detected::TarGz(info, info_from_block(&inner)))
        } else {
            Err(unknown("gzip data that is not a tar archive".to_string()))
        };
    }
    if head.starts_with(b"hsqs") {
        return Ok(Detected::SquashFs);
    }
    if head.starts_with(b"sqsh") {
        return Err(unknown("big-endian SquashFS is not supported".to_string()));
    }
    if head.len() == 512 && (looks_like_tar(&head) || head.iter().all(|&b| b == 0) && len >= 1024) {
        return Ok(Detected::Tar(info_from_block(&head)));
    }
    let what = if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz-compressed data (decompress it first)".to_string()
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd-compressed data (decompress it first)".to_string()
    } else if head.starts_with(b"BZh") {
        "bzip2-compressed data (decompress it first)".to_string()
    } else if head.is_empty() {
        "empty file".to_string()
    } else {
        let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("unrecognized first bytes {}", shown.join(" "))
    };
    Err(unknown(what))
}

/// A 512-byte block that is a ustar/GNU header, or an old-style header whose
/// checksum is right (all-zero blocks are not).
pub(crate) fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|&b| b == 0) {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    checksum_ok(&block[..512])
}

/// The header checksum (POSIX ustar: the sum of all header bytes with the
/// checksum field taken as spaces); some old writers summed signed chars, so
/// both sums are accepted, as GNU tar does.
pub(crate) fn checksum_ok(block: &[u8]) -> bool {
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| (b'0'..=b'7').contains(&b))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Ok(stored) = u32::from_str_radix(std::str::from_utf8(&digits).unwrap_or("x"), 8) else {
        return false;
    };
    let mut unsigned: u32 = 0;
    let mut signed: i32 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    stored == unsigned || i64::from(stored) == i64::from(signed)
}

fn gzip_header(head: &[u8], compressed_size: u64) -> Option<GzipInfo> {
    if head.len() < 10 || head[2] != 8 {
        return None;
    }
    let flags = head[3];
    let mtime = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = usize::from(u16::from_le_bytes([*head.get(10)?, *head.get(11)?]));
        pos += 2 + xlen;
    }
    let mut zero_terminated = |set: bool| -> Option<Option<Vec<u8>>> {
        if !set {
            return Some(None);
        }
        let rest = head.get(pos..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        pos += end + 1;
        Some(Some(rest[..end].to_vec()))
    };
    let name = zero_terminated(flags & FNAME != 0).unwrap_or(None);
    let comment = zero_terminated(flags & FCOMMENT != 0).unwrap_or(None);
    Some(GzipInfo {
        mtime,
        flags,
        xfl: head[8],
        os: head[9],
        name,
        comment,
        compressed_size,
    })
}
