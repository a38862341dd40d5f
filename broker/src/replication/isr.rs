//! Leader-side replication state for one partition: follower fetch tracking, the high watermark,
//! ISR shrink/expand decisions and the in-flight AlterPartition change.
//!
//! Semantics follow Kafka's `Partition` / `Replica` (3.x, KRaft):
//! - A follower fetching offset X has everything below X, so its log end offset (LEO) becomes X.
//! - `lastCaughtUpTimeMs` follows `Replica.updateFetchState`: a fetch at or past the leader's
//!   current LEO marks the follower caught up *now*; a fetch at or past the leader's LEO as of the
//!   follower's *previous* fetch marks it caught up as of that previous fetch time.
//! - The high watermark is the minimum LEO over the "maximal ISR" (committed ISR plus any member a
//!   pending change adds; members a pending change removes still count) and never moves backwards.
//! - At most one ISR change is in flight; while it is, no other may be proposed.

use std::collections::BTreeMap;
use std::fmt;

/// Everything a leader needs to start tracking a partition (the inputs of Kafka's `makeLeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInit {
    /// Broker id of this (leader) replica.
    pub leader_id: i32,
    /// Leader epoch this leadership runs under.
    pub leader_epoch: i32,
    /// Partition epoch (bumped by the controller on every ISR/assignment change).
    pub partition_epoch: i32,
    /// All assigned replicas, the leader included.
    pub assigned_replicas: Vec<i32>,
    /// The committed in-sync replica set; must contain the leader.
    pub isr: Vec<i32>,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: usize,
    /// The broker's `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// The leader's log end offset now.
    pub log_end_offset: i64,
    /// First offset written in this leader epoch (the leader's LEO when it became leader).
    pub leader_epoch_start_offset: i64,
    /// High watermark to start from (e.g. the checkpointed one).
    pub high_watermark: i64,
    /// Current time, milliseconds.
    pub now_ms: i64,
}

/// What the leader knows about one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// Follower's log end offset; `None` until its first fetch under this leadership.
    pub log_end_offset: Option<i64>,
    /// Time of the follower's last fetch (0 = none yet).
    pub last_fetch_time_ms: i64,
    /// The leader's LEO at the time of the follower's last fetch (`None` = no fetch yet).
    pub last_fetch_leader_log_end_offset: Option<i64>,
    /// Kafka's `lastCaughtUpTimeMs`: the last time the follower was known to have the leader's LEO.
    pub last_caught_up_time_ms: i64,
    /// The log start offset the follower reported in its last fetch (it follows the leader's);
    /// `None` until it reports one under this leadership.
    pub log_start_offset: Option<i64>,
}

/// Result of processing one follower fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The high watermark moved forward because of this fetch (delayed fetches/produces may complete).
    pub high_watermark_advanced: bool,
    /// The high watermark after the fetch.
    pub high_watermark: i64,
    /// The follower is outside the (maximal) ISR and now meets Kafka's conditions to join it. A
    /// proposal still needs no other change to be in flight.
    pub eligible_to_join_isr: bool,
}

/// An AlterPartition request for the controller: the proposed ISR plus the epochs it was based on,
/// so the controller can fence a stale leader (`FENCED_LEADER_EPOCH`) or stale state
/// (`INVALID_UPDATE_VERSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChangeRequest {
    /// Leader epoch the proposal was made under.
    pub leader_epoch: i32,
    /// Partition epoch the proposal is based on.
    pub partition_epoch: i32,
    /// The proposed ISR, leader included.
    pub new_isr: Vec<i32>,
}

/// State of an acks=all produce waiting on replication (Kafka's `checkEnoughReplicasReachOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAllStatus {
    /// The high watermark reached the offset with enough in-sync replicas: acknowledge.
    Ok,
    /// The high watermark has not reached the offset yet: keep waiting (until the request timeout).
    Waiting,
    /// The data is committed, but the ISR is below `min.insync.replicas`: fail the produce with
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (the record is in the log; the producer may retry).
    NotEnoughReplicasAfterAppend,
}

