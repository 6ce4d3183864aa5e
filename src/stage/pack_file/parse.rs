//! Reading a pack file's text into typed [`Line`]s, following gensquashfs
//! (squashfs-tools-ng 1.2 and 1.3, `gensquashfs(1)`, "PACK FILE FORMAT")
//! byte for byte where it accepts a line, with messages of our own where
//! it refuses one. Nothing here touches the filesystem.

use super::super::MAX_ARCHIVE_PATH;
use super::super::normalize::canonicalize;

/// Longest pack-file line, in bytes (64 KiB): two paths of PATH_MAX with
/// room for options to spare.
pub const MAX_LINE: usize = 64 << 10;

/// Largest pack file read, in bytes (256 MiB; a root filesystem of a
/// million entries needs about 60 MiB).
pub const MAX_PACK_FILE: u64 = 256 << 20;

/// Owner and permission bits a line gives its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits, setuid, setgid and sticky included (`0o7777` at
    /// most).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

/// Inode types a `glob` line accepts (`-type`), as bits of [`Kinds`].
pub type Kinds = u8;

/// `-type b`.
pub const KIND_BLOCK: Kinds = 1;
/// `-type c`.
pub const KIND_CHAR: Kinds = 1 << 1;
/// `-type d`.
pub const KIND_DIR: Kinds = 1 << 2;
/// `-type p`.
pub const KIND_FIFO: Kinds = 1 << 3;
/// `-type f`.
pub const KIND_FILE: Kinds = 1 << 4;
/// `-type l`.
pub const KIND_SYMLINK: Kinds = 1 << 5;
/// `-type s`.
pub const KIND_SOCKET: Kinds = 1 << 6;
/// Every kind (no `-type` option).
pub const KIND_ALL: Kinds = 0x7f;

/// A `glob` line: what to scan and what to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// Permission bits for every entry added; `None` (`*`) keeps the
    /// source's.
    pub mode: Option<u32>,
    /// Owner for every entry added; `None` (`*`) keeps the source's.
    pub uid: Option<u32>,
    /// Group for every entry added; `None` (`*`) keeps the source's.
    pub gid: Option<u32>,
    /// Kinds added ([`KIND_ALL`] without `-type`).
    pub kinds: Kinds,
    /// `-xdev` / `-mount`: stay on the location's filesystem.
    pub one_filesystem: bool,
    /// `-keeptime`: keep the scanned files' mtimes (clamped to the epoch).
    pub keep_time: bool,
    /// `-nonrecursive`: do not descend into directories.
    pub non_recursive: bool,
    /// `-name` or `-path` pattern, quotes removed.
    pub pattern: Option<Vec<u8>>,
    /// The pattern is matched against the whole archive path (`-path` was
    /// given; like gensquashfs, a later `-name` does not undo that).
    pub whole_path: bool,
    /// Directory to scan, relative to the pack directory; `None` scans the
    /// pack directory itself.
    pub location: Option<Vec<u8>>,
}

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `dir`: a directory.
    Dir(Meta),
    /// `file`: a regular file read from `location` (or, without one, from
    /// the archive path relative to the pack directory).
    File {
        /// Owner and mode.
        meta: Meta,
        /// Where the content comes from, as written.
        location: Option<Vec<u8>>,
    },
    /// `nod`: a device node.
    Device {
        /// Owner and mode.
        meta: Meta,
        /// `b` (true) or `c`.
        block: bool,
        /// Major number (12 bits at most).
        major: u32,
        /// Minor number (20 bits at most).
        minor: u32,
    },
    /// `slink`: a symbolic link (its mode is always 0777).
    Symlink {
        /// Owner (the mode is ignored, as by gensquashfs).
        meta: Meta,
        /// The target, as written.
        target: Vec<u8>,
    },
    /// `link`: another name for the entry at `target` (an archive path,
    /// normalized like entry paths); mode and owner fields are ignored.
    HardLink {
        /// The archive path linked to.
        target: Vec<u8>,
    },
    /// `pipe`: a named pipe.
    Fifo(Meta),
    /// `sock`: a socket (SquashFS only).
    Socket(Meta),
    /// `glob`: a directory tree scanned from disk.
    Glob(Glob),
}

