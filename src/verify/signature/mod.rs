//! Signatures of artifacts, manifests and markers: who made a file, on top
//! of what its sha256 already proves.
//!
//! Two formats, each other tools read and write too:
//!
//! - [`minisign`]: minisign's own (`FILE.minisig`, trusted by minisign
//!   public keys), interoperable with `minisign -S` / `minisign -V`;
//! - [`ssh`]: OpenSSH's `sshsig` (`FILE.sig`, namespace `repropack`,
//!   trusted by an `allowed_signers` file), interoperable with
//!   `ssh-keygen -Y sign` / `ssh-keygen -Y verify`.
//!
//! [`Trust`] is what a caller requires: minisign keys and `allowed_signers`
//! files, told apart by their content, and [`Trust::verify`] checks a file
//! against whichever kind of signature it has.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let (secret, public) = (dir.path().join("key.sec"), dir.path().join("key.pub"));
//! # let file = dir.path().join("a.tar");
//! # std::fs::write(&file, b"bytes")?;
//! use repropack::verify::signature::{Signed, Trust, minisign};
//! minisign::keygen(&secret, &public, None)?;
//! minisign::sign_file(&file, &secret, None)?;
//! let trust = Trust::new(&[public], &[], None)?;
//! let Signed::Minisign(ok) = trust.verify(&file, None)? else { panic!("minisign") };
//! assert!(ok.trusted_comment.starts_with("repropack file:a.tar sha256:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod minisign;
pub mod ssh;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::output::{AtomicFile, OutputError};

/// Largest key or signature file read, in bytes (real ones are < 4 KiB).
pub const MAX_SIGNATURE_FILE: u64 = 16 * 1024;

