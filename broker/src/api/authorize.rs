//! Authorization in handlers: [`Access`] checks a request's principal and client address against
//! the ACLs in force, with Kafka's decision rules (`security::acl`); [`AclCache`] keeps the
//! authorizer built from the metadata's ACLs and rebuilds it only when they change, so a check
//! costs a lock-free-ish read and a few map lookups, never a copy of every ACL.

use super::context::{Authorize, RequestContext};
use crate::controller::MetadataState;
use crate::security::acl::{AclOperation, Authorizer, ResourceType, CLUSTER_RESOURCE_NAME};
use millrace_config::broker::AuthorizationSettings;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// The authorizer of the metadata last seen, rebuilt when the ACLs in the metadata change.
#[derive(Default)]
pub struct AclCache {
    current: RwLock<Option<(Arc<MetadataState>, Arc<Authorizer>)>>,
}

impl AclCache {
    /// The authorizer for `state`'s ACLs and `settings`; None when authorization is off.
    pub fn authorizer(&self, settings: &AuthorizationSettings, state: Arc<MetadataState>) -> Option<Arc<Authorizer>> {
        if !settings.enabled {
            return None;
        }
        let cached = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((seen, authorizer)) = cached {
            if Arc::ptr_eq(&seen, &state) {
                return Some(authorizer);
            }
            // Most metadata changes (heartbeats, ISR moves) leave the ACLs alone: keep the
            // authorizer and remember the new state so the next check takes the fast path.
            if seen.acls == state.acls {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((state, authorizer.clone()));
                return Some(authorizer);
            }
        }
        let authorizer = Arc::new(
            Authorizer::new(settings.super_users.iter().cloned(), settings.allow_everyone_if_no_acl_found)
                .with_bindings(&state.acls),
        );
        tracing::debug!(acls = authorizer.len(), "authorizer rebuilt from the metadata's ACLs");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((state, authorizer.clone()));
        Some(authorizer)
    }
}

/// One request's view of authorization: who asks, from where, under which ACLs. Owned, so a
/// handler can move it into the part of its work that runs later.
#[derive(Clone)]
pub struct Access {
    /// None: authorization is off and everything is allowed.
    authorizer: Option<Arc<Authorizer>>,
    principal: String,
    host: IpAddr,
}

impl Access {
    /// The access of `rc`'s principal from its client address under `ctx`'s ACLs.
    pub fn of<C: Authorize + ?Sized>(ctx: &C, rc: &RequestContext) -> Access {
        let authorizer = ctx.authorizer();
        // Formatted only when it will be compared.
        let principal = if authorizer.is_some() { rc.connection.principal.to_string() } else { String::new() };
        Access { authorizer, principal, host: rc.peer().ip() }
    }

    /// Whether ACLs are enforced at all.
    pub fn enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    /// May the principal perform `operation` on the named resource? Denials are logged at debug.
    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        let allowed = self.allows_quietly(operation, resource_type, name);
        if !allowed {
            tracing::debug!(principal = %self.principal, host = %self.host, %operation, %resource_type, resource = name, "denied");
        }
        allowed
    }

    /// As [`Access::allows`] without logging, for checks that filter rather than refuse (Kafka's
    /// `logIfDenied = false`): the topics a full Metadata listing leaves out, say.
    pub fn allows_quietly(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(&self.principal, self.host, operation, resource_type, name).is_allowed())
    }

    /// `operation` on a topic.
    pub fn topic(&self, operation: AclOperation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    /// `operation` on a consumer group.
    pub fn group(&self, operation: AclOperation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    /// `operation` on the cluster.
    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// Kafka's `authorizeByResourceType`: `operation` on at least one resource of the type.
    pub fn any(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        let allowed = self
            .authorizer
            .as_ref()
            .is_none_or(|a| a.authorize_any(&self.principal, self.host, operation, resource_type).is_allowed());
        if !allowed {
            tracing::debug!(principal = %self.principal, host = %self.host, %operation, %resource_type, "denied on every resource of the type");
        }
        allowed
    }

    /// The authorized-operations bitfield of a resource (Metadata, DescribeCluster,
    /// DescribeGroups): every operation the type supports when authorization is off, as Kafka
    /// answers without an authorizer.
    pub fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        match &self.authorizer {
            Some(a) => a.authorized_operations(&self.principal, self.host, resource_type, name),
            None => resource_type.supported_operations().iter().fold(0, |bits, op| bits | (1i32 << op.code())),
        }
    }
}
