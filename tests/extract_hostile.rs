//! A hostile corpus of crafted tar, tar.gz and SquashFS files: each one is
//! refused with the documented rule and exit code, leaves DIR as it was
//! (absent, or the empty directory it was), writes nothing anywhere else,
//! and leaves no temp litter.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::exit;
use repropack::extract::{ErrorClass, ExtractOptions, Rule, SymlinkPolicy, extract, parse_size};

use crate::support::bin::repropack;
use crate::support::rawtar::{
    RawTar, T_BLOCK, T_CHAR, T_FIFO, T_FILE, gnu_sparse_header, gzip, patch_unique, raw_header,
    set_checksum,
};
use crate::support::sqfs_check::squash_patchable as squash;
use crate::support::tool::have_tool;
use crate::support::tree::Tree;

/// Everything under `root` but mtimes (a refused extraction may create and
/// remove its temp files, which touches directory mtimes): a snapshot to
/// show that nothing else changed.
fn snapshot(root: &Path) -> Tree {
    Tree::of(root).without_times()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Unsafe(Rule),
    Input,
}

struct Case {
    name: String,
    artifact: Vec<u8>,
    flags: Vec<&'static str>,
    expect: Expect,
}

fn case(name: &str, artifact: Vec<u8>, expect: Expect) -> Case {
    Case {
        name: name.to_string(),
        artifact,
        flags: Vec::new(),
        expect,
    }
}

