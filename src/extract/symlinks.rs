//! Where a symlink would lead, resolved inside the extracted tree only.
//!
//! Used by [`SymlinkPolicy::RejectEscaping`](super::SymlinkPolicy): after
//! every entry is in place, each symlink's target is resolved the way the
//! kernel would (component by component, expanding the archive's own
//! symlinks, at most [`MAX_HOPS`] of them) but with `DIR` as the only world:
//! an absolute target, a `..` above `DIR`, or too many hops means the link
//! escapes. A component that does not exist is taken as a directory, which
//! can only make the answer stricter.

use std::collections::HashMap;

/// Most symlinks expanded while resolving one target (Linux `MAXSYMLINKS`).
pub const MAX_HOPS: usize = 40;

/// Why the symlink at `link` escapes, or `None` when it stays inside.
/// `links` maps every symlink path (normalized) to its raw target.
pub(crate) fn escape_reason(links: &HashMap<Vec<u8>, Vec<u8>>, link: &[u8]) -> Option<String> {
    let target = links.get(link)?;
    if target.first() == Some(&b'/') {
        return Some(format!(
            "absolute target {:?}",
            String::from_utf8_lossy(target)
        ));
    }
    // The directory the link sits in.
    let mut stack: Vec<&[u8]> = link.split(|&b| b == b'/').collect();
    stack.pop();
    let mut pending: Vec<&[u8]> = target.split(|&b| b == b'/').rev().collect();
    let mut hops = 0;
    while let Some(comp) = pending.pop() {
        match comp {
            b"" | b"." => {}
            b".." => {
                if stack.pop().is_none() {
                    return Some(format!(
                        "target {:?} leads above the extraction directory",
                        String::from_utf8_lossy(target)
                    ));
                }
            }
            name => {
                let mut candidate = stack.join(&b'/');
                if !candidate.is_empty() {
                    candidate.push(b'/');
                }
                candidate.extend_from_slice(name);
                match links.get(&candidate) {
                    Some(next) => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return Some(format!("more than {MAX_HOPS} symlinks to resolve"));
                        }
                        if next.first() == Some(&b'/') {
                            return Some(format!(
                                "resolves through {:?}, whose target {:?} is absolute",
                                String::from_utf8_lossy(&candidate),
                                String::from_utf8_lossy(next)
                            ));
                        }
                        pending.extend(next.split(|&b| b == b'/').rev());
                    }
                    None => stack.push(name),
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::escape_reason;
    use std::collections::HashMap;

    fn links(pairs: &[(&str, &str)]) -> HashMap<Vec<u8>, Vec<u8>> {
        pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn relative_targets_inside_are_kept() {
        let l = links(&[
            ("usr/bin/py", "python3"),
            ("lib", "usr/lib"),
            ("a/b", "../c"),
        ]);
        for link in ["usr/bin/py", "lib", "a/b"] {
            assert_eq!(escape_reason(&l, link.as_bytes()), None, "{link}");
        }
    }

    #[test]
    fn absolute_and_dotdot_above_root_escape() {
        let l = links(&[("x", "/etc/passwd"), ("a/y", "../../z")]);
        assert!(escape_reason(&l, b"x").unwrap().contains("absolute"));
        assert!(escape_reason(&l, b"a/y").unwrap().contains("above"));
    }

    #[test]
    fn escape_through_another_link_is_seen() {
        // d -> a/b/.. looks inside, but a/b is a link to ../.. .
        let l = links(&[("a/b", "../.."), ("d", "a/b/x")]);
        assert!(escape_reason(&l, b"d").is_some());
        let l = links(&[("p", "q"), ("q", "p")]);
        assert!(escape_reason(&l, b"p").unwrap().contains("more than"));
    }
}
