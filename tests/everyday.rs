//! Everyday use: shell completions and man pages generated from the flags
//! (checked by bash, zsh, fish and groff), the progress bar (under a
//! pseudo-terminal), `REPROPACK_JOBS`, and `--json`
//! on `hash`, `verify` and `gate`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::bin::{
    code, json, ok, repropack, repropack_env, repropack_out, run_ok, stderr,
};
use crate::support::exit;
use crate::support::hash::sha256sum;
use crate::support::tool::have_tool;

fn small_tree(root: &Path) -> std::path::PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("d/b.bin"), vec![5u8; 300_000]).unwrap();
    src
}

/// What bash's programmable completion offers for `words` (the last one
/// being completed), with the script `repropack completions bash` prints.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}; COMP_WORDS=({line}); COMP_CWORD={cword}; COMP_LINE='{line}'; \
         COMP_POINT=${{#COMP_LINE}}; _repropack repropack '{cur}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        cword = words.len() - 1,
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = run_ok(Command::new("bash").args(["--norc", "-c", &program]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_offers_commands_and_each_commands_flags() {
    if !have_tool("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("repropack.bash");
    fs::write(&script, ok(&repropack_out(["completions", "bash"]))).unwrap();
    let commands = bash_completes(&script, &["repropack", "ex"]);
    assert_eq!(commands, ["extract"], "{commands:?}");
    let flags = bash_completes(&script, &["repropack", "pack", "--keep-m"]);
    assert_eq!(flags, ["--keep-modes"], "{flags:?}");
    let flags = bash_completes(&script, &["repropack", "extract", "--max-"]);
    assert!(
        flags.contains(&"--max-size".to_string()) && flags.contains(&"--max-entries".to_string()),
        "{flags:?}"
    );
}

#[test]
fn zsh_and_fish_completion_scripts_parse_and_name_every_command() {
    for (shell, check) in [
        ("zsh", ["-n"].as_slice()),
        ("fish", ["--no-execute"].as_slice()),
    ] {
        if !have_tool(shell) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join(format!("repropack.{shell}"));
        let text = ok(&repropack_out(["completions", shell]));
        fs::write(&script, &text).unwrap();
        run_ok(Command::new(shell).args(check).arg(&script));
        for command in [
            "pack", "extract", "digest", "verify", "diff", "fetch", "push", "man",
        ] {
            assert!(text.contains(command), "{shell} script lacks {command}");
        }
    }
    // No elvish or PowerShell here to run them: they are at least made.
    for shell in ["elvish", "powershell"] {
        assert!(ok(&repropack_out(["completions", shell])).contains("extract"));
    }
    assert_eq!(code(&repropack_out(["completions", "tcsh"])), exit::USAGE);
}

#[test]
fn man_pages_render_without_warnings_and_document_the_flags() {
    if !have_tool("groff") {
        return;
    }
    for (page, flag) in [
        (None, "extract"),
        (Some("pack"), "--keep-modes"),
        (Some("extract"), "--max-size"),
    ] {
        let mut args = vec!["man"];
        args.extend(page);
        let roff = run_ok(repropack().args(&args)).stdout;
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-P", "-cbou"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&roff)?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "groff failed on {page:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "groff warnings on {page:?}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(flag), "{page:?} page lacks {flag}:\n{text}");
    }
    assert_eq!(code(&repropack_out(["man", "nosuch"])), exit::USAGE);
}

/// docs/man is generated (`cargo xtask man`); it must be what the current
/// flags give, page for page.
#[test]
fn committed_man_pages_are_the_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    ok(&repropack_out([
        "man",
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let names = |d: &Path| {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(dir.path()),
        names(&committed),
        "run `cargo xtask man`"
    );
    for name in names(dir.path()) {
        assert!(
            fs::read(dir.path().join(&name)).unwrap() == fs::read(committed.join(&name)).unwrap(),
            "docs/man/{} is stale: run `cargo xtask man`",
            name.to_string_lossy()
        );
    }
}

#[test]
fn repropack_jobs_sets_the_default_jobs_and_is_checked_like_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_tree(dir.path());
    let src = src.to_str().unwrap();
    for command in ["pack", "extract", "digest", "diff", "check", "fetch"] {
        let help = stdout_of(&["help", command]);
        assert!(
            help.contains("[env: REPROPACK_JOBS="),
            "{command} --help:\n{help}"
        );
    }
    let img = |n: &str| dir.path().join(format!("j{n}.squashfs"));
    for n in ["1", "2"] {
        let out = repropack_env(
            ["pack", src, "-o", img(n).to_str().unwrap()],
            &[("REPROPACK_JOBS", n)],
        );
        ok(&out);
    }
    assert_eq!(sha256sum(&img("1")), sha256sum(&img("2")));
    let out = repropack_env(
        ["pack", src, "-o", img("0").to_str().unwrap()],
        &[("REPROPACK_JOBS", "0")],
    );
    assert_eq!(code(&out), exit::USAGE);
    assert!(
        stderr(&out).contains("REPROPACK_JOBS") || stderr(&out).contains("--jobs"),
        "{}",
        stderr(&out)
    );
    assert!(!img("0").exists());
}

/// The JSON object a failing command printed on stdout.
fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(out)))
}

fn stdout_of(args: &[&str]) -> String {
    String::from_utf8_lossy(&run_ok(repropack().args(args)).stdout).into_owned()
}

#[test]
fn hash_json_gives_one_object_per_file_with_the_sha256_sha256sum_computes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    fs::write(&a, b"one").unwrap();
    fs::write(&b, vec![0u8; 70_000]).unwrap();
    let out = ok(&repropack_out([
        "hash",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (v, (p, size)) in lines.iter().zip([(&a, 3), (&b, 70_000)]) {
        assert_eq!(v["sha256"], sha256sum(p));
        assert_eq!(v["size"], size);
        assert_eq!(v["file"], p.to_str().unwrap());
        let r = v["ref"].as_str().unwrap();
        assert!(r.ends_with(&format!("#sha256={}", sha256sum(p))), "{r}");
    }
}

#[test]
fn verify_json_reports_ok_and_problems_with_the_same_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_tree(dir.path());
    let art = dir.path().join("a.tar");
    let manifest = dir.path().join("a.json");
    ok(&repropack_out([
        "pack",
        src.to_str().unwrap(),
        "-o",
        art.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]));
    let good = repropack_out([
        "verify",
        "--json",
        art.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    let v = json(&good);
    assert_eq!(code(&good), exit::OK);
    assert_eq!(v["ok"], true);
    assert_eq!(v["sha256"], sha256sum(&art));
    assert_eq!(v["problems"], serde_json::json!([]));

    let wrong = "0".repeat(64);
    let bad = repropack_out([
        "verify",
        "--json",
        art.to_str().unwrap(),
        "--sha256",
        &wrong,
    ]);
    assert_eq!(code(&bad), exit::HASH_MISMATCH);
    let v = stdout_json(&bad);
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].as_str().unwrap().contains(&wrong));
}

#[test]
fn gate_json_names_the_status_whether_or_not_it_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("x.tar");
    fs::write(&art, b"not checked").unwrap();
    let out = repropack_out(["gate", "--json", art.to_str().unwrap()]);
    assert_eq!(code(&out), exit::OK);
    let v = json(&out);
    assert_eq!(v["status"], "no-marker");
    assert_eq!(v["required"], false);
    assert!(v["reason"].is_string());
    let out = repropack_out([
        "gate",
        "--json",
        "--require-verified",
        art.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), exit::UNVERIFIED);
    assert_eq!(stdout_json(&out)["required"], true);
    assert_eq!(stdout_json(&out)["status"], "no-marker");
}

/// `diff` names tar header flavours in words, never as Rust values: ours is
/// POSIX ustar, GNU tar's default is gnu.
#[test]
fn diff_names_the_tar_header_flavours() {
    if !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = small_tree(dir.path());
    let ours = dir.path().join("ours.tar");
    ok(&repropack_out([
        "pack",
        src.to_str().unwrap(),
        "-o",
        ours.to_str().unwrap(),
    ]));
    let gnu = dir.path().join("gnu.tar");
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "-cf"])
            .arg(&gnu)
            .arg("-C")
            .arg(&src)
            .arg("."),
    );
    let out = repropack_out(["diff", ours.to_str().unwrap(), gnu.to_str().unwrap()]);
    assert_eq!(code(&out), exit::DIFFERENT, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("header tar.first_header: ustar -> gnu"),
        "{text}"
    );
}

/// Runs `repropack ARGS` under a pseudo-terminal (util-linux `script`), so
/// stderr is a terminal; returns everything the terminal got.
fn on_a_terminal(args: &[&str]) -> String {
    let line = std::iter::once(crate::support::bin::bin())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = run_ok(
        Command::new("script")
            .args(["-qfec", &line, "/dev/null"])
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("REPROPACK_JOBS"),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `pack` and `extract` draw a progress bar on a terminal, never on a pipe
/// or with `--quiet`, and the bar changes no byte of the output.
#[test]
fn progress_bar_on_a_terminal_only_and_never_in_the_output() {
    if !have_tool("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = small_tree(dir.path());
    let src = src.to_str().unwrap();
    let on_tty = dir.path().join("tty.squashfs");
    let piped = dir.path().join("pipe.squashfs");
    let quiet = dir.path().join("quiet.squashfs");

    let shown = on_a_terminal(&["pack", src, "-o", on_tty.to_str().unwrap()]);
    assert!(
        shown.contains("pack") && shown.contains("entries"),
        "no bar on a terminal: {shown:?}"
    );
    let out = repropack_out(["pack", src, "-o", piped.to_str().unwrap()]);
    assert_eq!(stderr(&out), "", "a bar on a pipe");
    let hushed = on_a_terminal(&["pack", "--quiet", src, "-o", quiet.to_str().unwrap()]);
    assert!(
        !hushed.contains("entries"),
        "a bar despite --quiet: {hushed:?}"
    );
    assert_eq!(sha256sum(&on_tty), sha256sum(&piped));
    assert_eq!(sha256sum(&quiet), sha256sum(&piped));

    let x = dir.path().join("x");
    let shown = on_a_terminal(&["extract", on_tty.to_str().unwrap(), x.to_str().unwrap()]);
    assert!(
        shown.contains("extract") && shown.contains("entries"),
        "no bar on a terminal: {shown:?}"
    );
    let y = dir.path().join("y");
    let out = repropack_out(["extract", on_tty.to_str().unwrap(), y.to_str().unwrap()]);
    assert_eq!(stderr(&out), "", "a bar on a pipe");
    let z = dir.path().join("z");
    let hushed = on_a_terminal(&[
        "extract",
        "-q",
        on_tty.to_str().unwrap(),
        z.to_str().unwrap(),
    ]);
    assert!(
        !hushed.contains("entries"),
        "a bar despite --quiet: {hushed:?}"
    );
}