fn with_flags(mut c: Case, flags: &[&'static str]) -> Case {
    c.flags = flags.to_vec();
    c
}

/// The options the CLI flags of a case stand for.
fn options(flags: &[&str]) -> ExtractOptions {
    let mut o = ExtractOptions {
        sync: false,
        ..ExtractOptions::default()
    };
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match *f {
            "--specials" => o.specials = true,
            "--reject-escaping-symlinks" => o.symlinks = SymlinkPolicy::RejectEscaping,
            "--max-entries" => o.max_entries = it.next().unwrap().parse().unwrap(),
            "--max-size" => o.max_size = parse_size(it.next().unwrap()).unwrap(),
            "--max-path-len" => o.max_path_len = it.next().unwrap().parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

/// Runs one case twice (library, then binary) and checks every promise.
/// `outside` is a directory symlinks in the corpus point at.
fn check_case(c: &Case, work: &Path, outside: &Path, dir_exists: bool) -> Result<(), String> {
    let art_dir = work.join("artifacts");
    fs::create_dir_all(&art_dir).unwrap();
    let artifact = art_dir.join(format!("{}.bin", c.name));
    fs::write(&artifact, &c.artifact).unwrap();
    let parent = work.join("parent");
    fs::create_dir_all(&parent).unwrap();
    fs::write(parent.join("sentinel"), b"keep").unwrap();
    let dir = parent.join("out");
    // A previous failed case may have left it: start clean.
    let _ = fs::remove_dir_all(&dir);
    if dir_exists {
        fs::create_dir(&dir).unwrap();
    }
    let before = snapshot(work);
    let before_art = snapshot(&art_dir);

    // Library.
    let got = extract(&artifact, &dir, &options(&c.flags));
    let lib_ok = match (&got, c.expect) {
        (Err(e), Expect::Unsafe(rule)) => e.class() == ErrorClass::Unsafe && e.rule() == Some(rule),
        (Err(e), Expect::Input) => e.class() == ErrorClass::Input,
        _ => false,
    };
    if !lib_ok {
        return Err(format!(
            "{}: library gave {got:?}, want {:?}",
            c.name, c.expect
        ));
    }
    let message = got.unwrap_err().to_string();
    if let Expect::Unsafe(rule) = c.expect
        && !message.contains(rule.name())
    {
        return Err(format!(
            "{}: message {message:?} does not name the rule",
            c.name
        ));
    }
    compare(c, work, &before, "library")?;

    // Binary.
    let out = repropack()
        .arg("extract")
        .args(&c.flags)
        .arg("--no-sync")
        .arg(&artifact)
        .arg(&dir)
        .output()
        .unwrap();
    let want = match c.expect {
        Expect::Unsafe(_) => exit::UNSAFE,
        Expect::Input => exit::INPUT,
    };
    if out.status.code() != Some(want) {
        return Err(format!(
            "{}: exit {:?}, want {want}: {}",
            c.name,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !out.stdout.is_empty() {
        return Err(format!(
            "{}: printed {:?}",
            c.name,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    compare(c, work, &before, "binary")?;
    if snapshot(&art_dir) != before_art {
        return Err(format!("{}: artifacts changed", c.name));
    }
    if fs::read_dir(outside).unwrap().next().is_some() {
        return Err(format!("{}: something was written outside", c.name));
    }
    // Reset for the next case.
    if dir_exists {
        fs::remove_dir(&dir).unwrap();
    }
    Ok(())
}

fn compare(c: &Case, work: &Path, before: &Tree, who: &str) -> Result<(), String> {
    let after = snapshot(work);
    if &after != before {
        let names = |a: &Tree, b: &Tree| -> Vec<String> {
            a.nodes
                .keys()
                .filter(|k| !b.nodes.contains_key(*k))
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        let changed = crate::support::tree::compare("after", before, &after, false);
        return Err(format!(
            "{} ({who}): tree changed; added {:?}, removed {:?}; {changed:?}",
            c.name,
            names(&after, before),
            names(before, &after)
        ));
    }
    Ok(())
}

/// The tar corpus; `outside` is the absolute path of the directory hostile
/// symlinks aim at.
fn tar_corpus(outside: &[u8]) -> Vec<Case> {
    use Expect::*;
    let mut evil_through = outside.to_vec();
    evil_through.extend_from_slice(b"/x");
    let long_name = "n".repeat(300);
    let deep = format!("{}/f", vec!["d"; 60].join("/"));
    let mut bad_sum = raw_header(b"f", T_FILE, 0o644, 0, b"");
    bad_sum[0] = b'g'; // checksum no longer matches
    let mut bad_size = raw_header(b"f", T_FILE, 0o644, 0, b"");
    bad_size[124..136].copy_from_slice(b"12x45678901\0");
    set_checksum(&mut bad_size);
    let truncated = {
        let mut t = RawTar::new().file("f", &[7u8; 5000]).finish();
        t.truncate(512 + 1000);
        t
    };
    // A GNU sparse map whose regions overlap (a well-formed sparse member
    // is expanded, see tests/tar_sparse.rs).
    let gnu_sparse = gnu_sparse_header(b"sparse", &[(0, 10), (5, 10)], 100, 20, false);
    let pax_bomb = {
        // A pax header that declares 64 MiB of records: refused by size
        // before it is read into memory.
        let mut t = Vec::new();
        t.extend_from_slice(&raw_header(b"././@PaxHeader", b'x', 0o644, 64 << 20, b""));
        t.resize(t.len() + (64 << 20), b'a');
        t.extend_from_slice(&raw_header(b"f", T_FILE, 0o644, 0, b""));
        t.extend(std::iter::repeat_n(0u8, 1024));
        gzip(&t)
    };
    let size_bomb = {
        // 256 MiB of zeros declared by one header; ~256 KiB compressed.
        let mut t = Vec::new();
        t.extend_from_slice(&raw_header(b"zeros", T_FILE, 0o644, 256 << 20, b""));
        t.resize(t.len() + (256 << 20), 0);
        t.extend(std::iter::repeat_n(0u8, 1024));
        gzip(&t)
    };

    vec![
        case(
            "absolute",
            RawTar::new().file("/tmp/evil", b"x").finish(),
            Unsafe(Rule::AbsolutePath),
        ),
        case(
            "absolute-outside",
            RawTar::new()
                .entry(&evil_through, T_FILE, 0o644, b"x", b"")
                .finish(),
            Unsafe(Rule::AbsolutePath),
        ),
        case(
            "dotdot",
            RawTar::new().file("../evil", b"x").finish(),
            Unsafe(Rule::DotDot),
        ),
        case(
            "dotdot-inner",
            RawTar::new().dir("a").file("a/../../evil", b"x").finish(),
            Unsafe(Rule::DotDot),
        ),
        case(
            "dotdot-dot",
            RawTar::new().file("./../evil", b"x").finish(),
            Unsafe(Rule::DotDot),
        ),
        case(
            "dotdot-trailing",
            RawTar::new().dir("a/..").finish(),
            Unsafe(Rule::DotDot),
        ),
        case(
            "dotdot-in-pax-path",
            RawTar::new()
                .pax(&[("path", b"ok/../../evil")])
                .file("ok", b"x")
                .finish(),
            Unsafe(Rule::DotDot),
        ),
        case(
            "dotdot-in-gnu-longname",
            {
                let name = b"../evil\0";
                let mut h = raw_header(b"././@LongLink", b'L', 0o644, name.len() as u64, b"");
                h[257..265].copy_from_slice(b"ustar  \0");
                set_checksum(&mut h);
                let mut t = RawTar::new();
                t.raw(h, name).file("placeholder", b"x");
                t.finish()
            },
            Unsafe(Rule::DotDot),
        ),
        case(
            "symlink-to-outside-then-through",
            RawTar::new()
                .symlink("l", outside)
                .file("l/evil", b"x")
                .finish(),
            Unsafe(Rule::ThroughSymlink),
        ),
        case(
            "symlink-dotdot-then-through",
            RawTar::new()
                .symlink("l", b"..")
                .file("l/evil", b"x")
                .finish(),
            Unsafe(Rule::ThroughSymlink),
        ),
        case(
            "symlink-chain-then-through",
            RawTar::new()
                .dir("a")
                .symlink("a/up", b"..")
                .symlink("b", b"a/up/..")
                .file("b/evil", b"x")
                .finish(),
            Unsafe(Rule::ThroughSymlink),
        ),
        case(
            "symlink-as-deep-parent",
            RawTar::new()
                .dir("a")
                .symlink("a/l", outside)
                .file("a/l/b/c/evil", b"x")
                .finish(),
            Unsafe(Rule::ThroughSymlink),
        ),
        case(
            "symlink-then-file-same-name",
            RawTar::new()
                .symlink("x", &evil_through)
                .file("x", b"overwrite")
                .finish(),
            Unsafe(Rule::Duplicate),
        ),
        case(
            "dir-then-symlink-same-name",
            RawTar::new()
                .dir("d")
                .symlink("d", outside)
                .file("d/evil", b"x")
                .finish(),
            Unsafe(Rule::Duplicate),
        ),
        case(
            "file-then-child",
            RawTar::new().file("f", b"x").file("f/g", b"y").finish(),
            Unsafe(Rule::ThroughNonDirectory),
        ),
        case(
            "hardlink-absolute",
            RawTar::new().hardlink("h", b"/etc/passwd").finish(),
            Unsafe(Rule::HardLinkOutside),
        ),
        case(
            "hardlink-dotdot",
            RawTar::new().hardlink("h", b"../sentinel").finish(),
            Unsafe(Rule::HardLinkOutside),
        ),
        case(
            "hardlink-missing",
            RawTar::new().hardlink("h", b"nowhere").finish(),
            Unsafe(Rule::HardLinkMissing),
        ),
        case(
            "hardlink-to-later-entry",
            RawTar::new()
                .hardlink("h", b"later")
                .file("later", b"x")
                .finish(),
            Unsafe(Rule::HardLinkMissing),
        ),
        case(
            "hardlink-to-directory",
            RawTar::new().dir("d").hardlink("h", b"d").finish(),
            Unsafe(Rule::HardLinkToDirectory),
        ),
        case(
            "hardlink-through-symlink",
            RawTar::new()
                .symlink("l", outside)
                .hardlink("h", b"l/sentinel")
                .finish(),
            Unsafe(Rule::HardLinkMissing),
        ),
        case(
            "char-device",
            RawTar::new()
                .entry(b"null", T_CHAR, 0o666, b"", b"")
                .finish(),
            Unsafe(Rule::SpecialFile),
        ),
        case(
            "block-device",
            RawTar::new()
                .entry(b"sda", T_BLOCK, 0o660, b"", b"")
                .finish(),
            Unsafe(Rule::SpecialFile),
        ),
        case(
            "fifo",
            RawTar::new()
                .entry(b"pipe", T_FIFO, 0o644, b"", b"")
                .finish(),
            Unsafe(Rule::SpecialFile),
        ),
        with_flags(
            case(
                "fifo-as-parent",
                RawTar::new()
                    .entry(b"p", T_FIFO, 0o644, b"", b"")
                    .file("p/x", b"y")
                    .finish(),
                Unsafe(Rule::ThroughNonDirectory),
            ),
            &["--specials"],
        ),
        with_flags(
            case(
                "too-many-entries",
                {
                    let mut t = RawTar::new();
                    for i in 0..11 {
                        t.file(&format!("f{i}"), b"x");
                    }
                    t.finish()
                },
                Unsafe(Rule::EntryCount),
            ),
            &["--max-entries", "10"],
        ),
        with_flags(
            case(
                "too-big-total",
                RawTar::new()
                    .file("a", &[1u8; 600])
                    .file("b", &[2u8; 600])
                    .finish(),
                Unsafe(Rule::TotalSize),
            ),
            &["--max-size", "1000"],
        ),
        with_flags(
            case("gzip-size-bomb", size_bomb, Unsafe(Rule::TotalSize)),
            &["--max-size", "64M"],
        ),
        case("gzip-pax-header-bomb", pax_bomb, Input),
        with_flags(
            case(
                "path-too-long",
                RawTar::new()
                    .pax(&[("path", deep.as_bytes())])
                    .file("x", b"")
                    .finish(),
                Unsafe(Rule::PathTooLong),
            ),
            &["--max-path-len", "100"],
        ),
        case(
            "name-too-long",
            RawTar::new()
                .pax(&[("path", long_name.as_bytes())])
                .file("x", b"")
                .finish(),
            Unsafe(Rule::NameTooLong),
        ),
        case(
            "nul-in-pax-path",
            RawTar::new()
                .pax(&[("path", b"a\0b")])
                .file("x", b"")
                .finish(),
            Unsafe(Rule::NulByte),
        ),
        case(
            "root-as-file",
            RawTar::new().file(".", b"x").finish(),
            Unsafe(Rule::RootNotDirectory),
        ),
        case(
            "empty-symlink-target",
            RawTar::new().symlink("l", b"").finish(),
            Unsafe(Rule::BadSymlinkTarget),
        ),
        with_flags(
            case(
                "symlink-absolute-strict",
                RawTar::new().symlink("l", outside).finish(),
                Unsafe(Rule::SymlinkEscapes),
            ),
            &["--reject-escaping-symlinks"],
        ),
        with_flags(
            case(
                "symlink-dotdot-strict",
                RawTar::new().dir("a").symlink("a/l", b"../../etc").finish(),
                Unsafe(Rule::SymlinkEscapes),
            ),
            &["--reject-escaping-symlinks"],
        ),
        with_flags(
            case(
                "symlink-escape-via-later-link-strict",
                // c looks inside when written; a/b, stored later, makes it escape.
                RawTar::new()
                    .dir("a")
                    .symlink("c", b"a/b/x")
                    .symlink("a/b", b"../..")
                    .finish(),
                Unsafe(Rule::SymlinkEscapes),
            ),
            &["--reject-escaping-symlinks"],
        ),
        case(
            "bad-checksum",
            {
                let mut t = RawTar::new();
                t.raw(bad_sum, b"");
                t.finish()
            },
            Input,
        ),
        case(
            "bad-size-field",
            {
                let mut t = RawTar::new();
                t.raw(bad_size, b"");
                t.finish()
            },
            Input,
        ),
        case("truncated-content", truncated, Input),
        case(
            "gnu-sparse",
            {
                let mut t = RawTar::new();
                t.raw(gnu_sparse, &[b'x'; 20]);
                t.finish()
            },
            Input,
        ),
        case(
            "gzip-crc-mismatch",
            {
                let mut g = gzip(&RawTar::new().file("f", b"payload").finish());
                let n = g.len();
                g[n - 8] ^= 0xff; // CRC-32 of the member trailer
                g
            },
            Input,
        ),
        case(
            "gzip-trailing-zero-bomb",
            {
                let mut t = RawTar::new().file("f", b"payload").finish();
                t.resize(t.len() + (32 << 20), 0);
                gzip(&t)
            },
            Input,
        ),
        case(
            "truncated-gzip",
            {
                let mut g = gzip(&RawTar::new().file("f", &[3u8; 100_000]).finish());
                g.truncate(g.len() / 2);
                g
            },
            Input,
        ),
    ]
}

#[test]
fn hostile_tar_corpus_is_refused_without_a_trace() {
    // The outside dir lives in the per-run temp dir; the archives name it
    // by absolute path, so they are built after the path is known.
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let outside_bytes = outside.as_os_str().as_encoded_bytes().to_vec();
    let cases = tar_corpus(&outside_bytes);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if let Err(f) = check_case(c, work.path(), &outside, i % 2 == 1) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_squashfs_corpus_is_refused_without_a_trace() {
    if !have_tool("mksquashfs") {
        return;
    }
    use Expect::*;
    let build = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut n = 0;
    let mut src = |setup: &dyn Fn(&Path)| -> PathBuf {
        n += 1;
        let d = build.path().join(format!("src{n}"));
        fs::create_dir_all(&d).unwrap();
        setup(&d);
        d
    };
    let img = |name: &str, s: &Path, extra: &[&str]| squash(s, &build.path().join(name), extra);
    let patched = |name: &str, s: &Path, pairs: &[(&[u8], &[u8])]| {
        let mut b = img(name, s, &[]);
        for (m, w) in pairs {
            patch_unique(&mut b, m, w);
        }
        b
    };

    let one_file = |name: &'static str| move |d: &Path| fs::write(d.join(name), b"x").unwrap();
    let s_dotdot = src(&one_file("QQ"));
    let s_escape = src(&one_file("QQQQQQQQQ"));
    let s_abs = src(&one_file("QQQQQQQQQ"));
    let outside_c = outside.clone();
    let s_through = src(&move |d: &Path| {
        symlink(&outside_c, d.join("lnk")).unwrap();
        fs::write(d.join("zzzzzzzz"), b"x").unwrap();
    });
    let s_dup = src(&|d: &Path| {
        fs::write(d.join("yy1"), b"a").unwrap();
        fs::write(d.join("yy2"), b"b").unwrap();
    });
    let s_nul = src(&one_file("QQQ"));
    let s_dot = src(&one_file("Q"));
    let outside_c = outside.clone();
    let s_abs_link = src(&move |d: &Path| symlink(&outside_c, d.join("l")).unwrap());
    let s_rel_link = src(&|d: &Path| {
        fs::create_dir(d.join("a")).unwrap();
        symlink("../../etc", d.join("a/l")).unwrap();
    });
    let s_empty = src(&|_: &Path| {});
    let s_many = src(&|d: &Path| {
        for i in 0..50 {
            fs::write(d.join(format!("f{i}")), [i as u8]).unwrap();
        }
    });
    let s_big = src(&|d: &Path| fs::write(d.join("big"), vec![9u8; 2 << 20]).unwrap());
    let s_deep = src(&|d: &Path| {
        let p = d.join(vec!["dd"; 40].join("/"));
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("f"), b"x").unwrap();
    });
    let s_dir_link_name = src(&|d: &Path| {
        fs::create_dir(d.join("QQ")).unwrap();
        fs::write(d.join("QQ/inner"), b"x").unwrap();
    });

    let mut cases = vec![
        case(
            "sq-name-dotdot",
            patched("a", &s_dotdot, &[(b"QQ", b"..")]),
            Input,
        ),
        case(
            "sq-name-with-slashes",
            patched("b", &s_escape, &[(b"QQQQQQQQQ", b"../escape")]),
            Input,
        ),
        case(
            "sq-name-absolute",
            patched("c", &s_abs, &[(b"QQQQQQQQQ", b"/tmp/evil")]),
            Input,
        ),
        case(
            "sq-through-symlink",
            patched("d", &s_through, &[(b"zzzzzzzz", b"lnk/evil")]),
            Input,
        ),
        case(
            "sq-duplicate-name",
            patched("e", &s_dup, &[(b"yy2", b"yy1")]),
            Unsafe(Rule::Duplicate),
        ),
        case(
            "sq-nul-in-name",
            patched("f", &s_nul, &[(b"QQQ", b"a\0b")]),
            Input,
        ),
        case(
            "sq-file-named-dot",
            patched("g", &s_dot, &[(b"Q", b".")]),
            Input,
        ),
        case(
            "sq-dir-named-dotdot",
            patched("g2", &s_dir_link_name, &[(b"QQ", b"..")]),
            Input,
        ),
        with_flags(
            case(
                "sq-absolute-symlink-strict",
                img("h", &s_abs_link, &[]),
                Unsafe(Rule::SymlinkEscapes),
            ),
            &["--reject-escaping-symlinks"],
        ),
        with_flags(
            case(
                "sq-dotdot-symlink-strict",
                img("i", &s_rel_link, &[]),
                Unsafe(Rule::SymlinkEscapes),
            ),
            &["--reject-escaping-symlinks"],
        ),
        case(
            "sq-char-device",
            img("j", &s_empty, &["-p", "null c 666 0 0 1 3"]),
            Unsafe(Rule::SpecialFile),
        ),
        case(
            "sq-block-device",
            img("k", &s_empty, &["-p", "sda b 660 0 0 8 0"]),
            Unsafe(Rule::SpecialFile),
        ),
        case(
            "sq-fifo",
            img("l", &s_empty, &["-p", "pipe i 600 0 0 f"]),
            Unsafe(Rule::SpecialFile),
        ),
        with_flags(
            case(
                "sq-too-many-entries",
                img("m", &s_many, &[]),
                Unsafe(Rule::EntryCount),
            ),
            &["--max-entries", "10"],
        ),
        with_flags(
            case("sq-too-big", img("n", &s_big, &[]), Unsafe(Rule::TotalSize)),
            &["--max-size", "1M"],
        ),
        with_flags(
            case(
                "sq-path-too-long",
                img("o", &s_deep, &[]),
                Unsafe(Rule::PathTooLong),
            ),
            &["--max-path-len", "64"],
        ),
        case(
            "sq-truncated",
            {
                let mut b = img("p", &s_big, &[]);
                b.truncate(b.len() / 2);
                b
            },
            Input,
        ),
        case(
            "sq-bytes-used-past-end",
            {
                let mut b = img("q", &s_many, &[]);
                // superblock bytes_used (offset 40, u64 LE) beyond the file.
                b[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
                b
            },
            Input,
        ),
    ];
    assert!(cases.len() >= 15, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter_mut().enumerate() {
        if let Err(f) = check_case(c, work.path(), &outside, i % 2 == 0) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn non_empty_or_non_directory_destination_is_refused_untouched() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("ok.tar");
    fs::write(&artifact, RawTar::new().file("f", b"x").finish()).unwrap();
    let busy = work.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("keep"), b"mine").unwrap();
    let file = work.path().join("file");
    fs::write(&file, b"plain").unwrap();
    let missing_parent = work.path().join("no/such/dir");
    for dest in [&busy, &file, &missing_parent] {
        let before = snapshot(work.path());
        let out = repropack()
            .arg("extract")
            .arg(&artifact)
            .arg(dest)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::OUTPUT), "{}", dest.display());
        assert_eq!(snapshot(work.path()), before, "{}", dest.display());
    }
}

/// A directory entry whose name holds `/` would silently become a deeper
/// path: our reader refuses it as malformed (exit 3), naming the directory
/// and the byte offset, for extract and digest alike, as rdsquashfs does.
#[test]
fn squashfs_name_with_a_slash_is_malformed_naming_directory_and_offset() {
    if !have_tool("mksquashfs") || !have_tool("rdsquashfs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/QQQQ"), b"x").unwrap();
    let img = tmp.path().join("img.sqfs");
    let mut bytes = squash(&src, &img, &[]);
    patch_unique(&mut bytes, b"QQQQ", b"a/bc");
    fs::write(&img, &bytes).unwrap();

    let theirs = Command::new("rdsquashfs")
        .arg("-l")
        .arg("/")
        .arg(&img)
        .output()
        .unwrap();
    let _ = theirs; // rdsquashfs -l lists one level; -d walks everything below.
    let theirs = Command::new("rdsquashfs")
        .arg("-d")
        .arg("/")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        !theirs.status.success(),
        "rdsquashfs accepted a name with '/'"
    );

    for cmd in [&["extract"][..], &["digest"][..]] {
        let mut c = repropack();
        c.args(cmd).arg(&img);
        if cmd == ["extract"] {
            c.arg(tmp.path().join("out"));
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::INPUT), "{cmd:?}: {err}");
        assert!(
            err.contains("directory \"sub\"") && err.contains("at byte") && err.contains("'/'"),
            "{cmd:?}: {err}"
        );
    }
    assert!(!tmp.path().join("out").exists());
}
