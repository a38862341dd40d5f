"""ListOffsets through confluent-kafka: by timestamp (offsets_for_times), earliest and latest."""

import argparse

from confluent_kafka import Consumer, Producer, TopicPartition

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
args = parser.parse_args()

BASE = 1_700_000_000_000
producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0, "compression.type": "lz4"})
# 200 records, timestamps 1 s apart, in batches of 10 so lookups cross batch boundaries.
for i in range(200):
    producer.produce(args.topic, partition=0, value=f"t{i}".encode(), timestamp=BASE + i * 1000)
    if i % 10 == 9:
        producer.flush(30)
if producer.flush(30):
    fail("produce did not finish")

consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "offsets-unused"})


def lookup(ts):
    result = consumer.offsets_for_times([TopicPartition(args.topic, 0, ts)], timeout=10)
    if result[0].error:
        fail(f"offsets_for_times({ts}) error {result[0].error}")
    return result[0].offset


checks = [
    (BASE, 0),                 # exactly the first record
    (BASE - 5000, 0),          # before everything: the first record
    (BASE + 50_500, 51),       # between records 50 and 51 -> first at or after is 51
    (BASE + 123_000, 123),     # exact match inside a compressed batch
    (BASE + 199_000, 199),     # the last record
    (BASE + 500_000, -1),      # after everything: no offset (-1)
]
for ts, expected in checks:
    got = lookup(ts)
    if got != expected:
        fail(f"offsets_for_times({ts - BASE:+d} ms from base) = {got}, expected {expected}")
low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, 0), timeout=10)
if (low, high) != (0, 200):
    fail(f"watermarks {(low, high)}, expected (0, 200)")
consumer.close()
print("OK offsets")
