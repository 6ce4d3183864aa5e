//! Format detection from the first bytes, and the gzip member header.
//!
//! Magic numbers: gzip `1f 8b` (RFC 1952 §2.3.1), SquashFS `hsqs` at offset 0
//! (squashfs-tools-ng `doc/format.adoc`, "The Superblock"), tar `ustar` at
//! offset 257 (POSIX `pax`, "ustar Interchange Format") or, for pre-POSIX
//! (v7) archives, a first header whose checksum is valid.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::gzip::header::{GzipInfo, gzip_header};
use super::read::ArchiveError;
use super::tar::TarInfo;
use super::tar::header::{info_from_block, looks_like_tar};

pub(crate) enum Detected {
    Tar(TarInfo),
    TarGz(GzipInfo, TarInfo),
    SquashFs,
}

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
