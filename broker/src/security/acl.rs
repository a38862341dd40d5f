//! Kafka ACLs and the authorizer decision: the types CreateAcls/DescribeAcls/DeleteAcls carry
//! (with their wire codes), validation of a binding to create, the filters DescribeAcls and
//! DeleteAcls match with, and the `AclAuthorizer`/`StandardAuthorizer` decision (super users,
//! deny wins, implied operations, `allow.everyone.if.no.acl.found`). Pure: no I/O, no clock.

mod authorizer;
mod filter;
mod types;

#[cfg(test)]
mod tests;

pub use authorizer::{Authorizer, Decision};
pub use filter::{AccessControlEntryFilter, AclBindingFilter, ResourcePatternFilter};
pub use types::{
    AccessControlEntry, AclBinding, AclError, AclOperation, AclPermissionType, PatternType, ResourcePattern,
    ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD,
};
