//! Tests for the leader-side replication state, one Kafka rule per test.
#![allow(clippy::unwrap_used)]

use super::*;

const LAG_MS: i64 = 10_000;

/// Leader 1 with followers 2 and 3, all in the ISR, LEO 100, HW 100, epoch 5 started at 100.
fn three_replicas(now_ms: i64) -> PartitionReplicationState {
    with_isr(vec![1, 2, 3], now_ms)
}

fn with_isr(isr: Vec<i32>, now_ms: i64) -> PartitionReplicationState {
    PartitionReplicationState::new(LeaderInit {
        leader_id: 1,
        leader_epoch: 5,
        partition_epoch: 7,
        assigned_replicas: vec![1, 2, 3],
        isr,
        min_insync_replicas: 2,
        replica_lag_time_max_ms: LAG_MS,
        log_end_offset: 100,
        leader_epoch_start_offset: 100,
        high_watermark: 100,
        now_ms,
    })
    .unwrap()
}

#[test]
fn high_watermark_is_min_leo_over_isr_as_followers_fetch() {
    let mut s = three_replicas(0);
    s.on_leader_append(150).unwrap();
    assert_eq!(s.high_watermark(), 100, "leader append alone must not commit with followers in ISR");

    let out = s.on_follower_fetch(2, 140, 1).unwrap();
    assert!(!out.high_watermark_advanced, "follower 3 has not fetched: its LEO is unknown");
    assert_eq!(s.high_watermark(), 100);

    let out = s.on_follower_fetch(3, 120, 2).unwrap();
    assert!(out.high_watermark_advanced);
    assert_eq!(s.high_watermark(), 120);

    s.on_follower_fetch(3, 150, 3).unwrap();
    assert_eq!(s.high_watermark(), 140, "now bounded by follower 2");
    s.on_follower_fetch(2, 150, 4).unwrap();
    assert_eq!(s.high_watermark(), 150, "bounded by the leader's own LEO");
}

#[test]
fn high_watermark_never_decreases_when_a_follower_refetches_an_older_offset() {
    let mut s = three_replicas(0);
    s.on_leader_append(150).unwrap();
    s.on_follower_fetch(2, 150, 1).unwrap();
    s.on_follower_fetch(3, 150, 1).unwrap();
    assert_eq!(s.high_watermark(), 150);

    // A retried (older) fetch lowers the follower's LEO but not the HW.
    let out = s.on_follower_fetch(3, 130, 2).unwrap();
    assert_eq!(s.follower(3).unwrap().log_end_offset, Some(130));
    assert!(!out.high_watermark_advanced);
    assert_eq!(s.high_watermark(), 150);

    // And the HW stays put until that follower is back past it.
    s.on_leader_append(160).unwrap();
    s.on_follower_fetch(2, 160, 3).unwrap();
    assert_eq!(s.high_watermark(), 150);
    s.on_follower_fetch(3, 155, 4).unwrap();
    assert_eq!(s.high_watermark(), 155);
}

#[test]
fn lagging_follower_becomes_shrink_candidate_only_after_lag_time() {
    let mut s = three_replicas(0);
    s.on_follower_fetch(2, 100, 0).unwrap();
    s.on_follower_fetch(3, 100, 0).unwrap();
    s.on_leader_append(200).unwrap();

    // Follower 2 keeps fetching but stays stuck at 100: never reaches the LEO it saw before.
    for t in (1_000..=LAG_MS).step_by(1_000) {
        s.on_follower_fetch(2, 100, t).unwrap();
        s.on_follower_fetch(3, 200, t).unwrap();
    }
    assert!(s.isr_shrink_candidates(LAG_MS).is_empty(), "exactly at the limit is still in sync");
    assert_eq!(s.isr_shrink_candidates(LAG_MS + 1), vec![2]);
}

#[test]
fn follower_fetching_at_leo_under_continuous_appends_is_never_a_shrink_candidate() {
    let mut s = three_replicas(0);
    let mut leo = 100;
    // Every 500 ms the leader appends just before each fetch, so the followers never hold the
    // current LEO at fetch time, but each fetch covers the LEO the leader had at the previous one.
    for step in 1..=100 {
        let now = step * 500;
        let fetch_offset = leo;
        leo += 10;
        s.on_leader_append(leo).unwrap();
        s.on_follower_fetch(2, fetch_offset, now).unwrap();
        s.on_follower_fetch(3, fetch_offset, now).unwrap();
        assert!(s.isr_shrink_candidates(now).is_empty(), "step {step}");
    }
    // Credited with the previous fetch time (Kafka's rule), not the current one.
    assert_eq!(s.follower(2).unwrap().last_caught_up_time_ms, 50_000 - 500);
    // Once the fetches stop, the lag window runs from that credited time.
    assert!(s.isr_shrink_candidates(49_500 + LAG_MS).is_empty());
    assert_eq!(s.isr_shrink_candidates(49_500 + LAG_MS + 1), vec![2, 3]);
}

