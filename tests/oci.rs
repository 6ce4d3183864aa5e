//! `push`, `fetch` and `resolve` against OCI registries: a real CNCF
//! distribution registry (Debian's `docker-registry`) on 127.0.0.1, with
//! and without htpasswd auth, and the fault HTTP server playing a lying
//! registry and a bearer-token registry. What we push is read back by
//! independent clients (skopeo, curl, the ORAS Python SDK, coreutils
//! `sha256sum`), and what they push is what we fetch.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::bin::{repropack, run_ok};
use crate::support::cache::cache_content;
use crate::support::exit;
use crate::support::fixtures::artifact;
use crate::support::hash::{sha256_hex, sha256sum};
use crate::support::http_server::{Reply, Server};
use crate::support::registry::{Registry, oras_python, run_oras};
use crate::support::tool::tool;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = repropack();
    c.args(args).stdin(Stdio::null());
    // No credentials of the machine running the tests leak in.
    c.env("DOCKER_CONFIG", "/nonexistent")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("REPROPACK_INSECURE_REGISTRIES");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run repropack")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "repropack failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn push(file: &Path, dest: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let out = run(&["push", file.to_str().unwrap(), dest, "--json"], env);
    serde_json::from_str(&ok(&out)).unwrap()
}

fn fetch(reference: &str, cache: &Path, env: &[(&str, &str)]) -> Output {
    run(
        &[
            "fetch",
            reference,
            "--cache",
            cache.to_str().unwrap(),
            "--timeout",
            "2",
        ],
        env,
    )
}

fn write_artifact(dir: &Path, name: &str, seed: u8, len: usize) -> (PathBuf, Vec<u8>) {
    let body = artifact(seed, len);
    let path = dir.join(name);
    fs::write(&path, &body).unwrap();
    (path, body)
}

fn curl_blob(url: &str, to: &Path, extra: &[&str]) {
    run_ok(
        Command::new("curl")
            .args(["-fsSL", "-o"])
            .arg(to)
            .args(extra)
            .arg(url),
    );
}

#[test]
fn pushed_artifact_is_an_oras_style_manifest_that_skopeo_curl_and_oras_read() {
    let Some(reg) = Registry::start() else { return };
    if tool("skopeo").is_none() || tool("curl").is_none() {
        return;
    }
    let Some(python) = oras_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "app.squashfs", 1, 300_000);
    let hex = sha256sum(&file);
    let pushed = push(&file, &reg.oci("team/app:v1"), &[]);
    assert_eq!(
        pushed["ref"],
        format!("{}#sha256={hex}", reg.oci("team/app:v1"))
    );
    assert_eq!(pushed["uploaded"], true);

    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/team/app:v1", reg.authority()),
    ]));
    let m: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], "application/vnd.repropack.squashfs.v1");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        m["config"]["digest"],
        format!("sha256:{}", sha256_hex(b"{}"))
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["digest"], format!("sha256:{hex}"));
    assert_eq!(layers[0]["size"], body.len());
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.repropack.squashfs.v1"
    );
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "app.squashfs"
    );

    let by_curl = dir.path().join("curl.bin");
    curl_blob(
        &reg.url(&format!("/v2/team/app/blobs/sha256:{hex}")),
        &by_curl,
        &[],
    );
    assert_eq!(sha256sum(&by_curl), hex);

    let copied = dir.path().join("skopeo-dir");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/team/app:v1", reg.authority()),
        &format!("dir:{}", copied.display()),
    ]));
    assert_eq!(fs::read(copied.join(&hex)).unwrap(), body);

    let out = dir.path().join("oras-out");
    let pulled = run_oras(
        &python,
        "import sys, oras.client\n\
         c = oras.client.OrasClient(insecure=True)\n\
         print('\\n'.join(c.pull(target=sys.argv[1], outdir=sys.argv[2])))\n",
        &[
            &format!("{}/team/app:v1", reg.authority()),
            out.to_str().unwrap(),
        ],
    );
    assert!(pulled.contains("app.squashfs"), "{pulled}");
    assert_eq!(fs::read(out.join("app.squashfs")).unwrap(), body);
}

