//! The tar header block and pax records, both ways: what a 512-byte header
//! holds, its checksum, and the pax `"<len> <key>=<value>\n"` records
//! (POSIX.1-2001 `pax` utility, "ustar Interchange Format" and "pax
//! Interchange Format"). The reader and the writer share this file; neither
//! knows these layouts on its own.

use std::ops::Range;

use base64::Engine as _;
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

impl HeaderFlavor {
    /// The name shown in `diff` and `--json`: `ustar`, `gnu` or `v7`.
    pub fn name(self) -> &'static str {
        match self {
            HeaderFlavor::Ustar => "ustar",
            HeaderFlavor::Gnu => "gnu",
            HeaderFlavor::Old => "v7",
        }
    }
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

/// The ustar `mode` field.
pub(crate) const MODE: Range<usize> = 100..108;
/// The ustar `size` field: the bytes stored after the header (for a sparse
/// member, the data regions only, not its real size).
pub(crate) const SIZE: Range<usize> = 124..136;
/// The ustar `devmajor` field.
pub(crate) const DEVMAJOR: Range<usize> = 329..337;
/// The ustar `devminor` field.
pub(crate) const DEVMINOR: Range<usize> = 337..345;

/// True when the header has a ustar or GNU magic, so that the fields after
/// the link name (owner names, device numbers, …) exist.
pub(crate) fn has_magic(block: &[u8]) -> bool {
    block[257..262] == *b"ustar"
}

/// A numeric header field as GNU tar reads it (`from_header` in GNU tar's
/// `list.c`): leading blanks skipped; then octal digits ended by the end of
/// the field, a NUL or a space (so a field may be all digits: 12 for the
/// 12-byte fields, 8 GiB and beyond); or base-256, GNU tar's binary form,
/// whose first byte has the high bit set: the remaining bits are a
/// big-endian two's complement number (`0x80 …` non-negative, `0xff …`
/// negative, e.g. an mtime before 1970). A field of NULs and spaces is 0.
/// The obsolete base-64 form (`+`/`-`) is refused by name.
pub(crate) fn number(field: &[u8]) -> Result<i128, String> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        // A field of n bytes holds an (8n - 1)-bit two's complement number.
        let bits = 8 * field.len() as u32 - 1;
        if bits > 120 {
            return Err("base-256 number too long".to_string());
        }
        let mut value: i128 = i128::from(first & 0x7f);
        for &b in &field[1..] {
            value = (value << 8) | i128::from(b);
        }
        if first & 0x40 != 0 {
            value -= 1i128 << bits;
        }
        return Ok(value);
    }
    let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
    let rest = &field[start..];
    let digits = rest
        .iter()
        .position(|b| !(b'0'..=b'7').contains(b))
        .unwrap_or(rest.len());
    let terminated = match rest.get(digits) {
        None | Some(0) => true,
        Some(b) => b.is_ascii_whitespace(),
    };
    if !terminated {
        let what = if digits == 0 && matches!(rest[0], b'+' | b'-') {
            "an obsolete base-64 number, not supported"
        } else {
            "not an octal number"
        };
        return Err(format!(
            "{:?} is {what}",
            String::from_utf8_lossy(field).trim_end_matches('\0')
        ));
    }
    // At most 12 octal digits (36 bits): no overflow in an i128.
    Ok(rest[..digits]
        .iter()
        .fold(0i128, |v, &d| (v << 3) | i128::from(d - b'0')))
}

/// [`number`] of `block[field]` for a field that cannot be negative.
pub(crate) fn unsigned(block: &[u8], field: Range<usize>) -> Result<u64, String> {
    let v = number(&block[field])?;
    u64::try_from(v).map_err(|_| format!("{v} is out of range"))
}

/// [`number`] of `block[field]` for a signed field (the mtime).
pub(crate) fn signed(block: &[u8], field: Range<usize>) -> Result<i64, String> {
    let v = number(&block[field])?;
    i64::try_from(v).map_err(|_| format!("{v} is out of range"))
}

/// One region of a sparse file: `numbytes` bytes of data at `offset` of the
/// real file; everything between regions is a hole (zero bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SparseRegion {
    pub(crate) offset: u64,
    pub(crate) numbytes: u64,
}

