//! The requests of the distribution spec that repropack makes, with the
//! authentication handshake in front of them: a request answered 401 is
//! answered with the registry's challenge (basic, or a bearer token from
//! the token endpoint for the scope the operation needs) and sent once
//! more.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Client, RequestBuilder, Response, StatusCode};

use super::OciRef;
use super::auth::{self, Challenge, Credentials};
use super::manifest::MAX_MANIFEST_BYTES;
use crate::digest::Sha256Digest;
use crate::remote::net::chain;

/// What a 401 means when no credentials were found.
const NO_CREDENTIALS: &str =
    "no credentials for this registry (docker login, podman login, or a credential helper)";

/// The header in which a registry reports the digest of what it stored
/// (distribution spec “Pushing blobs”, “Pushing manifests”).
pub(crate) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// Most bytes read of a token endpoint's answer or an error body.
const MAX_SMALL_BODY: usize = 1 << 20;

/// Why a registry request failed. Messages name the registry and never a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OciError {
    /// Worth retrying: connection errors, timeouts, 5xx, 408, 429.
    Transient(String),
    /// Retrying cannot help (TLS errors, 4xx other than 401/404).
    Permanent(String),
    /// 404: the repository does not hold the blob or the tag.
    NotFound(String),
    /// 401 after answering the challenge, or no credentials to answer it.
    Unauthorized(String),
}

impl OciError {
    pub(crate) fn message(&self) -> &str {
        match self {
            OciError::Transient(m)
            | OciError::Permanent(m)
            | OciError::NotFound(m)
            | OciError::Unauthorized(m) => m,
        }
    }
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, OciError::Transient(_))
    }
}

/// What an operation needs of a repository: the token scope asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

/// One repository of one registry, with the authorization earned so far.
pub(crate) struct Registry {
    client: Client,
    oci: OciRef,
    base: url::Url,
    access: Access,
    timeout: Duration,
    credentials: Option<Option<Credentials>>,
    authorization: Option<String>,
}

impl Registry {
    pub(crate) fn new(
        client: Client,
        oci: &OciRef,
        access: Access,
        timeout: Duration,
    ) -> Result<Registry, OciError> {
        let base = url::Url::parse(&oci.base_url()).map_err(|e| {
            OciError::Permanent(format!("{}: bad registry URL: {e}", oci.registry()))
        })?;
        Ok(Registry {
            client,
            oci: oci.clone(),
            base,
            access,
            timeout,
            credentials: None,
            authorization: None,
        })
    }

    pub(crate) fn oci(&self) -> &OciRef {
        &self.oci
    }

    /// `BASE/v2/REPO/SUFFIX`.
    pub(crate) fn api_url(&self, suffix: &str) -> Result<url::Url, OciError> {
        let path = format!("/v2/{}/{suffix}", self.oci.repository());
        self.base.join(&path).map_err(|e| {
            OciError::Permanent(format!("{}: bad URL {path}: {e}", self.oci.registry()))
        })
    }