#[test]
fn oras_pushed_file_is_resolved_and_fetched_verified() {
    let Some(reg) = Registry::start() else { return };
    let Some(python) = oras_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "data.bin", 2, 200_000);
    run_oras(
        &python,
        "import os, sys, oras.client\n\
         os.chdir(os.path.dirname(sys.argv[2]))\n\
         c = oras.client.OrasClient(insecure=True)\n\
         c.push(target=sys.argv[1], files=[os.path.basename(sys.argv[2])])\n",
        &[
            &format!("{}/by/oras:t1", reg.authority()),
            file.to_str().unwrap(),
        ],
    );
    let hex = sha256sum(&file);
    let resolved = ok(&run(&["resolve", &reg.oci("by/oras:t1")], &[]));
    assert_eq!(resolved, format!("{}#sha256={hex}", reg.oci("by/oras:t1")));
    let cache = dir.path().join("cache");
    let path = ok(&fetch(&resolved, &cache, &[]));
    assert_eq!(fs::read(&path).unwrap(), body);
    assert_eq!(sha256sum(Path::new(&path)), hex);
}

#[test]
fn second_push_skips_the_upload_and_large_files_go_up_in_chunks() {
    let Some(reg) = Registry::start() else { return };
    if tool("curl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // More than one 32 MiB chunk.
    let (file, _) = write_artifact(dir.path(), "big.tar", 3, 40 << 20);
    let hex = sha256sum(&file);
    let first = push(&file, &reg.oci("big"), &[]);
    assert_eq!(
        first["ref"],
        format!("{}#sha256={hex}", reg.oci("big:latest"))
    );
    assert_eq!(first["uploaded"], true);
    assert_eq!(reg.count("PATCH", "/v2/big/blobs/uploads/", 202), 2);
    let uploads = reg.count("POST", "/v2/big/blobs/uploads/", 202);
    let second = push(&file, &reg.oci("big:again"), &[]);
    assert_eq!(second["uploaded"], false);
    // Only the (present) empty config is checked again: no new upload session.
    assert_eq!(reg.count("POST", "/v2/big/blobs/uploads/", 202), uploads);
    let got = dir.path().join("got");
    curl_blob(&reg.url(&format!("/v2/big/blobs/sha256:{hex}")), &got, &[]);
    assert_eq!(sha256sum(&got), hex);
}

#[test]
fn fetch_of_a_digest_the_repository_lacks_fails_with_exit_6_and_caches_nothing() {
    let Some(reg) = Registry::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let missing = sha256_hex(b"not pushed");
    let out = fetch(
        &format!("{}#sha256={missing}", reg.oci("team/app")),
        &cache,
        &[],
    );
    assert_eq!(out.status.code(), Some(exit::FETCH), "{}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    assert_eq!(cache_content(&cache), Vec::<PathBuf>::new());
}

#[test]
fn fetch_of_a_tag_without_digest_is_refused_and_points_at_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let out = fetch("oci://127.0.0.1:9/team/app:v1", &dir.path().join("c"), &[]);
    assert_eq!(out.status.code(), Some(exit::INPUT));
    assert!(
        stderr(&out).contains("repropack resolve"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn concurrent_fetches_of_one_ref_make_one_blob_get() {
    let Some(reg) = Registry::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "a.tar", 4, 2 << 20);
    let r = push(&file, &reg.oci("conc"), &[])["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let cache = dir.path().join("cache");
    let children: Vec<_> = (0..16)
        .map(|_| {
            let mut c = repropack();
            c.args(["fetch", &r, "--cache", cache.to_str().unwrap()])
                .env("DOCKER_CONFIG", "/nonexistent")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let path = ok(&out);
        assert_eq!(fs::read(path).unwrap(), body);
    }
    let hex = sha256_hex(&body);
    assert_eq!(
        reg.count("GET", &format!("/v2/conc/blobs/sha256:{hex}"), 200),
        1,
        "{}",
        reg.log()
    );
}

#[test]
fn killed_registry_is_retried_then_fails_cleanly() {
    let Some(mut reg) = Registry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "a.tar", 5, 100_000);
    let r = push(&file, &reg.oci("gone"), &[])["ref"]
        .as_str()
        .unwrap()
        .to_string();
    reg.kill();
    let cache = dir.path().join("cache");
    let out = fetch(&r, &cache, &[]);
    assert_eq!(out.status.code(), Some(exit::FETCH), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("after 4 attempts"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cache_content(&cache), Vec::<PathBuf>::new());
}

#[test]
fn registry_reset_mid_blob_is_retried_then_fails_with_no_litter() {
    let server = Server::start();
    let body = artifact(6, 500_000);
    let hex = sha256_hex(&body);
    let path = format!("/v2/r/blobs/sha256:{hex}");
    server.route(
        &path,
        vec![Reply::Reset {
            body,
            send: 100_000,
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let r = format!("oci://{}/r#sha256={hex}", server.authority());
    let out = fetch(&r, &cache, &[]);
    assert_eq!(out.status.code(), Some(exit::FETCH), "{}", stderr(&out));
    assert_eq!(server.count(&path), 4);
    assert_eq!(cache_content(&cache), Vec::<PathBuf>::new());
}

#[test]
fn registry_serving_other_bytes_for_a_digest_fails_with_exit_5_and_caches_nothing() {
    let server = Server::start();
    let wanted = artifact(7, 10_000);
    let hex = sha256_hex(&wanted);
    let path = format!("/v2/lying/repo/blobs/sha256:{hex}");
    server.route(&path, vec![Reply::Ok(artifact(8, 10_000))]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = fetch(
        &format!("oci://{}/lying/repo:v1#sha256={hex}", server.authority()),
        &cache,
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(exit::HASH_MISMATCH),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("sha256 mismatch"), "{}", stderr(&out));
    assert_eq!(cache_content(&cache), Vec::<PathBuf>::new());
}

#[test]
fn bearer_challenge_is_answered_with_a_token_from_the_realm() {
    let server = Server::start();
    let body = artifact(9, 50_000);
    let hex = sha256_hex(&body);
    let blob = format!("/v2/team/app/blobs/sha256:{hex}");
    let challenge = format!(
        "Bearer realm=\"{}\",service=\"reg.test\",scope=\"repository:team/app:pull\"",
        server.url("/token")
    );
    server.route(
        &blob,
        vec![Reply::Authorized {
            expect: "Bearer tok-123".into(),
            challenge,
            body: body.clone(),
        }],
    );
    server.route(
        "/token",
        vec![Reply::Ok(br#"{"token":"tok-123"}"#.to_vec())],
    );
    let dir = tempfile::tempdir().unwrap();
    // Credentials from a docker config.json go to the token endpoint.
    let docker = dir.path().join("docker");
    fs::create_dir(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            server.authority(),
            "YWxpY2U6czNjcjN0" // alice:s3cr3t
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let r = format!("oci://{}/team/app#sha256={hex}", server.authority());
    let out = fetch(&r, &cache, &[("DOCKER_CONFIG", docker.to_str().unwrap())]);
    let got = ok(&out);
    assert_eq!(fs::read(got).unwrap(), body);
    let seen = server.seen(&blob);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok-123"));
    let token = server.seen("/token");
    assert_eq!(token.len(), 1);
    let target = &token[0].target;
    assert!(target.contains("service=reg.test"), "{target}");
    assert!(
        target.contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{target}"
    );
    assert_eq!(
        token[0].authorization.as_deref(),
        Some("Basic YWxpY2U6czNjcjN0")
    );
}

#[test]
fn htpasswd_registry_refuses_anonymous_and_accepts_each_credential_source() {
    let Some(reg) = Registry::start_with_htpasswd("alice", "pw-Secret-9") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "a.tar.gz", 10, 100_000);
    let hex = sha256_hex(&body);
    let cache = dir.path().join("cache");
    let pinned = format!("{}#sha256={hex}", reg.oci("sec/app"));

    // Anonymous: exit 6, naming the registry and "unauthorized".
    let out = fetch(&pinned, &cache, &[]);
    assert_eq!(out.status.code(), Some(exit::FETCH), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("unauthorized") && msg.contains(&reg.authority()),
        "{msg}"
    );

    // docker config.json `auths` (base64 user:password).
    let docker = dir.path().join("docker");
    fs::create_dir(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6cHctU2VjcmV0LTk="}}}}}}"#,
            reg.authority()
        ),
    )
    .unwrap();
    let docker_env = [("DOCKER_CONFIG", docker.to_str().unwrap())];
    let pushed = push(&file, &reg.oci("sec/app"), &docker_env);
    assert_eq!(
        pushed["ref"],
        format!("{}#sha256={hex}", reg.oci("sec/app:latest"))
    );
    let path = ok(&fetch(&pinned, &cache, &docker_env));
    assert_eq!(fs::read(path).unwrap(), body);

    // podman's REGISTRY_AUTH_FILE, username/password form.
    let podman = dir.path().join("auth.json");
    fs::write(
        &podman,
        format!(
            r#"{{"auths":{{"{}":{{"username":"alice","password":"pw-Secret-9"}}}}}}"#,
            reg.authority()
        ),
    )
    .unwrap();
    let cache2 = dir.path().join("cache2");
    let path = ok(&fetch(
        &pinned,
        &cache2,
        &[("REGISTRY_AUTH_FILE", podman.to_str().unwrap())],
    ));
    assert_eq!(fs::read(path).unwrap(), body);

    // A credential helper named by credHelpers, found on PATH.
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-testhelper");
    fs::write(
        &helper,
        "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 1\n\
         printf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"pw-Secret-9\"}' \"$host\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let helped = dir.path().join("helped");
    fs::create_dir(&helped).unwrap();
    fs::write(
        helped.join("config.json"),
        format!(
            r#"{{"credHelpers":{{"{}":"testhelper"}}}}"#,
            reg.authority()
        ),
    )
    .unwrap();
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let resolved = ok(&run(
        &["resolve", &reg.oci("sec/app")],
        &[
            ("DOCKER_CONFIG", helped.to_str().unwrap()),
            ("PATH", &path_var),
        ],
    ));
    assert_eq!(
        resolved,
        format!("{}#sha256={hex}", reg.oci("sec/app:latest"))
    );

    // A wrong password is refused, and no secret reaches the message.
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"username":"alice","password":"WRONG-pw-77"}}}}}}"#,
            reg.authority()
        ),
    )
    .unwrap();
    let out = fetch(&pinned, &dir.path().join("cache3"), &docker_env);
    assert_eq!(out.status.code(), Some(exit::FETCH));
    let msg = stderr(&out);
    assert!(msg.contains("unauthorized"), "{msg}");
    assert!(
        !msg.contains("WRONG-pw-77") && !msg.contains("pw-Secret-9"),
        "{msg}"
    );
}

#[test]
fn signature_is_pushed_as_a_referrer_of_the_artifact_manifest() {
    let Some(reg) = Registry::start() else { return };
    if tool("curl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "s.tar", 11, 10_000);
    let sig = b"untrusted comment: test\nRWQ...\n";
    fs::write(dir.path().join("s.tar.minisig"), sig).unwrap();
    let out = run(
        &[
            "push",
            file.to_str().unwrap(),
            &reg.oci("signed:v1"),
            "--sign",
            "--json",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let referrer = v["signature_manifest"].as_str().unwrap().to_string();
    let got = dir.path().join("referrer.json");
    curl_blob(
        &reg.url(&format!("/v2/signed/manifests/{referrer}")),
        &got,
        &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    let bytes = fs::read(&got).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), referrer);
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(m["artifactType"], "application/vnd.repropack.minisig.v1");
    assert_eq!(
        m["layers"][0]["digest"],
        format!("sha256:{}", sha256_hex(sig))
    );
    // The subject is the artifact's manifest as the registry serves it.
    let artifact = dir.path().join("artifact.json");
    curl_blob(
        &reg.url("/v2/signed/manifests/v1"),
        &artifact,
        &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    assert_eq!(
        m["subject"]["digest"],
        format!("sha256:{}", sha256sum(&artifact))
    );
    // Without the .minisig, --sign refuses.
    fs::remove_file(dir.path().join("s.tar.minisig")).unwrap();
    let out = run(
        &[
            "push",
            file.to_str().unwrap(),
            &reg.oci("signed:v2"),
            "--sign",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(exit::INPUT), "{}", stderr(&out));
}

#[test]
fn blob_get_follows_the_redirect_to_storage_without_the_registry_token() {
    let registry = Server::start();
    let storage = Server::start();
    let body = artifact(12, 80_000);
    let hex = sha256_hex(&body);
    let blob = format!("/v2/team/app/blobs/sha256:{hex}");
    let challenge = format!(
        "Bearer realm=\"{}\",service=\"reg.test\"",
        registry.url("/token")
    );
    registry.route(
        &blob,
        vec![
            Reply::Challenge(challenge),
            Reply::Redirect(storage.url("/bucket/object?sig=abc")),
        ],
    );
    registry.route(
        "/token",
        vec![Reply::Ok(br#"{"access_token":"tok-9"}"#.to_vec())],
    );
    storage.route("/bucket/object", vec![Reply::Ok(body.clone())]);
    let dir = tempfile::tempdir().unwrap();
    let r = format!("oci://{}/team/app#sha256={hex}", registry.authority());
    let path = ok(&fetch(&r, &dir.path().join("cache"), &[]));
    assert_eq!(fs::read(path).unwrap(), body);
    let seen = registry.seen(&blob);
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok-9"));
    let at_storage = storage.seen("/bucket/object");
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].target, "/bucket/object?sig=abc");
    assert_eq!(at_storage[0].authorization, None, "token leaked to storage");
}

#[test]
fn push_refused_by_an_htpasswd_registry_exits_6_naming_it_and_no_secret() {
    let Some(reg) = Registry::start_with_htpasswd("alice", "pw-Secret-9") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "a.tar", 14, 50_000);
    let docker = dir.path().join("docker");
    fs::create_dir(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"username":"alice","password":"WRONG-pw-77"}}}}}}"#,
            reg.authority()
        ),
    )
    .unwrap();
    let wrong = [("DOCKER_CONFIG", docker.to_str().unwrap())];
    for (what, env) in [
        ("no credentials", &[][..]),
        ("a wrong password", &wrong[..]),
    ] {
        let out = run(
            &[
                "push",
                file.to_str().unwrap(),
                &reg.oci("sec/app:v1"),
                "--json",
            ],
            env,
        );
        let msg = stderr(&out);
        assert_eq!(out.status.code(), Some(exit::FETCH), "{what}: {msg}");
        assert!(
            msg.contains(&format!("registry {}: unauthorized", reg.authority())),
            "{what}: {msg}"
        );
        assert!(out.stdout.is_empty(), "{what}: printed a result");
        for secret in ["WRONG-pw-77", "pw-Secret-9", "YWxpY2U6V1JPTkctcHctNzc"] {
            assert!(!msg.contains(secret), "{what}: {msg}");
        }
    }
    assert_eq!(reg.count("PUT", "/v2/sec/app/", 201), 0, "{}", reg.log());
}

