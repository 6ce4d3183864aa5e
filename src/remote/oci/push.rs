//! Push to a registry (distribution spec “Pushing blobs”, “Pushing
//! manifests”): HEAD the blob and skip the upload when the registry holds
//! it; else a monolithic PUT for files up to [`CHUNK`] bytes and a chunked
//! (PATCH) upload for larger ones, hashing the bytes as they are sent and
//! cancelling the upload if they are not the bytes hashed first. Upload
//! `Location`s must stay on the registry, and a `Docker-Content-Digest`
//! reported for the blob must be its sha256. Then the empty config blob
//! and the artifact manifest, tagged. Transient failures are retried per
//! step (a retried upload starts a new session); the last one's message
//! says how many attempts were made.
//!
//! With signing, `FILE.minisig` goes up as a referrer: its own manifest
//! (artifact type [`MINISIG_MEDIA_TYPE`]) whose `subject` is the
//! artifact's manifest, pushed by digest (image spec v1.1 “Subject”), so
//! the artifact's manifest and digest do not change when it is signed and
//! `GET /v2/REPO/referrers/DIGEST` lists the signature on registries that
//! serve the referrers API. A registry that does not acknowledge the
//! subject (no `OCI-Subject` header on the PUT: it has no referrers API,
//! as distribution 2.x) gets the referrers tag schema fallback of the
//! distribution spec v1.1 instead, as ORAS and cosign write it: the image
//! index tagged `sha256-HEX` (HEX of the artifact manifest's digest) is
//! read, the signature's descriptor added unless listed, and the index put
//! back, keeping the referrers others pushed. Read, change and put are not
//! atomic (the spec offers no lock): two signers racing on one artifact
//! can lose one listing, never a manifest.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};

use super::OciRef;
use super::client::{Access, DOCKER_CONTENT_DIGEST, OciError, Registry};
use super::manifest::{
    Descriptor, EMPTY_CONFIG, EMPTY_MEDIA_TYPE, INDEX_MEDIA_TYPE, ImageIndex, ImageManifest,
    MANIFEST_MEDIA_TYPE, MINISIG_MEDIA_TYPE, TITLE_ANNOTATION, artifact_type, media_type,
};
use crate::digest::{Hasher, Sha256Digest};
use crate::remote::net::NetOptions;

/// Upload unit: files up to this size go up in one PUT, larger ones in
/// PATCH chunks of this size (the memory one push holds).
pub const CHUNK: usize = 32 << 20;

/// Most bytes of a `.minisig` file pushed.
const MAX_SIGNATURE_BYTES: u64 = 1 << 16;

/// Why an OCI push failed; `remote::push` turns it into its `PushError`.
#[derive(Debug)]
pub(crate) enum OciPushError {
    /// FILE or FILE.minisig could not be read.
    Input { path: PathBuf, source: io::Error },
    /// FILE's bytes changed between the first hash and the upload.
    Changed {
        path: PathBuf,
        first: Sha256Digest,
        second: Sha256Digest,
    },
    /// The registry refused or failed a request.
    Remote(String),
    /// The registry refused the credentials, or wants some and none were
    /// found.
    Unauthorized(String),
    /// What the registry stored does not check out.
    Verify(String),
}

/// What an OCI push did.
pub(crate) struct OciPushed {
    /// The reference pushed to, with its tag.
    pub tagged: OciRef,
    /// False if the registry had the blob.
    pub uploaded: bool,
    /// The signature referrer manifest's digest, when signing.
    pub signature_manifest: Option<String>,
    /// The referrers tag (`sha256-HEX`) that lists the signature, when the
    /// registry did not acknowledge its subject.
    pub referrers_tag: Option<String>,
}

/// How one step failed: a registry error (retried when transient) or an
/// error that ends the push.
enum Fail {
    Oci(OciError),
    Push(OciPushError),
}

impl From<OciError> for Fail {
    fn from(e: OciError) -> Fail {
        Fail::Oci(e)
    }
}

type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, Fail>> + 'a>>;

