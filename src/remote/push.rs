//! Push: store a local artifact under its content address and return the
//! ref executors fetch.
//!
//! # Model
//!
//! The object name is `<prefix>/sha256/<hex><ext>`, where `<ext>` is the
//! file's original extension (`.squashfs`, `.tar`, `.tar.gz`, …), so two
//! pushes of the same bytes land on the same object. If an object is
//! already there with the right size the upload is skipped (for a local
//! directory only if its bytes also hash right; otherwise it is replaced).
//!
//! Verification after upload:
//! - directory / `file://` destination: the bytes are copied to a temp file
//!   next to the target while hashed; the temp file is fsynced, read back
//!   from disk and hashed again, and renamed into place only if both hashes
//!   equal the file's hash from the first pass ([`crate::output::AtomicFile`]).
//! - `s3://` destination: the upload streams the file while hashing it; if
//!   that hash differs from the first pass (the file changed) the upload is
//!   aborted before it completes. After completion a HEAD request must
//!   report the expected size. The object is not downloaded again: every
//!   consumer re-hashes it on fetch anyway (docs/CONTRACT.md §4).
//! - `oci://` destination: the file is a blob named by its sha256, plus an
//!   artifact manifest tagged TAG (see [`oci`](super::oci) and its `push`);
//!   the digest the registry reports for the blob, if any, must be its
//!   sha256, its HEAD must report the expected size after the upload, and
//!   the ref printed is `oci://HOST/REPO:TAG#sha256=HEX`.
//!
//! ```no_run
//! use repropack::remote::push::{push, Dest};
//! let dest = Dest::parse("s3://bucket/artifacts")?;
//! let pushed = push("out.squashfs".as_ref(), &dest, &Default::default())?;
//! println!("{}", pushed.artifact);
//! # Ok::<(), repropack::remote::push::PushError>(())
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::net::{self, NetOptions};
use super::refs::ArtifactRef;
use super::s3;
use super::uri::{self, Location, UriError};
use crate::digest::{Hasher, Sha256Digest, hash_file, hash_reader};
use crate::output::AtomicFile;

/// Where to push to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A local directory, given as a path (`as_file_uri == false`) or as a
    /// `file://` URI; the printed ref uses the same form.
    Local {
        /// The directory objects go under.
        dir: PathBuf,
        /// Whether it was given as a `file://` URI.
        as_file_uri: bool,
    },
    /// `s3://bucket/prefix` (prefix may be empty).
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
    /// `oci://HOST[:PORT]/REPO[:TAG]` (tag defaults to
    /// [`DEFAULT_TAG`](super::oci::DEFAULT_TAG)).
    Oci(super::oci::OciRef),
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The destination is not a directory, `file://` or `s3://` URI.
    #[error("destination {dest:?}: {reason}")]
    BadDest {
        /// The destination as given.
        dest: String,
        /// Why it is refused.
        reason: String,
    },
    /// The file to push could not be read.
    #[error("{}: {source}", path.display())]
    Input {
        /// The file to push.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file's bytes changed between the first hash and the upload.
    #[error("{}: changed while being pushed (sha256 {first} on the first read, {second} on the second); nothing published", path.display())]
    Changed {
        /// The file to push.
        path: PathBuf,
        /// The sha256 of the first read.
        first: Sha256Digest,
        /// The sha256 of the bytes read while copying or uploading.
        second: Sha256Digest,
    },
    /// Writing into a local destination failed.
    #[error("{}: {source}", path.display())]
    Output {
        /// The destination path being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The object store or registry refused or failed a request.
    #[error("{uri}: {message}")]
    Remote {
        /// The object's `s3://` URI or the `oci://` destination.
        uri: String,
        /// The store's error, in words.
        message: String,
    },
    /// The registry refused the credentials, or wants some and none were
    /// found.
    #[error("{uri}: {message}")]
    Unauthorized {
        /// The `oci://` destination.
        uri: String,
        /// The registry's refusal, in words (never a credential).
        message: String,
    },
    /// The stored object does not check out after upload (wrong size on
    /// S3 or a registry, another digest reported by a registry, wrong
    /// sha256 read back from disk).
    #[error("{uri}: verification after upload failed: {message}")]
    Verify {
        /// The object's URI or local path.
        uri: String,
        /// What did not match.
        message: String,
    },
}

/// Options of [`push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Timeouts, retries and backoff of network requests.
    pub net: NetOptions,
    /// `oci://` only: also push `FILE.minisig` (which must exist) as a
    /// referrer of the artifact's manifest.
    pub sign: bool,
}

