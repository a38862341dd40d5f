//! Finding files: the `include` patterns minus `exclude`, links skipped unless followed, and each
//! open file marked as still matched (or renamed) at every scan.

use super::encode::{FileFields, LineEncoder};
use super::FileTailer;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

impl FileTailer {
    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|p| p.matches_path(path))
    }

    /// Finds files, opens new ones, notices rotated-away and truncated ones.
    pub(super) fn scan(&mut self) {
        let mut seen = BTreeMap::new();
        let mut links = BTreeSet::new();
        for (pattern, fixed) in &self.include {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for path in paths.flatten() {
                if self.excluded(&path) {
                    continue;
                }
                if !self.config.follow_symlinks && through_link(&path, *fixed) {
                    if !self.skipped_links.contains(&path) {
                        tracing::warn!(input = %self.config.name, path = %path.display(), "skipping a symbolic link (set follow_symlinks = true to read files through links)");
                    }
                    links.insert(path);
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                if !meta.is_file() {
                    continue;
                }
                seen.insert((meta.dev(), meta.ino()), path);
            }
        }
        self.skipped_links = links;
        for tailed in self.open.values_mut() {
            tailed.matched = seen.contains_key(&tailed.key);
            if let Some(path) = seen.get(&tailed.key).filter(|p| **p != tailed.path) {
                tailed.path = path.clone();
                tailed.encoder = LineEncoder::new(&FileFields {
                    host: &self.host,
                    input: &self.config.name,
                    path: &path.display().to_string(),
                    device: tailed.key.0,
                    inode: tailed.key.1,
                    fingerprint: tailed.fingerprint,
                });
            }
        }
        for (key, path) in seen {
            if self.open.contains_key(&key) {
                continue;
            }
            match self.open_file(key, &path) {
                Ok(Some(tailed)) => {
                    tracing::info!(input = %self.config.name, path = %path.display(), offset = tailed.read_pos, "tailing file");
                    self.open.insert(key, tailed);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(input = %self.config.name, path = %path.display(), error = %e, "cannot open file")
                }
            }
        }
        self.first_scan = false;
    }
}

/// How many leading components of `pattern` hold no wildcard: links there were written into the
/// pattern by whoever configured it, so they are followed; links in components the wildcards
/// matched (and the file itself) are what a writer of the watched directory controls.
pub(super) fn fixed_components(pattern: &str) -> usize {
    Path::new(pattern).components().take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '['])).count()
}

/// Whether `path` (matched by a pattern with `fixed` wildcard-free leading components) is a link
/// or lies below a link among the components the pattern's wildcards matched.
fn through_link(path: &Path, fixed: usize) -> bool {
    // The file itself is checked even when the pattern names it exactly.
    let first_checked = fixed.min(path.components().count().saturating_sub(1));
    let mut prefix = PathBuf::new();
    for (i, component) in path.components().enumerate() {
        prefix.push(component);
        if i < first_checked {
            continue;
        }
        // Unreadable: not a link as far as can be told; opening it decides.
        if std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return true;
        }
    }
    false
}
