//! `repropack fetch` over TLS: a Python `http.server` wrapped in `ssl` on
//! 127.0.0.1 with a throwaway certificate made by the `openssl` CLI. The
//! certificate is trusted only through `SSL_CERT_FILE`; without it the
//! fetch must fail (once, not retried) instead of accepting the server.
//!
//! Needs `python3` and `openssl`: fails when CI is set and they are
//! missing, skips with a message otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use repropack::digest::Sha256Digest;

use crate::support::bin::{repropack, run_ok};
use crate::support::tool::have_tool;

const SERVER: &str = r#"
import functools, http.server, ssl, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

fn tools_present() -> bool {
    have_tool("python3") && have_tool("openssl")
}

/// The Python server; killed (by its own pid) on drop.
struct Https {
    child: Child,
    port: u16,
}

impl Https {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Https {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(dir)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("port from server");
        Https { child, port }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_fetch_verifies_the_server_certificate() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("a.tar"), &body).unwrap();
    let server = Https::start(dir.path(), &cert, &key);
    let r = format!(
        "https://127.0.0.1:{}/a.tar#sha256={}",
        server.port,
        Sha256Digest::of(&body)
    );

    let cache = tempfile::tempdir().unwrap();
    let out = repropack()
        .args(["fetch", &r, "--cache"])
        .arg(cache.path())
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap();
    assert_eq!(std::fs::read(path.trim()).unwrap(), body);

    // Not trusted: an empty trust file. Permanent, so a single attempt.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = repropack()
        .args(["fetch", &r, "--retries", "3", "--cache"])
        .arg(cache.path())
        .env("SSL_CERT_FILE", &empty)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(crate::support::exit::FETCH),
        "{err}"
    );
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("after 1 attempt)"), "{err}");
    let stored: Vec<_> = walkdir::WalkDir::new(cache.path())
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
        .map(|e| e.path().to_path_buf())
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
}
