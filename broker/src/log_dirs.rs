//! The broker's log directories (Kafka's `log.dirs`) and their health.
//!
//! Like Kafka, a directory goes offline as a whole at the first I/O error in it (a full disk,
//! EIO, a failed fsync): its disk can no longer be trusted, and on Linux a failed fsync may have
//! dropped dirty pages that a later "successful" fsync would not bring back. Every replica in an
//! offline directory answers KAFKA_STORAGE_ERROR; the broker reports them to the active
//! controller in its heartbeats, which moves their leadership to in-sync replicas elsewhere and
//! keeps them out of ISRs until this broker restarts (recovery then re-reads what the disk holds).
//! The other directories keep serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// One directory holding partition replicas.
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    /// Why it went offline; set once, cleared only by a restart.
    failure: OnceLock<String>,
    /// `(topic, partition)` of the replicas placed here, opened or not (a replica that could not
    /// be opened because the directory failed still counts: it is offline here).
    replicas: Mutex<BTreeSet<(String, i32)>>,
    /// Its partitions' fsync times, once the broker's metrics are attached.
    flush_seconds: OnceLock<prometheus::Histogram>,
}

impl LogDir {
    /// An online directory at `path`.
    pub fn new(path: PathBuf) -> LogDir {
        LogDir { path, failure: OnceLock::new(), replicas: Mutex::new(BTreeSet::new()), flush_seconds: OnceLock::new() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why it is offline, if it is.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Takes the directory offline for `reason` (the first reason wins); returns whether this
    /// call did it, so the caller logs it once.
    pub fn mark_offline(&self, reason: String) -> bool {
        let first = self.failure.set(reason).is_ok();
        if first {
            tracing::error!(
                log_dir = %self.path.display(),
                reason = self.failure().unwrap_or_default(),
                "log directory offline: its replicas answer KAFKA_STORAGE_ERROR and their leadership moves to \
                 other brokers until this broker is restarted with a working disk"
            );
        }
        first
    }

    /// Where its fsync times go (the first histogram attached stays).
    pub fn attach_flush_histogram(&self, histogram: prometheus::Histogram) {
        let _ = self.flush_seconds.set(histogram);
    }

    /// Records how long one fsync of a partition log here took.
    pub fn observe_flush(&self, took: std::time::Duration) {
        if let Some(histogram) = self.flush_seconds.get() {
            histogram.observe(took.as_secs_f64());
        }
    }

    fn replicas(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, i32)>> {
        self.replicas.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a replica lives here.
    pub fn add_replica(&self, topic: &str, partition: i32) {
        self.replicas().insert((topic.to_string(), partition));
    }

    /// Forgets a replica (deleted or moved).
    pub fn remove_replica(&self, topic: &str, partition: i32) {
        self.replicas().remove(&(topic.to_string(), partition));
    }

    fn replica_count(&self) -> usize {
        self.replicas().len()
    }
}

/// Every log directory of this broker.
#[derive(Debug)]
pub struct LogDirs {
    dirs: Vec<Arc<LogDir>>,
}

impl LogDirs {
    /// The directories at `paths`, all online.
    pub fn new(paths: Vec<PathBuf>) -> LogDirs {
        LogDirs { dirs: paths.into_iter().map(|p| Arc::new(LogDir::new(p))).collect() }
    }

    /// All directories, in configuration order.
    pub fn all(&self) -> &[Arc<LogDir>] {
        &self.dirs
    }

    /// The directory a new replica goes to: the online one holding the fewest replicas
    /// (Kafka's placement), the first listed on a tie. `None` when every directory is offline.
    pub fn place(&self) -> Option<&Arc<LogDir>> {
        self.dirs.iter().filter(|d| d.failure().is_none()).min_by_key(|d| d.replica_count())
    }

    /// The directory whose path is `path`.
    pub fn by_path(&self, path: &Path) -> Option<&Arc<LogDir>> {
        self.dirs.iter().find(|d| d.path == path)
    }

    /// Replicas in offline directories, sorted: what the heartbeat reports.
    pub fn offline_replicas(&self) -> Vec<(String, i32)> {
        let mut out: BTreeSet<(String, i32)> = BTreeSet::new();
        for dir in self.dirs.iter().filter(|d| d.failure().is_some()) {
            out.extend(dir.replicas().iter().cloned());
        }
        out.into_iter().collect()
    }

    /// Whether every directory is offline.
    pub fn all_offline(&self) -> bool {
        self.dirs.iter().all(|d| d.failure().is_some())
    }

    /// Number of offline directories (a gauge).
    pub fn offline_count(&self) -> usize {
        self.dirs.iter().filter(|d| d.failure().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_prefers_the_emptiest_online_directory() {
        let dirs = LogDirs::new(vec!["a".into(), "b".into()]);
        let first = dirs.place().unwrap().clone();
        assert_eq!(first.path(), Path::new("a"), "a tie goes to the first listed");
        first.add_replica("t", 0);
        assert_eq!(dirs.place().unwrap().path(), Path::new("b"));
        dirs.all()[1].add_replica("t", 1);
        dirs.all()[1].add_replica("t", 2);
        assert_eq!(dirs.place().unwrap().path(), Path::new("a"));
        dirs.all()[0].mark_offline("EIO".into());
        assert_eq!(dirs.place().unwrap().path(), Path::new("b"), "an offline directory takes no new replica");
        dirs.all()[1].mark_offline("ENOSPC".into());
        assert!(dirs.place().is_none());
        assert!(dirs.all_offline());
    }

    #[test]
    fn offline_replicas_are_those_of_offline_directories_and_the_first_reason_stays() {
        let dirs = LogDirs::new(vec!["a".into(), "b".into()]);
        dirs.all()[0].add_replica("t", 0);
        dirs.all()[1].add_replica("t", 1);
        dirs.all()[1].add_replica("u", 0);
        assert!(dirs.offline_replicas().is_empty());
        assert!(dirs.all()[1].mark_offline("No space left on device".into()));
        assert!(!dirs.all()[1].mark_offline("later".into()));
        assert_eq!(dirs.all()[1].failure(), Some("No space left on device"));
        assert_eq!(dirs.offline_replicas(), vec![("t".to_string(), 1), ("u".to_string(), 0)]);
        assert_eq!(dirs.offline_count(), 1);
    }
}
