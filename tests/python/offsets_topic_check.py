"""Reads __consumer_offsets with kafka-python like an outside tool (Burrow, a lag exporter) and
decodes it with a decoder written here from Kafka's record schemas (OffsetCommitKey/Value,
GroupMetadataKey/Value), independent of the broker's code.

A kafka-python group consumes --topic and commits known offsets (with metadata); the records of
the group's __consumer_offsets partition must then hold those commits and the group's metadata
with its member, and after the member leaves, the group's empty metadata.
"""

import argparse
import struct
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from roundtrip_check import fail

OFFSETS = "__consumer_offsets"

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--partitions", type=int, required=True)
parser.add_argument("--group", required=True)
args = parser.parse_args()


class Reader:
    """Big-endian reads over one key or value; every read is bounds-checked."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            fail(f"record too short: need {n} bytes at {self.pos} of {len(self.data)}: {self.data!r}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def int16(self):
        return self.unpack(">h")

    def int32(self):
        return self.unpack(">i")

    def int64(self):
        return self.unpack(">q")

    def string(self, nullable=False):
        n = self.int16()
        if n == -1 and nullable:
            return None
        return self.take(n).decode("utf-8")

    def bytes_(self):
        return self.take(self.int32())

    def end(self, what):
        if self.pos != len(self.data):
            fail(f"{what}: {len(self.data) - self.pos} bytes left over: {self.data!r}")


def decode_key(data):
    r = Reader(data)
    version = r.int16()
    if version in (0, 1):
        key = ("offset", r.string(), r.string(), r.int32())
    elif version == 2:
        key = ("group", r.string())
    else:
        fail(f"unknown key version {version}: {data!r}")
    r.end("key")
    return version, key


def decode_offset_value(data):
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1, 2, 3):
        fail(f"offset commit value version {version} (a flexible v4 is not expected here)")
    value = {"version": version, "offset": r.int64()}
    value["leader_epoch"] = r.int32() if version >= 3 else -1
    value["metadata"] = r.string()
    value["commit_timestamp"] = r.int64()
    if version == 1:
        value["expire_timestamp"] = r.int64()
    r.end("offset commit value")
    return value


def decode_group_value(data):
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1, 2, 3):
        fail(f"group metadata value version {version}")
    value = {
        "version": version,
        "protocol_type": r.string(),
        "generation": r.int32(),
        "protocol": r.string(nullable=True),
        "leader": r.string(nullable=True),
    }
    value["current_state_timestamp"] = r.int64() if version >= 2 else -1
    members = []
    for _ in range(r.int32()):
        member = {"member_id": r.string()}
        member["group_instance_id"] = r.string(nullable=True) if version >= 3 else None
        member["client_id"] = r.string()
        member["client_host"] = r.string()
        member["rebalance_timeout"] = r.int32() if version >= 1 else -1
        member["session_timeout"] = r.int32()
        member["subscription"] = r.bytes_()
        member["assignment"] = r.bytes_()
        members.append(member)
    value["members"] = members
    r.end("group metadata value")
    return value


def subscribed_topics(subscription):
    """Topics of a ConsumerProtocolSubscription (version, then an array of topic names)."""
    r = Reader(subscription)
    r.int16()
    return [r.string() for _ in range(r.int32())]


def java_hash(text):
    h = 0
    for unit in struct.unpack(f"<{len(text.encode('utf-16-le')) // 2}H", text.encode("utf-16-le")):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def read_offsets_topic():
    """Every record of every __consumer_offsets partition: {partition: [(key bytes, value bytes)]}."""
    reader = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False, group_id=None)
    partitions = reader.partitions_for_topic(OFFSETS)
    if not partitions:
        fail(f"{OFFSETS} has no partitions")
    tps = [TopicPartition(OFFSETS, p) for p in sorted(partitions)]
    reader.assign(tps)
    reader.seek_to_beginning(*tps)
    ends = reader.end_offsets(tps)
    records = {tp.partition: [] for tp in tps}
    deadline = time.time() + 30
    while any(reader.position(tp) < ends[tp] for tp in tps):
        if time.time() > deadline:
            fail(f"reading {OFFSETS} did not reach its end {ends}")
        for tp, batch in reader.poll(timeout_ms=500).items():
            records[tp.partition].extend((r.key, r.value) for r in batch)
    reader.close()
    return records, len(tps)


def latest(records):
    """Latest value per decoded key (None for a tombstone), as compaction would keep."""
    state = {}
    for key, value in records:
        if key is None:
            fail("a record without a key")
        _, decoded = decode_key(key)
        if value is None:
            state[decoded] = None
        elif decoded[0] == "offset":
            state[decoded] = decode_offset_value(value)
        else:
            state[decoded] = decode_group_value(value)
    return state


def group_partition_state(expect_group_partition):
    records, count = read_offsets_topic()
    home = (java_hash(args.group) & 0x7FFFFFFF) % count
    if home != expect_group_partition and expect_group_partition is not None:
        fail(f"group moved from partition {expect_group_partition} to {home}")
    for partition, recs in records.items():
        if partition != home and any(decode_key(k)[1][1] == args.group for k, _ in recs):
            fail(f"records of {args.group} in partition {partition}, not abs(javaHashCode) % {count} = {home}")
    return home, latest(records[home])


producer = KafkaProducer(bootstrap_servers=args.bootstrap)
for i in range(200):
    producer.send(args.topic, value=f"v{i}".encode(), partition=i % args.partitions)
producer.flush(30)
producer.close()

consumer = KafkaConsumer(
    args.topic,
    bootstrap_servers=args.bootstrap,
    group_id=args.group,
    client_id="offsets-format-check",
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    session_timeout_ms=10000,
    heartbeat_interval_ms=1000,
)
seen = 0
deadline = time.time() + 60
while seen < 200 and time.time() < deadline:
    seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
if seen != 200:
    fail(f"consumed {seen} of 200 records")
# Commit offsets of our own choosing, each partition different, with metadata.
wanted = {p: 10 + p * 7 for p in range(args.partitions)}
consumer.commit({
    TopicPartition(args.topic, p): OffsetAndMetadata(o, f"meta-{p}", -1) for p, o in wanted.items()
})

home, state = group_partition_state(None)
for p, o in wanted.items():
    value = state.get(("offset", args.group, args.topic, p))
    if value is None:
        fail(f"no offset commit for {args.group}/{args.topic}/{p} in partition {home}: {state}")
    if (value["offset"], value["metadata"]) != (o, f"meta-{p}"):
        fail(f"partition {p}: committed {value}, expected offset {o} with meta-{p}")
    if value["version"] != 3 or abs(value["commit_timestamp"] / 1000 - time.time()) > 300:
        fail(f"partition {p}: {value}")
group = state.get(("group", args.group))
if group is None:
    fail(f"no group metadata for {args.group} in partition {home}")
if (group["protocol_type"], group["protocol"]) != ("consumer", "range") or group["generation"] < 1:
    fail(f"group metadata {group}")
if len(group["members"]) != 1:
    fail(f"expected one member: {group}")
member = group["members"][0]
if member["member_id"] != group["leader"] or member["client_id"] != "offsets-format-check":
    fail(f"member {member} (leader {group['leader']})")
if member["session_timeout"] != 10000 or args.topic not in subscribed_topics(member["subscription"]):
    fail(f"member {member}")
print(f"committed {len(wanted)} offsets; group {args.group} generation {group['generation']} in partition {home}")

# Leaving empties the group: its latest metadata has no members and says since when.
consumer.close()
deadline = time.time() + 20
while True:
    _, state = group_partition_state(home)
    group = state.get(("group", args.group))
    if group is not None and not group["members"]:
        break
    if time.time() > deadline:
        fail(f"the group's metadata still has members after the leave: {group}")
    time.sleep(0.5)
if group["protocol"] is not None or group["current_state_timestamp"] <= 0:
    fail(f"empty group metadata {group}")
if state.get(("offset", args.group, args.topic, 0), {}).get("offset") != wanted[0]:
    fail("the committed offsets went away with the member")
print("OK __consumer_offsets decoded from Kafka's schemas")
