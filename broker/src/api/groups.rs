//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups, DeleteGroups. Members need Read on their group, tools Describe
//! (find, describe, list) or Delete, as in Kafka; a refusal is GROUP_AUTHORIZATION_FAILED.

use super::authorize::Access;
use super::context::{Authorize, Groups, Reply as ApiReply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::group::state::{JoinArgs, JoinResult, Reply, SyncResult};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use std::sync::Arc;
use std::time::Duration;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// The coordinator of `key`: the leader of its `__consumer_offsets` partition.
fn coordinator_of(ctx: &impl Quorum, key: &str, listener: &str) -> Result<(i32, String, i32), (ResponseError, String)> {
    let metadata = ctx.metadata();
    let Some(topic) = metadata.topics.get(crate::group::OFFSETS_TOPIC) else {
        return Err((ResponseError::CoordinatorNotAvailable, "the offsets topic is being created".into()));
    };
    let index = crate::group::store::partition_for(key, topic.partitions.len());
    let leader = topic.partitions.get(index).map_or(crate::controller::NO_LEADER, |p| p.leader);
    match metadata.brokers.get(&leader).filter(|b| !b.fenced) {
        Some(b) => match b.endpoint(listener) {
            Some((host, port)) => Ok((b.id, host.to_string(), i32::from(port))),
            None => {
                Err((ResponseError::CoordinatorNotAvailable, format!("broker {} has no listener {listener}", b.id)))
            }
        },
        None => Err((
            ResponseError::CoordinatorNotAvailable,
            format!("{}-{index} has no leader right now", crate::group::OFFSETS_TOPIC),
        )),
    }
}

/// Answers FindCoordinator: a group's coordinator is the leader of its offsets partition;
/// transactions are not supported.
fn find_coordinator<C: Quorum>(
    ctx: &C,
    rc: &RequestContext,
    access: &Access,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let answer = |key_type: i8, key: &str| -> Result<(i32, String, i32), (ResponseError, String)> {
        let refused = |error: ResponseError| Err((error, "not authorized".to_string()));
        if key_type == KEY_TYPE_GROUP && !access.group(AclOperation::Describe, key) {
            refused(ResponseError::GroupAuthorizationFailed)
        } else if key_type == KEY_TYPE_TRANSACTION
            && !access.allows(AclOperation::Describe, ResourceType::TransactionalId, key)
        {
            refused(ResponseError::TransactionalIdAuthorizationFailed)
        } else if key_type == KEY_TYPE_GROUP {
            coordinator_of(ctx, key, &rc.connection.listener)
        } else {
            Err((ResponseError::CoordinatorNotAvailable, "transactions are not supported by this broker".into()))
        }
    };
    if rc.version() >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = answer(request.key_type, &key);
                let entry = Coordinator::default().with_key(key);
                match found {
                    Ok((node, host, port)) => {
                        entry.with_node_id(BrokerId(node)).with_host(str_bytes(host)).with_port(port)
                    }
                    Err((error, message)) => entry
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(error.code())
                        .with_error_message(Some(str_bytes(message))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match answer(request.key_type, &request.key) {
        Ok((node, host, port)) => {
            FindCoordinatorResponse::default().with_node_id(BrokerId(node)).with_host(str_bytes(host)).with_port(port)
        }
        Err((error, message)) => FindCoordinatorResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}

fn join_response(version: i16, result: JoinResult) -> JoinGroupResponse {
    // Before v7 the protocol name is not nullable.
    let protocol_name = result.protocol_name.map(str_bytes).or_else(|| (version < 7).then(|| str_bytes("")));
    JoinGroupResponse::default()
        .with_error_code(code(result.error))
        .with_generation_id(result.generation)
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(result.leader))
        .with_member_id(str_bytes(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_metadata(metadata)
                })
                .collect(),
        )
}

/// Answers JoinGroup; the response waits for the rebalance to complete.
fn join(
    ctx: &impl Groups,
    rc: &RequestContext,
    access: &Access,
    request: JoinGroupRequest,
) -> BoxFuture<'static, JoinGroupResponse> {
    let version = rc.version();
    let member_id = request.member_id.to_string();
    let fail = move |error: ResponseError| -> BoxFuture<'static, JoinGroupResponse> {
        let result =
            JoinResult { error: Some(error), generation: -1, member_id: member_id.clone(), ..Default::default() };
        Box::pin(async move { join_response(version, result) })
    };
    let group_id = request.group_id.0.to_string();
    if !access.group(AclOperation::Read, &group_id) {
        return fail(ResponseError::GroupAuthorizationFailed);
    }
    if group_id.is_empty() {
        return fail(ResponseError::InvalidGroupId);
    }
    if let Err(error) = ctx.groups().check_coordinator(&group_id) {
        return fail(error);
    }
    let session = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    if !ctx.groups().session_timeout_allowed(session) {
        return fail(ResponseError::InvalidSessionTimeout);
    }
    // v0 has no rebalance timeout; Kafka uses the session timeout then.
    let rebalance =
        if version >= 1 { Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64) } else { session };
    let args = JoinArgs {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: rc.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        client_host: format!("/{}", rc.peer().ip()),
        session_timeout: session,
        rebalance_timeout: rebalance,
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: version >= 4,
    };
    let member_id = args.member_id.clone();
    match ctx.groups().join(&group_id, args) {
        Reply::Now(result) => Box::pin(async move { join_response(version, result) }),
        Reply::Later(receiver) => Box::pin(async move {
            let result = receiver.await.unwrap_or_else(|_| JoinResult {
                error: Some(ResponseError::UnknownMemberId),
                generation: -1,
                member_id,
                ..Default::default()
            });
            join_response(version, result)
        }),
    }
}

