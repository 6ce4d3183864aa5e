//! Artifact refs: `<uri>#sha256=<64 lowercase hex>`, or `#sha384=` /
//! `#sha512=` with as many hex digits as those digests have (pip's fragment
//! names; docs/CONTRACT.md §4).
//!
//! Knows nothing of formats or transports: it only parses and prints.
//!
//! ```
//! use repropack::remote::refs::ArtifactRef;
//! let r: ArtifactRef = "s3://bucket/a.squashfs#sha256=\
//!     ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".parse().unwrap();
//! assert_eq!(r.uri(), "s3://bucket/a.squashfs");
//! assert_eq!(r.to_string().len(), "s3://bucket/a.squashfs#sha256=".len() + 64);
//! assert!(r.sha256().is_some());
//! let r: ArtifactRef = format!("https://h/a.tar#sha512={}", "0".repeat(128)).parse().unwrap();
//! assert_eq!(r.digest().algorithm().name(), "sha512");
//! assert!(r.sha256().is_none());
//! ```

use std::fmt;
use std::str::FromStr;

use super::uri::{self, Scheme, UriError};
use crate::digest::{ContentDigest, DigestAlgorithm, HexError, Sha256Digest};

/// The algorithms a ref's fragment may name: pip's strong hashes.
const REF_ALGORITHMS: [DigestAlgorithm; 3] = [
    DigestAlgorithm::Sha256,
    DigestAlgorithm::Sha384,
    DigestAlgorithm::Sha512,
];

/// A URI plus the digest its bytes must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    uri: String,
    digest: ContentDigest,
}

/// What is wrong with a ref string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// There is no `#`: the ref string (carried) names no digest.
    #[error("ref {0:?} has no `#sha256=` fragment")]
    NoFragment(String),
    /// The ref string (carried) has more than one `#`.
    #[error(
        "ref {0:?} has more than one `#`; exactly one `#sha256=` (or `#sha384=`, `#sha512=`) fragment is allowed"
    )]
    ManyFragments(String),
    /// The fragment does not start with `sha256=`, `sha384=` or `sha512=`.
    #[error(
        "ref {input:?}: fragment {fragment:?} is not `sha256=<64 lowercase hex>` (or `sha384=<96>`, `sha512=<128>`)"
    )]
    BadFragment {
        /// The ref string.
        input: String,
        /// The fragment, after `#`.
        fragment: String,
    },
    /// The digest after `ALG=` is not the algorithm's number of lowercase
    /// hex digits.
    #[error("ref {input:?}: bad {algorithm}: {source}")]
    BadHex {
        /// The ref string.
        input: String,
        /// The algorithm the fragment names.
        algorithm: &'static str,
        /// What is wrong with the hex.
        #[source]
        source: HexError,
    },
    /// Nothing comes before the `#`: the ref string (carried) has no URI.
    #[error("ref {0:?} has an empty URI")]
    EmptyUri(String),
    /// The URI's scheme is not a path, `file`, `http`, `https`, `s3` or `oci`.
    #[error(
        "ref {input:?}: unsupported scheme {scheme:?} (use a path, file://, http://, https://, s3:// or oci://)"
    )]
    Scheme {
        /// The ref string.
        input: String,
        /// The scheme found (or, for a malformed URI, what is wrong with it).
        scheme: String,
    },
    /// An `s3://` URI lacks a bucket or a key; carries the ref string.
    #[error("ref {0:?}: s3 URI must be s3://bucket/key")]
    S3Shape(String),
    /// An `oci://` URI that is not `oci://HOST[:PORT]/REPO[:TAG]`.
    #[error("ref {input:?}: {source}")]
    OciShape {
        /// The ref string.
        input: String,
        /// What is wrong with the OCI reference.
        #[source]
        source: super::oci::OciRefError,
    },
}

impl ArtifactRef {
    /// A ref from its parts, as is: the URI is not checked (parsing with
    /// [`str::parse`] is). `digest` is a [`Sha256Digest`] or any
    /// [`ContentDigest`].
    pub fn new(uri: impl Into<String>, digest: impl Into<ContentDigest>) -> ArtifactRef {
        ArtifactRef {
            uri: uri.into(),
            digest: digest.into(),
        }
    }
    /// The URI: everything before `#`.
    pub fn uri(&self) -> &str {
        &self.uri
    }
    /// The digest the bytes at the URI must have, of whichever algorithm
    /// the ref names.
    pub fn digest(&self) -> ContentDigest {
        self.digest
    }
    /// The sha256 the bytes at the URI must have; `None` for a `#sha384=`
    /// or `#sha512=` ref.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.digest.sha256()
    }
    /// The kind of location the URI names.
    pub fn scheme(&self) -> Scheme {
        uri::scheme(&self.uri).unwrap_or(Scheme::Path)
    }
}

