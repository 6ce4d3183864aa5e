//! Archives built byte by byte, so tests can store what no well-behaved
//! writer would.

/// A tar stream built header by header from raw bytes, so tests can store
/// what no well-behaved writer would (`../x`, `/etc/passwd`, links out).
/// Layout: POSIX ustar headers (name ≤ 100 bytes, octal fields, checksum
/// over the header with the checksum field as spaces).
#[derive(Default)]
pub struct RawTar {
    buf: Vec<u8>,
}

pub const T_FILE: u8 = b'0';
pub const T_HARD: u8 = b'1';
pub const T_SYM: u8 = b'2';
pub const T_CHAR: u8 = b'3';
pub const T_BLOCK: u8 = b'4';
pub const T_DIR: u8 = b'5';
pub const T_FIFO: u8 = b'6';

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    assert!(
        s.len() <= digits,
        "{value} does not fit {digits} octal digits"
    );
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// One raw ustar header block.
pub fn raw_header(name: &[u8], typeflag: u8, mode: u32, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_600_000_000);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    set_checksum(&mut h);
    h
}

pub fn set_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    pub fn raw(&mut self, header: [u8; 512], data: &[u8]) -> &mut RawTar {
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn entry(
        &mut self,
        name: &[u8],
        typeflag: u8,
        mode: u32,
        data: &[u8],
        link: &[u8],
    ) -> &mut RawTar {
        let h = raw_header(name, typeflag, mode, data.len() as u64, link);
        self.raw(h, data)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_FILE, 0o644, data, b"")
    }

    pub fn file_mode(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_FILE, mode, data, b"")
    }

    pub fn dir(&mut self, name: &str) -> &mut RawTar {
        self.entry(name.as_bytes(), T_DIR, 0o755, b"", b"")
    }

    pub fn symlink(&mut self, name: &str, target: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_SYM, 0o777, b"", target)
    }

    pub fn hardlink(&mut self, name: &str, target: &[u8]) -> &mut RawTar {
        self.entry(name.as_bytes(), T_HARD, 0o644, b"", target)
    }

    /// A pax extended header (`x`) for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut RawTar {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3;
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
        let h = raw_header(b"././@PaxHeader", b'x', 0o644, body.len() as u64, b"");
        self.raw(h, &body)
    }

    /// The stream with its two zero end blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// gzip of `data` (one member, level 1).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Replaces the single occurrence of `marker` in `image` with `with`
/// (same length). Used on SquashFS images made with `-noI` so that the
/// directory table holds names uncompressed.
pub fn patch_unique(image: &mut [u8], marker: &[u8], with: &[u8]) {
    assert_eq!(marker.len(), with.len());
    let hits: Vec<usize> = (0..=image.len() - marker.len())
        .filter(|&i| &image[i..i + marker.len()] == marker)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "marker {:?} found {} times",
        String::from_utf8_lossy(marker),
        hits.len()
    );
    image[hits[0]..hits[0] + marker.len()].copy_from_slice(with);
}

/// An old GNU sparse header (typeflag `S`, magic `ustar  \0`; GNU tar's
/// `tar.h`, `struct oldgnu_header`): up to 4 (offset, numbytes) pairs at
/// 386, `isextended` at 482, `realsize` at 483; `stored` is the size field
/// (the data regions only).
pub fn gnu_sparse_header(
    name: &[u8],
    map: &[(u64, u64)],
    realsize: u64,
    stored: u64,
    isextended: bool,
) -> [u8; 512] {
    assert!(map.len() <= 4);
    let mut h = raw_header(name, b'S', 0o644, stored, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    for (i, &(offset, numbytes)) in map.iter().enumerate() {
        let at = 386 + 24 * i;
        octal(&mut h[at..at + 12], offset);
        octal(&mut h[at + 12..at + 24], numbytes);
    }
    h[482] = u8::from(isextended);
    octal(&mut h[483..495], realsize);
    set_checksum(&mut h);
    h
}

/// An old GNU sparse extension block: up to 21 pairs, `isextended` at 504.
pub fn gnu_sparse_extension(map: &[(u64, u64)], isextended: bool) -> [u8; 512] {
    assert!(map.len() <= 21);
    let mut h = [0u8; 512];
    for (i, &(offset, numbytes)) in map.iter().enumerate() {
        let at = 24 * i;
        octal(&mut h[at..at + 12], offset);
        octal(&mut h[at + 12..at + 24], numbytes);
    }
    h[504] = u8::from(isextended);
    h
}

/// The data area of a pax sparse 1.0 member (GNU tar manual, "Sparse
/// Formats"): the map as decimal lines (count, then offset and numbytes of
/// each region) padded with zeros to 512 bytes, then `data`.
pub fn sparse_v1_data(map: &[(u64, u64)], data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", map.len()).into_bytes();
    for (offset, numbytes) in map {
        out.extend_from_slice(format!("{offset}\n{numbytes}\n").as_bytes());
    }
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(data);
    out
}
