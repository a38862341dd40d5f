//! Broker commands: registration, heartbeats, fencing and unfencing, and the leader moves
//! (clean or, where a topic allows it, unclean) that fencing and unfencing cause.

use super::{BrokerEndpoint, BrokerState, MetadataError, MetadataResponse, MetadataState, PartitionState, NO_LEADER};
use std::collections::{BTreeMap, BTreeSet};

impl MetadataState {
    /// RegisterBroker: a (re)registered broker gets a new epoch and starts fenced.
    pub(super) fn register_broker(
        &mut self,
        id: i32,
        host: &str,
        port: u16,
        rack: Option<&str>,
        listeners: &[BrokerEndpoint],
    ) -> Result<MetadataResponse, MetadataError> {
        if id < 0 {
            return Err(MetadataError::InvalidRequest(format!("broker id {id} is negative")));
        }
        // A broker that registers again restarted: whatever it led or followed in its
        // previous life may be missing unflushed data, so it is fenced (out of every ISR,
        // leadership moved away) like a dead broker, and rejoins ISRs by catching up.
        let changed = if self.brokers.contains_key(&id) { self.fence_partitions(id) } else { 0 };
        // Its restart re-read its log directories: replicas reported offline may serve again
        // (they rejoin ISRs by catching up, like any returning replica).
        for p in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.offline_replicas.retain(|r| *r != id);
        }
        let epoch = self.next_broker_epoch;
        self.next_broker_epoch += 1;
        // It starts fenced; the active controller unfences it once it heartbeats with
        // its metadata caught up (Kafka's KRaft registration rules).
        let broker = BrokerState {
            id,
            host: host.to_string(),
            port,
            rack: rack.map(str::to_string),
            epoch,
            fenced: true,
            listeners: listeners.to_vec(),
        };
        self.brokers.insert(id, broker);
        self.removed_brokers.remove(&id);
        tracing::debug!(broker = id, epoch, changed, "broker registration applied");
        Ok(MetadataResponse::BrokerRegistered { broker_epoch: epoch })
    }

    /// UnregisterBroker: only a fenced broker may leave.
    pub(super) fn unregister_broker(&mut self, id: i32) -> Result<MetadataResponse, MetadataError> {
        self.broker(id)?;
        if self.brokers.get(&id).is_some_and(|b| !b.fenced) {
            return Err(MetadataError::InvalidRequest(format!(
                "broker {id} is alive (unfenced); stop it before unregistering it"
            )));
        }
        let changed = self.fence_partitions(id);
        self.brokers.remove(&id);
        self.removed_brokers.insert(id);
        Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
    }

    /// BrokerHeartbeat: reports the broker's epoch and whether it is fenced.
    pub(super) fn broker_heartbeat(&self, id: i32) -> Result<MetadataResponse, MetadataError> {
        let b = self.broker(id)?;
        Ok(MetadataResponse::Heartbeat { broker_epoch: b.epoch, fenced: b.fenced })
    }

    /// UnfenceBroker: back in service, it takes back the leaderless partitions it can lead.
    pub(super) fn unfence_broker(&mut self, id: i32) -> Result<MetadataResponse, MetadataError> {
        self.broker(id)?;
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = false;
        }
        let changed = self.elect_leaderless(id);
        Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
    }

    /// FenceBroker.
    pub(super) fn fence(&mut self, id: i32) -> Result<MetadataResponse, MetadataError> {
        self.broker(id)?;
        let changed = self.fence_partitions(id);
        Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
    }

    /// MarkReplicasOffline: each listed partition of which `id` is a replica loses it from its
    /// ISR (the last member stays, leaderless, as with fencing: no one else is known to hold
    /// every committed record) and, where it led, moves leadership to another in-sync replica.
    pub(super) fn mark_replicas_offline(
        &mut self,
        id: i32,
        broker_epoch: i64,
        partitions: &[(String, i32)],
    ) -> Result<MetadataResponse, MetadataError> {
        let broker = self.broker(id)?;
        if broker.epoch != broker_epoch {
            return Err(MetadataError::InvalidRequest(format!(
                "broker {id} reported offline replicas from epoch {broker_epoch}, but it is at epoch {}",
                broker.epoch
            )));
        }
        let eligible = self.eligible_set();
        let mut changed = 0;
        for (topic, index) in partitions {
            let Some(t) = self.topics.get_mut(topic) else { continue };
            let unclean = unclean_allowed(&t.configs);
            let Some(p) = usize::try_from(*index).ok().and_then(|i| t.partitions.get_mut(i)) else { continue };
            if !p.replicas.contains(&id) || p.offline_replicas.contains(&id) {
                continue;
            }
            p.offline_replicas.push(id);
            if p.isr.len() > 1 {
                p.isr.retain(|r| *r != id);
            }
            if p.leader == id {
                p.leader = next_leader(p, &eligible, unclean, topic, *index);
                p.leader_epoch += 1;
            }
            p.partition_epoch += 1;
            changed += 1;
        }
        tracing::debug!(broker = id, changed, "offline replicas applied");
        Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
    }

    /// Marks `id` fenced, takes it out of every ISR and moves its leaderships to the next
    /// unfenced ISR member. Returns the number of partitions changed.
    fn fence_partitions(&mut self, id: i32) -> usize {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = true;
        }
        let eligible = self.eligible_set();
        let mut changed = 0;
        for (name, t) in self.topics.iter_mut() {
            let unclean = unclean_allowed(&t.configs);
            for (index, p) in t.partitions.iter_mut().enumerate() {
                if !p.isr.contains(&id) && p.leader != id {
                    continue;
                }
                // Like KRaft, the last ISR member stays in the ISR (leaderless) so it alone can be
                // re-elected when it comes back: anyone else could be missing committed records.
                if p.isr.len() > 1 {
                    p.isr.retain(|r| *r != id);
                }
                if p.leader == id {
                    p.leader = next_leader(p, &eligible, unclean, name, index as i32);
                    p.leader_epoch += 1;
                }
                p.partition_epoch += 1;
                changed += 1;
            }
        }
        changed
    }

    /// Gives leaderless partitions whose ISR holds `id` (now unfenced) their leader back.
    fn elect_leaderless(&mut self, id: i32) -> usize {
        let mut changed = 0;
        for (name, t) in self.topics.iter_mut() {
            let unclean = unclean_allowed(&t.configs);
            for (index, p) in t.partitions.iter_mut().enumerate() {
                if p.leader != NO_LEADER || !p.replicas.contains(&id) || p.offline_replicas.contains(&id) {
                    continue;
                }
                if !p.isr.contains(&id) {
                    if !unclean {
                        continue;
                    }
                    tracing::warn!(
                        topic = %name, partition = index, new_leader = id, isr = ?p.isr,
                        "UNCLEAN leader election: the in-sync replicas are gone, electing an out-of-sync \
                         one; acknowledged records may be lost"
                    );
                    p.isr = vec![id];
                }
                p.leader = id;
                p.leader_epoch += 1;
                p.partition_epoch += 1;
                changed += 1;
            }
        }
        changed
    }
}

