//! What `top` may change, always after a question: electing preferred leaders and resetting an
//! idle group's offsets. Pure: the action is computed from the snapshot shown, and the runtime
//! sends it.

use super::{group_rows, partition_rows, topic_rows, Frame, View};
use crate::model::Snapshot;

/// A change the user confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// ElectLeaders (preferred) for these partitions.
    ElectPreferred {
        /// What the question named (`orders`, `every topic`).
        scope: String,
        /// (topic, partition) whose leader is not the preferred replica.
        partitions: Vec<(String, i32)>,
    },
    /// OffsetCommit of `offsets` for `group` as an admin (generation -1): only an empty group
    /// takes it, as with `kafka-consumer-groups --reset-offsets`.
    ResetOffsets {
        /// Group id.
        group: String,
        /// `earliest` or `latest`.
        to: &'static str,
        /// (topic, partition, offset).
        offsets: Vec<(String, i32, i64)>,
    },
}

/// A question waiting for its answer: each choice key and the action it confirms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// What is asked, choices included.
    pub text: String,
    /// Keys that confirm, and what each does.
    pub choices: Vec<(char, Action)>,
}

/// The question key `E` (elect preferred leaders) or `R` (reset a group's offsets) asks on the
/// view of `frame`, or why there is nothing to do; None when the key means nothing there.
pub fn ask(frame: &Frame, snapshot: &Snapshot, key: char) -> Option<Result<Question, String>> {
    match (key, &frame.view) {
        ('E', View::Brokers) => Some(elect(snapshot, None, "every topic")),
        ('E', View::Topics) => {
            let topic = topic_rows(snapshot, &frame.filter).get(frame.selected).map(|t| t.name.clone())?;
            Some(elect(snapshot, Some(&topic), &topic))
        }
        ('E', View::Partitions { topic }) => {
            let scope = topic.clone().unwrap_or_else(|| "every topic".to_string());
            Some(elect(snapshot, topic.as_deref(), &scope))
        }
        ('R', View::Groups) => {
            let group = group_rows(snapshot, &frame.filter).get(frame.selected).map(|g| g.id.clone())?;
            Some(reset(snapshot, &group))
        }
        ('R', View::GroupDetail { group }) => Some(reset(snapshot, group)),
        _ => None,
    }
}

fn elect(snapshot: &Snapshot, topic: Option<&str>, scope: &str) -> Result<Question, String> {
    // Partitions whose preferred replica is in sync but does not lead: what an election moves.
    let partitions: Vec<(String, i32)> = partition_rows(snapshot, topic, "")
        .into_iter()
        .filter(|p| p.replicas.first().is_some_and(|preferred| *preferred != p.leader && p.isr.contains(preferred)))
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    if partitions.is_empty() {
        return Err(format!("every partition of {scope} is led by its preferred replica (or it is not in sync)"));
    }
    let text = format!("elect preferred leaders for {} partition(s) of {scope}? [y] yes  [esc] no", partitions.len());
    Ok(Question { text, choices: vec![('y', Action::ElectPreferred { scope: scope.to_string(), partitions })] })
}

fn reset(snapshot: &Snapshot, group: &str) -> Result<Question, String> {
    let row = snapshot.group(group).ok_or_else(|| format!("group {group} is not shown"))?;
    if !row.members.is_empty() {
        return Err(format!(
            "group {group} has {} member(s): stop its consumers first (an active group's offsets cannot be reset)",
            row.members.len()
        ));
    }
    let mut earliest = Vec::new();
    let mut latest = Vec::new();
    let (mut skipped, mut reread) = (0i64, 0i64);
    for p in &row.partitions {
        let found = snapshot.topic(&p.topic).and_then(|t| t.partitions.iter().find(|q| q.partition == p.partition));
        let (Some(start), Some(end)) = (found.and_then(|q| q.log_start), found.and_then(|q| q.log_end)) else {
            return Err(format!("the offsets of {}-{} are not known yet", p.topic, p.partition));
        };
        let committed = p.committed.unwrap_or(start);
        skipped += (end - committed).max(0);
        reread += (committed - start).max(0);
        earliest.push((p.topic.clone(), p.partition, start));
        latest.push((p.topic.clone(), p.partition, end));
    }
    if latest.is_empty() {
        return Err(format!("group {group} has no committed offsets to reset"));
    }
    let text = format!(
        "reset group {group} ({} partition(s)): [l] to latest, skipping {skipped} record(s)  \
         [e] to earliest, reading {reread} again  [esc] no",
        latest.len()
    );
    let choices = vec![
        ('l', Action::ResetOffsets { group: group.to_string(), to: "latest", offsets: latest }),
        ('e', Action::ResetOffsets { group: group.to_string(), to: "earliest", offsets: earliest }),
    ];
    Ok(Question { text, choices })
}
