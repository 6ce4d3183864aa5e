//! minisign signatures, checked both ways against Debian's `minisign`: it
//! verifies ours, we verify its, and every refusal (tampered file, tampered
//! trusted comment, a signature made for another file, garbage, an
//! untrusted key, no signature) exits with the signature code naming the
//! file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::bin::{code, ok, repropack_out, stderr};
use crate::support::exit;
use crate::support::tool::have_tool;

fn minisign(args: &[&str], dir: &Path) -> Output {
    Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn keygen(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (sec, public) = (
        dir.join(format!("{name}.sec")),
        dir.join(format!("{name}.pub")),
    );
    ok(&repropack_out([
        "keygen".as_ref(),
        "-s".as_ref(),
        sec.as_os_str(),
        "-p".as_ref(),
        public.as_os_str(),
    ]));
    (sec, public)
}

fn verify(file: &Path, key: &Path) -> Output {
    repropack_out([
        "verify".as_ref(),
        file.as_os_str(),
        "--trusted-key".as_ref(),
        key.as_os_str(),
    ])
}

fn assert_refused(out: &Output, file: &str, reason: &str) {
    let err = stderr(out);
    assert_eq!(code(out), exit::SIGNATURE, "{err}");
    assert!(err.contains(file) && err.contains(reason), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("OK"),
        "{err}"
    );
}

#[test]
fn minisign_verifies_our_signatures_and_we_refuse_what_it_refuses() {
    if !have_tool("minisign") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (sec, public) = keygen(d.path(), "k");
    assert_eq!(
        fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let art = d.path().join("a.tar");
    fs::write(&art, vec![7u8; 300_000]).unwrap();
    ok(&repropack_out([
        "sign".as_ref(),
        art.as_os_str(),
        "-s".as_ref(),
        sec.as_os_str(),
    ]));
    let theirs = minisign(&["-V", "-m", "a.tar", "-p", "k.pub"], d.path());
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let said = String::from_utf8_lossy(&theirs.stdout);
    assert!(said.contains("repropack file:a.tar sha256:"), "{said}");
    ok(&verify(&art, &public));

    // The same signature next to other bytes: both refuse it.
    let other = d.path().join("b.tar");
    fs::write(&other, vec![8u8; 300_000]).unwrap();
    fs::copy(
        d.path().join("a.tar.minisig"),
        d.path().join("b.tar.minisig"),
    )
    .unwrap();
    assert!(
        !minisign(&["-V", "-m", "b.tar", "-p", "k.pub"], d.path())
            .status
            .success()
    );
    assert_refused(&verify(&other, &public), "b.tar", "bad signature");

    // One changed byte.
    let mut bytes = fs::read(&art).unwrap();
    bytes[1000] ^= 1;
    fs::write(&art, &bytes).unwrap();
    assert!(
        !minisign(&["-V", "-m", "a.tar", "-p", "k.pub"], d.path())
            .status
            .success()
    );
    assert_refused(&verify(&art, &public), "a.tar", "bad signature");
}

#[test]
fn we_verify_minisigns_signatures_and_refuse_tampering_and_strangers() {
    if !have_tool("minisign") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let made = minisign(&["-G", "-W", "-p", "m.pub", "-s", "m.sec"], d.path());
    assert!(made.status.success(), "{}", stderr(&made));
    let file = d.path().join("manifest.json");
    fs::write(&file, b"{\"schema\": \"x\"}\n").unwrap();
    let signed = minisign(&["-S", "-s", "m.sec", "-m", "manifest.json"], d.path());
    assert!(signed.status.success(), "{}", stderr(&signed));
    let public = d.path().join("m.pub");
    let out = verify(&file, &public);
    ok(&out);
    assert!(stderr(&out).contains("signed by key"), "{}", stderr(&out));

    // A key we do not trust.
    let (_, stranger) = keygen(d.path(), "stranger");
    assert_refused(
        &verify(&file, &stranger),
        "manifest.json",
        "not a trusted key",
    );

    // The trusted comment edited after signing.
    let sig = d.path().join("manifest.json.minisig");
    let text = fs::read_to_string(&sig).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("trusted comment:") {
                "trusted comment: something else"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&sig, edited + "\n").unwrap();
    assert_refused(&verify(&file, &public), "manifest.json", "bad signature");

    // Garbage, a truncated signature, and none at all.
    fs::write(&sig, b"not a signature\n").unwrap();
    assert_refused(
        &verify(&file, &public),
        "manifest.json.minisig",
        "not a minisign signature",
    );
    fs::write(&sig, &text.as_bytes()[..text.len() / 2]).unwrap();
    assert_refused(&verify(&file, &public), "manifest.json", "signature");
    fs::remove_file(&sig).unwrap();
    assert_refused(&verify(&file, &public), "manifest.json", "no signature");
}

#[test]
fn keygen_never_replaces_a_file_and_an_encrypted_key_needs_its_password() {
    let d = tempfile::tempdir().unwrap();
    let (sec, public) = keygen(d.path(), "k");
    let before = fs::read(&sec).unwrap();
    let again = repropack_out([
        "keygen".as_ref(),
        "-s".as_ref(),
        sec.as_os_str(),
        "-p".as_ref(),
        d.path().join("new.pub").as_os_str(),
    ]);
    assert_eq!(code(&again), exit::OUTPUT, "{}", stderr(&again));
    assert_eq!(fs::read(&sec).unwrap(), before);
    assert!(!d.path().join("new.pub").exists());
    let _ = public;

    // Encrypted: signing needs the password from the environment.
    let (esec, epub) = (d.path().join("e.sec"), d.path().join("e.pub"));
    let run = |args: &[&std::ffi::OsStr], pw: &str| {
        Command::new(crate::support::bin::bin())
            .args(args)
            .env("KEY_PASSWORD", pw)
            .output()
            .unwrap()
    };
    ok(&run(
        &[
            "keygen".as_ref(),
            "-s".as_ref(),
            esec.as_os_str(),
            "-p".as_ref(),
            epub.as_os_str(),
            "--password-env".as_ref(),
            "KEY_PASSWORD".as_ref(),
        ],
        "correct horse",
    ));
    let file = d.path().join("f");
    fs::write(&file, b"x").unwrap();
    let sign = |pw: &str, with_env: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "sign".as_ref(),
            file.as_os_str(),
            "-s".as_ref(),
            esec.as_os_str(),
        ];
        if with_env {
            args.push(std::ffi::OsStr::new("--password-env"));
            args.push(std::ffi::OsStr::new("KEY_PASSWORD"));
        }
        run(&args, pw)
    };
    assert_eq!(code(&sign("", false)), exit::SIGNATURE);
    assert_eq!(code(&sign("wrong", true)), exit::SIGNATURE);
    assert!(!d.path().join("f.minisig").exists());
    ok(&sign("correct horse", true));
    ok(&verify(&file, &epub));
    if have_tool("minisign") {
        let theirs = minisign(&["-V", "-m", "f", "-p", "e.pub"], d.path());
        assert!(theirs.status.success(), "{}", stderr(&theirs));
    }
}

