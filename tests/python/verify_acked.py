"""Consumes a topic from the beginning and checks that every record listed in --acked is present
at its acknowledged partition and offset, and that no record of the idempotent producer (values
starting with --prefix) appears twice. Records of other writers are read past but not checked for
duplicates: a producer without idempotence (kcat filling a disk, say) may store a batch twice when
it retries after an error, as Kafka allows."""

import argparse
import time

from confluent_kafka import Consumer, TopicPartition

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--partitions", type=int, required=True)
parser.add_argument("--acked", required=True)
parser.add_argument("--prefix", default="rec", help="value prefix of the idempotent producer's records")
args = parser.parse_args()

acked = {}
with open(args.acked) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 3:
            acked[parts[0]] = (int(parts[1]), int(parts[2]))
if not acked:
    fail("no acknowledged records to check")

consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "verify-unused", "enable.auto.commit": False})
ends = {}
for p in range(args.partitions):
    low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)
    ends[p] = high
consumer.assign([TopicPartition(args.topic, p, 0) for p in range(args.partitions)])
seen = {}
positions = {p: 0 for p in range(args.partitions)}
deadline = time.time() + 90
while any(positions[p] < ends[p] for p in ends) and time.time() < deadline:
    msg = consumer.poll(1.0)
    if msg is None:
        continue
    if msg.error():
        fail(f"consumer error: {msg.error()}")
    value = msg.value().decode()
    positions[msg.partition()] = msg.offset() + 1
    if not value.startswith(args.prefix + "-"):
        continue
    if value in seen:
        fail(f"{value} stored twice: at {seen[value]} and {(msg.partition(), msg.offset())}")
    seen[value] = (msg.partition(), msg.offset())
consumer.close()
lost = [v for v, where in acked.items() if seen.get(v) != where]
if lost:
    v = lost[0]
    fail(f"{len(lost)} acknowledged records lost or moved, e.g. {v} acked at {acked[v]} found at {seen.get(v)}")
print(f"OK {len(acked)} acknowledged records all present; {len(seen)} stored")