// The old GNU sparse header (GNU tar's `tar.h`, `struct oldgnu_header` and
// `struct sparse_header`; GNU tar manual, "Sparse Formats", "Old GNU
// Format"): typeflag `S`; the header holds 4 (offset, numbytes) pairs of 12
// octal/base-256 bytes each at 386, `isextended` at 482 and `realsize` at
// 483; when `isextended` is set, 512-byte extension blocks follow the header
// (before the data), each with 21 pairs and its own `isextended` at 504. A
// pair whose numbytes starts with NUL ends the map.
const OLDGNU_SPARSE_AT: usize = 386;
const OLDGNU_SPARSES: usize = 4;
const OLDGNU_ISEXTENDED: usize = 482;
const OLDGNU_REALSIZE: Range<usize> = 483..495;
const EXT_SPARSES: usize = 21;
const EXT_ISEXTENDED: usize = 504;

/// The sparse pairs of an old GNU header or extension block, up to the
/// first empty one, and whether more follow in the map (`Some(true)`: the
/// block was full; `None`: an empty pair ended the map here).
fn sparse_pairs(
    block: &[u8],
    at: usize,
    count: usize,
    out: &mut Vec<SparseRegion>,
) -> Result<bool, String> {
    for i in 0..count {
        let pair = at + 24 * i;
        let (offset, numbytes) = (pair..pair + 12, pair + 12..pair + 24);
        if block[numbytes.start] == 0 {
            // GNU tar stops at the first pair whose numbytes is empty; the
            // pairs after it must be empty too, or the map is ambiguous.
            if block[pair..at + 24 * count].iter().any(|&b| b != 0) {
                return Err(format!("sparse map entry {} after its end", out.len()));
            }
            return Ok(false);
        }
        let offset = unsigned(block, offset).map_err(|e| format!("sparse offset: {e}"))?;
        let numbytes = unsigned(block, numbytes).map_err(|e| format!("sparse numbytes: {e}"))?;
        out.push(SparseRegion { offset, numbytes });
    }
    Ok(true)
}

/// The map, `isextended` and `realsize` of an old GNU sparse header.
pub(crate) fn oldgnu_sparse(
    block: &[u8],
    out: &mut Vec<SparseRegion>,
) -> Result<(bool, u64), String> {
    let full = sparse_pairs(block, OLDGNU_SPARSE_AT, OLDGNU_SPARSES, out)?;
    let extended = block[OLDGNU_ISEXTENDED] != 0;
    if extended && !full {
        return Err("isextended set after the end of the sparse map".to_string());
    }
    let realsize = unsigned(block, OLDGNU_REALSIZE).map_err(|e| format!("realsize: {e}"))?;
    Ok((extended, realsize))
}

/// The pairs of an old GNU sparse extension block and its `isextended`.
pub(crate) fn oldgnu_sparse_extension(
    block: &[u8],
    out: &mut Vec<SparseRegion>,
) -> Result<bool, String> {
    let full = sparse_pairs(block, 0, EXT_SPARSES, out)?;
    let extended = block[EXT_ISEXTENDED] != 0;
    if extended && !full {
        return Err("isextended set after the end of the sparse map".to_string());
    }
    Ok(extended)
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
    pub(crate) sparse: PaxSparse,
    /// Extended attributes from `SCHILY.xattr.*` and `LIBARCHIVE.xattr.*`,
    /// sorted by name bytes, names unique.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// GNU tar's xattr records (GNU tar manual, "Extended File Attributes";
/// `xheader.c`): `SCHILY.xattr.NAME=VALUE`, the value raw (pax records are
/// length-prefixed, so any byte may occur), `%` and `=` in NAME written as
/// `%25` and `%3D`.
pub(crate) const SCHILY_XATTR: &[u8] = b"SCHILY.xattr.";

/// libarchive's own xattr records (`archive_write_set_format_pax.c`):
/// `LIBARCHIVE.xattr.NAME=VALUE`, NAME URL-encoded (`%XX`), VALUE base64
/// without padding. bsdtar writes each attribute twice, here and as
/// [`SCHILY_XATTR`].
pub(crate) const LIBARCHIVE_XATTR: &[u8] = b"LIBARCHIVE.xattr.";

/// Which records named an attribute so far.
struct XattrSeen {
    value: Vec<u8>,
    schily: bool,
    libarchive: bool,
}

/// Adds one xattr record to `seen`. The same name from both record
/// families is one attribute if the values agree (bsdtar writes both);
/// a name twice in one family, or two families that disagree, is refused.
fn add_xattr(
    seen: &mut std::collections::BTreeMap<Vec<u8>, XattrSeen>,
    key: &[u8],
    encoded_name: &[u8],
    value: Vec<u8>,
    libarchive: bool,
) -> Result<(), String> {
    let record = String::from_utf8_lossy(key);
    let name: Vec<u8> = percent_encoding::percent_decode(encoded_name).collect();
    if name.is_empty() || name.contains(&0) {
        return Err(format!(
            "pax record {record}: an attribute name must be non-empty and hold no NUL"
        ));
    }
    match seen.entry(name) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(XattrSeen {
                value,
                schily: !libarchive,
                libarchive,
            });
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            let s = o.get_mut();
            let again = if libarchive { s.libarchive } else { s.schily };
            if again {
                return Err(format!("pax record {record}: the attribute is given twice"));
            }
            if s.value != value {
                return Err(format!(
                    "pax record {record}: the SCHILY.xattr and LIBARCHIVE.xattr records of the attribute differ"
                ));
            }
            s.schily |= !libarchive;
            s.libarchive |= libarchive;
        }
    }
    Ok(())
}