    /// A URL the registry handed out (an upload `Location`), resolved
    /// against the base. It must stay on the registry (same scheme, host
    /// and port; a relative one does): every request to it carries the
    /// registry's `Authorization`, which another host must never see.
    pub(crate) fn resolve(&self, location: &str) -> Result<url::Url, OciError> {
        let url = self.base.join(location).map_err(|e| {
            OciError::Permanent(format!(
                "{}: bad Location {location:?}: {e}",
                self.oci.registry()
            ))
        })?;
        let same = url.scheme() == self.base.scheme()
            && url.host() == self.base.host()
            && url.port_or_known_default() == self.base.port_or_known_default();
        if !same {
            return Err(OciError::Permanent(format!(
                "{}: refused upload Location {location:?}: not on the registry ({})",
                self.oci.registry(),
                self.base.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// The blob URL of `sha256`.
    pub(crate) fn blob_url(&self, sha256: Sha256Digest) -> Result<url::Url, OciError> {
        self.api_url(&format!("blobs/sha256:{sha256}"))
    }

    /// Sends the request `build` makes, answering one 401 challenge.
    pub(crate) async fn send(
        &mut self,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, OciError> {
        let mut answered = false;
        loop {
            let mut req = build(&self.client);
            if let Some(a) = &self.authorization {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| self.transport(&e))?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if answered {
                let why = match self.credentials.as_ref().and_then(Option::as_ref) {
                    Some(_) => "the registry refused the credentials",
                    None => NO_CREDENTIALS,
                };
                return Err(self.unauthorized(why));
            }
            answered = true;
            self.answer(&resp).await?;
        }
    }

    /// Sends `build`'s request and fails on any status but `ok`.
    pub(crate) async fn expect(
        &mut self,
        what: &str,
        ok: &[StatusCode],
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, OciError> {
        let resp = self.send(build).await?;
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        Err(self.status_error(what, resp).await)
    }

    /// The error for an unexpected status, with the registry's error code
    /// if its body names one.
    pub(crate) async fn status_error(&self, what: &str, resp: Response) -> OciError {
        let status = resp.status();
        let detail = read_limited(resp, MAX_SMALL_BODY, self.timeout)
            .await
            .ok()
            .and_then(|b| error_codes(&b))
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let msg = format!("{}: {what}: HTTP {status}{detail}", self.oci.registry());
        match status.as_u16() {
            404 => OciError::NotFound(msg),
            408 | 429 => OciError::Transient(msg),
            s if s >= 500 => OciError::Transient(msg),
            _ => OciError::Permanent(msg),
        }
    }

    fn unauthorized(&self, why: &str) -> OciError {
        OciError::Unauthorized(format!(
            "registry {}: unauthorized: {why}",
            self.oci.registry()
        ))
    }

    pub(crate) fn transport(&self, e: &reqwest::Error) -> OciError {
        let msg = format!("{}: {}", self.oci.registry(), chain(e));
        if e.is_redirect() || e.is_builder() || crate::remote::net::is_tls_error(e) {
            OciError::Permanent(msg)
        } else if e.is_timeout() {
            OciError::Transient(format!(
                "timed out (no progress for {:?}): {msg}",
                self.timeout
            ))
        } else {
            OciError::Transient(msg)
        }
    }

    fn credentials(&mut self) -> Result<Option<Credentials>, OciError> {
        if self.credentials.is_none() {
            let found = auth::lookup(self.oci.registry())
                .map_err(|e| OciError::Permanent(format!("{}: {e}", self.oci.registry())))?;
            self.credentials = Some(found);
        }
        Ok(self.credentials.clone().flatten())
    }

    /// Earns an `Authorization` value from a 401's challenges.
    async fn answer(&mut self, resp: &Response) -> Result<(), OciError> {
        let mut challenges = Vec::new();
        for v in resp.headers().get_all(WWW_AUTHENTICATE) {
            if let Ok(s) = v.to_str() {
                challenges.extend(auth::parse_challenges(s).unwrap_or_default());
            }
        }
        let bearer = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }));
        let creds = self.credentials()?;
        match (bearer, challenges.first()) {
            (Some(Challenge::Bearer { realm, service, .. }), _) => {
                let token = self
                    .token(realm, service.as_deref(), creds.as_ref())
                    .await?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
            (None, Some(Challenge::Basic)) => {
                let c = creds.ok_or_else(|| self.unauthorized(NO_CREDENTIALS))?;
                let pair = format!("{}:{}", c.username, c.secret);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                self.authorization = Some(format!("Basic {encoded}"));
                Ok(())
            }
            _ => Err(self.unauthorized("no Basic or Bearer challenge in WWW-Authenticate")),
        }
    }

    /// The token flow: GET `realm?service=…&scope=repository:REPO:ACTIONS`,
    /// with the credentials as basic auth when there are any.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<String, OciError> {
        let mut url = url::Url::parse(realm).map_err(|e| {
            OciError::Permanent(format!(
                "{}: bad token realm {realm:?}: {e}",
                self.oci.registry()
            ))
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(OciError::Permanent(format!(
                "{}: token realm {realm:?} is not http(s)",
                self.oci.registry()
            )));
        }
        let actions = match self.access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair(
                "scope",
                &format!("repository:{}:{actions}", self.oci.repository()),
            );
        }
        let mut req = self.client.get(url);
        if let Some(c) = creds {
            req = req.basic_auth(&c.username, Some(&c.secret));
        }
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(&format!("the token endpoint answered HTTP {status}")));
        }
        if !status.is_success() {
            let msg = format!("{}: token endpoint: HTTP {status}", self.oci.registry());
            return Err(if status.is_server_error() {
                OciError::Transient(msg)
            } else {
                OciError::Permanent(msg)
            });
        }
        let body = read_limited(resp, MAX_SMALL_BODY, self.timeout).await?;
        auth::parse_token(&body)
            .map_err(|m| OciError::Permanent(format!("{}: {m}", self.oci.registry())))
    }

    /// `HEAD /v2/REPO/blobs/sha256:HEX`: the size if the blob is there.
    pub(crate) async fn blob_size(
        &mut self,
        sha256: Sha256Digest,
    ) -> Result<Option<u64>, OciError> {
        let url = self.blob_url(sha256)?;
        let resp = self.send(|c| c.head(url.clone())).await?;
        match resp.status() {
            StatusCode::OK => Ok(resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error("HEAD blob", resp).await),
        }
    }

    /// `GET /v2/REPO/manifests/REFERENCE` accepting `media_type` (an OCI
    /// image manifest or index; registries answer 404 for a kind not
    /// accepted): the raw bytes, at most [`MAX_MANIFEST_BYTES`].
    pub(crate) async fn manifest(
        &mut self,
        reference: &str,
        media_type: &str,
    ) -> Result<Vec<u8>, OciError> {
        let url = self.api_url(&format!("manifests/{reference}"))?;
        let resp = self
            .expect("GET manifest", &[StatusCode::OK], |c| {
                c.get(url.clone()).header(ACCEPT, media_type)
            })
            .await?;
        read_limited(resp, MAX_MANIFEST_BYTES, self.timeout).await
    }

    /// `PUT /v2/REPO/manifests/REFERENCE` of a manifest of `media_type`;
    /// returns the digest the registry reports (`Docker-Content-Digest`),
    /// if any, and whether it acknowledged a `subject` (`OCI-Subject`).
    pub(crate) async fn put_manifest(
        &mut self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(Option<String>, bool), OciError> {
        let url = self.api_url(&format!("manifests/{reference}"))?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .expect(
                "PUT manifest",
                &[StatusCode::CREATED, StatusCode::OK],
                |c| {
                    c.put(url.clone())
                        .header(CONTENT_TYPE, media_type)
                        .body(body.clone())
                },
            )
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok((
            header(DOCKER_CONTENT_DIGEST),
            header("oci-subject").is_some(),
        ))
    }

    /// `POST /v2/REPO/blobs/uploads/`: the upload session's URL.
    pub(crate) async fn start_upload(&mut self) -> Result<url::Url, OciError> {
        let url = self.api_url("blobs/uploads/")?;
        let resp = self
            .expect("start upload", &[StatusCode::ACCEPTED], |c| {
                c.post(url.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        self.location(&resp)
    }

    /// The `Location` of a response, resolved.
    pub(crate) fn location(&self, resp: &Response) -> Result<url::Url, OciError> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                OciError::Permanent(format!(
                    "{}: upload answer has no Location",
                    self.oci.registry()
                ))
            })?;
        self.resolve(loc)
    }
}

/// Reads at most `max` bytes of a body; more is an error.
pub(crate) async fn read_limited(
    mut resp: Response,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, OciError> {
    let mut out = Vec::new();
    loop {
        let chunk = tokio::time::timeout(timeout, resp.chunk())
            .await
            .map_err(|_| OciError::Transient(format!("body read timed out after {timeout:?}")))?
            .map_err(|e| OciError::Transient(chain(&e)))?;
        let Some(chunk) = chunk else {
            return Ok(out);
        };
        if out.len() + chunk.len() > max {
            return Err(OciError::Permanent(format!(
                "answer from {} is larger than {max} bytes",
                resp.url().host_str().unwrap_or("the registry")
            )));
        }
        out.extend_from_slice(&chunk);
    }
}

/// The `code`s of a distribution error body `{"errors":[{"code":…}]}`.
fn error_codes(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: String,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    // Registry-chosen text: a few short codes at most.
    let codes: Vec<String> = b
        .errors
        .into_iter()
        .take(4)
        .map(|i| i.code.chars().take(64).collect())
        .collect();
    (!codes.is_empty()).then(|| codes.join(", "))
}