/// Who leads after the current leader leaves: the first eligible in-sync replica whose log is
/// online; failing that, where the topic allows unclean elections, any such replica (the ISR then
/// becomes that one); else nobody.
pub(super) fn next_leader(
    p: &mut PartitionState,
    eligible: &BTreeSet<i32>,
    unclean: bool,
    topic: &str,
    index: i32,
) -> i32 {
    let usable = |r: &i32| eligible.contains(r) && !p.offline_replicas.contains(r);
    if let Some(next) = p.replicas.iter().copied().find(|r| p.isr.contains(r) && usable(r)) {
        return next;
    }
    if !unclean {
        return NO_LEADER;
    }
    match p.replicas.iter().copied().find(|r| usable(r)) {
        Some(any) => {
            tracing::warn!(
                topic, partition = index, new_leader = any, isr = ?p.isr,
                "UNCLEAN leader election: no in-sync replica is available, electing an \
                 out-of-sync one; acknowledged records may be lost"
            );
            p.isr = vec![any];
            any
        }
        None => NO_LEADER,
    }
}

/// `unclean.leader.election.enable` of a topic (off unless set to true).
pub(super) fn unclean_allowed(configs: &BTreeMap<String, String>) -> bool {
    configs.get("unclean.leader.election.enable").is_some_and(|v| v.trim() == "true")
}
