//! OCI distribution registries as a transport: `oci://HOST[:PORT]/REPO[:TAG]`.
//!
//! A registry is content-addressed: a blob's name is its sha256, so an
//! artifact ref `oci://HOST/REPO[:TAG]#sha256=HEX` names the blob
//! `/v2/REPO/blobs/sha256:HEX` and nothing about the registry or the tag
//! has to be trusted (the tag is never read on fetch). What is spoken is
//! the OCI distribution spec v1.1 (“Pulling blobs”, “Pushing blobs”,
//! “Pushing manifests”, “Pulling manifests”); the manifest pushed is the
//! one ORAS 1.x writes for a single-file artifact (OCI image spec v1.1
//! “Guidelines for artifact usage”): `artifactType`, the empty config
//! descriptor and one layer.
//!
//! - [`OciRef`]: the URI grammar (distribution spec “Pulling manifests”:
//!   the `<name>` and `<reference>` patterns).
//! - [`manifest`](mod@manifest): the manifest JSON, written and read in one place.
//! - [`auth`](mod@auth): credentials (docker and podman files, credential helpers)
//!   and the `WWW-Authenticate` challenge flow (basic and bearer tokens).
//! - [`resolve`]: a tag → the pinned ref of its artifact.
//! - `client`: the requests, over the same reqwest/rustls client setup as
//!   `https://` fetches.
//!
//! Plain HTTP is used only for loopback registries and for the hosts in
//! `REPROPACK_INSECURE_REGISTRIES` (comma-separated `HOST[:PORT]`), as
//! docker does; everything else is HTTPS.

pub mod auth;
pub(crate) mod client;
pub mod manifest;
pub(crate) mod push;
mod resolve;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use resolve::{ResolveError, resolve};

/// The tag pushed to when the destination names none (what docker and
/// ORAS use too).
pub const DEFAULT_TAG: &str = "latest";

/// The environment variable listing registries spoken to over plain HTTP.
pub const INSECURE_REGISTRIES_ENV: &str = "REPROPACK_INSECURE_REGISTRIES";

/// `oci://HOST[:PORT]/REPO[:TAG]`, checked against the distribution spec's
/// grammar for repository names and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    registry: String,
    repository: String,
    tag: Option<String>,
}

/// What is wrong with an `oci://` URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciRefError {
    /// It does not start with `oci://`.
    #[error("not an oci:// URI")]
    Scheme,
    /// No `/REPO` after the host.
    #[error("OCI URI must be oci://HOST[:PORT]/REPO[:TAG]")]
    Shape,
    /// The host part is empty or holds characters a host name cannot.
    #[error("bad registry host {0:?}")]
    Host(String),
    /// The repository name does not match `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/…)*`.
    #[error(
        "bad repository name {0:?}: lowercase letters and digits, separated by `.`, `_`, `__`, `-` or `/`"
    )]
    Repository(String),
    /// The tag does not match `[a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}`.
    #[error("bad tag {0:?}: 1-128 of letters, digits, `_`, `.`, `-`, not starting with `.` or `-`")]
    Tag(String),
}

