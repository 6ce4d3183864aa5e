//! Where bytes come from: local paths / `file://`, `http(s)://`, `s3://`
//! and `oci://` registries.
//!
//! A [`Origin`] moves bytes into a [`Download`] and classifies failures as
//! transient (retried with backoff: HTTP 5xx/408/429, connection resets,
//! bodies shorter than announced, timeouts) or permanent (404 and other
//! 4xx, a missing file, too many redirects). It never judges the bytes: the
//! caller compares the digest.

use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use super::cache::Download;
use super::net::{NetOptions, chain, http_client, is_tls_error};
use super::oci::OciRef;
use super::oci::client::{Access, OciError, Registry};
use super::uri::{self, Location, UriError};
use crate::digest::{ContentDigest, Sha256Digest};

/// Receives progress of a download. The CLI draws a bar with it on a TTY;
/// the library itself never prints.
pub trait Progress: Send + Sync {
    /// A download from `source` starts (again, after a retry); `total` is the
    /// announced size if the server sent one.
    fn start(&self, source: &str, total: Option<u64>);
    /// `bytes` more bytes were written to the cache's temp file.
    fn advance(&self, bytes: u64);
    /// The download ended (successfully or not).
    fn finish(&self);
}

/// Why one source did not deliver the artifact.
#[derive(Debug)]
pub enum SourceFailure {
    /// The source delivered bytes with another digest.
    Mismatch {
        /// The digest asked for (the ref's).
        expected: ContentDigest,
        /// The digest, by the same algorithm, of the bytes delivered.
        actual: ContentDigest,
        /// How many bytes were delivered.
        size: u64,
    },
    /// The object does not exist there (404, missing file, S3 NoSuchKey).
    NotFound(String),
    /// A transport error; `attempts` tries were made.
    Transport {
        /// The last error, in words.
        message: String,
        /// How many tries were made.
        attempts: u32,
    },
}

/// A place to fetch an artifact from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A plain path or a `file://` URI.
    Local {
        /// The URI as given.
        uri: String,
        /// The local file it names.
        path: PathBuf,
    },
    /// `http://` or `https://`.
    Http {
        /// The URI as given.
        uri: String,
    },
    /// `s3://bucket/key`.
    S3 {
        /// The URI as given.
        uri: String,
        /// The bucket name.
        bucket: String,
        /// The object key.
        key: String,
    },
    /// `oci://HOST[:PORT]/REPO[:TAG]`: the blob named by the ref's sha256
    /// in that repository (the tag is not read).
    Oci {
        /// The URI as given.
        uri: String,
        /// The registry and repository.
        oci: OciRef,
    },
}

/// Why one source produced no bytes.
#[derive(Debug)]
pub(crate) enum Error {
    /// Writing to the cache failed (full disk, …): stop, don't try mirrors.
    Sink(io::Error),
    /// This source failed; the next one may be tried. Boxed: a
    /// [`SourceFailure::Mismatch`] holds two digests of up to 64 bytes.
    Failed(Box<SourceFailure>),
}

/// Outcome of one attempt, before retries are decided.
enum AttemptError {
    Sink(io::Error),
    Transient(String),
    Permanent(String),
    NotFound(String),
}

impl Origin {
    /// Parses a URI the way refs do: a plain path, `file://`, `http(s)://`
    /// or `s3://bucket/key`.
    pub fn parse(uri: &str) -> Result<Origin, String> {
        let owned = uri.to_string();
        let unsupported = |e: UriError| match e {
            UriError::Scheme(scheme) => format!(
                "unsupported scheme {scheme:?} (use a path, file://, http://, https://, s3:// or oci://)"
            ),
            other => other.to_string(),
        };
        match uri::classify(uri).map_err(unsupported)? {
            Location::Local { path, .. } => Ok(Origin::Local { uri: owned, path }),
            Location::Http => Ok(Origin::Http { uri: owned }),
            Location::S3 { key, .. } if key.is_empty() => Err(UriError::S3Bucket.to_string()),
            Location::S3 { bucket, key } => Ok(Origin::S3 {
                bucket,
                key,
                uri: owned,
            }),
            Location::Oci(oci) => Ok(Origin::Oci { uri: owned, oci }),
        }
    }

