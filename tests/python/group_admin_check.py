"""Group administration through confluent-kafka's and kafka-python's admin clients:
ListGroups, DescribeGroups, OffsetFetch (batched), OffsetCommit for an offsets-only group,
OffsetDelete, DeleteGroups (empty, and refused for a live group)."""

import argparse
import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition as KpTopicPartition

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
args = parser.parse_args()

admin = AdminClient({"bootstrap.servers": args.bootstrap})
admin.create_topics([NewTopic("adm", num_partitions=2, replication_factor=1)])["adm"].result(timeout=30)

# Offsets-only group: commit with no membership (generation -1), as tools that reset offsets do.
request = ConsumerGroupTopicPartitions("admin-g", [TopicPartition("adm", 0, 5), TopicPartition("adm", 1, 7)])
admin.alter_consumer_group_offsets([request])["admin-g"].result(timeout=30)


def offsets(group):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition("adm", 0), TopicPartition("adm", 1)])
    res = admin.list_consumer_group_offsets([req])[group].result(timeout=30)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


if offsets("admin-g") != {0: 5, 1: 7}:
    fail(f"committed offsets {offsets('admin-g')}")
listed = {g.group_id: g for g in admin.list_consumer_groups().result(timeout=30).valid}
if "admin-g" not in listed:
    fail(f"admin-g not listed: {list(listed)}")
described = admin.describe_consumer_groups(["admin-g"])["admin-g"].result(timeout=30)
if str(described.state) != "ConsumerGroupState.EMPTY" or described.members:
    fail(f"described {described.state} with {len(described.members)} members")

# OffsetDelete through kafka-python.
kp_admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
kp_admin.delete_group_offsets("admin-g", [KpTopicPartition("adm", 1)])
after = offsets("admin-g")
if after.get(0) != 5 or after.get(1, -1001) >= 0:
    fail(f"after OffsetDelete: {after}")

# A live group cannot be deleted.
consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "live-g", "session.timeout.ms": 6000})
consumer.subscribe(["adm"])
deadline = time.time() + 30
while not consumer.assignment() and time.time() < deadline:
    consumer.poll(0.2)
if not consumer.assignment():
    fail("the live consumer got no assignment")
described = admin.describe_consumer_groups(["live-g"])["live-g"].result(timeout=30)
if str(described.state) != "ConsumerGroupState.STABLE" or len(described.members) != 1:
    fail(f"live group described as {described.state} with {len(described.members)} members")
assigned = sorted(tp.partition for tp in described.members[0].assignment.topic_partitions)
if assigned != [0, 1]:
    fail(f"member assignment {assigned}")
try:
    admin.delete_consumer_groups(["live-g"])["live-g"].result(timeout=30)
    fail("deleting a live group succeeded")
except KafkaException as e:
    if "NON_EMPTY_GROUP" not in str(e):
        fail(f"unexpected error deleting a live group: {e}")
consumer.close()

admin.delete_consumer_groups(["admin-g"])["admin-g"].result(timeout=30)
listed = {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}
if "admin-g" in listed:
    fail("deleted group still listed")
if any(o >= 0 for o in offsets("admin-g").values()):
    fail(f"deleted group still has offsets {offsets('admin-g')}")
print("OK group admin")