fn sync_response(result: SyncResult) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(code(result.error))
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(result.protocol_name.map(str_bytes))
        .with_assignment(result.assignment)
}

/// Answers SyncGroup; followers wait for the leader's assignments.
fn sync(ctx: &impl Groups, access: &Access, request: SyncGroupRequest) -> BoxFuture<'static, SyncGroupResponse> {
    let authorized = if access.group(AclOperation::Read, &request.group_id.0) {
        Ok(())
    } else {
        Err(ResponseError::GroupAuthorizationFailed)
    };
    if let Err(error) = authorized.and_then(|()| ctx.groups().check_coordinator(&request.group_id.0)) {
        return Box::pin(async move { sync_response(SyncResult { error: Some(error), ..Default::default() }) });
    }
    let assignments: Vec<(String, Bytes)> =
        request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
    let reply = ctx.groups().sync(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        assignments,
    );
    match reply {
        Reply::Now(result) => Box::pin(async move { sync_response(result) }),
        Reply::Later(receiver) => Box::pin(async move {
            let result = receiver
                .await
                .unwrap_or_else(|_| SyncResult { error: Some(ResponseError::UnknownMemberId), ..Default::default() });
            sync_response(result)
        }),
    }
}

/// Answers Heartbeat.
fn heartbeat(ctx: &impl Groups, access: &Access, request: HeartbeatRequest) -> HeartbeatResponse {
    if !access.group(AclOperation::Read, &request.group_id.0) {
        return HeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(error) = ctx.groups().check_coordinator(&request.group_id.0) {
        return HeartbeatResponse::default().with_error_code(error.code());
    }
    let error = ctx.groups().heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code(error))
}

/// Answers LeaveGroup (single member before v3, batched from v3).
fn leave(ctx: &impl Groups, rc: &RequestContext, access: &Access, request: LeaveGroupRequest) -> LeaveGroupResponse {
    if !access.group(AclOperation::Read, &request.group_id.0) {
        return LeaveGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let batched = rc.version() >= 3;
    let members: Vec<(String, Option<String>)> = if batched {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    if let Err(error) = ctx.groups().check_coordinator(&request.group_id.0) {
        return LeaveGroupResponse::default().with_error_code(error.code());
    }
    match ctx.groups().leave(&request.group_id.0, &members) {
        Err(error) => LeaveGroupResponse::default().with_error_code(error.code()),
        Ok(results) if batched => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(results)
                .map(|((id, instance), error)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_error_code(code(error))
                })
                .collect(),
        ),
        Ok(results) => LeaveGroupResponse::default().with_error_code(code(results.into_iter().next().flatten())),
    }
}

