//! A real OCI registry for the tests: Debian's `docker-registry` (the
//! CNCF distribution registry) on 127.0.0.1 with a temp storage dir and a
//! generated config, with or without htpasswd auth; and the ORAS Python
//! SDK in a venv the tests make, as an independent client.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::bin::run_ok;
use super::tool::tool;

/// A running registry; killed when dropped.
pub struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// A registry without auth, or `None` (skip) when `docker-registry` is
    /// not installed outside CI.
    pub fn start() -> Option<Registry> {
        Registry::launch(None)
    }

    /// A registry requiring basic auth for `user`/`password` (htpasswd,
    /// bcrypt, written by `htpasswd -Bbn`).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Option<Registry> {
        tool("htpasswd")?;
        Registry::launch(Some((user, password)))
    }

    fn launch(auth: Option<(&str, &str)>) -> Option<Registry> {
        let exe = tool("docker-registry")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = auth {
            let out = run_ok(Command::new("htpasswd").args(["-Bbn", user, password]));
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: repropack-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(exe)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = Registry {
            child: Some(child),
            dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:PORT/{rest}`.
    pub fn oci(&self, rest: &str) -> String {
        format!("oci://{}/{rest}", self.authority())
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority())
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines `"METHOD PATH… HTTP/1.1" STATUS`: requests whose
    /// target starts with `path`, answered `status`.
    pub fn count(&self, method: &str, path: &str, status: u16) -> usize {
        let needle = format!("\"{method} {path}");
        let tail = format!(" HTTP/1.1\" {status} ");
        self.log()
            .lines()
            .filter(|l| {
                l.find(&needle)
                    .is_some_and(|i| l[i..].contains(&tail) && !l.contains("level="))
            })
            .count()
    }

    /// Stops the registry now (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The python of a venv with the ORAS Python SDK (`pip install oras`),
/// made once per test run in a temp dir. It fails loudly when the venv or
/// the install cannot be made: this client is one of the independent
/// checks and must not be skipped quietly.
pub fn oras_python() -> Option<PathBuf> {
    static VENV: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    tool("python3")?;
    let (_, python) = VENV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .expect("run python3 -m venv");
        assert!(
            out.status.success(),
            "python3 -m venv failed (Debian: apt-get install python3-venv): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python = venv.join("bin").join("python");
        let out = Command::new(&python)
            .args(["-m", "pip", "install", "-q", "oras"])
            .output()
            .expect("run pip");
        assert!(
            out.status.success(),
            "pip install oras failed (the ORAS SDK needs PyPI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, python)
    });
    Some(python.clone())
}

/// Runs `script` with the ORAS venv's python; panics with its output
/// unless it succeeds.
pub fn run_oras(python: &Path, script: &str, args: &[&str]) -> String {
    let mut child = Command::new(python)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ORAS script failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}
