//! The state of the metadata quorum as DescribeQuorum (KIP-595) reports it: the leader, its term,
//! the committed position, and how far each voter and non-voting member has replicated. Built
//! by the leader from its Raft metrics (pure), and forwarded to whichever broker was asked.

use openraft::{BasicNode, RaftMetrics};
use serde::{Deserialize, Serialize};

/// The quorum as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumDescription {
    /// The leader (active controller).
    pub leader_id: u64,
    /// The Raft term (Kafka's leader epoch of the metadata log).
    pub term: u64,
    /// Offset after the last entry the leader applied (all committed).
    pub high_watermark: i64,
    /// Voters, by id.
    pub voters: Vec<QuorumReplica>,
    /// Non-voting members (brokers receiving the metadata log), by id.
    pub observers: Vec<QuorumReplica>,
}

/// One member's replication progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumReplica {
    /// Node id.
    pub id: u64,
    /// Offset after its last entry the leader knows it holds; -1 if unknown.
    pub log_end_offset: i64,
}

impl QuorumDescription {
    /// Entries the slowest voter is behind the leader (the quorum's replication lag).
    pub fn max_voter_lag(&self) -> i64 {
        let leader_end = self.voters.iter().find(|v| v.id == self.leader_id).map_or(0, |v| v.log_end_offset);
        self.voters
            .iter()
            .map(|v| if v.log_end_offset < 0 { leader_end } else { leader_end - v.log_end_offset })
            .max()
            .unwrap_or(0)
            .max(0)
    }
}

/// The description, if `metrics` are a leader's; None on any other member.
pub fn describe(metrics: &RaftMetrics<u64, BasicNode>) -> Option<QuorumDescription> {
    if metrics.current_leader != Some(metrics.id) {
        return None;
    }
    let next = |index: Option<u64>| index.map_or(0, |i| i64::try_from(i.saturating_add(1)).unwrap_or(i64::MAX));
    let leader_end = next(metrics.last_log_index);
    let progress = |id: u64| -> QuorumReplica {
        let log_end_offset = if id == metrics.id {
            leader_end
        } else {
            match metrics.replication.as_ref().and_then(|r| r.get(&id)) {
                Some(matched) => next(matched.as_ref().map(|l| l.index)),
                None => -1,
            }
        };
        QuorumReplica { id, log_end_offset }
    };
    let membership = metrics.membership_config.membership();
    let mut voters: Vec<QuorumReplica> = membership.voter_ids().map(progress).collect();
    let mut observers: Vec<QuorumReplica> = membership.learner_ids().map(progress).collect();
    voters.sort_by_key(|r| r.id);
    observers.sort_by_key(|r| r.id);
    Some(QuorumDescription {
        leader_id: metrics.id,
        term: metrics.current_term,
        high_watermark: next(metrics.last_applied.map(|l| l.index)),
        voters,
        observers,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lag_is_the_slowest_voters_distance_from_the_leader() {
        let d = QuorumDescription {
            leader_id: 1,
            term: 3,
            high_watermark: 100,
            voters: vec![
                QuorumReplica { id: 1, log_end_offset: 100 },
                QuorumReplica { id: 2, log_end_offset: 90 },
                QuorumReplica { id: 3, log_end_offset: 100 },
            ],
            observers: vec![QuorumReplica { id: 4, log_end_offset: 10 }],
        };
        assert_eq!(d.max_voter_lag(), 10, "observers do not count");
        let unknown = QuorumDescription {
            voters: vec![QuorumReplica { id: 1, log_end_offset: 100 }, QuorumReplica { id: 2, log_end_offset: -1 }],
            ..d
        };
        assert_eq!(unknown.max_voter_lag(), 100, "a voter never heard from is all behind");
    }
}
