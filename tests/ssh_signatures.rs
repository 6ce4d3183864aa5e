//! SSH signatures (`sshsig`, namespace `repropack`), checked both ways
//! against OpenSSH's `ssh-keygen`: `ssh-keygen -Y verify` accepts what
//! `repropack sign --ssh-key` and `pack --sign-ssh` write, we accept what
//! `ssh-keygen -Y sign` writes, and every refusal (tampered file, another
//! file's signature, another namespace, an unlisted key, a wrong identity,
//! a broken or missing signature, a malformed `allowed_signers` line)
//! exits with the signature code naming the file and the reason.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::bin::{code, ok, repropack_env, repropack_out, stderr, stdout};
use crate::support::exit;
use crate::support::tool::have_tool;

const ID: &str = "ci@example.org";

/// An unencrypted ed25519 key pair made by `ssh-keygen` in `dir`: the
/// private key's path and the public key line.
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// `allowed_signers` in `dir` with one line per `(principals, public key)`.
fn allowed_signers(dir: &Path, lines: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("allowed_signers");
    let text: String = lines.iter().map(|(p, k)| format!("{p} {k}\n")).collect();
    fs::write(&path, text).unwrap();
    path
}

/// `ssh-keygen -Y sign -f KEY -n NAMESPACE FILE` (writes `FILE.sig`).
fn keygen_sign(key: &Path, namespace: &str, file: &Path) {
    let _ = fs::remove_file(sig_of(file));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `ssh-keygen -Y verify -f ALLOWED -I ID -n repropack -s FILE.sig < FILE`.
fn keygen_verifies(allowed: &Path, file: &Path) -> bool {
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "repropack", "-I", ID, "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(sig_of(file))
        .stdin(fs::File::open(file).unwrap())
        .output()
        .unwrap();
    out.status.success()
}

fn sig_of(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_os_string();
    p.push(".sig");
    PathBuf::from(p)
}

fn sign(file: &Path, key: &Path) -> Output {
    repropack_out([
        "sign".as_ref(),
        file.as_os_str(),
        "--ssh-key".as_ref(),
        key.as_os_str(),
    ])
}

fn verify(file: &Path, allowed: &Path, identity: Option<&str>) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "verify".as_ref(),
        file.as_os_str(),
        "--allowed-signers".as_ref(),
        allowed.as_os_str(),
    ];
    if let Some(id) = identity {
        args.extend(["--identity".as_ref(), OsStr::new(id)]);
    }
    repropack_out(args)
}

fn assert_refused(out: &Output, file: &str, reason: &str) {
    let err = stderr(out);
    assert_eq!(code(out), exit::SIGNATURE, "{err}");
    assert!(err.contains(file) && err.contains(reason), "{err}");
    assert!(!stdout(out).contains("OK"), "{err}");
}

#[test]
fn ssh_keygen_verifies_what_sign_writes_and_so_do_we() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let allowed = allowed_signers(d, &[(ID, &public)]);
    let art = d.join("a.tar");
    fs::write(&art, vec![7u8; 300_000]).unwrap();
    let out = sign(&art, &key);
    assert_eq!(ok(&out).trim(), sig_of(&art).to_str().unwrap());
    let text = fs::read_to_string(sig_of(&art)).unwrap();
    assert!(
        text.starts_with("-----BEGIN SSH SIGNATURE-----\n"),
        "{text}"
    );
    assert!(text.ends_with("-----END SSH SIGNATURE-----\n"), "{text}");
    assert!(keygen_verifies(&allowed, &art));
    // Ed25519 is deterministic: ssh-keygen writes the very same bytes.
    keygen_sign(&key, "repropack", &art);
    assert_eq!(fs::read_to_string(sig_of(&art)).unwrap(), text);
    let out = verify(&art, &allowed, Some(ID));
    ok(&out);
    assert!(stderr(&out).contains("SHA256:"), "{}", stderr(&out));
    ok(&verify(&art, &allowed, None));

    // One changed byte: both refuse.
    let mut bytes = fs::read(&art).unwrap();
    bytes[1000] ^= 1;
    fs::write(&art, &bytes).unwrap();
    assert!(!keygen_verifies(&allowed, &art));
    assert_refused(&verify(&art, &allowed, Some(ID)), "a.tar", "bad signature");
}

