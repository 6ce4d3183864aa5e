//! Manifests: a JSON record of what an artifact is and holds
//! (`"schema": "repropack.manifest/1"`).
//!
//! A manifest names the artifact (ref, sha256, size, format, compression,
//! level, block size), the options that shaped it (epoch, owner and mode
//! policy, excludes), the tool (name, version, [`FORMAT_VERSION`]), the source
//! revision when known, the tree digest ([`Tree::digest`]) and every entry in
//! container order. It is a pure function of those inputs: keys are written in
//! a fixed order (struct field order), no wall-clock time is recorded, and the
//! file is written through [`AtomicFile`].
//!
//! Paths and link targets are raw bytes in the archive. In JSON such a value
//! is a plain string when the bytes are valid UTF-8, and an object
//! `{"hex": "<lowercase hex of the bytes>"}` otherwise ([`Bytes`]).
//!
//! ```
//! use repropack::verify::manifest::Bytes;
//! assert_eq!(serde_json::to_string(&Bytes(b"a/b".to_vec())).unwrap(), r#""a/b""#);
//! assert_eq!(serde_json::to_string(&Bytes(b"a\xff".to_vec())).unwrap(), r#"{"hex":"61ff"}"#);
//! ```

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::FORMAT_VERSION;
use crate::digest::Sha256Digest;
use crate::output::{AtomicFile, OutputError};
use crate::plan::XattrSet;
use crate::plan::{EntryKind, InputFiles};
use crate::stage::{StageOptions, XattrPolicy};
use crate::verify::revision::SourceRevision;
use crate::verify::tree_digest::{Kept, Tree, TreeEntry};

/// Value of the `schema` key.
pub const SCHEMA: &str = "repropack.manifest/1";

/// Largest manifest file read, in bytes: far above what millions of
/// entries take, and a bound on what an untrusted file can make us hold.
pub const MAX_MANIFEST_BYTES: u64 = 512 * 1024 * 1024;

/// Most `manifest_*.json` files [`find_in_dir`] looks at in one directory.
pub const MAX_DIR_MANIFESTS: usize = 4096;

/// Prefix and suffix of the names [`random_name`] makes.
const NAME_PREFIX: &str = "manifest_";
const NAME_SUFFIX: &str = ".json";
/// Random bytes in such a name (hex-encoded: twice as many digits).
const NAME_RANDOM_BYTES: usize = 16;

/// Raw bytes, serialized as a string when UTF-8 and as `{"hex": …}` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BytesRepr {
    Text(String),
    Hex { hex: String },
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(t) => BytesRepr::Text(t.to_string()).serialize(s),
            Err(_) => BytesRepr::Hex {
                hex: self.0.iter().map(|b| format!("{b:02x}")).collect(),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        match BytesRepr::deserialize(d)? {
            BytesRepr::Text(t) => Ok(Bytes(t.into_bytes())),
            BytesRepr::Hex { hex } => {
                if hex.len() % 2 != 0 {
                    return Err(serde::de::Error::custom("odd number of hex digits"));
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| serde::de::Error::custom(format!("bad hex {hex:?}")))
                    })
                    .collect::<Result<Vec<u8>, _>>()
                    .map(Bytes)
            }
        }
    }
}

impl Bytes {
    /// Text for messages (lossy for non-UTF-8).
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// The whole manifest. Field order here is the key order in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The program that wrote the artifact.
    pub tool: Tool,
    /// The artifact file.
    pub artifact: ArtifactInfo,
    /// The tree digest ([`Tree::digest`]) of the entries.
    pub tree_digest: String,
    /// What the tree digest covers beyond the logical tree (`owners`,
    /// `xattrs`); absent when nothing, as in every manifest before.
    #[serde(default, skip_serializing_if = "Kept::none_ref")]
    pub tree_digest_keeps: Kept,
    /// The staging options that shaped the tree.
    pub options: ManifestOptions,
    /// Source revision: `--source-revision`, else the git commit of the
    /// first source inside a git worktree; absent when neither is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRevision>,
    /// Every entry in container order (the root directory is not one).
    pub entries: Vec<ManifestEntry>,
}

/// The program that wrote the artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// `repropack`.
    pub name: String,
    /// The crate version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// [`FORMAT_VERSION`] of the build that wrote the artifact.
    pub format_version: u32,
}

