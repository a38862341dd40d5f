//! Unit tests for the ACL model, filters and the authorizer decision.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kafka_protocol::error::ResponseError;

use super::*;
use AclOperation as Op;
use AclPermissionType::{Allow, Deny};
use Decision::{Allowed, Denied};
use PatternType::{Literal, Prefixed};
use ResourceType::{Cluster, Group, Topic};

const ALICE: &str = "User:alice";
const BOB: &str = "User:bob";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn local() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
}

fn acl(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    host: &str,
    op: AclOperation,
    perm: AclPermissionType,
) -> AclBinding {
    AclBinding::new(ResourcePattern::new(rt, name, pt), AccessControlEntry::new(principal, host, op, perm))
}

fn topic_acl(name: &str, pt: PatternType, principal: &str, op: AclOperation, perm: AclPermissionType) -> AclBinding {
    acl(Topic, name, pt, principal, "*", op, perm)
}

fn authorizer(bindings: impl IntoIterator<Item = AclBinding>) -> Authorizer {
    let mut a = Authorizer::new(["User:admin"], false);
    for b in bindings {
        assert!(a.add(b).unwrap());
    }
    a
}

fn check(a: &Authorizer, principal: &str, op: AclOperation, topic: &str) -> Decision {
    a.authorize(principal, local(), op, Topic, topic)
}

#[test]
fn allow_for_principal_and_nothing_else() {
    let a = authorizer([topic_acl("orders", Literal, ALICE, Op::Read, Allow)]);
    assert_eq!(check(&a, ALICE, Op::Read, "orders"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Write, "orders"), Denied);
    assert_eq!(check(&a, BOB, Op::Read, "orders"), Denied);
    assert_eq!(check(&a, ALICE, Op::Read, "orders2"), Denied);
    assert_eq!(a.authorize(ALICE, local(), Op::Read, Group, "orders"), Denied);
}

#[test]
fn deny_wins_over_allow() {
    let a = authorizer([
        topic_acl("orders", Literal, ALICE, Op::Read, Allow),
        topic_acl("*", Literal, ALICE, Op::Read, Deny),
    ]);
    assert_eq!(check(&a, ALICE, Op::Read, "orders"), Denied);
    // A deny of All denies every operation, even one allowed explicitly.
    let a = authorizer([
        topic_acl("orders", Literal, ALICE, Op::Write, Allow),
        topic_acl("ord", Prefixed, ALICE, Op::All, Deny),
    ]);
    assert_eq!(check(&a, ALICE, Op::Write, "orders"), Denied);
}

#[test]
fn deny_is_not_implied() {
    // Denying Read does not deny Describe, which an allowed Write still implies.
    let a = authorizer([
        topic_acl("orders", Literal, ALICE, Op::Write, Allow),
        topic_acl("orders", Literal, ALICE, Op::Read, Deny),
    ]);
    assert_eq!(check(&a, ALICE, Op::Describe, "orders"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Read, "orders"), Denied);
}

#[test]
fn wildcard_principal() {
    let a = authorizer([topic_acl("orders", Literal, "User:*", Op::Read, Allow)]);
    assert_eq!(check(&a, ALICE, Op::Read, "orders"), Allowed);
    assert_eq!(check(&a, BOB, Op::Read, "orders"), Allowed);
    let a = authorizer([
        topic_acl("orders", Literal, ALICE, Op::Read, Allow),
        topic_acl("orders", Literal, "User:*", Op::Read, Deny),
    ]);
    assert_eq!(check(&a, ALICE, Op::Read, "orders"), Denied);
}

