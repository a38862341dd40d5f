//! Group metadata written to `__consumer_offsets` brings a stable group back after a broker
//! restart: its member keeps heartbeating with the same member id and generation.

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;
use millrace_tests::{BrokerProcess, KafkaConn};

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

#[test]
fn stable_group_survives_a_broker_restart() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("[groups]\ninitial_rebalance_delay = \"100ms\"\n")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s("restored")))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(b"subscription"))])
    };
    let first = conn.request(5, &join(""))?;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = first.member_id.to_string();
    let joined = conn.request(5, &join(&member))?;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader.as_str(), member);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("restored")))
        .with_generation_id(joined.generation_id)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(bytes::Bytes::from_static(b"everything"))]);
    let synced = conn.request(3, &sync)?;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"everything");

    drop(conn);
    broker.stop()?;
    broker.restart()?;

    let mut conn = KafkaConn::connect(broker.port)?;
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(s("restored")))
        .with_generation_id(joined.generation_id)
        .with_member_id(s(&member));
    assert_eq!(conn.request(3, &heartbeat)?.error_code, 0, "the member is still known after the restart");
    let described = conn.request(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("restored"))]))?;
    let group = &described.groups[0];
    assert_eq!(group.group_state.as_str(), "Stable");
    assert_eq!(group.members.len(), 1);
    assert_eq!(&group.members[0].member_assignment[..], b"everything");
    // A stale generation is still fenced.
    let stale = heartbeat.clone().with_generation_id(joined.generation_id - 1);
    assert_eq!(conn.request(3, &stale)?.error_code, 22, "ILLEGAL_GENERATION");
    Ok(())
}
