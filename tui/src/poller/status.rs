//! The pipeline's status topic: what is new in `__millrace_status` since the last refresh,
//! folded into the latest record per component (what compaction keeps on the brokers too).

use super::{plan, records, Poller};
use crate::model::{RawBroker, RawTopic, RequestCounts};
use millrace_status::{Status, STATUS_TOPIC};

/// Fetches per refresh while catching up (a new `top` on a long uncompacted tail).
const MAX_FETCHES: usize = 8;
/// Components kept at most: the topic is writable by every agent and sink, so a bound.
pub const MAX_COMPONENTS: usize = 10_000;
/// Kafka's OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// The latest status per key, folded from records in offset order.
#[derive(Debug, Default)]
pub struct StatusTable {
    latest: std::collections::BTreeMap<String, Status>,
    /// The next offset to fetch.
    next: Option<i64>,
    /// Records skipped (not a status record), for the log.
    pub skipped: u64,
}

impl StatusTable {
    /// Applies one record: a tombstone removes its key, a status replaces the key's last one.
    pub fn apply(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        let key = key.map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        match value {
            None => {
                self.latest.remove(&key);
            }
            Some(value) => match Status::decode(value) {
                Ok(status) if status.key() == key => {
                    if self.latest.len() < MAX_COMPONENTS || self.latest.contains_key(&key) {
                        self.latest.insert(key, status);
                    }
                }
                Ok(_) | Err(_) => self.skipped += 1,
            },
        }
    }

    /// Every component's latest status.
    pub fn all(&self) -> Vec<Status> {
        self.latest.values().cloned().collect()
    }
}

impl Poller {
    /// One Fetch of what is new in the status topic (a few while catching up) from its leader;
    /// the statuses known afterwards. Without the topic: none.
    pub(super) async fn status_stage(
        &mut self,
        topics: &[RawTopic],
        brokers: &[RawBroker],
        counts: &mut RequestCounts,
    ) -> Vec<Status> {
        let Some(partition) =
            topics.iter().find(|t| t.name == STATUS_TOPIC).and_then(|t| t.partitions.iter().find(|p| p.index == 0))
        else {
            self.status = StatusTable::default();
            return Vec::new();
        };
        let leader = brokers.iter().find(|b| b.id == partition.leader && !b.fenced && b.error.is_none());
        let Some(addr) = leader.map(|b| format!("{}:{}", b.host, b.port)) else { return self.status.all() };
        let start = partition.log_start.unwrap_or(0);
        let end = partition.log_end;
        // Compaction or a re-created topic can move the start past where this reader was.
        let mut next = self.status.next.filter(|n| *n >= start && end.is_none_or(|e| *n <= e)).unwrap_or(start);
        let mut conn = match self.conn(&addr, counts).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "status topic: connecting to its leader failed");
                return self.status.all();
            }
        };
        let timeout = self.config.request_timeout;
        // At least one Fetch, caught up or not: a refresh costs the same whatever the pipeline
        // did (the plan counts it), and the answer carries the high watermark.
        for _ in 0..MAX_FETCHES {
            let Some((version, request)) = plan::fetch(STATUS_TOPIC, &[(0, next)], &conn.versions) else { break };
            let answer = match conn.call(version, &request, timeout, counts).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::debug!(error = %e, "status topic: Fetch failed");
                    self.status.next = Some(next);
                    return self.status.all();
                }
            };
            let Some(p) = answer.responses.first().and_then(|t| t.partitions.first()) else { break };
            if p.error_code == OFFSET_OUT_OF_RANGE {
                next = p.log_start_offset.max(start);
                continue;
            }
            if p.error_code != 0 {
                tracing::debug!(code = p.error_code, "status topic: Fetch answered an error");
                break;
            }
            let (fetched, after, error) = records::decode(0, p.records.clone().unwrap_or_default());
            for r in &fetched {
                self.status.apply(r.key.as_deref(), r.value.as_deref());
            }
            if let Some(error) = error {
                tracing::debug!(%error, "status topic: a batch could not be read");
            }
            match after {
                Some(after) if after > next => next = after,
                _ => break,
            }
            if next >= p.high_watermark {
                break;
            }
        }
        self.status.next = Some(next);
        self.conns.insert(addr, conn);
        self.status.all()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use millrace_status::{ComponentKind, RunState};

    fn status(name: &str, time_ms: i64) -> Status {
        Status {
            v: 1,
            kind: ComponentKind::Sink,
            host: "h".into(),
            name: name.into(),
            version: "0".into(),
            pid: 1,
            started_ms: 0,
            time_ms,
            interval_ms: 1000,
            state: RunState::Running,
            agent: None,
            sink: None,
        }
    }

    #[test]
    fn the_latest_record_per_key_wins_and_a_tombstone_removes_it() {
        let mut table = StatusTable::default();
        table.apply(Some(b"sink/h/a"), Some(&status("a", 1).encode()));
        table.apply(Some(b"sink/h/b"), Some(&status("b", 1).encode()));
        table.apply(Some(b"sink/h/a"), Some(&status("a", 2).encode()));
        table.apply(Some(b"sink/h/b"), None);
        assert_eq!(table.all(), vec![status("a", 2)]);
    }

    #[test]
    fn records_that_are_not_statuses_or_under_another_key_are_skipped() {
        let mut table = StatusTable::default();
        table.apply(Some(b"sink/h/a"), Some(b"not json"));
        table.apply(Some(b"sink/h/other"), Some(&status("a", 1).encode()));
        table.apply(None, Some(&status("a", 1).encode()));
        assert!(table.all().is_empty());
        assert_eq!(table.skipped, 3);
    }
}