/// The committed ISR is smaller than `min.insync.replicas`; an acks=all append must be refused
/// before it touches the log (Kafka's `NOT_ENOUGH_REPLICAS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotEnoughReplicas {
    /// Size of the committed ISR.
    pub isr_size: usize,
    /// The `min.insync.replicas` it was checked against.
    pub min_insync_replicas: usize,
}

impl fmt::Display for NotEnoughReplicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ISR size {} is below min.insync.replicas {}", self.isr_size, self.min_insync_replicas)
    }
}

impl std::error::Error for NotEnoughReplicas {}

/// Inputs the leader-side state refuses; the state is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationError {
    /// The id is not an assigned follower of this partition (or is the leader itself).
    UnknownReplica(i32),
    /// An ISR must contain the leader.
    LeaderNotInIsr,
    /// A replica id appears twice in an ISR or assignment.
    DuplicateReplica(i32),
    /// A fetch asked for an offset outside `[0, leader LEO]` (Kafka: `OFFSET_OUT_OF_RANGE`).
    OffsetOutOfRange {
        /// The requested offset.
        fetch_offset: i64,
        /// The leader's log end offset.
        log_end_offset: i64,
    },
    /// The leader's log end offset may not move backwards while it is leader.
    LogEndOffsetRegressed {
        /// Current leader LEO.
        current: i64,
        /// The smaller value that was passed.
        new: i64,
    },
    /// Another ISR change is already in flight.
    IsrChangeInFlight,
    /// No ISR change is in flight.
    NoIsrChangeInFlight,
    /// The proposed ISR equals the current one.
    IsrUnchanged,
    /// A replica proposed for the ISR has not caught up (LEO below HW or the leader epoch start).
    ReplicaNotCaughtUp(i32),
    /// The controller's partition epoch is not newer than ours.
    StalePartitionEpoch {
        /// Our partition epoch.
        current: i32,
        /// The epoch received.
        received: i32,
    },
    /// The new leader epoch is not newer than ours.
    StaleLeaderEpoch {
        /// Our leader epoch.
        current: i32,
        /// The epoch received.
        received: i32,
    },
    /// Inconsistent construction or epoch-change parameters.
    InvalidParameters(&'static str),
}

impl fmt::Display for ReplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownReplica(id) => write!(f, "replica {id} is not an assigned follower"),
            Self::LeaderNotInIsr => write!(f, "ISR does not contain the leader"),
            Self::DuplicateReplica(id) => write!(f, "replica {id} listed twice"),
            Self::OffsetOutOfRange { fetch_offset, log_end_offset } => {
                write!(f, "fetch offset {fetch_offset} out of range (log end offset {log_end_offset})")
            }
            Self::LogEndOffsetRegressed { current, new } => {
                write!(f, "leader log end offset would move back from {current} to {new}")
            }
            Self::IsrChangeInFlight => write!(f, "an ISR change is already in flight"),
            Self::NoIsrChangeInFlight => write!(f, "no ISR change is in flight"),
            Self::IsrUnchanged => write!(f, "proposed ISR equals the current ISR"),
            Self::ReplicaNotCaughtUp(id) => write!(f, "replica {id} has not caught up"),
            Self::StalePartitionEpoch { current, received } => {
                write!(f, "partition epoch {received} is not newer than {current}")
            }
            Self::StaleLeaderEpoch { current, received } => {
                write!(f, "leader epoch {received} is not newer than {current}")
            }
            Self::InvalidParameters(why) => write!(f, "invalid parameters: {why}"),
        }
    }
}

impl std::error::Error for ReplicationError {}

/// Replication state of one partition on its leader.
#[derive(Debug, Clone)]
pub struct PartitionReplicationState {
    leader_id: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    assigned_replicas: Vec<i32>,
    isr: Vec<i32>,
    pending: Option<IsrChangeRequest>,
    min_insync_replicas: usize,
    replica_lag_time_max_ms: i64,
    log_end_offset: i64,
    leader_epoch_start_offset: i64,
    high_watermark: i64,
    followers: BTreeMap<i32, FollowerState>,
}

