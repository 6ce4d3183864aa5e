//! What a fetch cache directory holds, seen as plain files.

use std::path::{Path, PathBuf};

/// Every file under the cache `dir` other than lock files (an flock, not
/// the file, is the lock, so lock files may outlive a run by design),
/// relative to `dir`, sorted.
pub fn cache_content(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.exists() {
        for e in walkdir::WalkDir::new(dir) {
            let e = e.unwrap();
            if e.file_type().is_file() && e.path().extension().is_none_or(|x| x != "lock") {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}
