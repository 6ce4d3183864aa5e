//! Root-filesystem-like trees: owners, special bits, file capabilities and
//! extended attributes, made with the system's own tools (`chown`,
//! `setfattr`, `setcap`, `mknod`), and the tools' views of a tree
//! (`getfattr`, `getcap`, `unsquashfs -lln`).
//!
//! Building such a tree needs root. Without root a test skips (saying so),
//! except under CI, which runs as root: there a skip would hide a check,
//! so [`am_root`] panics.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use super::bin::{run_ok, stdout};
use super::tool::tool;

/// True when running as root; otherwise says the test is skipped (and
/// panics under CI).
pub fn am_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test needs root, and CI runs as root"
        );
        eprintln!("skipping: needs root (chown, setcap, trusted.* attributes)");
    }
    root
}

/// True when every tool of `names` is installed (see [`tool`]).
pub fn have_all(names: &[&str]) -> bool {
    names.iter().all(|n| tool(n).is_some())
}

/// `setfattr -h -n NAME -v VALUE PATH` (the value given as hex, so any
/// bytes go through).
pub fn setfattr(path: &Path, name: &str, value: &[u8]) {
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    run_ok(
        Command::new("setfattr")
            .arg("-h")
            .arg("-n")
            .arg(name)
            .arg("-v")
            .arg(format!("0x{hex}"))
            .arg(path),
    );
}

fn chown(path: &Path, uid: u32, gid: u32) {
    run_ok(
        Command::new("chown")
            .arg("-h")
            .arg(format!("{uid}:{gid}"))
            .arg(path),
    );
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A value of `len` bytes that differs by `seed`.
pub fn value(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i as u8).wrapping_mul(7).wrapping_add(seed)) % 26)
        .collect()
}

/// Builds, at `root`, a small root filesystem: a setuid-root `su`, setgid
/// binaries of group 42 (`shadow`), `/etc/shadow` 0640 root:42, a home
/// directory of 1000:1000, `ping` with `cap_net_raw`, SELinux-like
/// `security.selinux` labels, `user.` and `trusted.` attributes (values of
/// 1 byte to 2 KiB, some repeated across files), twenty files sharing one
/// attribute set, a symlink, a fifo and a device with attributes, and a
/// hard-linked pair. `reverse` creates everything, and sets each file's
/// attributes, in the opposite order; the tree is the same.
pub fn rootfs_tree(root: &Path, reverse: bool) {
    type Step = Box<dyn Fn(&Path)>;
    let label = |t: &str| format!("system_u:object_r:{t}:s0\0").into_bytes();
    let mut dirs = [
        "bin",
        "sbin",
        "etc",
        "home/alice",
        "lib",
        "var/log",
        "dev",
        "run",
    ];
    if reverse {
        dirs.reverse();
    }
    for d in dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let mut steps: Vec<Step> = Vec::new();
    let file = |rel: &'static str, body: &'static [u8], mode: u32, owner: (u32, u32)| -> Step {
        Box::new(move |r| {
            let p = r.join(rel);
            fs::write(&p, body).unwrap();
            chown(&p, owner.0, owner.1);
            chmod(&p, mode);
        })
    };
    steps.push(file("bin/su", b"su binary", 0o4755, (0, 0)));
    steps.push(file("bin/ping", b"ping binary", 0o755, (0, 0)));
    steps.push(file("sbin/unix_chkpwd", b"chkpwd", 0o2755, (0, 42)));
    steps.push(file("bin/chage", b"chage", 0o2755, (0, 42)));
    steps.push(file("etc/shadow", b"root:*:1::::::\n", 0o640, (0, 42)));
    steps.push(file("var/log/wtmp", b"", 0o664, (0, 43)));
    steps.push(file("home/alice/notes", b"hello\n", 0o600, (1000, 1000)));
    steps.push(file("etc/hostname", b"box\n", 0o644, (0, 0)));
    steps.push(Box::new(|r| {
        let home = r.join("home/alice");
        chown(&home, 1000, 1000);
        chmod(&home, 0o700);
    }));
    steps.push(Box::new(|r| {
        symlink("../bin/su", r.join("sbin/su")).unwrap();
    }));
    steps.push(Box::new(|r| {
        run_ok(Command::new("mkfifo").arg(r.join("run/initctl")));
        run_ok(
            Command::new("mknod")
                .arg(r.join("dev/null"))
                .args(["c", "1", "3"]),
        );
        chmod(&r.join("dev/null"), 0o666);
    }));
    steps.push(Box::new(|r| {
        fs::write(r.join("lib/linked"), b"one inode, two names").unwrap();
        fs::hard_link(r.join("lib/linked"), r.join("bin/linked")).unwrap();
    }));
    for i in 0..20 {
        steps.push(Box::new(move |r| {
            let p = r.join(format!("lib/lib{i:02}.so"));
            fs::write(&p, format!("library {i}")).unwrap();
        }));
    }
    let mut attrs: Vec<(String, &'static str, Vec<u8>)> = vec![
        ("bin/su".into(), "security.selinux", label("su_exec_t")),
        ("bin/ping".into(), "security.selinux", label("ping_exec_t")),
        ("etc/shadow".into(), "security.selinux", label("shadow_t")),
        ("etc/shadow".into(), "trusted.overlay.opaque", b"y".to_vec()),
        ("home/alice".into(), "user.quota", b"10G".to_vec()),
        (
            "home/alice/notes".into(),
            "user.mime_type",
            b"text/plain".to_vec(),
        ),
        ("home/alice/notes".into(), "user.big", value(1, 2000)),
        ("home/alice/notes".into(), "user.medium", value(2, 300)),
        ("home/alice/notes".into(), "trusted.t", b"x".to_vec()),
        ("etc/hostname".into(), "user.medium_again", value(2, 300)),
        ("etc/hostname".into(), "user.empty", Vec::new()),
        (
            "sbin/su".into(),
            "trusted.link",
            b"symlink attribute".to_vec(),
        ),
        ("sbin/su".into(), "security.selinux", label("su_exec_t")),
        ("run/initctl".into(), "trusted.fifo", b"fifo".to_vec()),
        (
            "dev/null".into(),
            "security.selinux",
            label("null_device_t"),
        ),
        (
            "lib/linked".into(),
            "user.linked",
            b"shared by both names".to_vec(),
        ),
    ];
    for i in 0..20 {
        let p = format!("lib/lib{i:02}.so");
        attrs.push((p.clone(), "security.selinux", label("lib_t")));
        attrs.push((p.clone(), "user.shared", value(3, 200)));
        attrs.push((p, "user.a", b"same".to_vec()));
    }
    if reverse {
        steps.reverse();
        attrs.reverse();
    }
    for step in &steps {
        step(root);
    }
    for (rel, name, v) in &attrs {
        setfattr(&root.join(rel), name, v);
    }
    // After the attributes: setcap replaces security.capability only.
    run_ok(
        Command::new("setcap")
            .arg("cap_net_raw+ep")
            .arg(root.join("bin/ping")),
    );
    // Modes never depend on the umask; chown cleared setuid/setgid.
    for d in dirs {
        chmod(&root.join(d), 0o755);
    }
    for d in ["home", "var"] {
        chmod(&root.join(d), 0o755);
    }
    chmod(&root.join("home/alice"), 0o700);
    chmod(&root.join("run/initctl"), 0o600);
    chmod(&root.join("lib/linked"), 0o644);
    for i in 0..20 {
        chmod(&root.join(format!("lib/lib{i:02}.so")), 0o644);
    }
    chmod(&root.join("bin/su"), 0o4755);
    chmod(&root.join("sbin/unix_chkpwd"), 0o2755);
    chmod(&root.join("bin/chage"), 0o2755);
}