#[test]
fn wildcard_host_vs_specific_host() {
    let a = authorizer([acl(Topic, "orders", Literal, ALICE, "10.0.0.1", Op::Read, Allow)]);
    assert_eq!(a.authorize(ALICE, ip("10.0.0.1"), Op::Read, Topic, "orders"), Allowed);
    assert_eq!(a.authorize(ALICE, ip("10.0.0.2"), Op::Read, Topic, "orders"), Denied);
    // IPv4-mapped IPv6 is the same client.
    assert_eq!(a.authorize(ALICE, ip("::ffff:10.0.0.1"), Op::Read, Topic, "orders"), Allowed);

    let a = authorizer([
        acl(Topic, "orders", Literal, ALICE, "*", Op::Read, Allow),
        acl(Topic, "orders", Literal, ALICE, "::ffff:10.0.0.9", Op::Read, Deny),
    ]);
    assert_eq!(a.authorize(ALICE, ip("10.0.0.2"), Op::Read, Topic, "orders"), Allowed);
    assert_eq!(a.authorize(ALICE, ip("10.0.0.9"), Op::Read, Topic, "orders"), Denied);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(a.authorize(ALICE, v6, Op::Read, Topic, "orders"), Allowed);
}

#[test]
fn literal_prefixed_and_wildcard_patterns() {
    let a = authorizer([
        topic_acl("orders", Literal, ALICE, Op::Read, Allow),
        topic_acl("pay", Prefixed, ALICE, Op::Write, Allow),
        topic_acl("*", Literal, ALICE, Op::Create, Allow),
    ]);
    assert_eq!(check(&a, ALICE, Op::Read, "orders"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Read, "orders-eu"), Denied, "literal is exact");
    assert_eq!(check(&a, ALICE, Op::Write, "payments"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Write, "pay"), Allowed, "a prefix matches itself");
    assert_eq!(check(&a, ALICE, Op::Write, "pa"), Denied);
    assert_eq!(check(&a, ALICE, Op::Write, "repay"), Denied);
    assert_eq!(check(&a, ALICE, Op::Create, "anything"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Create, "*"), Allowed);
    // A literal `*` applies only to its own resource type.
    assert_eq!(a.authorize(ALICE, local(), Op::Create, Group, "g"), Denied);
}

#[test]
fn multibyte_prefixes() {
    let a = authorizer([topic_acl("zü", Prefixed, ALICE, Op::Read, Allow)]);
    assert_eq!(check(&a, ALICE, Op::Read, "zürich"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Read, "z"), Denied);
}

#[test]
fn implied_describe() {
    for granted in [Op::Read, Op::Write, Op::Delete, Op::Alter] {
        let a = authorizer([topic_acl("t", Literal, ALICE, granted, Allow)]);
        assert_eq!(check(&a, ALICE, Op::Describe, "t"), Allowed, "{granted}");
        assert_eq!(check(&a, ALICE, Op::DescribeConfigs, "t"), Denied, "{granted}");
    }
    let a = authorizer([topic_acl("t", Literal, ALICE, Op::Create, Allow)]);
    assert_eq!(check(&a, ALICE, Op::Describe, "t"), Denied);
    // Describe does not imply Read.
    let a = authorizer([topic_acl("t", Literal, ALICE, Op::Describe, Allow)]);
    assert_eq!(check(&a, ALICE, Op::Read, "t"), Denied);
}

#[test]
fn implied_describe_configs() {
    let a = authorizer([topic_acl("t", Literal, ALICE, Op::AlterConfigs, Allow)]);
    assert_eq!(check(&a, ALICE, Op::DescribeConfigs, "t"), Allowed);
    assert_eq!(check(&a, ALICE, Op::Describe, "t"), Denied);
    let a = authorizer([topic_acl("t", Literal, ALICE, Op::DescribeConfigs, Allow)]);
    assert_eq!(check(&a, ALICE, Op::AlterConfigs, "t"), Denied);
}

#[test]
fn allow_all_allows_every_operation() {
    let a = authorizer([topic_acl("t", Literal, ALICE, Op::All, Allow)]);
    for &op in Topic.supported_operations() {
        assert_eq!(check(&a, ALICE, op, "t"), Allowed, "{op}");
    }
    // Not an action: never allowed.
    assert_eq!(check(&a, ALICE, Op::Any, "t"), Denied);
    assert_eq!(check(&a, ALICE, Op::Unknown, "t"), Denied);
}