/// Pushes `file` to `oci://SERVER/r` with `--retries 2` (three attempts
/// per step) and `--json`.
fn push_to_fake(server: &Server, file: &Path) -> Output {
    let dest = format!("oci://{}/r", server.authority());
    run(
        &[
            "push",
            file.to_str().unwrap(),
            &dest,
            "--retries",
            "2",
            "--json",
        ],
        &[],
    )
}

/// The fault server as a registry that lacks every blob (unrouted HEADs
/// are 404) and answers `POST /v2/r/blobs/uploads/` with 202 and
/// `location`.
fn fake_upload_start(server: &Server, location: &str) {
    server.route(
        "/v2/r/blobs/uploads/",
        vec![Reply::Headers {
            status: 202,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }],
    );
}

/// A failed push printed nothing, tagged nothing, and left only FILE in
/// its directory.
fn assert_failed_cleanly(server: &Server, out: &Output, dir: &Path) {
    assert!(out.stdout.is_empty(), "printed a result: {}", stderr(out));
    assert_eq!(server.count("/v2/r/manifests/latest"), 0);
    assert_eq!(cache_content(dir), vec![PathBuf::from("a.bin")]);
}

#[test]
fn upload_put_answered_500_is_retried_then_fails_with_exit_4_naming_the_step() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "a.bin", 15, 100_000);
    // A relative Location is the registry's own.
    fake_upload_start(&server, "/upload/1?session=x");
    server.route("/upload/1", vec![Reply::Status(500)]);
    let out = push_to_fake(&server, &file);
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(exit::OUTPUT), "{msg}");
    assert!(
        msg.contains(&format!(
            "{}: PUT upload: HTTP 500 Internal Server Error (after 3 attempts)",
            server.authority()
        )),
        "{msg}"
    );
    // Each attempt is a new upload session and the whole file.
    assert_eq!(server.count("/v2/r/blobs/uploads/"), 3);
    let puts = server.seen("/upload/1");
    assert_eq!(puts.len(), 3);
    for p in &puts {
        assert_eq!(p.method, "PUT");
        assert_eq!(p.body_len, body.len());
        assert_eq!(
            p.target,
            format!("/upload/1?session=x&digest=sha256%3A{}", sha256_hex(&body))
        );
    }
    assert_failed_cleanly(&server, &out, dir.path());
}

