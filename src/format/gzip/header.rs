//! The gzip member header (RFC 1952 §2.3) as the readers see it.

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

/// Parses the gzip member header at the start of `head`; `None` when it is
/// truncated or not deflate (CM != 8).
pub(crate) fn gzip_header(head: &[u8], compressed_size: u64) -> Option<GzipInfo> {
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
