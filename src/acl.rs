//! `millrace acl add|list|remove`: Kafka ACLs in the cluster's metadata quorum, over the Kafka
//! protocol (CreateAcls / DescribeAcls / DeleteAcls) with the vocabulary of Kafka's
//! `kafka-acls.sh`: `--allow-principal User:alice --operation Read --topic logs`.

use crate::cluster::check;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use millrace_broker::security::acl::{
    AclOperation, AclPermissionType, PatternType, ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD,
};
use millrace_protocol::Connection;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);
/// The request version used: v1 is the oldest the broker decodes and carries pattern types.
const VERSION: i16 = 1;

/// `millrace acl` arguments.
#[derive(Args)]
pub struct AclArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Subcommand)]
enum AclCommand {
    /// Add ACLs: every principal × host × operation on every resource named.
    Add(Selection),
    /// List ACLs (of the resources named, or all).
    List(Selection),
    /// Remove the ACLs that match (of the resources named; every entry of them unless
    /// principals or operations narrow it).
    Remove(Selection),
}

/// Resources, principals, hosts and operations, as kafka-acls.sh names them.
#[derive(Args)]
struct Selection {
    /// A topic (repeatable); `*` is every topic.
    #[arg(long)]
    topic: Vec<String>,
    /// A consumer group (repeatable); `*` is every group.
    #[arg(long)]
    group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id (repeatable).
    #[arg(long)]
    transactional_id: Vec<String>,
    /// How resource names match: literal or prefixed (add); also any or match (list, remove).
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
    /// Principal to allow, e.g. User:alice (repeatable).
    #[arg(long)]
    allow_principal: Vec<String>,
    /// Principal to deny (repeatable).
    #[arg(long)]
    deny_principal: Vec<String>,
    /// Hosts (IP addresses) the allow principals may connect from; default every host.
    #[arg(long)]
    allow_host: Vec<String>,
    /// Hosts the deny principals are refused from; default every host.
    #[arg(long)]
    deny_host: Vec<String>,
    /// Operation (repeatable): Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite or All.
    #[arg(long)]
    operation: Vec<String>,
    /// list: only the ACLs of this principal.
    #[arg(long)]
    principal: Option<String>,
}

fn parse_named<T: Copy + std::fmt::Display>(values: &[T], name: &str, what: &str) -> anyhow::Result<T> {
    // Kafka's tools accept `ClusterAction` as well as `CLUSTER_ACTION`.
    let wanted = name.replace(['_', '-'], "").to_uppercase();
    values
        .iter()
        .copied()
        .find(|v| v.to_string().replace('_', "") == wanted)
        .with_context(|| format!("unknown {what} {name}"))
}

fn pattern_type(name: &str) -> anyhow::Result<PatternType> {
    parse_named(PatternType::VALUES, name, "resource pattern type").and_then(|p| match p {
        PatternType::Unknown => bail!("unknown resource pattern type {name}"),
        p => Ok(p),
    })
}

fn operations(names: &[String]) -> anyhow::Result<Vec<AclOperation>> {
    names
        .iter()
        .map(|n| match parse_named(AclOperation::VALUES, n, "operation")? {
            AclOperation::Unknown | AclOperation::Any => bail!("{n} is not an operation an ACL can name"),
            op => Ok(op),
        })
        .collect()
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

impl Selection {
    /// The resources named, as (type, name); `--cluster` is Kafka's one cluster resource.
    fn resources(&self) -> Vec<(ResourceType, &str)> {
        let mut out: Vec<(ResourceType, &str)> = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.as_str())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.as_str())));
        out.extend(self.transactional_id.iter().map(|t| (ResourceType::TransactionalId, t.as_str())));
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_RESOURCE_NAME));
        }
        out
    }

    /// (permission, principal, host) for every principal given, hosts defaulting to `*`.
    fn entries(&self) -> Vec<(AclPermissionType, &str, &str)> {
        let mut out = Vec::new();
        for (permission, principals, hosts) in [
            (AclPermissionType::Allow, &self.allow_principal, &self.allow_host),
            (AclPermissionType::Deny, &self.deny_principal, &self.deny_host),
        ] {
            let hosts: Vec<&str> =
                if hosts.is_empty() { vec![WILDCARD] } else { hosts.iter().map(String::as_str).collect() };
            for principal in principals {
                out.extend(hosts.iter().map(|h| (permission, principal.as_str(), *h)));
            }
        }
        out
    }

    fn creations(&self) -> anyhow::Result<Vec<AclCreation>> {
        let pattern = pattern_type(&self.resource_pattern_type)?;
        if !matches!(pattern, PatternType::Literal | PatternType::Prefixed) {
            bail!("ACLs are added with --resource-pattern-type literal or prefixed");
        }
        let ops = operations(&self.operation)?;
        let (resources, entries) = (self.resources(), self.entries());
        if resources.is_empty() || entries.is_empty() || ops.is_empty() {
            bail!("add needs a resource (--topic, --group, --cluster, --transactional-id), a principal (--allow-principal, --deny-principal) and an --operation");
        }
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (permission, principal, host) in &entries {
                for op in &ops {
                    out.push(creation((*rt, name), pattern, *permission, principal, host, *op));
                }
            }
        }
        Ok(out)
    }

    /// The filters list and remove send: per resource (or any resource), per principal and host
    /// given (or any), per operation given (or any).
    fn filters(&self) -> anyhow::Result<Vec<DeleteAclsFilter>> {
        let pattern = pattern_type(&self.resource_pattern_type)?;
        let resources: Vec<(ResourceType, Option<&str>, PatternType)> = match self.resources() {
            none if none.is_empty() => vec![(ResourceType::Any, None, PatternType::Any)],
            some => some.into_iter().map(|(rt, name)| (rt, Some(name), pattern)).collect(),
        };
        let mut entries: Vec<(AclPermissionType, Option<&str>, Option<&str>)> =
            self.entries().into_iter().map(|(p, principal, host)| (p, Some(principal), Some(host))).collect();
        // Hosts narrow only when given; `*` stands for "any host" in a filter made from defaults.
        for entry in &mut entries {
            if entry.2 == Some(WILDCARD) && self.allow_host.is_empty() && self.deny_host.is_empty() {
                entry.2 = None;
            }
        }
        if entries.is_empty() {
            entries.push((AclPermissionType::Any, self.principal.as_deref(), None));
        }
        let ops = match operations(&self.operation)? {
            none if none.is_empty() => vec![AclOperation::Any],
            some => some,
        };
        let mut out = Vec::new();
        for (rt, name, pattern) in &resources {
            for (permission, principal, host) in &entries {
                for op in &ops {
                    out.push(
                        DeleteAclsFilter::default()
                            .with_resource_type_filter(rt.code())
                            .with_resource_name_filter(name.map(s))
                            .with_pattern_type_filter(pattern.code())
                            .with_principal_filter(principal.map(s))
                            .with_host_filter(host.map(s))
                            .with_operation(op.code())
                            .with_permission_type(permission.code()),
                    );
                }
            }
        }
        Ok(out)
    }
}