    /// The URI as given.
    pub fn uri(&self) -> &str {
        match self {
            Origin::Local { uri, .. }
            | Origin::Http { uri }
            | Origin::S3 { uri, .. }
            | Origin::Oci { uri, .. } => uri,
        }
    }

    /// Streams the bytes into `download`, retrying transient failures of
    /// network sources `net.retries` times with exponential backoff.
    /// `digest` names the blob of an `oci://` source, which must be a
    /// sha256; the caller still judges the bytes.
    pub(crate) fn fetch_into(
        &self,
        digest: ContentDigest,
        download: &mut Download,
        net: &NetOptions,
        progress: Option<&dyn Progress>,
        rt: &mut Runtime,
    ) -> Result<(), Error> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if attempt > 1 {
                download.reset().map_err(Error::Sink)?;
            }
            let mut sink = Sink { download, progress };
            let result = match self {
                Origin::Local { path, .. } => copy_local(path, &mut sink),
                Origin::Http { uri } => rt.http(net, &mut sink, uri),
                Origin::S3 { bucket, key, .. } => rt.s3(net, &mut sink, bucket, key),
                Origin::Oci { oci, .. } => match digest.sha256() {
                    Some(sha256) => rt.oci(net, &mut sink, oci, sha256),
                    None => Err(AttemptError::Permanent(format!(
                        "an oci:// blob is fetched by its sha256, not by {}",
                        digest.algorithm().name()
                    ))),
                },
            };
            if let Some(p) = progress {
                p.finish();
            }
            match result {
                Ok(()) => return Ok(()),
                Err(AttemptError::Sink(e)) => return Err(Error::Sink(e)),
                Err(AttemptError::NotFound(m)) => {
                    return Err(Error::Failed(Box::new(SourceFailure::NotFound(m))));
                }
                Err(AttemptError::Permanent(message)) => {
                    return Err(Error::Failed(Box::new(SourceFailure::Transport {
                        message,
                        attempts: attempt,
                    })));
                }
                Err(AttemptError::Transient(message)) => {
                    if attempt > net.retries || matches!(self, Origin::Local { .. }) {
                        return Err(Error::Failed(Box::new(SourceFailure::Transport {
                            message,
                            attempts: attempt,
                        })));
                    }
                    std::thread::sleep(net.delay(attempt));
                }
            }
        }
    }
}

/// The write side of one attempt: the download plus progress reporting.
struct Sink<'a> {
    download: &'a mut Download,
    progress: Option<&'a dyn Progress>,
}

impl Sink<'_> {
    fn start(&self, source: &str, total: Option<u64>) {
        if let Some(p) = self.progress {
            p.start(source, total);
        }
    }
    fn write(&mut self, bytes: &[u8]) -> Result<(), AttemptError> {
        self.download.write(bytes).map_err(AttemptError::Sink)?;
        if let Some(p) = self.progress {
            p.advance(bytes.len() as u64);
        }
        Ok(())
    }
}

fn copy_local(path: &std::path::Path, sink: &mut Sink<'_>) -> Result<(), AttemptError> {
    let name = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => AttemptError::NotFound(format!("{name}: {e}")),
        _ => AttemptError::Permanent(format!("{name}: {e}")),
    })?;
    let total = file.metadata().ok().map(|m| m.len());
    sink.start(&name.to_string(), total);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AttemptError::Permanent(format!("read {name}: {e}"))),
        };
        sink.write(&buf[..n])?;
    }
}

/// The tokio runtime and HTTP client, created on first use and shared by
/// all network attempts of one fetch.
#[derive(Default)]
pub(crate) struct Runtime {
    inner: Option<(tokio::runtime::Runtime, reqwest::Client)>,
    /// Registries spoken to, with the authorization earned (kept across
    /// retries so a token is fetched once).
    registries: Vec<Registry>,
}

