//! Xattr files: extended attributes per archive path in the format
//! `getfattr --dump` writes (as gensquashfs's `--xattr-file` reads it),
//! so that `security.*` attributes can be set without root or without the
//! attribute on disk:
//!
//! ```text
//! # file: usr/bin/ping
//! security.capability=0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=
//! user.comment="a \"quoted\" text\012with a newline"
//! ```
//!
//! A `# file: PATH` line starts the block of a path (leading `/`, `./`
//! and doubled `/` are dropped; `\ooo` and `\\` escapes, which getfattr
//! writes for blanks, backslashes and control bytes, are decoded). Each
//! `NAME=VALUE` line below it gives one attribute; the value is
//! `"text"` (escapes `\"`, `\\`, `\ooo`), `0x` + hex digits, `0s` +
//! base64, or bare text. Other lines starting with `#`, and blank lines,
//! are skipped. Lines are read in bounded memory ([`MAX_LINE`],
//! [`MAX_XATTR_FILE`]).
//!
//! Applied after staging: each path must be in the plan (an error names
//! it otherwise); its attributes are added to those kept from the source,
//! replacing one of the same name. A name given twice for one path is an
//! error naming both lines.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use base64::Engine;

use super::normalize::{canonicalize, lossy};
use super::tree::{Node, Staged};
use super::{MAX_XATTR_NAME, MAX_XATTR_VALUE, StageError, StageOptions};
use crate::digest::Sha256Digest;
use crate::plan::{EntryKind, Payload, XattrSet};

/// Longest line read, in bytes (256 KiB: a 64 KiB value in base64 or
/// hex, with its name).
pub const MAX_LINE: usize = 256 << 10;

/// Largest xattr file read, in bytes (256 MiB).
pub const MAX_XATTR_FILE: u64 = 256 << 20;

/// The attributes one `# file:` block gives a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Line of the `# file:` header.
    pub line: usize,
    /// Archive path (empty for the root).
    pub path: Vec<u8>,
    /// (line, name, value) of each attribute, in file order.
    pub attrs: Vec<(usize, Vec<u8>, Vec<u8>)>,
}

/// A line that cannot be read: the same error as a pack file's.
pub use super::pack_file::ParseError;
use super::pack_file::is_space;

const FILE_HEADER: &[u8] = b"# file: ";

/// Parses a whole xattr file into its blocks, in file order.
pub fn parse(text: &[u8]) -> Result<Vec<Block>, ParseError> {
    let mut blocks: Vec<Block> = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let number = i + 1;
        let fail = |message: String| ParseError {
            line: number,
            message,
        };
        if raw.len() > MAX_LINE {
            return Err(fail(format!(
                "line is {} bytes; at most {MAX_LINE} are read",
                raw.len()
            )));
        }
        let start = raw.iter().position(|&b| !is_space(b)).unwrap_or(raw.len());
        let end = raw
            .iter()
            .rposition(|&b| !is_space(b))
            .map_or(start, |e| e + 1);
        let line = &raw[start..end.max(start)];
        if line.is_empty() {
            continue;
        }
        if line.contains(&0) {
            return Err(fail("line holds a NUL byte".into()));
        }
        if let Some(rest) = line.strip_prefix(FILE_HEADER) {
            let path = canonicalize(&unescape_path(rest))
                .ok_or_else(|| fail(format!("path {:?} has a `..` component", lossy(rest))))?;
            blocks.push(Block {
                line: number,
                path,
                attrs: Vec::new(),
            });
        } else if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let block = blocks
                .last_mut()
                .ok_or_else(|| fail("an attribute before any `# file:` line".into()))?;
            let name = &line[..eq];
            if name.is_empty() {
                return Err(fail("an attribute without a name".into()));
            }
            if name.len() > MAX_XATTR_NAME {
                return Err(fail(format!(
                    "attribute name is {} bytes; at most {MAX_XATTR_NAME} are allowed",
                    name.len()
                )));
            }
            let value = decode(&line[eq + 1..])
                .map_err(|m| fail(format!("attribute {:?}: {m}", lossy(name))))?;
            if value.len() > MAX_XATTR_VALUE {
                return Err(fail(format!(
                    "attribute {:?}: value is {} bytes; at most {MAX_XATTR_VALUE} are allowed",
                    lossy(name),
                    value.len()
                )));
            }
            block.attrs.push((number, name.to_vec(), value));
        } else if line[0] != b'#' {
            return Err(fail(format!(
                "not `NAME=VALUE`, `# file: PATH` or a comment: {:?}",
                lossy(&line[..line.len().min(80)])
            )));
        }
    }
    Ok(blocks)
}

