//! The OCI image manifest of a repropack artifact, written and read here
//! only (OCI image spec v1.1, “Image Manifest” and “Guidelines for
//! artifact usage”, the form ORAS 1.x pushes for one file):
//!
//! ```json
//! {"schemaVersion":2,
//!  "mediaType":"application/vnd.oci.image.manifest.v1+json",
//!  "artifactType":"application/vnd.repropack.squashfs.v1",
//!  "config":{"mediaType":"application/vnd.oci.empty.v1+json",
//!            "digest":"sha256:44136f…","size":2,"data":"e30="},
//!  "layers":[{"mediaType":"application/vnd.repropack.squashfs.v1",
//!             "digest":"sha256:HEX","size":N,
//!             "annotations":{"org.opencontainers.image.title":"app.squashfs"}}]}
//! ```
//!
//! No creation time is written, so the same file pushed twice gives the
//! same manifest bytes (and digest).
//!
//! Also the OCI image index, in the one use repropack makes of it: the
//! referrers tag schema of the distribution spec v1.1 (“Referrers Tag
//! Schema”), the index tagged `sha256-HEX` that lists the referrers of the
//! manifest `sha256:HEX` on registries without the referrers API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;

/// The media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of the empty config blob `{}`.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config blob.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The annotation holding the file name, which ORAS restores on pull.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The artifact type (and layer media type) of a minisign signature
/// pushed as a referrer of an artifact's manifest.
pub const MINISIG_MEDIA_TYPE: &str = "application/vnd.repropack.minisig.v1";
/// Most bytes read of a manifest (the distribution spec lets registries
/// refuse larger ones; 4 MiB is what the CNCF registry accepts).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The media type of the artifact file `name`, by its name (as `pack`
/// names its outputs: `.squashfs`/`.sqfs`/`.sfs`, `.tar`, `.tar.gz`/`.tgz`);
/// any other file is `application/octet-stream`.
pub fn media_type(name: &str) -> &'static str {
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        "application/vnd.repropack.tar.v1+gzip"
    } else if name.ends_with(".tar") {
        "application/vnd.repropack.tar.v1"
    } else if name.ends_with(".squashfs") || name.ends_with(".sqfs") || name.ends_with(".sfs") {
        "application/vnd.repropack.squashfs.v1"
    } else {
        "application/octet-stream"
    }
}

/// The artifact type of the artifact file `name`: its [`media_type`], or
/// `application/vnd.repropack.artifact.v1` for a file of no known format.
pub fn artifact_type(name: &str) -> &'static str {
    match media_type(name) {
        "application/octet-stream" => "application/vnd.repropack.artifact.v1",
        t => t,
    }
}

