//! The README's build → deploy recipe end to end, command for command, on
//! two directories standing for two machines, with the artifact published
//! behind `python3 -m http.server` on 127.0.0.1: build signs the manifest
//! and the marker and names the URLs; deploy trusts only the public key,
//! fetches through the manifest, promotes with `--expect-revision` and
//! gates on the signed marker. The fetched bytes are checked with coreutils
//! `sha256sum`, and the server's log shows that the first URL, which 404s,
//! was tried before the second.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin::{code, ok, repropack, stderr, stdout};
use crate::support::exit;
use crate::support::fixtures::manifest_sample_tree;
use crate::support::hash::sha256sum;
use crate::support::tool::have_tool;

/// `python3 -m http.server` serving `root` on 127.0.0.1, its request log
/// in `log`; killed on drop.
struct WebServer {
    child: Child,
    port: u16,
}

impl WebServer {
    fn start(root: &Path, log: &Path) -> WebServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        WebServer { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `repropack ARGS` in `dir` with `env`.
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = repropack();
    cmd.current_dir(dir).args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn build_signs_and_names_urls_deploy_fetches_verifies_and_gates() {
    if !have_tool("python3") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (build, deploy, www) = (
        d.path().join("build"),
        d.path().join("deploy"),
        d.path().join("www"),
    );
    for dir in [&build, &deploy, &www.join("app")] {
        fs::create_dir_all(dir).unwrap();
    }
    manifest_sample_tree(&build.join("out"));
    let log = d.path().join("http.log");
    let web = WebServer::start(&www, &log);
    let (first, second) = (web.url("/gone/app.squashfs"), web.url("/app/app.squashfs"));
    let rev = "0123456789abcdef0123456789abcdef01234567";

    // Build machine.
    ok(&run(
        &build,
        &[],
        &["keygen", "-s", "ci.sec", "-p", "ci.pub"],
    ));
    let printed = ok(&run(
        &build,
        &[],
        &[
            "pack",
            "out/",
            "-o",
            "app.squashfs",
            "--source-revision",
            rev,
            "--manifest",
            "app.manifest.json",
            "--sign",
            "ci.sec",
            "--url",
            &first,
            "--url",
            &second,
        ],
    ));
    let hex = sha256sum(&build.join("app.squashfs"));
    assert_eq!(printed.trim(), format!("{first}#sha256={hex}"));
    ok(&run(
        &build,
        &[],
        &[
            "check",
            "--against",
            "app.squashfs",
            "out/",
            "--sign",
            "ci.sec",
        ],
    ));
    let store = d.path().join("store");
    fs::create_dir(&store).unwrap();
    let pushed = ok(&run(
        &build,
        &[],
        &["push", "app.squashfs", store.to_str().unwrap()],
    ));
    assert!(
        pushed.trim().ends_with(&format!("#sha256={hex}")),
        "{pushed}"
    );
    // Publish where the second URL points; hand over the manifest.
    for f in [
        "app.squashfs",
        "app.squashfs.minisig",
        "app.squashfs.verified",
        "app.squashfs.verified.minisig",
    ] {
        fs::copy(build.join(f), www.join("app").join(f)).unwrap();
    }
    for f in ["app.manifest.json", "app.manifest.json.minisig", "ci.pub"] {
        fs::copy(build.join(f), deploy.join(f)).unwrap();
    }

    // Deploy machine: trusts ci.pub, knows nothing else.
    let cache = d.path().join("cache");
    let env = [("REPROPACK_CACHE", cache.to_str().unwrap())];
    let fetched = run(
        &deploy,
        &env,
        &[
            "fetch",
            "--manifest",
            "app.manifest.json",
            "--trusted-key",
            "ci.pub",
        ],
    );
    let local = ok(&fetched).trim().to_string();
    assert_eq!(sha256sum(Path::new(&local)), hex);
    // The artifact's signature and markers, as downloaded next to it.
    for f in [
        "app.squashfs.minisig",
        "app.squashfs.verified",
        "app.squashfs.verified.minisig",
    ] {
        fs::copy(www.join("app").join(f), deploy.join(f)).unwrap();
    }
    let promote = |rev: &str| {
        run(
            &deploy,
            &env,
            &[
                "verify",
                &local,
                "--trusted-key",
                "ci.pub",
                "--signature",
                "app.squashfs.minisig",
                "--manifest",
                "app.manifest.json",
                "--expect-revision",
                rev,
            ],
        )
    };
    let verified = promote(rev);
    assert!(ok(&verified).contains("OK"), "{}", stdout(&verified));
    fs::copy(&local, deploy.join("app.squashfs")).unwrap();
    ok(&run(
        &deploy,
        &env,
        &[
            "gate",
            "app.squashfs",
            "--trusted-key",
            "ci.pub",
            "--require-verified",
        ],
    ));

    // The gate counts only a signed marker.
    fs::remove_file(deploy.join("app.squashfs.verified.minisig")).unwrap();
    let unsigned = run(
        &deploy,
        &env,
        &[
            "gate",
            "app.squashfs",
            "--trusted-key",
            "ci.pub",
            "--require-verified",
        ],
    );
    assert_eq!(code(&unsigned), exit::UNVERIFIED, "{}", stderr(&unsigned));

    // Another revision is not promoted, and a stranger's key opens nothing.
    let other = promote("feedface");
    assert_eq!(code(&other), exit::DIFFERENT, "{}", stderr(&other));
    ok(&run(
        &deploy,
        &[],
        &["keygen", "-s", "x.sec", "-p", "x.pub"],
    ));
    let stranger = run(
        &deploy,
        &[("REPROPACK_TRUSTED_KEYS", "x.pub")],
        &[
            "fetch",
            "--manifest",
            "app.manifest.json",
            "--cache",
            "other-cache",
        ],
    );
    assert_eq!(code(&stranger), exit::SIGNATURE, "{}", stderr(&stranger));
    assert!(!deploy.join("other-cache").exists());

    // The server saw the 404 first, then the download, and nothing else.
    drop(web);
    let mut text = String::new();
    fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let requests: Vec<&str> = text.lines().filter(|l| l.contains("\"GET ")).collect();
    assert_eq!(requests.len(), 2, "{text}");
    assert!(
        requests[0].contains("/gone/app.squashfs") && requests[0].contains(" 404 "),
        "{text}"
    );
    assert!(
        requests[1].contains("/app/app.squashfs") && requests[1].contains(" 200 "),
        "{text}"
    );
}