/// Answers ListGroups, honouring the state (v4) and type (v5) filters: every group for Describe
/// on the cluster, else the groups the client may Describe.
fn list(ctx: &impl Groups, access: &Access, request: ListGroupsRequest) -> ListGroupsResponse {
    let all = access.allows_quietly(AclOperation::Describe, ResourceType::Cluster, CLUSTER_RESOURCE_NAME);
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = ctx
        .groups()
        .list()
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .filter(|(id, _, _)| all || access.allows_quietly(AclOperation::Describe, ResourceType::Group, id))
        .map(|(id, protocol_type, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(protocol_type))
                .with_group_state(str_bytes(state))
                .with_group_type(str_bytes("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// Answers DescribeGroups. Unknown groups are reported as `Dead`, with GROUP_ID_NOT_FOUND from v6.
fn describe(
    ctx: &impl Groups,
    rc: &RequestContext,
    access: &Access,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let with_operations = request.include_authorized_operations;
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(i32::MIN);
            if !access.group(AclOperation::Describe, &id.0) {
                return described
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                    .with_group_state(str_bytes(""));
            }
            let described = if with_operations {
                described.with_authorized_operations(access.operations(ResourceType::Group, &id.0))
            } else {
                described
            };
            if let Err(error) = ctx.groups().check_coordinator(&id.0) {
                return described.with_error_code(error.code()).with_group_state(str_bytes(""));
            }
            match ctx.groups().describe(&id.0) {
                None => {
                    let described = described.with_group_state(str_bytes("Dead"));
                    if rc.version() >= 6 {
                        described
                            .with_error_code(ResponseError::GroupIdNotFound.code())
                            .with_error_message(Some(str_bytes(format!("group '{}' does not exist", id.0))))
                    } else {
                        described
                    }
                }
                Some(group) => described
                    .with_group_state(str_bytes(group.state))
                    .with_protocol_type(str_bytes(group.protocol_type))
                    .with_protocol_data(str_bytes(group.protocol))
                    .with_members(
                        group
                            .members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(m.instance_id.map(str_bytes))
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Answers DeleteGroups: only empty groups can be deleted.
async fn delete(ctx: &impl Groups, access: &Access, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let authorized = access.group(AclOperation::Delete, &id.0);
        let error = match ctx.groups().check_coordinator(&id.0) {
            _ if !authorized => Some(ResponseError::GroupAuthorizationFailed),
            Ok(()) => ctx.groups().delete_group(&id.0).await.err(),
            Err(e) => Some(e),
        };
        results.push(DeletableGroupResult::default().with_group_id(id).with_error_code(code(error)));
    }
    DeleteGroupsResponse::default().with_results(results)
}

impl<C: Quorum + Groups + Authorize> Handler<C> for FindCoordinatorRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: FindCoordinatorRequest,
    ) -> ApiReply<FindCoordinatorResponse> {
        ApiReply::Now(find_coordinator(&**ctx, rc, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for JoinGroupRequest {
    /// The member joins now; the answer waits for the rebalance.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: JoinGroupRequest) -> ApiReply<JoinGroupResponse> {
        ApiReply::Later(join(&**ctx, rc, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for SyncGroupRequest {
    /// Followers' answers wait for the leader's assignments.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: SyncGroupRequest) -> ApiReply<SyncGroupResponse> {
        ApiReply::Later(sync(&**ctx, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for HeartbeatRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: HeartbeatRequest) -> ApiReply<HeartbeatResponse> {
        ApiReply::Now(heartbeat(&**ctx, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for LeaveGroupRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: LeaveGroupRequest) -> ApiReply<LeaveGroupResponse> {
        ApiReply::Now(leave(&**ctx, rc, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for ListGroupsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: ListGroupsRequest) -> ApiReply<ListGroupsResponse> {
        ApiReply::Now(list(&**ctx, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for DescribeGroupsRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeGroupsRequest,
    ) -> ApiReply<DescribeGroupsResponse> {
        ApiReply::Now(describe(&**ctx, rc, &Access::of(&**ctx, rc), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for DeleteGroupsRequest {
    /// Answered later: deleting writes tombstones to the offsets log.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: DeleteGroupsRequest) -> ApiReply<DeleteGroupsResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        ApiReply::Later(Box::pin(async move { delete(&*ctx, &access, request).await }))
    }
}
