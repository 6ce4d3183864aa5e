//! Bad input gets a clear error naming the path, a documented exit code,
//! and leaves nothing behind: no file at the output path, no temp litter.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::exit;

use crate::support::bin::{bin, repropack};
use crate::support::fixtures::{Build, sample_tree};

fn pack(args: &[&OsStr]) -> Output {
    repropack().arg("pack").args(args).output().unwrap()
}

/// The output dir holds nothing at all: no final file, no temp file.
fn assert_empty_dir(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} should mention {n:?}");
    }
    assert!(out.stdout.is_empty(), "no ref may be printed on failure");
}

#[test]
fn missing_source_is_an_input_error_naming_it() {
    let out_dir = tempfile::tempdir().unwrap();
    let missing = out_dir.path().join("no-such-dir");
    let o = out_dir.path().join("o.tar");
    let res = pack(&[missing.as_os_str(), "-o".as_ref(), o.as_os_str()]);
    assert_fails(&res, exit::INPUT, &["no-such-dir", "does not exist"]);
    assert_empty_dir(out_dir.path());
}

#[test]
fn output_in_missing_directory_is_an_output_error() {
    let src = sample_tree(Build::default());
    let o = src.path().join("nope/deeper/o.tar.gz");
    let res = pack(&[src.path().as_os_str(), "-o".as_ref(), o.as_os_str()]);
    assert_fails(&res, exit::OUTPUT, &["nope/deeper", "does not exist"]);
    assert!(!o.exists());
}

#[test]
fn colliding_destinations_name_both_sources() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("one.txt"), b"1").unwrap();
    fs::write(src.path().join("two.txt"), b"2").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.tar");
    let a = format!("{}:etc/x", src.path().join("one.txt").display());
    let b = format!("{}:etc/x", src.path().join("two.txt").display());
    let res = pack(&[a.as_ref(), b.as_ref(), "-o".as_ref(), o.as_os_str()]);
    assert_fails(&res, exit::INPUT, &["etc/x", "one.txt", "two.txt"]);
    assert_empty_dir(out_dir.path());
}

#[test]
fn fifo_and_device_nodes_are_refused_unless_asked_for() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("ok.txt"), b"fine").unwrap();
    let fifo = src.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.tar");
    let res = pack(&[src.path().as_os_str(), "-o".as_ref(), o.as_os_str()]);
    assert_fails(&res, exit::INPUT, &["pipe", "fifo", "--specials"]);
    assert_empty_dir(out_dir.path());

    // A character device needs root to create; CI runs as root.
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        let dev = src.path().join("null-dev");
        assert!(
            Command::new("mknod")
                .arg(&dev)
                .args(["c", "1", "3"])
                .status()
                .unwrap()
                .success()
        );
        fs::remove_file(&fifo).unwrap();
        let res = pack(&[src.path().as_os_str(), "-o".as_ref(), o.as_os_str()]);
        assert_fails(&res, exit::INPUT, &["null-dev", "character device"]);
        assert_empty_dir(out_dir.path());
        let ok = pack(&[
            src.path().as_os_str(),
            "-o".as_ref(),
            o.as_os_str(),
            "--specials".as_ref(),
        ]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let listing = Command::new("tar").arg("-tvf").arg(&o).output().unwrap();
        let text = String::from_utf8_lossy(&listing.stdout);
        assert!(
            text.lines()
                .any(|l| l.starts_with('c') && l.contains("1,3") && l.ends_with("null-dev")),
            "{text}"
        );
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root to test device nodes"
        );
        eprintln!("not root: device-node case skipped");
    }
}

#[test]
fn sockets_are_skipped_with_a_warning() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("ok.txt"), b"fine").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.path().join("sock")).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.tar");
    let res = pack(&[src.path().as_os_str(), "-o".as_ref(), o.as_os_str()]);
    assert!(res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("sock: socket skipped"));
    let listing = Command::new("tar").arg("-tf").arg(&o).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout), "ok.txt\n");
}

