//! A partition replica's role — leader or follower, as the controller decided — and what each
//! role may do: the leader appends producer batches, serves follower fetches, moves the high
//! watermark and proposes ISR changes; a follower appends the leader's batches verbatim and
//! truncates a divergent tail.

use super::Partition;
use crate::log::batch::split_batches;
use crate::log::{AppendInfo, LogError};
use crate::replication::{
    AckAllStatus, IsrChangeRequest, LeaderInit, NotEnoughReplicas, PartitionReplicationState, ReplicationError,
};
use kafka_protocol::error::ResponseError;
use std::collections::BTreeSet;
use std::sync::MutexGuard;

/// What this broker is for the partition.
pub enum Role {
    /// Not assigned a role yet, or the partition has no leader.
    None,
    /// The leader, with its replication bookkeeping.
    Leader(Box<PartitionReplicationState>),
    /// A follower of `leader` in `leader_epoch`.
    Follower {
        /// Leader broker id (-1 while leaderless).
        leader: i32,
        /// Leader epoch.
        leader_epoch: i32,
    },
}

/// Why a replica operation was refused; each maps to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// NOT_LEADER_OR_FOLLOWER: the client must refresh its metadata.
    #[error("broker is not the leader of {0}")]
    NotLeader(String),
    /// NOT_ENOUGH_REPLICAS: acks=all refused before the append.
    #[error("{partition}: {cause}")]
    NotEnoughReplicas {
        /// Partition name.
        partition: String,
        /// Sizes.
        cause: NotEnoughReplicas,
    },
    /// FENCED_LEADER_EPOCH: the requester's epoch is older than ours.
    #[error("leader epoch {got} is older than the current {current}")]
    FencedLeaderEpoch {
        /// Ours.
        current: i32,
        /// The requester's.
        got: i32,
    },
    /// UNKNOWN_LEADER_EPOCH: the requester knows a newer epoch than we do.
    #[error("leader epoch {got} is newer than the current {current}")]
    UnknownLeaderEpoch {
        /// Ours.
        current: i32,
        /// The requester's.
        got: i32,
    },
    /// A fetch from a broker that is not an assigned follower.
    #[error("broker {0} is not a replica of this partition")]
    UnknownReplica(i32),
    /// Storage failed or refused.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The replication bookkeeping refused an update (a bug or inconsistent metadata).
    #[error("replication state of {partition}: {reason}")]
    Internal {
        /// Partition name.
        partition: String,
        /// What was refused.
        reason: String,
    },
}

impl ReplicaError {
    /// The Kafka error code for this error.
    pub fn error_code(&self) -> ResponseError {
        match self {
            ReplicaError::NotLeader(_) => ResponseError::NotLeaderOrFollower,
            ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            ReplicaError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            ReplicaError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            ReplicaError::UnknownReplica(_) => ResponseError::NotLeaderOrFollower,
            ReplicaError::Log(e) => e.error_code(),
            ReplicaError::Internal { .. } => ResponseError::UnknownServerError,
        }
    }
}

/// State of an acks=all produce waiting for replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckWait {
    /// Replicated to the ISR: acknowledge.
    Done,
    /// Not yet.
    Waiting,
    /// Replicated, but the ISR shrank below `min.insync.replicas` (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    NotEnoughReplicasAfterAppend,
    /// Leadership moved away meanwhile: the outcome is unknown to us (NOT_LEADER_OR_FOLLOWER).
    NotLeader,
}

/// The leader's answer to a follower fetch, before reading data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerFetch {
    /// Read from the fetch offset; the HW to report.
    Read {
        /// Leader high watermark after this fetch.
        high_watermark: i64,
    },
    /// The follower's log diverges from ours: it must truncate to `end_offset` of `epoch`.
    Diverging {
        /// Largest epoch we have at or below the follower's last fetched epoch.
        epoch: i32,
        /// Where that epoch ends in our log.
        end_offset: i64,
    },
}

impl Partition {
    fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_high_watermark(&self, high_watermark: i64) {
        self.high_watermark.send_if_modified(|current| {
            let changed = *current != high_watermark;
            *current = high_watermark;
            changed
        });
    }

    /// Sets the high watermark from a checkpoint at start-up (capped at the log end).
    pub fn restore_high_watermark(&self, high_watermark: i64) {
        self.publish_high_watermark(high_watermark.clamp(0, self.log_end_offset()));
    }

