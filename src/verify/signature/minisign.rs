//! minisign signatures of artifacts, manifests and markers: who made a
//! file, on top of what its sha256 already proves.
//!
//! The format is minisign's own (Ed25519, 8-byte key id, a signed "trusted
//! comment", prehashed with BLAKE2b-512 so a file of any size is signed and
//! checked in one streaming pass), through the `minisign` crate by
//! minisign's author, so Debian's `minisign -V` accepts our signatures and
//! we accept its. Signatures live next to the file as `FILE.minisig`.
//!
//! The trusted comment of a signature made here is
//! `repropack file:NAME sha256:HEX`. The signature covers the file's bytes
//! anyway; the comment makes a signature copied next to another file fail
//! with a message saying which file it was made for. Signatures made by
//! `minisign` itself (any trusted comment) are accepted when the bytes
//! match.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let (secret, public) = (dir.path().join("key.sec"), dir.path().join("key.pub"));
//! # let file = dir.path().join("a.tar");
//! # std::fs::write(&file, b"bytes")?;
//! use repropack::verify::signature::minisign::{keygen, sign_file, verify_file};
//! keygen(&secret, &public, None)?;
//! let sig = sign_file(&file, &secret, None)?;
//! assert!(sig.ends_with("a.tar.minisig"));
//! let ok = verify_file(&file, None, &[public])?;
//! assert!(ok.trusted_comment.starts_with("repropack file:a.tar sha256:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ::minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKeyBox, SignatureBox};

use super::{MAX_SIGNATURE_FILE, SignatureError, next_to, read_err, read_small, write_signature};
use crate::digest::{Sha256Digest, hash_file};
use crate::output::{AtomicFile, OutputError};

/// What a good signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signing key's id (16 uppercase hex digits).
    pub key_id: String,
    /// The signed trusted comment.
    pub trusted_comment: String,
    /// The signature file.
    pub signature: PathBuf,
}