impl PartitionReplicationState {
    /// Starts tracking a partition this broker just became leader of. Followers start with an
    /// unknown LEO (so the HW cannot advance past them until they fetch) and, as in Kafka's
    /// `resetReplicaState`, ISR members count as caught up now so they get a full lag window.
    pub fn new(init: LeaderInit) -> Result<Self, ReplicationError> {
        check_no_duplicates(&init.assigned_replicas)?;
        if !init.assigned_replicas.contains(&init.leader_id) {
            return Err(ReplicationError::InvalidParameters("leader is not an assigned replica"));
        }
        validate_isr(&init.isr, init.leader_id, &init.assigned_replicas)?;
        if init.log_end_offset < 0 || init.high_watermark < 0 || init.high_watermark > init.log_end_offset {
            return Err(ReplicationError::InvalidParameters("need 0 <= high watermark <= log end offset"));
        }
        if init.leader_epoch_start_offset < 0 || init.leader_epoch_start_offset > init.log_end_offset {
            return Err(ReplicationError::InvalidParameters("need 0 <= epoch start offset <= log end offset"));
        }
        if init.min_insync_replicas == 0 || init.replica_lag_time_max_ms < 0 {
            return Err(ReplicationError::InvalidParameters("min.insync.replicas >= 1, lag time >= 0"));
        }
        let followers = init
            .assigned_replicas
            .iter()
            .filter(|&&id| id != init.leader_id)
            .map(|&id| {
                let caught_up = if init.isr.contains(&id) { init.now_ms } else { 0 };
                let state = FollowerState {
                    log_end_offset: None,
                    last_fetch_time_ms: 0,
                    last_fetch_leader_log_end_offset: None,
                    last_caught_up_time_ms: caught_up,
                    log_start_offset: None,
                };
                (id, state)
            })
            .collect();
        Ok(Self {
            leader_id: init.leader_id,
            leader_epoch: init.leader_epoch,
            partition_epoch: init.partition_epoch,
            assigned_replicas: init.assigned_replicas,
            isr: init.isr,
            pending: None,
            min_insync_replicas: init.min_insync_replicas,
            replica_lag_time_max_ms: init.replica_lag_time_max_ms,
            log_end_offset: init.log_end_offset,
            leader_epoch_start_offset: init.leader_epoch_start_offset,
            high_watermark: init.high_watermark,
            followers,
        })
    }

    /// Broker id of the leader.
    pub fn leader_id(&self) -> i32 {
        self.leader_id
    }

    /// Current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Current partition epoch.
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// Assigned replicas, leader included.
    pub fn assigned_replicas(&self) -> &[i32] {
        &self.assigned_replicas
    }