/// One directive with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the pack file.
    pub number: usize,
    /// Archive path: no leading, trailing or doubled `/`, no `.`
    /// components; empty for the root (`dir /`, `glob /` only).
    pub path: Vec<u8>,
    /// What to make there.
    pub directive: Directive,
}

/// A line that cannot be read, by number, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// `isspace` in the C locale, which gensquashfs's parser uses.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_space(b)).count();
    &s[n..]
}

/// Splits `text` into its lines, numbered from 1, with a `\r` before the
/// newline removed. Lines longer than [`MAX_LINE`] are refused.
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = Result<(usize, &[u8]), ParseError>> {
    let mut rest = Some(text);
    let mut number = 0;
    std::iter::from_fn(move || {
        let s = rest?;
        number += 1;
        let (line, next) = match s.iter().position(|&b| b == b'\n') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        rest = next.filter(|n| !n.is_empty());
        if s.is_empty() {
            return None;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            rest = None;
            return Some(Err(ParseError {
                line: number,
                message: format!("line is {} bytes; at most {MAX_LINE} are read", line.len()),
            }));
        }
        if line.contains(&0) {
            rest = None;
            return Some(Err(ParseError {
                line: number,
                message: "line holds a NUL byte".into(),
            }));
        }
        Some(Ok((number, line)))
    })
}

/// Parses a whole pack file. Empty lines and lines whose first non-blank
/// byte is `#` are skipped.
pub fn parse(text: &[u8]) -> Result<Vec<Line>, ParseError> {
    let mut out = Vec::new();
    for item in lines(text) {
        let (number, raw) = item?;
        let line = skip_spaces(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        out.push(parse_line(number, line).map_err(|message| ParseError {
            line: number,
            message,
        })?);
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Dir,
    Slink,
    Link,
    Nod,
    Pipe,
    Sock,
    File,
    Glob,
}

const KEYWORDS: &[(&str, Keyword)] = &[
    ("dir", Keyword::Dir),
    ("slink", Keyword::Slink),
    ("link", Keyword::Link),
    ("nod", Keyword::Nod),
    ("pipe", Keyword::Pipe),
    ("sock", Keyword::Sock),
    ("file", Keyword::File),
    ("glob", Keyword::Glob),
];

const EXPECTED: &str = "expected `TYPE PATH MODE UID GID [EXTRA]`";

/// Parses one line (leading blanks removed, not a comment).
fn parse_line(number: usize, line: &[u8]) -> Result<Line, String> {
    let &(word, kw) = KEYWORDS
        .iter()
        .find(|(w, _)| {
            line.starts_with(w.as_bytes()) && line.get(w.len()).is_some_and(|&b| is_space(b))
        })
        .ok_or_else(|| {
            let word = line.split(|&b| is_space(b)).next().unwrap_or_default();
            format!(
                "unknown entry type {:?} (dir, file, nod, slink, link, pipe, sock, glob)",
                String::from_utf8_lossy(word)
            )
        })?;
    let rest = skip_spaces(&line[word.len()..]);
    let (raw_path, rest) = read_path(rest)?;
    let path = canonicalize(&raw_path).ok_or_else(|| {
        format!(
            "path {:?} has a `..` component",
            String::from_utf8_lossy(&raw_path)
        )
    })?;
    if path.len() > MAX_ARCHIVE_PATH {
        return Err(format!(
            "path is {} bytes; at most {MAX_ARCHIVE_PATH} are allowed",
            path.len()
        ));
    }
    if path.is_empty() && !matches!(kw, Keyword::Dir | Keyword::Glob) {
        return Err(format!("cannot use / as the path of {word}"));
    }
    let glob = kw == Keyword::Glob;
    let (mode, rest) = field(rest, glob, 8, "mode must be an octal number <= 07777")?;
    if mode.is_some_and(|m| m > 0o7777) {
        return Err("mode must be an octal number <= 07777".into());
    }
    let rest = need_space(rest, "mode")?;
    let (uid, rest) = field(rest, glob, 10, "uid must be a decimal number < 2^32")?;
    let rest = need_space(rest, "uid")?;
    let (gid, rest) = field(rest, glob, 10, "gid must be a decimal number < 2^32")?;
    let extra = match rest.first() {
        None => None,
        Some(&b) if is_space(b) => Some(skip_spaces(rest)).filter(|e| !e.is_empty()),
        Some(_) => {
            return Err(format!(
                "gid must be a decimal number < 2^32 followed by a blank; {EXPECTED}"
            ));
        }
    };
    let meta = || Meta {
        mode: mode.unwrap_or(0),
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
    };
    let needs = |what: &str| {
        extra
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("{word} needs {what} after the gid"))
    };
    let directive = match kw {
        Keyword::Dir => Directive::Dir(meta()),
        Keyword::Pipe => Directive::Fifo(meta()),
        Keyword::Sock => Directive::Socket(meta()),
        Keyword::File => Directive::File {
            meta: meta(),
            location: extra.map(<[u8]>::to_vec),
        },
        Keyword::Slink => Directive::Symlink {
            meta: meta(),
            target: needs("a target")?,
        },
        Keyword::Link => {
            let target = needs("a target")?;
            let target = canonicalize(&target)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    format!(
                        "hard link target {:?} is not a path in the archive",
                        String::from_utf8_lossy(&target)
                    )
                })?;
            Directive::HardLink { target }
        }
        Keyword::Nod => {
            let spec = needs("`c|b MAJOR MINOR`")?;
            let (block, major, minor) = device(&spec)?;
            Directive::Device {
                meta: meta(),
                block,
                major,
                minor,
            }
        }
        Keyword::Glob => Directive::Glob(glob_options(extra.unwrap_or_default(), mode, uid, gid)?),
    };
    Ok(Line {
        number,
        path,
        directive,
    })
}