/// The pax key of attribute `name` as GNU tar writes it: [`SCHILY_XATTR`]
/// then the name with `%` and `=` percent-encoded (a `=` would end the key).
pub(crate) fn schily_xattr_key(name: &[u8]) -> Vec<u8> {
    let mut key = SCHILY_XATTR.to_vec();
    for &b in name {
        match b {
            b'%' => key.extend_from_slice(b"%25"),
            b'=' => key.extend_from_slice(b"%3D"),
            _ => key.push(b),
        }
    }
    key
}

/// The `path` record of a pax header, for naming the entry when the header
/// itself is malformed; `None` when there is none or it cannot be found.
pub(crate) fn pax_path(data: &[u8]) -> Option<Vec<u8>> {
    let mut path = None;
    for record in PaxRecords::new(data) {
        let Ok((key, value)) = record else { break };
        if key == b"path" {
            path = Some(value.to_vec());
        }
    }
    path.filter(|p| !p.is_empty())
}

/// GNU tar's sparse records (GNU tar manual, "Sparse Formats"): 0.0 repeats
/// `GNU.sparse.offset` / `GNU.sparse.numbytes` (POSIX keeps only the last of
/// a repeated keyword, GNU tar reads them in order); 0.1 has one
/// `GNU.sparse.map` of comma-separated numbers; both give the real size in
/// `GNU.sparse.size`. 1.0 has `GNU.sparse.major=1`, `GNU.sparse.minor=0`,
/// `GNU.sparse.realsize`, and its map at the start of the data. 0.1 and 1.0
/// store the real name in `GNU.sparse.name` (the ustar name is
/// `GNUSparseFile.<pid>/<name>`, so that readers unaware of sparse files do
/// not overwrite the real one).
#[derive(Default)]
pub(crate) struct PaxSparse {
    pub(crate) major: Option<u64>,
    pub(crate) minor: Option<u64>,
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) realsize: Option<u64>,
    pub(crate) numblocks: Option<u64>,
    /// The 0.0 or 0.1 map, in record order; `None` when neither was given.
    pub(crate) map: Option<Vec<SparseRegion>>,
}

impl PaxSparse {
    /// True when any record makes the entry a sparse file.
    pub(crate) fn any(&self) -> bool {
        self.major.is_some()
            || self.minor.is_some()
            || self.realsize.is_some()
            || self.numblocks.is_some()
            || self.map.is_some()
    }
}

/// libarchive writes base64 (RFC 4648 §4, standard alphabet) without
/// padding; padded values are accepted too.
const LIBARCHIVE_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// A decimal pax number (`size`, `uid`, `GNU.sparse.*`); empty is `None`.
fn decimal(what: &str, value: &[u8]) -> Result<Option<u64>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(value)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "pax {what} {:?} is not a number",
                String::from_utf8_lossy(value)
            )
        })
}

/// The records of a pax header, `"<len> <key>=<value>\n"` each (POSIX
/// pax, "pax Extended Header"): `<len>` is the decimal length of the whole
/// record, so a value may hold any byte, newlines included (an xattr value
/// is binary).
pub(crate) struct PaxRecords<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> PaxRecords<'a> {
    pub(crate) fn new(data: &'a [u8]) -> PaxRecords<'a> {
        PaxRecords { data, offset: 0 }
    }
}

