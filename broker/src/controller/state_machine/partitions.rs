//! Partition commands: ISR changes from the leader, leader elections and replica reassignments,
//! with the switch to the target replica set once a reassignment has caught up.

use super::{check_distinct, MetadataError, MetadataResponse, MetadataState, PartitionState, NO_LEADER};

impl MetadataState {
    /// ChangeIsr: the leader, at the current leader and partition epochs, sets a new ISR of
    /// unfenced replicas that includes itself.
    pub(super) fn change_isr(
        &mut self,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[i32],
    ) -> Result<MetadataResponse, MetadataError> {
        let eligible = self.eligible_set();
        let p = self.partition_mut(topic, partition)?;
        if leader_epoch != p.leader_epoch {
            return Err(MetadataError::LeaderEpochMismatch { current: p.leader_epoch, got: leader_epoch });
        }
        if partition_epoch != p.partition_epoch {
            return Err(MetadataError::InvalidUpdateVersion { current: p.partition_epoch, got: partition_epoch });
        }
        if p.leader == NO_LEADER || !isr.contains(&p.leader) {
            return Err(MetadataError::IneligibleReplica(format!("ISR {isr:?} must contain leader {}", p.leader)));
        }
        check_distinct(isr)?;
        if let Some(bad) = isr.iter().find(|r| !p.replicas.contains(r) || !eligible.contains(r)) {
            return Err(MetadataError::IneligibleReplica(format!("broker {bad} is not an unfenced replica")));
        }
        // Its leader may have judged it caught up before its log directory failed.
        if let Some(bad) = isr.iter().find(|r| p.offline_replicas.contains(r) && !p.isr.contains(r)) {
            return Err(MetadataError::IneligibleReplica(format!(
                "broker {bad}'s replica is offline (failed log directory)"
            )));
        }
        p.isr = isr.to_vec();
        p.partition_epoch += 1;
        complete_reassignment_if_caught_up(topic, partition, p);
        Ok(MetadataResponse::Partition(p.clone()))
    }

    /// ElectLeader: moves leadership to an unfenced ISR member, at the observed leader epoch.
    pub(super) fn elect_leader(
        &mut self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
    ) -> Result<MetadataResponse, MetadataError> {
        let eligible = self.eligible_set();
        let p = self.partition_mut(topic, partition)?;
        if leader_epoch != p.leader_epoch {
            return Err(MetadataError::LeaderEpochMismatch { current: p.leader_epoch, got: leader_epoch });
        }
        if p.leader == leader {
            return Err(MetadataError::ElectionNotNeeded(leader));
        }
        // Unclean election is off: only an unfenced ISR member may lead.
        if !p.isr.contains(&leader) || !eligible.contains(&leader) {
            return Err(MetadataError::IneligibleReplica(format!("broker {leader} is not an unfenced ISR member")));
        }
        if p.offline_replicas.contains(&leader) {
            return Err(MetadataError::IneligibleReplica(format!(
                "broker {leader}'s replica is offline (failed log directory)"
            )));
        }
        p.leader = leader;
        p.leader_epoch += 1;
        p.partition_epoch += 1;
        Ok(MetadataResponse::Partition(p.clone()))
    }

    /// ElectUncleanLeader: a leader for a leaderless partition, clean if possible.
    pub(super) fn elect_unclean_leader(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<MetadataResponse, MetadataError> {
        let eligible = self.eligible_set();
        let p = self.partition_mut(topic, partition)?;
        if p.leader != NO_LEADER {
            return Err(MetadataError::ElectionNotNeeded(p.leader));
        }
        let leader = super::brokers::next_leader(p, &eligible, true, topic, partition);
        if leader == NO_LEADER {
            return Err(MetadataError::NoEligibleLeader { topic: topic.to_string(), partition });
        }
        p.leader = leader;
        p.leader_epoch += 1;
        p.partition_epoch += 1;
        Ok(MetadataResponse::Partition(p.clone()))
    }

    /// AlterReassignment: starts moving the partition to `target`, or cancels (None) the move.
    pub(super) fn alter_reassignment(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Result<MetadataResponse, MetadataError> {
        let target = match target {
            Some(t) => {
                if t.is_empty() {
                    return Err(MetadataError::InvalidRequest("a partition needs at least one replica".into()));
                }
                check_distinct(t)?;
                for r in t {
                    self.broker(*r)?;
                }
                Some(t.to_vec())
            }
            None => None,
        };
        let p = self.partition_mut(topic, partition)?;
        let original: Vec<i32> = p.replicas.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
        match target {
            None => {
                if !p.reassigning() {
                    return Err(MetadataError::NoReassignmentInProgress { topic: topic.to_string(), partition });
                }
                let reverted = original;
                switch_replicas(p, reverted);
            }
            Some(target) => {
                let adding: Vec<i32> = target.iter().copied().filter(|r| !original.contains(r)).collect();
                let removing: Vec<i32> = original.iter().copied().filter(|r| !target.contains(r)).collect();
                // The replica list holds both sets while data moves: target first, so
                // the preferred leader is the target's.
                let mut replicas = target.clone();
                replicas.extend(removing.iter().copied());
                p.replicas = replicas;
                p.adding_replicas = adding;
                p.removing_replicas = removing;
                p.isr.retain(|r| p.replicas.contains(r));
                p.partition_epoch += 1;
                complete_reassignment_if_caught_up(topic, partition, p);
            }
        }
        Ok(MetadataResponse::Partition(p.clone()))
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Result<&mut PartitionState, MetadataError> {
        let t = self.topics.get_mut(topic).ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get_mut(i))
            .ok_or_else(|| MetadataError::UnknownPartition { topic: topic.to_string(), partition })
    }
}

/// Finishes a reassignment once every added replica is in the ISR: the partition moves to its
/// target replica set, removed replicas leave the ISR, and leadership moves if the leader was
/// removed.
fn complete_reassignment_if_caught_up(topic: &str, partition: i32, p: &mut PartitionState) {
    if !p.reassigning() || !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
        return;
    }
    let target = p.target_replicas();
    // Never finish into a state without an in-sync replica to lead.
    if !target.iter().any(|r| p.isr.contains(r)) {
        return;
    }
    tracing::info!(topic, partition, replicas = ?target, "reassignment complete");
    switch_replicas(p, target);
}

/// Makes `replicas` the partition's replica set, ending any reassignment: the ISR keeps only
/// members of the new set, and a leader outside it hands over to the first in-sync member.
fn switch_replicas(p: &mut PartitionState, replicas: Vec<i32>) {
    p.isr.retain(|r| replicas.contains(r));
    if !replicas.contains(&p.leader) {
        p.leader = replicas.iter().copied().find(|r| p.isr.contains(r)).unwrap_or(NO_LEADER);
        p.leader_epoch += 1;
    }
    p.replicas = replicas;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    p.partition_epoch += 1;
}