#[test]
fn tcp_reset_mid_upload_is_retried_then_fails_cleanly() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "a.bin", 16, 8 << 20);
    fake_upload_start(&server, "/upload/1");
    server.route("/upload/1", vec![Reply::ResetUpload { read: 1 << 20 }]);
    let out = push_to_fake(&server, &file);
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(exit::OUTPUT), "{msg}");
    assert!(msg.contains(&server.authority()), "{msg}");
    assert!(msg.contains("(after 3 attempts)"), "{msg}");
    assert_eq!(server.count("/v2/r/blobs/uploads/"), 3);
    assert_eq!(server.count("/upload/1"), 3);
    assert_failed_cleanly(&server, &out, dir.path());
}

#[test]
fn upload_location_off_the_registry_is_refused_before_any_request_to_it() {
    let server = Server::start();
    let other = Server::start();
    other.route("/upload/1", vec![Reply::Status(201)]);
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "a.bin", 17, 10_000);
    // Another port of the same host, then the registry's authority over
    // another scheme.
    for location in [
        other.url("/upload/1"),
        format!("https://{}/upload/1", server.authority()),
    ] {
        fake_upload_start(&server, &location);
        server.route("/upload/1", vec![Reply::Status(201)]);
        let before = server.connections();
        let out = push_to_fake(&server, &file);
        let msg = stderr(&out);
        assert_eq!(out.status.code(), Some(exit::OUTPUT), "{location}: {msg}");
        assert!(
            msg.contains(&format!(
                "{}: refused upload Location \"{location}\": not on the registry",
                server.authority()
            )),
            "{msg}"
        );
        // HEAD blob, POST, refused at once: not retried, no TLS attempt.
        assert_eq!(server.count("/v2/r/blobs/uploads/"), 1, "{location}");
        assert_eq!(server.connections() - before, 2, "{location}");
        assert_failed_cleanly(&server, &out, dir.path());
    }
    assert_eq!(other.connections(), 0);
}