#[test]
fn follower_at_leader_leo_is_in_sync_without_appends_or_fetches() {
    let mut s = three_replicas(0);
    s.on_follower_fetch(2, 100, 0).unwrap();
    s.on_follower_fetch(3, 90, 0).unwrap();
    assert_eq!(s.isr_shrink_candidates(10 * LAG_MS), vec![3]);
}

#[test]
fn follower_outside_isr_becomes_eligible_after_reaching_hw_and_epoch_start() {
    let mut s = PartitionReplicationState::new(LeaderInit {
        leader_id: 1,
        leader_epoch: 5,
        partition_epoch: 7,
        assigned_replicas: vec![1, 2, 3],
        isr: vec![1, 2],
        min_insync_replicas: 2,
        replica_lag_time_max_ms: LAG_MS,
        log_end_offset: 120,
        leader_epoch_start_offset: 120,
        high_watermark: 100,
        now_ms: 0,
    })
    .unwrap();

    let out = s.on_follower_fetch(3, 90, 1).unwrap();
    assert!(!out.eligible_to_join_isr, "below the HW");
    let out = s.on_follower_fetch(3, 110, 2).unwrap();
    assert!(!out.eligible_to_join_isr, "past the HW but not yet into this leader epoch");
    let out = s.on_follower_fetch(3, 120, 3).unwrap();
    assert!(out.eligible_to_join_isr);

    let out = s.on_follower_fetch(2, 120, 4).unwrap();
    assert!(!out.eligible_to_join_isr, "already in the ISR");

    let req = s.propose_isr(vec![1, 2, 3]).unwrap();
    assert_eq!(req, IsrChangeRequest { leader_epoch: 5, partition_epoch: 7, new_isr: vec![1, 2, 3] });
    assert!(!s.is_eligible_to_join_isr(3), "already pending");
    s.on_isr_change_committed(vec![1, 2, 3], 8).unwrap();
    assert_eq!(s.isr(), &[1, 2, 3]);
    assert_eq!(s.partition_epoch(), 8);
}

#[test]
fn expansion_with_a_replica_that_has_not_caught_up_is_refused() {
    let mut s = with_isr(vec![1, 2], 0);
    assert_eq!(s.propose_isr(vec![1, 2, 3]), Err(ReplicationError::ReplicaNotCaughtUp(3)));
    s.on_follower_fetch(3, 99, 1).unwrap();
    assert_eq!(s.propose_isr(vec![1, 2, 3]), Err(ReplicationError::ReplicaNotCaughtUp(3)));
    assert!(s.pending_isr_change().is_none());
}

#[test]
fn pending_expand_holds_the_hw_at_the_joining_replica() {
    let mut s = with_isr(vec![1, 2], 0);
    s.on_follower_fetch(3, 100, 0).unwrap();
    s.propose_isr(vec![1, 2, 3]).unwrap();
    s.on_leader_append(200).unwrap();
    s.on_follower_fetch(2, 200, 1).unwrap();
    assert_eq!(s.high_watermark(), 100, "joining replica 3 is part of the maximal ISR");
    s.on_follower_fetch(3, 180, 2).unwrap();
    assert_eq!(s.high_watermark(), 180);
    // The joining replica already has the committed data, so it counts for min.insync.replicas.
    assert_eq!(s.can_ack_all(180, 3), AckAllStatus::Ok);
    assert!(s.check_min_isr().is_ok());
}

#[test]
fn eligibility_needs_the_high_watermark_even_past_the_epoch_start() {
    let mut s = PartitionReplicationState::new(LeaderInit {
        leader_id: 1,
        leader_epoch: 5,
        partition_epoch: 7,
        assigned_replicas: vec![1, 2, 3],
        isr: vec![1, 2],
        min_insync_replicas: 2,
        replica_lag_time_max_ms: LAG_MS,
        log_end_offset: 200,
        leader_epoch_start_offset: 100,
        high_watermark: 150,
        now_ms: 0,
    })
    .unwrap();
    assert!(!s.on_follower_fetch(3, 120, 1).unwrap().eligible_to_join_isr, "past epoch start, below HW");
    assert!(s.on_follower_fetch(3, 150, 2).unwrap().eligible_to_join_isr);
}