impl ArtifactRef {
    /// Checks that `uri` can name an artifact in a ref: a URI the
    /// classifier accepts ([`uri::classify`]), without a `#` of its own,
    /// and of the shape a parsed ref needs. `Err` says what is wrong.
    ///
    /// ```
    /// use repropack::remote::ArtifactRef;
    /// assert!(ArtifactRef::check_uri("https://example.com/a.tar").is_ok());
    /// assert!(ArtifactRef::check_uri("ftp://example.com/a.tar").is_err());
    /// assert!(ArtifactRef::check_uri("https://example.com/a.tar#x").is_err());
    /// ```
    pub fn check_uri(uri: &str) -> Result<(), String> {
        if uri.contains('#') {
            return Err("a URI in a ref cannot contain `#`".to_string());
        }
        uri::classify(uri).map_err(|e| e.to_string())?;
        ArtifactRef::new(uri, Sha256Digest::of(b""))
            .to_string()
            .parse::<ArtifactRef>()
            .map(drop)
            .map_err(|e| match e {
                RefError::S3Shape(_) => "s3 URI must be s3://bucket/key".to_string(),
                other => other.to_string(),
            })
    }
}

impl FromStr for ArtifactRef {
    type Err = RefError;
    fn from_str(input: &str) -> Result<ArtifactRef, RefError> {
        let mut parts = input.split('#');
        let uri = parts.next().unwrap_or_default();
        let fragment = parts
            .next()
            .ok_or_else(|| RefError::NoFragment(input.to_string()))?;
        if parts.next().is_some() {
            return Err(RefError::ManyFragments(input.to_string()));
        }
        let (algorithm, hex) = REF_ALGORITHMS
            .into_iter()
            .find_map(|a| {
                let hex = fragment.strip_prefix(a.fragment())?.strip_prefix('=')?;
                Some((a, hex))
            })
            .ok_or_else(|| RefError::BadFragment {
                input: input.to_string(),
                fragment: fragment.to_string(),
            })?;
        let digest =
            ContentDigest::from_hex(algorithm, hex).map_err(|source| RefError::BadHex {
                input: input.to_string(),
                algorithm: algorithm.name(),
                source,
            })?;
        if uri.is_empty() {
            return Err(RefError::EmptyUri(input.to_string()));
        }
        let scheme = uri::scheme(uri).map_err(|e| RefError::Scheme {
            input: input.to_string(),
            scheme: match e {
                UriError::Scheme(s) => s,
                other => other.to_string(),
            },
        })?;
        if scheme == Scheme::S3 {
            let rest = &uri["s3://".len()..];
            match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {}
                _ => return Err(RefError::S3Shape(input.to_string())),
            }
        }
        if scheme == Scheme::Oci {
            uri.parse::<super::oci::OciRef>()
                .map_err(|source| RefError::OciShape {
                    input: input.to_string(),
                    source,
                })?;
        }
        Ok(ArtifactRef {
            uri: uri.to_string(),
            digest,
        })
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{}={}",
            self.uri,
            self.digest.algorithm().fragment(),
            self.digest.to_hex()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_and_prints_round_trip() {
        for uri in [
            "/tmp/a.tar",
            "file:///tmp/a.tar",
            "https://h/a",
            "s3://b/k/a.sqfs",
            "oci://127.0.0.1:5000/team/app:v1",
            "oci://registry.example/app",
        ] {
            let s = format!("{uri}#sha256={HEX}");
            let r: ArtifactRef = s.parse().unwrap();
            assert_eq!(r.uri(), uri);
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn sha384_and_sha512_refs_parse_and_print_round_trip() {
        for (name, len) in [("sha384", 96), ("sha512", 128)] {
            let hex: String = "0123456789abcdef".chars().cycle().take(len).collect();
            let s = format!("https://h/a.tar#{name}={hex}");
            let r: ArtifactRef = s.parse().unwrap();
            assert_eq!(r.digest().algorithm().name(), name);
            assert_eq!(r.digest().to_hex(), hex);
            assert_eq!(r.sha256(), None);
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed_refs() {
        let bad = [
            "/tmp/a.tar".to_string(),
            format!("/a#sha256={HEX}#sha256={HEX}"),
            format!("/a#sha512={HEX}"),
            format!("/a#sha384={HEX}"),
            format!("/a#sha384={}", "a".repeat(128)),
            format!("/a#sha512={}", "A".repeat(128)),
            format!("/a#sha3_256={HEX}"),
            format!("/a#sha512={}#sha256={HEX}", "a".repeat(128)),
            format!("/a#SHA256={HEX}"),
            format!("/a#sha256={}", &HEX[..63]),
            format!("/a#sha256={HEX}0"),
            format!("/a#sha256={}", HEX.to_uppercase()),
            format!("#sha256={HEX}"),
            format!("ftp://h/a#sha256={HEX}"),
            format!("s3://bucket#sha256={HEX}"),
            format!("oci://host#sha256={HEX}"),
            format!("oci://host/Upper:v1#sha256={HEX}"),
            format!("/a#sha256={}g", &HEX[..63]),
        ];
        for b in bad {
            assert!(b.parse::<ArtifactRef>().is_err(), "accepted {b}");
        }
    }
}
