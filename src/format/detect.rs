//! Format detection from the first bytes, and the gzip member header.
//!
//! Magic numbers: gzip `1f 8b` (RFC 1952 §2.3.1), SquashFS `hsqs` at offset 0
//! (squashfs-tools-ng `doc/format.adoc`, "The Superblock"), tar `ustar` at
//! offset 257 (POSIX `pax`, "ustar Interchange Format") or, for pre-POSIX
//! (v7) archives, a first header whose checksum is valid.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::MultiGzDecoder;

use super::gzip::header::{GzipInfo, gzip_header};
use super::squashfs::superblock::MAGIC as SQUASHFS_MAGIC;
use super::tar::TarInfo;
use super::tar::header::{BLOCK, info_from_block, looks_like_tar};

pub(crate) enum Detected {
    Tar(TarInfo),
    TarGz(GzipInfo, TarInfo),
    SquashFs,
}

/// Why a file's format could not be decided; the caller names the file.
pub(crate) enum Undetected {
    /// Reading the first bytes failed.
    Io(io::Error),
    /// Not a format repropack reads; says what it looks like instead.
    Unknown(String),
    /// A gzip stream whose first bytes do not decompress.
    Gzip(String),
}

/// Decides the format of `file` from its first bytes and leaves it at
/// offset 0.
pub(crate) fn detect(file: &mut File) -> Result<Detected, Undetected> {
    let io_err = Undetected::Io;
    let mut head = Vec::with_capacity(BLOCK as usize);
    file.by_ref()
        .take(BLOCK)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let unknown = Undetected::Unknown;

    if head.starts_with(&[0x1f, 0x8b]) {
        let info = gzip_header(&head, len)
            .ok_or_else(|| unknown("gzip header truncated or not deflate (CM != 8)".to_string()))?;
        let mut inner = Vec::with_capacity(BLOCK as usize);
        MultiGzDecoder::new(&mut *file)
            .take(BLOCK)
            .read_to_end(&mut inner)
            .map_err(|e| Undetected::Gzip(e.to_string()))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        return if looks_like_tar(&inner) {
            Ok(Detected::TarGz(info, info_from_block(&inner)))
        } else {
            Err(unknown("gzip data that is not a tar archive".to_string()))
        };
    }
    if head.starts_with(&SQUASHFS_MAGIC.to_le_bytes()) {
        return Ok(Detected::SquashFs);
    }
    if head.starts_with(&SQUASHFS_MAGIC.to_be_bytes()) {
        return Err(unknown("big-endian SquashFS is not supported".to_string()));
    }
    if head.len() == BLOCK as usize
        && (looks_like_tar(&head) || head.iter().all(|&b| b == 0) && len >= 2 * BLOCK)
    {
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