#[test]
fn unreadable_file_is_an_input_error_and_leaves_nothing() {
    let src = tempfile::tempdir().unwrap();
    fs::set_permissions(src.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(src.path().join("a-readable.txt"), b"fine").unwrap();
    let secret = src.path().join("secret.txt");
    fs::write(&secret, b"no").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(out_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let o = out_dir.path().join("o.tar");
    // Root reads anything: drop to `nobody` so the permission check applies.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    let res = cmd
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("pack")
        .arg(src.path())
        .arg("-o")
        .arg(&o)
        .output()
        .unwrap();
    assert_fails(&res, exit::INPUT, &["secret.txt", "ermission denied"]);
    assert_empty_dir(out_dir.path());
}

#[test]
fn invalid_epoch_names_the_variable() {
    let src = sample_tree(Build::default());
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.tar");
    let res = repropack()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .arg("pack")
        .arg(src.path())
        .arg("-o")
        .arg(&o)
        .output()
        .unwrap();
    assert_fails(&res, exit::USAGE, &["SOURCE_DATE_EPOCH", "yesterday"]);
    assert_empty_dir(out_dir.path());
}

#[test]
fn an_epoch_past_what_tar_readers_hold_is_refused() {
    let src = sample_tree(Build::default());
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.tar");
    let res = repropack()
        .arg("pack")
        .arg(src.path())
        .arg("-o")
        .arg(&o)
        .args(["--mtime", "9223372036854775808"])
        .output()
        .unwrap();
    assert_fails(&res, exit::USAGE, &["--mtime", "9223372036854775808"]);
    assert_empty_dir(out_dir.path());
    // The largest one is GNU tar's largest time too.
    let res = repropack()
        .arg("pack")
        .arg(src.path())
        .arg("-o")
        .arg(&o)
        .args(["--mtime", "9223372036854775807"])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    if crate::support::tool::have_tool("tar") {
        crate::support::bin::run_ok(Command::new("tar").arg("-tvf").arg(&o));
    }
}

/// A file that changes between staging and reading makes the pack fail with
/// an error naming it; nothing is published.
#[test]
fn file_changed_while_packing_is_an_error() {
    use repropack::Format;
    use repropack::pack::{PackError, PackOptions, pack_to_path};
    use repropack::stage::{Source, StageOptions, stage};
    for change in ["grow", "shrink", "touch"] {
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("moving.txt");
        fs::write(&f, b"0123456789").unwrap();
        let plan = stage(&[Source::parse(src.path())], &StageOptions::default()).unwrap();
        match change {
            "grow" => fs::write(&f, b"0123456789abcdef").unwrap(),
            "shrink" => fs::write(&f, b"0123").unwrap(),
            _ => {
                filetime::set_file_mtime(&f, filetime::FileTime::from_unix_time(12345, 0)).unwrap()
            }
        }
        let out_dir = tempfile::tempdir().unwrap();
        for format in [Format::Tar, Format::TarGz] {
            let err = pack_to_path(&plan, &PackOptions::new(format), &out_dir.path().join("o"))
                .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, PackError::Tar(_)), "{change}: {msg}");
            assert!(
                msg.contains("moving.txt") && msg.contains("not stable"),
                "{change}: {msg}"
            );
            assert_empty_dir(out_dir.path());
        }
    }
}

/// A file that grows or is touched after it was opened for packing (while
/// being read) fails at the end of its content, not silently.
#[test]
fn file_changed_during_the_read_is_an_error() {
    use repropack::stage::{Source, StageOptions, stage};
    use std::io::{Read, Write};
    for change in ["grow", "touch"] {
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("live.log");
        fs::write(&f, b"0123456789").unwrap();
        let plan = stage(&[Source::parse(src.path())], &StageOptions::default()).unwrap();
        let entry = &plan.entries()[0];
        let mut reader = entry.content().unwrap().reader(entry.name()).unwrap();
        let mut first = [0u8; 4];
        reader.read_exact(&mut first).unwrap();
        if change == "grow" {
            fs::OpenOptions::new()
                .append(true)
                .open(&f)
                .unwrap()
                .write_all(b"more")
                .unwrap();
        } else {
            filetime::set_file_mtime(&f, filetime::FileTime::from_unix_time(12345, 0)).unwrap();
        }
        let mut rest = Vec::new();
        let err = reader.read_to_end(&mut rest).unwrap_err();
        assert!(
            err.to_string().contains("live.log") && err.to_string().contains("not stable"),
            "{change}: {err}"
        );
    }
}

