//! Running the `repropack` binary under test and other commands.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_repropack")
}

/// A command running the binary with the variables that change its
/// behaviour removed (a test sets them on the command, never on the test
/// process, since suites share one process) and proxies bypassed for the
/// loopback test servers.
pub fn repropack() -> Command {
    let mut c = Command::new(bin());
    c.env_remove("SOURCE_DATE_EPOCH")
        .env_remove("REPROPACK_REQUIRE_VERIFIED")
        .env_remove("REPROPACK_TRUSTED_KEYS")
        .env_remove("REPROPACK_JOBS")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    c
}

/// Runs `repropack ARGS` and returns what it did, success or not.
pub fn repropack_out<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    repropack_env(args, &[])
}

/// [`repropack_out`] with extra environment variables for the child.
pub fn repropack_env<I, S>(args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = repropack();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run repropack")
}

/// Runs a command and panics with its stderr and stdout unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// stdout of a successful run; panics with its output otherwise.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "repropack failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The exit code, -1 for a signal.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Parses the JSON stdout of a successful run.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `repropack pack ARGS -o OUT`; returns the sha256 hex of the printed ref
/// after checking it against coreutils `sha256sum` of the file.
pub fn pack(out: &std::path::Path, args: &[&str]) -> String {
    let o = run_ok(repropack().arg("pack").args(args).arg("-o").arg(out));
    let line = String::from_utf8(o.stdout).unwrap();
    let hex = line
        .trim()
        .rsplit_once("#sha256=")
        .expect("ref")
        .1
        .to_string();
    assert_eq!(
        hex,
        super::hash::sha256sum(out),
        "printed ref must match the file"
    );
    hex
}

/// Runs `cmd` with its address space limited to 512 MiB, so that reading
/// something whole, or allocating from a declared size, fails to allocate
/// instead of succeeding.
pub fn output_in_512_mib(cmd: &mut Command) -> Output {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 512 << 20,
                rlim_max: 512 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}