impl Tool {
    /// This build of repropack.
    pub fn current() -> Tool {
        Tool {
            name: "repropack".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            format_version: FORMAT_VERSION,
        }
    }
}

/// The artifact file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// `URI#sha256=HEX` as printed by `pack`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// sha256 of the artifact file (64 lowercase hex).
    pub sha256: String,
    /// Size of the artifact file in bytes.
    pub size: u64,
    /// `tar`, `tar.gz`, `squashfs`.
    pub format: String,
    /// Compressor name (`gzip`, …); absent for plain tar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Compression level used; absent when the format or compressor has
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// SquashFS data block size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Where the artifact is published (`pack --url`), in the order a
    /// fetch tries them; absent when none, as in every manifest before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// The staging options that shaped the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOptions {
    /// [`StageOptions::epoch`]: seconds since 1970.
    pub epoch: u64,
    /// [`StageOptions::clamp_mtime`].
    pub clamp_mtime: bool,
    /// The uid and gid every entry got.
    pub owner: OwnerPolicy,
    /// How permission bits were set.
    pub mode_policy: ModePolicy,
    /// [`StageOptions::follow_symlinks`].
    pub follow_symlinks: bool,
    /// [`StageOptions::specials`].
    pub specials: bool,
    /// [`StageOptions::excludes`], as given.
    pub excludes: Vec<String>,
    /// [`StageOptions::keep_owners`]; absent when off, as in every
    /// manifest before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_owners: bool,
    /// [`StageOptions::xattrs`]: the patterns when attributes were kept;
    /// absent when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattrs: Option<XattrPatterns>,
    /// [`StageOptions::no_hardlinks`]; absent when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_hardlinks: bool,
    /// The `--pack-file` the tree was staged with; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_file: Option<InputFile>,
    /// The `--xattr-file` the tree was staged with; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattr_file: Option<InputFile>,
}

/// Which extended attribute names were kept ([`XattrPolicy::Keep`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XattrPatterns {
    /// Names kept (empty: all).
    pub include: Vec<String>,
    /// Names dropped even when included.
    pub exclude: Vec<String>,
}

/// A file that shaped the tree (a pack file, an xattr file): its name
/// without directories (so the record does not depend on where it lay)
/// and the sha256 of the bytes staging read from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The file's name, its last path component.
    pub name: Bytes,
    /// Lowercase hex sha256 of its bytes.
    pub sha256: String,
}

impl InputFile {
    fn new(path: &Path, digest: Option<Sha256Digest>) -> Option<InputFile> {
        Some(InputFile {
            name: Bytes(
                path.file_name()
                    .unwrap_or(path.as_os_str())
                    .as_bytes()
                    .to_vec(),
            ),
            sha256: digest?.to_hex(),
        })
    }
}

/// The owner every entry got ([`StageOptions::owner`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerPolicy {
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
}

/// How permission bits were set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModePolicy {
    /// `normalized` (0755/0644 by execute bit) or `keep` (`--keep-modes`).
    pub permissions: String,
    /// [`StageOptions::keep_special_bits`].
    pub keep_special_bits: bool,
}

impl ManifestOptions {
    /// The manifest's record of `opts` (`jobs` is left out: it never
    /// changes the tree) and of the pack and xattr files the plan was
    /// staged from ([`Plan::input_files`](crate::plan::Plan::input_files)).
    pub fn from_stage(opts: &StageOptions, files: InputFiles) -> ManifestOptions {
        ManifestOptions {
            epoch: opts.epoch,
            clamp_mtime: opts.clamp_mtime,
            owner: OwnerPolicy {
                uid: opts.owner.uid,
                gid: opts.owner.gid,
            },
            mode_policy: ModePolicy {
                permissions: if opts.keep_modes {
                    "keep"
                } else {
                    "normalized"
                }
                .to_string(),
                keep_special_bits: opts.keep_special_bits,
            },
            follow_symlinks: opts.follow_symlinks,
            specials: opts.specials,
            excludes: opts.excludes.clone(),
            keep_owners: opts.keep_owners,
            xattrs: match &opts.xattrs {
                XattrPolicy::Off => None,
                XattrPolicy::Keep { include, exclude } => Some(XattrPatterns {
                    include: include.clone(),
                    exclude: exclude.clone(),
                }),
            },
            no_hardlinks: opts.no_hardlinks,
            pack_file: opts
                .pack_file
                .as_ref()
                .and_then(|p| InputFile::new(&p.file, files.pack_file)),
            xattr_file: opts
                .xattr_file
                .as_deref()
                .and_then(|p| InputFile::new(p, files.xattr_file)),
        }
    }
}