/// A tree of 40 directories scanned on several threads, with something
/// odd in two of them.
fn wide_tree_with(odd: impl FnOnce(&Path)) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    for d in 0..40 {
        let dir = src.path().join(format!("d{d:02}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..20 {
            fs::write(dir.join(format!("f{f}")), b"x").unwrap();
        }
    }
    odd(src.path());
    src
}

fn pack_with_jobs(src: &Path, out: &Path, jobs: &str) -> Output {
    pack(&[
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--jobs".as_ref(),
        jobs.as_ref(),
    ])
}

#[test]
fn first_refused_entry_in_name_order_is_reported_whatever_the_jobs() {
    let src = wide_tree_with(|root| {
        for d in ["d31", "d05"] {
            let st = Command::new("mkfifo")
                .arg(root.join(d).join("pipe"))
                .status()
                .unwrap();
            assert!(st.success());
        }
    });
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.squashfs");
    for jobs in ["1", "2", "8", "8", "8"] {
        let res = pack_with_jobs(src.path(), &o, jobs);
        assert_fails(&res, exit::INPUT, &["d05/pipe", "fifo"]);
        assert!(
            !String::from_utf8_lossy(&res.stderr).contains("d31"),
            "jobs {jobs}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        assert_empty_dir(out_dir.path());
    }
}

#[test]
fn skip_warnings_come_in_name_order_whatever_the_jobs() {
    let mut socks = Vec::new();
    let src = wide_tree_with(|root| {
        for d in ["d33", "d02", "d17"] {
            socks.push(std::os::unix::net::UnixListener::bind(root.join(d).join("sock")).unwrap());
        }
    });
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path().join("o.tar");
    for jobs in ["1", "2", "8"] {
        let res = pack_with_jobs(src.path(), &o, jobs);
        assert!(res.status.success());
        let err = String::from_utf8_lossy(&res.stderr);
        let order: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("socket skipped"))
            .map(|l| {
                if l.contains("d02") {
                    "d02"
                } else if l.contains("d17") {
                    "d17"
                } else {
                    "d33"
                }
            })
            .collect();
        assert_eq!(order, ["d02", "d17", "d33"], "jobs {jobs}: {err}");
    }
}

/// A tar.gz of about 1 MiB whose first member is a pax header declaring (and
/// holding) 1 GiB. `pack --from-tar` goes through the same bounded reader as
/// `extract`: both refuse it at the header, naming the limit, in bounded
/// memory (the child may map at most 512 MiB, so reading the header whole
/// would fail to allocate instead of exiting 3).
#[test]
fn from_tar_and_extract_refuse_a_1_gib_pax_header_in_bounded_memory() {
    use std::io::Write;

    use crate::support::rawtar::{raw_header, set_checksum};

    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.tar.gz");
    let declared: u64 = 1 << 30;
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(&bomb).unwrap(),
        flate2::Compression::fast(),
    );
    let mut h = raw_header(b"././@PaxHeader", b'x', 0o644, declared, b"");
    set_checksum(&mut h);
    gz.write_all(&h).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(declared >> 20) {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&raw_header(b"f", b'0', 0o644, 0, b""))
        .unwrap();
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap();
    assert!(fs::metadata(&bomb).unwrap().len() < 16 << 20);

    let limited = crate::support::bin::output_in_512_mib;
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let packed = limited(
        repropack()
            .args(["pack", "--from-tar"])
            .arg(&bomb)
            .arg("-o")
            .arg(out_dir.join("x.squashfs")),
    );
    assert_fails(
        &packed,
        exit::INPUT,
        &["bomb.tar.gz", "extension header", "1073741824"],
    );
    assert_empty_dir(&out_dir);

    let extracted = limited(
        repropack()
            .arg("extract")
            .arg(&bomb)
            .arg(dir.path().join("tree")),
    );
    assert_fails(
        &extracted,
        exit::INPUT,
        &["bomb.tar.gz", "extension header", "1073741824"],
    );
    assert!(!dir.path().join("tree").exists());
}