#[test]
fn we_verify_ssh_keygens_signatures_and_refuse_what_it_refuses() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let (stranger, _) = ssh_key(d, "stranger");
    let allowed = allowed_signers(d, &[(ID, &public)]);
    let file = d.join("manifest.json");
    fs::write(&file, b"{\"schema\": \"x\"}\n").unwrap();
    keygen_sign(&key, "repropack", &file);
    ok(&verify(&file, &allowed, Some(ID)));

    // The same signature next to other bytes.
    let other = d.join("b.tar");
    fs::write(&other, b"other bytes").unwrap();
    fs::copy(sig_of(&file), sig_of(&other)).unwrap();
    assert!(!keygen_verifies(&allowed, &other));
    assert_refused(
        &verify(&other, &allowed, Some(ID)),
        "b.tar",
        "bad signature",
    );

    // Another identity than the one the key is listed for.
    let out = verify(&file, &allowed, Some("someone@else"));
    assert_refused(&out, "manifest.json", "not allowed for identity");

    // A key that allowed_signers does not list.
    keygen_sign(&stranger, "repropack", &file);
    assert!(!keygen_verifies(&allowed, &file));
    let out = verify(&file, &allowed, Some(ID));
    assert_refused(&out, "manifest.json", "not in the allowed signers");
    assert!(stderr(&out).contains("SHA256:"), "{}", stderr(&out));

    // Signed for another namespace.
    keygen_sign(&key, "other", &file);
    assert!(!keygen_verifies(&allowed, &file));
    let out = verify(&file, &allowed, Some(ID));
    assert_refused(&out, "manifest.json", "namespace \"other\"");

    // Truncated, garbage, and no signature at all.
    keygen_sign(&key, "repropack", &file);
    let sig = sig_of(&file);
    let text = fs::read(&sig).unwrap();
    fs::write(&sig, &text[..text.len() / 2]).unwrap();
    assert_refused(
        &verify(&file, &allowed, Some(ID)),
        "manifest.json.sig",
        "not an SSH signature",
    );
    fs::write(&sig, [&text[..], b"trailing text\n"].concat()).unwrap();
    assert_refused(
        &verify(&file, &allowed, Some(ID)),
        "manifest.json.sig",
        "does not end with -----END SSH SIGNATURE-----",
    );
    fs::write(&sig, [&text[..], &[b'\n'; 20_000][..]].concat()).unwrap();
    assert_refused(
        &verify(&file, &allowed, Some(ID)),
        "manifest.json.sig",
        "larger than 16384 bytes",
    );
    fs::write(&sig, b"not a signature\n").unwrap();
    assert_refused(
        &verify(&file, &allowed, Some(ID)),
        "manifest.json.sig",
        "not an SSH signature",
    );
    fs::remove_file(&sig).unwrap();
    assert_refused(
        &verify(&file, &allowed, Some(ID)),
        "manifest.json",
        "no signature",
    );
}

/// A malformed `allowed_signers` line, and an option we do not support,
/// are refused with the file and line named, before any signature is
/// looked at; the options we support (`namespaces`, `valid-after`,
/// `valid-before`) judge as ssh-keygen's do.
#[test]
fn a_malformed_allowed_signers_line_is_refused_naming_its_line() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let file = d.join("a.tar");
    fs::write(&file, b"bytes").unwrap();
    ok(&sign(&file, &key));
    let allowed = d.join("allowed_signers");
    for (third, reason) in [
        ("oops ssh-ed25519 !!notbase64!!", "not valid base64"),
        ("oops", "no public key"),
        (
            &format!("ca@example.org cert-authority {public}") as &str,
            "cert-authority",
        ),
    ] {
        fs::write(&allowed, format!("# signers\n{ID} {public}\n{third}\n")).unwrap();
        let out = verify(&file, &allowed, Some(ID));
        assert_refused(&out, "allowed_signers:3", reason);
    }
    // Options ssh-keygen applies: a namespace list without repropack.
    fs::write(&allowed, format!("{ID} namespaces=\"git,file\" {public}\n")).unwrap();
    assert_refused(
        &verify(&file, &allowed, Some(ID)),
        "a.tar",
        "not allowed to sign namespace",
    );
    fs::write(
        &allowed,
        format!("\"ci bot,{ID}\" namespaces=\"git,repropack\" {public} comment\n"),
    )
    .unwrap();
    ok(&verify(&file, &allowed, Some(ID)));
    assert!(keygen_verifies(&allowed, &file));
    // Validity windows, in UTC, judged against now as ssh-keygen does.
    for (options, reason) in [
        ("valid-before=\"20000101Z\"", Some("has expired")),
        ("valid-after=\"29990101Z\"", Some("not valid yet")),
        ("valid-after=\"20000101Z\",valid-before=\"29990101Z\"", None),
    ] {
        fs::write(&allowed, format!("{ID} {options} {public}\n")).unwrap();
        let out = verify(&file, &allowed, Some(ID));
        match reason {
            Some(reason) => {
                assert_refused(&out, "a.tar", reason);
                assert!(!keygen_verifies(&allowed, &file), "{options}");
            }
            None => {
                ok(&out);
                assert!(keygen_verifies(&allowed, &file), "{options}");
            }
        }
    }
}

