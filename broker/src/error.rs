//! Broker errors and their mapping to Kafka error codes.

use crate::log::LogError;
use kafka_protocol::error::ResponseError;

/// An error inside the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Storage failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// An I/O operation outside the log failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or peer.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Invalid metadata file or similar.
    #[error("{0}")]
    Metadata(String),
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
    /// The broker is stopping.
    #[error("broker is shutting down")]
    ShuttingDown,
    /// This broker does not (or no longer) coordinate the group: its offsets partition is led
    /// elsewhere.
    #[error("this broker is not the coordinator of the group")]
    NotCoordinator,
    /// Replication to the in-sync replicas did not finish in time.
    #[error("{0}")]
    Replication(String),
    /// Configuration the broker cannot start with (e.g. unreadable certificate files).
    #[error("{0}")]
    Config(String),
    /// A write being waited for is gone: leadership moved and this replica's log was cut back
    /// below it. The writer must retry with the new leader (or coordinator).
    #[error(
        "{partition}: the write ending at offset {offset} was truncated away (log end now {end}) after a leader change"
    )]
    Truncated {
        /// `<topic>-<partition>`.
        partition: String,
        /// The offset waited for.
        offset: i64,
        /// The log end after the truncation.
        end: i64,
    },
}

impl BrokerError {
    /// The Kafka error code a client should see.
    pub fn error_code(&self) -> ResponseError {
        match self {
            BrokerError::Log(e) => e.error_code(),
            BrokerError::Io { .. } => ResponseError::KafkaStorageError,
            BrokerError::Metadata(_) | BrokerError::Internal(_) | BrokerError::Config(_) => {
                ResponseError::UnknownServerError
            }
            BrokerError::ShuttingDown => ResponseError::NotLeaderOrFollower,
            BrokerError::NotCoordinator => ResponseError::NotCoordinator,
            BrokerError::Replication(_) => ResponseError::RequestTimedOut,
            BrokerError::Truncated { .. } => ResponseError::NotLeaderOrFollower,
        }
    }
}

impl LogError {
    /// The Kafka error code for a storage error.
    pub fn error_code(&self) -> ResponseError {
        match self {
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            LogError::UnknownProducerId { .. } => ResponseError::UnknownProducerId,
            LogError::Batch(_) => ResponseError::CorruptMessage,
            _ => ResponseError::KafkaStorageError,
        }
    }
}
