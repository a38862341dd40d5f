"""confluent-kafka AdminClient against the broker: CreateTopics with configs and validate_only,
DescribeConfigs, CreatePartitions, DescribeCluster, DeleteTopics."""

import argparse
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
args = parser.parse_args()

admin = AdminClient({"bootstrap.servers": args.bootstrap})


def wait(futures):
    return {k: f.result(timeout=30) for k, f in futures.items()}


# validate_only creates nothing.
wait(admin.create_topics([NewTopic("dry", num_partitions=2, replication_factor=1)], validate_only=True))
if "dry" in admin.list_topics(timeout=10).topics:
    fail("validate_only created the topic")

wait(admin.create_topics([NewTopic("managed", num_partitions=2, replication_factor=1,
                                   config={"retention.ms": "3600000", "segment.bytes": "1048576"})]))
try:
    wait(admin.create_topics([NewTopic("managed", num_partitions=1, replication_factor=1)]))
    fail("creating an existing topic succeeded")
except KafkaException as e:
    if "TOPIC_ALREADY_EXISTS" not in str(e):
        fail(f"unexpected error for a duplicate topic: {e}")
try:
    wait(admin.create_topics([NewTopic("badconf", num_partitions=1, replication_factor=1, config={"retention.ms": "soon"})]))
    fail("an invalid config was accepted")
except KafkaException as e:
    if "INVALID_CONFIG" not in str(e):
        fail(f"unexpected error for an invalid config: {e}")

resource = ConfigResource(ConfigResource.Type.TOPIC, "managed")
configs = admin.describe_configs([resource])[resource].result(timeout=30)
if configs["retention.ms"].value != "3600000" or configs["retention.ms"].is_default:
    fail(f"retention.ms described as {configs['retention.ms']}")
if configs["segment.bytes"].value != "1048576":
    fail(f"segment.bytes described as {configs['segment.bytes']}")
if not configs["max.message.bytes"].is_default:
    fail("max.message.bytes should be reported as a default")
broker_resource = ConfigResource(ConfigResource.Type.BROKER, "1")
broker_configs = admin.describe_configs([broker_resource])[broker_resource].result(timeout=30)
if broker_configs["auto.create.topics.enable"].value != "true":
    fail(f"broker config auto.create.topics.enable = {broker_configs['auto.create.topics.enable']}")

wait(admin.create_partitions([NewPartitions("managed", 5)]))
deadline = time.time() + 10
while len(admin.list_topics(timeout=10).topics["managed"].partitions) != 5:
    if time.time() > deadline:
        fail("CreatePartitions did not reach 5 partitions")
    time.sleep(0.1)
try:
    wait(admin.create_partitions([NewPartitions("managed", 3)]))
    fail("shrinking partitions succeeded")
except KafkaException as e:
    if "INVALID_PARTITIONS" not in str(e):
        fail(f"unexpected error when shrinking: {e}")

cluster = admin.describe_cluster(request_timeout=10).result(timeout=30)
if len(cluster.nodes) != 1 or cluster.controller.id != 1 or not cluster.cluster_id:
    fail(f"describe_cluster: {cluster}")

wait(admin.delete_topics(["managed"]))
deadline = time.time() + 10
while "managed" in admin.list_topics(timeout=10).topics:
    if time.time() > deadline:
        fail("deleted topic still listed")
    time.sleep(0.1)
print("OK admin")