#[test]
fn super_user_is_allowed_everything() {
    let a = authorizer([topic_acl("t", Literal, "User:admin", Op::All, Deny)]);
    assert_eq!(check(&a, "User:admin", Op::Delete, "t"), Allowed);
    assert_eq!(a.authorize("User:admin", local(), Op::ClusterAction, Cluster, "kafka-cluster"), Allowed);
    assert_eq!(check(&a, "User:Admin", Op::Delete, "t"), Denied, "principals are case-sensitive");
    assert_eq!(a.authorized_operations("User:admin", local(), Group, "g"), (1 << 3) | (1 << 8) | (1 << 6));
}

#[test]
fn allow_everyone_if_no_acl_found() {
    let mut a = Authorizer::new(Vec::<String>::new(), true);
    assert_eq!(check(&a, ALICE, Op::Write, "t"), Allowed, "no ACL at all");
    a.add(topic_acl("other", Literal, BOB, Op::Read, Allow)).unwrap();
    assert_eq!(check(&a, ALICE, Op::Write, "t"), Allowed, "ACLs only on another resource");
    // An ACL for someone else on this resource makes it governed: alice now needs an ALLOW.
    a.add(topic_acl("t", Literal, BOB, Op::Read, Allow)).unwrap();
    assert_eq!(check(&a, ALICE, Op::Write, "t"), Denied);
    assert_eq!(check(&a, BOB, Op::Read, "t"), Allowed);

    let mut a = Authorizer::new(Vec::<String>::new(), false);
    assert_eq!(check(&a, ALICE, Op::Write, "t"), Denied, "no ACL at all");
    a.add(topic_acl("other", Literal, BOB, Op::Read, Allow)).unwrap();
    assert_eq!(check(&a, ALICE, Op::Write, "t"), Denied);
}

#[test]
fn authorized_operations_bitfield() {
    let a = authorizer([topic_acl("t", Literal, ALICE, Op::Read, Allow)]);
    let bits = a.authorized_operations(ALICE, local(), Topic, "t");
    assert_eq!(bits, (1 << Op::Read.code()) | (1 << Op::Describe.code()));
    assert_eq!(bits, 264);
    assert_eq!(a.authorized_operations(BOB, local(), Topic, "t"), 0);

    let a = authorizer([acl(Cluster, "kafka-cluster", Literal, ALICE, "*", Op::All, Allow)]);
    let expected = Cluster.supported_operations().iter().fold(0, |b, op| b | (1 << op.code()));
    assert_eq!(a.authorized_operations(ALICE, local(), Cluster, "kafka-cluster"), expected);
    assert_eq!(expected & (1 << Op::Read.code()), 0, "Read is not a cluster operation");

    let open = Authorizer::new(Vec::<String>::new(), true);
    assert_eq!(open.authorized_operations(ALICE, local(), ResourceType::TransactionalId, "tx"), (1 << 8) | (1 << 4));
}

#[test]
fn wire_codes_round_trip() {
    for &v in ResourceType::VALUES {
        assert_eq!(ResourceType::try_from(v.code()).unwrap(), v);
    }
    for &v in PatternType::VALUES {
        assert_eq!(PatternType::try_from(v.code()).unwrap(), v);
    }
    for &v in AclOperation::VALUES {
        assert_eq!(AclOperation::try_from(v.code()).unwrap(), v);
    }
    for &v in AclPermissionType::VALUES {
        assert_eq!(AclPermissionType::try_from(v.code()).unwrap(), v);
    }
    assert_eq!(ResourceType::VALUES.len(), 8);
    assert_eq!(PatternType::VALUES.len(), 5);
    assert_eq!(AclOperation::VALUES.len(), 15);
    assert_eq!(AclPermissionType::VALUES.len(), 4);
    assert_eq!(ResourceType::TransactionalId.code(), 5);
    assert_eq!(ResourceType::User.code(), 7);
    assert_eq!(PatternType::Prefixed.code(), 4);
    assert_eq!(Op::IdempotentWrite.code(), 12);
    assert_eq!(Op::DescribeTokens.code(), 14);
    assert_eq!(Allow.code(), 3);
    assert_eq!(Deny.code(), 2);

    let err = AclOperation::try_from(15).unwrap_err();
    assert_eq!(err, AclError::UnknownCode { kind: "operation", code: 15 });
    assert_eq!(err.error_code(), ResponseError::InvalidRequest);
    assert!(ResourceType::try_from(-1).is_err());
    assert!(PatternType::try_from(5).is_err());
    assert!(AclPermissionType::try_from(4).is_err());
    assert_eq!(AclOperation::from_code(99), Op::Unknown);
    assert_eq!(PatternType::from_code(3), Literal);
}