/// One entry. `mode` is 4 octal digits; `sha256`/`size` are set for regular
/// files (hard-link members too), `symlink` for symlinks, `hardlink` for a
/// hard-link member other than its group's first, `rdev` for devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path inside the archive, normalized (no leading `./` or `/`).
    pub path: Bytes,
    /// [`EntryKind::name`]: `dir`, `file`, `symlink`, `fifo`, `char` or
    /// `block` (hard-link members are `file`).
    pub kind: String,
    /// Permission bits as 4 octal digits (`0644`).
    pub mode: String,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time in seconds since 1970, negative before 1970.
    pub mtime: i64,
    /// Content size in bytes of a regular file; 0 otherwise.
    pub size: u64,
    /// sha256 of a regular file's content (64 lowercase hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Target of a symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<Bytes>,
    /// For a hard-link member other than its group's first (in canonical
    /// order): the first member's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink: Option<Bytes>,
    /// `[major, minor]` of a character or block device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<[u32; 2]>,
    /// Extended attributes in name order; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<ManifestXattr>,
}

/// One extended attribute of a [`ManifestEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestXattr {
    /// The attribute name (`user.mime_type`, `security.capability`, ...).
    pub name: Bytes,
    /// Its value: a string when UTF-8, else `{"hex": ...}`.
    pub value: Bytes,
}

/// A manifest that could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("manifest {path}: {source}")]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not JSON of the manifest's shape.
    #[error("manifest {path}: not a repropack manifest: {message}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// The JSON parser's message.
        message: String,
    },
    /// The `schema` key is not [`SCHEMA`].
    #[error("manifest {path}: schema {found:?} is not {SCHEMA:?}")]
    Schema {
        /// The manifest file.
        path: PathBuf,
        /// The schema found.
        found: String,
    },
    /// An entry has a bad field, or the entries do not form a tree.
    #[error("manifest {path}: entry {index}: {message}")]
    Entry {
        /// The manifest file.
        path: PathBuf,
        /// Index of the entry in `entries`, from 0 (0 also when the entries
        /// as a whole do not form a tree).
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The manifest file is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest {path}: larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge {
        /// The manifest file.
        path: PathBuf,
    },
    /// The OS random number generator failed while naming a manifest.
    #[error("{dir}: cannot name a manifest: the OS random number generator failed: {reason}")]
    Random {
        /// The manifest directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A manifest directory could not be listed.
    #[error("manifest directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A manifest directory holds more manifests than are read.
    #[error("manifest directory {dir}: more than {MAX_DIR_MANIFESTS} manifest_*.json files")]
    TooMany {
        /// The directory.
        dir: PathBuf,
    },
    /// No manifest in the directory describes the artifact.
    #[error("manifest directory {dir}: no manifest describes an artifact with sha256 {sha256}{}", skipped_note(.skipped))]
    NotInDir {
        /// The directory.
        dir: PathBuf,
        /// The artifact's sha256.
        sha256: Sha256Digest,
        /// Manifests that could not be read, each with the reason.
        skipped: Vec<String>,
    },
    /// Several different manifests describe the artifact.
    #[error("manifest directory {dir}: {} different manifests describe sha256 {sha256}: {}; pass --manifest", paths.len(), paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// The directory.
        dir: PathBuf,
        /// The artifact's sha256.
        sha256: Sha256Digest,
        /// The manifests that describe it.
        paths: Vec<PathBuf>,
    },
    /// Writing the manifest failed.
    #[error(transparent)]
    Output(#[from] OutputError),
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (unreadable: {})", skipped.join("; "))
    }
}

