//! The replica manager: turns the controller's metadata into this broker's replicas and roles.
//!
//! On every metadata change it (1) lets the [`Catalog`](crate::catalog::Catalog) open or delete
//! replicas, (2) makes each local replica leader or follower as the metadata says, (3) points one
//! [`follower`](super::follower) fetcher per leader broker at the partitions followed from it, and (4) tells the group
//! coordinator which `__consumer_offsets` partitions it now leads. Every 250 ms it lets leaders
//! propose ISR changes (shrinking laggards, re-adding caught-up followers) to the controller.

use super::follower::{self, FetchTarget, Targets};
use crate::controller::{MetadataCommand, MetadataResponse, MetadataState, NO_LEADER};
use crate::Broker;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often leaders check whether their ISR should change.
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// How long an ISR change proposal may take.
const ISR_PROPOSAL_TIMEOUT: Duration = Duration::from_secs(5);

struct Fetcher {
    addr: String,
    targets: watch::Sender<Targets>,
    task: JoinHandle<()>,
}

/// Runs the replica manager until `shutdown`.
pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut metadata = broker.cluster.subscribe();
    let mut fetchers: HashMap<i32, Fetcher> = HashMap::new();
    let mut isr_tick = tokio::time::interval(ISR_CHECK_INTERVAL);
    isr_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (isr_done_tx, mut isr_done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut isr_in_flight = 0usize;
    if !caught_up(&broker, &mut metadata, &mut shutdown).await {
        return;
    }
    let mut state = metadata.borrow_and_update().clone();
    reconcile(&broker, &state, &mut fetchers).await;
    loop {
        tokio::select! {
            changed = metadata.changed() => {
                if changed.is_err() {
                    break;
                }
                let previous = std::mem::replace(&mut state, metadata.borrow_and_update().clone());
                // ISR changes of partitions led here, whoever made them (this leader's proposals,
                // or the controller removing a fenced broker's replicas).
                let (shrinks, expands) = crate::health::isr_changes(&previous, &state, broker.config.node_id);
                broker.metrics.health.isr_shrinks.inc_by(shrinks);
                broker.metrics.health.isr_expands.inc_by(expands);
                reconcile(&broker, &state, &mut fetchers).await;
            }
            _ = isr_tick.tick() => {
                // Proposals run concurrently with reconciliation: their effect arrives as metadata.
                if isr_in_flight == 0 {
                    let spawned = propose_isr_changes(&broker, &state, &isr_done_tx);
                    isr_in_flight += spawned;
                }
            }
            Some(()) = isr_done.recv() => isr_in_flight = isr_in_flight.saturating_sub(1),
            _ = shutdown.changed() => break,
        }
    }
    for (_, fetcher) in fetchers {
        fetcher.task.abort();
    }
}

/// Waits until this broker's registration of this run is applied to its local metadata; false
/// at shutdown. A restarted broker's metadata may be stale (leaderships moved while it was
/// down): acting on it would make it leader of an old epoch, taking writes no follower fetches
/// and answering produce with timeouts instead of NOT_LEADER_OR_FOLLOWER. As Kafka's brokers
/// catch up with the metadata log before they serve, no replica or role is touched until then:
/// everything committed before the registration is known once the registration is.
async fn caught_up(
    broker: &Broker,
    metadata: &mut watch::Receiver<Arc<MetadataState>>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let me = broker.config.node_id;
    // The epoch is stored when the registration's proposal returns, which may be after the
    // metadata watch fired for it: look again now and then.
    let mut recheck = tokio::time::interval(Duration::from_millis(50));
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let epoch = broker.cluster.broker_epoch();
        if epoch >= 0 && metadata.borrow_and_update().brokers.get(&me).is_some_and(|b| b.epoch == epoch) {
            tracing::debug!(node_id = me, broker_epoch = epoch, "metadata caught up; taking the replicas' roles");
            return true;
        }
        tokio::select! {
            changed = metadata.changed() => if changed.is_err() { return false },
            _ = recheck.tick() => {}
            _ = shutdown.changed() => return false,
        }
    }
}

