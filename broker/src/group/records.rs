//! Conversions between in-memory groups and their `__consumer_offsets` records: the metadata
//! written after a membership change, and groups rebuilt from what a partition holds.

use super::entry::Entry;
use super::state::{Group, GroupState, JoinArgs};
use super::store::{Loaded, StoredGroup, StoredMember};
use std::collections::HashMap;
use std::time::Duration;

/// The metadata record of a group.
pub(super) fn stored_group(entry: &Entry) -> StoredGroup {
    let group = &entry.group;
    StoredGroup {
        protocol_type: group.protocol_type.clone(),
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        members: if group.state == GroupState::Stable {
            group
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: u64::try_from(m.session_timeout.as_millis()).unwrap_or(u64::MAX),
                    rebalance_timeout_ms: u64::try_from(m.rebalance_timeout.as_millis()).unwrap_or(u64::MAX),
                    // Kafka's record keeps the chosen protocol's metadata only.
                    subscription: m.metadata_for(group.protocol.as_deref().unwrap_or_default()),
                    assignment: m.assignment.clone(),
                })
                .collect()
        } else {
            // Mid-rebalance membership is not worth restoring: members rejoin anyway.
            Vec::new()
        },
        empty_since: entry.empty_since,
    }
}

/// Rebuilds group entries from what was read from an offsets partition; restored members get a
/// fresh session from `now`.
///
/// A restored member supports just the chosen protocol, the only one the record keeps (as in
/// Kafka): the group answers heartbeats, syncs and commits of its generation as before, and a
/// member rejoining with its full protocol list rejoins normally (see `join.rs`).
pub(super) fn restore_groups(loaded: Loaded, now: i64) -> HashMap<String, Entry> {
    let mut groups: HashMap<String, Entry> = HashMap::new();
    for (id, stored) in &loaded.groups {
        // Members without a chosen protocol (only a damaged or foreign record has them) could
        // not be served; the group restarts empty and they rejoin.
        let members = stored
            .members
            .iter()
            .filter_map(|m| stored.protocol.as_ref().map(|protocol| (m, protocol)))
            .map(|(m, protocol)| {
                let joined = JoinArgs {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                    protocol_type: stored.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![(protocol.clone(), m.subscription.clone())],
                    require_known_member_id: false,
                };
                (joined, m.assignment.clone())
            })
            .collect();
        let group = Group::restore(
            id,
            stored.generation,
            stored.protocol_type.clone(),
            stored.protocol.clone(),
            stored.leader.clone(),
            members,
            now,
        );
        // A group that became empty before its record had a state timestamp (Kafka's v0/v1)
        // counts its offsets' retention from now rather than keeping them forever.
        let empty_since = match stored.empty_since {
            None if group.members.is_empty() && stored.protocol_type.is_some() => Some(now),
            since => since,
        };
        groups.insert(id.clone(), Entry { group, offsets: HashMap::new(), empty_since });
    }
    for (id, offsets) in loaded.offsets {
        groups.entry(id.clone()).or_insert_with(|| Entry::new(&id)).offsets = offsets;
    }
    groups
}
