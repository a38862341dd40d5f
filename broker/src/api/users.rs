//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): SCRAM users kept in the
//! metadata quorum. Clients send the salt and the salted password, never the password; the
//! broker derives and stores the keys and answers with mechanisms and iteration counts only.

use super::authorize::Access;
use super::context::{Authorize, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::{MetadataCommand, MetadataState};
use crate::security::acl::AclOperation;
use crate::security::scram::{Mechanism, ScramCredential};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long an alteration waits for the quorum.
const ALTER_TIMEOUT: Duration = Duration::from_secs(10);

fn described(user: &str, state: &MetadataState) -> DescribeUserScramCredentialsResult {
    let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
    match state.scram_credentials.get(user) {
        Some(credentials) => result.with_credential_infos(
            credentials
                .values()
                .map(|c| {
                    CredentialInfo::default()
                        .with_mechanism(c.mechanism.code())
                        .with_iterations(i32::try_from(c.iterations).unwrap_or(i32::MAX))
                })
                .collect(),
        ),
        None => result
            .with_error_code(ResponseError::ResourceNotFound.code())
            .with_error_message(Some(str_bytes(format!("user {user} has no SCRAM credentials")))),
    }
}

/// Answers DescribeUserScramCredentials: every user when none is named, as Kafka does.
fn describe<C: Quorum>(ctx: &C, request: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let state = ctx.metadata();
    let named = request.users.unwrap_or_default();
    let results = if named.is_empty() {
        state.scram_credentials.keys().map(|user| described(user, &state)).collect()
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for user in &named {
            *counts.entry(user.name.as_str()).or_default() += 1;
        }
        let mut answered = BTreeSet::new();
        named
            .iter()
            .filter(|user| answered.insert(user.name.as_str()))
            .map(|user| {
                let name = user.name.as_str();
                if counts.get(name).is_some_and(|n| *n > 1) {
                    DescribeUserScramCredentialsResult::default()
                        .with_user(user.name.clone())
                        .with_error_code(ResponseError::DuplicateResource.code())
                        .with_error_message(Some(str_bytes(format!("user {name} is named more than once"))))
                } else {
                    described(name, &state)
                }
            })
            .collect()
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// Why one user's alteration is refused before anything is proposed.
struct Refused(ResponseError, String);

/// The commands for one user's part of an AlterUserScramCredentials request.
fn user_commands(
    user: &str,
    deletions: &[i8],
    upsertions: &[(i8, i32, &[u8], &[u8])],
) -> Result<Vec<MetadataCommand>, Refused> {
    if user.is_empty() {
        return Err(Refused(ResponseError::UnacceptableCredential, "the user name is empty".into()));
    }
    let mechanism = |code: i8| {
        Mechanism::from_code(code).ok_or_else(|| {
            Refused(ResponseError::UnsupportedSaslMechanism, format!("unknown SCRAM mechanism code {code}"))
        })
    };
    let mut seen = BTreeSet::new();
    let mut commands = Vec::new();
    for &code in deletions {
        let mechanism = mechanism(code)?;
        if !seen.insert(mechanism) {
            return Err(Refused(ResponseError::DuplicateResource, format!("{mechanism} is altered twice for {user}")));
        }
        commands.push(MetadataCommand::DeleteScramCredential { user: user.to_string(), mechanism });
    }
    for &(code, iterations, salt, salted_password) in upsertions {
        let mechanism = mechanism(code)?;
        if !seen.insert(mechanism) {
            return Err(Refused(ResponseError::DuplicateResource, format!("{mechanism} is altered twice for {user}")));
        }
        let iterations = u32::try_from(iterations).unwrap_or(0);
        let credential = ScramCredential::from_salted_password(mechanism, salt, salted_password, iterations)
            .map_err(|e| Refused(ResponseError::UnacceptableCredential, e.to_string()))?;
        commands.push(MetadataCommand::UpsertScramCredential { user: user.to_string(), credential });
    }
    Ok(commands)
}

/// Answers AlterUserScramCredentials: one result per user; a user's changes are all checked
/// before any is proposed, and the first refusal is that user's answer.
async fn alter<C: Quorum>(ctx: &C, request: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    // Users in order of first appearance, with their deletions and upsertions.
    type Upsertion<'a> = (i8, i32, &'a [u8], &'a [u8]);
    let mut order: Vec<&str> = Vec::new();
    let mut deletions: BTreeMap<&str, Vec<i8>> = BTreeMap::new();
    let mut upsertions: BTreeMap<&str, Vec<Upsertion>> = BTreeMap::new();
    for d in &request.deletions {
        if !order.contains(&d.name.as_str()) {
            order.push(d.name.as_str());
        }
        deletions.entry(d.name.as_str()).or_default().push(d.mechanism);
    }
    for u in &request.upsertions {
        if !order.contains(&u.name.as_str()) {
            order.push(u.name.as_str());
        }
        upsertions.entry(u.name.as_str()).or_default().push((
            u.mechanism,
            u.iterations,
            &u.salt[..],
            &u.salted_password[..],
        ));
    }
    let mut results = Vec::with_capacity(order.len());
    for user in order {
        let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(user));
        let commands = user_commands(
            user,
            deletions.get(user).map_or(&[][..], Vec::as_slice),
            upsertions.get(user).map_or(&[][..], Vec::as_slice),
        );
        let outcome = match commands {
            Err(refused) => Err(refused),
            Ok(commands) => {
                let mut outcome = Ok(());
                for cmd in commands {
                    if let Err(e) = ctx.propose(cmd, ALTER_TIMEOUT).await {
                        outcome = Err(Refused(e.error_code(), e.to_string()));
                        break;
                    }
                }
                outcome
            }
        };
        results.push(match outcome {
            Ok(()) => {
                tracing::info!(user, "SCRAM credentials altered");
                result
            }
            Err(Refused(code, message)) => {
                result.with_error_code(code.code()).with_error_message(Some(str_bytes(message)))
            }
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

impl<C: Quorum + Authorize> Handler<C> for DescribeUserScramCredentialsRequest {
    /// Needs Describe on the cluster, as in Kafka.
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeUserScramCredentialsRequest,
    ) -> Reply<DescribeUserScramCredentialsResponse> {
        if !Access::of(&**ctx, rc).cluster(AclOperation::Describe) {
            return Reply::Now(
                DescribeUserScramCredentialsResponse::default()
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes("not authorized on the cluster"))),
            );
        }
        Reply::Now(describe(&**ctx, request))
    }
}

impl<C: Quorum + Authorize> Handler<C> for AlterUserScramCredentialsRequest {
    /// Answered later: each change waits for the quorum. Needs Alter on the cluster; without it
    /// every user's result is the refusal, as in Kafka.
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: AlterUserScramCredentialsRequest,
    ) -> Reply<AlterUserScramCredentialsResponse> {
        if !Access::of(&**ctx, rc).cluster(AclOperation::Alter) {
            let mut users: Vec<_> = request.deletions.iter().map(|d| d.name.clone()).collect();
            users.extend(request.upsertions.iter().map(|u| u.name.clone()));
            let mut seen = BTreeSet::new();
            users.retain(|u| seen.insert(u.clone()));
            let results = users
                .into_iter()
                .map(|user| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(user)
                        .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                        .with_error_message(Some(str_bytes("not authorized on the cluster")))
                })
                .collect();
            return Reply::Now(AlterUserScramCredentialsResponse::default().with_results(results));
        }
        let ctx = ctx.clone();
        Reply::Later(Box::pin(async move { alter(&*ctx, request).await }))
    }
}