/// Decodes a value as `getfattr` encodes it (and `setfattr` reads it).
fn decode(v: &[u8]) -> Result<Vec<u8>, String> {
    match v {
        [b'0', b'x' | b'X', hex @ ..] => {
            if hex.len() % 2 != 0 {
                return Err("a 0x value needs an even number of hex digits".into());
            }
            hex.chunks(2)
                .map(|pair| {
                    let digit = |b: u8| char::from(b).to_digit(16);
                    match (digit(pair[0]), digit(pair[1])) {
                        (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                        _ => Err(format!("{:?} is not a hex digit pair", lossy(pair))),
                    }
                })
                .collect()
        }
        [b'0', b's' | b'S', b64 @ ..] => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64: {e}")),
        _ => {
            let inner = match v {
                [b'"', inner @ .., b'"'] => inner,
                _ => v,
            };
            Ok(unescape(inner))
        }
    }
}

/// `\"`, `\\` and `\ooo` (one to three octal digits) escapes; any other
/// backslash stays as it is.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() {
            let next = s[i + 1];
            if next == b'\\' || next == b'"' {
                out.push(next);
                i += 2;
                continue;
            }
            if (b'0'..=b'7').contains(&next) {
                let mut c: u32 = 0;
                let mut j = i + 1;
                while j < s.len() && j < i + 4 && (b'0'..=b'7').contains(&s[j]) {
                    c = c * 8 + u32::from(s[j] - b'0');
                    j += 1;
                }
                out.push(c as u8);
                i = j;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// A path as getfattr writes it: `\ooo` and `\\` escapes.
fn unescape_path(s: &[u8]) -> Vec<u8> {
    unescape(s)
}

/// Reads and parses the xattr file at `path`, at most [`MAX_XATTR_FILE`]
/// bytes.
pub fn read(path: &Path) -> Result<(Vec<Block>, Sha256Digest), StageError> {
    let fail = |line: Option<usize>, message: String| StageError::XattrFile {
        file: path.to_path_buf(),
        line,
        message,
    };
    let file = fs::File::open(path).map_err(|e| fail(None, format!("cannot open: {e}")))?;
    let mut text = Vec::new();
    file.take(MAX_XATTR_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| fail(None, format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_XATTR_FILE {
        return Err(fail(
            None,
            format!("larger than {MAX_XATTR_FILE} bytes, the most read"),
        ));
    }
    let lines = parse(&text).map_err(|e| fail(Some(e.line), e.message))?;
    Ok((lines, Sha256Digest::of(&text)))
}

/// One attribute of a block: (line, name, value).
type Attr<'a> = (usize, &'a [u8], &'a [u8]);

/// Adds the attributes of `blocks` (read from `file`) to the staging tree.
pub(super) fn apply(
    root: &mut Node,
    file: &Path,
    blocks: &[Block],
    opts: &StageOptions,
) -> Result<(), StageError> {
    let fail = |line: usize, message: String| StageError::XattrFile {
        file: file.to_path_buf(),
        line: Some(line),
        message,
    };
    // Every attribute of each path, with the line that gave it.
    let mut by_path: HashMap<&[u8], (usize, Vec<Attr<'_>>)> = HashMap::new();
    for b in blocks {
        let entry = by_path.entry(&b.path).or_insert((b.line, Vec::new()));
        for (line, name, value) in &b.attrs {
            if let Some((first, ..)) = entry.1.iter().find(|(_, n, _)| *n == name.as_slice()) {
                return Err(fail(
                    *line,
                    format!(
                        "attribute {:?} of {:?} is already given at line {first}",
                        lossy(name),
                        lossy(&b.path)
                    ),
                ));
            }
            entry.1.push((*line, name, value));
        }
    }
    let mut paths: Vec<_> = by_path.into_iter().collect();
    paths.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (path, (line, attrs)) in paths {
        if attrs.is_empty() {
            continue;
        }
        if path.is_empty() {
            return Err(fail(
                line,
                "the root directory cannot carry extended attributes".into(),
            ));
        }
        let node = path
            .split(|&b| b == b'/')
            .try_fold(&mut *root, |at, comp| at.children.get_mut(comp))
            .ok_or_else(|| fail(line, format!("{:?} is not in the archive", lossy(path))))?;
        let staged = node.staged.get_or_insert_with(|| Staged {
            // A directory only implied as a parent, made explicit to carry
            // the attributes; the metadata it would get anyway.
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: opts.owner.uid,
            gid: opts.owner.gid,
            mtime: opts.epoch,
            xattrs: None,
            payload: Payload::Nothing,
            inode: None,
            origin: None,
        });
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = staged
            .xattrs
            .as_deref()
            .map(|set| {
                set.iter()
                    .filter(|(n, _)| !attrs.iter().any(|(_, a, _)| a == n))
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        pairs.extend(attrs.iter().map(|(_, n, v)| (n.to_vec(), v.to_vec())));
        let set = XattrSet::new(pairs)
            .map_err(|name| fail(line, format!("attribute {:?} is given twice", lossy(&name))))?;
        staged.xattrs = Some(Box::new(set));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_getfattr_dump_encodings() {
        let text = b"# file: dev/\nsecurity.selinux=\"system_u:object_r:device_t:s0\"\n\
            user.bin=0xCAFEcafe\n\n# file: /a\\040b/./c\n  user.b64=0sSGVsbG8=  \n\
            user.esc=\"q\\\"\\\\\\012x\\7\"\nuser.empty=\n# a comment\n";
        let blocks = parse(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].path, b"dev");
        assert_eq!(blocks[0].attrs[0].2, b"system_u:object_r:device_t:s0");
        assert_eq!(blocks[0].attrs[1].2, [0xca, 0xfe, 0xca, 0xfe]);
        assert_eq!(blocks[1].path, b"a b/c");
        assert_eq!(
            blocks[1].attrs[0],
            (6, b"user.b64".to_vec(), b"Hello".to_vec())
        );
        assert_eq!(blocks[1].attrs[1].2, b"q\"\\\nx\x07");
        assert_eq!(blocks[1].attrs[2].2, b"");
    }

    #[test]
    fn refuses_malformed_lines_by_number() {
        for (text, line, what) in [
            ("user.a=1\n", 1, "before any"),
            ("# file: a\nnot a pair\n", 2, "not `NAME=VALUE`"),
            ("# file: a\n=1\n", 2, "without a name"),
            ("# file: a\nuser.a=0xabc\n", 2, "even number"),
            ("# file: a\nuser.a=0xzz\n", 2, "hex digit"),
            ("# file: a\nuser.a=0s!!!\n", 2, "base64"),
            ("# file: ../a\n", 1, "`..`"),
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
        }
    }
}