/// `getfattr -R -h -d -m - -e hex .` run in `dir`: every attribute of every
/// path below it, paths sorted, as text.
pub fn getfattr_dump(dir: &Path) -> String {
    let o = run_ok(
        Command::new("getfattr")
            .args(["-R", "-h", "-d", "-m", "-", "-e", "hex", "."])
            .current_dir(dir),
    );
    // getfattr lists in directory order: sort the per-file blocks.
    let text = String::from_utf8(o.stdout).unwrap();
    let mut blocks: Vec<String> = text
        .split("\n\n")
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .map(|b| {
            let mut lines: Vec<&str> = b.lines().collect();
            lines[1..].sort_unstable();
            lines.join("\n")
        })
        .collect();
    blocks.sort_unstable();
    blocks.join("\n\n")
}

/// `getcap PATH`'s capability text (`cap_net_raw=ep`), empty when none.
pub fn getcap(path: &Path) -> String {
    let o = run_ok(Command::new("getcap").arg(path));
    let text = String::from_utf8(o.stdout).unwrap();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// `unsquashfs -lln IMG` without the date and time columns (what mksquashfs
/// keeps and we set to the epoch) and without directory sizes (which
/// depend on how a writer cuts listings): one line per entry, `MODE
/// UID/GID SIZE PATH`.
pub fn listing(img: &Path) -> String {
    let o = run_ok(Command::new("unsquashfs").arg("-lln").arg(img));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // mode owner size date time path [-> target]; a device's size
            // is `major, minor`.
            let (size, rest) = match f[0].as_bytes()[0] {
                b'd' => ("-".to_string(), 5),
                b'c' | b'b' => (format!("{}{}", f[2], f[3]), 6),
                _ => (f[2].to_string(), 5),
            };
            format!("{} {} {} {}", f[0], f[1], size, f[rest..].join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Owner, mode and type of every path below `root` as `stat` prints them
/// (sorted, the root itself left out), then every attribute as `getfattr`
/// dumps it: what two extractions must agree on. Mtimes are left out.
pub fn owner_xattr_dump(root: &Path) -> String {
    let script =
        r#"cd "$1" && find . -mindepth 1 -print0 | sort -z | xargs -0 stat -c '%n %u:%g %a %F'"#;
    let out = run_ok(Command::new("bash").args(["-c", script, "dump"]).arg(root));
    format!("{}\n{}", stdout(&out), getfattr_dump(root))
}
