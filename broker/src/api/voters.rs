//! AddRaftVoter and RemoveRaftVoter (KIP-853): change the metadata quorum's voters while it runs.
//! The node added must already be a non-voting member (its broker running); its controller
//! address is the one it joined with, so the request's listeners are not needed.

use super::authorize::Access;
use super::context::{Authorize, Reply, RequestContext, Settings};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::VoterChange;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

/// Runs one change: the error code and message a response carries.
async fn change<C: Quorum + Settings>(
    ctx: &C,
    access: &Access,
    cluster_id: Option<&StrBytes>,
    voter_id: i32,
    make: fn(u64) -> VoterChange,
) -> (i16, Option<StrBytes>) {
    if !access.cluster(AclOperation::Alter) {
        return (ResponseError::ClusterAuthorizationFailed.code(), None);
    }
    if cluster_id.is_some_and(|id| !id.is_empty() && id.as_str() != ctx.cluster_id()) {
        let message = format!("this is cluster {}", ctx.cluster_id());
        return (ResponseError::InconsistentClusterId.code(), Some(str_bytes(message)));
    }
    let Ok(id) = u64::try_from(voter_id) else {
        return (ResponseError::InvalidRequest.code(), Some(str_bytes(format!("{voter_id} is not a node id"))));
    };
    match ctx.change_voters(make(id)).await {
        Ok(voters) => {
            tracing::info!(?voters, "metadata quorum voters changed on request");
            (0, None)
        }
        Err(e) => (e.error_code().code(), Some(str_bytes(e.to_string()))),
    }
}

impl<C: Quorum + Settings + Authorize + 'static> Handler<C> for AddRaftVoterRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: AddRaftVoterRequest) -> Reply<AddRaftVoterResponse> {
        let (ctx, access) = (ctx.clone(), Access::of(&**ctx, rc));
        Reply::Later(Box::pin(async move {
            let (code, message) =
                change(&*ctx, &access, request.cluster_id.as_ref(), request.voter_id, VoterChange::Add).await;
            AddRaftVoterResponse::default().with_error_code(code).with_error_message(message)
        }))
    }
}

impl<C: Quorum + Settings + Authorize + 'static> Handler<C> for RemoveRaftVoterRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: RemoveRaftVoterRequest,
    ) -> Reply<RemoveRaftVoterResponse> {
        let (ctx, access) = (ctx.clone(), Access::of(&**ctx, rc));
        Reply::Later(Box::pin(async move {
            let (code, message) =
                change(&*ctx, &access, request.cluster_id.as_ref(), request.voter_id, VoterChange::Remove).await;
            RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message)
        }))
    }
}