/// Reads the path: up to the next blank, or `"..."` with `\"` and `\\`
/// escapes. A blank must follow either way.
fn read_path(s: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    if s.first() == Some(&b'"') {
        let mut out = Vec::new();
        let mut i = 1;
        while i < s.len() && s[i] != b'"' {
            if s[i] == b'\\' && matches!(s.get(i + 1), Some(b'"' | b'\\')) {
                out.push(s[i + 1]);
                i += 2;
            } else {
                out.push(s[i]);
                i += 1;
            }
        }
        if i >= s.len() {
            return Err("the quoted path has no closing `\"`".into());
        }
        match s.get(i + 1) {
            Some(&b) if is_space(b) => Ok((out, skip_spaces(&s[i + 1..]))),
            _ => Err(format!(
                "the quoted path must be followed by a blank; {EXPECTED}"
            )),
        }
    } else {
        let end = s
            .iter()
            .position(|&b| is_space(b))
            .ok_or_else(|| format!("the path must be followed by the mode; {EXPECTED}"))?;
        Ok((s[..end].to_vec(), skip_spaces(&s[end..])))
    }
}

/// A number in `base` (or `*` where `star` allows it, as `None`) at the
/// start of `s`, and the rest.
fn field<'a>(
    s: &'a [u8],
    star: bool,
    base: u32,
    message: &str,
) -> Result<(Option<u32>, &'a [u8]), String> {
    if star && s.first() == Some(&b'*') {
        return Ok((None, &s[1..]));
    }
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(format!("{message}; {EXPECTED}"));
    }
    let mut v: u32 = 0;
    for &b in &s[..digits] {
        let d = u32::from(b - b'0');
        if d >= base {
            return Err(format!("{message}; {EXPECTED}"));
        }
        v = v
            .checked_mul(base)
            .and_then(|v| v.checked_add(d))
            .ok_or_else(|| format!("{message}; {EXPECTED}"))?;
    }
    Ok((Some(v), &s[digits..]))
}

fn need_space<'a>(s: &'a [u8], after: &str) -> Result<&'a [u8], String> {
    match s.first() {
        Some(&b) if is_space(b) => Ok(skip_spaces(s)),
        _ => Err(format!(
            "the {after} must be followed by a blank; {EXPECTED}"
        )),
    }
}