impl OciRef {
    /// The registry, `HOST[:PORT]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// The repository name.
    pub fn repository(&self) -> &str {
        &self.repository
    }
    /// The tag, if the URI names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The tag, or [`DEFAULT_TAG`].
    pub fn tag_or_default(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }
    /// The same reference with `tag`.
    pub fn with_tag(&self, tag: &str) -> OciRef {
        OciRef {
            tag: Some(tag.to_string()),
            ..self.clone()
        }
    }
    /// The host without the port (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }
    /// Whether this registry is spoken to over plain HTTP: a loopback host,
    /// or one listed in `REPROPACK_INSECURE_REGISTRIES`.
    pub fn insecure(&self) -> bool {
        let listed = std::env::var(INSECURE_REGISTRIES_ENV).unwrap_or_default();
        is_loopback(self.host())
            || listed
                .split(',')
                .map(str::trim)
                .any(|l| !l.is_empty() && (l == self.registry || l == self.host()))
    }
    /// `http(s)://HOST[:PORT]`, the base of every API URL.
    pub fn base_url(&self) -> String {
        let scheme = if self.insecure() { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }
}

fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.find(']').map_or(registry, |end| &registry[..=end]);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// localhost, 127.0.0.0/8 and ::1.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for OciRef {
    type Err = OciRefError;
    fn from_str(uri: &str) -> Result<OciRef, OciRefError> {
        let rest = uri.strip_prefix("oci://").ok_or(OciRefError::Scheme)?;
        let (registry, path) = rest.split_once('/').ok_or(OciRefError::Shape)?;
        check_registry(registry)?;
        if path.is_empty() {
            return Err(OciRefError::Shape);
        }
        // A `:` after the last `/` starts the tag.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].find(':') {
            Some(i) => {
                let (repo, tag) = path.split_at(last_slash + i);
                (repo, Some(&tag[1..]))
            }
            None => (path, None),
        };
        if !valid_repository(repository) {
            return Err(OciRefError::Repository(repository.to_string()));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(OciRefError::Tag(t.to_string()));
        }
        Ok(OciRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
        })
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}

/// `HOST[:PORT]` where HOST is a DNS name, an IPv4 address or a bracketed
/// IPv6 literal, and PORT is 1-65535.
fn check_registry(registry: &str) -> Result<(), OciRefError> {
    let bad = || OciRefError::Host(registry.to_string());
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let (ip, after) = inner.split_once(']').ok_or_else(bad)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => (None, None),
            p => (None, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(h) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if h.is_empty() || h.len() > 253 || !h.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(p) = port
        && !(p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0))
    {
        return Err(bad());
    }
    Ok(())
}

/// The distribution spec's `<name>`: path components
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255 bytes
/// in all (the limit registries enforce).
fn valid_repository(name: &str) -> bool {
    name.len() <= 255 && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Every run of separators between alphanumerics is `.`, `_`, `__` or
    // one or more `-`.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// The distribution spec's tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|&b| ok(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_repository_and_tag() {
        let r: OciRef = "oci://127.0.0.1:5000/team/app:v1.2".parse().unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "team/app", Some("v1.2"))
        );
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/team/app:v1.2");
        let r: OciRef = "oci://registry.example/a.b__c--d/e".parse().unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_default(), "latest");
        assert_eq!(r.host(), "registry.example");
        let r: OciRef = "oci://[::1]:5000/a".parse().unwrap();
        assert_eq!(r.host(), "[::1]");
        assert!(r.insecure());
        assert_eq!(r.base_url(), "http://[::1]:5000");
        let r: OciRef = "oci://localhost/a".parse().unwrap();
        assert!(r.insecure());
    }

    #[test]
    fn non_loopback_registries_use_https() {
        let r: OciRef = "oci://ghcr.io/o/a:1".parse().unwrap();
        assert_eq!(r.base_url(), "https://ghcr.io");
        let r: OciRef = "oci://10.0.0.1:5000/a".parse().unwrap();
        assert!(r.base_url().starts_with("https://"));
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for bad in [
            "oci://",
            "oci://host",
            "oci://host/",
            "oci:///repo",
            "oci://host/Repo",
            "oci://host/a..b",
            "oci://host/a___b",
            "oci://host/-a",
            "oci://host/a/",
            "oci://host//a",
            "oci://host/a:",
            "oci://host/a:-x",
            "oci://host/a:b:c",
            "oci://host/a@sha256:00",
            "oci://ho st/a",
            "oci://host:0/a",
            "oci://host:99999/a",
            "oci://host:x/a",
            "oci://[::1/a",
            "oci://[zz]/a",
            "http://host/a",
        ] {
            assert!(bad.parse::<OciRef>().is_err(), "accepted {bad:?}");
        }
        let long_tag = format!("oci://h/a:{}", "t".repeat(129));
        assert!(long_tag.parse::<OciRef>().is_err());
    }
}