/// Applies one metadata state: replicas, roles, fetchers, coordinator partitions.
async fn reconcile(broker: &Arc<Broker>, state: &Arc<MetadataState>, fetchers: &mut HashMap<i32, Fetcher>) {
    let me = broker.config.node_id;
    let applied = {
        let broker = broker.clone();
        let state = state.clone();
        tokio::task::spawn_blocking(move || broker.catalog.apply(&state, me)).await
    };
    match applied {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "applying metadata to local replicas failed"),
        Err(e) => tracing::error!(error = %e, "applying metadata to local replicas panicked"),
    }
    let now = crate::clock::now_ms();
    let lag_ms = broker.config.replication.replica_lag_time_max.0 as i64;
    let mut wanted: BTreeMap<i32, Targets> = BTreeMap::new();
    let mut led_offsets_partitions = BTreeMap::new();
    let mut offsets_partition_count = 0usize;
    for topic in broker.catalog.all() {
        let Some(meta) = state.topics.get(&topic.name) else { continue };
        if crate::catalog::is_internal(&topic.name) {
            offsets_partition_count = meta.partitions.len();
        }
        for (&index, partition) in &topic.partitions {
            let Some(p) = usize::try_from(index).ok().and_then(|i| meta.partitions.get(i)) else { continue };
            if p.leader == me {
                let result = partition.become_leader(
                    me,
                    &p.replicas,
                    &p.isr,
                    p.leader_epoch,
                    p.partition_epoch,
                    topic.config.min_insync_replicas.max(1) as usize,
                    lag_ms,
                    now,
                );
                match result {
                    Ok(()) if crate::catalog::is_internal(&topic.name) => {
                        led_offsets_partitions.insert(index, partition.clone());
                    }
                    Ok(()) => {}
                    Err(e) => tracing::error!(partition = %partition.name(), error = %e, "becoming leader failed"),
                }
            } else {
                partition.become_follower(p.leader, p.leader_epoch);
                if p.leader != NO_LEADER {
                    wanted.entry(p.leader).or_default().insert(
                        (topic.name.clone(), index),
                        FetchTarget { partition: partition.clone(), leader_epoch: p.leader_epoch },
                    );
                }
            }
        }
    }
    broker.groups.set_led_partitions(led_offsets_partitions, offsets_partition_count);
    // Point fetchers at their leaders; stop those no longer needed or whose address changed.
    fetchers.retain(|leader, fetcher| {
        let address = state.brokers.get(leader).map(|b| format!("{}:{}", b.host, b.port));
        let keep = wanted.contains_key(leader) && address.as_deref() == Some(fetcher.addr.as_str());
        if !keep {
            fetcher.task.abort();
        }
        keep
    });
    for (leader, targets) in wanted {
        if let Some(fetcher) = fetchers.get(&leader) {
            fetcher.targets.send_if_modified(|current| {
                let same = current.len() == targets.len()
                    && current.iter().zip(&targets).all(|((k1, t1), (k2, t2))| {
                        k1 == k2 && t1.leader_epoch == t2.leader_epoch && Arc::ptr_eq(&t1.partition, &t2.partition)
                    });
                if !same {
                    *current = targets.clone();
                }
                !same
            });
            continue;
        }
        let Some(b) = state.brokers.get(&leader) else { continue };
        let addr = format!("{}:{}", b.host, b.port);
        let (tx, rx) = watch::channel(targets);
        let task = tokio::spawn(follower::run(broker.clone(), leader, addr.clone(), rx));
        fetchers.insert(leader, Fetcher { addr, targets: tx, task });
    }
}

/// Lets every led partition propose its ISR change; returns how many proposals were spawned.
fn propose_isr_changes(
    broker: &Arc<Broker>,
    state: &MetadataState,
    done: &tokio::sync::mpsc::UnboundedSender<()>,
) -> usize {
    let eligible: BTreeSet<i32> = state.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
    let now = crate::clock::now_ms();
    let mut spawned = 0;
    for partition in broker.catalog.all_partitions() {
        // A replica in a failed log directory may look caught up from its last fetch, but the
        // controller refuses it back into the ISR until its broker restarts.
        let offline = state
            .topics
            .get(&partition.topic)
            .and_then(|t| usize::try_from(partition.index).ok().and_then(|i| t.partitions.get(i)))
            .map(|p| p.offline_replicas.as_slice())
            .unwrap_or_default();
        let without_offline: BTreeSet<i32>;
        let eligible_here = if offline.is_empty() {
            &eligible
        } else {
            without_offline = eligible.iter().copied().filter(|r| !offline.contains(r)).collect();
            &without_offline
        };
        let Some(request) = partition.propose_isr_change(now, eligible_here) else { continue };
        let cmd = MetadataCommand::ChangeIsr {
            topic: partition.topic.clone(),
            partition: partition.index,
            leader_epoch: request.leader_epoch,
            partition_epoch: request.partition_epoch,
            isr: request.new_isr.clone(),
        };
        let broker = broker.clone();
        let done = done.clone();
        spawned += 1;
        tokio::spawn(async move {
            match broker.cluster.propose(cmd, ISR_PROPOSAL_TIMEOUT).await {
                Ok(MetadataResponse::Partition(p)) => {
                    tracing::info!(partition = %partition.name(), isr = ?p.isr, partition_epoch = p.partition_epoch, "ISR changed");

                    // The committed state reaches this broker as metadata; applying it there
                    // clears the in-flight change.
                }
                Ok(other) => {
                    tracing::warn!(partition = %partition.name(), ?other, "unexpected answer to an ISR change");
                    partition.isr_change_failed();
                }
                Err(e) => {
                    tracing::info!(partition = %partition.name(), error = %e, "ISR change not accepted");
                    partition.isr_change_failed();
                }
            }
            let _ = done.send(());
        });
    }
    spawned
}
