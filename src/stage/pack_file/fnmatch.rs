//! Shell-pattern matching as POSIX `fnmatch(3)` does it, on raw bytes, for
//! the `-name` and `-path` options of a pack file's `glob` lines.
//!
//! `*` matches any run of bytes (leading dots included: no
//! `FNM_PERIOD`), `?` one byte, `[...]` one byte of a set (`!` or `^`
//! negates, `a-z` ranges, `[:alpha:]` classes of the C locale), `\x` the
//! byte `x`. With `pathname` (`FNM_PATHNAME`) a `/` is matched only by a
//! `/` in the pattern. Matching takes time proportional to the product of
//! the lengths at most: a failed `*` only ever retries from the last one.

/// True when `text` matches `pattern`.
pub(crate) fn fnmatch(pattern: &[u8], text: &[u8], pathname: bool) -> bool {
    if !pathname {
        return segment(pattern, text);
    }
    let mut pats = pattern.split(|&b| b == b'/');
    let mut texts = text.split(|&b| b == b'/');
    loop {
        match (pats.next(), texts.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) if segment(p, t) => {}
            _ => return false,
        }
    }
}

/// Matches one whole `text` against `pat`, `*` matching any byte.
fn segment(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern after it, text it has
    // consumed up to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pat.get(p) == Some(&b'*') {
            p += 1;
            star = Some((p, t));
            continue;
        }
        if let Some(next) = single(pat, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p.min(pat.len())..].iter().all(|&b| b == b'*')
}

/// If the one-byte token at `pat[p]` (not a `*`) matches `c`, the index
/// after it.
fn single(pat: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pat.get(p)? {
        b'*' => None,
        b'?' => Some(p + 1),
        b'[' => match bracket(pat, p, c) {
            Some((true, next)) => Some(next),
            Some((false, _)) => None,
            // No closing `]`: the `[` is an ordinary byte.
            None => (c == b'[').then_some(p + 1),
        },
        b'\\' if p + 1 < pat.len() => (pat[p + 1] == c).then_some(p + 2),
        b => (b == c).then_some(p + 1),
    }
}

/// Matches `c` against the bracket expression starting at `pat[open]`:
/// whether it matched and the index after the closing `]`, or `None` when
/// there is no closing `]`.
fn bracket(pat: &[u8], open: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let b = *pat.get(i)?;
        if b == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if b == b'[' && pat.get(i + 1) == Some(&b':') {
            let rest = &pat[i + 2..];
            if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                matched |= in_class(&rest[..end], c);
                i += 2 + end + 2;
                continue;
            }
        }
        let (lo, after) = if b == b'\\' && i + 1 < pat.len() {
            (pat[i + 1], i + 2)
        } else {
            (b, i + 1)
        };
        if pat.get(after) == Some(&b'-') && pat.get(after + 1).is_some_and(|&e| e != b']') {
            let (hi, next) = if pat[after + 1] == b'\\' && after + 2 < pat.len() {
                (pat[after + 2], after + 3)
            } else {
                (pat[after + 1], after + 2)
            };
            matched |= lo <= c && c <= hi;
            i = next;
        } else {
            matched |= lo == c;
            i = after;
        }
    }
}

/// Character classes of the C locale.
fn in_class(name: &[u8], c: u8) -> bool {
    match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn matches_as_fnmatch_does() {
        let yes: &[(&str, &str, bool)] = &[
            ("*.so.*", "libc.so.6", false),
            ("*", ".hidden", false),
            ("a?c", "abc", false),
            ("[a-c]x", "bx", false),
            ("[!a-c]x", "dx", false),
            ("[^a]x", "bx", false),
            ("[]]", "]", false),
            ("[[:digit:]]*", "1abc", false),
            ("\\*", "*", false),
            ("*", "a/b", false),
            ("usr/*/x", "usr/lib/x", true),
            ("*/*", "a/b", true),
            ("[ab", "[ab", false),
            ("a*b*c", "axxbyyc", false),
        ];
        for (p, t, path) in yes {
            assert!(fnmatch(p.as_bytes(), t.as_bytes(), *path), "{p} ~ {t}");
        }
        let no: &[(&str, &str, bool)] = &[
            ("*.so", "libc.so.6", false),
            ("a?c", "ac", false),
            ("[!a-c]x", "bx", false),
            ("*", "a/b", true),
            ("usr/*", "usr/lib/x", true),
            ("\\*", "a", false),
            ("a*b*c", "axxbyy", false),
        ];
        for (p, t, path) in no {
            assert!(!fnmatch(p.as_bytes(), t.as_bytes(), *path), "{p} !~ {t}");
        }
    }
}