/// Linux's largest major and minor device numbers (12 and 20 bits), the
/// most a SquashFS device inode holds.
const MAX_MAJOR: u32 = 0xfff;
const MAX_MINOR: u32 = 0xf_ffff;

/// `c|b MAJOR MINOR` (as `sscanf("%c %u %u")` reads it; what follows is
/// ignored, as by gensquashfs).
fn device(spec: &[u8]) -> Result<(bool, u32, u32), String> {
    let expected = || "expected `c|b MAJOR MINOR` after the gid".to_string();
    let block = match spec[0] {
        b'c' | b'C' => false,
        b'b' | b'B' => true,
        c => return Err(format!("unknown device type {:?} (c or b)", char::from(c))),
    };
    let (major, rest) =
        field(skip_spaces(&spec[1..]), false, 10, "major").map_err(|_| expected())?;
    let (minor, _) = field(skip_spaces(rest), false, 10, "minor").map_err(|_| expected())?;
    let (major, minor) = (major.unwrap_or(0), minor.unwrap_or(0));
    if major > MAX_MAJOR || minor > MAX_MINOR {
        return Err(format!(
            "device {major}:{minor} cannot be stored: the major is at most {MAX_MAJOR} and the minor at most {MAX_MINOR}"
        ));
    }
    Ok((block, major, minor))
}

/// Options a `glob` line may give before its location, each followed by a
/// blank.
const GLOB_FLAGS: &[(&str, Kinds)] = &[
    ("-type b", KIND_BLOCK),
    ("-type c", KIND_CHAR),
    ("-type d", KIND_DIR),
    ("-type p", KIND_FIFO),
    ("-type f", KIND_FILE),
    ("-type l", KIND_SYMLINK),
    ("-type s", KIND_SOCKET),
    ("-xdev", 0),
    ("-mount", 0),
    ("-keeptime", 0),
    ("-nonrecursive", 0),
];

