//! What the pure group core asks its runtime to do: records to append to `__consumer_offsets`,
//! parked JoinGroup/SyncGroup requests to answer, and in-memory changes that must wait until
//! their records are written.

use super::store::{StoredKey, StoredOffset, StoredValue};
use super::types::{JoinResult, SyncResult};

/// Identifies one parked JoinGroup or SyncGroup request; unique for the coordinator's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(pub u64);

/// A transition's answer to the request that caused it.
#[derive(Debug)]
pub enum Answer<T> {
    /// Answer at once.
    Now(T),
    /// Park the request; a later [`Wake`] with this id answers it.
    Wait(WaiterId),
}

/// A parked request to answer.
#[derive(Debug, Clone)]
pub enum Wake {
    /// Answer a parked JoinGroup.
    Join(WaiterId, JoinResult),
    /// Answer a parked SyncGroup.
    Sync(WaiterId, SyncResult),
    /// The group is gone from this coordinator (its partition moved): drop the request, which
    /// the handler answers as an unknown member.
    Cancel(WaiterId),
}

/// Why a batch is appended; decides logging and whether a caller waits for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendKind {
    /// Group metadata after a membership change (not waited for: members rejoin if it is lost).
    GroupMetadata,
    /// An OffsetCommit.
    Commit,
    /// DeleteGroups: tombstones for the group and all its offsets.
    DeleteGroup,
    /// OffsetDelete.
    DeleteOffsets,
    /// Offsets past retention.
    Expiration,
    /// Tombstone of a group forgotten after its offsets expired.
    ForgetGroup,
}

/// In-memory changes applied only once their records are written, in write order, so that
/// memory never shows what the log does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterWrite {
    /// Remember committed offsets.
    StoreOffsets {
        /// Group id.
        group: String,
        /// (topic, partition) → offset.
        offsets: Vec<((String, i32), StoredOffset)>,
    },
    /// Forget offsets that were tombstoned.
    DropOffsets {
        /// Group id.
        group: String,
        /// (topic, partition) pairs.
        keys: Vec<(String, i32)>,
    },
    /// Forget the tombstoned offsets, then the group itself if it is still empty.
    DropGroup {
        /// Group id.
        group: String,
        /// (topic, partition) pairs.
        keys: Vec<(String, i32)>,
    },
}

/// One batch for `__consumer_offsets`.
#[derive(Debug, Clone)]
pub struct Append {
    /// Group the records belong to.
    pub group: String,
    /// Index of the `__consumer_offsets` partition holding the group.
    pub partition: i32,
    /// Records; a None value is a tombstone.
    pub records: Vec<(StoredKey, Option<StoredValue>)>,
    /// Why.
    pub kind: AppendKind,
    /// What to change in memory once written.
    pub then: Option<AfterWrite>,
}

/// Everything a transition asks the runtime to do, in order.
#[derive(Debug, Default)]
pub struct Effects {
    /// Batches to append, in this order.
    pub appends: Vec<Append>,
    /// Parked requests to answer.
    pub wakes: Vec<Wake>,
}

impl Effects {
    /// Adds `other` after what is here.
    pub fn extend(&mut self, other: Effects) {
        self.appends.extend(other.appends);
        self.wakes.extend(other.wakes);
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty() && self.wakes.is_empty()
    }
}
