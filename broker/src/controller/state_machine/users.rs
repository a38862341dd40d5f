//! SCRAM credentials (KIP-554): one per user and mechanism, salted and iterated, never the
//! password. Checked again here because every controller replays the log and a credential that
//! got in once would be used for logins forever.

use super::{MetadataError, MetadataResponse, MetadataState};
use crate::security::scram::{Mechanism, ScramCredential};

/// Longest user name accepted (SCRAM's saslname is bounded the same way).
pub const MAX_USER_NAME: usize = 255;

impl MetadataState {
    /// UpsertScramCredential: sets (or replaces) the user's credential for its mechanism.
    pub(super) fn upsert_scram_credential(
        &mut self,
        user: &str,
        credential: &ScramCredential,
    ) -> Result<MetadataResponse, MetadataError> {
        if user.is_empty() || user.len() > MAX_USER_NAME {
            return Err(MetadataError::UnacceptableCredential(format!("a user name has 1 to {MAX_USER_NAME} bytes")));
        }
        credential.validate().map_err(|e| MetadataError::UnacceptableCredential(e.to_string()))?;
        self.scram_credentials.entry(user.to_string()).or_default().insert(credential.mechanism, credential.clone());
        Ok(MetadataResponse::Ok)
    }

    /// DeleteScramCredential: removes the user's credential for `mechanism`.
    pub(super) fn delete_scram_credential(
        &mut self,
        user: &str,
        mechanism: Mechanism,
    ) -> Result<MetadataResponse, MetadataError> {
        let unknown =
            || MetadataError::UnknownScramCredential { user: user.to_string(), mechanism: mechanism.to_string() };
        let credentials = self.scram_credentials.get_mut(user).ok_or_else(unknown)?;
        credentials.remove(&mechanism).ok_or_else(unknown)?;
        if credentials.is_empty() {
            self.scram_credentials.remove(user);
        }
        Ok(MetadataResponse::Ok)
    }
}
