//! The ACL vocabulary with Kafka's names and wire codes, and validation of a binding to create.

use std::fmt;
use std::net::IpAddr;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

/// The literal resource name (and principal name) that stands for "every one".
pub const WILDCARD: &str = "*";
/// The only name a Cluster resource may have, as in Kafka.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// The wildcard principal: an ACL for it applies to every principal.
pub(super) const WILDCARD_PRINCIPAL: &str = "User:*";

/// Defines a Kafka enum carried as an i8 on the wire: `code()`, `TryFrom<i8>`, a lenient
/// `from_code` (Kafka maps an unrecognised code to Unknown) and Kafka's upper-case names.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in code order.
            pub const VALUES: &'static [$name] = &[$($name::$variant),+];

            /// The wire code.
            pub const fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// Kafka's `fromCode`: an unrecognised code reads as Unknown (which a request
            /// then refuses as invalid) rather than failing the whole decode.
            pub fn from_code(code: i8) -> Self {
                Self::try_from(code).unwrap_or($name::Unknown)
            }
        }

        impl TryFrom<i8> for $name {
            type Error = AclError;

            fn try_from(code: i8) -> Result<Self, AclError> {
                match code {
                    $($code => Ok($name::$variant),)+
                    _ => Err(AclError::UnknownCode { kind: $kind, code }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $text),+
                })
            }
        }
    };
}

wire_enum! {
    /// The kind of resource an ACL protects.
    ResourceType, "resource type" {
        Unknown = 0 => "UNKNOWN",
        /// Filters only.
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
}

wire_enum! {
    /// How a resource pattern's name is matched against a resource's name.
    PatternType, "pattern type" {
        Unknown = 0 => "UNKNOWN",
        /// Filters only: any pattern type, names compared exactly.
        Any = 1 => "ANY",
        /// Filters only: every pattern that would apply to the named resource.
        Match = 2 => "MATCH",
        /// The name exactly, or every resource when the name is `*`.
        Literal = 3 => "LITERAL",
        /// Every resource whose name starts with the pattern's name.
        Prefixed = 4 => "PREFIXED",
    }
}

wire_enum! {
    /// An operation on a resource.
    AclOperation, "operation" {
        Unknown = 0 => "UNKNOWN",
        /// Filters only.
        Any = 1 => "ANY",
        /// In an ACL: every operation.
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

wire_enum! {
    /// Whether an ACL grants or refuses.
    AclPermissionType, "permission type" {
        Unknown = 0 => "UNKNOWN",
        /// Filters only.
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
}

impl ResourceType {
    /// The operations Kafka reports in an authorized-operations bitfield for this resource
    /// type (`AclEntry.supportedOperations`); empty for Unknown and Any.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => {
                &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe]
            }
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Unknown | ResourceType::Any => &[],
        }
    }
}

/// Which resources an ACL applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    pub fn new(resource_type: ResourceType, name: impl Into<String>, pattern_type: PatternType) -> Self {
        Self { resource_type, name: name.into(), pattern_type }
    }

    /// Whether this (stored, Literal or Prefixed) pattern applies to the named resource.
    pub fn matches_resource(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.name == name || self.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(self.name.as_str()),
                // Filter-only pattern types never describe a concrete set of resources.
                PatternType::Unknown | PatternType::Any | PatternType::Match => false,
            }
    }
}

/// Who may (or may not) do what from where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccessControlEntry {
    /// `Type:name`, e.g. `User:alice`; `User:*` is every principal.
    pub principal: String,
    /// `*` (every host) or an IP address.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AccessControlEntry {
    pub fn new(
        principal: impl Into<String>,
        host: impl Into<String>,
        operation: AclOperation,
        permission: AclPermissionType,
    ) -> Self {
        Self { principal: principal.into(), host: host.into(), operation, permission }
    }
}

/// One ACL: an entry bound to a resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}

impl AclBinding {
    pub fn new(pattern: ResourcePattern, entry: AccessControlEntry) -> Self {
        Self { pattern, entry }
    }

