//! The rules both walkers (the filesystem and a tar stream) apply to every
//! entry: archive paths, excludes, modes and mtimes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{MAX_ARCHIVE_PATH, StageError, StageOptions, XattrPolicy};
use crate::plan::{EntryKind, XattrSet};

/// Normalizes an archive destination: strips leading/trailing `/` and `./`,
/// rejects `..` and empty components in between.
pub(super) fn normalize_dest(dest: &[u8]) -> Result<Vec<Vec<u8>>, StageError> {
    let mut parts = Vec::new();
    for comp in dest.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => {
                return Err(StageError::Dest {
                    dest: String::from_utf8_lossy(dest).into_owned(),
                    reason: "`..` is not allowed in an archive path",
                });
            }
            c => parts.push(c.to_vec()),
        }
    }
    Ok(parts)
}

/// Exclude patterns, matched against the archive path. A pattern without
/// `/` matches any single component name at any depth (like GNU tar's
/// `--exclude`); one with `/` matches the whole archive path. `*` never
/// crosses `/`; `**` does.
pub(super) struct Excludes {
    pub(super) by_name: GlobSet,
    pub(super) by_path: GlobSet,
}

impl Excludes {
    pub(super) fn new(patterns: &[String]) -> Result<Excludes, StageError> {
        let mut by_name = GlobSetBuilder::new();
        let mut by_path = GlobSetBuilder::new();
        for pattern in patterns {
            let trimmed = pattern.trim_start_matches('/').trim_end_matches('/');
            let glob = GlobBuilder::new(trimmed)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| StageError::Glob {
                    pattern: pattern.clone(),
                    message: e.kind().to_string(),
                })?;
            if trimmed.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| StageError::Glob {
                pattern: patterns.join(" "),
                message: e.to_string(),
            })
        };
        Ok(Excludes {
            by_name: build(by_name)?,
            by_path: build(by_path)?,
        })
    }

    pub(super) fn is_excluded(&self, archive_path: &[u8]) -> bool {
        let name = match archive_path.iter().rposition(|&b| b == b'/') {
            Some(i) => &archive_path[i + 1..],
            None => archive_path,
        };
        self.by_name.is_match(Path::new(OsStr::from_bytes(name)))
            || self
                .by_path
                .is_match(Path::new(OsStr::from_bytes(archive_path)))
    }
}

/// Normalized permission bits for an entry of `kind` whose source had
/// `raw_mode` (st_mode or a tar header's mode; type bits are ignored).
pub(super) fn normalize_mode(opts: &StageOptions, kind: EntryKind, raw_mode: u32) -> u32 {
    let perm = raw_mode & 0o777;
    let special = raw_mode & 0o7000;
    let base = if kind == EntryKind::Symlink {
        0o777
    } else if opts.keep_modes {
        perm
    } else {
        match kind {
            EntryKind::Dir => 0o755,
            EntryKind::File if perm & 0o111 != 0 => 0o755,
            _ => 0o644,
        }
    };
    if opts.keep_special_bits && kind != EntryKind::Symlink {
        base | special
    } else {
        base
    }
}

/// The entry mtime for a source mtime of `src` seconds: the epoch, or with
/// `clamp_mtime` the older of the two.
pub(super) fn normalize_mtime(opts: &StageOptions, src: i64) -> u64 {
    if opts.clamp_mtime {
        u64::try_from(src).unwrap_or(0).min(opts.epoch)
    } else {
        opts.epoch
    }
}

/// gensquashfs's `canonicalize_name`: drops leading, trailing and doubled
/// `/` and `.` components; `None` for a `..` component.
pub(super) fn canonicalize(path: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return None,
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Some(out)
}

/// The last component of archive path `path` (all of it at the top).
pub(super) fn last_component(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

pub(super) fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
        p.extend_from_slice(prefix);
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }
}

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `b` for a message: whole if short, else its first and last 60 bytes.
pub(crate) fn abbreviated(b: &[u8]) -> String {
    if b.len() <= 160 {
        lossy(b)
    } else {
        format!("{}…{}", lossy(&b[..60]), lossy(&b[b.len() - 60..]))
    }
}

/// Refuses an archive path longer than [`MAX_ARCHIVE_PATH`].
pub(crate) fn check_path_len(archive: &[u8]) -> Result<(), StageError> {
    if archive.len() > MAX_ARCHIVE_PATH {
        return Err(StageError::PathTooLong {
            archive: abbreviated(archive),
            len: archive.len(),
            max: MAX_ARCHIVE_PATH,
        });
    }
    Ok(())
}

/// Longest attribute name staged: Linux's XATTR_NAME_MAX, the most
/// `setxattr` accepts (and so the most an extracted tree can hold).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest attribute value staged: Linux's XATTR_SIZE_MAX.
pub const MAX_XATTR_VALUE: usize = 65536;