/// Pushes `file` (whose first read hashed to `sha256`, `size` bytes) to
/// `oci`, tagged with its tag or the default one.
pub(crate) fn push(
    file: &Path,
    sha256: Sha256Digest,
    size: u64,
    oci: &OciRef,
    net: &NetOptions,
    sign: bool,
) -> Result<OciPushed, OciPushError> {
    let remote = OciPushError::Remote;
    let signature = if sign {
        Some(read_signature(file)?)
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| remote(format!("cannot start tokio: {e}")))?;
    let client = crate::remote::net::http_client(net).map_err(remote)?;
    let mut reg = Registry::new(client, oci, Access::Push, net.timeout)
        .map_err(|e| remote(e.message().to_string()))?;
    let tag = oci.tag_or_default().to_string();
    let result = rt.block_on(async {
        let present = retrying(net, &mut reg, |r| {
            Box::pin(async move { Ok(r.blob_size(sha256).await?) })
        })
        .await?;
        let uploaded = present != Some(size);
        if uploaded {
            let owned = file.to_path_buf();
            retrying(net, &mut reg, move |r| {
                let f = owned.clone();
                Box::pin(async move { upload_file(r, &f, sha256, size).await })
            })
            .await?;
            let stored = retrying(net, &mut reg, |r| {
                Box::pin(async move { Ok(r.blob_size(sha256).await?) })
            })
            .await?;
            if stored != Some(size) {
                return Err(Fail::Push(OciPushError::Verify(format!(
                    "registry reports {} for the blob, expected {size} bytes",
                    stored.map_or("no size".to_string(), |n| format!("{n} bytes"))
                ))));
            }
        }
        ensure_blob(net, &mut reg, EMPTY_CONFIG.to_vec()).await?;
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let mut layer = Descriptor::new(media_type(name), sha256, size);
        if !name.is_empty() {
            layer
                .annotations
                .insert(TITLE_ANNOTATION.to_string(), name.to_string());
        }
        let manifest = ImageManifest::artifact(artifact_type(name), layer).to_bytes();
        put_manifest(net, &mut reg, &tag, MANIFEST_MEDIA_TYPE, manifest.clone()).await?;
        let (signature_manifest, referrers_tag) = match signature {
            Some((name, bytes)) => {
                let (digest, tag) = push_signature(net, &mut reg, &manifest, name, bytes).await?;
                (Some(digest), tag)
            }
            None => (None, None),
        };
        Ok((uploaded, signature_manifest, referrers_tag))
    });
    let (uploaded, signature_manifest, referrers_tag) = result.map_err(|f| match f {
        Fail::Push(p) => p,
        Fail::Oci(OciError::Unauthorized(m)) => OciPushError::Unauthorized(m),
        Fail::Oci(e) => remote(e.message().to_string()),
    })?;
    Ok(OciPushed {
        tagged: oci.with_tag(&tag),
        uploaded,
        signature_manifest,
        referrers_tag,
    })
}

/// Runs `op`, retrying transient registry errors with the backoff of
/// `net`.
async fn retrying<T>(
    net: &NetOptions,
    reg: &mut Registry,
    mut op: impl for<'a> FnMut(&'a mut Registry) -> Step<'a, T>,
) -> Result<T, Fail> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match op(reg).await {
            Err(Fail::Oci(e)) if e.is_transient() && attempt <= net.retries => {
                tokio::time::sleep(net.delay(attempt)).await;
            }
            Err(Fail::Oci(e)) if e.is_transient() => {
                let s = if attempt == 1 { "" } else { "s" };
                return Err(Fail::Oci(OciError::Transient(format!(
                    "{} (after {attempt} attempt{s})",
                    e.message()
                ))));
            }
            other => return other,
        }
    }
}