#[test]
fn blob_put_reporting_another_digest_is_refused_and_nothing_is_tagged() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "a.bin", 18, 10_000);
    let other = sha256_hex(b"other bytes");
    fake_upload_start(&server, "/upload/1");
    server.route(
        "/upload/1",
        vec![Reply::Headers {
            status: 201,
            headers: vec![("Docker-Content-Digest".into(), format!("sha256:{other}"))],
            body: Vec::new(),
        }],
    );
    let out = push_to_fake(&server, &file);
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(exit::OUTPUT), "{msg}");
    assert!(
        msg.contains(&format!(
            "verification after upload failed: registry stored the blob as sha256:{other}, \
             expected sha256:{}",
            sha256_hex(&body)
        )),
        "{msg}"
    );
    assert_eq!(server.count("/upload/1"), 1, "a refusal is not retried");
    assert_failed_cleanly(&server, &out, dir.path());
}

/// The sizes of the cache's download temp files (`.HEX.*.tmp`).
fn temp_files(cache: &Path) -> Vec<(PathBuf, u64)> {
    walkdir::WalkDir::new(cache)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "tmp"))
        .filter_map(|e| Some((e.path().to_path_buf(), e.metadata().ok()?.len())))
        .collect()
}

/// The state letter of /proc/PID/stat (`T` stopped, `Z` zombie, …).
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces: the state follows
    // its closing one.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with the pid of our own unreaped child: it cannot
    // have been reused for another process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn registry_killed_mid_blob_is_retried_then_fails_with_exit_6_and_no_litter() {
    use std::time::{Duration, Instant};
    let Some(mut reg) = Registry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "a.bin", 19, 256 << 20);
    let r = push(&file, &reg.oci("killed"), &[])["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let cache = dir.path().join("cache");
    let mut child = repropack()
        .args(["fetch", &r, "--cache", cache.to_str().unwrap()])
        .args(["--timeout", "2", "--retries", "2"])
        .env("DOCKER_CONFIG", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run repropack fetch");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let not_yet = |child: &mut std::process::Child, when: &str| {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the fetch ended ({status}) {when}: the registry was not killed mid-blob");
        }
        assert!(
            Instant::now() < deadline,
            "the fetch made no progress to 16 MiB of 256 in 60 s"
        );
    };
    // Mid-blob: more than 16 MiB in the cache's temp file.
    let temp = loop {
        not_yet(&mut child, "before 16 MiB of the blob arrived");
        if let Some((path, _)) = temp_files(&cache).into_iter().find(|(_, n)| *n > 16 << 20) {
            break path;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // Stopped, so it cannot finish between this check and the kill.
    signal(pid, libc::SIGSTOP);
    while proc_state(pid) != Some('T') {
        not_yet(&mut child, "before it stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    reg.kill();
    signal(pid, libc::SIGCONT);
    let out = child.wait_with_output().unwrap();
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(exit::FETCH), "{msg}");
    assert!(msg.contains(&reg.authority()), "{msg}");
    assert!(msg.contains("(after 3 attempts)"), "{msg}");
    assert!(!temp.exists(), "{} left behind", temp.display());
    assert_eq!(cache_content(&cache), Vec::<PathBuf>::new());
    assert_eq!(cache_content(dir.path()), vec![PathBuf::from("a.bin")]);
}

const MINISIG_TYPE: &str = "application/vnd.repropack.minisig.v1";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

fn push_signed(file: &Path, dest: &str) -> serde_json::Value {
    let out = run(
        &["push", file.to_str().unwrap(), dest, "--sign", "--json"],
        &[],
    );
    serde_json::from_str(&ok(&out)).unwrap()
}

/// The manifest descriptors of the referrers index `tag`, as skopeo reads
/// it; curl must serve the same bytes.
fn referrers_index(reg: &Registry, repo: &str, tag: &str, dir: &Path) -> Vec<serde_json::Value> {
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/{repo}:{tag}", reg.authority()),
    ]));
    let by_curl = dir.join("index.json");
    curl_blob(
        &reg.url(&format!("/v2/{repo}/manifests/{tag}")),
        &by_curl,
        &["-H", &format!("Accept: {INDEX_TYPE}")],
    );
    assert_eq!(fs::read(&by_curl).unwrap(), raw.stdout);
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], INDEX_TYPE);
    index["manifests"].as_array().unwrap().clone()
}

