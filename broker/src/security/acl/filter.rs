//! The filters DescribeAcls and DeleteAcls select bindings with, matching as Kafka's
//! `ResourcePatternFilter`/`AccessControlEntryFilter` do. A `None` field matches anything.

use serde::{Deserialize, Serialize};

use super::types::{
    AccessControlEntry, AclBinding, AclError, AclOperation, AclPermissionType, HostSpec, PatternType, ResourcePattern,
    ResourceType, WILDCARD,
};

/// Selects resource patterns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourcePatternFilter {
    /// Any matches every type.
    pub resource_type: ResourceType,
    /// None matches every name.
    pub name: Option<String>,
    /// Any: every pattern type, names equal. Match: every pattern that applies to the named
    /// resource. Literal/Prefixed: that pattern type, names equal.
    pub pattern_type: PatternType,
}

impl ResourcePatternFilter {
    pub const ANY: Self = Self { resource_type: ResourceType::Any, name: None, pattern_type: PatternType::Any };

    pub fn new(resource_type: ResourceType, name: Option<String>, pattern_type: PatternType) -> Self {
        Self { resource_type, name, pattern_type }
    }

    pub fn matches(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type != PatternType::Match {
            return *name == pattern.name;
        }
        match pattern.pattern_type {
            PatternType::Literal => *name == pattern.name || pattern.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(pattern.name.as_str()),
            // Stored bindings are validated; anything else is never selected by Match.
            PatternType::Unknown | PatternType::Any | PatternType::Match => false,
        }
    }

    fn has_unknown(&self) -> bool {
        self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
    }
}

/// Selects access control entries. Principal and host compare exactly (no wildcard
/// expansion: a filter for `User:alice` does not select `User:*` entries), as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessControlEntryFilter {
    pub principal: Option<String>,
    pub host: Option<String>,
    /// Any matches every operation.
    pub operation: AclOperation,
    /// Any matches both permissions.
    pub permission: AclPermissionType,
}

impl AccessControlEntryFilter {
    pub const ANY: Self =
        Self { principal: None, host: None, operation: AclOperation::Any, permission: AclPermissionType::Any };

    pub fn new(
        principal: Option<String>,
        host: Option<String>,
        operation: AclOperation,
        permission: AclPermissionType,
    ) -> Self {
        Self { principal, host, operation, permission }
    }

    pub fn matches(&self, entry: &AccessControlEntry) -> bool {
        if self.principal.as_ref().is_some_and(|p| *p != entry.principal) {
            return false;
        }
        if self.host.as_ref().is_some_and(|h| !same_host(h, &entry.host)) {
            return false;
        }
        if self.operation != AclOperation::Any && self.operation != entry.operation {
            return false;
        }
        self.permission == AclPermissionType::Any || self.permission == entry.permission
    }

    fn has_unknown(&self) -> bool {
        self.operation == AclOperation::Unknown || self.permission == AclPermissionType::Unknown
    }
}

/// Hosts are equal as parsed addresses when both parse (so IPv4-mapped IPv6 forms agree),
/// else as strings.
fn same_host(a: &str, b: &str) -> bool {
    match (HostSpec::parse(a), HostSpec::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// Selects ACL bindings for DescribeAcls and DeleteAcls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclBindingFilter {
    pub pattern: ResourcePatternFilter,
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    /// Selects every binding.
    pub const ANY: Self = Self { pattern: ResourcePatternFilter::ANY, entry: AccessControlEntryFilter::ANY };

    pub fn new(pattern: ResourcePatternFilter, entry: AccessControlEntryFilter) -> Self {
        Self { pattern, entry }
    }

    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.pattern.matches(&binding.pattern) && self.entry.matches(&binding.entry)
    }

    /// Kafka refuses a describe or delete filter with an UNKNOWN element (an unrecognised
    /// code in the request) as INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), AclError> {
        if self.pattern.has_unknown() || self.entry.has_unknown() {
            return Err(AclError::UnknownInFilter);
        }
        Ok(())
    }
}
