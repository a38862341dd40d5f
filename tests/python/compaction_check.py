"""Log compaction seen by a real client: a compacted topic with repeated keys keeps only the last
value per key after cleaning, offsets only go forward, and tombstones disappear after
delete.retention.ms."""

import argparse
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
args = parser.parse_args()
TOPIC = "compacted"

admin = AdminClient({"bootstrap.servers": args.bootstrap})
admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1, config={
    "cleanup.policy": "compact", "segment.bytes": "1024", "segment.ms": "1000",
    "delete.retention.ms": "3000"})])[TOPIC].result(timeout=30)

producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})


def send(key, value):
    producer.produce(TOPIC, key=key.encode(), value=None if value is None else value.encode())
    producer.flush(30)


for rnd in range(20):
    for k in range(10):
        send(f"k{k}", f"k{k}-v{rnd}")
send("k0", None)  # tombstones
send("k1", None)
for rnd in range(20, 26):  # filler so the tombstones end up in sealed segments
    for k in range(5, 10):
        send(f"k{k}", f"k{k}-v{rnd}")
# The active segment is never compacted (as in Kafka): let it age past segment.ms so this last
# record rolls it and everything before it becomes cleanable.
time.sleep(1.5)
send("z", "last")
if producer.flush(30):
    fail("produce did not finish")


def read_all():
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "compaction-reader", "enable.auto.commit": False})
    _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10, cached=False)
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    out = []
    last = -1
    deadline = time.time() + 30
    while time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            if last >= high - 1:
                break
            continue
        if msg.error():
            fail(f"consumer error {msg.error()}")
        if msg.offset() <= last:
            fail(f"offset went backwards: {msg.offset()} after {last}")
        last = msg.offset()
        out.append((msg.offset(), msg.key().decode(), None if msg.value() is None else msg.value().decode()))
        if last >= high - 1:
            break
    consumer.close()
    return out, high


expected_latest = {f"k{k}": f"k{k}-v19" for k in range(2, 5)}
expected_latest.update({f"k{k}": f"k{k}-v25" for k in range(5, 10)})
expected_latest["z"] = "last"

# Phase 1: compacted, tombstones still visible.
deadline = time.time() + 30
while True:
    records, high = read_all()
    keys = [k for _, k, _ in records]
    if len(keys) == len(set(keys)):
        break
    if time.time() > deadline:
        fail(f"still {len(keys)} records for {len(set(keys))} keys after 30 s")
    time.sleep(0.3)
if high != 233:
    fail(f"log end offset {high}, expected 233: compaction must not move it")
latest = {k: v for _, k, v in records}
for key, value in expected_latest.items():
    if latest.get(key) != value:
        fail(f"{key}: {latest.get(key)!r}, expected {value!r}")
tombstones_seen = "k0" in latest and latest["k0"] is None

# Phase 2: after delete.retention.ms the tombstones are gone too.
deadline = time.time() + 30
while True:
    records, _ = read_all()
    latest = {k: v for _, k, v in records}
    if "k0" not in latest and "k1" not in latest:
        break
    if time.time() > deadline:
        fail(f"tombstones still present: { {k: latest.get(k) for k in ('k0', 'k1')} }")
    time.sleep(0.3)
if latest != expected_latest:
    fail(f"final contents {latest}")
print(f"OK compaction ({len(records)} records left of 233; tombstones seen before expiry: {tombstones_seen})")
