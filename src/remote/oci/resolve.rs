//! `resolve`: the tag's manifest (distribution spec “Pulling manifests”)
//! → the pinned ref of its one layer.

use super::OciRef;
use super::client::{Access, OciError, Registry};
use super::manifest::{ImageManifest, MANIFEST_MEDIA_TYPE, OciManifestError};
use crate::remote::net::NetOptions;
use crate::remote::refs::ArtifactRef;

/// Why [`resolve`] produced no ref.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The registry could not be reached or refused the request (after
    /// retries, for transient failures).
    #[error("{0}")]
    Registry(String),
    /// The tag does not exist in the repository.
    #[error("{uri}: not found: {message}")]
    NotFound {
        /// The reference asked for.
        uri: String,
        /// The registry's answer.
        message: String,
    },
    /// The manifest the tag names is not a one-file artifact.
    #[error("{uri}: {source}")]
    Manifest {
        /// The reference asked for.
        uri: String,
        /// What is wrong with the manifest.
        #[source]
        source: OciManifestError,
    },
}

/// The pinned ref of the artifact that `oci`'s tag (or the default tag)
/// names now: `oci://HOST/REPO:TAG#sha256=HEX`, HEX being the one layer of
/// its manifest. Transient failures are retried as fetches retry them.
pub fn resolve(oci: &OciRef, net: &NetOptions) -> Result<ArtifactRef, ResolveError> {
    let tagged = oci.with_tag(oci.tag_or_default());
    let failed = |e: OciError| match e {
        OciError::NotFound(message) => ResolveError::NotFound {
            uri: tagged.to_string(),
            message,
        },
        other => ResolveError::Registry(other.message().to_string()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ResolveError::Registry(format!("cannot start tokio: {e}")))?;
    let client = crate::remote::net::http_client(net).map_err(ResolveError::Registry)?;
    let mut reg = Registry::new(client, &tagged, Access::Pull, net.timeout).map_err(failed)?;
    let mut attempt = 0u32;
    let bytes = loop {
        attempt += 1;
        match rt.block_on(reg.manifest(tagged.tag_or_default(), MANIFEST_MEDIA_TYPE)) {
            Ok(b) => break b,
            Err(e) if e.is_transient() && attempt <= net.retries => {
                std::thread::sleep(net.delay(attempt));
            }
            Err(e) => return Err(failed(e)),
        }
    };
    let m = ImageManifest::parse(&bytes).map_err(|source| ResolveError::Manifest {
        uri: tagged.to_string(),
        source,
    })?;
    let (_, sha256) = m
        .artifact_layer()
        .map_err(|source| ResolveError::Manifest {
            uri: tagged.to_string(),
            source,
        })?;
    Ok(ArtifactRef::new(tagged.to_string(), sha256))
}
