"""kafka-python producer and consumer round trip against a broker."""

import argparse
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from roundtrip_check import fail, verify

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--partitions", type=int, required=True)
parser.add_argument("--count", type=int, default=1000)
parser.add_argument("--compression", default=None)
parser.add_argument("--idempotence", action="store_true")
parser.add_argument("--client-config", action="append", default=[],
                    help="KEY=VALUE keyword argument for both clients (security_protocol, sasl_*, ssl_*)")
args = parser.parse_args()
extra = dict(kv.split("=", 1) for kv in args.client_config)

producer = KafkaProducer(
    bootstrap_servers=args.bootstrap,
    compression_type=args.compression,
    enable_idempotence=args.idempotence,
    acks="all",
    linger_ms=5,
    **extra,
)
futures = []
for i in range(args.count):
    key = f"key-{i % 37}".encode()
    value = f"{args.compression}-{i:08d}".encode() + b"y" * (i % 150)
    futures.append((value, producer.send(args.topic, key=key, value=value)))
producer.flush(60)
delivered = {}
for value, future in futures:
    meta = future.get(timeout=30)
    delivered[value] = (meta.partition, meta.offset)
producer.close()

consumer = KafkaConsumer(
    bootstrap_servers=args.bootstrap,
    group_id=None,
    enable_auto_commit=False,
    auto_offset_reset="earliest",
    consumer_timeout_ms=5000,
    **extra,
)
consumer.assign([TopicPartition(args.topic, p) for p in range(args.partitions)])
for p in range(args.partitions):
    consumer.seek(TopicPartition(args.topic, p), 0)
consumed = []
deadline = time.time() + 60
while len(consumed) < args.count and time.time() < deadline:
    batch = consumer.poll(timeout_ms=1000)
    for records in batch.values():
        for r in records:
            consumed.append((r.partition, r.offset, r.key, r.value))
end = time.time() + 1.0
while time.time() < end:
    for records in consumer.poll(timeout_ms=200).values():
        for r in records:
            consumed.append((r.partition, r.offset, r.key, r.value))
consumer.close()
verify(delivered, consumed)