/// A content descriptor (OCI image spec “Descriptors”).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content.
    pub media_type: String,
    /// `sha256:HEX` (other algorithms are kept as read and never matched).
    pub digest: String,
    /// The content's size in bytes.
    pub size: u64,
    /// Embedded content, base64 (used for the empty config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The artifact type (`artifactType`), in a referrers list; omitted
    /// when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor of `size` bytes with sha256 `sha256`.
    pub fn new(media_type: &str, sha256: Sha256Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: format!("sha256:{sha256}"),
            size,
            data: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The sha256 named by `digest`, if it is `sha256:<64 lowercase hex>`.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        let hex = self.digest.strip_prefix("sha256:")?;
        Sha256Digest::from_hex(hex).ok()
    }

    /// The OCI empty descriptor: the config of an artifact manifest.
    pub fn empty_config() -> Descriptor {
        Descriptor {
            data: Some("e30=".to_string()),
            ..Descriptor::new(
                EMPTY_MEDIA_TYPE,
                Sha256Digest::of(EMPTY_CONFIG),
                EMPTY_CONFIG.len() as u64,
            )
        }
    }
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_MEDIA_TYPE`] (optional when read: older writers omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What kind of artifact this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers; an artifact manifest of repropack has exactly one.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (a signature's artifact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Why a manifest from a registry is not one we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciManifestError {
    /// More than [`MAX_MANIFEST_BYTES`].
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    /// Not JSON of the image manifest's shape.
    #[error("manifest is not an OCI image manifest: {0}")]
    Json(String),
    /// `schemaVersion` is not 2, or `mediaType` names another kind
    /// (an index, a docker manifest list).
    #[error(
        "manifest has media type {media_type:?} and schema version {schema_version}; expected an OCI image manifest"
    )]
    Kind {
        /// The media type found.
        media_type: String,
        /// The schema version found.
        schema_version: u32,
    },
    /// Not exactly one layer: not a single-file artifact.
    #[error("manifest has {0} layers; a repropack artifact has exactly one")]
    Layers(usize),
    /// The layer's digest is not `sha256:<64 lowercase hex>`.
    #[error("layer digest {0:?} is not sha256:<64 lowercase hex>")]
    Digest(String),
    /// Not JSON of the image index's shape.
    #[error("manifest is not an OCI image index: {0}")]
    IndexJson(String),
    /// An index was expected: `schemaVersion` is not 2, or `mediaType`
    /// names another kind (an image manifest).
    #[error(
        "manifest has media type {media_type:?} and schema version {schema_version}; expected an OCI image index"
    )]
    NotIndex {
        /// The media type found.
        media_type: String,
        /// The schema version found.
        schema_version: u32,
    },
}

impl ImageManifest {
    /// The manifest of a one-file artifact: the empty config and `layer`.
    pub fn artifact(artifact_type: &str, layer: Descriptor) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            artifact_type: Some(artifact_type.to_string()),
            config: Descriptor::empty_config(),
            layers: vec![layer],
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The canonical bytes pushed (compact JSON, fields in struct order,
    /// annotations sorted by key).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses manifest bytes read from a registry (bounded by the caller's
    /// read limit and checked again here).
    pub fn parse(bytes: &[u8]) -> Result<ImageManifest, OciManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(OciManifestError::TooLarge);
        }
        let m: ImageManifest =
            serde_json::from_slice(bytes).map_err(|e| OciManifestError::Json(e.to_string()))?;
        let media_type = m.media_type.as_deref().unwrap_or(MANIFEST_MEDIA_TYPE);
        if m.schema_version != 2 || media_type != MANIFEST_MEDIA_TYPE {
            return Err(OciManifestError::Kind {
                media_type: media_type.to_string(),
                schema_version: m.schema_version,
            });
        }
        Ok(m)
    }

    /// The one layer of a repropack artifact and its sha256.
    pub fn artifact_layer(&self) -> Result<(&Descriptor, Sha256Digest), OciManifestError> {
        let [layer] = self.layers.as_slice() else {
            return Err(OciManifestError::Layers(self.layers.len()));
        };
        let sha256 = layer
            .sha256()
            .ok_or_else(|| OciManifestError::Digest(layer.digest.clone()))?;
        Ok((layer, sha256))
    }
}

/// An OCI image index (image spec v1.1 “Image Index”), as the referrers
/// tag schema uses it: `schemaVersion` 2, `mediaType`
/// [`INDEX_MEDIA_TYPE`] and the referrers' descriptors in `manifests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// [`INDEX_MEDIA_TYPE`] (optional when read, as in the image spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests listed; required, so an image manifest is not read
    /// as an empty index.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An index listing `manifests`.
    pub fn new(manifests: Vec<Descriptor>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_string()),
            manifests,
            annotations: BTreeMap::new(),
        }
    }

    /// Adds `descriptor` unless a manifest of the same digest is listed;
    /// returns whether it was added.
    pub fn add(&mut self, descriptor: Descriptor) -> bool {
        if self.manifests.iter().any(|d| d.digest == descriptor.digest) {
            return false;
        }
        self.manifests.push(descriptor);
        true
    }

    /// The canonical bytes pushed: compact JSON, fields in struct order,
    /// `mediaType` always written, the manifests sorted by digest (then
    /// media type and artifact type), so the same set of referrers gives
    /// the same bytes whatever order they were pushed in.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut canonical = self.clone();
        canonical.schema_version = 2;
        canonical.media_type = Some(INDEX_MEDIA_TYPE.to_string());
        canonical.manifests.sort_by(|a, b| {
            (&a.digest, &a.media_type, &a.artifact_type).cmp(&(
                &b.digest,
                &b.media_type,
                &b.artifact_type,
            ))
        });
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    /// Parses index bytes read from a registry (bounded by the caller's
    /// read limit and checked again here).
    pub fn parse(bytes: &[u8]) -> Result<ImageIndex, OciManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(OciManifestError::TooLarge);
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Kind {
            schema_version: u32,
            media_type: Option<String>,
        }
        let kind: Kind = serde_json::from_slice(bytes)
            .map_err(|e| OciManifestError::IndexJson(e.to_string()))?;
        let media_type = kind.media_type.as_deref().unwrap_or(INDEX_MEDIA_TYPE);
        if kind.schema_version != 2 || media_type != INDEX_MEDIA_TYPE {
            return Err(OciManifestError::NotIndex {
                media_type: media_type.to_string(),
                schema_version: kind.schema_version,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| OciManifestError::IndexJson(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_oci_empty_descriptor() {
        let d = Descriptor::empty_config();
        assert_eq!(
            d.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.size, 2);
    }

    #[test]
    fn artifact_manifest_round_trips_and_names_its_layer() {
        let sha = Sha256Digest::of(b"x");
        assert_eq!(media_type("x.tgz"), "application/vnd.repropack.tar.v1+gzip");
        assert_eq!(
            artifact_type("x.bin"),
            "application/vnd.repropack.artifact.v1"
        );
        let mut layer = Descriptor::new(media_type("a.squashfs"), sha, 1);
        layer
            .annotations
            .insert(TITLE_ANNOTATION.into(), "a.squashfs".into());
        let m = ImageManifest::artifact(artifact_type("a.squashfs"), layer);
        let bytes = m.to_bytes();
        let back = ImageManifest::parse(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.artifact_layer().unwrap().1, sha);
    }

    #[test]
    fn refuses_indexes_and_many_layers() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{"mediaType":"x","digest":"d","size":1},"manifests":[]}"#;
        assert!(matches!(
            ImageManifest::parse(index),
            Err(OciManifestError::Kind { .. })
        ));
        let two = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"d","size":1},"layers":[{"mediaType":"x","digest":"d","size":1},{"mediaType":"x","digest":"d","size":1}]}"#;
        let m = ImageManifest::parse(two).unwrap();
        assert!(matches!(
            m.artifact_layer(),
            Err(OciManifestError::Layers(2))
        ));
        assert!(ImageManifest::parse(b"{").is_err());
    }

    #[test]
    fn index_is_canonical_and_adds_each_digest_once() {
        let referrer = |seed: &[u8]| Descriptor {
            artifact_type: Some(MINISIG_MEDIA_TYPE.to_string()),
            ..Descriptor::new(MANIFEST_MEDIA_TYPE, Sha256Digest::of(seed), 9)
        };
        let (a, b) = (referrer(b"a"), referrer(b"b"));
        let mut one = ImageIndex::new(vec![a.clone()]);
        assert!(one.add(b.clone()));
        assert!(!one.add(a.clone()));
        let two = ImageIndex::new(vec![b, a]);
        assert_eq!(one.to_bytes(), two.to_bytes());
        let text = String::from_utf8(one.to_bytes()).unwrap();
        assert!(
            text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"#),
            "{text}"
        );
        assert!(text.contains(r#""artifactType":"application/vnd.repropack.minisig.v1""#));
        assert!(
            !text.contains("annotations") && !text.contains("data"),
            "{text}"
        );
        let back = ImageIndex::parse(&one.to_bytes()).unwrap();
        assert_eq!(back.to_bytes(), one.to_bytes());
    }

    #[test]
    fn index_parse_refuses_image_manifests() {
        let m = ImageManifest::artifact(MINISIG_MEDIA_TYPE, Descriptor::empty_config());
        assert!(matches!(
            ImageIndex::parse(&m.to_bytes()),
            Err(OciManifestError::NotIndex { .. })
        ));
        // No mediaType and no manifests: not an index either.
        assert!(matches!(
            ImageIndex::parse(br#"{"schemaVersion":2,"config":{}}"#),
            Err(OciManifestError::IndexJson(_))
        ));
        assert!(ImageIndex::parse(br#"{"schemaVersion":2,"manifests":[]}"#).is_ok());
    }
}