/// The file's bytes into the blob `expected`: one PUT up to [`CHUNK`]
/// bytes, PATCH chunks beyond.
async fn upload_file(
    reg: &mut Registry,
    file: &Path,
    expected: Sha256Digest,
    size: u64,
) -> Result<(), Fail> {
    let input = |source: io::Error| {
        Fail::Push(OciPushError::Input {
            path: file.to_path_buf(),
            source,
        })
    };
    let mut src = File::open(file).map_err(input)?;
    let mut hasher = Hasher::new();
    let mut location = reg.start_upload().await?;
    let mut offset = 0u64;
    let monolithic = size <= CHUNK as u64;
    let mut last = Vec::new();
    loop {
        let buf = read_chunk(&mut src, CHUNK).map_err(input)?;
        if buf.is_empty() {
            break;
        }
        hasher.update(&buf);
        if monolithic {
            // Held back for the single PUT below, after the hash check.
            last.extend_from_slice(&buf);
            if last.len() > CHUNK {
                break; // it grew: the hash check below refuses it
            }
            continue;
        }
        let len = buf.len() as u64;
        let range = format!("{offset}-{}", offset + len - 1);
        let body = bytes::Bytes::from(buf);
        let at = location.clone();
        let resp = reg
            .expect("PATCH upload chunk", &[StatusCode::ACCEPTED], |c| {
                c.patch(at.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, range.clone())
                    .header(CONTENT_LENGTH, len)
                    .body(body.clone())
            })
            .await?;
        location = reg.location(&resp)?;
        offset += len;
    }
    let (second, _) = hasher.finish();
    if second != expected {
        // Best effort: the changed input is what the user must hear about.
        let at = location.clone();
        let _ = reg.send(|c| c.delete(at.clone())).await;
        return Err(Fail::Push(OciPushError::Changed {
            path: file.to_path_buf(),
            first: expected,
            second,
        }));
    }
    finish_upload(reg, location, expected, bytes::Bytes::from(last)).await
}

/// `PUT LOCATION?digest=sha256:HEX` with the last (or only) bytes. A
/// `Docker-Content-Digest` in the answer must be that digest: a registry
/// that stored other bytes under the name is refused before the manifest
/// points at them.
async fn finish_upload(
    reg: &mut Registry,
    mut location: url::Url,
    digest: Sha256Digest,
    body: bytes::Bytes,
) -> Result<(), Fail> {
    location
        .query_pairs_mut()
        .append_pair("digest", &format!("sha256:{digest}"));
    let len = body.len() as u64;
    let resp = reg
        .expect("PUT upload", &[StatusCode::CREATED], |c| {
            c.put(location.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, len)
                .body(body.clone())
        })
        .await?;
    let expected = format!("sha256:{digest}");
    match resp.headers().get(DOCKER_CONTENT_DIGEST) {
        Some(v) if v.as_bytes() != expected.as_bytes() => {
            Err(Fail::Push(OciPushError::Verify(format!(
                "registry stored the blob as {}, expected {expected}",
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(80)
                    .collect::<String>()
            ))))
        }
        _ => Ok(()),
    }
}

/// Uploads small in-memory `bytes` unless the registry holds them.
async fn ensure_blob(net: &NetOptions, reg: &mut Registry, bytes: Vec<u8>) -> Result<(), Fail> {
    let digest = Sha256Digest::of(&bytes);
    let size = bytes.len() as u64;
    let body = bytes::Bytes::from(bytes);
    retrying(net, reg, move |r| {
        let body = body.clone();
        Box::pin(async move {
            if r.blob_size(digest).await? == Some(size) {
                return Ok(());
            }
            let location = r.start_upload().await?;
            finish_upload(r, location, digest, body).await
        })
    })
    .await
}

/// PUTs manifest `bytes` of `media_type` under `reference` and checks the
/// digest the registry reports; returns whether it acknowledged a
/// `subject`.
async fn put_manifest(
    net: &NetOptions,
    reg: &mut Registry,
    reference: &str,
    media_type: &'static str,
    bytes: Vec<u8>,
) -> Result<bool, Fail> {
    let expected = format!("sha256:{}", Sha256Digest::of(&bytes));
    let reference = reference.to_string();
    let (reported, subject) = retrying(net, reg, move |r| {
        let bytes = bytes.clone();
        let reference = reference.clone();
        Box::pin(async move { Ok(r.put_manifest(&reference, media_type, &bytes).await?) })
    })
    .await?;
    if let Some(d) = reported
        && d != expected
    {
        return Err(Fail::Push(OciPushError::Verify(format!(
            "registry stored the manifest as {d}, expected {expected}"
        ))));
    }
    Ok(subject)
}

