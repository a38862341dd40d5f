//! CreateAcls, DescribeAcls and DeleteAcls: Kafka ACLs kept in the metadata quorum. Each needs
//! Alter (create, delete) or Describe (describe) on the cluster; with authorization off they
//! answer SECURITY_DISABLED, as a Kafka broker without an authorizer does.

use super::authorize::Access;
use super::context::{Authorize, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::{MetadataCommand, MetadataResponse};
use crate::security::acl::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
    PatternType, ResourcePattern, ResourcePatternFilter, ResourceType,
};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a change waits for the quorum.
const ALTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Most creations or deletion filters one request may carry: each is checked and answered, and
/// one small request must not make the controller walk every ACL ten thousand times.
pub const MAX_ACL_CHANGES_PER_REQUEST: usize = 1000;

/// Why a whole request is refused before any binding is looked at.
fn refusal(access: &Access, operation: AclOperation) -> Option<(ResponseError, &'static str)> {
    if !access.enabled() {
        Some((ResponseError::SecurityDisabled, "no authorizer is configured ([authorization] enabled = false)"))
    } else if !access.cluster(operation) {
        Some((ResponseError::ClusterAuthorizationFailed, "not authorized on the cluster"))
    } else {
        None
    }
}

/// Why every entry of a CreateAcls or DeleteAcls request is refused: no authorizer, no Alter on
/// the cluster, or more `what` than one request may carry.
fn refuse_change(access: &Access, count: usize, what: &str) -> Option<(ResponseError, String)> {
    if let Some((code, why)) = refusal(access, AclOperation::Alter) {
        return Some((code, why.to_string()));
    }
    (count > MAX_ACL_CHANGES_PER_REQUEST).then(|| {
        let why = format!("one request may carry at most {MAX_ACL_CHANGES_PER_REQUEST} {what}, not {count}");
        (ResponseError::InvalidRequest, why)
    })
}

/// A filter from its wire fields; unrecognised codes read as Unknown, which validation refuses.
fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> AclBindingFilter {
    AclBindingFilter::new(
        ResourcePatternFilter::new(
            ResourceType::from_code(resource_type),
            name.map(|n| n.to_string()),
            PatternType::from_code(pattern_type),
        ),
        AccessControlEntryFilter::new(
            principal.map(|p| p.to_string()),
            host.map(|h| h.to_string()),
            AclOperation::from_code(operation),
            AclPermissionType::from_code(permission),
        ),
    )
}

