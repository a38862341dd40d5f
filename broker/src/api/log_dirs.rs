//! DescribeLogDirs: this broker's log directories, whether each is online, its capacity and free
//! space, and the size of every replica it holds (`kafka-log-dirs --describe`).

use super::authorize::Access;
use super::context::{Authorize, Partitions, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::partition::Partition;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// (total, usable) bytes of the file system holding `path`; -1 each when unknown.
fn capacity(path: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(path) {
        Ok(s) => {
            let block = s.f_frsize as i64;
            ((s.f_blocks as i64).saturating_mul(block), (s.f_bavail as i64).saturating_mul(block))
        }
        Err(_) => (-1, -1),
    }
}

/// One partition's entry: its size on disk, and how far this replica is behind the high
/// watermark it knows (Kafka's `offset_lag` for a current log).
fn partition_entry(p: &Partition) -> DescribeLogDirsPartition {
    let (size, _) = p.size();
    let lag = (p.high_watermark() - p.log_end_offset()).max(0);
    DescribeLogDirsPartition::default()
        .with_partition_index(p.index)
        .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
        .with_offset_lag(lag)
        .with_is_future_key(false)
}

/// Answers DescribeLogDirs (blocking: statvfs and size sums).
fn describe<C: Partitions>(ctx: &C, request: &DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeMap<&str, &[i32]>> =
        request.topics.as_ref().map(|ts| ts.iter().map(|t| (t.topic.0.as_str(), t.partitions.as_slice())).collect());
    let partitions = ctx.catalog().all_partitions();
    let results = ctx
        .catalog()
        .log_dirs()
        .all()
        .iter()
        .map(|dir| {
            let result =
                DescribeLogDirsResult::default().with_log_dir(StrBytes::from_string(dir.path().display().to_string()));
            if dir.failure().is_some() {
                return result
                    .with_error_code(ResponseError::KafkaStorageError.code())
                    .with_total_bytes(-1)
                    .with_usable_bytes(-1);
            }
            let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for p in partitions.iter().filter(|p| Arc::ptr_eq(p.log_dir(), dir)) {
                let asked = match &wanted {
                    None => true,
                    Some(w) => w.get(p.topic.as_str()).is_some_and(|ps| ps.contains(&p.index)),
                };
                if asked {
                    topics.entry(p.topic.as_str()).or_default().push(partition_entry(p));
                }
            }
            let (total, usable) = capacity(dir.path());
            let topics = topics
                .into_iter()
                .map(|(name, partitions)| {
                    DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(name))).with_partitions(partitions)
                })
                .collect();
            result.with_topics(topics).with_total_bytes(total).with_usable_bytes(usable)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

impl<C: Partitions + Authorize + 'static> Handler<C> for DescribeLogDirsRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeLogDirsRequest,
    ) -> Reply<DescribeLogDirsResponse> {
        if !Access::of(&**ctx, rc).cluster(AclOperation::Describe) {
            return Reply::Now(
                DescribeLogDirsResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
            );
        }
        let ctx = ctx.clone();
        Reply::Later(Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || describe(&*ctx, &request)).await;
            answer.unwrap_or_else(|e| {
                tracing::error!(error = %e, "describing log directories panicked");
                DescribeLogDirsResponse::default().with_error_code(ResponseError::UnknownServerError.code())
            })
        }))
    }
}