/// The result of a push.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The ref to fetch the pushed bytes by.
    pub artifact: ArtifactRef,
    /// The artifact's size in bytes.
    pub size: u64,
    /// False if an object of the right size was already there.
    pub uploaded: bool,
    /// `oci://` with [`PushOptions::sign`]: the digest of the signature's
    /// referrer manifest.
    pub signature_manifest: Option<String>,
    /// `oci://` with [`PushOptions::sign`], on a registry without the
    /// referrers API (it did not acknowledge the subject): the referrers
    /// tag `sha256-HEX` whose image index lists the signature.
    pub referrers_tag: Option<String>,
}

impl Dest {
    /// Parses a directory path, `file:///dir`, `s3://bucket[/prefix]` or
    /// `oci://HOST[:PORT]/REPO[:TAG]`.
    pub fn parse(dest: &str) -> Result<Dest, PushError> {
        let bad = |reason: &str| PushError::BadDest {
            dest: dest.to_string(),
            reason: reason.to_string(),
        };
        match uri::classify(dest) {
            Ok(Location::Local { path, file_uri }) => Ok(Dest::Local {
                dir: path,
                as_file_uri: file_uri,
            }),
            Ok(Location::S3 { bucket, key }) => Ok(Dest::S3 {
                bucket,
                prefix: key.trim_matches('/').to_string(),
            }),
            Ok(Location::Oci(oci)) => Ok(Dest::Oci(oci)),
            Ok(Location::Http) | Err(UriError::Scheme(_)) => {
                let scheme = dest.split_once("://").map_or(dest, |(s, _)| s);
                Err(bad(&format!(
                    "unsupported scheme {scheme:?} (use a directory, file://, s3:// or oci://)"
                )))
            }
            Err(UriError::S3Bucket) => Err(bad("s3 destination must be s3://bucket[/prefix]")),
            Err(UriError::FileUri) => Err(bad("file URI must be file:///absolute/dir")),
            Err(e) => Err(bad(&e.to_string())),
        }
    }
}

/// The file's original extension including the dot: the compound tar
/// extensions (`.tar.gz`, `.tar.zst`, …) or the last one, if it is 1-16
/// ASCII alphanumerics; else empty.
pub fn extension(file: &Path) -> String {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return String::new();
    };
    for compound in [".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tar.lz4"] {
        if name.len() > compound.len() && name.ends_with(compound) {
            return compound.to_string();
        }
    }
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=16).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{ext}")
        }
        _ => String::new(),
    }
}

/// `sha256/<hex><ext>`: the object name under the destination prefix.
pub fn content_name(sha256: Sha256Digest, ext: &str) -> String {
    format!("sha256/{sha256}{ext}")
}

