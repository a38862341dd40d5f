"""kafka-python group consumer: consumes --expect new records of --topic in --group, commits,
prints them sorted; exits non-zero if it gets more or fewer within the deadline."""

import argparse
import time

from kafka import KafkaConsumer

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--group", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--expect", type=int, required=True)
args = parser.parse_args()

consumer = KafkaConsumer(
    args.topic,
    bootstrap_servers=args.bootstrap,
    group_id=args.group,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    session_timeout_ms=6000,
    heartbeat_interval_ms=1000,
)
values = []
deadline = time.time() + 60
while len(values) < args.expect and time.time() < deadline:
    for records in consumer.poll(timeout_ms=500).values():
        values.extend(r.value.decode() for r in records)
    consumer.commit()
# Give duplicates or extras a moment to show up.
end = time.time() + 1.5
while time.time() < end:
    for records in consumer.poll(timeout_ms=200).values():
        values.extend(r.value.decode() for r in records)
consumer.commit()
consumer.close()
if len(values) != args.expect:
    fail(f"expected {args.expect} records, got {len(values)}")
print("\n".join(sorted(values)))