    /// Kafka's checks on a binding to create: only concrete values (no Unknown, Any or
    /// Match), a non-empty name, `kafka-cluster` for a Cluster, a `Type:name` principal and a
    /// `*` or IP host.
    pub fn validate(&self) -> Result<(), AclError> {
        let p = &self.pattern;
        if matches!(p.resource_type, ResourceType::Unknown | ResourceType::Any) {
            return Err(AclError::InvalidResourceType(p.resource_type));
        }
        if !matches!(p.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Err(AclError::InvalidPatternType(p.pattern_type));
        }
        let e = &self.entry;
        if matches!(e.operation, AclOperation::Unknown | AclOperation::Any) {
            return Err(AclError::InvalidOperation(e.operation));
        }
        if !matches!(e.permission, AclPermissionType::Allow | AclPermissionType::Deny) {
            return Err(AclError::InvalidPermissionType(e.permission));
        }
        if p.name.is_empty() {
            return Err(AclError::EmptyResourceName);
        }
        // `*` is only a wildcard for Literal; as a prefix it would match only names that
        // start with a star, which is never what was meant.
        if p.pattern_type == PatternType::Prefixed && p.name == WILDCARD {
            return Err(AclError::WildcardPrefix);
        }
        if p.resource_type == ResourceType::Cluster && p.name != CLUSTER_RESOURCE_NAME {
            return Err(AclError::InvalidClusterName(p.name.clone()));
        }
        if !principal_is_valid(&e.principal) {
            return Err(AclError::InvalidPrincipal(e.principal.clone()));
        }
        if HostSpec::parse(&e.host).is_none() {
            return Err(AclError::InvalidHost(e.host.clone()));
        }
        Ok(())
    }
}

/// `Type:name` with both parts non-empty (the name may itself contain colons, as in Kafka).
fn principal_is_valid(principal: &str) -> bool {
    principal.split_once(':').is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
}

/// An ACL's host, parsed: compared as addresses so `::ffff:10.0.0.1` and `10.0.0.1` agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum HostSpec {
    Any,
    Ip(IpAddr),
}

impl HostSpec {
    pub(super) fn parse(host: &str) -> Option<Self> {
        if host == WILDCARD {
            return Some(HostSpec::Any);
        }
        host.parse::<IpAddr>().ok().map(|ip| HostSpec::Ip(ip.to_canonical()))
    }

    pub(super) fn matches(self, client: IpAddr) -> bool {
        match self {
            HostSpec::Any => true,
            HostSpec::Ip(ip) => ip == client.to_canonical(),
        }
    }
}

/// Why an ACL value, binding or filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("unknown {kind} code {code}")]
    UnknownCode { kind: &'static str, code: i8 },
    #[error("invalid resource type {0} for an ACL")]
    InvalidResourceType(ResourceType),
    #[error("invalid pattern type {0} for an ACL")]
    InvalidPatternType(PatternType),
    #[error("invalid operation {0} for an ACL")]
    InvalidOperation(AclOperation),
    #[error("invalid permission type {0} for an ACL")]
    InvalidPermissionType(AclPermissionType),
    #[error("resource name should not be empty")]
    EmptyResourceName,
    #[error("the wildcard resource name '*' is only valid with the LITERAL pattern type")]
    WildcardPrefix,
    #[error("the only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}, not {0:?}")]
    InvalidClusterName(String),
    #[error("principal {0:?} is not of the form Type:name")]
    InvalidPrincipal(String),
    #[error("host {0:?} is neither '*' nor an IP address")]
    InvalidHost(String),
    #[error("an ACL filter may not contain UNKNOWN elements")]
    UnknownInFilter,
}

impl AclError {
    /// The Kafka error a CreateAcls/DescribeAcls/DeleteAcls response reports for this.
    pub fn error_code(&self) -> ResponseError {
        // Kafka answers every malformed ACL or filter with INVALID_REQUEST.
        ResponseError::InvalidRequest
    }
}