/// A fresh manifest file name `manifest_<32 lowercase hex>.json`, the hex
/// being 16 bytes from the OS CSPRNG: a name nobody can guess before it is
/// published, so a manifest directory served over HTTP cannot be listed by
/// guessing.
///
/// ```
/// use repropack::verify::manifest::{is_manifest_name, random_name};
/// let dir = std::path::Path::new("manifests");
/// let name = random_name(dir)?;
/// assert!(is_manifest_name(&name) && name.len() == "manifest_.json".len() + 32);
/// assert_ne!(name, random_name(dir)?);
/// assert!(!is_manifest_name("manifest_0123.json"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn random_name(dir: &Path) -> Result<String, ManifestError> {
    let mut bytes = [0u8; NAME_RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| ManifestError::Random {
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{NAME_PREFIX}{hex}{NAME_SUFFIX}"))
}

/// Whether `name` has the shape [`random_name`] makes.
pub fn is_manifest_name(name: &str) -> bool {
    name.strip_prefix(NAME_PREFIX)
        .and_then(|rest| rest.strip_suffix(NAME_SUFFIX))
        .is_some_and(|hex| {
            hex.len() == 2 * NAME_RANDOM_BYTES
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// The manifest [`find_in_dir`] picked.
#[derive(Debug)]
pub struct Found {
    /// Its path.
    pub path: PathBuf,
    /// Its exact bytes (what a signature must cover).
    pub bytes: Vec<u8>,
    /// Other `manifest_*.json` files that could not be read, each with the
    /// reason: warnings, since the artifact's manifest was found anyway.
    pub skipped: Vec<String>,
}

/// Picks the manifest in `dir` whose `artifact.sha256` is `sha256`, among
/// at most [`MAX_DIR_MANIFESTS`] files named like [`random_name`]'s, each
/// read up to [`MAX_MANIFEST_BYTES`]. Several manifests with different
/// bytes for one artifact are refused rather than guessed between.
pub fn find_in_dir(dir: &Path, sha256: &Sha256Digest) -> Result<Found, ManifestError> {
    let dir_err = |source| ManifestError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_manifest_name) {
            if names.len() == MAX_DIR_MANIFESTS {
                return Err(ManifestError::TooMany {
                    dir: dir.to_path_buf(),
                });
            }
            names.push(name);
        }
    }
    // Directory order must not decide which warning comes first.
    names.sort();
    let want = sha256.to_hex();
    let mut skipped = Vec::new();
    let mut matches: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for name in names {
        let path = dir.join(name);
        // A fifo or device under a manifest's name would block or never end.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            skipped.push(format!("{}: not a regular file", path.display()));
            continue;
        }
        let parsed = read_bytes(&path).and_then(|b| Manifest::parse(&path, &b).map(|m| (m, b)));
        match parsed {
            Ok((m, bytes)) if m.artifact.sha256 == want => {
                if !matches.iter().any(|(_, b)| *b == bytes) {
                    matches.push((path, bytes));
                }
            }
            Ok(_) => {}
            Err(e) => skipped.push(e.to_string()),
        }
    }
    match matches.len() {
        0 => Err(ManifestError::NotInDir {
            dir: dir.to_path_buf(),
            sha256: *sha256,
            skipped,
        }),
        1 => {
            let (path, bytes) = matches.remove(0);
            Ok(Found {
                path,
                bytes,
                skipped,
            })
        }
        _ => Err(ManifestError::Ambiguous {
            dir: dir.to_path_buf(),
            sha256: *sha256,
            paths: matches.into_iter().map(|(p, _)| p).collect(),
        }),
    }
}

/// The bytes of a manifest file, at most [`MAX_MANIFEST_BYTES`].
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ManifestError> {
    use std::io::Read;
    let io_err = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

impl ManifestEntry {
    /// The manifest form of a tree entry.
    pub fn from_tree(e: &TreeEntry) -> ManifestEntry {
        ManifestEntry {
            path: Bytes(e.path.clone()),
            kind: e.kind.name().to_string(),
            mode: format!("{:04o}", e.mode),
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            size: e.size,
            sha256: e.sha256.map(|d| d.to_hex()),
            symlink: (e.kind == EntryKind::Symlink).then(|| Bytes(e.symlink_target.clone())),
            hardlink: e.hardlink_target.clone().map(Bytes),
            rdev: matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice)
                .then_some([e.rdev.0, e.rdev.1]),
            xattrs: e
                .xattrs
                .iter()
                .map(|(n, v)| ManifestXattr {
                    name: Bytes(n.to_vec()),
                    value: Bytes(v.to_vec()),
                })
                .collect(),
        }
    }

    /// Back to a tree entry; `Err` names the bad field.
    pub fn to_tree(&self) -> Result<TreeEntry, String> {
        let kind = EntryKind::from_name(&self.kind)
            .filter(|k| k.in_plan())
            .ok_or_else(|| format!("unknown kind {:?}", self.kind))?;
        let mode = u32::from_str_radix(&self.mode, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| format!("mode {:?} is not 4 octal digits", self.mode))?;
        let sha256 = match &self.sha256 {
            Some(h) => Some(Sha256Digest::from_hex(h).map_err(|e| format!("sha256: {e}"))?),
            None => None,
        };
        Ok(TreeEntry {
            path: self.path.0.clone(),
            kind,
            mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            size: self.size,
            sha256,
            symlink_target: self.symlink.clone().map(|b| b.0).unwrap_or_default(),
            hardlink_target: self.hardlink.clone().map(|b| b.0),
            rdev: self.rdev.map_or((0, 0), |[a, b]| (a, b)),
            xattrs: XattrSet::new(
                self.xattrs
                    .iter()
                    .map(|x| (x.name.0.clone(), x.value.0.clone()))
                    .collect(),
            )
            .map_err(|n| format!("xattr {:?} given twice", String::from_utf8_lossy(&n)))?,
        })
    }
}

impl Manifest {
    /// Assembles a manifest for `artifact` holding `tree`.
    pub fn new(
        artifact: ArtifactInfo,
        options: ManifestOptions,
        tree: &Tree,
        source: Option<SourceRevision>,
    ) -> Manifest {
        Manifest {
            schema: SCHEMA.to_string(),
            tool: Tool::current(),
            artifact,
            tree_digest: tree.digest().to_hex(),
            tree_digest_keeps: tree.kept(),
            options,
            source,
            entries: tree
                .entries()
                .iter()
                .map(ManifestEntry::from_tree)
                .collect(),
        }
    }

    /// The entries as a [`Tree`] (container order kept).
    pub fn tree(&self, path: &Path) -> Result<Tree, ManifestError> {
        let entries = self
            .entries
            .iter()
            .enumerate()
            .map(|(index, e)| {
                e.to_tree().map_err(|message| ManifestError::Entry {
                    path: path.to_path_buf(),
                    index,
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Tree::new(entries)
            .map(|t| t.keeping(self.tree_digest_keeps))
            .map_err(|e| ManifestError::Entry {
                path: path.to_path_buf(),
                index: 0,
                message: e.to_string(),
            })
    }

    /// Pretty JSON with a trailing newline; the same manifest always gives
    /// the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs with string keys: serialization cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Writes the manifest atomically to `path`.
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        let mut out = AtomicFile::create(path)?;
        let bytes = self.to_json();
        out.file_mut()
            .write_all(&bytes)
            .map_err(|e| ManifestError::Output(out.error(e)))?;
        out.commit()?;
        Ok(())
    }

    /// Reads and checks the schema of a manifest file (at most
    /// [`MAX_MANIFEST_BYTES`]).
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        Manifest::parse(path, &read_bytes(path)?)
    }

    /// Parses and checks the schema of `bytes`, read from `path` (named in
    /// errors): a caller that checked a signature of exactly these bytes
    /// uses exactly them.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        /// The schema alone, first: everything else is skipped unparsed
        /// (a tree of values for the whole manifest would cost more than
        /// the manifest itself).
        #[derive(Deserialize)]
        struct SchemaOnly {
            #[serde(default)]
            schema: Option<serde_json::Value>,
        }
        let parse_error = |e: serde_json::Error| ManifestError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let head: SchemaOnly = serde_json::from_slice(bytes).map_err(parse_error)?;
        let schema = head.schema.as_ref().and_then(|s| s.as_str()).unwrap_or("");
        if schema != SCHEMA {
            return Err(ManifestError::Schema {
                path: path.to_path_buf(),
                found: schema.to_string(),
            });
        }
        serde_json::from_slice(bytes).map_err(parse_error)
    }
}