/// Pushes `file` to `dest` and returns its ref.
pub fn push(file: &Path, dest: &Dest, opts: &PushOptions) -> Result<Pushed, PushError> {
    if opts.sign && !matches!(dest, Dest::Oci(_)) {
        return Err(PushError::BadDest {
            dest: format!("{dest:?}"),
            reason: "signatures are pushed to oci:// destinations only".into(),
        });
    }
    let input = |source| PushError::Input {
        path: file.to_path_buf(),
        source,
    };
    let meta = fs::metadata(file).map_err(input)?;
    if !meta.is_file() {
        return Err(input(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let (sha256, size) = hash_file(file).map_err(input)?;
    let name = content_name(sha256, &extension(file));
    match dest {
        Dest::Local { dir, as_file_uri } => {
            push_local(file, sha256, size, dir, &name, *as_file_uri)
        }
        Dest::S3 { bucket, prefix } => {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            push_s3(file, sha256, size, bucket, &key, &opts.net)
        }
        Dest::Oci(oci) => push_oci(file, sha256, size, oci, opts),
    }
}

fn push_local(
    file: &Path,
    sha256: Sha256Digest,
    size: u64,
    dir: &Path,
    name: &str,
    as_file_uri: bool,
) -> Result<Pushed, PushError> {
    let target = dir.join(name);
    let out_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PushError::Output { path, source }
    };
    let parent = target.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(out_err(parent))?;
    // Re-hashing a local object is cheap next to copying it, so a damaged
    // object of the right size is replaced rather than kept.
    let present = fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == size)
        && hash_file(&target).is_ok_and(|(d, _)| d == sha256);
    if !present {
        copy_verified(file, sha256, &target)?;
    }
    let uploaded = !present;
    let abs = fs::canonicalize(&target).map_err(out_err(&target))?;
    let uri = if as_file_uri {
        url::Url::from_file_path(&abs)
            .map_err(|()| {
                out_err(&abs)(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot express as a file:// URI",
                ))
            })?
            .to_string()
    } else {
        abs.to_str()
            .ok_or_else(|| {
                out_err(&abs)(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path is not UTF-8; push to a file:// URI instead",
                ))
            })?
            .to_string()
    };
    Ok(Pushed {
        artifact: ArtifactRef::new(uri, sha256),
        size,
        uploaded,
        signature_manifest: None,
        referrers_tag: None,
    })
}

/// Copies `file` to `target` atomically, publishing only if the bytes read
/// while copying and the bytes read back from the fsynced temp file both
/// hash to `expected`.
fn copy_verified(file: &Path, expected: Sha256Digest, target: &Path) -> Result<(), PushError> {
    let mut src = File::open(file).map_err(|source| PushError::Input {
        path: file.to_path_buf(),
        source,
    })?;
    let out_err = |e: crate::output::OutputError| PushError::Output {
        path: e.path,
        source: e.source,
    };
    let mut out = AtomicFile::create(target).map_err(out_err)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(PushError::Input {
                    path: file.to_path_buf(),
                    source,
                });
            }
        };
        hasher.update(&buf[..n]);
        out.file_mut()
            .write_all(&buf[..n])
            .map_err(|e| out_err(out.error(e)))?;
    }
    let (second, _) = hasher.finish();
    if second != expected {
        return Err(PushError::Changed {
            path: file.to_path_buf(),
            first: expected,
            second,
        });
    }
    let f = out.file_mut();
    let reread = f
        .sync_all()
        .and_then(|()| f.rewind())
        .and_then(|()| hash_reader(&mut *f));
    let (on_disk, _) = reread.map_err(|e| out_err(out.error(e)))?;
    if on_disk != expected {
        return Err(PushError::Verify {
            uri: target.display().to_string(),
            message: format!("read back sha256 {on_disk}, expected {expected}"),
        });
    }
    out.commit().map_err(out_err)
}

fn push_oci(
    file: &Path,
    sha256: Sha256Digest,
    size: u64,
    oci: &super::oci::OciRef,
    opts: &PushOptions,
) -> Result<Pushed, PushError> {
    use super::oci::push::OciPushError;
    let uri = oci.to_string();
    let pushed = super::oci::push::push(file, sha256, size, oci, &opts.net, opts.sign).map_err(
        |e| match e {
            OciPushError::Input { path, source } => PushError::Input { path, source },
            OciPushError::Changed {
                path,
                first,
                second,
            } => PushError::Changed {
                path,
                first,
                second,
            },
            OciPushError::Remote(message) => PushError::Remote { uri, message },
            OciPushError::Unauthorized(message) => PushError::Unauthorized { uri, message },
            OciPushError::Verify(message) => PushError::Verify { uri, message },
        },
    )?;
    Ok(Pushed {
        artifact: ArtifactRef::new(pushed.tagged.to_string(), sha256),
        size,
        uploaded: pushed.uploaded,
        signature_manifest: pushed.signature_manifest,
        referrers_tag: pushed.referrers_tag,
    })
}