    /// The current high watermark.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// (role, leader epoch) for display: "leader", "follower" or "none".
    pub fn role_summary(&self) -> (&'static str, i32) {
        match &*self.role() {
            Role::None => ("none", -1),
            Role::Leader(state) => ("leader", state.leader_epoch()),
            Role::Follower { leader_epoch, .. } => ("follower", *leader_epoch),
        }
    }

    /// The leader epoch if this replica leads.
    pub fn leader_epoch_if_leader(&self) -> Option<i32> {
        match &*self.role() {
            Role::Leader(state) => Some(state.leader_epoch()),
            _ => None,
        }
    }

    /// Becomes (or stays) leader as the controller says: `replicas`, `isr`, epochs.
    #[allow(clippy::too_many_arguments)]
    pub fn become_leader(
        &self,
        me: i32,
        replicas: &[i32],
        isr: &[i32],
        leader_epoch: i32,
        partition_epoch: i32,
        min_insync_replicas: usize,
        replica_lag_time_max_ms: i64,
        now_ms: i64,
    ) -> Result<(), ReplicaError> {
        let mut role = self.role();
        if let Role::Leader(state) = &mut *role {
            if state.leader_epoch() == leader_epoch && state.assigned_replicas() == replicas {
                // A metadata update may carry an altered topic setting.
                state.set_min_insync_replicas(min_insync_replicas);
                if partition_epoch > state.partition_epoch() {
                    match state.on_isr_change_committed(isr.to_vec(), partition_epoch) {
                        Ok(_) => self.publish_high_watermark(state.high_watermark()),
                        Err(e) => tracing::warn!(partition = %self.name(), error = %e, "ignoring ISR update"),
                    }
                }
                return Ok(());
            }
        }
        self.check_online()?;
        let log_end_offset = {
            let mut log = self.lock();
            self.storage(log.assign_leader_epoch(leader_epoch))?;
            log.log_end_offset()
        };
        let high_watermark = self.high_watermark().min(log_end_offset);
        let init = LeaderInit {
            leader_id: me,
            leader_epoch,
            partition_epoch,
            assigned_replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            min_insync_replicas: min_insync_replicas.max(1),
            replica_lag_time_max_ms,
            log_end_offset,
            leader_epoch_start_offset: log_end_offset,
            high_watermark,
            now_ms,
        };
        let mut state = PartitionReplicationState::new(init).map_err(|e| invalid_state(self, e))?;
        // A sole in-sync replica commits everything it has at once.
        let _ = state.on_leader_append(log_end_offset);
        self.publish_high_watermark(state.high_watermark());
        tracing::info!(partition = %self.name(), leader_epoch, log_end_offset, high_watermark = state.high_watermark(), ?isr, "became leader");
        *role = Role::Leader(Box::new(state));
        Ok(())
    }

    /// Becomes a follower of `leader` (or leaderless with -1) in `leader_epoch`.
    pub fn become_follower(&self, leader: i32, leader_epoch: i32) {
        let mut role = self.role();
        if let Role::Follower { leader: l, leader_epoch: e } = &*role {
            if *l == leader && *e == leader_epoch {
                return;
            }
        }
        tracing::info!(partition = %self.name(), leader, leader_epoch, "became follower");
        *role = Role::Follower { leader, leader_epoch };
    }

    /// Appends a producer batch as leader. With `acks_all`, refuses when the ISR is below
    /// `min.insync.replicas` (Kafka's NOT_ENOUGH_REPLICAS check before the append).
    pub fn append_as_leader(&self, batch: &mut [u8], now_ms: i64, acks_all: bool) -> Result<AppendInfo, ReplicaError> {
        self.check_online()?;
        let mut role = self.role();
        let Role::Leader(state) = &mut *role else { return Err(ReplicaError::NotLeader(self.name())) };
        if acks_all {
            state.check_min_isr().map_err(|cause| ReplicaError::NotEnoughReplicas { partition: self.name(), cause })?;
        }
        let info = self.storage(self.lock().append(batch, state.leader_epoch(), now_ms))?;
        if !info.duplicate {
            let end = info.last_offset + 1;
            self.end_offset.send_replace(end);
            if state.on_leader_append(end).map_err(|e| invalid_state(self, e))? {
                self.publish_high_watermark(state.high_watermark());
            }
        }
        Ok(info)
    }

