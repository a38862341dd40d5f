//! Periodic work: high-watermark checkpoints and background fsync, retention, compaction of
//! compacted topics, and group session expiry.

use crate::{log, Broker};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Periodic work: retention, and background fsync for `interval` topics (also a safety net that
/// bounds how long acks=1 data stays unsynced in `fsync` mode).
pub(crate) async fn housekeeping(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let flush_every = broker.config.log.flush_interval.as_duration();
    let retention_every = broker.config.log.retention_check_interval.as_duration();
    let mut flush_tick = tokio::time::interval(flush_every);
    let mut retention_tick = tokio::time::interval(retention_every);
    let mut cleaner_tick = tokio::time::interval(broker.config.log.cleaner_interval.as_duration());
    cleaner_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Group sessions are checked often so a dead member is noticed soon after its timeout.
    let mut group_tick = tokio::time::interval(Duration::from_millis(100));
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    group_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = group_tick.tick() => broker.groups.tick(),
            _ = flush_tick.tick() => {
                let checkpoint = broker.clone();
                match tokio::task::spawn_blocking(move || checkpoint.catalog.checkpoint_offsets()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "writing the high-watermark checkpoint failed"),
                    Err(e) => tracing::warn!(error = %e, "high-watermark checkpoint task failed"),
                    Ok(Ok(())) => {}
                }
                for partition in broker.catalog.all_partitions() {
                    {
                        if let Err(e) = partition.flush_if_dirty().await {
                            tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "background fsync failed");
                        }
                    }
                }
            }
            _ = cleaner_tick.tick() => {
                let now = crate::clock::now_ms();
                for topic in broker.catalog.all().into_iter().filter(|t| t.config.cleanup_compact) {
                    let config = log::CompactionConfig {
                        delete_retention_ms: topic.config.delete_retention_ms,
                        min_compaction_lag_ms: topic.config.min_compaction_lag_ms,
                    };
                    for partition in topic.partitions.values().filter(|p| !p.is_offline()).cloned() {
                        let result = tokio::task::spawn_blocking(move || (partition.compact(now, &config), partition)).await;
                        match result {
                            Ok((Ok(report), partition)) if report.segments_cleaned > 0 => {
                                tracing::info!(
                                    partition = %format!("{}-{}", partition.topic, partition.index),
                                    segments = report.segments_cleaned,
                                    records_removed = report.records_removed,
                                    bytes_before = report.bytes_before,
                                    bytes_after = report.bytes_after,
                                    "compacted"
                                );
                            }
                            Ok((Err(e), partition)) => {
                                tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "compaction failed");
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ = retention_tick.tick() => {
                let now = crate::clock::now_ms();
                for partition in broker.catalog.all_partitions().into_iter().filter(|p| !p.is_offline()) {
                    {
                        let result = tokio::task::spawn_blocking(move || (partition.apply_retention(now), partition)).await;
                        match result {
                            Ok((Ok(deleted), partition)) if deleted > 0 => {
                                let (start, _) = partition.offsets();
                                tracing::info!(partition = %format!("{}-{}", partition.topic, partition.index), deleted, log_start_offset = start, "retention deleted segments");
                            }
                            Ok((Err(e), partition)) => {
                                tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "retention failed");
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