impl<'a> Iterator for PaxRecords<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.offset..];
        // Some writers pad the header data with NULs.
        if rest.iter().all(|&b| b == 0) {
            return None;
        }
        let at = self.offset;
        let bad = |why: &str| {
            Some(Err(format!(
                "pax record at byte {at} of the pax header: {why}"
            )))
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || rest.get(digits) != Some(&b' ') {
            self.offset = self.data.len();
            return bad("no length");
        }
        let len = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok());
        let Some(len) = len.filter(|&l| l > digits + 1 && l <= rest.len()) else {
            self.offset = self.data.len();
            return bad("the length runs past the header");
        };
        let record = &rest[digits + 1..len];
        self.offset += len;
        let Some(body) = record.strip_suffix(b"\n") else {
            return bad("no newline at the end of the record");
        };
        let Some(eq) = body.iter().position(|&b| b == b'=') else {
            return bad("no '=' after the keyword");
        };
        Some(Ok((&body[..eq], &body[eq + 1..])))
    }
}

/// Parses pax records `"<len> <key>=<value>\n"` (POSIX pax, "pax Extended
/// Header"). An empty value cancels the field.
pub(crate) fn parse_pax(data: &[u8]) -> Result<PaxFields, String> {
    let mut out = PaxFields::default();
    let mut pending_offset: Option<u64> = None;
    let (mut pairs, mut list) = (false, false);
    let mut xattrs = std::collections::BTreeMap::new();
    for record in PaxRecords::new(data) {
        let (key, value) = record?;
        let number = |what: &str| decimal(what, value);
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
                out.mtime = Some(
                    pax_seconds(text)
                        .ok_or_else(|| format!("pax mtime {text:?} is not a number"))?,
                );
            }
            b"GNU.sparse.major" => out.sparse.major = number("GNU.sparse.major")?,
            b"GNU.sparse.minor" => out.sparse.minor = number("GNU.sparse.minor")?,
            b"GNU.sparse.name" => out.sparse.name = (!value.is_empty()).then(|| value.to_vec()),
            b"GNU.sparse.size" | b"GNU.sparse.realsize" => {
                out.sparse.realsize = number("GNU.sparse.realsize")?;
            }
            b"GNU.sparse.numblocks" => {
                out.sparse.numblocks = number("GNU.sparse.numblocks")?;
            }
            b"GNU.sparse.offset" => {
                if pending_offset.is_some() {
                    return Err("GNU.sparse.offset without its GNU.sparse.numbytes".to_string());
                }
                pending_offset = Some(number("GNU.sparse.offset")?.unwrap_or(0));
                pairs = true;
            }
            b"GNU.sparse.numbytes" => {
                let offset = pending_offset
                    .take()
                    .ok_or("GNU.sparse.numbytes without a GNU.sparse.offset before it")?;
                let numbytes = number("GNU.sparse.numbytes")?.unwrap_or(0);
                let map = out.sparse.map.get_or_insert_with(Vec::new);
                map.push(SparseRegion { offset, numbytes });
            }
            b"GNU.sparse.map" => {
                if list {
                    return Err("two GNU.sparse.map records for one entry".to_string());
                }
                list = true;
                let map = out.sparse.map.get_or_insert_with(Vec::new);
                map.extend(sparse_map_list(value)?);
            }
            _ => {
                if let Some(name) = key.strip_prefix(SCHILY_XATTR) {
                    add_xattr(&mut xattrs, key, name, value.to_vec(), false)?;
                } else if let Some(name) = key.strip_prefix(LIBARCHIVE_XATTR) {
                    let decoded = LIBARCHIVE_BASE64.decode(value).map_err(|e| {
                        format!(
                            "pax record {}: the value is not base64: {e}",
                            String::from_utf8_lossy(key)
                        )
                    })?;
                    add_xattr(&mut xattrs, key, name, decoded, true)?;
                }
            }
        }
    }
    out.xattrs = xattrs.into_iter().map(|(n, s)| (n, s.value)).collect();
    if pending_offset.is_some() {
        return Err("GNU.sparse.offset without its GNU.sparse.numbytes".to_string());
    }
    if pairs && list {
        return Err("both GNU.sparse.offset records and a GNU.sparse.map".to_string());
    }
    Ok(out)
}

