//! The layering of src/, checked by reading the sources as text (no
//! repropack code involved): which module may import which, that no two
//! files import each other, one public name per concept, and that on-disk
//! layouts live in one file each. ARCHITECTURE.md states these invariants.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under src/, as (module path like `format/tar/read`,
/// source text). `mod.rs` names its directory.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).unwrap().with_extension("");
                let mut name = rel.to_string_lossy().into_owned();
                if let Some(dir) = name.strip_suffix("/mod") {
                    name = dir.to_string();
                }
                out.insert(name, fs::read_to_string(&p).unwrap());
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The code of `text` without comments (line comments and doc comments;
/// the crate uses no block comments) and without `#[cfg(test)]` modules at
/// the end of a file, which may reach anywhere.
fn code(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    body.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate paths a file refers to: `crate::a::b…` and, resolved against
/// the file's own module, `super::…`, each as a `/`-joined module path cut
/// to the longest prefix that names a file of `all`.
fn imports(module: &str, text: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let code = code(text);
    // `use crate::x::{a, b::c}` is expanded by taking each `crate::` or
    // `super::` occurrence and the identifiers that follow it.
    let mut out = BTreeSet::new();
    let parent = |m: &str| {
        m.rsplit_once('/')
            .map_or(String::new(), |(p, _)| p.to_string())
    };
    // A file `a/b.rs` is module a::b; `super` of it is `a`. A `mod.rs` of
    // `a/b/` is module a::b too, and its `super` is `a`.
    for start in ["crate::", "super::"] {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().last();
            rest = &rest[i + start.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut base = if start == "crate::" {
                String::new()
            } else {
                parent(module)
            };
            let mut tail = rest;
            while let Some(t) = tail.strip_prefix("super::") {
                base = parent(&base);
                tail = t;
            }
            let names: Vec<&str> = tail
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let mut best = None;
            let mut path = base.clone();
            for n in &names {
                path = if path.is_empty() {
                    n.to_string()
                } else {
                    format!("{path}/{n}")
                };
                if all.contains_key(&path) {
                    best = Some(path.clone());
                }
            }
            // `use super::{a, b}`: the brace list names siblings.
            if names.is_empty()
                && let Some(list) = tail.strip_prefix('{')
            {
                for item in list.split('}').next().unwrap_or("").split(',') {
                    let first = item.trim().split("::").next().unwrap_or("").trim();
                    let p = if base.is_empty() {
                        first.to_string()
                    } else {
                        format!("{base}/{first}")
                    };
                    if all.contains_key(&p) && p != module {
                        out.insert(p);
                    }
                }
            }
            if let Some(b) = best.or_else(|| (!base.is_empty()).then_some(base))
                && b != module
            {
                out.insert(b);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let all = sources();
    all.iter()
        .map(|(m, text)| (m.clone(), imports(m, text, &all)))
        .collect()
}

fn top(m: &str) -> &str {
    m.split('/').next().unwrap_or(m)
}

/// Files of `area` that import something of one of `forbidden`.
fn violations(area: &str, forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for (m, deps) in graph() {
        if top(&m) != area {
            continue;
        }
        for d in deps {
            if forbidden.contains(&top(&d)) {
                bad.push(format!("{m} imports {d}"));
            }
        }
    }
    bad
}

#[test]
fn formats_never_look_up_the_pipeline() {
    let bad = violations(
        "format",
        &["stage", "remote", "verify", "pack", "extract", "cli"],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn remote_only_moves_bytes() {
    let bad = violations(
        "remote",
        &[
            "format", "stage", "verify", "pack", "extract", "plan", "cli",
        ],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn staging_reads_only_tar_from_the_formats() {
    let mut bad = Vec::new();
    for (m, deps) in graph() {
        if top(&m) != "stage" {
            continue;
        }
        for d in deps {
            let allowed = ["format", "format/read", "format/tar/read"];
            if top(&d) == "format" && !allowed.contains(&d.as_str()) {
                bad.push(format!("{m} imports {d}"));
            }
            if ["remote", "verify", "pack", "extract", "cli"].contains(&top(&d)) {
                bad.push(format!("{m} imports {d}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    // And the one it may use is the tar reader, by name.
    let from_tar = &sources()["stage/from_tar"];
    assert!(
        from_tar.contains("crate::format::tar::read::"),
        "from_tar reads through format::tar::read"
    );
}

#[test]
fn the_library_never_reaches_into_the_binary() {
    let bad: Vec<String> = graph()
        .into_iter()
        .filter(|(m, _)| top(m) != "cli" && m != "main")
        .flat_map(|(m, deps)| {
            deps.into_iter()
                .filter(|d| top(d) == "cli")
                .map(move |d| format!("{m} imports {d}"))
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn no_two_files_import_each_other() {
    let g = graph();
    let mut cycles = Vec::new();
    for (a, deps) in &g {
        for b in deps {
            // A module may use its own submodules (`mod.rs` re-exports).
            if b.starts_with(&format!("{a}/")) || a.starts_with(&format!("{b}/")) {
                continue;
            }
            if a < b && g.get(b).is_some_and(|d| d.contains(a)) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(cycles.is_empty(), "{cycles:#?}");
}

#[test]
fn one_public_name_per_concept() {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (m, text) in sources() {
        if top(&m) == "cli" || m == "main" {
            continue;
        }
        for line in code(&text).lines() {
            for kw in ["pub struct ", "pub enum ", "pub trait ", "pub type "] {
                if let Some(rest) = line.trim_start().strip_prefix(kw) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    seen.entry(name).or_default().push(m.clone());
                }
            }
        }
    }
    let dup: Vec<_> = seen.into_iter().filter(|(_, ms)| ms.len() > 1).collect();
    assert!(
        dup.is_empty(),
        "one type name defined in several modules: {dup:#?}"
    );
}

#[test]
fn each_on_disk_layout_is_known_in_one_file() {
    // Byte offsets of tar header fields, the tar block size and the
    // SquashFS magic each appear in exactly one file.
    let needles: [(&str, &str); 5] = [
        ("[148..156]", "format/tar/header"),
        ("[257..", "format/tar/header"),
        ("[156]", "format/tar/header"),
        ("const BLOCK:", "format/tar/header"),
        ("0x7371_7368", "format/squashfs/superblock"),
    ];
    for (needle, owner) in needles {
        let holders: Vec<String> = sources()
            .into_iter()
            .filter(|(_, t)| code(t).contains(needle))
            .map(|(m, _)| m)
            .collect();
        assert_eq!(
            holders,
            vec![owner.to_string()],
            "{needle:?} appears in {holders:?}"
        );
    }
}