    /// Waits up to `timeout` until every in-sync follower reported a log start of at least
    /// `offset` (they take the leader's on their next fetch). False on a timeout or when this
    /// broker no longer leads.
    pub async fn wait_isr_log_start(&self, offset: i64, timeout: std::time::Duration) -> bool {
        let answer = recheck_until(self.follower_log_starts.subscribe(), timeout, || match &*self.role() {
            Role::Leader(state) if state.isr_log_start_reached(offset) => Some(true),
            Role::Leader(_) => None,
            _ => Some(false),
        });
        answer.await.unwrap_or(false)
    }

    /// Whether an acks=all write ending below `required_offset` may be acknowledged.
    pub fn ack_status(&self, required_offset: i64, min_insync_replicas: usize) -> AckWait {
        match &*self.role() {
            Role::Leader(state) => match state.can_ack_all(required_offset, min_insync_replicas.max(1)) {
                AckAllStatus::Ok => AckWait::Done,
                AckAllStatus::Waiting => AckWait::Waiting,
                AckAllStatus::NotEnoughReplicasAfterAppend => AckWait::NotEnoughReplicasAfterAppend,
            },
            _ => AckWait::NotLeader,
        }
    }

    /// Waits until the write ending below `required_offset` is on the ISR (high watermark past
    /// it), for up to `timeout`; `Waiting` means it timed out.
    pub async fn wait_for_ack(
        &self,
        required_offset: i64,
        min_insync_replicas: usize,
        timeout: std::time::Duration,
    ) -> AckWait {
        let answer = recheck_until(self.subscribe_high_watermark(), timeout, || {
            match self.ack_status(required_offset, min_insync_replicas) {
                AckWait::Waiting => None,
                other => Some(other),
            }
        });
        answer.await.unwrap_or(AckWait::Waiting)
    }