/// A signature file whose last line (the trusted comment's signature) is
/// valid base64 of the wrong length is refused as malformed, naming the
/// signature file, instead of crashing inside the minisign library (which
/// slices it as 64 bytes unchecked). Found by the `signature_parse` fuzz
/// target.
#[test]
fn a_trusted_comment_signature_of_the_wrong_length_is_malformed() {
    let d = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(d.path(), "k");
    let file = d.path().join("a.tar");
    fs::write(&file, b"bytes").unwrap();
    ok(&repropack_out([
        "sign".as_ref(),
        "-s".as_ref(),
        secret.as_os_str(),
        file.as_os_str(),
    ]));
    let sig = d.path().join("a.tar.minisig");
    let text = fs::read_to_string(&sig).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // 34 and 67 zero bytes in base64: shorter and longer than Ed25519's 64.
    let short = format!("{}AA==", "AAAA".repeat(11));
    let long = format!("{}AA==", "AAAA".repeat(22));
    for global in [short, long] {
        let edited = [lines[0], lines[1], lines[2], &global].join("\n");
        fs::write(&sig, edited + "\n").unwrap();
        assert_refused(
            &verify(&file, &public),
            "a.tar.minisig",
            "not a minisign signature",
        );
    }
}

/// `pack --sign` signs the artifact and the manifest as they are
/// published; Debian's `minisign` verifies both, and the JSON names the
/// signatures.
#[test]
fn pack_sign_signs_the_artifact_and_the_manifest_and_minisign_verifies_both() {
    if !have_tool("minisign") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (sec, public) = keygen(d, "k");
    fs::create_dir(d.join("src")).unwrap();
    fs::write(d.join("src/a"), b"signed content\n").unwrap();
    let out = repropack_out([
        "pack".as_ref(),
        d.join("src").as_os_str(),
        "-o".as_ref(),
        d.join("app.tar.gz").as_os_str(),
        "--manifest".as_ref(),
        d.join("app.json").as_os_str(),
        "--sign".as_ref(),
        sec.as_os_str(),
        "--json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{v}");
    let public = public.to_str().unwrap();
    for file in ["app.tar.gz", "app.json"] {
        assert!(d.join(format!("{file}.minisig")).is_file());
        let checked = minisign(&["-Vm", file, "-p", public], d);
        assert!(
            checked.status.success(),
            "minisign -V {file}: {}",
            stderr(&checked)
        );
        let ours = verify(&d.join(file), Path::new(public));
        assert_eq!(code(&ours), exit::OK, "{}", stderr(&ours));
    }
}

/// A key that cannot be read fails before anything is packed.
#[test]
fn pack_sign_with_a_bad_key_fails_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("src")).unwrap();
    fs::write(d.join("src/a"), b"x").unwrap();
    fs::write(d.join("bad.sec"), b"not a minisign key\n").unwrap();
    let out = repropack_out([
        "pack".as_ref(),
        d.join("src").as_os_str(),
        "-o".as_ref(),
        d.join("app.tar").as_os_str(),
        "--sign".as_ref(),
        d.join("bad.sec").as_os_str(),
    ]);
    assert_eq!(code(&out), exit::SIGNATURE, "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.sec"), "{}", stderr(&out));
    let left: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "nothing but the inputs: {left:?}");
}