#[test]
fn shrink_lets_hw_advance_past_removed_follower_only_after_commit() {
    let mut s = three_replicas(0);
    s.on_leader_append(200).unwrap();
    s.on_follower_fetch(2, 200, 1).unwrap();
    s.on_follower_fetch(3, 100, 1).unwrap();
    assert_eq!(s.isr_shrink_candidates(LAG_MS + 1), vec![3]);

    s.propose_isr(vec![1, 2]).unwrap();
    assert_eq!(s.maximal_isr(), vec![1, 2, 3]);
    let out = s.on_follower_fetch(2, 200, 2).unwrap();
    assert!(!out.high_watermark_advanced);
    assert_eq!(s.high_watermark(), 100, "removal not committed: 3 still holds the HW");

    assert!(s.on_isr_change_committed(vec![1, 2], 8).unwrap());
    assert_eq!(s.high_watermark(), 200);
    assert!(s.pending_isr_change().is_none());
}

#[test]
fn a_pending_change_blocks_proposing_another() {
    let mut s = three_replicas(0);
    s.propose_isr(vec![1, 2]).unwrap();
    assert_eq!(s.propose_isr(vec![1, 3]), Err(ReplicationError::IsrChangeInFlight));
    assert_eq!(s.pending_isr_change().unwrap().new_isr, vec![1, 2]);
}

#[test]
fn rejected_change_restores_state() {
    let mut s = three_replicas(0);
    s.on_leader_append(200).unwrap();
    s.on_follower_fetch(2, 200, 1).unwrap();
    s.on_follower_fetch(3, 100, 1).unwrap();
    s.propose_isr(vec![1, 2]).unwrap();

    assert!(!s.on_isr_change_rejected().unwrap());
    assert!(s.pending_isr_change().is_none());
    assert_eq!(s.isr(), &[1, 2, 3]);
    assert_eq!(s.partition_epoch(), 7);
    assert_eq!(s.high_watermark(), 100);
    assert_eq!(s.on_isr_change_rejected(), Err(ReplicationError::NoIsrChangeInFlight));
    // A new proposal is possible again.
    s.propose_isr(vec![1, 2]).unwrap();
}

#[test]
fn stale_commit_is_refused() {
    let mut s = three_replicas(0);
    s.propose_isr(vec![1, 2]).unwrap();
    assert_eq!(
        s.on_isr_change_committed(vec![1, 2], 7),
        Err(ReplicationError::StalePartitionEpoch { current: 7, received: 7 })
    );
    assert_eq!(s.isr(), &[1, 2, 3]);
    assert!(s.pending_isr_change().is_some());
}

#[test]
fn acks_all_waits_for_hw_and_reports_not_enough_replicas() {
    let mut s = three_replicas(0);
    assert_eq!(s.check_min_isr(), Ok(()));
    s.on_leader_append(110).unwrap();
    assert_eq!(s.can_ack_all(110, 2), AckAllStatus::Waiting);
    s.on_follower_fetch(2, 110, 1).unwrap();
    assert_eq!(s.can_ack_all(110, 2), AckAllStatus::Waiting, "follower 3 has not fetched");
    s.on_follower_fetch(3, 110, 1).unwrap();
    assert_eq!(s.can_ack_all(110, 2), AckAllStatus::Ok);

    // Shrink to the leader alone: appends are refused up front, and anything that gets
    // committed meanwhile is reported as NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    s.on_leader_append(120).unwrap();
    s.propose_isr(vec![1]).unwrap();
    assert_eq!(s.check_min_isr(), Ok(()), "the shrink is not committed yet");
    s.on_isr_change_committed(vec![1], 8).unwrap();
    assert_eq!(s.check_min_isr(), Err(NotEnoughReplicas { isr_size: 1, min_insync_replicas: 2 }));
    assert_eq!(s.high_watermark(), 120);
    assert_eq!(s.can_ack_all(120, 2), AckAllStatus::NotEnoughReplicasAfterAppend);
    assert_eq!(s.can_ack_all(120, 1), AckAllStatus::Ok);
}

#[test]
fn leader_only_isr_advances_hw_with_leader_appends() {
    let mut s = PartitionReplicationState::new(LeaderInit {
        leader_id: 7,
        leader_epoch: 0,
        partition_epoch: 0,
        assigned_replicas: vec![7],
        isr: vec![7],
        min_insync_replicas: 1,
        replica_lag_time_max_ms: LAG_MS,
        log_end_offset: 0,
        leader_epoch_start_offset: 0,
        high_watermark: 0,
        now_ms: 0,
    })
    .unwrap();
    assert!(s.on_leader_append(5).unwrap());
    assert_eq!(s.high_watermark(), 5);
    assert_eq!(s.can_ack_all(5, 1), AckAllStatus::Ok);
    assert!(!s.on_leader_append(5).unwrap());
    assert!(s.isr_shrink_candidates(i64::MAX).is_empty());
}