/// Why a key could not be made or used, or a signature did not verify.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A key, signature or signed file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A key or signature file is not in its format.
    #[error("{}: not {what}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// `a minisign public key`, `a minisign secret key`, `a minisign
        /// signature`, `an OpenSSH private key` or `an SSH signature`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A line of an OpenSSH `allowed_signers` file is malformed or asks
    /// for what is not supported.
    #[error("{}:{line}: {reason}", path.display())]
    AllowedSigners {
        /// The `allowed_signers` file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file has no signature next to it.
    #[error("{}: no signature ({} does not exist)", file.display(), signature.display())]
    Missing {
        /// The signed file.
        file: PathBuf,
        /// Where the signature was looked for.
        signature: PathBuf,
    },
    /// The signature was made by a key that is not trusted.
    #[error("{}: signed by key {key_id}, which is not a trusted key", file.display())]
    Untrusted {
        /// The signed file.
        file: PathBuf,
        /// The signing key's id (16 uppercase hex digits, as minisign prints
        /// it).
        key_id: String,
    },
    /// The SSH signature was made by a key that no `allowed_signers` line
    /// allows here.
    #[error("{}: signed by key {fingerprint}, {reason}", file.display())]
    NotAllowed {
        /// The signed file.
        file: PathBuf,
        /// The signing key's `SHA256:` fingerprint, as `ssh-keygen -l`
        /// prints it.
        fingerprint: String,
        /// Which `allowed_signers` rule is missing (the key, the identity
        /// or the namespace).
        reason: String,
    },
    /// The signature does not match the file (or its trusted comment, or
    /// its namespace).
    #[error("{}: bad signature: {reason}", file.display())]
    Bad {
        /// The signed file.
        file: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// Making or writing a key or signature failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A key cannot be used: a wrong password, an encrypted or unsupported
    /// key, no randomness.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Who is trusted to sign: minisign public keys and OpenSSH
/// `allowed_signers` files, and the SSH identity a signer must have.
pub struct Trust {
    minisign: Vec<PathBuf>,
    allowed_signers: Vec<ssh::AllowedSigners>,
    identity: Option<String>,
}

/// What a good signature says, by its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// A minisign signature by a trusted public key.
    Minisign(minisign::Verified),
    /// An SSH signature by a key an `allowed_signers` line allows.
    Ssh(ssh::SshVerified),
}

impl Trust {
    /// Reads the trust: `keys` holds minisign public keys and
    /// `allowed_signers` files, told apart by content (a minisign key
    /// starts with `untrusted comment:`); `allowed_signers` holds only
    /// `allowed_signers` files. With `identity`, an SSH signer must be
    /// listed for that principal.
    pub fn new(
        keys: &[PathBuf],
        allowed_signers: &[PathBuf],
        identity: Option<String>,
    ) -> Result<Trust, SignatureError> {
        let mut trust = Trust {
            minisign: Vec::new(),
            allowed_signers: Vec::new(),
            identity,
        };
        for k in keys {
            let text = read_small(k, MAX_SIGNATURE_FILE.max(ssh::MAX_ALLOWED_SIGNERS_FILE))?;
            if text.starts_with("untrusted comment:") {
                minisign::read_public_key(k)?;
                trust.minisign.push(k.clone());
            } else {
                trust
                    .allowed_signers
                    .push(ssh::AllowedSigners::parse(k, &text)?);
            }
        }
        for f in allowed_signers {
            trust.allowed_signers.push(ssh::AllowedSigners::read(f)?);
        }
        Ok(trust)
    }

    /// Whether nothing is trusted (then nothing asks for a signature).
    pub fn is_empty(&self) -> bool {
        self.minisign.is_empty() && self.allowed_signers.is_empty()
    }

    /// The trusted minisign public key files (markers are signed with
    /// minisign only).
    pub fn minisign_keys(&self) -> &[PathBuf] {
        &self.minisign
    }

    /// Whether SSH signers are trusted (an identity means something only
    /// then).
    pub fn has_ssh(&self) -> bool {
        !self.allowed_signers.is_empty()
    }

    /// Checks `file` against its signature. `signature`, when given, is
    /// the signature file, of either format (told apart by content);
    /// otherwise `FILE.sig` is checked where SSH signers are trusted and
    /// it exists, else `FILE.minisig` where minisign keys are trusted.
    pub fn verify(&self, file: &Path, signature: Option<&Path>) -> Result<Signed, SignatureError> {
        if self.is_ssh(file, signature)? {
            ssh::verify_file(
                file,
                signature,
                &self.allowed_signers,
                self.identity.as_deref(),
            )
            .map(Signed::Ssh)
        } else {
            minisign::verify_file(file, signature, &self.minisign).map(Signed::Minisign)
        }
    }

    /// [`Trust::verify`] for `bytes`, read from `file`: a caller that goes
    /// on to use the bytes judges exactly the ones it uses, whatever `file`
    /// holds later.
    pub fn verify_bytes(
        &self,
        file: &Path,
        bytes: &[u8],
        signature: Option<&Path>,
    ) -> Result<Signed, SignatureError> {
        if self.is_ssh(file, signature)? {
            ssh::verify_bytes(
                file,
                bytes,
                signature,
                &self.allowed_signers,
                self.identity.as_deref(),
            )
            .map(Signed::Ssh)
        } else {
            minisign::TrustedKeys::load(&self.minisign)?
                .verify_bytes(file, bytes, signature)
                .map(Signed::Minisign)
        }
    }

    /// Whether `file`'s signature is checked as an SSH signature.
    fn is_ssh(&self, file: &Path, signature: Option<&Path>) -> Result<bool, SignatureError> {
        Ok(match signature {
            _ if self.minisign.is_empty() => true,
            _ if self.allowed_signers.is_empty() => false,
            Some(sig) if !sig.exists() => false,
            Some(sig) => read_small(sig, MAX_SIGNATURE_FILE)?.starts_with(ssh::PEM_BEGIN),
            None => ssh::signature_path(file).exists(),
        })
    }
}

/// Reads a key, signature or `allowed_signers` file of at most `limit`
/// bytes.
fn read_small(path: &Path, limit: u64) -> Result<String, SignatureError> {
    let f = File::open(path).map_err(|source| read_err(path, source))?;
    let mut text = String::new();
    f.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|source| read_err(path, source))?;
    if text.len() as u64 > limit {
        return Err(read_err(
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ),
        ));
    }
    Ok(text)
}

fn read_err(path: &Path, source: io::Error) -> SignatureError {
    SignatureError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Publishes `bytes` at `path` atomically, replacing what was there.
fn write_signature(path: &Path, bytes: &[u8]) -> Result<(), SignatureError> {
    let mut out = AtomicFile::create(path)?;
    std::io::Write::write_all(out.file_mut(), bytes).map_err(|e| out.error(e))?;
    out.commit()?;
    Ok(())
}

/// `FILE` with `suffix` appended to its name.
fn next_to(file: &Path, suffix: &str) -> PathBuf {
    let mut p = file.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}
