//! Changing the voters while the cluster runs, in the spirit of KIP-853: a running broker (a
//! non-voting member that already receives the metadata log) becomes a voter, or a voter goes
//! back to being a non-voting member. The leader commits each change as a Raft membership change
//! (joint consensus, so a majority of the old and of the new voters agree); other members
//! forward it. [`check`] is the pure rule; [`apply`] performs it on the leader.

use crate::controller::TypeConfig;
use kafka_protocol::error::ResponseError;
use openraft::{ChangeMembers, Raft};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One change of the voter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoterChange {
    /// A non-voting member becomes a voter.
    Add(u64),
    /// A voter becomes a non-voting member (it keeps receiving the metadata log while its
    /// broker runs; an unregistered broker's membership is then dropped).
    Remove(u64),
}

/// Why a voter change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum VoterChangeError {
    /// DUPLICATE_VOTER.
    #[error("node {0} is already a voter")]
    DuplicateVoter(u64),
    /// VOTER_NOT_FOUND.
    #[error("node {0} is not a voter")]
    VoterNotFound(u64),
    /// The node never joined: its broker must run first.
    #[error("node {0} is not a member of the metadata quorum; start its broker first (it joins as a non-voting member), then add it")]
    NotAMember(u64),
    /// The active controller removing itself (openraft 0.9 cannot hand leadership over).
    #[error("node {0} is the active controller; stop or restart it first (another voter takes over), then remove it")]
    ActiveController(u64),
    /// Removing the last voter would leave no quorum.
    #[error("node {0} is the only voter; add another before removing it")]
    LastVoter(u64),
    /// Not the leader, or Raft refused or failed.
    #[error("{0}")]
    Raft(String),
}

impl VoterChangeError {
    /// The Kafka error code AddRaftVoter / RemoveRaftVoter answer with.
    pub fn error_code(&self) -> ResponseError {
        match self {
            VoterChangeError::DuplicateVoter(_) => ResponseError::DuplicateVoter,
            VoterChangeError::VoterNotFound(_) => ResponseError::VoterNotFound,
            VoterChangeError::NotAMember(_)
            | VoterChangeError::LastVoter(_)
            | VoterChangeError::ActiveController(_) => ResponseError::InvalidRequest,
            VoterChangeError::Raft(_) => ResponseError::RequestTimedOut,
        }
    }
}

/// Whether `change` may be made to a quorum of `voters` with non-voting `learners`.
pub fn check(voters: &BTreeSet<u64>, learners: &BTreeSet<u64>, change: VoterChange) -> Result<(), VoterChangeError> {
    match change {
        VoterChange::Add(id) if voters.contains(&id) => Err(VoterChangeError::DuplicateVoter(id)),
        VoterChange::Add(id) if !learners.contains(&id) => Err(VoterChangeError::NotAMember(id)),
        VoterChange::Add(_) => Ok(()),
        VoterChange::Remove(id) if !voters.contains(&id) => Err(VoterChangeError::VoterNotFound(id)),
        VoterChange::Remove(id) if voters.len() == 1 => Err(VoterChangeError::LastVoter(id)),
        VoterChange::Remove(_) => Ok(()),
    }
}

/// Makes `change` on the leader `raft`; returns the voters after it.
pub async fn apply(raft: &Raft<TypeConfig>, change: VoterChange) -> Result<Vec<u64>, VoterChangeError> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        return Err(VoterChangeError::Raft("not the active controller".into()));
    }
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let learners: BTreeSet<u64> = membership.learner_ids().collect();
    check(&voters, &learners, change)?;
    if change == VoterChange::Remove(metrics.id) {
        return Err(VoterChangeError::ActiveController(metrics.id));
    }
    let members = match change {
        VoterChange::Add(id) => ChangeMembers::AddVoterIds(BTreeSet::from([id])),
        VoterChange::Remove(id) => ChangeMembers::RemoveVoters(BTreeSet::from([id])),
    };
    tracing::info!(?change, ?voters, "changing the metadata quorum's voters");
    // `retain`: a removed voter stays a non-voting member, so its broker keeps its metadata.
    let response = raft.change_membership(members, true).await.map_err(|e| VoterChangeError::Raft(e.to_string()))?;
    let after: Vec<u64> = response.membership.as_ref().map(|m| m.voter_ids().collect()).unwrap_or_default();
    tracing::info!(?change, voters = ?after, "metadata quorum voters changed");
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_members_are_added_and_never_the_last_voter_removed() {
        let voters = BTreeSet::from([1, 2, 3]);
        let learners = BTreeSet::from([4]);
        assert_eq!(check(&voters, &learners, VoterChange::Add(4)), Ok(()));
        assert_eq!(check(&voters, &learners, VoterChange::Add(2)), Err(VoterChangeError::DuplicateVoter(2)));
        assert_eq!(check(&voters, &learners, VoterChange::Add(9)), Err(VoterChangeError::NotAMember(9)));
        assert_eq!(check(&voters, &learners, VoterChange::Remove(3)), Ok(()));
        assert_eq!(check(&voters, &learners, VoterChange::Remove(4)), Err(VoterChangeError::VoterNotFound(4)));
        let alone = BTreeSet::from([1]);
        assert_eq!(check(&alone, &learners, VoterChange::Remove(1)), Err(VoterChangeError::LastVoter(1)));
    }
}