/// `REPROPACK_TRUSTED_KEYS` (key files separated by `:`) is the trust
/// `verify` applies when no --trusted-key is given: a file signed by one of
/// them passes, an unsigned one is refused.
#[test]
fn repropack_trusted_keys_is_the_default_trust_of_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (sec, public) = keygen(d, "k");
    let (_, other) = keygen(d, "other");
    let signed = d.join("signed");
    let unsigned = d.join("unsigned");
    fs::write(&signed, b"one").unwrap();
    fs::write(&unsigned, b"two").unwrap();
    ok(&repropack_out([
        "sign".as_ref(),
        signed.as_os_str(),
        "-s".as_ref(),
        sec.as_os_str(),
    ]));
    let keys = format!("{}:{}", other.display(), public.display());
    let env = [("REPROPACK_TRUSTED_KEYS", keys.as_str())];
    let out = crate::support::bin::repropack_env(["verify", signed.to_str().unwrap()], &env);
    assert_eq!(code(&out), exit::OK, "{}", stderr(&out));
    let out = crate::support::bin::repropack_env(["verify", unsigned.to_str().unwrap()], &env);
    assert_eq!(code(&out), exit::SIGNATURE, "{}", stderr(&out));
    assert!(stderr(&out).contains("unsigned"), "{}", stderr(&out));
    // Without the variable nothing asks for a signature.
    let out = repropack_out(["verify", unsigned.to_str().unwrap()]);
    assert_eq!(code(&out), exit::USAGE, "{}", stderr(&out));
}