impl Runtime {
    fn get(
        &mut self,
        net: &NetOptions,
    ) -> Result<&(tokio::runtime::Runtime, reqwest::Client), AttemptError> {
        if self.inner.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AttemptError::Permanent(format!("cannot start tokio: {e}")))?;
            let client = http_client(net).map_err(AttemptError::Permanent)?;
            self.inner = Some((rt, client));
        }
        self.inner
            .as_ref()
            .ok_or_else(|| AttemptError::Permanent("runtime missing".into()))
    }

    fn http(
        &mut self,
        net: &NetOptions,
        sink: &mut Sink<'_>,
        uri: &str,
    ) -> Result<(), AttemptError> {
        let (rt, client) = self.get(net)?;
        rt.block_on(http_get(client, uri, sink, net.timeout))
    }

    fn oci(
        &mut self,
        net: &NetOptions,
        sink: &mut Sink<'_>,
        oci: &OciRef,
        sha256: Sha256Digest,
    ) -> Result<(), AttemptError> {
        let client = self.get(net)?.1.clone();
        let found = self.registries.iter().position(|r| {
            r.oci().registry() == oci.registry() && r.oci().repository() == oci.repository()
        });
        let at = match found {
            Some(i) => i,
            None => {
                self.registries
                    .push(Registry::new(client, oci, Access::Pull, net.timeout)?);
                self.registries.len() - 1
            }
        };
        let rt = &self
            .inner
            .as_ref()
            .ok_or_else(|| AttemptError::Permanent("runtime missing".into()))?
            .0;
        let registry = &mut self.registries[at];
        rt.block_on(oci_get(registry, sha256, sink, net.timeout))
    }

    fn s3(
        &mut self,
        net: &NetOptions,
        sink: &mut Sink<'_>,
        bucket: &str,
        key: &str,
    ) -> Result<(), AttemptError> {
        let (rt, _) = self.get(net)?;
        rt.block_on(async {
            let store = super::s3::store(bucket, net, super::s3::Retries::Caller)
                .map_err(AttemptError::Permanent)?;
            s3_get(&store, bucket, key, sink).await
        })
    }
}

impl From<OciError> for AttemptError {
    fn from(e: OciError) -> AttemptError {
        match e {
            OciError::Transient(m) => AttemptError::Transient(m),
            OciError::NotFound(m) => AttemptError::NotFound(m),
            OciError::Permanent(m) | OciError::Unauthorized(m) => AttemptError::Permanent(m),
        }
    }
}

/// `GET /v2/REPO/blobs/sha256:HEX`, following redirects (registries send
/// blob GETs on to object storage), streamed into the sink.
async fn oci_get(
    registry: &mut Registry,
    sha256: Sha256Digest,
    sink: &mut Sink<'_>,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let url = registry.blob_url(sha256)?;
    let resp = registry.send(|c| c.get(url.clone())).await?;
    if !resp.status().is_success() {
        return Err(registry.status_error("GET blob", resp).await.into());
    }
    let label = format!("{}@sha256:{sha256}", registry.oci());
    stream_body(resp, &label, sink, timeout).await
}

fn classify_reqwest(e: &reqwest::Error, timeout: Duration) -> AttemptError {
    let msg = chain(e);
    if e.is_redirect() || e.is_builder() || is_tls_error(e) {
        AttemptError::Permanent(msg)
    } else if e.is_timeout() {
        AttemptError::Transient(format!("timed out (no progress for {timeout:?}): {msg}"))
    } else {
        AttemptError::Transient(msg)
    }
}