#[test]
fn signature_on_a_registry_without_referrers_api_is_listed_under_the_referrers_tag() {
    let Some(reg) = Registry::start() else { return };
    if tool("skopeo").is_none() || tool("curl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_artifact(dir.path(), "r.squashfs", 13, 20_000);
    let sig_path = dir.path().join("r.squashfs.minisig");
    fs::write(&sig_path, b"untrusted comment: first\nRWQfirst\n").unwrap();
    let first = push_signed(&file, &reg.oci("refs/app:v1"));
    let first_sig = first["signature_manifest"].as_str().unwrap().to_string();

    // The tag is sha256-HEX of the artifact manifest as the registry serves it.
    let artifact = dir.path().join("artifact.json");
    curl_blob(
        &reg.url("/v2/refs/app/manifests/v1"),
        &artifact,
        &["-H", &format!("Accept: {MANIFEST_TYPE}")],
    );
    let tag = format!("sha256-{}", sha256sum(&artifact));
    assert_eq!(first["referrers_tag"], tag);
    let put_path = format!("/v2/refs/app/manifests/{tag}");
    assert_eq!(reg.count("PUT", &put_path, 201), 1, "{}", reg.log());

    let listed = referrers_index(&reg, "refs/app", &tag, dir.path());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["digest"], first_sig);
    assert_eq!(listed[0]["mediaType"], MANIFEST_TYPE);
    assert_eq!(listed[0]["artifactType"], MINISIG_TYPE);
    let referrer = dir.path().join("referrer.json");
    curl_blob(
        &reg.url(&format!("/v2/refs/app/manifests/{first_sig}")),
        &referrer,
        &["-H", &format!("Accept: {MANIFEST_TYPE}")],
    );
    assert_eq!(listed[0]["size"], fs::metadata(&referrer).unwrap().len());

    // The same signature again: listed once, the index not put again.
    let again = push_signed(&file, &reg.oci("refs/app:v1"));
    assert_eq!(again["signature_manifest"], first_sig);
    assert_eq!(again["referrers_tag"], tag);
    assert_eq!(referrers_index(&reg, "refs/app", &tag, dir.path()).len(), 1);
    assert_eq!(reg.count("PUT", &put_path, 201), 1, "{}", reg.log());

    // Another signature of the same artifact keeps the first listed.
    fs::write(&sig_path, b"untrusted comment: second\nRWQsecond\n").unwrap();
    let second = push_signed(&file, &reg.oci("refs/app:v1"));
    let second_sig = second["signature_manifest"].as_str().unwrap().to_string();
    assert_ne!(second_sig, first_sig);
    assert_eq!(second["referrers_tag"], tag);
    let listed = referrers_index(&reg, "refs/app", &tag, dir.path());
    let mut digests: Vec<&str> = listed
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    digests.sort_unstable();
    let mut expected = vec![first_sig.as_str(), second_sig.as_str()];
    expected.sort_unstable();
    assert_eq!(digests, expected);
    assert!(listed.iter().all(|d| d["artifactType"] == MINISIG_TYPE));
}