/// Makes a minisign key pair: `secret` (mode 0600; encrypted with
/// `password` as minisign does, else unencrypted for unattended use) and
/// `public`. Never replaces an existing file. Returns the key id.
pub fn keygen(
    secret: &Path,
    public: &Path,
    password: Option<String>,
) -> Result<String, SignatureError> {
    for p in [secret, public] {
        if p.symlink_metadata().is_ok() {
            return Err(SignatureError::Output(OutputError {
                path: p.to_path_buf(),
                source: io::Error::new(io::ErrorKind::AlreadyExists, "already exists"),
            }));
        }
    }
    let key_err = |reason: ::minisign::PError| SignatureError::Key {
        path: secret.to_path_buf(),
        reason: reason.to_string(),
    };
    let KeyPair { pk, sk } = match password {
        Some(pw) => KeyPair::generate_encrypted_keypair(Some(pw)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(key_err)?;
    let key_id = key_id(pk.keynum());
    let sk_text = sk
        .to_box(Some(&format!("repropack secret key {key_id}")))
        .map_err(key_err)?
        .to_string();
    let pk_text = pk.to_box().map_err(key_err)?.to_string();
    write_new(secret, sk_text.as_bytes(), 0o600)?;
    write_new(public, pk_text.as_bytes(), 0o644)?;
    Ok(key_id)
}

/// Signs `file` with the minisign secret key at `secret` (decrypted with
/// `password` when it is encrypted) and writes `FILE.minisig` atomically.
pub fn sign_file(
    file: &Path,
    secret: &Path,
    password: Option<String>,
) -> Result<PathBuf, SignatureError> {
    SigningKey::load(secret, password)?.sign(file)
}

/// A minisign secret key, read and decrypted, ready to sign files: load it
/// before making what it will sign, so a bad key or password fails before
/// anything is published.
pub struct SigningKey {
    path: PathBuf,
    key: ::minisign::SecretKey,
}

impl SigningKey {
    /// Reads the secret key at `secret`, decrypting it with `password` when
    /// it is encrypted.
    pub fn load(secret: &Path, password: Option<String>) -> Result<SigningKey, SignatureError> {
        let text = read_small(secret, MAX_SIGNATURE_FILE)?;
        let malformed = |reason: String| SignatureError::Malformed {
            path: secret.to_path_buf(),
            what: "a minisign secret key",
            reason,
        };
        let sk_box = SecretKeyBox::from_string(&text).map_err(|e| malformed(e.to_string()))?;
        let sk = match password {
            Some(pw) => sk_box.into_secret_key(Some(pw)),
            None => sk_box.into_unencrypted_secret_key(),
        }
        .and_then(|sk| {
            if sk.is_encrypted() {
                Err(::minisign::PError::new(
                    ::minisign::ErrorKind::EncryptedKey,
                    "the key is encrypted: give its password (--password-env VAR)",
                ))
            } else {
                Ok(sk)
            }
        })
        .map_err(|e| SignatureError::Key {
            path: secret.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(SigningKey {
            path: secret.to_path_buf(),
            key: sk,
        })
    }

    /// Signs `file` and writes `FILE.minisig` atomically; the trusted
    /// comment names the file and its sha256.
    pub fn sign(&self, file: &Path) -> Result<PathBuf, SignatureError> {
        let (sk, secret) = (&self.key, &self.path);
        let (sha256, _) = hash_file(file).map_err(|source| read_err(file, source))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let comment = format!("repropack file:{name} sha256:{sha256}");
        let data = File::open(file).map_err(|source| read_err(file, source))?;
        let untrusted = "signature from repropack secret key";
        let sig =
            ::minisign::sign(None, sk, data, Some(&comment), Some(untrusted)).map_err(|e| {
                SignatureError::Key {
                    path: secret.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        let path = signature_path(file);
        write_signature(&path, sig.to_string().as_bytes())?;
        Ok(path)
    }
}

/// `FILE.minisig`.
pub fn signature_path(file: &Path) -> PathBuf {
    next_to(file, ".minisig")
}

/// Checks `file` against its signature (`signature`, else `FILE.minisig`)
/// made by one of the `trusted` public keys. A repropack trusted comment
/// must name the file's current sha256.
pub fn verify_file(
    file: &Path,
    signature: Option<&Path>,
    trusted: &[PathBuf],
) -> Result<Verified, SignatureError> {
    TrustedKeys::load(trusted)?.verify(file, signature)
}

/// The public keys a signature must come from, read once: a key file that
/// cannot be read or parsed is an error of its own, before any signature
/// is judged.
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// Reads every minisign public key file in `paths`.
    pub fn load(paths: &[PathBuf]) -> Result<TrustedKeys, SignatureError> {
        let keys = paths
            .iter()
            .map(|p| read_public_key(p))
            .collect::<Result<_, _>>()?;
        Ok(TrustedKeys { keys })
    }

    /// Checks `file` against its signature (`signature`, else
    /// `FILE.minisig`) made by one of these keys; see [`verify_file`].
    pub fn verify(
        &self,
        file: &Path,
        signature: Option<&Path>,
    ) -> Result<Verified, SignatureError> {
        let data = File::open(file).map_err(|source| read_err(file, source))?;
        self.check(file, signature, data, || {
            hash_file(file)
                .map(|(sha256, _)| sha256)
                .map_err(|source| read_err(file, source))
        })
    }

    /// Checks `bytes`, read from `file`, against the signature
    /// (`signature`, else `FILE.minisig`): a caller that goes on to use the
    /// bytes judges exactly the ones it uses, whatever `file` holds later.
    pub fn verify_bytes(
        &self,
        file: &Path,
        bytes: &[u8],
        signature: Option<&Path>,
    ) -> Result<Verified, SignatureError> {
        self.check(file, signature, io::Cursor::new(bytes), || {
            Ok(Sha256Digest::of(bytes))
        })
    }

    fn check(
        &self,
        file: &Path,
        signature: Option<&Path>,
        data: impl Read + Seek,
        sha256: impl FnOnce() -> Result<Sha256Digest, SignatureError>,
    ) -> Result<Verified, SignatureError> {
        let sig_path = signature.map_or_else(|| signature_path(file), Path::to_path_buf);
        if !sig_path.exists() {
            return Err(SignatureError::Missing {
                file: file.to_path_buf(),
                signature: sig_path,
            });
        }
        let text = read_small(&sig_path, MAX_SIGNATURE_FILE)?;
        let sig = SignatureBox::from_string(&text).map_err(|e| SignatureError::Malformed {
            path: sig_path.clone(),
            what: "a minisign signature",
            reason: e.to_string(),
        })?;
        if let Some(len) = global_signature_len(&text).filter(|&n| n != ED25519_SIGNATURE_LEN) {
            return Err(SignatureError::Malformed {
                path: sig_path,
                what: "a minisign signature",
                reason: format!(
                    "the trusted comment's signature is {len} bytes, not {ED25519_SIGNATURE_LEN}"
                ),
            });
        }
        let signer = key_id(sig.keynum());
        let Some(pk) = self.keys.iter().find(|pk| pk.keynum() == sig.keynum()) else {
            return Err(SignatureError::Untrusted {
                file: file.to_path_buf(),
                key_id: signer,
            });
        };
        let bad = |reason: String| SignatureError::Bad {
            file: file.to_path_buf(),
            reason,
        };
        ::minisign::verify(pk, &sig, data, true, false, false).map_err(|e| bad(e.to_string()))?;
        let trusted_comment = sig.trusted_comment().map_err(|e| bad(e.to_string()))?;
        if let Some(rest) = trusted_comment.strip_prefix("repropack ")
            && let Some(named) = rest.split(' ').find_map(|w| w.strip_prefix("sha256:"))
            && named != sha256()?.to_hex()
        {
            return Err(bad(format!(
                "the signature was made for another file ({rest})"
            )));
        }
        Ok(Verified {
            key_id: signer,
            trusted_comment,
            signature: sig_path,
        })
    }
}

/// Reads a minisign public key file.
pub fn read_public_key(path: &Path) -> Result<PublicKey, SignatureError> {
    let text = read_small(path, MAX_SIGNATURE_FILE)?;
    PublicKeyBox::from_string(&text)
        .and_then(PublicKeyBox::into_public_key)
        .map_err(|e| SignatureError::Malformed {
            path: path.to_path_buf(),
            what: "a minisign public key",
            reason: e.to_string(),
        })
}

/// Size of an Ed25519 signature in bytes.
const ED25519_SIGNATURE_LEN: usize = 64;

/// Bytes the global signature (the trusted comment's signature, the fourth
/// line) decodes to, for a signature text that `SignatureBox::from_string`
/// accepted (so that line is valid base64). The minisign crate slices it as
/// 64 bytes without checking and panics on a shorter one, so `verify_file`
/// checks it first.
fn global_signature_len(text: &str) -> Option<usize> {
    let line = text.lines().nth(3)?.trim();
    Some(line.trim_end_matches('=').len() * 6 / 8)
}

/// A key id as minisign prints it: the 8 bytes as a little-endian number
/// in 16 uppercase hex digits.
fn key_id(keynum: &[u8]) -> String {
    let mut n = [0u8; 8];
    let len = keynum.len().min(8);
    n[..len].copy_from_slice(&keynum[..len]);
    format!("{:016X}", u64::from_le_bytes(n))
}

/// Writes `bytes` to the new file `path` with `mode`, atomically, failing
/// if `path` exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignatureError> {
    let mut out = AtomicFile::create(path)?;
    let file = out.file_mut();
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::io::Write::write_all(file, bytes))
        .map_err(|e| out.error(e))?;
    out.commit_new()?;
    Ok(())
}