#[test]
fn binding_serde_round_trip() {
    let b = acl(Topic, "pay", Prefixed, ALICE, "10.1.2.3", Op::Write, Deny);
    let json = serde_json::to_string(&b).unwrap();
    assert_eq!(serde_json::from_str::<AclBinding>(&json).unwrap(), b);
}

#[test]
fn validation_refusals() {
    let ok = topic_acl("t", Literal, ALICE, Op::Read, Allow);
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(acl(Cluster, "kafka-cluster", Literal, ALICE, "::1", Op::Alter, Allow).validate(), Ok(()));
    assert_eq!(topic_acl("*", Literal, "User:*", Op::All, Deny).validate(), Ok(()));
    assert_eq!(topic_acl("t", Literal, "User:CN=a,O=b:c", Op::Read, Allow).validate(), Ok(()));

    let refused = |b: AclBinding| {
        let err = b.validate().unwrap_err();
        assert_eq!(err.error_code(), ResponseError::InvalidRequest, "{err}");
        err
    };
    let with = |f: &dyn Fn(&mut AclBinding)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };
    for rt in [ResourceType::Any, ResourceType::Unknown] {
        assert_eq!(refused(with(&|b| b.pattern.resource_type = rt)), AclError::InvalidResourceType(rt));
    }
    for pt in [PatternType::Any, PatternType::Match, PatternType::Unknown] {
        assert_eq!(refused(with(&|b| b.pattern.pattern_type = pt)), AclError::InvalidPatternType(pt));
    }
    for op in [Op::Any, Op::Unknown] {
        assert_eq!(refused(with(&|b| b.entry.operation = op)), AclError::InvalidOperation(op));
    }
    for perm in [AclPermissionType::Any, AclPermissionType::Unknown] {
        assert_eq!(refused(with(&|b| b.entry.permission = perm)), AclError::InvalidPermissionType(perm));
    }
    assert_eq!(refused(with(&|b| b.pattern.name.clear())), AclError::EmptyResourceName);
    assert_eq!(
        refused(with(&|b| {
            b.pattern.name.clear();
            b.pattern.pattern_type = Prefixed;
        })),
        AclError::EmptyResourceName
    );
    assert_eq!(refused(topic_acl("*", Prefixed, ALICE, Op::Read, Allow)), AclError::WildcardPrefix);
    assert!(matches!(
        refused(acl(Cluster, "my-cluster", Literal, ALICE, "*", Op::Alter, Allow)),
        AclError::InvalidClusterName(_)
    ));
    for p in ["alice", "User:", ":alice", ""] {
        assert!(matches!(refused(topic_acl("t", Literal, p, Op::Read, Allow)), AclError::InvalidPrincipal(_)), "{p:?}");
    }
    for h in ["", "localhost", "10.0.0.256", "10.0.0.0/8", "**"] {
        assert!(matches!(refused(with(&|b| b.entry.host = h.into())), AclError::InvalidHost(_)), "{h:?}");
    }
    // The authorizer refuses what validation refuses, and stores nothing.
    let mut a = Authorizer::default();
    assert!(a.add(topic_acl("*", Prefixed, ALICE, Op::Read, Allow)).is_err());
    assert!(a.is_empty());
}