/// The canonical manifest bytes of a one-layer artifact of type `kind`,
/// written independently of repropack's serializer: a change of these
/// bytes changes every pushed digest.
fn manifest_json(kind: &str, layer_hex: &str, size: usize, title: &str, subject: &str) -> String {
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_TYPE}\",\"artifactType\":\"{kind}\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\
         \"digest\":\"sha256:{}\",\"size\":2,\"data\":\"e30=\"}},\
         \"layers\":[{{\"mediaType\":\"{kind}\",\"digest\":\"sha256:{layer_hex}\",\"size\":{size},\
         \"annotations\":{{\"org.opencontainers.image.title\":\"{title}\"}}}}]{subject}}}",
        sha256_hex(b"{}")
    )
}

#[test]
fn referrers_tag_is_written_only_without_oci_subject_and_never_over_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (file, body) = write_artifact(dir.path(), "s.tar", 14, 5_000);
    let sig = b"untrusted comment: fake\nRWQfake\n";
    fs::write(dir.path().join("s.tar.minisig"), sig).unwrap();
    let hex = sha256_hex(&body);
    let artifact = manifest_json(
        "application/vnd.repropack.tar.v1",
        &hex,
        body.len(),
        "s.tar",
        "",
    );
    let artifact_hex = sha256_hex(artifact.as_bytes());
    let subject = format!(
        ",\"subject\":{{\"mediaType\":\"{MANIFEST_TYPE}\",\"digest\":\"sha256:{artifact_hex}\",\"size\":{}}}",
        artifact.len()
    );
    let signature = manifest_json(
        MINISIG_TYPE,
        &sha256_hex(sig),
        sig.len(),
        "s.tar.minisig",
        &subject,
    );
    let sig_manifest = format!("sha256:{}", sha256_hex(signature.as_bytes()));
    let fallback = format!("/v2/r/manifests/sha256-{artifact_hex}");
    let serve = |ack: bool, fallback_script: Vec<Reply>| {
        let server = Server::start();
        let blob = |h: &str| format!("/v2/r/blobs/sha256:{h}");
        server.route(&blob(&hex), vec![Reply::Ok(body.clone())]);
        server.route(&blob(&sha256_hex(b"{}")), vec![Reply::Ok(b"{}".to_vec())]);
        server.route(&blob(&sha256_hex(sig)), vec![Reply::Ok(sig.to_vec())]);
        server.route("/v2/r/manifests/v1", vec![Reply::Status(201)]);
        let headers = if ack {
            vec![("OCI-Subject".to_string(), format!("sha256:{artifact_hex}"))]
        } else {
            Vec::new()
        };
        server.route(
            &format!("/v2/r/manifests/{sig_manifest}"),
            vec![Reply::Headers {
                status: 201,
                headers,
                body: Vec::new(),
            }],
        );
        server.route(&fallback, fallback_script);
        server
    };
    let dest = |server: &Server| format!("oci://{}/r:v1", server.authority());

    let server = serve(true, vec![Reply::Status(404), Reply::Status(201)]);
    let v = push_signed(&file, &dest(&server));
    assert_eq!(v["signature_manifest"], sig_manifest);
    assert_eq!(server.count(&format!("/v2/r/manifests/{sig_manifest}")), 1);
    assert_eq!(server.count(&fallback), 0);
    assert_eq!(v.get("referrers_tag"), None, "{v}");

    // Without the OCI-Subject answer the fallback tag is read (404) and
    // written: the route is the one a fallback uses.
    let server = serve(false, vec![Reply::Status(404), Reply::Status(201)]);
    let v = push_signed(&file, &dest(&server));
    assert_eq!(server.count(&fallback), 2);
    assert_eq!(v["referrers_tag"], format!("sha256-{artifact_hex}"));

    // A fallback tag holding an image manifest is refused, not overwritten.
    let server = serve(false, vec![Reply::Ok(artifact.into_bytes())]);
    let out = run(
        &["push", file.to_str().unwrap(), &dest(&server), "--sign"],
        &[],
    );
    assert_eq!(out.status.code(), Some(exit::OUTPUT), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("referrers tag sha256-{artifact_hex}"))
            && stderr(&out).contains("expected an OCI image index"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.count(&fallback), 1);
}
