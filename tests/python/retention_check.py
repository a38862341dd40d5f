"""Produces old-timestamped records in many small batches and waits until retention has moved the
log start offset; then checks a consumer starting at 0 is moved to the new start."""

import argparse
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--old-timestamps", action="store_true")
args = parser.parse_args()

producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})
now_ms = int(time.time() * 1000)
for i in range(300):
    # With --old-timestamps all but the last 20 records are an hour old.
    ts = now_ms - 3_600_000 if args.old_timestamps and i < 280 else now_ms
    producer.produce(args.topic, partition=0, value=b"r" * 200, timestamp=ts)
    producer.flush(30)

consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "retention-unused",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
deadline = time.time() + 30
low = high = 0
while time.time() < deadline:
    low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, 0), timeout=10, cached=False)
    if low > 0:
        break
    time.sleep(0.2)
if low <= 0:
    fail(f"log start offset never moved (watermarks {low}, {high})")
if high != 300:
    fail(f"log end offset {high}, expected 300: retention must never move the end")
# A consumer positioned before the start is reset to the earliest record still stored.
consumer.assign([TopicPartition(args.topic, 0, 0)])
first = None
end = time.time() + 20
while first is None and time.time() < end:
    msg = consumer.poll(1.0)
    if msg is not None and not msg.error():
        first = msg.offset()
if first is None or first < low:
    fail(f"first consumed offset {first}, log start {low}")
consumer.close()
print(f"OK retention moved log start to {low}")
