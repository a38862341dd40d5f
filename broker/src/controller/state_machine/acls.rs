//! Kafka ACLs (CreateAcls / DeleteAcls): the bindings every broker's authorizer enforces. Each is
//! checked again here, not only by the handler that proposed it, because every controller replays
//! the log and a binding that got in once would be enforced (or trip the authorizer) forever.

use super::{MetadataError, MetadataResponse, MetadataState};
use crate::security::acl::{AclBinding, AclBindingFilter};
use std::collections::BTreeSet;

/// Most ACLs the cluster holds: every broker keeps them all in memory and rebuilds its authorizer
/// from them on each change.
pub const MAX_ACLS: usize = 100_000;

/// Longest principal, resource name or host accepted in a binding.
pub const MAX_ACL_FIELD: usize = 1024;

impl MetadataState {
    /// CreateAcls: adds every binding, or none when one is refused. An existing binding created
    /// again is no error (Kafka answers it as created).
    pub(super) fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<MetadataResponse, MetadataError> {
        for binding in bindings {
            binding.validate().map_err(|e| MetadataError::InvalidAcl(e.to_string()))?;
            let fields = [&binding.pattern.name, &binding.entry.principal, &binding.entry.host];
            if fields.iter().any(|f| f.len() > MAX_ACL_FIELD) {
                return Err(MetadataError::InvalidAcl(format!(
                    "a principal, resource name or host has at most {MAX_ACL_FIELD} bytes"
                )));
            }
        }
        let new = bindings.iter().filter(|b| !self.acls.contains(*b)).count();
        if self.acls.len().saturating_add(new) > MAX_ACLS {
            return Err(MetadataError::TooManyAcls { limit: MAX_ACLS });
        }
        self.acls.extend(bindings.iter().cloned());
        Ok(MetadataResponse::Ok)
    }

    /// DeleteAcls: removes what each filter selects, filter by filter, so a binding that several
    /// filters select is reported once, under the first (as Kafka's controller does).
    pub(super) fn delete_acls(&mut self, filters: &[AclBindingFilter]) -> Result<MetadataResponse, MetadataError> {
        for filter in filters {
            filter.validate().map_err(|e| MetadataError::InvalidAcl(e.to_string()))?;
        }
        let deleted = filters
            .iter()
            .map(|filter| {
                let (removed, kept): (BTreeSet<AclBinding>, _) =
                    std::mem::take(&mut self.acls).into_iter().partition(|b| filter.matches(b));
                self.acls = kept;
                removed.into_iter().collect()
            })
            .collect();
        Ok(MetadataResponse::AclsDeleted { deleted })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::{MetadataCommand, MetadataError, MetadataResponse, MetadataState};
    use crate::security::acl::{
        AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
        PatternType, ResourcePattern, ResourcePatternFilter, ResourceType,
    };

    fn binding(topic: &str, principal: &str, op: AclOperation) -> AclBinding {
        AclBinding::new(
            ResourcePattern::new(ResourceType::Topic, topic, PatternType::Literal),
            AccessControlEntry::new(principal, "*", op, AclPermissionType::Allow),
        )
    }

    fn create(s: &mut MetadataState, bindings: Vec<AclBinding>) -> Result<MetadataResponse, MetadataError> {
        s.apply(&MetadataCommand::CreateAcls { bindings })
    }

    fn by_principal(principal: &str) -> AclBindingFilter {
        AclBindingFilter::new(
            ResourcePatternFilter::ANY,
            AccessControlEntryFilter::new(Some(principal.into()), None, AclOperation::Any, AclPermissionType::Any),
        )
    }

    #[test]
    fn creation_is_all_or_nothing_and_idempotent() {
        let mut s = MetadataState::default();
        let read = binding("logs", "User:alice", AclOperation::Read);
        create(&mut s, vec![read.clone(), read.clone()]).unwrap();
        assert_eq!(s.acls.len(), 1);
        let bad = binding("logs", "alice", AclOperation::Write);
        let refused = create(&mut s, vec![binding("x", "User:bob", AclOperation::Read), bad]);
        assert!(matches!(refused, Err(MetadataError::InvalidAcl(ref m)) if m.contains("principal")), "{refused:?}");
        assert_eq!(s.acls.len(), 1, "nothing of a refused command is kept");
        let long = binding(&"t".repeat(super::MAX_ACL_FIELD + 1), "User:bob", AclOperation::Read);
        assert!(matches!(create(&mut s, vec![long]), Err(MetadataError::InvalidAcl(_))));
        assert_eq!(
            MetadataError::InvalidAcl(String::new()).error_code(),
            kafka_protocol::error::ResponseError::InvalidRequest
        );
    }

    #[test]
    fn deletion_reports_each_binding_once_under_the_first_filter_that_selects_it() {
        let mut s = MetadataState::default();
        let alice_read = binding("logs", "User:alice", AclOperation::Read);
        let alice_write = binding("metrics", "User:alice", AclOperation::Write);
        let bob_read = binding("logs", "User:bob", AclOperation::Read);
        create(&mut s, vec![alice_read.clone(), alice_write.clone(), bob_read.clone()]).unwrap();
        let logs = AclBindingFilter::new(
            ResourcePatternFilter::new(ResourceType::Topic, Some("logs".into()), PatternType::Literal),
            AccessControlEntryFilter::ANY,
        );
        let filters = vec![by_principal("User:alice"), logs, by_principal("User:nobody")];
        let deleted = s.apply(&MetadataCommand::DeleteAcls { filters }).unwrap();
        assert_eq!(
            deleted,
            MetadataResponse::AclsDeleted { deleted: vec![vec![alice_read, alice_write], vec![bob_read], vec![]] }
        );
        assert!(s.acls.is_empty());
    }

    #[test]
    fn a_filter_with_unknown_parts_deletes_nothing() {
        let mut s = MetadataState::default();
        create(&mut s, vec![binding("logs", "User:alice", AclOperation::Read)]).unwrap();
        let unknown = AclBindingFilter::new(
            ResourcePatternFilter::new(ResourceType::Unknown, None, PatternType::Any),
            AccessControlEntryFilter::ANY,
        );
        let filters = vec![AclBindingFilter::ANY, unknown];
        assert!(matches!(s.apply(&MetadataCommand::DeleteAcls { filters }), Err(MetadataError::InvalidAcl(_))));
        assert_eq!(s.acls.len(), 1);
    }

    #[test]
    fn old_snapshots_without_acls_load() {
        let mut s = MetadataState::default();
        create(&mut s, vec![binding("logs", "User:alice", AclOperation::Read)]).unwrap();
        let mut json: serde_json::Value = serde_json::to_value(&s).unwrap();
        json.as_object_mut().unwrap().remove("acls");
        let old: MetadataState = serde_json::from_value(json).unwrap();
        assert!(old.acls.is_empty());
        let round: MetadataState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(round, s);
    }
}