fn glob_options(
    mut s: &[u8],
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<Glob, String> {
    let mut glob = Glob {
        mode,
        uid,
        gid,
        kinds: KIND_ALL,
        one_filesystem: false,
        keep_time: false,
        non_recursive: false,
        pattern: None,
        whole_path: false,
        location: None,
    };
    let mut typed = false;
    let followed = |s: &[u8], word: &str| {
        s.starts_with(word.as_bytes()) && s.get(word.len()).is_some_and(|&b| is_space(b))
    };
    while !s.is_empty() {
        if let Some(&(word, kind)) = GLOB_FLAGS.iter().find(|(w, _)| followed(s, w)) {
            s = skip_spaces(&s[word.len()..]);
            match word {
                "-xdev" | "-mount" => glob.one_filesystem = true,
                "-keeptime" => glob.keep_time = true,
                "-nonrecursive" => glob.non_recursive = true,
                _ => {
                    // The first -type narrows to one kind; later ones add.
                    if !typed {
                        glob.kinds = 0;
                        typed = true;
                    }
                    glob.kinds |= kind;
                }
            }
            continue;
        }
        let by_path = followed(s, "-path");
        if by_path || followed(s, "-name") {
            s = skip_spaces(&s[5..]);
            let len = quoted_len(s);
            glob.pattern = Some(unquote(&s[..len]));
            glob.whole_path |= by_path;
            s = skip_spaces(&s[len..]);
            continue;
        }
        if s[0] == b'-' {
            if followed(s, "--") {
                s = skip_spaces(&s[2..]);
                break;
            }
            let word = s.split(|&b| is_space(b)).next().unwrap_or_default();
            return Err(format!(
                "unknown glob option {:?} (-type X, -xdev, -mount, -keeptime, -nonrecursive, -name P, -path P, --)",
                String::from_utf8_lossy(word)
            ));
        }
        break;
    }
    glob.location = Some(s.to_vec()).filter(|l| !l.is_empty());
    Ok(glob)
}

/// Length of a `-name`/`-path` argument: up to the next blank, or a
/// `"..."`/`'...'` string with its quotes (to the end when unclosed).
fn quoted_len(s: &[u8]) -> usize {
    match s.first() {
        Some(&q @ (b'"' | b'\'')) => match s[1..].iter().position(|&b| b == q) {
            Some(i) => i + 2,
            None => s.len(),
        },
        _ => s.iter().position(|&b| is_space(b)).unwrap_or(s.len()),
    }
}

/// Drops the quotes of a quoted argument (no escapes inside).
fn unquote(s: &[u8]) -> Vec<u8> {
    match s.first() {
        Some(&q @ (b'"' | b'\'')) => {
            let inner = &s[1..];
            let end = inner.iter().position(|&b| b == q).unwrap_or(inner.len());
            inner[..end].to_vec()
        }
        _ => s.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Line {
        let mut v = parse(text.as_bytes()).unwrap();
        assert_eq!(v.len(), 1);
        v.pop().unwrap()
    }

    fn err(text: &str) -> ParseError {
        parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_each_kind() {
        let l = one("nod /dev/console 0600 0 5 c 5 1\n");
        assert_eq!(l.path, b"dev/console");
        assert_eq!(
            l.directive,
            Directive::Device {
                meta: Meta {
                    mode: 0o600,
                    uid: 0,
                    gid: 5
                },
                block: false,
                major: 5,
                minor: 1
            }
        );
        let l = one("  file \"/opt/my app/\\\"special\\\"/data\" 4755 0 0\n");
        assert_eq!(l.path, b"opt/my app/\"special\"/data");
        assert!(
            matches!(l.directive, Directive::File { location: None, meta } if meta.mode == 0o4755)
        );
        let l = one("link //a/./b 0 0 0 /x//y/\n");
        assert_eq!(l.path, b"a/b");
        assert_eq!(
            l.directive,
            Directive::HardLink {
                target: b"x/y".to_vec()
            }
        );
        assert_eq!(one("dir / 0700 1 2").path, b"");
    }

    #[test]
    fn reads_glob_options() {
        let l = one("glob /usr/lib * 0 * -type f -type l -name \"*.so *\" -xdev -- -lib\n");
        let Directive::Glob(g) = l.directive else {
            panic!()
        };
        assert_eq!((g.mode, g.uid, g.gid), (None, Some(0), None));
        assert_eq!(g.kinds, KIND_FILE | KIND_SYMLINK);
        assert_eq!(g.pattern.as_deref(), Some(&b"*.so *"[..]));
        assert!(g.one_filesystem && !g.whole_path);
        assert_eq!(g.location.as_deref(), Some(&b"-lib"[..]));
    }

    #[test]
    fn refuses_malformed_lines_by_number() {
        for (text, line, what) in [
            ("# c\n\nfoo /a 0755 0 0\n", 3, "unknown entry type"),
            ("dir /a 0758 0 0\n", 1, "octal"),
            ("dir /a 010000 0 0\n", 1, "octal"),
            ("dir /a 0755 x 0\n", 1, "uid"),
            ("dir /a 0755 0 4294967296\n", 1, "gid"),
            ("dir /a 0755 0 0x\n", 1, "gid"),
            ("dir \"/a 0755 0 0\n", 1, "closing"),
            ("dir /a\n", 1, "followed by the mode"),
            ("file / 0644 0 0 x\n", 1, "cannot use /"),
            ("dir /a/../b 0755 0 0\n", 1, "`..`"),
            ("slink /a 0777 0 0\n", 1, "needs a target"),
            ("nod /a 0600 0 0 x 1 2\n", 1, "device type"),
            ("nod /a 0600 0 0 c 1\n", 1, "MAJOR MINOR"),
            ("nod /a 0600 0 0 c 4096 0\n", 1, "cannot be stored"),
            ("glob /a 0755 0 0 -bogus x\n", 1, "unknown glob option"),
            ("dir /a 0755 0 0\n\0\n", 2, "NUL"),
        ] {
            let e = err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
        }
        let long = format!("dir /{} 0755 0 0\n", "a".repeat(MAX_LINE));
        assert!(err(&long).message.contains("at most"));
    }
}
