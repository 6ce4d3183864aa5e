//! The one URI classifier: which kind of location a ref, a fetch source or a
//! push destination names. Refs, [`fetch`](mod@super::fetch) and
//! [`push`](mod@super::push) all go through it, so they agree on what a path, a
//! `file://`, an `http(s)://`, an `s3://` and an `oci://` URI are.

use std::path::PathBuf;

/// Which kind of location a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// A plain local path (no `://`).
    Path,
    /// `file:///absolute/path`.
    File,
    /// `http://`.
    Http,
    /// `https://`.
    Https,
    /// `s3://bucket/key`.
    S3,
    /// `oci://HOST[:PORT]/REPO[:TAG]`: an OCI distribution registry.
    Oci,
}

/// A classified URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A plain path or a `file://` URI, as a local path.
    Local {
        /// The path.
        path: PathBuf,
        /// True when it was given as a `file://` URI.
        file_uri: bool,
    },
    /// `http://` or `https://` (checked to be a valid URL).
    Http,
    /// `s3://bucket[/key]`; `key` is empty when the URI has none.
    S3 {
        /// The bucket name (never empty).
        bucket: String,
        /// Everything after `bucket/`.
        key: String,
    },
    /// `oci://HOST[:PORT]/REPO[:TAG]`, checked against the distribution
    /// spec's grammar.
    Oci(super::oci::OciRef),
}

/// Why a URI names no location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// An empty string.
    #[error("empty path")]
    Empty,
    /// A scheme other than `file`, `http`, `https`, `s3` or `oci`.
    #[error("unsupported scheme {0:?}")]
    Scheme(String),
    /// A `file://` URI that is not `file:///absolute/path`.
    #[error("file URI must be file:///absolute/path")]
    FileUri,
    /// An `http(s)://` URI that does not parse.
    #[error("bad URL: {0}")]
    Url(String),
    /// `s3://` without a bucket.
    #[error("s3 URI must be s3://bucket/key")]
    S3Bucket,
    /// An `oci://` URI that is not `oci://HOST[:PORT]/REPO[:TAG]`.
    #[error(transparent)]
    Oci(#[from] super::oci::OciRefError),
}

/// The scheme of `uri`, or the unknown scheme's name.
pub fn scheme(uri: &str) -> Result<Scheme, UriError> {
    let Some((scheme, _)) = uri.split_once("://") else {
        return Ok(Scheme::Path);
    };
    match scheme {
        "file" => Ok(Scheme::File),
        "http" => Ok(Scheme::Http),
        "https" => Ok(Scheme::Https),
        "s3" => Ok(Scheme::S3),
        "oci" => Ok(Scheme::Oci),
        other => Err(UriError::Scheme(other.to_string())),
    }
}

/// Classifies `uri` and checks its shape.
pub fn classify(uri: &str) -> Result<Location, UriError> {
    match scheme(uri)? {
        Scheme::Path if uri.is_empty() => Err(UriError::Empty),
        Scheme::Path => Ok(Location::Local {
            path: PathBuf::from(uri),
            file_uri: false,
        }),
        Scheme::File => {
            let url = url::Url::parse(uri).map_err(|_| UriError::FileUri)?;
            let path = url.to_file_path().map_err(|()| UriError::FileUri)?;
            Ok(Location::Local {
                path,
                file_uri: true,
            })
        }
        Scheme::Http | Scheme::Https => {
            url::Url::parse(uri).map_err(|e| UriError::Url(e.to_string()))?;
            Ok(Location::Http)
        }
        Scheme::S3 => {
            let rest = &uri["s3://".len()..];
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(UriError::S3Bucket);
            }
            Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })
        }
        Scheme::Oci => Ok(Location::Oci(uri.parse()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind() {
        assert_eq!(
            classify("a/b.tar").unwrap(),
            Location::Local {
                path: "a/b.tar".into(),
                file_uri: false
            }
        );
        assert_eq!(
            classify("file:///x/y").unwrap(),
            Location::Local {
                path: "/x/y".into(),
                file_uri: true
            }
        );
        assert_eq!(classify("https://h/x").unwrap(), Location::Http);
        assert_eq!(
            classify("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                key: String::new()
            }
        );
        assert!(matches!(
            classify("oci://127.0.0.1:5000/a/b:v1").unwrap(),
            Location::Oci(_)
        ));
        assert!(classify("oci://h").is_err());
        assert_eq!(classify(""), Err(UriError::Empty));
        assert_eq!(classify("ftp://h/x"), Err(UriError::Scheme("ftp".into())));
        assert_eq!(classify("s3:///k"), Err(UriError::S3Bucket));
        assert_eq!(classify("file://relative"), Err(UriError::FileUri));
    }
}
