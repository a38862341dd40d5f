//! The authorizer's decision over a set of ACLs, as Kafka's `AclAuthorizer` and
//! `StandardAuthorizer` make it: super users first, then the ACLs whose pattern applies to the
//! resource, where a matching DENY wins over any ALLOW and ALLOWs imply some operations.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::filter::AclBindingFilter;
use super::types::{
    AccessControlEntry, AclBinding, AclError, AclOperation, AclPermissionType, HostSpec, PatternType, ResourcePattern,
    ResourceType, WILDCARD, WILDCARD_PRINCIPAL,
};

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allowed,
    Denied,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// An entry as stored: its host parsed once, so checks compare addresses.
#[derive(Debug, Clone)]
struct Stored {
    entry: AccessControlEntry,
    host: HostSpec,
}

impl Stored {
    fn same_as(&self, other: &Stored) -> bool {
        self.entry.principal == other.entry.principal
            && self.host == other.host
            && self.entry.operation == other.entry.operation
            && self.entry.permission == other.entry.permission
    }
}

/// One resource type's ACLs, keyed by pattern name so a check looks up the resource's name,
/// `*`, and each of the name's prefixes instead of scanning every ACL.
#[derive(Debug, Clone, Default)]
struct TypeIndex {
    literal: BTreeMap<String, Vec<Stored>>,
    prefixed: BTreeMap<String, Vec<Stored>>,
}

impl TypeIndex {
    fn map_mut(&mut self, pattern_type: PatternType) -> Option<&mut BTreeMap<String, Vec<Stored>>> {
        match pattern_type {
            PatternType::Literal => Some(&mut self.literal),
            PatternType::Prefixed => Some(&mut self.prefixed),
            PatternType::Unknown | PatternType::Any | PatternType::Match => None,
        }
    }

    /// Every entry whose pattern applies to the resource `name`.
    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Stored> + 'a {
        let exact = self.literal.get(name);
        // When the resource is itself named `*`, the exact lookup already found those.
        let wildcard = if name == WILDCARD { None } else { self.literal.get(WILDCARD) };
        let prefixes = name
            .char_indices()
            .filter_map(move |(at, c)| name.get(..at + c.len_utf8()))
            .filter_map(move |prefix| self.prefixed.get(prefix));
        exact.into_iter().chain(wildcard).chain(prefixes).flatten()
    }
}

