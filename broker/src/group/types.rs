//! The vocabulary of the group state machine: states, request arguments and results.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::time::Duration;
use tokio::sync::oneshot;

/// Group states, named as Kafka reports them in DescribeGroups and ListGroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignments.
    CompletingRebalance,
    /// Assignments handed out.
    Stable,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// What a JoinGroup request gets back.
#[derive(Clone, Debug, Default)]
pub struct JoinResult {
    /// Error, if any.
    pub error: Option<ResponseError>,
    /// Generation the member joined.
    pub generation: i32,
    /// Protocol type (e.g. "consumer").
    pub protocol_type: Option<String>,
    /// Chosen protocol (assignor), e.g. "range" or "cooperative-sticky".
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member's id (assigned by the coordinator).
    pub member_id: String,
    /// For the leader only: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    /// A failed join.
    pub fn error(error: ResponseError, member_id: &str) -> JoinResult {
        JoinResult { error: Some(error), generation: -1, member_id: member_id.to_string(), ..Default::default() }
    }
}

/// What a SyncGroup request gets back.
#[derive(Clone, Debug, Default)]
pub struct SyncResult {
    /// Error, if any.
    pub error: Option<ResponseError>,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// The member's assignment, opaque to the broker.
    pub assignment: Bytes,
}

impl SyncResult {
    /// A failed sync.
    pub fn error(error: ResponseError) -> SyncResult {
        SyncResult { error: Some(error), ..Default::default() }
    }
}

/// A response available now, or later through a channel (the runtime's form of
/// [`super::effects::Answer`]).
pub enum Reply<T> {
    /// Answer at once.
    Now(T),
    /// Answer when the rebalance gets there.
    Later(oneshot::Receiver<T>),
}

/// A JoinGroup request, decoded.
pub struct JoinArgs {
    /// Member id ("" for a new member).
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394: from JoinGroup v4 a new member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
}

/// Where new member ids come from; injected so tests get predictable ids.
pub trait MemberIds: Send {
    /// A fresh id for a member whose client calls itself `client_id`.
    fn next_id(&mut self, client_id: &str) -> String;
}

/// Kafka-style ids: the client id (or "member") and a random UUID.
pub struct RandomMemberIds;

impl MemberIds for RandomMemberIds {
    fn next_id(&mut self, client_id: &str) -> String {
        format!("{}-{}", if client_id.is_empty() { "member" } else { client_id }, uuid::Uuid::new_v4())
    }
}

/// The settings a join runs under.
#[derive(Clone, Copy, Debug)]
pub struct JoinSettings {
    /// Delay of the first rebalance of an empty group.
    pub initial_rebalance_delay: Duration,
    /// Members, joined or pending, a group may hold (`group.max.size`).
    pub max_size: usize,
}
