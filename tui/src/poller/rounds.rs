//! The requests of one refresh stage on one connection: per broker (offsets, groups listed,
//! configuration) and per group coordinator (groups described, committed offsets). Each runs
//! sequentially on its connection; the stages run them for every broker at once.

use super::conn::Conn;
use super::decode::{self, DescribedGroup, ListedGroup};
use super::plan;
use crate::model::RequestCounts;
use millrace_protocol::client::Security;
use millrace_protocol::ClientError;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// (topic, partition).
pub(super) type TopicPartition = (String, i32);
/// (topic, partition, committed offset).
type CommittedOffset = (String, i32, i64);

/// Offsets ListOffsets found for one partition.
#[derive(Default)]
pub(super) struct Offsets {
    pub(super) start: Option<i64>,
    pub(super) end: Option<i64>,
    pub(super) error: Option<String>,
}

/// What one broker answered in the per-broker stage.
#[derive(Default)]
pub(super) struct BrokerRound {
    pub(super) counts: RequestCounts,
    /// (partition, whether this is the latest offset, the offset or an error).
    pub(super) offsets: Vec<(TopicPartition, bool, Result<i64, String>)>,
    pub(super) groups: Vec<ListedGroup>,
    pub(super) admin_listener: Option<String>,
    pub(super) configs_asked: bool,
    pub(super) error: Option<String>,
}

/// What one coordinator answered about its groups.
#[derive(Default)]
pub(super) struct CoordinatorRound {
    pub(super) counts: RequestCounts,
    pub(super) described: HashMap<String, Result<DescribedGroup, String>>,
    pub(super) committed: HashMap<String, Result<Vec<CommittedOffset>, String>>,
    pub(super) moved: Vec<String>,
}

/// The per-broker requests, on one connection, sequentially.
pub(super) async fn broker_round(
    id: i32,
    addr: String,
    cached: Option<Conn>,
    partitions: Vec<(String, i32)>,
    configs_due: bool,
    timeout: Duration,
    security: Security,
) -> (i32, String, Option<Conn>, BrokerRound) {
    let mut round = BrokerRound::default();
    let mut conn = match cached {
        Some(conn) => conn,
        None => match Conn::open(&addr, timeout, &security, &mut round.counts).await {
            Ok(conn) => conn,
            Err(e) => {
                round.error = Some(e.to_string());
                return (id, addr, None, round);
            }
        },
    };
    let plan = plan::BrokerPlan::new(id, &partitions, &conn.versions, configs_due);
    let result: Result<(), ClientError> = async {
        if let Some((version, requests)) = &plan.list_offsets {
            for (latest, request) in [false, true].into_iter().zip(requests) {
                let answer = conn.call(*version, request, timeout, &mut round.counts).await?;
                round.offsets.extend(decode::offsets(&answer).into_iter().map(|(tp, v)| (tp, latest, v)));
            }
        }
        if let Some((version, request)) = &plan.list_groups {
            let answer = conn.call(*version, request, timeout, &mut round.counts).await?;
            match decode::listed_groups(&answer) {
                Ok(groups) => round.groups = groups,
                Err(e) => tracing::debug!(broker = id, error = %e, "ListGroups failed"),
            }
        }
        if let Some((version, request)) = &plan.describe_configs {
            let answer = conn.call(*version, request, timeout, &mut round.counts).await?;
            round.configs_asked = true;
            round.admin_listener = decode::config_value(&answer, plan::ADMIN_LISTENERS_KEY);
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => (id, addr, Some(conn), round),
        Err(e) => {
            // A late answer would be misread on this connection: drop it.
            round.error = Some(e.to_string());
            (id, addr, None, round)
        }
    }
}

/// Files per-group answers: a result, an error's name, or — when the group's coordinator moved —
/// a note to find it again.
fn file_answers<T>(
    answers: impl IntoIterator<Item = (String, Result<T, i16>)>,
    into: &mut HashMap<String, Result<T, String>>,
    moved: &mut HashSet<String>,
) {
    for (group, answer) in answers {
        match answer {
            Err(code) if decode::is_coordinator_moved(code) => {
                moved.insert(group);
            }
            answer => {
                into.insert(group, answer.map_err(|code| decode::error_name(code).unwrap_or_default()));
            }
        }
    }
}

/// DescribeGroups and OffsetFetch for the groups of one coordinator.
pub(super) async fn coordinator_round(
    id: i32,
    addr: String,
    cached: Option<Conn>,
    groups: Vec<String>,
    timeout: Duration,
    security: Security,
) -> (i32, String, Option<Conn>, CoordinatorRound) {
    let mut round = CoordinatorRound::default();
    let mut conn = match cached {
        Some(conn) => conn,
        None => match Conn::open(&addr, timeout, &security, &mut round.counts).await {
            Ok(conn) => conn,
            Err(e) => {
                for g in groups {
                    round.described.insert(g, Err(format!("coordinator {id}: {e}")));
                }
                return (id, addr, None, round);
            }
        },
    };
    let plan = plan::CoordinatorPlan::new(&groups, &conn.versions);
    let mut moved = HashSet::new();
    let result: Result<(), ClientError> = async {
        if let Some((version, request)) = &plan.describe_groups {
            let answer = conn.call(*version, request, timeout, &mut round.counts).await?;
            file_answers(decode::described_groups(&answer), &mut round.described, &mut moved);
        }
        if let Some((version, requests)) = &plan.offset_fetch {
            let batched = *version >= 8;
            for (i, request) in requests.iter().enumerate() {
                let asked = if batched { None } else { groups.get(i).map(String::as_str) };
                let answer = conn.call(*version, request, timeout, &mut round.counts).await?;
                file_answers(decode::committed(&answer, asked), &mut round.committed, &mut moved);
            }
        }
        Ok(())
    }
    .await;
    round.moved = moved.into_iter().collect();
    for g in &round.moved {
        round.described.remove(g);
        round.committed.remove(g);
    }
    match result {
        Ok(()) => (id, addr, Some(conn), round),
        Err(e) => {
            for g in groups {
                let error = format!("coordinator {id}: {e}");
                round.described.entry(g.clone()).or_insert_with(|| Err(error.clone()));
                round.committed.entry(g).or_insert(Err(error));
            }
            (id, addr, None, round)
        }
    }
}