#[test]
fn add_is_idempotent() {
    let mut a = Authorizer::default();
    assert!(a.add(acl(Topic, "t", Literal, ALICE, "10.0.0.1", Op::Read, Allow)).unwrap());
    assert!(!a.add(acl(Topic, "t", Literal, ALICE, "10.0.0.1", Op::Read, Allow)).unwrap());
    assert!(!a.add(acl(Topic, "t", Literal, ALICE, "::ffff:10.0.0.1", Op::Read, Allow)).unwrap());
    assert!(a.add(acl(Topic, "t", Prefixed, ALICE, "10.0.0.1", Op::Read, Allow)).unwrap());
    assert_eq!(a.len(), 2);
}

fn sample() -> Authorizer {
    authorizer([
        topic_acl("orders", Literal, ALICE, Op::Read, Allow),
        topic_acl("*", Literal, BOB, Op::Read, Allow),
        topic_acl("ord", Prefixed, BOB, Op::Write, Deny),
        topic_acl("orders-eu", Literal, ALICE, Op::Write, Allow),
        acl(Group, "orders", Literal, ALICE, "10.0.0.1", Op::Read, Allow),
    ])
}

fn names(bindings: &[AclBinding]) -> Vec<(ResourceType, &str, PatternType)> {
    let mut v: Vec<_> =
        bindings.iter().map(|b| (b.pattern.resource_type, b.pattern.name.as_str(), b.pattern.pattern_type)).collect();
    v.sort();
    v
}

fn pattern_filter(rt: ResourceType, name: Option<&str>, pt: PatternType) -> AclBindingFilter {
    AclBindingFilter::new(ResourcePatternFilter::new(rt, name.map(String::from), pt), AccessControlEntryFilter::ANY)
}

#[test]
fn filter_any_matches_everything() {
    let a = sample();
    assert_eq!(a.describe(&AclBindingFilter::ANY).len(), 5);
    // Any with a name compares names exactly, across pattern types.
    let f = pattern_filter(ResourceType::Any, Some("orders"), PatternType::Any);
    assert_eq!(names(&a.describe(&f)), vec![(Topic, "orders", Literal), (Group, "orders", Literal)]);
    let f = pattern_filter(Topic, Some("*"), Literal);
    assert_eq!(names(&a.describe(&f)), vec![(Topic, "*", Literal)]);
}

#[test]
fn filter_match_selects_what_applies_to_a_resource() {
    let a = sample();
    let f = pattern_filter(Topic, Some("orders"), PatternType::Match);
    assert_eq!(
        names(&a.describe(&f)),
        vec![(Topic, "*", Literal), (Topic, "ord", Prefixed), (Topic, "orders", Literal)]
    );
    let f = pattern_filter(Topic, Some("payments"), PatternType::Match);
    assert_eq!(names(&a.describe(&f)), vec![(Topic, "*", Literal)]);
    let f = pattern_filter(Topic, None, Prefixed);
    assert_eq!(names(&a.describe(&f)), vec![(Topic, "ord", Prefixed)]);
}

#[test]
fn entry_filter_fields() {
    let a = sample();
    let by = |principal: Option<&str>, host: Option<&str>, op, perm| {
        let f = AclBindingFilter::new(
            ResourcePatternFilter::ANY,
            AccessControlEntryFilter::new(principal.map(String::from), host.map(String::from), op, perm),
        );
        a.describe(&f).len()
    };
    assert_eq!(by(Some(ALICE), None, Op::Any, AclPermissionType::Any), 3);
    // Exact principal: a filter for a principal does not expand to `User:*`.
    assert_eq!(by(Some("User:*"), None, Op::Any, AclPermissionType::Any), 0);
    assert_eq!(by(None, Some("::ffff:10.0.0.1"), Op::Any, AclPermissionType::Any), 1);
    assert_eq!(by(None, Some("*"), Op::Any, AclPermissionType::Any), 4);
    assert_eq!(by(None, None, Op::Write, AclPermissionType::Any), 2);
    assert_eq!(by(None, None, Op::Any, Deny), 1);
    assert_eq!(by(Some(BOB), None, Op::Read, Allow), 1);
}

