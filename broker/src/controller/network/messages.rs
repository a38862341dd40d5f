//! What controllers say to each other: [`RpcRequest`], the matching [`RpcResponse`], and
//! [`NetError`] for an RPC that failed on the way.

use crate::controller::liveness::{HeartbeatReply, HeartbeatRequest};
use crate::controller::{CommandResult, MetadataCommand, TypeConfig};
use openraft::error::{ClientWriteError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A request between controllers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal forwarded by a follower; the receiver does not forward again.
    Propose(MetadataCommand),
    /// A broker's heartbeat to the active controller.
    BrokerHeartbeat(HeartbeatRequest),
    /// A broker asks the leader how the quorum stands (DescribeQuorum).
    DescribeQuorum,
    /// A broker asks the leader to change the voters (AddRaftVoter / RemoveRaftVoter).
    ChangeVoters(crate::controller::VoterChange),
    /// A broker outside the voters asks to receive the metadata log as a non-voting member.
    AddLearner {
        /// Its node id.
        id: u64,
        /// Its controller RPC address.
        addr: String,
    },
}

/// The answer to an [`RpcRequest`] of the same variant.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Propose(Result<CommandResult, RaftError<u64, ClientWriteError<u64, BasicNode>>>),
    BrokerHeartbeat(HeartbeatReply),
    /// None when the receiver is not the leader.
    DescribeQuorum(Option<crate::controller::QuorumDescription>),
    /// The voters after the change, or why it was refused.
    ChangeVoters(Result<Vec<u64>, crate::controller::VoterChangeError>),
    /// `Err` carries the reason (e.g. not the leader: retry at `leader`).
    AddLearner(Result<(), AddLearnerRefusal>),
}

/// Why AddLearner was refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AddLearnerRefusal {
    /// Human-readable reason.
    pub reason: String,
    /// The active controller's id and address, when this one is not it.
    pub leader: Option<(u64, String)>,
}

/// A failed RPC to a peer controller; every variant names the peer address.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Could not connect.
    #[error("connecting to controller {addr}: {source}")]
    Connect {
        /// Peer address.
        addr: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("talking to controller {addr}: {source}")]
    Io {
        /// Peer address.
        addr: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("controller {addr} did not answer within {after:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The deadline.
        after: Duration,
    },
    /// A frame could not be encoded or decoded.
    #[error("bad frame from/to controller {addr}: {source}")]
    Codec {
        /// Peer address.
        addr: String,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// The peer is not the node it should be: its certificate names another node, or none, or
    /// the mutual-TLS handshake failed.
    #[error("controller {addr} refused as node {node}: {reason}")]
    Peer {
        /// Peer address.
        addr: String,
        /// The node it should have been.
        node: u64,
        /// What was wrong.
        reason: String,
    },
    /// The peer answered with a different RPC than asked.
    #[error("controller {addr} answered with the wrong response type")]
    UnexpectedResponse {
        /// Peer address.
        addr: String,
    },
}
