//! Kafka API handlers, one file per API (or per small family), all of one shape:
//! [`Handler::handle`]`(ctx, &RequestContext, request) -> Reply`, generic over the small context
//! traits in [`context`] rather than the broker itself.
//!
//! - [`context`]: [`RequestContext`] (connection, principal, header), [`Reply`], the traits.
//! - [`dispatch`]: the [`Router`] table from API key to handler, framing and request metrics.
//!
//! Each handler runs its order-sensitive part (appends) before returning, so requests pipelined
//! on one connection are applied in arrival order; what remains (waiting for fsync, long-polling
//! fetches) is returned as [`Reply::Later`], which the connection resolves in order.

mod acls;
mod alter_configs;
mod api_versions;
pub mod authorize;
mod cluster;
mod configs;
pub mod context;
mod current_leader;
mod delete_records;
pub mod dispatch;
mod elect_leaders;
#[cfg(test)]
mod fake;
mod fetch;
mod groups;
mod leader_epoch;
mod list_offsets;
mod log_dirs;
mod metadata;
pub mod offsets;
mod produce;
mod producers;
mod quorum;
mod reassignments;
pub mod response;
mod sasl;
mod topics;
mod users;
mod voters;

pub use authorize::{Access, AclCache};
pub use context::{led_partition, Connection, Principal, Reply, RequestContext};
pub use dispatch::{DispatchError, Handler, Pending, Router};
use kafka_protocol::messages::ApiKey;
pub(crate) use millrace_protocol::str_bytes;
pub use response::ResponseFrame;

/// The APIs this broker answers and the version ranges it advertises.
///
/// Minimums are 0, as a Kafka 3.x broker advertises: librdkafka derives features (LZ4, message
/// format v2, idempotence) from whether these ranges reach down to old versions. Versions below
/// what the codec crate can decode (message formats v0/v1, retired in Kafka 4.0) are refused by
/// closing the connection with a logged reason, as Kafka 4 does.
pub const SUPPORTED_APIS: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::InitProducerId,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::UnregisterBroker,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::DeleteRecords,
    ApiKey::ElectLeaders,
    ApiKey::DescribeLogDirs,
    ApiKey::DescribeProducers,
    ApiKey::DescribeQuorum,
    ApiKey::AddRaftVoter,
    ApiKey::RemoveRaftVoter,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
];

#[cfg(test)]
mod tests;