/// One ACL to create: `permission` for `principal` from `host` to do `op` on the resource
/// (type, name) matched as `pattern` says.
pub fn creation(
    (resource_type, name): (ResourceType, &str),
    pattern: PatternType,
    permission: AclPermissionType,
    principal: &str,
    host: &str,
    op: AclOperation,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type.code())
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern.code())
        .with_principal(s(principal))
        .with_host(s(host))
        .with_operation(op.code())
        .with_permission_type(permission.code())
}

/// Creates `creations` (CreateAcls); fails on the first the cluster refuses.
pub async fn create(conn: &mut Connection, creations: Vec<AclCreation>) -> anyhow::Result<()> {
    let response = conn.request(VERSION, &CreateAclsRequest::default().with_creations(creations), TIMEOUT).await?;
    for r in &response.results {
        check(r.error_code, r.error_message.as_ref(), "CreateAcls")?;
    }
    Ok(())
}

/// One binding per line: resource type, name, pattern type, principal, host, operation,
/// permission, tab-separated.
fn line(rt: i8, name: &str, pattern: i8, principal: &str, host: &str, op: i8, permission: i8) -> String {
    format!(
        "{}\t{name}\t{}\t{principal}\t{host}\t{}\t{}",
        ResourceType::from_code(rt),
        PatternType::from_code(pattern),
        AclOperation::from_code(op),
        AclPermissionType::from_code(permission)
    )
}

/// Runs an acl subcommand.
pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    let mut conn = args.client.client()?.connect().await?;
    match args.command {
        AclCommand::Add(selection) => {
            let creations = selection.creations()?;
            let count = creations.len();
            create(&mut conn, creations).await?;
            println!("Added {count} ACLs.");
        }
        AclCommand::List(selection) => {
            let mut lines = std::collections::BTreeSet::new();
            for f in selection.filters()? {
                let request = DescribeAclsRequest::default()
                    .with_resource_type_filter(f.resource_type_filter)
                    .with_resource_name_filter(f.resource_name_filter)
                    .with_pattern_type_filter(f.pattern_type_filter)
                    .with_principal_filter(f.principal_filter)
                    .with_host_filter(f.host_filter)
                    .with_operation(f.operation)
                    .with_permission_type(f.permission_type);
                let response = conn.request(VERSION, &request, TIMEOUT).await?;
                check(response.error_code, response.error_message.as_ref(), "DescribeAcls")?;
                for r in &response.resources {
                    for a in &r.acls {
                        lines.insert(line(
                            r.resource_type,
                            &r.resource_name,
                            r.pattern_type,
                            &a.principal,
                            &a.host,
                            a.operation,
                            a.permission_type,
                        ));
                    }
                }
            }
            for l in lines {
                println!("{l}");
            }
        }
        AclCommand::Remove(selection) => {
            let filters = selection.filters()?;
            let response = conn.request(VERSION, &DeleteAclsRequest::default().with_filters(filters), TIMEOUT).await?;
            let mut removed = 0;
            for r in &response.filter_results {
                check(r.error_code, r.error_message.as_ref(), "DeleteAcls")?;
                for m in &r.matching_acls {
                    check(m.error_code, m.error_message.as_ref(), "DeleteAcls")?;
                    removed += 1;
                    println!(
                        "Removed\t{}",
                        line(
                            m.resource_type,
                            &m.resource_name,
                            m.pattern_type,
                            &m.principal,
                            &m.host,
                            m.operation,
                            m.permission_type
                        )
                    );
                }
            }
            println!("Removed {removed} ACLs.");
        }
    }
    Ok(())
}
