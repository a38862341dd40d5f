"""Consumes a topic from the beginning and checks that every record listed in --acked is present
at its acknowledged partition and offset, and that no record appears twice."""

import argparse
import time

from confluent_kafka import Consumer, TopicPartition

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--partitions", type=int, required=True)
parser.add_argument("--acked", required=True)
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
    if value in seen:
        fail(f"{value} stored twice: at {seen[value]} and {(msg.partition(), msg.offset())}")
    seen[value] = (msg.partition(), msg.offset())
    positions[msg.partition()] = msg.offset() + 1
consumer.close()
lost = [v for v, where in acked.items() if seen.get(v) != where]
if lost:
    v = lost[0]
    fail(f"{len(lost)} acknowledged records lost or moved, e.g. {v} acked at {acked[v]} found at {seen.get(v)}")
print(f"OK {len(acked)} acknowledged records all present; {len(seen)} stored")