#[test]
fn delete_with_filters() {
    let mut a = sample();
    let removed = a.remove_matching(&pattern_filter(Topic, Some("orders"), PatternType::Match));
    assert_eq!(removed.len(), 3);
    assert_eq!(a.len(), 2);
    assert_eq!(
        names(&a.describe(&AclBindingFilter::ANY)),
        vec![(Topic, "orders-eu", Literal), (Group, "orders", Literal)]
    );
    // The decision follows: bob lost his wildcard read.
    assert_eq!(check(&a, BOB, Op::Read, "payments"), Denied);

    let only_alice_write = AclBindingFilter::new(
        ResourcePatternFilter::ANY,
        AccessControlEntryFilter::new(Some(ALICE.into()), None, Op::Write, AclPermissionType::Any),
    );
    assert_eq!(a.remove_matching(&only_alice_write).len(), 1);
    assert_eq!(a.remove_matching(&only_alice_write).len(), 0);
    assert_eq!(a.remove_matching(&AclBindingFilter::ANY).len(), 1);
    assert!(a.is_empty());
}

#[test]
fn filter_validation() {
    assert_eq!(AclBindingFilter::ANY.validate(), Ok(()));
    let mut f = AclBindingFilter::ANY;
    f.entry.operation = Op::Unknown;
    assert_eq!(f.validate().unwrap_err().error_code(), ResponseError::InvalidRequest);
    let f = pattern_filter(Topic, None, PatternType::Unknown);
    assert_eq!(f.validate(), Err(AclError::UnknownInFilter));
    let f = pattern_filter(ResourceType::Unknown, None, PatternType::Any);
    assert_eq!(f.validate(), Err(AclError::UnknownInFilter));
}

#[test]
fn authorize_any_finds_an_allow_not_shadowed_by_a_deny() {
    let any = |a: &Authorizer, principal: &str| a.authorize_any(principal, local(), Op::Write, Topic);
    assert_eq!(any(&authorizer([]), ALICE), Denied);
    assert_eq!(any(&authorizer([]), "User:admin"), Allowed, "super users");
    assert_eq!(any(&Authorizer::new::<&str>([], true), ALICE), Allowed, "no ACL at all, allowed by setting");

    let one = authorizer([topic_acl("logs", Literal, ALICE, Op::Write, Allow)]);
    assert_eq!(any(&one, ALICE), Allowed);
    assert_eq!(any(&one, BOB), Denied);
    assert_eq!(one.authorize_any(ALICE, local(), Op::Read, Topic), Denied, "only the operation itself counts");
    assert_eq!(one.authorize_any(ALICE, local(), Op::Write, Group), Denied);

    let same_name = authorizer([
        topic_acl("logs", Literal, ALICE, Op::Write, Allow),
        topic_acl("logs", Literal, ALICE, Op::All, Deny),
    ]);
    assert_eq!(any(&same_name, ALICE), Denied);
    let wider = authorizer([
        topic_acl("logs-web", Literal, ALICE, Op::Write, Allow),
        topic_acl("logs-w", Prefixed, ALICE, Op::Write, Allow),
        topic_acl("logs", Prefixed, "User:*", Op::Write, Deny),
    ]);
    assert_eq!(any(&wider, ALICE), Denied, "a deny prefix covers both allows");
    let everything = authorizer([
        topic_acl("logs", Literal, ALICE, Op::Write, Allow),
        topic_acl("*", Literal, ALICE, Op::Write, Deny),
    ]);
    assert_eq!(any(&everything, ALICE), Denied);
    let wildcard = authorizer([topic_acl("*", Literal, "User:*", Op::Write, Allow)]);
    assert_eq!(any(&wildcard, BOB), Allowed);
}

#[test]
fn with_bindings_skips_what_creation_refuses() {
    let good = topic_acl("logs", Literal, ALICE, Op::Read, Allow);
    let bad = topic_acl("logs", Literal, "alice", Op::Read, Allow);
    let a = Authorizer::new::<&str>([], false).with_bindings([&good, &bad]);
    assert_eq!(a.len(), 1);
    assert_eq!(check(&a, ALICE, Op::Read, "logs"), Allowed);
}