fn push_s3(
    file: &Path,
    sha256: Sha256Digest,
    size: u64,
    bucket: &str,
    key: &str,
    net: &NetOptions,
) -> Result<Pushed, PushError> {
    use object_store::ObjectStoreExt;

    let uri = format!("s3://{bucket}/{key}");
    let remote = |message: String| PushError::Remote {
        uri: uri.clone(),
        message,
    };
    let path = s3::object_path(key).map_err(remote)?;
    let store = std::sync::Arc::new(s3::store(bucket, net, s3::Retries::Store).map_err(remote)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| remote(format!("cannot start tokio: {e}")))?;
    let uploaded = rt.block_on(async {
        match store.head(&path).await {
            Ok(meta) if meta.size == size => return Ok(false),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(format!("HEAD: {}", net::chain(&e)))),
        }
        upload(file, sha256, store.clone(), path.clone(), &uri).await?;
        let meta = store.head(&path).await.map_err(|e| PushError::Verify {
            uri: uri.clone(),
            message: format!("HEAD: {}", net::chain(&e)),
        })?;
        if meta.size != size {
            return Err(PushError::Verify {
                uri: uri.clone(),
                message: format!("object has {} bytes, expected {size}", meta.size),
            });
        }
        Ok(true)
    })?;
    Ok(Pushed {
        artifact: ArtifactRef::new(uri.clone(), sha256),
        size,
        uploaded,
        signature_manifest: None,
        referrers_tag: None,
    })
}

/// Streams `file` into a (multipart, for large files) upload, hashing it;
/// completes the upload only if the hash is `expected`, aborts otherwise.
async fn upload(
    file: &Path,
    expected: Sha256Digest,
    store: std::sync::Arc<object_store::aws::AmazonS3>,
    path: object_store::path::Path,
    uri: &str,
) -> Result<(), PushError> {
    use std::pin::Pin;
    use tokio::io::AsyncWrite;

    let remote = |e: object_store::Error| PushError::Remote {
        uri: uri.to_string(),
        message: net::chain(&e),
    };
    let mut src = File::open(file).map_err(|source| PushError::Input {
        path: file.to_path_buf(),
        source,
    })?;
    let mut writer = object_store::buffered::BufWriter::new(store, path);
    let mut hasher = Hasher::new();
    loop {
        let mut buf = vec![0u8; 1024 * 1024];
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                // Best effort: the input error is what the user must see.
                let _ = writer.abort().await;
                return Err(PushError::Input {
                    path: file.to_path_buf(),
                    source,
                });
            }
        };
        buf.truncate(n);
        hasher.update(&buf);
        if let Err(e) = writer.put(bytes::Bytes::from(buf)).await {
            let _ = writer.abort().await;
            return Err(remote(e));
        }
    }
    let (second, _) = hasher.finish();
    if second != expected {
        let _ = writer.abort().await;
        return Err(PushError::Changed {
            path: file.to_path_buf(),
            first: expected,
            second,
        });
    }
    std::future::poll_fn(|cx| Pin::new(&mut writer).poll_shutdown(cx))
        .await
        .map_err(|e| PushError::Remote {
            uri: uri.to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_keeps_compound_tar_suffixes() {
        assert_eq!(extension(Path::new("/x/app.tar.gz")), ".tar.gz");
        assert_eq!(extension(Path::new("app.squashfs")), ".squashfs");
        assert_eq!(extension(Path::new("a.b.tar")), ".tar");
        assert_eq!(extension(Path::new("noext")), "");
        assert_eq!(extension(Path::new(".hidden")), "");
        assert_eq!(extension(Path::new("x.we ird")), "");
    }

    #[test]
    fn dest_parses_each_form() {
        let s3 = |bucket: &str, prefix: &str| Dest::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        };
        let file_uri = Dest::Local {
            dir: "/srv/a".into(),
            as_file_uri: true,
        };
        let cases = [
            ("s3://b/p/q/", s3("b", "p/q")),
            ("s3://b", s3("b", "")),
            ("file:///srv/a", file_uri),
        ];
        for (input, want) in cases {
            assert_eq!(Dest::parse(input).unwrap(), want, "{input}");
        }
        assert!(Dest::parse("ftp://x/y").is_err());
        assert!(Dest::parse("s3:///p").is_err());
    }
}