#[test]
fn leader_epoch_change_resets_follower_tracking_and_drops_the_pending_change() {
    let mut s = three_replicas(0);
    s.on_leader_append(150).unwrap();
    s.on_follower_fetch(2, 150, 1_000).unwrap();
    s.on_follower_fetch(3, 100, 1_000).unwrap();
    s.propose_isr(vec![1, 2]).unwrap();

    assert_eq!(
        s.on_leader_epoch_change(5, 150, 2_000),
        Err(ReplicationError::StaleLeaderEpoch { current: 5, received: 5 })
    );
    assert!(!s.on_leader_epoch_change(6, 150, 2_000).unwrap());
    assert_eq!(s.leader_epoch(), 6);
    assert_eq!(s.leader_epoch_start_offset(), 150);
    assert!(s.pending_isr_change().is_none());
    let f3 = *s.follower(3).unwrap();
    assert_eq!(f3.log_end_offset, Some(100));
    assert_eq!(f3.last_caught_up_time_ms, 2_000, "ISR member gets a fresh lag window");
    assert!(s.isr_shrink_candidates(2_000 + LAG_MS).is_empty());
    assert_eq!(s.isr_shrink_candidates(2_000 + LAG_MS + 1), vec![3]);
}

#[test]
fn invalid_fetches_leave_state_untouched() {
    let mut s = three_replicas(0);
    let before = *s.follower(2).unwrap();
    assert_eq!(
        s.on_follower_fetch(2, 101, 1),
        Err(ReplicationError::OffsetOutOfRange { fetch_offset: 101, log_end_offset: 100 })
    );
    assert_eq!(*s.follower(2).unwrap(), before);
    assert_eq!(s.on_follower_fetch(1, 100, 1), Err(ReplicationError::UnknownReplica(1)));
    assert_eq!(s.on_follower_fetch(9, 100, 1), Err(ReplicationError::UnknownReplica(9)));
    assert_eq!(s.on_leader_append(99), Err(ReplicationError::LogEndOffsetRegressed { current: 100, new: 99 }));
}

#[test]
fn proposals_must_contain_the_leader_and_only_assigned_replicas() {
    let mut s = three_replicas(0);
    assert_eq!(s.propose_isr(vec![2, 3]), Err(ReplicationError::LeaderNotInIsr));
    assert_eq!(s.propose_isr(vec![1, 9]), Err(ReplicationError::UnknownReplica(9)));
    assert_eq!(s.propose_isr(vec![1, 2, 2]), Err(ReplicationError::DuplicateReplica(2)));
    assert_eq!(s.propose_isr(vec![3, 2, 1]), Err(ReplicationError::IsrUnchanged));
    assert!(s.pending_isr_change().is_none());
}

#[test]
fn an_altered_min_insync_replicas_applies_to_the_next_append() {
    let mut s = with_isr(vec![1, 2], 0);
    assert!(s.check_min_isr().is_ok());
    s.set_min_insync_replicas(3);
    let refused = s.check_min_isr().unwrap_err();
    assert_eq!((refused.isr_size, refused.min_insync_replicas), (2, 3));
    s.set_min_insync_replicas(0);
    assert_eq!(s.min_insync_replicas(), 1, "never below one");
}

#[test]
fn deleted_records_are_gone_once_every_in_sync_follower_moved_its_log_start() {
    let mut state = with_isr(vec![1, 2], 0);
    assert!(!state.isr_log_start_reached(40), "follower 2 has reported nothing yet");
    assert!(state.on_follower_log_start(2, 10));
    assert!(!state.on_follower_log_start(2, 10), "the same start again is no change");
    assert!(!state.isr_log_start_reached(40));
    assert!(state.on_follower_log_start(2, 40));
    // Follower 3 is out of the ISR: it cannot lead, and follows the start when it fetches.
    assert!(state.isr_log_start_reached(40));
    assert!(!state.isr_log_start_reached(41));
    // A negative start (a client's fetch field left unset) is no report.
    assert!(state.on_follower_log_start(2, -1));
    assert!(!state.isr_log_start_reached(0));
    // A leader alone in its ISR has no one to wait for; an unknown replica changes nothing.
    assert!(with_isr(vec![1], 0).isr_log_start_reached(1_000));
    assert!(!state.on_follower_log_start(9, 5));
}