async fn http_get(
    client: &reqwest::Client,
    uri: &str,
    sink: &mut Sink<'_>,
    timeout: Duration,
) -> Result<(), AttemptError> {
    // No total timeout (artifacts may be large); connect and every read
    // are bounded by `timeout`.
    let resp = client
        .get(uri)
        .send()
        .await
        .map_err(|e| classify_reqwest(&e, timeout))?;
    let status = resp.status();
    if !status.is_success() {
        let msg = format!("HTTP {status} from {}", resp.url());
        return Err(match status.as_u16() {
            404 | 410 => AttemptError::NotFound(msg),
            408 | 429 => AttemptError::Transient(msg),
            s if s >= 500 => AttemptError::Transient(msg),
            _ => AttemptError::Permanent(msg),
        });
    }
    stream_body(resp, uri, sink, timeout).await
}

/// Streams a successful response's body into the sink; a body shorter
/// than its Content-Length is a transient failure.
async fn stream_body(
    mut resp: reqwest::Response,
    label: &str,
    sink: &mut Sink<'_>,
    timeout: Duration,
) -> Result<(), AttemptError> {
    let announced = resp.content_length();
    sink.start(label, announced);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| classify_reqwest(&e, timeout))?
    {
        sink.write(&chunk)?;
    }
    let got = sink.download.written();
    match announced {
        Some(n) if n != got => Err(AttemptError::Transient(format!(
            "body has {got} bytes, Content-Length said {n}"
        ))),
        _ => Ok(()),
    }
}

async fn s3_get(
    store: &object_store::aws::AmazonS3,
    bucket: &str,
    key: &str,
    sink: &mut Sink<'_>,
) -> Result<(), AttemptError> {
    use futures_util::StreamExt;
    use object_store::ObjectStoreExt;

    let path = super::s3::object_path(key).map_err(AttemptError::Permanent)?;
    let uri = format!("s3://{bucket}/{key}");
    let res = store.get(&path).await.map_err(classify_s3)?;
    let size = res.meta.size;
    sink.start(&uri, Some(size));
    let mut stream = res.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(classify_s3)?;
        sink.write(&chunk)?;
    }
    let got = sink.download.written();
    if got != size {
        return Err(AttemptError::Transient(format!(
            "{uri}: got {got} bytes, object size is {size}"
        )));
    }
    Ok(())
}

fn classify_s3(e: object_store::Error) -> AttemptError {
    // object_store's messages name the key and the request URL already.
    let msg = chain(&e);
    match e {
        object_store::Error::NotFound { .. } => AttemptError::NotFound(msg),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. }
        | object_store::Error::InvalidPath { .. }
        | object_store::Error::NotSupported { .. }
        | object_store::Error::NotImplemented { .. }
        | object_store::Error::UnknownConfigurationKey { .. } => AttemptError::Permanent(msg),
        _ => AttemptError::Transient(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_of_uri() {
        assert_eq!(
            Origin::parse("/a/b.tar").unwrap(),
            Origin::Local {
                uri: "/a/b.tar".into(),
                path: "/a/b.tar".into()
            }
        );
        assert_eq!(
            Origin::parse("file:///a/b%20c.tar").unwrap(),
            Origin::Local {
                uri: "file:///a/b%20c.tar".into(),
                path: "/a/b c.tar".into()
            }
        );
        assert_eq!(
            Origin::parse("s3://bkt/k/x.sqfs").unwrap(),
            Origin::S3 {
                uri: "s3://bkt/k/x.sqfs".into(),
                bucket: "bkt".into(),
                key: "k/x.sqfs".into()
            }
        );
        assert!(matches!(
            Origin::parse("https://h/x").unwrap(),
            Origin::Http { .. }
        ));
        for bad in [
            "",
            "ftp://h/x",
            "s3://bkt",
            "s3:///k",
            "file://host/x",
            "http://",
        ] {
            assert!(Origin::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let net = NetOptions {
            backoff: Duration::from_millis(500),
            ..NetOptions::default()
        };
        assert_eq!(net.delay(1), Duration::from_millis(500));
        assert_eq!(net.delay(2), Duration::from_secs(1));
        assert_eq!(net.delay(3), Duration::from_secs(2));
        assert_eq!(net.delay(40), Duration::from_secs(30));
    }
}
