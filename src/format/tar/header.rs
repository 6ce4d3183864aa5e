//! The tar header block and pax records, both ways: what a 512-byte header
//! holds, its checksum, and the pax `"<len> <key>=<value>\n"` records
//! (POSIX.1-2001 `pax` utility, "ustar Interchange Format" and "pax
//! Interchange Format"). The reader and the writer share this file; neither
//! knows these layouts on its own.

use std::ops::Range;

use tar::Header;

/// Size of a header block and the unit content is padded to.
pub(crate) const BLOCK: u64 = 512;

/// Which header flavour the first header of a tar stream has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFlavor {
    /// POSIX ustar (`ustar\0` + version `00`), as repropack and pax write.
    Ustar,
    /// GNU (`ustar  \0`), as GNU tar writes by default.
    Gnu,
    /// Pre-POSIX (v7), no magic.
    Old,
}

/// Facts from the first header of a tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarInfo {
    /// The first header's flavour, from its magic and version (offset 257);
    /// [`HeaderFlavor::Ustar`] for an empty archive.
    pub first_header: HeaderFlavor,
    /// The first header's typeflag byte (`x` when it starts with a pax
    /// header, `g` for a global header, `5` for a directory, …); 0 for an
    /// empty archive.
    pub first_typeflag: u8,
}

pub(crate) fn info_from_block(block: &[u8]) -> TarInfo {
    if block.len() < 512 || block.iter().all(|&b| b == 0) {
        return TarInfo {
            first_header: HeaderFlavor::Ustar,
            first_typeflag: 0,
        };
    }
    let first_header = match &block[257..265] {
        b"ustar\x0000" => HeaderFlavor::Ustar,
        b"ustar  \x00" => HeaderFlavor::Gnu,
        m if m.starts_with(b"ustar") => HeaderFlavor::Ustar,
        _ => HeaderFlavor::Old,
    };
    TarInfo {
        first_header,
        first_typeflag: typeflag(block),
    }
}

/// The ustar `uid` field.
pub(crate) const UID: Range<usize> = 108..116;
/// The ustar `gid` field.
pub(crate) const GID: Range<usize> = 116..124;
/// The ustar `mtime` field.
pub(crate) const MTIME: Range<usize> = 136..148;

/// True when a numeric `field` of `block` is all NUL bytes and spaces: a
/// writer that never set it (the `tar` crate leaves uid and gid so). Readers
/// take such a field as 0, as GNU tar does.
pub(crate) fn is_blank(block: &[u8], field: Range<usize>) -> bool {
    block[field].iter().all(|&b| b == 0 || b == b' ')
}

/// The typeflag byte of a header block (`0` file, `5` directory, `x` pax
/// header, …).
pub(crate) fn typeflag(block: &[u8]) -> u8 {
    block[156]
}

/// Zero bytes after `size` bytes of content, up to the next block.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// The pax records a reader applies to the next entry (others are ignored).
#[derive(Default)]
pub(crate) struct PaxFields {
    pub(crate) path: Option<Vec<u8>>,
    pub(crate) linkpath: Option<Vec<u8>>,
    pub(crate) size: Option<u64>,
    pub(crate) uid: Option<u64>,
    pub(crate) gid: Option<u64>,
    pub(crate) mtime: Option<i64>,
}

/// Parses pax records `"<len> <key>=<value>\n"` (POSIX pax, "pax Extended
/// Header"). An empty value cancels the field.
pub(crate) fn parse_pax(data: &[u8]) -> Result<PaxFields, String> {
    let mut out = PaxFields::default();
    for record in tar::PaxExtensions::new(data) {
        let record = record.map_err(|e| format!("pax record: {e}"))?;
        let key = record.key_bytes();
        let value = record.value_bytes();
        let number = |what: &str| -> Result<Option<u64>, String> {
            if value.is_empty() {
                return Ok(None);
            }
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "pax {what} {:?} is not a number",
                        String::from_utf8_lossy(value)
                    )
                })
        };
        match key {
            b"path" => out.path = (!value.is_empty()).then(|| value.to_vec()),
            b"linkpath" => out.linkpath = (!value.is_empty()).then(|| value.to_vec()),
            b"size" => out.size = number("size")?,
            b"uid" => out.uid = number("uid")?,
            b"gid" => out.gid = number("gid")?,
            b"mtime" => {
                if value.is_empty() {
                    out.mtime = None;
                    continue;
                }
                let text =
                    std::str::from_utf8(value).map_err(|_| "pax mtime is not text".to_string())?;
                let whole = text.split('.').next().unwrap_or("");
                let parsed = match whole {
                    "" | "-" => Some(0),
                    w => w.parse::<i64>().ok(),
                };
                out.mtime =
                    Some(parsed.ok_or_else(|| format!("pax mtime {text:?} is not a number"))?);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// ustar `chksum`: the sum of all header bytes with the field itself read as
/// spaces, written as six octal digits, NUL, space (as GNU tar writes it).
pub(crate) fn set_checksum(h: &mut Header) {
    let bytes = h.as_mut_bytes();
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    bytes[148..156].copy_from_slice(field.as_bytes());
}

/// Encodes pax records `"<len> <key>=<value>\n"`, where `<len>` counts the
/// whole record including its own digits.
pub(crate) fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(key.as_bytes());
        body.push(b'=');
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    body
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_mtime_keeps_whole_seconds_and_sign() {
        let f = parse_pax(b"30 mtime=1700000000.123456789\n").unwrap();
        assert_eq!(f.mtime, Some(1_700_000_000));
        let f = parse_pax(b"15 mtime=-12.5\n").unwrap();
        assert_eq!(f.mtime, Some(-12));
    }

    #[test]
    fn pax_size_must_be_a_number() {
        assert!(parse_pax(b"13 size=12x4\n").is_err());
        assert_eq!(
            parse_pax(b"16 size=1234567\n").unwrap().size,
            Some(1_234_567)
        );
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let body = pax_records(&[("path", vec![b'a'; 94])]);
        // 3 digits + ' ' + "path" + '=' + 94 + '\n' = 104
        assert!(body.starts_with(b"104 path="));
        assert_eq!(body.len(), 104);
        let body = pax_records(&[("path", vec![b'a'; 1])]);
        assert_eq!(body, b"9 path=a\n");
    }
}