/// Attributes as (name, value) pairs, as read from a source.
pub(super) type XattrPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The compiled [`XattrPolicy`]: which attribute names are kept.
pub(super) struct XattrFilter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl XattrFilter {
    /// `None` when the policy keeps no attribute at all.
    pub(super) fn new(policy: &XattrPolicy) -> Result<Option<XattrFilter>, StageError> {
        let XattrPolicy::Keep { include, exclude } = policy else {
            return Ok(None);
        };
        let set = |patterns: &[String]| -> Result<GlobSet, StageError> {
            let mut b = GlobSetBuilder::new();
            for pattern in patterns {
                // Attribute names have no separator: `*` matches any run.
                let glob = GlobBuilder::new(pattern)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| StageError::Glob {
                        pattern: pattern.clone(),
                        message: e.kind().to_string(),
                    })?;
                b.add(glob);
            }
            b.build().map_err(|e| StageError::Glob {
                pattern: patterns.join(" "),
                message: e.to_string(),
            })
        };
        Ok(Some(XattrFilter {
            include: if include.is_empty() {
                None
            } else {
                Some(set(include)?)
            },
            exclude: set(exclude)?,
        }))
    }

    /// True if attribute `name` is kept.
    pub(super) fn keeps(&self, name: &[u8]) -> bool {
        let name = Path::new(OsStr::from_bytes(name));
        self.include.as_ref().is_none_or(|s| s.is_match(name)) && !self.exclude.is_match(name)
    }

    /// The kept attributes of `pairs` (from `source`, for messages) as a
    /// canonical set: filtered, checked against the limits, sorted.
    pub(super) fn set_of(
        &self,
        source: &str,
        pairs: XattrPairs,
    ) -> Result<Option<Box<XattrSet>>, StageError> {
        let mut kept = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if !self.keeps(&name) {
                continue;
            }
            let bad = |reason: String| StageError::Xattr {
                source_path: source.to_string(),
                name: abbreviated(&name),
                reason,
            };
            if name.is_empty() || name.contains(&0) {
                return Err(bad(
                    "an attribute name is not empty and has no NUL byte".into()
                ));
            }
            if name.len() > MAX_XATTR_NAME {
                return Err(bad(format!(
                    "name is {} bytes; at most {MAX_XATTR_NAME} are allowed",
                    name.len()
                )));
            }
            if value.len() > MAX_XATTR_VALUE {
                return Err(bad(format!(
                    "value is {} bytes; at most {MAX_XATTR_VALUE} are allowed",
                    value.len()
                )));
            }
            kept.push((name, value));
        }
        if kept.is_empty() {
            return Ok(None);
        }
        let set = XattrSet::new(kept).map_err(|name| StageError::Xattr {
            source_path: source.to_string(),
            name: abbreviated(&name),
            reason: "the attribute is given twice".into(),
        })?;
        Ok(Some(Box::new(set)))
    }
}

/// What the owner policy makes of an entry whose source is owned by
/// `src_uid:src_gid` and had `raw_mode`: the stored uid, gid and mode, and
/// a warning when a setuid or setgid bit was dropped.
///
/// Keeping special bits while replacing the owner must never grant
/// privileges the source did not have: a setgid-shadow binary stored as
/// root:root with its setgid bit would be setgid-root. So on a regular
/// file, setuid is dropped when the uid was replaced by a different one,
/// setgid when the gid was.
pub(super) fn owner_and_mode(
    opts: &StageOptions,
    kind: EntryKind,
    raw_mode: u32,
    (src_uid, src_gid): (u32, u32),
    source: &dyn Fn() -> String,
) -> (u32, u32, u32, Option<String>) {
    let mut mode = normalize_mode(opts, kind, raw_mode);
    let (uid, gid) = if opts.keep_owners {
        (src_uid, src_gid)
    } else {
        (opts.owner.uid, opts.owner.gid)
    };
    let mut dropped = Vec::new();
    if kind == EntryKind::File {
        if mode & 0o4000 != 0 && uid != src_uid {
            mode &= !0o4000;
            dropped.push(format!("setuid (owner {src_uid} replaced by {uid})"));
        }
        if mode & 0o2000 != 0 && gid != src_gid {
            mode &= !0o2000;
            dropped.push(format!("setgid (group {src_gid} replaced by {gid})"));
        }
    }
    let warning = (!dropped.is_empty()).then(|| {
        format!(
            "{}: {} dropped; pass --keep-owners to keep the owner and the bit",
            source(),
            dropped.join(" and ")
        )
    });
    (uid, gid, mode, warning)
}