/// `pack --sign-ssh` signs the artifact and the manifest as they are
/// published; `ssh-keygen -Y verify` accepts both, and so does `verify
/// --manifest` (which checks the manifest's signature first).
#[test]
fn pack_sign_ssh_signs_the_artifact_and_the_manifest_and_ssh_keygen_verifies_both() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let allowed = allowed_signers(d, &[(ID, &public)]);
    fs::create_dir(d.join("src")).unwrap();
    fs::write(d.join("src/a"), b"signed content\n").unwrap();
    let (art, manifest) = (d.join("app.tar.gz"), d.join("app.json"));
    let out = repropack_out([
        "pack".as_ref(),
        d.join("src").as_os_str(),
        "-o".as_ref(),
        art.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--sign-ssh".as_ref(),
        key.as_os_str(),
        "--json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["signatures"].as_array().unwrap().len(), 2, "{v}");
    for f in [&art, &manifest] {
        assert!(keygen_verifies(&allowed, f), "{}", f.display());
    }
    let out = repropack_out([
        "verify".as_ref(),
        art.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--allowed-signers".as_ref(),
        allowed.as_os_str(),
        "--identity".as_ref(),
        ID.as_ref(),
        "--json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["signatures"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["signatures"][0]["principals"], ID, "{v}");
}

/// Keys that cannot sign here (encrypted, not ed25519) fail before
/// anything is packed or signed, naming the key and why.
#[test]
fn an_encrypted_ssh_key_is_refused_before_anything_is_written() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("locked");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    fs::create_dir(d.join("src")).unwrap();
    fs::write(d.join("src/a"), b"x").unwrap();
    let listing = || {
        let mut names: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let out = repropack_out([
        "pack".as_ref(),
        d.join("src").as_os_str(),
        "-o".as_ref(),
        d.join("app.tar").as_os_str(),
        "--sign-ssh".as_ref(),
        key.as_os_str(),
    ]);
    assert_refused(&out, "locked", "encrypted");
    let out = sign(&d.join("src/a"), &key);
    assert_refused(&out, "locked", "encrypted");
    let garbage = d.join("garbage");
    fs::write(&garbage, b"not a key\n").unwrap();
    assert_refused(
        &sign(&d.join("src/a"), &garbage),
        "garbage",
        "not an OpenSSH private key",
    );
    fs::remove_file(&garbage).unwrap();
    assert_eq!(before, listing(), "nothing written");
    assert!(!d.join("src/a.sig").exists());
}

/// `REPROPACK_TRUSTED_KEYS` may name an `allowed_signers` file (told from a
/// minisign key by its content) beside minisign keys: a file signed with
/// an allowed SSH key passes, an unsigned one is refused.
#[test]
fn repropack_trusted_keys_may_name_an_allowed_signers_file() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let allowed = allowed_signers(d, &[(ID, &public)]);
    let (msec, mpub) = (d.join("m.sec"), d.join("m.pub"));
    ok(&repropack_out([
        "keygen".as_ref(),
        "-s".as_ref(),
        msec.as_os_str(),
        "-p".as_ref(),
        mpub.as_os_str(),
    ]));
    let (ssh_signed, mini_signed, unsigned) = (d.join("s"), d.join("m"), d.join("u"));
    for f in [&ssh_signed, &mini_signed, &unsigned] {
        fs::write(f, b"content").unwrap();
    }
    ok(&sign(&ssh_signed, &key));
    ok(&repropack_out([
        "sign".as_ref(),
        mini_signed.as_os_str(),
        "-s".as_ref(),
        msec.as_os_str(),
    ]));
    let keys = format!("{}:{}", mpub.display(), allowed.display());
    let env = [("REPROPACK_TRUSTED_KEYS", keys.as_str())];
    for f in [&ssh_signed, &mini_signed] {
        let out = repropack_env([OsStr::new("verify"), f.as_os_str()], &env);
        assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    }
    let out = repropack_env(
        [
            OsStr::new("verify"),
            ssh_signed.as_os_str(),
            "--identity".as_ref(),
            ID.as_ref(),
        ],
        &env,
    );
    assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    let out = repropack_env([OsStr::new("verify"), unsigned.as_os_str()], &env);
    assert_refused(&out, "u", "no signature");
    // An identity means something only for SSH signers.
    let out = repropack_out([
        "verify".as_ref(),
        mini_signed.as_os_str(),
        "--trusted-key".as_ref(),
        mpub.as_os_str(),
        "--identity".as_ref(),
        ID.as_ref(),
    ]);
    assert_eq!(code(&out), exit::USAGE, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allowed-signers"),
        "{}",
        stderr(&out)
    );
}

/// A 50 MiB file signs (one streaming pass, never read whole) and
/// `ssh-keygen` verifies the signature.
#[test]
fn a_big_file_signs_and_ssh_keygen_verifies_it() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let allowed = allowed_signers(d, &[(ID, &public)]);
    let big = d.join("big.img");
    let f = fs::File::create(&big).unwrap();
    f.set_len(50 << 20).unwrap();
    drop(f);
    ok(&sign(&big, &key));
    assert!(keygen_verifies(&allowed, &big));
    ok(&verify(&big, &allowed, Some(ID)));
}

/// `fetch --manifest --allowed-signers`: a manifest signed by `ssh-keygen
/// -Y sign` (the independent signer) is fetched from its url on a real
/// HTTP server on loopback; an unlisted key, a wrong `--identity` or
/// another namespace exits 9 before any request, with nothing cached.
#[test]
fn fetch_manifest_accepts_an_ssh_keygen_signed_manifest_and_refuses_before_any_request() {
    use crate::support::http_server::{Reply, Server};
    if !have_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = ssh_key(d, "id_ed25519");
    let (_, other) = ssh_key(d, "other");
    let allowed = allowed_signers(d, &[(ID, &public)]);
    let only_other = d.join("only_other");
    fs::write(&only_other, format!("{ID} {other}\n")).unwrap();
    fs::create_dir(d.join("src")).unwrap();
    fs::write(d.join("src/a"), b"fetched content\n").unwrap();
    let server = Server::start();
    let url = server.url("/art.tar");
    let (art, manifest) = (d.join("art.tar"), d.join("m.json"));
    ok(&repropack_out([
        "pack".as_ref(),
        d.join("src").as_os_str(),
        "-o".as_ref(),
        art.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--url".as_ref(),
        url.as_ref(),
    ]));
    server.route("/art.tar", vec![Reply::Ok(fs::read(&art).unwrap())]);
    let cache = d.join("cache");
    let fetch = |extra: &[&OsStr]| {
        let mut args: Vec<&OsStr> = vec![
            "fetch".as_ref(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
            "--cache".as_ref(),
            cache.as_os_str(),
            "--timeout".as_ref(),
            "2".as_ref(),
        ];
        args.extend_from_slice(extra);
        repropack_out(args)
    };
    let refused = |out: &Output, reason: &str| {
        let err = stderr(out);
        assert_eq!(code(out), exit::SIGNATURE, "{err}");
        assert!(err.contains("m.json") && err.contains(reason), "{err}");
        assert_eq!(server.count("/art.tar"), 0, "a request was made: {err}");
        assert!(!cache.exists() || fs::read_dir(&cache).unwrap().next().is_none());
    };

    // Signed for another namespace: refused by name.
    keygen_sign(&key, "file", &manifest);
    refused(
        &fetch(&["--allowed-signers".as_ref(), allowed.as_os_str()]),
        "namespace",
    );
    keygen_sign(&key, "repropack", &manifest);
    // The signer is not listed, or not for this identity.
    refused(
        &fetch(&["--allowed-signers".as_ref(), only_other.as_os_str()]),
        "m.json",
    );
    refused(
        &fetch(&[
            "--allowed-signers".as_ref(),
            allowed.as_os_str(),
            "--identity".as_ref(),
            "someone@else".as_ref(),
        ]),
        "m.json",
    );

    let out = fetch(&[
        "--allowed-signers".as_ref(),
        allowed.as_os_str(),
        "--identity".as_ref(),
        ID.as_ref(),
        "--json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["source"], url.as_str(), "{v}");
    assert!(v["key_id"].as_str().unwrap().starts_with("SHA256:"), "{v}");
    let path = PathBuf::from(v["path"].as_str().unwrap());
    assert_eq!(fs::read(&path).unwrap(), fs::read(&art).unwrap());
    assert_eq!(server.count("/art.tar"), 1);
}