/// `GNU.sparse.map`: `offset,numbytes,offset,numbytes,…` (sparse 0.1).
fn sparse_map_list(value: &[u8]) -> Result<Vec<SparseRegion>, String> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut numbers = value.split(|&b| b == b',');
    let mut map = Vec::new();
    while let Some(offset) = numbers.next() {
        let numbytes = numbers
            .next()
            .ok_or("GNU.sparse.map has an odd count of numbers")?;
        let offset = decimal("GNU.sparse.map offset", offset)?
            .ok_or("GNU.sparse.map has an empty number")?;
        let numbytes = decimal("GNU.sparse.map numbytes", numbytes)?
            .ok_or("GNU.sparse.map has an empty number")?;
        map.push(SparseRegion { offset, numbytes });
    }
    Ok(map)
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
pub(crate) fn pax_records<K: AsRef<[u8]>>(records: &[(K, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let key = key.as_ref();
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(key);
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

/// The whole seconds of a pax time `[-]SECONDS[.FRACTION]`, rounded down as
/// `st_mtime` is: GNU tar writes a file at -12.5 s (tv_sec -13, tv_nsec
/// 500000000) as `-12.5`, and its gnu-format header as -13.
fn pax_seconds(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (negative, digits) = match whole.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, whole.strip_prefix('+').unwrap_or(whole)),
    };
    if digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 19 digits: no overflow in an i128.
    let magnitude = digits
        .bytes()
        .fold(0i128, |v, d| v * 10 + i128::from(d - b'0'));
    let seconds = if negative {
        let below = fraction.bytes().any(|b| b != b'0');
        -magnitude - i128::from(below)
    } else {
        magnitude
    };
    i64::try_from(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_mtime_keeps_whole_seconds_rounded_down() {
        let f = parse_pax(b"30 mtime=1700000000.123456789\n").unwrap();
        assert_eq!(f.mtime, Some(1_700_000_000));
        let f = parse_pax(b"15 mtime=-12.5\n").unwrap();
        assert_eq!(f.mtime, Some(-13));
        let f = parse_pax(b"16 mtime=-12.00\n").unwrap();
        assert_eq!(f.mtime, Some(-12));
        let f = parse_pax(b"13 mtime=-.5\n").unwrap();
        assert_eq!(f.mtime, Some(-1));
        assert!(parse_pax(b"15 mtime=12.5x\n").is_err());
        let f = parse_pax(b"14 mtime=+125\n").unwrap();
        assert_eq!(f.mtime, Some(125));
        let f = parse_pax(b"30 mtime=-9223372036854775808\n").unwrap();
        assert_eq!(f.mtime, Some(i64::MIN));
        assert!(parse_pax(b"32 mtime=-9223372036854775808.1\n").is_err());
        assert!(parse_pax(b"29 mtime=9223372036854775808\n").is_err());
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
    fn numbers_are_read_as_gnu_tar_reads_them() {
        assert_eq!(number(b"00000000017\0"), Ok(15));
        assert_eq!(number(b"  017 \0\0\0\0\0\0"), Ok(15));
        // 12 digits without a terminator: 64 GiB - 1.
        assert_eq!(number(b"777777777777"), Ok((1 << 36) - 1));
        assert_eq!(number(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(number(b"        "), Ok(0));
        // base-256: 0x80 then a big-endian number; 0xff… two's complement.
        assert_eq!(number(b"\x80\0\0\0\0\x2d\xc6\xc0"), Ok(3_000_000));
        assert_eq!(number(&[0xff; 12]), Ok(-1));
        let mut t = [0xffu8; 12];
        t[8..].copy_from_slice(&(-315_619_200i32).to_be_bytes());
        assert_eq!(number(&t), Ok(-315_619_200));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[4..].copy_from_slice(&(10u64 << 30).to_be_bytes());
        assert_eq!(number(&big), Ok(10 << 30));
        assert!(number(b"12x4\0\0\0\0").is_err());
        assert!(number(b"+AAAAAAA").unwrap_err().contains("base-64"));
    }

    #[test]
    fn pax_sparse_maps_are_read_in_order() {
        let rec = |r: &[(&str, &str)]| {
            let r: Vec<(&str, Vec<u8>)> =
                r.iter().map(|(k, v)| (*k, v.as_bytes().to_vec())).collect();
            parse_pax(&pax_records(&r))
        };
        let map = rec(&[("GNU.sparse.map", "0,5,100,0")])
            .unwrap()
            .sparse
            .map
            .unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!((map[1].offset, map[1].numbytes), (100, 0));
        let pairs = [
            ("GNU.sparse.offset", "7"),
            ("GNU.sparse.numbytes", "3"),
            ("GNU.sparse.offset", "9"),
            ("GNU.sparse.numbytes", "1"),
        ];
        let map = rec(&pairs).unwrap().sparse.map.unwrap();
        assert_eq!((map[0].offset, map[0].numbytes), (7, 3));
        assert_eq!((map[1].offset, map[1].numbytes), (9, 1));
        assert!(rec(&[("GNU.sparse.offset", "7")]).is_err());
        assert!(rec(&[("GNU.sparse.map", "0,5,100")]).is_err());
        assert!(
            rec(&[
                ("GNU.sparse.map", "0,5"),
                ("GNU.sparse.offset", "7"),
                ("GNU.sparse.numbytes", "1")
            ])
            .is_err()
        );
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn xattr_records(records: &[(&[u8], &[u8])]) -> Result<Pairs, String> {
        let r: Vec<(&[u8], Vec<u8>)> = records.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        parse_pax(&pax_records(&r)).map(|f| f.xattrs)
    }

    #[test]
    fn pax_xattrs_are_read_from_both_record_families_in_name_order() {
        // What bsdtar writes (both families) for user.a=b%c = 00 01 02 and
        // user.plain = "hello", followed by a GNU-only attribute.
        let got = xattr_records(&[
            (b"LIBARCHIVE.xattr.user.plain", b"aGVsbG8"),
            (b"SCHILY.xattr.user.plain", b"hello"),
            (b"LIBARCHIVE.xattr.user.a%3Db%25c", b"AAEC"),
            (b"SCHILY.xattr.user.a%3Db%25c", b"\0\x01\x02"),
            (b"SCHILY.xattr.security.capability", b"\x01\n="),
        ])
        .unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"security.capability".to_vec(), b"\x01\n=".to_vec()),
            (b"user.a=b%c".to_vec(), b"\0\x01\x02".to_vec()),
            (b"user.plain".to_vec(), b"hello".to_vec()),
        ];
        assert_eq!(got, want);
        // Padded base64 is accepted as well.
        let got = xattr_records(&[(b"LIBARCHIVE.xattr.user.x", b"aGk=")]).unwrap();
        assert_eq!(got, vec![(b"user.x".to_vec(), b"hi".to_vec())]);
    }

    #[test]
    fn pax_xattr_duplicates_and_bad_records_are_refused_by_record() {
        let twice = xattr_records(&[
            (b"SCHILY.xattr.user.a", b"1"),
            (b"SCHILY.xattr.user.a", b"1"),
        ])
        .unwrap_err();
        assert!(
            twice.contains("SCHILY.xattr.user.a") && twice.contains("twice"),
            "{twice}"
        );
        let differ = xattr_records(&[
            (b"SCHILY.xattr.user.a", b"1"),
            (b"LIBARCHIVE.xattr.user.a", b"Mg"),
        ])
        .unwrap_err();
        assert!(
            differ.contains("LIBARCHIVE.xattr.user.a") && differ.contains("differ"),
            "{differ}"
        );
        let bad = xattr_records(&[(b"LIBARCHIVE.xattr.user.a", b"!!")]).unwrap_err();
        assert!(bad.contains("not base64"), "{bad}");
        let empty = xattr_records(&[(b"SCHILY.xattr.", b"1")]).unwrap_err();
        assert!(empty.contains("non-empty"), "{empty}");
        let nul = xattr_records(&[(b"SCHILY.xattr.a%00b", b"1")]).unwrap_err();
        assert!(nul.contains("NUL"), "{nul}");
    }

    #[test]
    fn schily_xattr_keys_escape_what_would_end_the_key() {
        assert_eq!(
            schily_xattr_key(b"user.a=b%c"),
            b"SCHILY.xattr.user.a%3Db%25c"
        );
        assert_eq!(schily_xattr_key(b"user.plain"), b"SCHILY.xattr.user.plain");
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
