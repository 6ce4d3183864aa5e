//! Trees with owners and extended attributes, built as root with the
//! system tools (chown, setfattr, setcap), and their dumps as the system
//! tools (stat, getfattr) see them.

use std::path::Path;
use std::process::Command;

use super::tool::have_tool;

/// True when the tests run as root (CI does), so owners, `security.*`
/// attributes and capabilities can be set; callers skip otherwise.
pub fn running_as_root() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: not root (owners and security.* attributes need it)");
    }
    root
}

/// Root, and every tool `tools` names installed (see [`have_tool`]).
pub fn root_with(tools: &[&str]) -> bool {
    running_as_root() && tools.iter().all(|t| have_tool(t))
}

/// Runs `cmd args…` and asserts it succeeded.
pub fn sh(cmd: &str, args: &[&std::ffi::OsStr]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `setfattr -h -n NAME -v VALUE PATH` (VALUE in getfattr's encodings:
/// `"text"`, `0x…` hex or `0s…` base64).
pub fn setfattr(path: &Path, name: &str, value: &str) {
    sh(
        "setfattr",
        &[
            "-h".as_ref(),
            "-n".as_ref(),
            name.as_ref(),
            "-v".as_ref(),
            value.as_ref(),
            path.as_os_str(),
        ],
    );
}

/// `chown -h UID:GID PATH`.
pub fn chown(path: &Path, uid: u32, gid: u32) {
    let owner = format!("{uid}:{gid}");
    sh("chown", &["-h".as_ref(), owner.as_ref(), path.as_os_str()]);
}

/// A small root filesystem: a file with text, binary and capability
/// attributes and its own owner, a setuid file owned by a group, a
/// directory with an attribute, a symlink with its own owner, and a hard
/// link. Owners first: `chown` clears `security.capability`.
pub fn rootfs_tree(root: &Path) {
    let p = |rel: &str| root.join(rel);
    std::fs::create_dir(p("etc")).unwrap();
    std::fs::write(p("etc/shadow"), b"root:*:1::::::\n").unwrap();
    std::fs::write(p("ping"), b"\x7fELF ping").unwrap();
    std::fs::write(p("su"), b"\x7fELF su").unwrap();
    std::os::unix::fs::symlink("ping", p("ping6")).unwrap();
    std::fs::hard_link(p("su"), p("su-link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |rel: &str, m: u32| {
        std::fs::set_permissions(p(rel), std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode("etc/shadow", 0o640);
    mode("su", 0o4755);
    mode("ping", 0o755);
    chown(&p("etc"), 0, 0);
    chown(&p("etc/shadow"), 0, 42);
    chown(&p("ping"), 1234, 5678);
    chown(&p("ping6"), 7, 8);
    chown(&p("su"), 0, 0);
    mode("su", 0o4755);
    setfattr(&p("ping"), "user.plain", "\"hello\"");
    setfattr(&p("ping"), "user.bin", "0x000102ff0a3d");
    setfattr(&p("ping"), "user.a=b%c", "\"odd name\"");
    setfattr(&p("etc"), "user.dir", "\"d\"");
    sh(
        "setcap",
        &["cap_net_raw+ep".as_ref(), p("ping").as_os_str()],
    );
}

/// Every path under `root` (sorted, the root itself left out) with owner, mode and type as
/// `stat` prints them and every attribute as `getfattr -d -m - -e hex`
/// dumps it: what two extractions must agree on. Mtimes are left out.
pub fn owner_xattr_dump(root: &Path) -> String {
    let script = r#"cd "$1" && find . -mindepth 1 -print0 | sort -z | while IFS= read -r -d '' p; do
        stat -c '%n %u:%g %a %F' "$p"; getfattr -h -d -m - -e hex "$p" 2>/dev/null | grep -v "^$" || true; done"#;
    let out = Command::new("bash")
        .args(["-c", script, "dump"])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