/// Answers CreateAcls: one result per creation, in order. The valid bindings are proposed
/// together; an invalid one is refused on its own with INVALID_REQUEST, as Kafka does.
async fn create<C: Quorum>(ctx: &C, access: Access, request: CreateAclsRequest) -> CreateAclsResponse {
    let failed = |code: ResponseError, message: String| {
        AclCreationResult::default().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
    };
    let count = request.creations.len();
    if let Some((code, why)) = refuse_change(&access, count, "creations") {
        let results = (0..count).map(|_| failed(code, why.clone())).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let checked: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            let binding = AclBinding::new(
                ResourcePattern::new(
                    ResourceType::from_code(c.resource_type),
                    c.resource_name.to_string(),
                    PatternType::from_code(c.resource_pattern_type),
                ),
                AccessControlEntry::new(
                    c.principal.to_string(),
                    c.host.to_string(),
                    AclOperation::from_code(c.operation),
                    AclPermissionType::from_code(c.permission_type),
                ),
            );
            binding.validate().map(|()| binding).map_err(|e| e.to_string())
        })
        .collect();
    let bindings: Vec<AclBinding> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let outcome = if bindings.is_empty() {
        Ok(())
    } else {
        let count = bindings.len();
        match ctx.propose(MetadataCommand::CreateAcls { bindings }, ALTER_TIMEOUT).await {
            Ok(_) => {
                tracing::info!(count, "ACLs created");
                Ok(())
            }
            Err(e) => Err((e.error_code(), e.to_string())),
        }
    };
    let results = checked
        .into_iter()
        .map(|c| match (c, &outcome) {
            (Err(why), _) => failed(ResponseError::InvalidRequest, why),
            (Ok(_), Err((code, why))) => failed(*code, why.clone()),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Answers DescribeAcls: the bindings the filter selects, grouped by resource pattern.
fn describe<C: Quorum>(ctx: &C, access: &Access, r: &DescribeAclsRequest) -> DescribeAclsResponse {
    if let Some((code, why)) = refusal(access, AclOperation::Describe) {
        return DescribeAclsResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(why)));
    }
    let filter = filter(
        r.resource_type_filter,
        r.resource_name_filter.as_ref(),
        r.pattern_type_filter,
        r.principal_filter.as_ref(),
        r.host_filter.as_ref(),
        r.operation,
        r.permission_type,
    );
    if let Err(e) = filter.validate() {
        return DescribeAclsResponse::default()
            .with_error_code(e.error_code().code())
            .with_error_message(Some(str_bytes(e.to_string())));
    }
    let metadata = ctx.metadata();
    let mut resources: BTreeMap<&ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for binding in metadata.acls.iter().filter(|b| filter.matches(b)) {
        let e = &binding.entry;
        resources.entry(&binding.pattern).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(e.principal.clone()))
                .with_host(str_bytes(e.host.clone()))
                .with_operation(e.operation.code())
                .with_permission_type(e.permission.code()),
        );
    }
    let resources = resources
        .into_iter()
        .map(|(pattern, acls)| {
            DescribeAclsResource::default()
                .with_resource_type(pattern.resource_type.code())
                .with_resource_name(str_bytes(pattern.name.clone()))
                .with_pattern_type(pattern.pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

fn matching(binding: AclBinding) -> DeleteAclsMatchingAcl {
    let AclBinding { pattern, entry } = binding;
    DeleteAclsMatchingAcl::default()
        .with_resource_type(pattern.resource_type.code())
        .with_resource_name(str_bytes(pattern.name))
        .with_pattern_type(pattern.pattern_type.code())
        .with_principal(str_bytes(entry.principal))
        .with_host(str_bytes(entry.host))
        .with_operation(entry.operation.code())
        .with_permission_type(entry.permission.code())
}

/// Answers DeleteAcls: per filter, in order, the bindings it removed (computed by the quorum, so
/// every broker agrees on what went). An invalid filter is refused on its own.
async fn delete<C: Quorum>(ctx: &C, access: Access, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let failed = |code: ResponseError, message: String| {
        DeleteAclsFilterResult::default().with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
    };
    let count = request.filters.len();
    if let Some((code, why)) = refuse_change(&access, count, "filters") {
        let results = (0..count).map(|_| failed(code, why.clone())).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let checked: Vec<Result<AclBindingFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            let filter = filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            );
            filter.validate().map(|()| filter).map_err(|e| e.to_string())
        })
        .collect();
    let filters: Vec<AclBindingFilter> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let outcome = if filters.is_empty() {
        Ok(Vec::new())
    } else {
        match ctx.propose(MetadataCommand::DeleteAcls { filters }, ALTER_TIMEOUT).await {
            Ok(MetadataResponse::AclsDeleted { deleted }) => {
                tracing::info!(count = deleted.iter().map(Vec::len).sum::<usize>(), "ACLs deleted");
                Ok(deleted)
            }
            Ok(other) => Err((ResponseError::UnknownServerError, format!("unexpected quorum answer {other:?}"))),
            Err(e) => Err((e.error_code(), e.to_string())),
        }
    };
    let mut deleted = match &outcome {
        Ok(deleted) => deleted.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = checked
        .into_iter()
        .map(|c| match (c, &outcome) {
            (Err(why), _) => failed(ResponseError::InvalidRequest, why),
            (Ok(_), Err((code, why))) => failed(*code, why.clone()),
            (Ok(_), Ok(_)) => DeleteAclsFilterResult::default()
                .with_matching_acls(deleted.next().unwrap_or_default().into_iter().map(matching).collect()),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

impl<C: Quorum + Authorize> Handler<C> for CreateAclsRequest {
    /// Answered later: the change waits for the quorum.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: CreateAclsRequest) -> Reply<CreateAclsResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        Reply::Later(Box::pin(async move { create(&*ctx, access, request).await }))
    }
}

impl<C: Quorum + Authorize> Handler<C> for DescribeAclsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: DescribeAclsRequest) -> Reply<DescribeAclsResponse> {
        Reply::Now(describe(&**ctx, &Access::of(&**ctx, rc), &request))
    }
}

impl<C: Quorum + Authorize> Handler<C> for DeleteAclsRequest {
    /// Answered later: the change waits for the quorum.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: DeleteAclsRequest) -> Reply<DeleteAclsResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        Reply::Later(Box::pin(async move { delete(&*ctx, access, request).await }))
    }
}