    /// Leader side of a follower fetch: checks the epochs, detects a divergent follower log, and
    /// records the follower's position (which may advance the high watermark) and log start.
    pub fn on_follower_fetch(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        current_leader_epoch: i32,
        last_fetched_epoch: i32,
        now_ms: i64,
        log_start_offset: i64,
    ) -> Result<FollowerFetch, ReplicaError> {
        let mut role = self.role();
        let Role::Leader(state) = &mut *role else { return Err(ReplicaError::NotLeader(self.name())) };
        let current = state.leader_epoch();
        if current_leader_epoch >= 0 && current_leader_epoch < current {
            return Err(ReplicaError::FencedLeaderEpoch { current, got: current_leader_epoch });
        }
        if current_leader_epoch > current {
            return Err(ReplicaError::UnknownLeaderEpoch { current, got: current_leader_epoch });
        }
        if last_fetched_epoch >= 0 {
            // Kafka's diverging-epoch check (KIP-595 / KIP-320): the follower's last epoch must end
            // at or after its fetch offset in our log too.
            if let Some((epoch, end_offset)) = self.end_offset_for_epoch(last_fetched_epoch) {
                if epoch < last_fetched_epoch || end_offset < fetch_offset {
                    return Ok(FollowerFetch::Diverging { epoch, end_offset });
                }
            }
        }
        match state.on_follower_fetch(replica_id, fetch_offset, now_ms) {
            Ok(outcome) => {
                if outcome.high_watermark_advanced {
                    self.publish_high_watermark(outcome.high_watermark);
                }
                if state.on_follower_log_start(replica_id, log_start_offset) {
                    self.follower_log_starts.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(FollowerFetch::Read { high_watermark: state.high_watermark() })
            }
            Err(ReplicationError::OffsetOutOfRange { fetch_offset, log_end_offset }) => {
                Err(ReplicaError::Log(LogError::OffsetOutOfRange {
                    requested: fetch_offset,
                    start: self.offsets().0,
                    end: log_end_offset,
                }))
            }
            Err(ReplicationError::UnknownReplica(id)) => Err(ReplicaError::UnknownReplica(id)),
            Err(e) => Err(invalid_state(self, e)),
        }
    }

    /// The ISR change this leader wants now, if any (shrink laggards, add caught-up followers
    /// that are `eligible` brokers), marked in flight until the controller answers.
    pub fn propose_isr_change(&self, now_ms: i64, eligible: &BTreeSet<i32>) -> Option<IsrChangeRequest> {
        let mut role = self.role();
        let Role::Leader(state) = &mut *role else { return None };
        if state.pending_isr_change().is_some() {
            return None;
        }
        let shrink = state.isr_shrink_candidates(now_ms);
        let mut new_isr: Vec<i32> = state.isr().iter().copied().filter(|r| !shrink.contains(r)).collect();
        for &replica in state.assigned_replicas() {
            if !new_isr.contains(&replica) && eligible.contains(&replica) && state.is_eligible_to_join_isr(replica) {
                new_isr.push(replica);
            }
        }
        if new_isr.len() == state.isr().len() && new_isr.iter().all(|r| state.isr().contains(r)) {
            return None;
        }
        match state.propose_isr(new_isr) {
            Ok(request) => {
                tracing::info!(partition = %self.name(), from = ?state.isr(), to = ?request.new_isr, shrink = ?shrink, "proposing ISR change");
                Some(request)
            }
            Err(e) => {
                tracing::debug!(partition = %self.name(), error = %e, "no ISR change");
                None
            }
        }
    }

    /// The controller refused (or never answered) the in-flight ISR change.
    pub fn isr_change_failed(&self) {
        if let Role::Leader(state) = &mut *self.role() {
            if let Ok(true) = state.on_isr_change_rejected() {
                self.publish_high_watermark(state.high_watermark());
            }
        }
    }

    /// Where a follower fetches next: (log end offset, epoch of its last batch or -1).
    pub fn follower_position(&self) -> (i64, i32) {
        let log = self.read_lock();
        (log.log_end_offset(), log.leader_epoch_cache().latest_epoch().unwrap_or(-1))
    }

    /// Follower side: appends the leader's batches verbatim (skipping any it already has) and
    /// takes the leader's high watermark, capped at its own log end. Returns the new log end.
    pub fn append_replicated(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        now_ms: i64,
    ) -> Result<i64, ReplicaError> {
        self.check_online()?;
        let role = self.role();
        if !matches!(&*role, Role::Follower { .. }) {
            // Not a follower (any more): refuse with the same code Kafka uses for a role mismatch.
            return Err(ReplicaError::NotLeader(self.name()));
        }
        let ranges = split_batches(records).map_err(|e| ReplicaError::Log(e.into()))?;
        let mut appended = 0;
        let end = {
            let mut log = self.lock();
            for range in ranges {
                let batch = &records[range];
                let header = crate::log::batch::BatchHeader::parse(batch).map_err(|e| ReplicaError::Log(e.into()))?;
                if header.last_offset() < log.log_end_offset() {
                    continue;
                }
                self.storage(log.append_replicated(batch, now_ms))?;
                appended += batch.len() as u64;
            }
            log.log_end_offset()
        };
        self.end_offset.send_replace(end);
        self.start_writeback_if_due(appended);
        self.publish_high_watermark(leader_high_watermark.min(end));
        Ok(end)
    }

    /// Follower side: cuts the log back to `offset` (divergent tail after a leader change).
    pub fn truncate_to(&self, offset: i64) -> Result<i64, ReplicaError> {
        self.check_online()?;
        let _role = self.role();
        let end = {
            let mut log = self.lock();
            self.storage(log.truncate_to(offset))?;
            log.log_end_offset()
        };
        self.end_offset.send_replace(end);
        self.flushed_offset.send_modify(|f| *f = (*f).min(end));
        self.publish_high_watermark(self.high_watermark().min(end));
        Ok(end)
    }

    /// Follower side: restarts the log empty at `offset` (ours lies outside the leader's).
    pub fn reset_to(&self, offset: i64) -> Result<(), ReplicaError> {
        self.check_online()?;
        let _role = self.role();
        self.storage(self.lock().reset_to(offset))?;
        self.end_offset.send_replace(offset);
        self.flushed_offset.send_replace(offset);
        self.publish_high_watermark(offset);
        Ok(())
    }
}

/// Calls `check` now, whenever `changes` moves, and at least every 100 ms (a lost leadership or
/// an ISR shrink moves no watch), until it answers; None once `timeout` passed without one.
async fn recheck_until<W, T>(
    mut changes: tokio::sync::watch::Receiver<W>,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        changes.borrow_and_update();
        if let Some(answer) = check() {
            return Some(answer);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        let nap = (deadline - now).min(std::time::Duration::from_millis(100));
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

fn invalid_state(partition: &Partition, e: ReplicationError) -> ReplicaError {
    tracing::error!(partition = %partition.name(), error = %e, "replication state rejected an update");
    ReplicaError::Internal { partition: partition.name(), reason: e.to_string() }
}

#[cfg(test)]
mod tests;
