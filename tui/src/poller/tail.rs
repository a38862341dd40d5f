//! The tail pane's read: the last records of every partition of one topic, one Fetch per leader,
//! only while the pane is open.

use super::{plan, records, Poller};
use crate::model::{RawBroker, RawTail, RawTopic, RequestCounts};
use std::collections::BTreeMap;

/// Records shown at most, over the topic's partitions.
pub const TAIL_RECORDS: i64 = 200;

impl Poller {
    /// The last records of `topic`, from each partition's leader.
    pub(super) async fn tail_stage(
        &mut self,
        topic: &str,
        topics: &[RawTopic],
        brokers: &[RawBroker],
        counts: &mut RequestCounts,
    ) -> RawTail {
        let mut tail = RawTail { topic: topic.to_string(), ..RawTail::default() };
        let Some(found) = topics.iter().find(|t| t.name == topic) else {
            tail.error = Some(format!("no topic {topic}"));
            return tail;
        };
        let per_partition = (TAIL_RECORDS / found.partitions.len().max(1) as i64).max(1);
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for p in &found.partitions {
            let (Some(start), Some(end)) = (p.log_start, p.log_end) else { continue };
            if p.leader >= 0 && end > start {
                by_leader.entry(p.leader).or_default().push((p.index, (end - per_partition).max(start)));
            }
        }
        let timeout = self.config.request_timeout;
        for (leader, partitions) in by_leader {
            let Some(addr) = brokers.iter().find(|b| b.id == leader).map(|b| format!("{}:{}", b.host, b.port)) else {
                continue;
            };
            let mut conn = match self.conn(&addr, counts).await {
                Ok(conn) => conn,
                Err(e) => {
                    tail.error.get_or_insert(format!("broker {leader}: {e}"));
                    continue;
                }
            };
            let Some((version, request)) = plan::fetch(topic, &partitions, &conn.versions) else {
                self.conns.insert(addr, conn);
                continue;
            };
            match conn.call(version, &request, timeout, counts).await {
                Ok(answer) => {
                    for p in answer.responses.iter().flat_map(|t| t.partitions.iter()) {
                        if p.error_code != 0 {
                            let name = super::decode::error_name(p.error_code).unwrap_or_else(|| "error".into());
                            tail.error.get_or_insert(format!("partition {}: {name}", p.partition_index));
                            continue;
                        }
                        let (fetched, _, error) =
                            records::decode(p.partition_index, p.records.clone().unwrap_or_default());
                        // A Fetch answers whole batches: drop what comes before the asked offset.
                        let from = partitions.iter().find(|(i, _)| *i == p.partition_index).map_or(0, |(_, o)| *o);
                        tail.records.extend(fetched.into_iter().filter(|r| r.offset >= from));
                        if let Some(error) = error {
                            tail.error.get_or_insert(format!("partition {}: {error}", p.partition_index));
                        }
                    }
                    self.conns.insert(addr, conn);
                }
                Err(e) => {
                    tail.error.get_or_insert(format!("broker {leader}: {e}"));
                }
            }
        }
        tail
    }
}