/// `FILE.minisig`: its name and bytes.
fn read_signature(file: &Path) -> Result<(String, Vec<u8>), OciPushError> {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".minisig");
    let path: PathBuf = file.with_file_name(&name);
    let input = |source| OciPushError::Input {
        path: path.clone(),
        source,
    };
    let f = File::open(&path).map_err(input)?;
    let mut bytes = Vec::new();
    f.take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(input)?;
    if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(input(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_SIGNATURE_BYTES} bytes: not a minisign signature"),
        )));
    }
    Ok((name.to_string_lossy().into_owned(), bytes))
}

/// Pushes the signature blob and its referrer manifest; returns the
/// referrer manifest's digest and, when the registry did not acknowledge
/// the subject, the referrers tag now listing it.
async fn push_signature(
    net: &NetOptions,
    reg: &mut Registry,
    artifact_manifest: &[u8],
    name: String,
    bytes: Vec<u8>,
) -> Result<(String, Option<String>), Fail> {
    let sig_sha = Sha256Digest::of(&bytes);
    let sig_size = bytes.len() as u64;
    ensure_blob(net, reg, bytes).await?;
    let mut layer = Descriptor::new(MINISIG_MEDIA_TYPE, sig_sha, sig_size);
    layer.annotations.insert(TITLE_ANNOTATION.to_string(), name);
    let mut m = ImageManifest::artifact(MINISIG_MEDIA_TYPE, layer);
    m.subject = Some(Descriptor::new(
        MANIFEST_MEDIA_TYPE,
        Sha256Digest::of(artifact_manifest),
        artifact_manifest.len() as u64,
    ));
    debug_assert_eq!(m.config.media_type, EMPTY_MEDIA_TYPE);
    let bytes = m.to_bytes();
    let sha256 = Sha256Digest::of(&bytes);
    let digest = format!("sha256:{sha256}");
    let mut referrer = Descriptor::new(MANIFEST_MEDIA_TYPE, sha256, bytes.len() as u64);
    // The referrers list carries the manifest's artifactType and its
    // (top-level) annotations.
    referrer.artifact_type = m.artifact_type.clone();
    referrer.annotations = m.annotations.clone();
    let acknowledged = put_manifest(net, reg, &digest, MANIFEST_MEDIA_TYPE, bytes).await?;
    if acknowledged {
        return Ok((digest, None));
    }
    let tag = referrers_tag(Sha256Digest::of(artifact_manifest));
    add_referrer(net, reg, &tag, referrer).await?;
    Ok((digest, Some(tag)))
}

/// The referrers tag schema's tag of the manifest `sha256:HEX`:
/// `sha256-HEX`.
fn referrers_tag(manifest: Sha256Digest) -> String {
    format!("sha256-{manifest}")
}

/// Lists `referrer` in the index tagged `tag`: reads it (absent: a new
/// empty index), adds the descriptor unless its digest is listed, and puts
/// the index back only if it changed.
async fn add_referrer(
    net: &NetOptions,
    reg: &mut Registry,
    tag: &str,
    referrer: Descriptor,
) -> Result<(), Fail> {
    let reference = tag.to_string();
    let existing = retrying(net, reg, move |r| {
        let reference = reference.clone();
        Box::pin(async move {
            match r.manifest(&reference, INDEX_MEDIA_TYPE).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(OciError::NotFound(_)) => Ok(None),
                Err(e) => Err(Fail::Oci(e)),
            }
        })
    })
    .await?;
    let mut index = match existing {
        Some(bytes) => ImageIndex::parse(&bytes).map_err(|e| {
            Fail::Push(OciPushError::Remote(format!(
                "{}: referrers tag {tag}: {e}",
                reg.oci().registry()
            )))
        })?,
        None => ImageIndex::new(Vec::new()),
    };
    if index.add(referrer) {
        put_manifest(net, reg, tag, INDEX_MEDIA_TYPE, index.to_bytes()).await?;
    }
    Ok(())
}

/// Reads up to `max` bytes (fewer only at the end of the file).
fn read_chunk(src: &mut File, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max);
    src.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}