/// The ACLs in force, the super users and the `allow.everyone.if.no.acl.found` setting.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    acls: BTreeMap<ResourceType, TypeIndex>,
    /// Principals (`User:admin`) allowed everything, whatever the ACLs say.
    pub super_users: BTreeSet<String>,
    /// Allow when no ACL at all applies to the resource (Kafka's default: false).
    pub allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    pub fn new<S: Into<String>>(
        super_users: impl IntoIterator<Item = S>,
        allow_everyone_if_no_acl_found: bool,
    ) -> Self {
        Self {
            acls: BTreeMap::new(),
            super_users: super_users.into_iter().map(Into::into).collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    /// An authorizer over `bindings`; those Kafka's creation checks refuse are skipped (the
    /// metadata quorum never stores one).
    pub fn with_bindings<'a>(mut self, bindings: impl IntoIterator<Item = &'a AclBinding>) -> Self {
        for binding in bindings {
            if let Err(e) = self.add(binding.clone()) {
                tracing::warn!(error = %e, ?binding, "ignoring an invalid stored ACL");
            }
        }
        self
    }

    /// Adds a binding after Kafka's creation checks. Ok(false) when an identical binding is
    /// already there (creating it again is a no-op in Kafka, not an error).
    pub fn add(&mut self, binding: AclBinding) -> Result<bool, AclError> {
        binding.validate()?;
        let AclBinding { pattern, entry } = binding;
        let host = HostSpec::parse(&entry.host).ok_or_else(|| AclError::InvalidHost(entry.host.clone()))?;
        let stored = Stored { entry, host };
        let map = self
            .acls
            .entry(pattern.resource_type)
            .or_default()
            .map_mut(pattern.pattern_type)
            .ok_or(AclError::InvalidPatternType(pattern.pattern_type))?;
        let entries = map.entry(pattern.name).or_default();
        if entries.iter().any(|e| e.same_as(&stored)) {
            return Ok(false);
        }
        entries.push(stored);
        Ok(true)
    }

    /// Every binding, ordered by resource type, pattern type, name.
    pub fn bindings(&self) -> impl Iterator<Item = AclBinding> + '_ {
        self.acls.iter().flat_map(|(&resource_type, index)| {
            let literal = index.literal.iter().map(|(n, e)| (PatternType::Literal, n, e));
            let prefixed = index.prefixed.iter().map(|(n, e)| (PatternType::Prefixed, n, e));
            literal.chain(prefixed).flat_map(move |(pattern_type, name, entries)| {
                entries.iter().map(move |s| AclBinding {
                    pattern: ResourcePattern::new(resource_type, name.clone(), pattern_type),
                    entry: s.entry.clone(),
                })
            })
        })
    }

    pub fn len(&self) -> usize {
        self.acls.values().flat_map(|i| i.literal.values().chain(i.prefixed.values())).map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// DescribeAcls: the bindings the filter selects.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.bindings().filter(|b| filter.matches(b)).collect()
    }

    /// DeleteAcls: removes and returns the bindings the filter selects.
    pub fn remove_matching(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let mut removed = Vec::new();
        for (&resource_type, index) in &mut self.acls {
            for (pattern_type, map) in
                [(PatternType::Literal, &mut index.literal), (PatternType::Prefixed, &mut index.prefixed)]
            {
                for (name, entries) in map.iter_mut() {
                    let pattern = ResourcePattern::new(resource_type, name.clone(), pattern_type);
                    if !filter.pattern.matches(&pattern) {
                        continue;
                    }
                    entries.retain(|s| {
                        if !filter.entry.matches(&s.entry) {
                            return true;
                        }
                        removed.push(AclBinding { pattern: pattern.clone(), entry: s.entry.clone() });
                        false
                    });
                }
                map.retain(|_, entries| !entries.is_empty());
            }
        }
        self.acls.retain(|_, i| !i.literal.is_empty() || !i.prefixed.is_empty());
        removed
    }

    /// May `principal` connecting from `host` perform `operation` on the named resource?
    /// Any/Unknown operations or resource types are not actions and are always denied.
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Decision {
        if matches!(operation, AclOperation::Unknown | AclOperation::Any)
            || matches!(resource_type, ResourceType::Unknown | ResourceType::Any)
        {
            return Decision::Denied;
        }
        if self.super_users.contains(principal) {
            return Decision::Allowed;
        }
        let Some(index) = self.acls.get(&resource_type) else {
            return self.no_acl_found();
        };
        let mut any_acl = false;
        let mut allowed = false;
        for stored in index.matching(resource_name) {
            // Any ACL on the resource, for whomever, means the resource is governed by ACLs.
            any_acl = true;
            let entry = &stored.entry;
            if (entry.principal != principal && entry.principal != WILDCARD_PRINCIPAL) || !stored.host.matches(host) {
                continue;
            }
            match entry.permission {
                // Deny is never implied: only the operation itself or All.
                AclPermissionType::Deny => {
                    if entry.operation == operation || entry.operation == AclOperation::All {
                        return Decision::Denied;
                    }
                }
                AclPermissionType::Allow => allowed |= allow_implies(entry.operation, operation),
                AclPermissionType::Unknown | AclPermissionType::Any => {}
            }
        }
        match (any_acl, allowed) {
            (false, _) => self.no_acl_found(),
            (true, true) => Decision::Allowed,
            (true, false) => Decision::Denied,
        }
    }

    /// The authorized-operations bitfield Metadata, DescribeCluster and DescribeGroups report:
    /// bit `1 << code` for each operation supported by the resource type that is allowed.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: IpAddr,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|&&op| self.authorize(principal, host, op, resource_type, resource_name).is_allowed())
            .fold(0, |bits, op| bits | (1i32 << op.code()))
    }

    /// Kafka's `authorizeByResourceType`: may the principal perform `operation` on at least one
    /// resource of this type? (InitProducerId lets Write on any topic stand in for
    /// IdempotentWrite on the cluster.) Yes for a super user or where no ACL applies and that
    /// is allowed, else when some ALLOW of the principal's is not overridden by a DENY on the
    /// same or a wider pattern. Only the operation itself or All counts, as in Kafka.
    pub fn authorize_any(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> Decision {
        // No resource is named "" (names are never empty), so this is the answer for a resource
        // only wildcard ACLs apply to: super users, `*` ACLs and allow-if-no-ACL all decide it.
        if self.authorize(principal, host, operation, resource_type, "").is_allowed() {
            return Decision::Allowed;
        }
        let Some(index) = self.acls.get(&resource_type) else {
            return Decision::Denied;
        };
        let applies = |s: &Stored| {
            (s.entry.principal == principal || s.entry.principal == WILDCARD_PRINCIPAL)
                && s.host.matches(host)
                && (s.entry.operation == operation || s.entry.operation == AclOperation::All)
        };
        let names = |map: &'_ BTreeMap<String, Vec<Stored>>, permission: AclPermissionType| -> BTreeSet<String> {
            map.iter()
                .filter(|(_, entries)| entries.iter().any(|s| s.entry.permission == permission && applies(s)))
                .map(|(name, _)| name.clone())
                .collect()
        };
        let deny_literals = names(&index.literal, AclPermissionType::Deny);
        let deny_prefixes = names(&index.prefixed, AclPermissionType::Deny);
        if deny_literals.contains(WILDCARD) {
            return Decision::Denied;
        }
        let denied_by_prefix = |name: &str| deny_prefixes.iter().any(|p| name.starts_with(p.as_str()));
        let allowed_literal = names(&index.literal, AclPermissionType::Allow)
            .iter()
            .any(|name| !deny_literals.contains(name) && !denied_by_prefix(name));
        let allowed_prefix =
            names(&index.prefixed, AclPermissionType::Allow).iter().any(|name| !denied_by_prefix(name));
        if allowed_literal || allowed_prefix {
            Decision::Allowed
        } else {
            Decision::Denied
        }
    }

    fn no_acl_found(&self) -> Decision {
        if self.allow_everyone_if_no_acl_found {
            Decision::Allowed
        } else {
            Decision::Denied
        }
    }
}

/// Whether an ALLOW for `granted` allows `requested`: All allows everything; Read, Write,
/// Delete and Alter imply Describe; AlterConfigs implies DescribeConfigs.
fn allow_implies(granted: AclOperation, requested: AclOperation) -> bool {
    use AclOperation::*;
    granted == All
        || granted == requested
        || match requested {
            Describe => matches!(granted, Read | Write | Delete | Alter),
            DescribeConfigs => granted == AlterConfigs,
            _ => false,
        }
}