    /// The committed ISR (what the controller last accepted).
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// The committed ISR plus members a pending change would add (removed members still count
    /// until the removal is committed). This is the set the high watermark waits for.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut out = self.isr.clone();
        if let Some(pending) = &self.pending {
            out.extend(pending.new_isr.iter().filter(|id| !self.isr.contains(id)));
        }
        out
    }

    /// The ISR change in flight, if any.
    pub fn pending_isr_change(&self) -> Option<&IsrChangeRequest> {
        self.pending.as_ref()
    }

    /// The topic's `min.insync.replicas` given at construction.
    pub fn min_insync_replicas(&self) -> usize {
        self.min_insync_replicas
    }

    /// Takes a changed `min.insync.replicas` (the topic's setting was altered).
    pub fn set_min_insync_replicas(&mut self, min_insync_replicas: usize) {
        self.min_insync_replicas = min_insync_replicas.max(1);
    }

    /// The leader's log end offset.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// First offset of the current leader epoch.
    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }

    /// The high watermark: everything below it is committed (replicated to the maximal ISR).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// What the leader knows about follower `replica_id`.
    pub fn follower(&self, replica_id: i32) -> Option<&FollowerState> {
        self.followers.get(&replica_id)
    }

    /// Records a local append that moved the leader's LEO. Returns whether the HW advanced, which
    /// only happens when the leader is the sole (maximal) ISR member, e.g. replication factor 1.
    pub fn on_leader_append(&mut self, new_log_end_offset: i64) -> Result<bool, ReplicationError> {
        if new_log_end_offset < self.log_end_offset {
            // A leader never truncates its own log; a smaller LEO means the caller is confused.
            return Err(ReplicationError::LogEndOffsetRegressed {
                current: self.log_end_offset,
                new: new_log_end_offset,
            });
        }
        self.log_end_offset = new_log_end_offset;
        Ok(self.maybe_advance_high_watermark())
    }

    /// Records a fetch from follower `replica_id` at `fetch_offset` (Kafka's
    /// `Partition.updateFollowerFetchState`), then recomputes the high watermark.
    pub fn on_follower_fetch(
        &mut self,
        replica_id: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<FetchOutcome, ReplicationError> {
        let leader_leo = self.log_end_offset;
        if fetch_offset < 0 || fetch_offset > leader_leo {
            // Kafka answers OFFSET_OUT_OF_RANGE and does not touch the follower's state.
            return Err(ReplicationError::OffsetOutOfRange { fetch_offset, log_end_offset: leader_leo });
        }
        let follower = self.followers.get_mut(&replica_id).ok_or(ReplicationError::UnknownReplica(replica_id))?;
        if fetch_offset >= leader_leo {
            follower.last_caught_up_time_ms = follower.last_caught_up_time_ms.max(now_ms);
        } else if follower.last_fetch_leader_log_end_offset.is_some_and(|prev| fetch_offset >= prev) {
            // It has everything the leader had when it sent its previous fetch, so it was caught
            // up as of that fetch. Crediting `now` instead would let a follower that is always a
            // bit behind under steady appends look permanently in sync regardless of its lag.
            follower.last_caught_up_time_ms = follower.last_caught_up_time_ms.max(follower.last_fetch_time_ms);
        }
        follower.last_fetch_leader_log_end_offset = Some(leader_leo);
        follower.last_fetch_time_ms = now_ms;
        // Set, not max: after a retry or truncation the follower really is at `fetch_offset`. The
        // HW is protected separately because it never moves backwards.
        follower.log_end_offset = Some(fetch_offset);
        let high_watermark_advanced = self.maybe_advance_high_watermark();
        Ok(FetchOutcome {
            high_watermark_advanced,
            high_watermark: self.high_watermark,
            eligible_to_join_isr: self.is_eligible_to_join_isr(replica_id),
        })
    }

    /// Records the log start offset follower `replica_id` reported in a fetch (negative: none);
    /// true when it changed.
    pub fn on_follower_log_start(&mut self, replica_id: i32, log_start_offset: i64) -> bool {
        let Some(follower) = self.followers.get_mut(&replica_id) else { return false };
        let reported = (log_start_offset >= 0).then_some(log_start_offset);
        std::mem::replace(&mut follower.log_start_offset, reported) != reported
    }

    /// Whether every member of the maximal ISR but the leader reported a log start of at least
    /// `offset`: then no replica that could lead holds records below it (what a DeleteRecords
    /// answer promises, as Kafka's low watermark over the replicas does).
    pub fn isr_log_start_reached(&self, offset: i64) -> bool {
        self.maximal_isr()
            .into_iter()
            .filter(|&id| id != self.leader_id)
            .all(|id| self.followers.get(&id).and_then(|f| f.log_start_offset).is_some_and(|start| start >= offset))
    }

    /// Kafka's `isFollowerInSync` check for ISR expansion: an assigned follower outside the
    /// maximal ISR whose LEO is at least the high watermark and at least the leader epoch start
    /// offset (so it has caught up with this leader's epoch, not only an older one).
    pub fn is_eligible_to_join_isr(&self, replica_id: i32) -> bool {
        if self.maximal_isr().contains(&replica_id) {
            return false;
        }
        match self.followers.get(&replica_id).and_then(|f| f.log_end_offset) {
            Some(leo) => leo >= self.high_watermark && leo >= self.leader_epoch_start_offset,
            None => false,
        }
    }

    /// Committed-ISR followers that are out of sync (Kafka's `getOutOfSyncReplicas`): not at the
    /// leader's LEO and not caught up for more than `replica.lag.time.max.ms`. Never the leader.
    pub fn isr_shrink_candidates(&self, now_ms: i64) -> Vec<i32> {
        self.isr
            .iter()
            .copied()
            .filter(|&id| id != self.leader_id)
            .filter(|id| match self.followers.get(id) {
                Some(f) => {
                    // A follower holding the full log is in sync even if nothing was appended
                    // (and so nothing "caught up") for a long time.
                    f.log_end_offset != Some(self.log_end_offset)
                        && now_ms.saturating_sub(f.last_caught_up_time_ms) > self.replica_lag_time_max_ms
                }
                None => false,
            })
            .collect()
    }

    /// Proposes a new ISR (shrink, expand or both) and marks it in flight until
    /// [`on_isr_change_committed`](Self::on_isr_change_committed) or
    /// [`on_isr_change_rejected`](Self::on_isr_change_rejected). Added members must be eligible
    /// to join: putting a replica without the committed data into the ISR could lose it on failover.
    pub fn propose_isr(&mut self, new_isr: Vec<i32>) -> Result<IsrChangeRequest, ReplicationError> {
        if self.pending.is_some() {
            return Err(ReplicationError::IsrChangeInFlight);
        }
        validate_isr(&new_isr, self.leader_id, &self.assigned_replicas)?;
        if new_isr.len() == self.isr.len() && new_isr.iter().all(|id| self.isr.contains(id)) {
            return Err(ReplicationError::IsrUnchanged);
        }
        if let Some(&id) = new_isr.iter().find(|id| !self.isr.contains(id) && !self.is_eligible_to_join_isr(**id)) {
            return Err(ReplicationError::ReplicaNotCaughtUp(id));
        }
        let request =
            IsrChangeRequest { leader_epoch: self.leader_epoch, partition_epoch: self.partition_epoch, new_isr };
        // The maximal ISR only grows here, so the HW cannot advance; no recompute needed.
        self.pending = Some(request.clone());
        Ok(request)
    }

    /// Applies an ISR the controller committed (normally the answer to our proposal, possibly
    /// altered by the controller; also usable for a controller-initiated change). Clears any
    /// pending change and returns whether the HW advanced, e.g. past a removed laggard.
    pub fn on_isr_change_committed(
        &mut self,
        new_isr: Vec<i32>,
        new_partition_epoch: i32,
    ) -> Result<bool, ReplicationError> {
        if new_partition_epoch <= self.partition_epoch {
            // A stale response (e.g. a retry answered twice) must not roll the ISR back.
            return Err(ReplicationError::StalePartitionEpoch {
                current: self.partition_epoch,
                received: new_partition_epoch,
            });
        }
        validate_isr(&new_isr, self.leader_id, &self.assigned_replicas)?;
        self.isr = new_isr;
        self.partition_epoch = new_partition_epoch;
        self.pending = None;
        Ok(self.maybe_advance_high_watermark())
    }

    /// The controller refused the in-flight change (or it failed): forget it, keeping the
    /// committed ISR and epochs. Returns whether the HW advanced (a rejected addition no longer
    /// holds it back).
    pub fn on_isr_change_rejected(&mut self) -> Result<bool, ReplicationError> {
        if self.pending.take().is_none() {
            return Err(ReplicationError::NoIsrChangeInFlight);
        }
        Ok(self.maybe_advance_high_watermark())
    }

    /// Append-time check for acks=all (Kafka's `appendRecordsToLeader`): refuse when the committed
    /// ISR is smaller than `min.insync.replicas`.
    pub fn check_min_isr(&self) -> Result<(), NotEnoughReplicas> {
        if self.isr.len() < self.min_insync_replicas {
            return Err(NotEnoughReplicas { isr_size: self.isr.len(), min_insync_replicas: self.min_insync_replicas });
        }
        Ok(())
    }

    /// Whether an acks=all produce whose last offset is `required_offset - 1` can be answered
    /// (Kafka's `checkEnoughReplicasReachOffset`; `required_offset` is the LEO right after the
    /// append). Like Kafka, the ISR size is that of the maximal ISR: a replica whose addition is
    /// pending already holds the HW back, so the committed data is on it and it counts.
    pub fn can_ack_all(&self, required_offset: i64, min_insync_replicas: usize) -> AckAllStatus {
        if self.high_watermark < required_offset {
            AckAllStatus::Waiting
        } else if self.maximal_isr().len() < min_insync_replicas {
            AckAllStatus::NotEnoughReplicasAfterAppend
        } else {
            AckAllStatus::Ok
        }
    }

    /// This broker stays leader under a newer leader epoch (Kafka's `makeLeader` when already
    /// leader). Follower tracking is reset as in `Replica.resetReplicaState` for a re-elected
    /// leader: LEOs are kept, ISR members get a fresh lag window, others count as never caught
    /// up. The in-flight change is dropped: it carries the old leader epoch, so the controller
    /// would fence it anyway. Returns whether the HW advanced.
    pub fn on_leader_epoch_change(
        &mut self,
        new_leader_epoch: i32,
        epoch_start_offset: i64,
        now_ms: i64,
    ) -> Result<bool, ReplicationError> {
        if new_leader_epoch <= self.leader_epoch {
            return Err(ReplicationError::StaleLeaderEpoch { current: self.leader_epoch, received: new_leader_epoch });
        }
        if epoch_start_offset < 0 || epoch_start_offset > self.log_end_offset {
            return Err(ReplicationError::InvalidParameters("need 0 <= epoch start offset <= log end offset"));
        }
        self.leader_epoch = new_leader_epoch;
        self.leader_epoch_start_offset = epoch_start_offset;
        self.pending = None;
        for (id, follower) in &mut self.followers {
            let in_sync = self.isr.contains(id);
            follower.last_fetch_leader_log_end_offset = Some(self.log_end_offset);
            // Non-members get 0 so they are not counted as recently fetching before they do.
            follower.last_fetch_time_ms = if in_sync { now_ms } else { 0 };
            follower.last_caught_up_time_ms = if in_sync { now_ms } else { 0 };
        }
        Ok(self.maybe_advance_high_watermark())
    }

    /// Raises the HW to the minimum LEO over the maximal ISR if that is higher. A member that has
    /// not fetched yet (unknown LEO) blocks any advance.
    fn maybe_advance_high_watermark(&mut self) -> bool {
        let mut candidate = self.log_end_offset;
        for id in self.maximal_isr() {
            if id == self.leader_id {
                continue;
            }
            match self.followers.get(&id).and_then(|f| f.log_end_offset) {
                Some(leo) => candidate = candidate.min(leo),
                None => return false,
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            true
        } else {
            false
        }
    }
}

/// An ISR must be non-empty (it contains the leader), free of duplicates and a subset of the
/// assigned replicas.
fn validate_isr(isr: &[i32], leader_id: i32, assigned: &[i32]) -> Result<(), ReplicationError> {
    check_no_duplicates(isr)?;
    if !isr.contains(&leader_id) {
        return Err(ReplicationError::LeaderNotInIsr);
    }
    match isr.iter().find(|id| !assigned.contains(id)) {
        Some(&id) => Err(ReplicationError::UnknownReplica(id)),
        None => Ok(()),
    }
}

/// Rejects a replica list that names a broker twice.
fn check_no_duplicates(ids: &[i32]) -> Result<(), ReplicationError> {
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(ReplicationError::DuplicateReplica(*id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
